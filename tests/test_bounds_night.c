/*
 * test_bounds_night.c - seat bounds over replayed election nights with a
 * coalition's own threshold and an exemption: Poland 2015, 2019, 2023
 * (5 % nationally, coalition committees 8 %, the German minority exempt),
 * Slovakia 2020 (5 %, PS-SPOLU 7 %).
 *
 * Usage: test_bounds_night DIR...
 *
 * The datasets carry no electorate: each province's `registered` is set to
 * its final ballots over a turnout of 74.38 % (Poland 2023), rounded up, so
 * that U is known in every province, reported or not.  Provinces report in
 * the dataset's order, each in 4 stages (floor(final * s / 4) of every
 * figure; the last is the final count, status final).  After every feed:
 *
 *   - every list's final seats lie within its province's [min, max], and
 *     every coalition's final national seats within its national range
 *     (seats_max as the views report it: plus every unreported seat);
 *   - divisor methods: a province is marked exact whenever none of its
 *     lists' coalitions has a national fate still open (on main, any
 *     coalition's own threshold sent every province to the engine search,
 *     which gave up with min 0 and max all seats, not exact);
 *   - a reported province with a final count and no fate open is settled.
 *
 * Then the last province of the night, for every province in turn: every
 * other province final, this one in 8 stages.  The national uncounted is
 * then this province's alone, so fates are decided early and the
 * exactness checks run at nearly every stage; at each, every list's most
 * is checked to be reached: with every uncounted ballot to it, the engine
 * gives it max[l] seats (firm or tied), a witness that max is the truth.
 *
 * It prints, per dataset, the feeds where no fate was open (the exactness
 * check must have run) and the width of the national ranges.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

#define STAGES		4
#define TURNOUT_BP	7438

static json_t *
load(const char *dir, const char *file)
{
	char path[4096];
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((j = json_load_file(path, 0, &err)) == NULL) {
		fprintf(stderr, "%s:%d: %s\n", path, err.line, err.text);
		exit(1);
	}
	return j;
}

static uint64_t
ballots(json_t *r)
{
	const char *k;
	json_t *v;
	uint64_t sum = 0;

	json_object_foreach(json_object_get(r, "votes"), k, v)
		sum += (uint64_t)json_integer_value(v);
	sum += (uint64_t)json_integer_value(json_object_get(r, "blank"));
	sum += (uint64_t)json_integer_value(json_object_get(r, "invalid"));
	return sum;
}

static json_t *
stage_body(json_t *r, unsigned s, unsigned N)
{
	json_t *b = json_object(), *v = json_object(), *x;
	const char *k;

	json_object_set_new(b, "revision", json_integer(s));
	json_object_foreach(json_object_get(r, "votes"), k, x)
		json_object_set_new(v, k, json_integer(
		    json_integer_value(x) * s / N));
	json_object_set_new(b, "votes", v);
	json_object_set_new(b, "blank", json_integer(json_integer_value(
	    json_object_get(r, "blank")) * s / N));
	json_object_set_new(b, "invalid", json_integer(json_integer_value(
	    json_object_get(r, "invalid")) * s / N));
	if (s == N)
		json_object_set_new(b, "status", json_string("final"));
	return b;
}

/* Post stage st of N of result r. */
static void
post_of(const struct tally_election *e, struct tally_state *s, json_t *r,
    unsigned st, unsigned N)
{
	const char *pid = json_string_value(json_object_get(r, "province"));
	json_t *b = stage_body(r, st, N);
	struct tally_error err;
	struct tally_feed *f;
	enum tally_check chk;

	f = tally_feed_parse(e, pid, b, "", &err);
	json_decref(b);
	if (f == NULL || tally_state_check(s, f, &chk, &err) == -1 ||
	    chk != TALLY_CHECK_NEW ||
	    tally_state_apply(s, f, "2020-01-01T00:00:00Z", &err) == -1) {
		fprintf(stderr, "province %s stage %u: %s %s\n", pid, st,
		    err.code, err.message);
		exit(1);
	}
	tally_state_bump(s);
}

static void
post(const struct tally_election *e, struct tally_state *s, json_t *r,
    unsigned st)
{
	post_of(e, s, r, st, STAGES);
}

/*
 * Divisor methods: with every uncounted ballot of province i to list l, and
 * every open rival out (the best case the bounds take: every ballot to l
 * everywhere fails each of them at once), l taking part, the engine must
 * give l exactly its bound's most (firm, or tied for one more).
 */
static void
check_max_reached(const struct tally_state *s, size_t i)
{
	const struct tally_province_state *ps = &s->provinces[i];
	const struct tally_revision *cur = tally_state_current(s, i);
	struct tally_seat_input in;
	struct tally_seat_result r;
	uint64_t *votes = calloc(s->election->n_coalitions, sizeof(*votes));
	bool *excl = calloc(s->election->n_coalitions, sizeof(*excl));
	size_t l, t;

	if (votes == NULL || excl == NULL || tally_seat_result_init(&r,
	    cur->feed->n_lists, s->election->provinces[i].seats + 1) == -1)
		abort();
	for (l = 0; l < cur->feed->n_lists; l++) {
		uint32_t reach;
		size_t c = cur->feed->lists[l].coalition, j;
		if (!tally_state_seat_input(s, i, &in, votes, excl))
			abort();
		for (j = 0; j < cur->feed->n_lists; j++)
			if (s->coalitions[cur->feed->lists[j].coalition].open)
				excl[j] = cur->feed->lists[j].coalition != c;
		in.lot_order = NULL;
		in.n_lot = 0;
		votes[l] += ps->uncounted;
		if (tally_seats_allocate(&in, &r) == -1)
			abort();
		reach = r.seats[l];
		for (t = 0; r.pending > 0 && t < r.n_tied; t++)
			if (r.tied[t] == l)
				reach++;
		CHECK_EQ_U(reach, ps->bounds.max[l], "%s: province %s list %s: "
		    "every uncounted ballot to it reaches its most",
		    s->election->id, s->election->provinces[i].id,
		    cur->feed->lists[l].id);
	}
	tally_seat_result_finish(&r);
	free(votes);
	free(excl);
}

static uint64_t
view_max(const struct tally_state *s, size_t c)
{
	return s->coalitions[c].seats_max + s->seats_unreported +
	    (s->election->levelling.enabled ? s->election->levelling.seats : 0);
}

static void
night(const char *dir)
{
	json_t *def = load(dir, "election.json"), *res = load(dir,
	    "results.json"), *results = json_object_get(res, "results"), *p, *r;
	struct tally_election *e;
	struct tally_state *s;
	struct tally_diag diag;
	uint64_t *final_nat;
	uint32_t **final_seats;
	unsigned long closed_feeds = 0, exact_checked = 0;
	size_t i, j, k, l, n = json_array_size(results);
	unsigned st;
	char *text;
	bool divisor;

	json_array_foreach(json_object_get(def, "provinces"), i, p) {
		const char *id = json_string_value(json_object_get(p, "id"));
		json_array_foreach(results, j, r)
			if (strcmp(json_string_value(json_object_get(r,
			    "province")), id) == 0)
				json_object_set_new(p, "registered", json_integer(
				    (json_int_t)((ballots(r) * 10000 +
				    TURNOUT_BP - 1) / TURNOUT_BP)));
	}
	text = json_dumps(def, JSON_COMPACT);
	tally_diag_init(&diag);
	e = tally_election_loadb(text, strlen(text), dir, &diag);
	tally_diag_finish(&diag);
	free(text);
	json_decref(def);
	if (e == NULL) {
		fprintf(stderr, "%s: the definition does not load\n", dir);
		exit(1);
	}
	divisor = !TALLY_METHOD_IS_QUOTA(e->rule.method);
	/* The outcome: every final count at once. */
	s = tally_state_create(e);
	for (i = 0; i < n; i++)
		post(e, s, json_array_get(results, i), STAGES);
	final_nat = calloc(e->n_coalitions, sizeof(*final_nat));
	final_seats = calloc(e->n_provinces, sizeof(*final_seats));
	for (i = 0; i < e->n_coalitions; i++)
		final_nat[i] = s->coalitions[i].seats;
	for (i = 0; i < e->n_provinces; i++) {
		const struct tally_revision *cur = tally_state_current(s, i);
		final_seats[i] = calloc(cur->feed->n_lists, sizeof(uint32_t));
		memcpy(final_seats[i], s->provinces[i].result.seats,
		    cur->feed->n_lists * sizeof(uint32_t));
	}
	tally_state_destroy(s);

	s = tally_state_create(e);
	for (k = 0; k < n; k++) {
		r = json_array_get(results, k);
		for (st = 1; st <= STAGES; st++) {
			bool any_open = false;
			post(e, s, r, st);
			for (i = 0; i < e->n_coalitions; i++) {
				any_open = any_open || s->coalitions[i].open;
				CHECK(final_nat[i] >= s->coalitions[i].seats_min &&
				    final_nat[i] <= view_max(s, i),
				    "%s: %s ends with %llu seats, outside "
				    "[%llu, %llu] after province %zu stage %u",
				    e->id, e->coalitions[i].id,
				    (unsigned long long)final_nat[i],
				    (unsigned long long)s->coalitions[i].seats_min,
				    (unsigned long long)view_max(s, i), k + 1, st);
			}
			closed_feeds += !any_open;
			for (i = 0; i < e->n_provinces; i++) {
				const struct tally_revision *cur =
				    tally_state_current(s, i);
				const struct tally_province_state *ps =
				    &s->provinces[i];
				bool open_here = false;
				if (cur == NULL)
					continue;
				CHECK(ps->bounds.known, "%s: province %s has U",
				    e->id, e->provinces[i].id);
				for (l = 0; l < cur->feed->n_lists; l++) {
					open_here = open_here || s->coalitions[
					    cur->feed->lists[l].coalition].open;
					CHECK(final_seats[i][l] >= ps->bounds.min[l] &&
					    final_seats[i][l] <= ps->bounds.max[l],
					    "%s: province %s list %s ends with %u, "
					    "outside [%u, %u]", e->id,
					    e->provinces[i].id, cur->feed->lists[l].id,
					    final_seats[i][l], ps->bounds.min[l],
					    ps->bounds.max[l]);
				}
				if (!divisor || open_here)
					continue;
				exact_checked++;
				CHECK(ps->bounds.exact, "%s: province %s not exact "
				    "with every fate decided (province %zu stage "
				    "%u)", e->id, e->provinces[i].id, k + 1, st);
				if (cur->feed->status == TALLY_STATUS_FINAL)
					CHECK(ps->bounds.settled, "%s: province %s "
					    "final, not settled", e->id,
					    e->provinces[i].id);
			}
		}
	}
	/* The last province of the night, each in turn. */
	{
		unsigned long last_exact = 0, last_feeds = 0;
		for (k = 0; k < n; k++) {
			struct tally_state *t = tally_state_create(e);
			size_t pi;
			const char *pid;
			r = json_array_get(results, k);
			pid = json_string_value(json_object_get(r, "province"));
			for (i = 0; i < n; i++)
				if (i != k)
					post(e, t, json_array_get(results, i),
					    STAGES);
			for (pi = 0; pi < e->n_provinces; pi++)
				if (strcmp(e->provinces[pi].id, pid) == 0)
					break;
			for (st = 1; st <= 2 * STAGES; st++) {
				const struct tally_revision *cur;
				bool open_here = false;
				post_of(e, t, r, st, 2 * STAGES);
				last_feeds++;
				cur = tally_state_current(t, pi);
				for (l = 0; l < cur->feed->n_lists; l++) {
					open_here = open_here || t->coalitions[
					    cur->feed->lists[l].coalition].open;
					CHECK(final_seats[pi][l] >=
					    t->provinces[pi].bounds.min[l] &&
					    final_seats[pi][l] <=
					    t->provinces[pi].bounds.max[l],
					    "%s: last province %s list %s ends "
					    "with %u, outside [%u, %u]", e->id, pid,
					    cur->feed->lists[l].id,
					    final_seats[pi][l],
					    t->provinces[pi].bounds.min[l],
					    t->provinces[pi].bounds.max[l]);
				}
				if (!divisor)
					continue;
				check_max_reached(t, pi);
				if (open_here)
					continue;
				last_exact++;
				CHECK(t->provinces[pi].bounds.exact, "%s: last "
				    "province %s stage %u not exact", e->id, pid,
				    st);
			}
			tally_state_destroy(t);
		}
		printf("%s, last province: %lu feeds (every list's most "
		    "reached), %lu with its fates decided (exact)\n", e->id,
		    last_feeds, last_exact);
		if (divisor)
			CHECK(last_exact > 0, "%s: the last province's "
			    "exactness check ran", e->id);
	}
	{
		uint64_t width = 0;
		for (i = 0; i < e->n_coalitions; i++)
			width += view_max(s, i) - s->coalitions[i].seats_min;
		printf("%s: %zu feeds, %lu with every national fate decided, "
		    "%lu province bounds checked exact; final width %llu\n",
		    e->id, n * STAGES, closed_feeds, exact_checked,
		    (unsigned long long)width);
	}
	if (divisor)
		CHECK(exact_checked > 0, "%s: the exactness check ran", e->id);
	for (i = 0; i < e->n_provinces; i++)
		free(final_seats[i]);
	free(final_seats);
	free(final_nat);
	tally_state_destroy(s);
	tally_election_destroy(e);
	json_decref(res);
}

int
main(int argc, char **argv)
{
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: test_bounds_night DIR...\n");
		return 2;
	}
	for (i = 1; i < argc; i++)
		night(argv[i]);
	return check_done("bounds-night");
}
