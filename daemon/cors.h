/*
 * cors.h - cross-origin reads of the public API (cors_origin in
 * tallyd.conf).  Threads: the loop thread only; nothing here keeps state.
 */
#ifndef TALLYD_CORS_H
#define TALLYD_CORS_H

struct http_body;
struct http_reply;

/* Access-Control-Allow-Origin and -Expose-Headers on b; origin NULL: none. */
void	cors_headers(const char *origin, struct http_body *b);
/* A preflight's 204 (OPTIONS) in reply (new body).  -1 without memory. */
int	cors_preflight(const char *origin, struct http_reply *reply);

#endif
