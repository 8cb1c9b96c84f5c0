/*
 * tlogd.h - the daemon's side of the transparency log (issue 27): one
 * entry per version appended to an RFC 6962 tree (tree size = version),
 * kept in DATA_DIR/tlog/ (entries, hashes, the last signed checkpoint, the
 * key), signed checkpoints (C2SP signed note, Ed25519), tiles and proofs
 * for log_http.c.  libtally's tlog.c does the pure part.
 *
 * Threads: loop thread [L] only (the version hook runs where the core
 * applies, on the loop; replay runs before the loop).
 */
#ifndef TALLYD_TLOGD_H
#define TALLYD_TLOGD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core;
struct tally_diag;

struct tlogd;

/*
 * The log in data_dir/tlog (made when missing), its key from key_path
 * (NULL: data_dir/tlog/key, made with getrandom at first start, 0600), its
 * origin from the election id and the SHA-256 of the definition file's
 * bytes at election_path.  The files are reloaded and checked (each entry
 * against its hash; a torn tail cut).  NULL with diag.
 */
struct tlogd	*tlogd_open(const char *data_dir, const char *key_path,
		    const char *election_id, const char *election_path,
		    struct tally_diag *diag);
/* Sync what was written (NULL: nothing): before the journal that could
 * rebuild it is compacted. */
void		 tlogd_flush(struct tlogd *t);
/* Sync and close (NULL: nothing). */
void		 tlogd_close(struct tlogd *t);
/*
 * Sync the tree before signing a checkpoint (a journal whose fsync policy
 * is not `always`: it could lose the versions a checkpoint would sign).
 * Off (the default), the journal's own sync, or the cluster's stream,
 * holds whatever the tree has not synced yet.
 */
void		 tlogd_set_sync_to_sign(struct tlogd *t, bool sync);
/*
 * A further contest's log (tlog_contests.c): every entry names the contest
 * ("contest": id).  The first contest's log names none, as with one
 * contest.  -1 without memory.
 */
int		 tlogd_set_contest(struct tlogd *t, const char *id);
/* Hang the log on c's version hook (before the journal is replayed). */
void		 tlogd_attach(struct tlogd *t, struct core *c);
/*
 * Start-up is over at `version`: the tree must have that size (a local
 * log; a cluster's may be ahead, the stream will deliver the rest), and
 * the last signed checkpoint must be a prefix of it.  A tree behind the
 * tally (the snapshot covers versions the log lacks) turns the log off
 * with a warning.  -1 (with diag): the log on disk contradicts its own
 * signed checkpoint; refuse to start.
 */
int		 tlogd_started(struct tlogd *t, uint64_t version,
		    bool cluster, struct tally_diag *diag);

/* The log in force (main.c sets it), for the routes, or NULL. [L] */
extern struct tlogd *tlogd_current;

/* The log attached to core c (a contest's: the first's is tlogd_current),
 * or NULL. [L] */
struct tlogd	*tlogd_of(const struct core *c);

/*
 * The leaderboard bytes the log rendered and hashed into the entry of c's
 * version `version` (the current one), taken (the caller frees them), or
 * NULL: no log, another version, or taken already (c another contest's
 * core than t's: the bytes of c's own log, tlogd_of).  The views
 * serve these bytes rather than render them again: the bytes an entry
 * hashed are the bytes served, by construction.
 */
char		*tlogd_leaderboard_take(struct tlogd *t, const struct core *c,
		    uint64_t version, size_t *len);
/* Would tlogd_leaderboard_take give bytes now? */
bool		 tlogd_leaderboard_ready(const struct tlogd *t,
		    const struct core *c, uint64_t version);
bool		 tlogd_ok(const struct tlogd *t);
uint64_t	 tlogd_size(const struct tlogd *t);
/* The verifier key text (borrowed, NUL-terminated, no newline). */
const char	*tlogd_key(const struct tlogd *t);
/*
 * The signed checkpoint of the current size (borrowed; signed now if the
 * tree grew since the last one: the files are synced first, so a signed
 * size is always on disk).  NULL on failure.
 */
const char	*tlogd_checkpoint(struct tlogd *t, size_t *len);
/* The leaf hash of entry index (< size).  0, or -1. */
int		 tlogd_leaf(const struct tlogd *t, uint64_t index,
		    uint8_t out[32]);
/*
 * A tile's bytes (new) at level (TALLY_TLOG_ENTRIES: the entry bundle),
 * index n, width w.  NULL with *status 404 (not in the tree) or 503.
 */
char		*tlogd_tile(struct tlogd *t, int level, uint64_t n, unsigned w,
		    size_t *len, unsigned *status);
/* A receipt: the C2SP tlog-proof of entry index against the current
 * checkpoint, with the entry as its extra data (new), or NULL. */
char		*tlogd_proof(struct tlogd *t, uint64_t index, size_t *len);

/* For the witnesses' side (tlog_witness.c). */
struct tally_tlog_checkpoint;
struct tally_error;
/* DATA_DIR/tlog (borrowed). */
const char	*tlogd_dir(const struct tlogd *t);
/* A checkpoint note signed by this log's key, opened.  0, or -1, err. */
int		 tlogd_open_checkpoint(const struct tlogd *t, const char *note,
		    size_t len, struct tally_tlog_checkpoint *cp,
		    struct tally_error *err);
/* The tree's root at size (<= the size).  0, or -1. */
int		 tlogd_root(const struct tlogd *t, uint64_t size,
		    uint8_t out[32]);
/* The consistency proof from size m to n (0 < m <= n <= the size): up to
 * TALLY_TLOG_PROOF_MAX hashes, *np of them.  0, or -1. */
int		 tlogd_consistency(const struct tlogd *t, uint64_t m,
		    uint64_t n, uint8_t proof[][32], size_t *np);
/* body[0..len) signed by the log's key: a new note, or NULL. */
char		*tlogd_sign(const struct tlogd *t, const char *body,
		    size_t len, size_t *outlen);

#endif
