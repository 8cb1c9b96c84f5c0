/*
 * reply.h - answers built without any state of the API: JSON bodies that
 * are never stored by caches, and the API's JSON error shape.
 *
 * Threads: the loop thread only (http_body_new and its headers are the
 * server's, which runs on the loop).  Nothing here keeps state.
 */
#ifndef TALLYD_REPLY_H
#define TALLYD_REPLY_H

#include <stdarg.h>

struct http_reply;
struct tally_errors;
struct json_t;

/* A newline at the end of a NUL-terminated body (taken); new, or NULL. */
char	*reply_with_newline(char *bytes);
/*
 * An uncached JSON reply from j (taken, may be NULL): compact, ending in a
 * newline, Cache-Control: no-store.  Without memory, the status (503 in
 * place of a 2xx-4xx) goes out with an empty body.
 */
void	 reply_json(struct http_reply *reply, unsigned status,
	    struct json_t *j);
/* The same with `member` (borrowed, may be NULL: ",\"key\":value", JSON
 * written by the caller) added after j's last member: a POST's receipt,
 * without a round through jansson for every version. */
void	 reply_json_with(struct http_reply *reply, unsigned status,
	    struct json_t *j, const char *member);
/* The same for a body the caller wrote (taken, may be NULL: out of memory),
 * NUL-terminated, its newline included. */
void	 reply_json_text(struct http_reply *reply, unsigned status,
	    char *bytes);
/*
 * The API's error body: {"error": {code, message, field}} and, with more
 * than one problem in all (borrowed, may be NULL), "errors" beside it.  The
 * status is kept even without memory for a body.
 */
void	 reply_verror(struct http_reply *reply, unsigned status,
	    const char *code, const char *field, const struct tally_errors *all,
	    const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));
/* api_error (api.h), the same shape for the server's own refusals. */

#endif
