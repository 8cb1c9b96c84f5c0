/*
 * metrics_http.c - GET /metrics: the API's own counters (requests by route
 * and status, refused feeds by code, the view cache), the core's, and then
 * the lines of metrics.c (disk, fsync, listeners, build) through the hook
 * main.c sets (api_set_metrics).  Prometheus text format, version 0.0.4.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contests.h"
#include "core.h"
#include "server.h"
#include "call.h"
#include "live.h"
#include "metrics_http.h"
#include "views.h"

/* Prometheus text format, version 0.0.4. */
/* Does POST route i share its path with an earlier route? */
static bool
shares_path(const struct api *api, size_t i)
{
	size_t j;

	if (!(api->routes[i].methods & ROUTE_POST))
		return false;
	for (j = 0; j < i; j++)
		if (strcmp(api->routes[j].pattern, api->routes[i].pattern) == 0)
			return true;
	return false;
}

/*
 * With several contests, each one's version, provinces and applied feeds,
 * labelled (the unlabelled series above stay the first contest's).
 */
static void
contest_metrics(const struct api *api, FILE *f)
{
	static const char *const name[] = { "version", "provinces_reporting",
	    "provinces_final", "feeds_applied_total" };
	static const char *const help[] = { "The contest's version.",
	    "The contest's provinces with a result.",
	    "The contest's provinces whose result is final.",
	    "Province results applied to the contest." };
	const struct tally_state *s;
	struct core *c;
	size_t i, k, n;
	unsigned long long v;

	if (api->contests == NULL || (n = contests_count(api->contests)) < 2)
		return;
	for (k = 0; k < sizeof(name) / sizeof(name[0]); k++) {
		fprintf(f, "# HELP tallyd_contest_%s %s\n# TYPE "
		    "tallyd_contest_%s %s\n", name[k], help[k], name[k],
		    k == 3 ? "counter" : "gauge");
		for (i = 0; i < n; i++) {
			c = contests_core(api->contests, i);
			s = core_state(c);
			v = k == 0 ? s->version : k == 1 ?
			    s->provinces_reporting : k == 2 ?
			    s->provinces_final : core_stats(c)->feeds_applied;
			fprintf(f, "tallyd_contest_%s{contest=\"%s\"} %llu\n",
			    name[k], contests_id(api->contests, i), v);
		}
	}
}

void
metrics_http_serve(struct call *cl, const char *id)
{
	struct api *api = cl->api;
	const struct tally_state *s = core_state(api->core);
	const struct core_stats *cs = core_stats(api->core);
	char *buf = NULL;
	size_t len = 0, i, k;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL) {
		call_fail(cl, 500, "internal", NULL, "out of memory");
		return;
	}
	fprintf(f,
	    "# HELP tallyd_requests_total HTTP requests by route and status.\n"
	    "# TYPE tallyd_requests_total counter\n");
	for (i = 0; i < R_COUNT; i++)
		for (k = 0; k <= CALL_N_STATUSES; k++) {
			char st[8];
			if (api->counters.requests[i][k] == 0)
				continue;
			if (k < CALL_N_STATUSES)
				snprintf(st, sizeof(st), "%u", call_statuses[k]);
			else
				snprintf(st, sizeof(st), "other");
			/* GET and POST /v1/calls share a path: the POST's
			 * series names its method, so no two are alike. */
			fprintf(f,
			    "tallyd_requests_total{route=\"%s%s\",status=\"%s\"} "
			    "%llu\n", shares_path(api, i) ? "POST " : "",
			    api->routes[i].pattern, st,
			    (unsigned long long)api->counters.requests[i][k]);
		}
	fprintf(f,
	    "# HELP tallyd_feeds_applied_total Province results applied.\n"
	    "# TYPE tallyd_feeds_applied_total counter\n"
	    "tallyd_feeds_applied_total %llu\n",
	    (unsigned long long)cs->feeds_applied);
	fprintf(f, "# HELP tallyd_feeds_duplicate_total Identical retries "
	    "answered without a change.\n"
	    "# TYPE tallyd_feeds_duplicate_total counter\n"
	    "tallyd_feeds_duplicate_total %llu\n",
	    (unsigned long long)cs->feeds_duplicate);
	fprintf(f,
	    "# HELP tallyd_feeds_rejected_total Feeds refused, by error code.\n"
	    "# TYPE tallyd_feeds_rejected_total counter\n");
	for (i = 0; i < CALL_N_REASONS && api->counters.rejected[i].code[0]; i++)
		fprintf(f, "tallyd_feeds_rejected_total{reason=\"%s\"} %llu\n",
		    api->counters.rejected[i].code,
		    (unsigned long long)api->counters.rejected[i].n);
	fprintf(f, "# HELP tallyd_journal_write_failures_total Group commits "
	    "the journal could not write.\n"
	    "# TYPE tallyd_journal_write_failures_total counter\n"
	    "tallyd_journal_write_failures_total %llu\n",
	    (unsigned long long)cs->log_failures);
	fprintf(f, "# HELP tallyd_version The tally's version.\n"
	    "# TYPE tallyd_version gauge\ntallyd_version %llu\n",
	    (unsigned long long)s->version);
	fprintf(f,
	    "# HELP tallyd_provinces_reporting Provinces with a result.\n"
	    "# TYPE tallyd_provinces_reporting gauge\n"
	    "tallyd_provinces_reporting %zu\n", s->provinces_reporting);
	fprintf(f,
	    "# HELP tallyd_provinces_final Provinces whose result is final.\n"
	    "# TYPE tallyd_provinces_final gauge\n"
	    "tallyd_provinces_final %zu\n", s->provinces_final);
	fprintf(f, "# HELP tallyd_seats_pending Seats in unresolved ties.\n"
	    "# TYPE tallyd_seats_pending gauge\ntallyd_seats_pending %llu\n",
	    (unsigned long long)s->seats_pending);
	fprintf(f,
	    "# HELP tallyd_revisions_in_memory Province revisions held in "
	    "memory (older ones are read from the snapshot).\n"
	    "# TYPE tallyd_revisions_in_memory gauge\n"
	    "tallyd_revisions_in_memory %zu\n",
	    tally_state_revisions_in_memory(s));
	fprintf(f, "# HELP tallyd_render_cache_hits_total GETs answered from "
	    "cached bytes.\n# TYPE tallyd_render_cache_hits_total counter\n"
	    "tallyd_render_cache_hits_total %llu\n",
	    (unsigned long long)views_counters(api->views)->cache_hits);
	fprintf(f, "# HELP tallyd_renders_total Views rendered.\n"
	    "# TYPE tallyd_renders_total counter\ntallyd_renders_total %llu\n",
	    (unsigned long long)views_counters(api->views)->renders);
	fprintf(f,
	    "# HELP tallyd_gzips_total Views compressed (once per version, "
	    "when first asked for).\n# TYPE tallyd_gzips_total counter\n"
	    "tallyd_gzips_total %llu\n", (unsigned long long)views_counters(api->views)->gzips);
	fprintf(f, "# HELP tallyd_open_connections Connections open now.\n"
	    "# TYPE tallyd_open_connections gauge\n"
	    "tallyd_open_connections %u\n",
	    api->server ? server_connections(api->server) : 0);
	if (api->metrics_fn != NULL)
		api->metrics_fn(api->metrics_arg, f);
	contest_metrics(api, f);
	fprintf(f, "# HELP tallyd_event_streams Open GET /v1/events streams.\n"
	    "# TYPE tallyd_event_streams gauge\ntallyd_event_streams %u\n",
	    api->server ? server_streams(api->server) : 0);
	fprintf(f, "# HELP tallyd_long_polls Long-polls waiting for a change.\n"
	    "# TYPE tallyd_long_polls gauge\ntallyd_long_polls %u\n",
	    live_all_waiters(api));
	fclose(f);
	if ((cl->reply->body = http_body_new(buf, len, true)) == NULL) {
		free(buf);
		call_fail(cl, 500, "internal", NULL, "out of memory");
		return;
	}
	cl->reply->status = 200;
	cl->reply->owned = true;
	http_body_header(cl->reply->body, "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	http_body_header(cl->reply->body, "Cache-Control", "no-store");
}
