/*
 * tlog.c - the transparency log of versions (see tally/tlog.h).
 *
 * The Merkle tree is RFC 6962's; proofs follow the algorithms of RFC 9162
 * section 2.1.3 and 2.1.4 word for word, because a verifier that takes a
 * shortcut is exactly where false accepts hide.  Tiles, notes and proofs
 * follow C2SP (tlog-tiles, signed-note, tlog-checkpoint, tlog-proof).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nettle/eddsa.h>
#include <nettle/sha2.h>

#include <tally/expected.h>
#include <tally/journal.h>
#include <tally/render.h>
#include <tally/tlog.h>
#include <tally/tlog_entry.h>

#include "tally-private.h"

/* The signature line's prefix: U+2014 EM DASH and a space. */
#define SIG_PREFIX	"\xe2\x80\x94 "
#define SIG_PREFIX_LEN	4
#define NOTE_SIGS_MAX	100
#define ED25519_ALG	0x01	/* signed-note's signature type for Ed25519 */

void
tally_tlog_leaf_hash(const void *entry, size_t len, uint8_t out[32])
{
	struct sha256_ctx c;
	uint8_t zero = 0x00;

	sha256_init(&c);
	sha256_update(&c, 1, &zero);
	sha256_update(&c, len, entry);
	sha256_digest(&c, 32, out);
}

void
tally_tlog_node_hash(const uint8_t l[32], const uint8_t r[32],
    uint8_t out[32])
{
	struct sha256_ctx c;
	uint8_t one = 0x01;

	sha256_init(&c);
	sha256_update(&c, 1, &one);
	sha256_update(&c, 32, l);
	sha256_update(&c, 32, r);
	sha256_digest(&c, 32, out);
}

/* ---- the tree of stored hashes ---- */

struct tally_tlog_tree *
tally_tlog_tree_create(void)
{
	return calloc(1, sizeof(struct tally_tlog_tree));
}

void
tally_tlog_tree_destroy(struct tally_tlog_tree *t)
{
	size_t k;

	if (t == NULL)
		return;
	for (k = 0; k < 64; k++)
		free(t->level[k]);
	free(t);
}

/* Room for one more hash at level k.  0 or -1. */
static int
level_reserve(struct tally_tlog_tree *t, unsigned k, uint64_t need)
{
	uint64_t cap;
	uint8_t *p;

	if (need <= t->cap[k])
		return 0;
	cap = t->cap[k] < 16 ? 16 : t->cap[k] * 2;
	if (cap > SIZE_MAX / 32)
		return -1;
	if ((p = realloc(t->level[k], (size_t)cap * 32)) == NULL)
		return -1;
	t->level[k] = p;
	t->cap[k] = cap;
	return 0;
}

int
tally_tlog_tree_append(struct tally_tlog_tree *t, const uint8_t leaf[32])
{
	uint64_t i = t->size;
	unsigned k;

	if (t->size == UINT64_MAX)
		return -1;
	/* Reserve first, so that a failure leaves the tree as it was. */
	for (k = 0, i = t->size; ; k++, i >>= 1) {
		if (level_reserve(t, k, i + 1) == -1)
			return -1;
		if ((i & 1) == 0)
			break;
	}
	memcpy(t->level[0] + t->size * 32, leaf, 32);
	/* Each completed pair completes its parent. */
	for (k = 0, i = t->size; i & 1; k++, i >>= 1)
		tally_tlog_node_hash(t->level[k] + (i - 1) * 32,
		    t->level[k] + i * 32, t->level[k + 1] + (i >> 1) * 32);
	t->size++;
	return 0;
}

const uint8_t *
tally_tlog_tree_hash(const struct tally_tlog_tree *t, unsigned level,
    uint64_t index)
{
	if (level >= 64 || index >= (t->size >> level))
		return NULL;
	return t->level[level] + index * 32;
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t
split_point(uint64_t n)
{
	uint64_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

/*
 * MTH(D[a:b]) (RFC 6962 2.1), b <= size, a < b.  A complete aligned
 * subtree is stored; any other range splits as MTH does.  The ranges the
 * proofs ask for are right edges of the tree, so the recursion is
 * logarithmic.
 */
static void
range_hash(const struct tally_tlog_tree *t, uint64_t a, uint64_t b,
    uint8_t out[32])
{
	uint64_t n = b - a, k;
	uint8_t l[32], r[32];
	unsigned lvl = 0;

	if ((n & (n - 1)) == 0) {
		while (((uint64_t)1 << lvl) < n)
			lvl++;
		if ((a & (n - 1)) == 0) {
			memcpy(out, t->level[lvl] + (a >> lvl) * 32, 32);
			return;
		}
	}
	k = split_point(n);
	range_hash(t, a, a + k, l);
	range_hash(t, a + k, b, r);
	tally_tlog_node_hash(l, r, out);
}

int
tally_tlog_tree_root(const struct tally_tlog_tree *t, uint64_t n,
    uint8_t out[32])
{
	struct sha256_ctx c;

	if (n > t->size)
		return -1;
	if (n == 0) {
		sha256_init(&c);
		sha256_digest(&c, 32, out);
		return 0;
	}
	range_hash(t, 0, n, out);
	return 0;
}

/* PATH(m, D[a:b]) of RFC 6962 2.1.1, appended leaf first. */
static void
path(const struct tally_tlog_tree *t, uint64_t m, uint64_t a, uint64_t b,
    uint8_t proof[][32], size_t *np)
{
	uint64_t n = b - a, k;

	if (n <= 1)
		return;
	k = split_point(n);
	if (m < k) {
		path(t, m, a, a + k, proof, np);
		range_hash(t, a + k, b, proof[(*np)++]);
	} else {
		path(t, m - k, a + k, b, proof, np);
		range_hash(t, a, a + k, proof[(*np)++]);
	}
}

int
tally_tlog_tree_inclusion(const struct tally_tlog_tree *t, uint64_t index,
    uint64_t n, uint8_t proof[][32], size_t *np)
{
	*np = 0;
	if (index >= n || n > t->size)
		return -1;
	path(t, index, 0, n, proof, np);
	return 0;
}

/* SUBPROOF(m, D[a:b], start) of RFC 6962 2.1.2. */
static void
subproof(const struct tally_tlog_tree *t, uint64_t m, uint64_t a,
    uint64_t b, bool start, uint8_t proof[][32], size_t *np)
{
	uint64_t n = b - a, k;

	if (m == n) {
		if (!start)
			range_hash(t, a, b, proof[(*np)++]);
		return;
	}
	k = split_point(n);
	if (m <= k) {
		subproof(t, m, a, a + k, start, proof, np);
		range_hash(t, a + k, b, proof[(*np)++]);
	} else {
		subproof(t, m - k, a + k, b, false, proof, np);
		range_hash(t, a, a + k, proof[(*np)++]);
	}
}

int
tally_tlog_tree_consistency(const struct tally_tlog_tree *t, uint64_t m,
    uint64_t n, uint8_t proof[][32], size_t *np)
{
	*np = 0;
	if (m == 0 || m > n || n > t->size)
		return -1;
	subproof(t, m, 0, n, true, proof, np);
	return 0;
}

bool
tally_tlog_inclusion_verify(uint64_t index, uint64_t size,
    const uint8_t leaf[32], const uint8_t proof[][32], size_t np,
    const uint8_t root[32])
{
	uint64_t fn = index, sn;
	uint8_t r[32];
	size_t i;

	if (index >= size)
		return false;
	sn = size - 1;
	memcpy(r, leaf, 32);
	for (i = 0; i < np; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			tally_tlog_node_hash(proof[i], r, r);
			while ((fn & 1) == 0 && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			tally_tlog_node_hash(r, proof[i], r);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, 32) == 0;
}

bool
tally_tlog_consistency_verify(uint64_t size1, uint64_t size2,
    const uint8_t proof[][32], size_t np, const uint8_t root1[32],
    const uint8_t root2[32])
{
	uint64_t fn, sn;
	uint8_t fr[32], sr[32];
	size_t i = 0;

	if (size1 > size2)
		return false;
	if (size1 == size2)
		return np == 0 && memcmp(root1, root2, 32) == 0;
	if (size1 == 0)
		return np == 0;
	if (np == 0)
		return false;
	fn = size1 - 1;
	sn = size2 - 1;
	/* An old tree that is a complete subtree is its own first node. */
	if ((size1 & (size1 - 1)) == 0) {
		memcpy(fr, root1, 32);
	} else {
		memcpy(fr, proof[0], 32);
		i = 1;
	}
	memcpy(sr, fr, 32);
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < np; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			tally_tlog_node_hash(proof[i], fr, fr);
			tally_tlog_node_hash(proof[i], sr, sr);
			while ((fn & 1) == 0 && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else
			tally_tlog_node_hash(sr, proof[i], sr);
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, root1, 32) == 0 &&
	    memcmp(sr, root2, 32) == 0;
}

/* ---- tiles ---- */

int
tally_tlog_tile_path(char *buf, size_t size, int level, uint64_t n,
    unsigned w)
{
	unsigned groups[8];
	size_t ng = 0, off;
	int len;

	if (w < 1 || w > TALLY_TLOG_TILE_WIDTH || level < -1 || level > 63)
		return -1;
	do {
		groups[ng++] = (unsigned)(n % 1000);
		n /= 1000;
	} while (n > 0);
	len = level == TALLY_TLOG_ENTRIES ? snprintf(buf, size,
	    "tile/entries/") : snprintf(buf, size, "tile/%d/", level);
	if (len < 0 || (size_t)len >= size)
		return -1;
	off = (size_t)len;
	while (ng > 0) {
		ng--;
		len = snprintf(buf + off, size - off, ng > 0 ? "x%03u/" : "%03u",
		    groups[ng]);
		if (len < 0 || (size_t)len >= size - off)
			return -1;
		off += (size_t)len;
	}
	if (w < TALLY_TLOG_TILE_WIDTH) {
		len = snprintf(buf + off, size - off, ".p/%u", w);
		if (len < 0 || (size_t)len >= size - off)
			return -1;
	}
	return 0;
}

/* Exactly three digits at p.  Their value, or -1. */
static int
three_digits(const char *p)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' ||
	    p[2] < '0' || p[2] > '9')
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

int
tally_tlog_tile_parse_path(const char *p, int *level, uint64_t *n,
    unsigned *w)
{
	uint64_t v = 0;
	int d, groups = 0;

	if (strncmp(p, "tile/", 5) != 0)
		return -1;
	p += 5;
	if (strncmp(p, "entries/", 8) == 0) {
		*level = TALLY_TLOG_ENTRIES;
		p += 8;
	} else if (p[0] >= '0' && p[0] <= '9') {
		/* No leading zeros: one spelling per tile. */
		*level = *p++ - '0';
		if (*level != 0 && *p >= '0' && *p <= '9')
			*level = *level * 10 + (*p++ - '0');
		if (*level > 63 || *p++ != '/')
			return -1;
	} else
		return -1;
	for (;;) {
		bool more = *p == 'x';
		if (more)
			p++;
		if ((d = three_digits(p)) == -1 || ++groups > 7)
			return -1;
		/* 7 groups would pass 2^64 only in the first. */
		if (v > (UINT64_MAX - (uint64_t)d) / 1000)
			return -1;
		v = v * 1000 + (uint64_t)d;
		p += 3;
		if (!more)
			break;
		if (*p++ != '/')
			return -1;
	}
	*n = v;
	*w = TALLY_TLOG_TILE_WIDTH;
	if (*p == '\0')
		return 0;
	if (strncmp(p, ".p/", 3) != 0 || p[3] < '1' || p[3] > '9')
		return -1;
	p += 3;
	for (v = 0; *p >= '0' && *p <= '9' && v < 1000; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (*p != '\0' || v >= TALLY_TLOG_TILE_WIDTH)
		return -1;
	*w = (unsigned)v;
	return 0;
}

unsigned
tally_tlog_tile_width(uint64_t size, int level, uint64_t n)
{
	uint64_t count;
	unsigned shift = level <= 0 ? 0 : (unsigned)level * 8;

	if (level < -1 || shift >= 64)
		return 0;
	count = size >> shift;	/* entries (level -1, 0) or stored hashes */
	if (n > count / TALLY_TLOG_TILE_WIDTH)
		return 0;
	if (n < count / TALLY_TLOG_TILE_WIDTH)
		return TALLY_TLOG_TILE_WIDTH;
	return (unsigned)(count % TALLY_TLOG_TILE_WIDTH);
}

int
tally_tlog_tile_hashes(const struct tally_tlog_tree *t, int level,
    uint64_t n, unsigned w, uint8_t *out)
{
	unsigned k = (unsigned)level * TALLY_TLOG_TILE_HEIGHT;
	uint64_t first;

	if (level < 0 || level > 7 || w < 1 || w > TALLY_TLOG_TILE_WIDTH ||
	    n > (UINT64_MAX >> 8))
		return -1;
	first = n * TALLY_TLOG_TILE_WIDTH;
	if (first + w > (t->size >> k))
		return -1;
	memcpy(out, t->level[k] + first * 32, (size_t)w * 32);
	return 0;
}

int
tally_tlog_bundle_next(const uint8_t *buf, size_t len, size_t *off,
    const uint8_t **entry, size_t *elen)
{
	size_t n;

	if (*off == len)
		return 0;
	if (len - *off < 2)
		return -1;
	n = (size_t)buf[*off] << 8 | buf[*off + 1];
	if (len - *off - 2 < n)
		return -1;
	*entry = buf + *off + 2;
	*elen = n;
	*off += 2 + n;
	return 1;
}

int
tally_tlog_bundle_add(uint8_t **buf, size_t *len, size_t *cap,
    const void *entry, size_t elen)
{
	uint8_t *p;
	size_t need;

	if (elen > TALLY_TLOG_ENTRY_MAX)
		return -1;
	need = *len + 2 + elen;
	if (need > *cap) {
		size_t c = *cap < 4096 ? 4096 : *cap;
		while (c < need)
			c *= 2;
		if ((p = realloc(*buf, c)) == NULL)
			return -1;
		*buf = p;
		*cap = c;
	}
	(*buf)[*len] = (uint8_t)(elen >> 8);
	(*buf)[*len + 1] = (uint8_t)elen;
	memcpy(*buf + *len + 2, entry, elen);
	*len = need;
	return 0;
}

/* ---- base64 ---- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t
tally_tlog_b64_encode(const uint8_t *in, size_t len, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = b64chars[(v >> 6) & 63];
		out[o++] = b64chars[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = b64chars[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int
b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict: whole quanta, padding only at the end, and the unused bits of
 * the last quantum zero, so that one byte string has one text (a verifier
 * that accepted two spellings of a hash would sign off on altered text).
 */
long
tally_tlog_b64_decode(const char *in, size_t n, uint8_t *out)
{
	size_t i, o = 0;

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		int a = b64val(in[i]), b = b64val(in[i + 1]);
		int c = b64val(in[i + 2]), d = b64val(in[i + 3]);
		bool last = i + 4 == n;
		if (a < 0 || b < 0)
			return -1;
		if (c < 0) {
			if (!last || in[i + 2] != '=' || in[i + 3] != '=' ||
			    (b & 15) != 0)
				return -1;
			out[o++] = (uint8_t)(a << 2 | b >> 4);
			break;
		}
		if (d < 0) {
			if (!last || in[i + 3] != '=' || (c & 3) != 0)
				return -1;
			out[o++] = (uint8_t)(a << 2 | b >> 4);
			out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
			break;
		}
		out[o++] = (uint8_t)(a << 2 | b >> 4);
		out[o++] = (uint8_t)((b & 15) << 4 | c >> 2);
		out[o++] = (uint8_t)((c & 3) << 6 | d);
	}
	return (long)o;
}

/* ---- keys and signed notes ---- */

static bool
name_ok(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len >= TALLY_TLOG_NAME_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (name[i] <= ' ' || name[i] > '~' || name[i] == '+')
			return false;
	return true;
}

void
tally_tlog_key_id(const char *name, uint8_t alg, const uint8_t pub[32],
    uint8_t id[4])
{
	struct sha256_ctx c;
	uint8_t sep[2] = { 0x0a, alg }, h[32];

	sha256_init(&c);
	sha256_update(&c, strlen(name), (const uint8_t *)name);
	sha256_update(&c, 2, sep);
	sha256_update(&c, 32, pub);
	sha256_digest(&c, 32, h);
	memcpy(id, h, 4);
}

int
tally_tlog_signer_init(struct tally_tlog_signer *s, const char *name,
    const uint8_t seed[32])
{
	if (!name_ok(name, strlen(name)))
		return -1;
	memset(s, 0, sizeof(*s));
	snprintf(s->key.name, sizeof(s->key.name), "%s", name);
	memcpy(s->seed, seed, 32);
	ed25519_sha512_public_key(s->key.pub, s->seed);
	tally_tlog_key_id(s->key.name, ED25519_ALG, s->key.pub, s->key.id);
	return 0;
}

static int
key_text(const char *prefix, const char *name, const uint8_t id[4],
    const uint8_t key[32], char *buf, size_t size)
{
	uint8_t raw[33];
	char b64[48];
	int len;

	raw[0] = ED25519_ALG;
	memcpy(raw + 1, key, 32);
	tally_tlog_b64_encode(raw, sizeof(raw), b64);
	len = snprintf(buf, size, "%s%s+%02x%02x%02x%02x+%s", prefix, name,
	    id[0], id[1], id[2], id[3], b64);
	return len < 0 || (size_t)len >= size ? -1 : 0;
}

int
tally_tlog_key_format(const struct tally_tlog_key *k, char *buf, size_t size)
{
	return key_text("", k->name, k->id, k->pub, buf, size);
}

int
tally_tlog_signer_format(const struct tally_tlog_signer *s, char *buf,
    size_t size)
{
	return key_text("PRIVATE+KEY+", s->key.name, s->key.id, s->seed, buf,
	    size);
}

/* "name+hhhhhhhh+base64" (trimmed) into its parts.  0 or -1. */
static int
key_split(const char *text, char *name, uint8_t id[4], uint8_t key[32],
    struct tally_error *err)
{
	const char *p = text, *end, *plus1, *plus2;
	uint8_t raw[40];
	size_t i;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\n' || end[-1] == '\r'))
		end--;
	if ((plus1 = memchr(p, '+', (size_t)(end - p))) == NULL ||
	    (plus2 = memchr(plus1 + 1, '+', (size_t)(end - plus1 - 1))) == NULL)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_key", NULL,
		    "a key is name+keyid+base64 (two '+')");
	if (!name_ok(p, (size_t)(plus1 - p)))
		return tally_error_set(err, TALLY_ERROR_INVALID, "bad_key", NULL,
		    "the key's name is empty, too long or not visible ASCII");
	memcpy(name, p, (size_t)(plus1 - p));
	name[plus1 - p] = '\0';
	if (plus2 - plus1 - 1 != 8)
		return tally_error_set(err, TALLY_ERROR_INVALID, "bad_key", NULL,
		    "the key id is not 8 hex digits");
	for (i = 0; i < 8; i++) {
		char c = plus1[1 + i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
		    c - 'a' + 10 : -1;
		if (v < 0)
			return tally_error_set(err, TALLY_ERROR_INVALID,
			    "bad_key", NULL, "the key id is not 8 lowercase hex "
			    "digits");
		if (i % 2 == 0)
			id[i / 2] = (uint8_t)(v << 4);
		else
			id[i / 2] |= (uint8_t)v;
	}
	if (end - plus2 - 1 != 44 ||
	    tally_tlog_b64_decode(plus2 + 1, 44, raw) != 33 ||
	    raw[0] != ED25519_ALG)
		return tally_error_set(err, TALLY_ERROR_INVALID, "bad_key", NULL,
		    "the key is not base64 of 0x01 and a 32-byte Ed25519 key");
	memcpy(key, raw + 1, 32);
	return 0;
}

int
tally_tlog_key_parse(const char *text, struct tally_tlog_key *k,
    struct tally_error *err)
{
	uint8_t id[4];

	memset(k, 0, sizeof(*k));
	if (key_split(text, k->name, k->id, k->pub, err) == -1)
		return -1;
	tally_tlog_key_id(k->name, ED25519_ALG, k->pub, id);
	if (memcmp(id, k->id, 4) != 0)
		return tally_error_set(err, TALLY_ERROR_INVALID, "bad_key", NULL,
		    "the key id does not match the name and public key");
	return 0;
}

int
tally_tlog_signer_parse(const char *text, struct tally_tlog_signer *s,
    struct tally_error *err)
{
	const char *p = text;
	uint8_t id[4], seed[32];
	char name[TALLY_TLOG_NAME_MAX];

	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (strncmp(p, "PRIVATE+KEY+", 12) != 0)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_key", NULL,
		    "a signer key starts with PRIVATE+KEY+");
	if (key_split(p + 12, name, id, seed, err) == -1)
		return -1;
	if (tally_tlog_signer_init(s, name, seed) == -1 ||
	    memcmp(id, s->key.id, 4) != 0) {
		memset(s, 0, sizeof(*s));
		return tally_error_set(err, TALLY_ERROR_INVALID, "bad_key", NULL,
		    "the signer key's id does not match its name and key");
	}
	return 0;
}

/*
 * A note's text: UTF-8 without control characters other than '\n' (C2SP
 * signed-note), ending in '\n'.  Overlong forms and surrogates are refused
 * so that one text has one byte string.
 */
static bool
note_text_ok(const char *t, size_t len)
{
	const unsigned char *p = (const unsigned char *)t, *end = p + len;

	if (len == 0 || t[len - 1] != '\n')
		return false;
	while (p < end) {
		unsigned c = *p, n, cp, i;
		if (c < 0x80) {
			if ((c < 0x20 && c != '\n') || c == 0x7f)
				return false;
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return false;
		if ((size_t)(end - p) <= n)
			return false;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0x80 && cp <= 0x9f))
			return false;
		p += n + 1;
	}
	return true;
}

char *
tally_tlog_note_sign(const char *text, size_t len,
    const struct tally_tlog_signer *s, size_t *outlen)
{
	uint8_t raw[68];
	char b64[96], *out;
	size_t nlen = strlen(s->key.name), blen, total;

	if (!note_text_ok(text, len) || (len >= 2 && memmem(text, len, "\n\n",
	    2) != NULL))
		return NULL;
	memcpy(raw, s->key.id, 4);
	ed25519_sha512_sign(s->key.pub, s->seed, len, (const uint8_t *)text,
	    raw + 4);
	blen = tally_tlog_b64_encode(raw, sizeof(raw), b64);
	total = len + 1 + SIG_PREFIX_LEN + nlen + 1 + blen + 1;
	if ((out = malloc(total + 1)) == NULL)
		return NULL;
	memcpy(out, text, len);
	out[len] = '\n';
	memcpy(out + len + 1, SIG_PREFIX, SIG_PREFIX_LEN);
	memcpy(out + len + 1 + SIG_PREFIX_LEN, s->key.name, nlen);
	out[len + 1 + SIG_PREFIX_LEN + nlen] = ' ';
	memcpy(out + len + 2 + SIG_PREFIX_LEN + nlen, b64, blen);
	out[total - 1] = '\n';
	out[total] = '\0';
	if (outlen != NULL)
		*outlen = total;
	return out;
}

/* The last "\n\n" of note[0..len): its offset, or -1. */
static long
last_blank(const char *note, size_t len)
{
	size_t i;

	for (i = len; i >= 2; i--)
		if (note[i - 1] == '\n' && note[i - 2] == '\n')
			return (long)(i - 2);
	return -1;
}

int
tally_tlog_note_open(const char *note, size_t len,
    const struct tally_tlog_key *keys, size_t n_keys, size_t *text_len,
    struct tally_error *err)
{
	const char *p, *end = note + len;
	long split;
	size_t tlen, nsig = 0, good = 0, i;

	if ((split = last_blank(note, len)) < 0)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_note", NULL,
		    "the note has no blank line before its signatures");
	tlen = (size_t)split + 1;
	if (!note_text_ok(note, tlen))
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_note", NULL,
		    "the note's text is not UTF-8 text ending in a newline");
	p = note + tlen + 1;
	if (p == end || end[-1] != '\n')
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_note", NULL,
		    "the note has no signature line (or no final newline)");
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *sp;
		uint8_t raw[128];
		long n;
		if (++nsig > NOTE_SIGS_MAX)
			return tally_error_set(err, TALLY_ERROR_INVALID,
			    "bad_note", NULL, "more than %d signatures",
			    NOTE_SIGS_MAX);
		if ((size_t)(eol - p) < SIG_PREFIX_LEN + 3 ||
		    memcmp(p, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
			return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_note",
			    NULL, "signature line %zu does not start with "
			    "\"\xe2\x80\x94 \"", nsig);
		p += SIG_PREFIX_LEN;
		if ((sp = memchr(p, ' ', (size_t)(eol - p))) == NULL ||
		    sp == p || memchr(p, '+', (size_t)(sp - p)) != NULL)
			return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_note",
			    NULL, "signature line %zu has no name", nsig);
		if ((size_t)(eol - sp - 1) > sizeof(raw) / 3 * 4 ||
		    (n = tally_tlog_b64_decode(sp + 1, (size_t)(eol - sp - 1),
		    raw)) < 5)
			return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_note",
			    NULL, "signature line %zu is not base64 of a key "
			    "id and a signature", nsig);
		for (i = 0; i < n_keys; i++) {
			const struct tally_tlog_key *k = &keys[i];
			if (strlen(k->name) != (size_t)(sp - p) ||
			    memcmp(k->name, p, (size_t)(sp - p)) != 0 ||
			    memcmp(k->id, raw, 4) != 0)
				continue;
			/* A known key's signature must verify. */
			if (n != 68 || !ed25519_sha512_verify(k->pub, tlen,
			    (const uint8_t *)note, raw + 4))
				return tally_error_set(err, TALLY_ERROR_INVALID,
				    "bad_signature", NULL, "the signature of %s "
				    "does not verify", k->name);
			good++;
		}
		p = eol + 1;
	}
	if (good == 0)
		return tally_error_set(err, TALLY_ERROR_INVALID, "no_signature",
		    NULL, "the note carries no signature by the given key");
	*text_len = tlen;
	return 0;
}

/* ---- checkpoints ---- */

static void	hex32(const uint8_t h[32], char out[65]);
static int	unhex32(const char *s, uint8_t out[32]);

int
tally_tlog_checkpoint_format(const struct tally_tlog_checkpoint *c,
    char *buf, size_t size, size_t *len)
{
	char b64[48];
	int n;

	if (!name_ok(c->origin, strlen(c->origin)))
		return -1;
	tally_tlog_b64_encode(c->root, 32, b64);
	n = snprintf(buf, size, "%s\n%llu\n%s\n", c->origin,
	    (unsigned long long)c->size, b64);
	if (n < 0 || (size_t)n >= size)
		return -1;
	if (c->has_leaderboard) {
		char hex[65];
		int m;
		hex32(c->leaderboard_sha256, hex);
		m = snprintf(buf + n, size - (size_t)n, TALLY_TLOG_LB_EXT "%s\n",
		    hex);
		if (m < 0 || (size_t)m >= size - (size_t)n)
			return -1;
		n += m;
	}
	*len = (size_t)n;
	return 0;
}

int
tally_tlog_checkpoint_parse(const char *text, size_t len,
    struct tally_tlog_checkpoint *c, struct tally_error *err)
{
	const char *p = text, *end = text + len, *eol;
	uint64_t v = 0;

	memset(c, 0, sizeof(*c));
	if ((eol = memchr(p, '\n', len)) == NULL || !name_ok(p,
	    (size_t)(eol - p)))
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_checkpoint",
		    NULL, "the checkpoint's first line is not an origin");
	memcpy(c->origin, p, (size_t)(eol - p));
	p = eol + 1;
	if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL || eol == p ||
	    (*p == '0' && eol - p > 1))
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_checkpoint",
		    NULL, "the checkpoint's second line is not a tree size");
	for (; p < eol; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
			return tally_error_set(err, TALLY_ERROR_SYNTAX,
			    "bad_checkpoint", NULL, "the checkpoint's second "
			    "line is not a tree size");
		v = v * 10 + (uint64_t)(*p - '0');
	}
	c->size = v;
	p = eol + 1;
	if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL ||
	    eol - p != 44 || tally_tlog_b64_decode(p, 44, c->root) != 32)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_checkpoint",
		    NULL, "the checkpoint's third line is not a base64 hash");
	/* Extension lines: ours is read, others' are left alone. */
	for (p = eol + 1; p < end; p = eol + 1) {
		const size_t k = sizeof(TALLY_TLOG_LB_EXT) - 1;
		char hex[65];
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return tally_error_set(err, TALLY_ERROR_SYNTAX,
			    "bad_checkpoint", NULL, "the checkpoint's last "
			    "line has no newline");
		if ((size_t)(eol - p) < k || memcmp(p, TALLY_TLOG_LB_EXT, k) !=
		    0)
			continue;
		if (c->has_leaderboard || (size_t)(eol - p) != k + 64)
			goto bad_ext;
		memcpy(hex, p + k, 64);
		hex[64] = '\0';
		if (unhex32(hex, c->leaderboard_sha256) == -1)
			goto bad_ext;
		c->has_leaderboard = true;
	}
	return 0;
bad_ext:
	return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_checkpoint", NULL,
	    "the checkpoint's " TALLY_TLOG_LB_EXT "line is not one line of 64 "
	    "lowercase hex digits");
}

int
tally_tlog_checkpoint_open(const char *note, size_t len,
    const struct tally_tlog_key *k, struct tally_tlog_checkpoint *c,
    struct tally_error *err)
{
	size_t tlen;

	if (tally_tlog_note_open(note, len, k, 1, &tlen, err) == -1 ||
	    tally_tlog_checkpoint_parse(note, tlen, c, err) == -1)
		return -1;
	if (strcmp(c->origin, k->name) != 0)
		return tally_error_set(err, TALLY_ERROR_INVALID, "bad_checkpoint",
		    NULL, "the checkpoint's origin \"%s\" is not the key's "
		    "name \"%s\"", c->origin, k->name);
	return 0;
}

/* ---- tlog-proof ---- */

#define PROOF_HEADER	"c2sp.org/tlog-proof@v1\n"

char *
tally_tlog_proof_format(const struct tally_tlog_proof *p, size_t *outlen)
{
	struct tally_buf b = { 0 };
	char line[64];
	size_t i;

	tally_buf_str(&b, PROOF_HEADER);
	if (p->extra != NULL) {
		char *e = malloc((p->extra_len + 2) / 3 * 4 + 1);
		if (e == NULL) {
			free(b.p);
			return NULL;
		}
		tally_buf_str(&b, "extra ");
		tally_buf_add(&b, e, tally_tlog_b64_encode(p->extra,
		    p->extra_len, e));
		tally_buf_str(&b, "\n");
		free(e);
	}
	tally_buf_str(&b, "index ");
	tally_buf_uint(&b, p->index);
	tally_buf_str(&b, "\n");
	for (i = 0; i < p->n; i++) {
		tally_buf_add(&b, line, tally_tlog_b64_encode(p->hashes[i], 32,
		    line));
		tally_buf_str(&b, "\n");
	}
	tally_buf_str(&b, "\n");
	tally_buf_add(&b, p->note, p->note_len);
	if (b.nomem) {
		free(b.p);
		return NULL;
	}
	if (outlen != NULL)
		*outlen = b.len;
	return b.p;
}

void
tally_tlog_proof_finish(struct tally_tlog_proof *p)
{
	free(p->extra);
	free(p->note);
	memset(p, 0, sizeof(*p));
}

int
tally_tlog_proof_parse(const char *text, size_t len,
    struct tally_tlog_proof *p, struct tally_error *err)
{
	const char *q = text, *end = text + len, *eol;
	uint64_t v = 0;

	memset(p, 0, sizeof(*p));
	if (len < sizeof(PROOF_HEADER) - 1 ||
	    memcmp(q, PROOF_HEADER, sizeof(PROOF_HEADER) - 1) != 0)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_proof", NULL,
		    "not a c2sp.org/tlog-proof@v1 proof");
	q += sizeof(PROOF_HEADER) - 1;
	if ((eol = memchr(q, '\n', (size_t)(end - q))) == NULL)
		goto short_proof;
	if (eol - q > 6 && memcmp(q, "extra ", 6) == 0) {
		size_t n = (size_t)(eol - q - 6);
		long got;
		if ((p->extra = malloc(n / 4 * 3 + 1)) == NULL)
			return tally_error_set(err, TALLY_ERROR_NOMEM,
			    "out_of_memory", NULL, "out of memory");
		if ((got = tally_tlog_b64_decode(q + 6, n, p->extra)) < 0) {
			tally_tlog_proof_finish(p);
			return tally_error_set(err, TALLY_ERROR_SYNTAX,
			    "bad_proof", NULL, "the extra line is not base64");
		}
		p->extra_len = (size_t)got;
		q = eol + 1;
		if ((eol = memchr(q, '\n', (size_t)(end - q))) == NULL)
			goto short_proof;
	}
	if (eol - q < 7 || memcmp(q, "index ", 6) != 0 ||
	    (q[6] == '0' && eol - q > 7))
		goto bad_index;
	for (q += 6; q < eol; q++) {
		if (*q < '0' || *q > '9' || v > (UINT64_MAX - 9) / 10)
			goto bad_index;
		v = v * 10 + (uint64_t)(*q - '0');
	}
	p->index = v;
	q = eol + 1;
	for (;;) {
		if ((eol = memchr(q, '\n', (size_t)(end - q))) == NULL)
			goto short_proof;
		if (eol == q)
			break;
		if (p->n == TALLY_TLOG_PROOF_MAX || eol - q != 44 ||
		    tally_tlog_b64_decode(q, 44, p->hashes[p->n]) != 32) {
			tally_tlog_proof_finish(p);
			return tally_error_set(err, TALLY_ERROR_SYNTAX,
			    "bad_proof", NULL, "proof line %zu is not a base64 "
			    "hash (or there are more than %d)", p->n + 1,
			    TALLY_TLOG_PROOF_MAX);
		}
		p->n++;
		q = eol + 1;
	}
	q = eol + 1;
	p->note_len = (size_t)(end - q);
	if ((p->note = malloc(p->note_len + 1)) == NULL) {
		tally_tlog_proof_finish(p);
		return tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory",
		    NULL, "out of memory");
	}
	memcpy(p->note, q, p->note_len);
	p->note[p->note_len] = '\0';
	return 0;
bad_index:
	tally_tlog_proof_finish(p);
	return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_proof", NULL,
	    "the proof has no \"index N\" line");
short_proof:
	tally_tlog_proof_finish(p);
	return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_proof", NULL,
	    "the proof ends before its checkpoint");
}

int
tally_tlog_proof_verify(const struct tally_tlog_proof *p,
    const struct tally_tlog_key *k, const uint8_t *leaf,
    struct tally_tlog_checkpoint *c, struct tally_error *err)
{
	uint8_t h[32];

	if (tally_tlog_checkpoint_open(p->note, p->note_len, k, c, err) == -1)
		return -1;
	if (leaf == NULL) {
		if (p->extra == NULL)
			return tally_error_set(err, TALLY_ERROR_INVALID,
			    "bad_proof", NULL, "the proof carries no entry "
			    "(extra) and no leaf hash was given");
		tally_tlog_leaf_hash(p->extra, p->extra_len, h);
		leaf = h;
	}
	if (!tally_tlog_inclusion_verify(p->index, c->size, leaf,
	    (const uint8_t (*)[32])p->hashes, p->n, c->root))
		return tally_error_set(err, TALLY_ERROR_INVALID, "bad_proof",
		    NULL, "the inclusion proof of index %llu does not lead to "
		    "the root of the checkpoint of size %llu",
		    (unsigned long long)p->index, (unsigned long long)c->size);
	return 0;
}

/* ---- the canonical entry ---- */

/* How every entry is written: one byte form per entry. */
#define ENTRY_FLAGS	(JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)

static void
hex32(const uint8_t h[32], char out[65])
{
	static const char d[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = d[h[i] >> 4];
		out[2 * i + 1] = d[h[i] & 15];
	}
	out[64] = '\0';
}

static int
unhex32(const char *s, uint8_t out[32])
{
	size_t i;

	if (s == NULL || strlen(s) != 64)
		return -1;
	for (i = 0; i < 64; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
		    c - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

char *
tally_tlog_entry_encode(const char *record, size_t len, const char *contest,
    const uint8_t lb[32], size_t *outlen, struct tally_error *err)
{
	return tally_tlog_entry_encode_at(record, len, 0, contest, lb, outlen,
	    err);
}

/*
 * The end of the JSON value at p if it is one that json_dumps(ENTRY_FLAGS)
 * writes byte for byte, else NULL.  A strict subset of canonical JSON, as
 * tallyd's records are made: no white space; strings of printable ASCII
 * without escapes; integers 0 to 10^18 - 1 without sign or leading zero;
 * objects with keys in strictly increasing byte order (jansson sorts with
 * strcmp, and equal keys would be duplicates).  Anything else (an escape, a
 * negative number, a real, deeper than 32) is just not this subset: the
 * caller takes jansson's path, which decides.
 */
static const char *
canon_value(const char *p, const char *end, int depth)
{
	const char *q, *key = NULL, *k;
	size_t klen = 0, n;

	if (p >= end || depth > 32)
		return NULL;
	switch (*p) {
	case '"':
		for (q = p + 1; q < end && *q != '"'; q++)
			if (*q < 0x20 || *q > 0x7e || *q == '\\')
				return NULL;
		return q < end ? q + 1 : NULL;
	case '[':
		if (++p < end && *p == ']')
			return p + 1;
		for (;;) {
			if ((p = canon_value(p, end, depth + 1)) == NULL ||
			    p >= end)
				return NULL;
			if (*p == ']')
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	case '{':
		if (++p < end && *p == '}')
			return p + 1;
		for (;;) {
			k = p + 1;
			if (p >= end || *p != '"' ||
			    (q = canon_value(p, end, depth + 1)) == NULL)
				return NULL;
			n = (size_t)(q - k - 1);
			if (key != NULL) {
				int c = memcmp(key, k, klen < n ? klen : n);
				if (c > 0 || (c == 0 && klen >= n))
					return NULL;
			}
			key = k;
			klen = n;
			if (q >= end || *q != ':' ||
			    (p = canon_value(q + 1, end, depth + 1)) == NULL ||
			    p >= end)
				return NULL;
			if (*p == '}')
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	case 't':
		return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
	case 'f':
		return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
	case 'n':
		return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
	default:
		for (q = p; q < end && *q >= '0' && *q <= '9'; q++)
			;
		if (q == p || q - p > 18 || (*p == '0' && q - p > 1))
			return NULL;
		return q;
	}
}

static bool	literal(const char **p, const char *end, const char *lit);

static bool
plain_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return false;
	return true;
}

/*
 * The entry of a record in the one form tally_journal_encode_request
 * writes ({"version":N,"received_at":"..."[,"by":"..."],"results":[...]},
 * no lots), its strings plain and its feeds in the subset above, spliced
 * rather than parsed and dumped: the daemon makes an entry per version,
 * and jansson's round trip was most of the log's cost once the
 * leaderboard left the entry.  The same bytes as the general path (the
 * keys in sorted order: by, contest, leaderboard_sha256, received_at,
 * results, version).  NULL when the record is not in that form.
 */
static char *
entry_encode_fast(const char *record, size_t len, uint64_t version,
    const char *contest, const uint8_t lb[32], size_t *outlen)
{
	const char *p = record, *end = record + len, *at, *at_end, *by = NULL,
	    *by_end = NULL, *res, *res_end, *ver, *ver_end;
	char hex[65], vbuf[24], *out, *o;
	size_t need;

	if (contest != NULL && !plain_ascii(contest))
		return NULL;
	if (len < 2 || !literal(&p, end, "{\"version\":"))
		return NULL;
	ver = p;
	if ((p = canon_value(p, end, 0)) == NULL || *ver < '0' || *ver > '9')
		return NULL;
	ver_end = p;
	if (!literal(&p, end, ",\"received_at\":\""))
		return NULL;
	at = p;
	if ((p = canon_value(p - 1, end, 0)) == NULL)
		return NULL;
	at_end = p - 1;
	if (literal(&p, end, ",\"by\":\"")) {
		by = p;
		if ((p = canon_value(p - 1, end, 0)) == NULL)
			return NULL;
		by_end = p - 1;
	}
	if (!literal(&p, end, ",\"results\":"))
		return NULL;
	res = p;
	if (p >= end || *p != '[' || (p = canon_value(p, end, 0)) == NULL ||
	    p + 1 != end || *p != '}')
		return NULL;
	res_end = p;
	if (version != 0) {
		snprintf(vbuf, sizeof(vbuf), "%llu", (unsigned long long)version);
		ver = vbuf;
		ver_end = vbuf + strlen(vbuf);
	}
	if (lb != NULL)
		hex32(lb, hex);
	need = 64 + (size_t)(at_end - at) + (size_t)(res_end - res) +
	    (size_t)(ver_end - ver) + (by ? (size_t)(by_end - by) : 0) +
	    (contest ? strlen(contest) + 16 : 0) + (lb ? 100 : 0);
	if ((out = o = malloc(need)) == NULL)
		return NULL;
#define PUT(s, n)	do { memcpy(o, (s), (n)); o += (n); } while (0)
#define PUTS(s)		PUT((s), strlen(s))
	PUTS("{");
	if (by != NULL) {
		PUTS("\"by\":\"");
		PUT(by, (size_t)(by_end - by));
		PUTS("\",");
	}
	if (contest != NULL) {
		PUTS("\"contest\":\"");
		PUTS(contest);
		PUTS("\",");
	}
	if (lb != NULL) {
		PUTS("\"leaderboard_sha256\":\"");
		PUT(hex, 64);
		PUTS("\",");
	}
	PUTS("\"received_at\":\"");
	PUT(at, (size_t)(at_end - at));
	PUTS("\",\"results\":");
	PUT(res, (size_t)(res_end - res));
	PUTS(",\"version\":");
	PUT(ver, (size_t)(ver_end - ver));
	PUTS("}");
#undef PUTS
#undef PUT
	*o = '\0';
	*outlen = (size_t)(o - out);
	return out;
}

char *
tally_tlog_entry_encode_at(const char *record, size_t len, uint64_t version,
    const char *contest, const uint8_t lb[32], size_t *outlen,
    struct tally_error *err)
{
	json_error_t jerr;
	json_t *root = NULL;
	char hex[65], *out = NULL;

	if ((out = entry_encode_fast(record, len, version, contest, lb,
	    outlen)) != NULL) {
		if (*outlen > TALLY_TLOG_ENTRY_MAX)
			goto too_large;
		return out;
	}
	if ((root = json_loadb(record, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL || !json_is_object(root) ||
	    !json_is_integer(json_object_get(root, "version")) ||
	    !json_is_array(json_object_get(root, "results")) ||
	    json_object_get(root, "leaderboard_sha256") != NULL ||
	    json_object_get(root, "contest") != NULL) {
		tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_record", NULL,
		    "not a journal record payload");
		goto done;
	}
	if (version != 0 && json_object_set_new(root, "version",
	    json_integer((json_int_t)version)) == -1) {
		tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory writing a log entry");
		goto done;
	}
	if (lb != NULL)
		hex32(lb, hex);
	if ((lb != NULL && json_object_set_new(root, "leaderboard_sha256",
	    json_string(hex)) == -1) || (contest != NULL &&
	    json_object_set_new(root, "contest", json_string(contest)) == -1) ||
	    (out = json_dumps(root, ENTRY_FLAGS)) == NULL) {
		tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory writing a log entry");
		goto done;
	}
	*outlen = strlen(out);
	if (*outlen > TALLY_TLOG_ENTRY_MAX) {
too_large:
		tally_error_set(err, TALLY_ERROR_INVALID, "entry_too_large",
		    NULL, "the log entry is %zu bytes, more than %d", *outlen,
		    TALLY_TLOG_ENTRY_MAX);
		free(out);
		out = NULL;
	}
done:
	json_decref(root);
	return out;
}

/* Parse and check an entry's head; *rootp new on success. */
static int
entry_load(const char *entry, size_t len, struct tally_tlog_entry_head *h,
    json_t **rootp, struct tally_error *err)
{
	json_error_t jerr;
	json_t *root, *v, *c;
	char *again = NULL;
	int rc = -1;

	memset(h, 0, sizeof(*h));
	*rootp = NULL;
	if ((root = json_loadb(entry, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_entry", NULL,
		    "not JSON: %s (offset %d)", jerr.text, jerr.position);
	if (!json_is_object(root)) {
		tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_entry", NULL,
		    "not a JSON object");
		goto done;
	}
	/* One entry, one byte string: a verifier hashes the bytes it got. */
	if ((again = json_dumps(root, ENTRY_FLAGS)) == NULL) {
		tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory reading a log entry");
		goto done;
	}
	if (strlen(again) != len || memcmp(again, entry, len) != 0) {
		tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_entry", NULL,
		    "not in canonical form (sorted keys, no spaces, ASCII)");
		goto done;
	}
	v = json_object_get(root, "version");
	if (!json_is_integer(v) || json_integer_value(v) < 1) {
		tally_error_set(err, TALLY_ERROR_INVALID, "bad_entry", "/version",
		    "no version (a positive integer)");
		goto done;
	}
	h->version = (uint64_t)json_integer_value(v);
	/* Every entry tallyd writes has it; those of the older form not. */
	if ((v = json_object_get(root, "leaderboard_sha256")) == NULL)
		;
	else if (unhex32(json_string_value(v), h->leaderboard_sha256) == 0)
		h->has_leaderboard = true;
	else {
		tally_error_set(err, TALLY_ERROR_INVALID, "bad_entry",
		    "/leaderboard_sha256", "leaderboard_sha256 is not 64 "
		    "lowercase hex digits");
		goto done;
	}
	if ((c = json_object_get(root, "contest")) != NULL) {
		if (!json_is_string(c) || json_string_length(c) == 0 ||
		    json_string_length(c) >= sizeof(h->contest)) {
			tally_error_set(err, TALLY_ERROR_INVALID, "bad_entry",
			    "/contest", "contest is not a contest id");
			goto done;
		}
		snprintf(h->contest, sizeof(h->contest), "%s",
		    json_string_value(c));
	}
	*rootp = root;
	root = NULL;
	rc = 0;
done:
	free(again);
	json_decref(root);
	return rc;
}

int
tally_tlog_entry_head(const char *entry, size_t len,
    struct tally_tlog_entry_head *h, struct tally_error *err)
{
	json_t *root;

	if (entry_load(entry, len, h, &root, err) == -1)
		return -1;
	json_decref(root);
	return 0;
}

/* A quoted string without escapes at *p (at most max - 1 bytes) into
 * out; false when it is not one. */
static bool
plain_string(const char **p, const char *end, char *out, size_t max)
{
	const char *q, *r;

	if (*p >= end || **p != '"')
		return false;
	if ((q = memchr(*p + 1, '"', (size_t)(end - *p - 1))) == NULL ||
	    (size_t)(q - *p - 1) >= max ||
	    memchr(*p + 1, '\\', (size_t)(q - *p - 1)) != NULL)
		return false;
	/* What canonical JSON would escape is not plain. */
	for (r = *p + 1; r < q; r++)
		if ((unsigned char)*r < 0x20 || (unsigned char)*r >= 0x80)
			return false;
	memcpy(out, *p + 1, (size_t)(q - *p - 1));
	out[q - *p - 1] = '\0';
	*p = q + 1;
	return true;
}

static bool
literal(const char **p, const char *end, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

/*
 * The fast path of a replay: an entry of one contest without lots, in the
 * one form tally_tlog_entry_encode writes, read without jansson (the
 * feeds by tally_feed_read_canonical, each checked to be its canonical
 * bytes), then applied as tally_journal_apply's fast path applies a
 * record.  Reading a 100,000-entry log, the general path's parse and
 * canonical re-encoding were a third of the time.  1: not that form (the
 * caller takes the general path; nothing changed), 0: applied, -1: refused.
 */
static int
entry_apply_fast(struct tally_state *s, const char *entry, size_t len,
    struct tally_tlog_entry_head *h, struct tally_error *err)
{
	const char *p = entry, *end = entry + len;
	struct tally_feed *feeds[64];
	char by[128], at[40], hex[65];
	bool has_by = false;
	enum tally_check chk;
	uint64_t version = 0;
	size_t n = 0, used, i, digits = 0;
	int rc = 1;

	memset(h, 0, sizeof(*h));
	if (!literal(&p, end, "{"))
		return 1;
	if (literal(&p, end, "\"by\":")) {
		if (!plain_string(&p, end, by, sizeof(by)) ||
		    !literal(&p, end, ","))
			return 1;
		has_by = true;
	}
	/* A further contest's entry names it (its log is its own). */
	if (literal(&p, end, "\"contest\":")) {
		if (!plain_string(&p, end, h->contest, sizeof(h->contest)) ||
		    h->contest[0] == '\0' || !literal(&p, end, ","))
			return 1;
	}
	if (literal(&p, end, "\"leaderboard_sha256\":")) {
		if (!plain_string(&p, end, hex, sizeof(hex)) ||
		    unhex32(hex, h->leaderboard_sha256) == -1 ||
		    !literal(&p, end, ","))
			return 1;
		h->has_leaderboard = true;
	}
	if (!literal(&p, end, "\"received_at\":") ||
	    !plain_string(&p, end, at, sizeof(at)) ||
	    !literal(&p, end, ",\"results\":["))
		return 1;
	while (p < end && *p != ']') {
		if (n > 0 && !literal(&p, end, ","))
			goto out;
		if (n == sizeof(feeds) / sizeof(feeds[0]))
			goto out;
		if ((feeds[n] = tally_feed_read_canonical(s->election, p,
		    (size_t)(end - p), &used)) == NULL)
			goto out;
		n++;
		if (used != feeds[n - 1]->canonical_len ||
		    memcmp(p, feeds[n - 1]->canonical, used) != 0)
			goto out;
		p += used;
	}
	if (n == 0 || !literal(&p, end, "],\"version\":"))
		goto out;
	for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
		version = version * 10 + (uint64_t)(*p - '0');
	if (digits == 0 || digits > 18 || (digits > 1 && p[-(long)digits] ==
	    '0') || version == 0 || !literal(&p, end, "}") || p != end)
		goto out;
	h->version = version;
	/* Read whole: from here on, errors are real. */
	rc = -1;
	if (version != s->version + 1) {
		tally_error_set(err, TALLY_ERROR_CONFLICT, "bad_entry",
		    "/version", "version %llu follows version %llu",
		    (unsigned long long)version,
		    (unsigned long long)s->version);
		goto out;
	}
	for (i = 0; i < n && has_by; i++)
		if ((feeds[i]->by = tally_label_clean(by)) == NULL) {
			tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory reading a log entry");
			goto out;
		}
	/* Whole or nothing, as the journal applies a record. */
	for (i = 0; i < n; i++) {
		if (tally_state_check(s, feeds[i], &chk, err) == -1)
			goto out;
		if (chk != TALLY_CHECK_NEW) {
			tally_error_set(err, TALLY_ERROR_CONFLICT, "bad_entry",
			    NULL, "the entry repeats the current revision");
			goto out;
		}
		if (n > 1 && tally_state_check_apply(s, feeds[i], err) == -1)
			goto out;
	}
	for (i = 0; i < n; i++) {
		struct tally_feed *f = feeds[i];
		feeds[i] = NULL;
		if (tally_state_apply(s, f, at, err) == -1)
			goto out;
	}
	s->version = version;
	rc = 0;
out:
	for (i = 0; i < n; i++)
		tally_feed_destroy(feeds[i]);
	if (rc == 1)
		memset(h, 0, sizeof(*h));
	return rc;
}

int
tally_tlog_entry_apply(struct tally_state *s, const char *entry, size_t len,
    struct tally_tlog_entry_head *h, struct tally_error *err)
{
	json_t *root;
	int rc;

	if ((rc = entry_apply_fast(s, entry, len, h, err)) != 1)
		return rc;
	if (entry_load(entry, len, h, &root, err) == -1)
		return -1;
	if (h->version != s->version + 1) {
		json_decref(root);
		return tally_error_set(err, TALLY_ERROR_CONFLICT, "bad_entry",
		    "/version", "version %llu follows version %llu",
		    (unsigned long long)h->version,
		    (unsigned long long)s->version);
	}
	/* The record inside the entry, applied as the daemon's replay does. */
	rc = tally_journal_apply_json(s, root, err);
	json_decref(root);
	return rc;
}

char *
tally_tlog_leaderboard(const struct tally_state *s, size_t *len)
{
	char *text, *nb, *cj = NULL;
	size_t n, m = 0;
	json_t *exp;

	if ((text = tally_render_leaderboard_text(s, s->updated_at[0] ?
	    s->updated_at : NULL)) == NULL)
		return NULL;
	n = strlen(text);
	/*
	 * The expected vote (a pure function of the definition and the
	 * tally), as a last member: the view's bytes are these bytes, so a
	 * verifier that replays the log reproduces them.
	 */
	if ((exp = tally_expected_national(s)) != NULL) {
		cj = json_dumps(exp, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(exp);
		if (cj == NULL || n == 0 || text[n - 1] != '}') {
			free(cj);
			free(text);
			return NULL;
		}
		m = strlen(cj) + strlen(",\"expected\":");
	}
	/* The newline the daemon adds to every JSON view. */
	if ((nb = realloc(text, n + m + 2)) == NULL) {
		free(cj);
		free(text);
		return NULL;
	}
	if (cj != NULL) {
		snprintf(nb + n - 1, m + 2, ",\"expected\":%s}", cj);
		n += m;
		free(cj);
	}
	nb[n] = '\n';
	nb[n + 1] = '\0';
	*len = n + 1;
	return nb;
}

int
tally_tlog_leaderboard_sha256(const struct tally_state *s, uint8_t out[32])
{
	struct sha256_ctx c;
	size_t len;
	char *text;

	if ((text = tally_tlog_leaderboard(s, &len)) == NULL)
		return -1;
	sha256_init(&c);
	sha256_update(&c, len, (const uint8_t *)text);
	sha256_digest(&c, 32, out);
	free(text);
	return 0;
}
