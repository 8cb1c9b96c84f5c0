/*
 * bench_apply.c - the cost of applying one province feed, against the size
 * of the election.
 *
 * Applying a feed must cost the same whether the election has 50 or 100,000
 * provinces: only the posted province is re-allocated and national figures
 * move by difference.  This generates elections of P provinces x L lists
 * (D'Hondt, 7 seats each), posts every province once, then measures parse +
 * check + apply of further revisions spread over all provinces, and the
 * memory the state holds.
 *
 * Usage: bench_apply [--rule R] [--lists L] [--feeds N] [P ...]
 * Default: D'Hondt, 50 lists, 20000 timed feeds, P = 50 1000 10000 100000.
 *
 * --rule national: a 5 % national threshold of list votes, the first
 * coalition with its own 8 %, the last exempt (Poland's rule): national
 * figures are re-decided after every feed.  --rule levelling: modified
 * Sainte-Laguë 1.4 with one levelling seat per province and Norway's tier
 * (4 %, national apportionment, assignment to provinces), re-computed after
 * every feed.  Norway-sized: --rule levelling --lists 10 19.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <tally/tally.h>

#include "bench.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;



static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = atol(line + 6);
	fclose(f);
	return kib;
}

static const char *rule_name = "dhondt";

static struct tally_election *
make_election(size_t provinces, size_t lists)
{
	bool national = strcmp(rule_name, "national") == 0;
	bool levelling = strcmp(rule_name, "levelling") == 0;
	json_t *e = json_object(), *alloc = json_object(), *cs = json_array(),
	    *ps = json_array();
	struct tally_election *el;
	struct tally_diag diag;
	char id[32], *text;
	size_t i;

	json_object_set_new(e, "id", json_string("bench"));
	json_object_set_new(e, "name", json_string("generated"));
	if (levelling) {
		json_object_set_new(alloc, "method", json_string("sainte-lague"));
		json_object_set_new(alloc, "first_divisor", json_string("1.4"));
		json_object_set_new(e, "levelling", json_pack("{s:{s:s,s:s,s:{s:s,"
		    "s:s}},s:{s:s,s:s}}", "allocation", "method", "sainte-lague",
		    "first_divisor", "1.4", "threshold", "percent", "4", "of",
		    "list", "assignment", "method", "sainte-lague", "scale",
		    "votes_per_seat"));
	} else
		json_object_set_new(alloc, "method", json_string("dhondt"));
	if (national)
		json_object_set_new(alloc, "threshold", json_pack("{s:s,s:s,s:s}",
		    "percent", "5", "of", "list", "scope", "national"));
	json_object_set_new(e, "allocation", alloc);
	for (i = 0; i < lists; i++) {
		json_t *c = json_object();
		snprintf(id, sizeof(id), "c%zu", i);
		json_object_set_new(c, "id", json_string(id));
		json_object_set_new(c, "name", json_string(id));
		if (national && i == 0)
			json_object_set_new(c, "threshold",
			    json_pack("{s:s}", "percent", "8"));
		else if (national && i + 1 == lists)
			json_object_set_new(c, "threshold",
			    json_pack("{s:b}", "exempt", 1));
		json_array_append_new(cs, c);
	}
	for (i = 0; i < provinces; i++) {
		json_t *p = json_object();
		snprintf(id, sizeof(id), "p%zu", i);
		json_object_set_new(p, "id", json_string(id));
		json_object_set_new(p, "name", json_string(id));
		json_object_set_new(p, "seats", json_integer(7));
		if (levelling)
			json_object_set_new(p, "levelling_seats", json_integer(1));
		json_array_append_new(ps, p);
	}
	json_object_set_new(e, "coalitions", cs);
	json_object_set_new(e, "provinces", ps);
	text = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	tally_diag_init(&diag);
	el = tally_election_loadb(text, strlen(text), "generated", &diag);
	free(text);
	tally_diag_finish(&diag);
	return el;
}

/* A feed body for province p at revision rev: every list with votes. */
static json_t *
make_body(size_t lists, uint64_t rev)
{
	json_t *b = json_object(), *v = json_object();
	char id[32];
	size_t i;

	json_object_set_new(b, "revision", json_integer((json_int_t)rev));
	for (i = 0; i < lists; i++) {
		snprintf(id, sizeof(id), "c%zu", i);
		/* Skewed: a few big lists, a long tail. */
		json_object_set_new(v, id, json_integer((json_int_t)(
		    (bench_rng(&rng_state) % 100000) * (i < 5 ? 20 : 1))));
	}
	json_object_set_new(b, "votes", v);
	json_object_set_new(b, "blank", json_integer((json_int_t)(bench_rng(&rng_state) % 1000)));
	return b;
}

static int
post(struct tally_state *s, const struct tally_election *e, size_t p,
    json_t *body)
{
	struct tally_error err;
	struct tally_feed *f;
	enum tally_check chk;

	f = tally_feed_parse(e, e->provinces[p].id, body, "", &err);
	if (f == NULL || tally_state_check(s, f, &chk, &err) == -1 ||
	    chk != TALLY_CHECK_NEW) {
		fprintf(stderr, "feed refused: %s %s\n", err.code, err.message);
		tally_feed_destroy(f);
		return -1;
	}
	if (tally_state_apply(s, f, "2018-05-14T18:00:00Z", &err) == -1)
		return -1;
	tally_state_bump(s);
	return 0;
}

/*
 * Apply pre-parsed feeds.  A function of its own so that callgrind can count
 * its instructions alone: valgrind --tool=callgrind
 * --toggle-collect=apply_all build-release/bench/bench_apply --feeds 2000 P
 */
__attribute__((noinline)) static void
apply_all(struct tally_state *s, struct tally_feed **pre, size_t n)
{
	struct tally_error err;
	size_t j;

	for (j = 0; j < n; j++)
		tally_state_apply(s, pre[j], "2018-05-14T18:00:00Z", &err);
}

int
main(int argc, char **argv)
{
	size_t sizes[16] = { 50, 1000, 10000, 100000 }, n_sizes = 4, lists = 50;
	size_t feeds = 20000, k;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rule") == 0 && i + 1 < argc)
			rule_name = argv[++i];
		else if (strcmp(argv[i], "--lists") == 0 && i + 1 < argc)
			lists = (size_t)atol(argv[++i]);
		else if (strcmp(argv[i], "--feeds") == 0 && i + 1 < argc)
			feeds = (size_t)atol(argv[++i]);
		else {
			if (n_sizes == 4 && sizes[0] == 50)
				n_sizes = 0;
			if (n_sizes < 16)
				sizes[n_sizes++] = (size_t)atol(argv[i]);
		}
	}
	printf("# rule %s\n# provinces lists feeds ns_per_apply(parse+check+apply) "
	    "ns_per_apply(apply only) state_rss_mib\n", rule_name);
	for (k = 0; k < n_sizes; k++) {
		size_t P = sizes[k], j;
		struct tally_election *e = make_election(P, lists);
		struct tally_state *s;
		json_t **bodies;
		struct tally_feed **pre;
		long rss0;
		double t0, t1, t_apply = 0;

		if (e == NULL)
			return 1;
		rss0 = rss_kib();
		s = tally_state_create(e);
		/* Every province reports once: the state is fully populated. */
		for (j = 0; j < P; j++) {
			json_t *b = make_body(lists, 1);
			if (post(s, e, j, b) == -1)
				return 1;
			json_decref(b);
		}
		/* Timed: revision 2.. of provinces spread over the election. */
		bodies = calloc(feeds, sizeof(*bodies));
		pre = calloc(feeds, sizeof(*pre));
		for (j = 0; j < feeds; j++)
			bodies[j] = make_body(lists, 2 + j / P);
		t0 = bench_now_ns();
		for (j = 0; j < feeds; j++)
			if (post(s, e, (j * 7919) % P, bodies[j]) == -1)
				return 1;
		t1 = bench_now_ns();
		/* Apply alone, on pre-parsed feeds. */
		for (j = 0; j < feeds; j++) {
			struct tally_error err;
			json_object_set_new(bodies[j], "revision",
			    json_integer((json_int_t)(2 + feeds + j)));
			pre[j] = tally_feed_parse(e, e->provinces[(j * 7919) %
			    P].id, bodies[j], "", &err);
		}
		{
			double a0 = bench_now_ns();
			apply_all(s, pre, feeds);
			t_apply = bench_now_ns() - a0;
		}
		printf("%zu %zu %zu %.0f %.0f %.1f\n", P, lists, feeds,
		    (t1 - t0) / (double)feeds, t_apply / (double)feeds,
		    (double)(rss_kib() - rss0) / 1024.0);
		fflush(stdout);
		for (j = 0; j < feeds; j++)
			json_decref(bodies[j]);
		free(bodies);
		free(pre);
		tally_state_destroy(s);
		tally_election_destroy(e);
	}
	return 0;
}
