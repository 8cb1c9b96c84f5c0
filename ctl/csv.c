/*
 * csv.c - RFC 4180 records, each field with the line and column where it
 * starts, so that every complaint about a commission's export can point at
 * the cell.
 *
 * Accepted: a UTF-8 byte order mark, CRLF or LF line ends, quoted fields
 * with "" for a quote and line breaks inside.  Columns count characters
 * (UTF-8 continuation bytes do not advance them).  Blank lines are skipped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tallyctl.h"

int
csv_open(struct csv *c, const char *path, char *err, size_t errsize)
{
	memset(c, 0, sizeof(*c));
	c->name = strcmp(path, "-") == 0 ? "<stdin>" : path;
	c->f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (c->f == NULL) {
		snprintf(err, errsize, "%s: %s", path, strerror(errno));
		return -1;
	}
	c->line = 1;
	c->col = 1;
	c->peeked = -2;
	c->first = true;
	return 0;
}

void
csv_close(struct csv *c)
{
	if (c->f != NULL && c->f != stdin)
		fclose(c->f);
	free(c->fields);
	free(c->buf);
	free(c->offs);
	memset(c, 0, sizeof(*c));
}

/* The next byte, with the position of the *following* one tracked. */
static int
get(struct csv *c)
{
	int ch;

	if (c->peeked != -2) {
		ch = c->peeked;
		c->peeked = -2;
	} else
		ch = getc(c->f);
	if (ch == '\n') {
		c->line++;
		c->col = 1;
	} else if (ch != EOF && ((unsigned)ch & 0xC0) != 0x80)
		c->col++;
	return ch;
}

static int
peek(struct csv *c)
{
	if (c->peeked == -2)
		c->peeked = getc(c->f);
	return c->peeked;
}

static int
put(struct csv *c, int ch)
{
	if (c->blen + 1 >= c->bcap) {
		size_t ncap = c->bcap ? c->bcap * 2 : 256;
		char *n = realloc(c->buf, ncap);
		if (n == NULL)
			return -1;
		c->buf = n;
		c->bcap = ncap;
	}
	c->buf[c->blen++] = (char)ch;
	return 0;
}

static int
start_field(struct csv *c, unsigned line, unsigned col)
{
	if (c->n == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		struct csv_field *n = realloc(c->fields, ncap * sizeof(*n));
		size_t *o = realloc(c->offs, ncap * sizeof(*o));
		if (n != NULL)
			c->fields = n;
		if (o != NULL)
			c->offs = o;
		if (n == NULL || o == NULL)
			return -1;
		c->cap = ncap;
		c->ocap = ncap;
	}
	c->fields[c->n].line = line;
	c->fields[c->n].col = col;
	c->offs[c->n] = c->blen;
	c->n++;
	return 0;
}

int
csv_next(struct csv *c, char *err, size_t errsize)
{
	int ch;
	size_t i;

	if (c->first) {
		c->first = false;
		/* A byte order mark from spreadsheet exports. */
		if (peek(c) == 0xEF) {
			int a = get(c), b = getc(c->f), d = getc(c->f);
			if (b != 0xBB || d != 0xBF) {
				snprintf(err, errsize, "%s:1:1: not UTF-8 text",
				    c->name);
				return -1;
			}
			(void)a;
			c->col = 1;
		}
	}
	for (;;) {
		c->n = 0;
		c->blen = 0;
		ch = peek(c);
		if (ch == EOF)
			return ferror(c->f) ? (snprintf(err, errsize, "%s: %s",
			    c->name, strerror(errno)), -1) : 0;
		if (ch == '\n' || ch == '\r') {	/* a blank line */
			get(c);
			if (ch == '\r' && peek(c) == '\n')
				get(c);
			continue;
		}
		break;
	}
	for (;;) {				/* one field per turn */
		unsigned line = c->line, col = c->col;

		if (start_field(c, line, col) == -1)
			goto nomem;
		if (peek(c) == '"') {
			get(c);
			for (;;) {
				ch = get(c);
				if (ch == EOF) {
					snprintf(err, errsize, "%s:%u:%u: the quote "
					    "opened here is never closed",
					    c->name, line, col);
					return -1;
				}
				if (ch == '"') {
					if (peek(c) != '"')
						break;
					get(c);
				}
				if (put(c, ch) == -1)
					goto nomem;
			}
			ch = peek(c);
			if (ch != ',' && ch != '\n' && ch != '\r' && ch != EOF) {
				snprintf(err, errsize, "%s:%u:%u: expected a comma "
				    "or the end of the line after the closing "
				    "quote", c->name, c->line, c->col);
				return -1;
			}
		} else {
			for (;;) {
				ch = peek(c);
				if (ch == ',' || ch == '\n' || ch == '\r' ||
				    ch == EOF)
					break;
				if (ch == '"') {
					snprintf(err, errsize, "%s:%u:%u: a quote "
					    "inside an unquoted field (quote the "
					    "whole field and double the quote)",
					    c->name, c->line, c->col);
					return -1;
				}
				if (ch == '\0') {
					snprintf(err, errsize, "%s:%u:%u: a NUL "
					    "byte", c->name, c->line, c->col);
					return -1;
				}
				get(c);
				if (put(c, ch) == -1)
					goto nomem;
			}
		}
		if (put(c, '\0') == -1)
			goto nomem;
		ch = get(c);
		if (ch == ',')
			continue;
		if (ch == '\r' && peek(c) == '\n')
			get(c);
		break;
	}
	for (i = 0; i < c->n; i++)
		c->fields[i].text = c->buf + c->offs[i];
	return 1;
nomem:
	snprintf(err, errsize, "%s: out of memory", c->name);
	return -1;
}
