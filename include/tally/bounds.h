/*
 * bounds.h - what each list of a province is already sure of, and the most
 * it can still reach, while counting goes on.
 *
 * Given a province's current count and an upper bound U on the ballots not
 * yet counted, every list gets two numbers:
 *
 *   min	the fewest firm seats it can end with, over every way the U
 *		uncounted ballots can still be cast: for any of the lists in
 *		the count, blank, invalid, or not at all (abstention).  A seat
 *		the list could end up tied for is not counted (ties count
 *		against the list).
 *   max	the most seats it can still reach, a seat it could end up
 *		tied for included (a lot could give it).
 *
 * Uncounted ballots can only go to lists that are in the count (a list that
 * runs should be posted, with 0 votes if need be).  All arithmetic is exact
 * integers; no floating point is used anywhere.
 *
 * `exact` says both numbers were proven to be the true extremes (the
 * property tests check them against brute force).  When it is false, each
 * number is still a guarantee in its direction (min never above the true
 * fewest, max never below the true most) but may be loose: largest
 * remainder beyond the search budget, a national threshold still open.
 * Divisor methods are exact under a province threshold with each list's
 * own percent (in->list_percent) and exemptions (in->exempt), and under a
 * national one whenever no list is `open`; an exemption overrides
 * `excluded` and `open`, as in the engine.
 */
#ifndef TALLY_BOUNDS_H
#define TALLY_BOUNDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/seats.h>

/* Largest remainder is searched exhaustively up to this many allocations. */
#define TALLY_BOUNDS_SEARCH_MAX	20000

struct tally_bounds {
	size_t			 cap_lists;
	uint32_t		 cap_seats;
	uint32_t		*min;		/* per list, firm seats it is sure of */
	uint32_t		*max;		/* per list, most it can still reach */
	bool			 known;		/* an uncounted bound was given */
	bool			 exact;		/* min and max proven exact */
	bool			 settled;	/* known and min == max for every list */
	uint64_t		 search_max;	/* largest remainder: budget, in allocations */
	/* Private scratch space, sized with the rest. */
	struct tally_seat_result r_;
	uint64_t		*votes_;
	uint64_t		*need_;		/* seats + 2 */
	uint64_t		*best_;		/* seats + 2 */
	uint64_t		*cost_;		/* seats + 2 */
	uint32_t		*free_;		/* per list */
	uint64_t		*pass_;		/* per list: votes to take part */
	uint32_t		*pos_;		/* per list */
	uint32_t		*segend_;	/* per list */
	uint32_t		*hull_;		/* seats + 2 */
	uint64_t		*seg_;		/* 2 x cap_seg_ */
	size_t			 cap_seg_;
};

/* Size for up to `lists` lists and `seats` seats.  0 or -1 (ENOMEM). */
int	tally_bounds_init(struct tally_bounds *b, size_t lists, uint32_t seats);
void	tally_bounds_finish(struct tally_bounds *b);

/*
 * Bounds for the count `in` (whose allocation is `r`) with at most
 * `uncounted` ballots still to count; `known` false means no bound on them
 * is known, and then nothing is guaranteed (min 0, max the province's seats,
 * not settled).  `open` (optional, n_lists entries) marks lists whose
 * national threshold is not yet decided: in->excluded says where they stand
 * now, and either way is then possible.  `in->lot_order` is not used: a lot
 * drawn for today's tie says nothing about tomorrow's.
 *
 * Returns 0, or -1 when `b` is too small for the input or the input is out
 * of bounds (as tally_seats_allocate).
 */
int	tally_bounds_compute(const struct tally_seat_input *in,
	    const struct tally_seat_result *r, bool known, uint64_t uncounted,
	    const bool *open, struct tally_bounds *b);

/*
 * What it would take, for one list, if the count stopped after a few more
 * ballots: gain[s-1], the fewest uncounted ballots that cast for list `l`
 * give it s more firm seats; loss[s-1], the fewest that cast against it
 * (for its rivals, or blank) leave it with s fewer.  UINT64_MAX when more
 * than `uncounted` (or no such seat).  Exact for divisor methods (returns
 * 0); largest remainder has no such monotone answer (returns 1, all
 * UINT64_MAX).  -1 when `b` is too small.  A national threshold is taken
 * as it stands (in->excluded).
 */
int	tally_bounds_costs(const struct tally_seat_input *in,
	    const struct tally_seat_result *r, size_t l, uint64_t uncounted,
	    struct tally_bounds *b, uint64_t *gain, uint64_t *loss, uint32_t n);

#endif
