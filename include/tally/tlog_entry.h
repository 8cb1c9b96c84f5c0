/*
 * tally/tlog_entry.h - the transparency log's entries (lib/tlog.c): the
 * canonical entry of one version, its replay through libtally, and the
 * leaderboard bytes each entry commits to.  The tree, tiles, notes and
 * proofs are in tally/tlog.h.
 */
#ifndef TALLY_TLOG_ENTRY_H
#define TALLY_TLOG_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include <tally/error.h>
#include <tally/state.h>
#include <tally/tlog.h>

/*
 * The canonical log entry of one version: the journal record of the
 * request that made it ({"version", "received_at", "by"?, "results":
 * [canonical feeds], "lots"?}) and, with several contests, "contest";
 * written as jansson writes JSON_COMPACT | JSON_SORT_KEYS |
 * JSON_ENSURE_ASCII (sorted keys, no spaces, ASCII).  leaderboard_sha256
 * (not NULL) adds "leaderboard_sha256", the lowercase hex SHA-256 of the
 * version's leaderboard (tally_tlog_leaderboard_sha256 of the state at
 * that version), as tallyd writes every entry; NULL writes the older form
 * (docs/VERIFY.md).
 *
 * From a record payload (borrowed): a new entry (*outlen), or NULL with err
 * (the payload is not a record; the entry would pass TALLY_TLOG_ENTRY_MAX).
 * A record in the form the journal writes, with plain strings and canonical
 * feeds, is spliced without jansson (the daemon writes an entry per
 * version): the same bytes.
 */
char	*tally_tlog_entry_encode(const char *record, size_t len,
	    const char *contest, const uint8_t leaderboard_sha256[32],
	    size_t *outlen, struct tally_error *err);

/*
 * The same with the record's "version" replaced by `version` (0: kept): a
 * cluster record is published before the stream gives it its sequence,
 * which is its version.
 */
char	*tally_tlog_entry_encode_at(const char *record, size_t len,
	    uint64_t version, const char *contest,
	    const uint8_t leaderboard_sha256[32], size_t *outlen,
	    struct tally_error *err);

struct tally_tlog_entry_head {
	uint64_t	version;
	char		contest[TALLY_TLOG_NAME_MAX];	/* "" when absent */
	bool		has_leaderboard;	/* false: the older form */
	uint8_t		leaderboard_sha256[32];
};

/*
 * Read an entry's head: it must be canonical (the bytes tally_tlog_entry_
 * encode would write for it) and carry a version; leaderboard_sha256 is
 * read when the entry has one (has_leaderboard; entries of the older form
 * have none).
 * 0, or -1 with err (code bad_entry).
 */
int	tally_tlog_entry_head(const char *entry, size_t len,
	    struct tally_tlog_entry_head *h, struct tally_error *err);
/*
 * Replay an entry into s (the state of its contest): the head read as
 * above, its version s->version + 1, its results and lots applied through
 * the journal's apply path (tally_journal_apply), exactly as the daemon
 * applied them.  The caller then compares tally_tlog_leaderboard_sha256(s)
 * with h->leaderboard_sha256 (when h->has_leaderboard; else with an older
 * checkpoint's leaderboard line at its size).  0, or -1 with err and s unchanged.
 */
int	tally_tlog_entry_apply(struct tally_state *s, const char *entry,
	    size_t len, struct tally_tlog_entry_head *h,
	    struct tally_error *err);

/*
 * The exact bytes of /v1/leaderboard (and /v1/versions/{N}/leaderboard)
 * for state s: tally_render_leaderboard_text at the state's updated_at,
 * with the "expected" member when the definition has expected ballots
 * (tally_expected_national), plus a newline.  (With a previous election
 * configured the view adds a "change" member after these bytes' last
 * member: see docs/VERIFY.md.)  New (free), *len its length; NULL on no memory.  The
 * daemon renders that view through this function, so a verifier that
 * replays the log reproduces it byte for byte.
 */
char	*tally_tlog_leaderboard(const struct tally_state *s, size_t *len);
/* Its SHA-256.  0, or -1 on no memory. */
int	tally_tlog_leaderboard_sha256(const struct tally_state *s,
	    uint8_t out[32]);

#endif
