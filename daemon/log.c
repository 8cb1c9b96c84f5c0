/*
 * log.c - the daemon's logging.
 *
 * Lines go to stderr or to a log file, each with a UTC timestamp and a level.
 * When stderr is systemd's journal stream (JOURNAL_STREAM names its device
 * and inode), lines to stderr carry a syslog priority prefix ("<4>") instead
 * of a timestamp: journald adds the time and keeps the priority, so
 * `journalctl -p warning -u tallyd` works.
 * Nothing here may log a token: callers pass only what is safe to show.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tally/diag.h>

#include "log.h"

static enum log_level	 log_level_cur = LOG_LEVEL_INFO;
static FILE		*log_out;
static int		 startup_fd = -1;	/* see log_startup_fd */
/*
 * While a background start waits (startup_fd set), the warnings logged so
 * far: a fatal line ("cannot set up the API: fix the problems above") often
 * only sums up the warnings before it, which went to the log file the
 * starter's terminal does not show.  The starter gets them with the fatal
 * line.  Only the newest that fit are kept (a flood of earlier ones would
 * push out the ones nearest the cause).
 */
static char		 startup_warnings[3072];
static size_t		 startup_warnings_len;
static bool		 journald;	/* stderr is the journal stream */

void
log_startup_fd(int fd)
{
	startup_fd = fd;
	startup_warnings_len = 0;
}

/* Keep a warning for the starter (see startup_warnings). */
static void
keep_for_starter(const char *fmt, va_list ap, const char *suffix)
{
	char line[1024];
	size_t n, cap = sizeof(startup_warnings), drop;
	int k;

	if (startup_fd == -1)
		return;
	k = vsnprintf(line, sizeof(line), fmt, ap);
	if (k < 0)
		return;
	n = (size_t)k < sizeof(line) ? (size_t)k : sizeof(line) - 1;
	if (suffix != NULL) {
		k = snprintf(line + n, sizeof(line) - n, ": %s", suffix);
		if (k > 0)
			n += (size_t)k < sizeof(line) - n ? (size_t)k :
			    sizeof(line) - n - 1;
	}
	if (n + 1 >= cap)
		return;
	if (startup_warnings_len + n + 1 > cap) {
		/* Drop the oldest whole lines to make room. */
		drop = startup_warnings_len + n + 1 - cap;
		while (drop < startup_warnings_len &&
		    startup_warnings[drop - 1] != '\n')
			drop++;
		memmove(startup_warnings, startup_warnings + drop,
		    startup_warnings_len - drop);
		startup_warnings_len -= drop;
	}
	memcpy(startup_warnings + startup_warnings_len, line, n);
	startup_warnings_len += n;
	startup_warnings[startup_warnings_len++] = '\n';
}

/* A fatal line also goes to whoever waits for a background start. */
static void
tell_starter(const char *fmt, va_list ap, const char *suffix)
{
	char buf[1024];
	int n;

	if (startup_fd == -1)
		return;
	/* The warnings first, one a line, then the fatal line. */
	if (startup_warnings_len > 0 && write(startup_fd, startup_warnings,
	    startup_warnings_len) == -1) {
		;
	}
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (suffix != NULL)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", suffix);
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (write(startup_fd, buf, (size_t)n) == -1) {
		;
	}
}

/* JOURNAL_STREAM is "device:inode" of the stream systemd connected. */
static bool
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat sb;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &sb) == -1)
		return false;
	return (unsigned long long)sb.st_dev == dev &&
	    (unsigned long long)sb.st_ino == ino;
}

bool
log_to_journal(void)
{
	return journald;
}

void
log_init(enum log_level level, const char *path)
{
	log_level_cur = level;
	journald = stderr_is_journal();
	log_out = stderr;
	if (path != NULL && log_reopen(path) == -1)
		log_warn("cannot open log file %s, logging to stderr", path);
}

int
log_reopen(const char *path)
{
	FILE *f;

	if ((f = fopen(path, "a")) == NULL)
		return -1;
	setvbuf(f, NULL, _IOLBF, 0);
	if (log_out != NULL && log_out != stderr)
		fclose(log_out);
	log_out = f;
	return 0;
}

int
log_fd(void)
{
	return fileno(log_out ? log_out : stderr);
}

void
log_setlevel(enum log_level level)
{
	log_level_cur = level;
}

/*
 * One line, written with one fwrite: stderr is unbuffered, and printing the
 * stamp, the message and the newline apart cost three write(2)s a line --
 * under load a line for every feed, and pieces of two threads' lines could
 * interleave.
 */
static void
vlog(const char *level, const char *fmt, va_list ap, const char *suffix)
{
	static _Thread_local char ts[32];
	static _Thread_local time_t ts_sec = -1;
	char line[1024], *p = line, *big = NULL;
	struct timespec now;
	struct tm tm;
	FILE *out = log_out ? log_out : stderr;
	size_t head, len, slen = suffix != NULL ? strlen(suffix) + 2 : 0;
	va_list aq;
	int k;

	if (journald && out == stderr) {
		/* sd-daemon(3) priorities: err, warning, info, debug. */
		k = snprintf(line, sizeof(line), "<%c>", level[0] == 'f' ?
		    '3' : level[0] == 'w' ? '4' : level[0] == 'i' ? '6' : '7');
	} else {
		clock_gettime(CLOCK_REALTIME, &now);
		/*
		 * The seconds are formatted once a second, per thread: under
		 * load every feed logs a line, and gmtime_r + strftime were a
		 * third of the line's cost.
		 */
		if (now.tv_sec != ts_sec) {
			gmtime_r(&now.tv_sec, &tm);
			strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
			ts_sec = now.tv_sec;
		}
		k = snprintf(line, sizeof(line), "%s.%03ldZ %s ", ts,
		    now.tv_nsec / 1000000, level);
	}
	head = k > 0 ? (size_t)k : 0;
	va_copy(aq, ap);
	k = vsnprintf(line + head, sizeof(line) - head, fmt, ap);
	len = head + (k > 0 ? (size_t)k : 0);
	if (len + slen + 2 > sizeof(line)) {
		/* A long line (a definition's problems): on the heap, or cut. */
		if ((big = malloc(len + slen + 2)) != NULL) {
			memcpy(big, line, head);
			vsnprintf(big + head, len - head + 1, fmt, aq);
			p = big;
		} else {
			len = sizeof(line) - 2;
			slen = 0;
		}
	}
	va_end(aq);
	if (slen > 0) {
		memcpy(p + len, ": ", 2);
		memcpy(p + len + 2, suffix, slen - 2);
		len += slen;
	}
	p[len++] = '\n';
	fwrite(p, 1, len, out);
	fflush(out);
	free(big);
}

void
log_warn(const char *fmt, ...)
{
	const char *err = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	vlog("warn", fmt, ap, err);
	va_end(ap);
	va_start(ap, fmt);
	keep_for_starter(fmt, ap, err);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warn", fmt, ap, NULL);
	va_end(ap);
	va_start(ap, fmt);
	keep_for_starter(fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	if (log_level_cur < LOG_LEVEL_INFO)
		return;
	va_start(ap, fmt);
	vlog("info", fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (log_level_cur < LOG_LEVEL_DEBUG)
		return;
	va_start(ap, fmt);
	vlog("debug", fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	const char *err = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal", fmt, ap, err);
	va_end(ap);
	va_start(ap, fmt);
	tell_starter(fmt, ap, err);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal", fmt, ap, NULL);
	va_end(ap);
	va_start(ap, fmt);
	tell_starter(fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

/*
 * A flood of rejected connections must not become a flood of log lines: each
 * source may log LOG_BURST lines a second; the rest are counted and reported
 * in one line when the next second begins.
 */
#define LOG_BURST	10

struct limiter {
	const char	*source;
	time_t		 second;
	unsigned	 lines;
	unsigned long	 dropped;
};

static struct limiter limiters[4];

static void
vlimited(const char *level, const char *source, const char *fmt, va_list ap)
{
	struct limiter *l = NULL;
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < sizeof(limiters) / sizeof(limiters[0]); i++) {
		if (limiters[i].source == NULL)
			limiters[i].source = source;
		if (strcmp(limiters[i].source, source) == 0) {
			l = &limiters[i];
			break;
		}
	}
	if (l == NULL)
		l = &limiters[0];
	if (l->second != now) {
		if (l->dropped > 0)
			log_warnx("%s: %lu messages suppressed", source, l->dropped);
		l->second = now;
		l->lines = 0;
		l->dropped = 0;
	}
	if (l->lines >= LOG_BURST) {
		l->dropped++;
		return;
	}
	l->lines++;
	vlog(level, fmt, ap, NULL);
}

void
log_limited(const char *source, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlimited("warn", source, fmt, ap);
	va_end(ap);
}

void
log_info_limited(const char *source, const char *fmt, ...)
{
	va_list ap;

	if (log_level_cur < LOG_LEVEL_INFO)
		return;
	va_start(ap, fmt);
	vlimited("info", source, fmt, ap);
	va_end(ap);
}

void
log_diag(const struct tally_diag *diag)
{
	size_t i;

	for (i = 0; i < diag->count && i < diag->cap; i++)
		log_warnx("%s", diag->msgs[i]);
	if (diag->nomem)
		log_warnx("(%zu more problems could not be shown: out of memory)",
		    diag->count - diag->cap);
}
