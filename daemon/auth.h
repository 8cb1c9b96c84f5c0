/*
 * auth.h - bearer tokens for feeds (auth.c): who may post for which
 * provinces, and how often.
 *
 * Threads: [L] everything: the API checks tokens and takes from their
 * rate buckets on the loop, and a reload builds a new struct auth there
 * (main checks one before the loop with `check`).
 */
#ifndef TALLYD_AUTH_H
#define TALLYD_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include <tally/diag.h>
#include <tally/election.h>

#include "config.h"

struct auth;
struct token;

/*
 * Tokens from the token file, TALLYD_INGEST_TOKEN, or a generated one
 * (with `check`, nothing is generated or written).
 */
struct auth	*auth_create(const struct config *cf,
		    const struct tally_election *e, bool check,
		    struct tally_diag *diag);
void		 auth_destroy(struct auth *a);
const char	*auth_source(const struct auth *a);
/* 0 with *who set when the Authorization header holds a known token. */
int		 auth_check(const struct auth *a, const char *header,
		    const struct token **who);
/*
 * auth_check, remembered in *memo (a request's word, 0 at first; NULL:
 * none): a later call with the same memo and the same set of tokens gives
 * the same token without hashing the header again.
 */
int		 auth_check_memo(const struct auth *a, const char *header,
		    const struct token **who, uint64_t *memo);
/*
 * May t post for this province of this contest (its id; NULL: the first
 * contest, whose items need no CONTEST/ in the token file)?
 */
bool		 auth_may_post(const struct token *t, const char *contest,
		    const char *province);
/* May t post for some province of this contest (NULL: the first)? */
bool		 auth_may_post_contest(const struct token *t,
		    const char *contest);
/*
 * Check the items of further contests (CONTEST/id, or every province of a CONTEST) against the
 * contests served: es[0] the first (whose items auth_create checked), then
 * the others.  -1 with a problem in diag for each contest or province
 * unknown.
 */
int		 auth_resolve(const struct auth *a,
		    const struct tally_election *const *es, size_t n,
		    struct tally_diag *diag);
/*
 * May t make one more request at time `now` (monotonic seconds)?  false
 * with *retry_after (seconds) when it is over its rate.
 */
bool		 auth_take(const struct auth *a, const struct token *t,
		    double now, double *retry_after);
bool		 auth_ready(const struct auth *a, const struct token *t,
		    double now, double *retry_after);
const char	*auth_label(const struct token *t);

#endif
