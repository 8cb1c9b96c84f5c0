/*
 * map.h - /v1/map.svg: the provinces as a tile map, coloured by their first
 * place or split by the seats each coalition won there.
 *
 * The geometry ships with the election: each province's "tile" ([column,
 * row], docs/ELECTION.md) is one square of a grid laid out by hand; a
 * province without one is placed after the others, in definition order.
 * No outline data is used: none in the Debian or npm registries is both
 * public domain and detailed enough (docs/NEWSROOM.md says what was
 * checked).
 */
#ifndef TALLY_MAP_H
#define TALLY_MAP_H

#include <tally/state.h>

enum tally_map_by {
	TALLY_MAP_FIRST,	/* fill: the first place's colour */
	TALLY_MAP_SEATS,	/* a bar per province: its seats by coalition */
};

/*
 * The map as a standalone SVG image (UTF-8, new NUL-terminated string, NULL
 * on allocation failure).  One <rect class="province" data-province="id">
 * per province (with data-first, the first place's coalition id, and a
 * <title>: name, first place, seats); with TALLY_MAP_SEATS, inside each
 * tile, one <rect class="seats" data-coalition> per coalition with seats
 * there, widths proportional to its seats (district and levelling).  A
 * legend of the coalitions that come first somewhere (or hold seats), each
 * swatch a <rect data-coalition="id"> ("" for "not reporting").  The words
 * are the definition's own; a page in another language relabels from the
 * data attributes (daemon/www/app.js, localizeMap).
 */
char	*tally_render_map_svg(const struct tally_state *s,
	    enum tally_map_by by);

#endif
