/*
 * calls.h - race calls: the certain ones the exact bounds prove, and the
 * ones a desk declares.
 *
 * A `certain` call is derived from the state's exact seat bounds
 * (tally/bounds.h) after each applied version: a province's seats (every
 * list's fewest equal its most), the national first place (the leader's
 * fewest above every other coalition's most) and a majority clinched (a
 * coalition's fewest reach the majority).  It takes the version (and the
 * received_at of the newest count) at which it first became true.  It is
 * kept in the state, which is a pure function of the log: every node that
 * applies the same log, and every restart that replays it, finds the same
 * calls at the same versions.  Should a later correction make one false
 * again, it is marked retracted at that version, never removed.
 *
 * A `declared` call is editorial: a desk posts it (POST /v1/calls), it is a
 * record of the log (the "calls" member of a journal record) and takes the
 * version of its record; retracting it is another record, and it is kept,
 * marked retracted.
 *
 * A call's id names it for good, whatever else the log or the definition
 * holds: a declared call's is "d<version>", the version of the record that
 * declared it (one call a record); a certain call's is "c<version>.<k>", the
 * k-th certain call made at that version (in the order of the subjects:
 * provinces, the first place, the majorities).  So a declared call keeps
 * its id when an edited definition taken at a restart derives other certain
 * calls, or finds a call before it moot: a desk retracts it by that id, and
 * a retraction's record names it by that id.
 */
#ifndef TALLY_CALLS_H
#define TALLY_CALLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/election.h>
#include <tally/error.h>
#include <tally/state.h>

struct json_t;

#define TALLY_CALL_NOTE_MAX	500	/* bytes of a declared call's note */
#define TALLY_CALL_ID_MAX	48	/* bytes of a call's id, with its NUL */

enum tally_call_kind { TALLY_CALL_CERTAIN, TALLY_CALL_DECLARED };
enum tally_call_scope { TALLY_CALL_PROVINCE, TALLY_CALL_NATIONAL };
enum tally_call_what {
	TALLY_CALL_SEATS,
	TALLY_CALL_FIRST_PLACE,
	TALLY_CALL_MAJORITY,
};

struct tally_call {
	char			 id[TALLY_CALL_ID_MAX];	/* see above; "" until
						   its version is known */
	enum tally_call_kind	 kind;
	enum tally_call_scope	 scope;
	enum tally_call_what	 what;
	size_t			 province;	/* SIZE_MAX: national */
	size_t			 coalition;	/* SIZE_MAX: none named */
	uint64_t		 version;	/* first true / declared */
	char			 at[40];	/* its record's received_at */
	char			*note;		/* owned or NULL */
	char			*by;		/* token label, owned or NULL */
	/* A certain province call: the seats it called, per coalition
	 * (n_coalitions entries, owned); NULL otherwise. */
	uint32_t		*seats;
	bool			 retracted;
	uint64_t		 retracted_version;
	char			 retracted_at[40];
};

/* A request: declare a call, or retract declared call `id`. */
struct tally_call_op {
	bool			 retract;
	char			 id[TALLY_CALL_ID_MAX];	/* retract */
	/* A record written before ids were stable names the call by its
	 * place in the list (1-based): read so, or 0. */
	uint64_t		 legacy_index;
	enum tally_call_scope	 scope;		/* declare: */
	enum tally_call_what	 what;
	size_t			 province;	/* SIZE_MAX: national */
	size_t			 coalition;	/* SIZE_MAX: none */
	char			*note;		/* owned or NULL */
	char			*by;		/* owned or NULL (cleaned label) */
	char			 received_at[40];
};

void	tally_call_op_destroy(struct tally_call_op *op);
/*
 * A declared call's body {"scope", "province"?, "what", "coalition"?,
 * "note"?} (borrowed): a new op, or NULL with err (422: wrong_type,
 * unknown_field, missing_field, bad_value, unknown_province,
 * unknown_coalition, coalition_required, coalition_not_allowed,
 * province_required, province_not_allowed, bad_call, note_too_long).
 */
struct tally_call_op *tally_call_op_parse(const struct tally_election *e,
	    struct json_t *body, struct tally_error *err);
/*
 * A retraction of call `id` (any string: one no call has is refused at the
 * check, 404 unknown_call): a new op, or NULL (out of memory).
 */
struct tally_call_op *tally_call_op_retract(const char *id);

/*
 * Would op be accepted now?  A declaration always; a retraction only of a
 * declared call not yet retracted: 404 unknown_call, 409 not_declared (a
 * certain call is the bounds', not a desk's), 409 already_retracted.
 * Changes nothing.  0, or -1 with err.
 */
int	tally_calls_check(const struct tally_state *s,
	    const struct tally_call_op *op, struct tally_error *err);
/*
 * Would op repeat what stands?  A declaration: the newest declared call not
 * retracted with the same scope, province, what, coalition and note (a
 * retried POST; whoever posted it).  A retraction: the call, if it is
 * retracted already.  NULL when op would change something.
 */
const struct tally_call *tally_calls_duplicate(const struct tally_state *s,
	    const struct tally_call_op *op);
/*
 * Apply a checked op (taken on every path) as part of the record being
 * applied: the call (or its retraction) takes the record's version at the
 * next tally_calls_observe.  0, or -1 with err (refused: the check fails;
 * out of memory).
 */
int	tally_calls_apply(struct tally_state *s, struct tally_call_op *op,
	    struct tally_error *err);
/*
 * The state reached version s->version: declared calls and retractions of
 * the record take it, and the certain calls are derived from the bounds
 * (new ones take it; those the bounds no longer prove are retracted at
 * it).  Call it once per applied version, on apply and on replay.  0, or
 * -1 on allocation failure (the calls are then incomplete until the next
 * version: the caller treats it as fatal, as for the state).
 */
int	tally_calls_observe(struct tally_state *s);

/* Every call, in order (borrowed; *n of them). */
const struct tally_call *tally_calls_list(const struct tally_state *s,
	    size_t *n);
/* One call as the API shows it (new). */
struct json_t *tally_call_json(const struct tally_state *s,
	    const struct tally_call *c);
/* GET /v1/calls: {"version", "calls": [...]} (new). */
struct json_t *tally_render_calls(const struct tally_state *s);
/* The calls for a snapshot's header (new), and back (0, or -1 with err). */
struct json_t *tally_calls_dump(const struct tally_state *s);
int	tally_calls_load(struct tally_state *s, const struct json_t *a,
	    struct tally_error *err);

/* The op as a record's "calls" member entry (new). */
struct json_t *tally_call_op_record(const struct tally_state *s,
	    const struct tally_call_op *op);
/*
 * One journal record for op: {"version", "received_at", "by"?,
 * "results": [], "calls": [op]}.  *out is new (free).  0 or -1.
 */
int	tally_journal_encode_call(const struct tally_state *s, uint64_t seq,
	    uint64_t version, const char *received_at,
	    const struct tally_call_op *op, char **out, size_t *outlen);
/*
 * A record's "calls" member (borrowed; NULL: none) applied to s: each
 * entry checked and applied (tally_calls_apply).  0, or -1 with err.
 */
int	tally_calls_apply_record(struct tally_state *s, const struct json_t *a,
	    const char *received_at, const char *by, struct tally_error *err);

#endif
