/*
 * palette.c - the colour every view draws a coalition in (tally/palette.h).
 *
 * The palette.  Ten colours picked from Okabe & Ito's set ("Color Universal
 * Design", 2008) and Paul Tol's "bright", "vibrant" and "muted" schemes
 * (SRON/EPS/TN/09-002), both designed to stay apart for readers with a
 * red-green or blue-yellow colour-vision deficiency.  Each was added in turn
 * as the candidate farthest (redmean distance) from those already chosen,
 * taking the worst of normal vision and simulated deuteranopia, protanopia
 * and tritanopia (Machado et al. 2009, severity 1): the ten stay at least
 * 64 apart under all four, where the six blue-greys drawn before were as
 * close as 45 (42 for tritanopia), all of one hue.  Candidates had to keep 2:1 contrast
 * against the page's white card and 1.8:1 against its dark-mode card, so a
 * seat dot reads in both schemes; black and Okabe-Ito's yellow (1.3:1 on
 * white) were left out, and grey is the colour of unallocated seats.  The
 * first ones are the most distinct, since definitions list their main
 * parties first more often than not.
 *
 * Colour is decoration, never a decision: but it is shown side by side by
 * several nodes, so the arithmetic is integer and the order fixed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/election.h>
#include <tally/hex.h>
#include <tally/palette.h>

#include "tally-private.h"

static const char *const palette[] = {
	"#0072b2",	/* blue (Okabe-Ito) */
	"#e69f00",	/* orange (Okabe-Ito) */
	"#882255",	/* wine (Tol muted) */
	"#33bbee",	/* cyan (Tol vibrant) */
	"#cc3311",	/* red (Tol vibrant) */
	"#117733",	/* green (Tol muted) */
	"#aa3377",	/* purple (Tol bright) */
	"#999933",	/* olive (Tol muted) */
	"#ee6677",	/* rose (Tol bright) */
	"#cc79a7",	/* reddish purple (Okabe-Ito) */
};
#define PALETTE_N	(sizeof(palette) / sizeof(palette[0]))

/*
 * Tones tried in turn: a defined colour too near an earlier one, and the
 * palette once its own colours are used up.  Positive: that percentage of white mixed in;
 * negative: of black.  Steps large enough that each tone is more than
 * TALLY_COLOR_NEAR from the one before on mid colours.
 */
static const int tones[] = { -35, 40, -55, 60, -70, 75 };
#define TONES_N		(sizeof(tones) / sizeof(tones[0]))
/* For a dark defined colour: each lighter tone before its darker twin. */
static const int lighter_first[TONES_N] = { 40, -35, 60, -55, 75, -70 };

struct rgb {
	int	r, g, b;
};

static bool
parse(const char *s, struct rgb *c)
{
	uint8_t v[3] = { 0, 0, 0 };

	c->r = c->g = c->b = 0;
	if (s == NULL || strlen(s) != 7 || s[0] != '#' ||
	    tally_hex_decode(s + 1, v, 3) == -1)
		return false;
	c->r = v[0];
	c->g = v[1];
	c->b = v[2];
	return true;
}

static void
format(const struct rgb *c, char hex[8])
{
	snprintf(hex, 8, "#%02x%02x%02x", (unsigned)c->r, (unsigned)c->g,
	    (unsigned)c->b);
}

/*
 * The "redmean" distance (T. Riemersma, "Colour metric", CompuPhase 2019): a
 * weighted Euclidean RGB distance that follows perceived difference far
 * better than the plain one, at the cost of three multiplications.  Kept
 * squared and scaled by 256 so that it is exact in integers:
 * 256 * d^2 = (512 + rm) dr^2 + 1024 dg^2 + (767 - rm) db^2.
 */
static uint64_t
dist2(const struct rgb *a, const struct rgb *b)
{
	int64_t rm = (a->r + b->r) / 2;
	int64_t dr = a->r - b->r, dg = a->g - b->g, db = a->b - b->b;

	return (uint64_t)((512 + rm) * dr * dr + 1024 * dg * dg +
	    (767 - rm) * db * db);
}

static bool
near(const struct rgb *a, const struct rgb *b)
{
	return dist2(a, b) < (uint64_t)TALLY_COLOR_NEAR * TALLY_COLOR_NEAR * 256;
}

static struct rgb
tone(const struct rgb *c, int t)
{
	struct rgb o;

	if (t > 0) {
		o.r = c->r + (255 - c->r) * t / 100;
		o.g = c->g + (255 - c->g) * t / 100;
		o.b = c->b + (255 - c->b) * t / 100;
	} else {
		o.r = c->r * (100 + t) / 100;
		o.g = c->g * (100 + t) / 100;
		o.b = c->b * (100 + t) / 100;
	}
	return o;
}

/* Whether `c` is near any of the first `n` chosen colours. */
static bool
near_any(const struct rgb *c, const struct rgb *chosen, const bool *has,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (has[i] && near(c, &chosen[i]))
			return true;
	return false;
}

int
tally_palette_assign(const char *const *defined, size_t n,
    struct tally_color *out)
{
	/* Candidates for coalitions without a colour: the palette, then its
	 * tones; used[] marks those taken. */
	bool used[PALETTE_N * (TONES_N + 1)] = { false };
	struct rgb *rgb, cand;
	bool *has;
	size_t i, j, k, ncand = PALETTE_N * (TONES_N + 1), next = 0, wrap = 0;
	int ret = -1;

	if (n == 0)
		return 0;
	if ((rgb = calloc(n, sizeof(*rgb))) == NULL)
		return -1;
	if ((has = calloc(n, sizeof(*has))) == NULL)
		goto free_rgb;

	/* 1. Defined colours, each against the defined ones before it. */
	for (i = 0; i < n; i++) {
		if (defined[i] == NULL)
			continue;
		if (!parse(defined[i], &rgb[i]))
			goto free_has;
		out[i].source = TALLY_COLOR_DEFINITION;
		out[i].near = i;
		for (j = 0; j < i; j++)
			if (has[j] && near(&rgb[i], &rgb[j]))
				break;
		if (j < i) {
			/* Too near coalition j's: the first tone that is near
			 * no earlier colour, or the last one tried. */
			out[i].source = TALLY_COLOR_ADJUSTED;
			out[i].near = j;
			/* A dark colour is lightened first and a light one
			 * darkened first, so the tone stays readable on both
			 * the light and the dark card. */
			bool dark = (299 * rgb[i].r + 587 * rgb[i].g +
			    114 * rgb[i].b) / 1000 < 128;
			for (k = 0; k < TONES_N; k++) {
				cand = tone(&rgb[i], dark ? lighter_first[k] :
				    tones[k]);
				if (!near_any(&cand, rgb, has, i))
					break;
			}
			rgb[i] = cand;
		}
		has[i] = true;
		format(&rgb[i], out[i].hex);
	}

	/* 2. The others, from the palette, skipping what is near a colour
	 * already chosen (a defined colour anywhere in the definition). */
	for (i = 0; i < n; i++) {
		struct rgb base;

		if (defined[i] != NULL)
			continue;
		for (k = next; k < ncand; k++) {
			if (used[k])
				continue;
			parse(palette[k % PALETTE_N], &base);
			cand = k < PALETTE_N ? base :
			    tone(&base, tones[k / PALETTE_N - 1]);
			if (!near_any(&cand, rgb, has, n))
				break;
		}
		if (k >= ncand) {
			/* Every candidate is taken or too near: a definition with
			 * more than about 70 lists.  Start the palette again
			 * (the legend and titles still name each seat). */
			parse(palette[wrap++ % PALETTE_N], &cand);
		} else {
			used[k] = true;
			/* Take candidates in order: a skipped one stays
			 * skipped, so adding a list at the end of a definition
			 * changes no earlier list's colour. */
			next = k + 1;
		}
		rgb[i] = cand;
		has[i] = true;
		out[i].source = TALLY_COLOR_PALETTE;
		out[i].near = i;
		format(&rgb[i], out[i].hex);
	}
	ret = 0;
free_has:
	free(has);
free_rgb:
	free(rgb);
	return ret;
}

uint32_t
tally_color_distance(const char *a, const char *b)
{
	struct rgb x, y;
	uint64_t d2, r;

	if (!parse(a, &x) || !parse(b, &y))
		return UINT32_MAX;
	/* floor(sqrt(d2 / 256)), exactly. */
	d2 = dist2(&x, &y) / 256;
	for (r = 0; (r + 1) * (r + 1) <= d2; r++)
		;
	return (uint32_t)r;
}

bool
tally_color_is_near(const char *a, const char *b)
{
	struct rgb x, y;

	return parse(a, &x) && parse(b, &y) && near(&x, &y);
}

size_t
tally_palette_size(void)
{
	return PALETTE_N;
}

const char *
tally_palette_color(size_t i)
{
	return i < PALETTE_N ? palette[i] : NULL;
}

const char *
tally_color_source_name(enum tally_color_source s)
{
	switch (s) {
	case TALLY_COLOR_DEFINITION:
		return "definition";
	case TALLY_COLOR_PALETTE:
		return "palette";
	case TALLY_COLOR_ADJUSTED:
		return "adjusted";
	}
	return "definition";
}

void
tally_color_json(json_t *obj, const struct tally_coalition *c)
{
	json_object_set_new(obj, "color", json_string(c->shown.hex));
	json_object_set_new(obj, "color_source",
	    json_string(tally_color_source_name(c->shown.source)));
	if (c->shown.source == TALLY_COLOR_ADJUSTED && c->color != NULL)
		json_object_set_new(obj, "color_defined",
		    json_string(c->color));
}

void
tally_color_buf(struct tally_buf *b, const struct tally_coalition *c)
{
	/* "#rrggbb" and the source names need no escaping; a defined colour
	 * was checked to be "#" and six hex digits by the loader.  Put
	 * together here and added once: the leaderboard, rendered at every
	 * version, writes it for each coalition. */
	const char *src = tally_color_source_name(c->shown.source);
	size_t hl = strlen(c->shown.hex), sl = strlen(src), n = 0;
	char frag[160];
	bool defined = c->shown.source == TALLY_COLOR_ADJUSTED &&
	    c->color != NULL && strlen(c->color) < 32;

	if (hl >= 32 || sl >= 32) {
		tally_buf_str(b, ",\"color\":\"");
		tally_buf_str(b, c->shown.hex);
		tally_buf_str(b, "\",\"color_source\":\"");
		tally_buf_str(b, src);
		tally_buf_str(b, "\"");
		defined = false;
	} else {
#define FRAG(s, l)	do { memcpy(frag + n, (s), (l)); n += (l); } while (0)
#define FRAG_LIT(lit)	FRAG("" lit, sizeof(lit) - 1)
		FRAG_LIT(",\"color\":\"");
		FRAG(c->shown.hex, hl);
		FRAG_LIT("\",\"color_source\":\"");
		FRAG(src, sl);
		FRAG_LIT("\"");
		if (defined) {
			FRAG_LIT(",\"color_defined\":\"");
			FRAG(c->color, strlen(c->color));
			FRAG_LIT("\"");
		}
#undef FRAG_LIT
#undef FRAG
		tally_buf_add(b, frag, n);
		return;
	}
	if (c->shown.source == TALLY_COLOR_ADJUSTED && c->color != NULL) {
		tally_buf_str(b, ",\"color_defined\":\"");
		tally_buf_str(b, c->color);
		tally_buf_str(b, "\"");
	}
}
