/*
 * seats.c - exact seat allocation for one province.
 *
 * Divisor methods (D'Hondt, Sainte-Laguë and its modified forms) award seats
 * one at a time to the highest quotient votes / d(k), where k is the number of
 * seats the list already holds.  Largest-remainder methods (Hare, Droop,
 * Hagenbach-Bischoff exact and rounded up) give each list the whole quotas it
 * holds and the remaining seats to the largest remainders.
 *
 * Everything is integer arithmetic.  A quotient is kept as the exact fraction
 * votes * den / num and two quotients are compared by cross-multiplication in
 * unsigned 128 bits: votes < 2^40, a divisor numerator < 2^32 (the first
 * divisor is below 3 with at most 9 decimals, later divisors are at most
 * 2 * TALLY_SEATS_MAX + 1) and a denominator <= 10^9 < 2^30, so a product is
 * below 2^102.
 *
 * Ties.  Equal quotients competing for fewer seats than there are of them
 * form the tie at the cut; there is at most one per allocation, since every
 * quotient above the cut wins and every quotient below loses.  The rule in
 * force decides what is settled: `votes` gives the seats to the lists with
 * more votes in the province (LOREG art. 163.1.d; a list equal in votes stays
 * tied), `lot` settles nothing (IHEC regulation 12/2018 s.III: lot before the
 * lists' agents; Valgloven §11-4).  What is still tied is `pending` until the
 * caller supplies the lot's order.
 */
#include <stdlib.h>
#include <string.h>

#include <tally/seats.h>

typedef unsigned __int128 u128;

int
tally_quot_cmp(const struct tally_quot *a, const struct tally_quot *b)
{
	u128 l = (u128)a->votes * a->den * b->num;
	u128 r = (u128)b->votes * b->den * a->num;

	return (l > r) - (l < r);
}

double
tally_quot_to_double(const struct tally_quot *q)
{
	return q->num ? (double)q->votes * (double)q->den / (double)q->num : 0.0;
}

int
tally_seat_result_init(struct tally_seat_result *r, size_t lists,
    uint32_t seats)
{
	memset(r, 0, sizeof(*r));
	r->cap_lists = lists;
	r->cap_seats = seats;
	if (lists == 0)
		lists = 1;
	if (seats == 0)
		seats = 1;
	r->seats = calloc(lists, sizeof(*r->seats));
	r->threshold = calloc(lists, sizeof(*r->threshold));
	r->tied = calloc(lists, sizeof(*r->tied));
	r->steps = calloc(seats, sizeof(*r->steps));
	r->rem_ = calloc(lists, sizeof(*r->rem_));
	r->order_ = calloc(lists, sizeof(*r->order_));
	r->heap_ = calloc(lists, sizeof(*r->heap_));
	r->eligible_ = calloc(lists, sizeof(*r->eligible_));
	if (r->seats == NULL || r->threshold == NULL || r->tied == NULL ||
	    r->steps == NULL || r->rem_ == NULL || r->order_ == NULL ||
	    r->heap_ == NULL || r->eligible_ == NULL) {
		tally_seat_result_finish(r);
		return -1;
	}
	return 0;
}

void
tally_seat_result_finish(struct tally_seat_result *r)
{
	if (r == NULL)
		return;
	free(r->seats);
	free(r->threshold);
	free(r->tied);
	free(r->steps);
	free(r->rem_);
	free(r->order_);
	free(r->heap_);
	free(r->eligible_);
	memset(r, 0, sizeof(*r));
}

/* The divisor list `k` seats in: d(0) is the first divisor, then the series. */
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

static void
next_quot(const struct tally_seat_input *in, const struct tally_seat_result *r,
    size_t i, struct tally_quot *q)
{
	q->votes = in->votes[i];
	divisor(in->rule, r->seats[i], &q->num, &q->den);
}

/* Record a seat already counted in seats[] as the next step. */
static void
put_step(struct tally_seat_result *r, size_t list, const struct tally_quot *q,
    bool remainder, bool by_tie_rule)
{
	struct tally_seat_step *st = &r->steps[r->n_steps++];

	st->list = list;
	st->quot = *q;
	st->remainder = remainder;
	st->by_tie_rule = by_tie_rule;
}

static void
award(struct tally_seat_result *r, size_t list, const struct tally_quot *q,
    bool remainder, bool by_tie_rule)
{
	put_step(r, list, q, remainder, by_tie_rule);
	r->seats[list]++;
	r->allocated++;
}

/*
 * The quotient a step records: a divisor quotient, or a remainder in votes
 * (Hare: rem/S, Droop: rem).
 */
/*
 * Largest remainder: the factor remainders are scaled by.  Hare and exact
 * Hagenbach-Bischoff keep a list's share scaled by S (or S + 1) to stay in
 * integers, so a remainder r stands for r / S (r / (S + 1)) votes; the
 * integer quotas (Droop, Hagenbach-Bischoff rounded up) leave it in votes.
 */
static uint64_t
rem_scale(const struct tally_seat_input *in)
{
	switch (in->rule->method) {
	case TALLY_METHOD_HARE:
		return in->seats;
	case TALLY_METHOD_HAGENBACH_BISCHOFF:
		return (uint64_t)in->seats + 1;
	default:
		return 1;
	}
}

static void
step_quot(const struct tally_seat_input *in, const struct tally_seat_result *r,
    size_t i, bool remainder, struct tally_quot *q)
{
	if (remainder) {
		q->votes = r->rem_[i];
		q->num = rem_scale(in);
		q->den = 1;
	} else
		next_quot(in, r, i, q);
}

/* Order list indices by votes, more first, then by index (stable, small n). */
static void
sort_by_votes(const uint64_t *votes, size_t *v, size_t n)
{
	size_t i, j;

	for (i = 1; i < n; i++) {
		size_t x = v[i];
		for (j = i; j > 0 && (votes[v[j - 1]] < votes[x] ||
		    (votes[v[j - 1]] == votes[x] && v[j - 1] > x)); j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

static size_t
lot_position(const struct tally_seat_input *in, size_t list)
{
	size_t i;

	for (i = 0; i < in->n_lot; i++)
		if (in->lot_order[i] == list)
			return i;
	return SIZE_MAX;
}

/*
 * The tie at the cut: the n lists in t[] have equal quotients (or equal
 * remainders) and compete for k < n seats.  Settle what the
 * rule settles, then what the supplied lot settles; the rest is pending.
 */
static void
settle_tie(const struct tally_seat_input *in, struct tally_seat_result *r,
    size_t *t, size_t n, uint32_t k, bool remainder)
{
	struct tally_quot q;
	size_t first = 0, all = n, i, j, m;

	r->tie = true;
	r->tie_seats = k;
	sort_by_votes(in->votes, t, n);
	if (in->rule->ties == TALLY_TIES_VOTES) {
		/*
		 * Lists with more votes than the k-th take their seats; those
		 * equal to the k-th in votes remain tied for what is left.
		 */
		uint64_t edge = in->votes[t[k - 1]];
		for (i = 0; i < n && in->votes[t[i]] > edge; i++) {
			step_quot(in, r, t[i], remainder, &q);
			award(r, t[i], &q, remainder, true);
		}
		first = i;
		k -= (uint32_t)i;
		for (m = first; m < n && in->votes[t[m]] == edge; m++)
			;
		n = m;
		if (n - first == k) {
			/* Every list equal in votes fits: nothing left tied. */
			for (i = first; i < n; i++) {
				step_quot(in, r, t[i], remainder, &q);
				award(r, t[i], &q, remainder, true);
			}
			k = 0;
		}
	}
	if (k > 0 && in->lot_order != NULL) {
		/* Order the remaining candidates by the lot; unnamed ones last. */
		for (i = first + 1; i < n; i++) {
			size_t x = t[i];
			for (j = i; j > first &&
			    lot_position(in, t[j - 1]) > lot_position(in, x); j--)
				t[j] = t[j - 1];
			t[j] = x;
		}
		if (lot_position(in, t[first + k - 1]) != SIZE_MAX) {
			for (i = first; i < first + k; i++) {
				step_quot(in, r, t[i], remainder, &q);
				award(r, t[i], &q, remainder, true);
			}
			k = 0;
		}
	}
	r->tie_resolved = k == 0;
	r->pending = k;
	/* Report the lists that were tied (all of them once settled). */
	if (k > 0) {
		memmove(r->tied, t + first, (n - first) * sizeof(*t));
		r->n_tied = n - first;
	} else {
		memmove(r->tied, t, all * sizeof(*t));
		r->n_tied = all;
	}
}

/*
 * A max-heap of list indices ordered by each list's next quotient, so each
 * seat costs O(log lists) comparisons instead of a scan of every list.
 */
struct qheap {
	const struct tally_seat_input	*in;
	const uint32_t			*seats;	/* divisor index per list */
	size_t				*v;
	size_t				 n;
};

static int
qheap_cmp(const struct qheap *h, size_t a, size_t b)
{
	struct tally_quot qa, qb;

	qa.votes = h->in->votes[a];
	divisor(h->in->rule, h->seats[a], &qa.num, &qa.den);
	qb.votes = h->in->votes[b];
	divisor(h->in->rule, h->seats[b], &qb.num, &qb.den);
	return tally_quot_cmp(&qa, &qb);
}

static void
qheap_down(struct qheap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i, t;
		if (l < h->n && qheap_cmp(h, h->v[l], h->v[m]) > 0)
			m = l;
		if (r < h->n && qheap_cmp(h, h->v[r], h->v[m]) > 0)
			m = r;
		if (m == i)
			return;
		t = h->v[i];
		h->v[i] = h->v[m];
		h->v[m] = t;
		i = m;
	}
}

static void
qheap_up(struct qheap *h, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2, t;
		if (qheap_cmp(h, h->v[i], h->v[parent]) <= 0)
			return;
		t = h->v[i];
		h->v[i] = h->v[parent];
		h->v[parent] = t;
		i = parent;
	}
}

static void
qheap_push(struct qheap *h, size_t list)
{
	h->v[h->n++] = list;
	qheap_up(h, h->n - 1);
}

static size_t
qheap_pop(struct qheap *h)
{
	size_t top = h->v[0];

	h->v[0] = h->v[--h->n];
	if (h->n > 0)
		qheap_down(h, 0);
	return top;
}

static void
allocate_divisor(const struct tally_seat_input *in, struct tally_seat_result *r)
{
	uint32_t remaining = in->seats;
	size_t *t = r->order_;
	struct qheap h = { in, r->seats, r->heap_, 0 };
	struct tally_quot best, q;
	size_t i, n;

	for (i = 0; i < in->n_lists; i++)
		if (r->eligible_[i]) {
			h.v[h.n++] = i;
			if (in->floor_seats != NULL &&
			    in->floor_seats[i] <= remaining) {
				r->seats[i] = in->floor_seats[i];
				r->allocated += in->floor_seats[i];
				remaining -= in->floor_seats[i];
			}
		}
	for (i = h.n / 2; i-- > 0;)
		qheap_down(&h, i);
	while (remaining > 0) {
		if (h.n == 0) {
			r->unfilled = remaining;
			return;
		}
		/* The highest quotient, and every list that equals it. */
		t[0] = qheap_pop(&h);
		n = 1;
		next_quot(in, r, t[0], &best);
		while (h.n > 0) {
			next_quot(in, r, h.v[0], &q);
			if (tally_quot_cmp(&q, &best) != 0)
				break;
			t[n++] = qheap_pop(&h);
		}
		if (n > remaining) {
			settle_tie(in, r, t, n, remaining, false);
			return;
		}
		sort_by_votes(in->votes, t, n);
		for (i = 0; i < n; i++) {
			next_quot(in, r, t[i], &q);
			award(r, t[i], &q, false, false);
			qheap_push(&h, t[i]);
		}
		remaining -= (uint32_t)n;
	}
}

/*
 * More whole quotas than seats (only a Hagenbach-Bischoff quota, exact or
 * rounded up, can give S + 1): the lists with the smallest remainders give
 * a seat back, fewer votes first on equal remainders (Act 180/2014 Coll.
 * s. 66(4)).  Lists equal in both are tied for the seats they keep: under
 * either tie rule they stay tied (they are equal in votes), and the lot,
 * when one is supplied that names the last of the seats they keep, decides
 * who keeps them (first in the lot's order keep); otherwise each gives its
 * seat back and the seats they keep are pending.
 *
 * Works on r->seats[] alone: the steps are written afterwards, so that
 * the steps array never holds more than S seats (it is sized for S; the
 * S + 1 whole quotas once overran it, issue 21).
 */
static void
take_back(const struct tally_seat_input *in, struct tally_seat_result *r,
    size_t *o, size_t n, size_t *by_lot)
{
	uint32_t excess = r->allocated - in->seats;
	size_t i, j, m, first;

	/* Holders of a whole seat, smallest remainder, then fewest votes, first. */
	for (i = m = 0; i < n; i++)
		if (r->seats[o[i]] > 0)
			o[m++] = o[i];
	for (i = 1; i < m; i++) {
		size_t x = o[i];
		for (j = i; j > 0 && (r->rem_[o[j - 1]] > r->rem_[x] ||
		    (r->rem_[o[j - 1]] == r->rem_[x] &&
		    (in->votes[o[j - 1]] > in->votes[x] ||
		    (in->votes[o[j - 1]] == in->votes[x] && o[j - 1] > x)))); j--)
			o[j] = o[j - 1];
		o[j] = x;
	}
	/* Excess is at most one seat per holder: sum floor(v(S+1)/V) <= S+1. */
	for (first = 0; excess > 0 && first < m;) {
		size_t last = first, g;
		uint32_t keep;
		while (last + 1 < m && r->rem_[o[last + 1]] == r->rem_[o[first]] &&
		    in->votes[o[last + 1]] == in->votes[o[first]])
			last++;
		g = last - first + 1;
		if (g <= excess) {
			for (i = first; i <= last; i++) {
				r->seats[o[i]]--;
				r->allocated--;
			}
			excess -= (uint32_t)g;
			first = last + 1;
			continue;
		}
		/* A tie: g lists for the g - excess seats they keep. */
		keep = (uint32_t)g - excess;
		r->tie = true;
		r->tie_seats = keep;
		r->n_tied = 0;
		if (in->lot_order != NULL) {
			/* Order them by the lot; unnamed ones last. */
			for (i = first + 1; i <= last; i++) {
				size_t x = o[i];
				for (j = i; j > first &&
				    lot_position(in, o[j - 1]) >
				    lot_position(in, x); j--)
					o[j] = o[j - 1];
				o[j] = x;
			}
			if (lot_position(in, o[first + keep - 1]) != SIZE_MAX) {
				/* The lot settles it: the last ones give back. */
				for (i = first; i <= last; i++) {
					r->tied[r->n_tied++] = o[i];
					if (i >= first + keep) {
						r->seats[o[i]]--;
						r->allocated--;
					} else
						by_lot[o[i]] = 1;
				}
				r->tie_resolved = true;
				r->pending = 0;
				return;
			}
		}
		for (i = first; i <= last; i++) {
			r->seats[o[i]]--;
			r->allocated--;
			r->tied[r->n_tied++] = o[i];
		}
		r->pending = keep;
		excess = 0;
	}
}

static int
allocate_remainder(const struct tally_seat_input *in, struct tally_seat_result *r)
{
	uint64_t total = 0, quota_votes = 0;
	uint32_t remaining = in->seats;
	size_t *o = r->order_;
	struct tally_quot q;
	size_t i, j, n = 0;

	for (i = 0; i < in->n_lists; i++)
		if (r->eligible_[i])
			total += in->votes[i];
	if (total == 0) {
		r->unfilled = in->seats;
		return 0;
	}
	/*
	 * Hare: quota V/S.  Scaled by S, a list's whole seats are
	 * floor(v*S/V) and its remainder (v*S mod V)/S votes.
	 * Hagenbach-Bischoff: quota V/(S+1) exactly, the same scaled by S+1.
	 * Droop: quota floor(V/(S+1)) + 1 (the integer Droop quota), whole
	 * seats v div Q, remainder v mod Q.  Hagenbach-Bischoff rounded up:
	 * quota ceil(V/(S+1)) (Act 180/2014 Coll. s. 66(2): the republic
	 * electoral number, "rounded up to a whole number"), likewise.  Hare
	 * and Droop never award more whole seats than S; the two
	 * Hagenbach-Bischoff quotas can award S + 1 (see take_back).
	 */
	switch (in->rule->method) {
	case TALLY_METHOD_HARE:
	case TALLY_METHOD_HAGENBACH_BISCHOFF:
		r->quota.votes = total;
		r->quota.num = rem_scale(in);
		r->quota.den = 1;
		break;
	case TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL:
		quota_votes = (total + in->seats) / ((uint64_t)in->seats + 1);
		break;
	default:
		quota_votes = total / ((uint64_t)in->seats + 1) + 1;
		break;
	}
	if (quota_votes != 0) {
		r->quota.votes = quota_votes;
		r->quota.num = 1;
		r->quota.den = 1;
	}
	/*
	 * Whole quotas first, counted in seats[] only: they can come to
	 * S + 1, one more than the steps array holds, until take_back gives
	 * the extra one back.
	 */
	for (i = 0; i < in->n_lists; i++) {
		uint64_t whole;
		if (!r->eligible_[i])
			continue;
		if (quota_votes == 0) {
			u128 scaled = (u128)in->votes[i] * rem_scale(in);
			whole = (uint64_t)(scaled / total);
			r->rem_[i] = (uint64_t)(scaled % total);
		} else {
			whole = in->votes[i] / quota_votes;
			r->rem_[i] = in->votes[i] % quota_votes;
		}
		/* sum(whole) <= S + 1 (see above): anything else is a bug. */
		if (whole > (uint64_t)in->seats + 1 - r->allocated)
			return -1;
		r->seats[i] = (uint32_t)whole;
		r->allocated += (uint32_t)whole;
		o[n++] = i;
	}
	if (r->allocated > in->seats) {
		size_t *by_lot = r->heap_;	/* divisor methods' scratch */
		for (i = 0; i < in->n_lists; i++)
			by_lot[i] = 0;
		take_back(in, r, o, n, by_lot);
		for (i = 0; i < in->n_lists; i++)
			for (j = 0; j < r->seats[i]; j++)
				put_step(r, i, &r->quota, false,
				    by_lot[i] != 0 && j + 1 == r->seats[i]);
		return 0;
	}
	for (i = 0; i < in->n_lists; i++)
		for (j = 0; j < r->seats[i]; j++)
			put_step(r, i, &r->quota, false, false);
	remaining -= r->allocated;
	/* Remainders, largest first; equal remainders by votes then index. */
	for (i = 1; i < n; i++) {
		size_t x = o[i];
		for (j = i; j > 0 && (r->rem_[o[j - 1]] < r->rem_[x] ||
		    (r->rem_[o[j - 1]] == r->rem_[x] &&
		    (in->votes[o[j - 1]] < in->votes[x] ||
		    (in->votes[o[j - 1]] == in->votes[x] && o[j - 1] > x)))); j--)
			o[j] = o[j - 1];
		o[j] = x;
	}
	/* Remainder value in votes: Hare rem/S, Droop rem. */
	q.num = rem_scale(in);
	q.den = 1;
	while (remaining > 0) {
		uint64_t edge;
		size_t above, eq;
		if (remaining >= n) {
			/* More seats than lists (Droop with tiny totals): a
			 * seat to each, round after round. */
			for (i = 0; i < n; i++) {
				q.votes = r->rem_[o[i]];
				award(r, o[i], &q, true, false);
			}
			remaining -= (uint32_t)n;
			continue;
		}
		edge = r->rem_[o[remaining - 1]];
		for (above = 0; r->rem_[o[above]] > edge; above++) {
			q.votes = r->rem_[o[above]];
			award(r, o[above], &q, true, false);
		}
		for (eq = above; eq < n && r->rem_[o[eq]] == edge; eq++)
			;
		if (eq - above <= remaining - above) {
			for (i = above; i < eq; i++) {
				q.votes = r->rem_[o[i]];
				award(r, o[i], &q, true, false);
			}
			return 0;
		}
		settle_tie(in, r, o + above, eq - above, remaining -
		    (uint32_t)above, true);
		return 0;
	}
	return 0;
}

int
tally_seats_allocate(const struct tally_seat_input *in,
    struct tally_seat_result *r)
{
	const struct tally_rule *rule = in->rule;
	u128 base = 0;
	size_t i;

	if (in->n_lists > r->cap_lists || in->seats > r->cap_seats ||
	    in->seats > TALLY_SEATS_MAX || in->blank > TALLY_VOTES_MAX)
		return -1;
	for (i = 0; i < in->n_lists; i++) {
		if (in->votes[i] > TALLY_VOTES_MAX)
			return -1;
		base += in->votes[i];
	}
	if (rule->threshold_of == TALLY_THRESHOLD_VALID)
		base += in->blank;

	r->allocated = r->pending = r->unfilled = 0;
	r->tie = r->tie_resolved = false;
	r->tie_seats = 0;
	r->n_tied = r->n_steps = 0;
	r->quota.votes = 0;
	r->quota.num = r->quota.den = 1;
	for (i = 0; i < in->n_lists; i++) {
		enum tally_threshold_status ts = TALLY_TS_NONE;
		struct tally_frac pct = rule->threshold_percent;
		r->seats[i] = 0;
		r->rem_[i] = 0;
		if (in->list_percent != NULL && in->list_percent[i].num != 0)
			pct = in->list_percent[i];
		if (in->exempt != NULL && in->exempt[i]) {
			/* Kodeks wyborczy art. 197 par. 2: no threshold. */
			ts = TALLY_TS_EXEMPT;
		} else if (in->excluded != NULL && in->excluded[i]) {
			ts = TALLY_TS_EXCLUDED;
		} else if (rule->threshold_of != TALLY_THRESHOLD_NONE &&
		    rule->threshold_scope == TALLY_SCOPE_NATIONAL) {
			/* Decided nationally by the caller; not excluded. */
			ts = TALLY_TS_PASSED;
		} else if (rule->threshold_of != TALLY_THRESHOLD_NONE) {
			/*
			 * "At least" p percent of the base: v/base >= p/100,
			 * i.e. v * 100 * den >= num * base (LOREG art. 163.1.a:
			 * lists "que no hubieran obtenido, por lo menos, el
			 * 3 por 100" are excluded).
			 */
			u128 l = (u128)in->votes[i] * 100 * pct.den;
			u128 rr = (u128)pct.num * base;
			ts = l >= rr ? TALLY_TS_PASSED : TALLY_TS_FAILED;
		}
		r->threshold[i] = (uint8_t)ts;
		r->eligible_[i] = in->votes[i] > 0 && ts != TALLY_TS_FAILED &&
		    ts != TALLY_TS_EXCLUDED;
	}
	if (in->seats == 0)
		return 0;
	if (TALLY_METHOD_IS_QUOTA(rule->method)) {
		if (allocate_remainder(in, r) == -1)
			return -1;
	} else
		allocate_divisor(in, r);
	/*
	 * Invariants, checked in every build: every seat is accounted for,
	 * and the steps never outrun their array.  A broken one is a
	 * bug, reported (-1) rather than fatal: the caller refuses the feed
	 * that met it and the daemon goes on (issue 21).
	 */
	if (r->allocated + r->pending + r->unfilled != in->seats ||
	    r->n_steps > r->cap_seats)
		return -1;
	return 0;
}

/* Firm seats of `list` if it had `votes` votes, all else unchanged. */
static int
seats_with(const struct tally_seat_input *in, size_t list, uint64_t votes,
    struct tally_seat_result *scratch, uint64_t *work, uint32_t *out)
{
	struct tally_seat_input alt = *in;

	memcpy(work, in->votes, in->n_lists * sizeof(*work));
	work[list] = votes;
	alt.votes = work;
	if (tally_seats_allocate(&alt, scratch) == -1)
		return -1;
	*out = scratch->seats[list];
	return 0;
}

/* Is `list`'s seat count non-decreasing in its own votes, all else fixed? */
static bool
monotone(const struct tally_rule *rule)
{
	/*
	 * Divisor methods: more votes raise only the list's own quotients
	 * (and can only push rivals under a threshold).  Hare without a
	 * threshold: the list's quota rises and every rival's falls.  Droop's
	 * integer quota moves in steps with the list's own votes (so do the
	 * Hagenbach-Bischoff quotas, which may also take a whole seat back
	 * from the smallest remainder), and under a
	 * threshold a Hare list's gain can drop a rival out and reshuffle the
	 * remainders: both can lose a seat by gaining votes.
	 */
	if (rule->method == TALLY_METHOD_DROOP ||
	    rule->method == TALLY_METHOD_HAGENBACH_BISCHOFF ||
	    rule->method == TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL)
		return false;
	if (rule->method == TALLY_METHOD_HARE &&
	    rule->threshold_of != TALLY_THRESHOLD_NONE &&
	    rule->threshold_scope == TALLY_SCOPE_PROVINCE)
		return false;
	return true;
}

/*
 * The k-th largest quotient (k >= 1) among the lists other than `list`
 * that took part in r's allocation; {0, 1, 1} when there are none.
 */
static int
kth_other(const struct tally_seat_input *in, const struct tally_seat_result *r,
    size_t list, uint32_t k, struct tally_quot *out)
{
	struct qheap h;
	uint32_t *seats;
	size_t i;

	out->votes = 0;
	out->num = out->den = 1;
	seats = calloc(in->n_lists ? in->n_lists : 1, sizeof(*seats));
	h.v = malloc((in->n_lists ? in->n_lists : 1) * sizeof(*h.v));
	if (seats == NULL || h.v == NULL) {
		free(seats);
		free(h.v);
		return -1;
	}
	h.in = in;
	h.seats = seats;
	h.n = 0;
	for (i = 0; i < in->n_lists; i++)
		if (i != list && r->eligible_[i])
			h.v[h.n++] = i;
	for (i = h.n / 2; i-- > 0;)
		qheap_down(&h, i);
	while (h.n > 0) {
		size_t top = h.v[0];
		if (--k == 0) {
			out->votes = in->votes[top];
			divisor(in->rule, seats[top], &out->num, &out->den);
			break;
		}
		/* Its next quotient goes back in. */
		seats[top]++;
		qheap_down(&h, 0);
	}
	free(seats);
	free(h.v);
	return 0;
}

/* The fewest votes v with v / d(k) > t (exact, saturating at 2^64-1). */
static uint64_t
votes_to_beat(const struct tally_rule *rule, uint32_t k,
    const struct tally_quot *t)
{
	uint64_t num, den;
	u128 need;

	divisor(rule, k, &num, &den);
	/* v * den / num > tv * tden / tnum  <=>  v > tv*tden*num / (tnum*den) */
	need = (u128)t->votes * t->den * num / ((u128)t->num * den) + 1;
	return need > UINT64_MAX ? UINT64_MAX : (uint64_t)need;
}

/*
 * The boundary of a non-decreasing step: the least v in (lo, hi] with
 * more(v), given !more(lo) and more(hi).  Bisection, exact.
 */
static int
bisect(const struct tally_seat_input *in, size_t list, uint32_t want,
    uint64_t lo, uint64_t hi, struct tally_seat_result *scratch,
    uint64_t *work, uint64_t *out)
{
	uint32_t got;

	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (seats_with(in, list, mid, scratch, work, &got) == -1)
			return -1;
		if (got >= want)
			hi = mid;
		else
			lo = mid;
	}
	*out = hi;
	return 0;
}

/*
 * The least v with seats(v) >= want, trying the estimate `guess` first:
 * when seats(guess) >= want and seats(guess - 1) < want, that is the answer
 * (two allocations); otherwise bisect.  UINT64_MAX when even the maximum
 * does not reach `want`.
 */
static int
least_votes(const struct tally_seat_input *in, size_t list, uint32_t want,
    uint64_t guess, struct tally_seat_result *scratch, uint64_t *work,
    uint64_t *out)
{
	uint32_t got;
	uint64_t lo = 0, hi = TALLY_VOTES_MAX;

	*out = UINT64_MAX;
	if (guess > 0 && guess <= TALLY_VOTES_MAX) {
		if (seats_with(in, list, guess, scratch, work, &got) == -1)
			return -1;
		if (got >= want) {
			hi = guess;
			if (seats_with(in, list, guess - 1, scratch, work,
			    &got) == -1)
				return -1;
			if (got < want) {
				*out = guess;
				return 0;
			}
		} else
			lo = guess;
	}
	if (hi == TALLY_VOTES_MAX) {
		if (seats_with(in, list, TALLY_VOTES_MAX, scratch, work,
		    &got) == -1)
			return -1;
		if (got < want)
			return 0;
	}
	if (seats_with(in, list, 0, scratch, work, &got) == -1)
		return -1;
	if (got >= want) {
		*out = 0;
		return 0;
	}
	return bisect(in, list, want, lo, hi, scratch, work, out);
}

int
tally_seats_explain(const struct tally_seat_input *in,
    const struct tally_seat_result *r, size_t list,
    struct tally_seat_result *scratch, uint64_t *next_votes, uint64_t *margin)
{
	uint64_t v = in->votes[list], guess, least, *work;
	uint32_t have = r->seats[list];
	bool divisor_method = in->rule->method == TALLY_METHOD_DHONDT ||
	    in->rule->method == TALLY_METHOD_SAINTE_LAGUE;
	struct tally_quot t;
	int rc = -1;

	*next_votes = UINT64_MAX;
	*margin = 0;
	if (!monotone(in->rule))
		return 1;
	if ((work = malloc((in->n_lists ? in->n_lists : 1) * sizeof(*work))) == NULL)
		return -1;
	/*
	 * Both answers are boundaries of the list's seat count as a function
	 * of its own votes, found with the allocation itself, so they are
	 * exact for every threshold and tie rule.  For divisor methods the
	 * boundary is first estimated in closed form: one more seat needs the
	 * list's next quotient v / d(have) to beat the (S - have)-th largest
	 * quotient of the other lists; keeping `have` seats needs
	 * v / d(have - 1) to beat the (S - have + 1)-th.  The estimate is
	 * checked by two allocations and bisection decides only when a
	 * threshold or a tie rule moves the boundary.
	 */
	if (have < in->seats && (in->excluded == NULL || !in->excluded[list])) {
		guess = 0;
		if (divisor_method) {
			if (kth_other(in, r, list, in->seats - have, &t) == -1)
				goto out;
			guess = votes_to_beat(in->rule, have, &t);
			if (guess <= v)
				guess = v + 1;
		}
		if (least_votes(in, list, have + 1, guess, scratch, work,
		    &least) == -1)
			goto out;
		if (least != UINT64_MAX && least > v)
			*next_votes = least - v;
	}
	if (have > 0) {
		guess = 0;
		if (divisor_method) {
			if (kth_other(in, r, list, in->seats - have + 1, &t) == -1)
				goto out;
			guess = votes_to_beat(in->rule, have - 1, &t);
		}
		if (guess > v)
			guess = v;
		if (least_votes(in, list, have, guess, scratch, work,
		    &least) == -1)
			goto out;
		if (least != UINT64_MAX && least <= v)
			*margin = v - least;
	}
	rc = 0;
out:
	free(work);
	return rc;
}
