/*
 * hemicycle.c - the parliament chart as a standalone SVG image
 * (GET /v1/leaderboard.svg; see tally/render.h).
 *
 * One circle per seat, on concentric half rings.  The seats are placed on
 * the rings first, then sorted by angle from left to right, so that each
 * coalition, taken in ranking order, fills a wedge: the majority is then the
 * vertical line through the middle.  Pending seats (unresolved ties) come
 * after the allocated ones, hatched; seats not yet allocated come last, in
 * grey.  The geometry is in doubles: it decides where a dot is drawn, never
 * who has a seat.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/render.h>

#include "tally-private.h"

#define W		640.0	/* viewBox width */
#define CX		320.0
#define CY		352.0	/* centre of the rings */
#define R_OUT		290.0
#define R_IN		(R_OUT * 0.36)
#define MAX_ROWS	400

struct seat_pos {
	double	 x, y, angle;
};

static int
pos_cmp(const void *a, const void *b)
{
	const struct seat_pos *x = a, *y = b;

	/* Left to right (angle from pi down to 0); inner rings first. */
	if (x->angle != y->angle)
		return x->angle > y->angle ? -1 : 1;
	if (x->y != y->y)
		return x->y > y->y ? -1 : 1;
	return 0;
}

/*
 * Place n seats on rings between R_IN and R_OUT: the fewest rings whose
 * capacity (ring length over the seat pitch) holds them, seats shared
 * between rings in proportion to their length.  *dot gets the radius of a
 * seat.  New array sorted left to right, or NULL.
 */
static struct seat_pos *
layout(uint64_t n, double *dot)
{
	struct seat_pos *pos;
	double pitch = R_OUT - R_IN, sum_r = 0;
	uint64_t rows, i, k, cap = 0, placed = 0, *per;

	for (rows = 1; rows < MAX_ROWS; rows++) {
		pitch = (R_OUT - R_IN) / (double)rows;
		for (cap = 0, i = 0; i < rows; i++)
			cap += (uint64_t)(M_PI * (R_IN + pitch * ((double)i +
			    0.5)) / pitch);
		if (cap >= n)
			break;
	}
	*dot = pitch * 0.42;
	if ((pos = calloc(n ? n : 1, sizeof(*pos))) == NULL)
		return NULL;
	if ((per = calloc(rows, sizeof(*per))) == NULL) {
		free(pos);
		return NULL;
	}
	for (i = 0; i < rows; i++)
		sum_r += R_IN + pitch * ((double)i + 0.5);
	/* Proportional shares, the rest from the outermost ring inwards. */
	for (i = 0; i < rows; i++) {
		per[i] = (uint64_t)((double)n * (R_IN + pitch * ((double)i +
		    0.5)) / sum_r);
		placed += per[i];
	}
	for (i = rows; placed < n; i = i == 0 ? rows : i) {
		i--;
		per[i]++;
		placed++;
	}
	for (k = 0, i = 0; i < rows; i++) {
		double r = R_IN + pitch * ((double)i + 0.5);
		uint64_t j;
		for (j = 0; j < per[i] && k < n; j++, k++) {
			double a = per[i] == 1 ? M_PI / 2 :
			    M_PI - M_PI * (double)j / (double)(per[i] - 1);
			pos[k].angle = a;
			pos[k].x = CX + r * cos(a);
			pos[k].y = CY - r * sin(a);
		}
	}
	free(per);
	qsort(pos, n, sizeof(*pos), pos_cmp);
	return pos;
}

static void
seats_run(struct tally_buf *b, const struct seat_pos *pos, uint64_t from,
    uint64_t count, double dot)
{
	uint64_t i;

	for (i = from; i < from + count; i++)
		tally_buf_printf(b, "<circle class=\"seat\" cx=\"%.1f\" cy=\"%.1f\" "
		    "r=\"%.1f\"/>", pos[i].x, pos[i].y, dot);
}

static const char *
coalition_color(const struct tally_coalition *c)
{
	return c->shown.hex;	/* the same in every view: lib/palette.c */
}

static const char *
short_name(const struct tally_coalition *c)
{
	return c->short_name != NULL ? c->short_name : c->name;
}

/*
 * What the chart needs, from a state or from a leaderboard view: the
 * coalitions with seats in ranking order, the totals, and a sentence on the
 * pending seats.
 */
struct hemi_in {
	const struct tally_election	 *e;
	uint64_t			  version, allocated, pending;
	size_t				  reporting, final;
	uint64_t			  st_reporting, st_total;
	const char			 *updated_at;
	size_t				  n;		/* rows with seats */
	const struct tally_coalition	**co;
	uint64_t			 *seats;
	struct tally_buf		  pending_text;	/* raw text, or empty */
};

/* "Zaragoza, 1 seat: PSOE or Cs; ..." for every province with a pending tie. */
static void
pending_text(struct tally_buf *b, const struct tally_state *s)
{
	const struct tally_election *e = s->election;
	size_t p, i;
	bool first = true;

	tally_buf_str(b, "Pending: tied for the last seat");
	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_seat_result *r = &s->provinces[p].result;
		const struct tally_revision *cur = tally_state_current(s, p);
		if (!s->provinces[p].has_result || r->pending == 0 || cur == NULL)
			continue;
		tally_buf_str(b, first ? ": " : "; ");
		first = false;
		tally_buf_str(b, e->provinces[p].name);
		tally_buf_printf(b, ", %u seat%s: ", r->pending, r->pending == 1 ?
		    "" : "s");
		for (i = 0; i < r->n_tied; i++) {
			tally_buf_str(b, i == 0 ? "" : i + 1 == r->n_tied ?
			    " or " : ", ");
			tally_buf_str(b, short_name(&e->coalitions[
			    cur->feed->lists[r->tied[i]].coalition]));
		}
	}
}

/* One legend entry at row/column; the swatch is a seat-sized dot. */
static void
legend_entry(struct tally_buf *b, int k, const char *fill, const char *label,
    uint64_t seats, const char *cls)
{
	double x = 24 + (k % 3) * 200.0, y = 390 + (k / 3) * 22.0;

	tally_buf_printf(b, "<g class=\"legend-entry%s%s\"><circle cx=\"%.0f\" "
	    "cy=\"%.0f\" r=\"7\" fill=\"%s\" stroke=\"#444\" "
	    "stroke-width=\"0.5\"/><text x=\"%.0f\" y=\"%.0f\">", cls ? " " : "",
	    cls ? cls : "", x + 7, y - 4, fill, x + 20, y);
	tally_buf_xml(b, label);
	tally_buf_printf(b, " <tspan font-weight=\"bold\">%llu</tspan></text></g>",
	    (unsigned long long)seats);
}

static char *
render_svg(const struct hemi_in *in)
{
	const struct tally_election *e = in->e;
	struct tally_buf b = { NULL, 0, 0, false };
	struct seat_pos *pos;
	size_t i;
	uint64_t n = e->seats_total, at = 0, majority = n / 2 + 1;
	uint64_t empty = n > in->allocated + in->pending ?
	    n - in->allocated - in->pending : 0;
	int legend, shown = 0, rows, with_seats = (int)in->n, slots;
	double dot, height;
	char line[256];

	if ((pos = layout(n, &dot)) == NULL)
		return NULL;
	/*
	 * At most 8 rows of legend (24 entries): pending and unallocated
	 * seats always have theirs, coalitions beyond the rest are summed up
	 * as "Others".
	 */
	slots = 24 - (in->pending > 0) - (empty > 0);
	legend = (with_seats < slots ? with_seats : slots) +
	    (in->pending > 0) + (empty > 0);
	rows = (legend + 2) / 3;
	height = 390 + rows * 22.0 + 12;

	tally_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" "
	    "width=\"%.0f\" height=\"%.0f\" role=\"img\" "
	    "aria-labelledby=\"t d\" font-family=\"system-ui, sans-serif\" "
	    "font-size=\"13\" fill=\"#222\">", W, height, W, height);
	tally_buf_str(&b, "<title id=\"t\">");
	tally_buf_xml(&b, e->name);
	tally_buf_str(&b, "</title><desc id=\"d\">");
	tally_buf_printf(&b, "Seats allocated: %llu of %llu (%llu pending); "
	    "majority %llu; version %llu",
	    (unsigned long long)in->allocated, (unsigned long long)n,
	    (unsigned long long)in->pending,
	    (unsigned long long)majority, (unsigned long long)in->version);
	if (in->updated_at != NULL && in->updated_at[0] != '\0') {
		tally_buf_str(&b, ", updated at ");
		tally_buf_xml(&b, in->updated_at);
	}
	tally_buf_str(&b, "</desc>");
	/* Diagonal hatching: pending seats read as such without colour. */
	tally_buf_str(&b, "<defs><pattern id=\"pending\" width=\"4\" "
	    "height=\"4\" patternUnits=\"userSpaceOnUse\" "
	    "patternTransform=\"rotate(45)\"><rect width=\"4\" height=\"4\" "
	    "fill=\"#fff\"/><rect width=\"2\" height=\"4\" fill=\"#444\"/>"
	    "</pattern></defs>");
	tally_buf_str(&b, "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>"
	    "<text x=\"20\" y=\"30\" font-size=\"18\" font-weight=\"bold\">");
	tally_buf_xml(&b, e->name);
	tally_buf_str(&b, "</text>");
	snprintf(line, sizeof(line), "%zu of %zu provinces reporting, %zu final",
	    in->reporting, e->n_provinces, in->final);
	tally_buf_printf(&b, "<text x=\"20\" y=\"52\" fill=\"#555\">%s", line);
	if (in->st_total > 0)
		tally_buf_printf(&b, "; %.1f %% of stations counted",
		    100.0 * (double)in->st_reporting / (double)in->st_total);
	tally_buf_str(&b, "</text>");

	for (i = 0; i < in->n; i++) {
		const struct tally_coalition *c = in->co[i];
		uint64_t seats = in->seats[i];
		tally_buf_printf(&b, "<g class=\"coalition\" data-coalition=\"%s\" "
		    "fill=\"%s\"><title>", c->id, coalition_color(c));
		tally_buf_xml(&b, c->name);
		tally_buf_printf(&b, ": %llu seat%s</title>", (unsigned long long)seats,
		    seats == 1 ? "" : "s");
		seats_run(&b, pos, at, seats, dot);
		tally_buf_str(&b, "</g>");
		at += seats;
	}
	if (in->pending > 0) {
		tally_buf_str(&b, "<g class=\"pending\" fill=\"url(#pending)\" "
		    "stroke=\"#222\" stroke-width=\"1\">");
		tally_buf_str(&b, "<title>");
		tally_buf_xml(&b, in->pending_text.p ? in->pending_text.p : "Pending");
		tally_buf_str(&b, "</title>");
		seats_run(&b, pos, at, in->pending, dot - 0.5);
		tally_buf_str(&b, "</g>");
		at += in->pending;
	}
	if (empty > 0) {
		tally_buf_str(&b, "<g class=\"unallocated\" fill=\"#e3e3e3\">"
		    "<title>Not yet allocated</title>");
		seats_run(&b, pos, at, empty, dot);
		tally_buf_str(&b, "</g>");
	}
	/* The majority line: the seat that makes a majority is in the middle. */
	tally_buf_printf(&b, "<line class=\"majority\" x1=\"%.0f\" y1=\"%.0f\" "
	    "x2=\"%.0f\" y2=\"%.0f\" stroke=\"#111\" stroke-width=\"2\" "
	    "stroke-dasharray=\"6 4\"/><text x=\"%.0f\" y=\"%.0f\" "
	    "text-anchor=\"middle\" font-weight=\"bold\">Majority %llu</text>",
	    CX, CY - R_IN + 8, CX, CY - R_OUT - 8, CX, CY - R_OUT - 14,
	    (unsigned long long)majority);
	tally_buf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" "
	    "font-size=\"30\" font-weight=\"bold\">%llu</text><text "
	    "x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\" fill=\"#555\">of "
	    "%llu seats</text>", CX, CY - 24, (unsigned long long)
	    in->allocated, CX, CY - 4, (unsigned long long)n);

	for (i = 0; i < in->n; i++) {
		const struct tally_coalition *c = in->co[i];
		uint64_t seats = in->seats[i];
		if (shown + 1 == slots && with_seats > slots) {
			uint64_t rest = 0;
			size_t j;
			for (j = i; j < in->n; j++)
				rest += in->seats[j];
			legend_entry(&b, shown++, "#ccc", "Others", rest, NULL);
			break;
		}
		legend_entry(&b, shown++, coalition_color(c), short_name(c),
		    seats, NULL);
	}
	if (in->pending > 0)
		legend_entry(&b, shown++, "url(#pending)", "Pending (tie)",
		    in->pending, "pending");
	if (empty > 0)
		legend_entry(&b, shown++, "#e3e3e3", "Not yet allocated", empty,
		    "unallocated");
	tally_buf_str(&b, "</svg>\n");
	free(pos);
	if (b.nomem || in->pending_text.nomem) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* Room for every coalition's row.  0 or -1. */
static int
hemi_alloc(struct hemi_in *in, const struct tally_election *e)
{
	memset(in, 0, sizeof(*in));
	in->e = e;
	in->co = calloc(e->n_coalitions ? e->n_coalitions : 1,
	    sizeof(*in->co));
	in->seats = calloc(e->n_coalitions ? e->n_coalitions : 1,
	    sizeof(*in->seats));
	return in->co != NULL && in->seats != NULL ? 0 : -1;
}

static void
hemi_free(struct hemi_in *in)
{
	free(in->co);
	free(in->seats);
	free(in->pending_text.p);
}

char *
tally_render_hemicycle_svg(const struct tally_state *s,
    const char *updated_at)
{
	const struct tally_election *e = s->election;
	struct hemi_in in;
	size_t *order = NULL, i;
	char *svg = NULL;

	if (hemi_alloc(&in, e) == -1 || (order = tally_ranking(s)) == NULL)
		goto out;
	in.version = s->version;
	in.allocated = s->seats_allocated;
	in.pending = s->seats_pending;
	in.reporting = s->provinces_reporting;
	in.final = s->provinces_final;
	in.st_reporting = s->stations_reporting;
	in.st_total = s->stations_total;
	in.updated_at = updated_at;
	for (i = 0; i < e->n_coalitions; i++)
		if (s->coalitions[order[i]].seats > 0) {
			in.co[in.n] = &e->coalitions[order[i]];
			in.seats[in.n++] = s->coalitions[order[i]].seats;
		}
	if (s->seats_pending > 0)
		pending_text(&in.pending_text, s);
	svg = render_svg(&in);
out:
	free(order);
	hemi_free(&in);
	return svg;
}

static uint64_t
juint_at(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_is_integer(v) && json_integer_value(v) > 0 ?
	    (uint64_t)json_integer_value(v) : 0;
}

char *
tally_render_hemicycle_svg_leaderboard(const struct tally_election *e,
    const char *bytes, size_t len)
{
	struct hemi_in in;
	json_t *lb = NULL, *row;
	size_t i;
	bool first = true;
	char *svg = NULL;

	if (hemi_alloc(&in, e) == -1 ||
	    (lb = json_loadb(bytes, len, 0, NULL)) == NULL)
		goto out;
	in.version = juint_at(lb, "version", NULL);
	in.allocated = juint_at(lb, "seats", "allocated");
	in.pending = juint_at(lb, "seats", "pending");
	in.reporting = (size_t)juint_at(lb, "provinces", "reporting");
	in.final = (size_t)juint_at(lb, "provinces", "final");
	in.st_reporting = juint_at(lb, "stations", "reporting");
	in.st_total = juint_at(lb, "stations", "total");
	in.updated_at = json_string_value(json_object_get(lb, "updated_at"));
	/* The view's rows are in ranking order already. */
	json_array_foreach(json_object_get(lb, "coalitions"), i, row) {
		const struct tally_coalition *c = tally_election_coalition(e,
		    json_string_value(json_object_get(row, "id")));
		uint64_t seats = juint_at(row, "seats", NULL);
		if (c == NULL || in.n == e->n_coalitions)
			goto out;	/* not a view of this election */
		if (seats > 0) {
			in.co[in.n] = c;
			in.seats[in.n++] = seats;
		}
		if (juint_at(row, "tied_for", NULL) > 0) {
			tally_buf_str(&in.pending_text, first ?
			    "Pending: tied for the last seat: " : ", ");
			tally_buf_str(&in.pending_text, short_name(c));
			first = false;
		}
	}
	if (in.allocated + in.pending > e->seats_total)
		goto out;
	svg = render_svg(&in);
out:
	json_decref(lb);
	hemi_free(&in);
	return svg;
}
