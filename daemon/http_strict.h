/*
 * http_strict.h - HTTP that libmicrohttpd accepts and tallyd refuses
 * (http_strict.c): stateless checks server.c makes before a request
 * reaches the API.
 *
 * Threads: any; they keep no state.  In tallyd only server.c calls them,
 * on the loop thread, inside libmicrohttpd's callbacks (conn is an
 * MHD_Connection, so that this header needs no <microhttpd.h>).
 */
#ifndef TALLYD_HTTP_STRICT_H
#define TALLYD_HTTP_STRICT_H

#include <stdbool.h>

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

#endif
