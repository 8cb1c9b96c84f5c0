/*
 * seats.h - exact seat allocation for one province.
 *
 * Pure functions: integer arithmetic only, quotients compared by
 * cross-multiplication in 128 bits, no floating point in any decision.
 *
 * Ties for the last seat(s) are never broken silently: under the `votes` rule
 * the list with more votes wins and only lists equal in votes as well remain
 * tied; under `lot` every tied list remains tied.  Seats that remain tied are
 * `pending` unless the caller supplies a lot order.
 */
#ifndef TALLY_SEATS_H
#define TALLY_SEATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/election.h>

#define TALLY_VOTES_MAX		1000000000000ULL	/* 10^12 per list */

/* An exact quotient: votes * den / num (num > 0). */
struct tally_quot {
	uint64_t votes;
	uint64_t num;
	uint64_t den;
};

enum tally_threshold_status {
	TALLY_TS_NONE,			/* the rule has no threshold */
	TALLY_TS_PASSED,
	TALLY_TS_FAILED,		/* below the province threshold */
	TALLY_TS_EXCLUDED,		/* excluded by the caller (national threshold) */
	TALLY_TS_EXEMPT,		/* no threshold applies to it */
};

struct tally_seat_input {
	const struct tally_rule	*rule;
	uint32_t		 seats;
	size_t			 n_lists;
	const uint64_t		*votes;		/* n_lists entries, each <= TALLY_VOTES_MAX */
	uint64_t		 blank;
	const bool		*excluded;	/* optional; n_lists entries */
	/* Optional, n_lists entries each: a list's own threshold percent
	 * ({0, 1}: the rule's), and lists no threshold applies to. */
	const struct tally_frac	*list_percent;
	const bool		*exempt;
	/* Optional, divisor methods: seats each list is known to win before
	 * any other (every one of its first floor_seats[i] quotients is above
	 * the cut; the caller proves it).  They are given at once, without
	 * steps, so that a large apportionment costs what its last seats do. */
	const uint32_t		*floor_seats;
	const size_t		*lot_order;	/* optional: list indices, first wins a lot */
	size_t			 n_lot;
};

/* One seat awarded, in the order the method awards them. */
struct tally_seat_step {
	size_t			 list;
	struct tally_quot	 quot;		/* the winning quotient (or remainder) */
	bool			 remainder;	/* largest remainder: won on remainder */
	bool			 by_tie_rule;	/* decided by votes or lot among equal quotients */
};

/*
 * The result of one allocation.  Arrays are sized by tally_seat_result_init
 * and reused across calls (no allocation on the hot path).
 */
struct tally_seat_result {
	size_t			 cap_lists;
	uint32_t		 cap_seats;
	uint32_t		*seats;		/* firm seats per list */
	uint8_t			*threshold;	/* enum tally_threshold_status per list */
	uint32_t		 allocated;	/* sum of seats[] */
	uint32_t		 pending;	/* tied seats awaiting a lot */
	uint32_t		 unfilled;	/* no eligible votes to fill them */
	/* The tie at the cut, if equal quotients competed for the last seats. */
	bool			 tie;
	bool			 tie_resolved;	/* by votes or by the supplied lot */
	uint32_t		 tie_seats;	/* seats the tied lists competed for */
	size_t			 n_tied;
	size_t			*tied;		/* list indices (those still tied if unresolved) */
	/* Explanation: the seats in the order they were awarded. */
	size_t			 n_steps;
	struct tally_seat_step	*steps;
	/* Largest remainder: the quota (votes * den / num), else {0,1,1}. */
	struct tally_quot	 quota;
	/* Private scratch space, sized with the rest. */
	uint64_t		*rem_;
	size_t			*order_;
	size_t			*heap_;
	bool			*eligible_;
};

/* Size a result for up to `lists` lists and `seats` seats. 0 or -1 (ENOMEM). */
int	tally_seat_result_init(struct tally_seat_result *r, size_t lists,
	    uint32_t seats);
void	tally_seat_result_finish(struct tally_seat_result *r);

/*
 * Allocate in->seats among in->n_lists lists.  The result must have been
 * initialised with at least as many lists and seats.  Returns 0, or -1 when
 * the input is out of bounds (votes over TALLY_VOTES_MAX, a result too small)
 * or an invariant of the engine broke (a bug: the result is then garbage;
 * callers refuse what met it instead of stopping).
 * Invariant on success: allocated + pending + unfilled == seats.
 */
int	tally_seats_allocate(const struct tally_seat_input *in,
	    struct tally_seat_result *r);

/*
 * What newsrooms ask of one list, all other lists' votes unchanged:
 * `next_votes`, the fewest extra votes that would give it one more firm seat
 * (UINT64_MAX when none would, e.g. a nationally excluded list or no seat
 * left to win), and `margin`, the most votes it could lose and still keep all
 * its firm seats (0 when it has none).  Exact: both are boundaries found
 * with the allocation itself.  `scratch` must be initialised like a result.
 *
 * Returns 0; 1 when the method has no such boundary (Droop, and Hare under
 * a province threshold: there a list can lose a seat by gaining votes, so
 * "the fewest votes for a seat" is not a single threshold; both outputs are
 * then left at "none"); -1 on allocation failure.
 */
int	tally_seats_explain(const struct tally_seat_input *in,
	    const struct tally_seat_result *r, size_t list,
	    struct tally_seat_result *scratch, uint64_t *next_votes,
	    uint64_t *margin);

/* -1, 0, 1 comparing a and b exactly. */
int	tally_quot_cmp(const struct tally_quot *a, const struct tally_quot *b);
/* For display only. */
double	tally_quot_to_double(const struct tally_quot *q);

#endif
