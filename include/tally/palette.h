/*
 * palette.h - the colour every view draws a coalition in.
 *
 * A definition may give a coalition a "color"; many do not (tallyctl import
 * writes none of its own unless asked to, older definitions have none), and
 * some give two coalitions the same or nearly the same colour (Spain 2019:
 * PODEMOS-IU and PODEMOS-EU are both #6b2e68).  Every view -- the page, the
 * SVG, the JSON views and the CSV -- draws the colour chosen here, so a
 * reader sees the same colour for a coalition everywhere, on every node
 * and after every restart: the choice depends on the definition only
 * (colours and order of the coalitions), never on results.
 *
 * The palette and the rules are documented in docs/ELECTION.md ("Colours").
 */
#ifndef TALLY_PALETTE_H
#define TALLY_PALETTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Two colours closer than this (the "redmean" weighted RGB distance, in its
 * usual 0..765 scale) are near-identical: a seat of one cannot be told from
 * a seat of the other.  Measured on the definitions in tests/data: Spain's
 * #6b2e68/#6b2e68 is 0, #6f2e63/#6b2e68 10, Poland 2023's PiS #5826a0 and
 * Trzecia Droga #50329b 28; the closest pair judged distinct at a glance
 * (Norway's A #e4202c and SV #eb4040) is 71 apart.
 */
#define TALLY_COLOR_NEAR	32

enum tally_color_source {
	TALLY_COLOR_DEFINITION,	/* the definition's own "color" */
	TALLY_COLOR_PALETTE,	/* the coalition has none: from the palette */
	TALLY_COLOR_ADJUSTED,	/* its own, lightened or darkened: too near an
				 * earlier coalition's */
};

struct tally_color {
	char			 hex[8];	/* "#rrggbb", lower case */
	enum tally_color_source	 source;
	size_t			 near;		/* ADJUSTED: the earlier coalition
						 * (index) it was too near */
};

/*
 * Chooses the colour of each of `n` coalitions, in definition order.
 * `defined[i]` is coalition i's own "#rrggbb" (either case) or NULL.
 *
 *  1. A defined colour is kept, unless it is near-identical to the colour
 *     of an earlier coalition that has one: then it is lightened or
 *     darkened (mixed with white or black, a fixed sequence of steps) until
 *     it is not near any earlier one (TALLY_COLOR_ADJUSTED).
 *  2. Coalitions without one take, in order, the next palette colour that is
 *     not near any colour already chosen; when the palette runs out, its
 *     darker then its lighter tones; then the palette again from the start.
 *
 * Integers only, so every node computes the same colours.  `out` is
 * borrowed (n entries, filled).  Returns 0, or -1 if a defined colour is not
 * "#rrggbb" (the loader refuses those first).
 */
int		 tally_palette_assign(const char *const *defined, size_t n,
		    struct tally_color *out);

/* The redmean distance of two "#rrggbb" colours (0..765), or UINT32_MAX
 * when either is not one. */
uint32_t	 tally_color_distance(const char *a, const char *b);

/* Whether two colours are near-identical (distance < TALLY_COLOR_NEAR). */
bool		 tally_color_is_near(const char *a, const char *b);

/* The palette (colour i, i < tally_palette_size()), "#rrggbb". */
size_t		 tally_palette_size(void);
const char	*tally_palette_color(size_t i);

/* "definition", "palette" or "adjusted". */
const char	*tally_color_source_name(enum tally_color_source s);

#endif
