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

#include <tally/tally.h>

struct api;
struct auth;
struct call;
struct config;
struct contests;
struct core;
struct journal;
struct server;

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
/* The index of the contest with this id, or SIZE_MAX. */
size_t		 contests_find(const struct contests *cs, const char *id);
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

/* contests_http.c: GET /v1/contests (route_fn). */
void		 contests_serve_list(struct call *cl, const char *id);
/* Every /v1/contests/{contest}/... route (route_fn): the plain route's
 * handler on the contest's API. */
void		 contests_serve(struct call *cl, const char *id);

#endif
