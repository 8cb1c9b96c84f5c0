/*
 * cors.c - what a browser on another site needs to read tallyd's public
 * GETs: the Access-Control headers (RFC: the Fetch standard) on cacheable
 * bodies, and the answer to a preflight.  Off unless cors_origin is set.
 */
#include <stddef.h>

#include "server.h"
#include "cors.h"

/* Browsers on other sites may read public GETs (and their validators). */
void
cors_headers(const char *origin, struct http_body *b)
{
	if (origin == NULL)
		return;
	http_body_header(b, "Access-Control-Allow-Origin", origin);
	http_body_header(b, "Access-Control-Expose-Headers",
	    "ETag, Content-Location");
}

int
cors_preflight(const char *origin, struct http_reply *reply)
{
	static char empty[] = "";

	if ((reply->body = http_body_new(empty, 0, false)) == NULL)
		return -1;
	reply->status = 204;
	reply->owned = true;
	http_body_header(reply->body, "Allow", "GET, HEAD, OPTIONS");
	if (origin != NULL) {
		http_body_header(reply->body, "Access-Control-Allow-Origin",
		    origin);
		http_body_header(reply->body, "Access-Control-Allow-Methods",
		    "GET, HEAD, OPTIONS");
		http_body_header(reply->body, "Access-Control-Allow-Headers",
		    "If-None-Match, If-Modified-Since, Last-Event-ID, "
		    "Cache-Control");
		http_body_header(reply->body, "Access-Control-Max-Age", "86400");
	}
	http_body_header(reply->body, "Cache-Control", "no-store");
	return 0;
}
