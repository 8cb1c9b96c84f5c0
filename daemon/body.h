/*
 * body.h - request bodies in memory, within two budgets: body_limit for
 * one body, body_memory for all of them at once.  No libmicrohttpd here:
 * server.c hands over the bytes as they arrive and answers the refusals.
 *
 * Threads: the loop thread only [L].
 */
#ifndef TALLYD_BODY_H
#define TALLYD_BODY_H

#include <stdbool.h>
#include <stddef.h>

/* The budget every body of a server reserves from. */
struct body_budget {
	size_t		 limit;		/* [I] one body, bytes */
	size_t		 memory;	/* [I] all bodies buffered at once */
	size_t		 reserved;	/* [L] reserved now, all bodies */
};

/* One request's body; zeroed: empty, nothing reserved. */
struct body {
	char		*bytes;		/* [L] len bytes, cap allocated */
	size_t		 len;
	size_t		 cap;
	size_t		 reserved;	/* [L] counted in the budget */
	size_t		 declared;	/* [L] Content-Length; 0: chunked */
};

enum body_status {
	BODY_OK,
	BODY_TOO_LARGE,		/* past the limit */
	BODY_BUSY,		/* past the memory budget */
	BODY_NO_MEMORY,
};

/*
 * Before the first byte: a body of Content-Length `len` reserves all of it
 * now; false when the budget cannot take it.
 */
bool		 body_expect(struct body_budget *bb, struct body *b, size_t len);
/*
 * n more bytes (copied).  Not BODY_OK: they are not taken (a reservation
 * made for them stays with b until body_finish).
 */
enum body_status body_append(struct body_budget *bb, struct body *b,
		    const char *data, size_t n);
/* The request is over: free b and give its reservation back. */
void		 body_finish(struct body_budget *bb, struct body *b);
/*
 * The size of libmicrohttpd's memory pool per connection of a listener
 * (body.c says why); `feeds_only`: the listener of a separate
 * `ingest_listen`.
 */
size_t		 body_pool_size(bool feeds_only);

#endif
