/*
 * api.h - the HTTP API v1 as main.c and server.c see it: created once at
 * start, handed complete requests by the server, told of reloads and of
 * the stop.  The API's own modules (routes, views, live, ingest, ...) have
 * their own headers.
 *
 * Threads: every function here runs on the loop thread (the server calls
 * back from libmicrohttpd on the loop; main.c on the loop or before it
 * runs).  None may be called from the journal's writer thread or a
 * snapshot child.
 */
#ifndef TALLYD_API_H
#define TALLYD_API_H

#include <stdbool.h>
#include <stdio.h>

#include <tally/tally.h>

struct api;
struct config;
struct core;
struct http_reply;
struct http_request;
struct server;


/* Problems go to diag; the core is borrowed. */
struct api	*api_create(struct core *core, const struct config *cf,
		    struct tally_diag *diag);
void		 api_destroy(struct api *api);
/* For /metrics, event streams and timers (borrowed). */
void		 api_set_server(struct api *api, struct server *srv);
/* More /metrics lines, written by fn(arg, f) after the API's own. */
void		 api_set_metrics(struct api *api,
		    void (*fn)(void *arg, FILE *f), void *arg);
/* Stopping: long-polls are answered now and event streams end. */
void		 api_stop_live(struct api *api);
/* How history reads revisions kept on disk. */
void		 api_set_loader(struct api *api, tally_revision_loader load,
		    void *ctx);
/*
 * After a valid reload: new tokens and settings; the new election (taken)
 * through core_swap_definition, or kept for the next restart once anything
 * is counted.  -1 with diag when the new tokens are invalid: then nothing
 * changes.
 */
int		 api_reload(struct api *api, struct tally_election *e,
		    const struct config *cf, struct tally_diag *diag);
/* Route one request; never fails (errors become JSON error replies). */
void		 api_handle(struct api *api, const struct http_request *rq,
		    struct http_reply *reply);
/*
 * Before any body byte is read (rq without a body): may this request send
 * one?  The route, method, listener, token, content type and encoding are
 * checked; false with the refusal in reply (counted) otherwise.
 */
bool		 api_admit(struct api *api, const struct http_request *rq,
		    struct http_reply *reply);
/* Count a request the server refused before the API saw it. */
void		 api_refused(struct api *api, const char *path, unsigned status,
		    const char *code);
/* An error reply in the API's JSON error shape (new body). */
void		 api_error(struct http_reply *reply, unsigned status,
		    const char *code, const char *field, const char *fmt, ...)
		    __attribute__((format(printf, 5, 6)));

#endif
