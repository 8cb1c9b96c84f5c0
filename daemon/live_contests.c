/*
 * live_contests.c - several contests on one event stream (issue 23):
 * GET /v1/events?contests=a,b, and what the contests' live states share
 * (the stream topic of each, the subscribers' budget across contests).
 *
 * A stream of several contests is a "named" stream (stream.c): each
 * event names its contest, in its id ("<contest>:<version>-<digest>") and
 * in its data where the data is ours ("contest" in change, snapshot and
 * call events; a leaderboard's own "election": {"id"} is the contest's
 * id).  Ids are kept per contest, so a resume is per contest too:
 * Last-Event-ID (or ?last_event_id=) may list several ids separated by
 * commas, and a contest whose current id is listed resumes without a
 * snapshot while every other one starts from its snapshot.  A browser's
 * EventSource sends only the id of the last event it got: that contest
 * resumes, the others are sent their snapshots (never a gap unsaid).
 *
 * Loop thread only [L].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "call.h"
#include "contests.h"
#include "core.h"
#include "live.h"
#include "response.h"
#include "stream.h"

/* The first contest's API: it holds the registry (NULL: one contest). */
static const struct api *
first_api(const struct api *api)
{
	return api->first != NULL ? api->first : api;
}

size_t
live_topic(const struct api *api)
{
	const struct api *first = first_api(api);

	if (api->contest == NULL)
		return 0;
	if (first->contests == NULL)
		return SIZE_MAX;	/* not yet registered */
	return contests_find(first->contests, api->contest);
}

unsigned
live_contests_waiters(const struct api *api)
{
	const struct api *first = first_api(api);
	const struct api *a;
	unsigned n = 0;
	size_t i;

	if (first->contests == NULL)
		return live_waiters(first->live);
	for (i = 0; i < contests_count(first->contests); i++)
		if ((a = contests_api(first->contests, i)) != NULL &&
		    a->live != NULL)
			n += live_waiters(a->live);
	return n;
}

/* The API of the contest named by id[0..len), and its index; NULL. */
static struct api *
contest_of(const struct api *api, const char *id, size_t len, size_t *index)
{
	const struct api *first = first_api(api);
	char name[TALLY_ID_MAX + 1];
	size_t i;

	snprintf(name, sizeof(name), "%.*s", (int)len, id);
	if (first->contests == NULL) {
		*index = 0;
		return strcmp(name, core_election(first->core)->id) == 0 ?
		    (struct api *)(uintptr_t)first : NULL;
	}
	if ((i = contests_find(first->contests, name)) == SIZE_MAX)
		return NULL;
	*index = i;
	return contests_api(first->contests, i);
}

/* Is id one of the comma-separated items of list (or NULL)? */
static bool
list_has(const char *list, const char *id)
{
	size_t n = strlen(id), len;
	const char *end;

	for (; list != NULL; list = *end ? end + 1 : NULL) {
		while (*list == ' ')
			list++;
		end = strchrnul(list, ',');
		len = (size_t)(end - list);
		while (len > 0 && list[len - 1] == ' ')
			len--;
		if (len == n && memcmp(list, id, n) == 0)
			return true;
	}
	return false;
}

/*
 * Parse ?contests= into apis[] and topics[]: the number of contests, or
 * 0 with cl answered (400 invalid_contests, 404 unknown_contest).
 */
static size_t
parse_contests(struct call *cl, const char *list, struct api **apis,
    size_t *topics)
{
	char id[TALLY_ID_MAX + 1];
	const char *p = list, *end;
	size_t n = 0, len, i, items = 1;

	/* The cap first: a long list is refused whatever it holds. */
	for (end = list; (end = strchr(end, ',')) != NULL; end++)
		items++;
	if (items > STREAM_TOPICS_MAX) {
		call_fail(cl, 400, "invalid_contests", NULL, "contests lists "
		    "%zu contests; one stream follows at most %d (open another "
		    "stream for the rest)", items, STREAM_TOPICS_MAX);
		return 0;
	}
	for (;;) {
		end = strchrnul(p, ',');
		len = (size_t)(end - p);
		if (len == 0) {
			call_fail(cl, 400, "invalid_contests", NULL, "contests "
			    "lists contest ids separated by commas (e.g. "
			    "?contests=a,b), without an empty one");
			return 0;
		}
		snprintf(id, sizeof(id), "%.*s", (int)(len > TALLY_ID_MAX ?
		    TALLY_ID_MAX : len), p);
		if (len > TALLY_ID_MAX || !tally_id_is_valid(id)) {
			call_fail(cl, 400, "invalid_contests", NULL, "contests: "
			    "item %zu is not a contest id (1 to %d letters, "
			    "digits, '_', '-' or '.')", n + 1, TALLY_ID_MAX);
			return 0;
		}
		if ((apis[n] = contest_of(cl->api, p, len, &topics[n])) ==
		    NULL) {
			call_fail(cl, 404, "unknown_contest", NULL, "no contest "
			    "\"%s\" (GET /v1/contests lists them)", id);
			return 0;
		}
		for (i = 0; i < n; i++)
			if (topics[i] == topics[n]) {
				call_fail(cl, 400, "invalid_contests", NULL,
				    "contests lists \"%s\" twice", id);
				return 0;
			}
		n++;
		if (*end == '\0')
			return n;
		p = end + 1;
	}
}

void
live_contests_events(struct call *cl, const char *list)
{
	struct api *apis[STREAM_TOPICS_MAX];
	size_t topics[STREAM_TOPICS_MAX], n, i, k = 0;
	struct http_chunk *parts[STREAM_TOPICS_MAX + 1], *hello = NULL;
	struct stream_sub *sub = NULL;
	const char *last = cl->rq->last_event_id;
	char cur[LIVE_ID_MAX];

	if (strncmp(cl->rq->path, "/v1/contests/", 13) == 0) {
		call_fail(cl, 400, "invalid_contests", NULL, "?contests= goes "
		    "with GET /v1/events; /v1/contests/{contest}/events "
		    "follows its contest alone");
		return;
	}
	if ((n = parse_contests(cl, list, apis, topics)) == 0 ||
	    live_subscribers_full(cl))
		return;
	if (last == NULL)
		last = http_arg(cl->rq, "last_event_id");
	if ((sub = calloc(1, sizeof(*sub))) == NULL ||
	    (parts[k++] = http_chunk_new("retry: 3000\n\n", 13, NULL,
	    0)) == NULL)
		goto nomem;
	sub->named = true;
	sub->n = n;
	/*
	 * Every contest's current snapshot goes to the stream set (what a
	 * conflated stream is given); the hello holds those of the contests
	 * not resumed, in the order listed.
	 */
	for (i = 0; i < n; i++) {
		sub->topic[i] = (unsigned)topics[i];
		if ((sub->snap[i] = live_snapshot_named(apis[i]->live)) ==
		    NULL)
			goto nomem;
		live_event_id(apis[i]->live, cur, sizeof(cur), true);
		if (!list_has(last, cur))
			parts[k++] = sub->snap[i];
	}
	if ((hello = http_chunk_join(parts, k)) == NULL)
		goto nomem;
	http_chunk_unref(parts[0]);
	cl->reply->stream = hello;
	cl->reply->stream_sub = sub;
	cl->reply->status = 200;
	return;
nomem:
	if (k > 0)
		http_chunk_unref(parts[0]);
	stream_sub_free(sub);
	call_fail(cl, 503, "out_of_memory", NULL, "out of memory; try again");
}
