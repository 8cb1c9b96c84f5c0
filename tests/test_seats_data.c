/*
 * test_seats_data.c - a real election, allocated province by province, must
 * give the official seats in every province and nationally.
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
	struct tally_seat_result res;
	json_t *results, *expected, *entry, *national, *exp_prov;
	uint64_t *coal_seats;
	char path[4096];
	size_t i, k;

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
	coal_seats = calloc(e->n_coalitions, sizeof(*coal_seats));
	if (tally_seat_result_init(&res, 1000, TALLY_SEATS_MAX) == -1)
		return 1;

	CHECK_EQ_U(e->seats_total,
	    json_integer_value(json_object_get(expected, "seats_total")),
	    "seats in the definition");
	CHECK_EQ_U(json_array_size(json_object_get(results, "results")),
	    e->n_provinces, "one result per province");

	json_array_foreach(json_object_get(results, "results"), i, entry) {
		const char *pid = json_string_value(json_object_get(entry, "province"));
		const struct tally_province *pv = tally_election_province(e, pid);
		json_t *votes = json_object_get(entry, "votes"), *v, *want;
		const char *list_ids[1000];
		uint64_t vv[1000];
		struct tally_seat_input in;
		const char *key;
		size_t n = 0, matched = 0;

		CHECK(pv != NULL, "province %s in the definition", pid);
		if (pv == NULL)
			continue;
		json_object_foreach(votes, key, v) {
			list_ids[n] = key;
			vv[n++] = (uint64_t)json_integer_value(v);
		}
		memset(&in, 0, sizeof(in));
		in.rule = &pv->rule;
		in.seats = pv->seats;
		in.n_lists = n;
		in.votes = vv;
		in.blank = (uint64_t)json_integer_value(json_object_get(entry, "blank"));
		CHECK(tally_seats_allocate(&in, &res) == 0, "allocate %s", pid);
		CHECK_EQ_U(res.allocated, pv->seats, "all seats firm in %s", pid);
		want = json_object_get(exp_prov, pid);
		for (k = 0; k < n; k++) {
			json_t *w = json_object_get(want, list_ids[k]);
			const struct tally_coalition *c =
			    tally_election_list(e, list_ids[k]);
			CHECK(c != NULL, "list %s known", list_ids[k]);
			CHECK_EQ_U(res.seats[k], w ? json_integer_value(w) : 0,
			    "%s (%s): list %s", pv->name, pid, list_ids[k]);
			if (w != NULL)
				matched++;
			if (c != NULL)
				coal_seats[c->index] += res.seats[k];
		}
		CHECK_EQ_U(matched, json_object_size(want),
		    "every official winner in %s was posted", pid);
	}

	national = json_object_get(expected, "national");
	for (i = 0; i < e->n_coalitions; i++) {
		json_t *w = json_object_get(national, e->coalitions[i].id);
		CHECK_EQ_U(coal_seats[i], w ? json_integer_value(w) : 0,
		    "national seats of %s", e->coalitions[i].id);
	}

	free(coal_seats);
	tally_seat_result_finish(&res);
	json_decref(results);
	json_decref(expected);
	tally_election_destroy(e);
	return check_done(argv[1]);
}
