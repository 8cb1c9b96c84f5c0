/*
 * response.c - shared bytes for answers: the chunks of response.h.
 *
 * A chunk is a reference-counted run of bytes, made once and sent by many:
 * a version's events go to every open event stream, a view's bytes to
 * every long-poll it wakes.  Only the loop thread touches a chunk, so the
 * count is a plain integer.  The bodies of response.h (an MHD_Response
 * underneath) are made in server.c, the one file that sees libmicrohttpd.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "response.h"

struct http_chunk {
	unsigned		 refs;		/* [L] */
	struct http_chunk	*framed;	/* [L] as one HTTP/1.1 chunk,
						   made when first asked */
	struct http_chunk	*deflated;	/* [L] compressed and framed,
						   made when first asked */
	uint32_t		 crc;		/* [L] of bytes, with deflated */
	size_t			 len;		/* [I] */
	char			 bytes[];	/* [I] len bytes and a NUL */
};

struct http_chunk *
http_chunk_new(const char *a, size_t alen, const char *b, size_t blen)
{
	struct http_chunk *c;

	if ((c = malloc(sizeof(*c) + alen + blen + 1)) == NULL)
		return NULL;
	c->refs = 1;
	c->framed = NULL;
	c->deflated = NULL;
	c->len = alen + blen;
	if (alen > 0)
		memcpy(c->bytes, a, alen);
	if (blen > 0)
		memcpy(c->bytes + alen, b, blen);
	c->bytes[c->len] = '\0';
	return c;
}

struct http_chunk *
http_chunk_join(struct http_chunk *const *parts, size_t n)
{
	struct http_chunk *c;
	size_t len = 0, off = 0, i;

	if (n == 1)
		return http_chunk_ref(parts[0]);
	for (i = 0; i < n; i++)
		len += parts[i]->len;
	if ((c = malloc(sizeof(*c) + len + 1)) == NULL)
		return NULL;
	c->refs = 1;
	c->framed = NULL;
	c->deflated = NULL;
	c->len = len;
	for (i = 0; i < n; i++) {
		memcpy(c->bytes + off, parts[i]->bytes, parts[i]->len);
		off += parts[i]->len;
	}
	c->bytes[len] = '\0';
	return c;
}

struct http_chunk *
http_chunk_ref(struct http_chunk *c)
{
	if (c != NULL)
		c->refs++;
	return c;
}

void
http_chunk_unref(struct http_chunk *c)
{
	if (c != NULL && --c->refs == 0) {
		http_chunk_unref(c->framed);
		http_chunk_unref(c->deflated);
		free(c);
	}
}

struct http_chunk *
http_chunk_framed(struct http_chunk *c)
{
	struct http_chunk *f;
	char head[24];
	int n;

	if (c->framed != NULL)
		return c->framed;
	n = snprintf(head, sizeof(head), "%zx\r\n", c->len);
	if ((f = malloc(sizeof(*f) + (size_t)n + c->len + 3)) == NULL)
		return NULL;
	f->refs = 1;
	f->framed = NULL;
	f->deflated = NULL;
	f->len = (size_t)n + c->len + 2;
	memcpy(f->bytes, head, (size_t)n);
	memcpy(f->bytes + n, c->bytes, c->len);
	memcpy(f->bytes + n + c->len, "\r\n", 3);
	c->framed = f;
	return f;
}

/*
 * One deflate stream, reset for each chunk (the loop thread only): its
 * state is about 256 KiB, made once.
 */
static z_stream	deflater;
static bool	deflater_ready;

struct http_chunk *
http_chunk_deflated(struct http_chunk *c, uint32_t *crc)
{
	struct http_chunk *f = NULL;
	char head[24];
	size_t cap, out;
	int n;

	if (c->deflated != NULL) {
		*crc = c->crc;
		return c->deflated;
	}
	if (!deflater_ready) {
		memset(&deflater, 0, sizeof(deflater));
		/* Raw deflate: the gzip header and trailer are the stream's. */
		if (deflateInit2(&deflater, 6, Z_DEFLATED, -15, 8,
		    Z_DEFAULT_STRATEGY) != Z_OK)
			return NULL;
		deflater_ready = true;
	} else if (deflateReset(&deflater) != Z_OK)
		return NULL;
	/* Room for the size line before and the CRLF after. */
	cap = deflateBound(&deflater, (uLong)c->len) + 16;
	if ((f = malloc(sizeof(*f) + 24 + cap + 3)) == NULL)
		return NULL;
	deflater.next_in = (Bytef *)c->bytes;
	deflater.avail_in = (uInt)c->len;
	deflater.next_out = (Bytef *)f->bytes + 24;
	deflater.avail_out = (uInt)cap;
	/*
	 * A sync flush ends the output on a byte boundary, without a final
	 * block, and nothing in it refers to earlier bytes: the outputs of
	 * any chunks, one after another, are one valid deflate stream.
	 */
	if (deflate(&deflater, Z_SYNC_FLUSH) != Z_OK ||
	    deflater.avail_in != 0) {
		free(f);
		return NULL;
	}
	out = cap - deflater.avail_out;
	n = snprintf(head, sizeof(head), "%zx\r\n", out);
	memmove(f->bytes + n, f->bytes + 24, out);
	memcpy(f->bytes, head, (size_t)n);
	memcpy(f->bytes + n + out, "\r\n", 3);
	f->refs = 1;
	f->framed = f->deflated = NULL;
	f->len = (size_t)n + out + 2;
	c->crc = (uint32_t)crc32(0L, (const Bytef *)c->bytes, (uInt)c->len);
	c->deflated = f;
	*crc = c->crc;
	return f;
}

const char *
http_chunk_bytes(const struct http_chunk *c, size_t *len)
{
	*len = c->len;
	return c->bytes;
}

bool
http_accepts_gzip(const char *ae)
{
	const char *p;

	if (ae == NULL)
		return false;
	/* "gzip" as a token, not followed by q=0. */
	for (p = ae; (p = strcasestr(p, "gzip")) != NULL; p += 4) {
		const char *q;
		if (p != ae && p[-1] != ' ' && p[-1] != ',')
			continue;
		q = p + 4;
		while (*q == ' ')
			q++;
		if (*q == ';') {
			q++;
			while (*q == ' ')
				q++;
			if (strncasecmp(q, "q=0", 3) == 0 &&
			    strspn(q + 3, ".0 ") == strcspn(q + 3, ","))
				return false;
		}
		return true;
	}
	return false;
}
