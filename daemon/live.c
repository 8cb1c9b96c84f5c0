/*
 * live.c - long-polls and event streams.
 *
 * The core tells us of every version (on_publish): the leaderboard is
 * rendered then, once, when streams are open (and so kept in the version
 * ring, views.c; else the ring keeps a copy of its totals), the
 * version's events are made once as reference-counted chunks and handed to
 * the server's streams; long-polls (?wait=S with If-None-Match) parked on a
 * view that changed are answered just after the POSTs of the round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "config.h"
#include "api.h"
#include "contests.h"
#include "core.h"
#include "http_strict.h"
#include "log.h"
#include "reply.h"
#include "response.h"
#include "server.h"
#include "stream.h"
#include "call.h"
#include "live.h"
#include "live_delta.h"
#include "views.h"

/* A long-poll parked until its view changes or its time is up. */
struct waiter {
	struct waiter		*prev, *next;
	struct live		*lv;
	enum route_id		 route;
	enum view_id		 id;
	size_t			 index;
	uint64_t		 version;	/* the stamp the client holds */
	uint64_t		 digest;
	char			*key;		/* a per-index view's province
						   or coalition id (found
						   again after a swap), or
						   NULL */
	bool			 gzip;		/* Accept-Encoding took gzip */
	void			*ctx;		/* the server's request */
	struct event		*timer;
};

/* All [L]: the loop thread; [I] set by live_create. */
struct live {
	struct api		*api;		/* [I] borrowed: core, views, server */
	long			 sse_max_clients;	/* [I] the subscribers'
							   budget */
	struct http_chunk	*hello_bare;	/* [I] "retry: 3000" */
	struct http_chunk	*hello;		/* [L] + a snapshot of the current */
	uint64_t		 hello_version;	/* [L] */
	uint64_t		 hello_digest;	/* [L] */
	struct waiter		*waiters;	/* [L] parked long-polls */
	unsigned		 n_waiters;	/* [L] */
	struct event		*ev_wake;	/* [L] answers the moved ones */
	struct timeval		 wake_after;	/* [I] after a publish: 100 us */
	bool			 stopping;	/* [L] */
	/* Long-polls of /v1/contests (live_contests.c) held in the budget;
	 * the first contest's: told of every contest's version. */
	unsigned		 n_held;	/* [L] live_hold */
	void			(*version_fn)(void *);	/* [L] */
	void			*version_arg;	/* [L] */
	/* A snapshot of the current version, its events naming the contest
	 * (?contests=, live_snapshot_named), and the stamp it was made at. */
	struct http_chunk	*snap_named;	/* [L] */
	uint64_t		 snap_named_version;	/* [L] */
	uint64_t		 snap_named_digest;	/* [L] */
	/* Deltas and coalescing (live_delta.c): the provinces changed since
	 * the last event sent, its leaderboard while streams of deltas
	 * follow, the coalescing timer. */
	struct live_delta	*dl;		/* [L] */
};

static void	on_publish(void *arg, uint64_t version, const size_t *changed,
		    size_t n);
static void	wake(evutil_socket_t fd, short what, void *arg);
static void	waiter_timeout(evutil_socket_t fd, short what, void *arg);
static void	waiter_answer(struct waiter *w);

/*
 * An event id: "<version>-<digest>", the version's stamp (its ETag without
 * quotes).  The digest names the epoch (definition and history), so a
 * Last-Event-ID from another data dir, another definition or a node that
 * had applied another history never passes for the current version.  In
 * the named form (contest not NULL, ?contests=) "<contest>:" comes first:
 * contest ids never hold ':' or ',' (tally_id_is_valid), so a client keeps
 * one id per contest and resumes each (live_contests.c).
 */
static void
event_id(char *buf, size_t len, const char *contest, uint64_t version,
    uint64_t digest)
{
	snprintf(buf, len, "%s%s%llu-%016llx", contest ? contest : "",
	    contest ? ":" : "", (unsigned long long)version,
	    (unsigned long long)digest);
}

/*
 * "id: ID\nevent: NAME\ndata: BYTES\n\n" at the end of f; a newline inside
 * the bytes starts another data line (the renderers write one line).
 */
static void
write_event(FILE *f, const char *id, const char *name, const char *bytes,
    size_t len)
{
	size_t i;

	while (len > 0 && bytes[len - 1] == '\n')
		len--;
	fprintf(f, "id: %s\nevent: %s\ndata: ", id, name);
	for (i = 0; i < len; i++) {
		if (bytes[i] == '\n')
			fputs("\ndata: ", f);
		else
			fputc(bytes[i], f);
	}
	fputs("\n\n", f);
}

/* A new chunk of the bytes written by a memstream (buf freed). */
static struct http_chunk *
chunk_of(char *buf, size_t len)
{
	struct http_chunk *c = buf ? http_chunk_new(buf, len, NULL, 0) : NULL;

	free(buf);
	return c;
}

/*
 * A snapshot of version lb (its leaderboard view), after `prefix`: a
 * "snapshot" event ({"version": n}: what follows is the whole state, the
 * versions before it are not replayed) and the leaderboard.  New, or NULL.
 */
static struct http_chunk *
snapshot_events(const char *prefix, const struct view *lb,
    const char *contest)
{
	char *buf = NULL, id[LIVE_ID_MAX], data[LIVE_ID_MAX];
	size_t len = 0;
	FILE *f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	event_id(id, sizeof(id), contest, lb->version, lb->digest);
	/* Named: the contest first, as in a change event. */
	snprintf(data, sizeof(data), "{%s%s%s\"version\":%llu}",
	    contest ? "\"contest\":\"" : "", contest ? contest : "",
	    contest ? "\"," : "", (unsigned long long)lb->version);
	fputs(prefix, f);
	write_event(f, id, "snapshot", data, strlen(data));
	write_event(f, id, "leaderboard", lb->bytes, lb->len);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return chunk_of(buf, len);
}

/*
 * The calls version made or retracted (tally/calls.h), one "call" event
 * each: a subscriber learns of a call the moment it is made.
 */
static void
live_call_events(FILE *f, const char *id, const struct tally_state *s,
    uint64_t first, uint64_t version, const char *contest)
{
	const struct tally_call *v;
	size_t n, i;
	char *data;

	v = tally_calls_list(s, &n);
	for (i = 0; i < n; i++) {
		json_t *o;
		/* Coalesced: every version since the last event. */
		if ((v[i].version < first || v[i].version > version) &&
		    !(v[i].retracted && v[i].retracted_version >= first &&
		    v[i].retracted_version <= version))
			continue;
		o = tally_call_json(s, &v[i]);
		if (contest != NULL)
			json_object_set_new(o, "contest", json_string(contest));
		data = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(o);
		if (data != NULL)
			write_event(f, id, "call", data, strlen(data));
		free(data);
	}
}

/*
 * A version's events: what changed, then the leaderboard.  Coalesced
 * (versions > 1): the provinces changed since the last event, version
 * `from`.  New, or NULL.
 */
static struct http_chunk *
version_events(struct live *lv, uint64_t version, const size_t *changed,
    size_t n, const struct view *lb, const char *contest, uint64_t first,
    uint64_t versions, uint64_t from)
{
	const struct tally_election *e = core_election(lv->api->core);
	const struct tally_state *s = core_state(lv->api->core);
	json_t *o = json_object(), *arr = json_array();
	char *change, *buf = NULL, id[LIVE_ID_MAX];
	size_t i, len = 0;
	FILE *f;

	for (i = 0; i < n; i++) {
		const struct tally_revision *rev =
		    tally_state_current(s, changed[i]);
		const struct tally_feed *fd = rev ? rev->feed : NULL;
		json_t *row = json_object();
		json_object_set_new(row, "id",
		    json_string(e->provinces[changed[i]].id));
		json_object_set_new(row, "revision", json_integer(
		    fd ? (json_int_t)fd->revision : 0));
		json_object_set_new(row, "status", json_string(
		    tally_status_name(fd ? fd->status : TALLY_STATUS_NONE)));
		/* Whether its seats can still change (tally/bounds.h): a
		 * subscriber sees the moment a province settles. */
		json_object_set_new(row, "settled",
		    json_boolean(s->provinces[changed[i]].bounds.settled));
		json_array_append_new(arr, row);
	}
	if (contest != NULL)
		json_object_set_new(o, "contest", json_string(contest));
	json_object_set_new(o, "version", json_integer((json_int_t)version));
	if (versions > 1)
		json_object_set_new(o, "from", json_integer((json_int_t)from));
	json_object_set_new(o, "provinces", arr);
	change = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(o);
	if (change == NULL || (f = open_memstream(&buf, &len)) == NULL) {
		free(change);
		return NULL;
	}
	event_id(id, sizeof(id), contest, lb->version, lb->digest);
	write_event(f, id, "change", change, strlen(change));
	write_event(f, id, "leaderboard", lb->bytes, lb->len);
	free(change);
	live_call_events(f, id, s, first, version, contest);
	if (fclose(f) != 0)
		return NULL;
	return chunk_of(buf, len);
}

/*
 * A version's events for a stream of deltas: the delta event (data: the
 * bytes of live_delta_data, borrowed; named: "contest" first), then the
 * calls.  New, or NULL.
 */
static struct http_chunk *
delta_events(struct live *lv, const char *data, const struct view *lb,
    const char *contest, uint64_t first, uint64_t version)
{
	char *buf = NULL, *named = NULL, id[LIVE_ID_MAX];
	size_t len = 0;
	FILE *f;

	if (contest != NULL && asprintf(&named, "{\"contest\":\"%s\",%s",
	    contest, data + 1) == -1)
		return NULL;
	if ((f = open_memstream(&buf, &len)) == NULL) {
		free(named);
		return NULL;
	}
	event_id(id, sizeof(id), contest, lb->version, lb->digest);
	data = named != NULL ? named : data;
	write_event(f, id, "delta", data, strlen(data));
	free(named);
	live_call_events(f, id, core_state(lv->api->core), first, version,
	    contest);
	if (fclose(f) != 0)
		return NULL;
	return chunk_of(buf, len);
}

/*
 * Event streams and long-polls share one budget (sse_max_clients), so that
 * subscribers can never crowd out a plain GET: when it is spent, answer 503
 * too_many_subscribers with Retry-After and return true.
 */
static bool
subscribers_full(struct live *lv, struct call *cl)
{
	if (server_streams(lv->api->server) + live_all_waiters(lv->api) <
	    (unsigned long)lv->sse_max_clients)
		return false;
	call_fail(cl, 503, "too_many_subscribers", NULL, "%ld subscribers "
	    "(event streams and long-polls) are open, the most this "
	    "server takes; retry later", lv->sse_max_clients);
	http_body_header(cl->reply->body, "Retry-After", "10");
	return true;
}

/* The id of the province (or coalition) a per-index view is of. */
static const char *
view_key(struct live *lv, enum view_id id, size_t index)
{
	const struct tally_election *e = core_election(lv->api->core);

	return id == VIEW_COALITION ? e->coalitions[index].id :
	    e->provinces[index].id;
}

/*
 * Long-poll.  ?wait=S (0 to 60) with an If-None-Match naming the current
 * view: the request is parked until the view's stamp moves (200 with the new
 * bytes) or S seconds pass (304).  true when parked (or refused: then the
 * reply is filled).
 */
bool
live_park(struct call *cl, enum view_id id, size_t index, const struct view *v)
{
	struct live *lv = cl->api->live;
	const char *arg = http_arg(cl->rq, "wait");
	struct timeval tv;
	struct waiter *w;
	char *end;
	long secs;

	if (arg == NULL || cl->rt->cache != CACHE_VIEW_WAIT)
		return false;
	secs = strtol(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || secs < 0 || secs > 60) {
		call_fail(cl, 400, "invalid_wait", NULL,
		    "wait must be a number of "
		    "seconds from 0 to 60");
		return true;
	}
	if (secs == 0 || lv->stopping || lv->ev_wake == NULL)
		return false;
	/* The subscribers' budget, shared with event streams. */
	if (subscribers_full(lv, cl))
		return true;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return false;		/* answered at once: 304 */
	w->lv = lv;
	w->route = cl->rt->id;
	w->id = id;
	w->index = index;
	w->version = v->version;
	w->digest = v->digest;
	w->gzip = cl->rq->gzip_ok;
	w->ctx = cl->rq->ctx;
	if ((id >= VIEW_SINGLES && (w->key = strdup(view_key(lv, id,
	    index))) == NULL) || (w->timer = evtimer_new(server_base(
	    lv->api->server), waiter_timeout, w)) == NULL) {
		free(w->key);
		free(w);
		return false;
	}
	tv.tv_sec = secs;
	tv.tv_usec = 0;
	evtimer_add(w->timer, &tv);
	w->next = lv->waiters;
	if (w->next != NULL)
		w->next->prev = w;
	lv->waiters = w;
	lv->n_waiters++;
	cl->reply->pending = true;
	return true;
}

/* Unpark w and send reply (taken). */
static void
waiter_end(struct waiter *w, const struct http_reply *reply)
{
	struct live *lv = w->lv;

	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		lv->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	lv->n_waiters--;
	event_free(w->timer);
	call_count(lv->api, w->route, reply->status);
	server_resume(w->ctx, reply);
	free(w->key);
	free(w);
}

/*
 * Answer a parked long-poll from the view's own bodies, the very ones a
 * GET gets: 200 with the current bytes when the view's stamp moved from
 * the one the client holds (also at its timeout: a 304 then would hand it
 * the new ETag for the old bytes), else 304.  The body is borrowed: the
 * server queues it at once (server_resume), so every long-poll of a
 * version and representation shares one response, with nothing made per
 * answer.
 */
static void
waiter_answer(struct waiter *w)
{
	struct live *lv = w->lv;
	struct core_stamp st = views_stamp(lv->api->views, w->id, w->index);
	struct view *v = views_current(lv->api->views, w->id, w->index);
	struct http_reply reply;

	memset(&reply, 0, sizeof(reply));
	if (v == NULL) {
		api_error(&reply, 503, "out_of_memory", NULL, "out of memory; "
		    "try again");
	} else if (st.version != w->version || st.digest != w->digest) {
		reply.status = 200;
		reply.body = v->plain;
		/* Without memory for gzip, the plain bytes still go out. */
		if (w->gzip && views_gzip(lv->api->views, v, st.at) != NULL)
			reply.body = v->gzip;
	} else {
		reply.status = 304;
		reply.body = w->gzip ? v->not_modified_gz : v->not_modified;
	}
	waiter_end(w, &reply);
}

static void
waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	waiter_answer(arg);
}

/*
 * After a publish: answer every long-poll whose view moved, in one pass.
 * Each answer only queues the view's shared response and resumes the
 * connection; libmicrohttpd then walks its suspended connections once and
 * sends them all in its next run.  (In slices of 1,000 with a turn of the
 * loop between, it walked all the suspended ones again for every slice, and
 * the re-polls of the first slices competed with the later slices' sends:
 * 20-25 % more CPU per version at 10,000 long-polls, docs/PERFORMANCE.md.
 * The price: a POST arriving meanwhile waits for that run.)
 */
static void
wake(evutil_socket_t fd, short what, void *arg)
{
	struct live *lv = arg;
	struct waiter *w, *next;

	(void)fd;
	(void)what;
	for (w = lv->waiters; w != NULL; w = next) {
		struct core_stamp st = views_stamp(lv->api->views, w->id, w->index);
		next = w->next;
		if (st.version != w->version || st.digest != w->digest)
			waiter_answer(w);
	}
}

/* Does a stream follow this contest, in either form? */
static bool
live_followed(struct live *lv)
{
	size_t t = live_topic(lv->api);

	return t != SIZE_MAX && (server_stream_subscribers(lv->api->server,
	    (unsigned)t, false) > 0 || server_stream_subscribers(
	    lv->api->server, (unsigned)t, true) > 0);
}

/*
 * The events of the newest version for the streams of this contest,
 * covering every version since the last event (the pending set,
 * live_delta.c): plain when a stream follows it alone, named when one
 * follows it among others (?contests=), each made once, and a delta of
 * each form when streams of deltas follow (else they are given the whole
 * events).  0, or -1 when nothing could be made.
 */
static int
live_publish(struct live *lv, uint64_t version, const struct view *lb)
{
	struct server *srv = lv->api->server;
	const char *name = core_election(lv->api->core)->id;
	uint64_t first, versions, from;
	const size_t *changed;
	struct stream_pub p;
	size_t t = live_topic(lv->api), n;
	unsigned subs, subs_n, dsubs, dsubs_n;
	char *delta = NULL;
	struct view *cur;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	p.topic = (unsigned)t;
	subs = server_stream_subscribers(srv, p.topic, false);
	subs_n = server_stream_subscribers(srv, p.topic, true);
	dsubs = server_stream_delta_subscribers(srv, p.topic, false);
	dsubs_n = server_stream_delta_subscribers(srv, p.topic, true);
	changed = live_delta_pending(lv->dl, &n, &first, &versions, &from);
	if (versions == 0)
		first = version;
	/* The delta renders province views: lb is taken again after. */
	if (dsubs + dsubs_n > 0 && (delta = live_delta_data(lv->dl)) != NULL &&
	    (cur = views_current(lv->api->views, VIEW_LEADERBOARD, 0)) != NULL)
		lb = cur;
	if (delta != NULL && dsubs > 0)
		p.d = delta_events(lv, delta, lb, NULL, first, version);
	if (delta != NULL && dsubs_n > 0)
		p.d_named = delta_events(lv, delta, lb, name, first, version);
	free(delta);
	if ((subs > dsubs || (dsubs > 0 && p.d == NULL)) &&
	    (p.c = version_events(lv, version, changed, n, lb, NULL, first,
	    versions, from)) == NULL && p.d == NULL)
		goto done;
	if (subs > 0)
		p.snap = snapshot_events("", lb, NULL);
	if (subs_n > dsubs_n || (dsubs_n > 0 && p.d_named == NULL))
		p.c_named = version_events(lv, version, changed, n, lb, name,
		    first, versions, from);
	if (subs_n > 0 && (p.c_named != NULL || p.d_named != NULL)) {
		p.snap_named = snapshot_events("", lb, name);
		http_chunk_unref(lv->snap_named);
		lv->snap_named = http_chunk_ref(p.snap_named);
		lv->snap_named_version = lb->version;
		lv->snap_named_digest = lb->digest;
	}
	if (p.c == NULL && p.c_named == NULL && p.d == NULL &&
	    p.d_named == NULL)
		goto done;
	server_stream_publish(srv, &p);
	/* Kept for resumes (from the base, before it moves on). */
	if (p.d != NULL)
		live_delta_keep(lv->dl, p.d, lb->version, lb->digest);
	/* The base of the next delta, while streams of deltas follow. */
	if (live_delta_sent(lv->dl, lb, dsubs + dsubs_n > 0) == -1)
		log_warnx("no memory for the base of the next delta: streams "
		    "of deltas get whole leaderboards");
	rc = 0;
done:
	http_chunk_unref(p.c);
	http_chunk_unref(p.snap);
	http_chunk_unref(p.c_named);
	http_chunk_unref(p.snap_named);
	http_chunk_unref(p.d);
	http_chunk_unref(p.d_named);
	return rc;
}

/*
 * Send what waits for the coalescing timer: the newest version's events,
 * covering every version since the last event (live_delta.c calls it when
 * the interval is over; live_deltas_ready before a stream of deltas
 * starts).  Its versions are in the ring already (on_publish).
 */
static void
live_flush(void *arg)
{
	struct live *lv = arg;
	struct view *lb;

	if (lv->api->server == NULL || server_streams(lv->api->server) == 0 ||
	    !live_followed(lv) || (lb = views_current(lv->api->views,
	    VIEW_LEADERBOARD, 0)) == NULL ||
	    live_publish(lv, core_stamp(lv->api->core, SIZE_MAX)->version,
	    lb) == -1)
		live_delta_forget(lv->dl);
}

static void
on_publish(void *arg, uint64_t version, const size_t *changed, size_t n)
{
	struct live *lv = arg;
	struct api *first;
	struct view *lb;

	/*
	 * Streams get every version: rendered now, before the state moves on
	 * with the next request of the round (and so kept in the ring), with
	 * its snapshot for a stream that has to skip versions.  Without
	 * streams the ring keeps a copy of the version's totals, written out
	 * when first asked: every version of its range is servable (a version
	 * nobody was served was missing, while the 404 said "versions 0 to 8
	 * are kept").  Every contest publishes under its index (its topic,
	 * stream.c), for the streams that follow it.
	 */
	if (lv->api->server == NULL || server_streams(lv->api->server) == 0 ||
	    !live_followed(lv)) {
		live_delta_forget(lv->dl);
		lb = NULL;
	} else if (live_delta_defer(lv->dl, version, changed, n,
	    core_election(lv->api->core)->n_provinces)) {
		/* Coalesced (sse_coalesce_ms): sent when the interval ends. */
		lb = NULL;
	} else if ((lb = views_current(lv->api->views, VIEW_LEADERBOARD,
	    0)) != NULL && live_publish(lv, version, lb) == -1) {
		live_delta_forget(lv->dl);
		lb = NULL;
	}
	if (lb == NULL && views_version_publish(lv->api->views, version) == -1)
		log_warnx("version %llu is not kept for /v1/versions: out of "
		    "memory", (unsigned long long)version);
	/* Long-polls are answered after the round's POSTs. */
	if (lv->waiters != NULL)
		evtimer_add(lv->ev_wake, &lv->wake_after);
	/* /v1/contests's long-polls follow every contest (live_contests.c). */
	first = lv->api->first != NULL ? lv->api->first : lv->api;
	if (first->live != NULL && first->live->version_fn != NULL)
		first->live->version_fn(first->live->version_arg);
}

/*
 * GET /v1/events: "retry", then, unless the client's last event id
 * (Last-Event-ID, or ?last_event_id=) is exactly the current version's
 * ("<version>-<digest>"), a snapshot: a "snapshot" event and the current
 * leaderboard.  Events between are not kept, so a resume that cannot be
 * served exactly (an older id, a bare number, an id of another epoch or of
 * a node ahead of this one) always starts from a snapshot that says so.
 */
void
live_serve_events(struct call *cl, const char *id)
{
	struct live *lv = cl->api->live;
	const char *last = cl->rq->last_event_id;
	const struct core_stamp *st = core_stamp(lv->api->core, SIZE_MAX);
	size_t topic = live_topic(lv->api);
	struct view *lb;
	char cur[LIVE_ID_MAX];
	struct http_chunk *gap;
	int deltas;

	(void)id;
	if ((deltas = live_deltas_arg(cl)) == -1 || live_refuse(cl))
		return;
	/* Deltas start from the state the hello holds (live_deltas_ready). */
	if (deltas && live_deltas_ready(lv) == -1) {
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "try again");
		return;
	}
	st = core_stamp(lv->api->core, SIZE_MAX);
	/* A further contest's stream follows its index (stream.c). */
	if ((topic != 0 || deltas) && (topic == SIZE_MAX ||
	    (cl->reply->stream_sub = calloc(1,
	    sizeof(*cl->reply->stream_sub))) == NULL)) {
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "try again");
		return;
	}
	if (cl->reply->stream_sub != NULL) {
		cl->reply->stream_sub->n = 1;
		cl->reply->stream_sub->topic[0] = (unsigned)topic;
		cl->reply->stream_sub->deltas = deltas;
	}
	if (last == NULL)
		last = http_arg(cl->rq, "last_event_id");
	event_id(cur, sizeof(cur), NULL, st->version, st->digest);
	if (last != NULL && strcmp(last, cur) == 0) {
		cl->reply->stream = http_chunk_ref(lv->hello_bare);
	} else if (deltas && last != NULL &&
	    (gap = live_delta_since(lv->dl, last)) != NULL) {
		/* A resume the kept deltas fill: no leaderboard again. */
		struct http_chunk *parts[2] = { lv->hello_bare, gap };
		cl->reply->stream = http_chunk_join(parts, 2);
		http_chunk_unref(gap);
		if (cl->reply->stream == NULL)
			goto nomem;
	} else {
		if (lv->hello == NULL || lv->hello_version != st->version ||
		    lv->hello_digest != st->digest) {
			http_chunk_unref(lv->hello);
			lv->hello = NULL;
			if ((lb = views_current(lv->api->views, VIEW_LEADERBOARD, 0)) == NULL)
				goto nomem;
			lv->hello = snapshot_events("retry: 3000\n\n", lb, NULL);
			lv->hello_version = st->version;
			lv->hello_digest = st->digest;
			if (lv->hello == NULL)
				goto nomem;
		}
		cl->reply->stream = http_chunk_ref(lv->hello);
	}
	cl->reply->status = 200;
	return;
nomem:
	stream_sub_free(cl->reply->stream_sub);
	cl->reply->stream_sub = NULL;
	call_fail(cl, 500, "internal", NULL, "out of memory");
}

int
live_deltas_arg(struct call *cl)
{
	const char *arg = http_arg(cl->rq, "deltas");

	if (arg == NULL || strcmp(arg, "0") == 0)
		return 0;
	if (strcmp(arg, "1") == 0)
		return 1;
	call_fail(cl, 400, "invalid_deltas", NULL, "deltas is 1 (a delta "
	    "event per version after the whole leaderboard) or 0");
	return -1;
}

/*
 * A stream of deltas starts now: what waits for the coalescing timer is
 * sent first (the stream's hello then holds the state its first delta is
 * taken from), and the base is the current leaderboard.  0, or -1 without
 * memory.
 */
int
live_deltas_ready(struct live *lv)
{
	struct view *lb;

	if (live_delta_waiting(lv->dl))
		live_flush(lv);
	if ((lb = views_current(lv->api->views, VIEW_LEADERBOARD, 0)) == NULL)
		return -1;
	if (live_delta_is_base(lv->dl, lb))
		return 0;
	return live_delta_rebase(lv->dl, lb);
}

bool
live_refuse(struct call *cl)
{
	struct live *lv = cl->api->live;

	if (lv->stopping) {
		call_fail(cl, 503, "shutting_down", NULL, "tallyd is stopping; "
		    "reconnect after the restart");
		http_body_header(cl->reply->body, "Retry-After", "5");
		return true;
	}
	return subscribers_full(lv, cl);
}

size_t
live_topic(const struct api *api)
{
	const struct api *first = api->first != NULL ? api->first : api;
	size_t i;

	if (api->contest == NULL)
		return 0;
	if (first->contests == NULL ||
	    (i = contests_find(first->contests, api->contest)) == SIZE_MAX)
		return SIZE_MAX;	/* not yet registered, or removed */
	return contests_topic(first->contests, i);
}

unsigned
live_all_waiters(const struct api *api)
{
	const struct api *first = api->first != NULL ? api->first : api;
	const struct api *a;
	unsigned n = 0;
	size_t i;

	if (first->contests == NULL)
		return first->live->n_waiters + first->live->n_held;
	for (i = 0; i < contests_count(first->contests); i++)
		if ((a = contests_api(first->contests, i)) != NULL &&
		    a->live != NULL)
			n += a->live->n_waiters + a->live->n_held;
	return n;
}

void
live_hold(struct live *lv, int delta)
{
	lv->n_held = (unsigned)((int)lv->n_held + delta);
}

void
live_set_version_hook(struct live *lv, void (*fn)(void *), void *arg)
{
	lv->version_fn = fn;
	lv->version_arg = arg;
}

void
live_event_id(const struct live *lv, char *buf, size_t len, bool named)
{
	const struct core_stamp *st = core_stamp(lv->api->core, SIZE_MAX);

	event_id(buf, len, named ? core_election(lv->api->core)->id : NULL,
	    st->version, st->digest);
}

struct http_chunk *
live_snapshot_named(struct live *lv)
{
	const struct core_stamp *st = core_stamp(lv->api->core, SIZE_MAX);
	struct view *lb;

	if (lv->snap_named == NULL || lv->snap_named_version != st->version ||
	    lv->snap_named_digest != st->digest) {
		http_chunk_unref(lv->snap_named);
		lv->snap_named = NULL;
		if ((lb = views_current(lv->api->views, VIEW_LEADERBOARD,
		    0)) == NULL)
			return NULL;
		lv->snap_named = snapshot_events("", lb,
		    core_election(lv->api->core)->id);
		lv->snap_named_version = st->version;
		lv->snap_named_digest = st->digest;
	}
	return http_chunk_ref(lv->snap_named);
}

void
live_stop(struct live *lv)
{
	live_retire(lv, SERVER_TOPICS_ALL);
}

void
live_retire(struct live *lv, unsigned topic)
{
	/* A coalesced event still waiting goes out before the streams end:
	 * the last event a subscriber gets is the final state. */
	if (live_delta_waiting(lv->dl))
		live_flush(lv);
	lv->stopping = true;
	while (lv->waiters != NULL)
		waiter_answer(lv->waiters);
	if (lv->api->server != NULL)
		server_streams_end(lv->api->server, topic);
}

struct live *
live_create(struct api *api, const struct config *cf)
{
	struct live *lv;

	if ((lv = calloc(1, sizeof(*lv))) == NULL)
		return NULL;
	lv->api = api;
	lv->wake_after.tv_usec = 100;
#ifdef TALLYD_FAILPOINTS
	{
		/*
		 * TALLYD_FAILPOINTS="wake_delay_ms=N" (tests): long-polls are
		 * woken N ms after a publish, so that one can time out first.
		 */
		const char *fp = getenv("TALLYD_FAILPOINTS"), *at;
		if (fp != NULL && (at = strstr(fp, "wake_delay_ms=")) != NULL) {
			long ms = atol(at + 14);
			lv->wake_after.tv_sec = ms / 1000;
			lv->wake_after.tv_usec = (ms % 1000) * 1000;
		}
	}
#endif
	/*
	 * Subscribers (event streams and long-polls) have their own budget,
	 * at most 3/4 of a listener's connections: the rest stays for plain
	 * requests, which a flood of subscribers can then never crowd out.
	 */
	lv->sse_max_clients = cf->sse_max_clients;
	if (lv->sse_max_clients > cf->connection_limit -
	    cf->connection_limit / 4) {
		lv->sse_max_clients = cf->connection_limit -
		    cf->connection_limit / 4;
		log_warnx("sse_max_clients %ld: at most 3/4 of connection_limit "
		    "%ld, %ld subscribers (event streams and long-polls) are "
		    "taken", cf->sse_max_clients, cf->connection_limit,
		    lv->sse_max_clients);
	}
	if ((lv->hello_bare = http_chunk_new("retry: 3000\n\n", 13, NULL,
	    0)) == NULL || (lv->dl = live_delta_create(api->views,
	    cf->sse_coalesce_ms, live_flush, lv)) == NULL ||
	    core_subscribe(api->core, on_publish, lv) == -1) {
		live_destroy(lv);
		return NULL;
	}
	return lv;
}

int
live_set_server(struct live *lv, struct server *srv)
{
	if (lv->ev_wake == NULL &&
	    (lv->ev_wake = evtimer_new(server_base(srv), wake, lv)) == NULL)
		return -1;
	return live_delta_set_base(lv->dl, server_base(srv));
}

void
live_destroy(struct live *lv)
{
	if (lv == NULL)
		return;
	while (lv->waiters != NULL)
		waiter_answer(lv->waiters);
	if (lv->ev_wake != NULL)
		event_free(lv->ev_wake);
	http_chunk_unref(lv->hello_bare);
	http_chunk_unref(lv->hello);
	http_chunk_unref(lv->snap_named);
	live_delta_destroy(lv->dl);
	free(lv);
}

/*
 * A definition swap: a long-poll of a province (or coalition) held its
 * index in the old definition, which names another one, or none, in the
 * new.  Each is found again by its id (gone: 404, as a GET would answer);
 * then every long-poll whose view's stamp moved (the new definition's
 * digest) is answered, as after a publish.
 */
static void
waiters_new_epoch(struct live *lv)
{
	const struct tally_election *e = core_election(lv->api->core);
	struct waiter *w, *next;

	for (w = lv->waiters; w != NULL; w = next) {
		const struct tally_province *pv = NULL;
		const struct tally_coalition *co = NULL;
		struct http_reply reply;

		next = w->next;
		if (w->key == NULL)
			continue;
		if (w->id == VIEW_COALITION ?
		    (co = tally_election_coalition(e, w->key)) != NULL :
		    (pv = tally_election_province(e, w->key)) != NULL) {
			w->index = co != NULL ? co->index : pv->index;
			continue;
		}
		memset(&reply, 0, sizeof(reply));
		if (w->id == VIEW_COALITION)
			api_error(&reply, 404, "unknown_coalition", NULL, "no "
			    "coalition \"%s\" in election %s: the definition "
			    "was replaced while this long-poll waited", w->key,
			    e->id);
		else
			api_error(&reply, 404, "unknown_province", NULL, "no "
			    "province \"%s\" in election %s: the definition "
			    "was replaced while this long-poll waited", w->key,
			    e->id);
		waiter_end(w, &reply);
	}
	if (lv->waiters != NULL && lv->ev_wake != NULL) {
		struct timeval soon = { 0, 0 };
		evtimer_add(lv->ev_wake, &soon);
	}
}

void
live_new_epoch(struct live *lv)
{
	struct api *api = lv->api;
	struct stream_pub p;
	struct view *lb;

	waiters_new_epoch(lv);
	/* The next delta streams' base is the new election's snapshot. */
	live_delta_reset(lv->dl);
	http_chunk_unref(lv->hello);
	lv->hello = NULL;
	http_chunk_unref(lv->snap_named);
	lv->snap_named = NULL;
	if (api->server == NULL || server_streams(api->server) == 0 ||
	    !live_followed(lv) ||
	    (lb = views_current(api->views, VIEW_LEADERBOARD, 0)) == NULL)
		return;
	/* A snapshot of the new election, in each form followed. */
	memset(&p, 0, sizeof(p));
	p.topic = (unsigned)live_topic(api);
	if (server_stream_subscribers(api->server, p.topic, false) > 0)
		p.c = p.snap = snapshot_events("", lb, NULL);
	if (server_stream_subscribers(api->server, p.topic, true) > 0)
		p.c_named = p.snap_named = live_snapshot_named(lv);
	if (p.c != NULL || p.c_named != NULL)
		server_stream_publish(api->server, &p);
	http_chunk_unref(p.c);
	http_chunk_unref(p.c_named);
}

