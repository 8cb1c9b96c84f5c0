/* compare.c - the change since the previous election (see tally/compare.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/compare.h>
#include <tally/file.h>

#include "tally-private.h"

struct tally_previous {
	const struct tally_election	*cur;	/* borrowed */
	struct tally_election		*e;	/* the previous definition */
	struct tally_state		*s;	/* its official results */
	/* Per previous coalition: the current coalition that names it among
	 * its predecessors, or SIZE_MAX (it has no successor). */
	size_t				*succ;
	/* Per current province: the previous province of the same id, or
	 * SIZE_MAX. */
	size_t				*prov;
};

void
tally_previous_destroy(struct tally_previous *pv)
{
	if (pv == NULL)
		return;
	tally_state_destroy(pv->s);
	tally_election_destroy(pv->e);
	free(pv->succ);
	free(pv->prov);
	free(pv);
}

/* Apply the batch body at path (every entry one feed) to pv->s.  0 or -1. */
static int
load_results(struct tally_previous *pv, const char *path,
    struct tally_diag *diag)
{
	json_error_t jerr;
	json_t *root = NULL, *arr, *v;
	struct tally_error err;
	char *buf = NULL, ptr[64];
	size_t len, i;
	int rc = -1;

	if (tally_read_file(path, &buf, &len) == -1) {
		tally_diag_add(diag, "%s: cannot read: %s", path,
		    strerror(errno));
		return -1;
	}
	if ((root = json_loadb(buf, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		tally_diag_add(diag, "%s:%d:%d: invalid JSON: %s", path,
		    jerr.line, jerr.column, jerr.text);
		goto done;
	}
	if (!json_is_array(arr = json_object_get(root, "results"))) {
		tally_diag_add(diag, "%s: /results: must be an array of "
		    "province results (a POST /v1/results body)", path);
		goto done;
	}
	json_array_foreach(arr, i, v) {
		struct tally_feed *f;
		enum tally_check chk;

		snprintf(ptr, sizeof(ptr), "/results/%zu", i);
		memset(&err, 0, sizeof(err));
		if ((f = tally_feed_parse(pv->e, NULL, v, ptr, &err)) == NULL)
			goto bad;
		if (tally_state_check(pv->s, f, &chk, &err) == -1) {
			tally_feed_destroy(f);
			goto bad;
		}
		if (chk != TALLY_CHECK_NEW) {
			tally_feed_destroy(f);	/* a repeat: nothing new */
			continue;
		}
		/* tally_state_apply takes f on every path. */
		if (tally_state_apply(pv->s, f, "", &err) == -1)
			goto bad;
		tally_state_bump(pv->s);
	}
	rc = 0;
	goto done;
bad:
	tally_diag_add(diag, "%s: %s: %s", path, err.field[0] ? err.field :
	    ptr, err.message);
done:
	json_decref(root);
	free(buf);
	return rc;
}

struct tally_previous *
tally_previous_load(const struct tally_election *e, bool *none,
    struct tally_diag *diag)
{
	struct tally_previous *pv;
	size_t c, k, p;
	int bad = 0;

	*none = e->previous_definition_path == NULL;
	if (*none)
		return NULL;
	if ((pv = calloc(1, sizeof(*pv))) == NULL) {
		tally_diag_add(diag, "previous election: out of memory");
		return NULL;
	}
	pv->cur = e;
	if ((pv->e = tally_election_load(e->previous_definition_path,
	    diag)) == NULL)
		goto fail;
	if ((pv->s = tally_state_create(pv->e)) == NULL ||
	    (pv->succ = malloc(pv->e->n_coalitions * sizeof(*pv->succ))) ==
	    NULL || (pv->prov = malloc((e->n_provinces ? e->n_provinces : 1) *
	    sizeof(*pv->prov))) == NULL) {
		tally_diag_add(diag, "previous election: out of memory");
		goto fail;
	}
	for (k = 0; k < pv->e->n_coalitions; k++)
		pv->succ[k] = SIZE_MAX;
	/* Lineage: each previous coalition has at most one successor, or
	 * its votes would count twice. */
	for (c = 0; c < e->n_coalitions; c++) {
		const struct tally_coalition *co = &e->coalitions[c];
		for (k = 0; k < co->n_predecessors; k++) {
			const struct tally_coalition *pc =
			    tally_election_coalition(pv->e, co->predecessors[k]);
			if (pc == NULL) {
				tally_diag_add(diag, "/coalitions/%zu/"
				    "predecessors/%zu: no coalition \"%s\" in "
				    "the previous election %s (%s)", c, k,
				    co->predecessors[k], pv->e->id,
				    e->previous_definition_path);
				bad = 1;
			} else if (pv->succ[pc->index] != SIZE_MAX) {
				tally_diag_add(diag, "/coalitions/%zu/"
				    "predecessors/%zu: \"%s\" is already the "
				    "predecessor of %s: a previous list has one "
				    "successor at most", c, k, pc->id,
				    e->coalitions[pv->succ[pc->index]].id);
				bad = 1;
			} else
				pv->succ[pc->index] = c;
		}
	}
	if (bad)
		goto fail;
	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_province *pp = tally_election_province(pv->e,
		    e->provinces[p].id);
		pv->prov[p] = pp != NULL ? pp->index : SIZE_MAX;
	}
	if (load_results(pv, e->previous_results_path, diag) == -1)
		goto fail;
	return pv;
fail:
	tally_previous_destroy(pv);
	return NULL;
}

const char *
tally_pp_change(uint64_t a, uint64_t b, uint64_t c, uint64_t d, char *buf,
    size_t len)
{
	/* 100 * (a/b - c/d) in hundredths: 10^4 (a d - c b) / (b d). */
	__int128 num, den;
	unsigned __int128 q, mag;
	bool neg;

	if (b == 0)
		a = 0, b = 1;
	if (d == 0)
		c = 0, d = 1;
	num = ((__int128)a * (__int128)d - (__int128)c * (__int128)b) * 10000;
	den = (__int128)b * (__int128)d;
	neg = num < 0;
	mag = (unsigned __int128)(neg ? -num : num);
	/* Half away from zero: (2 |num| + den) / (2 den). */
	q = (2 * mag + (unsigned __int128)den) / (2 * (unsigned __int128)den);
	snprintf(buf, len, "%s%llu.%02llu", neg && q != 0 ? "-" : "",
	    (unsigned long long)(q / 100), (unsigned long long)(q % 100));
	return buf;
}

static uint64_t
feed_valid(const struct tally_feed *f)
{
	uint64_t sum = f->blank;
	size_t i;

	for (i = 0; i < f->n_lists; i++)
		sum += f->lists[i].votes;
	return sum;
}

/*
 * A province's first place: the list with the most seats, then the most
 * votes (the province view's leader), as a coalition index; SIZE_MAX
 * before any count.  The map (map.c) colours a province by it too.
 */
size_t
tally_first_place(const struct tally_state *s, size_t p)
{
	const struct tally_revision *cur = tally_state_current(s, p);
	const struct tally_seat_result *r = &s->provinces[p].result;
	size_t i, best = SIZE_MAX;

	if (cur == NULL)
		return SIZE_MAX;
	for (i = 0; i < cur->feed->n_lists; i++)
		if (best == SIZE_MAX || r->seats[i] > r->seats[best] ||
		    (r->seats[i] == r->seats[best] &&
		    cur->feed->lists[i].votes > cur->feed->lists[best].votes))
			best = i;
	return best == SIZE_MAX ? SIZE_MAX : cur->feed->lists[best].coalition;
}

/* Votes and seats (levelling included) of coalition c in a province now. */
static void
now_in(const struct tally_state *s, size_t p, size_t c, uint64_t *votes,
    uint64_t *seats, uint64_t *valid)
{
	const struct tally_revision *cur = tally_state_current(s, p);
	size_t i;

	*votes = *seats = *valid = 0;
	if (cur == NULL)
		return;
	*valid = feed_valid(cur->feed);
	for (i = 0; i < cur->feed->n_lists; i++)
		if (cur->feed->lists[i].coalition == c) {
			*votes += cur->feed->lists[i].votes;
			*seats += s->provinces[p].result.seats[i];
		}
	*seats += tally_levelling_in(s, p, c);
}

/* The same for c's predecessors in the previous election's province. */
static void
before_in(const struct tally_previous *pv, size_t p, size_t c,
    uint64_t *votes, uint64_t *seats, uint64_t *valid)
{
	size_t pp = pv->prov[p], i;
	const struct tally_revision *cur;

	*votes = *seats = *valid = 0;
	if (pp == SIZE_MAX || (cur = tally_state_current(pv->s, pp)) == NULL)
		return;
	*valid = feed_valid(cur->feed);
	for (i = 0; i < cur->feed->n_lists; i++) {
		size_t k = cur->feed->lists[i].coalition;
		if (pv->succ[k] != c)
			continue;
		*votes += cur->feed->lists[i].votes;
		*seats += pv->s->provinces[pp].result.seats[i] +
		    tally_levelling_in(pv->s, pp, k);
	}
}

static void
before_national(const struct tally_previous *pv, size_t c, uint64_t *votes,
    uint64_t *seats)
{
	size_t k;

	*votes = *seats = 0;
	for (k = 0; k < pv->e->n_coalitions; k++)
		if (pv->succ[k] == c) {
			*votes += pv->s->coalitions[k].votes;
			*seats += pv->s->coalitions[k].seats;
		}
}

static json_t *
jint(int64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *
previous_json(const struct tally_previous *pv)
{
	return json_pack("{ssss}", "id", pv->e->id, "name", pv->e->name);
}

/* Has province p's first place changed hands (along the lineage)? */
static bool
flipped(const struct tally_previous *pv, const struct tally_state *s,
    size_t p, size_t *now, size_t *before)
{
	*now = tally_first_place(s, p);
	*before = pv->prov[p] == SIZE_MAX ? SIZE_MAX :
	    tally_first_place(pv->s, pv->prov[p]);
	return *now != SIZE_MAX && *before != SIZE_MAX &&
	    pv->succ[*before] != *now;
}

/* One {"seats", "seats_before", "share_change"} member set. */
static void
set_change(json_t *o, uint64_t seats, uint64_t seats_before, uint64_t votes,
    uint64_t valid, uint64_t votes_before, uint64_t valid_before)
{
	char buf[48];

	json_object_set_new(o, "seats", jint((int64_t)seats -
	    (int64_t)seats_before));
	json_object_set_new(o, "seats_before", jint((int64_t)seats_before));
	json_object_set_new(o, "share_change", json_string(tally_pp_change(
	    votes, valid, votes_before, valid_before, buf, sizeof(buf))));
}

json_t *
tally_compare_national(const struct tally_previous *pv,
    const struct tally_state *s)
{
	const struct tally_election *e = s->election;
	json_t *o = json_object(), *arr = json_array(), *fl = json_array();
	size_t c, p, now, before;

	json_object_set_new(o, "previous", previous_json(pv));
	for (c = 0; c < e->n_coalitions; c++) {
		json_t *row = json_object();
		uint64_t v0, s0;
		before_national(pv, c, &v0, &s0);
		json_object_set_new(row, "id", json_string(e->coalitions[c].id));
		set_change(row, s->coalitions[c].seats, s0,
		    s->coalitions[c].votes, s->valid, v0, pv->s->valid);
		json_object_set_new(row, "votes_before", jint((int64_t)v0));
		json_array_append_new(arr, row);
	}
	json_object_set_new(o, "coalitions", arr);
	for (p = 0; p < e->n_provinces; p++)
		if (flipped(pv, s, p, &now, &before))
			json_array_append_new(fl, json_string(e->provinces[p].id));
	json_object_set_new(o, "flipped", fl);
	return o;
}

json_t *
tally_compare_province(const struct tally_previous *pv,
    const struct tally_state *s, size_t p)
{
	const struct tally_election *e = s->election;
	json_t *o = json_object(), *arr = json_array();
	size_t c, now, before;
	bool f = flipped(pv, s, p, &now, &before);

	json_object_set_new(o, "previous", previous_json(pv));
	json_object_set_new(o, "first_place_now", now == SIZE_MAX ?
	    json_null() : json_string(e->coalitions[now].id));
	/* The previous winner under its successor's id, and its own. */
	json_object_set_new(o, "first_place_before", before == SIZE_MAX ||
	    pv->succ[before] == SIZE_MAX ? json_null() :
	    json_string(e->coalitions[pv->succ[before]].id));
	json_object_set_new(o, "first_place_before_previous_id",
	    before == SIZE_MAX ? json_null() :
	    json_string(pv->e->coalitions[before].id));
	json_object_set_new(o, "flipped", json_boolean(f));
	for (c = 0; c < e->n_coalitions; c++) {
		uint64_t v1, s1, t1, v0, s0, t0;
		json_t *row;
		now_in(s, p, c, &v1, &s1, &t1);
		before_in(pv, p, c, &v0, &s0, &t0);
		if (v1 == 0 && v0 == 0 && s1 == 0 && s0 == 0)
			continue;
		row = json_object();
		json_object_set_new(row, "id", json_string(e->coalitions[c].id));
		set_change(row, s1, s0, v1, t1, v0, t0);
		json_array_append_new(arr, row);
	}
	json_object_set_new(o, "coalitions", arr);
	return o;
}

json_t *
tally_compare_coalition(const struct tally_previous *pv,
    const struct tally_state *s, size_t c)
{
	const struct tally_election *e = s->election;
	const struct tally_coalition *co = &e->coalitions[c];
	json_t *o = json_object(), *arr = json_array(), *pr = json_array();
	uint64_t v0, s0;
	size_t p, k, now, before;

	json_object_set_new(o, "previous", previous_json(pv));
	for (k = 0; k < co->n_predecessors; k++)
		json_array_append_new(pr, json_string(co->predecessors[k]));
	json_object_set_new(o, "predecessors", pr);
	before_national(pv, c, &v0, &s0);
	set_change(o, s->coalitions[c].seats, s0, s->coalitions[c].votes,
	    s->valid, v0, pv->s->valid);
	for (p = 0; p < e->n_provinces; p++) {
		uint64_t v1, s1, t1, pv0, ps0, t0;
		json_t *row;
		now_in(s, p, c, &v1, &s1, &t1);
		before_in(pv, p, c, &pv0, &ps0, &t0);
		if (v1 == 0 && pv0 == 0 && s1 == 0 && ps0 == 0)
			continue;
		row = json_object();
		json_object_set_new(row, "province",
		    json_string(e->provinces[p].id));
		set_change(row, s1, ps0, v1, t1, pv0, t0);
		json_object_set_new(row, "flipped", json_boolean(
		    flipped(pv, s, p, &now, &before) && (now == c ||
		    pv->succ[before] == c)));
		json_array_append_new(arr, row);
	}
	json_object_set_new(o, "provinces", arr);
	return o;
}
