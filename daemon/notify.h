/*
 * notify.h - systemd's notification protocol over NOTIFY_SOCKET
 * (notify.c).
 *
 * Threads: the main and loop thread only [L]: its state (the socket, the
 * last STATUS=, the watchdog timer and check) is file-static, without a
 * lock.
 */
#ifndef TALLYD_NOTIFY_H
#define TALLYD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

/* Fills buf with the current STATUS= text. */
typedef void (*notify_status_fn)(void *arg, char *buf, size_t len);

/*
 * Read NOTIFY_SOCKET and WATCHDOG_USEC (and unset them, so that children
 * do not inherit them).  0 when absent or usable, -1 when unusable.
 */
int	notify_init(void);
bool	notify_enabled(void);
/* Send one message ("READY=1", "STOPPING=1"); best effort. */
void	notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STATUS=<text>, only when it changed. */
void	notify_status(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));
void	notify_reloading(void);
/* A loop timer: WATCHDOG=1 (when asked for) and the status from fn. */
int	notify_start(struct event_base *base, notify_status_fn fn, void *arg);
/*
 * Asked before every watchdog ping: false (with the reason in why) holds
 * the ping back, so that systemd restarts a service whose writer is stuck.
 */
typedef bool (*notify_check_fn)(void *arg, char *why, size_t len);
void	notify_set_watchdog_check(notify_check_fn fn, void *arg);
void	notify_finish(void);

#endif
