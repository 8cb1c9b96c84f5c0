/*
 * cluster.h - the replicated log on NATS JetStream (docs/CLUSTER.md):
 * cluster_join.c joins the stream, cluster.c consumes it and publishes.
 *
 * Threads: cluster_create runs on the main thread before the loop; every
 * other function here, and cluster_log_ops, on the loop thread [L].  The
 * threads libnats runs never call into the core: they hand items to the
 * loop (see cluster.c).
 */
#ifndef TALLYD_CLUSTER_H
#define TALLYD_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include <tally/tally.h>

#include "core.h"

struct config;
struct event_base;

struct cluster;

/* Whether this tallyd was built with libnats. */
bool		 cluster_supported(void);
/* Whether libnats can be opened now (it is not linked): 0, or -1 with diag. */
int		 cluster_library(struct tally_diag *diag);
/*
 * Connect to cf->cluster_urls and find or create the stream.  NULL with
 * diag.  The stream's identity (its creation time) is *epoch.
 */
struct cluster	*cluster_create(const struct config *cf,
		    const struct tally_election *e, uint64_t *epoch,
		    struct tally_diag *diag);
/* The same on the stream named stream (a further contest's: its own
 * stream, subjects tally.<its id>.>; cluster_contests.c). */
struct cluster	*cluster_create_stream(const struct config *cf,
		    const struct tally_election *e, const char *stream,
		    uint64_t *epoch, struct tally_diag *diag);
/* prefix.id with the characters a subject token may not hold made '_'
 * (NULL prefix: id alone).  New, or NULL without memory. */
char		*cluster_subject_token(const char *prefix, const char *id);
/* Start consuming after sequence `applied`, into c; on base's loop. */
int		 cluster_start(struct cluster *cl, struct event_base *base,
		    struct core *c, uint64_t applied);
/*
 * Stops its threads and closes its connection.  libnats' own threads end
 * only at nats_CloseAndWait, once for the process: while another cluster
 * (another contest's stream) lives, cl is kept, closed, and freed with the
 * last one.
 */
void		 cluster_destroy(struct cluster *cl);
extern const struct core_log_ops cluster_log_ops;
/* The Tallyd-Node header's value for core c (a server_set_header fn). */
const char	*cluster_header(void *c);

/*
 * cluster_contests.c - several contests in cluster mode (docs/CLUSTER.md,
 * "Several contests"): a JetStream stream per contest.  The first contest
 * is on the configured stream (cluster_stream, TALLY by default), as a
 * single-contest cluster is; every further one on a stream of its own,
 * named from the first's and its id, with its own subjects (tally.<id>.>),
 * epoch and sequence, hence its own versions.  _join on the main thread
 * before the loop; the rest on the loop thread [L] (or at exit).
 */
struct contests;
struct cluster_contests;

/*
 * The stream of contest i > 0: "<first>_<id>", a '.' of the id made '_'.
 * New, or NULL without memory.
 */
char		*cluster_contests_stream(const char *first, const char *id);
/*
 * Join the stream of every contest but the first, whose cluster main.c
 * made (first, borrowed): each core's chain takes its stream's epoch.
 * Two contests whose streams or subjects would be the same are refused.
 * NULL with diag (a start refused).
 */
struct cluster_contests *cluster_contests_join(struct contests *cs,
		    struct cluster *first, const struct config *cf,
		    struct tally_diag *diag);
/* Every contest's core on its stream (core_set_cluster), consumed from
 * its version on (after replay): -1 if one cannot be. */
int		 cluster_contests_start(struct cluster_contests *cc,
		    struct event_base *base);
/* NULL: a no-op. */
void		 cluster_contests_destroy(struct cluster_contests *cc);
/*
 * A reload in cluster mode (contests_reload.c): the contests served are
 * those of the start, since each is a stream every node consumes.  from[k]
 * as contests_rebuild takes it, es[k] the planned contests' definitions
 * (borrowed), n their count.  -1 with diag when
 * the set would change (nothing is changed), else 0; always 0 outside
 * cluster mode.
 */
int		 cluster_contests_check_reload(const struct contests *cs,
		    const size_t *from, const struct tally_election **es,
		    size_t n, struct tally_diag *diag);


#endif
