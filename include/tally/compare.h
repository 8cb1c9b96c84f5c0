/*
 * compare.h - the change since the previous election.
 *
 * A definition may name the previous election ("previous": its definition
 * and its official results as a POST /v1/results batch body, files beside
 * the definition) and, per coalition, its "predecessors" (coalition ids of
 * the previous definition: lineage is editorial, list names change).  The
 * previous results are tallied by the same engine (the same seats as the
 * official ones when they are complete, as tests/data/elections shows),
 * once, when the definition is loaded; every comparison is then a pure
 * function of the two states.  Provinces are matched by id.
 *
 * Changes are exact: seats in integers, vote shares in percentage points as
 * decimal strings rounded half away from zero to 2 places, computed in
 * 128-bit integers (never a double).
 */
#ifndef TALLY_COMPARE_H
#define TALLY_COMPARE_H

#include <stddef.h>

#include <tally/diag.h>
#include <tally/state.h>

struct json_t;
struct tally_previous;

/*
 * Load e's previous election (e borrowed: it must outlive the result).  NULL
 * with *none set when e names none; NULL with diag when a file cannot be
 * read or is wrong, or a predecessor is not a coalition of the previous
 * definition, or two coalitions claim the same predecessor.
 */
struct tally_previous	*tally_previous_load(const struct tally_election *e,
			    bool *none, struct tally_diag *diag);
void			 tally_previous_destroy(struct tally_previous *pv);

/*
 * The "change" member of the leaderboard: {"previous": {"id", "name"},
 * "coalitions": [{"id", "seats", "seats_before", "votes_before",
 * "share_change"}] (definition order), "flipped": [province ids]}.
 * New reference, NULL without memory.
 */
struct json_t	*tally_compare_national(const struct tally_previous *pv,
		    const struct tally_state *s);
/*
 * The "change" member of a province: {"previous", "first_place_now",
 * "first_place_before", "first_place_before_previous_id", "flipped",
 * "coalitions": [{"id", "seats", "seats_before", "share_change"}]}.
 */
struct json_t	*tally_compare_province(const struct tally_previous *pv,
		    const struct tally_state *s, size_t province);
/*
 * The "change" member of a coalition: {"previous", "predecessors", "seats",
 * "seats_before", "share_change", "provinces": [{"province", "seats",
 * "seats_before", "share_change", "flipped"}]}.
 */
struct json_t	*tally_compare_coalition(const struct tally_previous *pv,
		    const struct tally_state *s, size_t coalition);

/*
 * 100 * (a / b - c / d) as a decimal string with 2 places, rounded half
 * away from zero, exactly (buf of 48 bytes); a share of a zero whole is 0.
 */
const char	*tally_pp_change(uint64_t a, uint64_t b, uint64_t c, uint64_t d,
		    char *buf, size_t len);

#endif
