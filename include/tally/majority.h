/*
 * majority.h - how far a coalition is from deciding its majority.
 */
#ifndef TALLY_MAJORITY_H
#define TALLY_MAJORITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/state.h>

/*
 * For a coalition whose majority is still open (its seats_min below the
 * majority, its seats_max at or above it), the smallest number of the
 * uncounted ballots that would decide it if the count stopped after them:
 * `to_win`, the fewest which, cast for the coalition where they count most,
 * give it a majority of firm seats (0 when it already has one); `to_lose`,
 * the fewest which, cast against it (for rivals or blank), leave it short
 * (0 when it already is).  Each province's ballots are bounded by its own
 * uncounted bound.  UINT64_MAX when no such ballots exist within the bounds.
 *
 * `exact` is true when every province has reported with a known bound and
 * uses a divisor method, and no national threshold applies; otherwise
 * provinces without an exact answer are left out (they could only lower
 * either number) and the figures are upper bounds.
 *
 * Returns 0, 1 when the majority is already decided (clinched or out of
 * reach: nothing computed), -1 on allocation failure.
 */
int	tally_majority_votes(const struct tally_state *s, size_t coalition,
	    uint64_t *to_win, uint64_t *to_lose, bool *exact);

#endif
