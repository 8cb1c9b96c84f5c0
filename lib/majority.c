/*
 * majority.c - the fewest uncounted ballots that would decide a coalition's
 * majority (see tally/majority.h).
 *
 * Provinces are independent: each one's curve (the fewest ballots for its
 * list to gain, or to lose, s firm seats; tally_bounds_costs, exact for
 * divisor methods) is combined nationally by a knapsack over seats: the
 * cheapest way to gain the seats missing to the majority, or to take away
 * the seats above it.  The curves need not be convex (a seat's price
 * depends on rounding and on which rival's quotient is next), so taking the
 * cheapest seat first would not be exact.
 */
#include <stdlib.h>
#include <string.h>

#include <tally/bounds.h>
#include <tally/majority.h>

#define INF	UINT64_MAX

/* best[e] <- min over s of best[e - s] + cost[s - 1] (in place, e desc). */
static void
knapsack_add(uint64_t *best, uint32_t need, const uint64_t *cost, uint32_t n)
{
	uint32_t e, s;

	for (e = need; e >= 1; e--)
		for (s = 1; s <= n && s <= e; s++) {
			/* Gaining more than needed counts as reaching e. */
			if (cost[s - 1] == INF || best[e - s] == INF)
				continue;
			if (best[e - s] + cost[s - 1] < best[e])
				best[e] = best[e - s] + cost[s - 1];
		}
	/* More seats than needed from one province also reach `need`. */
	for (s = need + 1; s <= n; s++)
		if (cost[s - 1] != INF && cost[s - 1] < best[need])
			best[need] = cost[s - 1];
}

int
tally_majority_votes(const struct tally_state *s, size_t c, uint64_t *to_win,
    uint64_t *to_lose, bool *exact)
{
	const struct tally_election *e = s->election;
	const struct tally_coalition_total *t = &s->coalitions[c];
	uint64_t m = e->seats_total / 2 + 1, max_total;
	uint64_t *win = NULL, *lose = NULL, *gain = NULL, *loss = NULL;
	uint64_t *votes = NULL;
	bool *excl = NULL;
	struct tally_bounds b;
	uint32_t need_win, need_lose, most = 0;
	size_t p, i;
	int rc = -1;

	*to_win = *to_lose = INF;
	*exact = !e->has_national_threshold;
	max_total = t->seats_max + s->seats_unreported;
	/* A levelling tier is not bounded here: no figure that pretends. */
	if (e->levelling.enabled)
		return 1;
	if (t->seats_min >= m || max_total < m)
		return 1;
	need_win = t->seats >= m ? 0 : (uint32_t)(m - t->seats);
	need_lose = t->seats < m ? 0 : (uint32_t)(t->seats - m + 1);
	for (p = 0; p < e->n_provinces; p++)
		if (e->provinces[p].seats > most)
			most = e->provinces[p].seats;
	memset(&b, 0, sizeof(b));
	win = calloc((size_t)need_win + 1, sizeof(*win));
	lose = calloc((size_t)need_lose + 1, sizeof(*lose));
	gain = calloc(most, sizeof(*gain));
	loss = calloc(most, sizeof(*loss));
	votes = calloc(e->n_coalitions, sizeof(*votes));
	excl = calloc(e->n_coalitions, sizeof(*excl));
	if (win == NULL || lose == NULL || gain == NULL || loss == NULL ||
	    votes == NULL || excl == NULL ||
	    tally_bounds_init(&b, e->n_coalitions, most) == -1)
		goto out;
	for (i = 1; i <= need_win; i++)
		win[i] = INF;
	for (i = 1; i <= need_lose; i++)
		lose[i] = INF;
	if (s->seats_unreported > 0)
		*exact = false;
	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_province_state *ps = &s->provinces[p];
		const struct tally_revision *cur = tally_state_current(s, p);
		struct tally_seat_input in;
		size_t l = SIZE_MAX;
		if (cur == NULL)
			continue;
		if (ps->uncounted_from == TALLY_UNCOUNTED_UNKNOWN) {
			*exact = false;
			continue;
		}
		for (i = 0; i < cur->feed->n_lists; i++)
			if (cur->feed->lists[i].coalition == c)
				l = i;
		if (l == SIZE_MAX || ps->uncounted == 0)
			continue;
		if (!tally_state_seat_input(s, p, &in, votes, excl))
			continue;
		switch (tally_bounds_costs(&in, &ps->result, l, ps->uncounted,
		    &b, gain, loss, e->provinces[p].seats)) {
		case 0:
			break;
		case 1:
			*exact = false;	/* largest remainder: no curve */
			continue;
		default:
			goto out;
		}
		if (need_win > 0)
			knapsack_add(win, need_win, gain, e->provinces[p].seats);
		if (need_lose > 0)
			knapsack_add(lose, need_lose, loss, e->provinces[p].seats);
	}
	*to_win = win[need_win];
	*to_lose = lose[need_lose];
	rc = 0;
out:
	tally_bounds_finish(&b);
	free(win);
	free(lose);
	free(gain);
	free(loss);
	free(votes);
	free(excl);
	return rc;
}
