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
/* Start consuming after sequence `applied`, into c; on base's loop. */
int		 cluster_start(struct cluster *cl, struct event_base *base,
		    struct core *c, uint64_t applied);
void		 cluster_destroy(struct cluster *cl);
extern const struct core_log_ops cluster_log_ops;
/* The Tallyd-Node header's value for core c (a server_set_header fn). */
const char	*cluster_header(void *c);

#endif
