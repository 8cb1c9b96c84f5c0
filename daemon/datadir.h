/*
 * datadir.h - one tallyd per data dir (datadir.c).  Main thread, at start-up
 * and exit only.
 */
#ifndef TALLYD_DATADIR_H
#define TALLYD_DATADIR_H

struct config;

/*
 * Lock the data dir (an flock on the directory, held by *dir_fd, and on
 * DATA_DIR/tallyd.lock, whose descriptor is returned, with our pid in it).
 * Exits naming the holder when another tallyd has it.
 */
int	datadir_lock(const char *dir, int *dir_fd);
/* Write our pid into the lock file (again, after a background start). */
void	datadir_note_pid(int lock_fd);
/* Serving: the pid into the lock file and DATA_DIR/tallyd.pid. */
void	datadir_write_pid(int lock_fd, const struct config *cf);
void	datadir_remove_pid(const struct config *cf);

#endif
