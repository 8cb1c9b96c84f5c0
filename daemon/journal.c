/*
 * journal.c - the feed journal on disk: replay at start, then appends.
 *
 * Durability contract (docs/ARCHITECTURE.md, "Durability"): a POST is
 * answered 2xx only after its record is written and, under the `always`
 * policy, fdatasync'ed.  Writes and syncs run on one writer thread so that a
 * slow disk never stalls the event loop; the loop hands it one job at a time
 * (every request that arrived meanwhile shares it: group commit) and is woken
 * through a pipe when it is done.
 *
 * The writer's contract, as redis's bio.c keeps it:
 * - a job carries everything it needs (the bytes, or the sequence a new
 *   segment starts at); the segment's descriptor belongs to the writer from
 *   journal_start to journal_close, so rotation and close happen there too;
 * - no lock is held across I/O: the mutex guards only the job slot and the
 *   result slot;
 * - the writer never logs and never exits: it reports an error in the result
 *   slot, and the loop alone decides what to do (on_wake).
 *
 * Errors, and why each is fatal or not (redis aof.c reasons the same way):
 * - a failing fsync is fatal: after a failed fsync the kernel may have
 *   dropped the dirty pages and report success next time, so nothing written
 *   since the last good sync can be trusted; the loop exits without
 *   acknowledging.
 * - a failing write (ENOSPC, EDQUOT, EIO) is not: the partial record is cut
 *   off again with ftruncate, the requests get 503, reads go on, and the
 *   next write tries again.  If the cut itself fails, the file's end is
 *   unknown: fatal.
 *
 * Who touches what: [I] immutable after journal_open; [L] the loop thread
 * only; [W] the writer thread only (the loop too before journal_start and
 * after journal_close has joined the writer); [M] under mu.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "tallyd.h"

enum job_kind { JOB_WRITE, JOB_ROTATE };

struct job {
	enum job_kind	 kind;
	char		*buf;		/* JOB_WRITE: taken */
	size_t		 len;
	uint64_t	 seq;		/* JOB_ROTATE: the new segment's first;
					   JOB_WRITE: the sequence after it */
	uint64_t	 version;	/* JOB_WRITE: its last record's version */
};

struct result {
	int		 err;		/* errno of a failed write, or 0 */
	bool		 fatal;		/* the disk can no longer be trusted */
	char		 what[4700];	/* for the loop's fatal message */
};

struct journal {
	char			*dir;			/* [I] */
	enum journal_policy	 policy;		/* [I] */
	long			 batch_ms;		/* [I] */
	int			 wake[2];		/* [I] writer -> loop */

	uint64_t		 next_seq;		/* [L] */
	bool			 busy;			/* [L] a job is out */
	double			 busy_since;		/* [L] when it went out */
	struct job		 out;			/* [L] the job out */
	size_t			 out_records;		/* [L] */
	struct event		*ev_wake;		/* [L] */
	journal_done_cb		 done;			/* [L] */
	void			*done_arg;		/* [L] */
	bool			 rotate_pending;	/* [L] */

	/*
	 * The acknowledged high-water mark (DATA_DIR/journal.acked): the
	 * sequence after, and the version of, the last record written (and,
	 * under `always`, synced) before its requests were answered.  The
	 * journal may not end before it at the next start (see ack_check).
	 */
	int			 ack_fd;		/* [W] */
	uint64_t		 ack_seq;		/* [L] read at open */
	uint64_t		 ack_version;		/* [L] read at open */

	int			 fd;			/* [W] current segment */
	char			 path[4400];		/* [W] */
	off_t			 size;			/* [W] end of the last good record */
	bool			 dirty;			/* [W] written, not synced */
	double			 dirty_since;		/* [W] */

	pthread_t		 thread;		/* [L] */
	bool			 thread_started;	/* [L] */
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	bool			 quit;			/* [M] */
	struct job		 job;			/* [M] */
	bool			 job_ready;		/* [M] */
	struct result		 res;			/* [M] */
	bool			 res_ready;		/* [M] */
	bool			 res_fatal;		/* [M] sticky, also outside jobs */

	/*
	 * fdatasync latency, for /metrics: written by the writer, read by
	 * the loop, each counter on its own (relaxed atomics; a scrape may
	 * see a sync counted in a bucket before the sum, never torn).
	 */
	_Atomic uint64_t	 sync_buckets[JOURNAL_SYNC_BUCKETS + 1];
	_Atomic uint64_t	 sync_usec_sum;

#ifdef TALLYD_FAILPOINTS
	/* Failure injection for tests: TALLYD_FAILPOINTS. [I], and [W]. */
	long			 fp_sync_delay_ms;
	bool			 fp_sync_fail;
	long			 fp_write_enospc;	/* fail the next N writes */
#endif
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

#ifdef TALLYD_FAILPOINTS
/*
 * TALLYD_FAILPOINTS="sync_delay_ms=200,sync_fail,write_enospc=3": test hooks
 * that make the journal slow or fail on purpose.  Read once at start.  Built
 * only with -Dfailpoints=true (the test builds); a production binary has
 * none of this.
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

/* While DATA_DIR/failpoint.enospc exists, every write fails (tests). */
static bool
failpoint_file(const struct journal *j)
{
	char path[4300];

	snprintf(path, sizeof(path), "%s/failpoint.enospc", j->dir);
	return access(path, F_OK) == 0;
}

/*
 * [W] While DATA_DIR/failpoint.sync_hold exists, a sync waits before its
 * fdatasync, having created DATA_DIR/failpoint.sync_held: a test holds a
 * written record unsynced for as long as it needs and knows when it is
 * held, with no sleep to guess (tests).
 */
static void
failpoint_hold(const struct journal *j)
{
	struct timespec tick = { 0, 5 * 1000000L };
	char hold[4300], held[4300];
	int fd;

	snprintf(hold, sizeof(hold), "%s/failpoint.sync_hold", j->dir);
	if (access(hold, F_OK) != 0)
		return;
	snprintf(held, sizeof(held), "%s/failpoint.sync_held", j->dir);
	if ((fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) != -1)
		close(fd);
	while (access(hold, F_OK) == 0)
		nanosleep(&tick, NULL);
	(void)unlink(held);
}
#endif

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

/* The version a record's payload begins with ({"version":N,...}), or 0. */
static uint64_t
payload_version(const char *p, size_t len)
{
	uint64_t v = 0;
	size_t i;

	if (len < 12 || memcmp(p, "{\"version\":", 11) != 0)
		return 0;
	for (i = 11; i < len && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (uint64_t)(p[i] - '0');
	return v;
}

const double journal_sync_bounds[JOURNAL_SYNC_BUCKETS] = { 0.0005, 0.001,
    0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 };

static double
mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* [W] fdatasync the segment; false (with res filled) when it failed. */
static bool
writer_sync(struct journal *j, struct result *res)
{
	/* The failpoint's delay counts, so that a test sees a slow disk. */
	double t0 = mono_seconds(), dt;
	size_t b;

#ifdef TALLYD_FAILPOINTS
	failpoint_hold(j);
	if (j->fp_sync_delay_ms > 0) {
		struct timespec d = { j->fp_sync_delay_ms / 1000,
		    (j->fp_sync_delay_ms % 1000) * 1000000L };
		nanosleep(&d, NULL);
	}
	if (j->fp_sync_fail) {
		res->fatal = true;
		snprintf(res->what, sizeof(res->what), "journal %s: fdatasync: "
		    "%s (failpoint)", j->path, strerror(EIO));
		return false;
	}
#endif
	if (fdatasync(j->fd) == -1) {
		res->fatal = true;
		snprintf(res->what, sizeof(res->what), "journal %s: fdatasync: %s",
		    j->path, strerror(errno));
		return false;
	}
	dt = mono_seconds() - t0;
	for (b = 0; b < JOURNAL_SYNC_BUCKETS && dt > journal_sync_bounds[b]; b++)
		;
	atomic_fetch_add_explicit(&j->sync_buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&j->sync_usec_sum, (uint64_t)(dt * 1e6),
	    memory_order_relaxed);
	j->dirty = false;
	return true;
}

void
journal_sync_histogram(const struct journal *j, uint64_t *buckets,
    double *sum)
{
	size_t b;

	for (b = 0; b <= JOURNAL_SYNC_BUCKETS; b++)
		buckets[b] = atomic_load_explicit(&j->sync_buckets[b],
		    memory_order_relaxed);
	*sum = (double)atomic_load_explicit(&j->sync_usec_sum,
	    memory_order_relaxed) / 1e6;
}

/* [W] Create the segment for `seq` and make it the one appended to. */
static int
open_segment(struct journal *j, uint64_t seq, struct result *res)
{
	char path[sizeof(j->path)];
	int fd;

	snprintf(path, sizeof(path), "%s/journal-%016" PRIx64 ".log", j->dir, seq);
	/* O_APPEND: every write lands at the end, whatever happened before. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1 || fsync(fd) == -1 || fsync_dir(j->dir) == -1) {
		res->err = errno ? errno : EIO;
		snprintf(res->what, sizeof(res->what), "%s: cannot create: %s",
		    path, strerror(res->err));
		if (fd != -1) {
			close(fd);
			unlink(path);
		}
		return -1;
	}
	if (j->fd != -1)
		close(j->fd);
	j->fd = fd;
	j->size = 0;
	memcpy(j->path, path, sizeof(path));
	return 0;
}

/*
 * The marker: "TLA1", CRC32C of the 16 bytes after it, the next sequence
 * and the version (little endian).  One pwrite of 24 bytes at offset 0, not
 * synced of its own: it is written after the records it names are durable
 * (or, under batch/off, written), so it never runs ahead of what was
 * acknowledged; a power cut may leave it behind, which only weakens the
 * check (see docs/OPERATIONS.md, "Damage at the journal's end").
 */
#define ACK_FILE	"journal.acked"
#define ACK_SIZE	24

static void
put_le64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t
get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* [W] (or [L] before journal_start). */
static void
ack_write(struct journal *j, uint64_t seq, uint64_t version)
{
	unsigned char b[ACK_SIZE];
	uint32_t crc;

	if (j->ack_fd == -1)
		return;
	memcpy(b, "TLA1", 4);
	put_le64(b + 8, seq);
	put_le64(b + 16, version);
	crc = tally_crc32c(0, b + 8, 16);
	b[4] = (unsigned char)crc;
	b[5] = (unsigned char)(crc >> 8);
	b[6] = (unsigned char)(crc >> 16);
	b[7] = (unsigned char)(crc >> 24);
	/* A failure only weakens the next start's check: not fatal. */
	if (pwrite(j->ack_fd, b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		;
	}
}

/* Read the marker: 0 and the mark, or -1 (none, or unreadable). */
static int
ack_read(const char *dir, uint64_t *seq, uint64_t *version)
{
	char path[4300];
	unsigned char b[ACK_SIZE];
	uint32_t crc;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/" ACK_FILE, dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = pread(fd, b, sizeof(b), 0);
	close(fd);
	if (n != (ssize_t)sizeof(b) || memcmp(b, "TLA1", 4) != 0)
		return -1;
	crc = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 |
	    (uint32_t)b[7] << 24;
	if (crc != tally_crc32c(0, b + 8, 16))
		return -1;
	*seq = get_le64(b + 8);
	*version = get_le64(b + 16);
	return 0;
}

/* The version of the last record in buf (records as encoded), or 0. */
static uint64_t
last_version(const char *buf, size_t len)
{
	struct tally_record rec;
	size_t off = 0;
	uint64_t v = 0;
	char why[64];

	while (tally_journal_scan(buf, len, &off, &rec, why, sizeof(why)) ==
	    TALLY_SCAN_RECORD)
		v = payload_version(rec.payload, rec.len);
	return v;
}

/* [W] One job, with no lock held. */
static void
writer_run(struct journal *j, struct job *job, struct result *res)
{
	int err = 0;

	if (job->kind == JOB_ROTATE) {
		/* The old segment is complete: sync it before moving on. */
		if (j->size == 0)
			return;		/* the segment already starts here */
		if ((j->dirty || j->policy != JOURNAL_ALWAYS) &&
		    !writer_sync(j, res))
			return;
		open_segment(j, job->seq, res);
		return;
	}
#ifdef TALLYD_FAILPOINTS
	if (j->fp_write_enospc != 0 || failpoint_file(j)) {
		if (j->fp_write_enospc > 0)
			j->fp_write_enospc--;
		/* Write half, as a full disk would, then fail. */
		if (write_all(j->fd, job->buf, job->len / 2) == -1) {
			;
		}
		err = ENOSPC;
	} else
#endif
	if (write_all(j->fd, job->buf, job->len) == -1)
		err = errno ? errno : EIO;
	if (err != 0) {
		/* Roll the partial record back (see the top). */
		res->err = err;
		if (ftruncate(j->fd, j->size) == -1 ||
		    lseek(j->fd, j->size, SEEK_SET) == -1) {
			res->fatal = true;
			snprintf(res->what, sizeof(res->what), "journal %s: cannot "
			    "cut a failed write back to %lld bytes: %s", j->path,
			    (long long)j->size, strerror(errno));
		}
		return;
	}
	j->size += (off_t)job->len;
	if (j->policy == JOURNAL_ALWAYS) {
		j->dirty = true;
		if (!writer_sync(j, res))
			return;
	} else if (j->policy == JOURNAL_BATCH && !j->dirty) {
		j->dirty = true;
		j->dirty_since = mono_seconds();
	}
	/* Durable (or, under batch/off, written): about to be answered. */
	ack_write(j, job->seq, job->version);
}

/*
 * Under `batch:<ms>`, written records are synced at most <ms> after the first
 * unsynced one, whether or not more keep arriving.  Returns with mu held.
 */
static void
writer_batch_wait(struct journal *j)
{
	struct result res;
	struct timespec ts;
	double left = j->dirty_since + (double)j->batch_ms / 1e3 - mono_seconds();

	if (left > 0) {
		long ns = (long)(left * 1e9);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += ns / 1000000000L;
		ts.tv_nsec += ns % 1000000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&j->cv, &j->mu, &ts);
		if (j->job_ready || j->quit ||
		    mono_seconds() - j->dirty_since < (double)j->batch_ms / 1e3)
			return;
	}
	/* Due: sync without the lock, so that submit never waits on it. */
	memset(&res, 0, sizeof(res));
	pthread_mutex_unlock(&j->mu);
	writer_sync(j, &res);
	pthread_mutex_lock(&j->mu);
	if (res.fatal && !j->res_fatal) {
		/* Not a job's answer: the loop learns it at the next wake. */
		j->res_fatal = true;
		j->res = res;
		j->res_ready = true;
		pthread_mutex_unlock(&j->mu);
		while (write(j->wake[1], "!", 1) == -1 && errno == EINTR)
			;
		pthread_mutex_lock(&j->mu);
	}
}

static void *
writer_main(void *arg)
{
	struct journal *j = arg;

	pthread_mutex_lock(&j->mu);
	for (;;) {
		struct job job;
		struct result res;

		while (!j->job_ready && !j->quit) {
			if (j->policy == JOURNAL_BATCH && j->dirty && !j->res_fatal)
				writer_batch_wait(j);
			else
				pthread_cond_wait(&j->cv, &j->mu);
		}
		if (!j->job_ready)
			break;		/* quit */
		job = j->job;
		pthread_mutex_unlock(&j->mu);

		memset(&res, 0, sizeof(res));
		writer_run(j, &job, &res);
		free(job.buf);

		pthread_mutex_lock(&j->mu);
		j->job_ready = false;
		if (!j->res_fatal)
			j->res = res;
		j->res_fatal = j->res_fatal || res.fatal;
		j->res_ready = true;
		pthread_mutex_unlock(&j->mu);
		while (write(j->wake[1], "", 1) == -1 && errno == EINTR)
			;
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	/* Leaving: what batch or off left unsynced goes to disk now. */
	if (j->policy != JOURNAL_ALWAYS && j->fd != -1 && fdatasync(j->fd) == -1) {
		pthread_mutex_lock(&j->mu);
		j->res_fatal = true;
		snprintf(j->res.what, sizeof(j->res.what), "journal %s: "
		    "fdatasync at exit: %s", j->path, strerror(errno));
		pthread_mutex_unlock(&j->mu);
	}
	return NULL;
}

/* [L] The writer finished a job (or found a fatal error on its own). */
static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct journal *j = arg;
	struct result res;
	char buf[64];
	bool ready;

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&j->mu);
	ready = j->res_ready && (!j->job_ready || j->res_fatal);
	res = j->res;
	if (ready)
		j->res_ready = false;
	pthread_mutex_unlock(&j->mu);
	if (!ready)
		return;
	if (res.fatal)
		/* See the top: nothing since the last good sync can be
		 * trusted, and nothing after it was acknowledged. */
		fatalx("%s; exiting without acknowledging: a restart replays "
		    "what is on disk", res.what);
	if (!j->busy)
		return;
	j->busy = false;
	if (j->out.kind == JOB_ROTATE) {
		j->rotate_pending = false;
		if (res.err != 0)
			log_warnx("%s; the journal stays in its segment", res.what);
		j->done(j->done_arg, 0, 0);
		return;
	}
	if (res.err == 0)
		j->next_seq += j->out_records;
	j->done(j->done_arg, res.err, res.err == 0 ? j->out_records : 0);
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

double
journal_busy_for(const struct journal *j)
{
	return j->busy ? mono_seconds() - j->busy_since : 0;
}

static void
hand_over(struct journal *j, const struct job *job)
{
	j->busy = true;
	j->busy_since = mono_seconds();
	j->out = *job;
	pthread_mutex_lock(&j->mu);
	j->job = *job;
	j->job_ready = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

int
journal_submit(struct journal *j, char *buf, size_t len, size_t records)
{
	struct job job = { JOB_WRITE, buf, len, j->next_seq + records,
	    last_version(buf, len) };

	if (j->busy) {
		free(buf);
		errno = EBUSY;
		return -1;
	}
	j->out_records = records;
	hand_over(j, &job);
	return 0;
}

int
journal_rotate(struct journal *j)
{
	struct job job = { JOB_ROTATE, NULL, 0, j->next_seq, 0 };

	if (j->busy) {
		errno = EBUSY;
		return -1;
	}
	j->out_records = 0;
	j->rotate_pending = true;
	hand_over(j, &job);
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
 * --repair: what a cut drops is saved to DATA_DIR/repair-<offset>-<name>.cut
 * (mode 0600) before the segment is truncated, and every intact record in
 * it is named in the log (sequence, version, provinces and revisions), so an
 * operator can see what to post again.  The highest version it held is
 * kept, so that no version number a client may have seen is reused.
 */
static void
name_dropped(const char *path, const char *buf, size_t from, size_t len,
    uint64_t *max_version)
{
	struct tally_record rec;
	char why[128];
	size_t off = from;

	while (off < len) {
		const char *m = memmem(buf + off, len - off, "TLJ1", 4);
		size_t at;
		json_t *root, *results, *entry;
		uint64_t version;
		char names[512];
		size_t i, used = 0;

		if (m == NULL)
			break;
		at = (size_t)(m - buf);
		off = at;
		if (tally_journal_scan(buf, len, &off, &rec, why, sizeof(why)) !=
		    TALLY_SCAN_RECORD) {
			off = at + 1;
			continue;
		}
		root = json_loadb(rec.payload, rec.len, 0, NULL);
		version = (uint64_t)json_integer_value(json_object_get(root,
		    "version"));
		if (version > *max_version)
			*max_version = version;
		results = json_object_get(root, "results");
		names[0] = '\0';
		json_array_foreach(results, i, entry) {
			int w = snprintf(names + used, sizeof(names) - used,
			    "%s%s revision %lld", i ? ", " : "",
			    json_string_value(json_object_get(entry, "province")),
			    (long long)json_integer_value(json_object_get(entry,
			    "revision")));
			if (w < 0 || (size_t)w >= sizeof(names) - used)
				break;
			used += (size_t)w;
		}
		log_warnx("--repair: %s drops record %" PRIu64 " (version %"
		    PRIu64 "): %s; post them again if they are still right",
		    path, rec.seq, version, names[0] ? names : "no results");
		json_decref(root);
	}
}

/*
 * A record's version and "province revision N, ..." into names (for the
 * messages that name a record); 0 when the payload says no version.
 */
static uint64_t
record_names(const char *payload, size_t len, char *names, size_t size)
{
	json_t *root = json_loadb(payload, len, 0, NULL), *entry;
	uint64_t version;
	size_t i, used = 0;

	names[0] = '\0';
	version = (uint64_t)json_integer_value(json_object_get(root,
	    "version"));
	json_array_foreach(json_object_get(root, "results"), i, entry) {
		int w = snprintf(names + used, size - used,
		    "%s%s revision %lld", i ? ", " : "",
		    json_string_value(json_object_get(entry, "province")),
		    (long long)json_integer_value(json_object_get(entry,
		    "revision")));
		if (w < 0 || (size_t)w >= size - used)
			break;
		used += (size_t)w;
	}
	json_array_foreach(json_object_get(root, "lots"), i, entry) {
		int w = snprintf(names + used, size - used, "%slot for %s",
		    used ? ", " : "", json_string_value(json_object_get(entry,
		    "province")));
		if (w < 0 || (size_t)w >= size - used)
			break;
		used += (size_t)w;
	}
	if (names[0] == '\0')
		snprintf(names, size, "no results");
	json_decref(root);
	return version;
}

static int
save_cut(const char *dir, const char *path, const char *buf, size_t from,
    size_t len, struct tally_diag *diag)
{
	char side[4600];
	const char *base = strrchr(path, '/');
	int fd;

	snprintf(side, sizeof(side), "%s/repair-%zu-%s.cut", dir, from,
	    base ? base + 1 : path);
	fd = open(side, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || write_all(fd, buf + from, len - from) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1) {
		tally_diag_add(diag, "%s: cannot save what --repair cuts: %s",
		    side, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	fsync_dir(dir);
	log_warnx("--repair: the %zu bytes cut from %s are kept in %s", len - from,
	    path, side);
	return 0;
}

struct replay {
	uint64_t		 apply_from;	/* records before it are in the snapshot */
	unsigned		 flags;
	journal_apply_cb	 apply;
	void			*arg;
	struct journal_stats	*st;
	struct tally_diag	*diag;
};

/*
 * Replay one segment.  A torn tail is cut off (and synced); a corrupt record
 * in the middle stops the start, unless JOURNAL_REPAIR, which cuts there and
 * says how much was lost.  With JOURNAL_CHECK nothing on disk changes.
 * Returns 1 when the journal was cut here (later segments are lost), 0, -1.
 */
static int
replay_segment(struct journal *j, const char *path, bool last,
    struct replay *rp)
{
	struct tally_record rec;
	struct tally_error err;
	char *buf = NULL, why[128];
	size_t len = 0, off = 0, maplen = 0;
	bool check = (rp->flags & JOURNAL_CHECK) != 0;
	bool repair = (rp->flags & JOURNAL_REPAIR) != 0;
	bool cut = false;
	struct stat sb;
	int fd;
	double last_report = mono_seconds();
	enum tally_scan sc;

	if ((fd = open(path, (check ? O_RDONLY : O_RDWR | O_APPEND) |
	    O_CLOEXEC)) == -1 || fstat(fd, &sb) == -1) {
		tally_diag_add(rp->diag, "%s: %s", path, strerror(errno));
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
			tally_diag_add(rp->diag, "%s: mmap: %s", path,
			    strerror(errno));
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
		/* A segment may begin before the snapshot's end. */
		if (rec.seq >= rp->apply_from) {
			if (rp->apply(rp->arg, rec.payload, rec.len, &err) == -1) {
				char names[512];
				uint64_t version = record_names(rec.payload,
				    rec.len, names, sizeof(names));
				/*
				 * Intact but not applicable (a definition
				 * edited since, or an engine bug): every start
				 * would stop here.  The record was applied
				 * whole or not at all, so --repair can cut the
				 * journal at it like at a corrupt record.
				 */
				if (repair && err.kind != TALLY_ERROR_NOMEM) {
					snprintf(why, sizeof(why), "record %"
					    PRIu64 " (version %" PRIu64 ": %.40s) "
					    "cannot be applied: %.40s", rec.seq,
					    version, names, err.code);
					log_warnx("%s: record %" PRIu64 " at "
					    "offset %zu cannot be applied: %s: %s",
					    path, rec.seq, rec.offset, err.code,
					    err.message);
					off = rec.offset;
					sc = TALLY_SCAN_CORRUPT;
					break;
				}
				tally_diag_add(rp->diag, "%s: record %" PRIu64
				    " (version %" PRIu64 ": %s) at offset %zu "
				    "cannot be applied: %s%s%s: %s.  Refusing "
				    "to start: every start would stop at this "
				    "record.  Either fix the election definition "
				    "(was it changed since the record was "
				    "written?) and start again, or start with "
				    "--repair to cut the journal at this record "
				    "(add -n to see what it would cut; what is "
				    "cut is kept beside the journal and every "
				    "lost version is named)", path, rec.seq,
				    version, names, rec.offset, err.code,
				    err.field[0] ? " at " : "", err.field,
				    err.message);
				goto fail;
			}
			rp->st->records++;
		}
		j->next_seq++;
		{
			uint64_t v = payload_version(rec.payload, rec.len);
			if (v > rp->st->end_version)
				rp->st->end_version = v;
		}
		if (mono_seconds() - last_report > 2.0) {
			last_report = mono_seconds();
			log_info("replaying %s: %zu of %zu bytes, %llu records",
			    path, off, len, (unsigned long long)rp->st->records);
		}
	}
	if (sc == TALLY_SCAN_TORN && !last) {
		/* Only the newest segment can have been cut short. */
		sc = TALLY_SCAN_CORRUPT;
	}
	if (sc == TALLY_SCAN_TORN && j->next_seq < j->ack_seq) {
		/*
		 * What looks torn was acknowledged: the record at this offset
		 * (sequence next_seq) is below the high-water mark, so it was
		 * durable when its request was answered.  Damage, not a torn
		 * write: refuse, or with --repair cut here and name the loss.
		 */
		char torn[64];
		snprintf(torn, sizeof(torn), "%.60s", why);
		snprintf(why, sizeof(why), "%.60s; but records up to sequence %"
		    PRIu64 " were acknowledged", torn, j->ack_seq - 1);
		if (!repair) {
			tally_diag_add(rp->diag, "%s: damage at offset %zu, not "
			    "a torn write: the journal ends before sequence %" PRIu64
			    " but records up to sequence %" PRIu64 " (version %"
			    PRIu64 ") were acknowledged (%s " ACK_FILE "); %"
			    PRIu64 " acknowledged records are lost, versions %"
			    PRIu64 " to %" PRIu64 ".  Refusing to start.  "
			    "Restore the journal from a copy, or start with "
			    "--repair to accept the loss (every lost version "
			    "is named in the log and never reused)", path, off,
			    j->next_seq, j->ack_seq - 1, j->ack_version, j->dir,
			    j->ack_seq - j->next_seq, rp->st->end_version + 1,
			    j->ack_version);
			goto fail;
		}
		sc = TALLY_SCAN_CORRUPT;
	}
	if (sc == TALLY_SCAN_TORN || (sc == TALLY_SCAN_CORRUPT && repair)) {
		if (sc == TALLY_SCAN_TORN)
			log_warnx("%s: torn tail at offset %zu (%s): %s %zu bytes "
			    "that were never acknowledged (%s)", path, off, why,
			    check ? "a start would drop" : "dropping", len - off,
			    j->ack_seq > 0 ? "past the acknowledged mark" :
			    "no acknowledged mark in this data dir to prove it");
		else
			log_warnx("%s: --repair: corrupt record at offset %zu "
			    "(%s): %s the journal there; %zu bytes after it are "
			    "lost (records from sequence %" PRIu64 " on)%s",
			    path, off, why, check ? "would cut" : "cutting",
			    len - off, j->next_seq, last ? "" :
			    ", and so are the segments after this one");
		if (sc == TALLY_SCAN_CORRUPT) {
			name_dropped(path, buf, off, len, &rp->st->repair_max_version);
			if (!check && save_cut(j->dir, path, buf, off, len,
			    rp->diag) == -1)
				goto fail;
		}
		if (!check && (ftruncate(fd, (off_t)off) == -1 ||
		    fsync(fd) == -1)) {
			tally_diag_add(rp->diag, "%s: cannot truncate to %zu: %s",
			    path, off, strerror(errno));
			goto fail;
		}
		rp->st->bytes_dropped += len - off;
		len = off;
		if (sc == TALLY_SCAN_CORRUPT && !last) {
			rp->st->repair_cut = true;
			cut = true;
		}
	} else if (sc == TALLY_SCAN_CORRUPT) {
		tally_diag_add(rp->diag, "%s: corrupt record at offset %zu (%s); "
		    "%zu bytes follow it.  Refusing to start: results after "
		    "this point would be lost.  Inspect the file, or start "
		    "with --repair to cut the journal at this offset (add -n "
		    "to see what it would cut)", path, off, why, len - off);
		goto fail;
	}
	rp->st->bytes += len;
	if (buf != NULL)
		munmap(buf, maplen);
	if ((last || cut) && !check) {
		/* Appends continue here: the cut segment becomes the last. */
		if (j->fd != -1)
			close(j->fd);
		j->fd = fd;
		j->size = (off_t)len;
		snprintf(j->path, sizeof(j->path), "%s", path);
		if (lseek(fd, 0, SEEK_END) == -1) {
			tally_diag_add(rp->diag, "%s: lseek: %s", path,
			    strerror(errno));
			return -1;
		}
	} else
		close(fd);
	return cut ? 1 : 0;
fail:
	if (buf != NULL)
		munmap(buf, maplen);
	close(fd);
	return -1;
}

/*
 * After replay: the journal must reach the acknowledged high-water mark.  A
 * journal that ends, at a record boundary, before it lost acknowledged
 * records (a file cut short, a segment's end overwritten): refuse, or with
 * --repair name every lost version and keep the mark's version, so that the
 * version record skip_versions writes moves past all of them.  A torn or
 * corrupt last record below the mark was already handled in replay_segment.
 */
static int
ack_check(struct journal *j, struct replay *rp, bool nothing)
{
	bool repair = (rp->flags & JOURNAL_REPAIR) != 0;
	uint64_t v;

	if (j->next_seq >= j->ack_seq)
		return 0;
	if (nothing && (rp->flags & JOURNAL_EMPTY_OK)) {
		/* --empty: a new tally on purpose (and a new epoch). */
		log_warnx("--empty: records up to version %" PRIu64 " were "
		    "acknowledged in this data dir; the new tally starts "
		    "afresh", j->ack_version);
		j->ack_seq = j->ack_version = 0;
		return 0;
	}
	if (!repair && !rp->st->repair_cut) {
		tally_diag_add(rp->diag, "%s: the journal ends before sequence %"
		    PRIu64 " (version %" PRIu64 "), but records up to sequence %"
		    PRIu64 " (version %" PRIu64 ") were acknowledged (%s/"
		    ACK_FILE "): %" PRIu64 " acknowledged records are lost, "
		    "versions %" PRIu64 " to %" PRIu64 ".  This is damage (a "
		    "file cut short or overwritten), not a torn write.  "
		    "Refusing to start.  Restore the journal from a copy, or "
		    "start with --repair to accept the loss (every lost "
		    "version is named in the log and never reused)",
		    j->path[0] ? j->path : j->dir, j->next_seq,
		    rp->st->end_version, j->ack_seq - 1, j->ack_version, j->dir,
		    j->ack_seq - j->next_seq, rp->st->end_version + 1,
		    j->ack_version);
		return -1;
	}
	rp->st->lost_records = j->ack_seq - j->next_seq;
	log_warnx("--repair: DAMAGE: the journal ends before sequence %"
	    PRIu64 " but records up to sequence %" PRIu64 " were acknowledged: %"
	    PRIu64 " acknowledged records are lost, versions %" PRIu64 " to %"
	    PRIu64 "; the feeds they held must be posted again", j->next_seq,
	    j->ack_seq - 1, j->ack_seq - j->next_seq, rp->st->end_version + 1,
	    j->ack_version);
	for (v = rp->st->end_version + 1; v <= j->ack_version; v++)
		log_warnx("--repair: acknowledged version %" PRIu64 " is lost",
		    v);
	if (j->ack_version > rp->st->repair_max_version)
		rp->st->repair_max_version = j->ack_version;
	return 0;
}

struct journal *
journal_open(const char *dir, enum journal_policy policy, long batch_ms,
    uint64_t first_seq, unsigned flags, journal_apply_cb apply, void *arg,
    struct journal_stats *st, struct tally_diag *diag)
{
	struct journal *j;
	struct replay rp = { first_seq, flags, apply, arg, st, diag };
	bool check = (flags & JOURNAL_CHECK) != 0;
	char **names = NULL;
	size_t n = 0, i, start = 0;
	double t0 = mono_seconds();

	if ((j = calloc(1, sizeof(*j))) == NULL || (j->dir = strdup(dir)) == NULL) {
		tally_diag_add(diag, "out of memory");
		free(j);
		return NULL;
	}
	j->fd = -1;
	j->ack_fd = -1;
	j->wake[0] = j->wake[1] = -1;
	j->policy = policy;
	j->batch_ms = batch_ms > 0 ? batch_ms : 1000;
	j->next_seq = first_seq;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
#ifdef TALLYD_FAILPOINTS
	if (!check)
		read_failpoints(j);
#endif

	if (list_segments(dir, &names, &n) == -1) {
		tally_diag_add(diag, "%s: cannot list: %s", dir, strerror(errno));
		goto fail;
	}
	if (ack_read(dir, &j->ack_seq, &j->ack_version) == -1)
		j->ack_seq = j->ack_version = 0;
	/*
	 * Segments wholly before the snapshot (the next one starts at or
	 * before its end) are left by a crash between writing it and pruning:
	 * remove them.  The segment the snapshot ends in is replayed from its
	 * start, applying only the records after the snapshot.
	 */
	while (start + 1 < n && strtoull(names[start + 1] + 8, NULL, 16) <=
	    first_seq) {
		char path[4300];
		snprintf(path, sizeof(path), "%s/%s", dir, names[start]);
		if (!check) {
			log_info("%s is covered by the snapshot; removing it", path);
			if (unlink(path) == -1)
				log_warn("cannot remove %s", path);
		}
		start++;
	}
	if (start < n) {
		uint64_t first = strtoull(names[start] + 8, NULL, 16);
		if (first < first_seq)
			j->next_seq = first;
	}
	for (i = start; i < n; i++) {
		char path[4300];
		uint64_t first = strtoull(names[i] + 8, NULL, 16);
		int rc;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (st->repair_cut) {
			char lost[4400], *lbuf;
			size_t llen;
			snprintf(lost, sizeof(lost), "%s.lost", path);
			if (tally_read_file(path, &lbuf, &llen) == 0) {
				name_dropped(path, lbuf, 0, llen,
				    &st->repair_max_version);
				free(lbuf);
			}
			log_warnx("--repair: %s comes after the cut; %s %s", path,
			    check ? "would rename it to" : "renamed to", lost);
			if (!check && rename(path, lost) == -1)
				log_warn("rename %s", path);
			continue;
		}
		if (first > j->next_seq && i > start) {
			/*
			 * The segment before this one ends early.  It was
			 * complete when this one began (rotation syncs it
			 * first), so this is no torn write: acknowledged
			 * records are gone from its end.
			 */
			if (flags & JOURNAL_REPAIR) {
				log_warnx("--repair: DAMAGE: %s/%s ends before "
				    "sequence %" PRIu64 " but %s begins at %"
				    PRIu64 ": records %" PRIu64 " to %" PRIu64
				    " are lost; cutting the journal there",
				    dir, names[i - 1], j->next_seq, path, first,
				    j->next_seq, first - 1);
				st->repair_cut = true;
				i--;	/* this segment again, after the cut */
				continue;
			}
			tally_diag_add(diag, "%s/%s: damage: it ends before "
			    "sequence %" PRIu64 " but the next segment, %s, "
			    "begins at %" PRIu64 ": records %" PRIu64 " to %"
			    PRIu64 " are missing from its end (a segment "
			    "followed by a later one was complete when the "
			    "later one began: this is no torn write).  "
			    "Refusing to start.  Restore it from a copy, or "
			    "start with --repair to cut the journal there (the "
			    "later segments are renamed .lost and every lost "
			    "version is named)", dir, names[i - 1], j->next_seq,
			    path, first, j->next_seq, first - 1);
			goto fail;
		}
		if (first != j->next_seq) {
			if (i == start && first_seq == 1)
				tally_diag_add(diag, "%s: starts at sequence %"
				    PRIu64 ", but there is no snapshot to cover "
				    "the records before it: was a snapshot-*.snap "
				    "file removed from %s?  Put it back, or move "
				    "the journal away to start empty", path, first,
				    dir);
			else
				tally_diag_add(diag, "%s: starts at sequence %"
				    PRIu64 " but %" PRIu64 " was expected: the "
				    "segment journal-%016" PRIx64 ".log (or a "
				    "snapshot covering it) is missing from %s; "
				    "put it back before starting", path, first,
				    j->next_seq, j->next_seq, dir);
			goto fail;
		}
		rc = replay_segment(j, path, i + 1 == n, &rp);
		if (rc == -1)
			goto fail;
		st->segments++;
	}
	if (j->next_seq < first_seq) {
		/*
		 * The journal ends inside the snapshot: what it lacks, the
		 * snapshot holds.  Appends go to a new segment at the
		 * snapshot's sequence; appended to this one they would leave
		 * a gap in its sequence, which the next start takes for
		 * corruption.  (This segment, wholly before the snapshot, is
		 * removed at the next start.)
		 */
		j->next_seq = first_seq;
		if (!check && j->fd != -1) {
			close(j->fd);
			j->fd = -1;
		}
	}
	/*
	 * A data dir that once had a journal and now has neither a segment
	 * nor a snapshot lost them (a wrong volume mounted, files deleted):
	 * starting empty would serve an empty tally as if nothing had been
	 * counted.  Only on purpose.
	 */
	{
		char marker[4300];
		snprintf(marker, sizeof(marker), "%s/journal.started", dir);
		if (n == 0 && first_seq == 1 && access(marker, F_OK) == 0 &&
		    !(flags & JOURNAL_EMPTY_OK)) {
			tally_diag_add(diag, "%s had a journal (%s is there), but "
			    "no journal segment and no snapshot is left: restore "
			    "them from a backup, or start with --empty to begin "
			    "an empty tally on purpose", dir, marker);
			goto fail;
		}
		if (!check && access(marker, F_OK) == -1) {
			int mfd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (mfd == -1 || fsync(mfd) == -1)
				log_warn("cannot create %s", marker);
			if (mfd != -1)
				close(mfd);
			fsync_dir(dir);
		}
	}
	if (ack_check(j, &rp, n == 0 && first_seq == 1) == -1)
		goto fail;
	free_names(names, n);
	names = NULL;
	st->seconds = mono_seconds() - t0;
	if (check)
		return j;
	if (j->fd == -1) {
		struct result res;
		memset(&res, 0, sizeof(res));
		if (open_segment(j, j->next_seq, &res) == -1) {
			tally_diag_add(diag, "%s", res.what);
			goto fail;
		}
	}
	{
		char ack[4300];
		snprintf(ack, sizeof(ack), "%s/" ACK_FILE, dir);
		if ((j->ack_fd = open(ack, O_RDWR | O_CREAT | O_CLOEXEC,
		    0600)) == -1)
			log_warn("%s: cannot open; damage at the journal's end "
			    "will not be told from a torn write", ack);
		/* Past a --repair the version record moves the mark; a
		 * mark from before this feature, or behind, moves now. */
		if (j->ack_fd != -1 && !(flags & JOURNAL_REPAIR && 
		    st->lost_records > 0) && j->next_seq >= j->ack_seq)
			ack_write(j, j->next_seq, st->end_version);
	}
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
journal_append_now(struct journal *j, const char *buf, size_t len,
    size_t records)
{
	/* Before journal_start: the writer's fields are the loop's. */
	if (j->thread_started || write_all(j->fd, buf, len) == -1 ||
	    fdatasync(j->fd) == -1)
		return -1;
	j->size += (off_t)len;
	j->next_seq += records;
	ack_write(j, j->next_seq, last_version(buf, len));
	return 0;
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

int
journal_close(struct journal *j)
{
	int rc = 0;

	if (j == NULL)
		return 0;
	if (j->thread_started) {
		pthread_mutex_lock(&j->mu);
		j->quit = true;
		pthread_cond_signal(&j->cv);
		pthread_mutex_unlock(&j->mu);
		pthread_join(j->thread, NULL);
		/* The writer is gone: its fields are ours again. */
		if (j->res_fatal) {
			log_warnx("%s", j->res.what);
			rc = -1;
		}
	}
	if (j->ev_wake != NULL)
		event_free(j->ev_wake);
	if (j->wake[0] != -1)
		close(j->wake[0]);
	if (j->wake[1] != -1)
		close(j->wake[1]);
	if (j->fd != -1)
		close(j->fd);
	if (j->ack_fd != -1)
		close(j->ack_fd);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j->dir);
	free(j);
	return rc;
}
