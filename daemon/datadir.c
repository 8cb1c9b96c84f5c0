/*
 * datadir.c - one tallyd per data dir: the lock on the directory (and on
 * tallyd.lock, which names the holder) and tallyd.pid.  Start-up and exit
 * only, on the main thread.  A refused lock is fatal: nothing has been
 * read or written yet, and the message says who holds the directory.
 */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "datadir.h"
#include "log.h"

/*
 * The pid holding an flock on the file open at fd, from /proc/locks (whose
 * lines read "1: FLOCK  ADVISORY  WRITE <pid> <maj>:<min>:<inode> 0 EOF",
 * device numbers in hex), or 0 when it cannot be told.  The pid is the one
 * that took the lock: for a background start that is the parent that has
 * since exited (the daemon is its grandchild), so a dead pid says nothing.
 */
static long
lock_holder(int fd)
{
	char line[256], mode[16], type[16];
	unsigned maj, min;
	unsigned long long ino;
	long pid, found = 0;
	struct stat st;
	FILE *f;

	if (fstat(fd, &st) == -1 || (f = fopen("/proc/locks", "re")) == NULL)
		return 0;
	while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
		/* "->" lines are waiters, not holders: their scan fails. */
		if (sscanf(line, "%*d: %15s %*s %15s %ld %x:%x:%llu", type, mode,
		    &pid, &maj, &min, &ino) == 6 && strcmp(type, "FLOCK") == 0 &&
		    maj == major(st.st_dev) && min == minor(st.st_dev) &&
		    ino == (unsigned long long)st.st_ino)
			found = pid;
	}
	fclose(f);
	if (found > 0 && kill((pid_t)found, 0) == -1 && errno == ESRCH)
		return 0;
	return found;
}

/* The lock file names its holder; a failure only costs the refusal's pid. */
void
datadir_note_pid(int lock_fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(lock_fd, 0) == -1 || pwrite(lock_fd, buf, (size_t)n, 0) != n)
		log_warn("cannot write the pid into the lock file");
}

/*
 * One daemon per data dir: two would interleave their journals and each
 * acknowledge what the other overwrites.  The lock is taken before anything
 * in the directory is read, and held (the descriptors stay open) until
 * exit; the kernel drops it if the process dies.
 *
 * The lock that counts is an flock on the data directory itself, open
 * O_DIRECTORY: nobody can remove the directory from under a running daemon
 * and keep its journal, whereas tallyd.lock can be deleted by a hand that
 * takes it for a stale leftover, and a lock on a file that is no longer
 * there stops nobody (the next daemon creates a new file and locks that).
 * tallyd.lock is still locked as well, for tools that look at it, and it
 * holds the pid so that the refusal can say who has the data dir (written
 * at once, not only once serving: a replay can take minutes, and the pid
 * of the run before would be named meanwhile); when it is gone,
 * /proc/locks or else tallyd.pid names the holder.
 */
int
datadir_lock(const char *dir, int *dir_fd)
{
	char path[4200], pid[32] = "";
	long holder;
	ssize_t n;
	int fd, dfd;

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		fatal("cannot open the data dir %s (check the data_dir "
		    "setting and its permissions)", dir);
	snprintf(path, sizeof(path), "%s/tallyd.lock", dir);
	if (flock(dfd, LOCK_EX | LOCK_NB) == 0) {
		if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
			fatal("cannot open %s (check the data_dir setting and "
			    "its permissions)", path);
		/* Held elsewhere only by a tallyd that predates the dir lock. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*dir_fd = dfd;
			datadir_note_pid(fd);
			return fd;
		}
		if (errno != EWOULDBLOCK)
			fatal("cannot lock %s", path);
	} else {
		if (errno != EWOULDBLOCK)
			fatal("cannot lock the data dir %s", dir);
		/* Only read: the holder's files are not ours to create. */
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd != -1 && (n = pread(fd, pid, sizeof(pid) - 1, 0)) > 0) {
		pid[n] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
	}
	if (pid[0] == '\0' && (holder = lock_holder(dfd)) > 0)
		snprintf(pid, sizeof(pid), "%ld", holder);
	if (pid[0] == '\0') {
		snprintf(path, sizeof(path), "%s/tallyd.pid", dir);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1 &&
		    (n = pread(fd, pid, sizeof(pid) - 1, 0)) > 0) {
			pid[n] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
		}
	}
	fatalx("data dir %s is in use by another tallyd (pid %s): stop it "
	    "first, or give this one its own --data-dir", dir,
	    pid[0] ? pid : "unknown");
}

void
datadir_write_pid(int lock_fd, const struct config *cf)
{
	char buf[32], path[4200];
	FILE *f;

	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	datadir_note_pid(lock_fd);
	/* tallyd.pid for scripts; the lock on the data dir is the authority. */
	snprintf(path, sizeof(path), "%s/tallyd.pid", cf->data_dir);
	if ((f = fopen(path, "w")) == NULL) {
		log_warn("cannot write %s", path);
		return;
	}
	fputs(buf, f);
	fclose(f);
}

void
datadir_remove_pid(const struct config *cf)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/tallyd.pid", cf->data_dir);
	unlink(path);
}
