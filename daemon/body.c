/*
 * body.c - request bodies in memory, within body_limit and body_memory.
 *
 * Decide before reading (issue 15): a body with a Content-Length reserves
 * all of it from the budget at its headers (body_expect), so a request the
 * budget cannot take is refused before a byte of it is read.  A chunked
 * body cannot say how long it is: it grows by doubling, reserving what it
 * holds, and is cut the moment it passes the limit.
 */
#include <stdlib.h>
#include <string.h>

#include "body.h"

/* Take `n` more bytes of body memory, within body_memory. */
static bool
body_reserve(struct body_budget *bb, struct body *b, size_t n)
{
	if (bb->reserved + n > bb->memory)
		return false;
	bb->reserved += n;
	b->reserved += n;
	return true;
}

bool
body_expect(struct body_budget *bb, struct body *b, size_t len)
{
	b->declared = len;
	return body_reserve(bb, b, len);
}

enum body_status
body_append(struct body_budget *bb, struct body *b, const char *data,
    size_t n)
{
	if (b->len + n > bb->limit)
		return BODY_TOO_LARGE;
	if (b->len + n > b->cap) {
		size_t ncap = b->cap ? b->cap : 1024;
		char *nb;
		/*
		 * A Content-Length body gets exactly its length (what the
		 * headers reserved); a chunked one grows by doubling, and what
		 * it holds is what it reserves.
		 */
		while (ncap < b->len + n)
			ncap *= 2;
		if (ncap > bb->limit)
			ncap = bb->limit;
		if (b->declared > 0)
			ncap = b->declared;
		if (ncap > b->reserved && !body_reserve(bb, b,
		    ncap - b->reserved))
			return BODY_BUSY;
		if ((nb = realloc(b->bytes, ncap)) == NULL)
			return BODY_NO_MEMORY;
		b->bytes = nb;
		b->cap = ncap;
	}
	memcpy(b->bytes + b->len, data, n);
	b->len += n;
	return BODY_OK;
}

void
body_finish(struct body_budget *bb, struct body *b)
{
	bb->reserved -= b->reserved;
	b->reserved = 0;
	free(b->bytes);
	b->bytes = NULL;
}
