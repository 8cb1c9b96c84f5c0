/*
 * expected.h - how much of the expected vote is counted: an estimate, kept
 * apart from the exact counts.
 *
 * A province may say how many ballots it expects ("expected_ballots", or
 * "expected_turnout" percent of "registered"; docs/ELECTION.md).  Views
 * then carry an "expected" member: the expected ballots, the ballots
 * counted (list votes, blank and invalid of the current snapshot) and the
 * counted share as a decimal string (2 places, rounded half up, in
 * integers), with "estimate": true.  The expectation is never used in a
 * decision: seats, bounds and calls come from the counts alone.
 */
#ifndef TALLY_EXPECTED_H
#define TALLY_EXPECTED_H

#include <stddef.h>

#include <tally/state.h>

struct json_t;

/* The province's "expected" member, or NULL when it has no expectation
 * (or without memory). */
struct json_t	*tally_expected_province(const struct tally_state *s,
		    size_t province);
/* The national one, over the provinces with an expectation ("provinces":
 * how many), or NULL when none has one. */
struct json_t	*tally_expected_national(const struct tally_state *s);

#endif
