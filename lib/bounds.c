/*
 * bounds.c - the fewest seats each list is sure of and the most it can still
 * reach, given an upper bound U on the ballots not yet counted.
 *
 * Divisor methods (D'Hondt, Sainte-Laguë, any first divisor) are exact:
 *
 * Most seats.  A divisor method is monotone: giving a list more votes only
 * raises its own quotients, and (under a threshold) raising the base only
 * pushes rivals out, while the list's own share (v + t) / (B + t) grows with
 * t.  So every uncounted ballot going to the list is its best case.  With
 * them it reaches its k-th seat (firmly or tied) iff fewer than S - k + 1
 * rival quotients come before its k-th quotient, counted by the same
 * threshold sequence as below.
 *
 * Fewest seats.  The list L holds its k-th seat firmly iff, at its k-th
 * quotient q = v / d(k-1), at most S - k rival quotients "beat" q: are
 * greater, or equal and not lost to L on the tie rule (`votes`: a rival with
 * at least L's votes; `lot`: any).  An adversary spends uncounted ballots on
 * rivals (never on L, and blank or invalid only to push L under a
 * threshold).  A rival with w votes beats q with its m-th quotient iff
 * w >= N(m), where N is the same non-decreasing sequence for every rival,
 * so rival j costs max(N(m), tau) - v_j for m quotients (tau: the votes a
 * province threshold asks for).  These costs need not be convex (integer
 * rounding, a first divisor of 1.7, a threshold), so greedily taking the
 * cheapest next quotient is not exact (the property tests find cases);
 * instead the cheapest way to buy the missing quotients is a small knapsack
 * over rivals, exact by construction.  A greedy plan (an upper bound on the
 * cost) and the rivals' convex hulls (a lower bound) settle most questions
 * before the knapsack runs.
 * The threshold couples the rivals through the base (every ballot spent
 * raises it): the cost C(T) at base B + T is non-decreasing in T, and the
 * adversary succeeds iff C(T) <= T <= U for some T, which the iteration
 * T <- C(T) from 0 finds (it never passes such a T).  Whether seat k can be
 * denied is monotone in k, so the fewest seats is found by searching down
 * from today's seats.
 *
 * Each list passes a province threshold at its own percent (a coalition's
 * own, Kodeks wyborczy art. 196), or needs only a vote when exempt (art.
 * 197 par. 2): tau above is per rival, each non-decreasing in the base, so
 * C(T) still is and the same iteration is exact.  Under a national
 * threshold the caller decides fates (excluded, open); an exemption
 * overrides both, as in the engine.
 *
 * Largest remainder (Hare, Droop, Hagenbach-Bischoff) is not monotone
 * (under Droop's integer quota a list can lose a seat by gaining votes), so
 * it is searched: every distribution of up to U ballots over the lists (and
 * blank, when blank counts towards a threshold) is allocated, while that is
 * at most search_max allocations.  Beyond, the bounds are safe but not
 * exact (remainder_safe).
 */
#include <stdlib.h>
#include <string.h>

#include <tally/bounds.h>

typedef unsigned __int128 u128;

#define INF	UINT64_MAX

static uint64_t
sat64(u128 x)
{
	return x > INF ? INF : (uint64_t)x;
}

int
tally_bounds_init(struct tally_bounds *b, size_t lists, uint32_t seats)
{
	size_t nl = lists ? lists : 1, ns = (size_t)seats + 2;

	memset(b, 0, sizeof(*b));
	if (tally_seat_result_init(&b->r_, lists, seats) == -1)
		return -1;
	b->cap_lists = lists;
	b->cap_seats = seats;
	b->search_max = TALLY_BOUNDS_SEARCH_MAX;
	b->min = calloc(nl, sizeof(*b->min));
	b->max = calloc(nl, sizeof(*b->max));
	b->votes_ = calloc(nl, sizeof(*b->votes_));
	b->free_ = calloc(nl, sizeof(*b->free_));
	b->pass_ = calloc(nl, sizeof(*b->pass_));
	b->need_ = calloc(ns, sizeof(*b->need_));
	b->best_ = calloc(ns, sizeof(*b->best_));
	b->cost_ = calloc(ns, sizeof(*b->cost_));
	b->pos_ = calloc(nl, sizeof(*b->pos_));
	b->segend_ = calloc(nl, sizeof(*b->segend_));
	b->hull_ = calloc(ns, sizeof(*b->hull_));
	b->cap_seg_ = 4 * nl + ns;
	b->seg_ = calloc(2 * b->cap_seg_, sizeof(*b->seg_));
	if (b->min == NULL || b->max == NULL || b->votes_ == NULL ||
	    b->free_ == NULL || b->pass_ == NULL || b->need_ == NULL ||
	    b->best_ == NULL || b->cost_ == NULL || b->pos_ == NULL ||
	    b->hull_ == NULL || b->seg_ == NULL || b->segend_ == NULL) {
		tally_bounds_finish(b);
		return -1;
	}
	return 0;
}

void
tally_bounds_finish(struct tally_bounds *b)
{
	if (b == NULL)
		return;
	tally_seat_result_finish(&b->r_);
	free(b->min);
	free(b->max);
	free(b->votes_);
	free(b->free_);
	free(b->pass_);
	free(b->need_);
	free(b->best_);
	free(b->cost_);
	free(b->pos_);
	free(b->segend_);
	free(b->hull_);
	free(b->seg_);
	memset(b, 0, sizeof(*b));
}

/* The divisor a list `k` seats in divides by (as seats.c): num/den. */
static void
divisor(const struct tally_rule *rule, uint32_t k, uint64_t *num, uint64_t *den)
{
	if (k == 0) {
		*num = rule->first_divisor.num;
		*den = rule->first_divisor.den;
	} else if (rule->method == TALLY_METHOD_DHONDT) {
		*num = (uint64_t)k + 1;
		*den = 1;
	} else {
		*num = 2 * (uint64_t)k + 1;
		*den = 1;
	}
}

static bool
province_threshold(const struct tally_rule *rule)
{
	return rule->threshold_of != TALLY_THRESHOLD_NONE &&
	    rule->threshold_scope == TALLY_SCOPE_PROVINCE;
}

/* Is list j exempt from every threshold (a national minority)? */
static bool
exempt(const struct tally_seat_input *in, size_t j)
{
	return in->exempt != NULL && in->exempt[j];
}

/*
 * Is list j out by the national threshold?  An exemption wins over the
 * caller's exclusion, as in the engine (seats.c checks `exempt` first).
 */
static bool
excluded(const struct tally_seat_input *in, size_t j)
{
	return in->excluded != NULL && in->excluded[j] && !exempt(in, j);
}

/* Is list j's national fate still open?  Never for an exempt list. */
static bool
is_open(const struct tally_seat_input *in, const bool *open, size_t j)
{
	return open != NULL && open[j] && !exempt(in, j);
}

/* The percent list j must reach under a province threshold: its own, else
 * the rule's (as seats.c). */
static const struct tally_frac *
percent_of(const struct tally_seat_input *in, size_t j)
{
	if (in->list_percent != NULL && in->list_percent[j].num != 0)
		return &in->list_percent[j];
	return &in->rule->threshold_percent;
}

/*
 * The fewest votes with which list j passes the province threshold at
 * `base` (at least 1: a list needs votes to take part at all).  Its own
 * percent if it has one; 1 if it is exempt or the threshold is national
 * (decided by the caller through `excluded`).
 */
static uint64_t
votes_to_pass(const struct tally_seat_input *in, size_t j, u128 base)
{
	const struct tally_frac *pct;
	u128 x, d, t;

	if (!province_threshold(in->rule) || exempt(in, j))
		return 1;
	pct = percent_of(in, j);
	/* w * 100 * den >= num * base  <=>  w >= ceil(num * base / (100 den)) */
	x = (u128)pct->num * base;
	d = (u128)100 * pct->den;
	t = (x + d - 1) / d;
	return t == 0 ? 1 : sat64(t);
}

/*
 * The least threshold base at which list l (v votes) falls under a province
 * threshold: base > v * 100 * den / num.  0 (none) when it cannot: no
 * province threshold, exempt, or the only list under a threshold of list
 * votes (always 100 %).
 */
static u128
base_to_fail(const struct tally_seat_input *in, size_t l)
{
	const struct tally_frac *pct;
	u128 x;

	if (!province_threshold(in->rule) || exempt(in, l) ||
	    (in->rule->threshold_of != TALLY_THRESHOLD_VALID &&
	    in->n_lists <= 1))
		return 0;
	pct = percent_of(in, l);
	if (pct->num == 0)
		return 0;
	x = (u128)in->votes[l] * 100 * pct->den;
	return x / pct->num + 1;
}

/* The threshold base of the count: list votes, plus blank when it counts. */
static u128
threshold_base(const struct tally_seat_input *in)
{
	u128 base = 0;
	size_t i;

	for (i = 0; i < in->n_lists; i++)
		base += in->votes[i];
	if (in->rule->threshold_of == TALLY_THRESHOLD_VALID)
		base += in->blank;
	return base;
}

/* Firm seats of `l` in `r`, plus one if it is among the lists still tied. */
static uint32_t
reach(const struct tally_seat_result *r, size_t l)
{
	size_t i;

	if (r->pending > 0)
		for (i = 0; i < r->n_tied; i++)
			if (r->tied[i] == l)
				return r->seats[l] + 1;
	return r->seats[l];
}

/* Can list j take part, now or after the uncounted (national threshold)? */
static bool
may_take_part(const struct tally_seat_input *in, const bool *open, size_t j)
{
	return !excluded(in, j) || is_open(in, open, j);
}

/*
 * Work shared by the fewest-seats search for one list L and its k-th seat:
 * need[m] (m = 1..R) is N(m), the fewest votes with which a rival's m-th
 * quotient beats L's k-th.
 */
struct deny {
	const struct tally_seat_input	*in;
	const bool			*open;
	struct tally_bounds		*b;
	size_t				 list;
	uint64_t			 uncounted;
	u128				 base;		/* threshold base now */
	uint32_t			 R;		/* rival quotients needed */
};

/* x / y and x % y, without a 128-bit division when both fit 64 bits. */
static void
divmod(u128 x, u128 y, u128 *q, u128 *r)
{
	if ((x >> 64) == 0 && (y >> 64) == 0) {
		*q = (uint64_t)x / (uint64_t)y;
		*r = (uint64_t)x % (uint64_t)y;
	} else {
		*q = x / y;
		*r = x % y;
	}
}

/*
 * need[m] for m = 1..R: the fewest votes with which a rival's m-th quotient
 * comes before L's k-th quotient when L has v votes.  With `firm`, a tie L
 * could lose counts against it (the fewest seats: L's seat must be firm);
 * without, only a tie L loses outright does (the most: a seat L is tied
 * for is within reach).
 */
static void
need_prepare(struct deny *d, uint32_t k, uint64_t v, bool firm)
{
	const struct tally_rule *rule = d->in->rule;
	bool votes_rule = rule->ties == TALLY_TIES_VOTES;
	uint64_t an, ad, num, den;
	u128 x, y, w = 0, r = 0, qs = 0, rs = 0;
	uint32_t m;

	d->R = d->in->seats - k + 1;
	divisor(rule, k - 1, &an, &ad);
	for (m = 1; m <= d->R; m++) {
		/*
		 * w * den / num > v * ad / an  <=>  w * den * an > v * ad * num.
		 * At equality the `votes` rule gives the seat to the list with
		 * more votes, and equal votes stay tied.  For a firm seat the
		 * rival need only not lose (w >= v); to keep L out of the tie
		 * as well it must win (w > v); under `lot` nobody wins.
		 *
		 * From the second divisor on, den is 1 and num grows by a
		 * fixed step, so x / y moves by a fixed quotient and remainder:
		 * one division for the whole series instead of one per seat.
		 */
		if (m <= 2) {
			divisor(rule, m - 1, &num, &den);
			x = (u128)v * ad * num;
			y = (u128)den * an;
			divmod(x, y, &w, &r);
			if (m == 2)
				divmod((u128)v * ad * (rule->method ==
				    TALLY_METHOD_DHONDT ? 1 : 2), y, &qs, &rs);
		} else {
			w += qs;
			r += rs;
			if (r >= y) {
				r -= y;
				w++;
			}
		}
		d->b->need_[m] = w == 0 && r == 0 ? 1 : sat64(w +
		    (r != 0 || (firm ? votes_rule && w < v :
		    !votes_rule || w <= v) ? 1 : 0));
	}
}

/* The rival quotients (at most R) with v votes that come before L's. */
static uint32_t
before(const struct deny *d, uint64_t v)
{
	const uint64_t *need = d->b->need_;
	uint32_t lo = 0, hi = d->R;

	/* The count of m in 1..R with need[m] <= v (need ascends). */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;
		if (need[mid] <= v)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/*
 * The votes each rival needs to take part at threshold base `tb`
 * (pass_[j]), and the quotients it has for free (free_[j]); returns how
 * many more are needed (0: none).  The buying functions below read pass_
 * as this call left it.
 */
static uint32_t
deny_missing(struct deny *d, u128 tb)
{
	const struct tally_seat_input *in = d->in;
	uint64_t *pass = d->b->pass_, same = 0;
	uint32_t sum = 0;
	size_t j;
	bool uniform = in->list_percent == NULL && in->exempt == NULL;

	if (uniform)
		same = votes_to_pass(in, 0, tb);
	for (j = 0; j < in->n_lists; j++) {
		uint64_t v = in->votes[j];
		d->b->free_[j] = 0;
		pass[j] = uniform ? same : votes_to_pass(in, j, tb);
		if (j == d->list || !may_take_part(in, d->open, j) ||
		    v < pass[j])
			continue;
		d->b->free_[j] = before(d, v);
		sum += d->b->free_[j];
		if (sum >= d->R)
			return 0;	/* pass_ partly filled: nothing to buy */
	}
	return d->R - sum;
}

/* What rival j pays for x more quotients (x >= 1) beyond its free ones. */
static uint64_t
buy(const struct deny *d, size_t j, uint32_t x)
{
	uint64_t need = d->b->need_[d->b->free_[j] + x], pass = d->b->pass_[j];
	uint64_t w = need > pass ? need : pass, v = d->in->votes[j];

	return w > v ? w - v : 0;
}

/* Rival j's costs for 1..E more quotients into cost[], those within U. */
static uint32_t
options(const struct deny *d, size_t j, uint32_t E, uint64_t *cost)
{
	uint32_t x, nx = 0;

	cost[0] = 0;
	for (x = 1; x <= E && d->b->free_[j] + x <= d->R; x++) {
		uint64_t c = buy(d, j, x);
		if (c > d->uncounted)
			break;
		cost[x] = c;
		nx = x;
	}
	return nx;
}

/*
 * The exact cheapest way to buy the E missing quotients: a knapsack over
 * rivals, best[e] the cheapest e.  INF when more than the uncounted bound.
 */
static uint64_t
deny_exact(struct deny *d, uint32_t E)
{
	const struct tally_seat_input *in = d->in;
	uint64_t *best = d->b->best_, *cost = d->b->cost_;
	uint32_t e, x, nx;
	size_t j;

	best[0] = 0;
	for (e = 1; e <= E; e++)
		best[e] = INF;
	for (j = 0; j < in->n_lists; j++) {
		if (j == d->list || !may_take_part(in, d->open, j))
			continue;
		nx = options(d, j, E, cost);
		for (e = E; e >= 1; e--)
			for (x = 1; x <= nx && x <= e; x++)
				if (best[e - x] != INF &&
				    best[e - x] + cost[x] < best[e])
					best[e] = best[e - x] + cost[x];
	}
	return best[E] <= d->uncounted ? best[E] : INF;
}

/*
 * A way to buy them, not always the cheapest: the cheapest next quotient
 * first.  Its cost is an upper bound on the exact one (INF: above U).
 */
static uint64_t
deny_greedy(struct deny *d, uint32_t E)
{
	const struct tally_seat_input *in = d->in;
	uint64_t total = 0;
	uint32_t e;
	size_t j;

	for (j = 0; j < in->n_lists; j++)
		d->b->pos_[j] = 0;
	for (e = 0; e < E; e++) {
		uint64_t bestm = INF, m;
		size_t pick = SIZE_MAX;
		for (j = 0; j < in->n_lists; j++) {
			uint32_t x = d->b->pos_[j];
			if (j == d->list || !may_take_part(in, d->open, j) ||
			    d->b->free_[j] + x + 1 > d->R)
				continue;
			m = buy(d, j, x + 1) - (x ? buy(d, j, x) : 0);
			if (m < bestm) {
				bestm = m;
				pick = j;
			}
		}
		if (pick == SIZE_MAX || bestm > d->uncounted - total)
			return INF;
		total += bestm;
		d->b->pos_[pick]++;
	}
	return total;
}

/* Is segment a's slope (cost per quotient) below segment b's? */
static bool
seg_less(const uint64_t *a, const uint64_t *b)
{
	return (u128)a[0] * b[1] < (u128)b[0] * a[1];
}

/*
 * A lower bound on the exact cost: each rival's costs replaced by their
 * lower convex hull, on which taking the cheapest unit first is optimal.
 * INF when even that is above U (or no plan exists); 0 when the segments
 * do not fit the scratch space (no information).
 */
static uint64_t
deny_lower(struct deny *d, uint32_t E)
{
	const struct tally_seat_input *in = d->in;
	uint64_t *cost = d->b->cost_, *seg = d->b->seg_, lb = 0;
	uint32_t *h = d->b->hull_, nx, x, left = E;
	size_t j, n = 0, i;

	for (j = 0; j < in->n_lists; j++) {
		size_t top = 0;
		d->b->pos_[j] = (uint32_t)n;
		d->b->segend_[j] = (uint32_t)n;
		if (j == d->list || !may_take_part(in, d->open, j))
			continue;
		nx = options(d, j, E, cost);
		/* Lower hull of (x, cost[x]), x = 0..nx (monotone chain). */
		for (x = 0; x <= nx; x++) {
			while (top >= 2) {
				__int128 ax = h[top - 2], bx = h[top - 1];
				__int128 ay = cost[ax], by = cost[bx];
				if ((bx - ax) * ((__int128)cost[x] - ay) -
				    (by - ay) * ((__int128)x - ax) > 0)
					break;
				top--;
			}
			h[top++] = x;
		}
		for (i = 1; i < top; i++) {
			if (n == d->b->cap_seg_)
				return 0;
			seg[2 * n] = cost[h[i]] - cost[h[i - 1]];
			seg[2 * n + 1] = h[i] - h[i - 1];
			n++;
		}
		d->b->segend_[j] = (uint32_t)n;
	}
	/* Each rival's slopes ascend: merge them, cheapest segment first. */
	while (left > 0) {
		size_t pick = SIZE_MAX;
		uint64_t t, *sg;
		for (j = 0; j < in->n_lists; j++)
			if (d->b->pos_[j] < d->b->segend_[j] && (pick == SIZE_MAX ||
			    seg_less(&seg[2 * d->b->pos_[j]],
			    &seg[2 * d->b->pos_[pick]])))
				pick = j;
		if (pick == SIZE_MAX)
			return INF;
		sg = &seg[2 * d->b->pos_[pick]++];
		t = sg[1] < left ? sg[1] : left;
		lb += (uint64_t)((u128)t * sg[0] / sg[1]);
		left -= (uint32_t)t;
		if (lb > d->uncounted)
			return INF;
	}
	return lb;
}

/*
 * Can the adversary deny L its k-th firm seat?  1 yes, 0 no, -1 undecided
 * (the iteration did not settle; treated as yes, not exact).
 */
static int
deniable(struct deny *d, uint32_t k)
{
	const struct tally_rule *rule = d->in->rule;
	uint64_t T = 0, c, lb, g;
	uint32_t E;
	int iter;

	need_prepare(d, k, d->in->votes[d->list], true);
	if (!province_threshold(rule)) {
		if ((E = deny_missing(d, 0)) == 0)
			return 1;
		/* A plan within U proves it; a bound above U disproves it. */
		if (deny_greedy(d, E) != INF)
			return 1;
		if (deny_lower(d, E) == INF)
			return 0;
		return deny_exact(d, E) != INF;
	}
	/*
	 * Under a threshold: a plan within U at the base it makes proves it
	 * (eligibility only gets easier at a lower base); the lowest costs,
	 * at base + 0, bounding above U disprove it.  Otherwise iterate.
	 */
	if ((E = deny_missing(d, d->base + d->uncounted)) == 0 ||
	    deny_greedy(d, E) != INF)
		return 1;
	/*
	 * The same iteration on the convex lower bound (never above C)
	 * stops at or before the least T with C(T) <= T: past U, there is
	 * none; otherwise the exact iteration starts there.
	 */
	for (iter = 0; iter < 64; iter++) {
		if ((E = deny_missing(d, d->base + T)) == 0)
			break;
		if ((lb = deny_lower(d, E)) == INF)
			return 0;
		if (lb <= T)
			break;
		T = lb;
	}
	for (iter = 0; iter < 64; iter++) {
		if ((E = deny_missing(d, d->base + T)) == 0)
			return 1;
		/* C(T') >= C(T) >= the bound for every T' >= T. */
		if ((lb = deny_lower(d, E)) == INF)
			return 0;
		if ((g = deny_greedy(d, E)) <= T)
			return 1;
		c = g == lb ? g : deny_exact(d, E);
		if (c == INF)
			return 0;
		if (c <= T)
			return 1;
		T = c;
	}
	return -1;
}

/*
 * The fewest ballots that deny L its k-th firm seat, INF above U: the
 * knapsack's cost, or under a province threshold the least T with
 * C(T) <= T (the iteration from 0 stops there: it never passes a plan's
 * cost, and stops at C(T) = T), or pushing L under the threshold.
 */
static uint64_t
deny_min(struct deny *d, uint32_t k)
{
	const struct tally_rule *rule = d->in->rule;
	uint64_t T = 0, c, out = INF;
	uint32_t E;
	int iter;
	u128 o = base_to_fail(d->in, d->list);

	if (o != 0)
		out = o <= d->base ? 0 : o - d->base <= d->uncounted ?
		    (uint64_t)(o - d->base) : INF;
	need_prepare(d, k, d->in->votes[d->list], true);
	for (iter = 0; iter < 64; iter++) {
		if ((E = deny_missing(d, d->base + T)) == 0)
			return 0;
		c = deny_exact(d, E);
		if (c == INF || c >= out)
			return out;
		if (c <= T || !province_threshold(rule))
			return c;
		T = c;
	}
	return out;
}

/*
 * Does list l, with x more votes (all else as counted), hold its k-th seat
 * firmly?  Its k-th quotient must come after fewer than R rival quotients
 * (ties it could lose counted against it), and it must pass a province
 * threshold at base + x.
 */
static bool
holds(struct deny *d, uint32_t k, uint64_t x)
{
	const struct tally_seat_input *in = d->in;
	u128 tb = d->base + x;
	uint32_t count = 0;
	size_t j;

	if (in->votes[d->list] + x < votes_to_pass(in, d->list, tb))
		return false;
	need_prepare(d, k, in->votes[d->list] + x, true);
	for (j = 0; j < in->n_lists && count < d->R; j++)
		if (j != d->list && !excluded(in, j) &&
		    in->votes[j] >= votes_to_pass(in, j, tb))
			count += before(d, in->votes[j]);
	return count < d->R;
}

int
tally_bounds_costs(const struct tally_seat_input *in,
    const struct tally_seat_result *r, size_t l, uint64_t uncounted,
    struct tally_bounds *b, uint64_t *gain, uint64_t *loss, uint32_t n)
{
	struct deny d = { in, NULL, b, l, uncounted, threshold_base(in), 0 };
	uint32_t c = r->seats[l], s;
	uint64_t lo = 0;

	if (in->n_lists > b->cap_lists || in->seats > b->cap_seats ||
	    in->votes[l] > TALLY_VOTES_MAX - uncounted)
		return -1;
	for (s = 0; s < n; s++)
		gain[s] = loss[s] = INF;
	if (in->rule->method != TALLY_METHOD_DHONDT &&
	    in->rule->method != TALLY_METHOD_SAINTE_LAGUE)
		return 1;
	if (excluded(in, l))
		return 0;
	/* More seats: firm seats grow with its own votes, so bisect. */
	for (s = 1; s <= n && c + s <= in->seats; s++) {
		uint64_t hi = uncounted, mid;
		if (!holds(&d, c + s, hi))
			break;
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (holds(&d, c + s, mid))
				hi = mid;
			else
				lo = mid + 1;
		}
		gain[s - 1] = lo;
	}
	/* Fewer seats: the cheapest denial of each seat from the top. */
	for (s = 1; s <= n && s <= c; s++)
		if ((loss[s - 1] = deny_min(&d, c - s + 1)) == INF)
			break;
	return 0;
}

/* The fewest firm seats of list l (divisor methods). */
static uint32_t
divisor_min(const struct tally_seat_input *in, const struct tally_seat_result *r,
    uint64_t U, const bool *open, struct tally_bounds *b, size_t l)
{
	struct deny d = { in, open, b, l, U, threshold_base(in), 0 };
	uint32_t lo, hi, step, c = r->seats[l];
	u128 out;
	int rc;

	if (c == 0)
		return 0;
	if (is_open(in, open, l)) {
		/* It may still fall under the national threshold. */
		b->exact = false;
		return 0;
	}
	/* Pushed under its own threshold (ballots to rivals or blank). */
	if ((out = base_to_fail(in, l)) != 0 && (out <= d.base ||
	    out - d.base <= U))
		return 0;
	/*
	 * Seat k deniable implies seat k+1 deniable.  The answer is usually
	 * near today's seats, and a seat far below costs the most to decide
	 * (many quotients to buy), so search down from c in growing steps,
	 * then bisect.
	 */
	if ((rc = deniable(&d, c)) == 0)
		return c;
	if (rc < 0)
		b->exact = false;
	lo = 0;
	hi = c;
	for (step = 1; hi > step; step *= 2) {
		if ((rc = deniable(&d, hi - step)) < 0)
			b->exact = false;
		if (rc == 0) {
			lo = hi - step;
			break;
		}
		hi -= step;
	}
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if ((rc = deniable(&d, mid)) < 0)
			b->exact = false;
		if (rc != 0)
			hi = mid;
		else
			lo = mid;
	}
	return lo;
}

/*
 * With every uncounted ballot to list l, does its k-th quotient come after
 * fewer than R = S - k + 1 quotients of the rivals that take part (those
 * that pass the threshold at base + U, neither excluded nor open
 * nationally), ties it would not lose outright included?  Then it reaches
 * its k-th seat, firmly or tied for it.
 */
static bool
reaches(struct deny *d, uint32_t k, u128 tb)
{
	const struct tally_seat_input *in = d->in;
	uint32_t count = 0;
	size_t j;

	need_prepare(d, k, in->votes[d->list] + d->uncounted, false);
	for (j = 0; j < in->n_lists && count < d->R; j++)
		if (j != d->list && !excluded(in, j) &&
		    !is_open(in, d->open, j) &&
		    in->votes[j] >= votes_to_pass(in, j, tb))
			count += before(d, in->votes[j]);
	return count < d->R;
}

/*
 * The most seats list l can reach (divisor methods): every ballot to it
 * (best case: it passes a national threshold, every open rival fails).
 * Reaching seat k implies reaching seat k - 1, and it reaches today's c,
 * so search up from c in growing steps, then bisect.
 */
static void
divisor_max(const struct tally_seat_input *in, uint32_t c, uint64_t U,
    const bool *open, struct tally_bounds *b, size_t l, uint32_t *out)
{
	struct deny d = { in, open, b, l, U, 0, 0 };
	u128 tb;
	uint32_t lo = c, hi = in->seats + 1, step, k;

	*out = 0;
	if (excluded(in, l) && !is_open(in, open, l))
		return;
	if (in->votes[l] > TALLY_VOTES_MAX - U) {
		/* Beyond the votes the engine takes: no exact answer. */
		b->exact = false;
		*out = in->seats;
		return;
	}
	tb = threshold_base(in) + U;
	if (in->votes[l] + U < votes_to_pass(in, l, tb))
		return;		/* under the threshold even with every ballot */
	for (step = 1; lo < in->seats; step *= 2) {
		k = in->seats - lo < step ? in->seats : lo + step;
		if (!reaches(&d, k, tb)) {
			hi = k;
			break;
		}
		lo = k;
	}
	while (hi - lo > 1 && lo < in->seats) {
		k = lo + (hi - lo) / 2;
		if (reaches(&d, k, tb))
			lo = k;
		else
			hi = k;
	}
	*out = lo;
}

/*
 * Largest remainder by search: every distribution of at most U ballots
 * over the bins (the lists, then blank when it counts towards a
 * threshold); the rest is invalid or not cast.
 */
struct search {
	const struct tally_seat_input	*in;
	struct tally_bounds		*b;
	struct tally_seat_input		 alt;
	size_t				 bins;
	int				 rc;
};

static void
search_visit(struct search *s)
{
	size_t i;

	if (tally_seats_allocate(&s->alt, &s->b->r_) == -1) {
		s->rc = -1;
		return;
	}
	for (i = 0; i < s->in->n_lists; i++) {
		uint32_t lo = s->b->r_.seats[i], hi = reach(&s->b->r_, i);
		if (lo < s->b->min[i])
			s->b->min[i] = lo;
		if (hi > s->b->max[i])
			s->b->max[i] = hi;
	}
}

static void
search_from(struct search *s, size_t bin, uint64_t left)
{
	uint64_t t, *slot;

	if (s->rc == -1)
		return;
	if (bin == s->bins) {
		search_visit(s);
		return;
	}
	slot = bin < s->in->n_lists ? &s->b->votes_[bin] : &s->alt.blank;
	for (t = 0; t <= left; t++) {
		search_from(s, bin + 1, left - t);
		(*slot)++;
	}
	*slot -= left + 1;
}

/* C(n + k, k), saturating at INF. */
static uint64_t
choose(uint64_t n, uint64_t k)
{
	u128 c = 1;
	uint64_t i;

	for (i = 1; i <= k; i++) {
		c = c * (n + i) / i;
		if (c > INF)
			return INF;
	}
	return (uint64_t)c;
}

/* Safe, not exact, bounds for largest remainder when the search is too big. */
static void
remainder_safe(const struct tally_seat_input *in, uint64_t U, const bool *open,
    struct tally_bounds *b)
{
	const struct tally_rule *rule = in->rule;
	enum tally_method m = rule->method;
	bool hb = m == TALLY_METHOD_HAGENBACH_BISCHOFF ||
	    m == TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL;
	u128 base = threshold_base(in), all = 0, sure = 0, S1;
	u128 tb = base + U;
	size_t i, j;

	S1 = (u128)in->seats + 1;
	for (i = 0; i < in->n_lists; i++)
		all += in->votes[i];
	for (i = 0; i < in->n_lists; i++) {
		uint64_t v = in->votes[i];
		u128 whole;
		/* Its own percent at the highest base the uncounted can make. */
		bool may_fail = is_open(in, open, i) || excluded(in, i) ||
		    v < votes_to_pass(in, i, tb);

		b->min[i] = 0;
		b->max[i] = in->seats;
		if (excluded(in, i) && !is_open(in, open, i)) {
			b->max[i] = 0;
			continue;
		}
		if (m != TALLY_METHOD_HARE && m != TALLY_METHOD_DROOP && !hb)
			continue;	/* a rule not known here: no guarantee */
		/*
		 * Fewest: it keeps its whole quotas against the largest total
		 * the eligible lists can reach (all votes, plus U): the quota
		 * only grows with the total.  Both Hagenbach-Bischoff quotas
		 * can award S + 1 whole seats, and then a holder gives one
		 * back (seats.c take_back: at most one each, Act 180/2014
		 * s. 66(4)), so one less.
		 */
		if (!may_fail && v > 0) {
			if (m == TALLY_METHOD_HARE)
				whole = (u128)v * in->seats / (all + U);
			else if (m == TALLY_METHOD_DROOP)
				whole = v / ((all + U) / S1 + 1);
			else if (m == TALLY_METHOD_HAGENBACH_BISCHOFF)
				whole = (u128)v * S1 / (all + U);
			else
				whole = v / ((all + U + in->seats) / S1);
			if (hb && whole > 0)
				whole--;
			b->min[i] = (uint32_t)(whole < in->seats ? whole :
			    in->seats);
		}
		/*
		 * Most (Hare: at most one remainder seat per list, and its
		 * share is at most (v + U) / (v + U + the rivals sure to take
		 * part)).  Droop with few votes can give a list several seats
		 * on remainders, so its most stays the province's seats.
		 * Hagenbach-Bischoff: whole seats at most (v + U)(S + 1) /
		 * (v + U + sure) for either quota (the rounded-up quota is at
		 * least V / (S + 1)), and at most one remainder seat per list
		 * when the eligible total V exceeds S^2: the lists' whole
		 * seats then leave fewer than n remainder seats (exact quota:
		 * sum of whole >= S + 1 - n; rounded up, q <= (V + S) / (S + 1)
		 * gives sum of whole > V/q - n >= S - n + 1 once V > S^2).
		 */
		if (v == 0 && U == 0) {
			b->max[i] = 0;	/* no votes: it takes no part */
		} else if (m == TALLY_METHOD_HARE || hb) {
			sure = 0;
			for (j = 0; j < in->n_lists; j++)
				if (j != i && !excluded(in, j) &&
				    !is_open(in, open, j) &&
				    in->votes[j] >= votes_to_pass(in, j, tb))
					sure += in->votes[j];
			if (hb && sure + v <= (u128)in->seats * in->seats)
				continue;
			whole = ((u128)v + U) * (hb ? S1 : in->seats) /
			    ((u128)v + U + sure);
			if (whole + 1 < in->seats)
				b->max[i] = (uint32_t)whole + 1;
		}
	}
}

static int
remainder_bounds(const struct tally_seat_input *in, uint64_t U,
    const bool *open, struct tally_bounds *b)
{
	struct search s;
	uint64_t total = 0;
	size_t i;
	bool any_open = false;

	for (i = 0; i < in->n_lists; i++) {
		total += in->votes[i];
		if (is_open(in, open, i))
			any_open = true;
	}
	memset(&s, 0, sizeof(s));
	s.in = in;
	s.b = b;
	/* Blank counts only towards a threshold of valid votes (in the rules
	 * this file knows; any other rule gets the blank bin too). */
	s.bins = in->n_lists + ((in->rule->method != TALLY_METHOD_HARE &&
	    in->rule->method != TALLY_METHOD_DROOP) ||
	    (province_threshold(in->rule) &&
	    in->rule->threshold_of == TALLY_THRESHOLD_VALID) ? 1 : 0);
	if (any_open || total > TALLY_VOTES_MAX - U ||
	    in->blank > TALLY_VOTES_MAX - U ||
	    choose(U, s.bins) > b->search_max) {
		b->exact = false;
		remainder_safe(in, U, open, b);
		return 0;
	}
	s.alt = *in;
	s.alt.lot_order = NULL;
	s.alt.n_lot = 0;
	memcpy(b->votes_, in->votes, in->n_lists * sizeof(*b->votes_));
	s.alt.votes = b->votes_;
	for (i = 0; i < in->n_lists; i++) {
		b->min[i] = in->seats;
		b->max[i] = 0;
	}
	search_from(&s, 0, U);
	return s.rc;
}

int
tally_bounds_compute(const struct tally_seat_input *in,
    const struct tally_seat_result *r, bool known, uint64_t uncounted,
    const bool *open, struct tally_bounds *b)
{
	enum tally_method m = in->rule->method;
	size_t i;

	if (in->n_lists > b->cap_lists || in->seats > b->cap_seats ||
	    in->n_lists > r->cap_lists)
		return -1;
	b->known = known;
	b->exact = known;
	b->settled = false;
	if (!known) {
		/* No bound on what is left: no guarantee at all. */
		for (i = 0; i < in->n_lists; i++) {
			b->min[i] = 0;
			b->max[i] = in->seats;
		}
		return 0;
	}
	/*
	 * Divisor methods: closed forms, each list with its own threshold
	 * percent (or none when exempt) under a province threshold; under a
	 * national one, the caller's `excluded` and `open` (an exemption
	 * overrides both, as in the engine).
	 */
	if (m == TALLY_METHOD_DHONDT || m == TALLY_METHOD_SAINTE_LAGUE) {
		for (i = 0; i < in->n_lists; i++) {
			b->min[i] = divisor_min(in, r, uncounted, open, b, i);
			divisor_max(in, r->seats[i], uncounted, open, b, i,
			    &b->max[i]);
		}
	} else {
		/*
		 * Largest remainder, and any rule this file does not know
		 * (searched with the engine itself, else no guarantee).
		 */
		if (remainder_bounds(in, uncounted, open, b) == -1)
			return -1;
	}
	b->settled = true;
	for (i = 0; i < in->n_lists; i++)
		if (b->min[i] != b->max[i])
			b->settled = false;
	return 0;
}
