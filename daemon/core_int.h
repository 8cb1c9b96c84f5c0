/*
 * core_int.h - what core.c shares with the two commit protocols
 * (core_local.c, core_cluster.c), and nothing else includes.
 *
 * Everything here is touched on the loop thread only [L].
 *
 * core.c owns what both protocols share: the election and the tally, the
 * stamps and the record chain, the subscribers, the queue of requests
 * waiting for a round, and the answers.  A protocol owns how a queued
 * request becomes durable: its own state, opaque to core.c and to the other
 * protocol (core_local.c: the round in the journal; core_cluster.c: the
 * records published and their acknowledgements), reached through one
 * `struct core_protocol`.  Exactly one protocol is in force, chosen by
 * core_set_journal or core_set_cluster (the log main.c has), and a log callback of one protocol
 * refuses to run on a core of the other (core_local_of, core_cluster_of):
 * the cluster lot crash came from a path written for one protocol being run
 * by the other.
 */
#ifndef TALLYD_CORE_INT_H
#define TALLYD_CORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core.h"

/* One request: its feeds (or a lot), answered once through done. */
struct pending {
	struct pending		 *next;
	core_done_fn		  done;		/* NULL: answered already */
	void			 *ctx;
	struct tally_feed	**feeds;	/* owned until applied */
	struct tally_lot	 *lot;		/* a lot request (n 1, no feeds) */
	struct tally_call_op	 *call;		/* a call request (n 1, no feeds;
						   tally/calls.h) */
	enum tally_check	 *chk;
	size_t			 *province;	/* per feed, kept for the answer */
	uint64_t		 *revision;
	size_t			  n;
	bool			  has_new;	/* writes a record */
	uint64_t		  version;	/* when has_new */
	uint64_t		  chain;	/* the chain after its record */
	char			  at[32];	/* received_at of its record */
	char			 *rec;		/* its record's payload, for the
						   version hook (owned) */
	size_t			  rec_len;
	/* Cluster mode: a record published, waiting for its place. */
	bool			  acked;	/* the log stored it at seq */
	bool			  dup;		/* ... an earlier copy of it */
	uint64_t		  seq;
	uint64_t		  wait_seq;	/* re-check once applied this far */
	unsigned		  attempts;
	time_t			  sent;
};

struct core;

/*
 * A commit protocol: how the requests of the queue become durable, are
 * applied and answered.  Loop thread only.
 */
struct core_protocol {
	const char	*name;
	/* Its state, sized for e; NULL (ENOMEM). */
	void		*(*create)(const struct tally_election *e);
	/* Frees the state and any request it still holds (answered). */
	void		 (*destroy)(void *st);
	/* Take from the queue what the log can take now. */
	void		 (*kick)(struct core *c);
	/* Does a request handed to the log still owe an answer? */
	bool		 (*owes)(const struct core *c);
	/*
	 * Stop now: every request handed to the log is answered
	 * CORE_STOPPING (and still applied if it becomes durable).
	 */
	void		 (*abandon)(struct core *c);
};

extern const struct core_protocol core_local_protocol;	/* core_local.c */
extern const struct core_protocol core_cluster_protocol; /* core_cluster.c */

/*
 * The protocol and the log behind c, once, before anything is submitted
 * (core_set_journal and core_set_cluster, in the protocols' own files, so
 * that core.c names neither).  -1 when one is set already or without
 * memory.
 */
int	core_set_protocol(struct core *c, const struct core_protocol *proto,
	    const struct core_log_ops *ops, void *log);

struct subscriber {
	core_publish_fn		 fn;
	void			*arg;
};

struct core {
	struct tally_election	*election;	/* owned */
	struct tally_state	*state;		/* owned */
	uint64_t		 def_digest;
	time_t			 def_mtime;
	uint64_t		 chain;		/* over every applied record */
	struct core_stamp	 global;
	struct core_stamp	*stamps;	/* per province */
	/*
	 * Per province, the record chain at its stamp's version: with the
	 * version and time it is what the snapshot keeps, so that a view's
	 * stamp after a restart, or on another node, is the one it had (a
	 * pure function of the log's prefix, not of when the process began).
	 * stamps_known false: not known (a snapshot written before it was
	 * kept), every view takes the current stamp at core_started.
	 */
	uint64_t		*chains;
	bool			 stamps_known;
	size_t			*changed;	/* scratch: n_provinces */
	struct subscriber	 subs[4];
	size_t			 n_subs;
	core_version_fn		 on_version;	/* core_set_version_hook */
	void			*on_version_arg;

	const struct core_log_ops *log_ops;	/* borrowed */
	void			*log;
	const struct core_protocol *proto;	/* NULL until core_set_journal/_cluster */
	void			*proto_state;	/* proto's own, owned */
	struct pending		*queue;
	struct pending	       **queue_tail;
	bool			 stopping;
	struct core_stats	 stats;
	char			*contest;	/* tag of its records; NULL:
						   none (core_set_contest) */
};

/* A request of n entries, answered by done(ctx); NULL (ENOMEM). */
struct pending	*core_pending_new(size_t n, core_done_fn done, void *ctx);
void		 core_pending_free(struct pending *p);
/* Answer p (once) with kind; the version is the applied state's. */
void		 core_answer_kind(struct core *c, struct pending *p,
		    enum core_outcome_kind kind, const struct tally_error *err,
		    int log_err);
/* The success answer: APPLIED when p wrote a record, else DUPLICATE. */
void		 core_answer_ok(struct core *c, struct pending *p);
/*
 * Feed i of p against the applied state (revision, lists, effect), the one
 * check both protocols make before a record is written.  0 (p->chk[i] set),
 * or -1 with err.
 */
int		 core_check_feed(struct core *c, struct pending *p, size_t i,
		    const char *what, struct tally_error *err);
/* Move the stamps of c->changed[0..n) to the state's version, and tell. */
void		 core_publish_changed(struct core *c, size_t n, time_t at);
/*
 * Tell the version hook of version v made by the record payload (borrowed):
 * without its contest member (core_set_contest), which the transparency
 * log's entries do not take from a record (lib/tlog.c adds its own).
 */
void		 core_tell_version(struct core *c, uint64_t version,
		    const char *payload, size_t len);
/* An RFC 3339 time as the journal writes it; 0 when not one. */
time_t		 core_parse_time(const char *rfc3339);
/* The whole queue (taken: the queue is left empty). */
struct pending	*core_queue_take(struct core *c);
/* Put the list head..*tail back at the front of the queue (tail: the
 * address of the last request's next). */
void		 core_queue_put_back(struct core *c, struct pending *head,
		    struct pending **tail);

#ifdef TALLYD_FAILPOINTS
const char	*core_failpoint_engine(char *buf, size_t size);
int		 core_failpoint_engine_error(const char *pid,
		    struct tally_error *err);
#endif

#endif
