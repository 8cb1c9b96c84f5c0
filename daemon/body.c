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

/*
 * libmicrohttpd's memory pool per connection (its default: 32 KiB): request
 * headers, the read buffer and the write buffer of a streamed body come
 * from it; a body passes through the read buffer in pieces, into struct
 * body, so its size is not bounded by the pool.  Measured: 32 KiB cost 37
 * KiB of RSS per idle event stream.
 *
 * libmicrohttpd 0.9.75 zeroes the whole pool after every request of a
 * keep-alive connection (MHD_pool_reset) and the unused half of the read
 * buffer before every answer: ~1.5 instructions a byte of the pool, 24k of
 * a POST's 141k instructions at 16 KiB (issue 24).  A separate ingest
 * listener takes feeds from machines, whose header sections are a few
 * hundred bytes: its pool is 8 KiB (12k instructions a POST fewer), which
 * holds a header section of up to about 7 KiB (larger: 431
 * headers_too_large, as past 16 KiB on the public listener).  The listener
 * that serves reads keeps 16 KiB: browsers and proxies send more.
 */
#ifndef CONNECTION_MEMORY
#define CONNECTION_MEMORY	(16 * 1024)
#endif
#ifndef INGEST_CONNECTION_MEMORY
#define INGEST_CONNECTION_MEMORY	(8 * 1024)
#endif

size_t
body_pool_size(bool feeds_only)
{
	return feeds_only ? INGEST_CONNECTION_MEMORY : CONNECTION_MEMORY;
}
