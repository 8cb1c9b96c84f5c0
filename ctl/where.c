/*
 * where.c - from the daemon's JSON pointer back to the operator's file.
 *
 * The daemon names what it refused with a JSON pointer into the body it
 * got ("/results/3/votes/000096").  The operator edited a file, so every
 * error is turned back into that file's line and column: for a JSON file
 * by walking the text along the pointer (jansson keeps no positions), for
 * a CSV export from the cell each member was made from, recorded while the
 * batch was built.  A pointer that names something tallyctl added itself
 * (a --revision) has no place in the file and is printed as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tallyctl.h"

/* ------------------------------------------------------------------ JSON */

struct scan {
	const char	*p, *end;
	unsigned	 line, col;
};

static void
adv(struct scan *s)
{
	if (s->p >= s->end)
		return;
	if (*s->p == '\n') {
		s->line++;
		s->col = 1;
	} else if (((unsigned char)*s->p & 0xC0) != 0x80)
		s->col++;
	s->p++;
}

static void
skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\n' || *s->p == '\r'))
		adv(s);
}

/* A string at s->p (on its quote); its raw text (escapes kept) in out. */
static int
scan_string(struct scan *s, char *out, size_t outsize, size_t *outlen)
{
	size_t n = 0;

	if (s->p >= s->end || *s->p != '"')
		return -1;
	adv(s);
	while (s->p < s->end && *s->p != '"') {
		char ch = *s->p;

		if (ch == '\\') {
			adv(s);
			if (s->p >= s->end)
				return -1;
			/* Pointers name ids, which never need escapes beyond
			 * these; anything else just fails to match. */
			switch (*s->p) {
			case '"': case '\\': case '/':
				ch = *s->p;
				break;
			default:
				ch = '\x01';
			}
		}
		if (n + 1 < outsize)
			out[n++] = ch;
		adv(s);
	}
	if (s->p >= s->end)
		return -1;
	adv(s);
	out[n < outsize ? n : outsize - 1] = '\0';
	*outlen = n;
	return 0;
}

static int skip_value(struct scan *s, int depth);

static int
skip_container(struct scan *s, char close, int depth)
{
	char key[8];
	size_t kl;

	adv(s);
	skip_ws(s);
	if (s->p < s->end && *s->p == close) {
		adv(s);
		return 0;
	}
	for (;;) {
		skip_ws(s);
		if (close == '}') {
			if (scan_string(s, key, sizeof(key), &kl) == -1)
				return -1;
			skip_ws(s);
			if (s->p >= s->end || *s->p != ':')
				return -1;
			adv(s);
		}
		if (skip_value(s, depth + 1) == -1)
			return -1;
		skip_ws(s);
		if (s->p >= s->end)
			return -1;
		if (*s->p == close) {
			adv(s);
			return 0;
		}
		if (*s->p != ',')
			return -1;
		adv(s);
	}
}

static int
skip_value(struct scan *s, int depth)
{
	char tmp[8];
	size_t n;

	if (depth > 64)
		return -1;
	skip_ws(s);
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '{':
		return skip_container(s, '}', depth);
	case '[':
		return skip_container(s, ']', depth);
	case '"':
		return scan_string(s, tmp, sizeof(tmp), &n);
	default:
		while (s->p < s->end && *s->p != ',' && *s->p != '}' &&
		    *s->p != ']' && *s->p != ' ' && *s->p != '\n' &&
		    *s->p != '\r' && *s->p != '\t')
			adv(s);
		return 0;
	}
}

/* The next reference token of a pointer, unescaped; NULL at the end. */
static const char *
next_token(const char *ptr, char *tok, size_t toksize)
{
	size_t n = 0;

	if (*ptr != '/')
		return NULL;
	for (ptr++; *ptr != '\0' && *ptr != '/'; ptr++) {
		char ch = *ptr;

		if (ch == '~' && (ptr[1] == '0' || ptr[1] == '1')) {
			ch = ptr[1] == '0' ? '~' : '/';
			ptr++;
		}
		if (n + 1 < toksize)
			tok[n++] = ch;
	}
	tok[n] = '\0';
	return ptr;
}

bool
where_json(const char *text, size_t len, const char *pointer, unsigned *line,
    unsigned *col)
{
	struct scan s = { text, text + len, 1, 1 };
	char tok[256], key[256];
	const char *ptr = pointer;
	size_t kl, idx, i;
	char *end;

	/* A byte order mark is not a character of the first line. */
	if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
		s.p += 3;
	skip_ws(&s);
	*line = s.line;
	*col = s.col;
	while ((ptr = next_token(ptr, tok, sizeof(tok))) != NULL) {
		skip_ws(&s);
		if (s.p >= s.end)
			return false;
		if (*s.p == '{') {
			adv(&s);
			for (;;) {
				unsigned kline, kcol;

				skip_ws(&s);
				if (s.p >= s.end || *s.p == '}')
					return false;
				kline = s.line;
				kcol = s.col;
				if (scan_string(&s, key, sizeof(key), &kl) == -1)
					return false;
				skip_ws(&s);
				if (s.p >= s.end || *s.p != ':')
					return false;
				adv(&s);
				if (kl == strlen(tok) && strcmp(key, tok) == 0) {
					/* A member: its key is what an operator
					 * looks for ("zz": 1 -- the "zz"). */
					*line = kline;
					*col = kcol;
					break;
				}
				if (skip_value(&s, 0) == -1)
					return false;
				skip_ws(&s);
				if (s.p < s.end && *s.p == ',')
					adv(&s);
			}
		} else if (*s.p == '[') {
			idx = strtoul(tok, &end, 10);
			if (*end != '\0' || end == tok)
				return false;
			adv(&s);
			for (i = 0; i < idx; i++) {
				skip_ws(&s);
				if (s.p >= s.end || *s.p == ']' ||
				    skip_value(&s, 0) == -1)
					return false;
				skip_ws(&s);
				if (s.p >= s.end || *s.p != ',')
					return false;
				adv(&s);
			}
			skip_ws(&s);
			if (s.p >= s.end || *s.p == ']')
				return false;
			*line = s.line;
			*col = s.col;
		} else
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------- CSV */

int
origin_entry(struct origin *org, unsigned line)
{
	unsigned *n;

	if ((n = realloc(org->lines, (org->n + 1) * sizeof(*n))) == NULL)
		return -1;
	org->lines = n;
	org->lines[org->n++] = line;
	return 0;
}

int
origin_cell(struct origin *org, size_t entry, const char *key, unsigned line,
    unsigned col)
{
	struct origin_cell *c;

	if (org->ncells == org->cellcap) {
		size_t ncap = org->cellcap ? org->cellcap * 2 : 64;
		if ((c = realloc(org->cells, ncap * sizeof(*c))) == NULL)
			return -1;
		org->cells = c;
		org->cellcap = ncap;
	}
	c = &org->cells[org->ncells];
	if ((c->key = strdup(key)) == NULL)
		return -1;
	c->entry = entry;
	c->line = line;
	c->col = col;
	org->ncells++;
	return 0;
}

void
origin_finish(struct origin *org)
{
	size_t i;

	for (i = 0; i < org->ncells; i++)
		free(org->cells[i].key);
	free(org->cells);
	free(org->lines);
	memset(org, 0, sizeof(*org));
}

bool
where_csv(const struct origin *org, const char *pointer, unsigned *line,
    unsigned *col)
{
	const struct origin_cell *best = NULL;
	unsigned long i;
	size_t k, n;
	char *rest;

	if (strncmp(pointer, "/results/", 9) != 0)
		return false;
	i = strtoul(pointer + 9, &rest, 10);
	if (rest == pointer + 9 || i >= org->n)
		return false;
	if (*rest == '/')
		rest++;
	/*
	 * The cell the member came from: the exact key ("votes/000096"), or
	 * the one the pointer descends into ("stations/total" came from the
	 * "stations" cell).  A member of the entry as a whole (a list that
	 * is missing, the status of --status) points at the row.
	 */
	for (k = 0; k < org->ncells; k++) {
		const struct origin_cell *c = &org->cells[k];

		if (c->entry != i)
			continue;
		n = strlen(c->key);
		if (strncmp(rest, c->key, n) == 0 &&
		    (rest[n] == '\0' || rest[n] == '/') &&
		    (best == NULL || n > strlen(best->key)))
			best = c;
	}
	if (best != NULL) {
		*line = best->line;
		*col = best->col;
	} else {
		*line = org->lines[i];
		*col = 1;
	}
	return true;
}
