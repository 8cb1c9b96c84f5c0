/*
 * gen_journal.c - write a journal of N generated feeds, for start-up
 * benchmarks: how long tallyd takes to replay (or load a snapshot of) a
 * night's worth of results.
 *
 * Usage: gen_journal ELECTION.json DATA_DIR N
 * Each record is one feed: provinces in turn, revisions rising, every list
 * of ten lists with random votes (seeded, reproducible).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "bench.h"

static uint64_t rng_state = 0x243f6a8885a308d3ULL;


int
main(int argc, char **argv)
{
	struct tally_election *e;
	struct tally_diag diag;
	char path[4096];
	unsigned long long n, i;
	size_t lists;
	FILE *out;

	if (argc != 4) {
		fprintf(stderr, "usage: %s ELECTION.json DATA_DIR N\n", argv[0]);
		return 2;
	}
	tally_diag_init(&diag);
	if ((e = tally_election_load(argv[1], &diag)) == NULL) {
		fprintf(stderr, "%s: invalid\n", argv[1]);
		return 1;
	}
	tally_diag_finish(&diag);
	n = strtoull(argv[3], NULL, 10);
	snprintf(path, sizeof(path), "%s/journal-%016llx.log", argv[2], 1ULL);
	if ((out = fopen(path, "wb")) == NULL) {
		perror(path);
		return 1;
	}
	/* Ten lists a province, as in a Spanish province. */
	lists = e->n_coalitions < 10 ? e->n_coalitions : 10;
	for (i = 0; i < n; i++) {
		size_t p = i % e->n_provinces, k;
		json_t *body = json_object(), *votes = json_object();
		struct tally_error err;
		struct tally_feed *f;
		char *rec;
		size_t len;

		json_object_set_new(body, "revision",
		    json_integer((json_int_t)(i / e->n_provinces + 1)));
		for (k = 0; k < lists; k++)
			json_object_set_new(votes, e->coalitions[(p + k) %
			    e->n_coalitions].id, json_integer((json_int_t)(bench_rng(&rng_state) %
			    200000)));
		json_object_set_new(body, "votes", votes);
		json_object_set_new(body, "blank", json_integer((json_int_t)(bench_rng(&rng_state) %
		    5000)));
		json_object_set_new(body, "status", json_string("partial"));
		f = tally_feed_parse(e, e->provinces[p].id, body, "", &err);
		json_decref(body);
		if (f == NULL) {
			fprintf(stderr, "feed: %s\n", err.message);
			return 1;
		}
		if (tally_journal_encode(i + 1, i + 1, "2018-05-14T18:00:00Z", &f, 1,
		    &rec, &len) == -1 || fwrite(rec, 1, len, out) != len) {
			fprintf(stderr, "write failed\n");
			return 1;
		}
		free(rec);
		tally_feed_destroy(f);
	}
	if (fclose(out) != 0) {
		perror(path);
		return 1;
	}
	tally_election_destroy(e);
	printf("%s: %llu records\n", path, n);
	return 0;
}
