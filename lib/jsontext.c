/*
 * jsontext.c - JSON text written directly, byte for byte as jansson writes
 * it (JSON_COMPACT | JSON_ENSURE_ASCII), and the constant pieces of a
 * definition's leaderboard.
 *
 * The leaderboard is rendered at every version (the transparency log
 * hashes each one), and most of its bytes never change while a definition
 * is loaded: the election's id and name, and per coalition its id, names
 * and colour.  They are escaped once, when the definition is loaded
 * (tally_lb_pieces_create), and copied at each render (lib/render.c);
 * escaping them at every version was half of the render.  A definition
 * built by hand has no pieces and is rendered piece by piece: the same
 * bytes (tests/test_render.c compares both at every version of real
 * elections).
 */
#include <stdlib.h>
#include <string.h>

#include <tally/election.h>

#include "tally-private.h"

char *
tally_json_put_string(char *o, const char *str)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)str;

	*o++ = '"';
	while (*p != '\0') {
		uint32_t cp;
		int n, k;

		if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
			*o++ = (char)*p++;
			continue;
		}
		switch (*p) {
		case '"':	*o++ = '\\'; *o++ = '"'; p++; continue;
		case '\\':	*o++ = '\\'; *o++ = '\\'; p++; continue;
		case '\b':	*o++ = '\\'; *o++ = 'b'; p++; continue;
		case '\f':	*o++ = '\\'; *o++ = 'f'; p++; continue;
		case '\n':	*o++ = '\\'; *o++ = 'n'; p++; continue;
		case '\r':	*o++ = '\\'; *o++ = 'r'; p++; continue;
		case '\t':	*o++ = '\\'; *o++ = 't'; p++; continue;
		default:	break;
		}
		if (*p < 0x80) {
			cp = *p++;
		} else {
			n = *p >= 0xf0 ? 3 : *p >= 0xe0 ? 2 : 1;
			cp = *p++ & (0x3f >> n);
			for (k = 0; k < n && (*p & 0xc0) == 0x80; k++)
				cp = cp << 6 | (*p++ & 0x3f);
		}
		if (cp >= 0x10000) {
			uint32_t v = cp - 0x10000;
			uint32_t hi = 0xd800 | (v >> 10), lo = 0xdc00 | (v & 0x3ff);
			*o++ = '\\'; *o++ = 'u';
			*o++ = hex[hi >> 12]; *o++ = hex[(hi >> 8) & 15];
			*o++ = hex[(hi >> 4) & 15]; *o++ = hex[hi & 15];
			cp = lo;
		}
		*o++ = '\\'; *o++ = 'u';
		*o++ = hex[cp >> 12]; *o++ = hex[(cp >> 8) & 15];
		*o++ = hex[(cp >> 4) & 15]; *o++ = hex[cp & 15];
	}
	*o++ = '"';
	return o;
}

/* key (a literal, no escaping needed) and str escaped, onto b. */
static void
put_member(struct tally_buf *b, const char *key, const char *str)
{
	char *o;

	tally_buf_str(b, key);
	if ((o = tally_buf_room(b, TALLY_JSON_STRING_ROOM(strlen(str)))) !=
	    NULL) {
		o = tally_json_put_string(o, str);
		b->len = (size_t)(o - b->p);
		b->p[b->len] = '\0';
	}
}

struct tally_lb_pieces *
tally_lb_pieces_create(const struct tally_election *e)
{
	struct tally_lb_pieces *lp;
	struct tally_buf b = { NULL, 0, 0, false };
	uint32_t *by_id = NULL;
	size_t i, n = e->n_coalitions;

	if (n > UINT32_MAX || (lp = calloc(1, sizeof(*lp))) == NULL)
		return NULL;
	if ((lp->row = calloc(n + 1, sizeof(*lp->row))) == NULL ||
	    (lp->row_len = calloc(n + 1, sizeof(*lp->row_len))) == NULL ||
	    (lp->id_rank = calloc(n + 1, sizeof(*lp->id_rank))) == NULL ||
	    (by_id = malloc((n + 1) * sizeof(*by_id))) == NULL)
		goto fail;
	/* {"election":{"id":...,"name":...},"version": */
	put_member(&b, "{\"election\":{\"id\":", e->id);
	put_member(&b, ",\"name\":", e->name);
	tally_buf_str(&b, "},\"version\":");
	if (b.nomem) {
		free(b.p);	/* a buffer without memory keeps its bytes */
		goto fail;
	}
	lp->head = b.p;
	lp->head_len = b.len;
	for (i = 0; i < n; i++) {
		const struct tally_coalition *c = &e->coalitions[i];
		/* ,"id":...,"name":...,"short":...,"color":... */
		memset(&b, 0, sizeof(b));
		put_member(&b, ",\"id\":", c->id);
		put_member(&b, ",\"name\":", c->name);
		put_member(&b, ",\"short\":", c->short_name ? c->short_name :
		    c->name);
		tally_color_buf(&b, c);
		if (b.nomem) {
			free(b.p);
			goto fail;
		}
		lp->row[i] = b.p;
		lp->row_len[i] = b.len;
		by_id[i] = (uint32_t)i;
	}
	/*
	 * Each coalition's place in id order (strcmp: the ranking's last
	 * tie-break), by insertion: once a load, and without qsort's
	 * context in a static (a definition may be loaded on any thread).
	 */
	for (i = 1; i < n; i++) {
		uint32_t v = by_id[i];
		size_t j;
		for (j = i; j > 0 && strcmp(e->coalitions[v].id,
		    e->coalitions[by_id[j - 1]].id) < 0; j--)
			by_id[j] = by_id[j - 1];
		by_id[j] = v;
	}
	for (i = 0; i < n; i++)
		lp->id_rank[by_id[i]] = (uint32_t)i;
	lp->n = n;
	free(by_id);
	return lp;
fail:
	lp->n = n;
	free(by_id);
	tally_lb_pieces_destroy(lp);
	return NULL;
}

void
tally_lb_pieces_destroy(struct tally_lb_pieces *lp)
{
	size_t i;

	if (lp == NULL)
		return;
	for (i = 0; lp->row != NULL && i < lp->n; i++)
		free(lp->row[i]);
	free(lp->row);
	free(lp->row_len);
	free(lp->id_rank);
	free(lp->head);
	free(lp);
}
