/*
 * fuzz_tlog.c - libFuzzer target: the transparency log's verifier.
 *
 * At start an honest log is made: 24 versions of es-2019-04 (each
 * province's figures in revisions, some batches) applied through the
 * journal's path, their entries (each with its version's leaderboard
 * hash), tree, a checkpoint signed by a fixed key and cosigned by two
 * witnesses (C2SP tlog-cosignature lines, fixed keys and times), and a
 * receipt (tlog-proof) for one entry on that cosigned checkpoint.  An
 * input is a mutated copy of that log, laid out as
 *
 *	2 bytes	length of the checkpoint note (big-endian)
 *	2 bytes	length of the receipt
 *	...	the checkpoint note, the receipt, then the entry bundle
 *
 * (the seed is the honest log in that layout; tests/fuzz/corpus/tlog).
 * Each input goes through what tallyctl verify does: open the checkpoint
 * with the key, hash the bundle's entries into a tree, compare the root,
 * replay every entry through libtally and compare its version's
 * leaderboard with the hash the entry carries; check each witness's
 * cosignature on the checkpoint and on the receipt's; and open the
 * receipt.  Whatever it accepts must be the honest log: an accepted
 * checkpoint names an honest root; accepted entries are the honest
 * entries' prefix byte for byte; an accepted cosignature is the witness's
 * on the honest checkpoint's body at its honest time; an accepted receipt
 * proves an honest entry at its honest index.  Anything else is a false
 * accept and aborts.  No crash, no sanitizer report, no hang.
 *
 * FUZZ_TLOG_SEED=FILE writes the seed input and exits (scripts/fuzz).
 * FUZZ_TLOG_FLIP_ALL=1 runs every single-bit flip of the seed (each byte
 * of checkpoint, receipt and entries, each of its 8 bits) through the
 * same oracle, prints how many, and exits.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "fuzz.h"

#define ENTRIES		24
#define WITNESSES	2

static struct tally_election *election;
static struct tally_tlog_key key;
static char *entry[ENTRIES];
static size_t entry_len[ENTRIES];
static uint8_t roots[ENTRIES + 1][32];
static uint8_t *seed;
static size_t seed_len;
/* The witnesses' keys, the times they cosigned at, the body they signed. */
static struct tally_tlog_key wkey[WITNESSES];
static uint64_t wtime[WITNESSES];
static char body_text[256];
static size_t body_len;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_tlog: %s\n", what);
	abort();
}

/* The honest log. */
static void
make_log(void)
{
	struct tally_state *s = tally_state_create(election);
	struct tally_tlog_tree *t = tally_tlog_tree_create();
	struct tally_tlog_signer signer;
	struct tally_tlog_checkpoint c;
	struct tally_tlog_proof p;
	struct tally_error err;
	uint8_t sk[32], *bundle = NULL;
	size_t blen = 0, bcap = 0, nlen, plen, tlen, v, i, w;
	char text[256], *note, *proof;

	for (i = 0; i < 32; i++)
		sk[i] = (uint8_t)(i * 7 + 1);
	tally_tlog_signer_init(&signer, "fuzz.example/log", sk);
	key = signer.key;
	for (v = 1; v <= ENTRIES; v++) {
		struct tally_feed *feeds[2];
		size_t nf = v % 5 == 0 ? 2 : 1, k;
		char at[40], *rec, body[160];
		size_t reclen;
		uint8_t lb[32], leaf[32];
		for (k = 0; k < nf; k++) {
			/* Province (v + 7k) mod n, revision by visit. */
			size_t pv = (v + 7 * k) % election->n_provinces;
			const struct tally_revision *cur =
			    tally_state_current(s, pv);
			json_t *j;
			snprintf(body, sizeof(body), "{\"province\":\"%s\","
			    "\"revision\":%llu,\"votes\":{\"%s\":%zu},"
			    "\"blank\":%zu,\"invalid\":0}",
			    election->provinces[pv].id,
			    (unsigned long long)(cur ? cur->feed->revision + 1 :
			    1), election->coalitions[v %
			    election->n_coalitions].id, 1000 + v * 37, v);
			j = json_loads(body, 0, NULL);
			if ((feeds[k] = tally_feed_parse(election, NULL, j, "",
			    &err)) == NULL)
				die(err.message);
			json_decref(j);
		}
		snprintf(at, sizeof(at), "2019-04-28T20:%02zu:00Z", v);
		if (tally_journal_encode_request(0, v, at, "clerk", feeds, nf,
		    NULL, 0, &rec, &reclen) == -1 ||
		    tally_journal_apply(s, rec + TALLY_JOURNAL_HEADER,
		    reclen - TALLY_JOURNAL_HEADER, &err) == -1 ||
		    tally_tlog_leaderboard_sha256(s, lb) == -1 ||
		    (entry[v - 1] = tally_tlog_entry_encode(rec +
		    TALLY_JOURNAL_HEADER, reclen - TALLY_JOURNAL_HEADER, NULL,
		    lb, &entry_len[v - 1], &err)) == NULL)
			die("cannot make the honest log");
		free(rec);
		for (k = 0; k < nf; k++)
			tally_feed_destroy(feeds[k]);
		tally_tlog_leaf_hash(entry[v - 1], entry_len[v - 1], leaf);
		tally_tlog_tree_append(t, leaf);
		tally_tlog_bundle_add(&bundle, &blen, &bcap, entry[v - 1],
		    entry_len[v - 1]);
	}
	for (v = 0; v <= ENTRIES; v++)
		tally_tlog_tree_root(t, v, roots[v]);
	memset(&c, 0, sizeof(c));
	snprintf(c.origin, sizeof(c.origin), "%s", key.name);
	c.size = ENTRIES;
	memcpy(c.root, roots[ENTRIES], 32);
	tally_tlog_checkpoint_format(&c, text, sizeof(text), &tlen);
	memcpy(body_text, text, tlen);
	body_len = tlen;
	note = tally_tlog_note_sign(text, tlen, &signer, &nlen);
	/* Two witnesses' cosignatures after the log's signature, as
	 * /log/checkpoint serves a cosigned checkpoint. */
	for (w = 0; w < WITNESSES; w++) {
		struct tally_tlog_signer ws;
		char name[32], *line;
		size_t llen;
		for (i = 0; i < 32; i++)
			sk[i] = (uint8_t)(i * 13 + 5 + w);
		snprintf(name, sizeof(name), "witness.example/%c",
		    (char)('a' + w));
		if (tally_tlog_cosigner_init(&ws, name, sk) == -1)
			die("cannot make a witness");
		wkey[w] = ws.key;
		wtime[w] = 1714330000 + 42 * w;
		if ((line = tally_tlog_cosign(text, tlen, &ws, wtime[w],
		    &llen)) == NULL || (note = realloc(note, nlen + llen)) ==
		    NULL)
			die("cannot cosign the honest checkpoint");
		memcpy(note + nlen, line, llen);
		nlen += llen;
		free(line);
	}
	memset(&p, 0, sizeof(p));
	p.index = 9;
	tally_tlog_tree_inclusion(t, 9, ENTRIES, p.hashes, &p.n);
	p.extra = (uint8_t *)entry[9];
	p.extra_len = entry_len[9];
	p.note = note;
	p.note_len = nlen;
	proof = tally_tlog_proof_format(&p, &plen);
	seed_len = 4 + nlen + plen + blen;
	seed = malloc(seed_len);
	seed[0] = (uint8_t)(nlen >> 8);
	seed[1] = (uint8_t)nlen;
	seed[2] = (uint8_t)(plen >> 8);
	seed[3] = (uint8_t)plen;
	memcpy(seed + 4, note, nlen);
	memcpy(seed + 4 + nlen, proof, plen);
	memcpy(seed + 4 + nlen + plen, bundle, blen);
	free(note);
	free(proof);
	free(bundle);
	tally_tlog_tree_destroy(t);
	tally_state_destroy(s);
}

static bool	check_log(const char *note, size_t nlen, const uint8_t *b,
		    size_t blen);
static bool	check_receipt(const char *text, size_t len);
static size_t	check_cosigs(const char *note, size_t len);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *out = getenv("FUZZ_TLOG_SEED");

	(void)argc;
	(void)argv;
	election = fuzz_election("fuzz_tlog");
	make_log();
	/* The oracle must accept the honest log, or it tests nothing. */
	{
		size_t nlen = (size_t)seed[0] << 8 | seed[1];
		size_t plen = (size_t)seed[2] << 8 | seed[3];
		if (!check_log((const char *)seed + 4, nlen, seed + 4 + nlen +
		    plen, seed_len - 4 - nlen - plen) ||
		    !check_receipt((const char *)seed + 4 + nlen, plen) ||
		    check_cosigs((const char *)seed + 4, nlen) != WITNESSES)
			die("the honest log is not accepted");
	}
	if (getenv("FUZZ_TLOG_FLIP_ALL") != NULL) {
		uint8_t *m = malloc(seed_len);
		size_t i, runs = 0;
		unsigned b;
		for (i = 0; m != NULL && i < seed_len; i++)
			for (b = 0; b < 8; b++) {
				memcpy(m, seed, seed_len);
				m[i] ^= (uint8_t)(1u << b);
				LLVMFuzzerTestOneInput(m, seed_len);
				runs++;
			}
		printf("fuzz_tlog: %zu single-bit flips of a %zu-byte log, "
		    "0 false accepts, 0 crashes\n", runs, seed_len);
		free(m);
		exit(0);
	}
	if (out != NULL) {
		FILE *f = fopen(out, "wb");
		if (f == NULL || fwrite(seed, 1, seed_len, f) != seed_len ||
		    fclose(f) != 0)
			die("cannot write the seed");
		exit(0);
	}
	return 0;
}

/* The log part: accepted only if it is the honest log's prefix.  Whether
 * it was accepted (the replay included). */
static bool
check_log(const char *note, size_t nlen, const uint8_t *b, size_t blen)
{
	struct tally_tlog_checkpoint c;
	struct tally_tlog_tree *t;
	struct tally_state *s;
	struct tally_error err;
	const uint8_t *e;
	size_t off = 0, el, n = 0;
	uint8_t leaf[32], root[32], lb[32];
	bool ok = true;

	if (tally_tlog_checkpoint_open(note, nlen, &key, &c, &err) == -1)
		return false;
	/* Only honest roots were ever signed. */
	if (c.size > ENTRIES || memcmp(c.root, roots[c.size], 32) != 0)
		die("false accept: a checkpoint the key never signed");
	if ((t = tally_tlog_tree_create()) == NULL)
		return false;
	while (n < c.size && tally_tlog_bundle_next(b, blen, &off, &e,
	    &el) == 1) {
		tally_tlog_leaf_hash(e, el, leaf);
		if (tally_tlog_tree_append(t, leaf) == -1)
			break;
		n++;
	}
	if (n != c.size || tally_tlog_tree_root(t, c.size, root) == -1 ||
	    memcmp(root, c.root, 32) != 0) {
		tally_tlog_tree_destroy(t);
		return false;
	}
	tally_tlog_tree_destroy(t);
	/* The root holds: the entries must be the honest ones. */
	off = 0;
	if ((s = tally_state_create(election)) == NULL)
		return false;
	for (n = 0; n < c.size && ok; n++) {
		struct tally_tlog_entry_head h;
		tally_tlog_bundle_next(b, blen, &off, &e, &el);
		if (el != entry_len[n] || memcmp(e, entry[n], el) != 0)
			die("false accept: an entry that is not the honest one "
			    "under an honest root");
		ok = tally_tlog_entry_apply(s, (const char *)e, el, &h,
		    &err) == 0;
		/* An honest entry replays: anything else is a bug. */
		if (!ok && err.kind != TALLY_ERROR_NOMEM)
			die("an honest entry did not replay");
		/* Its version's leaderboard, which it hashed. */
		if (ok && !h.has_leaderboard)
			die("an honest entry without its leaderboard's hash");
		if (ok && tally_tlog_leaderboard_sha256(s, lb) == -1)
			ok = false;	/* out of memory */
		else if (ok && memcmp(lb, h.leaderboard_sha256, 32) != 0)
			die("an honest entry's leaderboard did not replay");
	}
	/* The leaderboard the checkpoint signed, at its size. */
	if (ok && c.has_leaderboard) {
		if (tally_tlog_leaderboard_sha256(s, lb) == -1)
			ok = false;	/* out of memory */
		else if (memcmp(lb, c.leaderboard_sha256, 32) != 0)
			die("an honest checkpoint's leaderboard did not replay");
	}
	tally_state_destroy(s);
	return ok;
}

/*
 * Each witness's cosignature on a note: accepted only on the honest
 * checkpoint's body at the time the witness signed it.  How many verified.
 */
static size_t
check_cosigs(const char *note, size_t len)
{
	struct tally_error err;
	const char *q, *split = NULL;
	uint64_t ts;
	size_t w, n = 0;

	for (w = 0; w < WITNESSES; w++) {
		if (tally_tlog_cosig_verify(note, len, &wkey[w], &ts, &err) != 1)
			continue;
		/* The body it signed: up to the last blank line. */
		for (q = note; q + 1 < note + len; q++)
			if (q[0] == '\n' && q[1] == '\n')
				split = q;
		if (split == NULL || (size_t)(split - note) + 1 != body_len ||
		    memcmp(note, body_text, body_len) != 0 || ts != wtime[w])
			die("false accept: a cosignature the witness never "
			    "made (another body or time)");
		n++;
	}
	return n;
}

static bool
check_receipt(const char *text, size_t len)
{
	bool ok = false;

	struct tally_tlog_proof p;
	struct tally_tlog_checkpoint c;
	struct tally_error err;

	if (tally_tlog_proof_parse(text, len, &p, &err) == -1)
		return false;
	/* The witnesses' lines on the receipt's checkpoint too. */
	check_cosigs(p.note, p.note_len);
	if (tally_tlog_proof_verify(&p, &key, NULL, &c, &err) == 0) {
		if (c.size > ENTRIES || memcmp(c.root, roots[c.size], 32) != 0)
			die("false accept: a receipt on an unsigned root");
		if (p.index >= c.size || p.extra_len != entry_len[p.index] ||
		    memcmp(p.extra, entry[p.index], p.extra_len) != 0)
			die("false accept: a receipt for an entry not at its "
			    "index");
		ok = true;
	}
	tally_tlog_proof_finish(&p);
	return ok;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nlen, plen;

	if (size < 4)
		return 0;
	nlen = (size_t)data[0] << 8 | data[1];
	plen = (size_t)data[2] << 8 | data[3];
	if (nlen > size - 4 || plen > size - 4 - nlen)
		return 0;
	check_log((const char *)data + 4, nlen, data + 4 + nlen + plen,
	    size - 4 - nlen - plen);
	check_cosigs((const char *)data + 4, nlen);
	check_receipt((const char *)data + 4 + nlen, plen);
	/* The same bytes as any of the parsers' inputs alone. */
	if (size > 4) {
		struct tally_tlog_tree *t = tally_tlog_tree_create();
		struct tally_tlog_entry_head h;
		struct tally_error err;
		int level;
		uint64_t n;
		unsigned w;
		char path[TALLY_TLOG_PATH_MAX];
		char *z = malloc(size - 3);
		if (z != NULL) {
			memcpy(z, data + 4, size - 4);
			z[size - 4] = '\0';
			if (tally_tlog_tile_parse_path(z, &level, &n, &w) == 0 &&
			    (tally_tlog_tile_path(path, sizeof(path), level, n,
			    w) == -1 || strcmp(path, z) != 0))
				die("a tile path that does not round-trip");
			tally_tlog_entry_head(z, size - 4, &h, &err);
			free(z);
		}
		tally_tlog_tree_destroy(t);
	}
	return 0;
}
