/*
 * verify.c - tallyctl verify: check a tallyd transparency log offline.
 *
 *	tallyctl verify log DIR|URL --key VKEY [--from CHECKPOINT]...
 *	    [--election FILE]...
 *	tallyctl verify receipt FILE --key VKEY
 *	tallyctl verify leaderboard FILE --at N --log DIR|URL --key VKEY
 *	    [--election FILE]...
 *
 * `log` reads a mirror (a directory holding what tallyd serves under
 * /log/: checkpoint, tile/..., tile/entries/...) or fetches it from a
 * tallyd at URL, then checks everything an observer can check: the
 * checkpoint's signature by VKEY; every entry, replayed through libtally
 * in order, and the replayed leaderboard of its version against the
 * SHA-256 the entry carries (entries of the older form carry none: then
 * against the leaderboard-sha256 line of a checkpoint of that size, the
 * log's or a --from one, where one was signed); the tree's root against
 * the checkpoint; every hash tile against the tree
 * recomputed from the entries; and every older checkpoint the user kept
 * (--from) being a prefix of this one (same root at its size).  The
 * election definition comes from --election (several: one per contest),
 * else from the mirror's election.json.
 *
 * `leaderboard` verifies the log as `log` does, then checks that FILE holds
 * exactly the bytes of /v1/versions/N/leaderboard: the replay's render at
 * version N (the entries fix the tally at every version, the render is a
 * pure function of it).
 *
 * Exit 0 only when everything holds; 9 (CTL_EXIT_MISMATCH) when any check
 * fails, each failure printed with the entry or tile and why; 2 on a bad
 * command line; 10 when the key or a definition cannot be read.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>

#include "tallyctl.h"

#define VERIFY_FAILURES_SHOWN	20
#define VERIFY_CONTESTS_MAX	16

struct source {
	const char	*where;		/* the directory or URL, for messages */
	const char	*contest;	/* --contest: the URL's log is
					   /v1/contests/<contest>/log/ */
	const char	*dir;		/* or NULL */
	struct http	*http;		/* or NULL */
	struct ctl	 hctl;		/* the URL's ctl: no token is sent */
};

struct verify {
	struct ctl		*ctl;
	unsigned long		 failures;
	uint64_t		 at;		/* a version to keep the hash of */
	uint8_t			 at_hash[32];
	bool			 at_found;	/* ... replayed and matching */
	struct tally_tlog_key	*witnesses;	/* --witness: must cosign */
	size_t			 n_witnesses;
};

static void
fail(struct verify *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail(struct verify *v, const char *fmt, ...)
{
	va_list ap;

	if (v->failures++ >= VERIFY_FAILURES_SHOWN) {
		if (v->failures == VERIFY_FAILURES_SHOWN + 1)
			ctl_warnx(v->ctl, "(more failures not shown)");
		return;
	}
	fprintf(stderr, "%s: FAIL: ", v->ctl->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A file's or URL's bytes (new, NUL-terminated), or NULL with why. */
static char *
source_read(struct source *src, const char *rel, size_t *len, char *why,
    size_t whylen)
{
	char path[4096], *buf;

	if (src->dir != NULL) {
		snprintf(path, sizeof(path), "%s/%s", src->dir, rel);
		if (tally_read_file(path, &buf, len) == -1) {
			snprintf(why, whylen, "%s", strerror(errno));
			return NULL;
		}
		return buf;
	} else {
		struct http_resp r = { .retry_after = -1 };
		if (src->contest != NULL)
			snprintf(path, sizeof(path), "/v1/contests/%s/log/%s",
			    src->contest, rel);
		else
			snprintf(path, sizeof(path), "/log/%s", rel);
		if (http_request(src->http, "GET", path, NULL, 0, NULL,
		    &r) == -1) {
			/* Cut to fit: the transport error can be longer. */
			size_t n = strnlen(r.error, whylen - 1);
			memcpy(why, r.error, n);
			why[n] = '\0';
			http_resp_finish(&r);
			return NULL;
		}
		if (r.status != 200) {
			snprintf(why, whylen, "HTTP %ld", r.status);
			http_resp_finish(&r);
			return NULL;
		}
		*len = r.len;
		buf = r.body;
		r.body = NULL;
		http_resp_finish(&r);
		return buf;
	}
}

/*
 * A tile of width w: the partial tile's path, or (as C2SP tlog-tiles
 * allows: a mirror that grew since) the full tile's, cut to w.
 */
static char *
read_tile(struct source *src, int level, uint64_t n, unsigned w,
    size_t *len, char *path, bool *cut, char *why, size_t whylen)
{
	char full[TALLY_TLOG_PATH_MAX];
	char *buf;

	*cut = false;
	tally_tlog_tile_path(path, TALLY_TLOG_PATH_MAX, level, n, w);
	if ((buf = source_read(src, path, len, why, whylen)) != NULL ||
	    w == TALLY_TLOG_TILE_WIDTH)
		return buf;
	tally_tlog_tile_path(full, sizeof(full), level, n,
	    TALLY_TLOG_TILE_WIDTH);
	if ((buf = source_read(src, full, len, why, whylen)) != NULL) {
		/* Failures then name the file that was read. */
		memcpy(path, full, sizeof(full));
		*cut = true;
	}
	return buf;
}

/* A key given as its text or as a file holding it. */
static int
load_key(struct ctl *ctl, const char *arg, struct tally_tlog_key *k)
{
	struct tally_error err;
	char *text = NULL;
	size_t len;
	int rc;

	if (strchr(arg, '+') == NULL && tally_read_file(arg, &text, &len) == -1) {
		ctl_warnx(ctl, "%s: %s", arg, strerror(errno));
		return -1;
	}
	rc = tally_tlog_key_parse(text != NULL ? text : arg, k, &err);
	if (rc == -1)
		ctl_warnx(ctl, "%s: %s", arg, err.message);
	free(text);
	return rc;
}

static void
b64(const uint8_t h[32], char out[48])
{
	tally_tlog_b64_encode(h, 32, out);
}

struct contest {
	struct tally_election	*e;
	struct tally_state	*s;
};

#define VERIFY_FROM_MAX	64

/*
 * At tree size `size` (the replayed state's version): the leaderboard's
 * SHA-256 (`have`, when the entry's check rendered it already) against
 * every checkpoint of that size that signed one (cps[0] the log's, the
 * rest --from: checkpoints tallyd signed with a leaderboard-sha256 line
 * while its entries carried no hash), and kept for --at.
 */
static void
pin_check(struct verify *v, const struct tally_state *s, uint64_t size,
    const uint8_t *have, const struct tally_tlog_checkpoint *cps,
    const bool *ok, char *const *names, size_t n)
{
	uint8_t lb[32];
	char a[65], b[65];
	bool need = size == v->at;
	size_t i, j;

	for (i = 0; i < n; i++)
		if (ok[i] && cps[i].has_leaderboard && cps[i].size == size)
			need = true;
	if (!need)
		return;
	if (have != NULL)
		memcpy(lb, have, 32);
	else if (tally_tlog_leaderboard_sha256(s, lb) == -1) {
		fail(v, "out of memory rendering the leaderboard of version "
		    "%llu", (unsigned long long)size);
		return;
	}
	for (i = 0; i < n; i++) {
		if (!ok[i] || !cps[i].has_leaderboard || cps[i].size != size ||
		    memcmp(lb, cps[i].leaderboard_sha256, 32) == 0)
			continue;
		for (j = 0; j < 32; j++) {
			snprintf(a + 2 * j, 3, "%02x", lb[j]);
			snprintf(b + 2 * j, 3, "%02x",
			    cps[i].leaderboard_sha256[j]);
		}
		fail(v, "%s: the replayed leaderboard of version %llu has "
		    "SHA-256 %s, the checkpoint signed %s", names[i],
		    (unsigned long long)size, a, b);
	}
	if (size == v->at) {
		memcpy(v->at_hash, lb, 32);
		v->at_found = true;
	}
}

/*
 * The contest an origin names: tallyd signs each contest's log as
 * tallyd/<contest id>/<its definition's hash>.  "" when it is not that
 * form (a log made by another program).
 */
static void
origin_contest(const char *origin, char *out, size_t size)
{
	const char *p, *q;

	out[0] = '\0';
	if (strncmp(origin, "tallyd/", 7) != 0)
		return;
	p = origin + 7;
	if ((q = strchr(p, '/')) == NULL || (size_t)(q - p) >= size)
		return;
	memcpy(out, p, (size_t)(q - p));
	out[q - p] = '\0';
}

/*
 * The definition to replay a log with: the one --contest names, else the
 * one its origin names, else the only one.  Each contest has its own log
 * (tree size = its version), so one definition replays it.  NULL after a
 * failure.
 */
static struct contest *
pick_contest(struct verify *v, const char *origin, const char *want,
    struct contest *contests, size_t n)
{
	char named[TALLY_TLOG_NAME_MAX];
	size_t i;

	origin_contest(origin, named, sizeof(named));
	if (want != NULL && named[0] != '\0' && strcmp(named, want) != 0) {
		fail(v, "checkpoint: the log of contest %s (origin %s), not "
		    "of contest %s", named, origin, want);
		return NULL;
	}
	if (want == NULL)
		want = named[0] != '\0' ? named : NULL;
	for (i = 0; want != NULL && i < n; i++)
		if (strcmp(contests[i].e->id, want) == 0)
			return &contests[i];
	if (n == 1 && (want == NULL || named[0] == '\0' ||
	    strcmp(named, want) != 0))
		return &contests[0];
	if (n == 1) {
		fail(v, "checkpoint: the log of contest %s, but the "
		    "definition (--election) is of %s", want, contests[0].e->id);
		return NULL;
	}
	fail(v, "checkpoint: the log of contest %s: no --election for it",
	    want != NULL ? want : "(not named)");
	return NULL;
}

static int
verify_log(struct ctl *ctl, struct verify *vp, struct source *src,
    const struct tally_tlog_key *k, char **from, size_t n_from,
    struct contest *contests, size_t n_contests)
{
	struct verify v = *vp;
	struct tally_tlog_checkpoint cp, cps[VERIFY_FROM_MAX + 2];
	bool cps_ok[VERIFY_FROM_MAX + 2];
	char *cps_name[VERIFY_FROM_MAX + 2], witnessed[] = "witnessed";
	struct tally_tlog_tree *t = NULL;
	struct tally_error err;
	char path[TALLY_TLOG_PATH_MAX], why[256], *note, h1[48], h2[48];
	uint8_t root[32], *hashes = NULL;
	uint64_t n, index = 0, n_old = 0, first_old = 0;
	size_t len, i;
	unsigned w;
	bool replaying = true, cut, seen_hash = false;
	int level;
	struct contest *c;
	/* What every entry says of its contest: the first's log names none,
	 * a further contest's names it in every entry. */
	char named[TALLY_TLOG_NAME_MAX];
	bool named_set = false;

	if ((note = source_read(src, "checkpoint", &len, why,
	    sizeof(why))) == NULL) {
		fail(&v, "%s/checkpoint: %s", src->where, why);
		return CTL_EXIT_MISMATCH;
	}
	if (tally_tlog_checkpoint_open(note, len, k, &cp, &err) == -1) {
		fail(&v, "checkpoint: %s", err.message);
		free(note);
		return CTL_EXIT_MISMATCH;
	}
	free(note);
	if ((c = pick_contest(&v, cp.origin, src->contest, contests,
	    n_contests)) == NULL) {
		*vp = v;
		return CTL_EXIT_MISMATCH;
	}
	/* Every checkpoint kept from before, read first: the replay checks
	 * the leaderboards they signed on its way. */
	cps[0] = cp;
	cps_ok[0] = true;
	cps_name[0] = "checkpoint";
	for (i = 0; i < n_from && i < VERIFY_FROM_MAX; i++) {
		cps_name[i + 1] = from[i];
		cps_ok[i + 1] = false;
		if (tally_read_file(from[i], &note, &len) == -1) {
			fail(&v, "%s: %s", from[i], strerror(errno));
			continue;
		}
		if (tally_tlog_checkpoint_open(note, len, k, &cps[i + 1],
		    &err) == -1)
			fail(&v, "%s: %s", from[i], err.message);
		else if (cps[i + 1].size > cp.size)
			fail(&v, "%s: size %llu is larger than the log's %llu: "
			    "the log was rolled back", from[i],
			    (unsigned long long)cps[i + 1].size,
			    (unsigned long long)cp.size);
		else
			cps_ok[i + 1] = true;
		free(note);
	}
	n_from = i;
	/*
	 * --witness: the latest checkpoint the witnesses cosigned
	 * (/log/witnessed), each one's cosignature valid, is one more
	 * checkpoint this log must extend.
	 */
	if (v.n_witnesses > 0) {
		cps_name[n_from + 1] = witnessed;
		cps_ok[n_from + 1] = false;
		if ((note = source_read(src, "witnessed", &len, why,
		    sizeof(why))) == NULL)
			fail(&v, "%s/witnessed: %s", src->where, why);
		else if (tally_tlog_checkpoint_open(note, len, k,
		    &cps[n_from + 1], &err) == -1)
			fail(&v, "witnessed: %s", err.message);
		else {
			bool all = true;
			for (i = 0; i < v.n_witnesses; i++) {
				uint64_t ts;
				int r = tally_tlog_cosig_verify(note, len,
				    &v.witnesses[i], &ts, &err);
				if (r != 1) {
					fail(&v, "witnessed: %s", r == 0 ?
					    "no cosignature by the witness" :
					    err.message);
					all = false;
				}
			}
			if (cps[n_from + 1].size > cp.size) {
				fail(&v, "witnessed: size %llu is larger than "
				    "the log's %llu: the log was rolled back",
				    (unsigned long long)cps[n_from + 1].size,
				    (unsigned long long)cp.size);
				all = false;
			}
			cps_ok[n_from + 1] = all;
		}
		free(note);
		n_from++;
	}
	pin_check(&v, c->s, 0, NULL, cps, cps_ok, cps_name,
	    n_from + 1);
	if ((t = tally_tlog_tree_create()) == NULL ||
	    (hashes = malloc(TALLY_TLOG_TILE_WIDTH * 32)) == NULL) {
		ctl_warnx(ctl, "out of memory");
		free(t);
		return CTL_EXIT_ERROR;
	}

	/* The entries, tile by tile: hashed, and replayed in order. */
	for (n = 0; (w = tally_tlog_tile_width(cp.size, TALLY_TLOG_ENTRIES,
	    n)) > 0; n++) {
		const uint8_t *e;
		size_t off = 0, el, got = 0;
		char *bundle;
		int rc = 0;
		if ((bundle = read_tile(src, TALLY_TLOG_ENTRIES, n, w, &len,
		    path, &cut, why, sizeof(why))) == NULL) {
			fail(&v, "%s: %s", path, why);
			break;
		}
		while (got < w && (rc = tally_tlog_bundle_next(
		    (const uint8_t *)bundle, len, &off, &e, &el)) == 1) {
			struct tally_tlog_entry_head head;
			uint8_t leaf[32], lb[32];
			tally_tlog_leaf_hash(e, el, leaf);
			if (tally_tlog_tree_append(t, leaf) == -1) {
				ctl_warnx(ctl, "out of memory");
				break;
			}
			got++;
			index++;
			if (!replaying)
				continue;
			/*
			 * Tree size = version: entry i is version i + 1 of
			 * the contest whose log this is.
			 */
			c->s->version = index - 1;
			if (tally_tlog_entry_apply(c->s, (const char *)e, el,
			    &head, &err) == -1) {
				fail(&v, "%s: entry %llu (version %llu): %s: %s%s"
				    "%s", path, (unsigned long long)index - 1,
				    (unsigned long long)index, err.code,
				    err.message, err.field[0] ? " at " : "",
				    err.field);
				/* A state that missed an entry cannot judge
				 * the next ones: the replay stops here. */
				replaying = false;
				continue;
			}
			/*
			 * The calls of this version, as tallyd derives them: a
			 * declared call takes its id (d<version>) here, and a
			 * later entry retracts it by that id.
			 */
			if (tally_calls_observe(c->s) == -1) {
				ctl_warnx(ctl, "out of memory");
				break;
			}
			if (!named_set) {
				snprintf(named, sizeof(named), "%s",
				    head.contest);
				named_set = true;
				if (named[0] != '\0' && strcmp(named,
				    c->e->id) != 0)
					fail(&v, "%s: entry %llu (version %llu): "
					    "of contest %s, replayed with the "
					    "definition of %s", path,
					    (unsigned long long)index - 1,
					    (unsigned long long)index,
					    named, c->e->id);
			} else if (strcmp(named, head.contest) != 0)
				fail(&v, "%s: entry %llu (version %llu): of "
				    "contest \"%s\" in a log whose first entry "
				    "is of \"%s\" (a log is one contest's)",
				    path, (unsigned long long)index - 1,
				    (unsigned long long)index, head.contest,
				    named);
			/*
			 * Every entry carries its version's leaderboard
			 * hash, but those tallyd wrote while the hash was in
			 * the checkpoints only (its leaderboard-sha256 line):
			 * accepted, counted and named in the summary, checked
			 * where a checkpoint signs one.  A log never goes
			 * back to that form once an entry carries a hash.
			 */
			if (!head.has_leaderboard) {
				if (seen_hash)
					fail(&v, "%s: entry %llu (version %llu): "
					    "no leaderboard_sha256 after entries "
					    "that carry one (a log goes from the "
					    "older entry form to the current "
					    "one, never back)", path,
					    (unsigned long long)index - 1,
					    (unsigned long long)index);
				if (n_old++ == 0)
					first_old = index;
				pin_check(&v, c->s, index, NULL, cps, cps_ok,
				    cps_name, n_from + 1);
				continue;
			}
			seen_hash = true;
			if (tally_tlog_leaderboard_sha256(c->s, lb) == -1) {
				ctl_warnx(ctl, "out of memory");
				replaying = false;
				continue;
			}
			pin_check(&v, c->s, index, lb, cps, cps_ok, cps_name,
			    n_from + 1);
			if (memcmp(lb, head.leaderboard_sha256, 32) != 0) {
				char a[65], b[65];
				for (i = 0; i < 32; i++) {
					snprintf(a + 2 * i, 3, "%02x", lb[i]);
					snprintf(b + 2 * i, 3, "%02x",
					    head.leaderboard_sha256[i]);
				}
				fail(&v, "%s: entry %llu (version %llu): the "
				    "replayed leaderboard has SHA-256 %s, the "
				    "entry says %s", path,
				    (unsigned long long)index - 1,
				    (unsigned long long)index, a, b);
			}
		}
		if (got < w) {
			fail(&v, "%s: %zu entries where %u were due%s", path,
			    got, w, rc == -1 ? " (a truncated length prefix)" :
			    "");
			free(bundle);
			break;
		}
		/* A tile is exactly its entries (a full tile read for a
		 * partial one has more, which are not this tree's yet). */
		if (off != len && !cut)
			fail(&v, "%s: %zu bytes after its %u entries", path,
			    len - off, w);
		free(bundle);
	}
	if (t->size != cp.size) {
		fail(&v, "the entry tiles hold %llu entries, the checkpoint "
		    "says %llu", (unsigned long long)t->size,
		    (unsigned long long)cp.size);
		goto done;
	}
	tally_tlog_tree_root(t, cp.size, root);
	if (memcmp(root, cp.root, 32) != 0) {
		b64(root, h1);
		b64(cp.root, h2);
		fail(&v, "checkpoint: the entries' root is %s, the checkpoint "
		    "signed %s", h1, h2);
	}
	/* The hash tiles, which a client that reads only proofs trusts. */
	for (level = 0; level < 8; level++)
		for (n = 0; (w = tally_tlog_tile_width(cp.size, level, n)) > 0;
		    n++) {
			char *tile;
			if ((tile = read_tile(src, level, n, w, &len, path,
			    &cut, why, sizeof(why))) == NULL) {
				fail(&v, "%s: %s", path, why);
				continue;
			}
			tally_tlog_tile_hashes(t, level, n, w, hashes);
			if (len != (cut ? TALLY_TLOG_TILE_WIDTH : w) * 32)
				fail(&v, "%s: %zu bytes, not %u hashes", path,
				    len, w);
			else
				for (i = 0; i < w; i++)
					if (memcmp(tile + i * 32, hashes +
					    i * 32, 32) != 0) {
						fail(&v, "%s: hash %zu is not "
						    "the tree's", path, i);
						break;
					}
			free(tile);
		}
	/* Every checkpoint kept from before: a prefix of this log. */
	for (i = 0; i < n_from; i++) {
		const struct tally_tlog_checkpoint *oldp = &cps[i + 1];
		uint8_t proof[TALLY_TLOG_PROOF_MAX][32];
		size_t np;
		if (cps_ok[i + 1]) {
			struct tally_tlog_checkpoint old = *oldp;
			tally_tlog_tree_root(t, old.size, root);
			if (memcmp(root, old.root, 32) != 0)
				fail(&v, "%s: the log's first %llu entries "
				    "have another root: the log was rewritten "
				    "(or forked) after that checkpoint",
				    cps_name[i + 1],
				    (unsigned long long)old.size);
			else if (old.size > 0 && tally_tlog_tree_consistency(t,
			    old.size, cp.size, proof, &np) == 0 &&
			    !tally_tlog_consistency_verify(old.size, cp.size,
			    (const uint8_t (*)[32])proof, np, old.root,
			    cp.root))
				fail(&v, "%s: no consistency proof to the "
				    "checkpoint", cps_name[i + 1]);
		}
	}
done:
	b64(cp.root, h1);
	if (v.failures == 0 && n_old > 0)
		printf("note: %llu entr%s from version %llu carry no "
		    "leaderboard_sha256 (the entry form of tallyd before each "
		    "entry hashed its leaderboard): their leaderboards were "
		    "checked only where a checkpoint signed one\n",
		    (unsigned long long)n_old, n_old == 1 ? "y" : "ies",
		    (unsigned long long)first_old);
	if (v.failures == 0)
		printf("ok: %s, %llu entries, root %s; every signed "
		    "leaderboard reproduced (%s); %zu earlier checkpoint%s "
		    "consistent\n", cp.origin, (unsigned long long)cp.size,
		    h1, n_old == 0 ? "every version's" : "the older entries' "
		    "at signed sizes only", n_from, n_from == 1 ? "" : "s");
	else
		printf("FAILED: %lu problem%s in %s (checkpoint size %llu)\n",
		    v.failures, v.failures == 1 ? "" : "s", src->where,
		    (unsigned long long)cp.size);
	free(hashes);
	tally_tlog_tree_destroy(t);
	*vp = v;
	return v.failures == 0 ? CTL_EXIT_OK : CTL_EXIT_MISMATCH;
}

/* FILE's bytes against the hash the replay reproduced for version at. */
static int
check_leaderboard(struct ctl *ctl, const struct verify *v, const char *file)
{
	struct sha256_ctx c;
	uint8_t h[32];
	char *buf;
	size_t len;

	if (!v->at_found) {
		fprintf(stderr, "%s: FAIL: version %llu is not in the log\n",
		    ctl->prog, (unsigned long long)v->at);
		return CTL_EXIT_MISMATCH;
	}
	if (tally_read_file(file, &buf, &len) == -1) {
		ctl_warnx(ctl, "%s: %s", file, strerror(errno));
		return CTL_EXIT_ERROR;
	}
	sha256_init(&c);
	sha256_update(&c, len, (const uint8_t *)buf);
	sha256_digest(&c, 32, h);
	free(buf);
	if (memcmp(h, v->at_hash, 32) != 0) {
		fprintf(stderr, "%s: FAIL: %s is not the leaderboard of version "
		    "%llu (its SHA-256 differs from the one logged and "
		    "replayed)\n", ctl->prog, file, (unsigned long long)v->at);
		return CTL_EXIT_MISMATCH;
	}
	printf("ok: %s is the leaderboard of version %llu\n", file,
	    (unsigned long long)v->at);
	return CTL_EXIT_OK;
}

static int
verify_receipt(struct ctl *ctl, const char *file,
    const struct tally_tlog_key *k)
{
	struct tally_tlog_proof p;
	struct tally_tlog_checkpoint c;
	struct tally_tlog_entry_head h;
	struct tally_error err;
	char *text, want[TALLY_TLOG_NAME_MAX];
	size_t len;
	int rc = CTL_EXIT_MISMATCH;

	if (tally_read_file(file, &text, &len) == -1) {
		ctl_warnx(ctl, "%s: %s", file, strerror(errno));
		return CTL_EXIT_ERROR;
	}
	if (tally_tlog_proof_parse(text, len, &p, &err) == -1) {
		fprintf(stderr, "%s: FAIL: %s: %s\n", ctl->prog, file,
		    err.message);
		free(text);
		return CTL_EXIT_MISMATCH;
	}
	if (tally_tlog_proof_verify(&p, k, NULL, &c, &err) == -1) {
		fprintf(stderr, "%s: FAIL: %s: %s\n", ctl->prog, file,
		    err.message);
	} else if (tally_tlog_entry_head((const char *)p.extra, p.extra_len,
	    &h, &err) == -1) {
		fprintf(stderr, "%s: FAIL: %s: the entry: %s\n", ctl->prog,
		    file, err.message);
	} else if (ctl->contest != NULL && strcmp(h.contest[0] ? h.contest :
	    (origin_contest(c.origin, want, sizeof(want)), want),
	    ctl->contest) != 0) {
		fprintf(stderr, "%s: FAIL: %s: a receipt of contest %s's log "
		    "(%s), not of %s\n", ctl->prog, file, h.contest[0] ?
		    h.contest : want, c.origin, ctl->contest);
	} else if (h.version != p.index + 1) {
		fprintf(stderr, "%s: FAIL: %s: the entry is version %llu, not "
		    "%llu (index + 1)\n", ctl->prog, file,
		    (unsigned long long)h.version,
		    (unsigned long long)p.index + 1);
	} else {
		printf("ok: version %llu is entry %llu of %s at size %llu\n%.*s\n",
		    (unsigned long long)h.version,
		    (unsigned long long)p.index, c.origin,
		    (unsigned long long)c.size, (int)p.extra_len,
		    (const char *)p.extra);
		rc = CTL_EXIT_OK;
	}
	tally_tlog_proof_finish(&p);
	free(text);
	return rc;
}

static void
verify_usage(FILE *f)
{
	fprintf(f, "usage: tallyctl verify log DIR|URL --key VKEY "
	    "[--from CHECKPOINT]... [--witness WKEY]... [--election FILE]...\n"
	    "       tallyctl verify receipt FILE --key VKEY\n"
	    "       tallyctl verify leaderboard FILE --at N --log DIR|URL "
	    "--key VKEY [--election FILE]...\n"
	    "VKEY is the verifier key (name+id+key, as GET /log/key) or a "
	    "file holding it.\nExit 0 only when every check holds; 9 when "
	    "one fails (each failure is printed).\n");
}

int
cmd_verify(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "from", required_argument, NULL, 'f' },
		{ "election", required_argument, NULL, 'e' },
		{ "at", required_argument, NULL, 'a' },
		{ "log", required_argument, NULL, 'l' },
		{ "witness", required_argument, NULL, 'w' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct contest contests[VERIFY_CONTESTS_MAX];
	char *from[VERIFY_FROM_MAX], *elections[VERIFY_CONTESTS_MAX], path[4096];
	size_t n_from = 0, n_elections = 0, n_contests = 0, i;
	const char *key = NULL, *what, *target, *log = NULL, *lb_file = NULL;
	struct verify v = { ctl, 0, 0, { 0 }, false, NULL, 0 };
	struct tally_tlog_key wkeys[8];
	struct tally_error werr;
	uint64_t at = 0;
	struct tally_tlog_key k;
	struct source src;
	int c, rc = CTL_EXIT_ERROR;

	ctl->prog = "tallyctl verify";
	optind = 0;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key = optarg;
			break;
		case 'f':
			if (n_from == sizeof(from) / sizeof(from[0])) {
				ctl_warnx(ctl, "too many --from");
				return CTL_EXIT_USAGE;
			}
			from[n_from++] = optarg;
			break;
		case 'e':
			if (n_elections == VERIFY_CONTESTS_MAX) {
				ctl_warnx(ctl, "too many --election");
				return CTL_EXIT_USAGE;
			}
			elections[n_elections++] = optarg;
			break;
		case 'a':
			if (!ctl_parse_u64(optarg, UINT64_MAX, &at) || at == 0) {
				ctl_warnx(ctl, "--at: a version (1 or more)");
				return CTL_EXIT_USAGE;
			}
			break;
		case 'l':
			log = optarg;
			break;
		case 'w': {
			/* A witness's key, as text or in a file. */
			char *wt = NULL;
			size_t wl;
			int wr;
			if (v.n_witnesses == sizeof(wkeys) / sizeof(wkeys[0])) {
				ctl_warnx(ctl, "too many --witness");
				return CTL_EXIT_USAGE;
			}
			if (strchr(optarg, '+') == NULL &&
			    tally_read_file(optarg, &wt, &wl) == -1) {
				ctl_warnx(ctl, "%s: %s", optarg,
				    strerror(errno));
				return CTL_EXIT_ERROR;
			}
			wr = tally_tlog_cosigner_key_parse(wt ? wt : optarg,
			    &wkeys[v.n_witnesses], &werr);
			free(wt);
			if (wr == -1) {
				ctl_warnx(ctl, "--witness %s: %s", optarg,
				    werr.message);
				return CTL_EXIT_ERROR;
			}
			v.witnesses = wkeys;
			v.n_witnesses++;
			break;
		}
		case 'h':
			verify_usage(stdout);
			return CTL_EXIT_OK;
		default:
			if (c >= CTL_OPT_BASE || c == 'v') {
				if ((rc = ctl_common_option(ctl, c, optarg)) != 0)
					return rc;
				break;
			}
			verify_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (argc - optind != 2 || key == NULL) {
		verify_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	what = argv[optind];
	target = argv[optind + 1];
	if (load_key(ctl, key, &k) == -1)
		return CTL_EXIT_ERROR;
	if (strcmp(what, "receipt") == 0)
		return verify_receipt(ctl, target, &k);
	if (strcmp(what, "leaderboard") == 0) {
		if (at == 0 || log == NULL) {
			ctl_warnx(ctl, "verify leaderboard needs --at N and "
			    "--log DIR|URL");
			return CTL_EXIT_USAGE;
		}
		v.at = at;
		lb_file = target;
		target = log;
	} else if (strcmp(what, "log") != 0) {
		verify_usage(stderr);
		return CTL_EXIT_USAGE;
	}

	memset(&src, 0, sizeof(src));
	src.where = target;
	src.contest = ctl->contest;
	if (strncmp(target, "http://", 7) == 0 ||
	    strncmp(target, "https://", 8) == 0) {
		/* A contest's URL (.../v1/contests/C) with --contest C too:
		 * its log is under the URL already. */
		if (src.contest != NULL) {
			char tail[300];
			size_t tl, ul = strlen(target);
			tl = (size_t)snprintf(tail, sizeof(tail),
			    "/v1/contests/%s", src.contest);
			while (ul > 0 && target[ul - 1] == '/')
				ul--;
			if (tl < sizeof(tail) && ul >= tl &&
			    strncmp(target + ul - tl, tail, tl) == 0)
				src.contest = NULL;
		}
		src.hctl = *ctl;
		src.hctl.url = target;
		src.hctl.token = NULL;	/* the log is public */
		if ((src.http = http_create(&src.hctl)) == NULL) {
			ctl_warnx(ctl, "out of memory");
			return CTL_EXIT_ERROR;
		}
	} else
		src.dir = target;
	if (n_elections == 0) {
		if (src.dir == NULL) {
			ctl_warnx(ctl, "a URL needs --election FILE (the "
			    "definition the log was made with)");
			rc = CTL_EXIT_USAGE;
			goto out;
		}
		snprintf(path, sizeof(path), "%s/election.json", src.dir);
		elections[n_elections++] = path;
	}
	for (i = 0; i < n_elections; i++) {
		struct tally_diag diag;
		tally_diag_init(&diag);
		contests[i].e = tally_election_load(elections[i], &diag);
		if (contests[i].e == NULL) {
			ctl_warnx(ctl, "%s: %s", elections[i], diag.count > 0 ?
			    diag.msgs[0] : "cannot load");
			tally_diag_finish(&diag);
			goto out;
		}
		tally_diag_finish(&diag);
		if ((contests[i].s = tally_state_create(contests[i].e)) ==
		    NULL) {
			tally_election_destroy(contests[i].e);
			ctl_warnx(ctl, "out of memory");
			goto out;
		}
		n_contests++;
	}
	rc = verify_log(ctl, &v, &src, &k, from, n_from, contests, n_contests);
	if (rc == CTL_EXIT_OK && lb_file != NULL)
		rc = check_leaderboard(ctl, &v, lb_file);
out:
	for (i = 0; i < n_contests; i++) {
		tally_state_destroy(contests[i].s);
		tally_election_destroy(contests[i].e);
	}
	http_destroy(src.http);
	return rc;
}
