/*
 * journal.h - the journal's record format, and replaying it into a state.
 *
 * A journal is a sequence of records, each:
 *
 *	offset	size	field
 *	0	4	magic "TLJ1" (0x314a4c54, little-endian)
 *	4	4	CRC32C of bytes 8..19 and the payload
 *	8	4	payload length (little-endian)
 *	12	8	sequence number, +1 per record (little-endian)
 *	20	len	payload: JSON {"version": N, "received_at": "...",
 *			"by": "token label"?, "results": [canonical feed, ...],
 *			"lots"?: [{"province", "revision", "order"}]}
 *
 * One record is one accepted request (a single POST, a batch or a lot),
 * applied as one version.  "by" and "lots" are optional: older records
 * have neither and replay as before.  A daemon serving several contests
 * ends each record with "contest": its id (which tally it goes to); applying
 * a record ignores it.  Only pure encoding and decoding live here; the daemon does
 * the I/O.
 */
#ifndef TALLY_JOURNAL_H
#define TALLY_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/error.h>
#include <tally/feed.h>
#include <tally/state.h>

#define TALLY_JOURNAL_MAGIC	0x314a4c54U
#define TALLY_JOURNAL_HEADER	20
#define TALLY_JOURNAL_MAX	(64U << 20)	/* largest payload */

uint32_t	tally_crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * Fill in the header of a record whose payload (payload_len bytes) already
 * stands at buf + TALLY_JOURNAL_HEADER.  0, or -1 when it is too long.
 */
int	tally_journal_frame(uint64_t seq, char *buf, size_t payload_len);

/*
 * Encode one record for `feeds` (borrowed) applied as `version` at
 * `received_at`.  *out is new (free).  0, or -1 on allocation failure.
 */
int	tally_journal_encode(uint64_t seq, uint64_t version,
	    const char *received_at, struct tally_feed *const *feeds, size_t n,
	    char **out, size_t *outlen);

/*
 * The same for one request: `by` (a token label, tally_label_clean'ed, or
 * NULL) and lots (borrowed) join the record as optional members:
 * {"version", "received_at", "by"?, "results": [...], "lots"?: [{"province",
 * "revision", "order"}]}.  Records without them (older journals) replay as
 * before.
 */
int	tally_journal_encode_request(uint64_t seq, uint64_t version,
	    const char *received_at, const char *by,
	    struct tally_feed *const *feeds, size_t n,
	    struct tally_lot *const *lots, size_t n_lots, char **out,
	    size_t *outlen);

enum tally_scan {
	TALLY_SCAN_RECORD,	/* a whole, valid record at *off */
	TALLY_SCAN_END,		/* clean end of the data */
	TALLY_SCAN_TORN,	/* an incomplete last record (a torn write) */
	TALLY_SCAN_CORRUPT,	/* a bad record with data after it */
};

struct tally_record {
	uint64_t	 seq;
	const char	*payload;	/* borrowed from the buffer */
	size_t		 len;
	size_t		 offset;	/* where the record starts */
	size_t		 size;		/* header + payload */
};

/*
 * Look at the record at *off in buf[0..len).  On RECORD, fills rec and moves
 * *off past it.  A bad record (bad magic, length or checksum) counts as a
 * torn tail only when no valid record starts anywhere after it; otherwise
 * it is corruption.  `why` (64 bytes or more) says what was wrong.
 */
enum tally_scan	tally_journal_scan(const char *buf, size_t len, size_t *off,
		    struct tally_record *rec, char *why, size_t whylen);

/*
 * Apply one record's payload to s: every result must be a new revision.
 * Sets s->version to the record's version.  0, or -1 with err.
 */
int	tally_journal_apply(struct tally_state *s, const char *payload,
	    size_t len, struct tally_error *err);

/*
 * Snapshots use the same framing.  Record 0 holds a JSON header; then come
 * every province's revisions, oldest first, one record each with payload
 * {"received_at": "...", "feed": canonical feed, "by": "label"?,
 * "version": N?} (the version that applied it: older snapshots have none,
 * and their revisions' feeds say TALLY_VERSION_UNKNOWN).  (Lots
 * are in the header, which the daemon writes.)
 */
int	tally_snapshot_encode_revision(uint64_t seq,
	    const struct tally_revision *rev, char **out, size_t *outlen);
/* A new feed from such a payload (received_at: 40 bytes), or NULL. */
struct tally_feed *tally_snapshot_decode_revision(const struct tally_election *e,
	    const char *payload, size_t len, char *received_at);

#endif
