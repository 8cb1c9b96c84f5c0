/*
 * journal.c - the feed journal on disk: the writer thread and the appends
 * (replay at start and journal_open: journal_replay.c).
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
#include <sys/stat.h>
#include <sys/types.h>

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

#include "journal.h"
#include "log.h"
#include "util.h"
#include "journal_int.h"

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
void
journal_read_failpoints(struct journal *j)
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

int
journal_write_all(int fd, const char *buf, size_t len)
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
uint64_t
journal_payload_version(const char *p, size_t len)
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

double
journal_mono_seconds(void)
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
	double t0 = journal_mono_seconds(), dt;
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
	dt = journal_mono_seconds() - t0;
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
int
journal_open_segment(struct journal *j, uint64_t seq, struct result *res)
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
void
journal_ack_write(struct journal *j, uint64_t seq, uint64_t version)
{
	unsigned char b[JOURNAL_ACK_SIZE];
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
int
journal_ack_read(const char *dir, uint64_t *seq, uint64_t *version)
{
	char path[4300];
	unsigned char b[JOURNAL_ACK_SIZE];
	uint32_t crc;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/" JOURNAL_ACK_FILE, dir);
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
		v = journal_payload_version(rec.payload, rec.len);
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
		journal_open_segment(j, job->seq, res);
		return;
	}
#ifdef TALLYD_FAILPOINTS
	if (j->fp_write_enospc != 0 || failpoint_file(j)) {
		if (j->fp_write_enospc > 0)
			j->fp_write_enospc--;
		/* Write half, as a full disk would, then fail. */
		if (journal_write_all(j->fd, job->buf, job->len / 2) == -1) {
			;
		}
		err = ENOSPC;
	} else
#endif
	if (journal_write_all(j->fd, job->buf, job->len) == -1)
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
		j->dirty_since = journal_mono_seconds();
	}
	/* Durable (or, under batch/off, written): about to be answered. */
	journal_ack_write(j, job->seq, job->version);
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
	double left = j->dirty_since + (double)j->batch_ms / 1e3 - journal_mono_seconds();

	if (left > 0) {
		long ns = (long)(left * 1e9);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += ns / 1000000000L;
		ts.tv_nsec += ns % 1000000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&j->cv, &j->mu, &ts);
		if (j->job_ready || j->quit ||
		    journal_mono_seconds() - j->dirty_since < (double)j->batch_ms / 1e3)
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
	return j->busy ? journal_mono_seconds() - j->busy_since : 0;
}

static void
hand_over(struct journal *j, const struct job *job)
{
	j->busy = true;
	j->busy_since = journal_mono_seconds();
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

int
journal_append_now(struct journal *j, const char *buf, size_t len,
    size_t records)
{
	/* Before journal_start: the writer's fields are the loop's. */
	if (j->thread_started || journal_write_all(j->fd, buf, len) == -1 ||
	    fdatasync(j->fd) == -1)
		return -1;
	j->size += (off_t)len;
	j->next_seq += records;
	journal_ack_write(j, j->next_seq, last_version(buf, len));
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
