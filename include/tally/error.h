/*
 * error.h - why an operation on the tally was refused.
 *
 * `kind` classifies the error (the daemon maps each kind to one HTTP status,
 * in one place); `code` is the stable snake_case name clients match on;
 * `field` is the JSON pointer of the offending value, if any; `message` says
 * what to fix.
 */
#ifndef TALLY_ERROR_H
#define TALLY_ERROR_H

#include <stddef.h>

enum tally_error_kind {
	TALLY_ERROR_NONE,
	TALLY_ERROR_SYNTAX,		/* malformed JSON, duplicate keys */
	TALLY_ERROR_INVALID,		/* well-formed but wrong: types, bounds, unknown names */
	TALLY_ERROR_NOT_FOUND,		/* no such province or coalition */
	TALLY_ERROR_CONFLICT,		/* stale revision, revision conflict */
	TALLY_ERROR_NOMEM,
	TALLY_ERROR_INTERNAL,		/* a broken invariant of the engine: a bug */
};

struct tally_error {
	enum tally_error_kind	kind;
	char			code[40];
	char			field[192];
	char			message[320];
};

/*
 * Every problem of one input (a feed): v holds the first `max` of the `n`
 * found.  The caller owns v.
 */
struct tally_errors {
	struct tally_error	*v;
	size_t			 max;
	size_t			 n;
};

/* Fill err (may be NULL); returns -1 for "return tally_error_set(...)". */
int	tally_error_set(struct tally_error *err, enum tally_error_kind kind,
	    const char *code, const char *field, const char *fmt, ...)
	    __attribute__((format(printf, 5, 6)));

/*
 * Route jansson's allocations through a counter of failures (call once at
 * start, before any JSON is parsed).  jansson may lose a character instead
 * of failing when memory runs out: a parse or a build during which
 * tally_json_failures() changed is to be treated as out of memory.  The
 * counter is not thread-safe: one thread uses jansson.
 */
void		tally_json_init(void);
unsigned long	tally_json_failures(void);

#endif
