/*
 * snapshot.h - the whole tally in one file (snapshot.c), and when such
 * files are written (snapshot_sched.c).
 *
 * Threads: the loop thread [L] calls everything here; snapshot_write also
 * runs in a fork child of the loop (the snapshot and backup writers), which
 * only writes and exits.  The journal writer thread never calls it.
 */
#ifndef TALLYD_SNAPSHOT_H
#define TALLYD_SNAPSHOT_H

#include <sys/types.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/tally.h>

struct config;
struct core;
struct event;
struct event_base;
struct journal;
struct journal_stats;
struct json_t;

struct snapshot_store {
	int				 fd;	/* the loaded snapshot, or -1 */
	const struct tally_election	*election;	/* borrowed: the core's */
};

/*
 * Load the newest DATA_DIR/snapshot-*.snap into s (older revisions stay on
 * disk, readable through store); *next_seq is the first journal sequence
 * it does not cover (1 without a snapshot), *chain the core's record chain
 * at that point (unchanged without one), *stamps the views' stamps it
 * kept (core_stamps_dump; a new reference, or NULL).  -1 with diag.
 */
int	snapshot_load(const char *dir, struct tally_state *s, uint64_t *next_seq,
	    uint64_t *chain, struct json_t **stamps, struct snapshot_store *store,
	    struct journal_stats *stats, struct tally_diag *diag);
/* Write s as snapshot-<next_seq>.snap, atomically.  -1 with diag. */
int	snapshot_write(const char *dir, const struct tally_state *s,
	    uint64_t next_seq, uint64_t chain, struct json_t *stamps,
	    const struct snapshot_store *old,
	    struct tally_diag *diag);
/*
 * Remove older snapshots and the journal segments wholly before `keep`
 * (journal_closed: the journal ends at `keep`, so every segment that
 * starts before it is covered).
 */
void	snapshot_prune(const char *dir, uint64_t keep, bool journal_closed);
/* The tally_revision_loader for revisions kept in the loaded snapshot. */
struct tally_feed *snapshot_load_revision(void *ctx,
	    const struct tally_revision *rev, char *received_at);
void	snapshot_store_close(struct snapshot_store *store);
/*
 * The snapshot up to `seq` was written: older revisions it holds leave
 * memory and are read from it (the store moves to it).  -1 with diag, and
 * nothing changed.
 */
int	snapshot_adopt(const char *dir, uint64_t seq, struct tally_state *s,
	    struct snapshot_store *store, size_t *stored, struct tally_diag *diag);

/*
 * snapshot_sched.c: the periodic snapshot (every snapshot_every records,
 * while the log is idle, from a fork child, the journal rotating at the same
 * moment), the backup asked for by SIGUSR1 and the final snapshot at a clean
 * stop.  Owned by main (init/finish); every field is the loop's [L] unless
 * marked [I] (set once by snapshot_sched_start).
 */
struct snapshot_sched {
	const struct config	*cf;		/* [I] borrowed; read at each
						   tick (a reload changes it) */
	struct core		*core;		/* [I] borrowed */
	struct journal		*journal;	/* [I] borrowed; NULL: cluster */
	const char		*dir;		/* [I] borrowed: snapshots' dir */
	struct snapshot_store	 store;		/* [L] the loaded snapshot */
	uint64_t		 seq;		/* [L] covered by the newest one */
	pid_t			 pid;		/* [L] a snapshot being written */
	uint64_t		 pending_seq;	/* [L] ... up to this sequence */
	struct event		*ev_snapshot;	/* [L] every second */
	struct event		*ev_backup;	/* [L] a backup waiting/written */
	pid_t			 backup_pid;	/* [L] a backup being written */
	char			 backup_path[4200];
	uint64_t		 backup_version;
	bool			 stopping;	/* [L] no new snapshot or backup */
	/* [I] told when a backup ended (ok: written), for /metrics; NULL:
	 * nobody.  Set by main after snapshot_sched_start. */
	void			(*backup_done)(void *arg, bool ok);
	void			*backup_done_arg;
};

/* Before anything else (the store is closed, nothing scheduled). */
void	snapshot_sched_init(struct snapshot_sched *ss);
/* Start the timers on base (everything borrowed).  -1 without memory. */
int	snapshot_sched_start(struct snapshot_sched *ss, struct event_base *base,
	    const struct config *cf, struct core *core, struct journal *journal,
	    const char *dir);
/* SIGUSR1: write a backup once the log is idle (logged, never fails). */
void	snapshot_sched_backup(struct snapshot_sched *ss);
/* Stopping: no new periodic snapshot or backup. */
void	snapshot_sched_stop(struct snapshot_sched *ss);
/*
 * After the log closed: wait for the writers, then write the snapshot up to
 * `next` (unless the newest one covers it) and prune what it covers.
 */
void	snapshot_sched_final(struct snapshot_sched *ss, uint64_t next);
/* Free the timers and close the store. */
void	snapshot_sched_finish(struct snapshot_sched *ss);

#endif
