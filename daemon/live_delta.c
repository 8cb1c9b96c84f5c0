/*
 * live_delta.c - delta events and the coalescing of versions (issue 24).
 *
 * A delta is taken between two leaderboards as rendered (the bytes GET
 * /v1/leaderboard serves), member by member, without decoding them: the
 * renderers write the same bytes for the same value, so two members are
 * equal exactly when their bytes are, and a member that changed is copied
 * into the delta as it was rendered (no second encoding, no float printed
 * again).  The coalitions array is compared row by row, by id.  The
 * provinces that changed are sent whole, as GET /v1/provinces/{id} serves
 * them (their cached views).  So a client holding the leaderboard of the
 * base version, applying "set", "unset", "coalitions" and "order", holds
 * exactly the leaderboard of the delta's version.
 *
 * Coalescing: the first version after a quiet interval is sent at once;
 * those that come within sse_coalesce_ms of the last event wait, their
 * provinces gathered, and one event is sent when the interval is over,
 * of the newest version then: a subscriber never misses the final state,
 * and no delta misses a province (the pending set holds every province
 * changed since the last event).
 *
 * Loop thread only [L].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "live_delta.h"
#include "response.h"
#include "views.h"

/* A delta sent: its events, from one stamp to the next. */
struct kept {
	struct http_chunk	*c;
	uint64_t		 from_version, from_digest;
	uint64_t		 to_version, to_digest;
};

/* All [L]; [I] set by live_delta_create. */
struct live_delta {
	struct views		*views;		/* [I] borrowed */
	long			 coalesce_ms;	/* [I] */
	void			(*flush)(void *);	/* [I] */
	void			*arg;		/* [I] */
	struct event		*timer;		/* [L] the interval's end */
	/* Provinces changed since the last event: mark[] by index, idx[]
	 * in the order met (sorted when read). */
	bool			*mark;		/* [L] n_mark entries */
	size_t			*idx;		/* [L] */
	size_t			 n_idx, n_mark;	/* [L] */
	uint64_t		 first, versions;	/* [L] since the last */
	uint64_t		 last_sent;	/* [L] the last event's version */
	struct timespec		 sent_at;	/* [L] its monotonic time */
	/* The base: the leaderboard of the last event, while streams of
	 * deltas follow (else NULL). */
	char			*base;		/* [L] */
	size_t			 base_len;	/* [L] */
	uint64_t		 base_version, base_digest;	/* [L] */
	/* The last deltas sent (plain), oldest at ring[head]: a resume
	 * from any of their stamps is filled from them. */
	struct kept		 ring[LIVE_DELTA_RING];	/* [L] */
	size_t			 head, n_ring;	/* [L] */
};

static void
ring_clear(struct live_delta *dl)
{
	size_t i;

	for (i = 0; i < dl->n_ring; i++)
		http_chunk_unref(dl->ring[(dl->head + i) % LIVE_DELTA_RING].c);
	dl->head = dl->n_ring = 0;
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct live_delta *dl = arg;

	(void)fd;
	(void)what;
	dl->flush(dl->arg);
}

struct live_delta *
live_delta_create(struct views *views, long coalesce_ms,
    void (*flush)(void *), void *arg)
{
	struct live_delta *dl;

	if ((dl = calloc(1, sizeof(*dl))) == NULL)
		return NULL;
	dl->views = views;
	dl->coalesce_ms = coalesce_ms;
	dl->flush = flush;
	dl->arg = arg;
	return dl;
}

void
live_delta_destroy(struct live_delta *dl)
{
	if (dl == NULL)
		return;
	if (dl->timer != NULL)
		event_free(dl->timer);
	ring_clear(dl);
	free(dl->mark);
	free(dl->idx);
	free(dl->base);
	free(dl);
}

int
live_delta_set_base(struct live_delta *dl, struct event_base *base)
{
	if (dl->timer == NULL &&
	    (dl->timer = evtimer_new(base, on_timer, dl)) == NULL)
		return -1;
	return 0;
}

static void
pending_clear(struct live_delta *dl)
{
	size_t i;

	for (i = 0; i < dl->n_idx; i++)
		if (dl->idx[i] < dl->n_mark)
			dl->mark[dl->idx[i]] = false;
	dl->n_idx = 0;
	dl->first = dl->versions = 0;
	if (dl->timer != NULL)
		evtimer_del(dl->timer);
}

/* Milliseconds from a to b (b later). */
static long
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (long)((b->tv_sec - a->tv_sec) * 1000 +
	    (b->tv_nsec - a->tv_nsec) / 1000000);
}

bool
live_delta_defer(struct live_delta *dl, uint64_t version,
    const size_t *changed, size_t n, size_t n_provinces)
{
	struct timespec now;
	struct timeval tv;
	size_t i;
	long ms;

	/* The election's size moved (a swap): the set starts again. */
	if (n_provinces != dl->n_mark) {
		bool *m = calloc(n_provinces ? n_provinces : 1, sizeof(*m));
		size_t *x = calloc(n_provinces ? n_provinces : 1, sizeof(*x));
		if (m == NULL || x == NULL) {
			free(m);
			free(x);
			return false;	/* sent now, of what it changed */
		}
		free(dl->mark);
		free(dl->idx);
		dl->mark = m;
		dl->idx = x;
		dl->n_mark = n_provinces;
		dl->n_idx = 0;
	}
	for (i = 0; i < n; i++)
		if (changed[i] < dl->n_mark && !dl->mark[changed[i]]) {
			dl->mark[changed[i]] = true;
			dl->idx[dl->n_idx++] = changed[i];
		}
	if (dl->versions++ == 0)
		dl->first = version;
	if (dl->coalesce_ms <= 0 || dl->timer == NULL)
		return false;
	if (evtimer_pending(dl->timer, NULL))
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = ms_between(&dl->sent_at, &now);
	if (dl->last_sent == 0 && dl->sent_at.tv_sec == 0)
		return false;		/* nothing sent yet */
	if (ms >= dl->coalesce_ms)
		return false;
	tv.tv_sec = (dl->coalesce_ms - ms) / 1000;
	tv.tv_usec = ((dl->coalesce_ms - ms) % 1000) * 1000;
	evtimer_add(dl->timer, &tv);
	return true;
}

bool
live_delta_waiting(const struct live_delta *dl)
{
	return dl->timer != NULL && evtimer_pending(dl->timer, NULL);
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

const size_t *
live_delta_pending(const struct live_delta *dl, size_t *n, uint64_t *first,
    uint64_t *versions, uint64_t *last_sent)
{
	/* Ascending: the same set gives the same bytes, whatever the order
	 * its versions came in. */
	qsort(dl->idx, dl->n_idx, sizeof(*dl->idx), cmp_size);
	*n = dl->n_idx;
	*first = dl->first;
	*versions = dl->versions;
	*last_sent = dl->last_sent;
	return dl->idx;
}

/* --- Members of rendered JSON, by their bytes ---------------------- */

/* A span of rendered JSON. */
struct span {
	const char	*p;
	size_t		 len;
};

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
	    *p == '\r'))
		p++;
	return p;
}

/* The end of the value at p (no leading space), or NULL. */
static const char *
skip_value(const char *p, const char *end)
{
	int depth = 0;

	if (p >= end)
		return NULL;
	if (*p != '"' && *p != '{' && *p != '[') {
		while (p < end && *p != ',' && *p != '}' && *p != ']' &&
		    *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
			p++;
		return p;
	}
	do {
		if (p >= end)
			return NULL;
		if (*p == '"') {
			for (p++; p < end && *p != '"'; p++)
				if (*p == '\\')
					p++;
			if (p >= end)
				return NULL;
		} else if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		p++;
	} while (depth > 0);
	return p;
}

/*
 * The next member of the object whose '{' *pp points at (first call) or
 * whose last member ended at *pp: 1 with key (quotes included) and value;
 * 0 at its end; -1 when the bytes are not such an object.
 */
static int
next_member(const char **pp, const char *end, struct span *key,
    struct span *val)
{
	const char *p = skip_ws(*pp, end), *e;

	if (p < end && (*p == '{' || *p == ','))
		p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		return 0;
	if (p >= end || *p != '"' || (e = skip_value(p, end)) == NULL)
		return -1;
	key->p = p;
	key->len = (size_t)(e - p);
	p = skip_ws(e, end);
	if (p >= end || *p != ':')
		return -1;
	p = skip_ws(p + 1, end);
	if ((e = skip_value(p, end)) == NULL)
		return -1;
	val->p = p;
	val->len = (size_t)(e - p);
	*pp = e;
	return 1;
}

/* The same for the elements of an array. */
static int
next_element(const char **pp, const char *end, struct span *val)
{
	const char *p = skip_ws(*pp, end), *e;

	if (p < end && (*p == '[' || *p == ','))
		p = skip_ws(p + 1, end);
	if (p < end && *p == ']')
		return 0;
	if ((e = skip_value(p, end)) == NULL)
		return -1;
	val->p = p;
	val->len = (size_t)(e - p);
	*pp = e;
	return 1;
}

static bool
span_eq(const struct span *a, const struct span *b)
{
	return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/* The value of member key (with quotes) in object o, or p NULL. */
static struct span
member_of(struct span o, const struct span *key)
{
	struct span k, v, none = { NULL, 0 };
	const char *p = o.p, *end = o.p + o.len;

	while (next_member(&p, end, &k, &v) == 1)
		if (span_eq(&k, key))
			return v;
	return none;
}

/* The rows of a coalitions array, and each one's id. */
struct rows {
	struct span	*row, *id;
	size_t		 n;
};

static int
rows_read(struct span arr, struct rows *r)
{
	const char *p = arr.p, *end = arr.p + arr.len;
	struct span v, id = { "\"id\"", 4 };
	size_t cap = 0;
	int k;

	memset(r, 0, sizeof(*r));
	while ((k = next_element(&p, end, &v)) == 1) {
		if (r->n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			struct span *a = realloc(r->row, nc * sizeof(*a));
			struct span *b = a ? realloc(r->id, nc * sizeof(*b)) :
			    NULL;
			if (a != NULL)
				r->row = a;
			if (b == NULL)
				return -1;
			r->id = b;
			cap = nc;
		}
		r->row[r->n] = v;
		if (v.len == 0 || *v.p != '{' ||
		    (r->id[r->n] = member_of(v, &id)).p == NULL)
			return -1;
		r->n++;
	}
	return k;
}

static void
rows_free(struct rows *r)
{
	free(r->row);
	free(r->id);
}

/* Has row c (current) lost a member row b (base) had? */
static bool
row_lost(struct span b, struct span c)
{
	const char *p = b.p, *end = b.p + b.len;
	struct span k, v;

	while (next_member(&p, end, &k, &v) == 1)
		if (member_of(c, &k).p == NULL)
			return true;
	return false;
}

/* {"id": id, every member of c (current) that differs from b's}. */
static void
row_patch(FILE *f, struct span b, struct span c, struct span id)
{
	const char *p = c.p, *end = c.p + c.len;
	struct span k, v, bv;

	fprintf(f, "{\"id\":%.*s", (int)id.len, id.p);
	while (next_member(&p, end, &k, &v) == 1) {
		if (k.len == 4 && memcmp(k.p, "\"id\"", 4) == 0)
			continue;
		bv = member_of(b, &k);
		if (bv.p != NULL && span_eq(&bv, &v))
			continue;
		fprintf(f, ",%.*s:%.*s", (int)k.len, k.p, (int)v.len, v.p);
	}
	fputs("}", f);
}

/*
 * The delta of leaderboard b (base) to c (current), each one JSON object
 * as rendered, written to f as an object (see live_delta_data).  0, or -1
 * when either is not an object of members (then nothing is written).
 */
static int
leaderboard_delta(FILE *f, struct span b, struct span c)
{
	struct span k, v, bv, bco = { NULL, 0 }, cco = { NULL, 0 };
	struct rows br, cr;
	const char *p, *end;
	bool comma = false, order = false;
	size_t i, j;
	int rc = -1;

	memset(&br, 0, sizeof(br));
	memset(&cr, 0, sizeof(cr));
	/* Both readable first: nothing is written for bad bytes. */
	for (p = c.p, end = c.p + c.len; (rc = next_member(&p, end, &k,
	    &v)) == 1; )
		if (k.len == 12 && memcmp(k.p, "\"coalitions\"", 12) == 0)
			cco = v;
	if (rc == -1)
		return -1;
	for (p = b.p, end = b.p + b.len; (rc = next_member(&p, end, &k,
	    &v)) == 1; )
		if (k.len == 12 && memcmp(k.p, "\"coalitions\"", 12) == 0)
			bco = v;
	if (rc == -1)
		return -1;
	/* Coalitions by row, when both are arrays of rows with ids. */
	if (cco.p != NULL && (bco.p == NULL || rows_read(cco, &cr) == -1 ||
	    rows_read(bco, &br) == -1))
		cco.p = NULL;
	fputs("{\"set\":{", f);
	for (p = c.p, end = c.p + c.len; next_member(&p, end, &k, &v) == 1; ) {
		if (cco.p != NULL && v.p == cco.p)
			continue;
		bv = member_of(b, &k);
		if (bv.p != NULL && span_eq(&bv, &v))
			continue;
		fprintf(f, "%s%.*s:%.*s", comma ? "," : "", (int)k.len, k.p,
		    (int)v.len, v.p);
		comma = true;
	}
	fputs("}", f);
	/* Members of the base gone now. */
	comma = false;
	for (p = b.p, end = b.p + b.len; next_member(&p, end, &k, &v) == 1; ) {
		if (member_of(c, &k).p != NULL)
			continue;
		fprintf(f, "%s%.*s", comma ? "," : ",\"unset\":[", (int)k.len,
		    k.p);
		comma = true;
	}
	if (comma)
		fputs("]", f);
	if (cco.p != NULL) {
		bool lost = false;
		/* A row that changed: its id and the members that differ (most
		 * often its share alone: every vote moves every share). */
		fputs(",\"coalitions\":[", f);
		comma = false;
		for (i = 0; i < cr.n; i++) {
			for (j = 0; j < br.n && !span_eq(&br.id[j], &cr.id[i]);
			    j++)
				;
			if (j < br.n && span_eq(&br.row[j], &cr.row[i]))
				continue;
			if (j < br.n && row_lost(br.row[j], cr.row[i])) {
				lost = true;
				continue;
			}
			fputs(comma ? "," : "", f);
			if (j == br.n)
				fprintf(f, "%.*s", (int)cr.row[i].len,
				    cr.row[i].p);
			else
				row_patch(f, br.row[j], cr.row[i], cr.id[i]);
			comma = true;
		}
		fputs("]", f);
		/* A row that lost members is sent whole, to replace. */
		comma = false;
		for (i = 0; lost && i < cr.n; i++) {
			for (j = 0; j < br.n && !span_eq(&br.id[j], &cr.id[i]);
			    j++)
				;
			if (j == br.n || !row_lost(br.row[j], cr.row[i]))
				continue;
			fprintf(f, "%s%.*s", comma ? "," : ",\"coalitions_replace"
			    "\":[", (int)cr.row[i].len, cr.row[i].p);
			comma = true;
		}
		if (comma)
			fputs("]", f);
		order = cr.n != br.n;
		for (i = 0; !order && i < cr.n; i++)
			order = !span_eq(&cr.id[i], &br.id[i]);
		if (order) {
			fputs(",\"order\":[", f);
			for (i = 0; i < cr.n; i++)
				fprintf(f, "%s%.*s", i ? "," : "",
				    (int)cr.id[i].len, cr.id[i].p);
			fputs("]", f);
		}
	}
	fputs("}", f);
	rows_free(&br);
	rows_free(&cr);
	return 0;
}

/* A rendered body without its trailing newline. */
static struct span
body_span(const char *bytes, size_t len)
{
	while (len > 0 && (bytes[len - 1] == '\n' || bytes[len - 1] == '\r'))
		len--;
	return (struct span){ bytes, len };
}

char *
live_delta_data(struct live_delta *dl)
{
	struct view *v;
	struct span b, c;
	char *buf = NULL, *prov = NULL;
	size_t len = 0, plen = 0, i;
	FILE *f;
	int rc;

	if (dl->base == NULL || (f = open_memstream(&prov, &plen)) == NULL)
		return NULL;
	qsort(dl->idx, dl->n_idx, sizeof(*dl->idx), cmp_size);
	/* The province views first: the leaderboard's pointer is taken after
	 * (views_current's pointers last until the next render). */
	for (i = 0; i < dl->n_idx; i++) {
		if ((v = views_current(dl->views, VIEW_PROVINCE,
		    dl->idx[i])) == NULL)
			break;
		c = body_span(v->bytes, v->len);
		fprintf(f, "%s%.*s", i ? "," : "", (int)c.len, c.p);
	}
	if (fclose(f) != 0 || i < dl->n_idx || (v = views_current(dl->views,
	    VIEW_LEADERBOARD, 0)) == NULL ||
	    (f = open_memstream(&buf, &len)) == NULL) {
		free(prov);
		return NULL;
	}
	fprintf(f, "{\"version\":%llu,\"from\":%llu,\"provinces\":[%s],"
	    "\"leaderboard\":", (unsigned long long)v->version,
	    (unsigned long long)dl->base_version, prov ? prov : "");
	free(prov);
	b = body_span(dl->base, dl->base_len);
	c = body_span(v->bytes, v->len);
	rc = leaderboard_delta(f, b, c);
	fputs("}", f);
	if (fclose(f) != 0 || rc == -1) {
		free(buf);
		return NULL;
	}
	return buf;
}

int
live_delta_rebase(struct live_delta *dl, const struct view *lb)
{
	char *b;

	if ((b = realloc(dl->base, lb->len ? lb->len : 1)) == NULL) {
		free(dl->base);
		dl->base = NULL;
		return -1;
	}
	memcpy(b, lb->bytes, lb->len);
	dl->base = b;
	dl->base_len = lb->len;
	dl->base_version = lb->version;
	dl->base_digest = lb->digest;
	return 0;
}

int
live_delta_sent(struct live_delta *dl, const struct view *lb, bool keep)
{
	pending_clear(dl);
	dl->last_sent = lb->version;
	clock_gettime(CLOCK_MONOTONIC, &dl->sent_at);
	if (keep)
		return live_delta_rebase(dl, lb);
	/* No deltas now: the ring would have a gap. */
	ring_clear(dl);
	free(dl->base);
	dl->base = NULL;
	return 0;
}

void
live_delta_keep(struct live_delta *dl, struct http_chunk *c,
    uint64_t version, uint64_t digest)
{
	struct kept *k;

	if (dl->base == NULL)
		return;
	/* Not following the last one kept: what came before is no help. */
	if (dl->n_ring > 0) {
		k = &dl->ring[(dl->head + dl->n_ring - 1) % LIVE_DELTA_RING];
		if (k->to_version != dl->base_version ||
		    k->to_digest != dl->base_digest)
			ring_clear(dl);
	}
	if (dl->n_ring == LIVE_DELTA_RING) {
		http_chunk_unref(dl->ring[dl->head].c);
		dl->head = (dl->head + 1) % LIVE_DELTA_RING;
		dl->n_ring--;
	}
	k = &dl->ring[(dl->head + dl->n_ring) % LIVE_DELTA_RING];
	k->c = http_chunk_ref(c);
	k->from_version = dl->base_version;
	k->from_digest = dl->base_digest;
	k->to_version = version;
	k->to_digest = digest;
	dl->n_ring++;
}

struct http_chunk *
live_delta_since(const struct live_delta *dl, const char *id)
{
	struct http_chunk *parts[LIVE_DELTA_RING];
	unsigned long long v, d;
	char *end;
	size_t i;

	v = strtoull(id, &end, 10);
	if (end == id || *end != '-' || strlen(end + 1) != 16)
		return NULL;
	d = strtoull(end + 1, &end, 16);
	if (*end != '\0')
		return NULL;
	for (i = 0; i < dl->n_ring; i++) {
		const struct kept *k = &dl->ring[(dl->head + i) %
		    LIVE_DELTA_RING];
		if (k->from_version == v && k->from_digest == d)
			break;
	}
	if (i == dl->n_ring)
		return NULL;
	/* The ring ends at the base: the last event sent. */
	{
		const struct kept *k = &dl->ring[(dl->head + dl->n_ring - 1) %
		    LIVE_DELTA_RING];
		if (dl->base == NULL || k->to_version != dl->base_version ||
		    k->to_digest != dl->base_digest)
			return NULL;
	}
	{
		size_t n = 0;
		for (; i < dl->n_ring; i++)
			parts[n++] = dl->ring[(dl->head + i) %
			    LIVE_DELTA_RING].c;
		return http_chunk_join(parts, n);
	}
}

void
live_delta_forget(struct live_delta *dl)
{
	pending_clear(dl);
}

bool
live_delta_is_base(const struct live_delta *dl, const struct view *lb)
{
	return dl->base != NULL && dl->base_version == lb->version &&
	    dl->base_digest == lb->digest;
}

void
live_delta_reset(struct live_delta *dl)
{
	pending_clear(dl);
	ring_clear(dl);
	free(dl->base);
	dl->base = NULL;
	dl->last_sent = 0;
}
