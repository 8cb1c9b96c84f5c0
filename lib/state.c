/* state.c - the live tally of one election (see tally/state.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tally/state.h>
#include <tally/totals.h>

#include "tally-private.h"

static void	levelling(struct tally_state *s, size_t changed);

struct tally_state *
tally_state_create(const struct tally_election *e)
{
	struct tally_state *s;
	size_t nc = e->n_coalitions ? e->n_coalitions : 1, i;
	uint32_t most = 0;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->election = e;
	s->seats_unreported = e->seats_total;
	s->coalitions = calloc(nc, sizeof(*s->coalitions));
	s->provinces = calloc(e->n_provinces ? e->n_provinces : 1,
	    sizeof(*s->provinces));
	s->votes_ = calloc(nc, sizeof(*s->votes_));
	s->excluded_ = calloc(nc, sizeof(*s->excluded_));
	s->open_ = calloc(nc, sizeof(*s->open_));
	s->allocated_ = calloc(e->n_provinces ? e->n_provinces : 1,
	    sizeof(*s->allocated_));
	s->check_ = calloc(1, sizeof(*s->check_));
	s->check_votes_ = calloc(nc, sizeof(*s->check_votes_));
	s->check_excluded_ = calloc(nc, sizeof(*s->check_excluded_));
	s->check_excl_ = calloc(nc, sizeof(*s->check_excl_));
	s->check_pct_ = calloc(nc, sizeof(*s->check_pct_));
	s->check_exempt_ = calloc(nc, sizeof(*s->check_exempt_));
	for (i = 0; i < e->n_provinces; i++)
		if (e->provinces[i].seats > most)
			most = e->provinces[i].seats;
	if (s->check_ == NULL || s->check_votes_ == NULL ||
	    s->check_excluded_ == NULL || s->check_excl_ == NULL ||
	    s->check_pct_ == NULL || s->check_exempt_ == NULL ||
	    tally_seat_result_init(s->check_, nc, most) == -1) {
		free(s->check_);
		s->check_ = NULL;
		tally_state_destroy(s);
		return NULL;
	}
	/* One bounds computer for every province: its scratch is not kept. */
	if (s->coalitions == NULL || s->provinces == NULL || s->votes_ == NULL ||
	    s->excluded_ == NULL || s->open_ == NULL || s->allocated_ == NULL ||
	    tally_bounds_init(&s->bounds_, nc, most) == -1) {
		tally_state_destroy(s);
		return NULL;
	}
	for (i = 0; i < e->n_coalitions; i++)
		s->coalitions[i].exempt = e->coalitions[i].threshold.exempt;
	if (e->levelling.enabled) {
		if ((s->levelling = malloc(sizeof(*s->levelling))) == NULL ||
		    tally_levelling_init(s->levelling, e) == -1) {
			free(s->levelling);
			s->levelling = NULL;
			tally_state_destroy(s);
			return NULL;
		}
		if ((s->levelling_votes_ = calloc(nc,
		    sizeof(*s->levelling_votes_))) == NULL ||
		    (s->levelling_district_ = calloc(nc,
		    sizeof(*s->levelling_district_))) == NULL) {
			tally_state_destroy(s);
			return NULL;
		}
		/* Nothing counted yet: the tier starts undecided. */
		s->levelling->pending = e->levelling.seats;
		s->seats_pending = e->levelling.seats;
		levelling(s, SIZE_MAX);
	}
	return s;
}

void
tally_state_destroy(struct tally_state *s)
{
	size_t i, j;

	if (s == NULL)
		return;
	if (s->calls_free != NULL)
		s->calls_free(s->calls);
	for (i = 0; s->provinces != NULL && i < s->election->n_provinces; i++) {
		struct tally_province_state *ps = &s->provinces[i];
		for (j = 0; j < ps->n_revisions; j++)
			tally_feed_destroy(ps->revisions[j].feed);
		free(ps->revisions);
		for (j = 0; j < ps->n_lots; j++)
			tally_lot_destroy(ps->lots[j]);
		free(ps->lots);
		tally_seat_result_finish(&ps->result);
		free(ps->list_percent_);
		free(ps->exempt_);
		free(ps->bounds.min);
		free(ps->bounds.max);
	}
	for (i = 0; i < s->n_moot; i++)
		tally_lot_destroy(s->moot[i]);
	free(s->moot);
	if (s->levelling != NULL) {
		tally_levelling_finish(s->levelling);
		free(s->levelling);
	}
	free(s->levelling_votes_);
	free(s->levelling_district_);
	free(s->provinces);
	free(s->coalitions);
	free(s->votes_);
	free(s->excluded_);
	free(s->open_);
	free(s->allocated_);
	tally_bounds_finish(&s->bounds_);
	tally_seat_result_finish(s->check_);
	free(s->check_);
	free(s->check_votes_);
	free(s->check_excluded_);
	free(s->check_excl_);
	free(s->check_pct_);
	free(s->check_exempt_);
	free(s);
}

const struct tally_revision *
tally_state_current(const struct tally_state *s, size_t province)
{
	const struct tally_province_state *ps = &s->provinces[province];

	/* Only older revisions are ever kept on disk, never the current. */
	if (ps->n_revisions == 0 || ps->revisions[ps->n_revisions - 1].feed == NULL)
		return NULL;
	return &ps->revisions[ps->n_revisions - 1];
}

static int
grow_revisions(struct tally_province_state *ps)
{
	size_t ncap;
	struct tally_revision *n;

	if (ps->n_revisions < ps->cap_revisions)
		return 0;
	ncap = ps->cap_revisions ? ps->cap_revisions * 2 : 4;
	if ((n = realloc(ps->revisions, ncap * sizeof(*n))) == NULL)
		return -1;
	ps->revisions = n;
	ps->cap_revisions = ncap;
	return 0;
}

int
tally_state_add_stored(struct tally_state *s, size_t province, uint64_t off,
    uint32_t len)
{
	struct tally_province_state *ps = &s->provinces[province];
	struct tally_revision *rev;

	if (grow_revisions(ps) == -1)
		return -1;
	rev = &ps->revisions[ps->n_revisions++];
	memset(rev, 0, sizeof(*rev));
	rev->off = off;
	rev->len = len;
	return 0;
}

void
tally_state_store(struct tally_state *s, size_t province, size_t i,
    uint64_t off, uint32_t len)
{
	struct tally_province_state *ps = &s->provinces[province];
	struct tally_revision *rev = &ps->revisions[i];

	/* The current snapshot is what the seats are computed from. */
	if (i + 1 >= ps->n_revisions)
		return;
	tally_feed_destroy(rev->feed);
	rev->feed = NULL;
	rev->off = off;
	rev->len = len;
}

size_t
tally_state_revisions_in_memory(const struct tally_state *s)
{
	size_t p, i, n = 0;

	for (p = 0; p < s->election->n_provinces; p++)
		for (i = 0; i < s->provinces[p].n_revisions; i++)
			n += s->provinces[p].revisions[i].feed != NULL;
	return n;
}

int
tally_state_check(const struct tally_state *s, const struct tally_feed *f,
    enum tally_check *result, struct tally_error *err)
{
	const struct tally_revision *cur = tally_state_current(s, f->province);

	return tally_feed_check(cur ? cur->feed : NULL, f,
	    s->election->provinces[f->province].id, result, err);
}

int
tally_state_check_post(const struct tally_state *s, const struct tally_feed *f,
    enum tally_check *result, struct tally_error *err)
{
	const struct tally_revision *cur = tally_state_current(s, f->province);
	const struct tally_feed *prev = cur ? cur->feed : NULL;
	const char *pid = s->election->provinces[f->province].id;

	if (tally_feed_check(prev, f, pid, result, err) == -1)
		return -1;
	if (*result != TALLY_CHECK_NEW)
		return 0;
	/*
	 * Only what would change the tally answers to the rules a new post
	 * keeps (a repeat was accepted once already).  The effect is
	 * computed before the feed is journaled (issue 21): a feed the seat
	 * engine fails on is refused, so that no record can stop the daemon
	 * at apply or at replay.
	 */
	if (tally_feed_check_lists(prev, f, pid, err) == -1 ||
	    tally_state_check_apply(s, f, err) == -1)
		return -1;
	return 0;
}

/*
 * Is the seat engine's trial of a snapshot of `province` a function of that
 * snapshot and the province's lots alone?  It is when no national
 * threshold is in force: then no other province's votes move the
 * exclusions (exclusions_after() keeps today's, which nothing changes, and
 * tries no other province), and the province reads no exclusion anyway.
 * What else a trial reads -- the definition, the province's rule and
 * seats, the scratch sizes -- is fixed for the life of the state.
 */
static bool
trial_is_own(const struct tally_state *s, size_t province)
{
	return !s->election->has_national_threshold &&
	    !tally_province_national(&s->election->provinces[province]);
}

/*
 * The check of a post at submission runs the seat engine's trial, and
 * tally_state_apply ran it again once the record was durable (issue 21's
 * safety: a feed the engine fails on never reaches allocate()).  Where the
 * trial is the province's own (trial_is_own), the second run is the first
 * one's repeat as long as nothing changed the province in between: the
 * mark says so.  A mark is a number given once per province; it is kept in
 * the feed and in the province, and the province's is cleared by every
 * apply of it and every lot posted for it.  So tally_state_apply skips the
 * trial only for the very feed whose trial passed last, on an unchanged
 * province; any other feed (one read back from a journal, a snapshot or a
 * cluster's stream: never marked) is tried again.
 */
int
tally_state_check_post_mark(const struct tally_state *s, struct tally_feed *f,
    enum tally_check *result, struct tally_error *err)
{
	struct tally_province_state *ps = &s->provinces[f->province];

	f->trial_ = 0;
	if (tally_state_check_post(s, f, result, err) == -1)
		return -1;
	if (*result == TALLY_CHECK_NEW && trial_is_own(s, f->province))
		ps->trial_ = f->trial_ = ++ps->trials_;
	return 0;
}

/*
 * Does the national threshold decide who takes part in `pv`?  Only where
 * the election's rule is in force: a province's own allocation replaces it
 * as a whole and inherits nothing from it (docs/ELECTION.md, "Province").
 */
bool
tally_province_national(const struct tally_province *pv)
{
	return pv->rule.threshold_of != TALLY_THRESHOLD_NONE &&
	    pv->rule.threshold_scope == TALLY_SCOPE_NATIONAL;
}

void
tally_state_feed_input(const struct tally_state *s, const struct tally_feed *f,
    const bool *excl, struct tally_seat_input *in, uint64_t *votes,
    bool *excluded, struct tally_frac *pct, bool *exempt)
{
	const struct tally_election *e = s->election;
	const struct tally_province *pv = &e->provinces[f->province];
	size_t i;

	for (i = 0; i < f->n_lists; i++) {
		size_t c = f->lists[i].coalition;
		const struct tally_list_threshold *t = &e->coalitions[c].threshold;
		votes[i] = f->lists[i].votes;
		excluded[i] = excl != NULL ? excl[c] : s->coalitions[c].excluded;
		if (pct != NULL) {
			exempt[i] = t->exempt;
			pct[i] = t->set && !t->exempt ? t->percent :
			    (struct tally_frac){ 0, 1 };
		}
	}
	memset(in, 0, sizeof(*in));
	in->rule = &pv->rule;
	in->seats = pv->seats;
	in->n_lists = f->n_lists;
	in->votes = votes;
	in->blank = f->blank;
	in->excluded = tally_province_national(pv) ? excluded : NULL;
	if (e->has_list_thresholds) {
		in->list_percent = pct;
		in->exempt = exempt;
	}
}

bool
tally_state_seat_input(const struct tally_state *s, size_t province,
    struct tally_seat_input *in, uint64_t *votes, bool *excluded)
{
	const struct tally_revision *cur = tally_state_current(s, province);

	if (cur == NULL)
		return false;
	/* The per-list thresholds list_thresholds() filled for cur. */
	tally_state_feed_input(s, cur->feed, NULL, in, votes, excluded, NULL,
	    NULL);
	if (s->election->has_list_thresholds) {
		in->list_percent = s->provinces[province].list_percent_;
		in->exempt = s->provinces[province].exempt_;
	}
	if (s->provinces[province].n_lot_order > 0) {
		in->lot_order = s->provinces[province].lot_order;
		in->n_lot = s->provinces[province].n_lot_order;
	}
	return true;
}

uint32_t
tally_levelling_in(const struct tally_state *s, size_t province,
    size_t coalition)
{
	return tally_levelling_seats_in(s->levelling, province, coalition);
}

/*
 * The seat engine failed where it cannot (see allocate): no seat is given,
 * every one is unfilled, so that the national sums still add up.
 */
static void
engine_failed(struct tally_seat_result *r, uint32_t seats, size_t n_lists)
{
	memset(r->seats, 0, n_lists * sizeof(*r->seats));
	r->allocated = r->pending = 0;
	r->unfilled = seats;
	r->tie = r->tie_resolved = false;
	r->tie_seats = 0;
	r->n_tied = r->n_steps = 0;
}

/*
 * Allocate a province's current snapshot into its (already sized) result,
 * and bound what the uncounted can still change.
 */
static void
allocate(struct tally_state *s, size_t province)
{
	struct tally_province_state *ps = &s->provinces[province];
	const struct tally_feed *f;
	struct tally_seat_input in;
	bool *open = NULL;
	size_t i;

	ps->n_lot_order = 0;
	if (!tally_state_seat_input(s, province, &in, s->votes_, s->excluded_))
		return;
	/*
	 * Sized for this snapshot by tally_state_apply, and the engine was
	 * tried on it by tally_state_check_apply (national re-allocations
	 * included), at apply or, for the same input, at the post's check
	 * (tally_state_check_post_mark): cannot fail.  Were it to, the province shows its seats
	 * unfilled rather than the daemon stopping (issue 21).
	 */
	if (tally_seats_allocate(&in, &ps->result) == -1)
		engine_failed(&ps->result, in.seats, in.n_lists);
	/*
	 * A lot settles the tie it was drawn for (IHEC regulation 12/2018
	 * s.III), and only that one: while the same lists are tied for the
	 * pending seats, the newest lot's order decides them.
	 */
	if (ps->n_lots > 0 && tally_lot_matches(ps->lots[ps->n_lots - 1],
	    tally_state_current(s, province)->feed, &ps->result,
	    ps->lot_order)) {
		ps->n_lot_order = ps->lots[ps->n_lots - 1]->n;
		tally_state_seat_input(s, province, &in, s->votes_,
		    s->excluded_);
		if (tally_seats_allocate(&in, &ps->result) == -1) {
			/* The lot is not taken: back to the result without
			 * it, which the engine gave a moment ago. */
			ps->n_lot_order = 0;
			tally_state_seat_input(s, province, &in, s->votes_,
			    s->excluded_);
			if (tally_seats_allocate(&in, &ps->result) == -1)
				engine_failed(&ps->result, in.seats,
				    in.n_lists);
		}
	}
	ps->has_result = true;
	/* The version this change will be published as (see state.h). */
	ps->changed = s->version + 1;
	if (!ps->listed_) {
		ps->listed_ = true;
		s->allocated_[s->n_allocated_++] = province;
	}
	f = tally_state_current(s, province)->feed;
	ps->uncounted_from = tally_uncounted_bound(
	    &s->election->provinces[province], f, &ps->uncounted);
	if (tally_province_national(&s->election->provinces[province])) {
		/* Per list, whether its national fate is still open. */
		open = s->open_;
		for (i = 0; i < f->n_lists; i++)
			open[i] = s->coalitions[f->lists[i].coalition].open;
	}
	/* Sized for every province and list: cannot fail. */
	if (tally_bounds_compute(&in, &ps->result,
	    ps->uncounted_from != TALLY_UNCOUNTED_UNKNOWN, ps->uncounted, open,
	    &s->bounds_) == -1) {
		/* Cannot happen (sized for every province); were it to, claim
		 * nothing rather than stop: min 0, max every seat. */
		for (i = 0; i < f->n_lists; i++) {
			ps->bounds.min[i] = 0;
			ps->bounds.max[i] = in.seats;
		}
		ps->bounds.known = false;
		ps->bounds.exact = false;
		ps->bounds.settled = false;
	} else {
		memcpy(ps->bounds.min, s->bounds_.min,
		    f->n_lists * sizeof(uint32_t));
		memcpy(ps->bounds.max, s->bounds_.max,
		    f->n_lists * sizeof(uint32_t));
		ps->bounds.known = s->bounds_.known;
		ps->bounds.exact = s->bounds_.exact;
		ps->bounds.settled = s->bounds_.settled;
	}
	/*
	 * A province with levelling seats is not settled while the tier can
	 * still move them (bounds cover district seats; the tier is national
	 * and not bounded here): never claim what is not proven.
	 */
	if (s->election->provinces[province].levelling_seats > 0) {
		ps->bounds.settled = false;
		ps->bounds.exact = false;
	}
}

static void
add(uint64_t *x, uint64_t v, bool plus)
{
	*x = plus ? *x + v : *x - v;
}

/* Add (or take away) a province's current snapshot from the national totals. */
static void
contribute(struct tally_state *s, size_t province, bool plus)
{
	struct tally_province_state *ps = &s->provinces[province];
	const struct tally_revision *cur = tally_state_current(s, province);
	const struct tally_feed *f;
	const struct tally_seat_result *r = &ps->result;
	uint64_t sum = 0;
	size_t i;

	if (cur == NULL)
		return;
	f = cur->feed;
	for (i = 0; i < f->n_lists; i++) {
		struct tally_coalition_total *c = &s->coalitions[f->lists[i].coalition];
		add(&c->votes, f->lists[i].votes, plus);
		add(&c->seats, r->seats[i], plus);
		add(&c->district_seats, r->seats[i], plus);
		add(&c->seats_min, ps->bounds.min[i], plus);
		add(&c->seats_max, ps->bounds.max[i], plus);
		c->provinces = plus ? c->provinces + 1 : c->provinces - 1;
		sum += f->lists[i].votes;
	}
	if (r->pending > 0)
		for (i = 0; i < r->n_tied; i++)
			add(&s->coalitions[f->lists[r->tied[i]].coalition].tied_for,
			    r->pending, plus);
	add(&s->valid, sum + f->blank, plus);
	add(&s->blank, f->blank, plus);
	add(&s->invalid, f->invalid, plus);
	add(&s->seats_allocated, r->allocated, plus);
	add(&s->seats_pending, r->pending, plus);
	if (f->has_stations) {
		add(&s->stations_reporting, f->stations_reporting, plus);
		add(&s->stations_total, f->stations_total, plus);
	}
	s->provinces_reporting += plus ? 1 : (size_t)-1;
	add(&s->seats_unreported, s->election->provinces[province].seats, !plus);
	if (ps->bounds.settled)
		s->provinces_settled += plus ? 1 : (size_t)-1;
	if (f->status == TALLY_STATUS_FINAL)
		s->provinces_final += plus ? 1 : (size_t)-1;
}

/*
 * A national threshold excludes a coalition everywhere when its national
 * share is below the threshold.  Re-decide after every change; when a
 * coalition crosses it, every reporting province is re-allocated (and true
 * is returned).
 */
static bool
national_threshold(struct tally_state *s)
{
	const struct tally_election *e = s->election;
	const struct tally_rule *rule = &e->rule;
	unsigned __int128 base = 0, U = 0;
	bool changed = false, known = true;
	size_t i;

	if (!e->has_national_threshold)
		return false;
	for (i = 0; i < e->n_coalitions; i++)
		base += s->coalitions[i].votes;
	if (rule->threshold_of == TALLY_THRESHOLD_VALID)
		base += s->blank;
	/*
	 * What is still uncounted anywhere can move a coalition across the
	 * national threshold; with no bound somewhere, every fate is open.
	 */
	for (i = 0; i < e->n_provinces && known; i++) {
		const struct tally_revision *cur = tally_state_current(s, i);
		uint64_t u;
		if (tally_uncounted_bound(&e->provinces[i], cur ? cur->feed :
		    NULL, &u) == TALLY_UNCOUNTED_UNKNOWN)
			known = false;
		U += u;
	}
	for (i = 0; i < e->n_coalitions; i++) {
		struct tally_coalition_total *c = &s->coalitions[i];
		const struct tally_list_threshold *own =
		    &e->coalitions[i].threshold;
		struct tally_frac pct = own->set && !own->exempt ?
		    own->percent : rule->threshold_percent;
		unsigned __int128 pnum = pct.num;
		unsigned __int128 pden100 = (unsigned __int128)100 * pct.den;
		unsigned __int128 l = (unsigned __int128)c->votes * pden100;
		/*
		 * Kodeks wyborczy art. 196: 5 percent, coalition committees
		 * 8 percent (a coalition's own percent); art. 197 par. 2:
		 * national minorities exempt.
		 */
		bool ex = !own->exempt && l < pnum * base, open;
		/* In even if all U goes elsewhere; out even if all U is its. */
		if (own->exempt)
			open = false;
		else if (!known)
			open = true;
		else if (ex)
			open = ((unsigned __int128)c->votes + U) * pden100 >=
			    pnum * (base + U);
		else
			open = l < pnum * (base + U);
		if (ex != c->excluded || open != c->open) {
			c->excluded = ex;
			c->open = open;
			changed = true;
		}
	}
	if (!changed)
		return false;
	s->wide_change = true;
	for (i = 0; i < e->n_provinces; i++) {
		if (tally_state_current(s, i) == NULL)
			continue;
		contribute(s, i, false);
		allocate(s, i);
		contribute(s, i, true);
	}
	return true;
}

/* The levelling tier's view of a province: its snapshot and its seats. */
static const struct tally_feed *
levelling_province(const void *ctx, size_t p, const uint32_t **seats)
{
	const struct tally_state *s = ctx;
	const struct tally_revision *cur = tally_state_current(s, p);

	*seats = s->provinces[p].result.seats;
	return cur ? cur->feed : NULL;
}

/*
 * Re-compute the levelling tier and move the coalitions' total seats by
 * the difference in their levelling seats.  The tier is handed what it
 * reads (tally_levelling_input) instead of the state, so that it depends
 * on nothing above it.
 */
static void
levelling(struct tally_state *s, size_t changed)
{
	struct tally_levelling_result *r = s->levelling;
	struct tally_levelling_input in;
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < s->election->n_coalitions; i++) {
		s->coalitions[i].seats -= s->coalitions[i].levelling_seats;
		s->levelling_votes_[i] = s->coalitions[i].votes;
		s->levelling_district_[i] = s->coalitions[i].district_seats;
	}
	s->seats_allocated -= s->election->levelling.seats - r->pending;
	s->seats_pending -= r->pending;
	in.election = s->election;
	in.votes = s->levelling_votes_;
	in.district_seats = s->levelling_district_;
	in.blank = s->blank;
	in.province = levelling_province;
	in.ctx = s;
	(void)tally_levelling_compute(&in, r, changed);
	/*
	 * Any province's levelling seats may have moved: its views changed
	 * (a finer test would compare the assignment before and after).
	 */
	for (i = 0; i < s->election->n_provinces; i++)
		if (s->election->provinces[i].levelling_seats > 0)
			s->provinces[i].changed = s->version + 1;
	s->wide_change = true;
	for (i = 0; i < s->election->n_coalitions; i++) {
		s->coalitions[i].levelling_seats = r->seats[i];
		s->coalitions[i].seats += r->seats[i];
	}
	s->seats_allocated += s->election->levelling.seats - r->pending;
	s->seats_pending += r->pending;
}

/* Fill a province's per-list thresholds for its current snapshot. */
static void
list_thresholds(struct tally_state *s, const struct tally_feed *f)
{
	struct tally_province_state *ps = &s->provinces[f->province];
	struct tally_seat_input in;

	/* votes and excluded are scratch here (allocate() fills them again). */
	tally_state_feed_input(s, f, NULL, &in, s->votes_, s->excluded_,
	    ps->list_percent_, ps->exempt_);
}

/*
 * Allocate `province` for the snapshot f in a result of its own, with the
 * national exclusions `excl` (per coalition), as allocate() would: the same
 * sizes, the lot in force.  0, -1 (err set: `internal` or `out_of_memory`).
 */
static int
trial(const struct tally_state *s, const struct tally_feed *f,
    const bool *excl, struct tally_error *err)
{
	const struct tally_election *e = s->election;
	const struct tally_province *pv = &e->provinces[f->province];
	const struct tally_province_state *ps = &s->provinces[f->province];
	size_t order[TALLY_LOT_MAX];
	struct tally_seat_result *r = s->check_;
	struct tally_seat_input in;

	/* The input allocate() will build (tally_state_seat_input). */
	tally_state_feed_input(s, f, excl, &in, s->check_votes_,
	    s->check_excluded_, s->check_pct_, s->check_exempt_);
	if (tally_seats_allocate(&in, r) == -1)
		goto broken;
	if (ps->n_lots > 0 && ps->lots[ps->n_lots - 1]->n <= TALLY_LOT_MAX &&
	    tally_lot_matches(ps->lots[ps->n_lots - 1], f, r, order)) {
		in.lot_order = order;
		in.n_lot = ps->lots[ps->n_lots - 1]->n;
		if (tally_seats_allocate(&in, r) == -1)
			goto broken;
	}
	return 0;
broken:
	return tally_error_set(err, TALLY_ERROR_INTERNAL, "internal", NULL,
	    "the seat engine failed on revision %llu of %s (%s, %u seats, "
	    "%zu lists): an internal error, nothing was applied; the "
	    "operators have the details in the log", (unsigned long long)
	    f->revision, pv->id, tally_method_name(pv->rule.method),
	    pv->seats, f->n_lists);
}

/*
 * The national exclusions once f replaces its province's snapshot, decided
 * as national_threshold() decides them; true when any differs from today's.
 */
static bool
exclusions_after(const struct tally_state *s, const struct tally_feed *f,
    bool *excl)
{
	const struct tally_election *e = s->election;
	const struct tally_rule *rule = &e->rule;
	const struct tally_revision *cur = tally_state_current(s, f->province);
	const struct tally_feed *old = cur ? cur->feed : NULL;
	unsigned __int128 base = 0;
	bool changed = false;
	size_t i;

	for (i = 0; i < e->n_coalitions; i++) {
		excl[i] = s->coalitions[i].excluded;
		s->votes_[i] = s->coalitions[i].votes;
	}
	if (!e->has_national_threshold)
		return false;
	for (i = 0; old != NULL && i < old->n_lists; i++)
		s->votes_[old->lists[i].coalition] -= old->lists[i].votes;
	for (i = 0; i < f->n_lists; i++)
		s->votes_[f->lists[i].coalition] += f->lists[i].votes;
	for (i = 0; i < e->n_coalitions; i++)
		base += s->votes_[i];
	if (rule->threshold_of == TALLY_THRESHOLD_VALID)
		base += s->blank - (old ? old->blank : 0) + f->blank;
	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_list_threshold *own =
		    &e->coalitions[i].threshold;
		struct tally_frac pct = own->set && !own->exempt ?
		    own->percent : rule->threshold_percent;
		bool ex = !own->exempt && (unsigned __int128)s->votes_[i] * 100 *
		    pct.den < (unsigned __int128)pct.num * base;
		if (ex != excl[i])
			changed = true;
		excl[i] = ex;
	}
	return changed;
}

int
tally_state_check_apply(const struct tally_state *s,
    const struct tally_feed *f, struct tally_error *err)
{
	const struct tally_election *e = s->election;
	bool *excl = s->check_excl_;
	size_t p;
	int rc = 0;

	/* Sized for every province's lists (one list per coalition). */
	if (f->n_lists > e->n_coalitions)
		return tally_error_set(err, TALLY_ERROR_INTERNAL, "internal",
		    NULL, "a snapshot of %s with %zu lists, more than the %zu "
		    "coalitions", e->provinces[f->province].id, f->n_lists,
		    e->n_coalitions);
	/*
	 * When f moves a coalition across the national threshold, apply
	 * re-allocates every reporting province: try each of them too.
	 */
	if (exclusions_after(s, f, excl)) {
		for (p = 0; p < e->n_provinces && rc == 0; p++) {
			const struct tally_revision *cur =
			    tally_state_current(s, p);
			if (p != f->province && cur != NULL)
				rc = trial(s, cur->feed, excl, err);
		}
	}
	if (rc == 0)
		rc = trial(s, f, excl, err);
	return rc;
}

int
tally_state_apply(struct tally_state *s, struct tally_feed *f,
    const char *received_at, struct tally_error *err)
{
	const struct tally_province *pv = &s->election->provinces[f->province];
	struct tally_province_state *ps = &s->provinces[f->province];
	struct tally_seat_result fresh;
	struct tally_seat_bounds fresh_bounds;
	struct tally_revision *rev;
	bool fresh_needed = true;
	bool tried = f->trial_ != 0 && f->trial_ == ps->trial_ &&
	    trial_is_own(s, f->province);

	/* Whatever happens next, no earlier trial speaks for this province. */
	ps->trial_ = 0;
	f->trial_ = 0;
	/*
	 * The seat engine first, in a result of its own: a feed it cannot
	 * allocate is refused with the state untouched (issue 21: one such
	 * feed used to abort the daemon, at every restart too).  Unless its
	 * check at submission tried this very feed on this very province,
	 * nothing of which changed since (tally_state_check_post_mark).
	 */
	if (!tried && tally_state_check_apply(s, f, err) == -1) {
		tally_feed_destroy(f);
		return -1;
	}
	/* Take every allocation first, so that failure leaves no trace. */
	if (grow_revisions(ps) == -1)
		goto nomem;
	if (s->election->has_list_thresholds && ps->cap_lists_ < f->n_lists) {
		struct tally_frac *np = realloc(ps->list_percent_,
		    f->n_lists * sizeof(*np));
		bool *ne;
		if (np == NULL)
			goto nomem;
		ps->list_percent_ = np;
		if ((ne = realloc(ps->exempt_, f->n_lists * sizeof(*ne))) == NULL)
			goto nomem;
		ps->exempt_ = ne;
		ps->cap_lists_ = f->n_lists;
	}
	/* The province's result arrays are reused when they are big enough. */
	if (ps->has_result && ps->result.cap_lists >= f->n_lists &&
	    ps->result.cap_seats >= pv->seats)
		fresh_needed = false;
	else if (tally_seat_result_init(&fresh, f->n_lists, pv->seats) == -1)
		goto nomem;
	else {
		size_t nl = f->n_lists ? f->n_lists : 1;
		fresh_bounds.min = calloc(nl, sizeof(uint32_t));
		fresh_bounds.max = calloc(nl, sizeof(uint32_t));
		if (fresh_bounds.min == NULL || fresh_bounds.max == NULL) {
			free(fresh_bounds.min);
			free(fresh_bounds.max);
			tally_seat_result_finish(&fresh);
			goto nomem;
		}
	}

	contribute(s, f->province, false);
	if (fresh_needed) {
		tally_seat_result_finish(&ps->result);
		ps->result = fresh;
		free(ps->bounds.min);
		free(ps->bounds.max);
		ps->bounds.min = fresh_bounds.min;
		ps->bounds.max = fresh_bounds.max;
	}
	rev = &ps->revisions[ps->n_revisions++];
	memset(rev, 0, sizeof(*rev));
	/* The version this apply becomes (the caller bumps once per request),
	 * unless a journal or snapshot read back says which it was. */
	if (f->version == 0)
		f->version = s->version + 1;
	rev->version = f->version;
	rev->feed = f;
	/* As snprintf "%s" would, cut to the field (without its cost). */
	if (received_at != NULL) {
		size_t n = strnlen(received_at, sizeof(rev->received_at) - 1);
		memcpy(rev->received_at, received_at, n);
		rev->received_at[n] = '\0';
	}
	/* RFC 3339 UTC strings of one form order as their times do. */
	if (strcmp(rev->received_at, s->updated_at) > 0)
		memcpy(s->updated_at, rev->received_at, sizeof(s->updated_at));
	if (s->election->has_list_thresholds)
		list_thresholds(s, f);
	allocate(s, f->province);
	contribute(s, f->province, true);
	/* Every province re-allocated: the levelling tier re-reads them all. */
	levelling(s, national_threshold(s) ? SIZE_MAX : f->province);
	return 0;
nomem:
	tally_feed_destroy(f);
	return tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
	    "out of memory; nothing was applied, try again");
}

void
tally_state_bump(struct tally_state *s)
{
	s->version++;
}

const struct tally_lot *
tally_state_lot(const struct tally_state *s, size_t province, bool *in_force)
{
	const struct tally_province_state *ps = &s->provinces[province];

	*in_force = ps->n_lot_order > 0;
	return ps->n_lots > 0 ? ps->lots[ps->n_lots - 1] : NULL;
}

int
tally_state_lot_check(const struct tally_state *s, const struct tally_lot *lot,
    enum tally_check *result, struct tally_error *err)
{
	const struct tally_province_state *ps = &s->provinces[lot->province];
	const struct tally_revision *cur = tally_state_current(s, lot->province);
	const char *pid = s->election->provinces[lot->province].id;
	const struct tally_seat_result *r = &ps->result;
	uint64_t have = cur ? cur->feed->revision : 0;
	size_t order[TALLY_LOT_MAX], i, j;
	char ptr[32];

	if (lot->revision < have)
		return tally_error_set(err, TALLY_ERROR_CONFLICT,
		    "stale_revision", "/revision", "revision %llu of %s is not "
		    "the current one: the lot must be drawn for revision %llu",
		    (unsigned long long)lot->revision, pid,
		    (unsigned long long)have);
	if (lot->revision > have)
		return tally_error_set(err, TALLY_ERROR_INVALID,
		    "unknown_revision", "/revision", "%s has no revision %llu "
		    "(its current revision is %llu)", pid,
		    (unsigned long long)lot->revision, (unsigned long long)have);
	for (i = 0; i < lot->n; i++) {
		snprintf(ptr, sizeof(ptr), "/order/%zu", i);
		if ((order[i] = tally_feed_list_index(cur->feed, lot->order[i])) == SIZE_MAX)
			return tally_error_set(err, TALLY_ERROR_INVALID,
			    "unknown_list", ptr, "list %s has no votes in "
			    "revision %llu of %s", lot->order[i],
			    (unsigned long long)have, pid);
		for (j = 0; j < i; j++)
			if (order[j] == order[i])
				return tally_error_set(err, TALLY_ERROR_INVALID,
				    "duplicate_list", ptr, "list %s is named "
				    "twice", lot->order[i]);
	}
	if (ps->n_lot_order > 0) {
		/* A lot is in force for this very tie. */
		const struct tally_lot *in = ps->lots[ps->n_lots - 1];
		bool same = in->n == lot->n;
		for (i = 0; same && i < lot->n; i++)
			same = strcmp(in->order[i], lot->order[i]) == 0;
		if (same) {
			*result = TALLY_CHECK_DUPLICATE;
			return 0;
		}
		return tally_error_set(err, TALLY_ERROR_CONFLICT,
		    "lot_conflict", "/order", "the tie of %s at revision %llu "
		    "was already settled by another lot (posted at %s)", pid,
		    (unsigned long long)have, in->received_at);
	}
	if (r->pending == 0)
		return tally_error_set(err, TALLY_ERROR_CONFLICT,
		    "no_tie_pending", NULL, "%s has no seat pending a lot at "
		    "revision %llu", pid, (unsigned long long)have);
	if (!tally_lot_matches(lot, cur->feed, r, order)) {
		char names[200];
		size_t o = 0;
		names[0] = '\0';
		for (i = 0; i < r->n_tied && o < sizeof(names); i++) {
			int w = snprintf(names + o, sizeof(names) - o, "%s%s",
			    i ? ", " : "", cur->feed->lists[r->tied[i]].id);
			o = w < 0 ? sizeof(names) : o + (size_t)w;
		}
		return tally_error_set(err, TALLY_ERROR_INVALID,
		    "lists_not_tied", "/order", "the order must name exactly "
		    "the lists tied for the %u pending seat%s of %s: %s",
		    r->pending, r->pending == 1 ? "" : "s", pid, names);
	}
	*result = TALLY_CHECK_NEW;
	return 0;
}

int
tally_state_lot_apply(struct tally_state *s, struct tally_lot *lot,
    struct tally_error *err)
{
	struct tally_province_state *ps = &s->provinces[lot->province];
	struct tally_lot **n;

	if ((n = realloc(ps->lots, (ps->n_lots + 1) * sizeof(*n))) == NULL) {
		tally_lot_destroy(lot);
		return tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory",
		    NULL, "out of memory; nothing was applied, try again");
	}
	ps->lots = n;
	ps->lots[ps->n_lots++] = lot;
	ps->trial_ = 0;		/* a trial read the lots before this one */
	if (lot->version == 0)
		lot->version = s->version + 1;
	if (strcmp(lot->received_at, s->updated_at) > 0)
		memcpy(s->updated_at, lot->received_at, sizeof(s->updated_at));
	if (tally_state_current(s, lot->province) == NULL)
		return 0;
	contribute(s, lot->province, false);
	allocate(s, lot->province);
	contribute(s, lot->province, true);
	/*
	 * The seat the lot gave moves the national figures as a feed does:
	 * the levelling tier reads every district result, so it is computed
	 * again (else a lot, its replay and a snapshot would hold a tier that
	 * a fresh computation of the same log never gives).
	 */
	levelling(s, national_threshold(s) ? SIZE_MAX : lot->province);
	return 0;
}

int
tally_state_lot_keep_moot(struct tally_state *s, struct tally_lot *lot)
{
	struct tally_lot **n;

	if ((n = realloc(s->moot, (s->n_moot + 1) * sizeof(*n))) == NULL) {
		tally_lot_destroy(lot);
		return -1;
	}
	s->moot = n;
	if (lot->version == 0)
		lot->version = s->version + 1;
	s->moot[s->n_moot++] = lot;
	return 0;
}

struct tally_state *
tally_state_totals_copy(const struct tally_state *s)
{
	size_t n = s->election->n_coalitions;
	struct tally_state *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	if ((t->coalitions = malloc((n ? n : 1) * sizeof(*t->coalitions))) ==
	    NULL) {
		free(t);
		return NULL;
	}
	memcpy(t->coalitions, s->coalitions, n * sizeof(*t->coalitions));
	/* Every field the ranking reads; the provinces stay NULL, so a
	 * renderer that reads more fails at once rather than lie. */
	t->election = s->election;
	t->version = s->version;
	memcpy(t->updated_at, s->updated_at, sizeof(t->updated_at));
	t->valid = s->valid;
	t->blank = s->blank;
	t->invalid = s->invalid;
	t->seats_allocated = s->seats_allocated;
	t->seats_pending = s->seats_pending;
	t->provinces_reporting = s->provinces_reporting;
	t->provinces_final = s->provinces_final;
	t->stations_reporting = s->stations_reporting;
	t->stations_total = s->stations_total;
	t->provinces_settled = s->provinces_settled;
	t->seats_unreported = s->seats_unreported;
	return t;
}

void
tally_state_totals_destroy(struct tally_state *t)
{
	if (t == NULL)
		return;
	free(t->coalitions);
	free(t);
}
