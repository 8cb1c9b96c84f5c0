/*
 * live.h - live updates: long-polls (?wait=S on a view) and the event
 * stream (GET /v1/events).  Told of every version by the core
 * (core_subscribe), it makes the version's events once and hands them to
 * the server's streams, and answers the long-polls whose view moved just
 * after the round's POSTs.
 *
 * Threads: the loop thread only, every function and field (the core calls
 * on_publish on the loop; long-poll timers are loop events).
 *
 * Depends on: views (live reads rendered views, never renders itself
 * otherwise), call (refusals, counters), core, server (streams, resume).
 */
#ifndef TALLYD_LIVE_H
#define TALLYD_LIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "views.h"

struct api;
struct call;
struct config;
struct http_chunk;
struct live;
struct server;

/* Bytes of an event id: "<contest>:<version>-<digest>" and its NUL. */
#define LIVE_ID_MAX	128

/*
 * Live updates for api (borrowed, kept: its core, views and server are
 * read through it); subscribes to the core.  NULL without memory.
 */
struct live	*live_create(struct api *api, const struct config *cf);
/* Answers every parked long-poll (304) first. */
void		 live_destroy(struct live *lv);
/* The server is there: the long-poll timer is made on its loop.  0 or -1. */
int		 live_set_server(struct live *lv, struct server *srv);
/* Stopping: long-polls are answered now and event streams end. */
void		 live_stop(struct live *lv);
/* A reload removed the contest: its long-polls are answered, the streams
 * following its topic (contests_topic) end, the others go on. */
void		 live_retire(struct live *lv, unsigned topic);
/*
 * A new epoch (a swapped definition): the hello is forgotten and open
 * streams start again from a snapshot.  Call after views_versions_clear.
 */
void		 live_new_epoch(struct live *lv);
/*
 * Long-poll.  ?wait=S (0 to 60) with an If-None-Match naming v, the
 * current view (id, index): the request is parked until the view's stamp
 * moves (200 with the new bytes) or S seconds pass (304).  Only on routes
 * whose cache policy is CACHE_VIEW_WAIT.  true when parked (or refused:
 * then cl's reply is filled).
 */
bool		 live_park(struct call *cl, enum view_id id, size_t index,
		    const struct view *v);
/*
 * The handler of GET /v1/events without ?contests= (live_contests.c's
 * route_fn calls it), and of a contest's /v1/contests/{c}/events (the
 * contest's API in cl).
 */
void		 live_serve_events(struct call *cl, const char *id);
/*
 * Before a stream or a long-poll: stopping (503 shutting_down), or the
 * subscribers' budget spent (503 too_many_subscribers)?  Then cl is
 * answered and true.
 */
bool		 live_refuse(struct call *cl);
/* ?deltas=: 1, 0 (absent), or -1 with cl answered (400 invalid_deltas). */
int		 live_deltas_arg(struct call *cl);
/*
 * Before a stream of deltas of lv's contest starts (its hello made after):
 * a coalesced event waiting is sent now, the current leaderboard becomes
 * the base of the next delta.  0, or -1 without memory.
 */
int		 live_deltas_ready(struct live *lv);
/* The id of the contest's current version (named: "<contest>:..."). */
void		 live_event_id(const struct live *lv, char *buf, size_t len,
		    bool named);
/* A snapshot of the contest's current version, its events naming the
 * contest (new reference; NULL without memory). */
struct http_chunk *live_snapshot_named(struct live *lv);
/* The index of api's contest (its stream topic; 0: the first), or
 * SIZE_MAX when not in the registry. */
size_t		 live_topic(const struct api *api);
/* Long-polls parked now on every contest and held (the budget). */
unsigned	 live_all_waiters(const struct api *api);
/* delta more (or fewer) long-polls of others counted in lv's budget. */
void		 live_hold(struct live *lv, int delta);
/* fn(arg) after every version of every contest (set on the first's). */
void		 live_set_version_hook(struct live *lv, void (*fn)(void *),
		    void *arg);

/*
 * live_contests.c, above live.c: several contests on one connection.
 * GET /v1/events (route_fn): ?contests=a,b streams several contests, each
 * event naming its contest (400 invalid_contests, 404 unknown_contest
 * before anything is streamed); without it, live_serve_events.
 */
void		 live_contests_serve_events(struct call *cl, const char *id);
/*
 * GET /v1/contests (route_fn): every contest, or ?contests=a,b; an ETag
 * naming the stamps of those contests; If-None-Match with ?wait=S parks
 * until one of them publishes (200) or S seconds pass (304).
 */
void		 live_contests_list(struct call *cl, const char *id);
/* The long-polls of /v1/contests, on the first contest's API (api->night):
 * made with the contests' APIs, the timer with the server; stop answers
 * them (304). */
struct live_night *live_night_create(struct api *first);
int		 live_night_set_server(struct live_night *nt, struct server *srv);
void		 live_night_stop(struct live_night *nt);
void		 live_night_destroy(struct live_night *nt);

#endif
