/*
 * test_svg.c - the hemicycle SVG (GET /v1/leaderboard.svg): one seat mark
 * per seat, each coalition's seats in its colour and in ranking order,
 * pending seats hatched and named, names escaped, well-formed XML at every
 * stage of a real night (Spain 2019) and for an unresolved tie.
 *
 * Usage: test_svg ELECTIONS_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/*
 * Well-formed enough for an image: one root, every element closed in order,
 * attribute values quoted, no raw '<' or stray '&' in text or attributes.
 * Returns NULL or what is wrong.
 */
static const char *
xml_check(const char *p)
{
	static char why[160];
	const char *stack[64];
	size_t depth = 0, roots = 0;

	if (strncmp(p, "<?xml ", 6) == 0 && (p = strstr(p, "?>")) != NULL)
		p += 2;
	if (p == NULL)
		return "unterminated XML declaration";
	while (*p != '\0') {
		if (*p == '&') {
			const char *semi = strchr(p, ';');
			if (semi == NULL || semi - p > 6 || (strncmp(p, "&amp;", 5) &&
			    strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) &&
			    strncmp(p, "&quot;", 6) && strncmp(p, "&apos;", 6)))
				return "a raw & in text";
			p = semi + 1;
			continue;
		}
		if (*p == '>')
			return "a raw > outside a tag";
		if (*p != '<') {
			if (depth == 0 && *p != '\n' && *p != ' ')
				return "text outside the root";
			p++;
			continue;
		}
		if (p[1] == '/') {
			size_t n = strcspn(p + 2, ">");
			if (depth == 0 || strlen(stack[depth - 1]) < n ||
			    strncmp(stack[depth - 1], p + 2, n) != 0 ||
			    strcspn(stack[depth - 1], " >/") != n) {
				snprintf(why, sizeof(why), "</%.*s> closes "
				    "nothing open", (int)n, p + 2);
				return why;
			}
			depth--;
			p += n + 3;
			continue;
		}
		{
			const char *q = p + 1;
			char quote = 0;
			if (depth == 0 && roots++ > 0)
				return "two root elements";
			for (; *q != '\0' && (quote || *q != '>'); q++) {
				if (quote && *q == '<')
					return "a raw < in an attribute";
				if (*q == '"' || *q == '\'')
					quote = quote == *q ? 0 :
					    quote ? quote : *q;
			}
			if (*q == '\0')
				return "unterminated tag";
			if (q[-1] != '/') {
				if (depth == 64)
					return "nested too deep";
				stack[depth++] = p + 1;
			}
			p = q + 1;
		}
	}
	return depth == 0 && roots == 1 ? NULL : "elements left open";
}

/* The seats drawn inside <g ... data-coalition="id" fill="color">. */
static size_t
group_seats(const char *svg, const char *id, const char *color)
{
	char head[160];
	const char *g, *end;
	size_t n = 0;

	snprintf(head, sizeof(head), "data-coalition=\"%s\" fill=\"%s\"", id,
	    color);
	if ((g = strstr(svg, head)) == NULL || (end = strstr(g, "</g>")) == NULL)
		return 0;
	while ((g = strstr(g, "class=\"seat\"")) != NULL && g < end) {
		n++;
		g++;
	}
	return n;
}

static void
check_svg(const struct tally_state *s, const char *what)
{
	const struct tally_election *e = s->election;
	char *svg = tally_render_hemicycle_svg(s, "2019-04-28T23:00:00Z");
	const char *bad;
	size_t i, j;

	CHECK(svg != NULL, "%s: rendered", what);
	if (svg == NULL)
		return;
	bad = xml_check(svg);
	CHECK(bad == NULL, "%s: not well-formed: %s", what, bad);
	CHECK_EQ_U(count(svg, "class=\"seat\""), e->seats_total,
	    "%s: one mark per seat", what);
	CHECK(strstr(svg, "class=\"majority\"") != NULL, "%s: majority line",
	    what);
	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_coalition *c = &e->coalitions[i];
		if (s->coalitions[i].seats == 0)
			continue;
		/* Every coalition in the colour all views draw
		 * (lib/palette.c), its own where the definition gives one. */
		CHECK_EQ_U(group_seats(svg, c->id, c->shown.hex),
		    s->coalitions[i].seats, "%s: %s's seats in %s", what, c->id,
		    c->shown.hex);
		CHECK(c->color == NULL || c->shown.source ==
		    TALLY_COLOR_ADJUSTED || strcasecmp(c->color,
		    c->shown.hex) == 0, "%s: %s keeps its own colour", what,
		    c->id);
		/* No two coalitions with seats look alike. */
		for (j = 0; j < i; j++)
			CHECK(s->coalitions[j].seats == 0 ||
			    !tally_color_is_near(c->shown.hex,
			    e->coalitions[j].shown.hex), "%s: %s (%s) and %s "
			    "(%s) are near-identical", what, c->id,
			    c->shown.hex, e->coalitions[j].id,
			    e->coalitions[j].shown.hex);
	}
	CHECK_EQ_U(s->seats_pending > 0, strstr(svg, "class=\"pending\"") !=
	    NULL, "%s: pending seats drawn when there are some", what);
	free(svg);
}

/* Two lists equal for the last of 3 seats, ties by lot: 1 pending. */
static const char tie_json[] =
    "{\"id\":\"tie\",\"name\":\"Ties <&> \\\"quotes\\\"\","
    "\"allocation\":{\"method\":\"dhondt\",\"ties\":\"lot\"},"
    "\"coalitions\":[{\"id\":\"a\",\"name\":\"A & Co\",\"short\":\"A<\","
    "\"color\":\"#112233\"},{\"id\":\"b\",\"name\":\"B\",\"short\":\"B'\","
    "\"color\":\"#445566\"},{\"id\":\"c\",\"name\":\"C\"}],"
    "\"provinces\":[{\"id\":\"p\",\"name\":\"P\\\"<1>\",\"seats\":3},"
    "{\"id\":\"q\",\"name\":\"Q\",\"seats\":2}]}";

int
main(int argc, char **argv)
{
	struct tally_election *e;
	struct tally_state *s;
	struct tally_diag diag;
	json_t *results, *entry;
	char path[4096], *svg;
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s ELECTIONS_DIR\n", argv[0]);
		return 2;
	}
	tally_diag_init(&diag);
	snprintf(path, sizeof(path), "%s/es-2019-04/election.json", argv[1]);
	e = tally_election_load(path, &diag);
	CHECK(e != NULL, "%s loads", path);
	if (e == NULL)
		return check_done("svg");
	s = tally_state_create(e);
	check_svg(s, "empty");
	snprintf(path, sizeof(path), "%s/es-2019-04/results.json", argv[1]);
	results = json_load_file(path, 0, NULL);
	json_array_foreach(json_object_get(results, "results"), i, entry) {
		struct tally_error err;
		struct tally_feed *f = tally_feed_parse(e, NULL, entry, "", &err);
		CHECK(f != NULL && tally_state_apply(s, f, "x", &err) == 0,
		    "feed %zu applies", i);
		tally_state_bump(s);
		if (i % 13 == 0)
			check_svg(s, "during the night");
	}
	json_decref(results);
	check_svg(s, "counted");
	svg = tally_render_hemicycle_svg(s, NULL);
	/* PSOE (000096, #e30613) leads with 123 seats: the first wedge. */
	CHECK(svg != NULL && strstr(svg, "data-coalition=\"000096\"") != NULL &&
	    strstr(svg, "data-coalition=\"000096\"") ==
	    strstr(svg, "data-coalition="), "PSOE's seats come first");
	CHECK(svg != NULL && strstr(svg, "Majority 176") != NULL,
	    "majority 176 of 350");
	CHECK(svg != NULL && strstr(svg, "class=\"unallocated\"") == NULL,
	    "every seat allocated");
	free(svg);
	{
		/* A kept version's image, from its leaderboard bytes: the same. */
		char *lb = tally_render_leaderboard_text(s, "2019-04-28T23:00:00Z");
		char *a = tally_render_hemicycle_svg(s, "2019-04-28T23:00:00Z");
		char *b = lb ? tally_render_hemicycle_svg_leaderboard(e, lb,
		    strlen(lb)) : NULL;
		CHECK(a != NULL && b != NULL && strcmp(a, b) == 0,
		    "the image from the leaderboard's bytes is the state's");
		CHECK(tally_render_hemicycle_svg_leaderboard(e, "{", 1) == NULL,
		    "not JSON: no image");
		static const char other[] =
		    "{\"coalitions\":[{\"id\":\"nope\",\"seats\":1}]}";
		CHECK(tally_render_hemicycle_svg_leaderboard(e, other,
		    strlen(other)) == NULL, "another election's view: no image");
		free(lb);
		free(a);
		free(b);
	}
	tally_state_destroy(s);
	tally_election_destroy(e);

	e = tally_election_loadb(tie_json, strlen(tie_json), "tie", &diag);
	CHECK(e != NULL, "tie election loads");
	if (e != NULL) {
		struct tally_error err;
		json_t *b = json_loads("{\"revision\":1,\"votes\":{\"a\":250,"
		    "\"b\":100,\"c\":100}}", 0, NULL);
		struct tally_feed *f = tally_feed_parse(e, "p", b, "", &err);
		s = tally_state_create(e);
		CHECK(f != NULL && tally_state_apply(s, f, "x", &err) == 0,
		    "tie feed applies");
		tally_state_bump(s);
		CHECK_EQ_U(s->seats_pending, 1, "one seat pending");
		check_svg(s, "tie");
		svg = tally_render_hemicycle_svg(s, NULL);
		CHECK(svg != NULL && strstr(svg, "fill=\"url(#pending)\"") != NULL,
		    "pending seats are hatched");
		CHECK(svg != NULL && strstr(svg, "P&quot;&lt;1&gt;, 1 seat: B&apos; "
		    "or C") != NULL, "the pending title names the province and "
		    "the tied lists, escaped");
		CHECK(svg != NULL && strstr(svg, "Ties &lt;&amp;&gt; &quot;quotes"
		    "&quot;") != NULL, "the title is escaped");
		CHECK(svg != NULL && strstr(svg, "class=\"unallocated\"") != NULL,
		    "Q's seats are not allocated yet");
		{
			/* The map escapes as the hemicycle does (it wrote '
			 * through before they shared one escaper). */
			char *m = tally_render_map_svg(s, TALLY_MAP_SEATS);
			const char *bad = m ? xml_check(m) : "no map";
			CHECK(bad == NULL, "the tie's map: %s", bad);
			CHECK(m != NULL && strstr(m, "Ties &lt;&amp;&gt; "
			    "&quot;quotes&quot;") != NULL, "the map's title is "
			    "escaped");
			free(m);
		}
		{
			char *lb = tally_render_leaderboard_text(s, NULL);
			char *v = lb ? tally_render_hemicycle_svg_leaderboard(e,
			    lb, strlen(lb)) : NULL;
			const char *bad = v ? xml_check(v) : "no image";
			CHECK(bad == NULL, "a kept version with a tie: %s", bad);
			CHECK(v != NULL && strstr(v, "tied for the last seat: "
			    "B&apos;, C") != NULL, "a kept version names the tied "
			    "coalitions");
			CHECK_EQ_U(v ? count(v, "class=\"seat\"") : 0, 5,
			    "a kept version: one mark per seat");
			free(lb);
			free(v);
		}
		CHECK(svg != NULL && strstr(svg, "fill=\"#607d8b\"") == NULL,
		    "C has no seat, so no fallback colour is drawn");
		free(svg);
		json_decref(b);
		tally_state_destroy(s);
		tally_election_destroy(e);
	}
	tally_diag_finish(&diag);
	return check_done("svg");
}
