/* util.c - small helpers shared by libtally's files. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/error.h>
#include <tally/file.h>

#include "tally-private.h"

int
tally_read_file(const char *path, char **bufp, size_t *lenp)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf = NULL, *n;
	size_t len = 0, cap = 0, got;
	int saved;

	if (f == NULL)
		return -1;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			if ((n = realloc(buf, cap + 1)) == NULL)
				goto fail;
			buf = n;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f))
				goto fail;
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	saved = errno ? errno : ENOMEM;
	if (f != stdin)
		fclose(f);
	free(buf);
	errno = saved;
	return -1;
}

char *
tally_buf_room(struct tally_buf *b, size_t n)
{
	if (b->nomem)
		return NULL;
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 256;
		char *np;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->nomem = true;
			return NULL;
		}
		b->p = np;
		b->cap = ncap;
	}
	return b->p + b->len;
}

void
tally_buf_add(struct tally_buf *b, const char *s, size_t n)
{
	char *o;

	if ((o = tally_buf_room(b, n)) == NULL)
		return;
	memcpy(o, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
tally_buf_str(struct tally_buf *b, const char *s)
{
	tally_buf_add(b, s, strlen(s));
}

void
tally_buf_uint(struct tally_buf *b, uint64_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	/* No printf: this runs for every number of every replayed feed. */
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	tally_buf_add(b, p, (size_t)(buf + sizeof(buf) - p));
}

void
tally_buf_printf(struct tally_buf *b, const char *fmt, ...)
{
	char tmp[512], *big;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(tmp)) {
		tally_buf_add(b, tmp, (size_t)n);
		return;
	}
	/* Longer than a line of SVG ever is: the whole of it all the same. */
	if ((big = malloc((size_t)n + 1)) == NULL) {
		b->nomem = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	tally_buf_add(b, big, (size_t)n);
	free(big);
}

void
tally_buf_xml(struct tally_buf *b, const char *s)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc;

		switch (*s) {
		case '&':	esc = "&amp;"; break;
		case '<':	esc = "&lt;"; break;
		case '>':	esc = "&gt;"; break;
		case '"':	esc = "&quot;"; break;
		case '\'':	esc = "&apos;"; break;
		default:	continue;
		}
		tally_buf_add(b, run, (size_t)(s - run));
		tally_buf_str(b, esc);
		run = s + 1;
	}
	tally_buf_add(b, run, (size_t)(s - run));
}

const char *
tally_json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:	return "an object";
	case JSON_ARRAY:	return "an array";
	case JSON_STRING:	return "a string";
	case JSON_INTEGER:	return "an integer";
	case JSON_REAL:		return "a number with a fraction";
	case JSON_TRUE:
	case JSON_FALSE:	return "a boolean";
	case JSON_NULL:		return "null";
	}
	return "?";
}

/*
 * jansson 2.14 does not always report a failed allocation: its lexer drops
 * the character it could not append (a vote count 40300 reads as 4030), and
 * json_object_set_new fails silently when the caller ignores its result.
 * So every allocation jansson makes goes through this counter, and whoever
 * parses or builds JSON compares it before and after: a change means the
 * result cannot be trusted.
 */
static unsigned long json_alloc_failures;

static void *
json_guard_malloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		json_alloc_failures++;
	return p;
}

void
tally_json_init(void)
{
	json_set_alloc_funcs(json_guard_malloc, free);
}

unsigned long
tally_json_failures(void)
{
	return json_alloc_failures;
}

const char *
tally_ptr_key(char *buf, size_t len, const char *base, const char *key)
{
	size_t n;

	/* Pointers are short; a truncated one still names the place. */
	if ((n = (size_t)snprintf(buf, len, "%s/", base)) >= len)
		n = len - 1;
	for (; *key != '\0' && n + 3 < len; key++) {
		if (*key == '~' || *key == '/') {
			buf[n++] = '~';
			buf[n++] = *key == '~' ? '0' : '1';
		} else
			buf[n++] = *key;
	}
	buf[n] = '\0';
	return buf;
}

int
tally_json_uint(const json_t *v, const char *p, uint64_t min, uint64_t max,
    uint64_t *out, struct tally_error *err)
{
	json_int_t i;

	if (!json_is_integer(v))
		return tally_error_set(err, TALLY_ERROR_INVALID, "wrong_type", p,
		    "must be an integer from %llu to %llu, not %s",
		    (unsigned long long)min, (unsigned long long)max,
		    tally_json_kind(v));
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return tally_error_set(err, TALLY_ERROR_INVALID, "out_of_range", p,
		    "must be an integer from %llu to %llu, not %lld",
		    (unsigned long long)min, (unsigned long long)max,
		    (long long)i);
	*out = (uint64_t)i;
	return 0;
}
