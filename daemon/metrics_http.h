/*
 * metrics_http.h - the handler of GET /metrics (a route_fn).
 *
 * Threads: the loop thread only (the hook of api_set_metrics runs there
 * too).
 *
 * Depends on: call (request counters), views and live (their counters),
 * core, server; route names through api->routes (the table, given by
 * api.c: metrics_http.c never refers to routes.c, which calls it).
 */
#ifndef TALLYD_METRICS_HTTP_H
#define TALLYD_METRICS_HTTP_H

struct call;

void	metrics_http_serve(struct call *cl, const char *id);

#endif
