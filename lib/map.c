/* map.c - the tile map of the provinces (see tally/map.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tally/map.h>

#include "tally-private.h"

#define TILE	48	/* a province's square, in user units */
#define GAP	4
#define MARGIN	12
#define TOP	40	/* the title's band */
#define LEGEND	18	/* a legend line */

char *
tally_render_map_svg(const struct tally_state *s, enum tally_map_by by)
{
	const struct tally_election *e = s->election;
	struct tally_buf b = { 0 };
	uint32_t *col, *row, cols = 0, rows = 0, next = 0, w, h, per;
	bool *shown;
	size_t p, c, i, n_legend = 0;

	col = calloc(e->n_provinces + 1, sizeof(*col));
	row = calloc(e->n_provinces + 1, sizeof(*row));
	shown = calloc(e->n_coalitions + 1, sizeof(*shown));
	if (col == NULL || row == NULL || shown == NULL)
		goto nomem;
	/* The hand-made grid, then the provinces without a tile below it. */
	for (p = 0; p < e->n_provinces; p++)
		if (e->provinces[p].has_tile) {
			col[p] = e->provinces[p].tile_x;
			row[p] = e->provinces[p].tile_y;
			if (col[p] + 1 > cols)
				cols = col[p] + 1;
			if (row[p] + 1 > rows)
				rows = row[p] + 1;
		}
	per = cols > 0 ? cols : 8;
	for (p = 0; p < e->n_provinces; p++)
		if (!e->provinces[p].has_tile) {
			col[p] = next % per;
			row[p] = rows + (rows > 0) + next / per;
			next++;
		}
	if (next > 0) {
		rows += (rows > 0) + (next + per - 1) / per;
		if (per > cols)
			cols = per;
	}
	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_revision *cur = tally_state_current(s, p);
		size_t f = tally_first_place(s, p);
		if (f != SIZE_MAX)
			shown[f] = true;
		for (i = 0; by == TALLY_MAP_SEATS && cur != NULL &&
		    i < cur->feed->n_lists; i++)
			if (s->provinces[p].result.seats[i] > 0)
				shown[cur->feed->lists[i].coalition] = true;
	}
	for (c = 0; c < e->n_coalitions; c++)
		n_legend += shown[c];
	w = 2 * MARGIN + cols * (TILE + GAP);
	if (w < 320)
		w = 320;
	/*
	 * Wide enough for the title (14 px bold: under 9 px a character, a
	 * UTF-8 byte counted as one), so that a page scaling the map to its
	 * card scales the title with it rather than letting it run out.
	 */
	if (w < 24 + 9 * (uint32_t)strlen(e->name))
		w = 24 + 9 * (uint32_t)strlen(e->name);
	h = TOP + rows * (TILE + GAP) + MARGIN + (uint32_t)(n_legend + 1) *
	    LEGEND + MARGIN;
	tally_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" "
	    "height=\"%u\" viewBox=\"0 0 %u %u\" role=\"img\" "
	    "font-family=\"sans-serif\" data-by=\"%s\">\n", w, h, w, h,
	    by == TALLY_MAP_SEATS ? "seats" : "first");
	tally_buf_str(&b, "<title>");
	tally_buf_xml(&b, e->name);
	tally_buf_str(&b, by == TALLY_MAP_SEATS ? ": seats by province" :
	    ": first place by province");
	tally_buf_str(&b, "</title>\n<text x=\"12\" y=\"24\" font-size=\"14\" "
	    "font-weight=\"bold\">");
	tally_buf_xml(&b, e->name);
	tally_buf_printf(&b, "</text>\n<text x=\"12\" y=\"36\" font-size=\"10\">"
	    "version %llu, %zu of %zu provinces reporting</text>\n",
	    (unsigned long long)s->version, s->provinces_reporting,
	    e->n_provinces);
	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_province *pv = &e->provinces[p];
		const struct tally_revision *cur = tally_state_current(s, p);
		const struct tally_seat_result *r = &s->provinces[p].result;
		size_t f = tally_first_place(s, p);
		uint32_t x = MARGIN + col[p] * (TILE + GAP);
		uint32_t y = TOP + row[p] * (TILE + GAP);
		uint64_t total = 0, done = 0;

		tally_buf_printf(&b, "<g class=\"tile\"><rect class=\"province\" "
		    "data-province=\"");
		tally_buf_xml(&b, pv->id);
		tally_buf_str(&b, "\"");
		if (f != SIZE_MAX) {
			tally_buf_str(&b, " data-first=\"");
			tally_buf_xml(&b, e->coalitions[f].id);
			tally_buf_str(&b, "\"");
		}
		tally_buf_printf(&b, " x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" "
		    "rx=\"3\" fill=\"%s\" stroke=\"#ffffff\"><title>", x, y,
		    TILE, TILE, by == TALLY_MAP_FIRST && f != SIZE_MAX ?
		    e->coalitions[f].shown.hex : "#e0e0e0");
		tally_buf_xml(&b, pv->name);
		if (f != SIZE_MAX) {
			tally_buf_str(&b, ": first ");
			tally_buf_xml(&b, e->coalitions[f].short_name ?
			    e->coalitions[f].short_name : e->coalitions[f].name);
		} else
			tally_buf_str(&b, ": not reporting");
		tally_buf_printf(&b, "; %u seats</title></rect>\n", pv->seats);
		/* Seats: a bar across the tile, each coalition's share of
		 * the province's seats (district and levelling), in the
		 * feed's order. */
		for (i = 0; by == TALLY_MAP_SEATS && cur != NULL &&
		    i < cur->feed->n_lists; i++)
			total += r->seats[i] + tally_levelling_in(s, p,
			    cur->feed->lists[i].coalition);
		for (i = 0; total > 0 && i < cur->feed->n_lists; i++) {
			size_t k = cur->feed->lists[i].coalition;
			uint64_t n = r->seats[i] + tally_levelling_in(s, p, k);
			uint32_t x0, x1;
			if (n == 0)
				continue;
			/* Integer edges: the bars tile the width exactly. */
			x0 = x + (uint32_t)(done * (TILE - 4) / total) + 2;
			done += n;
			x1 = x + (uint32_t)(done * (TILE - 4) / total) + 2;
			tally_buf_printf(&b, "<rect class=\"seats\" data-coalition=\"");
			tally_buf_xml(&b, e->coalitions[k].id);
			tally_buf_printf(&b, "\" x=\"%u\" y=\"%u\" width=\"%u\" "
			    "height=\"%u\" fill=\"%s\"><title>", x0, y + 18,
			    x1 - x0, TILE - 22, e->coalitions[k].shown.hex);
			tally_buf_xml(&b, e->coalitions[k].short_name ?
			    e->coalitions[k].short_name : e->coalitions[k].name);
			tally_buf_printf(&b, ": %llu</title></rect>\n",
			    (unsigned long long)n);
		}
		tally_buf_printf(&b, "<text x=\"%u\" y=\"%u\" font-size=\"9\" "
		    "text-anchor=\"middle\" fill=\"%s\">", x + TILE / 2, y + 12,
		    by == TALLY_MAP_FIRST && f != SIZE_MAX ? "#ffffff" :
		    "#222222");
		/* The first letters of its name: ids can be opaque codes. */
		{
			char abbr[16];
			size_t n = 0, k;
			for (k = 0; pv->name[k] != '\0' && n < 4; k++)
				if ((unsigned char)pv->name[k] < 0x80 &&
				    pv->name[k] != ' ')
					abbr[n++] = pv->name[k];
				else if ((unsigned char)pv->name[k] >= 0x80)
					break;
			abbr[n] = '\0';
			tally_buf_xml(&b, n > 0 ? abbr : pv->id);
		}
		tally_buf_printf(&b, "</text>\n<text x=\"%u\" y=\"%u\" font-size=\"9\" "
		    "text-anchor=\"middle\" fill=\"%s\">%u</text></g>\n",
		    x + TILE / 2, y + TILE - 4, by == TALLY_MAP_FIRST &&
		    f != SIZE_MAX ? "#ffffff" : "#222222", pv->seats);
	}
	{
		uint32_t y = TOP + rows * (TILE + GAP) + MARGIN;
		tally_buf_str(&b, "<g class=\"legend\" font-size=\"11\">\n");
		for (c = 0; c < e->n_coalitions; c++) {
			if (!shown[c])
				continue;
			tally_buf_str(&b, "<rect data-coalition=\"");
			tally_buf_xml(&b, e->coalitions[c].id);
			tally_buf_printf(&b, "\" x=\"12\" y=\"%u\" width=\"12\" "
			    "height=\"12\" fill=\"%s\"/><text x=\"30\" "
			    "y=\"%u\">", y, e->coalitions[c].shown.hex,
			    y + 10);
			tally_buf_xml(&b, e->coalitions[c].short_name ?
			    e->coalitions[c].short_name : e->coalitions[c].name);
			tally_buf_str(&b, "</text>\n");
			y += LEGEND;
		}
		tally_buf_printf(&b, "<rect data-coalition=\"\" x=\"12\" "
		    "y=\"%u\" width=\"12\" height=\"12\" fill=\"#e0e0e0\"/>"
		    "<text x=\"30\" y=\"%u\">not reporting</text>\n</g>\n", y,
		    y + 10);
	}
	tally_buf_str(&b, "</svg>\n");
	free(col);
	free(row);
	free(shown);
	if (b.nomem) {
		free(b.p);
		return NULL;
	}
	return b.p;
nomem:
	free(col);
	free(row);
	free(shown);
	return NULL;
}
