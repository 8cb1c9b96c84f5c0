/*
 * contests_reload.c - SIGHUP with several contests (issue 23): the
 * configuration's `contest` lines become the contests served.
 *
 * What a reload may do to a contest follows the epoch rules of the first
 * contest's definition (api_reload, issue 21): a contest is matched by its
 * definition's id.  A new id is added: its core and API are made, its
 * routes answer at once, /v1/contests lists it, the token file is checked
 * against it.  A contest left out is removed if nothing was ever counted in
 * it; one with results cannot go (its records are in the journal, and a
 * start without its definition refuses them): the whole reload is refused
 * and the contests in force are kept.  A changed definition is taken while
 * nothing is counted (a new epoch: its kept versions and streams start
 * again); with results it stays in force until the restart, which rebuilds
 * the tally from the journal, and the log says so.
 *
 * Everything that can fail (the definitions, the token file, memory for
 * the new cores and APIs) is done before anything in force changes.
 *
 * Loop thread only [L].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "call.h"
#include "cluster.h"
#include "config.h"
#include "contests.h"
#include "core.h"
#include "live.h"
#include "log.h"
#include "tlog_contests.h"
#include "tlogd.h"
#include "views.h"

/* What a reload will make of the contests: the new set, [0] the first. */
struct plan {
	size_t			  n;
	size_t			 *from;		/* a kept one's index, or SIZE_MAX */
	struct core		**cores;	/* new ones (owned) */
	char			**paths;	/* new ones' (owned) */
	struct api		**apis;		/* new ones' (owned) */
	struct tally_election	**swap;		/* a definition to take (owned) */
	char			**swap_path;	/* (owned) */
	const struct tally_election **es;	/* in force after: the tokens' */
};

static void
plan_finish(struct plan *pl)
{
	size_t k;

	for (k = 0; k < pl->n; k++) {
		if (pl->apis != NULL && pl->apis[k] != NULL) {
			pl->apis[k]->auth = NULL;
			api_destroy(pl->apis[k]);
		}
		if (pl->cores != NULL)
			core_destroy(pl->cores[k]);
		if (pl->paths != NULL)
			free(pl->paths[k]);
		if (pl->swap != NULL)
			tally_election_destroy(pl->swap[k]);
		if (pl->swap_path != NULL)
			free(pl->swap_path[k]);
	}
	free(pl->from);
	free(pl->cores);
	free(pl->paths);
	free(pl->apis);
	free(pl->swap);
	free(pl->swap_path);
	free(pl->es);
	memset(pl, 0, sizeof(*pl));
}

/* Has anything been counted in (or does anything wait for) core c? */
static bool
has_results(struct core *c)
{
	const struct tally_state *s = core_state(c);

	return s->version > 0 || s->provinces_reporting > 0 || !core_idle(c);
}

static bool
same_definition(const struct tally_election *a, const struct tally_election *b)
{
	json_t *x = tally_election_dump(a), *y = tally_election_dump(b);
	bool same = x != NULL && y != NULL && json_equal(x, y);

	json_decref(x);
	json_decref(y);
	return same;
}

/* The plan for cf's contest lines; first: the first contest's new one. */
static int
plan_make(struct contests *cs, const struct tally_election *first,
    const struct config *cf, struct plan *pl, struct tally_diag *diag)
{
	const char *p, *nl;
	struct tally_election *e;
	size_t n = 1, k, j, i;
	bool *kept = NULL;
	char *path;

	for (p = cf->contests; p != NULL; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		n++;
	}
	if ((pl->from = calloc(n, sizeof(*pl->from))) == NULL ||
	    (pl->cores = calloc(n, sizeof(*pl->cores))) == NULL ||
	    (pl->paths = calloc(n, sizeof(*pl->paths))) == NULL ||
	    (pl->apis = calloc(n, sizeof(*pl->apis))) == NULL ||
	    (pl->swap = calloc(n, sizeof(*pl->swap))) == NULL ||
	    (pl->swap_path = calloc(n, sizeof(*pl->swap_path))) == NULL ||
	    (pl->es = calloc(n, sizeof(*pl->es))) == NULL ||
	    (kept = calloc(contests_count(cs), sizeof(*kept))) == NULL)
		goto nomem;
	pl->n = n;
	pl->from[0] = 0;
	pl->es[0] = first;
	k = 1;
	for (p = cf->contests; p != NULL; p = nl ? nl + 1 : NULL, k++) {
		nl = strchr(p, '\n');
		pl->from[k] = SIZE_MAX;
		if ((path = nl ? strndup(p, (size_t)(nl - p)) : strdup(p)) ==
		    NULL)
			goto nomem;
		if ((e = tally_election_load(path, diag)) == NULL) {
			tally_diag_add(diag, "contest %zu: election %s invalid "
			    "(see docs/ELECTION.md)", k + 1, path);
			free(path);
			goto fail;
		}
		for (j = 0; j < k; j++)
			if (strcmp(pl->es[j]->id, e->id) == 0)
				break;
		if (j < k) {
			tally_diag_add(diag, "contest %zu (%s) has the id \"%s\" "
			    "of contest %zu: each contest needs an id of its "
			    "own (the \"id\" of its definition)", k + 1, path,
			    e->id, j + 1);
			tally_election_destroy(e);
			free(path);
			goto fail;
		}
		i = contests_find(cs, e->id);
		if (i == 0) {
			/* The first's id, which the first no longer has. */
			tally_diag_add(diag, "contest %zu (%s) has the id \"%s\" "
			    "of the first contest as it is served: its records "
			    "are the first's; another id takes a restart",
			    k + 1, path, e->id);
			tally_election_destroy(e);
			free(path);
			goto fail;
		}
		if (i != SIZE_MAX) {
			/* A contest served: the same, or a new definition. */
			struct core *c = contests_core(cs, i);
			pl->from[k] = i;
			kept[i] = true;
			pl->es[k] = core_election(c);
			if (same_definition(core_election(c), e)) {
				tally_election_destroy(e);
				free(path);
			} else if (has_results(c) ||
			    contests_groups_waiting(cs)) {
				log_warnx("contest %s: results are counted: its "
				    "definition in force is kept until the next "
				    "restart (which rebuilds its tally from the "
				    "journal); %s is not taken now", e->id, path);
				tally_election_destroy(e);
				free(path);
			} else {
				pl->swap[k] = e;
				pl->swap_path[k] = path;
				pl->es[k] = e;
			}
			continue;
		}
		if ((pl->cores[k] = core_create(e, path, diag)) == NULL) {
			free(path);
			goto fail;
		}
		pl->paths[k] = path;
		pl->es[k] = core_election(pl->cores[k]);
	}
	/* Cluster mode: the contests are the streams of the start. */
	if (cluster_contests_check_reload(cs, pl->from, pl->es, n, diag) == -1)
		goto fail;
	/* A contest left out goes only if nothing was counted in it. */
	for (i = 1; i < contests_count(cs); i++) {
		struct core *c = contests_core(cs, i);
		if (kept[i])
			continue;
		if (has_results(c))
			tally_diag_add(diag, "contest %s (%s) is no longer in the "
			    "configuration but has results (version %llu): its "
			    "records are in the journal, and a start without "
			    "its definition refuses them; keep its contest line "
			    "(only a contest without results may be removed)",
			    contests_id(cs, i), contests_path(cs, i),
			    (unsigned long long)core_state(c)->version);
		else if (contests_groups_waiting(cs))
			tally_diag_add(diag, "contest %s is left out while a batch "
			    "across contests waits for the journal: send SIGHUP "
			    "again", contests_id(cs, i));
		else
			continue;
		goto fail;
	}
	free(kept);
	return 0;
nomem:
	tally_diag_add(diag, "out of memory reloading the contests");
fail:
	free(kept);
	plan_finish(pl);
	return -1;
}

int
contests_reload(struct contests *cs, struct api *first,
    struct tally_election *e, const struct config *cf,
    struct tally_diag *diag)
{
	struct plan pl;
	struct tally_diag mine;
	size_t k, i, n_old = contests_count(cs), added = 0, removed;
	bool *kept = NULL, changed;
	struct tlogd **logs = NULL;	/* the new contests' logs */
	int failed;

	memset(&pl, 0, sizeof(pl));
	/*
	 * The first contest's new definition is taken while nothing is
	 * counted in it (api_reload); a batch across contests waiting for
	 * the journal holds feeds read against the old one.
	 */
	if (contests_groups_waiting(cs) && !has_results(contests_core(cs, 0)) &&
	    !same_definition(core_election(contests_core(cs, 0)), e)) {
		tally_diag_add(diag, "%s: a new definition of the first contest "
		    "while a batch across contests waits for the journal: send "
		    "SIGHUP again", cf->election);
		tally_election_destroy(e);
		return -1;
	}
	if (plan_make(cs, e, cf, &pl, diag) == -1) {
		tally_election_destroy(e);
		return -1;
	}
	/* The APIs of the new contests, before anything in force changes. */
	for (k = 1; k < pl.n; k++)
		if (pl.cores[k] != NULL && (pl.apis[k] = contests_api_make(
		    pl.cores[k], first, cf, diag)) == NULL)
			goto fail_e;
	if ((kept = calloc(n_old, sizeof(*kept))) == NULL ||
	    (logs = calloc(pl.n, sizeof(*logs))) == NULL) {
		tally_diag_add(diag, "out of memory reloading the contests");
		goto fail_e;
	}
	/* Their transparency logs (tlog_contests.c), each its own. */
	for (k = 1; k < pl.n; k++)
		if (pl.cores[k] != NULL && (logs[k] = tlog_contests_make(
		    pl.cores[k], pl.paths[k], diag, &failed)) == NULL &&
		    failed)
			goto fail_e;
	/* The token file against the contests it will serve. */
	contests_stage(cs, pl.es, pl.n);
	if (api_reload(first, e, cf, diag) == -1) {
		contests_stage(cs, NULL, 0);
		goto fail;
	}
	contests_stage(cs, NULL, 0);
	for (k = 1; k < pl.n; k++)
		if (pl.from[k] != SIZE_MAX)
			kept[pl.from[k]] = true;
	removed = 0;
	changed = pl.n != n_old;
	for (i = 1; i < n_old; i++)
		removed += !kept[i];
	for (k = 1; k < pl.n; k++)
		changed = changed || pl.from[k] != k;
	if (changed) {
		struct api **gone;
		unsigned *topic;
		size_t ng = 0;
		gone = calloc(n_old, sizeof(*gone));
		topic = calloc(n_old, sizeof(*topic));
		if (gone == NULL || topic == NULL) {
			free(gone);
			free(topic);
			log_warnx("reload: out of memory changing the contests: "
			    "the contests in force are kept");
			goto done;
		}
		for (i = 1; i < n_old; i++)
			if (!kept[i]) {
				log_info("reload: contest %s (%s) removed "
				    "(nothing was counted in it)",
				    contests_id(cs, i), contests_path(cs, i));
				topic[ng] = contests_topic(cs, i);
				gone[ng++] = contests_api(cs, i);
			}
		if (contests_rebuild(cs, pl.from, pl.cores, pl.paths, pl.apis,
		    pl.n) == -1) {
			/* The rest of the reload holds; the set is the old. */
			free(gone);
			free(topic);
			log_warnx("reload: out of memory changing the contests: "
			    "the contests in force are kept");
			goto done;
		}
		/*
		 * Retired: their long-polls are answered and their streams
		 * end (not the others' streams); they are freed at exit.
		 */
		for (i = 0; i < ng; i++) {
			live_retire(gone[i]->live, topic[i]);
			/* Its log (empty: nothing was counted) is closed;
			 * its files stay in DATA_DIR/contests/<id>/tlog. */
			tlog_contests_retire(gone[i]->core);
		}
		free(gone);
		free(topic);
	}
	for (k = 1; k < pl.n; k++) {
		struct api *api = contests_api(cs, k);
		if (pl.from[k] == SIZE_MAX) {
			core_started(api->core);
			tlog_contests_adopt(logs[k], api->core);
			logs[k] = NULL;
			api_set_server(api, first->server);
			log_info("reload: contest %s added from %s (%zu provinces, "
			    "%llu seats)", contests_id(cs, k), contests_path(cs,
			    k), core_election(api->core)->n_provinces,
			    (unsigned long long)
			    core_election(api->core)->seats_total);
			added++;
			continue;
		}
		if (pl.swap[k] == NULL)
			continue;
		/* Nothing counted: the new definition, a new epoch. */
		tally_diag_init(&mine);
		if (core_swap_definition(api->core, pl.swap[k], pl.swap_path[k],
		    &mine) == -1 || views_resize(api->views) == -1) {
			pl.swap[k] = NULL;
			if (views_resize(api->views) == -1)
				fatalx("out of memory rebuilding the view cache");
			log_diag(&mine);
			log_warnx("reload: contest %s keeps its definition",
			    contests_id(cs, k));
		} else {
			pl.swap[k] = NULL;
			views_versions_clear(api->views);
			live_new_epoch(api->live);
			log_info("reload: contest %s takes its new definition "
			    "from %s (nothing was counted in it)",
			    contests_id(cs, k), pl.swap_path[k]);
		}
		tally_diag_finish(&mine);
	}
	if (added > 0 || removed > 0)
		log_info("reload: %zu contests served", contests_count(cs));
done:
	for (k = 0; logs != NULL && k < pl.n; k++)
		tlogd_close(logs[k]);
	free(logs);
	free(kept);
	plan_finish(&pl);
	return 0;
fail_e:
	tally_election_destroy(e);
fail:
	for (k = 0; logs != NULL && k < pl.n; k++)
		tlogd_close(logs[k]);
	free(logs);
	free(kept);
	plan_finish(&pl);
	return -1;
}
