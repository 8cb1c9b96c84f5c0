/* render.c - the JSON views of a state (see tally/render.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/majority.h>
#include <tally/render.h>

#include "tally-private.h"

double
tally_share(uint64_t part, uint64_t whole)
{
	unsigned __int128 bp;

	if (whole == 0)
		return 0.0;
	/* Basis points rounded half up in integers; the double is display. */
	bp = ((unsigned __int128)part * 20000 + whole) / (2 * (unsigned __int128)whole);
	return (double)(uint64_t)bp / 100.0;
}

/*
 * qsort has no context argument in C11; the state being ranked is parked
 * here for the comparison.  Rendering happens on the one thread that owns
 * the state.
 */
static const struct tally_state *rank_state;

/* Seats desc, votes desc, id asc (DESIGN: the ranking). */
static int
rank_cmp(const void *a, const void *b)
{
	const struct tally_election *e = rank_state->election;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct tally_coalition_total *x = &rank_state->coalitions[i];
	const struct tally_coalition_total *y = &rank_state->coalitions[j];

	if (x->seats != y->seats)
		return x->seats > y->seats ? -1 : 1;
	if (x->votes != y->votes)
		return x->votes > y->votes ? -1 : 1;
	return strcmp(e->coalitions[i].id, e->coalitions[j].id);
}


/*
 * A coalition's national bounds: the sum over reporting provinces, plus
 * every seat of the provinces that have not reported (anyone may win them).
 */
static uint64_t
coalition_max(const struct tally_state *s, size_t c)
{
	/*
	 * Bounds cover district seats; a levelling tier may still give a
	 * coalition any of its seats (a safe, loose bound).
	 */
	return s->coalitions[c].seats_max + s->seats_unreported +
	    (s->election->levelling.enabled ? s->election->levelling.seats : 0);
}

/* The majority: sure (its fewest reach it), out of reach, or still open. */
static const char *
majority_name(const struct tally_state *s, size_t c)
{
	uint64_t m = s->election->seats_total / 2 + 1;

	if (s->coalitions[c].seats_min >= m)
		return "clinched";
	if (coalition_max(s, c) < m)
		return "out_of_reach";
	return "possible";
}

json_t *
tally_render_leaderboard(const struct tally_state *s, const char *updated_at)
{
	const struct tally_election *e = s->election;
	json_t *o, *el, *seats, *prov, *votes, *arr;
	size_t *order, i;

	if ((order = tally_ranking(s)) == NULL)
		return NULL;

	o = json_object();
	el = json_object();
	json_object_set_new(el, "id", json_string(e->id));
	json_object_set_new(el, "name", json_string(e->name));
	json_object_set_new(o, "election", el);
	json_object_set_new(o, "version", json_integer((json_int_t)s->version));
	json_object_set_new(o, "updated_at", updated_at ?
	    json_string(updated_at) : json_null());
	seats = json_object();
	json_object_set_new(seats, "total", json_integer((json_int_t)e->seats_total));
	json_object_set_new(seats, "allocated",
	    json_integer((json_int_t)s->seats_allocated));
	json_object_set_new(seats, "pending",
	    json_integer((json_int_t)s->seats_pending));
	json_object_set_new(seats, "majority",
	    json_integer((json_int_t)(e->seats_total / 2 + 1)));
	json_object_set_new(o, "seats", seats);
	prov = json_object();
	json_object_set_new(prov, "total", json_integer((json_int_t)e->n_provinces));
	json_object_set_new(prov, "reporting",
	    json_integer((json_int_t)s->provinces_reporting));
	json_object_set_new(prov, "final",
	    json_integer((json_int_t)s->provinces_final));
	json_object_set_new(o, "provinces", prov);
	/* Provinces whose seats the uncounted can no longer change. */
	json_object_set_new(o, "provinces_settled",
	    json_integer((json_int_t)s->provinces_settled));
	prov = json_object();
	json_object_set_new(prov, "reporting",
	    json_integer((json_int_t)s->stations_reporting));
	json_object_set_new(prov, "total",
	    json_integer((json_int_t)s->stations_total));
	json_object_set_new(o, "stations", prov);
	votes = json_object();
	json_object_set_new(votes, "valid", json_integer((json_int_t)s->valid));
	json_object_set_new(votes, "blank", json_integer((json_int_t)s->blank));
	json_object_set_new(votes, "invalid", json_integer((json_int_t)s->invalid));
	json_object_set_new(o, "votes", votes);
	arr = json_array();
	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_coalition *c = &e->coalitions[order[i]];
		const struct tally_coalition_total *t = &s->coalitions[order[i]];
		json_t *row = json_object();
		json_object_set_new(row, "rank", json_integer((json_int_t)i + 1));
		json_object_set_new(row, "id", json_string(c->id));
		json_object_set_new(row, "name", json_string(c->name));
		json_object_set_new(row, "short", json_string(c->short_name ?
		    c->short_name : c->name));
		tally_color_json(row, c);
		json_object_set_new(row, "votes", json_integer((json_int_t)t->votes));
		json_object_set_new(row, "share",
		    json_real(tally_share(t->votes, s->valid)));
		json_object_set_new(row, "seats", json_integer((json_int_t)t->seats));
		json_object_set_new(row, "district_seats",
		    json_integer((json_int_t)t->district_seats));
		json_object_set_new(row, "levelling_seats",
		    json_integer((json_int_t)t->levelling_seats));
		json_object_set_new(row, "tied_for", json_integer((json_int_t)t->tied_for));
		json_object_set_new(row, "seats_min",
		    json_integer((json_int_t)t->seats_min));
		json_object_set_new(row, "seats_max",
		    json_integer((json_int_t)coalition_max(s, order[i])));
		json_object_set_new(row, "majority",
		    json_string(majority_name(s, order[i])));
		json_array_append_new(arr, row);
	}
	json_object_set_new(o, "coalitions", arr);
	free(order);
	return o;
}

/*
 * Room for n more bytes (and the NUL) in b: the leaderboard's writer
 * writes through a pointer, its room checked once a piece (a row's head,
 * its figures) rather than once a string or number.  The place to write
 * at, or NULL (b->nomem) without memory.
 */
static char *
buf_room(struct tally_buf *b, size_t n)
{
	return tally_buf_room(b, n);
}

/* What was written through the pointer from buf_room, taken into b. */
static void
buf_done(struct tally_buf *b, char *o)
{
	b->len = (size_t)(o - b->p);
	b->p[b->len] = '\0';
}

#define PUT_LIT(o, lit)	do {						\
	memcpy((o), "" lit, sizeof(lit) - 1);				\
	(o) += sizeof(lit) - 1;						\
} while (0)

/* The decimal digits of v at o (at most 20); past them.  Two digits a
 * division: the leaderboard writes 8 numbers a row at every version. */
static char *
put_uint(char *o, uint64_t v)
{
	static const char pairs[] =
	    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	    "8081828384858687888990919293949596979899";
	char tmp[20], *p = tmp + sizeof(tmp);
	size_t n;

	if (v < 10) {
		*o++ = (char)('0' + v);
		return o;
	}
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100);
		v /= 100;
		p -= 2;
		memcpy(p, pairs + 2 * d, 2);
	}
	if (v >= 10) {
		p -= 2;
		memcpy(p, pairs + 2 * v, 2);
	} else
		*--p = (char)('0' + v);
	n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(o, p, n);
	return o + n;
}

/* JSON strings as jansson writes them (lib/jsontext.c). */
#define JSON_STRING_ROOM(len)	TALLY_JSON_STRING_ROOM(len)
#define put_json_string(o, str)	tally_json_put_string((o), (str))

static void
buf_json_string(struct tally_buf *b, const char *str)
{
	char *o;

	if ((o = buf_room(b, JSON_STRING_ROOM(strlen(str)))) != NULL)
		buf_done(b, put_json_string(o, str));
}

static void
buf_key_uint(struct tally_buf *b, const char *key, uint64_t v)
{
	tally_buf_str(b, key);
	tally_buf_uint(b, v);
}

/*
 * The share of part in whole as JSON text (out, NUL-terminated; its length):
 * what jansson writes for tally_share(part, whole) with
 * JSON_REAL_PRECISION(10).
 */
size_t
tally_render_share(uint64_t part, uint64_t whole, char out[48])
{
	unsigned __int128 bp;
	uint64_t ip, frac;
	char tmp[24], *p = tmp + sizeof(tmp);
	size_t n;

	if (whole == 0)
		bp = 0;
	else
		bp = ((unsigned __int128)part * 20000 + whole) /
		    (2 * (unsigned __int128)whole);
	/*
	 * The share in basis points, written as %.10g writes bp / 100.0
	 * (tally_share, what jansson prints with JSON_REAL_PRECISION(10)):
	 * at most 9 significant digits, so the decimal is exact and %.10g
	 * only drops the fraction's trailing zeros ("12.3", "12.34", and
	 * "12.0" for a whole number, jansson's ".0").  snprintf of a double
	 * was a third of the leaderboard's render.  Beyond 10^9 basis
	 * points (never a share), the double's own text.
	 */
	if (bp >= 1000000000) {
		/* As jansson's dtostr: ".0" when neither a point nor an
		 * exponent, the exponent without '+' and leading zeros. */
		char *x, *d;
		int m = snprintf(out, 48, "%.10g", tally_share(part, whole));
		if (strpbrk(out, ".eE") == NULL && m + 2 < 48) {
			memcpy(out + m, ".0", 3);
			m += 2;
		}
		if ((x = strchr(out, 'e')) != NULL) {
			d = ++x;
			if (*x == '-')
				d = ++x;
			else if (*x == '+')
				x++;
			while (*x == '0' && x[1] != '\0')
				x++;
			memmove(d, x, strlen(x) + 1);
			m = (int)strlen(out);
		}
		return (size_t)m;
	}
	ip = (uint64_t)bp / 100;
	frac = (uint64_t)bp % 100;
	do {
		*--p = (char)('0' + ip % 10);
		ip /= 10;
	} while (ip != 0);
	n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(out, p, n);
	out[n++] = '.';
	out[n++] = (char)('0' + frac / 10);
	if (frac % 10 != 0)
		out[n++] = (char)('0' + frac % 10);
	out[n] = '\0';
	return n;
}

char *
tally_render_leaderboard_text(const struct tally_state *s,
    const char *updated_at)
{
	const struct tally_election *e = s->election;
	const struct tally_lb_pieces *lp;
	struct tally_buf b = { NULL, 0, 0, false };
	size_t *order, i;
	char *o;

	/*
	 * The hottest view, rendered at every version (the transparency
	 * log hashes each): written directly rather than built as jansson
	 * objects, byte for byte what json_dumps(tally_render_leaderboard())
	 * gives (tests/test_render.c), through a pointer whose room is
	 * checked once a piece.
	 */
	if ((order = tally_ranking(s)) == NULL)
		return NULL;
	/* One allocation for most elections (Spain's 67 rows: 18.8 KB). */
	b.cap = 1024 + e->n_coalitions * 320;
	if ((b.p = malloc(b.cap)) == NULL) {
		free(order);
		return NULL;
	}
	/* The definition's constant pieces, escaped when it was loaded. */
	lp = e->lb_pieces != NULL && e->lb_pieces->n == e->n_coalitions ?
	    e->lb_pieces : NULL;
	if ((o = buf_room(&b, 600 + (lp ? lp->head_len : JSON_STRING_ROOM(
	    strlen(e->id) + strlen(e->name))) + JSON_STRING_ROOM(updated_at ?
	    strlen(updated_at) : 0))) == NULL)
		goto done;
	if (lp != NULL) {
		memcpy(o, lp->head, lp->head_len);
		o += lp->head_len;
	} else {
		PUT_LIT(o, "{\"election\":{\"id\":");
		o = put_json_string(o, e->id);
		PUT_LIT(o, ",\"name\":");
		o = put_json_string(o, e->name);
		PUT_LIT(o, "},\"version\":");
	}
	o = put_uint(o, s->version);
	PUT_LIT(o, ",\"updated_at\":");
	if (updated_at != NULL)
		o = put_json_string(o, updated_at);
	else
		PUT_LIT(o, "null");
	PUT_LIT(o, ",\"seats\":{\"total\":");
	o = put_uint(o, e->seats_total);
	PUT_LIT(o, ",\"allocated\":");
	o = put_uint(o, s->seats_allocated);
	PUT_LIT(o, ",\"pending\":");
	o = put_uint(o, s->seats_pending);
	PUT_LIT(o, ",\"majority\":");
	o = put_uint(o, e->seats_total / 2 + 1);
	PUT_LIT(o, "},\"provinces\":{\"total\":");
	o = put_uint(o, e->n_provinces);
	PUT_LIT(o, ",\"reporting\":");
	o = put_uint(o, s->provinces_reporting);
	PUT_LIT(o, ",\"final\":");
	o = put_uint(o, s->provinces_final);
	PUT_LIT(o, "},\"provinces_settled\":");
	o = put_uint(o, s->provinces_settled);
	PUT_LIT(o, ",\"stations\":{\"reporting\":");
	o = put_uint(o, s->stations_reporting);
	PUT_LIT(o, ",\"total\":");
	o = put_uint(o, s->stations_total);
	PUT_LIT(o, "},\"votes\":{\"valid\":");
	o = put_uint(o, s->valid);
	PUT_LIT(o, ",\"blank\":");
	o = put_uint(o, s->blank);
	PUT_LIT(o, ",\"invalid\":");
	o = put_uint(o, s->invalid);
	PUT_LIT(o, "},\"coalitions\":[");
	buf_done(&b, o);
	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_coalition *c = &e->coalitions[order[i]];
		const struct tally_coalition_total *t = &s->coalitions[order[i]];
		const char *shown = c->short_name ? c->short_name : c->name;
		/* The row's head: its rank and names, and its figures (8
		 * numbers of at most 20 digits, a share) in the room. */
		if ((o = buf_room(&b, 500 + (lp ? lp->row_len[order[i]] :
		    JSON_STRING_ROOM(strlen(c->id) + strlen(c->name) +
		    strlen(shown))))) == NULL)
			goto done;
		if (i > 0)
			*o++ = ',';
		PUT_LIT(o, "{\"rank\":");
		o = put_uint(o, i + 1);
		if (lp != NULL) {
			memcpy(o, lp->row[order[i]], lp->row_len[order[i]]);
			o += lp->row_len[order[i]];
		} else {
			PUT_LIT(o, ",\"id\":");
			o = put_json_string(o, c->id);
			PUT_LIT(o, ",\"name\":");
			o = put_json_string(o, c->name);
			PUT_LIT(o, ",\"short\":");
			o = put_json_string(o, shown);
			buf_done(&b, o);
			tally_color_buf(&b, c);
			if ((o = buf_room(&b, 400)) == NULL)
				goto done;
		}
		PUT_LIT(o, ",\"votes\":");
		o = put_uint(o, t->votes);
		PUT_LIT(o, ",\"share\":");
		o += tally_render_share(t->votes, s->valid, o);
		PUT_LIT(o, ",\"seats\":");
		o = put_uint(o, t->seats);
		PUT_LIT(o, ",\"district_seats\":");
		o = put_uint(o, t->district_seats);
		PUT_LIT(o, ",\"levelling_seats\":");
		o = put_uint(o, t->levelling_seats);
		PUT_LIT(o, ",\"tied_for\":");
		o = put_uint(o, t->tied_for);
		PUT_LIT(o, ",\"seats_min\":");
		o = put_uint(o, t->seats_min);
		PUT_LIT(o, ",\"seats_max\":");
		o = put_uint(o, coalition_max(s, order[i]));
		PUT_LIT(o, ",\"majority\":\"");
		{
			const char *m = majority_name(s, order[i]);
			size_t ml = strlen(m);
			memcpy(o, m, ml);
			o += ml;
		}
		PUT_LIT(o, "\"}");
		buf_done(&b, o);
	}
	if ((o = buf_room(&b, 2)) != NULL) {
		PUT_LIT(o, "]}");
		buf_done(&b, o);
	}
done:
	free(order);
	if (b.nomem) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* x before y in the ranking (rank_cmp's order, ids by their place). */
static inline bool
rank_before(const struct tally_coalition_total *t, const uint32_t *id_rank,
    size_t x, size_t y)
{
	if (t[x].seats != t[y].seats)
		return t[x].seats > t[y].seats;
	if (t[x].votes != t[y].votes)
		return t[x].votes > t[y].votes;
	return id_rank[x] < id_rank[y];
}

/*
 * order sorted as rank_cmp sorts it, by a merge sort whose comparison is
 * inline and never calls strcmp (the definition's pieces hold each id's
 * place in id order): the ranking is a total order, so any correct sort
 * gives the same order as qsort.  qsort through rank_cmp was a seventh of
 * the leaderboard's render.  0, or -1 without memory (order untouched).
 */
static int
rank_merge(const struct tally_state *s, size_t *order, size_t n)
{
	const struct tally_coalition_total *t = s->coalitions;
	const uint32_t *id_rank = s->election->lb_pieces->id_rank;
	size_t *tmp, *src = order, *dst, *sw, w, lo, i, j, k, mid, hi;

	if (n < 2)
		return 0;
	if ((tmp = malloc(n * sizeof(*tmp))) == NULL)
		return -1;
	dst = tmp;
	/* Runs of 8 by insertion, then merged by doubling widths. */
	for (lo = 0; lo < n; lo += 8) {
		hi = lo + 8 < n ? lo + 8 : n;
		for (i = lo + 1; i < hi; i++) {
			size_t v = src[i];
			for (j = i; j > lo && rank_before(t, id_rank, v,
			    src[j - 1]); j--)
				src[j] = src[j - 1];
			src[j] = v;
		}
	}
	for (w = 8; w < n; w *= 2) {
		for (lo = 0; lo < n; lo += 2 * w) {
			mid = lo + w < n ? lo + w : n;
			hi = lo + 2 * w < n ? lo + 2 * w : n;
			i = lo;
			j = mid;
			k = lo;
			while (i < mid && j < hi)
				dst[k++] = rank_before(t, id_rank, src[j],
				    src[i]) ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		sw = src;
		src = dst;
		dst = sw;
	}
	if (src != order)
		memcpy(order, src, n * sizeof(*order));
	free(tmp);
	return 0;
}

/* The national order of coalitions (new array of indices; NULL on ENOMEM). */
size_t *
tally_ranking(const struct tally_state *s)
{
	size_t n = s->election->n_coalitions, *order, i;

	if ((order = malloc((n ? n : 1) * sizeof(*order))) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		order[i] = i;
	if (s->election->lb_pieces != NULL && s->election->lb_pieces->n == n &&
	    rank_merge(s, order, n) == 0)
		return order;
	rank_state = s;
	qsort(order, n, sizeof(*order), rank_cmp);
	rank_state = NULL;
	return order;
}

static json_t *
juint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *
jstr_or_null(const char *str)
{
	return str != NULL && str[0] != '\0' ? json_string(str) : json_null();
}

static const char *
threshold_name(uint8_t ts)
{
	switch (ts) {
	case TALLY_TS_PASSED:	return "passed";
	case TALLY_TS_FAILED:	return "failed";
	case TALLY_TS_EXCLUDED:	return "excluded";
	case TALLY_TS_EXEMPT:	return "exempt";
	default:		return "none";
	}
}

/* The index in the feed of the province's leading list, or SIZE_MAX. */
static size_t
province_leader(const struct tally_state *s, size_t p)
{
	const struct tally_revision *cur = tally_state_current(s, p);
	const struct tally_seat_result *r = &s->provinces[p].result;
	size_t i, best = SIZE_MAX;

	if (cur == NULL)
		return SIZE_MAX;
	for (i = 0; i < cur->feed->n_lists; i++) {
		const struct tally_feed_list *l = &cur->feed->lists[i];
		if (best == SIZE_MAX || r->seats[i] > r->seats[best] ||
		    (r->seats[i] == r->seats[best] &&
		    l->votes > cur->feed->lists[best].votes))
			best = i;
	}
	return best;
}

static uint64_t
list_votes(const struct tally_feed *f)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < f->n_lists; i++)
		sum += f->lists[i].votes;
	return sum;
}

static void
set_progress(json_t *o, const struct tally_state *s, size_t p)
{
	const struct tally_province *pv = &s->election->provinces[p];
	const struct tally_revision *cur = tally_state_current(s, p);
	const struct tally_province_state *ps = &s->provinces[p];
	const struct tally_seat_result *r = &ps->result;
	json_t *votes, *st;

	json_object_set_new(o, "id", json_string(pv->id));
	json_object_set_new(o, "name", json_string(pv->name));
	json_object_set_new(o, "seats", json_integer(pv->seats));
	json_object_set_new(o, "revision", juint(cur ? cur->feed->revision : 0));
	json_object_set_new(o, "status", json_string(cur ?
	    tally_status_name(cur->feed->status) : "none"));
	json_object_set_new(o, "reported_at",
	    jstr_or_null(cur ? cur->feed->reported_at : NULL));
	json_object_set_new(o, "received_at",
	    jstr_or_null(cur ? cur->received_at : NULL));
	if (cur != NULL && cur->feed->has_stations) {
		st = json_object();
		json_object_set_new(st, "reporting",
		    juint(cur->feed->stations_reporting));
		json_object_set_new(st, "total", juint(cur->feed->stations_total));
		json_object_set_new(o, "stations", st);
	} else
		json_object_set_new(o, "stations", json_null());
	votes = json_object();
	json_object_set_new(votes, "valid", juint(cur ?
	    list_votes(cur->feed) + cur->feed->blank : 0));
	json_object_set_new(votes, "blank", juint(cur ? cur->feed->blank : 0));
	json_object_set_new(votes, "invalid", juint(cur ? cur->feed->invalid : 0));
	json_object_set_new(o, "votes", votes);
	json_object_set_new(o, "allocated", juint(cur ? r->allocated : 0));
	json_object_set_new(o, "pending_seats", juint(cur ? r->pending : 0));
	/*
	 * What the uncounted can still change: settled when no list's seats
	 * can, and the bound on the uncounted ballots it used (null votes: no
	 * bound known, so nothing is guaranteed).
	 */
	json_object_set_new(o, "settled", json_boolean(cur != NULL &&
	    ps->bounds.settled));
	st = json_object();
	json_object_set_new(st, "votes", cur != NULL && ps->uncounted_from !=
	    TALLY_UNCOUNTED_UNKNOWN ? juint(ps->uncounted) : json_null());
	json_object_set_new(st, "from", json_string(tally_uncounted_name(cur ?
	    ps->uncounted_from : TALLY_UNCOUNTED_UNKNOWN)));
	json_object_set_new(st, "exact", json_boolean(cur != NULL &&
	    ps->bounds.exact));
	json_object_set_new(o, "uncounted", st);
}

/* Every province (only < 0), or only those settled (1) or not (0). */
static json_t *
render_provinces(const struct tally_state *s, int only)
{
	const struct tally_election *e = s->election;
	json_t *o = json_object(), *arr = json_array();
	size_t p;

	json_object_set_new(o, "version", juint(s->version));
	for (p = 0; p < e->n_provinces; p++) {
		json_t *row, *lead = json_null();
		size_t li;
		bool settled = tally_state_current(s, p) != NULL &&
		    s->provinces[p].bounds.settled;
		if (only >= 0 && settled != (only == 1))
			continue;
		row = json_object();
		li = province_leader(s, p);
		set_progress(row, s, p);
		if (li != SIZE_MAX) {
			const struct tally_feed_list *l =
			    &tally_state_current(s, p)->feed->lists[li];
			lead = json_object();
			json_object_set_new(lead, "list", json_string(l->id));
			json_object_set_new(lead, "coalition",
			    json_string(e->coalitions[l->coalition].id));
			json_object_set_new(lead, "votes", juint(l->votes));
			json_object_set_new(lead, "seats",
			    juint(s->provinces[p].result.seats[li]));
		}
		json_object_set_new(row, "leader", lead);
		json_array_append_new(arr, row);
	}
	json_object_set_new(o, "provinces", arr);
	return o;
}

json_t *
tally_render_provinces(const struct tally_state *s)
{
	return render_provinces(s, -1);
}

json_t *
tally_render_provinces_settled(const struct tally_state *s, bool settled)
{
	return render_provinces(s, settled ? 1 : 0);
}

/* Lists of a province: seats desc, votes desc, list id asc. */
static const struct tally_state *order_state;
static size_t order_province;

static int
list_order_cmp(const void *a, const void *b)
{
	const struct tally_feed *f =
	    tally_state_current(order_state, order_province)->feed;
	const struct tally_seat_result *r =
	    &order_state->provinces[order_province].result;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;

	if (r->seats[i] != r->seats[j])
		return r->seats[i] > r->seats[j] ? -1 : 1;
	if (f->lists[i].votes != f->lists[j].votes)
		return f->lists[i].votes > f->lists[j].votes ? -1 : 1;
	return strcmp(f->lists[i].id, f->lists[j].id);
}

static json_t *
quot_json(const struct tally_quot *q)
{
	json_t *o = json_object();
	char buf[96];

	json_object_set_new(o, "value", json_real(tally_quot_to_double(q)));
	/* The exact quotient: votes / divisor, the divisor as num/den. */
	if (q->den == 1)
		snprintf(buf, sizeof(buf), "%llu/%llu",
		    (unsigned long long)q->votes, (unsigned long long)q->num);
	else
		snprintf(buf, sizeof(buf), "%llu/(%llu/%llu)",
		    (unsigned long long)q->votes, (unsigned long long)q->num,
		    (unsigned long long)q->den);
	json_object_set_new(o, "exact", json_string(buf));
	return o;
}

/*
 * Why a list's threshold status is what it is: the percent that applied
 * (null when none did) and a sentence naming the rule (the coalition's own
 * reason when it gives one).
 */
static void
set_threshold_reason(json_t *row, const struct tally_election *e,
    const struct tally_province *pv, size_t coalition, uint8_t ts)
{
	const struct tally_list_threshold *own =
	    &e->coalitions[coalition].threshold;
	bool mine = own->set && !own->exempt;
	struct tally_frac pct = mine ? own->percent :
	    pv->rule.threshold_percent;
	const char *where = pv->rule.threshold_scope == TALLY_SCOPE_NATIONAL ?
	    "of the national vote" : "in this province";
	char buf[64], msg[512];

	if (ts == TALLY_TS_NONE) {
		json_object_set_new(row, "threshold_percent", json_null());
		json_object_set_new(row, "threshold_reason", json_null());
		return;
	}
	if (ts == TALLY_TS_EXEMPT) {
		json_object_set_new(row, "threshold_percent", json_null());
		snprintf(msg, sizeof(msg), "exempt from every threshold%s%s",
		    own->reason ? ": " : "", own->reason ? own->reason : "");
		json_object_set_new(row, "threshold_reason", json_string(msg));
		return;
	}
	tally_frac_format(pct, buf, sizeof(buf));
	snprintf(msg, sizeof(msg), "%s %s threshold of %s %% %s%s%s",
	    ts == TALLY_TS_PASSED ? "at or above" : "below",
	    mine ? "its own" : "the", buf, where, mine && own->reason ? ": " :
	    "", mine && own->reason ? own->reason : "");
	json_object_set_new(row, "threshold_percent", json_string(buf));
	json_object_set_new(row, "threshold_reason", json_string(msg));
}

/* ?explain=1 of a two-tier election: the national table and assignment. */
static json_t *
levelling_json(const struct tally_state *s)
{
	const struct tally_election *e = s->election;
	const struct tally_levelling_result *r = s->levelling;
	json_t *o = json_object(), *nat = json_array(), *as = json_array(), *t;
	char buf[64], ex[160];
	size_t c, k;

	json_object_set_new(o, "seats", juint(e->levelling.seats));
	t = json_object();
	if (e->levelling.national.threshold_of != TALLY_THRESHOLD_NONE) {
		json_object_set_new(t, "percent", json_string(tally_frac_format(
		    e->levelling.national.threshold_percent, buf, sizeof(buf))));
		json_object_set_new(t, "of", json_string(tally_threshold_of_name(
		    e->levelling.national.threshold_of)));
		json_object_set_new(t, "base", juint(r->threshold_base));
	}
	json_object_set_new(o, "threshold", t);
	json_object_set_new(o, "rounds", juint(r->rounds));
	json_object_set_new(o, "apportioned", juint(r->apportioned));
	json_object_set_new(o, "pending", juint(r->pending));
	json_object_set_new(o, "unassigned", juint(r->unassigned));
	json_object_set_new(o, "tie", json_boolean(r->tie || r->assign_tie));
	for (c = 0; c < e->n_coalitions; c++) {
		json_t *row;
		if (s->coalitions[c].votes == 0 && r->district[c] == 0)
			continue;
		row = json_object();
		json_object_set_new(row, "coalition",
		    json_string(e->coalitions[c].id));
		json_object_set_new(row, "votes", juint(s->coalitions[c].votes));
		json_object_set_new(row, "eligible", json_boolean(r->eligible[c]));
		json_object_set_new(row, "district_seats", juint(r->district[c]));
		json_object_set_new(row, "national_share", r->eligible[c] ?
		    juint(r->share[c]) : json_null());
		json_object_set_new(row, "set_aside_in_round", r->set_aside[c] ?
		    juint(r->set_aside[c]) : json_null());
		json_object_set_new(row, "levelling_seats", juint(r->seats[c]));
		json_array_append_new(nat, row);
	}
	json_object_set_new(o, "national", nat);
	for (k = 0; k < r->n_steps; k++) {
		const struct tally_levelling_step *st = &r->steps[k];
		const struct tally_revision *cur =
		    tally_state_current(s, st->province);
		json_t *row = json_object(), *q = json_object();
		double v = (double)st->votes * (double)st->div_den *
		    (double)st->prov_seats / ((double)st->div_num *
		    (double)st->prov_votes);

		json_object_set_new(row, "seat", juint(k + 1));
		json_object_set_new(row, "province",
		    json_string(e->provinces[st->province].id));
		json_object_set_new(row, "list", json_string(cur != NULL ?
		    cur->feed->lists[st->list].id : e->coalitions[st->coalition].id));
		json_object_set_new(row, "coalition",
		    json_string(e->coalitions[st->coalition].id));
		json_object_set_new(row, "votes", juint(st->votes));
		json_object_set_new(row, "district_seats", juint(st->district));
		/* Display only; the decision compared the exact fractions. */
		json_object_set_new(q, "value", json_real(v));
		snprintf(ex, sizeof(ex), "%llu/(%llu/%llu)/(%llu/%u)",
		    (unsigned long long)st->votes,
		    (unsigned long long)st->div_num,
		    (unsigned long long)st->div_den,
		    (unsigned long long)st->prov_votes, st->prov_seats);
		json_object_set_new(q, "exact", json_string(ex));
		json_object_set_new(row, "quotient", q);
		json_array_append_new(as, row);
	}
	json_object_set_new(o, "assignment", as);
	return o;
}
static json_t	*lot_json(const struct tally_lot *lot);

json_t *
tally_render_province(const struct tally_state *s, size_t p, bool explain)
{
	const struct tally_election *e = s->election;
	const struct tally_province *pv = &e->provinces[p];
	const struct tally_revision *cur = tally_state_current(s, p);
	const struct tally_seat_result *r = &s->provinces[p].result;
	const struct tally_seat_bounds *bd = &s->provinces[p].bounds;
	struct tally_seat_result scratch;
	struct tally_seat_input in;
	json_t *o = json_object(), *lists = json_array(), *pend = json_array();
	uint64_t *votes = NULL, valid;
	bool *excl = NULL, scratch_ok = false;
	size_t *order = NULL, i, n;
	char buf[64];

	set_progress(o, s, p);
	json_object_set_new(o, "method", json_string(tally_method_name(pv->rule.method)));
	if (pv->rule.method == TALLY_METHOD_DHONDT ||
	    pv->rule.method == TALLY_METHOD_SAINTE_LAGUE)
		json_object_set_new(o, "first_divisor", json_string(
		    tally_frac_format(pv->rule.first_divisor, buf, sizeof(buf))));
	if (e->levelling.enabled)
		json_object_set_new(o, "levelling_seats", juint(pv->levelling_seats));
	json_object_set_new(o, "lists", lists);
	json_object_set_new(o, "pending", pend);
	if (explain && s->levelling != NULL)
		json_object_set_new(o, "levelling", levelling_json(s));
	{
		bool in_force;
		const struct tally_lot *lot = tally_state_lot(s, p, &in_force);
		json_t *lj = lot ? lot_json(lot) : json_null();
		if (lot != NULL) {
			/* Stale: a later count changed the tie it settled. */
			json_object_set_new(lj, "in_force", json_boolean(in_force));
			json_object_set_new(lj, "stale", json_boolean(!in_force));
		}
		json_object_set_new(o, "lot", lj);
	}
	if (cur == NULL)
		return o;

	n = cur->feed->n_lists;
	valid = list_votes(cur->feed) + cur->feed->blank;
	order = malloc((n ? n : 1) * sizeof(*order));
	votes = malloc((e->n_coalitions ? e->n_coalitions : 1) * sizeof(*votes));
	excl = malloc((e->n_coalitions ? e->n_coalitions : 1) * sizeof(*excl));
	if (order == NULL || votes == NULL || excl == NULL)
		goto fail;
	scratch_ok = tally_seat_result_init(&scratch, n, pv->seats) == 0;
	if (!scratch_ok)
		goto fail;
	tally_state_seat_input(s, p, &in, votes, excl);
	for (i = 0; i < n; i++)
		order[i] = i;
	order_state = s;
	order_province = p;
	qsort(order, n, sizeof(*order), list_order_cmp);
	order_state = NULL;

	for (i = 0; i < n; i++) {
		const struct tally_feed_list *l = &cur->feed->lists[order[i]];
		json_t *row = json_object();
		uint64_t next, margin;

		json_object_set_new(row, "id", json_string(l->id));
		json_object_set_new(row, "coalition",
		    json_string(e->coalitions[l->coalition].id));
		json_object_set_new(row, "votes", juint(l->votes));
		json_object_set_new(row, "share", json_real(tally_share(l->votes,
		    valid)));
		json_object_set_new(row, "seats", juint(r->seats[order[i]]));
		json_object_set_new(row, "levelling_seats",
		    juint(tally_levelling_in(s, p, l->coalition)));
		json_object_set_new(row, "threshold",
		    json_string(threshold_name(r->threshold[order[i]])));
		set_threshold_reason(row, e, pv, l->coalition,
		    r->threshold[order[i]]);
		if (tally_seats_explain(&in, r, order[i], &scratch, &next,
		    &margin) == -1) {
			json_decref(row);
			goto fail;
		}
		json_object_set_new(row, "next_seat_votes", next == UINT64_MAX ?
		    json_null() : juint(next));
		json_object_set_new(row, "last_seat_margin",
		    r->seats[order[i]] > 0 ? juint(margin) : json_null());
		/* Equal when settled; null when no bound on the uncounted. */
		json_object_set_new(row, "seats_min", bd->known ?
		    juint(bd->min[order[i]]) : json_null());
		json_object_set_new(row, "seats_max", bd->known ?
		    juint(bd->max[order[i]]) : json_null());
		json_array_append_new(lists, row);
	}
	if (r->pending > 0) {
		json_t *t = json_object(), *tied = json_array();
		json_object_set_new(t, "seats", juint(r->pending));
		for (i = 0; i < r->n_tied; i++)
			json_array_append_new(tied,
			    json_string(cur->feed->lists[r->tied[i]].id));
		json_object_set_new(t, "tied", tied);
		json_object_set_new(t, "rule", json_string(
		    tally_ties_name(pv->rule.ties)));
		json_array_append_new(pend, t);
	}
	if (explain) {
		json_t *steps = json_array();
		for (i = 0; i < r->n_steps; i++) {
			const struct tally_seat_step *st = &r->steps[i];
			json_t *row = json_object();
			json_object_set_new(row, "seat", juint(i + 1));
			json_object_set_new(row, "list",
			    json_string(cur->feed->lists[st->list].id));
			json_object_set_new(row, st->remainder ? "remainder" :
			    "quotient", quot_json(&st->quot));
			if (st->by_tie_rule)
				json_object_set_new(row, "tie_rule", json_string(
				    tally_ties_name(pv->rule.ties)));
			json_array_append_new(steps, row);
		}
		json_object_set_new(o, "steps", steps);
		if (TALLY_METHOD_IS_QUOTA(pv->rule.method))
			json_object_set_new(o, "quota", quot_json(&r->quota));
	}
	tally_seat_result_finish(&scratch);
	free(order);
	free(votes);
	free(excl);
	return o;
fail:
	if (scratch_ok)
		tally_seat_result_finish(&scratch);
	free(order);
	free(votes);
	free(excl);
	json_decref(o);
	return NULL;
}

/*
 * One step of merging two revisions' lists (both sorted by id): < 0 when
 * f's list j comes first (or prev is done), > 0 when prev's list k does,
 * 0 when both name the same list.
 */
static int
merge_step(const struct tally_feed *f, size_t j, const struct tally_feed *prev,
    size_t k)
{
	if (prev == NULL || k >= prev->n_lists)
		return -1;
	if (j >= f->n_lists)
		return 1;
	return strcmp(f->lists[j].id, prev->lists[k].id);
}

/* A revision's feed: in memory, or read with the loader (*tmp to free). */
static const struct tally_feed *
revision_feed(const struct tally_revision *rev, tally_revision_loader load,
    void *ctx, struct tally_feed **tmp, char *received_at)
{
	*tmp = NULL;
	snprintf(received_at, 40, "%s", rev->received_at);
	if (rev->feed != NULL)
		return rev->feed;
	if (load == NULL)
		return NULL;
	*tmp = load(ctx, rev, received_at);
	return *tmp;
}

/*
 * The seats of one revision, allocated again for its history row by the
 * live allocation's own input (tally_state_feed_input: the province's rule,
 * coalitions' own percents and exemptions): the national exclusions in
 * force now are used (a national threshold that moved since is not
 * replayed), so a row says how that count divided the province's seats.
 */
struct history_seats {
	struct tally_seat_result r;
	bool			 ok;
	size_t			 order[TALLY_LOT_MAX];
	uint64_t		*votes;
	bool			*excluded;
	struct tally_frac	*pct;
	bool			*exempt;
};

static void
history_seats_finish(struct history_seats *hs)
{
	size_t i;

	for (i = 0; i < 2; i++) {
		if (hs[i].ok)
			tally_seat_result_finish(&hs[i].r);
		free(hs[i].votes);
		free(hs[i].excluded);
		free(hs[i].pct);
		free(hs[i].exempt);
		memset(&hs[i], 0, sizeof(hs[i]));
	}
}

static int
history_allocate(const struct tally_state *s, size_t p,
    const struct tally_feed *f, struct history_seats *hs)
{
	const struct tally_province *pv = &s->election->provinces[p];
	struct tally_seat_input in;
	size_t i, n = f->n_lists ? f->n_lists : 1;

	if (hs->ok)
		tally_seat_result_finish(&hs->r);
	hs->ok = false;
	free(hs->votes);
	free(hs->excluded);
	free(hs->pct);
	free(hs->exempt);
	hs->votes = malloc(n * sizeof(*hs->votes));
	hs->excluded = malloc(n * sizeof(*hs->excluded));
	hs->pct = malloc(n * sizeof(*hs->pct));
	hs->exempt = malloc(n * sizeof(*hs->exempt));
	if (hs->votes == NULL || hs->excluded == NULL || hs->pct == NULL ||
	    hs->exempt == NULL ||
	    tally_seat_result_init(&hs->r, n, pv->seats) == -1)
		return -1;
	hs->ok = true;
	tally_state_feed_input(s, f, NULL, &in, hs->votes, hs->excluded,
	    hs->pct, hs->exempt);
	if (tally_seats_allocate(&in, &hs->r) == -1)
		return -1;
	/* The newest lot posted up to this revision, if it settled its tie. */
	for (i = s->provinces[p].n_lots; i > 0; i--) {
		const struct tally_lot *lot = s->provinces[p].lots[i - 1];
		if (lot->revision > f->revision)
			continue;
		if (tally_lot_matches(lot, f, &hs->r, hs->order)) {
			in.lot_order = hs->order;
			in.n_lot = lot->n;
			return tally_seats_allocate(&in, &hs->r);
		}
		break;
	}
	return 0;
}

static json_t *
lot_json(const struct tally_lot *lot)
{
	json_t *o = json_object(), *order = json_array();
	size_t i;

	for (i = 0; i < lot->n; i++)
		json_array_append_new(order, json_string(lot->order[i]));
	json_object_set_new(o, "revision", juint(lot->revision));
	json_object_set_new(o, "order", order);
	json_object_set_new(o, "received_at", jstr_or_null(lot->received_at));
	json_object_set_new(o, "by", lot->by ? json_string(lot->by) :
	    json_null());
	return o;
}

static void
set_delta(json_t *o, const char *key, uint64_t now, uint64_t before)
{
	if (now != before)
		json_object_set_new(o, key, json_integer((json_int_t)now -
		    (json_int_t)before));
}

/*
 * Everything a revision changed against the previous one (prev NULL: the
 * first), as row members "delta" (blank, invalid, stations, status: only
 * what moved) and "seats_moved" ({list: delta}, in the province and so in
 * the national count).  hs[0] holds the previous revision's seats.
 */
static int
history_changes(const struct tally_state *s, size_t p,
    const struct tally_feed *prev, const struct tally_feed *f,
    struct history_seats *hs, size_t *n_hs, json_t *row)
{
	json_t *d = json_object(), *moved = json_object();
	struct history_seats tmp;
	size_t j, k;

	if (history_allocate(s, p, f, &hs[1]) == -1) {
		json_decref(d);
		json_decref(moved);
		return -1;
	}
	set_delta(d, "blank", f->blank, prev ? prev->blank : 0);
	set_delta(d, "invalid", f->invalid, prev ? prev->invalid : 0);
	if (prev == NULL || f->has_stations != prev->has_stations ||
	    f->stations_reporting != prev->stations_reporting ||
	    f->stations_total != prev->stations_total) {
		json_t *st = json_object();
		set_delta(st, "reporting", f->stations_reporting,
		    prev ? prev->stations_reporting : 0);
		set_delta(st, "total", f->stations_total,
		    prev ? prev->stations_total : 0);
		if (json_object_size(st) > 0)
			json_object_set_new(d, "stations", st);
		else
			json_decref(st);
	}
	if (prev == NULL || prev->status != f->status) {
		json_t *st = json_object();
		json_object_set_new(st, "from", prev ? json_string(
		    tally_status_name(prev->status)) : json_null());
		json_object_set_new(st, "to",
		    json_string(tally_status_name(f->status)));
		json_object_set_new(d, "status", st);
	}
	/* Seats by list id (both sorted by id: a merge). */
	j = k = 0;
	while (j < f->n_lists || (prev != NULL && k < prev->n_lists)) {
		int c = merge_step(f, j, prev, k);
		if (c < 0) {
			set_delta(moved, f->lists[j].id, hs[1].r.seats[j], 0);
			j++;
		} else if (c > 0) {
			set_delta(moved, prev->lists[k].id, 0, hs[0].r.seats[k]);
			k++;
		} else {
			set_delta(moved, f->lists[j].id, hs[1].r.seats[j],
			    hs[0].r.seats[k]);
			j++;
			k++;
		}
	}
	set_delta(d, "pending", hs[1].r.pending, prev ? hs[0].r.pending : 0);
	json_object_set_new(row, "delta", d);
	json_object_set_new(row, "seats_moved", moved);
	json_object_set_new(row, "by", f->by ? json_string(f->by) : json_null());
	{
		const struct tally_province_state *ps = &s->provinces[p];
		json_t *lots = json_array();
		for (j = 0; j < ps->n_lots; j++)
			if (ps->lots[j]->revision == f->revision)
				json_array_append_new(lots, lot_json(ps->lots[j]));
		json_object_set_new(row, "lots", lots);
	}
	tmp = hs[0];
	hs[0] = hs[1];
	hs[1] = tmp;
	*n_hs = 1;
	return 0;
}

/*
 * The version that applied a revision (its row's "version"), or null when
 * no kept record says (a snapshot written before versions were kept).
 */
static json_t *
history_version(const struct tally_revision *rev, const struct tally_feed *f)
{
	uint64_t v = rev->version != 0 ? rev->version : f->version;

	return v == 0 || v == TALLY_VERSION_UNKNOWN ? json_null() : juint(v);
}

json_t *
tally_render_history(const struct tally_state *s, size_t p,
    tally_revision_loader load, void *ctx)
{
	return tally_render_history_range(s, p, 0, SIZE_MAX, load, ctx);
}

json_t *
tally_render_history_range(const struct tally_state *s, size_t p,
    size_t first, size_t last, tally_revision_loader load, void *ctx)
{
	const struct tally_election *e = s->election;
	const struct tally_province_state *ps = &s->provinces[p];
	json_t *o = json_object(), *arr = json_array();
	struct tally_feed *tmp_prev = NULL, *tmp_cur = NULL;
	const struct tally_feed *prev = NULL;
	struct history_seats seats[2];
	size_t n_seats = 0;
	char at_cur[40];
	size_t i, j, k;

	memset(seats, 0, sizeof(seats));
	json_object_set_new(o, "province", json_string(e->provinces[p].id));
	/* The row before `first` is computed too: rows say what moved since
	 * the previous revision. */
	for (i = first > 0 ? first - 1 : 0; i < ps->n_revisions && i <= last;
	    i++) {
		const struct tally_feed *f = revision_feed(&ps->revisions[i],
		    load, ctx, &tmp_cur, at_cur);
		json_t *row, *votes, *changed;

		if (f == NULL) {
			/* A revision that cannot be read back: fail the view. */
			tally_feed_destroy(tmp_prev);
			goto fail;
		}
		row = json_object();
		votes = json_object();
		changed = json_object();

		json_object_set_new(row, "revision", juint(f->revision));
		json_object_set_new(row, "version", history_version(
		    &ps->revisions[i], f));
		json_object_set_new(row, "received_at", jstr_or_null(at_cur));
		json_object_set_new(row, "reported_at", jstr_or_null(f->reported_at));
		json_object_set_new(row, "status",
		    json_string(tally_status_name(f->status)));
		json_object_set_new(row, "note", jstr_or_null(f->note));
		for (j = 0; j < f->n_lists; j++)
			json_object_set_new(votes, f->lists[j].id,
			    juint(f->lists[j].votes));
		json_object_set_new(row, "votes", votes);
		json_object_set_new(row, "blank", juint(f->blank));
		json_object_set_new(row, "invalid", juint(f->invalid));
		/* What changed against the previous revision, list by list
		 * (both lists are sorted by id: a merge). */
		j = k = 0;
		while (j < f->n_lists || (prev != NULL && k < prev->n_lists)) {
			int c = merge_step(f, j, prev, k);
			/* Zero deltas are left out, as for lists in both. */
			if (c < 0) {
				if (f->lists[j].votes != 0)
					json_object_set_new(changed, f->lists[j].id,
					    json_integer((json_int_t)f->lists[j].votes));
				j++;
			} else if (c > 0) {
				if (prev->lists[k].votes != 0)
					json_object_set_new(changed,
					    prev->lists[k].id, json_integer(
					    -(json_int_t)prev->lists[k].votes));
				k++;
			} else {
				json_int_t d = (json_int_t)f->lists[j].votes -
				    (json_int_t)prev->lists[k].votes;
				if (d != 0)
					json_object_set_new(changed,
					    f->lists[j].id, json_integer(d));
				j++;
				k++;
			}
		}
		json_object_set_new(row, "changed", changed);
		if (history_changes(s, p, prev, f, seats, &n_seats, row) == -1) {
			json_decref(row);
			tally_feed_destroy(tmp_prev);
			tally_feed_destroy(tmp_cur);
			goto fail;
		}
		if (i >= first)
			json_array_append_new(arr, row);
		else
			json_decref(row);
		tally_feed_destroy(tmp_prev);
		tmp_prev = tmp_cur;
		prev = f;
	}
	tally_feed_destroy(tmp_prev);
	history_seats_finish(seats);
	json_object_set_new(o, "revisions", arr);
	return o;
fail:
	history_seats_finish(seats);
	json_decref(arr);
	json_decref(o);
	return NULL;
}

json_t *
tally_render_coalition(const struct tally_state *s, size_t c)
{
	const struct tally_election *e = s->election;
	const struct tally_coalition *co = &e->coalitions[c];
	const struct tally_coalition_total *t = &s->coalitions[c];
	json_t *o = json_object(), *arr = json_array(), *al = json_array();
	size_t *order, i, p, rank = 0;

	if ((order = tally_ranking(s)) == NULL) {
		json_decref(o);
		json_decref(arr);
		json_decref(al);
		return NULL;
	}
	for (i = 0; i < e->n_coalitions; i++)
		if (order[i] == c)
			rank = i + 1;
	free(order);
	json_object_set_new(o, "id", json_string(co->id));
	json_object_set_new(o, "name", json_string(co->name));
	json_object_set_new(o, "short", json_string(co->short_name ?
	    co->short_name : co->name));
	tally_color_json(o, co);
	for (i = 0; i < co->n_aliases; i++)
		json_array_append_new(al, json_string(co->aliases[i]));
	json_object_set_new(o, "aliases", al);
	json_object_set_new(o, "rank", juint(rank));
	json_object_set_new(o, "votes", juint(t->votes));
	json_object_set_new(o, "share", json_real(tally_share(t->votes, s->valid)));
	json_object_set_new(o, "seats", juint(t->seats));
	json_object_set_new(o, "district_seats", juint(t->district_seats));
	json_object_set_new(o, "levelling_seats", juint(t->levelling_seats));
	json_object_set_new(o, "tied_for", juint(t->tied_for));
	json_object_set_new(o, "seats_min", juint(t->seats_min));
	json_object_set_new(o, "seats_max", juint(coalition_max(s, c)));
	json_object_set_new(o, "majority", json_string(majority_name(s, c)));
	{
		/* While it is open: the fewest ballots that would decide it. */
		uint64_t win, lose;
		bool exact;
		json_t *mv = json_null();
		switch (tally_majority_votes(s, c, &win, &lose, &exact)) {
		case 0:
			mv = json_object();
			json_object_set_new(mv, "to_win", win == UINT64_MAX ?
			    json_null() : juint(win));
			json_object_set_new(mv, "to_lose", lose == UINT64_MAX ?
			    json_null() : juint(lose));
			json_object_set_new(mv, "exact", json_boolean(exact));
			break;
		case 1:
			break;
		default:
			json_decref(o);
			json_decref(arr);
			return NULL;
		}
		json_object_set_new(o, "majority_votes", mv);
	}
	if (t->exempt)
		json_object_set_new(o, "threshold", json_string("exempt"));
	else if (e->has_national_threshold)
		json_object_set_new(o, "threshold", json_string(t->excluded ?
		    "failed" : "passed"));
	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_revision *cur = tally_state_current(s, p);
		json_t *row;
		if (cur == NULL)
			continue;
		for (i = 0; i < cur->feed->n_lists; i++) {
			const struct tally_feed_list *l = &cur->feed->lists[i];
			if (l->coalition != c)
				continue;
			row = json_object();
			json_object_set_new(row, "province",
			    json_string(e->provinces[p].id));
			json_object_set_new(row, "list", json_string(l->id));
			json_object_set_new(row, "votes", juint(l->votes));
			json_object_set_new(row, "share", json_real(tally_share(
			    l->votes, list_votes(cur->feed) + cur->feed->blank)));
			json_object_set_new(row, "seats",
			    juint(s->provinces[p].result.seats[i]));
			json_object_set_new(row, "levelling_seats",
			    juint(tally_levelling_in(s, p, c)));
			json_object_set_new(row, "seats_min",
			    s->provinces[p].bounds.known ?
			    juint(s->provinces[p].bounds.min[i]) : json_null());
			json_object_set_new(row, "seats_max",
			    s->provinces[p].bounds.known ?
			    juint(s->provinces[p].bounds.max[i]) : json_null());
			{
				/* The pending seats it is tied for here. */
				const struct tally_seat_result *r =
				    &s->provinces[p].result;
				uint64_t k = 0;
				size_t j;
				for (j = 0; r->pending > 0 && j < r->n_tied; j++)
					if (r->tied[j] == i)
						k = r->pending;
				json_object_set_new(row, "tied_for", juint(k));
			}
			json_array_append_new(arr, row);
		}
	}
	json_object_set_new(o, "provinces", arr);
	return o;
}

/* One CSV field (RFC 4180: quoted when it holds a comma, quote or newline). */
static void
sb_field(struct tally_buf *b, const char *str, bool last)
{
	if (strpbrk(str, ",\"\r\n") != NULL) {
		tally_buf_add(b, "\"", 1);
		for (; *str; str++) {
			if (*str == '"')
				tally_buf_add(b, "\"", 1);	/* "" inside quotes */
			tally_buf_add(b, str, 1);
		}
		tally_buf_add(b, "\"", 1);
	} else
		tally_buf_add(b, str, strlen(str));
	tally_buf_add(b, last ? "\r\n" : ",", last ? 2 : 1);
}

static void
sb_uint(struct tally_buf *b, uint64_t v, bool last)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	sb_field(b, buf, last);
}

static void
sb_share(struct tally_buf *b, uint64_t part, uint64_t whole, bool last)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.2f", tally_share(part, whole));
	sb_field(b, buf, last);
}

static char *
sb_finish(struct tally_buf *b)
{
	if (b->nomem) {
		free(b->p);
		return NULL;
	}
	return b->p;
}

/*
 * A share as an exact decimal string: 100 * part / whole rounded half up to
 * 4 decimal places, in integers (buf: 32 bytes).  "0.0000" when whole is 0.
 * The exact value is part / whole, and both are given beside it.
 */
static const char *
share4(uint64_t part, uint64_t whole, char *buf, size_t len)
{
	unsigned __int128 q;

	if (whole == 0) {
		snprintf(buf, len, "0.0000");
		return buf;
	}
	/* Units of 1/10000 percent: part * 10^6 / whole, half up. */
	q = ((unsigned __int128)part * 2000000 + whole) /
	    (2 * (unsigned __int128)whole);
	snprintf(buf, len, "%llu.%04llu", (unsigned long long)(q / 10000),
	    (unsigned long long)(q % 10000));
	return buf;
}

/*
 * The rows of the flat file, one per province x list of the current
 * snapshots, provinces in the definition's order, lists in the feed's (by
 * id): written as CSV (csv) or as JSON lines.  Only provinces whose views
 * changed after `since` (their `changed` version) are written.
 */
static char *
results_flat(const struct tally_state *s, const struct tally_row_stamp *stamps,
    uint64_t since, bool csv)
{
	const struct tally_election *e = s->election;
	struct tally_buf b = { 0 };
	char share[32];
	size_t p, i;

	if (csv)
		tally_buf_str(&b, "contest,province,province_name,list,"
		    "list_name,coalition,votes,valid,share,seats,"
		    "levelling_seats,seats_min,seats_max,certain,revision,"
		    "status,version,updated_at\r\n");
	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_province *pv = &e->provinces[p];
		const struct tally_province_state *ps = &s->provinces[p];
		const struct tally_revision *cur = tally_state_current(s, p);
		const struct tally_feed *f = cur ? cur->feed : NULL;
		const struct tally_seat_bounds *bd = &ps->bounds;
		uint64_t valid, version = stamps ? stamps[p].version :
		    ps->changed;
		const char *at = stamps ? stamps[p].at : cur ?
		    cur->received_at : "";

		if (f == NULL || version <= since)
			continue;
		valid = list_votes(f) + f->blank;
		for (i = 0; i < f->n_lists; i++) {
			const struct tally_feed_list *l = &f->lists[i];
			const struct tally_coalition *co =
			    &e->coalitions[l->coalition];
			uint64_t lv = tally_levelling_in(s, p, l->coalition);
			bool certain = bd->known && bd->min[i] == bd->max[i];

			share4(l->votes, valid, share, sizeof(share));
			if (csv) {
				sb_field(&b, e->id, false);
				sb_field(&b, pv->id, false);
				sb_field(&b, pv->name, false);
				sb_field(&b, l->id, false);
				sb_field(&b, co->name, false);
				sb_field(&b, co->id, false);
				sb_uint(&b, l->votes, false);
				sb_uint(&b, valid, false);
				sb_field(&b, share, false);
				sb_uint(&b, ps->result.seats[i], false);
				sb_uint(&b, lv, false);
				if (bd->known) {
					sb_uint(&b, bd->min[i], false);
					sb_uint(&b, bd->max[i], false);
				} else {
					sb_field(&b, "", false);
					sb_field(&b, "", false);
				}
				sb_field(&b, certain ? "true" : "false", false);
				sb_uint(&b, f->revision, false);
				sb_field(&b, tally_status_name(f->status), false);
				sb_uint(&b, version, false);
				sb_field(&b, at, true);
				continue;
			}
			tally_buf_str(&b, "{\"contest\":");
			buf_json_string(&b, e->id);
			tally_buf_str(&b, ",\"province\":");
			buf_json_string(&b, pv->id);
			tally_buf_str(&b, ",\"province_name\":");
			buf_json_string(&b, pv->name);
			tally_buf_str(&b, ",\"list\":");
			buf_json_string(&b, l->id);
			tally_buf_str(&b, ",\"list_name\":");
			buf_json_string(&b, co->name);
			tally_buf_str(&b, ",\"coalition\":");
			buf_json_string(&b, co->id);
			buf_key_uint(&b, ",\"votes\":", l->votes);
			buf_key_uint(&b, ",\"valid\":", valid);
			/* A JSON number written from the exact decimal. */
			tally_buf_str(&b, ",\"share\":");
			tally_buf_str(&b, share);
			buf_key_uint(&b, ",\"seats\":", ps->result.seats[i]);
			buf_key_uint(&b, ",\"levelling_seats\":", lv);
			if (bd->known) {
				buf_key_uint(&b, ",\"seats_min\":", bd->min[i]);
				buf_key_uint(&b, ",\"seats_max\":", bd->max[i]);
			} else
				tally_buf_str(&b, ",\"seats_min\":null,"
				    "\"seats_max\":null");
			tally_buf_str(&b, certain ? ",\"certain\":true" :
			    ",\"certain\":false");
			buf_key_uint(&b, ",\"revision\":", f->revision);
			tally_buf_str(&b, ",\"status\":");
			buf_json_string(&b, tally_status_name(f->status));
			buf_key_uint(&b, ",\"version\":", version);
			tally_buf_str(&b, ",\"updated_at\":");
			buf_json_string(&b, at);
			tally_buf_str(&b, "}\n");
		}
	}
	/* An empty JSON lines body is zero lines, but never a NULL. */
	if (b.p == NULL && !b.nomem)
		tally_buf_add(&b, "", 0);
	return sb_finish(&b);
}

char *
tally_render_results_csv(const struct tally_state *s,
    const struct tally_row_stamp *stamps, uint64_t since)
{
	return results_flat(s, stamps, since, true);
}

char *
tally_render_results_jsonl(const struct tally_state *s,
    const struct tally_row_stamp *stamps, uint64_t since)
{
	return results_flat(s, stamps, since, false);
}

/*
 * The bounds of one revision's count (rows of history.csv): computed as the
 * live ones are, from the allocation history_allocate made (the national
 * exclusions in force now), with the bound on the uncounted that revision
 * gave.  min/max: n_lists entries (new), or both NULL when no bound is
 * known.  0 or -1 without memory.
 */
static int
history_bounds(const struct tally_state *s, size_t p,
    const struct tally_feed *f, struct history_seats *hs, uint32_t **min,
    uint32_t **max)
{
	const struct tally_province *pv = &s->election->provinces[p];
	struct tally_seat_input in;
	struct tally_bounds bd;
	size_t n = f->n_lists ? f->n_lists : 1;
	uint64_t unc = 0;
	int rc = -1;

	*min = *max = NULL;
	if (tally_uncounted_bound(pv, f, &unc) == TALLY_UNCOUNTED_UNKNOWN)
		return 0;
	tally_state_feed_input(s, f, NULL, &in, hs->votes, hs->excluded,
	    hs->pct, hs->exempt);
	if (tally_bounds_init(&bd, n, pv->seats) == -1)
		return -1;
	if (tally_bounds_compute(&in, &hs->r, true, unc, NULL, &bd) == -1) {
		/* Claim nothing rather than fail the view. */
		rc = 0;
		goto done;
	}
	if ((*min = malloc(n * sizeof(**min))) == NULL ||
	    (*max = malloc(n * sizeof(**max))) == NULL) {
		free(*min);
		*min = NULL;
		goto done;
	}
	memcpy(*min, bd.min, f->n_lists * sizeof(**min));
	memcpy(*max, bd.max, f->n_lists * sizeof(**max));
	rc = 0;
done:
	tally_bounds_finish(&bd);
	return rc;
}

/* A bound, or an empty field when none is known. */
static void
sb_bound(struct tally_buf *b, const uint32_t *v, size_t i, bool have)
{
	if (v != NULL && have)
		sb_uint(b, v[i], false);
	else
		sb_field(b, "", false);
}

/*
 * GET /v1/provinces/{id}/history.csv: a row per revision and list (every
 * list of the revision and of the one before it), with the change of its
 * votes and of its seats against the revision before, and its seat bounds
 * before and after.  Seats are allocated again for each revision as the
 * JSON history does (history_allocate).
 */
char *
tally_render_history_csv(const struct tally_state *s, size_t p,
    tally_revision_loader load, void *ctx)
{
	const struct tally_election *e = s->election;
	const struct tally_province_state *ps = &s->provinces[p];
	struct tally_feed *tmp_prev = NULL, *tmp_cur = NULL;
	const struct tally_feed *prev = NULL;
	struct history_seats hs[2], t;
	struct tally_buf b = { 0 };
	uint32_t *min0 = NULL, *max0 = NULL, *min1 = NULL, *max1 = NULL;
	char at_cur[40];
	size_t i, j, k;

	memset(hs, 0, sizeof(hs));
	tally_buf_str(&b, "province,revision,received_at,reported_at,status,"
	    "list,coalition,votes,votes_change,seats,seats_change,"
	    "seats_min_before,seats_max_before,seats_min,seats_max,blank,"
	    "invalid\r\n");
	for (i = 0; i < ps->n_revisions; i++) {
		const struct tally_feed *f = revision_feed(&ps->revisions[i],
		    load, ctx, &tmp_cur, at_cur);

		if (f == NULL || history_allocate(s, p, f, &hs[1]) == -1 ||
		    history_bounds(s, p, f, &hs[1], &min1, &max1) == -1) {
			tally_feed_destroy(tmp_cur);
			goto fail;
		}
		j = k = 0;
		while (j < f->n_lists || (prev != NULL && k < prev->n_lists)) {
			int c = merge_step(f, j, prev, k);
			const char *id = c <= 0 ? f->lists[j].id :
			    prev->lists[k].id;
			size_t co = c <= 0 ? f->lists[j].coalition :
			    prev->lists[k].coalition;
			uint64_t v = c <= 0 ? f->lists[j].votes : 0;
			uint64_t pvv = c >= 0 && prev != NULL ?
			    prev->lists[k].votes : 0;
			uint64_t st = c <= 0 ? hs[1].r.seats[j] : 0;
			uint64_t pst = c >= 0 && prev != NULL ?
			    hs[0].r.seats[k] : 0;
			char d[32];

			sb_field(&b, e->provinces[p].id, false);
			sb_uint(&b, f->revision, false);
			sb_field(&b, at_cur, false);
			sb_field(&b, f->reported_at, false);
			sb_field(&b, tally_status_name(f->status), false);
			sb_field(&b, id, false);
			sb_field(&b, e->coalitions[co].id, false);
			sb_uint(&b, v, false);
			snprintf(d, sizeof(d), "%lld", (long long)v -
			    (long long)pvv);
			sb_field(&b, d, false);
			sb_uint(&b, st, false);
			snprintf(d, sizeof(d), "%lld", (long long)st -
			    (long long)pst);
			sb_field(&b, d, false);
			sb_bound(&b, min0, k, c >= 0 && prev != NULL);
			sb_bound(&b, max0, k, c >= 0 && prev != NULL);
			sb_bound(&b, min1, j, c <= 0);
			sb_bound(&b, max1, j, c <= 0);
			sb_uint(&b, f->blank, false);
			sb_uint(&b, f->invalid, true);
			if (c <= 0)
				j++;
			if (c >= 0)
				k++;
		}
		t = hs[0];
		hs[0] = hs[1];
		hs[1] = t;
		free(min0);
		free(max0);
		min0 = min1;
		max0 = max1;
		min1 = max1 = NULL;
		tally_feed_destroy(tmp_prev);
		tmp_prev = tmp_cur;
		tmp_cur = NULL;
		prev = f;
	}
	tally_feed_destroy(tmp_prev);
	history_seats_finish(hs);
	free(min0);
	free(max0);
	return sb_finish(&b);
fail:
	tally_feed_destroy(tmp_prev);
	history_seats_finish(hs);
	free(min0);
	free(max0);
	free(b.p);
	return NULL;
}

char *
tally_render_leaderboard_csv(const struct tally_state *s)
{
	const struct tally_election *e = s->election;
	struct tally_buf b = { 0 };
	size_t *order, i;

	if ((order = tally_ranking(s)) == NULL)
		return NULL;
	tally_buf_str(&b, "rank,id,name,short,votes,share,seats,tied_for,"
	    "color\r\n");
	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_coalition *c = &e->coalitions[order[i]];
		const struct tally_coalition_total *t = &s->coalitions[order[i]];
		sb_uint(&b, i + 1, false);
		sb_field(&b, c->id, false);
		sb_field(&b, c->name, false);
		sb_field(&b, c->short_name ? c->short_name : c->name, false);
		sb_uint(&b, t->votes, false);
		sb_share(&b, t->votes, s->valid, false);
		sb_uint(&b, t->seats, false);
		sb_uint(&b, t->tied_for, false);
		sb_field(&b, c->shown.hex, true);
	}
	free(order);
	return sb_finish(&b);
}

char *
tally_render_provinces_csv(const struct tally_state *s)
{
	const struct tally_election *e = s->election;
	struct tally_buf b = { 0 };
	size_t p;

	tally_buf_str(&b, "id,name,seats,revision,status,reported_at,received_at,"
	    "stations_reporting,stations_total,valid,blank,invalid,allocated,"
	    "pending,leader\r\n");
	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_revision *cur = tally_state_current(s, p);
		const struct tally_feed *f = cur ? cur->feed : NULL;
		size_t li = province_leader(s, p);
		sb_field(&b, e->provinces[p].id, false);
		sb_field(&b, e->provinces[p].name, false);
		sb_uint(&b, e->provinces[p].seats, false);
		sb_uint(&b, f ? f->revision : 0, false);
		sb_field(&b, f ? tally_status_name(f->status) : "none", false);
		sb_field(&b, f ? f->reported_at : "", false);
		sb_field(&b, cur ? cur->received_at : "", false);
		if (f != NULL && f->has_stations) {
			sb_uint(&b, f->stations_reporting, false);
			sb_uint(&b, f->stations_total, false);
		} else {
			sb_field(&b, "", false);
			sb_field(&b, "", false);
		}
		sb_uint(&b, f ? list_votes(f) + f->blank : 0, false);
		sb_uint(&b, f ? f->blank : 0, false);
		sb_uint(&b, f ? f->invalid : 0, false);
		sb_uint(&b, f ? s->provinces[p].result.allocated : 0, false);
		sb_uint(&b, f ? s->provinces[p].result.pending : 0, false);
		sb_field(&b, li != SIZE_MAX ? f->lists[li].id : "", true);
	}
	return sb_finish(&b);
}

/* {id: now - before} over two snapshots' lists (sorted by id; NULL: none). */
static void
list_deltas(json_t *o, const struct tally_feed *f, const uint32_t *fseats,
    const struct tally_feed *prev, const uint32_t *pseats, bool seats)
{
	size_t j = 0, k = 0;

	while (j < f->n_lists || (prev != NULL && k < prev->n_lists)) {
		int c = merge_step(f, j, prev, k);
		if (c < 0) {
			set_delta(o, f->lists[j].id, seats ? fseats[j] :
			    f->lists[j].votes, 0);
			j++;
		} else if (c > 0) {
			set_delta(o, prev->lists[k].id, 0, seats ? pseats[k] :
			    prev->lists[k].votes);
			k++;
		} else {
			set_delta(o, f->lists[j].id, seats ? fseats[j] :
			    f->lists[j].votes, seats ? pseats[k] :
			    prev->lists[k].votes);
			j++;
			k++;
		}
	}
}

json_t *
tally_render_dry_run(const struct tally_state *s,
    struct tally_feed *const *feeds, size_t n, enum tally_check *chk,
    struct tally_error *err)
{
	const struct tally_election *e = s->election;
	json_t *o = json_object(), *results = json_array(), *national;
	json_int_t *moved;
	struct history_seats hs[2];
	bool any = false;
	size_t i, j;

	memset(hs, 0, sizeof(hs));
	if ((moved = calloc(e->n_coalitions ? e->n_coalitions : 1,
	    sizeof(*moved))) == NULL)
		goto nomem;
	for (i = 0; i < n; i++) {
		const struct tally_feed *f = feeds[i];
		const struct tally_revision *cur = tally_state_current(s,
		    f->province);
		const struct tally_feed *prev = cur ? cur->feed : NULL;
		const struct tally_seat_result *r =
		    &s->provinces[f->province].result;
		const char *pid = e->provinces[f->province].id;
		json_t *row, *votes, *seats;

		if (tally_state_check_post(s, f, &chk[i], err) == -1) {
			if (n > 1) {
				char fld[sizeof(err->field)];
				snprintf(fld, sizeof(fld), "%s", err->field);
				snprintf(err->field, sizeof(err->field),
				    "/results/%zu%.160s", i, fld);
			}
			goto fail;
		}
		row = json_object();
		json_object_set_new(row, "province", json_string(pid));
		json_object_set_new(row, "revision", juint(f->revision));
		json_object_set_new(row, "status", json_string(
		    chk[i] == TALLY_CHECK_NEW ? "applied" : "duplicate"));
		votes = json_object();
		seats = json_object();
		json_object_set_new(row, "votes", votes);
		json_object_set_new(row, "seats", seats);
		json_array_append_new(results, row);
		if (chk[i] != TALLY_CHECK_NEW)
			continue;
		any = true;
		if (history_allocate(s, f->province, f, &hs[0]) == -1)
			goto nomem;
		list_deltas(votes, f, NULL, prev, NULL, false);
		list_deltas(seats, f, hs[0].r.seats, prev, prev ? r->seats :
		    NULL, true);
		json_object_set_new(row, "pending", juint(hs[0].r.pending));
		for (j = 0; j < f->n_lists; j++)
			moved[f->lists[j].coalition] += hs[0].r.seats[j];
		for (j = 0; prev != NULL && j < prev->n_lists; j++)
			moved[prev->lists[j].coalition] -= r->seats[j];
	}
	national = json_object();
	for (j = 0; j < e->n_coalitions; j++)
		if (moved[j] != 0)
			json_object_set_new(national, e->coalitions[j].id,
			    json_integer(moved[j]));
	json_object_set_new(o, "dry_run", json_true());
	json_object_set_new(o, "status", json_string(any ? "applied" :
	    "duplicate"));
	json_object_set_new(o, "version", juint(s->version + (any ? 1 : 0)));
	json_object_set_new(o, "results", results);
	json_object_set_new(o, "national_seats", national);
	history_seats_finish(hs);
	free(moved);
	return o;
nomem:
	tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
	    "out of memory; try again");
fail:
	history_seats_finish(hs);
	free(moved);
	json_decref(results);
	json_decref(o);
	return NULL;
}

json_t *
tally_render_lot_dry_run(const struct tally_state *s,
    const struct tally_lot *lot, enum tally_check *chk,
    struct tally_error *err)
{
	const struct tally_election *e = s->election;
	const struct tally_province_state *ps = &s->provinces[lot->province];
	const struct tally_revision *cur;
	struct tally_seat_input in;
	struct tally_seat_result r;
	size_t order[TALLY_LOT_MAX], j, nl;
	uint64_t *votes = NULL;
	bool *excluded = NULL, has_r = false;
	json_int_t *moved = NULL;
	json_t *o = NULL, *seats, *national;

	if (tally_state_lot_check(s, lot, chk, err) == -1)
		return NULL;
	o = json_object();
	json_object_set_new(o, "dry_run", json_true());
	json_object_set_new(o, "status", json_string(*chk == TALLY_CHECK_NEW ?
	    "applied" : "duplicate"));
	json_object_set_new(o, "province", json_string(
	    e->provinces[lot->province].id));
	json_object_set_new(o, "revision", juint(lot->revision));
	json_object_set_new(o, "version", juint(s->version +
	    (*chk == TALLY_CHECK_NEW ? 1 : 0)));
	seats = json_object();
	national = json_object();
	json_object_set_new(o, "seats", seats);
	json_object_set_new(o, "national_seats", national);
	if (*chk != TALLY_CHECK_NEW) {
		json_object_set_new(o, "pending", juint(ps->result.pending));
		return o;
	}
	/* The province's seats with the lot's order for its tie. */
	cur = tally_state_current(s, lot->province);
	nl = cur->feed->n_lists ? cur->feed->n_lists : 1;
	votes = calloc(nl, sizeof(*votes));
	excluded = calloc(nl, sizeof(*excluded));
	moved = calloc(e->n_coalitions ? e->n_coalitions : 1, sizeof(*moved));
	if (votes == NULL || excluded == NULL || moved == NULL ||
	    !tally_state_seat_input(s, lot->province, &in, votes, excluded) ||
	    !tally_lot_matches(lot, cur->feed, &ps->result, order) ||
	    tally_seat_result_init(&r, cur->feed->n_lists,
	    e->provinces[lot->province].seats) == -1)
		goto nomem;
	has_r = true;
	in.lot_order = order;
	in.n_lot = lot->n;
	if (tally_seats_allocate(&in, &r) == -1)
		goto nomem;
	for (j = 0; j < cur->feed->n_lists; j++) {
		set_delta(seats, cur->feed->lists[j].id, r.seats[j],
		    ps->result.seats[j]);
		moved[cur->feed->lists[j].coalition] += (json_int_t)r.seats[j] -
		    (json_int_t)ps->result.seats[j];
	}
	for (j = 0; j < e->n_coalitions; j++)
		if (moved[j] != 0)
			json_object_set_new(national, e->coalitions[j].id,
			    json_integer(moved[j]));
	json_object_set_new(o, "pending", juint(r.pending));
	tally_seat_result_finish(&r);
	free(votes);
	free(excluded);
	free(moved);
	return o;
nomem:
	if (has_r)
		tally_seat_result_finish(&r);
	free(votes);
	free(excluded);
	free(moved);
	json_decref(o);
	tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
	    "out of memory; try again");
	return NULL;
}
