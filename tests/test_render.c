/*
 * test_render.c - the hand-written leaderboard text must be byte for byte
 * what jansson writes for the same view, at every stage of a real night
 * (Spain 2019, names with accents) and for names that need escaping.
 *
 * Usage: test_render ELECTIONS_DIR
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

static void
compare(const struct tally_state *s, const char *at, const char *what)
{
	json_t *j = tally_render_leaderboard(s, at);
	char *want = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII |
	    JSON_REAL_PRECISION(10));
	char *got = tally_render_leaderboard_text(s, at);
	/* The version ring renders a kept version from a copy of the totals:
	 * the very bytes the state gives. */
	struct tally_state *t = tally_state_totals_copy(s);
	char *kept = t ? tally_render_leaderboard_text(t, at) : NULL;

	CHECK(want != NULL && got != NULL, "%s: rendered", what);
	if (want != NULL && got != NULL)
		CHECK(strcmp(want, got) == 0, "%s:\n  got  %.300s\n  want %.300s",
		    what, got, want);
	CHECK(kept != NULL && got != NULL && strcmp(kept, got) == 0,
	    "%s: from the totals' copy, the same bytes", what);
	free(want);
	free(got);
	free(kept);
	tally_state_totals_destroy(t);
	json_decref(j);
}

static const char odd_json[] =
    "{\"id\":\"odd\",\"name\":\"Quote \\\" back \\\\ tab\\t \\u00e9 \\u0628 "
    "\\ud83d\\uddf3\",\"allocation\":{\"method\":\"dhondt\"},"
    "\"coalitions\":[{\"id\":\"a\",\"name\":\"\\u00d1and\\u00fa, \\\"A\\\"\","
    "\"short\":\"\\u2603\"},{\"id\":\"b\",\"name\":\"B\",\"color\":\"#123456\"}],"
    "\"provinces\":[{\"id\":\"p\",\"name\":\"P\",\"seats\":3}]}";

/*
 * History's seats_moved and a dry run's seat deltas must be the live
 * allocation's: random elections whose coalitions carry their own percents
 * and exemptions, provinces with and without their own allocation, under
 * no threshold, a province one or a national one.  After each feed, the
 * change of the province's live seats must equal both (while no national
 * exclusion moved: both then use the exclusions in force, as documented).
 */
static uint64_t prop_rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(uint32_t n)
{
	prop_rng ^= prop_rng << 13;
	prop_rng ^= prop_rng >> 7;
	prop_rng ^= prop_rng << 17;
	return (uint32_t)(prop_rng % n);
}

static const char *const prop_methods[] = {
	"dhondt", "sainte-lague", "hare", "droop"
};

static json_t *
prop_threshold(bool national)
{
	json_t *t = json_object();
	char pct[16];

	snprintf(pct, sizeof(pct), "%u", 3 + rnd(28));
	json_object_set_new(t, "percent", json_string(pct));
	json_object_set_new(t, "of", json_string(rnd(2) ? "list" : "valid"));
	json_object_set_new(t, "scope", json_string(national ? "national" :
	    "province"));
	return t;
}

static json_t *
prop_election(void)
{
	json_t *o = json_object(), *rule = json_object(), *cs = json_array();
	json_t *ps = json_array();
	uint32_t kind = rnd(3);
	size_t i;

	json_object_set_new(o, "id", json_string("prop"));
	json_object_set_new(o, "name", json_string("Prop"));
	json_object_set_new(rule, "method", json_string(prop_methods[rnd(4)]));
	json_object_set_new(rule, "ties", json_string("votes"));
	if (kind > 0)
		json_object_set_new(rule, "threshold", prop_threshold(kind == 2));
	json_object_set_new(o, "allocation", rule);
	for (i = 0; i < 5; i++) {
		json_t *c = json_object();
		char id[8];
		uint32_t own = rnd(4);
		snprintf(id, sizeof(id), "c%zu", i);
		json_object_set_new(c, "id", json_string(id));
		json_object_set_new(c, "name", json_string(id));
		if (own == 1)
			json_object_set_new(c, "threshold",
			    json_pack("{s:b}", "exempt", 1));
		else if (own == 2 && kind > 0) {
			char pct[16];
			snprintf(pct, sizeof(pct), "%u", 5 + rnd(30));
			json_object_set_new(c, "threshold",
			    json_pack("{s:s}", "percent", pct));
		}
		json_array_append_new(cs, c);
	}
	json_object_set_new(o, "coalitions", cs);
	for (i = 0; i < 3; i++) {
		json_t *p = json_object();
		char id[8];
		snprintf(id, sizeof(id), "p%zu", i);
		json_object_set_new(p, "id", json_string(id));
		json_object_set_new(p, "name", json_string(id));
		json_object_set_new(p, "seats", json_integer(1 + rnd(6)));
		if (rnd(2)) {
			json_t *r = json_object();
			json_object_set_new(r, "method",
			    json_string(prop_methods[rnd(4)]));
			json_object_set_new(r, "ties", json_string("votes"));
			if (rnd(2))
				json_object_set_new(r, "threshold",
				    prop_threshold(false));
			json_object_set_new(p, "allocation", r);
		}
		json_array_append_new(ps, p);
	}
	json_object_set_new(o, "provinces", ps);
	return o;
}

/* {list: seats} of a province's live result, lists with seats only. */
static json_t *
prop_live(const struct tally_state *s, size_t p)
{
	const struct tally_revision *cur = tally_state_current(s, p);
	json_t *o = json_object();
	size_t i;

	for (i = 0; cur != NULL && i < cur->feed->n_lists; i++)
		if (s->provinces[p].result.seats[i] > 0)
			json_object_set_new(o, cur->feed->lists[i].id,
			    json_integer(s->provinces[p].result.seats[i]));
	return o;
}

/* The non-zero members of a {key: integer} object (new). */
static json_t *
prop_nonzero(json_t *m)
{
	json_t *o = json_object(), *v;
	const char *k;

	json_object_foreach(m, k, v)
		if (json_integer_value(v) != 0)
			json_object_set(o, k, v);
	return o;
}

/* after - before, non-zero members only (new). */
static json_t *
prop_diff(json_t *after, json_t *before)
{
	json_t *o = json_object(), *v;
	const char *k;

	json_object_foreach(after, k, v)
		json_object_set_new(o, k, json_integer(json_integer_value(v) -
		    json_integer_value(json_object_get(before, k))));
	json_object_foreach(before, k, v)
		if (json_object_get(after, k) == NULL)
			json_object_set_new(o, k,
			    json_integer(-json_integer_value(v)));
	v = prop_nonzero(o);
	json_decref(o);
	return v;
}

static void
prop_same(json_t *got, json_t *want, const char *what, unsigned run,
    size_t step)
{
	char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
	char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);

	CHECK(json_equal(got, want), "run %u feed %zu: %s %s, live %s", run,
	    step, what, g, w);
	free(g);
	free(w);
}

/*
 * The national threshold shuts a list out exactly where the election's rule
 * is in force and its coalition is under it, unless exempt: never in a
 * province with its own allocation (docs/ELECTION.md: nothing inherited).
 */
static void
prop_excluded(const struct tally_state *s, unsigned run, size_t step)
{
	const struct tally_election *e = s->election;
	size_t p, i;

	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_revision *cur = tally_state_current(s, p);
		for (i = 0; cur != NULL && i < cur->feed->n_lists; i++) {
			size_t c = cur->feed->lists[i].coalition;
			bool want = !e->provinces[p].own_rule &&
			    e->has_national_threshold &&
			    s->coalitions[c].excluded &&
			    !e->coalitions[c].threshold.exempt;
			CHECK((s->provinces[p].result.threshold[i] ==
			    TALLY_TS_EXCLUDED) == want, "run %u feed %zu: %s "
			    "in %s excluded %d", run, step,
			    cur->feed->lists[i].id, e->provinces[p].id, !want);
		}
	}
}

static void
prop_history_dry_run(void)
{
	unsigned run, compared = 0;

	for (run = 0; run < 200; run++) {
		json_t *ej = prop_election();
		char *text = json_dumps(ej, JSON_COMPACT);
		struct tally_diag diag;
		struct tally_election *e;
		struct tally_state *s;
		uint64_t rev[3] = { 0, 0, 0 };
		bool excl[5];
		size_t step, c;

		tally_diag_init(&diag);
		e = tally_election_loadb(text, strlen(text), "prop", &diag);
		CHECK(e != NULL, "run %u: %s loads", run, text);
		tally_diag_finish(&diag);
		free(text);
		json_decref(ej);
		if (e == NULL)
			continue;
		s = tally_state_create(e);
		for (step = 0; step < 12; step++) {
			size_t p = rnd(3);
			json_t *b = json_object(), *votes = json_object();
			json_t *before, *after, *moved, *dry, *h, *got;
			struct tally_feed *f;
			struct tally_error err;
			enum tally_check chk;
			bool same = true;
			for (c = 0; c < 5; c++) {
				char id[8];
				snprintf(id, sizeof(id), "c%zu", c);
				json_object_set_new(votes, id,
				    json_integer(rnd(4) ? rnd(120) : 0));
			}
			json_object_set_new(b, "revision",
			    json_integer((json_int_t)++rev[p]));
			json_object_set_new(b, "blank", json_integer(rnd(20)));
			json_object_set_new(b, "votes", votes);
			f = tally_feed_parse(e, e->provinces[p].id, b, "", &err);
			json_decref(b);
			CHECK(f != NULL, "run %u feed %zu parses: %s", run, step,
			    f ? "" : err.message);
			if (f == NULL)
				break;
			for (c = 0; c < 5; c++)
				excl[c] = s->coalitions[c].excluded;
			before = prop_live(s, p);
			dry = tally_render_dry_run(s, &f, 1, &chk, &err);
			CHECK(dry != NULL, "run %u feed %zu: dry run", run, step);
			CHECK(tally_state_apply(s, f, "x", &err) == 0,
			    "run %u feed %zu applies", run, step);
			tally_state_bump(s);
			for (c = 0; c < 5; c++)
				same = same && excl[c] == s->coalitions[c].excluded;
			after = prop_live(s, p);
			moved = prop_diff(after, before);
			prop_excluded(s, run, step);
			h = tally_render_history(s, p, NULL, NULL);
			if (same && dry != NULL && h != NULL) {
				json_t *revs = json_object_get(h, "revisions");
				got = prop_nonzero(json_object_get(json_array_get(
				    json_object_get(dry, "results"), 0), "seats"));
				prop_same(got, moved, "dry run", run, step);
				json_decref(got);
				got = prop_nonzero(json_object_get(json_array_get(
				    revs, json_array_size(revs) - 1),
				    "seats_moved"));
				prop_same(got, moved, "history", run, step);
				json_decref(got);
				compared++;
			}
			json_decref(h);
			json_decref(dry);
			json_decref(moved);
			json_decref(after);
			json_decref(before);
		}
		tally_state_destroy(s);
		tally_election_destroy(e);
	}
	CHECK(compared > 1000, "%u feeds compared", compared);
}

/* One share written with integers against jansson's text of the double. */
static int
share_one(uint64_t part, uint64_t whole)
{
	json_t *r = json_real(tally_share(part, whole));
	char *want = json_dumps(r, JSON_ENCODE_ANY | JSON_COMPACT |
	    JSON_REAL_PRECISION(10)), got[48];
	int ok;

	tally_render_share(part, whole, got);
	ok = want != NULL && strcmp(want, got) == 0;
	CHECK(ok, "share %llu/%llu: %s, jansson %s", (unsigned long long)part,
	    (unsigned long long)whole, got, want ? want : "?");
	free(want);
	json_decref(r);
	return ok;
}

/*
 * tally_render_share: every basis point from 0 to 100 % (and well past
 * it) and rounding at the half, as jansson writes the double.
 */
static void
test_share(void)
{
	uint64_t bp, x = 0x9e3779b97f4a7c15ULL;
	int i;

	for (bp = 0; bp <= 2000000; bp++)
		if (!share_one(bp, 10000))
			return;
	share_one(0, 0);
	share_one(5, 0);
	for (i = 0; i < 200000; i++) {
		uint64_t whole, part;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		whole = 1 + x % 40000000;
		part = (x >> 20) % (whole + 1);
		if (i % 1000 == 0)
			part = (x >> 7) % 100000000000ULL;
		if (!share_one(part, whole))
			return;
	}
	share_one(1, 3);
	share_one(2, 3);
	share_one(UINT64_MAX / 20000, 1);
	share_one(UINT64_MAX, 7);
}

int
main(int argc, char **argv)
{
	struct tally_election *e;
	struct tally_state *s;
	struct tally_diag diag;
	json_t *results, *entry;
	char path[4096];
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s ELECTIONS_DIR\n", argv[0]);
		return 2;
	}
	test_share();
	tally_diag_init(&diag);
	snprintf(path, sizeof(path), "%s/es-2019-04/election.json", argv[1]);
	e = tally_election_load(path, &diag);
	CHECK(e != NULL, "%s loads", path);
	if (e == NULL)
		return check_done("render");
	s = tally_state_create(e);
	compare(s, NULL, "empty, no time");
	compare(s, "2019-04-28T20:00:00Z", "empty");
	snprintf(path, sizeof(path), "%s/es-2019-04/results.json", argv[1]);
	results = json_load_file(path, 0, NULL);
	json_array_foreach(json_object_get(results, "results"), i, entry) {
		struct tally_error err;
		struct tally_feed *f = tally_feed_parse(e, NULL, entry, "", &err);
		CHECK(f != NULL && tally_state_apply(s, f, "x", &err) == 0,
		    "feed %zu applies", i);
		tally_state_bump(s);
		if (i % 10 == 0 || i + 1 == json_array_size(json_object_get(
		    results, "results")))
			compare(s, "2019-04-28T23:00:00Z", "during the night");
	}
	json_decref(results);
	tally_state_destroy(s);
	tally_election_destroy(e);

	/* A two-tier election: levelling seats in every row. */
	snprintf(path, sizeof(path), "%s/no-2021/election.json", argv[1]);
	e = tally_election_load(path, &diag);
	CHECK(e != NULL, "%s loads", path);
	if (e != NULL) {
		s = tally_state_create(e);
		compare(s, NULL, "two tiers, empty");
		snprintf(path, sizeof(path), "%s/no-2021/results.json", argv[1]);
		results = json_load_file(path, 0, NULL);
		json_array_foreach(json_object_get(results, "results"), i, entry) {
			struct tally_error err;
			struct tally_feed *f = tally_feed_parse(e, NULL, entry, "",
			    &err);
			CHECK(f != NULL && tally_state_apply(s, f, "x", &err) == 0,
			    "feed %zu applies", i);
			tally_state_bump(s);
			compare(s, "2021-09-13T23:00:00Z", "two tiers, counting");
		}
		json_decref(results);
		tally_state_destroy(s);
		tally_election_destroy(e);
	}

	e = tally_election_loadb(odd_json, strlen(odd_json), "odd", &diag);
	CHECK(e != NULL, "odd names load");
	if (e != NULL) {
		struct tally_error err;
		json_t *b = json_loads("{\"revision\":1,\"votes\":{\"a\":3,"
		    "\"b\":1}}", 0, NULL);
		struct tally_feed *f;
		s = tally_state_create(e);
		compare(s, NULL, "odd names, empty");
		f = tally_feed_parse(e, "p", b, "", &err);
		CHECK(f != NULL && tally_state_apply(s, f, "x", &err) == 0,
		    "odd feed applies");
		compare(s, "2018-05-14T18:00:00Z", "odd names, counted");
		json_decref(b);
		tally_state_destroy(s);
		tally_election_destroy(e);
	}
	tally_diag_finish(&diag);
	prop_history_dry_run();
	return check_done("render");
}
