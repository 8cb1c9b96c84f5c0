/*
 * log.h - the daemon's logging (log.c).
 *
 * Threads: [L] the loop thread (and main before the loop starts, or a
 * snapshot child after its fork) for everything here, except fatal() and
 * fatalx(), which any thread may call: they end the process.  A line is
 * several stdio calls, so lines from two threads could interleave, and
 * log_reopen() closes the file under a writer on another thread: the
 * journal writer never logs (journal.c), and libnats' threads only call
 * fatalx() (cluster.c).
 */
#ifndef TALLYD_LOG_H
#define TALLYD_LOG_H

#include <stdbool.h>

struct tally_diag;

enum log_level { LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void	log_init(enum log_level level, const char *path);
int	log_reopen(const char *path);
void	log_setlevel(enum log_level level);
/* During a background start: fatal messages are written to fd too. */
void	log_startup_fd(int fd);
/* The descriptor the log writes to (kept open by a snapshot child). */
int	log_fd(void);
/* stderr is systemd's journal: lines carry "<prio>", no timestamp. */
bool	log_to_journal(void);
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Any thread. */
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
/*
 * For messages from libraries (libevent, libmicrohttpd): at most `burst`
 * lines per second per source, then one line saying how many were dropped.
 */
void	log_limited(const char *source, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* The same limit at info level (refused feeds: a flood is not a warning). */
void	log_info_limited(const char *source, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* Every problem of diag, one warning each (and how many did not fit). */
void	log_diag(const struct tally_diag *diag);

#endif
