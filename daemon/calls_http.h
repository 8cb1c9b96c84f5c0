/*
 * calls_http.h - the race calls over HTTP (tally/calls.h): GET /v1/calls,
 * POST /v1/calls (a declared call), POST /v1/calls/{n}/retract.
 *
 * Threads: the loop thread only.
 */
#ifndef TALLYD_CALLS_HTTP_H
#define TALLYD_CALLS_HTTP_H

struct call;

void	calls_http_get(struct call *cl, const char *id);
void	calls_http_declare(struct call *cl, const char *id);
void	calls_http_retract(struct call *cl, const char *id);

#endif
