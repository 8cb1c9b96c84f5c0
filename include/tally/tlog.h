/*
 * tlog.h - the transparency log of versions: Merkle tree, tiles, signed
 * checkpoints, proofs and the canonical log entry.
 *
 * One entry per version (tree size = version).  The tree is RFC 6962's
 * (RFC 9162 section 2.1): leaf hash SHA-256(0x00 || entry), node hash
 * SHA-256(0x01 || left || right).  Hashes are published as C2SP tlog-tiles
 * (tile height 8), checkpoints as C2SP signed notes (Ed25519), proofs in the
 * C2SP tlog-proof text format.
 *
 * Everything here is pure: no I/O, no clock, no randomness (a signing key is
 * made from a 32-byte seed the caller supplies).  Errors go to an optional
 * struct tally_error with a stable code and a message that says where.
 */
#ifndef TALLY_TLOG_H
#define TALLY_TLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/error.h>
#include <tally/state.h>

#define TALLY_TLOG_HASH		32	/* SHA-256 */
#define TALLY_TLOG_TILE_HEIGHT	8
#define TALLY_TLOG_TILE_WIDTH	256	/* 1 << TALLY_TLOG_TILE_HEIGHT */
#define TALLY_TLOG_ENTRY_MAX	65535	/* an entry's 2-byte length prefix */
#define TALLY_TLOG_PROOF_MAX	64	/* hashes in a proof of a 2^64 tree */
#define TALLY_TLOG_NAME_MAX	128	/* key name / origin, bytes */
#define TALLY_TLOG_PATH_MAX	96	/* a tile path, NUL included */

/* Hashing (RFC 6962 section 2.1). */
void	tally_tlog_leaf_hash(const void *entry, size_t len,
	    uint8_t out[TALLY_TLOG_HASH]);
void	tally_tlog_node_hash(const uint8_t left[TALLY_TLOG_HASH],
	    const uint8_t right[TALLY_TLOG_HASH], uint8_t out[TALLY_TLOG_HASH]);

/*
 * The stored hashes of a tree: every complete subtree's hash, level by
 * level (level k, index i: the hash of leaves [i 2^k, (i+1) 2^k)).  That is
 * exactly what the tiles publish, and enough to compute the root of any
 * earlier size and any proof.  Grows by appending leaf hashes.
 */
struct tally_tlog_tree {
	uint64_t	 size;			/* leaves */
	uint8_t		*level[64];		/* size >> k hashes each */
	uint64_t	 cap[64];		/* in hashes */
};

/* A new empty tree (tally_tlog_tree_destroy), or NULL. */
struct tally_tlog_tree	*tally_tlog_tree_create(void);
void	tally_tlog_tree_destroy(struct tally_tlog_tree *t);
/* Append one leaf hash.  0, or -1 on allocation failure (tree unchanged). */
int	tally_tlog_tree_append(struct tally_tlog_tree *t,
	    const uint8_t leaf[TALLY_TLOG_HASH]);
/*
 * The stored hash at (level, index), borrowed; NULL when that subtree is
 * not complete in the tree.
 */
const uint8_t *tally_tlog_tree_hash(const struct tally_tlog_tree *t,
	    unsigned level, uint64_t index);
/* The root of the first n leaves (n <= size; 0: SHA-256 of nothing). */
int	tally_tlog_tree_root(const struct tally_tlog_tree *t, uint64_t n,
	    uint8_t out[TALLY_TLOG_HASH]);
/*
 * Inclusion proof of leaf `index` in the tree of size n (RFC 9162
 * 2.1.3.1): up to TALLY_TLOG_PROOF_MAX hashes into proof, leaf to root,
 * their number in *np.  -1 when index >= n or n > size.
 */
int	tally_tlog_tree_inclusion(const struct tally_tlog_tree *t,
	    uint64_t index, uint64_t n, uint8_t proof[][TALLY_TLOG_HASH],
	    size_t *np);
/* Consistency proof from size m to size n (RFC 9162 2.1.4.1), 0 < m <= n. */
int	tally_tlog_tree_consistency(const struct tally_tlog_tree *t,
	    uint64_t m, uint64_t n, uint8_t proof[][TALLY_TLOG_HASH],
	    size_t *np);

/* RFC 9162 2.1.3.2: does `proof` put `leaf` at `index` under `root`? */
bool	tally_tlog_inclusion_verify(uint64_t index, uint64_t size,
	    const uint8_t leaf[TALLY_TLOG_HASH],
	    const uint8_t proof[][TALLY_TLOG_HASH], size_t np,
	    const uint8_t root[TALLY_TLOG_HASH]);
/*
 * RFC 9162 2.1.4.2: is the tree (size2, root2) an extension of (size1,
 * root1)?  size1 == 0 is consistent with anything (empty proof); size1 ==
 * size2 needs equal roots and an empty proof.
 */
bool	tally_tlog_consistency_verify(uint64_t size1, uint64_t size2,
	    const uint8_t proof[][TALLY_TLOG_HASH], size_t np,
	    const uint8_t root1[TALLY_TLOG_HASH],
	    const uint8_t root2[TALLY_TLOG_HASH]);

/*
 * C2SP tlog-tiles.  A tile at level L, index N holds the stored hashes of
 * tree level 8L, indices [256 N, 256 N + W); level -1 is the entry bundle
 * of entries [256 N, 256 N + W).  W is 256 for a full tile.
 *
 * The path under the log's prefix: "tile/<L>/<N>" or "tile/entries/<N>",
 * with ".p/<W>" for a partial tile; N in 3-digit elements, "x" before all
 * but the last (1234067: "x001/x234/067").  0, or -1 when buf is short
 * or w is not 1..256.
 */
#define TALLY_TLOG_ENTRIES	(-1)
int	tally_tlog_tile_path(char *buf, size_t size, int level, uint64_t n,
	    unsigned w);
/* The reverse: 0 with *level, *n, *w (256 for a full tile), or -1. */
int	tally_tlog_tile_parse_path(const char *path, int *level, uint64_t *n,
	    unsigned *w);
/*
 * The hashes of tile (level >= 0, n, w) from the stored hashes: w * 32
 * bytes into out.  -1 when the tree does not hold them all.
 */
int	tally_tlog_tile_hashes(const struct tally_tlog_tree *t, int level,
	    uint64_t n, unsigned w, uint8_t *out);
/*
 * How wide the tile (level, n) of a tree of `size` leaves is: 256 for a
 * full tile, 1..255 for the partial one, 0 when there is none.
 */
unsigned tally_tlog_tile_width(uint64_t size, int level, uint64_t n);

/*
 * Entry bundles: each entry prefixed by its length, 2 bytes big-endian.
 * Next entry of buf[0..len) at *off: 1 with *entry (borrowed), *elen and
 * *off moved past it; 0 at the clean end; -1 when the data is truncated.
 */
int	tally_tlog_bundle_next(const uint8_t *buf, size_t len, size_t *off,
	    const uint8_t **entry, size_t *elen);
/* Append one entry to a bundle (a new or grown *buf).  0, or -1. */
int	tally_tlog_bundle_add(uint8_t **buf, size_t *len, size_t *cap,
	    const void *entry, size_t elen);

/*
 * Keys (C2SP signed-note, Ed25519).  The key id is the first 4 bytes of
 * SHA-256(name || 0x0A || 0x01 || public key).  Names: 1 to
 * TALLY_TLOG_NAME_MAX - 1 bytes of visible ASCII other than '+'.
 */
struct tally_tlog_key {
	char		name[TALLY_TLOG_NAME_MAX];
	uint8_t		id[4];
	uint8_t		pub[32];
};

struct tally_tlog_signer {
	struct tally_tlog_key	key;
	uint8_t			seed[32];	/* the Ed25519 private key */
};

/* A signer from a name and a 32-byte random seed.  0, or -1 (bad name). */
int	tally_tlog_signer_init(struct tally_tlog_signer *s, const char *name,
	    const uint8_t seed[32]);
/*
 * The verifier key text "name+<8 hex digits of the id>+base64(0x01 ||
 * pub)" (NUL-terminated into buf).  0, or -1 when buf is short.
 */
int	tally_tlog_key_format(const struct tally_tlog_key *k, char *buf,
	    size_t size);
/* Parse a verifier key (surrounding blanks allowed).  0, or -1 with err. */
int	tally_tlog_key_parse(const char *text, struct tally_tlog_key *k,
	    struct tally_error *err);
/* The signer key text "PRIVATE+KEY+name+<id hex>+base64(0x01 || seed)",
 * as golang.org/x/mod/sumdb/note writes it.  0, or -1. */
int	tally_tlog_signer_format(const struct tally_tlog_signer *s, char *buf,
	    size_t size);
int	tally_tlog_signer_parse(const char *text, struct tally_tlog_signer *s,
	    struct tally_error *err);

/*
 * Sign a note's text (len bytes, ending in '\n', no blank line): a new
 * NUL-terminated note "text\n— name base64(id || sig)\n" (*outlen its
 * length), or NULL (bad text, no memory).
 */
char	*tally_tlog_note_sign(const char *text, size_t len,
	    const struct tally_tlog_signer *s, size_t *outlen);
/*
 * Open a signed note: its text must be valid (UTF-8 without control
 * characters but '\n', ending in '\n'), every signature line well formed
 * (at most 100), and at least one signature by one of `keys` valid.  A
 * signature by a known key (name and id) that does not verify refuses the
 * note; signatures by unknown keys are ignored (witnesses).  0 with
 * *text_len (the signed text is note[0..*text_len)), or -1 with err.
 */
int	tally_tlog_note_open(const char *note, size_t len,
	    const struct tally_tlog_key *keys, size_t n_keys, size_t *text_len,
	    struct tally_error *err);

/*
 * A checkpoint's body: "origin\nsize\nbase64(root)\n" (C2SP tlog-checkpoint),
 * with has_leaderboard the extension line "leaderboard-sha256 <64 hex>\n":
 * the SHA-256 of /v1/versions/{size}/leaderboard, which tallyd signed while
 * its entries did not carry their leaderboard's hash.  tallyd signs none
 * now (each entry carries it); the line is read in older checkpoints.
 */
#define TALLY_TLOG_LB_EXT	"leaderboard-sha256 "
struct tally_tlog_checkpoint {
	char		origin[TALLY_TLOG_NAME_MAX];
	uint64_t	size;
	uint8_t		root[TALLY_TLOG_HASH];
	bool		has_leaderboard;
	uint8_t		leaderboard_sha256[TALLY_TLOG_HASH];
};

/* The body text (NUL-terminated into buf, *len its length).  0 or -1. */
int	tally_tlog_checkpoint_format(const struct tally_tlog_checkpoint *c,
	    char *buf, size_t size, size_t *len);
/* Parse a body (extension lines after the root are allowed; a
 * leaderboard-sha256 line is read, a malformed or second one refused).
 * 0, -1. */
int	tally_tlog_checkpoint_parse(const char *text, size_t len,
	    struct tally_tlog_checkpoint *c, struct tally_error *err);
/*
 * A signed checkpoint from the log of key k: the note opened with k, the
 * body parsed, and its origin equal to k's name.  0, or -1 with err.
 */
int	tally_tlog_checkpoint_open(const char *note, size_t len,
	    const struct tally_tlog_key *k, struct tally_tlog_checkpoint *c,
	    struct tally_error *err);

/*
 * C2SP tlog-proof: "c2sp.org/tlog-proof@v1\n", "extra <base64>\n"
 * (optional), "index <N>\n", the inclusion proof's hashes one per line in
 * base64, a blank line, then the signed checkpoint note.  tallyd's
 * receipts carry the log entry itself as the extra data, so that a receipt
 * proves what was logged, not only that something was.
 */
struct tally_tlog_proof {
	uint64_t	 index;
	uint8_t		 hashes[TALLY_TLOG_PROOF_MAX][TALLY_TLOG_HASH];
	size_t		 n;
	uint8_t		*extra;		/* owned, or NULL */
	size_t		 extra_len;
	char		*note;		/* owned: the checkpoint note */
	size_t		 note_len;
};

/* A new text (NUL-terminated, *outlen), or NULL. */
char	*tally_tlog_proof_format(const struct tally_tlog_proof *p,
	    size_t *outlen);
/* Parse a proof into p (tally_tlog_proof_finish after).  0 or -1 + err. */
int	tally_tlog_proof_parse(const char *text, size_t len,
	    struct tally_tlog_proof *p, struct tally_error *err);
void	tally_tlog_proof_finish(struct tally_tlog_proof *p);
/*
 * Verify a parsed proof against key k: the checkpoint note's signature,
 * and the inclusion of `leaf` (or, when leaf is NULL, of the hash of the
 * extra data) at p->index.  0 with *c filled, or -1 with err.
 */
int	tally_tlog_proof_verify(const struct tally_tlog_proof *p,
	    const struct tally_tlog_key *k, const uint8_t *leaf,
	    struct tally_tlog_checkpoint *c, struct tally_error *err);

/* Base64 (RFC 4648 section 4, padded), for the text formats above. */
size_t	tally_tlog_b64_encode(const uint8_t *in, size_t len, char *out);
/* Decode exactly n chars (strict: padding, no blanks); the number of bytes
 * or -1.  out holds at least n / 4 * 3. */
long	tally_tlog_b64_decode(const char *in, size_t n, uint8_t *out);

#endif
