/*
 * response.h - what a handler sees of one HTTP request and how it answers:
 * struct http_request in, struct http_reply out, with bodies (struct
 * http_body) and shared bytes (struct http_chunk).
 *
 * Threads: everything here belongs to the loop thread [L]; nothing is
 * locked.  libmicrohttpd runs on the loop too (server.c), so a body shared
 * by many responses is only ever touched there.
 *
 * Where it is implemented: the chunks in response.c (plain reference-counted
 * bytes, no libmicrohttpd); the bodies in body_mhd.c and the query
 * arguments in http_strict.c, files that see libmicrohttpd: a struct
 * http_body is an MHD_Response underneath (so a cached body is queued to
 * every reader without a copy), and a struct http_request's conn is its
 * MHD_Connection.  Nothing else may look under either.
 */
#ifndef TALLYD_RESPONSE_H
#define TALLYD_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stream_sub;

/*
 * A response body with its headers, shared by every request that sends it
 * (reference-counted by libmicrohttpd).  [L]
 */
struct http_body;

/* bytes: taken (freed when the last user is done) or static. */
struct http_body *http_body_new(char *bytes, size_t len, bool take);
void		 http_body_header(struct http_body *b, const char *name,
		    const char *value);
/* Drop our reference. */
void		 http_body_free(struct http_body *b);
/* A HEAD of an event stream's answer: its headers, no body (body_mhd.c). */
struct http_body *http_body_stream_head(const char *cors_origin);

/*
 * Bytes shared by many responses and event streams (reference-counted;
 * the loop thread only).  An event of a version is made once and every
 * subscriber sends the same chunk.
 */
struct http_chunk;

/* A new chunk holding a then b (copied); NULL without memory. */
struct http_chunk *http_chunk_new(const char *a, size_t alen, const char *b,
		    size_t blen);
/* A new chunk holding parts[0..n) in order (n >= 1; copied, or, for one
 * part, a new reference to it); NULL without memory. */
struct http_chunk *http_chunk_join(struct http_chunk *const *parts,
		    size_t n);
struct http_chunk *http_chunk_ref(struct http_chunk *c);
void		 http_chunk_unref(struct http_chunk *c);
const char	*http_chunk_bytes(const struct http_chunk *c, size_t *len);
/*
 * c framed as one chunk of HTTP/1.1's chunked coding ("<hex size>\r\n",
 * the bytes, "\r\n"), made once when first asked and freed with c: every
 * event stream written by the server itself sends the same framed bytes.
 * Borrowed (NULL without memory; c must not be empty).
 */
struct http_chunk *http_chunk_framed(struct http_chunk *c);
/*
 * c compressed on its own (raw deflate, ending in a sync flush: outputs of
 * chunks sent one after another form one deflate stream) and framed as one
 * HTTP/1.1 chunk, made once when first asked and freed with c: what an
 * event stream that takes gzip sends.  *crc: the CRC-32 of c's bytes (for
 * the gzip trailer).  Borrowed; NULL without memory.
 */
struct http_chunk *http_chunk_deflated(struct http_chunk *c, uint32_t *crc);
/* A body sending c's bytes (c borrowed: the body takes its own reference). */
struct http_body *http_body_from_chunk(struct http_chunk *c);

/* What the server needs to answer one request. */
struct http_reply {
	unsigned		 status;
	struct http_body	*body;		/* borrowed from a cache, or new */
	bool			 owned;		/* body freed after queueing */
	bool			 pending;	/* answered later: server_resume */
	struct http_chunk	*stream;	/* an event stream starting with
						   this (taken): status 200 */
	struct stream_sub	*stream_sub;	/* taken with stream: what it
						   follows (stream.h); NULL:
						   the first contest's events */
};

/* One complete request, as the server hands it to the API. */
struct http_request {
	bool			 ingest;	/* arrived on a feed listener */
	const char		*method;
	const char		*path;
	const char		*if_none_match;
	const char		*if_modified_since;
	const char		*authorization;
	const char		*content_type;
	const char		*content_encoding;
	const char		*last_event_id;
	bool			 gzip_ok;	/* Accept-Encoding allows gzip */
	const char		*body;
	size_t			 body_len;
	void			*conn;		/* the server's, for http_arg */
	void			*ctx;		/* the server's, for server_resume */
	uint64_t		*memo;		/* the server's word for this
						   request, kept from the admit
						   call to the handle call, or
						   NULL: the API's (ingest.c: the
						   token found at admission) */
};

/* Does an Accept-Encoding value (or NULL) take gzip: "gzip" as a token,
 * not with q=0? */
bool		 http_accepts_gzip(const char *accept_encoding);

/* A query argument of the request, or NULL. */
const char	*http_arg(const struct http_request *rq, const char *name);
/* Every query argument of the request, in order, repeats included (a
 * bare `?name` has value NULL). */
void		 http_args_each(const struct http_request *rq,
		    void (*fn)(void *, const char *, const char *), void *arg);

#endif
