/*
 * get.h - the GET handlers of the route table (route_fn): views, kept
 * versions and /healthz.  The event stream's handler is live.c's, the
 * /metrics one metrics_http.c's.
 *
 * Threads: the loop thread only.
 *
 * Depends on: views (the cached bodies), live (a ?wait= long-poll parks
 * there), call, core (ids, health).
 */
#ifndef TALLYD_GET_H
#define TALLYD_GET_H

struct call;

void	get_health(struct call *cl, const char *id);
void	get_election(struct call *cl, const char *id);
void	get_leaderboard(struct call *cl, const char *id);
void	get_leaderboard_csv(struct call *cl, const char *id);
void	get_leaderboard_svg(struct call *cl, const char *id);
void	get_provinces(struct call *cl, const char *id);	/* ?settled= */
void	get_provinces_csv(struct call *cl, const char *id);
void	get_page(struct call *cl, const char *id);
void	get_coalition(struct call *cl, const char *id);
void	get_province(struct call *cl, const char *id);	/* ?explain= */
void	get_history(struct call *cl, const char *id);
/* The flat file, whole or ?since=VERSION (docs/NEWSROOM.md). */
void	get_results_csv(struct call *cl, const char *id);
void	get_results_jsonl(struct call *cl, const char *id);
void	get_history_csv(struct call *cl, const char *id);
void	get_map_svg(struct call *cl, const char *id);	/* ?by= */
/* GET /v1/changes?since=V: province revisions after version V. */
void	get_changes(struct call *cl, const char *id);
/* GET /v1/schemas/NAME.json: docs/schemas/, compiled in. */
void	get_schema(struct call *cl, const char *name);
/* /v1/versions/{n}[-{digest}]/...: the route says which view. */
void	get_version(struct call *cl, const char *num);

#endif
