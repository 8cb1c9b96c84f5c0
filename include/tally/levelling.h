/*
 * levelling.h - the compensatory (levelling) tier of a two-tier election.
 *
 * Given every province's district seats, the national apportionment decides
 * how many levelling seats each coalition gets, and the assignment decides
 * in which province each of them is seated.  The rule is data
 * (struct tally_levelling in the definition); this is the one engine for it.
 * Exact integer arithmetic throughout.
 */
#ifndef TALLY_LEVELLING_H
#define TALLY_LEVELLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/election.h>
#include <tally/seats.h>

struct tally_feed;

/*
 * What the tier is computed from, all borrowed: the national figures and,
 * province by province, the current snapshot and its district seats.  The
 * state fills it (tally/state.h); the tier reads nothing else, so that it
 * sits below the state, not beside it.
 */
struct tally_levelling_input {
	const struct tally_election *election;
	const uint64_t	*votes;		/* per coalition: national list votes */
	const uint64_t	*district_seats;	/* per coalition: district seats */
	uint64_t	 blank;		/* national blank ballots */
	/*
	 * Province p's current snapshot (NULL before its first feed) and, in
	 * *seats, its district seats per list of that snapshot.
	 */
	const struct tally_feed *(*province)(const void *ctx, size_t p,
			    const uint32_t **seats);
	const void	*ctx;
};

/* One levelling seat assigned, in the order the assignment awards them. */
struct tally_levelling_step {
	size_t		 province;
	size_t		 list;		/* index in the province's current feed */
	size_t		 coalition;
	uint64_t	 votes;		/* the list's votes in the province */
	uint32_t	 district;	/* its district seats there */
	uint64_t	 div_num;	/* the divisor d(district) = num/den */
	uint64_t	 div_den;
	uint64_t	 prov_votes;	/* scale: province votes ... */
	uint32_t	 prov_seats;	/* ... per district seat (1/1 without scale) */
	uint64_t	 key_;		/* private: floor(quotient * 2^32), saturated */
};

/*
 * The tier's outcome.  Per coalition arrays have n_coalitions entries;
 * `assigned` has one entry per levelling seat of the election, province by
 * province (offset[p] .. offset[p] + levelling_seats of p), holding the
 * coalition seated there or SIZE_MAX while unassigned.
 */
struct tally_levelling_result {
	bool		 tie;		/* the national apportionment is tied: */
	uint32_t	 pending;	/* levelling seats not decided (tie) */
	uint32_t	 unassigned;	/* decided but not yet seated in a province */
	uint32_t	 rounds;	/* apportionments computed */
	uint64_t	 apportioned;	/* seats shared in the last round */
	uint64_t	 threshold_base;	/* votes the threshold is a share of */
	bool		*eligible;	/* at or above the tier's threshold */
	uint32_t	*set_aside;	/* round it was set aside in (0: never) */
	uint32_t	*share;		/* national share in its last round */
	uint32_t	*district;	/* district seats (firm) */
	uint32_t	*seats;		/* levelling seats */
	size_t		*assigned;
	size_t		*offset;	/* n_provinces + 1 entries */
	struct tally_levelling_step *steps;
	size_t		 n_steps;
	bool		 assign_tie;	/* equal quotients at a cut: rest unassigned */
	/* Private scratch. */
	struct tally_seat_result national_;
	uint64_t	*votes_;
	bool		*excluded_;
	uint32_t	*need_;
	uint32_t	*room_;
	uint32_t	*room0_;	/* levelling seats per province */
	uint32_t	*floor_;
	/* Assignment candidates, a block per province (every list with votes,
	 * once per levelling seat of the province), and all of them in the
	 * order of their quotients, kept across calls: a change to one
	 * province re-sorts only its block and merges it back. */
	struct tally_levelling_step *cand_;
	size_t		*blk_off_;	/* n_provinces + 1 */
	size_t		*blk_n_;
	uint32_t	*ord_, *ord2_;
	size_t		 n_ord_;
	bool		 built_;
	bool		 eligible_changed_;	/* candidates re-built from scratch */
};

/* Size a result for `e` (levelling enabled). 0, or -1 (ENOMEM). */
int	tally_levelling_init(struct tally_levelling_result *r,
	    const struct tally_election *e);
void	tally_levelling_finish(struct tally_levelling_result *r);

/*
 * Compute the tier from `in`: the current district seats and votes.
 * `changed` is the one province whose snapshot or district seats changed
 * since the last call, or SIZE_MAX when any may have.  Returns 0: it
 * allocates nothing (tally_levelling_init sized everything).  Invariant,
 * checked in every build: the coalitions' levelling seats plus `pending`
 * equal the tier's size.  Beyond the seat engine's bounds (more than
 * TALLY_SEATS_MAX seats in all, or 10^12 votes for one coalition) every
 * levelling seat stays pending rather than guessed.
 */
int	tally_levelling_compute(const struct tally_levelling_input *in,
	    struct tally_levelling_result *r, size_t changed);

/* Levelling seats of `coalition` assigned to `province` in r. */
uint32_t tally_levelling_seats_in(const struct tally_levelling_result *r,
	    size_t province, size_t coalition);

#endif
