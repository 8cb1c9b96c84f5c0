/*
 * http_strict.h - reading a request as libmicrohttpd 0.9.75 parsed it: what
 * it lets through and tallyd refuses, how its own refusals read, and the
 * headers and query the API sees.  server.c's companion, and with it the
 * only file that includes <microhttpd.h> (a conn here is an
 * MHD_Connection).
 *
 * Threads: the loop thread only [L] (where libmicrohttpd runs); its one
 * piece of state is the catch of libmicrohttpd's own refusal pages.
 */
#ifndef TALLYD_HTTP_STRICT_H
#define TALLYD_HTTP_STRICT_H

#include <stdbool.h>
#include <stddef.h>

struct http_request;

/* What a header section says about the body that follows. */
struct http_head {
	unsigned		 content_length;	/* headers of each */
	unsigned		 transfer_encoding;
	unsigned		 host;
	bool			 chunked_only;	/* every TE is exactly chunked */
	const char		*content_encoding;	/* or NULL */
};

/* Is the raw request target free of an encoded NUL or slash in its path? */
bool		 http_strict_path(const char *raw_uri);
/*
 * Check the header section of conn (an MHD_Connection, in the headers-only
 * call; version as the access handler got it): NULL and head filled, or why
 * it is refused (a static string).  Relies on how libmicrohttpd 0.9.75
 * parses in place: see the comment in http_strict.c.
 */
const char	*http_strict_head(void *conn, const char *version,
		    struct http_head *head);
/*
 * One of libmicrohttpd's own refusal pages (its HTML text, borrowed): the
 * stable error code and the message tallyd answers with instead (static).
 */
void		 http_strict_page(const char *page, const char **code,
		    const char **message);
/*
 * The headers of rq that the API reads (If-None-Match, If-Modified-Since,
 * Authorization, Content-Type, Content-Encoding, Last-Event-ID), from conn;
 * borrowed from libmicrohttpd until the request completes.
 */
void		 http_strict_request(void *conn, struct http_request *rq);
/*
 * The whole answer of a refusal written on the socket (status line,
 * headers, JSON error body) into buf: its length, or -1 if it does not
 * fit.
 */
int		 http_strict_refusal(char *buf, size_t size, unsigned status,
		    const char *code, const char *message);
/* That answer written on conn (an MHD_Connection; tls: its GnuTLS
 * session) in one non-blocking send, before conn is closed. */
void		 http_strict_send_refusal(void *conn, bool tls, unsigned status,
		    const char *code, const char *message);
/*
 * libmicrohttpd's own refusals (an HTML page it makes and queues itself)
 * are not sent: fn(conn, status, code, message) answers them instead, and
 * libmicrohttpd closes the connection.  Without fn (NULL, the default)
 * its pages go out as they are.
 */
typedef void (*http_strict_refuse_fn)(void *conn, unsigned status,
    const char *code, const char *message);
void		 http_strict_on_refusal(http_strict_refuse_fn fn);

#endif
