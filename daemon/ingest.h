/*
 * ingest.h - feeds and lots: admission and the POST handlers.
 *
 * Threads: the loop thread only.  A POST that reaches the core is left
 * pending (reply->pending) and answered later through server_resume, on
 * the loop, when its round is durable.
 *
 * Depends on: call (refusals, counters), reply, auth (tokens, rates), core
 * (submission, dry runs against the applied state).  Nothing of views or
 * live: what a new version changes reaches them through the core.
 */
#ifndef TALLYD_INGEST_H
#define TALLYD_INGEST_H

#include <stdbool.h>

struct call;
struct json_t;
struct token;

/* POST /v1/provinces/{id}/results, /v1/results, /v1/provinces/{id}/lot. */
void	ingest_post_province(struct call *cl, const char *id);
void	ingest_post_batch(struct call *cl, const char *id);
void	ingest_post_lot(struct call *cl, const char *id);
/*
 * A feed route's query: `dry_run` once (1/true/yes, 0/false/no) and nothing
 * else (sets cl->dry_run).  false after a 400 bad_query.
 */
bool	ingest_query(struct call *cl);
/*
 * Before any body byte is read: listener, token, media type, encoding,
 * query and the token's rate (not taken).  false after a refusal.
 */
bool	ingest_admit(struct call *cl);
/* A feed's gates (admission, the token's rate) for another token POST
 * (calls.c): false after a refusal. */
bool	ingest_gate(struct call *cl, const struct token **who);
/* Those gates one by one, without the route's contest: a batch across
 * contests checks each entry's (contests_batch.c). */
bool	ingest_admit_token(struct call *cl, const struct token **who);
bool	ingest_take_rate(struct call *cl, const struct token *who);
/*
 * The batch `body` (taken) of the route's contest, past its gates: parsed,
 * authorised, submitted (contests_batch.c when no entry names another).
 */
void	ingest_batch(struct call *cl, const struct token *who,
	    struct json_t *body);
/* A POST's body as JSON (new), or NULL after a 400, 422 or 503. */
struct json_t *ingest_body(struct call *cl);

#endif
