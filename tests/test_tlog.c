/*
 * test_tlog.c - the transparency log's primitives against known vectors.
 *
 * The Merkle vectors are the 8-leaf test tree of the certificate-
 * transparency reference implementation (the same tree in RFC 6962's
 * implementations since: leaves "", 00, 10, 2021, 3031, 40414243,
 * 5051525354555657, 606162636465666768696a6b6c6d6e6f), its root at every
 * size, and its published inclusion and consistency proofs.  Ed25519:
 * RFC 8032 section 7.1, test 1.  Then round trips and corruptions: every
 * proof with any one bit flipped, any hash dropped or added, or any other
 * index or size must be refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/eddsa.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

static void
unhex(const char *s, uint8_t *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static const char *leaves_hex[8] = {
	"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
	"606162636465666768696a6b6c6d6e6f",
};

/* Root of the tree of the first n leaves, n = 0..8. */
static const char *roots_hex[9] = {
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

/* Leaf hashes (level 0) and two complete level-1 nodes of the tree. */
static const char *leaf_hash_hex[8] = {
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
	"0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
	"07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
	"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
	"4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
	"b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
	"46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
};

struct vec {
	uint64_t	 a, b;		/* inclusion: index, size; consistency: m, n */
	size_t		 n;
	const char	*h[3];
};

/* The published inclusion proofs (leaf index 0-based). */
static const struct vec inclusion[] = {
	{ 0, 1, 0, { NULL } },
	{ 0, 8, 3, { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 5, 8, 3, { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
		     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 3, 1, { "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" } },
	{ 1, 5, 3, { "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
};

static const struct vec consistency[] = {
	{ 1, 1, 0, { NULL } },
	{ 1, 8, 3, { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
		     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" } },
	{ 6, 8, 3, { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
	{ 2, 5, 2, { "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
		     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" } },
	{ 6, 7, 3, { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
		     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
		     "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" } },
};

static uint8_t roots[9][32];

/* A naive MTH over leaf hashes, to check the stored-hash tree against. */
static void
mth(uint8_t (*lh)[32], uint64_t n, uint8_t out[32])
{
	uint64_t k = 1;
	uint8_t l[32], r[32];

	if (n == 1) {
		memcpy(out, lh[0], 32);
		return;
	}
	while (k << 1 < n)
		k <<= 1;
	mth(lh, k, l);
	mth(lh + k, n - k, r);
	tally_tlog_node_hash(l, r, out);
}

static struct tally_tlog_tree *
vector_tree(void)
{
	struct tally_tlog_tree *t = tally_tlog_tree_create();
	uint8_t buf[16], h[32], want[32];
	size_t i, n;

	for (i = 0; i < 8; i++) {
		n = strlen(leaves_hex[i]) / 2;
		unhex(leaves_hex[i], buf, n);
		tally_tlog_leaf_hash(buf, n, h);
		unhex(leaf_hash_hex[i], want, 32);
		CHECK(memcmp(h, want, 32) == 0, "leaf hash %zu", i);
		CHECK(tally_tlog_tree_append(t, h) == 0, "append %zu", i);
	}
	return t;
}

static void
test_vectors(void)
{
	struct tally_tlog_tree *t = vector_tree();
	uint8_t proof[64][32], want[3][32], got[32], leaf[32];
	size_t i, j, np;

	for (i = 0; i <= 8; i++) {
		unhex(roots_hex[i], roots[i], 32);
		CHECK(tally_tlog_tree_root(t, i, got) == 0 &&
		    memcmp(got, roots[i], 32) == 0, "root of size %zu", i);
	}
	CHECK(tally_tlog_tree_root(t, 9, got) == -1, "root beyond size");
	for (i = 0; i < sizeof(inclusion) / sizeof(inclusion[0]); i++) {
		const struct vec *v = &inclusion[i];
		for (j = 0; j < v->n; j++)
			unhex(v->h[j], want[j], 32);
		CHECK(tally_tlog_tree_inclusion(t, v->a, v->b, proof, &np) == 0,
		    "inclusion %zu", i);
		CHECK_EQ_U(np, v->n, "inclusion %zu length", i);
		for (j = 0; j < v->n && j < np; j++)
			CHECK(memcmp(proof[j], want[j], 32) == 0,
			    "inclusion %zu hash %zu", i, j);
		unhex(leaf_hash_hex[v->a], leaf, 32);
		CHECK(tally_tlog_inclusion_verify(v->a, v->b, leaf,
		    (const uint8_t (*)[32])want, v->n, roots[v->b]),
		    "inclusion %zu verifies", i);
	}
	for (i = 0; i < sizeof(consistency) / sizeof(consistency[0]); i++) {
		const struct vec *v = &consistency[i];
		for (j = 0; j < v->n; j++)
			unhex(v->h[j], want[j], 32);
		CHECK(tally_tlog_tree_consistency(t, v->a, v->b, proof,
		    &np) == 0, "consistency %zu", i);
		CHECK_EQ_U(np, v->n, "consistency %zu length", i);
		for (j = 0; j < v->n && j < np; j++)
			CHECK(memcmp(proof[j], want[j], 32) == 0,
			    "consistency %zu hash %zu", i, j);
		CHECK(tally_tlog_consistency_verify(v->a, v->b,
		    (const uint8_t (*)[32])want, v->n, roots[v->a],
		    roots[v->b]), "consistency %zu verifies", i);
	}
	/* Edge cases of RFC 9162's verifiers. */
	CHECK(tally_tlog_consistency_verify(0, 5, NULL, 0, roots[0], roots[5]),
	    "empty tree is consistent with anything");
	CHECK(!tally_tlog_consistency_verify(5, 4, NULL, 0, roots[5], roots[4]),
	    "a tree cannot shrink");
	CHECK(!tally_tlog_consistency_verify(4, 5, NULL, 0, roots[4], roots[5]),
	    "growth needs a proof");
	CHECK(!tally_tlog_consistency_verify(3, 3, NULL, 0, roots[3], roots[4]),
	    "same size, other root");
	CHECK(!tally_tlog_consistency_verify(3, 3, (const uint8_t (*)[32])
	    roots, 1, roots[3], roots[3]), "same size, proof not empty");
	unhex(leaf_hash_hex[0], leaf, 32);
	CHECK(!tally_tlog_inclusion_verify(0, 0, leaf, NULL, 0, roots[0]),
	    "index 0 of an empty tree");
	CHECK(tally_tlog_inclusion_verify(0, 1, leaf, NULL, 0, roots[1]),
	    "one-leaf tree");
	tally_tlog_tree_destroy(t);
}

/* Every corruption of every proof of a 70-leaf tree is refused. */
static void
test_corruptions(void)
{
	struct tally_tlog_tree *t = tally_tlog_tree_create();
	uint8_t lh[70][32], proof[65][32], bad[65][32], root[32], r1[32], r2[32];
	uint64_t n, m, i;
	size_t np, j, k;
	unsigned long accepts = 0, probes = 0;

	for (i = 0; i < 70; i++) {
		uint8_t e[8];
		memcpy(e, &i, sizeof(e));
		tally_tlog_leaf_hash(e, sizeof(e), lh[i]);
		tally_tlog_tree_append(t, lh[i]);
		mth(lh, i + 1, root);
		tally_tlog_tree_root(t, i + 1, r1);
		CHECK(memcmp(root, r1, 32) == 0, "root %llu = naive MTH",
		    (unsigned long long)i + 1);
	}
	for (n = 1; n <= 70; n++) {
		tally_tlog_tree_root(t, n, r2);
		for (i = 0; i < n; i++) {
			tally_tlog_tree_inclusion(t, i, n, proof, &np);
			CHECK(tally_tlog_inclusion_verify(i, n, lh[i],
			    (const uint8_t (*)[32])proof, np, r2),
			    "inclusion %llu in %llu", (unsigned long long)i,
			    (unsigned long long)n);
			for (j = 0; j < np; j++)
				for (k = 0; k < 256; k += 37) {
					memcpy(bad, proof, np * 32);
					bad[j][k / 8] ^= (uint8_t)(1 << (k % 8));
					probes++;
					accepts += tally_tlog_inclusion_verify(i,
					    n, lh[i], (const uint8_t (*)[32])bad,
					    np, r2);
				}
			probes += 5;
			accepts += tally_tlog_inclusion_verify(i + 1, n, lh[i],
			    (const uint8_t (*)[32])proof, np, r2);
			/* (A proof does not bind the size by itself: n + 1 may
			 * share n's path; the signed checkpoint binds it.) */
			accepts += tally_tlog_inclusion_verify(i, n * 2, lh[i],
			    (const uint8_t (*)[32])proof, np, r2);
			accepts += tally_tlog_inclusion_verify(i, n / 2, lh[i],
			    (const uint8_t (*)[32])proof, np, r2);
			accepts += np > 0 && tally_tlog_inclusion_verify(i, n,
			    lh[i], (const uint8_t (*)[32])proof, np - 1, r2);
			memcpy(bad, proof, np * 32);
			memcpy(bad[np], r2, 32);
			accepts += tally_tlog_inclusion_verify(i, n, lh[i],
			    (const uint8_t (*)[32])bad, np + 1, r2);
		}
		for (m = 1; m <= n; m++) {
			tally_tlog_tree_root(t, m, r1);
			tally_tlog_tree_consistency(t, m, n, proof, &np);
			CHECK(tally_tlog_consistency_verify(m, n,
			    (const uint8_t (*)[32])proof, np, r1, r2),
			    "consistency %llu to %llu", (unsigned long long)m,
			    (unsigned long long)n);
			for (j = 0; j < np; j++) {
				memcpy(bad, proof, np * 32);
				bad[j][j % 32] ^= 0x10;
				probes++;
				accepts += tally_tlog_consistency_verify(m, n,
				    (const uint8_t (*)[32])bad, np, r1, r2);
			}
			if (m < n) {
				probes += 3;
				accepts += tally_tlog_consistency_verify(m, n,
				    (const uint8_t (*)[32])proof, np, r2, r1);
				accepts += tally_tlog_consistency_verify(m, n,
				    (const uint8_t (*)[32])proof, np - 1, r1,
				    r2);
				accepts += tally_tlog_consistency_verify(m + 1,
				    n, (const uint8_t (*)[32])proof, np, r1, r2);
			}
		}
	}
	CHECK(accepts == 0, "%lu of %lu corrupted proofs accepted", accepts,
	    probes);
	tally_tlog_tree_destroy(t);
}

static void
test_tiles(void)
{
	static const struct { int l; uint64_t n; unsigned w; const char *p; }
	    paths[] = {
		{ 0, 0, 256, "tile/0/000" },
		{ 0, 1234067, 256, "tile/0/x001/x234/067" },
		{ 2, 5, 17, "tile/2/005.p/17" },
		{ -1, 1000, 1, "tile/entries/x001/000.p/1" },
		{ -1, 999, 256, "tile/entries/999" },
	};
	static const char *bad[] = {
		"tile/0/0", "tile/00/000", "tile/0/001.p/0", "tile/0/001.p/256",
		"tile/0/001.p/01", "tile/0/x000", "tile/0/000/", "tile/64/000",
		"tile/entries/x1/000", "tile/0/1000", "tiles/0/000", "",
	};
	struct tally_tlog_tree *t = tally_tlog_tree_create();
	uint8_t h[32], *out = malloc(256 * 32);
	char buf[TALLY_TLOG_PATH_MAX];
	uint64_t n, i;
	unsigned w;
	int l;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		CHECK(tally_tlog_tile_path(buf, sizeof(buf), paths[i].l,
		    paths[i].n, paths[i].w) == 0 && strcmp(buf,
		    paths[i].p) == 0, "path %s: %s", paths[i].p, buf);
		CHECK(tally_tlog_tile_parse_path(paths[i].p, &l, &n, &w) == 0 &&
		    l == paths[i].l && n == paths[i].n && w == paths[i].w,
		    "parse %s", paths[i].p);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(tally_tlog_tile_parse_path(bad[i], &l, &n, &w) == -1,
		    "refuse %s", bad[i]);
	CHECK_EQ_U(tally_tlog_tile_width(70000, 0, 273), 112, "partial");
	CHECK_EQ_U(tally_tlog_tile_width(70000, 0, 272), 256, "full");
	CHECK_EQ_U(tally_tlog_tile_width(70000, 0, 274), 0, "none");
	CHECK_EQ_U(tally_tlog_tile_width(70000, 1, 0), 256, "level 1");
	CHECK_EQ_U(tally_tlog_tile_width(70000, 1, 1), 17, "level 1 partial");
	CHECK_EQ_U(tally_tlog_tile_width(70000, 2, 0), 1, "level 2");
	CHECK_EQ_U(tally_tlog_tile_width(65536, 2, 0), 1, "level 2 exact");
	CHECK_EQ_U(tally_tlog_tile_width(65535, 2, 0), 0, "no level 2");
	for (i = 0; i < 70000; i++) {
		tally_tlog_leaf_hash(&i, sizeof(i), h);
		tally_tlog_tree_append(t, h);
	}
	/* A level-1 tile's hash k is the root of the k-th 256 leaves. */
	CHECK(tally_tlog_tile_hashes(t, 1, 0, 17, out) == 0, "level 1 tile");
	{
		struct tally_tlog_tree *u = tally_tlog_tree_create();
		uint8_t r[32];
		for (i = 256 * 16; i < 256 * 17; i++) {
			tally_tlog_leaf_hash(&i, sizeof(i), h);
			tally_tlog_tree_append(u, h);
		}
		tally_tlog_tree_root(u, 256, r);
		CHECK(memcmp(out + 16 * 32, r, 32) == 0, "tile hash 16");
		tally_tlog_tree_destroy(u);
	}
	CHECK(tally_tlog_tile_hashes(t, 1, 1, 18, out) == -1, "past size");
	{
		uint8_t *b = NULL;
		const uint8_t *e;
		size_t len = 0, cap = 0, off = 0, el;
		tally_tlog_bundle_add(&b, &len, &cap, "abc", 3);
		tally_tlog_bundle_add(&b, &len, &cap, "", 0);
		CHECK(len == 7 && b[0] == 0 && b[1] == 3, "bundle bytes");
		CHECK(tally_tlog_bundle_next(b, len, &off, &e, &el) == 1 &&
		    el == 3 && memcmp(e, "abc", 3) == 0, "bundle 1");
		CHECK(tally_tlog_bundle_next(b, len, &off, &e, &el) == 1 &&
		    el == 0, "bundle 2");
		CHECK(tally_tlog_bundle_next(b, len, &off, &e, &el) == 0, "end");
		off = 0;
		CHECK(tally_tlog_bundle_next(b, 4, &off, &e, &el) == -1,
		    "truncated");
		free(b);
	}
	free(out);
	tally_tlog_tree_destroy(t);
}

static void
test_ed25519_and_notes(void)
{
	uint8_t seed[32], pub[32], sig[64], want[64];
	struct tally_tlog_signer s, s2;
	struct tally_tlog_key k, other;
	struct tally_tlog_checkpoint c, c2;
	struct tally_error err;
	char text[256], vkey[256], skey[256], *note, *note2;
	size_t len, nlen, tlen;

	/* RFC 8032 7.1, TEST 1: the empty message. */
	unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	    seed, 32);
	unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555"
	    "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	    want, 64);
	ed25519_sha512_public_key(pub, seed);
	unhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	    sig, 32);
	CHECK(memcmp(pub, sig, 32) == 0, "RFC 8032 test 1 public key");
	ed25519_sha512_sign(pub, seed, 0, (const uint8_t *)"", sig);
	CHECK(memcmp(sig, want, 64) == 0, "RFC 8032 test 1 signature");
	CHECK(ed25519_sha512_verify(pub, 0, (const uint8_t *)"", sig),
	    "RFC 8032 test 1 verifies");
	sig[63] ^= 1;
	CHECK(!ed25519_sha512_verify(pub, 0, (const uint8_t *)"", sig),
	    "RFC 8032 test 1 flipped");

	CHECK(tally_tlog_signer_init(&s, "tally.example/es-2019", seed) == 0,
	    "signer");
	CHECK(tally_tlog_signer_init(&s2, "a b", seed) == -1, "bad name");
	CHECK(tally_tlog_key_format(&s.key, vkey, sizeof(vkey)) == 0, "vkey");
	CHECK(tally_tlog_key_parse(vkey, &k, &err) == 0 && memcmp(&k, &s.key,
	    sizeof(k)) == 0, "vkey round trip: %s", vkey);
	CHECK(tally_tlog_signer_format(&s, skey, sizeof(skey)) == 0 &&
	    tally_tlog_signer_parse(skey, &s2, &err) == 0 &&
	    memcmp(&s2, &s, sizeof(s)) == 0, "skey round trip");
	vkey[strlen(s.key.name) + 3] ^= 1;	/* a key id digit */
	CHECK(tally_tlog_key_parse(vkey, &other, &err) == -1, "bad key id");

	memset(&c, 0, sizeof(c));
	snprintf(c.origin, sizeof(c.origin), "%s", s.key.name);
	c.size = 1234;
	memcpy(c.root, roots_hex, 32);
	CHECK(tally_tlog_checkpoint_format(&c, text, sizeof(text), &len) == 0,
	    "format");
	note = tally_tlog_note_sign(text, len, &s, &nlen);
	CHECK(note != NULL && strncmp(note, "tally.example/es-2019\n1234\n",
	    27) == 0, "note");
	CHECK(tally_tlog_checkpoint_open(note, nlen, &k, &c2, &err) == 0 &&
	    memcmp(&c, &c2, sizeof(c)) == 0, "open: %s", err.message);
	/* A second, unknown signer is ignored; a bad known one refuses. */
	{
		struct tally_tlog_signer w;
		uint8_t ws[32] = { 7 };
		char *wn, *both;
		size_t wl;
		tally_tlog_signer_init(&w, "witness.example", ws);
		wn = tally_tlog_note_sign(text, len, &w, &wl);
		both = malloc(nlen + 200);
		memcpy(both, note, nlen);
		memcpy(both + nlen, wn + len + 1, wl - len - 1);
		CHECK(tally_tlog_checkpoint_open(both, nlen + wl - len - 1, &k,
		    &c2, &err) == 0, "witness line ignored: %s", err.message);
		CHECK(tally_tlog_checkpoint_open(wn, wl, &k, &c2, &err) == -1 &&
		    strcmp(err.code, "no_signature") == 0, "only a witness");
		free(wn);
		free(both);
	}
	/* Every byte flipped: refused (or, in the signature's base64, a
	 * different key id that is then unknown). */
	{
		size_t i, accepts = 0;
		for (i = 0; i < nlen; i++) {
			note2 = malloc(nlen);
			memcpy(note2, note, nlen);
			note2[i] ^= 0x01;
			if (tally_tlog_checkpoint_open(note2, nlen, &k, &c2,
			    &err) == 0)
				accepts++;
			free(note2);
		}
		CHECK(accepts == 0, "%zu of %zu flipped notes accepted",
		    accepts, nlen);
	}
	CHECK(tally_tlog_note_open(note, nlen - 1, &k, 1, &tlen, &err) == -1,
	    "no final newline");

	/* A tlog-proof round trip with the entry as extra data. */
	{
		struct tally_tlog_tree *t = vector_tree();
		struct tally_tlog_signer ls;
		struct tally_tlog_proof p, q;
		struct tally_tlog_checkpoint cc;
		char *ptext, *cn;
		size_t plen, cl;
		uint8_t e[8];

		tally_tlog_signer_init(&ls, "log.example", seed);
		memset(&cc, 0, sizeof(cc));
		snprintf(cc.origin, sizeof(cc.origin), "log.example");
		cc.size = 8;
		tally_tlog_tree_root(t, 8, cc.root);
		tally_tlog_checkpoint_format(&cc, text, sizeof(text), &len);
		cn = tally_tlog_note_sign(text, len, &ls, &cl);
		memset(&p, 0, sizeof(p));
		p.index = 6;
		tally_tlog_tree_inclusion(t, 6, 8, p.hashes, &p.n);
		unhex(leaves_hex[6], e, 8);
		p.extra = e;
		p.extra_len = 8;
		p.note = cn;
		p.note_len = cl;
		ptext = tally_tlog_proof_format(&p, &plen);
		CHECK(ptext != NULL && strncmp(ptext, "c2sp.org/tlog-proof@v1\n"
		    "extra UFFSU1RVVlc=\nindex 6\n", 48) == 0, "proof text");
		CHECK(tally_tlog_proof_parse(ptext, plen, &q, &err) == 0,
		    "proof parse: %s", err.message);
		CHECK(tally_tlog_proof_verify(&q, &ls.key, NULL, &cc, &err) == 0,
		    "proof verify: %s", err.message);
		q.index = 5;
		CHECK(tally_tlog_proof_verify(&q, &ls.key, NULL, &cc, &err) == -1,
		    "proof of another index");
		tally_tlog_proof_finish(&q);
		free(ptext);
		free(cn);
		tally_tlog_tree_destroy(t);
	}
	free(note);
}

static void
test_b64(void)
{
	uint8_t out[8];

	CHECK(tally_tlog_b64_decode("AA==", 4, out) == 1, "AA==");
	CHECK(tally_tlog_b64_decode("AB==", 4, out) == -1, "non-zero pad bits");
	CHECK(tally_tlog_b64_decode("AAA=", 4, out) == 2, "AAA=");
	CHECK(tally_tlog_b64_decode("AAB=", 4, out) == -1, "non-zero pad bits");
	CHECK(tally_tlog_b64_decode("A===", 4, out) == -1, "A===");
	CHECK(tally_tlog_b64_decode("AA==AAAA", 8, out) == -1, "pad inside");
	CHECK(tally_tlog_b64_decode("AAA", 3, out) == -1, "short");
}

/*
 * Entries: the encoder's bytes replay on the fast path; the same entry
 * with a label that needs escapes replays on the general path to the same
 * state; any non-canonical spelling of an entry is refused, on either.
 */
static void
test_entries(const char *elections)
{
	struct tally_election *e;
	struct tally_state *a, *b;
	struct tally_diag diag;
	struct tally_error err;
	struct tally_tlog_entry_head h;
	struct tally_feed *f;
	char path[1024], *rec, *ent, *ent2, *bad;
	size_t reclen, elen, elen2, i;
	uint8_t lb[32], lb2[32];
	json_t *j;
	static const char *const spoil[][2] = {
		{ "{\"by\"", "{ \"by\"" },
		{ "\"version\":1}", "\"version\":01}" },
		{ "\"received_at\":\"", "\"received_at\":\"\\u0032" },
		{ "\"version\":1}", "\"version\":1,\"version\":1}" },
		{ "\"province\":", "\"province\" :" },
	};

	snprintf(path, sizeof(path), "%s/es-2019-04/election.json", elections);
	tally_diag_init(&diag);
	e = tally_election_load(path, &diag);
	tally_diag_finish(&diag);
	CHECK(e != NULL, "load %s", path);
	if (e == NULL)
		return;
	a = tally_state_create(e);
	b = tally_state_create(e);
	snprintf(path, sizeof(path), "{\"province\":\"%s\",\"revision\":3,"
	    "\"votes\":{\"%s\":1234},\"blank\":5,\"invalid\":6}",
	    e->provinces[3].id, e->coalitions[0].id);
	j = json_loads(path, 0, NULL);
	f = tally_feed_parse(e, NULL, j, "", &err);
	json_decref(j);
	CHECK(f != NULL, "feed: %s", err.message);
	tally_journal_encode_request(0, 1, "2019-04-28T20:00:00Z", "clerk-1",
	    &f, 1, NULL, 0, &rec, &reclen);
	memset(lb, 0xab, 32);
	ent = tally_tlog_entry_encode(rec + TALLY_JOURNAL_HEADER, reclen -
	    TALLY_JOURNAL_HEADER, NULL, lb, &elen, &err);
	free(rec);
	CHECK(ent != NULL && strncmp(ent, "{\"by\":\"clerk-1\",\"leaderboard_"
	    "sha256\":\"abab", 40) == 0, "entry: %s", ent);
	CHECK(tally_tlog_entry_apply(a, ent, elen, &h, &err) == 0 &&
	    h.version == 1 && memcmp(h.leaderboard_sha256, lb, 32) == 0,
	    "fast apply: %s", err.message);
	/* A label with a character JSON escapes: the general path. */
	tally_journal_encode_request(0, 1, "2019-04-28T20:00:00Z",
	    "clerk-\xc3\xa9",
	    &f, 1, NULL, 0, &rec, &reclen);
	ent2 = tally_tlog_entry_encode(rec + TALLY_JOURNAL_HEADER, reclen -
	    TALLY_JOURNAL_HEADER, NULL, lb, &elen2, &err);
	free(rec);
	CHECK(ent2 != NULL && strstr(ent2, "clerk-\\u00E9") != NULL, "escaped");
	CHECK(tally_tlog_entry_apply(b, ent2, elen2, &h, &err) == 0,
	    "general apply: %s", err.message);
	tally_tlog_leaderboard_sha256(a, lb);
	tally_tlog_leaderboard_sha256(b, lb2);
	CHECK(memcmp(lb, lb2, 32) == 0 && a->version == 1 && b->version == 1,
	    "both paths, one state");
	CHECK(tally_tlog_entry_apply(a, ent, elen, &h, &err) == -1,
	    "version 1 twice");
	{
		/* A further contest's entry names it (its own log): the fast
		 * path reads it, and the same state results. */
		struct tally_state *c = tally_state_create(e);
		char *ce, *empty;
		size_t clen;
		tally_journal_encode_request(0, 1, "2019-04-28T20:00:00Z",
		    "clerk-1", &f, 1, NULL, 0, &rec, &reclen);
		ce = tally_tlog_entry_encode(rec + TALLY_JOURNAL_HEADER, reclen -
		    TALLY_JOURNAL_HEADER, "es-2019-04", lb, &clen, &err);
		free(rec);
		CHECK(ce != NULL && strncmp(ce, "{\"by\":\"clerk-1\",\"contest\":"
		    "\"es-2019-04\",\"leaderboard_sha256\"", 59) == 0,
		    "contest entry: %s", ce ? ce : err.message);
		CHECK(ce != NULL && tally_tlog_entry_apply(c, ce, clen, &h,
		    &err) == 0 && strcmp(h.contest, "es-2019-04") == 0 &&
		    c->version == 1, "contest entry apply: %s", err.message);
		tally_tlog_leaderboard_sha256(c, lb2);
		CHECK(memcmp(lb, lb2, 32) == 0, "contest entry, another state");
		tally_state_destroy(c);
		/* An empty contest is no contest id. */
		c = tally_state_create(e);
		empty = ce != NULL ? strstr(ce, "es-2019-04") : NULL;
		if (empty != NULL) {
			memmove(empty, empty + 10, strlen(empty + 10) + 1);
			CHECK(tally_tlog_entry_apply(c, ce, strlen(ce), &h,
			    &err) == -1 && c->version == 0, "empty contest");
		}
		tally_state_destroy(c);
		free(ce);
	}
	for (i = 0; i < sizeof(spoil) / sizeof(spoil[0]); i++) {
		struct tally_state *c = tally_state_create(e);
		const char *at = strstr(ent, spoil[i][0]);
		size_t pre;
		CHECK(at != NULL, "spoil %zu: %s", i, spoil[i][0]);
		if (at == NULL)
			continue;
		pre = (size_t)(at - ent);
		bad = malloc(elen + 64);
		memcpy(bad, ent, pre);
		strcpy(bad + pre, spoil[i][1]);
		strcat(bad, at + strlen(spoil[i][0]));
		CHECK(tally_tlog_entry_apply(c, bad, strlen(bad), &h, &err) ==
		    -1 && c->version == 0, "spoil %zu accepted: %s", i, bad);
		free(bad);
		tally_state_destroy(c);
	}
	tally_feed_destroy(f);
	free(ent);
	free(ent2);
	tally_state_destroy(a);
	tally_state_destroy(b);
	tally_election_destroy(e);
}

/*
 * The entry as jansson makes it from the record (the general path's
 * construction), for comparison with tally_tlog_entry_encode_at.
 */
static char *
entry_by_jansson(const char *rec, uint64_t version, const char *contest,
    const uint8_t lb[32])
{
	json_t *r = json_loads(rec, JSON_REJECT_DUPLICATES, NULL);
	char hex[65], *out;
	size_t i;

	if (r == NULL)
		return NULL;
	if (version != 0)
		json_object_set_new(r, "version", json_integer((json_int_t)version));
	if (lb != NULL) {
		for (i = 0; i < 32; i++)
			snprintf(hex + 2 * i, 3, "%02x", lb[i]);
		json_object_set_new(r, "leaderboard_sha256", json_string(hex));
	}
	if (contest != NULL)
		json_object_set_new(r, "contest", json_string(contest));
	out = json_dumps(r, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(r);
	return out;
}

/*
 * The daemon's entries are spliced from the record (no jansson): every
 * form, fast or not, gives the bytes jansson gives, and a record outside
 * the spliced subset (unsorted keys, spaces, escapes, reals, negative
 * numbers, lots) is still written canonically.
 */
static void
test_entry_splice(void)
{
	static const char *const recs[] = {
		"{\"version\":1,\"received_at\":\"2019-04-28T20:00:00Z\","
		    "\"results\":[]}",
		"{\"version\":7,\"received_at\":\"2019-04-28T20:00:00Z\","
		    "\"by\":\"clerk-1\",\"results\":[{\"blank\":5,\"invalid\":6,"
		    "\"province\":\"28\",\"revision\":3,\"status\":\"partial\","
		    "\"votes\":{\"a\":1,\"ab\":0,\"b\":10}},{\"blank\":0,"
		    "\"invalid\":0,\"province\":\"8\",\"revision\":1,"
		    "\"stations\":{\"reporting\":1,\"total\":2},\"status\":"
		    "\"final\",\"votes\":{}}]}",
		/* Unsorted keys in a feed. */
		"{\"version\":2,\"received_at\":\"t\",\"results\":[{\"b\":1,"
		    "\"a\":2}]}",
		/* A key that is a prefix of the one before. */
		"{\"version\":2,\"received_at\":\"t\",\"results\":[{\"ab\":1,"
		    "\"a\":2}]}",
		/* Spaces, an escape, a real, a negative number, true/null. */
		"{\"version\":2,\"received_at\":\"t\",\"results\":[{\"a\": 1}]}",
		"{\"version\":2,\"received_at\":\"t\",\"results\":[{\"a\":"
		    "\"x\\/y\"}]}",
		"{\"version\":2,\"received_at\":\"t\",\"results\":[{\"a\":1.5}]}",
		"{\"version\":2,\"received_at\":\"t\",\"results\":[{\"a\":-1}]}",
		"{\"version\":2,\"received_at\":\"t\",\"results\":[{\"a\":true,"
		    "\"b\":null,\"c\":false,\"d\":[0,[]]}]}",
		/* Non-ASCII in the label; lots after the results. */
		"{\"version\":3,\"received_at\":\"t\",\"by\":\"cl\u00e9rk\","
		    "\"results\":[]}",
		"{\"version\":3,\"received_at\":\"t\",\"results\":[],\"lots\":"
		    "[{\"order\":[\"a\",\"b\"],\"province\":\"1\","
		    "\"revision\":2}]}",
		/* A leading zero is not JSON: refused by both. */
		"{\"version\":3,\"received_at\":\"t\",\"results\":[{\"a\":01}]}",
	};
	uint8_t lb[32];
	size_t i, k, len;
	struct tally_error err;
	char *got, *want;

	memset(lb, 0x5c, 32);
	for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
		for (k = 0; k < 8; k++) {
			uint64_t v = k & 1 ? 12345 : 0;
			const char *contest = k & 2 ? "es-2019" : NULL;
			const uint8_t *h = k & 4 ? lb : NULL;
			got = tally_tlog_entry_encode_at(recs[i],
			    strlen(recs[i]), v, contest, h, &len, &err);
			want = entry_by_jansson(recs[i], v, contest, h);
			CHECK((got == NULL && want == NULL) || (got != NULL &&
			    want != NULL && strcmp(got, want) == 0 &&
			    len == strlen(want)), "record %zu/%zu: %s, not %s",
			    i, k, got ? got : "NULL", want ? want : "NULL");
			free(got);
			free(want);
		}
}

/* The checkpoint's leaderboard line: written, read, refused when bent. */
static void
test_checkpoint_leaderboard(void)
{
	struct tally_tlog_checkpoint c, d;
	struct tally_error err;
	char text[512], bad[600];
	size_t len;
	const char *at;

	memset(&c, 0, sizeof(c));
	snprintf(c.origin, sizeof(c.origin), "tallyd/x/0123");
	c.size = 42;
	memset(c.root, 7, 32);
	CHECK(tally_tlog_checkpoint_format(&c, text, sizeof(text), &len) == 0 &&
	    tally_tlog_checkpoint_parse(text, len, &d, &err) == 0 &&
	    !d.has_leaderboard && strstr(text, "leaderboard") == NULL, "without: %s",
	    text);
	c.has_leaderboard = true;
	memset(c.leaderboard_sha256, 0xe1, 32);
	CHECK(tally_tlog_checkpoint_format(&c, text, sizeof(text), &len) == 0 &&
	    tally_tlog_checkpoint_parse(text, len, &d, &err) == 0 &&
	    d.has_leaderboard && memcmp(d.leaderboard_sha256,
	    c.leaderboard_sha256, 32) == 0 && d.size == 42, "with: %s", text);
	at = strstr(text, "leaderboard-sha256 ");
	CHECK(at != NULL && strcmp(at + 19 + 64, "\n") == 0, "one line last");
	/* Another's extension line is left alone. */
	snprintf(bad, sizeof(bad), "%sother ext\n", text);
	CHECK(tally_tlog_checkpoint_parse(bad, strlen(bad), &d, &err) == 0 &&
	    d.has_leaderboard, "other extension");
	/* Twice, short, upper case, no newline: refused. */
	snprintf(bad, sizeof(bad), "%s%s", text, at);
	CHECK(tally_tlog_checkpoint_parse(bad, strlen(bad), &d, &err) == -1,
	    "twice");
	snprintf(bad, sizeof(bad), "%.*s\n", (int)(strlen(text) - 2), text);
	CHECK(tally_tlog_checkpoint_parse(bad, strlen(bad), &d, &err) == -1,
	    "short");
	snprintf(bad, sizeof(bad), "%.*sE1\n", (int)(strlen(text) - 3), text);
	CHECK(tally_tlog_checkpoint_parse(bad, strlen(bad), &d, &err) == -1,
	    "upper case");
	CHECK(tally_tlog_checkpoint_parse(text, len - 1, &d, &err) == -1,
	    "no newline");
}

/* Witnesses' cosignatures: made, verified, refused when bent. */
static void
test_cosignatures(void)
{
	static const char body[] = "tallyd/x/0123\n42\n"
	    "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n";
	struct tally_tlog_signer log, w, other;
	struct tally_tlog_key k;
	struct tally_tlog_checkpoint cp;
	struct tally_error err;
	uint8_t seed[32];
	char vkey[300], *note, *line, *both, *bent;
	size_t nlen, llen;
	uint64_t t = 0;

	memset(seed, 1, 32);
	tally_tlog_signer_init(&log, "tallyd/x/0123", seed);
	memset(seed, 2, 32);
	CHECK(tally_tlog_cosigner_init(&w, "witness.test/w1", seed) == 0,
	    "cosigner");
	memset(seed, 3, 32);
	tally_tlog_cosigner_init(&other, "witness.test/w1", seed);
	CHECK(tally_tlog_cosigner_key_format(&w.key, vkey, sizeof(vkey)) == 0 &&
	    tally_tlog_cosigner_key_parse(vkey, &k, &err) == 0 &&
	    memcmp(k.pub, w.key.pub, 32) == 0 && memcmp(k.id, w.key.id, 4) ==
	    0, "witness key round trip: %s", vkey);
	/* The log's key text is another type: refused as a witness's. */
	tally_tlog_key_format(&log.key, vkey, sizeof(vkey));
	CHECK(tally_tlog_cosigner_key_parse(vkey, &k, &err) == -1,
	    "a log key is not a witness key");
	note = tally_tlog_note_sign(body, strlen(body), &log, &nlen);
	line = tally_tlog_cosign(body, strlen(body), &w, 1700000000, &llen);
	CHECK(note != NULL && line != NULL, "signed");
	both = malloc(nlen + llen + 1);
	memcpy(both, note, nlen);
	memcpy(both + nlen, line, llen + 1);
	CHECK(tally_tlog_cosig_verify(both, nlen + llen, &w.key, &t, &err) ==
	    1 && t == 1700000000, "cosignature verifies");
	CHECK(tally_tlog_cosig_verify(note, nlen, &w.key, &t, &err) == 0,
	    "no cosignature");
	/* Another key of that name: not its line (another id). */
	CHECK(tally_tlog_cosig_verify(both, nlen + llen, &other.key, &t,
	    &err) == 0, "other witness");
	/* The log's verifiers ignore the line. */
	CHECK(tally_tlog_checkpoint_open(both, nlen + llen, &log.key, &cp,
	    &err) == 0 && cp.size == 42, "log verifier: %s", err.message);
	/* A changed body or time: refused. */
	bent = strdup(both);
	bent[strlen(body) - 3] ^= 1;
	CHECK(tally_tlog_cosig_verify(bent, nlen + llen, &w.key, &t, &err) ==
	    -1, "bent body");
	free(bent);
	free(line);
	line = tally_tlog_cosign(body, strlen(body), &w, 1700000001, &llen);
	bent = malloc(nlen + llen + 1);
	memcpy(bent, both, nlen);
	memcpy(bent + nlen, line, llen + 1);
	/* The same signature with the time moved by one second. */
	memcpy(bent + nlen + llen - 89, both + nlen + llen - 89, 88);
	CHECK(tally_tlog_cosig_verify(bent, nlen + llen, &w.key, &t, &err) !=
	    1, "moved time");
	CHECK(tally_tlog_cosign("a\n\nb\n", 6, &w, 1, &llen) == NULL,
	    "not a body");
	free(bent);
	free(both);
	free(line);
	free(note);
}

int
main(int argc, char **argv)
{
	tally_json_init();
	if (argc > 1)
		test_entries(argv[1]);
	test_vectors();
	test_corruptions();
	test_tiles();
	test_ed25519_and_notes();
	test_b64();
	test_entry_splice();
	test_checkpoint_leaderboard();
	test_cosignatures();
	return check_done("tlog");
}
