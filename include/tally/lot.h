/*
 * lot.h - an order drawn by lot for a province's tie.
 *
 * Where equal quotients compete for a province's last seat(s) and the rule
 * in force settles it by lot (IHEC regulation 12/2018 s.III, valgloven
 * s. 11-4; see lib/seats.c), the drawn order is posted as a lot and decides the tie for as long as the tie is the one it
 * was drawn for.  This unit is the lot itself: its form, its parse and
 * whether it orders a given tie; then whether it is accepted against the
 * tally, and keeping it (lib/state.c).
 */
#ifndef TALLY_LOT_H
#define TALLY_LOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/election.h>
#include <tally/error.h>
#include <tally/feed.h>
#include <tally/seats.h>

struct json_t;
struct tally_state;

#define TALLY_LOT_MAX	64	/* lists one lot may order */

/*
 * The order drawn by lot for a province's pending tie, first drawn first.
 * It is in force while the province's tie is the one it was drawn for: the
 * same lists tied (a later revision that changes the tie makes it stale).
 */
struct tally_lot {
	size_t		 province;
	const char	*province_id;	/* borrowed from the election */
	uint64_t	 revision;	/* the revision it was drawn for */
	/* The version that applied it (0 until applied: it then takes the
	 * state's next one, as a feed does), TALLY_VERSION_UNKNOWN from a
	 * snapshot written before lots kept it.  A snapshot loaded under an
	 * edited definition orders its lots among the revisions by it. */
	uint64_t	 version;
	size_t		 n;
	const char	*order[TALLY_LOT_MAX];	/* list ids, borrowed from the
						 * election */
	char		 received_at[40];
	char		*by;		/* token label (owned) or NULL */
};

void	tally_lot_destroy(struct tally_lot *lot);
/*
 * A lot body {"revision": n, "order": [list ids]} for `province` (borrowed):
 * a new lot (tally_lot_destroy), or NULL with err (422 kinds: wrong_type,
 * unknown_field, missing_field, out_of_range, unknown_list).
 */
struct tally_lot *tally_lot_parse(const struct tally_election *e,
	    size_t province, struct json_t *body, struct tally_error *err);

/*
 * Does `lot` order exactly the lists tied for r's pending seats (r computed
 * without a lot, for f's lists)?  Then order[] (TALLY_LOT_MAX entries)
 * holds their indices in f, for tally_seat_input.lot_order.
 */
bool	tally_lot_matches(const struct tally_lot *lot,
	    const struct tally_feed *f, const struct tally_seat_result *r,
	    size_t *order);

/* Against the tally (lib/state.c). */

/*
 * Would `lot` (borrowed) be accepted for its province?  NEW when it orders
 * exactly the lists tied for the province's pending seat(s) at its current
 * revision; DUPLICATE when that very order is in force.  Otherwise -1 with
 * err: 409 kinds `stale_revision` (not the current revision), `no_tie_pending`,
 * `lot_conflict` (another order is in force); 422 kinds `unknown_revision`,
 * `unknown_list`, `duplicate_list`, `lists_not_tied` (field /order/i or
 * /order).  Changes nothing.
 */
int	tally_state_lot_check(const struct tally_state *s,
	    const struct tally_lot *lot, enum tally_check *result,
	    struct tally_error *err);
/*
 * Record a lot (taken on every path; not checked: replay and snapshots
 * restore what was accepted) and allocate its province again.  0, or -1 on
 * allocation failure with the state unchanged.
 */
int	tally_state_lot_apply(struct tally_state *s, struct tally_lot *lot,
	    struct tally_error *err);
/*
 * Keep a lot found moot (s->moot; it takes the next version if it has
 * none, as an applied one does).  0, or -1 on allocation failure (the lot
 * is destroyed).
 */
int	tally_state_lot_keep_moot(struct tally_state *s, struct tally_lot *lot);
/* The province's newest lot, or NULL; *in_force whether it decides now. */
const struct tally_lot *tally_state_lot(const struct tally_state *s,
	    size_t province, bool *in_force);

#endif
