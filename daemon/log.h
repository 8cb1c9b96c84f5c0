/*
 * log.h - the daemon's log (log.c): warnings, information, debug and fatal
 * messages, to a file, stderr or systemd's journal.
 *
 * Threads: the main and loop thread [L] (log_init, log_reopen, log_setlevel
 * and log_startup_fd only there, since they change the log's state without
 * a lock); a fork child may log before it exits.  The journal writer never
 * logs (it reports back to the loop), nor do libnats' threads after
 * cluster_create.
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
