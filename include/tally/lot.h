/*
 * lot.h - an order drawn by lot for a province's tie.
 *
 * Where equal quotients compete for a province's last seat(s) and the rule
 * in force settles it by lot (IHEC regulation 12/2018 s.III, valgloven
 * s. 11-4; see lib/seats.c), the drawn order is posted as a lot and decides the tie for as long as the tie is the one it
 * was drawn for.  This unit is the lot itself: its form, its parse and
 * whether it orders a given tie.  Whether it is accepted against the
 * tally, and keeping it, is the state's (tally/state.h).
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

#endif
