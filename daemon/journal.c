/*
 * journal.c - the feed journal on disk: replay at start, then appends.
 *
 * Durability contract (docs/DURABILITY.md): a POST is answered 2xx only
 * after its record is written and, under the `always` policy, fdatasync'ed.
 * Writes and syncs run on one writer thread so that a slow disk never stalls
 * the event loop; the loop hands it one buffer at a time (every request that
 * arrived meanwhile shares it: group commit) and is woken through a pipe
 * when it is done.
 *
 * Errors, and why each is fatal or not (redis aof.c reasons the same way):
 * - a failing fsync is fatal: after a failed fsync the kernel may have
 *   dropped the dirty pages and report success next time, so nothing written
 *   since the last good sync can be trusted; we exit without acknowledging.
 * - a failing write (ENOSPC, EDQUOT, EIO) is not: the partial record is cut
 *   off again with ftruncate, the requests get 503, reads go on, and the
 *   next write tries again.  If the cut itself fails, the file's end is
 *   unknown: fatal.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "tallyd.h"

struct journal {
	char			*dir;
	int			 fd;		/* current segment, append */
	char			 path[4400];	/* current segment */
	off_t			 size;		/* end of the last good record */
	uint64_t		 next_seq;
	enum journal_policy	 policy;
	long			 batch_ms;

	/* Writer thread: one job at a time, guarded by mu. */
	pthread_t		 thread;
	bool			 thread_started;
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	bool			 quit;
	char			*job;		/* taken from the loop */
	size_t			 job_len;
	bool			 job_ready;
	int			 job_err;	/* errno of a failed write, or 0 */
	bool			 dirty;		/* written, not yet synced (batch) */

	int			 wake[2];	/* writer -> loop */
	struct event		*ev_wake;
	journal_done_cb		 done;
	void			*done_arg;
	bool			 busy;		/* a job is out */
	size_t			 job_records;

	/* Failure injection for tests: TALLYD_FAILPOINTS. */
	long			 fp_sync_delay_ms;
	bool			 fp_sync_fail;
	long			 fp_write_enospc;	/* fail the next N writes */
};

const char *
journal_policy_name(enum journal_policy p)
{
	switch (p) {
	case JOURNAL_ALWAYS:	return "always";
	case JOURNAL_BATCH:	return "batch";
	case JOURNAL_OFF:	return "off";
	}
	return "?";
}

/*
 * TALLYD_FAILPOINTS="sync_delay_ms=200,sync_fail,write_enospc=3": test hooks
 * that make the journal slow or fail on purpose.  Read once at start.
 */
static void
read_failpoints(struct journal *j)
{
	const char *env = getenv("TALLYD_FAILPOINTS");
	char buf[256], *tok, *save = NULL;

	if (env == NULL || env[0] == '\0')
		return;
	snprintf(buf, sizeof(buf), "%s", env);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strncmp(tok, "sync_delay_ms=", 14) == 0)
			j->fp_sync_delay_ms = atol(tok + 14);
		else if (strcmp(tok, "sync_fail") == 0)
			j->fp_sync_fail = true;
		else if (strncmp(tok, "write_enospc=", 13) == 0)
			j->fp_write_enospc = atol(tok + 13);
	}
	log_warnx("journal failpoints in force: %s", env);
}

/* Control the failpoints at run time: a file in the data dir (tests). */
static void
poll_failpoint_file(struct journal *j)
{
	char path[4300], line[64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/failpoint.enospc", j->dir);
	if ((f = fopen(path, "r")) == NULL) {
		if (j->fp_write_enospc < 0)
			j->fp_write_enospc = 0;
		return;
	}
	/* While the file exists every write fails with ENOSPC. */
	if (fgets(line, sizeof(line), f) == NULL || line[0] != '0')
		j->fp_write_enospc = -1;
	fclose(f);
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static double
mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Under `batch:<ms>`, written records are synced at most <ms> after the first
 * unsynced one, whether or not more keep arriving.
 */
static void
batch_sync_if_due(struct journal *j, double dirty_since)
{
	if (j->dirty && mono_seconds() - dirty_since >= (double)j->batch_ms / 1e3) {
		if (fdatasync(j->fd) == -1)
			fatal("journal %s: fdatasync", j->path);
		j->dirty = false;
	}
}

static void *
writer_main(void *arg)
{
	struct journal *j = arg;
	double dirty_since = 0;

	pthread_mutex_lock(&j->mu);
	for (;;) {
		char *job;
		size_t len;
		int err = 0;
		char one = 1;

		while (!j->job_ready && !j->quit) {
			if (j->policy == JOURNAL_BATCH && j->dirty) {
				struct timespec ts;
				double left = dirty_since + (double)j->batch_ms /
				    1e3 - mono_seconds();
				long ns = left > 0 ? (long)(left * 1e9) : 0;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += ns / 1000000000L;
				ts.tv_nsec += ns % 1000000000L;
				ts.tv_sec += ts.tv_nsec / 1000000000L;
				ts.tv_nsec %= 1000000000L;
				pthread_cond_timedwait(&j->cv, &j->mu, &ts);
				batch_sync_if_due(j, dirty_since);
			} else
				pthread_cond_wait(&j->cv, &j->mu);
		}
		if (j->quit && !j->job_ready)
			break;
		job = j->job;
		len = j->job_len;
		pthread_mutex_unlock(&j->mu);

		if (j->fp_write_enospc != 0) {
			if (j->fp_write_enospc > 0)
				j->fp_write_enospc--;
			/* Write half, as a full disk would, then fail. */
			if (write_all(j->fd, job, len / 2) == -1) {
				;
			}
			errno = ENOSPC;
			err = ENOSPC;
		} else if (write_all(j->fd, job, len) == -1)
			err = errno ? errno : EIO;
		if (err != 0) {
			/* Roll the partial record back (see the top). */
			if (ftruncate(j->fd, j->size) == -1 ||
			    lseek(j->fd, j->size, SEEK_SET) == -1)
				fatal("journal %s: cannot cut a failed write "
				    "back to %lld bytes", j->path,
				    (long long)j->size);
		} else if (j->policy == JOURNAL_ALWAYS) {
			if (j->fp_sync_delay_ms > 0) {
				struct timespec d = { j->fp_sync_delay_ms / 1000,
				    (j->fp_sync_delay_ms % 1000) * 1000000L };
				nanosleep(&d, NULL);
			}
			if (j->fp_sync_fail) {
				errno = EIO;
				fatal("journal %s: fdatasync (failpoint)", j->path);
			}
			if (fdatasync(j->fd) == -1)
				fatal("journal %s: fdatasync", j->path);
		}
		free(job);

		pthread_mutex_lock(&j->mu);
		if (err == 0) {
			j->size += (off_t)len;
			if (j->policy == JOURNAL_BATCH) {
				if (!j->dirty)
					dirty_since = mono_seconds();
				j->dirty = true;
				batch_sync_if_due(j, dirty_since);
			}
		}
		j->job = NULL;
		j->job_ready = false;
		j->job_err = err;
		pthread_mutex_unlock(&j->mu);
		while (write(j->wake[1], &one, 1) == -1 && errno == EINTR)
			;
		pthread_mutex_lock(&j->mu);
	}
	if (j->dirty && fdatasync(j->fd) == -1)
		log_warn("journal %s: fdatasync at exit", j->path);
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct journal *j = arg;
	char buf[64];
	int err;

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&j->mu);
	if (j->job_ready || !j->busy) {
		pthread_mutex_unlock(&j->mu);
		return;
	}
	err = j->job_err;
	pthread_mutex_unlock(&j->mu);
	j->busy = false;
	if (err == 0)
		j->next_seq += j->job_records;
	j->done(j->done_arg, err);
}

bool
journal_busy(const struct journal *j)
{
	return j->busy;
}

uint64_t
journal_next_seq(const struct journal *j)
{
	return j->next_seq;
}

int
journal_submit(struct journal *j, char *buf, size_t len, size_t records)
{
	if (j->busy) {
		free(buf);
		errno = EBUSY;
		return -1;
	}
	poll_failpoint_file(j);
	j->busy = true;
	j->job_records = records;
	pthread_mutex_lock(&j->mu);
	j->job = buf;
	j->job_len = len;
	j->job_ready = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return 0;
}

static int
segment_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Segment files "journal-<seq, 16 hex>.log", sorted by first sequence. */
static int
list_segments(const char *dir, char ***names, size_t *n)
{
	DIR *d;
	struct dirent *de;
	char **v = NULL, **nv;

	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l != 8 + 16 + 4 || strncmp(de->d_name, "journal-", 8) != 0 ||
		    strcmp(de->d_name + l - 4, ".log") != 0)
			continue;
		if ((nv = realloc(v, (*n + 1) * sizeof(*v))) == NULL)
			goto nomem;
		v = nv;
		if ((v[*n] = strdup(de->d_name)) == NULL)
			goto nomem;
		(*n)++;
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), segment_name_cmp);
	*names = v;
	return 0;
nomem:
	closedir(d);
	while (*n > 0)
		free(v[--(*n)]);
	free(v);
	errno = ENOMEM;
	return -1;
}

static void
free_names(char **names, size_t n)
{
	while (n > 0)
		free(names[--n]);
	free(names);
}

/*
 * Replay one segment into the state.  A torn tail is cut off (and synced);
 * a corrupt record in the middle stops the start, unless `repair`, which
 * cuts there and says how much was lost.
 */
static int
replay_segment(struct journal *j, const char *path, bool last,
    struct tally_state *s, bool repair, struct journal_stats *st,
    struct tally_diag *diag)
{
	struct tally_record rec;
	struct tally_error err;
	char *buf = NULL, why[128];
	size_t len = 0, off = 0, maplen = 0;
	struct stat sb;
	int fd;
	double last_report = mono_seconds();
	enum tally_scan sc;

	if ((fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) == -1 ||
	    fstat(fd, &sb) == -1) {
		tally_diag_add(diag, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	/*
	 * Map the segment instead of reading it: no copy, and pages are read
	 * ahead sequentially.  (An empty file cannot be mapped.)
	 */
	len = maplen = (size_t)sb.st_size;
	if (len > 0) {
		buf = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		if (buf == MAP_FAILED) {
			buf = NULL;
			tally_diag_add(diag, "%s: mmap: %s", path, strerror(errno));
			goto fail;
		}
		madvise(buf, len, MADV_SEQUENTIAL);
	}
	while ((sc = tally_journal_scan(buf, len, &off, &rec, why,
	    sizeof(why))) == TALLY_SCAN_RECORD) {
		if (rec.seq != j->next_seq) {
			snprintf(why, sizeof(why), "sequence %" PRIu64 " where %"
			    PRIu64 " was expected", rec.seq, j->next_seq);
			off = rec.offset;
			sc = TALLY_SCAN_CORRUPT;
			break;
		}
		if (tally_journal_apply(s, rec.payload, rec.len, &err) == -1) {
			tally_diag_add(diag, "%s: record %" PRIu64 " at offset "
			    "%zu cannot be applied: %s%s%s: %s", path, rec.seq,
			    rec.offset, err.code, err.field[0] ? " at " : "",
			    err.field, err.message);
			goto fail;
		}
		j->next_seq++;
		st->records++;
		if (mono_seconds() - last_report > 2.0) {
			last_report = mono_seconds();
			log_info("replaying %s: %zu of %zu bytes, %llu records",
			    path, off, len, (unsigned long long)st->records);
		}
	}
	if (sc == TALLY_SCAN_TORN && !last) {
		/* Only the newest segment can have been cut short. */
		sc = TALLY_SCAN_CORRUPT;
	}
	if (sc == TALLY_SCAN_TORN || (sc == TALLY_SCAN_CORRUPT && repair)) {
		if (sc == TALLY_SCAN_TORN)
			log_warnx("%s: torn tail at offset %zu (%s): dropping "
			    "%zu bytes that were never acknowledged", path, off,
			    why, len - off);
		else
			log_warnx("%s: --repair: corrupt record at offset %zu "
			    "(%s): cutting the journal there; %zu bytes after "
			    "it are lost (records from sequence %" PRIu64 " on)",
			    path, off, why, len - off, j->next_seq);
		if (ftruncate(fd, (off_t)off) == -1 || fsync(fd) == -1) {
			tally_diag_add(diag, "%s: cannot truncate to %zu: %s",
			    path, off, strerror(errno));
			goto fail;
		}
		st->bytes_dropped += len - off;
		len = off;
		if (sc == TALLY_SCAN_CORRUPT && !last) {
			/* Later segments follow the cut: they are lost too. */
			st->repair_cut = true;
		}
	} else if (sc == TALLY_SCAN_CORRUPT) {
		tally_diag_add(diag, "%s: corrupt record at offset %zu (%s); "
		    "%zu bytes follow it.  Refusing to start: results after "
		    "this point would be lost.  Inspect the file, or start "
		    "with --repair to cut the journal at this offset", path,
		    off, why, len - off);
		goto fail;
	}
	st->bytes += len;
	if (buf != NULL)
		munmap(buf, maplen);
	if (last) {
		j->fd = fd;
		j->size = (off_t)len;
		if (lseek(fd, 0, SEEK_END) == -1) {
			tally_diag_add(diag, "%s: lseek: %s", path,
			    strerror(errno));
			return -1;
		}
	} else
		close(fd);
	return 0;
fail:
	if (buf != NULL)
		munmap(buf, maplen);
	close(fd);
	return -1;
}

static int
new_segment(struct journal *j, struct tally_diag *diag)
{
	int fd;

	snprintf(j->path, sizeof(j->path), "%s/journal-%016" PRIx64 ".log",
	    j->dir, j->next_seq);
	/* O_APPEND: every write lands at the end, whatever happened before. */
	fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC,
	    0644);
	if (fd == -1 || fsync(fd) == -1 || fsync_dir(j->dir) == -1) {
		tally_diag_add(diag, "%s: cannot create: %s", j->path,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (j->fd != -1)
		close(j->fd);
	j->fd = fd;
	j->size = 0;
	return 0;
}

struct journal *
journal_open(const char *dir, enum journal_policy policy, long batch_ms,
    uint64_t first_seq, struct tally_state *s, bool repair,
    struct journal_stats *st, struct tally_diag *diag)
{
	struct journal *j;
	char **names = NULL;
	size_t n = 0, i;
	double t0 = mono_seconds();

	if ((j = calloc(1, sizeof(*j))) == NULL || (j->dir = strdup(dir)) == NULL) {
		tally_diag_add(diag, "out of memory");
		free(j);
		return NULL;
	}
	j->fd = -1;
	j->wake[0] = j->wake[1] = -1;
	j->policy = policy;
	j->batch_ms = batch_ms > 0 ? batch_ms : 1000;
	j->next_seq = first_seq;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	read_failpoints(j);

	if (list_segments(dir, &names, &n) == -1) {
		tally_diag_add(diag, "%s: cannot list: %s", dir, strerror(errno));
		goto fail;
	}
	for (i = 0; i < n; i++) {
		char path[4300];
		uint64_t first = strtoull(names[i] + 8, NULL, 16);

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (first < first_seq) {
			/* Covered by the snapshot (left by a crash between
			 * writing it and pruning). */
			log_info("%s is covered by the snapshot; removing it", path);
			if (unlink(path) == -1)
				log_warn("cannot remove %s", path);
			continue;
		}
		if (st->repair_cut) {
			log_warnx("--repair: %s comes after the cut; renamed to "
			    "%s.lost", path, path);
			{
				char lost[4400];
				snprintf(lost, sizeof(lost), "%s.lost", path);
				if (rename(path, lost) == -1)
					log_warn("rename %s", path);
			}
			continue;
		}
		if (first != j->next_seq) {
			tally_diag_add(diag, "%s: starts at sequence %" PRIu64
			    " but %" PRIu64 " was expected: a segment is missing",
			    path, first, j->next_seq);
			goto fail;
		}
		if (replay_segment(j, path, i + 1 == n, s, repair, st, diag) == -1)
			goto fail;
		if (i + 1 == n)
			snprintf(j->path, sizeof(j->path), "%s", path);
		st->segments++;
	}
	if (j->fd == -1 && new_segment(j, diag) == -1)
		goto fail;
	free_names(names, n);
	names = NULL;
	st->seconds = mono_seconds() - t0;

	if (pipe2(j->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		tally_diag_add(diag, "pipe: %s", strerror(errno));
		goto fail;
	}
	return j;
fail:
	free_names(names, n);
	journal_close(j);
	return NULL;
}

int
journal_rotate(struct journal *j, struct tally_diag *diag)
{
	if (j->busy) {
		tally_diag_add(diag, "journal busy");
		return -1;
	}
	if (j->size == 0)
		return 0;	/* the segment already starts here */
	if (fdatasync(j->fd) == -1)
		fatal("journal %s: fdatasync", j->path);
	return new_segment(j, diag);
}

int
journal_start(struct journal *j, struct event_base *base, journal_done_cb done,
    void *arg)
{
	j->done = done;
	j->done_arg = arg;
	j->ev_wake = event_new(base, j->wake[0], EV_READ | EV_PERSIST, on_wake, j);
	if (j->ev_wake == NULL || event_add(j->ev_wake, NULL) == -1)
		return -1;
	if (pthread_create(&j->thread, NULL, writer_main, j) != 0)
		return -1;
	j->thread_started = true;
	return 0;
}

void
journal_close(struct journal *j)
{
	if (j == NULL)
		return;
	if (j->thread_started) {
		pthread_mutex_lock(&j->mu);
		j->quit = true;
		pthread_cond_signal(&j->cv);
		pthread_mutex_unlock(&j->mu);
		pthread_join(j->thread, NULL);
	}
	if (j->ev_wake != NULL)
		event_free(j->ev_wake);
	if (j->wake[0] != -1)
		close(j->wake[0]);
	if (j->wake[1] != -1)
		close(j->wake[1]);
	if (j->fd != -1) {
		if (j->policy != JOURNAL_ALWAYS && fdatasync(j->fd) == -1)
			log_warn("journal %s: fdatasync at close", j->path);
		close(j->fd);
	}
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j->dir);
	free(j);
}
