/*
 * feed.h - one province's result snapshot, as posted by a feed.
 *
 * A feed is a cumulative snapshot (not an increment) that replaces the
 * province's previous one.  Parsing validates every field against the
 * election and produces a canonical form (sorted keys, compact JSON) so that
 * an identical retry is recognised by comparing bytes.
 */
#ifndef TALLY_FEED_H
#define TALLY_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/election.h>
#include <tally/error.h>

struct json_t;

#define TALLY_REVISION_MAX	1000000000000000ULL	/* 10^15 */
#define TALLY_STATIONS_MAX	1000000000ULL
#define TALLY_NOTE_MAX		2000			/* bytes */

enum tally_status { TALLY_STATUS_NONE, TALLY_STATUS_PARTIAL, TALLY_STATUS_FINAL };

struct tally_feed_list {
	const char	*id;		/* as posted: the election's coalition id
					 * or alias string (borrowed) */
	size_t		 coalition;		/* index in election->coalitions */
	uint64_t	 votes;
};

struct tally_feed {
	size_t			 province;	/* index in election->provinces */
	uint64_t		 revision;
	size_t			 n_lists;
	struct tally_feed_list	*lists;		/* sorted by id */
	uint64_t		 blank;
	uint64_t		 invalid;
	bool			 has_stations;
	uint64_t		 stations_reporting;
	uint64_t		 stations_total;
	bool			 has_registered;	/* the electorate, if posted */
	uint64_t		 registered;
	enum tally_status	 status;
	char			 reported_at[40];	/* as posted (RFC 3339) or "" */
	char			*note;			/* or NULL */
	char			*canonical;		/* canonical JSON, NUL-terminated */
	size_t			 canonical_len;
	/*
	 * The label of the token that posted it, or NULL: journaled beside
	 * the canonical feed, never in it (a retry with another token is
	 * still a duplicate).  Owned.  tally_label_clean makes it safe to
	 * write into JSON unescaped.
	 */
	char			*by;
	/*
	 * The version that applied it: 0 before it is applied (then
	 * tally_state_apply takes the state's next version, as it marks the
	 * province `changed`), the kept one when a snapshot is read back,
	 * TALLY_VERSION_UNKNOWN
	 * from a snapshot written before versions were kept in it.  Never
	 * part of the canonical form.
	 */
	uint64_t		 version;
	uint64_t		 trial_;	/* state.c's mark, never canonical */
};

/* A revision's version that no kept record says (an older snapshot). */
#define TALLY_VERSION_UNKNOWN	UINT64_MAX

/* A copy of a token label (new) with '"', '\\' and controls made '_'. */
char			*tally_label_clean(const char *label);

/*
 * Validate one snapshot `body` for province `province_id` (both borrowed).
 * `ptr` prefixes JSON pointers in errors ("" for a single POST,
 * "/results/3" in a batch).  With `province_id` NULL, the body must name
 * its province in a "province" member (batch entries).  Returns a new feed
 * (tally_feed_destroy), or NULL with err filled.
 */
struct tally_feed	*tally_feed_parse(const struct tally_election *e,
			    const char *province_id, struct json_t *body,
			    const char *ptr, struct tally_error *err);
/*
 * The same, but every problem of the body is kept in `all` (the first also
 * in err), as the definition loader does, so a sender fixes them at once.
 */
struct tally_feed	*tally_feed_parse_all(const struct tally_election *e,
			    const char *province_id, struct json_t *body,
			    const char *ptr, struct tally_error *err,
			    struct tally_errors *all);
void			 tally_feed_destroy(struct tally_feed *f);

/*
 * A fast path for a single POST body (text, len) for province_id: a new
 * feed when the body is a plain valid snapshot, NULL otherwise -- then the
 * caller parses it with jansson and tally_feed_parse, which names any
 * problem.  Any body accepted here gives the same feed there.
 */
struct tally_feed	*tally_feed_scan(const struct tally_election *e,
			    const char *province_id, const char *text, size_t len);

/*
 * Read one feed in exactly the canonical form (as journal records hold
 * them) at text[0..len): a fast path for replay that skips the general
 * parser.  Returns a new feed and the bytes it took in *used, or NULL when
 * the text is not canonical (the caller then uses tally_feed_parse).
 */
struct tally_feed	*tally_feed_read_canonical(const struct tally_election *e,
			    const char *text, size_t len, size_t *used);

/* Does `s` read as an RFC 3339 date-time (2018-05-14T18:00:00Z, offsets, fractions)? */
bool			 tally_rfc3339_is_valid(const char *s);

const char		*tally_status_name(enum tally_status s);

/* Where a province's bound on the uncounted ballots comes from. */
enum tally_uncounted {
	TALLY_UNCOUNTED_UNKNOWN,	/* none: no guarantee */
	TALLY_UNCOUNTED_FINAL,		/* status final: nothing left */
	TALLY_UNCOUNTED_REGISTERED,	/* electorate minus ballots counted */
	TALLY_UNCOUNTED_STATIONS,	/* stations not reporting x the maximum */
};

/*
 * The bound on a province's uncounted ballots given its snapshot `f` (NULL
 * before the first): none left when final; otherwise the smaller of the
 * electorate (the feed's `registered`, else the definition's) minus the
 * ballots counted (list votes, blank and invalid), and the stations not yet
 * reporting times the definition's `station_ballots_max`.  Returns where it
 * came from (UNKNOWN: no bound, *U left at 0).  An electorate smaller than
 * the ballots counted bounds nothing and is ignored.
 */
enum tally_uncounted tally_uncounted_bound(const struct tally_province *pv,
			    const struct tally_feed *f, uint64_t *U);
const char	*tally_uncounted_name(enum tally_uncounted u);

enum tally_check { TALLY_CHECK_NEW, TALLY_CHECK_DUPLICATE };

/*
 * Would `f` be accepted after `prev`, the previous snapshot of `province`
 * (NULL: none)?  NEW when its revision is above prev's; DUPLICATE when it
 * repeats prev's revision with identical canonical content.  Otherwise -1
 * with err: `stale_revision` (lower, the message names the current) or
 * `revision_conflict` (same revision, other content).  The state applies
 * it against a province's current snapshot (tally_state_check).
 */
int	tally_feed_check(const struct tally_feed *prev, const struct tally_feed *f,
	    const char *province, enum tally_check *result,
	    struct tally_error *err);

/*
 * The posting-safety rule for a NEW snapshot against the previous one (NULL:
 * none): every list that had votes in `prev` must be in `f` (a correction
 * that truly sets it to zero says 0).  Otherwise -1 with err `list_missing`
 * (TALLY_ERROR_INVALID), its field the pointer of the first missing list
 * ("/votes/<id>") and its message naming every one.  Replay does not apply
 * it: journals written before it may hold such snapshots.
 */
int	tally_feed_check_lists(const struct tally_feed *prev,
	    const struct tally_feed *f, const char *province,
	    struct tally_error *err);

#endif
