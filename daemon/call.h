/*
 * call.h - what every handler of the API shares: the API's state (struct
 * api, made by api.c), one request on its way through it (struct call),
 * the one exit of a refused request (call_fail) and the request counters
 * /metrics reports.
 *
 * Threads: the loop thread only.  Fields: [I] set by api_create, then only
 * read; [L] the loop thread (api_reload replaces them between requests).
 */
#ifndef TALLYD_CALL_H
#define TALLYD_CALL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "routes.h"

struct auth;
struct core;
struct http_reply;
struct http_request;
struct live;
struct server;
struct tally_error;
struct tally_errors;
struct views;

/* Statuses counted in /metrics; anything else counts as "other". */
#define CALL_N_STATUSES	16
extern const unsigned call_statuses[CALL_N_STATUSES];
/* Distinct refusal codes of feeds counted; later ones are not. */
#define CALL_N_REASONS	32

struct call_counters {
	uint64_t	 requests[R_COUNT][CALL_N_STATUSES + 1];
	struct {
		char	 code[40];
		uint64_t n;
	}		 rejected[CALL_N_REASONS];	/* by code, first seen first */
};

struct api {
	struct core		*core;		/* [I] borrowed */
	struct auth		*auth;		/* [L] owned; api_reload swaps it */
	struct server		*server;	/* [L] borrowed; api_set_server */
	struct views		*views;		/* [I] owned (views.c) */
	struct live		*live;		/* [I] owned (live.c) */
	const struct route	*routes;	/* [I] api_routes, R_COUNT of them
						   (routes.c): names for /metrics */
	void			(*metrics_fn)(void *, FILE *);	/* [L] more
						   /metrics lines */
	void			*metrics_arg;	/* [L] */
	bool			 split;		/* [I] separate ingest listener */
	char			 ingest_addr[300];	/* [I] */
	char			*cors_origin;	/* [I] NULL: no CORS headers */
	struct call_counters	 counters;	/* [L] */
	/* Several contests (contests.c): the registry, on the first
	 * contest's API (NULL: one contest); a further contest's API has
	 * its id in `contest` (NULL: the first's) and borrows `auth`. */
	struct contests		*contests;	/* [I] borrowed */
	const char		*contest;	/* [I] borrowed */
	struct api		*first;		/* [I] a further contest's: the
						   first's, which keeps the
						   counts; NULL: this one */
	struct live_night	*night;		/* [I] owned, the first's: the
						   long-polls of /v1/contests
						   (live_contests.c) */
};

/* One request on its way through the API (on the stack of its handler). */
struct call {
	struct api			*api;
	const struct http_request	*rq;
	struct http_reply		*reply;
	const struct route		*rt;	/* api_routes[R_NONE]: none */
	/* Every problem of a refused feed, for the "errors" array (or NULL). */
	const struct tally_errors	*all;
	bool				 dry_run;	/* POST ?dry_run=1 */
};

/*
 * The one exit of a refused request: the JSON error reply (with cl->all),
 * counted by code when the route is a feed's, logged.  Headers may be
 * added to cl->reply->body afterwards.
 */
void	call_fail(struct call *cl, unsigned status, const char *code,
	    const char *field, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));
/* call_fail for err: the single place where an error kind becomes a status. */
void	call_fail_with(struct call *cl, const struct tally_error *err);
/* Count one answer of route (given now, or later for a pending one). */
void	call_count(struct api *api, enum route_id route, unsigned status);
/* Count a refused feed by its code (call_fail does it for feed routes). */
void	call_count_rejection(struct api *api, const char *code);
/* A query value meaning yes (1, true, yes) or no (0, false, no). */
bool	call_is_true(const char *v);
bool	call_is_false(const char *v);

#endif
