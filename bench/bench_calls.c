/*
 * bench_calls.c - what deriving the certain calls (tally_calls_observe)
 * adds to each applied version, on a real dataset: every province posted
 * round after round (each round a new revision, votes grown, partial and
 * final by turns, so calls are made and retracted), timed with and without
 * the derivation.
 *
 *	./build-release/bench/bench_calls tests/data/elections/es-2019-04 [rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <tally/tally.h>

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Every version of `rounds` rounds; observe or not.  0, or -1. */
static int
run(const struct tally_election *e, json_t *res, int rounds, int observe)
{
	struct tally_state *s = tally_state_create(e);
	struct tally_error err;
	double t0 = now(), tobs = 0, a;
	unsigned long n = 0;
	size_t i, nc;
	json_t *r;
	int k;

	if (s == NULL)
		return -1;
	for (k = 0; k < rounds; k++) {
		json_array_foreach(res, i, r) {
			json_t *b = json_deep_copy(r), *v;
			const char *key;
			char prov[64];
			struct tally_feed *f;

			snprintf(prov, sizeof(prov), "%s", json_string_value(
			    json_object_get(b, "province")));
			json_object_del(b, "province");
			json_object_set_new(b, "revision", json_integer(k + 1));
			json_object_set_new(b, "status",
			    json_string(k % 2 ? "final" : "partial"));
			json_object_foreach(json_object_get(b, "votes"), key, v)
				json_integer_set(v, json_integer_value(v) + k);
			f = tally_feed_parse(e, prov, b, "", &err);
			json_decref(b);
			if (f == NULL || tally_state_apply(s, f,
			    "2019-04-28T22:00:00Z", &err) == -1) {
				fprintf(stderr, "apply: %s\n", err.message);
				tally_state_destroy(s);
				return -1;
			}
			tally_state_bump(s);
			n++;
			if (observe) {
				a = now();
				if (tally_calls_observe(s) == -1) {
					tally_state_destroy(s);
					return -1;
				}
				tobs += now() - a;
			}
		}
	}
	a = now() - t0;
	tally_calls_list(s, &nc);
	printf("%s: %lu versions, %.1f us a version; deriving the calls "
	    "%.2f us a version; %zu calls\n", observe ? "with calls" :
	    "without", n, a / (double)n * 1e6, tobs / (double)n * 1e6, nc);
	tally_state_destroy(s);
	return 0;
}

int
main(int argc, char **argv)
{
	struct tally_election *e;
	struct tally_diag d;
	json_t *root;
	char path[4096];
	int rounds = argc > 2 ? atoi(argv[2]) : 40, rc;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_calls DATASET_DIR [rounds]\n");
		return 2;
	}
	tally_diag_init(&d);
	snprintf(path, sizeof(path), "%s/election.json", argv[1]);
	if ((e = tally_election_load(path, &d)) == NULL) {
		fprintf(stderr, "%s: %s\n", path, d.count ? d.msgs[0] : "?");
		tally_diag_finish(&d);
		return 1;
	}
	tally_diag_finish(&d);
	snprintf(path, sizeof(path), "%s/results.json", argv[1]);
	if ((root = json_load_file(path, 0, NULL)) == NULL) {
		tally_election_destroy(e);
		return 1;
	}
	rc = run(e, json_object_get(root, "results"), rounds, 0) == -1 ||
	    run(e, json_object_get(root, "results"), rounds, 1) == -1;
	json_decref(root);
	tally_election_destroy(e);
	return rc;
}
