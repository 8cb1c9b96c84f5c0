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
};

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

#endif
