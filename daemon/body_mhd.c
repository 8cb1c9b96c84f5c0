/*
 * body_mhd.c - the bodies of response.h (struct http_body), which are
 * libmicrohttpd responses underneath: reference-counted by libmicrohttpd,
 * so a cached body is queued to every reader without a copy.  Out of
 * server.c (issue 22's limit on its size); like it and http_strict.c, a
 * file that sees libmicrohttpd.
 *
 * Threads: the loop thread only [L] (libmicrohttpd runs there too).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <microhttpd.h>

#include "response.h"

static void
chunk_free(void *cls)
{
	http_chunk_unref(cls);
}

/*
 * The chunk's bytes themselves, not a copy: libmicrohttpd sends them from
 * the chunk (header and body in one sendmsg), and the body's reference is
 * dropped when its last request is done.  (A response from a callback
 * allocated and zeroed a block of up to 16 KiB per long-poll answer and
 * copied the bytes into it.)
 */
struct http_body *
http_body_from_chunk(struct http_chunk *c)
{
	struct MHD_Response *r;
	const char *bytes;
	size_t len;

	bytes = http_chunk_bytes(c, &len);
	r = MHD_create_response_from_buffer_with_free_callback_cls(len,
	    (void *)(uintptr_t)bytes, chunk_free, c);
	if (r != NULL)
		http_chunk_ref(c);
	return (struct http_body *)r;
}

struct http_body *
http_body_new(char *bytes, size_t len, bool take)
{
	return (struct http_body *)MHD_create_response_from_buffer(len, bytes,
	    take ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
}

void
http_body_header(struct http_body *b, const char *name, const char *value)
{
	if (b != NULL)
		MHD_add_response_header((struct MHD_Response *)b, name, value);
}

void
http_body_free(struct http_body *b)
{
	if (b != NULL)
		MHD_destroy_response((struct MHD_Response *)b);
}

/*
 * The answer to a HEAD of an event stream: the stream's headers and no
 * stream.  Sent as a stream, its unknown size goes out chunked, and
 * libmicrohttpd 0.9.75 writes the last chunk ("0\r\n\r\n") even after a
 * HEAD's head, which a keep-alive client then reads as the start of its
 * next response.  An empty body instead: its Content-Length: 0 is the one
 * header a GET would not have.
 */
struct http_body *
http_body_stream_head(const char *cors_origin)
{
	struct http_body *b = http_body_new(NULL, 0, false);

	http_body_header(b, "Content-Type", "text/event-stream; "
	    "charset=utf-8");
	http_body_header(b, "Cache-Control", "no-store");
	http_body_header(b, "X-Accel-Buffering", "no");
	if (cors_origin != NULL) {
		http_body_header(b, "Access-Control-Allow-Origin",
		    cors_origin);
		http_body_header(b, "Access-Control-Expose-Headers",
		    "ETag, Content-Location");
	}
	return b;
}
