/*
 * bench_bounds.c - seat bounds over a replayed election night: how wide the
 * national coalition ranges are as provinces come in, whether the final
 * outcome always lies within them, and what applying a feed costs.
 *
 * Usage: bench_bounds [--turnout PCT] [--stages N] [--shuffle SEED]
 *            [--repeat R] [--at PCT,...] [--every] DIR
 *
 * DIR holds an imported dataset (tests/data/elections/<id>: election.json
 * and results.json, one final entry per province).  The datasets carry no
 * electorate, so each province's `registered` is set in the definition to
 * its final ballots (list votes + blank + invalid) divided by the turnout
 * (default 74.38: Poland, 15 October 2023, PKW), rounded up: U is then
 * "registered minus counted", as on election night, and a province that
 * has not reported is bounded too (national thresholds need every U).
 *
 * The night: provinces report one after another (the order of results.json,
 * or a fixed shuffle of it with --shuffle SEED), each in N stages (default
 * 4): stage s posts floor(final * s / N) of every figure, the last stage is
 * the final count with "status": "final".  After the province completing
 * each --at percent of provinces (default 25,50,75), one line per stage
 * point: the sum over coalitions of seats_max - seats_min, and each
 * coalition's range.  --every: such a line after every feed.
 *
 * Every feed, every coalition's final national seats must lie within its
 * national [seats_min, seats_max], and every list's final seats within its
 * province bounds: a count of violations is printed (0 expected).
 *
 * Timing: tally_state_apply of every feed (parse and check excluded),
 * repeated R times (default 3) from a fresh state; mean, p99 and max ns.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "bench.h"

struct night {
	struct tally_election	*e;
	json_t			*results;	/* array, in dataset order */
	size_t			*order;		/* indices into results */
	size_t			 n;
	unsigned		 stages;
	/* The outcome: per coalition, and per province and list id. */
	uint64_t		*final_national;
	uint32_t		**final_seats;	/* [province][list in feed order] */
};

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Ballots of a result entry: list votes + blank + invalid. */
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
load_json(const char *dir, const char *name)
{
	char path[4096];
	json_error_t je;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((j = json_load_file(path, 0, &je)) == NULL)
		fprintf(stderr, "%s: %s (line %d)\n", path, je.text, je.line);
	return j;
}

static int
load(struct night *nt, const char *dir, uint64_t turnout_bp)
{
	json_t *def, *res, *ps, *p;
	struct tally_diag diag;
	size_t i, j;
	char *text;

	if ((def = load_json(dir, "election.json")) == NULL ||
	    (res = load_json(dir, "results.json")) == NULL)
		return -1;
	nt->results = json_incref(json_object_get(res, "results"));
	json_decref(res);
	ps = json_object_get(def, "provinces");
	json_array_foreach(ps, i, p) {
		const char *id = json_string_value(json_object_get(p, "id"));
		json_t *r;
		json_array_foreach(nt->results, j, r)
			if (strcmp(json_string_value(json_object_get(r,
			    "province")), id) == 0) {
				uint64_t b = ballots(r);
				json_object_set_new(p, "registered", json_integer(
				    (json_int_t)((b * 10000 + turnout_bp - 1) /
				    turnout_bp)));
			}
	}
	text = json_dumps(def, JSON_COMPACT);
	json_decref(def);
	tally_diag_init(&diag);
	nt->e = tally_election_loadb(text, strlen(text), dir, &diag);
	free(text);
	tally_diag_finish(&diag);
	if (nt->e == NULL) {
		fprintf(stderr, "%s: the definition does not load\n", dir);
		return -1;
	}
	nt->n = json_array_size(nt->results);
	nt->order = calloc(nt->n, sizeof(*nt->order));
	for (i = 0; i < nt->n; i++)
		nt->order[i] = i;
	return 0;
}

/* Stage s of N of result r: every figure scaled, final at s == N. */
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

static struct tally_feed *
parse(struct night *nt, json_t *r, unsigned s)
{
	const char *pid = json_string_value(json_object_get(r, "province"));
	json_t *b = stage_body(r, s, nt->stages);
	struct tally_error err;
	struct tally_feed *f;

	f = tally_feed_parse(nt->e, pid, b, "", &err);
	json_decref(b);
	if (f == NULL)
		fprintf(stderr, "province %s stage %u: %s %s\n", pid, s,
		    err.code, err.message);
	return f;
}

/*
 * The night's applies, apart, so that callgrind counts them alone:
 * valgrind --tool=callgrind --toggle-collect=night_apply
 * build-release/bench/bench_bounds --repeat 1 DIR
 */
__attribute__((noinline)) static int
night_apply(struct tally_state *s, struct tally_feed *f)
{
	struct tally_error err;

	return tally_state_apply(s, f, "2023-10-15T21:00:00Z", &err);
}

/* Apply one feed; its apply time in ns, or -1.  *wide: it re-allocated
 * other provinces too (a national threshold's fate moved). */
static double
apply(struct tally_state *s, struct tally_feed *f, bool *wide)
{
	struct tally_error err;
	enum tally_check chk;
	double t0, t1;

	if (tally_state_check(s, f, &chk, &err) == -1 ||
	    chk != TALLY_CHECK_NEW) {
		fprintf(stderr, "feed refused: %s %s\n", err.code, err.message);
		tally_feed_destroy(f);
		return -1;
	}
	s->wide_change = false;
	t0 = bench_now_ns();
	if ((wide != NULL ? night_apply(s, f) : tally_state_apply(s, f,
	    "2023-10-15T21:00:00Z", &err)) == -1)
		return -1;
	t1 = bench_now_ns();
	if (wide != NULL)
		*wide = s->wide_change;
	tally_state_bump(s);
	return t1 - t0;
}

/* A coalition's most as the views report it (render.c): its provinces'
 * bounds, every seat not yet reported, any levelling seat. */
static uint64_t
view_max(const struct tally_state *s, size_t c)
{
	return s->coalitions[c].seats_max + s->seats_unreported +
	    (s->election->levelling.enabled ? s->election->levelling.seats : 0);
}

/* Count where the outcome lies outside today's bounds. */
static unsigned long
violations(const struct night *nt, const struct tally_state *s)
{
	const struct tally_election *e = nt->e;
	unsigned long bad = 0;
	size_t i, l;

	for (i = 0; i < e->n_coalitions; i++)
		if (nt->final_national[i] < s->coalitions[i].seats_min ||
		    nt->final_national[i] > view_max(s, i))
			bad++;
	for (i = 0; i < e->n_provinces; i++) {
		const struct tally_province_state *ps = &s->provinces[i];
		const struct tally_revision *cur = tally_state_current(s, i);
		if (cur == NULL || !ps->bounds.known)
			continue;
		for (l = 0; l < cur->feed->n_lists; l++)
			if (nt->final_seats[i][l] < ps->bounds.min[l] ||
			    nt->final_seats[i][l] > ps->bounds.max[l])
				bad++;
	}
	return bad;
}

static void
print_widths(const struct night *nt, const struct tally_state *s,
    size_t done, unsigned pct)
{
	const struct tally_election *e = nt->e;
	uint64_t total = 0, reported = 0;
	size_t i;

	for (i = 0; i < e->n_coalitions; i++) {
		total += view_max(s, i) - s->coalitions[i].seats_min;
		reported += s->coalitions[i].seats_max -
		    s->coalitions[i].seats_min;
	}
	/* The reported provinces' part leaves out what every coalition may
	 * win in the provinces still to report (unreported seats x coalitions). */
	printf("at %u%% (%zu of %zu provinces final): width %llu (reported "
	    "provinces %llu) |", pct, done, nt->n, (unsigned long long)total,
	    (unsigned long long)reported);
	for (i = 0; i < e->n_coalitions; i++)
		if (nt->final_national[i] > 0)
			printf(" %s %llu-%llu", e->coalitions[i].id,
			    (unsigned long long)s->coalitions[i].seats_min,
			    (unsigned long long)view_max(s, i));
	printf("\n");
}

int
main(int argc, char **argv)
{
	struct night nt;
	uint64_t turnout_bp = 7438, seed = 0, *times, *narrow, *wides;
	size_t n_narrow = 0;
	unsigned long n_wide = 0, inexact = 0;
	unsigned repeat = 3, at[8] = { 25, 50, 75 }, n_at = 3, rep;
	const char *dir = NULL;
	bool every = false;
	size_t i, k, n_times = 0, n_feeds;
	int a;

	memset(&nt, 0, sizeof(nt));
	nt.stages = 4;
	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--turnout") == 0 && a + 1 < argc) {
			struct tally_frac t;
			if (tally_frac_parse(argv[++a], &t) == -1 || t.num == 0)
				return 2;
			turnout_bp = t.num * 100 / t.den;
		} else if (strcmp(argv[a], "--stages") == 0 && a + 1 < argc)
			nt.stages = (unsigned)atoi(argv[++a]);
		else if (strcmp(argv[a], "--shuffle") == 0 && a + 1 < argc)
			seed = strtoull(argv[++a], NULL, 0);
		else if (strcmp(argv[a], "--every") == 0)
			every = true;
		else if (strcmp(argv[a], "--repeat") == 0 && a + 1 < argc)
			repeat = (unsigned)atoi(argv[++a]);
		else if (strcmp(argv[a], "--at") == 0 && a + 1 < argc) {
			char *p = argv[++a];
			for (n_at = 0; n_at < 8 && *p != '\0'; n_at++) {
				at[n_at] = (unsigned)strtoul(p, &p, 10);
				if (*p == ',')
					p++;
			}
		} else
			dir = argv[a];
	}
	if (dir == NULL || nt.stages == 0 || repeat == 0) {
		fprintf(stderr, "usage: bench_bounds [--turnout PCT] [--stages N] "
		    "[--shuffle SEED] [--repeat R] [--at PCT,...] [--every] "
		    "DIR\n");
		return 2;
	}
	if (load(&nt, dir, turnout_bp) == -1)
		return 1;
	if (seed != 0) {
		/* Fisher-Yates with the bench generator: a fixed order. */
		uint64_t st = seed;
		for (i = nt.n; i > 1; i--) {
			size_t j = bench_rng(&st) % i, t = nt.order[i - 1];
			nt.order[i - 1] = nt.order[j];
			nt.order[j] = t;
		}
	}
	printf("# %s: %zu provinces, %u stages each, order %s, registered = "
	    "final ballots / %.2f %%\n", nt.e->id, nt.n, nt.stages,
	    seed ? "shuffled" : "of the dataset", (double)turnout_bp / 100);
	/* The outcome, from every final count at once. */
	{
		struct tally_state *s = tally_state_create(nt.e);
		nt.final_national = calloc(nt.e->n_coalitions, sizeof(uint64_t));
		nt.final_seats = calloc(nt.e->n_provinces, sizeof(uint32_t *));
		for (i = 0; i < nt.n; i++) {
			struct tally_feed *f = parse(&nt,
			    json_array_get(nt.results, i), nt.stages);
			if (f == NULL || apply(s, f, NULL) < 0)
				return 1;
		}
		for (i = 0; i < nt.e->n_coalitions; i++)
			nt.final_national[i] = s->coalitions[i].seats;
		for (i = 0; i < nt.e->n_provinces; i++) {
			const struct tally_revision *cur = tally_state_current(s, i);
			if (cur == NULL)
				continue;
			nt.final_seats[i] = calloc(cur->feed->n_lists,
			    sizeof(uint32_t));
			memcpy(nt.final_seats[i], s->provinces[i].result.seats,
			    cur->feed->n_lists * sizeof(uint32_t));
		}
		tally_state_destroy(s);
	}
	n_feeds = nt.n * nt.stages;
	times = calloc(n_feeds * repeat, sizeof(*times));
	narrow = calloc(n_feeds * repeat, sizeof(*narrow));
	wides = calloc(n_feeds * repeat, sizeof(*wides));
	for (rep = 0; rep < repeat; rep++) {
		struct tally_state *s = tally_state_create(nt.e);
		unsigned long bad = 0;
		size_t next_at = 0;
		for (k = 0; k < nt.n; k++) {
			json_t *r = json_array_get(nt.results, nt.order[k]);
			unsigned st;
			for (st = 1; st <= nt.stages; st++) {
				struct tally_feed *f = parse(&nt, r, st);
				double t;
				bool wide;
				size_t p;
				if (f == NULL || (t = apply(s, f, &wide)) < 0)
					return 1;
				times[n_times++] = (uint64_t)t;
				if (wide)
					wides[n_wide++] = (uint64_t)t;
				else
					narrow[n_narrow++] = (uint64_t)t;
				if (rep != 0)
					continue;
				bad += violations(&nt, s);
				if (every) {
					printf("province %zu stage %u: ", k + 1, st);
					print_widths(&nt, s, k + (st == nt.stages),
					    (unsigned)((k + (st == nt.stages)) * 100 /
					    nt.n));
				}
				/* Provinces whose bounds are not proven exact. */
				for (p = 0; p < nt.e->n_provinces; p++)
					if (tally_state_current(s, p) != NULL &&
					    !s->provinces[p].bounds.exact)
						inexact++;
			}
			while (rep == 0 && next_at < n_at &&
			    (k + 1) * 100 >= at[next_at] * nt.n) {
				print_widths(&nt, s, k + 1, at[next_at]);
				next_at++;
			}
		}
		if (rep == 0)
			printf("outcome outside the bounds: %lu times (over %zu "
			    "feeds); reporting provinces not exact, summed over "
			    "feeds: %lu\n", bad, n_feeds, inexact);
		tally_state_destroy(s);
	}
	qsort(times, n_times, sizeof(*times), cmp_u64);
	{
		double sum = 0;
		for (i = 0; i < n_times; i++)
			sum += (double)times[i];
		printf("apply: %zu feeds, mean %.0f ns, median %llu ns, p99 %llu "
		    "ns, max %llu ns\n", n_times, sum / (double)n_times,
		    (unsigned long long)times[n_times / 2],
		    (unsigned long long)times[n_times * 99 / 100],
		    (unsigned long long)times[n_times - 1]);
		qsort(narrow, n_narrow, sizeof(*narrow), cmp_u64);
		sum = 0;
		for (i = 0; i < n_narrow; i++)
			sum += (double)narrow[i];
		if (n_narrow > 0)
			printf("  of which %zu re-allocated their province only: "
			    "mean %.0f ns, median %llu ns, p99 %llu ns, max %llu ns\n",
			    n_narrow, sum / (double)n_narrow,
			    (unsigned long long)narrow[n_narrow / 2],
			    (unsigned long long)narrow[n_narrow * 99 / 100],
			    (unsigned long long)narrow[n_narrow - 1]);
		qsort(wides, n_wide, sizeof(*wides), cmp_u64);
		sum = 0;
		for (i = 0; i < n_wide; i++)
			sum += (double)wides[i];
		if (n_wide > 0)
			printf("  and %lu re-decided a national threshold (every "
			    "province again): mean %.0f ns, median %llu ns, max "
			    "%llu ns\n", n_wide, sum / (double)n_wide,
			    (unsigned long long)wides[n_wide / 2],
			    (unsigned long long)wides[n_wide - 1]);
	}
	return 0;
}
