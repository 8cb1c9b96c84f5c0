/*
 * test_tiers_props.c - properties of issue 13's rules on random elections,
 * against brute-force references written here from the laws, not from the
 * engine's loops.
 *
 * Usage: test_tiers_props
 * Environment: TALLY_PROP_SEED (decimal; fixed by default so `meson test`
 * is reproducible), TALLY_PROP_CASES (cases per property).
 *
 *   q. quota variants (Hare, Droop, Hagenbach-Bischoff exact and rounded
 *      up) equal a reference that divides by the quota as an exact fraction
 *      and gives back excess whole seats from the smallest remainders;
 *   x. national thresholds with a coalition's own percent and exemptions:
 *      an exempt coalition is never excluded, every other is excluded
 *      exactly when below its own (or the election's) percent, and the
 *      district seats equal a top-quotients D'Hondt reference;
 *   m. own thresholds are monotone: excluded at p, excluded at every p' > p;
 *   l. the levelling tier (national method Sainte-Laguë 1.4 or D'Hondt):
 *      levelling seats sum to the tier's size (less
 *      pending), no coalition has fewer seats than its district seats, and
 *      both the national apportionment and every province's levelling seat
 *      equal a brute-force reference (repeated scans of every quotient;
 *      a list seated in a province takes its next divisor there), and
 *      revisions applied one at a time give what a state built from
 *      scratch on the final votes gives.
 *
 * Cases where the reference meets equal quotients at a cut are skipped for
 * the comparisons (ties are test_seats_props' business), never for the
 * invariants.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

typedef unsigned __int128 u128;

#define MAXP	8	/* provinces */
#define MAXC	7	/* coalitions */

static uint64_t rng_state;
static unsigned long cases_run[4], cases_compared[4];

static uint64_t
rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
rng_below(uint64_t n)
{
	return n ? rng_next() % n : 0;
}

/* ------------------------------------------------------------ q: quotas */

/* Compare a/b with c/d (all small: no overflow in 128 bits). */
static int
fcmp(u128 a, u128 b, u128 c, u128 d)
{
	u128 l = a * d, r = c * b;

	return (l > r) - (l < r);
}

static void
prop_quota(unsigned long n)
{
	static const enum tally_method ms[] = { TALLY_METHOD_HARE,
	    TALLY_METHOD_DROOP, TALLY_METHOD_HAGENBACH_BISCHOFF,
	    TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL };
	struct tally_seat_result r;
	unsigned long i;

	if (tally_seat_result_init(&r, 12, 40) == -1)
		abort();
	for (i = 0; i < n; i++) {
		struct tally_rule rule;
		struct tally_seat_input in;
		uint64_t v[12], total = 0, qn, qd, whole[12], sum = 0;
		u128 remn[12], remd = 1;
		uint32_t seats = (uint32_t)rng_below(30) + 1, ref[12];
		size_t nl = (size_t)rng_below(11) + 2, k, j;
		uint64_t unit = rng_below(3) == 0 ? 100 : 1;
		bool tie = false;

		memset(&rule, 0, sizeof(rule));
		rule.method = ms[rng_below(4)];
		rule.first_divisor.num = rule.first_divisor.den = 1;
		rule.ties = TALLY_TIES_VOTES;
		for (k = 0; k < nl; k++) {
			v[k] = (rng_below(5) == 0 ? 0 : rng_below(5000)) * unit;
			total += v[k];
		}
		memset(&in, 0, sizeof(in));
		in.rule = &rule;
		in.seats = seats;
		in.n_lists = nl;
		in.votes = v;
		CHECK(tally_seats_allocate(&in, &r) == 0, "quota allocate");
		CHECK_EQ_U(r.allocated + r.pending + r.unfilled, seats,
		    "quota: every seat accounted for");
		cases_run[0]++;
		if (total == 0)
			continue;
		/* The quota as the exact fraction qn/qd. */
		switch (rule.method) {
		case TALLY_METHOD_HARE:
			qn = total, qd = seats;
			break;
		case TALLY_METHOD_HAGENBACH_BISCHOFF:
			qn = total, qd = (uint64_t)seats + 1;
			break;
		case TALLY_METHOD_DROOP:
			qn = total / ((uint64_t)seats + 1) + 1, qd = 1;
			break;
		default:
			qn = total / ((uint64_t)seats + 1);
			if (qn * ((uint64_t)seats + 1) < total)
				qn++;
			qd = 1;
			break;
		}
		/* whole = floor(v / (qn/qd)), remainder v - whole*qn/qd. */
		for (k = 0; k < nl; k++) {
			whole[k] = (uint64_t)(((u128)v[k] * qd) / qn);
			remn[k] = (u128)v[k] * qd - (u128)whole[k] * qn;
			ref[k] = (uint32_t)whole[k];
			sum += whole[k];
		}
		remd = qd;
		(void)remd;
		if (sum > seats) {
			/* Give back from the smallest remainders, fewer votes. */
			while (sum > seats) {
				size_t lo = SIZE_MAX;
				for (k = 0; k < nl; k++) {
					if (ref[k] == 0)
						continue;
					if (lo == SIZE_MAX || remn[k] < remn[lo] ||
					    (remn[k] == remn[lo] && v[k] < v[lo]))
						lo = k;
				}
				for (k = 0; k < nl; k++)
					if (k != lo && ref[k] > 0 &&
					    remn[k] == remn[lo] && v[k] == v[lo])
						tie = true;
				ref[lo]--;
				sum--;
			}
		} else {
			/* Remaining seats to the largest remainders, one each
			 * (more seats than lists: round after round). */
			while (sum < seats) {
				bool any = false;
				bool given[12] = { false };
				uint64_t left = seats - sum;
				size_t cnt = 0;
				for (k = 0; k < nl; k++)
					if (v[k] > 0)
						cnt++;
				if (left >= cnt) {
					for (k = 0; k < nl; k++)
						if (v[k] > 0)
							ref[k]++, sum++;
					continue;
				}
				for (j = 0; j < left; j++) {
					size_t hi = SIZE_MAX;
					for (k = 0; k < nl; k++) {
						if (given[k] || v[k] == 0)
							continue;
						if (hi == SIZE_MAX ||
						    fcmp(remn[k], 1, remn[hi], 1) > 0 ||
						    (remn[k] == remn[hi] && v[k] > v[hi]))
							hi = k;
					}
					given[hi] = true;
					ref[hi]++;
					sum++;
					any = true;
					/* Equal with one left out at the cut. */
					if (j + 1 == left)
						for (k = 0; k < nl; k++)
							if (!given[k] && v[k] > 0 &&
							    remn[k] == remn[hi] &&
							    v[k] == v[hi])
								tie = true;
				}
				(void)any;
			}
		}
		if (tie || r.pending > 0)
			continue;
		cases_compared[0]++;
		for (k = 0; k < nl; k++)
			CHECK_EQ_U(r.seats[k], ref[k], "%s, %u seats, list %zu "
			    "(case %lu)", tally_method_name(rule.method), seats,
			    k, i);
	}
	tally_seat_result_finish(&r);
}

/* ------------------------------------------------- elections from JSON */

struct gen {
	size_t		 np, nc;
	uint32_t	 seats[MAXP], lev[MAXP];
	uint64_t	 votes[MAXP][MAXC];
	int		 own[MAXC];	/* -1 none, 0 exempt, else percent */
	int		 percent;	/* the election's national threshold */
	bool		 levelling;
	bool		 dhondt;	/* the tier's national method */
};

static struct tally_election *
gen_election(const struct gen *g)
{
	json_t *e = json_object(), *a = json_object(), *cs = json_array(),
	    *ps = json_array();
	struct tally_election *el;
	struct tally_diag diag;
	char id[32], *text;
	size_t i;

	json_object_set_new(e, "id", json_string("g"));
	json_object_set_new(e, "name", json_string("generated"));
	if (g->levelling) {
		json_object_set_new(a, "method", json_string("sainte-lague"));
		json_object_set_new(a, "first_divisor", json_string("1.4"));
		json_object_set_new(e, "levelling", json_pack("{s:{s:s,s:s,s:{s:s,s:s}},"
		    "s:{s:s,s:s}}", "allocation", "method", g->dhondt ? "dhondt" :
		    "sainte-lague", "first_divisor", g->dhondt ? "1" : "1.4",
		    "threshold", "percent", "4", "of",
		    "list", "assignment", "method", "sainte-lague", "scale",
		    "votes_per_seat"));
	} else {
		json_object_set_new(a, "method", json_string("dhondt"));
		json_object_set_new(a, "threshold", json_pack("{s:i,s:s,s:s}",
		    "percent", g->percent, "of", "list", "scope", "national"));
	}
	json_object_set_new(e, "allocation", a);
	for (i = 0; i < g->nc; i++) {
		json_t *c = json_object();
		snprintf(id, sizeof(id), "c%zu", i);
		json_object_set_new(c, "id", json_string(id));
		json_object_set_new(c, "name", json_string(id));
		if (g->own[i] == 0)
			json_object_set_new(c, "threshold",
			    json_pack("{s:b}", "exempt", 1));
		else if (g->own[i] > 0)
			json_object_set_new(c, "threshold",
			    json_pack("{s:i}", "percent", g->own[i]));
		json_array_append_new(cs, c);
	}
	for (i = 0; i < g->np; i++) {
		json_t *p = json_object();
		snprintf(id, sizeof(id), "p%zu", i);
		json_object_set_new(p, "id", json_string(id));
		json_object_set_new(p, "name", json_string(id));
		json_object_set_new(p, "seats", json_integer(g->seats[i]));
		if (g->levelling)
			json_object_set_new(p, "levelling_seats",
			    json_integer(g->lev[i]));
		json_array_append_new(ps, p);
	}
	json_object_set_new(e, "coalitions", cs);
	json_object_set_new(e, "provinces", ps);
	text = json_dumps(e, JSON_COMPACT);
	json_decref(e);
	tally_diag_init(&diag);
	el = tally_election_loadb(text, strlen(text), "generated", &diag);
	if (el == NULL && diag.count > 0)
		fprintf(stderr, "%s\n%s\n", text, diag.msgs[0]);
	free(text);
	tally_diag_finish(&diag);
	return el;
}

static struct tally_state *
gen_state(const struct tally_election *e, const struct gen *g)
{
	struct tally_state *s = tally_state_create(e);
	size_t p, c;

	for (p = 0; p < g->np; p++) {
		json_t *b = json_object(), *v = json_object();
		struct tally_error err;
		struct tally_feed *f;
		char id[32];
		for (c = 0; c < g->nc; c++) {
			snprintf(id, sizeof(id), "c%zu", c);
			json_object_set_new(v, id, json_integer((json_int_t)
			    g->votes[p][c]));
		}
		json_object_set_new(b, "revision", json_integer(1));
		json_object_set_new(b, "votes", v);
		snprintf(id, sizeof(id), "p%zu", p);
		f = tally_feed_parse(e, id, b, "", &err);
		json_decref(b);
		if (f == NULL || tally_state_apply(s, f, "t", &err) == -1)
			abort();
	}
	return s;
}

static void
gen_votes(struct gen *g)
{
	size_t p, c;
	uint64_t big[MAXC];

	for (c = 0; c < g->nc; c++)
		big[c] = rng_below(4) == 0 ? rng_below(300) : rng_below(20000);
	for (p = 0; p < g->np; p++)
		for (c = 0; c < g->nc; c++)
			g->votes[p][c] = rng_below(6) == 0 ? 0 :
			    big[c] / 2 + rng_below(big[c] + 1);
}

/*
 * Reference D'Hondt in one province among `ok` lists: each seat to the
 * highest quotient scanned afresh; false when more lists share the highest
 * quotient than there are seats left (a tie at the cut).
 */
static bool
ref_dhondt(const uint64_t *v, const bool *ok, size_t n, uint32_t seats,
    uint32_t *out)
{
	uint32_t s;
	size_t i, m;

	memset(out, 0, n * sizeof(*out));
	for (s = 0; s < seats; s++) {
		size_t best = SIZE_MAX;
		for (i = 0; i < n; i++) {
			if (!ok[i] || v[i] == 0)
				continue;
			if (best == SIZE_MAX || (u128)v[i] * (out[best] + 1) >
			    (u128)v[best] * (out[i] + 1))
				best = i;
		}
		if (best == SIZE_MAX)
			return true;
		for (i = m = 0; i < n; i++)
			if (ok[i] && v[i] > 0 && (u128)v[i] * (out[best] + 1) ==
			    (u128)v[best] * (out[i] + 1))
				m++;
		if (m > seats - s)
			return false;
		out[best]++;
	}
	return true;
}

/* ------------------------------------------ x, m: thresholds, exemptions */

static void
prop_thresholds(unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		struct gen g;
		struct tally_election *e;
		struct tally_state *s;
		uint64_t nat[MAXC] = { 0 }, base = 0;
		bool ok[MAXC], ties = false;
		size_t p, c;

		memset(&g, 0, sizeof(g));
		g.np = (size_t)rng_below(MAXP) + 1;
		g.nc = (size_t)rng_below(MAXC - 1) + 2;
		g.percent = (int)rng_below(10) + 1;
		for (p = 0; p < g.np; p++)
			g.seats[p] = (uint32_t)rng_below(12) + 1;
		for (c = 0; c < g.nc; c++)
			g.own[c] = rng_below(3) == 0 ? (int)rng_below(15) :
			    -1;
		gen_votes(&g);
		if ((e = gen_election(&g)) == NULL) {
			CHECK(0, "generated election loads");
			continue;
		}
		s = gen_state(e, &g);
		cases_run[1]++;
		for (p = 0; p < g.np; p++)
			for (c = 0; c < g.nc; c++)
				nat[c] += g.votes[p][c], base += g.votes[p][c];
		for (c = 0; c < g.nc; c++) {
			int pct = g.own[c] > 0 ? g.own[c] : g.percent;
			ok[c] = g.own[c] == 0 || nat[c] * 100 >= (uint64_t)pct * base;
			CHECK(s->coalitions[c].excluded == !ok[c], "c%zu: %llu of "
			    "%llu votes, own %d, election %d %% (case %lu)", c,
			    (unsigned long long)nat[c],
			    (unsigned long long)base, g.own[c], g.percent, i);
			if (g.own[c] == 0)
				CHECK(!s->coalitions[c].excluded, "exempt is "
				    "never excluded");
		}
		for (p = 0; p < g.np && !ties; p++) {
			const struct tally_revision *cur = tally_state_current(s, p);
			const struct tally_seat_result *r = &s->provinces[p].result;
			uint64_t v[MAXC];
			bool lok[MAXC];
			uint32_t ref[MAXC];
			size_t k;
			for (k = 0; k < cur->feed->n_lists; k++) {
				size_t cc = cur->feed->lists[k].coalition;
				v[k] = cur->feed->lists[k].votes;
				lok[k] = ok[cc];
				if (g.own[cc] == 0)
					CHECK_EQ_U(r->threshold[k], TALLY_TS_EXEMPT,
					    "exempt status");
				else
					CHECK_EQ_U(r->threshold[k], ok[cc] ?
					    TALLY_TS_PASSED : TALLY_TS_EXCLUDED,
					    "threshold status");
			}
			if (!ref_dhondt(v, lok, cur->feed->n_lists, g.seats[p],
			    ref) || r->pending > 0) {
				ties = true;
				break;
			}
			for (k = 0; k < cur->feed->n_lists; k++)
				CHECK_EQ_U(r->seats[k], ref[k], "p%zu list %zu "
				    "(case %lu)", p, k, i);
		}
		if (!ties)
			cases_compared[1]++;
		tally_state_destroy(s);
		tally_election_destroy(e);

		/* m: a coalition's own percent raised never lets it back in. */
		for (c = 0; c < g.nc; c++) {
			int lo = (int)rng_below(20) + 1, hi = lo + (int)rng_below(20) + 1;
			bool ex_lo, ex_hi;
			if (hi > 100)
				hi = 100;
			g.own[c] = lo;
			e = gen_election(&g);
			s = gen_state(e, &g);
			ex_lo = s->coalitions[c].excluded;
			tally_state_destroy(s);
			tally_election_destroy(e);
			g.own[c] = hi;
			e = gen_election(&g);
			s = gen_state(e, &g);
			ex_hi = s->coalitions[c].excluded;
			tally_state_destroy(s);
			tally_election_destroy(e);
			cases_run[2]++;
			CHECK(!ex_lo || ex_hi, "own threshold monotone: c%zu "
			    "excluded at %d %% but not at %d %%", c, lo, hi);
		}
	}
}

/* ----------------------------------------------------- l: levelling tier */

/* a/b > c/d for the reference (values small enough for 128 bits). */
static int
qcmp(u128 a, u128 b, u128 c, u128 d)
{
	return fcmp(a, b, c, d);
}

/*
 * Reference Sainte-Laguë 1.4 of `seats` among `in` coalitions with
 * national votes v: every seat to the highest v / d scanned afresh.
 * false when equal quotients decide a seat.
 */
static bool
ref_national(const uint64_t *v, const bool *in, size_t n, uint64_t seats,
    uint32_t *out, bool dhondt)
{
	uint64_t s;
	size_t i;

	memset(out, 0, n * sizeof(*out));
	for (s = 0; s < seats; s++) {
		size_t best = SIZE_MAX;
		u128 bn = 0, bd = 1;
		bool tie = false;
		for (i = 0; i < n; i++) {
			/* v / 1.4 = 5v/7; v / (2k+1). */
			u128 qn = out[i] == 0 && !dhondt ? (u128)v[i] * 5 : v[i];
			u128 qd = dhondt ? (u128)out[i] + 1 : out[i] == 0 ? 7 :
			    2 * (u128)out[i] + 1;
			int cmp;
			if (!in[i] || v[i] == 0)
				continue;
			cmp = best == SIZE_MAX ? 1 : qcmp(qn, qd, bn, bd);
			if (cmp > 0)
				best = i, bn = qn, bd = qd, tie = false;
			else if (cmp == 0)
				tie = true;
		}
		if (best == SIZE_MAX)
			return true;
		if (tie)
			return false;
		out[best]++;
	}
	return true;
}

static void
prop_levelling(unsigned long n)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		struct gen g;
		struct tally_election *e;
		struct tally_state *s;
		uint64_t nat[MAXC] = { 0 }, base = 0, seats, sum = 0, L = 0;
		uint32_t dist[MAXC] = { 0 }, share[MAXC], lev[MAXC] = { 0 };
		uint32_t room[MAXP], need[MAXC], extra[MAXP][MAXC];
		size_t assigned[MAXP][3];
		bool in[MAXC], again, ok = true;
		size_t p, c, k;

		memset(&g, 0, sizeof(g));
		g.levelling = true;
		g.dhondt = rng_below(3) == 0;
		g.np = (size_t)rng_below(MAXP) + 1;
		g.nc = (size_t)rng_below(MAXC - 1) + 2;
		for (p = 0; p < g.np; p++) {
			g.seats[p] = (uint32_t)rng_below(10) + 1;
			g.lev[p] = (uint32_t)rng_below(3);
			L += g.lev[p];
		}
		if (L == 0)
			g.lev[0] = 1, L = 1;
		gen_votes(&g);
		if ((e = gen_election(&g)) == NULL) {
			CHECK(0, "generated two-tier election loads");
			continue;
		}
		s = gen_state(e, &g);
		cases_run[3]++;

		/* Invariants. */
		for (c = 0; c < g.nc; c++) {
			const struct tally_coalition_total *t = &s->coalitions[c];
			sum += t->levelling_seats;
			CHECK(t->seats >= t->district_seats, "no party loses "
			    "district seats");
			CHECK_EQ_U(t->seats, t->district_seats +
			    t->levelling_seats, "seats add up");
		}
		CHECK_EQ_U(sum + s->levelling->pending, L, "levelling seats sum "
		    "to the tier (case %lu)", i);

		/* Reference, step 1: who takes part, what is shared. */
		for (p = 0; p < g.np; p++) {
			const struct tally_seat_result *r = &s->provinces[p].result;
			const struct tally_revision *cur = tally_state_current(s, p);
			if (r->pending > 0)
				ok = false;
			for (k = 0; k < cur->feed->n_lists; k++)
				dist[cur->feed->lists[k].coalition] += r->seats[k];
			for (c = 0; c < g.nc; c++)
				nat[c] += g.votes[p][c], base += g.votes[p][c];
		}
		seats = L;
		for (c = 0; c < g.nc; c++) {
			in[c] = nat[c] > 0 && nat[c] * 100 >= 4 * base;
			if (in[c])
				seats += dist[c];
		}
		/* Step 2: apportion, set aside, repeat. */
		do {
			again = false;
			if (!ref_national(nat, in, g.nc, seats, share, g.dhondt)) {
				ok = false;
				break;
			}
			for (c = 0; c < g.nc; c++)
				if (in[c] && dist[c] > share[c]) {
					in[c] = false;
					seats -= dist[c];
					again = true;
				}
		} while (again);
		if (!ok || s->levelling->pending > 0 || s->levelling->assign_tie) {
			tally_state_destroy(s);
			tally_election_destroy(e);
			continue;
		}
		for (c = 0; c < g.nc; c++) {
			lev[c] = in[c] ? share[c] - dist[c] : 0;
			CHECK_EQ_U(s->coalitions[c].levelling_seats, lev[c],
			    "levelling seats of c%zu (case %lu)", c, i);
			need[c] = lev[c];
		}
		/* Step 3: every seat to the highest takeable quotient
		 * v / (2d+1) / (T/S), scanned afresh. */
		memset(extra, 0, sizeof(extra));
		for (p = 0; p < g.np; p++)
			room[p] = g.lev[p];
		for (;;) {
			size_t bp = SIZE_MAX, bc = 0;
			u128 bn = 0, bd = 1;
			bool tie = false;
			for (p = 0; p < g.np; p++) {
				const struct tally_revision *cur =
				    tally_state_current(s, p);
				const struct tally_seat_result *r =
				    &s->provinces[p].result;
				uint64_t T = 0;
				if (room[p] == 0)
					continue;
				for (k = 0; k < cur->feed->n_lists; k++)
					T += cur->feed->lists[k].votes;
				for (k = 0; k < cur->feed->n_lists; k++) {
					size_t cc = cur->feed->lists[k].coalition;
					u128 qn = (u128)cur->feed->lists[k].votes *
					    g.seats[p];
					u128 qd = (u128)(2 * (r->seats[k] +
					    extra[p][cc]) + 1) * T;
					int cmp;
					if (need[cc] == 0 || qn == 0)
						continue;
					cmp = bp == SIZE_MAX ? 1 :
					    qcmp(qn, qd, bn, bd);
					if (cmp > 0)
						bp = p, bc = cc, bn = qn, bd = qd,
						    tie = false;
					else if (cmp == 0 && (p == bp ||
					    cc == bc))
						tie = true;
				}
			}
			if (bp == SIZE_MAX)
				break;
			if (tie) {
				ok = false;
				break;
			}
			assigned[bp][g.lev[bp] - room[bp]] = bc;
			extra[bp][bc]++;
			room[bp]--;
			need[bc]--;
		}
		if (ok) {
			cases_compared[3]++;
			for (p = 0; p < g.np; p++)
				for (c = 0; c < g.nc; c++) {
					uint32_t want = 0;
					for (k = 0; k < g.lev[p] - room[p]; k++)
						if (assigned[p][k] == c)
							want++;
					CHECK_EQ_U(tally_levelling_in(s, p, c), want,
					    "levelling seat of c%zu in p%zu "
					    "(case %lu)", c, p, i);
				}
		}
		/* Revisions one province at a time equal a state built from
		 * scratch on the final votes (the incremental order). */
		for (k = 0; k < 4; k++) {
			json_t *b = json_object(), *v = json_object();
			struct tally_error err;
			struct tally_feed *f;
			struct tally_state *fresh;
			char id[32];
			p = (size_t)rng_below(g.np);
			for (c = 0; c < g.nc; c++) {
				g.votes[p][c] = rng_below(6) == 0 ? 0 :
				    rng_below(20000);
				snprintf(id, sizeof(id), "c%zu", c);
				json_object_set_new(v, id, json_integer(
				    (json_int_t)g.votes[p][c]));
			}
			json_object_set_new(b, "revision", json_integer(
			    (json_int_t)k + 2));
			json_object_set_new(b, "votes", v);
			snprintf(id, sizeof(id), "p%zu", p);
			f = tally_feed_parse(e, id, b, "", &err);
			json_decref(b);
			if (f == NULL || tally_state_apply(s, f, "t", &err) == -1)
				abort();
			fresh = gen_state(e, &g);
			CHECK_EQ_U(s->levelling->pending, fresh->levelling->pending,
			    "incremental pending (case %lu)", i);
			for (c = 0; c < g.nc; c++) {
				size_t q;
				CHECK_EQ_U(s->coalitions[c].seats,
				    fresh->coalitions[c].seats, "incremental "
				    "seats of c%zu (case %lu)", c, i);
				for (q = 0; q < g.np; q++)
					CHECK_EQ_U(tally_levelling_in(s, q, c),
					    tally_levelling_in(fresh, q, c),
					    "incremental levelling c%zu p%zu "
					    "(case %lu)", c, q, i);
			}
			tally_state_destroy(fresh);
		}
		tally_state_destroy(s);
		tally_election_destroy(e);
	}
}

int
main(void)
{
	const char *env;
	uint64_t seed = 13;
	unsigned long n = 400;

	/* A fixed seed by default; TALLYD_SEED or TALLY_PROP_SEED another. */
	if ((env = getenv("TALLY_PROP_SEED")) != NULL)
		seed = strtoull(env, NULL, 0);
	if ((env = getenv("TALLYD_SEED")) != NULL && *env != '\0')
		seed = strtoull(env, NULL, 0);
	if ((env = getenv("TALLY_PROP_CASES")) != NULL)
		n = strtoul(env, NULL, 0);
	printf("seed %llu (TALLYD_SEED to repeat), %lu cases per property\n",
	    (unsigned long long)seed,
	    n);
	rng_state = seed;
	prop_quota(n * 10);
	prop_thresholds(n);
	prop_levelling(n);
	printf("q quotas: %lu cases, %lu compared\n", cases_run[0],
	    cases_compared[0]);
	printf("x thresholds: %lu cases, %lu compared\n", cases_run[1],
	    cases_compared[1]);
	printf("m monotone own thresholds: %lu pairs\n", cases_run[2]);
	printf("l levelling: %lu cases, %lu compared\n", cases_run[3],
	    cases_compared[3]);
	CHECK(cases_compared[0] > cases_run[0] / 2, "most quota cases compared");
	CHECK(cases_compared[3] > cases_run[3] / 2, "most levelling cases compared");
	return check_done("tiers-props");
}
