/*
 * journal.h - the feed journal on disk (journal.c: the writer thread and the
 * appends; journal_replay.c: the segments at start).
 *
 * Threads: journal_open, journal_append_now and journal_start run on the
 * main thread before the loop; after journal_start, every function here is
 * the loop thread's [L] (the writer thread is the journal's own, and calls
 * back only through `done`, on the loop), except journal_sync_histogram,
 * which any thread may call (relaxed atomics).  journal_close joins the
 * writer.
 */
#ifndef TALLYD_JOURNAL_H
#define TALLYD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/tally.h>

#include "config.h"	/* enum journal_policy: the `fsync` setting */

struct event_base;

struct journal;

struct journal_stats {
	uint64_t	snapshot_revisions;	/* read from a snapshot */
	size_t		snapshot_bytes;
	uint64_t	records;	/* replayed */
	size_t		bytes;
	size_t		bytes_dropped;	/* torn tail or --repair cut */
	size_t		segments;
	double		seconds;
	bool		repair_cut;
	uint64_t	repair_max_version;	/* highest version --repair dropped */
	uint64_t	end_version;	/* in: the snapshot's; out: the last record's */
	uint64_t	lost_records;	/* acknowledged, missing at the end (--repair) */
};

/*
 * Called on the loop when the writer is done with a job: err 0 and the
 * records now durable, or the errno of a failed write (nothing durable).
 * A rotation reports (0, 0).
 */
typedef void (*journal_done_cb)(void *arg, int err, size_t records);
/*
 * Applies one replayed record's payload: 0 or -1 with err; or 1: held, a
 * part of a unit applied with its last record (a batch across contests,
 * contests.c).  Held records the newest segment ends with are cut like a
 * torn tail (their unit was never acknowledged); before another segment
 * they are damage.
 */
typedef int (*journal_apply_cb)(void *arg, const char *payload, size_t len,
    struct tally_error *err);

#define JOURNAL_REPAIR	0x1	/* cut at a corrupt record instead of refusing */
#define JOURNAL_CHECK	0x2	/* read only: change nothing on disk */
#define JOURNAL_EMPTY_OK 0x4	/* start empty although a journal was there */

/*
 * Replay DIR's journal from sequence first_seq (what a snapshot does not
 * cover) through `apply`, then open it for appending (not with
 * JOURNAL_CHECK).  NULL with every problem in diag.
 */
struct journal	*journal_open(const char *dir, enum journal_policy policy,
		    long batch_ms, uint64_t first_seq, unsigned flags,
		    journal_apply_cb apply, void *arg, struct journal_stats *st,
		    struct tally_diag *diag);
/* Before journal_start: append and sync records now.  0 or -1. */
int		 journal_append_now(struct journal *j, const char *buf,
		    size_t len, size_t records);
/* Start the writer thread; `done` runs on the loop after each job. */
int		 journal_start(struct journal *j, struct event_base *base,
		    journal_done_cb done, void *arg);
/* Hand one buffer of records (taken) to the writer. -1 if a job is out. */
int		 journal_submit(struct journal *j, char *buf, size_t len,
		    size_t records);
/* Move to a new segment at the next sequence, on the writer. -1 if busy. */
int		 journal_rotate(struct journal *j);
bool		 journal_busy(const struct journal *j);
/* Seconds the job now out has been with the writer; 0 when none is. */
double		 journal_busy_for(const struct journal *j);
uint64_t	 journal_next_seq(const struct journal *j);
/*
 * Stop the writer (it syncs what the policy left unsynced) and close.
 * -1 when a sync failed: then what was written is not known to be durable.
 */
int		 journal_close(struct journal *j);
const char	*journal_policy_name(enum journal_policy p);
/* fdatasync latency histogram: upper bounds in seconds, then +Inf. */
#define JOURNAL_SYNC_BUCKETS	12
extern const double journal_sync_bounds[JOURNAL_SYNC_BUCKETS];
/* Per-bucket counts (not cumulative; JOURNAL_SYNC_BUCKETS + 1) and sum. */
void		 journal_sync_histogram(const struct journal *j,
		    uint64_t *buckets, double *sum);

#endif
