/*
 * bench_seats.c - what the seat engine costs on election night.
 *
 * Three things are timed, each on fixed, generated data (seeded, so every
 * run measures the same work):
 *
 *   allocate	one province of 71 seats among 40 lists with skewed votes
 *		(a Baghdad-sized governorate), for every method;
 *   reaggregate	52 provinces x 100 coalitions summed into national seats
 *		and votes, then ranked (seats desc, votes desc, index asc),
 *		which is what every applied batch does to the leaderboard if
 *		it recomputes instead of moving by difference;
 *   explain	tally_seats_explain for all 40 lists of that province, what
 *		GET /v1/provinces/{id}?explain=1 needs once per version;
 *   bounds	tally_bounds_compute for that province under a 3 % threshold
 *		of valid votes, with U uncounted ballots (0.5 %, 5 % and 50 %
 *		of those counted), what every applied feed costs once the
 *		province has a bound on its uncounted.
 *
 * Usage: bench_seats [--once]
 *
 * Without arguments each measurement runs for at least MIN_NS and prints
 * "allocate dhondt 71x40: 1234 ns/op (N ops)".  With --once every phase runs
 * a fixed number of iterations (the ONCE_* constants, printed), so that under
 *   valgrind --tool=callgrind ./bench_seats --once
 * the inclusive cost of each phase function (phase_dhondt, phase_reaggregate,
 * ...) divided by its iterations is the instructions per operation.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tally/tally.h>

#include "bench.h"

#define SEATS		71
#define LISTS		40
#define PROVINCES	52
#define COALITIONS	100
#define MIN_NS		200000000.0	/* 0.2 s per measurement */
#define ONCE_ALLOC	1000
#define ONCE_REAGG	1000
#define ONCE_EXPLAIN	5

/* The phases are separate functions so that callgrind can attribute costs. */
#define NOINLINE	__attribute__((noinline))

static uint64_t rng_state = 0x5ea75b3e7c4ULL;



/* Everything a phase reads, built once. */
struct bench {
	uint64_t		 votes[LISTS];
	struct tally_rule	 rules[4];
	const char		*rule_names[4];
	struct tally_seat_result res, scratch;
	struct tally_rule	 bounds_rules[4];
	struct tally_bounds	 bounds;
	const struct tally_rule	*bounds_rule;	/* the phase's current rule */
	uint64_t		 bounds_U;
	bool			 bounds_exact;
	/* Per province, per coalition: seats won and votes. */
	uint32_t		 prov_seats[PROVINCES][COALITIONS];
	uint64_t		 prov_votes[PROVINCES][COALITIONS];
	uint32_t		 nat_seats[COALITIONS];
	uint64_t		 nat_votes[COALITIONS];
	size_t			 rank[COALITIONS];
	uint64_t		 sink;		/* keeps results observable */
};

static struct bench B;

/*
 * Skewed like a real province: list i has about 600,000 / (i + 1) votes
 * (600k, 300k, 200k, ... 15k) plus up to 5,000 of noise, so the cut falls
 * among many lists of similar size, as it does in Baghdad or Madrid.
 */
static void
make_province(uint64_t *votes, size_t n, uint64_t top)
{
	size_t i;

	for (i = 0; i < n; i++)
		votes[i] = top / (i + 1) + bench_rng(&rng_state) % (top / 120 + 1);
}

static void
rule_init(struct tally_rule *r, enum tally_method m, uint64_t fd_num,
    uint64_t fd_den)
{
	memset(r, 0, sizeof(*r));
	r->method = m;
	r->first_divisor.num = fd_num;
	r->first_divisor.den = fd_den;
	r->threshold_of = TALLY_THRESHOLD_NONE;
	r->threshold_percent.den = 1;
	r->ties = TALLY_TIES_VOTES;
}

static void
input_init(struct tally_seat_input *in, const struct tally_rule *rule,
    uint32_t seats, const uint64_t *votes, size_t n)
{
	memset(in, 0, sizeof(*in));
	in->rule = rule;
	in->seats = seats;
	in->n_lists = n;
	in->votes = votes;
}

/*
 * 52 provinces (Spain's count) of 2 to 37 seats, each contested by 8 to 20
 * of the 100 coalitions, allocated once by D'Hondt: the per-province tables
 * the national re-aggregation reads.
 */
static int
make_provinces(void)
{
	struct tally_seat_input in;
	uint64_t votes[COALITIONS];
	size_t p, k, c, n;
	size_t who[COALITIONS];

	for (p = 0; p < PROVINCES; p++) {
		uint32_t seats = (uint32_t)(2 + bench_rng(&rng_state) % 36);
		n = 8 + bench_rng(&rng_state) % 13;
		for (k = 0; k < n; k++)
			who[k] = bench_rng(&rng_state) % COALITIONS;
		make_province(votes, n, 50000 + bench_rng(&rng_state) % 1000000);
		input_init(&in, &B.rules[0], seats, votes, n);
		if (tally_seats_allocate(&in, &B.res) == -1)
			return -1;
		for (k = 0; k < n; k++) {
			c = who[k];
			B.prov_seats[p][c] += B.res.seats[k];
			B.prov_votes[p][c] += votes[k];
		}
	}
	return 0;
}

static int
setup(void)
{
	size_t k;

	make_province(B.votes, LISTS, 600000);
	rule_init(&B.rules[0], TALLY_METHOD_DHONDT, 1, 1);
	rule_init(&B.rules[1], TALLY_METHOD_SAINTE_LAGUE, 17, 10);
	rule_init(&B.rules[2], TALLY_METHOD_HARE, 1, 1);
	rule_init(&B.rules[3], TALLY_METHOD_DROOP, 1, 1);
	B.rule_names[0] = "dhondt";
	B.rule_names[1] = "sainte-lague-1.7";
	B.rule_names[2] = "hare";
	B.rule_names[3] = "droop";
	for (k = 0; k < 4; k++) {
		B.bounds_rules[k] = B.rules[k];
		B.bounds_rules[k].threshold_of = TALLY_THRESHOLD_VALID;
		B.bounds_rules[k].threshold_percent.num = 3;
		B.bounds_rules[k].threshold_percent.den = 1;
		B.bounds_rules[k].threshold_scope = TALLY_SCOPE_PROVINCE;
	}
	if (tally_bounds_init(&B.bounds, LISTS, SEATS) == -1 ||
	    tally_seat_result_init(&B.res, COALITIONS, SEATS) == -1 ||
	    tally_seat_result_init(&B.scratch, COALITIONS, SEATS) == -1)
		return -1;
	return make_provinces();
}

static void
allocate_n(const struct tally_rule *rule, unsigned long iters)
{
	struct tally_seat_input in;
	unsigned long i;

	input_init(&in, rule, SEATS, B.votes, LISTS);
	for (i = 0; i < iters; i++) {
		if (tally_seats_allocate(&in, &B.res) == -1)
			abort();
		B.sink += B.res.seats[i % LISTS];
	}
}

/* One function per method, so that callgrind reports each on its own. */
static NOINLINE void
phase_dhondt(unsigned long iters)
{
	allocate_n(&B.rules[0], iters);
}

static NOINLINE void
phase_sainte_lague(unsigned long iters)
{
	allocate_n(&B.rules[1], iters);
}

static NOINLINE void
phase_hare(unsigned long iters)
{
	allocate_n(&B.rules[2], iters);
}

static NOINLINE void
phase_droop(unsigned long iters)
{
	allocate_n(&B.rules[3], iters);
}

/* The leaderboard order (README.md): seats desc, votes desc, id asc. */
static int
rank_cmp(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;

	if (B.nat_seats[a] != B.nat_seats[b])
		return B.nat_seats[a] > B.nat_seats[b] ? -1 : 1;
	if (B.nat_votes[a] != B.nat_votes[b])
		return B.nat_votes[a] > B.nat_votes[b] ? -1 : 1;
	return (a > b) - (a < b);
}

static NOINLINE void
phase_reaggregate(unsigned long iters)
{
	unsigned long it;
	size_t p, c;

	for (it = 0; it < iters; it++) {
		memset(B.nat_seats, 0, sizeof(B.nat_seats));
		memset(B.nat_votes, 0, sizeof(B.nat_votes));
		for (p = 0; p < PROVINCES; p++)
			for (c = 0; c < COALITIONS; c++) {
				B.nat_seats[c] += B.prov_seats[p][c];
				B.nat_votes[c] += B.prov_votes[p][c];
			}
		for (c = 0; c < COALITIONS; c++)
			B.rank[c] = c;
		qsort(B.rank, COALITIONS, sizeof(B.rank[0]), rank_cmp);
		B.sink += B.rank[0];
	}
}

/* Explain all 40 lists of the D'Hondt province, `iters` times. */
static NOINLINE void
phase_explain(unsigned long iters)
{
	struct tally_seat_input in;
	uint64_t nv, m;
	unsigned long it;
	size_t l;

	input_init(&in, &B.rules[0], SEATS, B.votes, LISTS);
	if (tally_seats_allocate(&in, &B.res) == -1)
		abort();
	for (it = 0; it < iters; it++)
		for (l = 0; l < LISTS; l++) {
			if (tally_seats_explain(&in, &B.res, l, &B.scratch, &nv,
			    &m) == -1)
				abort();
			B.sink += nv + m;
		}
}

/* Bounds for the 71x40 province under B.bounds_rule with B.bounds_U. */
static NOINLINE void
phase_bounds(unsigned long iters)
{
	struct tally_seat_input in;
	unsigned long it;

	input_init(&in, B.bounds_rule, SEATS, B.votes, LISTS);
	in.blank = 20000;
	if (tally_seats_allocate(&in, &B.res) == -1)
		abort();
	for (it = 0; it < iters; it++) {
		if (tally_bounds_compute(&in, &B.res, true, B.bounds_U, NULL,
		    &B.bounds) == -1)
			abort();
		B.sink += B.bounds.min[it % LISTS] + B.bounds.max[it % LISTS];
	}
	B.bounds_exact = B.bounds.exact;
}

/*
 * Run `fn` with growing iteration counts until one run lasts MIN_NS, and
 * return nanoseconds per iteration of that run.
 */
static double
measure(void (*fn)(unsigned long), unsigned long *iters)
{
	unsigned long n = 1;
	double t;

	for (;;) {
		double t0 = bench_now_ns();
		fn(n);
		t = bench_now_ns() - t0;
		if (t >= MIN_NS || n >= (1UL << 40))
			break;
		/* Aim past MIN_NS next time, at least doubling. */
		n = t > 0 && MIN_NS / t * 1.2 * (double)n > 2.0 * (double)n ?
		    (unsigned long)(MIN_NS / t * 1.2 * (double)n) : 2 * n;
	}
	*iters = n;
	return t / (double)n;
}

static void
print_checks(void)
{
	struct tally_seat_input in;
	size_t k, i, with;

	/* What the allocations give, so the numbers are about real work. */
	for (k = 0; k < 4; k++) {
		input_init(&in, &B.rules[k], SEATS, B.votes, LISTS);
		if (tally_seats_allocate(&in, &B.res) == -1)
			abort();
		for (i = 0, with = 0; i < LISTS; i++)
			with += B.res.seats[i] > 0;
		printf("# %s: %u allocated, %u pending, first lists %u %u %u, "
		    "%zu lists with seats\n", B.rule_names[k], B.res.allocated,
		    B.res.pending, B.res.seats[0], B.res.seats[1],
		    B.res.seats[2], with);
	}
}

static void
bounds_all(void)
{
	static const unsigned permille[] = { 5, 50, 500 };
	uint64_t counted = 20000, open;
	unsigned long n;
	double ns;
	size_t k, u, i;

	for (i = 0; i < LISTS; i++)
		counted += B.votes[i];
	for (k = 0; k < 4; k++)
		for (u = 0; u < 3; u++) {
			B.bounds_rule = &B.bounds_rules[k];
			B.bounds_U = counted * permille[u] / 1000;
			ns = measure(phase_bounds, &n);
			for (i = 0, open = 0; i < LISTS; i++)
				open += B.bounds.min[i] != B.bounds.max[i];
			printf("bounds %s 71x40 threshold 3%%, U %.1f%% (%" PRIu64
			    "): %.0f ns/op, %s, %" PRIu64 " lists open "
			    "(%lu ops)\n", B.rule_names[k], permille[u] / 10.0,
			    B.bounds_U, ns, B.bounds_exact ? "exact" :
			    "not exact", open, n);
		}
}

int
main(int argc, char **argv)
{
	static void (*const alloc_phase[4])(unsigned long) = {
		phase_dhondt, phase_sainte_lague, phase_hare, phase_droop,
	};
	bool once = argc > 1 && strcmp(argv[1], "--once") == 0;
	unsigned long n;
	double ns;
	size_t k;

	if (argc > 2 || (argc == 2 && !once)) {
		fprintf(stderr, "usage: %s [--once]\n", argv[0]);
		return 2;
	}
	if (setup() == -1) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	print_checks();
	if (once) {
		/* Fixed work: divide callgrind's per-phase totals by these. */
		for (k = 0; k < 4; k++)
			alloc_phase[k](ONCE_ALLOC);
		phase_reaggregate(ONCE_REAGG);
		phase_explain(ONCE_EXPLAIN);
		printf("once: %d allocations per method (phase_dhondt, "
		    "phase_sainte_lague, phase_hare, phase_droop), %d "
		    "re-aggregations (phase_reaggregate), %d x %d explains "
		    "(phase_explain); sink %" PRIu64 "\n", ONCE_ALLOC,
		    ONCE_REAGG, ONCE_EXPLAIN, LISTS, B.sink);
	} else {
		for (k = 0; k < 4; k++) {
			ns = measure(alloc_phase[k], &n);
			printf("allocate %s %dx%d: %.0f ns/op (%lu ops)\n",
			    B.rule_names[k], SEATS, LISTS, ns, n);
		}
		ns = measure(phase_reaggregate, &n);
		printf("reaggregate %dx%d: %.0f ns/op (%lu ops)\n", PROVINCES,
		    COALITIONS, ns, n);
		ns = measure(phase_explain, &n);
		printf("explain dhondt %dx%d, all %d lists: %.0f ns/op, %.0f "
		    "ns/list (%lu ops)\n", SEATS, LISTS, LISTS, ns,
		    ns / LISTS, n);
		bounds_all();
		printf("# sink %" PRIu64 "\n", B.sink);
	}
	tally_seat_result_finish(&B.res);
	tally_seat_result_finish(&B.scratch);
	tally_bounds_finish(&B.bounds);
	return 0;
}
