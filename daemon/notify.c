/*
 * notify.c - systemd's service notification protocol, spoken directly.
 *
 * Under a Type=notify unit, systemd passes NOTIFY_SOCKET: a datagram socket
 * (a path, or "@name" in the abstract namespace) to which the service sends
 * newline-separated assignments: READY=1 once it serves, STATUS=<text>,
 * RELOADING=1 ... READY=1 around a reload, STOPPING=1, and WATCHDOG=1 every
 * WATCHDOG_USEC/2 when the unit sets WatchdogSec.  It is one sendto() of a
 * short string, so we speak it ourselves rather than link libsystemd: no new
 * dependency for a build that must also run without systemd, nothing hidden
 * behind the library (we see exactly what is sent, and a test can listen on
 * its own socket), and nothing to do when the variable is absent.
 *
 * The watchdog ping is sent from a timer on the event loop, so a loop that
 * is stuck (a blocked call, a livelock) stops pinging and systemd restarts
 * the service.  A loop that turns is not enough: the journal writer runs
 * on its own thread, and a hung fdatasync parks every POST while the loop
 * turns happily.  So each ping first asks the daemon (the watchdog check):
 * while the writer has been in one job longer than journal_stall_timeout,
 * no ping is sent, and systemd restarts the service after WatchdogSec.  Every send is best effort: a lost notification is logged at
 * debug level and never stops tallyd.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "notify.h"

static int			 notify_fd = -1;
static struct sockaddr_un	 notify_addr;
static socklen_t		 notify_len;
static uint64_t			 watchdog_usec;	/* 0: no watchdog */
static struct event		*notify_ev;
static notify_status_fn		 status_fn;
static void			*status_arg;
static char			 last_status[256];
static notify_check_fn		 check_fn;
static void			*check_arg;
static bool			 withheld;	/* the last ping was held back */

int
notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	const char *wd = getenv("WATCHDOG_USEC");
	const char *wdpid = getenv("WATCHDOG_PID");
	size_t len;

	if (wd != NULL && (wdpid == NULL || strtol(wdpid, NULL, 10) == getpid()))
		watchdog_usec = strtoull(wd, NULL, 10);
	/* Children (snapshot writers) must not speak for us. */
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (path == NULL || path[0] == '\0')
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') ||
	    len >= sizeof(notify_addr.sun_path)) {
		log_warnx("NOTIFY_SOCKET %s: not a socket path; not notifying",
		    path);
		unsetenv("NOTIFY_SOCKET");
		return -1;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, len);
	if (path[0] == '@')
		notify_addr.sun_path[0] = '\0';	/* abstract namespace */
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsetenv("NOTIFY_SOCKET");
	if (notify_fd == -1) {
		log_warn("NOTIFY_SOCKET: socket");
		return -1;
	}
	log_debug("notifying the service manager at %s", path);
	return 0;
}

bool
notify_enabled(void)
{
	return notify_fd != -1;
}

void
notify(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (notify_fd == -1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (sendto(notify_fd, buf, (size_t)n, MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_addr, notify_len) == -1)
		log_debug("NOTIFY_SOCKET: sendto: %s", strerror(errno));
}

void
notify_status(const char *fmt, ...)
{
	char buf[sizeof(last_status)];
	va_list ap;

	if (notify_fd == -1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (strcmp(buf, last_status) == 0)
		return;
	memcpy(last_status, buf, sizeof(buf));
	notify("STATUS=%s", buf);
}

void
notify_reloading(void)
{
	struct timespec now;

	/* systemd >= 253 wants the time of the request beside RELOADING=1. */
	clock_gettime(CLOCK_MONOTONIC, &now);
	notify("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)
	    now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000);
}

static void
notify_tick(evutil_socket_t fd, short what, void *arg)
{
	char buf[sizeof(last_status)];

	(void)fd;
	(void)what;
	(void)arg;
	if (watchdog_usec > 0) {
		char why[256];
		if (check_fn == NULL || check_fn(check_arg, why, sizeof(why))) {
			if (withheld)
				log_warnx("watchdog: pinging systemd again");
			withheld = false;
			notify("WATCHDOG=1");
		} else if (!withheld) {
			withheld = true;
			log_warnx("watchdog: not pinging systemd: %s", why);
		}
	}
	if (status_fn != NULL) {
		status_fn(status_arg, buf, sizeof(buf));
		notify_status("%s", buf);
	}
}

int
notify_start(struct event_base *base, notify_status_fn fn, void *arg)
{
	struct timeval tv = { 1, 0 };

	if (notify_fd == -1)
		return 0;
	status_fn = fn;
	status_arg = arg;
	/* Ping at half the interval, as sd_watchdog_enabled(3) advises. */
	if (watchdog_usec > 0 && watchdog_usec / 2 < 1000000) {
		tv.tv_sec = 0;
		tv.tv_usec = (suseconds_t)(watchdog_usec / 2);
	}
	notify_ev = event_new(base, -1, EV_PERSIST, notify_tick, NULL);
	if (notify_ev == NULL || event_add(notify_ev, &tv) == -1)
		return -1;
	if (watchdog_usec > 0)
		log_info("systemd watchdog: pinging every %.3f s",
		    (double)tv.tv_sec + (double)tv.tv_usec / 1e6);
	notify_tick(-1, 0, NULL);
	return 0;
}

void
notify_set_watchdog_check(notify_check_fn fn, void *arg)
{
	check_fn = fn;
	check_arg = arg;
}

void
notify_finish(void)
{
	if (notify_ev != NULL)
		event_free(notify_ev);
	notify_ev = NULL;
	status_fn = NULL;
	check_fn = NULL;
}
