/*
 * core.h - the commit core (core.c, core_local.c, core_cluster.c): the
 * election, the tally, the stamps, and the log behind them with its commit
 * protocol.
 *
 * Threads: every function here is called on the loop thread [L] only, and
 * every callback it makes (done, publish) runs there.  A snapshot child
 * reads core_state() after fork, nothing else.
 */
#ifndef TALLYD_CORE_H
#define TALLYD_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <tally/tally.h>

struct json_t;

struct core;

enum core_outcome_kind {
	CORE_APPLIED,		/* durable and applied as `version` */
	CORE_DUPLICATE,		/* every feed repeats what is applied */
	CORE_REJECTED,		/* err says why (stale, conflict, memory) */
	CORE_UNAVAILABLE,	/* the log could not write it (log_err) */
	CORE_STOPPING,		/* shutting down; not known to be durable */
};

struct core_outcome {
	enum core_outcome_kind	 kind;
	uint64_t		 version;
	const struct tally_error *err;
	int			 log_err;
	size_t			 n;		/* the request's feeds: */
	const size_t		*province;
	const uint64_t		*revision;
	const enum tally_check	*chk;
};

/* The answer to a core_submit; may run inside core_submit itself. */
typedef void (*core_done_fn)(void *ctx, const struct core_outcome *out);
/* A new version and the provinces whose views it changed (borrowed). */
typedef void (*core_publish_fn)(void *arg, uint64_t version,
    const size_t *changed, size_t n);

/* How far a log that others also write is behind, for /healthz. */
struct core_log_status {
	const char	*node;		/* this node's name */
	const char	*stream;
	const char	*leader;	/* the stream leader's server name */
	uint64_t	 log_last;	/* the last sequence the log reported */
	uint64_t	 lag;		/* log_last - version */
	bool		 stale;		/* cut off: no recent word from the log */
	bool		 connected;
	uint64_t	 unacked;	/* records published, not yet answered */
};

/*
 * The log behind the core: the local journal, or a replicated stream.
 *
 * The journal takes whole rounds (append) and answers with core_log_done;
 * the core applies a round when it is durable.  A replicated log (cluster
 * mode, daemon/cluster.c) orders records itself: the core hands it one
 * record per request (publish); the log answers core_log_acked(token) and
 * delivers every record of the log, ours and other nodes', in order through
 * core_log_record, which is where they are applied.  Exactly one of append
 * and publish is set.
 */
struct core_log_ops {
	const char	*name;
	/* Take `records` encoded records; core_log_done follows. */
	int		(*append)(void *log, char *buf, size_t len,
			    size_t records);
	uint64_t	(*next_seq)(void *log);
	bool		(*busy)(void *log);
	/*
	 * Publish one record payload (borrowed) for `province` whose feed is
	 * `f` (borrowed; NULL for a lot); core_log_acked(token) follows,
	 * once.  -1: not sent (no acknowledgement follows).
	 */
	int		(*publish)(void *log, const char *payload, size_t len,
			    size_t province, const struct tally_feed *f,
			    uint64_t expect_seq, void *token);
	void		(*status)(void *log, struct core_log_status *st);
};

enum core_ack {
	CORE_ACK_OK,		/* stored at seq (dup: an earlier copy is) */
	CORE_ACK_WRONG_LAST,	/* another record of the province is at seq */
	CORE_ACK_UNAVAILABLE,	/* not known to be stored */
};

/*
 * What a validator is made of: the version that last changed a view, a
 * digest of the history up to it and of the definition, and its journaled
 * time.  The same stamp never names two different bodies.
 */
struct core_stamp {
	uint64_t	version;
	uint64_t	digest;
	time_t		at;
	bool		sec_shared;	/* another version in the same second */
};

struct core_stats {
	uint64_t	feeds_applied;
	uint64_t	feeds_duplicate;
	uint64_t	log_failures;
	int		log_err;	/* the last write failed (errno), or 0 */
	time_t		log_err_at;	/* since when */
};

/* Takes e on every path; `path` is its file (for its time). */
struct core	*core_create(struct tally_election *e, const char *path,
		    struct tally_diag *diag);
void		 core_destroy(struct core *c);
/*
 * The log behind c, once, before anything is submitted; it chooses the
 * commit protocol: a journal (append) the group commit of core_local.c, the
 * cluster's stream (publish) core_cluster.c.  -1 when a log is set already
 * or without memory.
 */
int		 core_set_journal(struct core *c, const struct core_log_ops *ops,
		    void *log);
int		 core_set_cluster(struct core *c, const struct core_log_ops *ops,
		    void *log);
/*
 * The journal's completion (a journal_done_cb; arg: the core); only on a
 * core whose log appends (the local protocol; else fatal).
 */
void		 core_log_done(void *arg, int err, size_t records);
/*
 * A replicated log's answer to publish(token); on the loop.  These and
 * core_log_record, core_log_tick: only on a core whose log publishes (the
 * cluster protocol; else fatal).
 */
void		 core_log_acked(struct core *c, void *token, enum core_ack ack,
		    uint64_t seq, bool duplicate);
/*
 * The record at log position seq (payload borrowed), in log order, for
 * `province` (SIZE_MAX: not a province's subject).  Every node applies the
 * same records with the same decisions: version == seq afterwards.
 */
void		 core_log_record(struct core *c, uint64_t seq,
		    const char *payload, size_t len, size_t province);
/* Answer 503 to published records the log left waiting too long. */
void		 core_log_tick(struct core *c, time_t now);
/* The log's name and, for a replicated log, its status (else false). */
const char	*core_log_name(const struct core *c);
bool		 core_log_status(const struct core *c,
		    struct core_log_status *st);
/* Replay one record at start (a journal_apply_cb; arg: the core). */
int		 core_replay(void *arg, const char *payload, size_t len,
		    struct tally_error *err);
/* Start-up is over: every view's stamp becomes the current one. */
void		 core_started(struct core *c);
uint64_t	 core_chain(const struct core *c);
void		 core_set_chain(struct core *c, uint64_t chain);
/* Per province: [version, chain, at] of its stamp, for the snapshot; NULL
 * when not known.  _load takes them back (-1: unusable, current stamps). */
struct json_t	*core_stamps_dump(const struct core *c);
int		 core_stamps_load(struct core *c, const struct json_t *a);
/*
 * Submit a request's feeds (the array and the feeds are taken on every
 * path).  done(ctx, outcome) runs exactly once, now or when the round is
 * durable.  -1 (ENOMEM) without calling done.
 */
int		 core_submit(struct core *c, struct tally_feed **feeds, size_t n,
		    core_done_fn done, void *ctx);
/*
 * Submit a lot (taken on every path) for its province's pending tie: the
 * same queue, log and answer as feeds (one record, one version; chk[0]
 * NEW or DUPLICATE).  -1 (ENOMEM) without calling done.
 */
int		 core_submit_lot(struct core *c, struct tally_lot *lot,
		    core_done_fn done, void *ctx);
/*
 * Submit a call (declared or a retraction; taken on every path): the same
 * queue, log and answer as a lot (one record, one version).  -1 (ENOMEM)
 * without calling done.
 */
int		 core_submit_call(struct core *c, struct tally_call_op *op,
		    core_done_fn done, void *ctx);
/* The calls of the version just applied (core.c; fatal without memory). */
void		 core_calls_observe(struct core *c);
int		 core_subscribe(struct core *c, core_publish_fn fn, void *arg);
/*
 * Told every new version right after it is applied and before it is
 * published (subscribers), at replay too: the record payload that made it
 * (borrowed; NULL when the record took its version without being applied,
 * a refused record of the cluster's stream).  The transparency log
 * (tlogd.c) hangs here.  One hook; fn NULL removes it.
 */
typedef void (*core_version_fn)(void *arg, uint64_t version,
    const char *payload, size_t len);
void		 core_set_version_hook(struct core *c, core_version_fn fn,
		    void *arg);
/*
 * Take e (on every path) as the election in force, with a new empty
 * tally; refused (-1 with diag) once anything is counted or waits.
 */
int		 core_swap_definition(struct core *c, struct tally_election *e,
		    const char *path, struct tally_diag *diag);
/*
 * Take from the queue what the log can take now.  A log shared by several
 * cores (one journal for every contest, contests.c) kicks each core after
 * another core's round, since only its own completion kicks a core.
 */
void		 core_kick(struct core *c);
/*
 * Every record c writes from now on carries "contest": id (copied) as its
 * last member, so that replay hands it to the same contest (contests.c).
 * NULL: none (one contest).  -1 without memory.
 */
int		 core_set_contest(struct core *c, const char *id);
const char	*core_contest(const struct core *c);
/*
 * A part of a batch across contests (contests_batch.c; the local protocol
 * only), while the journal holds no round of c and until the part's job is
 * done starts none.  _check: the feeds (taken on every path) against the
 * applied state, as a round checks them: a request (new) that done(ctx)
 * answers once it is started and its job completes, with *has_new; NULL
 * with err (*bad: the feed refused, SIZE_MAX: memory).  _checks: its
 * decision per feed.  _encode: its record, part `part` of `of` (the member
 * "batch": [part, of] before "contest"), numbered seq, at the end of *buf;
 * -1 without memory.  _start: it becomes c's round (encoded, its job
 * handed to the journal).  _free: dropped unanswered (not started).
 */
struct pending;
struct pending	*core_part_check(struct core *c, struct tally_feed **feeds,
		    size_t n, core_done_fn done, void *ctx, bool *has_new,
		    size_t *bad, struct tally_error *err);
const enum tally_check *core_part_checks(const struct pending *p);
int		 core_part_encode(struct core *c, struct pending *p,
		    size_t part, size_t of, uint64_t seq, const char *at,
		    char **buf, size_t *len, size_t *cap);
void		 core_part_start(struct core *c, struct pending *p);
void		 core_part_free(struct pending *p);
/* Stop: new submissions are answered CORE_STOPPING; the queue goes on. */
void		 core_drain(struct core *c);
/* Stop now: everything waiting is answered CORE_STOPPING. */
void		 core_abandon(struct core *c);
bool		 core_idle(const struct core *c);	/* nothing waits */
bool		 core_round_idle(const struct core *c);	/* nothing in the log */
struct tally_state *core_state(struct core *c);
const struct tally_election *core_election(const struct core *c);
/* SIZE_MAX: the whole tally's stamp; else a province's. */
const struct core_stamp *core_stamp(const struct core *c, size_t province);
uint64_t	 core_definition_digest(const struct core *c);
time_t		 core_definition_time(const struct core *c);
const struct core_stats *core_stats(const struct core *c);

#endif
