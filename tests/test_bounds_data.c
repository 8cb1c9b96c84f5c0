/*
 * test_bounds_data.c - seat bounds on a real election night: Spain,
 * 10 November 2019.
 *
 * Usage: test_bounds_data PROVISIONAL_DIR DEFINITIVE_DIR
 *
 * The provisional count (election night) lacks the overseas ballots (CERA)
 * that the definitive count added.  For each province U is what the
 * definitive count added over the provisional one: per list where positive,
 * plus blank where it grew (blank votes count towards the 3 % threshold).
 * The bounds on the provisional count with that U must hold:
 *
 *   - the seats of provisional + those additions lie within [min, max] in
 *     all 52 provinces (it is one of the distributions the bounds cover);
 *   - so do the definitive seats wherever scrutiny did not also lower a
 *     list's votes or blank (those provinces are named);
 *   - Bizkaia (48) is not settled and PNV's fourth seat is not guaranteed
 *     (definitively it went to PP, which can reach one);
 *   - a province where every list's votes to its next seat exceed U + 1 is
 *     settled (no list can gain a seat, so none can lose one; a tie needs
 *     at most one vote less);
 *   - with U = 0 (status final) every province is settled at its seats,
 *     and with no bound nothing is guaranteed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

#define MAX_LISTS	64

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

static uint64_t
jget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return v != NULL ? (uint64_t)json_integer_value(v) : 0;
}

int
main(int argc, char **argv)
{
	struct tally_diag diag;
	struct tally_election *e;
	struct tally_seat_result r, r2, scratch;
	struct tally_bounds bd;
	json_t *prov, *defn, *entry, *prov_root, *defn_root;
	char path[4096];
	size_t i, k, n_lowered = 0, n_settled = 0, n_next = 0;
	size_t n_margin_open = 0;
	bool saw_bizkaia = false;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PROVISIONAL_DIR DEFINITIVE_DIR\n",
		    argv[0]);
		return 2;
	}
	snprintf(path, sizeof(path), "%s/election.json", argv[1]);
	tally_diag_init(&diag);
	if ((e = tally_election_load(path, &diag)) == NULL)
		return 1;
	tally_diag_finish(&diag);
	prov_root = load(argv[1], "results.json");
	defn_root = load(argv[2], "results.json");
	prov = json_object_get(prov_root, "results");
	defn = json_object_get(defn_root, "results");
	if (tally_seat_result_init(&r, MAX_LISTS, TALLY_SEATS_MAX) == -1 ||
	    tally_seat_result_init(&r2, MAX_LISTS, TALLY_SEATS_MAX) == -1 ||
	    tally_seat_result_init(&scratch, MAX_LISTS, TALLY_SEATS_MAX) == -1 ||
	    tally_bounds_init(&bd, MAX_LISTS, TALLY_SEATS_MAX) == -1)
		return 1;
	CHECK_EQ_U(json_array_size(prov), 52, "52 provinces provisional");

	printf("province        seats U      settled  lowered  bounds (list: "
	    "min-max where open)\n");
	json_array_foreach(prov, i, entry) {
		const char *pid = json_string_value(json_object_get(entry,
		    "province"));
		const struct tally_province *pv = tally_election_province(e, pid);
		json_t *pv_votes = json_object_get(entry, "votes"), *dv = NULL;
		json_t *d = NULL, *x;
		const char *ids[MAX_LISTS], *key;
		uint64_t pvv[MAX_LISTS], add[MAX_LISTS], dvv[MAX_LISTS], U = 0;
		uint64_t pblank, dblank;
		struct tally_seat_input in, in2;
		size_t n = 0, j;
		bool lowered = false, in_add = true, in_def = true, all_next = true;
		bool all_margin = true;

		for (j = 0; j < json_array_size(defn); j++)
			if (strcmp(json_string_value(json_object_get(
			    json_array_get(defn, j), "province")), pid) == 0)
				d = json_array_get(defn, j);
		CHECK(pv != NULL && d != NULL, "province %s in both", pid);
		if (pv == NULL || d == NULL)
			continue;
		dv = json_object_get(d, "votes");
		/* The lists of either count; a list missing from one has 0. */
		json_object_foreach(pv_votes, key, x)
			ids[n++] = key;
		json_object_foreach(dv, key, x)
			if (json_object_get(pv_votes, key) == NULL && n < MAX_LISTS)
				ids[n++] = key;
		for (k = 0; k < n; k++) {
			pvv[k] = jget(pv_votes, ids[k]);
			dvv[k] = jget(dv, ids[k]);
			add[k] = dvv[k] > pvv[k] ? dvv[k] - pvv[k] : 0;
			if (dvv[k] < pvv[k])
				lowered = true;
			U += add[k];
		}
		pblank = jget(entry, "blank");
		dblank = jget(d, "blank");
		if (dblank < pblank)
			lowered = true;
		U += dblank > pblank ? dblank - pblank : 0;

		memset(&in, 0, sizeof(in));
		in.rule = &pv->rule;
		in.seats = pv->seats;
		in.n_lists = n;
		in.votes = pvv;
		in.blank = pblank;
		CHECK(tally_seats_allocate(&in, &r) == 0, "allocate %s", pid);
		CHECK(tally_bounds_compute(&in, &r, true, U, NULL, &bd) == 0,
		    "bounds %s", pid);
		CHECK(bd.exact, "%s: D'Hondt bounds are exact", pv->name);

		/* Provisional + the additions: one distribution of U. */
		for (k = 0; k < n; k++)
			add[k] += pvv[k];
		in2 = in;
		in2.votes = add;
		in2.blank = dblank > pblank ? dblank : pblank;
		CHECK(tally_seats_allocate(&in2, &r2) == 0, "allocate %s", pid);
		for (k = 0; k < n; k++)
			if (r2.seats[k] < bd.min[k] || r2.seats[k] > bd.max[k])
				in_add = false;
		CHECK(in_add, "%s (%s): provisional + additions within bounds",
		    pv->name, pid);

		/* The definitive count. */
		in2.votes = dvv;
		in2.blank = dblank;
		CHECK(tally_seats_allocate(&in2, &r2) == 0, "allocate %s", pid);
		for (k = 0; k < n; k++)
			if (r2.seats[k] < bd.min[k] || r2.seats[k] > bd.max[k])
				in_def = false;
		if (lowered)
			n_lowered++;
		else
			CHECK(in_def, "%s (%s): definitive within bounds",
			    pv->name, pid);

		/* Votes to the next seat, against U. */
		for (k = 0; k < n; k++) {
			uint64_t next, margin;
			CHECK(tally_seats_explain(&in, &r, k, &scratch, &next,
			    &margin) == 0, "explain %s", pid);
			if (next != UINT64_MAX && next <= U + 1)
				all_next = false;
			if (r.seats[k] > 0 && margin <= U)
				all_margin = false;
		}
		if (all_next) {
			n_next++;
			CHECK(bd.settled, "%s (%s): every next seat is more than "
			    "U + 1 = %llu away, so settled", pv->name, pid,
			    (unsigned long long)U + 1);
		}
		if (all_margin && !bd.settled) {
			n_margin_open++;
			printf("  (every last-seat margin of %s exceeds U = %llu, "
			    "yet it is open: a rival's gain is worth more than "
			    "the list's own loss when its divisor is smaller)\n",
			    pv->name, (unsigned long long)U);
		}
		if (bd.settled)
			n_settled++;

		printf("%-3s %-12.12s %3u %6llu  %-7s  %-7s  %s", pid, pv->name,
		    pv->seats, (unsigned long long)U, bd.settled ? "yes" : "no",
		    lowered ? (in_def ? "yes/in" : "yes/OUT") : "no", "");
		for (k = 0; k < n; k++)
			if (bd.min[k] != bd.max[k])
				printf(" %s(%s): %u-%u", ids[k],
				    tally_election_list(e, ids[k])->short_name,
				    bd.min[k], bd.max[k]);
		printf("\n");

		if (strcmp(pid, "48") == 0) {
			saw_bizkaia = true;
			CHECK(!bd.settled, "Bizkaia is not settled");
			for (k = 0; k < n; k++) {
				if (strcmp(ids[k], "000022") == 0) {
					CHECK_EQ_U(r.seats[k], 4, "PNV 4 provisional");
					CHECK(bd.min[k] <= 3, "PNV's fourth seat "
					    "not guaranteed");
				}
				if (strcmp(ids[k], "000083") == 0) {
					CHECK_EQ_U(r.seats[k], 0, "PP 0 provisional");
					CHECK(bd.max[k] >= 1, "PP can reach a seat");
				}
			}
		}

		/* Final: nothing left, settled at today's seats. */
		CHECK(tally_bounds_compute(&in, &r, true, 0, NULL, &bd) == 0,
		    "bounds %s", pid);
		CHECK(bd.settled, "%s: U = 0 is settled", pv->name);
		for (k = 0; k < n; k++)
			CHECK(bd.min[k] == r.seats[k] && bd.max[k] == r.seats[k],
			    "%s: U = 0 bounds are the seats", pv->name);
		/* No bound known: no guarantee. */
		CHECK(tally_bounds_compute(&in, &r, false, 0, NULL, &bd) == 0,
		    "bounds %s", pid);
		CHECK(!bd.settled && !bd.known, "%s: unknown U settles nothing",
		    pv->name);
	}
	CHECK(saw_bizkaia, "Bizkaia in the data");
	printf("%zu provinces settled on the provisional count; %zu where every "
	    "next seat is more than U + 1 away (all settled); %zu where scrutiny "
	    "lowered a list or blank; %zu where every last-seat margin exceeds "
	    "U but the province is still open\n", n_settled, n_next, n_lowered,
	    n_margin_open);

	json_decref(prov_root);
	json_decref(defn_root);
	tally_bounds_finish(&bd);
	tally_seat_result_finish(&r);
	tally_seat_result_finish(&r2);
	tally_seat_result_finish(&scratch);
	tally_election_destroy(e);
	return check_done("bounds-es-2019-11");
}
