/*
 * test_seats_props.c - properties of the seat engine on random inputs.
 *
 * Usage: test_seats_props
 * Environment: TALLYD_SEED or TALLY_PROP_SEED (decimal or 0x hex; the
 * default is fixed so that `meson test` is reproducible; TALLYD_SEED wins),
 * TALLY_PROP_CASES (cases per property).
 *
 * Every case is drawn from a seeded splitmix64 generator, and each case
 * reseeds it from (seed, property, case number), so the seed printed first
 * replays a failure exactly; the failing input is printed as well.
 *
 * The engine (lib/seats.c) is compared with references written here from the
 * rules themselves rather than from the engine's loop: for divisor methods
 * every eligible list's first quotients are sorted and the top `seats` taken;
 * for largest remainder each list's whole quotas and remainders are ranked by
 * counting.  A mistake shared by the engine and a reference built the same
 * way would go unseen, so the two are deliberately built differently.
 *
 * The inputs are skewed towards what breaks seat engines: equal votes,
 * votes that are multiples of one unit (so that 6/2 == 3/1, or 15/3 == 7/1.4
 * and quotients tie across lists), narrow bands, zeros, the largest vote
 * count allowed, thresholds hit exactly, exclusions and lot orders.
 *
 * Properties, lettered as in the summary printed at the end:
 *   a. allocated + pending + unfilled == seats, seats[] sums to allocated,
 *      and the steps account for every firm seat;
 *   b. divisor methods equal the top-quotients reference, ties included;
 *   c. house monotonicity of divisor methods: one seat more, no list loses;
 *   d. largest remainder (Hare, Droop, Hagenbach-Bischoff exact and rounded
 *      up, with its take-back of an S + 1-th whole quota) keeps Hare's
 *      quota rule and equals its reference;
 *   e. no list below the threshold or excluded by the caller gets a seat,
 *      and every threshold status is exact;
 *   f. ties are reported exactly when equal quotients meet at the cut, and
 *      the votes rule and lot orders settle exactly what they should;
 *   g. tally_seats_explain's next_votes and margin, by re-allocation at
 *      the edges, and in small cases at every vote count in between (so
 *      that the fewest / the most is checked, not only the edge);
 *   h. Hagenbach-Bischoff on small degenerate elections, each in a result
 *      sized exactly for it (see prop_hb).
 *
 * Known engine bug (see test_seats_cases.c, "engine bugs"): g fails for
 * Droop, and for Hare with a province threshold, where a list can lose a
 * seat by gaining votes and the engine's binary search misses the fewest
 * votes or overstates the margin.  The summary counts failed cases by
 * method.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tally/tally.h>

#include "check.h"

typedef unsigned __int128 u128;

#define MAX_LISTS	25
#define MAX_SEATS	60
#define CAP_SEATS	(MAX_SEATS + 1)	/* house monotonicity asks one more */
#define MAX_QUOTS	(MAX_LISTS * (CAP_SEATS + 1))
#define DEFAULT_CASES	5000
#define PRINT_MAX	12		/* failures printed per property */
#define DUMP_MAX	12		/* failing inputs printed per property */

enum prop {
	P_ACCOUNT,
	P_DIVISOR,
	P_HOUSE,
	P_REMAINDER,
	P_THRESHOLD,
	P_TIES,
	P_TIED_SET,
	P_EXPLAIN,
	P_HB,
	P_N
};

static const char *const prop_name[P_N] = {
	"a accounting",
	"b divisor reference",
	"c house monotonicity",
	"d largest remainder",
	"e threshold/excluded",
	"f ties",
	"f tied[] once settled",
	"g explain",
	"h Hagenbach-Bischoff",
};

/* Cases (or allocations, for a) each property examined, and its failures. */
static unsigned long prop_cases[P_N], prop_failed[P_N];

/*
 * CHECK from check.h prints every failure.  A broken engine fails thousands
 * of random cases the same way, so after PRINT_MAX failures of a property
 * its checks count silently; the summary still gives the number.
 */
#define PCHECK(p, cond, ...) do {					\
	if (prop_failed[p] < PRINT_MAX) {				\
		unsigned long pc_before_ = check_failed;		\
		CHECK(cond, __VA_ARGS__);				\
		prop_failed[p] += check_failed - pc_before_;		\
	} else {							\
		check_count++;						\
		if (!(cond)) {						\
			check_failed++;					\
			prop_failed[p]++;				\
		}							\
	}								\
} while (0)

#define PCHECK_EQ_U(p, a, b, ...) do {					\
	if (prop_failed[p] < PRINT_MAX) {				\
		unsigned long pc_before_ = check_failed;		\
		CHECK_EQ_U(a, b, __VA_ARGS__);				\
		prop_failed[p] += check_failed - pc_before_;		\
	} else {							\
		check_count++;						\
		if ((unsigned long long)(a) != (unsigned long long)(b)) { \
			check_failed++;					\
			prop_failed[p]++;				\
		}							\
	}								\
} while (0)

/* ---- a seeded generator ----------------------------------------------- */

static uint64_t rng_state;

/* splitmix64: tiny, fast, and every seed gives a full-period sequence. */
static uint64_t
rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* [0, n) by multiply-shift; the bias is far below anything a test notices. */
static uint64_t
rng_below(uint64_t n)
{
	return (uint64_t)(((u128)rng_next() * n) >> 64);
}

static uint64_t
rng_range(uint64_t lo, uint64_t hi)
{
	return lo + rng_below(hi - lo + 1);
}

static bool
rng_chance(unsigned percent)
{
	return rng_below(100) < percent;
}

/*
 * Each case starts from its own state, so that a failing case replays from
 * the printed seed whatever the cases before it drew.
 */
static void
rng_case(uint64_t seed, enum prop p, unsigned long i)
{
	rng_state = seed ^ ((uint64_t)p << 56) ^ (i * 0xd1b54a32d192ed03ULL);
	(void)rng_next();
}

static const uint64_t pow10_tab[] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
	10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
	100000000000ULL, 1000000000000ULL,
};

static uint64_t
gcd64(uint64_t a, uint64_t b)
{
	while (b != 0) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/*
 * An exact decimal in (0, below) with up to 9 decimals, reduced, as the
 * election loader would hold "1.4" or "0.123456789".
 */
static struct tally_frac
random_decimal(uint64_t below)
{
	struct tally_frac f;
	uint64_t g;

	f.den = pow10_tab[rng_below(10)];
	f.num = 1 + rng_below(below * f.den - 1);
	g = gcd64(f.num, f.den);
	f.num /= g;
	f.den /= g;
	return f;
}

/* ---- cases -------------------------------------------------------------- */

struct pcase {
	struct tally_rule	 rule;
	uint32_t		 seats;
	size_t			 n;
	uint64_t		 votes[MAX_LISTS];
	uint64_t		 blank;
	bool			 use_excluded;
	bool			 excluded[MAX_LISTS];
	bool			 use_lot;
	size_t			 n_lot;
	size_t			 lot[MAX_LISTS];
};

enum family { F_DIVISOR, F_REMAINDER, F_ANY };

static void
to_input(const struct pcase *c, struct tally_seat_input *in)
{
	memset(in, 0, sizeof(*in));
	in->rule = &c->rule;
	in->seats = c->seats;
	in->n_lists = c->n;
	in->votes = c->votes;
	in->blank = c->blank;
	in->excluded = c->use_excluded ? c->excluded : NULL;
	in->lot_order = c->use_lot ? c->lot : NULL;
	in->n_lot = c->use_lot ? c->n_lot : 0;
}

static void
dump_case(const struct pcase *c, const char *why)
{
	size_t i;

	fprintf(stderr, "  input (%s): method %s first_divisor %" PRIu64 "/%"
	    PRIu64 " threshold %s %" PRIu64 "/%" PRIu64 "%% %s ties %s "
	    "seats %" PRIu32 " blank %" PRIu64 "\n  votes", why,
	    tally_method_name(c->rule.method), c->rule.first_divisor.num,
	    c->rule.first_divisor.den,
	    tally_threshold_of_name(c->rule.threshold_of),
	    c->rule.threshold_percent.num, c->rule.threshold_percent.den,
	    tally_scope_name(c->rule.threshold_scope),
	    tally_ties_name(c->rule.ties), c->seats, c->blank);
	for (i = 0; i < c->n; i++)
		fprintf(stderr, " %" PRIu64 "%s", c->votes[i],
		    c->use_excluded && c->excluded[i] ? "(x)" : "");
	if (c->use_lot) {
		fprintf(stderr, "\n  lot");
		for (i = 0; i < c->n_lot; i++)
			fprintf(stderr, " %zu", c->lot[i]);
	}
	fputc('\n', stderr);
}

static void
gen_rule(struct pcase *c, enum family fam)
{
	struct tally_rule *rule = &c->rule;
	unsigned pick;

	memset(rule, 0, sizeof(*rule));
	rule->first_divisor.num = rule->first_divisor.den = 1;
	if (fam == F_ANY)
		fam = rng_chance(60) ? F_DIVISOR : F_REMAINDER;
	if (fam == F_DIVISOR) {
		if (rng_chance(40)) {
			rule->method = TALLY_METHOD_DHONDT;
			/* The loader allows a first divisor below 2. */
			if (rng_chance(15))
				rule->first_divisor = random_decimal(2);
		} else {
			rule->method = TALLY_METHOD_SAINTE_LAGUE;
			pick = (unsigned)rng_below(4);
			if (pick == 1) {		/* Norway, Sweden */
				rule->first_divisor.num = 7;
				rule->first_divisor.den = 5;
			} else if (pick == 2) {		/* Iraq 2018 */
				rule->first_divisor.num = 17;
				rule->first_divisor.den = 10;
			} else if (pick == 3) {
				rule->first_divisor = random_decimal(3);
			}
		}
	} else {
		static const enum tally_method lr[] = {
			TALLY_METHOD_HARE, TALLY_METHOD_DROOP,
			TALLY_METHOD_HAGENBACH_BISCHOFF,
			TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL,
		};
		rule->method = lr[rng_below(4)];
	}
	rule->ties = rng_chance(50) ? TALLY_TIES_VOTES : TALLY_TIES_LOT;
	rule->threshold_percent.num = 0;
	rule->threshold_percent.den = 1;
	pick = (unsigned)rng_below(10);
	if (pick < 4)
		return;
	rule->threshold_of = pick < 7 ? TALLY_THRESHOLD_VALID :
	    TALLY_THRESHOLD_LIST;
	rule->threshold_scope = rng_chance(10) ? TALLY_SCOPE_NATIONAL :
	    TALLY_SCOPE_PROVINCE;
	pick = (unsigned)rng_below(4);
	if (pick < 2) {
		rule->threshold_percent.num = rng_range(1, 15);
	} else if (pick == 2) {
		rule->threshold_percent = random_decimal(20);
	} else if (rng_chance(5)) {
		rule->threshold_percent.num = 100;
	} else {
		rule->threshold_percent = random_decimal(100);
	}
}

/* One list's votes in the given style (see gen_votes). */
static uint64_t
draw_votes(unsigned style, size_t i, const uint64_t *pool, uint64_t unit,
    uint64_t top)
{
	switch (style) {
	case 0:
		return rng_below(4);
	case 1:
		return unit + rng_below(5);
	case 2:
		return pool[rng_below(3)];
	case 3:
		return unit * rng_range(1, 35);
	case 4:
		return rng_below(pow10_tab[rng_below(13)] + 1);
	case 5:
		return top / (1 + i * i) + rng_below(top / 50 + 1);
	default:
		return rng_chance(50) ? TALLY_VOTES_MAX - rng_below(3) :
		    rng_below(TALLY_VOTES_MAX + 1);
	}
}

/*
 * Votes in one of eight styles: tiny counts (zeros and equal values), a
 * narrow band, a pool of three values, multiples of one unit (quotients of
 * different lists coincide: 6/2 == 3/1, 15/3 == 7/1.4, 30/3 == 17/1.7), any
 * magnitude up to 10^12, a skewed realistic province, the maximum, or each
 * list in a style of its own.
 */
static void
gen_votes(struct pcase *c, bool tie_prone)
{
	uint64_t pool[3], unit, top;
	unsigned style, s;
	size_t i;

	style = (unsigned)rng_below(tie_prone ? 4 : 8);
	for (i = 0; i < 3; i++)
		pool[i] = rng_below(pow10_tab[rng_range(1, 12)] + 1);
	unit = rng_chance(50) ? rng_range(1, 1000) : rng_range(1, 1000000000);
	top = pow10_tab[rng_range(3, 12)];
	for (i = 0; i < c->n; i++) {
		s = style == 7 ? (unsigned)rng_below(7) : style;
		c->votes[i] = draw_votes(s, i, pool, unit, top);
		if (c->votes[i] > TALLY_VOTES_MAX)
			c->votes[i] = TALLY_VOTES_MAX;
	}
	/* Some lists with no votes at all, which must never win a seat. */
	if (rng_chance(15))
		for (i = 0; i < c->n; i++)
			if (rng_chance(20))
				c->votes[i] = 0;
}

static uint64_t
sum_votes(const struct pcase *c)
{
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < c->n; i++)
		s += c->votes[i];
	return s;
}

/*
 * Make one list sit exactly on an integer threshold p: v * 100 == p * base.
 * With B0 the rest of the base, v = p * B0 / (100 - p), so B0 is first made
 * a multiple of 100 - p (through the blank votes or another list).
 */
static void
put_on_threshold(struct pcase *c)
{
	uint64_t p = rng_range(1, 20), b0, add, v;
	size_t i = rng_below(c->n), j;

	c->rule.threshold_percent.num = p;
	c->rule.threshold_percent.den = 1;
	b0 = sum_votes(c) - c->votes[i];
	if (c->rule.threshold_of == TALLY_THRESHOLD_VALID)
		b0 += c->blank;
	add = (100 - p - b0 % (100 - p)) % (100 - p);
	if (c->rule.threshold_of == TALLY_THRESHOLD_VALID) {
		if (c->blank + add > TALLY_VOTES_MAX)
			return;
		c->blank += add;
	} else {
		if (c->n < 2)
			return;
		j = (i + 1) % c->n;
		if (c->votes[j] + add > TALLY_VOTES_MAX)
			return;
		c->votes[j] += add;
	}
	b0 += add;
	v = p * b0 / (100 - p);
	if (v <= TALLY_VOTES_MAX)
		c->votes[i] = v;
}

static void
shuffle(size_t *v, size_t n)
{
	size_t i;

	for (i = n; i > 1; i--) {
		size_t j = rng_below(i), t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/* A random lot order: some lists, in random order, no list twice. */
static void
gen_lot(struct pcase *c)
{
	size_t all[MAX_LISTS], i;

	for (i = 0; i < c->n; i++)
		all[i] = i;
	shuffle(all, c->n);
	c->use_lot = true;
	c->n_lot = rng_below(c->n + 1);
	memcpy(c->lot, all, c->n_lot * sizeof(*all));
}

static void
gen_case(struct pcase *c, enum family fam, uint32_t max_seats, size_t max_lists,
    bool tie_prone)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	gen_rule(c, fam);
	c->seats = (uint32_t)(rng_chance(40) ? rng_range(1, 8) :
	    rng_range(1, max_seats));
	c->n = rng_chance(40) ? rng_range(1, 6) : rng_range(1, max_lists);
	gen_votes(c, tie_prone);
	switch (rng_below(4)) {
	case 0:
	case 1:
		c->blank = 0;
		break;
	case 2:
		c->blank = rng_below(sum_votes(c) / 20 + 1);
		if (c->blank > TALLY_VOTES_MAX)
			c->blank = TALLY_VOTES_MAX;
		break;
	default:
		c->blank = rng_below(TALLY_VOTES_MAX + 1);
		break;
	}
	if (c->rule.threshold_of != TALLY_THRESHOLD_NONE && rng_chance(20))
		put_on_threshold(c);
	if (rng_chance(15)) {
		c->use_excluded = true;
		for (i = 0; i < c->n; i++)
			c->excluded[i] = rng_chance(20);
	}
	if (rng_chance(25))
		gen_lot(c);
}

/* ---- the references ----------------------------------------------------- */

/* A quotient votes / (num / den) = votes * den / num, as in seats.h. */
struct rquot {
	uint64_t	votes;
	uint64_t	num;
	uint64_t	den;
	size_t		list;
};

struct ref {
	uint8_t		 status[MAX_LISTS];
	bool		 eligible[MAX_LISTS];
	size_t		 n_eligible;
	uint32_t	 seats[MAX_LISTS];	/* firm seats */
	uint32_t	 allocated, pending, unfilled;
	bool		 tie;
	uint32_t	 tie_seats;		/* contested at the cut */
	uint32_t	 above;			/* steps before the tie */
	bool		 group[MAX_LISTS];	/* equal at the cut */
	bool		 still[MAX_LISTS];	/* tied after rule and lot */
	/* Divisor methods: every eligible list's first quotients, best first. */
	struct rquot	 q[MAX_QUOTS];
	size_t		 n_q;
	/* Largest remainder. */
	uint64_t	 total;			/* V, eligible votes */
	uint64_t	 droop_q;		/* Droop, HB rounded up */
	uint64_t	 whole_sum;		/* before any take-back */
	uint32_t	 whole[MAX_LISTS];
	u128		 rem[MAX_LISTS];
	bool		 rem_pos[MAX_LISTS];	/* Hare: exact quota not whole */
};

/* The divisor for a list holding k seats: the first divisor, then the series. */
static void
ref_div(const struct tally_rule *rule, uint32_t k, uint64_t *num, uint64_t *den)
{
	if (k == 0) {
		*num = rule->first_divisor.num;
		*den = rule->first_divisor.den;
	} else {
		*num = rule->method == TALLY_METHOD_DHONDT ? k + 1ULL :
		    2ULL * k + 1;
		*den = 1;
	}
}

/* Exact comparison of a/b-style quotients; every product is below 2^102. */
static int
rq_cmp_value(uint64_t av, uint64_t anum, uint64_t aden, uint64_t bv,
    uint64_t bnum, uint64_t bden)
{
	u128 l = (u128)av * aden * bnum;
	u128 r = (u128)bv * bden * anum;

	return (l > r) - (l < r);
}

/* qsort order: larger quotient first (the order among equals is irrelevant). */
static int
rq_desc(const void *pa, const void *pb)
{
	const struct rquot *a = pa, *b = pb;
	int c = rq_cmp_value(a->votes, a->num, a->den, b->votes, b->num, b->den);

	if (c != 0)
		return -c;
	return (a->list > b->list) - (a->list < b->list);
}

static bool
rq_eq(const struct rquot *a, const struct rquot *b)
{
	return rq_cmp_value(a->votes, a->num, a->den, b->votes, b->num,
	    b->den) == 0;
}

/*
 * Threshold status, phrased differently from the engine: the fewest votes
 * that reach p percent of the base are ceil(p * base / 100); a list passes
 * with at least that many.  Excluded beats everything; a national threshold
 * is the caller's business (it excludes), so the province passes everyone.
 */
static void
ref_threshold(const struct pcase *c, struct ref *f)
{
	const struct tally_rule *rule = &c->rule;
	u128 base = 0, need = 0;
	size_t i;

	for (i = 0; i < c->n; i++)
		base += c->votes[i];
	if (rule->threshold_of == TALLY_THRESHOLD_VALID)
		base += c->blank;
	if (rule->threshold_of != TALLY_THRESHOLD_NONE) {
		u128 a = (u128)rule->threshold_percent.num * base;
		u128 d = (u128)100 * rule->threshold_percent.den;
		need = (a + d - 1) / d;
	}
	f->n_eligible = 0;
	for (i = 0; i < c->n; i++) {
		uint8_t st;
		if (c->use_excluded && c->excluded[i])
			st = TALLY_TS_EXCLUDED;
		else if (rule->threshold_of == TALLY_THRESHOLD_NONE)
			st = TALLY_TS_NONE;
		else if (rule->threshold_scope == TALLY_SCOPE_NATIONAL)
			st = TALLY_TS_PASSED;
		else
			st = c->votes[i] >= need ? TALLY_TS_PASSED :
			    TALLY_TS_FAILED;
		f->status[i] = st;
		f->eligible[i] = c->votes[i] > 0 &&
		    (st == TALLY_TS_NONE || st == TALLY_TS_PASSED);
		f->n_eligible += f->eligible[i];
	}
}

static size_t
lot_pos(const struct pcase *c, size_t list)
{
	size_t i;

	if (!c->use_lot)
		return SIZE_MAX;
	for (i = 0; i < c->n_lot; i++)
		if (c->lot[i] == list)
			return i;
	return SIZE_MAX;
}

/*
 * Settle k seats contested by the lists in f->group.  Under `votes` a list
 * wins outright when every tied list with at least its votes fits in k, and
 * loses outright when k lists have more votes; the rest stay tied.  Under
 * `lot` all stay tied.  A lot order then settles the still-tied lists when
 * it names at least as many of them as there are seats left: the first named
 * win.  Whatever is still open is pending.
 */
static void
ref_settle(const struct pcase *c, struct ref *f, uint32_t k)
{
	size_t i, j, named = 0;
	uint32_t left = k;

	f->tie = true;
	f->tie_seats = k;
	for (i = 0; i < c->n; i++) {
		size_t more = 0, atleast = 0;
		f->still[i] = false;
		if (!f->group[i])
			continue;
		if (c->rule.ties == TALLY_TIES_LOT) {
			f->still[i] = true;
			continue;
		}
		for (j = 0; j < c->n; j++) {
			if (!f->group[j])
				continue;
			more += c->votes[j] > c->votes[i];
			atleast += c->votes[j] >= c->votes[i];
		}
		if (atleast <= k) {
			f->seats[i]++;
			left--;
		} else if (more < k) {
			f->still[i] = true;
		}
	}
	for (i = 0; i < c->n; i++)
		named += f->still[i] && lot_pos(c, i) != SIZE_MAX;
	if (left > 0 && named >= left) {
		for (j = 0; j < c->n_lot && left > 0; j++) {
			size_t l = c->lot[j];
			if (l < c->n && f->still[l]) {
				f->seats[l]++;
				left--;
			}
		}
		memset(f->still, 0, sizeof(f->still));
	}
	f->pending = left;
}

static void
ref_reset(struct ref *f)
{
	memset(f->seats, 0, sizeof(f->seats));
	memset(f->group, 0, sizeof(f->group));
	memset(f->still, 0, sizeof(f->still));
	memset(f->whole, 0, sizeof(f->whole));
	f->allocated = f->pending = f->unfilled = 0;
	f->tie = false;
	f->tie_seats = f->above = 0;
	f->n_q = 0;
	f->total = f->droop_q = f->whole_sum = 0;
}

/*
 * Every eligible list's first `per_list` quotients, best first.  Because a
 * list's quotients strictly decrease (the first divisor is below the second),
 * the best S of them are the seats, and the (S+1)-th tells whether the cut
 * falls inside a group of equal quotients.
 */
static void
ref_quotients(const struct pcase *c, struct ref *f, uint32_t per_list)
{
	size_t i;
	uint32_t k;

	f->n_q = 0;
	for (i = 0; i < c->n; i++) {
		if (!f->eligible[i])
			continue;
		for (k = 0; k < per_list; k++) {
			struct rquot *q = &f->q[f->n_q++];
			q->votes = c->votes[i];
			q->list = i;
			ref_div(&c->rule, k, &q->num, &q->den);
		}
	}
	qsort(f->q, f->n_q, sizeof(f->q[0]), rq_desc);
}

/* The divisor reference: the top `seats` quotients, a tie if the cut splits
 * a group of equal quotients. */
static void
ref_divisor(const struct pcase *c, struct ref *f)
{
	uint32_t s = c->seats;
	size_t i, j;

	ref_reset(f);
	ref_threshold(c, f);
	if (f->n_eligible == 0) {
		f->unfilled = s;
		return;
	}
	ref_quotients(c, f, s + 1);
	if (f->n_q > s && rq_eq(&f->q[s - 1], &f->q[s])) {
		for (i = 0; !rq_eq(&f->q[i], &f->q[s - 1]); i++)
			f->seats[f->q[i].list]++;
		f->above = (uint32_t)i;
		for (j = i; j < f->n_q && rq_eq(&f->q[j], &f->q[s - 1]); j++)
			f->group[f->q[j].list] = true;
		ref_settle(c, f, s - f->above);
	} else {
		for (i = 0; i < s; i++)
			f->seats[f->q[i].list]++;
	}
	for (i = 0; i < c->n; i++)
		f->allocated += f->seats[i];
}

/*
 * Hagenbach-Bischoff: more whole quotas than seats.  Written from the rule
 * (Act 180/2014 Coll. s. 66(4)), by counting: a holder of a whole quota gives
 * one back when every holder "worse" than it (smaller remainder, or equal
 * remainder and fewer votes) together with those equal to it in both still
 * fit in the excess; it keeps its seats when the worse alone fill the excess;
 * otherwise it is tied with its equals for what the excess leaves them.
 * Tied lists give their seat back, the seats they keep are contested
 * (settled as any tie: equal in votes, so only a lot settles them).
 */
static void
ref_take_back(const struct pcase *c, struct ref *f, uint32_t excess)
{
	uint32_t worse_of_group = 0, group_n = 0;
	bool gives[MAX_LISTS] = { false };
	size_t i, j;

	/* Decide for every holder first, then give back (the holders must
	 * not change under the counting). */
	for (i = 0; i < c->n; i++) {
		uint32_t worse = 0, same = 0;
		if (!f->eligible[i] || f->whole[i] == 0)
			continue;
		for (j = 0; j < c->n; j++) {
			if (!f->eligible[j] || f->whole[j] == 0)
				continue;
			if (f->rem[j] < f->rem[i] || (f->rem[j] == f->rem[i] &&
			    c->votes[j] < c->votes[i]))
				worse++;
			else if (f->rem[j] == f->rem[i] &&
			    c->votes[j] == c->votes[i])
				same++;
		}
		if (worse + same <= excess) {
			gives[i] = true;
		} else if (worse < excess) {
			f->group[i] = true;
			worse_of_group = worse;
			group_n = same;
		}
	}
	for (i = 0; i < c->n; i++)
		if (gives[i]) {
			f->seats[i]--;
			f->whole[i]--;
		}
	if (group_n == 0)
		return;
	for (i = 0; i < c->n; i++)
		if (f->group[i]) {
			f->seats[i]--;
			f->whole[i]--;
		}
	f->above = 0;
	ref_settle(c, f, group_n - (excess - worse_of_group));
	/* Whatever a group member won back was its whole quota. */
	for (i = 0; i < c->n; i++)
		if (f->group[i])
			f->whole[i] = f->seats[i];
}

/*
 * The largest-remainder reference.  Hare: a list's exact quota is v*S/V,
 * whole seats its floor, remainder v*S - whole*V (in units of 1/S vote).
 * Droop: Q = floor(V/(S+1)) + 1, whole = v div Q, remainder v mod Q.
 * The seats left go to the largest remainders; ranking is by counting, not
 * sorting: a list wins if every list with at least its remainder fits, loses
 * if as many lists as seats left have more, and is tied otherwise.
 *
 * Droop with tiny totals can leave more seats than lists (V=10, S=9: Q=2);
 * then every list takes one per round, as the engine does, and only the last
 * partial round is ranked.  Hare never gets there: the remainders sum to
 * (seats left) * V and each is below V.
 */
static void
ref_remainder(const struct pcase *c, struct ref *f)
{
	uint32_t s = c->seats, left = s;
	size_t i, j;

	ref_reset(f);
	ref_threshold(c, f);
	for (i = 0; i < c->n; i++)
		if (f->eligible[i])
			f->total += c->votes[i];
	if (f->total == 0) {
		f->unfilled = s;
		return;
	}
	/* The integer quota: Droop's, or Hagenbach-Bischoff's rounded up. */
	if (c->rule.method == TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL)
		f->droop_q = (f->total + s) / ((uint64_t)s + 1);
	else
		f->droop_q = f->total / ((uint64_t)s + 1) + 1;
	for (i = 0; i < c->n; i++) {
		u128 v = c->votes[i], scale = (u128)s + 1;
		f->rem_pos[i] = false;
		f->rem[i] = 0;
		if (!f->eligible[i])
			continue;
		if (c->rule.method == TALLY_METHOD_HARE) {
			f->whole[i] = (uint32_t)(v * s / f->total);
			f->rem[i] = v * s - (u128)f->whole[i] * f->total;
			f->rem_pos[i] = f->rem[i] != 0;
		} else if (c->rule.method == TALLY_METHOD_HAGENBACH_BISCHOFF) {
			/* v / (V / (S+1)) = v (S+1) / V, in units of 1/(S+1). */
			f->whole[i] = (uint32_t)(v * scale / f->total);
			f->rem[i] = v * scale - (u128)f->whole[i] * f->total;
		} else {
			f->whole[i] = (uint32_t)(v / f->droop_q);
			f->rem[i] = v - (u128)f->whole[i] * f->droop_q;
		}
		f->seats[i] = f->whole[i];
		f->whole_sum += f->whole[i];
	}
	if (f->whole_sum > s) {
		ref_take_back(c, f, (uint32_t)(f->whole_sum - s));
		for (i = 0; i < c->n; i++)
			f->allocated += f->seats[i];
		return;
	}
	left -= (uint32_t)f->whole_sum;
	while (left >= f->n_eligible) {
		for (i = 0; i < c->n; i++)
			f->seats[i] += f->eligible[i];
		left -= (uint32_t)f->n_eligible;
	}
	if (left > 0) {
		uint32_t won = 0;
		bool any = false;
		for (i = 0; i < c->n; i++) {
			size_t more = 0, atleast = 0;
			if (!f->eligible[i])
				continue;
			for (j = 0; j < c->n; j++) {
				if (!f->eligible[j])
					continue;
				more += f->rem[j] > f->rem[i];
				atleast += f->rem[j] >= f->rem[i];
			}
			if (atleast <= left) {
				f->seats[i]++;
				won++;
			} else if (more < left) {
				f->group[i] = true;
				any = true;
			}
		}
		if (any) {
			f->above = won;
			ref_settle(c, f, left - won);
		}
	}
	for (i = 0; i < c->n; i++)
		f->allocated += f->seats[i];
}

static void
ref_compute(const struct pcase *c, struct ref *f)
{
	if (TALLY_METHOD_IS_QUOTA(c->rule.method))
		ref_remainder(c, f);
	else
		ref_divisor(c, f);
}

/* ---- running the engine ------------------------------------------------- */

/* Allocate, and check the accounting (property a) on every allocation. */
static int
run(const struct pcase *c, struct tally_seat_result *r)
{
	struct tally_seat_input in;
	uint64_t sum = 0;
	size_t i;
	uint32_t step_seats[MAX_LISTS] = { 0 };
	int rc;

	to_input(c, &in);
	rc = tally_seats_allocate(&in, r);
	prop_cases[P_ACCOUNT]++;
	PCHECK(P_ACCOUNT, rc == 0, "allocate returned %d", rc);
	if (rc != 0)
		return -1;
	PCHECK_EQ_U(P_ACCOUNT, (uint64_t)r->allocated + r->pending + r->unfilled,
	    c->seats, "allocated %u pending %u unfilled %u", r->allocated,
	    r->pending, r->unfilled);
	for (i = 0; i < c->n; i++)
		sum += r->seats[i];
	PCHECK_EQ_U(P_ACCOUNT, sum, r->allocated, "seats[] sum");
	PCHECK_EQ_U(P_ACCOUNT, r->n_steps, r->allocated, "one step per seat");
	for (i = 0; i < r->n_steps && i < CAP_SEATS; i++) {
		PCHECK(P_ACCOUNT, r->steps[i].list < c->n, "step %zu list %zu",
		    i, r->steps[i].list);
		if (r->steps[i].list < c->n)
			step_seats[r->steps[i].list]++;
	}
	for (i = 0; i < c->n; i++)
		PCHECK_EQ_U(P_ACCOUNT, step_seats[i], r->seats[i],
		    "steps of list %zu", i);
	PCHECK(P_ACCOUNT, r->tie_resolved == (r->tie && r->pending == 0),
	    "tie %d resolved %d pending %u", r->tie, r->tie_resolved,
	    r->pending);
	PCHECK(P_ACCOUNT, r->pending == 0 || r->tie, "pending without a tie");
	return 0;
}

static void
tied_set(const struct pcase *c, const struct tally_seat_result *r, bool *set,
    enum prop p)
{
	size_t i;

	memset(set, 0, MAX_LISTS * sizeof(*set));
	PCHECK(p, r->n_tied <= c->n, "n_tied %zu", r->n_tied);
	for (i = 0; i < r->n_tied && i < c->n; i++) {
		PCHECK(p, r->tied[i] < c->n, "tied[%zu] = %zu", i, r->tied[i]);
		if (r->tied[i] >= c->n)
			continue;
		PCHECK(p, !set[r->tied[i]], "list %zu tied twice", r->tied[i]);
		set[r->tied[i]] = true;
	}
}

/*
 * Compare a result with the reference: seats, thresholds, pending, the tie
 * and its lists.  `p` is the property the seats belong to (b or d).
 */
static void
check_ref(const struct pcase *c, const struct tally_seat_result *r,
    const struct ref *f, enum prop p)
{
	bool set[MAX_LISTS];
	size_t i;

	for (i = 0; i < c->n; i++) {
		PCHECK_EQ_U(p, r->seats[i], f->seats[i], "seats of list %zu", i);
		PCHECK_EQ_U(P_THRESHOLD, r->threshold[i], f->status[i],
		    "threshold status of list %zu", i);
		PCHECK(P_THRESHOLD, r->seats[i] == 0 || f->eligible[i],
		    "list %zu (votes %" PRIu64 ", status %u) has %u seats", i,
		    c->votes[i], f->status[i], r->seats[i]);
	}
	PCHECK_EQ_U(p, r->allocated, f->allocated, "allocated");
	PCHECK_EQ_U(p, r->pending, f->pending, "pending");
	PCHECK_EQ_U(p, r->unfilled, f->unfilled, "unfilled");
	PCHECK_EQ_U(P_TIES, r->tie, f->tie, "a tie at the cut");
	if (!r->tie || !f->tie)
		return;
	PCHECK_EQ_U(P_TIES, r->tie_seats, f->tie_seats, "seats contested");
	tied_set(c, r, set, P_TIES);
	if (f->pending == 0)
		prop_cases[P_TIED_SET]++;
	for (i = 0; i < c->n; i++) {
		/*
		 * Unsettled, tied[] names the lists still tied; settled, every
		 * list that was tied at the cut ("all of them once settled").
		 */
		bool want = f->pending > 0 ? f->still[i] : f->group[i];
		PCHECK_EQ_U(f->pending > 0 ? P_TIES : P_TIED_SET, set[i], want,
		    "list %zu in tied[] "
		    "(pending %u)", i, f->pending);
	}
}

/* Divisor steps: each is the list's own next quotient, best first. */
static void
check_divisor_steps(const struct pcase *c, const struct tally_seat_result *r,
    const struct ref *f)
{
	uint32_t held[MAX_LISTS] = { 0 };
	size_t j;

	PCHECK_EQ_U(P_DIVISOR, r->quota.votes, 0, "no quota for divisors");
	for (j = 0; j < r->n_steps && j < f->n_q; j++) {
		const struct tally_seat_step *st = &r->steps[j];
		uint64_t num, den;
		if (st->list >= c->n)
			return;
		ref_div(&c->rule, held[st->list]++, &num, &den);
		PCHECK(P_DIVISOR, rq_cmp_value(st->quot.votes, st->quot.num,
		    st->quot.den, c->votes[st->list], num, den) == 0,
		    "step %zu: quotient of list %zu", j, st->list);
		PCHECK(P_DIVISOR, rq_cmp_value(st->quot.votes, st->quot.num,
		    st->quot.den, f->q[j].votes, f->q[j].num, f->q[j].den) == 0,
		    "step %zu: the %zu-th best quotient", j, j + 1);
		PCHECK_EQ_U(P_DIVISOR, st->remainder, false, "step %zu", j);
		PCHECK_EQ_U(P_TIES, st->by_tie_rule, f->tie && j >= f->above,
		    "step %zu decided by the tie rule", j);
	}
}

/* Largest-remainder steps and quota; Hare's quota rule. */
static void
check_remainder_extra(const struct pcase *c, const struct tally_seat_result *r,
    const struct ref *f)
{
	uint32_t whole[MAX_LISTS] = { 0 };
	size_t i;

	if (f->total == 0)
		return;
	if (c->rule.method == TALLY_METHOD_HARE)
		PCHECK(P_REMAINDER, rq_cmp_value(r->quota.votes, r->quota.num,
		    r->quota.den, f->total, c->seats, 1) == 0,
		    "Hare quota V/S");
	else if (c->rule.method == TALLY_METHOD_HAGENBACH_BISCHOFF)
		PCHECK(P_REMAINDER, rq_cmp_value(r->quota.votes, r->quota.num,
		    r->quota.den, f->total, (uint64_t)c->seats + 1, 1) == 0,
		    "Hagenbach-Bischoff quota V/(S+1)");
	else
		PCHECK(P_REMAINDER, rq_cmp_value(r->quota.votes, r->quota.num,
		    r->quota.den, f->droop_q, 1, 1) == 0, "Droop quota");
	for (i = 0; i < r->n_steps; i++)
		if (!r->steps[i].remainder && r->steps[i].list < c->n)
			whole[r->steps[i].list]++;
	for (i = 0; i < c->n; i++) {
		PCHECK_EQ_U(P_REMAINDER, whole[i], f->whole[i],
		    "whole quotas of list %zu", i);
		if (c->rule.method != TALLY_METHOD_HARE || !f->eligible[i])
			continue;
		/*
		 * The quota rule: floor(q) <= seats <= ceil(q), q = v*S/V;
		 * a list still in a tie could reach seats + 1, which must
		 * stay within ceil(q) too.
		 */
		PCHECK(P_REMAINDER, r->seats[i] >= f->whole[i] &&
		    r->seats[i] + (f->still[i] ? 1u : 0u) <=
		    f->whole[i] + (f->rem_pos[i] ? 1u : 0u),
		    "Hare quota rule, list %zu: %u seats, quota floor %u", i,
		    r->seats[i], f->whole[i]);
	}
}

/* ---- the properties ------------------------------------------------------- */

/* Print the input of a case that failed, a limited number of times. */
static void
case_end(const struct pcase *c, unsigned long failed_before, enum prop p,
    unsigned long i)
{
	static unsigned long dumps[P_N];
	char why[96];

	if (check_failed == failed_before || dumps[p] >= DUMP_MAX)
		return;
	dumps[p]++;
	snprintf(why, sizeof(why), "%s, case %lu", prop_name[p], i);
	dump_case(c, why);
}

static unsigned long ties_seen[2];	/* divisor, remainder: in b and d */
static unsigned long on_threshold;	/* cases with a list exactly on it */

/* Count the cases where some list holds exactly p percent of the base. */
static void
note_threshold(const struct pcase *c)
{
	u128 base = c->rule.threshold_of == TALLY_THRESHOLD_VALID ? c->blank : 0;
	size_t i;

	if (c->rule.threshold_of == TALLY_THRESHOLD_NONE ||
	    c->rule.threshold_scope == TALLY_SCOPE_NATIONAL)
		return;
	for (i = 0; i < c->n; i++)
		base += c->votes[i];
	for (i = 0; i < c->n; i++)
		if ((u128)c->votes[i] * 100 * c->rule.threshold_percent.den ==
		    (u128)c->rule.threshold_percent.num * base) {
			on_threshold++;
			return;
		}
}

/* b, c, e (and a, f where they arise): divisor methods on random input. */
static void
prop_divisor(uint64_t seed, unsigned long cases, struct ref *f,
    struct ref *f2, struct tally_seat_result *r, struct tally_seat_result *r2)
{
	unsigned long i;
	size_t l;

	for (i = 0; i < cases; i++) {
		unsigned long before = check_failed;
		struct pcase c, c2;

		rng_case(seed, P_DIVISOR, i);
		gen_case(&c, F_DIVISOR, MAX_SEATS, MAX_LISTS, false);
		ref_divisor(&c, f);
		note_threshold(&c);
		if (run(&c, r) == 0) {
			check_ref(&c, r, f, P_DIVISOR);
			check_divisor_steps(&c, r, f);
			prop_cases[P_DIVISOR]++;
			prop_cases[P_THRESHOLD]++;
			ties_seen[0] += f->tie;
		}
		/*
		 * House monotonicity (Balinski and Young): divisor methods
		 * never take a seat away when the house grows.  Only without
		 * a tie at either size, where "a seat" is well defined.
		 */
		c2 = c;
		c2.seats++;
		ref_divisor(&c2, f2);
		if (!f->tie && run(&c2, r2) == 0) {
			check_ref(&c2, r2, f2, P_DIVISOR);
			if (!r2->tie) {
				prop_cases[P_HOUSE]++;
				for (l = 0; l < c.n; l++)
					PCHECK(P_HOUSE, r2->seats[l] >=
					    r->seats[l], "list %zu: %u seats "
					    "of %u, %u of %u", l, r->seats[l],
					    c.seats, r2->seats[l], c2.seats);
			}
		}
		case_end(&c, before, P_DIVISOR, i);
	}
}

/* d, e: largest remainder on random input. */
static void
prop_remainder(uint64_t seed, unsigned long cases, struct ref *f,
    struct tally_seat_result *r)
{
	unsigned long i;

	for (i = 0; i < cases; i++) {
		unsigned long before = check_failed;
		struct pcase c;

		rng_case(seed, P_REMAINDER, i);
		gen_case(&c, F_REMAINDER, MAX_SEATS, MAX_LISTS, false);
		ref_remainder(&c, f);
		note_threshold(&c);
		if (run(&c, r) == 0) {
			check_ref(&c, r, f, P_REMAINDER);
			check_remainder_extra(&c, r, f);
			prop_cases[P_REMAINDER]++;
			prop_cases[P_THRESHOLD]++;
			ties_seen[1] += f->tie;
		}
		case_end(&c, before, P_REMAINDER, i);
	}
}

/*
 * Find a house size with a tie at the cut for these votes, or return false.
 * Divisor methods: the best quotients do not depend on the house size, so
 * every S whose S-th and (S+1)-th quotients are equal is a tie.  Largest
 * remainder: the quotas move with S, so house sizes are tried in random order.
 */
static bool
find_tie(struct pcase *c, struct ref *f)
{
	uint32_t cand[MAX_SEATS], n = 0, s;
	size_t sizes[MAX_SEATS], i;

	if (TALLY_METHOD_IS_QUOTA(c->rule.method)) {
		for (i = 0; i < MAX_SEATS; i++)
			sizes[i] = i + 1;
		shuffle(sizes, MAX_SEATS);
		/* A third of the sizes finds a tie nearly always, cheaper. */
		for (i = 0; i < MAX_SEATS / 3; i++) {
			c->seats = (uint32_t)sizes[i];
			ref_remainder(c, f);
			if (f->tie)
				return true;
		}
		return false;
	}
	ref_reset(f);
	ref_threshold(c, f);
	ref_quotients(c, f, MAX_SEATS + 1);
	for (s = 1; s <= MAX_SEATS; s++)
		if (f->n_q > s && rq_eq(&f->q[s - 1], &f->q[s]))
			cand[n++] = s;
	if (n == 0)
		return false;
	c->seats = cand[rng_below(n)];
	return true;
}

/* A case with a tie at the cut, or false when none turned up. */
static bool
gen_tie_case(struct pcase *c, struct ref *f, enum family fam)
{
	int attempt;

	for (attempt = 0; attempt < 40; attempt++) {
		gen_case(c, fam, MAX_SEATS, MAX_LISTS, true);
		c->use_lot = false;
		c->n_lot = 0;
		if (c->n < 2)
			c->n = 2 + rng_below(MAX_LISTS - 1);
		/* After a few misses, make two lists equal outright. */
		if (attempt >= 10) {
			size_t a = rng_below(c->n), b = (a + 1) % c->n;
			c->votes[b] = c->votes[a] = 1 + rng_below(1000000);
		}
		if (find_tie(c, f)) {
			ref_compute(c, f);
			return true;
		}
	}
	return false;
}

/* Name exactly these lists (in random order) in the lot. */
static void
set_lot(struct pcase *c, const bool *names, bool others)
{
	size_t i;

	c->use_lot = true;
	c->n_lot = 0;
	for (i = 0; i < c->n; i++)
		if (names[i] || (others && rng_chance(30)))
			c->lot[c->n_lot++] = i;
	shuffle(c->lot, c->n_lot);
}

/* Run a variant of a tie case and compare it with its own reference. */
static void
tie_variant(const struct pcase *c, struct ref *f, struct tally_seat_result *r)
{
	ref_compute(c, f);
	if (run(c, r) == 0)
		check_ref(c, r, f, P_TIES);
}

/*
 * f: cases built to have a tie at the cut, each run under both rules, with
 * no lot, a lot naming every tied list, and a lot naming too few.
 */
static void
prop_ties(uint64_t seed, unsigned long cases, struct ref *f, struct ref *f2,
    struct tally_seat_result *r)
{
	unsigned long i, missed = 0, distinct_cases = 0;
	size_t l, j;

	for (i = 0; i < cases; i++) {
		unsigned long before = check_failed;
		struct pcase c, v;
		bool group[MAX_LISTS], distinct = true, named[MAX_LISTS];
		uint32_t contested, above[MAX_LISTS], k;

		rng_case(seed, P_TIES, i);
		if (!gen_tie_case(&c, f, i % 2 ? F_REMAINDER : F_DIVISOR)) {
			missed++;
			continue;
		}
		prop_cases[P_TIES]++;
		memcpy(group, f->group, sizeof(group));
		contested = f->tie_seats;

		/* Under `lot`, with no lot order: every tied list pending. */
		v = c;
		v.rule.ties = TALLY_TIES_LOT;
		tie_variant(&v, f2, r);
		PCHECK(P_TIES, r->tie && !r->tie_resolved, "lot: unresolved");
		PCHECK_EQ_U(P_TIES, r->pending, contested, "lot: all pending");
		memcpy(above, r->seats, sizeof(above));

		/* Under `votes`: settled unless the tied lists share votes. */
		v = c;
		v.rule.ties = TALLY_TIES_VOTES;
		tie_variant(&v, f2, r);
		for (l = 0; l < c.n; l++)
			for (j = l + 1; j < c.n; j++)
				if (group[l] && group[j] &&
				    c.votes[l] == c.votes[j])
					distinct = false;
		if (distinct) {
			distinct_cases++;
			PCHECK_EQ_U(P_TIES, r->pending, 0,
			    "votes: distinct votes settle the tie");
		}

		/* A lot naming every tied list settles everything. */
		v = c;
		v.rule.ties = TALLY_TIES_LOT;
		set_lot(&v, group, true);
		tie_variant(&v, f2, r);
		PCHECK_EQ_U(P_TIES, r->pending, 0, "lot naming all: settled");
		PCHECK(P_TIES, r->tie && r->tie_resolved, "lot naming all");
		/* ... and the first tied lists in its order win. */
		for (j = 0, k = contested; j < v.n_lot; j++) {
			size_t x = v.lot[j];
			if (!group[x])
				continue;
			PCHECK_EQ_U(P_TIES, r->seats[x], above[x] + (k > 0),
			    "lot order position %zu (list %zu)", j, x);
			if (k > 0)
				k--;
		}
		v.rule.ties = TALLY_TIES_VOTES;
		tie_variant(&v, f2, r);
		PCHECK_EQ_U(P_TIES, r->pending, 0, "votes, lot naming all");

		/* A lot naming fewer tied lists than seats pending settles
		 * nothing; naming exactly as many settles them. */
		if (contested >= 2) {
			v = c;
			v.rule.ties = TALLY_TIES_LOT;
			memset(named, 0, sizeof(named));
			for (l = 0, k = 0; l < c.n && k < contested - 1; l++)
				if (group[l]) {
					named[l] = true;
					k++;
				}
			set_lot(&v, named, false);
			tie_variant(&v, f2, r);
			PCHECK_EQ_U(P_TIES, r->pending, contested,
			    "lot naming %u of %u", contested - 1, contested);
		}
		v = c;
		v.rule.ties = TALLY_TIES_LOT;
		memset(named, 0, sizeof(named));
		for (l = 0, k = 0; l < c.n && k < contested; l++)
			if (group[l]) {
				named[l] = true;
				k++;
			}
		set_lot(&v, named, false);
		tie_variant(&v, f2, r);
		PCHECK_EQ_U(P_TIES, r->pending, 0, "lot naming %u", contested);
		for (l = 0; l < c.n; l++)
			if (group[l])
				PCHECK_EQ_U(P_TIES, r->seats[l],
				    above[l] + named[l], "named list %zu", l);
		case_end(&c, before, P_TIES, i);
	}
	printf("ties: %lu built (%lu with distinct votes), %lu attempts "
	    "without a tie\n", prop_cases[P_TIES], distinct_cases, missed);
	PCHECK(P_TIES, missed * 20 <= cases, "the generator finds ties "
	    "(%lu of %lu missed)", missed, cases);
}

/* The firm seats list `l` would hold with `votes`, all else unchanged. */
static uint32_t
seats_at(const struct pcase *c, size_t l, uint64_t votes,
    struct tally_seat_result *r)
{
	struct pcase alt = *c;

	alt.votes[l] = votes;
	if (run(&alt, r) != 0)
		return UINT32_MAX;
	return r->seats[l];
}

#define EXPLAIN_SCAN	120	/* votes scanned one by one in small cases */

/*
 * g: next_votes and margin, checked by allocating again at the edges the
 * engine reports (one vote either side).  In small cases every vote count
 * between the list's own and the edge is allocated too, which also checks
 * what the engine's binary search assumes: that a list does not lose seats
 * by gaining votes while the others stay put.
 */
static void
prop_explain(uint64_t seed, unsigned long cases, struct tally_seat_result *r,
    struct tally_seat_result *scratch, struct tally_seat_result *r2)
{
	unsigned long i, explain_failed[6] = { 0 };
	size_t l;

	for (i = 0; i < cases; i++) {
		unsigned long before = check_failed;
		struct tally_seat_input in;
		struct pcase c;
		bool small;
		uint64_t x;

		rng_case(seed, P_EXPLAIN, i);
		small = rng_chance(75);
		gen_case(&c, F_ANY, small ? 10 : MAX_SEATS,
		    small ? 6 : 12, false);
		if (small) {
			uint64_t unit = rng_range(1, 12);
			c.blank = rng_below(30);
			for (l = 0; l < c.n; l++)
				c.votes[l] = rng_chance(40) ?
				    unit * rng_below(13) : rng_below(151);
		}
		if (run(&c, r) != 0)
			continue;
		prop_cases[P_EXPLAIN]++;
		to_input(&c, &in);
		for (l = 0; l < c.n; l++) {
			uint64_t nv = 0, m = 0, v = c.votes[l];
			uint32_t have = r->seats[l];
			int rc = tally_seats_explain(&in, r, l, scratch, &nv, &m);
			/* Droop, and Hare under a province threshold, have no
			 * single boundary (a list can lose seats by gaining
			 * votes): explain must say so, and only there. */
			bool none = c.rule.method == TALLY_METHOD_DROOP ||
			    c.rule.method == TALLY_METHOD_HAGENBACH_BISCHOFF ||
			    c.rule.method ==
			    TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL ||
			    (c.rule.method == TALLY_METHOD_HARE &&
			    c.rule.threshold_of != TALLY_THRESHOLD_NONE &&
			    c.rule.threshold_scope == TALLY_SCOPE_PROVINCE);

			PCHECK(P_EXPLAIN, rc == (none ? 1 : 0),
			    "explain list %zu: rc %d", l, rc);
			if (rc != 0)
				continue;
			if (nv == UINT64_MAX) {
				PCHECK(P_EXPLAIN, v == TALLY_VOTES_MAX ||
				    seats_at(&c, l, TALLY_VOTES_MAX, r2) <= have,
				    "list %zu: no next seat, yet %" PRIu64
				    " votes give one", l, (uint64_t)TALLY_VOTES_MAX);
			} else {
				PCHECK(P_EXPLAIN, nv >= 1 &&
				    nv <= TALLY_VOTES_MAX - v,
				    "list %zu: next_votes %" PRIu64, l, nv);
				PCHECK(P_EXPLAIN, seats_at(&c, l, v + nv, r2) >
				    have, "list %zu: +%" PRIu64 " votes give a "
				    "seat", l, nv);
				PCHECK(P_EXPLAIN, seats_at(&c, l, v + nv - 1,
				    r2) <= have, "list %zu: +%" PRIu64 " votes "
				    "do not", l, nv - 1);
				if (small && nv <= EXPLAIN_SCAN)
					for (x = v + 1; x < v + nv; x++)
						PCHECK(P_EXPLAIN, seats_at(&c,
						    l, x, r2) <= have,
						    "list %zu: %" PRIu64
						    " votes already give a seat "
						    "(next_votes %" PRIu64 ")",
						    l, x, nv);
			}
			if (have == 0) {
				PCHECK_EQ_U(P_EXPLAIN, m, 0, "list %zu margin "
				    "without seats", l);
				continue;
			}
			PCHECK(P_EXPLAIN, m < v, "list %zu: margin %" PRIu64
			    " of %" PRIu64, l, m, v);
			if (m >= v)
				continue;
			PCHECK(P_EXPLAIN, seats_at(&c, l, v - m, r2) >= have,
			    "list %zu: -%" PRIu64 " votes keep the seats", l, m);
			PCHECK(P_EXPLAIN, seats_at(&c, l, v - m - 1, r2) < have,
			    "list %zu: -%" PRIu64 " votes lose one", l, m + 1);
			if (small && m <= EXPLAIN_SCAN)
				for (x = v - m; x < v; x++)
					PCHECK(P_EXPLAIN, seats_at(&c, l, x,
					    r2) >= have, "list %zu: %" PRIu64
					    " votes lose a seat (margin %"
					    PRIu64 ")", l, x, m);
		}
		if (check_failed != before)
			explain_failed[c.rule.method]++;
		case_end(&c, before, P_EXPLAIN, i);
	}
	printf("explain: failed cases by method: dhondt %lu, sainte-lague %lu, "
	    "hare %lu, droop %lu\n", explain_failed[TALLY_METHOD_DHONDT],
	    explain_failed[TALLY_METHOD_SAINTE_LAGUE],
	    explain_failed[TALLY_METHOD_HARE],
	    explain_failed[TALLY_METHOD_DROOP]);
}

/*
 * h: Hagenbach-Bischoff, exact and rounded up, on small elections drawn to
 * hit every shape the quota makes: one list, every vote zero, lists equal in
 * votes (1:1 for one seat), votes that are exact multiples of the quota (so
 * that the whole quotas come to S + 1 and one must be given back, tied when
 * the smallest remainders are equal in votes too), more seats than lists,
 * with and without thresholds, under both tie rules, with no lot, a lot
 * naming the tied lists and a partial lot.  Each case runs in a result sized
 * exactly for it (lists and seats), as the daemon sizes a province's, so
 * that a write past an array is a crash under ASan (issue 21: the S + 1
 * whole quotas overran the steps array) rather than a silent scribble into
 * spare capacity.
 */
static void
gen_hb_case(struct pcase *c)
{
	uint64_t unit, parts[MAX_LISTS];
	uint32_t left;
	size_t i, k;

	memset(c, 0, sizeof(*c));
	c->rule.first_divisor.num = c->rule.first_divisor.den = 1;
	c->rule.method = rng_chance(50) ? TALLY_METHOD_HAGENBACH_BISCHOFF :
	    TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL;
	c->rule.ties = rng_chance(50) ? TALLY_TIES_VOTES : TALLY_TIES_LOT;
	c->rule.threshold_percent.den = 1;
	if (rng_chance(20)) {
		c->rule.threshold_of = rng_chance(50) ? TALLY_THRESHOLD_VALID :
		    TALLY_THRESHOLD_LIST;
		c->rule.threshold_percent.num = rng_range(1, 30);
	}
	c->seats = (uint32_t)(rng_chance(30) ? 1 : rng_range(1, 12));
	c->n = rng_chance(25) ? 1 : rng_range(2, 6);
	unit = rng_chance(50) ? 1 : rng_range(1, 1000);
	switch (rng_below(6)) {
	case 0:		/* tiny counts: zeros, ones, equal values */
		for (i = 0; i < c->n; i++)
			c->votes[i] = rng_below(4);
		break;
	case 1:		/* every vote zero */
		break;
	case 2:		/* every list equal */
		for (i = 0; i < c->n; i++)
			c->votes[i] = unit;
		break;
	case 3:		/* multiples of the quota: S + 1 whole quotas */
		left = c->seats + 1;
		for (i = 0; i < c->n; i++)
			parts[i] = 0;
		for (k = 0; k < left; k++)
			parts[rng_below(c->n)]++;
		for (i = 0; i < c->n; i++)
			c->votes[i] = parts[i] * unit;
		break;
	case 4:		/* more seats than lists */
		c->seats = (uint32_t)rng_range(c->n, 3 * c->n + 3);
		for (i = 0; i < c->n; i++)
			c->votes[i] = rng_below(20) * unit;
		break;
	default:
		for (i = 0; i < c->n; i++)
			c->votes[i] = rng_chance(50) ? unit * rng_below(8) :
			    rng_below(200);
		break;
	}
	if (rng_chance(20))
		c->blank = rng_below(10);
	if (rng_chance(10)) {
		c->use_excluded = true;
		for (i = 0; i < c->n; i++)
			c->excluded[i] = rng_chance(20);
	}
	if (rng_chance(30))
		gen_lot(c);
}

static void
prop_hb(uint64_t seed, unsigned long cases, struct ref *f)
{
	unsigned long i, shapes[4] = { 0 };
	bool group[MAX_LISTS];
	size_t l;

	for (i = 0; i < cases; i++) {
		unsigned long before = check_failed;
		struct tally_seat_result rr;
		struct pcase c, v;

		rng_case(seed, P_HB, i);
		gen_hb_case(&c);
		if (tally_seat_result_init(&rr, c.n, c.seats) == -1) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		ref_remainder(&c, f);
		if (run(&c, &rr) == 0) {
			check_ref(&c, &rr, f, P_HB);
			check_remainder_extra(&c, &rr, f);
		}
		prop_cases[P_HB]++;
		shapes[0] += f->whole_sum > c.seats;
		shapes[1] += f->tie && f->whole_sum > c.seats;
		shapes[2] += f->tie && f->whole_sum <= c.seats;
		shapes[3] += f->total == 0;
		/* A tie: the lot naming exactly the tied lists settles it,
		 * the first of them in its order keeping the seats. */
		if (f->tie && f->pending > 0 && !c.use_lot) {
			uint32_t contested = f->pending, k, before_lot[MAX_LISTS];
			memcpy(group, f->still, sizeof(group));
			memcpy(before_lot, f->seats, sizeof(before_lot));
			v = c;
			set_lot(&v, group, false);
			ref_remainder(&v, f);
			if (run(&v, &rr) == 0) {
				check_ref(&v, &rr, f, P_HB);
				PCHECK_EQ_U(P_HB, rr.pending, 0, "lot settles");
				PCHECK(P_HB, rr.tie && rr.tie_resolved,
				    "lot: resolved");
				/* The first `contested` in the lot's order win
				 * one seat each, the others none. */
				for (l = 0, k = contested; l < v.n_lot; l++) {
					size_t x = v.lot[l];
					PCHECK_EQ_U(P_HB, rr.seats[x],
					    before_lot[x] + (k > 0),
					    "lot position %zu (list %zu)", l, x);
					if (k > 0)
						k--;
				}
			}
		}
		tally_seat_result_finish(&rr);
		case_end(&c, before, P_HB, i);
	}
	printf("hagenbach-bischoff: %lu cases, %lu with S+1 whole quotas "
	    "(%lu of them tied at the take-back), %lu tied on remainders, "
	    "%lu with no votes\n", cases, shapes[0], shapes[1], shapes[2],
	    shapes[3]);
	PCHECK(P_HB, shapes[1] > 0 && shapes[2] > 0 && shapes[3] > 0,
	    "the generator reaches every shape");
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long
env_ulong(const char *name, unsigned long def)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (s == NULL || *s == '\0')
		return def;
	v = strtoul(s, &end, 0);
	if (*end != '\0') {
		fprintf(stderr, "%s: not a number: %s\n", name, s);
		exit(2);
	}
	return v;
}

int
main(void)
{
	static struct ref f, f2;	/* ~100 KB each: not on the stack */
	struct tally_seat_result r, r2, scratch;
	uint64_t seed;
	unsigned long cases;
	double t0, t;
	int p;

	/* A fixed seed by default (the same cases every run); TALLYD_SEED
	 * (scripts/test --long gives fresh ones) or TALLY_PROP_SEED another. */
	seed = (uint64_t)env_ulong("TALLY_PROP_SEED", 0x7a11d2019);
	seed = (uint64_t)env_ulong("TALLYD_SEED", seed);
	cases = env_ulong("TALLY_PROP_CASES", DEFAULT_CASES);
	printf("seed 0x%" PRIx64 " (TALLYD_SEED=%" PRIu64 " to repeat), %lu "
	    "cases per property (TALLY_PROP_CASES)\n", seed, seed, cases);
	if (tally_seat_result_init(&r, MAX_LISTS, CAP_SEATS) == -1 ||
	    tally_seat_result_init(&r2, MAX_LISTS, CAP_SEATS) == -1 ||
	    tally_seat_result_init(&scratch, MAX_LISTS, CAP_SEATS) == -1) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}

	t0 = t = now_s();
	prop_divisor(seed, cases, &f, &f2, &r, &r2);
	printf("divisor: %.2f s\n", now_s() - t);
	t = now_s();
	prop_remainder(seed, cases, &f, &r);
	printf("remainder: %.2f s\n", now_s() - t);
	t = now_s();
	prop_ties(seed, cases, &f, &f2, &r);
	printf("ties: %.2f s\n", now_s() - t);
	t = now_s();
	prop_explain(seed, cases, &r, &scratch, &r2);
	printf("explain: %.2f s\n", now_s() - t);
	t = now_s();
	prop_hb(seed, cases, &f);
	printf("hagenbach-bischoff: %.2f s\n", now_s() - t);
	printf("random cases with a tie at the cut: %lu divisor, %lu "
	    "remainder; with a list exactly on the threshold: %lu\n",
	    ties_seen[0], ties_seen[1], on_threshold);
	for (p = 0; p < P_N; p++)
		printf("  %-22s %8lu cases %6lu failed\n", prop_name[p],
		    prop_cases[p], prop_failed[p]);
	printf("total %.2f s\n", now_s() - t0);

	tally_seat_result_finish(&r);
	tally_seat_result_finish(&r2);
	tally_seat_result_finish(&scratch);
	return check_done("seats-props");
}
