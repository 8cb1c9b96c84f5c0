/*
 * daemonize.c - tallyd --daemon: detach, and tell the starter how the start
 * went (main.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "daemonize.h"
#include "log.h"

/*
 * Detach, and return in the child; the parent waits for the child's word
 * (the write end of `ready`): "ok" once it listens and has replayed, or the
 * fatal message that stopped it, and exits with it.
 */
int
daemonize(const char *logpath)
{
	char buf[4200], *last, *nl;
	int ready[2];
	pid_t pid;
	ssize_t n;
	size_t len = 0;
	int fd;

	if (pipe2(ready, O_CLOEXEC) == -1)
		fatal("pipe");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0) {
		close(ready[1]);
		while (len < sizeof(buf) - 1 && (n = read(ready[0], buf + len,
		    sizeof(buf) - 1 - len)) != 0) {
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1)
				break;
			len += (size_t)n;
		}
		buf[len] = '\0';
		/* "ok", then where it serves: a newcomer saw nothing at all. */
		if (strncmp(buf, "ok", 2) == 0 &&
		    (buf[2] == '\0' || buf[2] == '\n')) {
			fputs(buf + 2 + (buf[2] == '\n'), stdout);
			fflush(stdout);		/* _exit flushes nothing */
			_exit(0);
		}
		/* The warnings before the fatal line (log.c), then that line. */
		for (last = buf; (nl = strchr(last, '\n')) != NULL;
		    last = nl + 1) {
			*nl = '\0';
			fprintf(stderr, "tallyd: %s\n", last);
		}
		fprintf(stderr, "tallyd: did not start: %s\n(log: %s)\n",
		    *last != '\0' ? last : "it exited before it was ready",
		    logpath);
		_exit(1);
	}
	close(ready[0]);
	if (setsid() == -1)
		fatal("setsid");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	log_startup_fd(ready[1]);
	return ready[1];
}

void
daemonize_started(int ready_fd, const struct config *cf, const char *election)
{
	char msg[1024];
	int n;

	if (ready_fd == -1)
		return;
	log_startup_fd(-1);
	n = snprintf(msg, sizeof(msg), "ok\ntallyd: serving %s at %s://%s/ "
	    "(pid %ld, log %s)\n", election, cf->public_tls_cert ? "https" :
	    "http", cf->listen, (long)getpid(), cf->log_file ? cf->log_file :
	    "stderr");
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = snprintf(msg, sizeof(msg), "ok");
	if (write(ready_fd, msg, (size_t)n) != n)
		log_warn("cannot tell the starter we are ready");
	close(ready_fd);
}
