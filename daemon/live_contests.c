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

#include <event2/event.h>
#include <jansson.h>

#include "api.h"
#include "call.h"
#include "contests.h"
#include "core.h"
#include "live.h"
#include "reply.h"
#include "response.h"
#include "routes.h"
#include "server.h"
#include "stream.h"
#include "util.h"

/*
 * GET /v1/contests as a long-poll over several contests: its ETag names
 * the stamps of the contests listed (all, or ?contests=a,b), so a client
 * holding it asks with If-None-Match and ?wait=S, and is answered when
 * any of them publishes a version (200, the new list) or after S seconds
 * (304).  A "night waiter" is parked on the first contest's API
 * (api->night); every contest's on_publish wakes them (live_contests_
 * published), after the round's POSTs, as live.c does its own.
 */
struct night_waiter {
	struct night_waiter	*prev, *next;
	struct live_night	*nt;
	bool			 all;		/* every contest: idx unused */
	size_t			 idx[STREAM_TOPICS_MAX];
	size_t			 n;
	uint64_t		 tag;		/* the list's tag the client holds */
	void			*ctx;		/* the server's request */
	struct event		*timer;
};

/* All [L]. */
struct live_night {
	struct api		*first;		/* [I] borrowed */
	struct night_waiter	*waiters;	/* [L] */
	unsigned		 n_waiters;	/* [L] */
	struct event		*ev_wake;	/* [L] live_night_set_server */
	bool			 stopping;	/* [L] */
};

/* The first contest's API: it holds the registry (NULL: one contest). */
static const struct api *
first_api(const struct api *api)
{
	return api->first != NULL ? api->first : api;
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
	*index = contests_topic(first->contests, i);
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

static void
live_contests_events(struct call *cl, const char *list)
{
	struct api *apis[STREAM_TOPICS_MAX];
	size_t topics[STREAM_TOPICS_MAX], n, i, k = 0;
	struct http_chunk *parts[STREAM_TOPICS_MAX + 1], *hello = NULL;
	struct stream_sub *sub = NULL;
	const char *last = cl->rq->last_event_id;
	char cur[LIVE_ID_MAX];
	int deltas;

	if (strncmp(cl->rq->path, "/v1/contests/", 13) == 0) {
		call_fail(cl, 400, "invalid_contests", NULL, "?contests= goes "
		    "with GET /v1/events; /v1/contests/{contest}/events "
		    "follows its contest alone");
		return;
	}
	if ((n = parse_contests(cl, list, apis, topics)) == 0 ||
	    (deltas = live_deltas_arg(cl)) == -1 || live_refuse(cl))
		return;
	/* Streams of deltas start from the snapshots in the hello. */
	for (i = 0; deltas && i < n; i++)
		if (live_deltas_ready(apis[i]->live) == -1)
			goto nomem;
	if (last == NULL)
		last = http_arg(cl->rq, "last_event_id");
	if ((sub = calloc(1, sizeof(*sub))) == NULL ||
	    (parts[k++] = http_chunk_new("retry: 3000\n\n", 13, NULL,
	    0)) == NULL)
		goto nomem;
	sub->named = true;
	sub->deltas = deltas;
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

/* The tag of a list: its contests' ids and whole-tally stamps. */
static uint64_t
list_tag(const struct contests *cs, const size_t *idx, size_t n)
{
	uint64_t h = FNV1A64_INIT;
	size_t k, i;

	if (idx == NULL)
		n = contests_count(cs);
	for (k = 0; k < n; k++) {
		const struct core_stamp *st;
		const char *id;
		i = idx != NULL ? idx[k] : k;
		id = contests_id(cs, i);
		st = core_stamp(contests_core(cs, i), SIZE_MAX);
		h = fnv1a64(h, id, strlen(id) + 1);
		h = fnv1a64_step(h, st->version);
		h = fnv1a64_step(h, st->digest);
	}
	return h;
}

static void
list_etag(char *buf, size_t len, uint64_t tag)
{
	snprintf(buf, len, "\"contests-%016llx\"", (unsigned long long)tag);
}

/* Does If-None-Match (or NULL) name etag (or "*")? */
static bool
inm_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag), len;
	const char *end;

	for (; inm != NULL; inm = *end ? end + 1 : NULL) {
		while (*inm == ' ')
			inm++;
		if (strncmp(inm, "W/", 2) == 0)
			inm += 2;
		end = strchrnul(inm, ',');
		len = (size_t)(end - inm);
		while (len > 0 && inm[len - 1] == ' ')
			len--;
		if ((len == n && memcmp(inm, etag, n) == 0) ||
		    (len == 1 && *inm == '*'))
			return true;
	}
	return false;
}

/* The list's bytes as a chunk (new), or NULL without memory. */
static struct http_chunk *
list_chunk(struct contests *cs, const size_t *idx, size_t n)
{
	json_t *o = contests_list_json(cs, idx, n);
	char *bytes = o != NULL ? json_dumps(o, JSON_COMPACT |
	    JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10)) : NULL;
	struct http_chunk *c = NULL;

	json_decref(o);
	if ((bytes = reply_with_newline(bytes)) != NULL)
		c = http_chunk_new(bytes, strlen(bytes), NULL, 0);
	free(bytes);
	return c;
}

/*
 * Fill reply: 200 with c's bytes (borrowed; NULL: 503), or 304 (c NULL,
 * not_modified); each with the list's ETag, never stored by a cache.
 */
static void
list_reply(struct http_reply *reply, struct http_chunk *c, bool not_modified,
    const char *etag)
{
	static char empty[] = "";

	memset(reply, 0, sizeof(*reply));
	reply->owned = true;
	if (not_modified) {
		reply->status = 304;
		reply->body = http_body_new(empty, 0, false);
	} else if (c != NULL && (reply->body = http_body_from_chunk(c)) !=
	    NULL) {
		reply->status = 200;
		http_body_header(reply->body, "Content-Type",
		    "application/json; charset=utf-8");
	} else {
		api_error(reply, 503, "out_of_memory", NULL, "out of memory; "
		    "try again");
		return;
	}
	if (reply->body == NULL)
		return;
	http_body_header(reply->body, "Cache-Control", "no-store");
	http_body_header(reply->body, "ETag", etag);
}

static void
night_answer(struct night_waiter *w, struct http_chunk *c)
{
	struct live_night *nt = w->nt;
	struct http_reply reply;
	char etag[48];

	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		nt->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	nt->n_waiters--;
	live_hold(nt->first->live, -1);
	event_free(w->timer);
	list_etag(etag, sizeof(etag), c != NULL ? list_tag(nt->first->contests,
	    w->all ? NULL : w->idx, w->n) : w->tag);
	list_reply(&reply, c, c == NULL, etag);
	call_count(nt->first, R_CONTESTS, reply.status);
	server_resume(w->ctx, &reply);
	free(w);
}

static void
night_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	night_answer(arg, NULL);
}

/*
 * After a publish: every waiter whose list moved gets the new list.  One
 * render per distinct list a wake (waiters asking the same contests share
 * its bytes), NIGHT_WAKE_SLICE answers a turn of the loop.
 */
#define NIGHT_WAKE_SLICE	1000
#define NIGHT_LISTS		8

static void
night_wake(evutil_socket_t fd, short what, void *arg)
{
	struct live_night *nt = arg;
	struct contests *cs = nt->first->contests;
	struct timeval soon = { 0, 100 };
	struct night_waiter *w, *next, *like[NIGHT_LISTS];
	struct http_chunk *made[NIGHT_LISTS], *c;
	size_t n_made = 0, i;
	unsigned k = 0;

	(void)fd;
	(void)what;
	for (w = nt->waiters; w != NULL; w = next) {
		next = w->next;
		if (list_tag(cs, w->all ? NULL : w->idx, w->n) == w->tag)
			continue;
		if (k++ == NIGHT_WAKE_SLICE) {
			evtimer_add(nt->ev_wake, &soon);
			break;
		}
		for (i = 0, c = NULL; i < n_made; i++)
			if (like[i]->all == w->all && like[i]->n == w->n &&
			    memcmp(like[i]->idx, w->idx, w->n *
			    sizeof(w->idx[0])) == 0) {
				c = http_chunk_ref(made[i]);
				break;
			}
		if (i == n_made) {
			c = list_chunk(cs, w->all ? NULL : w->idx, w->n);
			if (c != NULL && n_made < NIGHT_LISTS) {
				/* like[] holds copies: w is freed below. */
				struct night_waiter *copy = malloc(sizeof(*w));
				if (copy != NULL) {
					*copy = *w;
					like[n_made] = copy;
					made[n_made++] = http_chunk_ref(c);
				}
			}
		}
		night_answer(w, c);
		http_chunk_unref(c);
	}
	for (i = 0; i < n_made; i++) {
		free(like[i]);
		http_chunk_unref(made[i]);
	}
}

/* A version of any contest was published (live.c's version hook). */
static void
night_published(void *arg)
{
	struct live_night *nt = arg;
	struct timeval soon = { 0, 100 };

	/* Answered after the round's POSTs, as live.c's long-polls. */
	if (nt->waiters != NULL && nt->ev_wake != NULL)
		evtimer_add(nt->ev_wake, &soon);
}

void
live_contests_serve_events(struct call *cl, const char *id)
{
	const char *several = http_arg(cl->rq, "contests");

	if (several == NULL)
		live_serve_events(cl, id);
	else
		live_contests_events(cl, several);
}

void
live_contests_list(struct call *cl, const char *id)
{
	struct api *first = (struct api *)(uintptr_t)first_api(cl->api);
	struct live_night *nt = first->night;
	const char *list = http_arg(cl->rq, "contests");
	const char *arg = http_arg(cl->rq, "wait");
	struct api *apis[STREAM_TOPICS_MAX];
	size_t idx[STREAM_TOPICS_MAX], n = 0;
	struct night_waiter *w;
	struct http_chunk *c;
	struct timeval tv;
	uint64_t tag;
	char etag[48], *end;
	long secs = 0;

	(void)id;
	if (first->contests == NULL) {
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "try again");
		return;
	}
	if (list != NULL && (n = parse_contests(cl, list, apis, idx)) == 0)
		return;
	if (arg != NULL) {
		secs = strtol(arg, &end, 10);
		if (*arg == '\0' || *end != '\0' || secs < 0 || secs > 60) {
			call_fail(cl, 400, "invalid_wait", NULL, "wait must be "
			    "a number of seconds from 0 to 60");
			return;
		}
	}
	tag = list_tag(first->contests, list != NULL ? idx : NULL, n);
	list_etag(etag, sizeof(etag), tag);
	if (!inm_matches(cl->rq->if_none_match, etag)) {
		c = list_chunk(first->contests, list != NULL ? idx : NULL, n);
		list_reply(cl->reply, c, false, etag);
		http_chunk_unref(c);
		return;
	}
	if (secs == 0 || nt == NULL || nt->stopping || nt->ev_wake == NULL) {
		list_reply(cl->reply, NULL, true, etag);
		return;
	}
	/* The subscribers' budget, shared with streams and long-polls. */
	if (live_refuse(cl))
		return;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->timer = evtimer_new(server_base(first->server), night_timeout,
	    w)) == NULL) {
		free(w);
		list_reply(cl->reply, NULL, true, etag);
		return;
	}
	w->nt = nt;
	w->all = list == NULL;
	w->n = n;
	memcpy(w->idx, idx, n * sizeof(idx[0]));
	w->tag = tag;
	w->ctx = cl->rq->ctx;
	tv.tv_sec = secs;
	tv.tv_usec = 0;
	evtimer_add(w->timer, &tv);
	w->next = nt->waiters;
	if (w->next != NULL)
		w->next->prev = w;
	nt->waiters = w;
	nt->n_waiters++;
	live_hold(first->live, 1);
	cl->reply->pending = true;
}

struct live_night *
live_night_create(struct api *first)
{
	struct live_night *nt;

	if ((nt = calloc(1, sizeof(*nt))) == NULL)
		return NULL;
	nt->first = first;
	live_set_version_hook(first->live, night_published, nt);
	return nt;
}

int
live_night_set_server(struct live_night *nt, struct server *srv)
{
	if (nt->ev_wake == NULL && (nt->ev_wake = evtimer_new(server_base(srv),
	    night_wake, nt)) == NULL)
		return -1;
	return 0;
}

void
live_night_stop(struct live_night *nt)
{
	if (nt == NULL)
		return;
	nt->stopping = true;
	while (nt->waiters != NULL)
		night_answer(nt->waiters, NULL);
}

void
live_night_destroy(struct live_night *nt)
{
	if (nt == NULL)
		return;
	while (nt->waiters != NULL)
		night_answer(nt->waiters, NULL);
	if (nt->ev_wake != NULL)
		event_free(nt->ev_wake);
	live_set_version_hook(nt->first->live, NULL, NULL);
	free(nt);
}
