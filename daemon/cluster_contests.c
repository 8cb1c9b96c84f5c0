/*
 * cluster_contests.c - several contests in cluster mode: a JetStream
 * stream per contest (docs/CLUSTER.md, "Several contests").
 *
 * Why a stream each, not one stream for all: a contest's version is its
 * log position, and every node must give the same bytes for the same
 * version of a contest.  On one shared stream a contest's versions would
 * be the positions of its records among every contest's (gaps where the
 * others posted), and posting to B would move nothing of A only if A
 * skipped B's positions.  A stream per contest keeps everything of the
 * single-contest design as it is: the version is the contest's own stream
 * sequence, its epoch is its stream's, its subjects (tally.<id>.<province>)
 * carry the per-province expected-sequence check, and the first contest's
 * stream is the one a single-contest cluster already has, so adding a
 * contest to a running cluster changes nothing of the first's.
 *
 * The price: a connection, a prober and a publisher thread per contest,
 * and no atomic batch across contests (two streams commit apart:
 * contests_batch.c refuses it in cluster mode).
 *
 * Main thread at start-up, then the loop thread [L].
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "config.h"
#include "contests.h"
#include "core.h"
#include "log.h"
#include "util.h"

struct cluster_contests {
	struct contests	*cs;		/* [I] borrowed */
	struct cluster	**v;		/* [I] v[i] contest i's: owned but
					   v[0], main.c's */
	size_t		 n;		/* [I] */
};

char *
cluster_contests_stream(const char *first, const char *id)
{
	char *s, *p;

	/* Stream names may hold neither '.', '*', '>', blanks nor '/'. */
	if (asprintf(&s, "%s_%s", first, id) == -1)
		return NULL;
	for (p = s + strlen(first) + 1; *p != '\0'; p++)
		if (*p == '.' || *p == '*' || *p == '>' || *p == ' ' ||
		    *p == '/' || *p == '\\')
			*p = '_';
	return s;
}

/*
 * Every contest's stream and subjects differ: ids a.b and a_b would share
 * both (a subject token cannot hold '.').  0, or -1 with diag.
 */
static int
names_differ(const struct contests *cs, char **streams,
    struct tally_diag *diag)
{
	size_t n = contests_count(cs), i, j;
	char **subj;
	int rc = 0;

	if ((subj = calloc(n, sizeof(*subj))) == NULL)
		goto nomem;
	for (i = 0; i < n; i++)
		if ((subj[i] = cluster_subject_token("tally",
		    contests_id(cs, i))) == NULL)
			goto nomem;
	for (i = 0; i < n && rc == 0; i++)
		for (j = 0; j < i && rc == 0; j++)
			if (strcmp(subj[i], subj[j]) == 0 ||
			    strcmp(streams[i], streams[j]) == 0) {
				tally_diag_add(diag, "cluster mode: contests %s "
				    "and %s would share the stream %s or the "
				    "subjects %s.> (a stream name or subject "
				    "cannot hold '.'): give one of them another "
				    "id", contests_id(cs, j), contests_id(cs, i),
				    streams[i], subj[i]);
				rc = -1;
			}
	for (i = 0; i < n; i++)
		free(subj[i]);
	free(subj);
	return rc;
nomem:
	for (i = 0; subj != NULL && i < n; i++)
		free(subj[i]);
	free(subj);
	tally_diag_add(diag, "cluster mode: out of memory");
	return -1;
}

struct cluster_contests *
cluster_contests_join(struct contests *cs, struct cluster *first_cl,
    const struct config *cf, struct tally_diag *diag)
{
	struct cluster_contests *cc;
	const char *first = cf->cluster_stream ? cf->cluster_stream : "TALLY";
	char **streams = NULL;
	size_t n = contests_count(cs), i;
	uint64_t epoch;
	struct core *c;

	if ((cc = calloc(1, sizeof(*cc))) == NULL ||
	    (cc->v = calloc(n, sizeof(*cc->v))) == NULL ||
	    (streams = calloc(n, sizeof(*streams))) == NULL)
		goto nomem;
	cc->cs = cs;
	cc->n = n;
	cc->v[0] = first_cl;
	if ((streams[0] = strdup(first)) == NULL)
		goto nomem;
	for (i = 1; i < n; i++)
		if ((streams[i] = cluster_contests_stream(first,
		    contests_id(cs, i))) == NULL)
			goto nomem;
	if (names_differ(cs, streams, diag) == -1)
		goto fail;
	for (i = 1; i < n; i++) {
		c = contests_core(cs, i);
		epoch = 0;
		if ((cc->v[i] = cluster_create_stream(cf, core_election(c),
		    streams[i], &epoch, diag)) == NULL) {
			tally_diag_add(diag, "cluster mode: cannot join the "
			    "stream %s of contest %s", streams[i],
			    contests_id(cs, i));
			goto fail;
		}
		/* The validators' epoch: every node of this stream shares
		 * it (main.c's join_cluster does the same for the first). */
		core_set_chain(c, fnv1a64_step(core_chain(c), epoch));
		log_info("cluster: contest %s on stream %s", contests_id(cs, i),
		    streams[i]);
	}
	for (i = 0; i < n; i++)
		free(streams[i]);
	free(streams);
	return cc;
nomem:
	tally_diag_add(diag, "cluster mode: out of memory");
fail:
	for (i = 0; streams != NULL && i < n; i++)
		free(streams[i]);
	free(streams);
	cluster_contests_destroy(cc);
	return NULL;
}

int
cluster_contests_start(struct cluster_contests *cc, struct event_base *base)
{
	struct core *c;
	size_t i;

	for (i = 0; i < cc->n; i++) {
		c = contests_core(cc->cs, i);
		if (core_set_cluster(c, &cluster_log_ops, cc->v[i]) == -1 ||
		    cluster_start(cc->v[i], base, c, core_state(c)->version) ==
		    -1) {
			log_warnx("cluster mode: cannot consume the stream of "
			    "contest %s (out of memory, or see above)",
			    contests_id(cc->cs, i));
			return -1;
		}
	}
	return 0;
}

void
cluster_contests_destroy(struct cluster_contests *cc)
{
	size_t i;

	if (cc == NULL)
		return;
	for (i = 1; cc->v != NULL && i < cc->n; i++)
		cluster_destroy(cc->v[i]);
	free(cc->v);
	free(cc);
}

int
cluster_contests_check_reload(const struct contests *cs, const size_t *from,
    const struct tally_election **es, size_t n, struct tally_diag *diag)
{
	struct core_log_status st;
	size_t old = contests_count(cs), i, k;
	bool *kept;
	int rc = 0;

	if (!core_log_status(contests_core(cs, 0), &st))
		return 0;
	if ((kept = calloc(old, sizeof(*kept))) == NULL) {
		tally_diag_add(diag, "out of memory reloading the contests");
		return -1;
	}
	for (k = 1; k < n; k++) {
		if (from[k] != SIZE_MAX) {
			kept[from[k]] = true;
			continue;
		}
		tally_diag_add(diag, "cluster mode: contest %s cannot be added "
		    "by a reload (a contest is a stream every node consumes "
		    "from its start): restart every node with the new contest "
		    "line; nothing was changed", es[k]->id);
		rc = -1;
	}
	for (i = 1; i < old; i++)
		if (!kept[i]) {
			tally_diag_add(diag, "cluster mode: contest %s cannot be "
			    "removed by a reload (its stream is consumed by "
			    "every node): keep its contest line, or restart "
			    "every node without it; nothing was changed",
			    contests_id(cs, i));
			rc = -1;
		}
	free(kept);
	return rc;
}
