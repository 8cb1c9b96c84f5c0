/*
 * contests.h - several contests in one tallyd (issue 23): the registry of
 * contests, one commit core and one API each, behind one journal.
 *
 * The first contest is the one main.c makes (its core and its API serve
 * the plain /v1/... routes, so that a single-contest deployment sees no
 * change); every further one (`contest` lines, a repeated --election) is
 * made here.  The journal is one log for all of them, in one global order:
 * a record of a contest carries "contest": its id (records without one, as
 * every journal written by one contest, belong to the first).  Each
 * contest's core keeps its own version, record chain and stamps, so a
 * contest's bytes and ETags never move while another is posted.
 *
 * Threads: the loop thread only [L], like the cores and the API; before the
 * loop runs, main.c's start-up.
 */
#ifndef TALLYD_CONTESTS_H
#define TALLYD_CONTESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <tally/tally.h>

struct api;
struct auth;
struct call;
struct config;
struct contests;
struct core;
struct journal;
struct server;
struct snapshot_sched;

/*
 * Before the data dir is touched (its lock, token and log files made):
 * every contest's definition loads and has an id of its own (cluster mode
 * takes several: a stream each, cluster_contests.c); else the problems are
 * logged and tallyd exits.
 */
void		 contests_check_config(const struct config *cf,
		    const struct tally_election *first);
/*
 * contests.c, the registry: first (its core borrowed, made by main.c) and
 * one contest per definition in cf->contests (loaded, each with its core).
 * Ids must differ (a duplicate is refused naming both files).  NULL with
 * diag.  With more than one contest, every core tags its records.
 */
struct contests	*contests_create(struct core *first, const struct config *cf,
		    struct tally_diag *diag);
/* After contests_api_destroy. */
void		 contests_destroy(struct contests *cs);
size_t		 contests_count(const struct contests *cs);
/* Contest i (0: the first): its core, its id, its API (or NULL). */
struct core	*contests_core(const struct contests *cs, size_t i);
const char	*contests_id(const struct contests *cs, size_t i);
struct api	*contests_api(const struct contests *cs, size_t i);
void		 contests_set_api(struct contests *cs, size_t i,
		    struct api *api);
/*
 * SIGUSR1 with several contests: a backup is a snapshot, which holds one
 * tally; true (and logged, saying what to copy instead) when refused.
 */
bool		 contests_backup_refused(const struct contests *cs,
		    const char *data_dir);
/*
 * May a reload take e as the first contest's definition?  With several
 * contests its id names its records in the journal: another id takes a
 * restart.  -1 with diag (e is not taken).
 */
int		 contests_check_reload(const struct contests *cs,
		    const struct tally_election *e, struct tally_diag *diag);
/*
 * The token file's items of further contests (CONTEST/id, or all of a
 * CONTEST) against the contests served (auth_resolve): -1 with diag.
 * _file: cf's token file, read as a check would (contests_create does,
 * so that a start and tallyd -n refuse such an item).
 */
int		 contests_check_tokens(const struct contests *cs,
		    const struct auth *a, struct tally_diag *diag);
int		 contests_check_token_file(const struct contests *cs,
		    const struct config *cf, struct tally_diag *diag);
/*
 * A reload (contests_reload.c).  _stage: the elections of the contests it
 * will serve (borrowed, es[0] the first's), which contests_check_tokens
 * checks a token file against until staged again with NULL.  _rebuild:
 * the new set of n contests, [0] the first; from[k] the index of a contest
 * kept, or SIZE_MAX for a new one whose core (its log not yet set), path
 * and API are taken from cores[k], paths[k], apis[k].  A contest left out
 * is retired: its core and API kept, unserved, until exit.  With several
 * contests every core tags its records and no snapshot is written.  -1
 * without memory (nothing changed).
 */
void		 contests_stage(struct contests *cs,
		    const struct tally_election **es, size_t n);
int		 contests_rebuild(struct contests *cs, const size_t *from,
		    struct core **cores, char **paths, struct api **apis,
		    size_t n);
const char	*contests_path(const struct contests *cs, size_t i);
bool		 contests_groups_waiting(const struct contests *cs);
size_t		 contests_retired_count(const struct contests *cs);
struct api	*contests_retired_api(const struct contests *cs, size_t k);
/* The snapshot timer, stopped whenever several contests are served. */
void		 contests_set_snapshots(struct contests *cs,
		    struct snapshot_sched *ss);
/*
 * SIGHUP (main.c; instead of api_reload): the first contest's definition
 * e (taken) and cf's contest lines.  A new id is added (its core, API and
 * routes); one left out is removed if nothing was counted in it, else the
 * reload is refused; a changed definition is taken if nothing was counted
 * (a new epoch), else kept until the restart (logged).  -1 with diag:
 * nothing changed.
 */
int		 contests_reload(struct contests *cs, struct api *first,
		    struct tally_election *e, const struct config *cf,
		    struct tally_diag *diag);
/* contests_api.c: a further contest's API (contests_reload.c). */
struct api	*contests_api_make(struct core *core, const struct api *first,
		    const struct config *cf, struct tally_diag *diag);
/* The index of the contest with this id, or SIZE_MAX. */
size_t		 contests_find(const struct contests *cs, const char *id);
/* Contest i's event stream topic: its own for as long as tallyd runs
 * (an index moves when a reload removes a contest before it). */
unsigned	 contests_topic(const struct contests *cs, size_t i);
/*
 * The journal's replay (a journal_apply_cb; arg: the registry): the record
 * goes to the core of its contest; a record of a contest not defined
 * refuses the start, naming it.
 */
int		 contests_replay(void *arg, const char *payload, size_t len,
		    struct tally_error *err);
/*
 * A batch across contests (contests_batch.c makes it): all of it in one
 * journal job, applied whole or not at all.  contests.c runs it when the
 * journal can take it with nothing else of its contests: run returns 1
 * when it must wait for the next job (a contest of it is in this one:
 * contests_group_free), else 0 (appended with contests_group_append, or
 * answered); stop answers it 503 (stopping) and frees it.
 */
struct contests_group {
	struct contests_group	*next;		/* [L] contests.c's queue */
	int			(*run)(struct contests_group *g);
	void			(*stop)(struct contests_group *g);
};
void		 contests_group_submit(struct contests *cs,
		    struct contests_group *g);
bool		 contests_group_free(const struct contests *cs, size_t i);
/* The sequence the next record appended would take. */
uint64_t	 contests_group_seq(const struct contests *cs);
/* Its records (buf taken), one for each of contests[0..n). */
void		 contests_group_append(struct contests *cs, char *buf,
		    size_t len, size_t records, const size_t *contests, size_t n);
/*
 * contests_batch.c: POST /v1/results and /v1/contests/{c}/results (a
 * route_fn): entries may name their contest; atomic across contests.
 */
void		 contests_post_batch(struct call *cl, const char *id);
/* The journal behind every core (set once, before anything is submitted). */
int		 contests_set_journal(struct contests *cs, struct journal *j);
/* The journal's completion (a journal_done_cb; arg: the registry). */
void		 contests_log_done(void *arg, int err, size_t records);
/* Every contest's core after replay (core_started). */
void		 contests_started(struct contests *cs);
/* Every core: drain, abandon, idle (main.c's stop). */
void		 contests_drain(struct contests *cs);
void		 contests_abandon(struct contests *cs);
bool		 contests_idle(const struct contests *cs);
bool		 contests_round_idle(const struct contests *cs);

/*
 * contests_api.c: an API for each further contest (views, live; the tokens
 * are lent by the first API per request), first's for the first; the
 * registry becomes first->contests.  -1 with diag.
 */
int		 contests_api_create(struct contests *cs, struct api *first,
		    const struct config *cf, struct tally_diag *diag);
void		 contests_api_destroy(struct contests *cs);
void		 contests_api_set_server(struct contests *cs,
		    struct server *srv);
void		 contests_api_stop_live(struct contests *cs);

/*
 * contests_http.c.  The body of GET /v1/contests (served by
 * live_contests.c): every contest (idx NULL), or the n
 * contests of idx in that order.  New, or NULL without memory.
 */
json_t		*contests_list_json(struct contests *cs, const size_t *idx,
		    size_t n);
/* Every /v1/contests/{contest}/... route (route_fn): the plain route's
 * handler on the contest's API. */
void		 contests_serve(struct call *cl, const char *id);

#endif
