/*
 * levelling.c - the compensatory (levelling) tier (see tally/levelling.h).
 *
 * Norway's Storting (Valgloven ch. 11) is the model; the rule is data, so a
 * second country's two-tier rule is a new definition:
 *
 *  1. Coalitions with at least the tier's threshold of the national vote
 *     take part (s. 11-7(1): 4 percent).  The seats shared are the levelling
 *     seats plus the district seats those coalitions won: the district seats
 *     of the others are left out (s. 11-7(2)).  While provinces are still
 *     counting, "district seats" are the firm ones so far, so the tier's
 *     levelling seats always add up to its size.
 *  2. Those seats are apportioned nationally by the tier's divisor method
 *     (modified Sainte-Laguë, 1.4).  A coalition with more district seats
 *     than its national share is set aside with its district seats and the
 *     apportionment is repeated among the rest (s. 11-7(3)).  Each remaining
 *     coalition's levelling seats are its share less its district seats.
 *  3. The levelling seats go to provinces (s. 11-8): in every province each
 *     such coalition's votes are divided by the divisor for the district
 *     seats it won there (1, 3, 5, ...: unmodified), then by the province's
 *     votes per district seat; the highest quotient of all wins the first
 *     levelling seat, and so on, a coalition stopping when it has all its
 *     levelling seats and a province when it has all of its own.
 *
 * Quotients of the assignment are v * den * S / (num * T): a numerator
 * below 2^40 * 2^30 * 2^14 and a denominator below 2^32 * 2^64, so two of
 * them are compared as 256-bit cross products.
 */
#include <stdlib.h>
#include <string.h>

#include <tally/levelling.h>
#include <tally/feed.h>

typedef unsigned __int128 u128;

int
tally_levelling_init(struct tally_levelling_result *r,
    const struct tally_election *e)
{
	size_t nc = e->n_coalitions ? e->n_coalitions : 1;
	size_t np = e->n_provinces, nl = e->levelling.seats ? e->levelling.seats : 1;
	uint64_t cap = e->seats_total < TALLY_SEATS_MAX ? e->seats_total :
	    TALLY_SEATS_MAX;
	size_t p;

	memset(r, 0, sizeof(*r));
	r->eligible = calloc(nc, sizeof(*r->eligible));
	r->set_aside = calloc(nc, sizeof(*r->set_aside));
	r->share = calloc(nc, sizeof(*r->share));
	r->district = calloc(nc, sizeof(*r->district));
	r->seats = calloc(nc, sizeof(*r->seats));
	r->assigned = calloc(nl, sizeof(*r->assigned));
	r->offset = calloc(np + 1, sizeof(*r->offset));
	r->steps = calloc(nl, sizeof(*r->steps));
	r->votes_ = calloc(nc, sizeof(*r->votes_));
	r->excluded_ = calloc(nc, sizeof(*r->excluded_));
	r->need_ = calloc(nc, sizeof(*r->need_));
	r->room_ = calloc(np ? np : 1, sizeof(*r->room_));
	r->floor_ = calloc(nc, sizeof(*r->floor_));
	r->room0_ = calloc(np ? np : 1, sizeof(*r->room0_));
	r->blk_off_ = calloc(np + 1, sizeof(*r->blk_off_));
	r->blk_n_ = calloc(np ? np : 1, sizeof(*r->blk_n_));
	if (r->blk_off_ != NULL) {
		/* A feed names each list id at most once. */
		size_t ids = e->n_coalitions, c, n;
		for (c = 0; c < e->n_coalitions; c++)
			ids += e->coalitions[c].n_aliases;
		for (p = 0; p < np; p++)
			r->blk_off_[p + 1] = r->blk_off_[p] +
			    ids * e->provinces[p].levelling_seats;
		n = r->blk_off_[np] ? r->blk_off_[np] : 1;
		/* Candidates are numbered in 32 bits. */
		if (n <= UINT32_MAX)
			r->cand_ = calloc(n, sizeof(*r->cand_));
		r->ord_ = calloc(n, sizeof(*r->ord_));
		r->ord2_ = calloc(n, sizeof(*r->ord2_));
	}
	if (r->eligible == NULL || r->set_aside == NULL || r->share == NULL ||
	    r->district == NULL || r->seats == NULL || r->assigned == NULL ||
	    r->offset == NULL || r->steps == NULL || r->votes_ == NULL ||
	    r->excluded_ == NULL || r->need_ == NULL || r->room_ == NULL ||
	    r->floor_ == NULL || r->room0_ == NULL || r->blk_off_ == NULL ||
	    r->blk_n_ == NULL ||
	    r->cand_ == NULL || r->ord_ == NULL || r->ord2_ == NULL ||
	    tally_seat_result_init(&r->national_, nc, (uint32_t)cap) == -1) {
		tally_levelling_finish(r);
		return -1;
	}
	for (p = 0; p < np; p++) {
		r->room0_[p] = e->provinces[p].levelling_seats;
		r->offset[p + 1] = r->offset[p] + r->room0_[p];
	}
	return 0;
}

void
tally_levelling_finish(struct tally_levelling_result *r)
{
	if (r == NULL)
		return;
	free(r->eligible);
	free(r->set_aside);
	free(r->share);
	free(r->district);
	free(r->seats);
	free(r->assigned);
	free(r->offset);
	free(r->steps);
	free(r->votes_);
	free(r->excluded_);
	free(r->need_);
	free(r->room_);
	free(r->floor_);
	free(r->room0_);
	free(r->cand_);
	free(r->blk_off_);
	free(r->blk_n_);
	free(r->ord_);
	free(r->ord2_);
	tally_seat_result_finish(&r->national_);
	memset(r, 0, sizeof(*r));
}

/* a * b as a 256-bit number hi:lo. */
static void
mul256(u128 a, u128 b, u128 *hi, u128 *lo)
{
	uint64_t a0 = (uint64_t)a, a1 = (uint64_t)(a >> 64);
	uint64_t b0 = (uint64_t)b, b1 = (uint64_t)(b >> 64);
	u128 p00 = (u128)a0 * b0, p01 = (u128)a0 * b1;
	u128 p10 = (u128)a1 * b0, p11 = (u128)a1 * b1;
	u128 mid = (p00 >> 64) + (uint64_t)p01 + (uint64_t)p10;

	*lo = (p00 & UINT64_MAX) | (mid << 64);
	*hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
}

static void
cand_frac(const struct tally_levelling_step *c, u128 *num, u128 *den)
{
	*num = (u128)c->votes * c->div_den * c->prov_seats;
	*den = (u128)c->div_num * c->prov_votes;
}

/*
 * floor(quotient * 2^32), saturated: a monotone image of the quotient, so
 * different keys order two quotients exactly and only equal keys need the
 * exact comparison.
 */
static uint64_t
cand_key(const struct tally_levelling_step *c)
{
	u128 num, den, k;

	cand_frac(c, &num, &den);
	if (num >> 95 != 0)
		return UINT64_MAX;
	k = (num << 32) / den;
	return k > UINT64_MAX ? UINT64_MAX : (uint64_t)k;
}

/* -1, 0, 1 comparing two assignment quotients exactly. */
static int
cand_cmp_quot(const struct tally_levelling_step *a,
    const struct tally_levelling_step *b)
{
	u128 an, ad, bn, bd, lh, ll, rh, rl;

	if (a->key_ != b->key_)
		return a->key_ > b->key_ ? 1 : -1;
	cand_frac(a, &an, &ad);
	cand_frac(b, &bn, &bd);
	mul256(an, bd, &lh, &ll);
	mul256(bn, ad, &rh, &rl);
	if (lh != rh)
		return lh > rh ? 1 : -1;
	return (ll > rl) - (ll < rl);
}

/* Highest quotient first; equal ones by province, then list (stable). */
static int
cand_order(const void *x, const void *y)
{
	const struct tally_levelling_step *a = x, *b = y;
	int c = cand_cmp_quot(a, b);

	if (c != 0)
		return -c;
	if (a->province != b->province)
		return a->province < b->province ? -1 : 1;
	return (a->list > b->list) - (a->list < b->list);
}

/* d(k) of a divisor method, as in seats.c. */
static void
divisor(const struct tally_rule *rule, uint32_t k, uint64_t *num, uint64_t *den)
{
	if (k == 0) {
		*num = rule->first_divisor.num;
		*den = rule->first_divisor.den;
	} else {
		*num = rule->method == TALLY_METHOD_DHONDT ? (uint64_t)k + 1 :
		    2 * (uint64_t)k + 1;
		*den = 1;
	}
}

static void
undecided(const struct tally_election *e, struct tally_levelling_result *r)
{
	size_t c;

	for (c = 0; c < e->n_coalitions; c++)
		r->seats[c] = 0;
	r->pending = e->levelling.seats;
}

/*
 * Seats every coalition in play is sure to win, so that the engine awards
 * only the last few one by one: with t = V / (c (S - n)) (V the votes in
 * play, n the coalitions, c = 2 for Sainte-Laguë's odd divisors, 1 for
 * D'Hondt), each coalition has fewer than 1 + (S - n) v / V quotients above
 * t, so fewer than S in all: every one of them is above the cut.  Exact:
 * v / d > t  <=>  v c (S - n) d.den > V d.num.
 */
static bool
floor_seats(const struct tally_rule *rule, struct tally_levelling_result *r,
    size_t nc, uint64_t seats)
{
	uint64_t c = rule->method == TALLY_METHOD_DHONDT ? 1 : 2;
	u128 V = 0;
	size_t i, n = 0;

	for (i = 0; i < nc; i++) {
		r->floor_[i] = 0;
		if (!r->excluded_[i] && r->votes_[i] > 0) {
			V += r->votes_[i];
			n++;
		}
	}
	if (V == 0 || seats <= n)
		return false;
	for (i = 0; i < nc; i++) {
		u128 x = (u128)r->votes_[i] * c * (seats - n), m;
		if (r->excluded_[i] || r->votes_[i] == 0 ||
		    x * rule->first_divisor.den <= V * rule->first_divisor.num)
			continue;
		/* m: the largest integer divisor below x / V. */
		m = (x - 1) / V;
		if (rule->method == TALLY_METHOD_DHONDT)
			r->floor_[i] = (uint32_t)(1 + (m >= 2 ? m - 1 : 0));
		else
			r->floor_[i] = (uint32_t)(1 + (m >= 3 ? (m - 1) / 2 : 0));
	}
	return true;
}

/* Steps 1 and 2: how many levelling seats each coalition gets. */
static void
apportion(const struct tally_levelling_input *lv,
    struct tally_levelling_result *r)
{
	const struct tally_election *e = lv->election;
	const struct tally_rule *rule = &e->levelling.national;
	struct tally_seat_input in;
	u128 base = 0;
	uint64_t seats = e->levelling.seats;
	size_t c, nc = e->n_coalitions;
	bool again;

	for (c = 0; c < nc; c++)
		base += lv->votes[c];
	if (rule->threshold_of == TALLY_THRESHOLD_VALID)
		base += lv->blank;
	r->threshold_base = (uint64_t)base;
	for (c = 0; c < nc; c++) {
		uint64_t votes = lv->votes[c];
		r->district[c] = (uint32_t)lv->district_seats[c];
		r->set_aside[c] = 0;
		r->share[c] = 0;
		r->seats[c] = 0;
		/* s. 11-7(1): "minst 4 prosent": at least, as in seats.c. */
		bool was = r->eligible[c];
		r->eligible[c] = votes > 0 &&
		    (rule->threshold_of == TALLY_THRESHOLD_NONE ||
		    (u128)votes * 100 * rule->threshold_percent.den >=
		    (u128)rule->threshold_percent.num * base);
		if (was != r->eligible[c])
			r->eligible_changed_ = true;
		if (r->eligible[c])
			seats += lv->district_seats[c];
	}
	memset(&in, 0, sizeof(in));
	in.rule = rule;
	in.n_lists = nc;
	in.votes = r->votes_;
	in.excluded = r->excluded_;
	do {
		r->rounds++;
		for (c = 0; c < nc; c++) {
			bool in_play = r->eligible[c] && r->set_aside[c] == 0;
			r->votes_[c] = in_play ? lv->votes[c] : 0;
			r->excluded_[c] = !in_play;
		}
		in.seats = (uint32_t)seats;
		in.floor_seats = floor_seats(rule, r, nc, seats) ? r->floor_ :
		    NULL;
		/*
		 * Beyond the engine's bounds (more than TALLY_SEATS_MAX seats
		 * or 10^12 votes for one coalition) the tier stays undecided
		 * rather than guessed.
		 */
		if (seats > TALLY_SEATS_MAX ||
		    tally_seats_allocate(&in, &r->national_) == -1) {
			undecided(e, r);
			return;
		}
		r->apportioned = seats;
		if (r->national_.pending > 0) {
			/* Valgloven s. 11-4: equal quotients are drawn by lot;
			 * until then the whole tier waits. */
			r->tie = true;
			undecided(e, r);
			return;
		}
		again = false;
		for (c = 0; c < nc; c++) {
			if (!r->eligible[c] || r->set_aside[c] != 0)
				continue;
			r->share[c] = r->national_.seats[c];
			if (r->district[c] > r->share[c]) {
				/* s. 11-7(3): set aside with its seats. */
				r->set_aside[c] = r->rounds;
				seats -= r->district[c];
				again = true;
			}
		}
	} while (again);
	/* No coalition (yet) at the threshold: the seats wait for votes. */
	r->pending = r->national_.unfilled;
	for (c = 0; c < nc; c++)
		if (r->eligible[c] && r->set_aside[c] == 0)
			r->seats[c] = r->share[c] - r->district[c];
}

/* Province p's candidates, re-built and sorted within its block. */
static void
build_block(const struct tally_levelling_input *lv,
    struct tally_levelling_result *r, size_t p)
{
	const struct tally_election *e = lv->election;
	const struct tally_rule *rule = &e->levelling.assign;
	const uint32_t *district = NULL;
	const struct tally_feed *f = lv->province(lv->ctx, p, &district);
	struct tally_levelling_step *b = &r->cand_[r->blk_off_[p]];
	uint32_t seats = e->provinces[p].levelling_seats, j;
	uint64_t total;
	size_t i, n = 0;

	r->blk_n_[p] = 0;
	if (f == NULL || seats == 0)
		return;
	total = f->blank;
	for (i = 0; i < f->n_lists; i++)
		total += f->lists[i].votes;
	if (total == 0)
		return;
	/*
	 * A province with several levelling seats may seat one list more
	 * than once: its j-th levelling seat there is contested with the
	 * divisor for district + j seats, smaller than the one before, so
	 * the order takes them in turn.
	 */
	for (i = 0; i < f->n_lists; i++) {
		const struct tally_feed_list *l = &f->lists[i];
		/* Only coalitions at the tier's threshold can be seated. */
		if (l->votes == 0 || !r->eligible[l->coalition])
			continue;
		for (j = 0; j < seats; j++) {
			struct tally_levelling_step *c = &b[n++];
			c->province = p;
			c->list = i;
			c->coalition = l->coalition;
			c->votes = l->votes;
			c->district = district[i];
			divisor(rule, c->district + j, &c->div_num, &c->div_den);
			if (e->levelling.scale == TALLY_SCALE_VOTES_PER_SEAT) {
				c->prov_votes = total;
				c->prov_seats = e->provinces[p].seats;
			} else {
				c->prov_votes = 1;
				c->prov_seats = 1;
			}
			c->key_ = cand_key(c);
		}
	}
	if (n > 1)
		qsort(b, n, sizeof(*b), cand_order);
	r->blk_n_[p] = n;
}

/* Sort ord_ by candidate order: a bottom-up merge sort through ord2_. */
static void
sort_ord(struct tally_levelling_result *r)
{
	size_t n = r->n_ord_, w, lo, i, j, k, mid, hi;
	uint32_t *a = r->ord_, *b = r->ord2_, *t;

	for (w = 1; w < n; w *= 2) {
		for (lo = 0; lo < n; lo += 2 * w) {
			mid = lo + w < n ? lo + w : n;
			hi = lo + 2 * w < n ? lo + 2 * w : n;
			for (i = lo, j = mid, k = lo; k < hi; k++)
				if (j >= hi || (i < mid && cand_order(
				    &r->cand_[a[i]], &r->cand_[a[j]]) <= 0))
					b[k] = a[i++];
				else
					b[k] = a[j++];
		}
		t = a;
		a = b;
		b = t;
	}
	r->ord_ = a;
	r->ord2_ = b;
}

/* The first position in ord_[lo, hi) whose candidate comes after `c`. */
static size_t
upper_bound(const struct tally_levelling_result *r, size_t lo, size_t hi,
    const struct tally_levelling_step *c)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cand_order(&r->cand_[r->ord_[mid]], c) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Keep ord_ (every candidate, highest quotient first): from scratch, or,
 * when only province `changed` moved, by taking its old entries out and
 * merging its re-sorted block back in: O(candidates) copying and
 * O(its lists * log candidates) comparisons instead of a full sort.
 */
static void
order_candidates(const struct tally_levelling_input *lv,
    struct tally_levelling_result *r, size_t changed)
{
	const struct tally_election *e = lv->election;
	size_t p, i, k, n = 0, lo, hi, at;
	uint32_t *t;

	if (!r->built_ || changed == SIZE_MAX || r->eligible_changed_) {
		for (p = 0; p < e->n_provinces; p++) {
			build_block(lv, r, p);
			for (i = 0; i < r->blk_n_[p]; i++)
				r->ord_[n++] = (uint32_t)(r->blk_off_[p] + i);
		}
		r->n_ord_ = n;
		sort_ord(r);
		r->built_ = true;
		return;
	}
	lo = r->blk_off_[changed];
	hi = r->blk_off_[changed + 1];
	/* Branch-free: the block's entries are scattered at random. */
	for (i = k = 0; i < r->n_ord_; i++) {
		uint32_t x = r->ord_[i];
		r->ord_[k] = x;
		k += (size_t)x - lo >= hi - lo;
	}
	r->n_ord_ = k;
	build_block(lv, r, changed);
	/* Merge: block entries are sorted, so positions only grow. */
	at = 0;
	n = 0;
	for (i = 0; i < r->blk_n_[changed]; i++) {
		const struct tally_levelling_step *c = &r->cand_[lo + i];
		size_t pos = upper_bound(r, at, r->n_ord_, c);
		memcpy(&r->ord2_[n], &r->ord_[at], (pos - at) * sizeof(*r->ord_));
		n += pos - at;
		r->ord2_[n++] = (uint32_t)(lo + i);
		at = pos;
	}
	memcpy(&r->ord2_[n], &r->ord_[at], (r->n_ord_ - at) * sizeof(*r->ord_));
	n += r->n_ord_ - at;
	t = r->ord_;
	r->ord_ = r->ord2_;
	r->ord2_ = t;
	r->n_ord_ = n;
}

/* Step 3: which province each levelling seat is seated in. */
static void
assign(const struct tally_levelling_input *lv,
    struct tally_levelling_result *r, size_t changed)
{
	const struct tally_election *e = lv->election;
	size_t i, k, need_total = 0;

	order_candidates(lv, r, changed);
	for (i = 0; i < e->n_coalitions; i++) {
		r->need_[i] = r->seats[i];
		need_total += r->seats[i];
	}
	memcpy(r->room_, r->room0_, e->n_provinces * sizeof(*r->room_));
	/* SIZE_MAX: every byte 0xff. */
	memset(r->assigned, 0xff, r->offset[e->n_provinces] *
	    sizeof(*r->assigned));
	for (k = 0; k < r->n_ord_ && need_total > 0; k++) {
		const struct tally_levelling_step *c = &r->cand_[r->ord_[k]];
		size_t j;
		if (r->room_[c->province] == 0 || r->need_[c->coalition] == 0)
			continue;
		/*
		 * Equal quotients that compete for the last seat of a province
		 * or a coalition's last levelling seat are a tie: nothing
		 * decides it but a lot (s. 11-4), so the rest stays unassigned.
		 */
		for (j = k + 1; j < r->n_ord_ &&
		    cand_cmp_quot(&r->cand_[r->ord_[j]], c) == 0; j++) {
			const struct tally_levelling_step *d =
			    &r->cand_[r->ord_[j]];
			if (r->room_[d->province] == 0 ||
			    r->need_[d->coalition] == 0)
				continue;
			if ((d->province == c->province &&
			    r->room_[c->province] == 1) ||
			    (d->coalition == c->coalition &&
			    r->need_[c->coalition] == 1)) {
				r->assign_tie = true;
				goto out;
			}
		}
		r->assigned[r->offset[c->province] +
		    e->provinces[c->province].levelling_seats -
		    r->room_[c->province]] = c->coalition;
		r->room_[c->province]--;
		r->need_[c->coalition]--;
		r->steps[r->n_steps++] = *c;
		need_total--;
	}
out:
	r->unassigned = (uint32_t)need_total;
}

int
tally_levelling_compute(const struct tally_levelling_input *lv,
    struct tally_levelling_result *r, size_t changed)
{
	const struct tally_election *e = lv->election;
	uint64_t sum = 0;
	size_t c;

	r->tie = r->assign_tie = r->eligible_changed_ = false;
	r->pending = r->unassigned = r->rounds = 0;
	r->apportioned = 0;
	r->n_steps = 0;
	apportion(lv, r);
	assign(lv, r, changed);
	/* Invariant, checked in every build: the tier's seats add up. */
	for (c = 0; c < e->n_coalitions; c++)
		sum += r->seats[c];
	if (sum + r->pending != e->levelling.seats)
		abort();
	return 0;
}

uint32_t
tally_levelling_seats_in(const struct tally_levelling_result *r,
    size_t province, size_t coalition)
{
	uint32_t n = 0;
	size_t k;

	if (r == NULL)
		return 0;
	for (k = r->offset[province]; k < r->offset[province + 1]; k++)
		if (r->assigned[k] == coalition)
			n++;
	return n;
}
