/*
 * test_seats_data.c - a real election, applied province by province to a
 * tally state as the daemon applies feeds, must give the official seats:
 * district seats in every province with official figures, levelling seats
 * in every province (when the election has a levelling tier), and the
 * national totals.
 *
 * Usage: test_seats_data DATASET_DIR, where the directory holds
 * election.json, results.json (a POST /v1/results body) and expected.json
 * (official seats), as written by scripts/import-dataset.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

static json_t *
load(const char *dir, const char *file)
{
	char path[4096];
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((j = json_load_file(path, JSON_REJECT_DUPLICATES, &err)) == NULL) {
		fprintf(stderr, "%s:%d: %s\n", path, err.line, err.text);
		exit(1);
	}
	return j;
}

int
main(int argc, char **argv)
{
	struct tally_diag diag;
	struct tally_election *e;
	struct tally_state *st;
	json_t *results, *expected, *entry, *national, *exp_prov, *exp_lev;
	char path[4096];
	size_t i, k, p;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DATASET_DIR\n", argv[0]);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/election.json", argv[1]);
	tally_diag_init(&diag);
	if ((e = tally_election_load(path, &diag)) == NULL) {
		for (i = 0; i < diag.count && i < diag.cap; i++)
			fprintf(stderr, "%s\n", diag.msgs[i]);
		return 1;
	}
	tally_diag_finish(&diag);
	results = load(argv[1], "results.json");
	expected = load(argv[1], "expected.json");
	exp_prov = json_object_get(expected, "provinces");
	exp_lev = json_object_get(expected, "levelling");
	if ((st = tally_state_create(e)) == NULL)
		return 1;

	CHECK_EQ_U(e->seats_total,
	    json_integer_value(json_object_get(expected, "seats_total")),
	    "seats in the definition");
	CHECK_EQ_U(json_array_size(json_object_get(results, "results")),
	    e->n_provinces, "one result per province");
	CHECK(e->levelling.enabled == (exp_lev != NULL),
	    "a levelling tier exactly when official levelling seats are given");

	json_array_foreach(json_object_get(results, "results"), i, entry) {
		struct tally_error err;
		struct tally_feed *f;
		enum tally_check chk;

		f = tally_feed_parse(e, NULL, entry, "", &err);
		CHECK(f != NULL, "feed %zu parses: %s", i, f ? "" : err.message);
		if (f == NULL)
			continue;
		CHECK(tally_state_check(st, f, &chk, &err) == 0 &&
		    chk == TALLY_CHECK_NEW, "feed %zu is new", i);
		CHECK(tally_state_apply(st, f, "2020-01-01T00:00:00Z", &err) == 0,
		    "feed %zu applies", i);
	}
	tally_state_bump(st);
	CHECK_EQ_U(st->seats_allocated, e->seats_total, "every seat firm");
	CHECK_EQ_U(st->seats_pending, 0, "no seat pending");

	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_province *pv = &e->provinces[p];
		const struct tally_revision *cur = tally_state_current(st, p);
		const struct tally_seat_result *res = &st->provinces[p].result;
		json_t *want = json_object_get(exp_prov, pv->id);
		json_t *lwant = json_object_get(exp_lev, pv->id);
		size_t matched = 0;

		if (cur == NULL)
			continue;
		CHECK_EQ_U(res->allocated, pv->seats, "all seats firm in %s",
		    pv->id);
		for (k = 0; k < cur->feed->n_lists; k++) {
			const struct tally_feed_list *l = &cur->feed->lists[k];
			json_t *w = json_object_get(want, l->id);
			if (want != NULL) {
				CHECK_EQ_U(res->seats[k], w ?
				    json_integer_value(w) : 0,
				    "%s (%s): list %s", pv->name, pv->id, l->id);
				if (w != NULL)
					matched++;
			}
			if (exp_lev != NULL) {
				json_t *lw = json_object_get(lwant, l->id);
				CHECK_EQ_U(tally_levelling_in(st, p,
				    l->coalition), lw ? json_integer_value(lw) :
				    0, "%s (%s): levelling seat of %s", pv->name,
				    pv->id, l->id);
			}
		}
		if (want != NULL)
			CHECK_EQ_U(matched, json_object_size(want),
			    "every official winner in %s was posted", pv->id);
	}

	national = json_object_get(expected, "national");
	for (i = 0; i < e->n_coalitions; i++) {
		json_t *w = json_object_get(national, e->coalitions[i].id);
		const struct tally_coalition_total *t = &st->coalitions[i];
		CHECK_EQ_U(t->seats, w ? json_integer_value(w) : 0,
		    "national seats of %s", e->coalitions[i].id);
		CHECK_EQ_U(t->seats, t->district_seats + t->levelling_seats,
		    "seats of %s add up", e->coalitions[i].id);
	}

	tally_state_destroy(st);
	json_decref(results);
	json_decref(expected);
	tally_election_destroy(e);
	return check_done(argv[1]);
}
