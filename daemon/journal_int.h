/*
 * journal_int.h - what journal.c (the writer thread and the appends) and
 * journal_replay.c (the segments at start, journal_open) share; nothing
 * else includes it.
 *
 * Who touches what: [I] immutable after journal_open; [L] the loop thread
 * only; [W] the writer thread only (the loop too before journal_start and
 * after journal_close has joined the writer); [M] under mu.
 */
#ifndef TALLYD_JOURNAL_INT_H
#define TALLYD_JOURNAL_INT_H

#include <sys/types.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journal.h"

struct event;

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

/* The acknowledged high-water mark's file (see journal_ack_write). */
#define JOURNAL_ACK_FILE	"journal.acked"
#define JOURNAL_ACK_SIZE	24

/* Monotonic seconds. */
double		 journal_mono_seconds(void);
/* write(2) until all of buf is written; 0 or -1 with errno. */
int		 journal_write_all(int fd, const char *buf, size_t len);
/* The version a record's payload begins with ({"version":N,...}), or 0. */
uint64_t	 journal_payload_version(const char *p, size_t len);
/* [W] Create the segment for `seq` and make it the one appended to. */
int		 journal_open_segment(struct journal *j, uint64_t seq,
		    struct result *res);
/* [W] (or [L] before journal_start): the mark moves to (seq, version). */
void		 journal_ack_write(struct journal *j, uint64_t seq,
		    uint64_t version);
/* Read DIR's mark: 0 and the mark, or -1 (none, or unreadable). */
int		 journal_ack_read(const char *dir, uint64_t *seq,
		    uint64_t *version);
#ifdef TALLYD_FAILPOINTS
/* TALLYD_FAILPOINTS for the journal, read once at open. */
void		 journal_read_failpoints(struct journal *j);
#endif

#endif
