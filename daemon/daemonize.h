/*
 * daemonize.h - tallyd --daemon (daemonize.c).
 */
#ifndef TALLYD_DAEMONIZE_H
#define TALLYD_DAEMONIZE_H

struct config;

/*
 * Detach, and return in the child; the parent waits for the child's word
 * (the write end of the pipe returned): "ok" once it listens and has
 * replayed, or the fatal message that stopped it, and exits with it.
 */
int	daemonize(const char *logpath);
/* The child is ready: say so on ready_fd (-1: not detached) and close it. */
void	daemonize_started(int ready_fd, const struct config *cf,
	    const char *election);

#endif
