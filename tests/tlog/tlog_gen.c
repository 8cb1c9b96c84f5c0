/*
 * tlog_gen.c - write a transparency-log mirror from a real election.
 *
 *	tlog_gen DATASET_DIR OUT_DIR [--entries N] [--seed S] [--name ORIGIN]
 *	    [--keep SIZE]... [--receipt INDEX]... [--key-seed K] [--lie V]
 *	    [--journal DATA_DIR] [--stop SIZE]
 *
 * DATASET_DIR holds election.json and results.json (a directory of
 * tests/data/elections).
 * The night is replayed as tallyd would journal it: each province's final
 * figures arrive in R cumulative revisions (partial, then final), some of
 * them corrections that lower a count, provinces interleaved in a seeded
 * random order, one request in ten a batch of several provinces, every
 * request one version.  Each version is applied through the journal's apply
 * path and its log entry written with the SHA-256 of that version's
 * leaderboard, so the mirror is what the daemon will serve under /log/.
 *
 * OUT_DIR gets the mirror (checkpoint, tile/..., tile/entries/...), "key"
 * (the verifier key, as /log/key), election.json, and beside the mirror:
 * OUT_DIR.old/checkpoint.<size> for each --keep and
 * OUT_DIR.receipts/<index>.tlog-proof for each --receipt.
 * --stop SIZE ends the night at SIZE versions, as the night of --entries
 * would have begun (the same first SIZE entries).
 *
 * With --journal, the log is made from a tallyd data directory's journal
 * (journal-*.log, in order) instead: one entry per record, as the daemon
 * will make it (DATASET_DIR then only gives election.json).
 *
 * The signing key comes from --key-seed (default 1): this is a test tool.
 * --lie V writes a log that is signed and well formed but lies about
 * version V: its entry carries the previous version's leaderboard hash (a
 * stale leaderboard published as new), which only a replay can catch.
 *
 * --old-form N writes its first N entries in the form tallyd wrote before
 * each entry carried its leaderboard hash (no leaderboard_sha256; a log
 * that tallyd upgraded), and each checkpoint (the last, every --keep) of a
 * size among them with a leaderboard-sha256 line (--lie V then lies in
 * the checkpoint of size V if entry V is of that form).  --old-after V
 * writes the entries after V in that form (a log that went back: refused).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include <tally/tally.h>

static uint64_t rng;

static uint64_t
next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tlog_gen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* mkdir -p for the directories of path (not its last element). */
static void
mkdirs(const char *path)
{
	char buf[4096], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			die("mkdir %s failed", buf);
		*p = '/';
	}
}

static void
write_file(const char *dir, const char *rel, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	mkdirs(path);
	if ((f = fopen(path, "wb")) == NULL ||
	    fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		die("cannot write %s", path);
}

/* The feed of province p at revision r of R: final figures scaled r/R. */
static json_t *
scaled(json_t *final, uint64_t r, uint64_t R, bool correction)
{
	json_t *f = json_deep_copy(final), *votes, *v;
	const char *key;
	/* A correction re-posts a lower count (a typo fixed). */
	uint64_t num = correction ? (r > 2 ? r - 2 : 0) : r;

	votes = json_object_get(f, "votes");
	json_object_foreach(votes, key, v)
		json_object_set_new(votes, key, json_integer((json_int_t)(
		    (uint64_t)json_integer_value(v) * num / R)));
	if ((v = json_object_get(f, "blank")) != NULL)
		json_object_set_new(f, "blank", json_integer((json_int_t)(
		    (uint64_t)json_integer_value(v) * num / R)));
	if ((v = json_object_get(f, "invalid")) != NULL)
		json_object_set_new(f, "invalid", json_integer((json_int_t)(
		    (uint64_t)json_integer_value(v) * num / R)));
	if ((v = json_object_get(f, "stations_reporting")) != NULL)
		json_object_set_new(f, "stations_reporting", json_integer(
		    (json_int_t)((uint64_t)json_integer_value(v) * num / R)));
	json_object_set_new(f, "revision", json_integer((json_int_t)r));
	json_object_set_new(f, "status", json_string(r == R ? "final" :
	    "partial"));
	return f;
}

static void
write_tiles(const char *out, const struct tally_tlog_tree *t, uint64_t size,
    uint8_t **bundles, size_t *blen)
{
	char path[TALLY_TLOG_PATH_MAX];
	uint8_t *hashes = malloc(256 * 32);
	uint64_t n;
	unsigned w;
	int l;

	for (n = 0; (w = tally_tlog_tile_width(size, -1, n)) > 0; n++) {
		tally_tlog_tile_path(path, sizeof(path), -1, n, w);
		write_file(out, path, bundles[n], blen[n]);
	}
	for (l = 0; l < 8; l++)
		for (n = 0; (w = tally_tlog_tile_width(size, l, n)) > 0; n++) {
			tally_tlog_tile_path(path, sizeof(path), l, n, w);
			if (tally_tlog_tile_hashes(t, l, n, w, hashes) == -1)
				die("tile %s", path);
			write_file(out, path, hashes, (size_t)w * 32);
		}
	free(hashes);
}

/* lb: the leaderboard-sha256 line's hash (the older form), or NULL. */
static char *
sign_checkpoint(const struct tally_tlog_signer *s,
    const struct tally_tlog_tree *t, uint64_t size, const uint8_t *lb,
    size_t *len)
{
	struct tally_tlog_checkpoint c;
	char text[512];
	size_t tlen;

	memset(&c, 0, sizeof(c));
	snprintf(c.origin, sizeof(c.origin), "%s", s->key.name);
	c.size = size;
	if (lb != NULL) {
		memcpy(c.leaderboard_sha256, lb, 32);
		c.has_leaderboard = true;
	}
	tally_tlog_tree_root(t, size, c.root);
	if (tally_tlog_checkpoint_format(&c, text, sizeof(text), &tlen) == -1)
		die("%s", "checkpoint");
	return tally_tlog_note_sign(text, tlen, s, len);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every record payload of a data dir's journal, in order (new copies). */
static void
load_journal(const char *dir, char ***recs, size_t **lens, size_t *n)
{
	DIR *d;
	struct dirent *de;
	char *names[4096], path[4096], *buf, why[128];
	size_t nn = 0, i, len, off;
	struct tally_record rec;
	enum tally_scan sc;

	if ((d = opendir(dir)) == NULL)
		die("cannot open %s", dir);
	while ((de = readdir(d)) != NULL && nn < 4096)
		if (strncmp(de->d_name, "journal-", 8) == 0 &&
		    strlen(de->d_name) > 12 && strcmp(de->d_name +
		    strlen(de->d_name) - 4, ".log") == 0)
			names[nn++] = strdup(de->d_name);
	closedir(d);
	qsort(names, nn, sizeof(names[0]), name_cmp);
	*recs = NULL;
	*lens = NULL;
	*n = 0;
	for (i = 0; i < nn; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (tally_read_file(path, &buf, &len) == -1)
			die("cannot read %s", path);
		off = 0;
		while ((sc = tally_journal_scan(buf, len, &off, &rec, why,
		    sizeof(why))) == TALLY_SCAN_RECORD) {
			*recs = realloc(*recs, (*n + 1) * sizeof(**recs));
			*lens = realloc(*lens, (*n + 1) * sizeof(**lens));
			(*recs)[*n] = malloc(rec.len);
			memcpy((*recs)[*n], rec.payload, rec.len);
			(*lens)[*n] = rec.len;
			(*n)++;
		}
		if (sc == TALLY_SCAN_CORRUPT)
			die("%s: %s", path, why);
		free(buf);
		free(names[i]);
	}
}

int
main(int argc, char **argv)
{
	const char *dataset, *out, *name = "tallyd.test/log", *journal = NULL;
	char **records = NULL;
	size_t *record_len = NULL, n_records = 0, next_record = 0;
	uint64_t entries = 0, seed = 1, keep[16], receipts[16], key_seed = 1;
	uint64_t lie = 0, stop = 0, old_form = 0, old_after = 0;
	uint8_t prev_lb[32] = { 0 }, keep_lb[16][32], last_lb[32], lb[32] = { 0 };
	size_t n_keep = 0, n_receipts = 0, i;
	char path[4096], *text, vkey[256];
	size_t len;
	struct tally_diag diag;
	struct tally_election *e;
	struct tally_state *s;
	struct tally_tlog_tree *t;
	struct tally_tlog_signer signer;
	struct tally_error err;
	json_t *results, *root;
	json_error_t jerr;
	uint64_t R, *next, version, remaining;
	uint8_t seedkey[32], **bundles;
	size_t *blen, *bcap, n_bundles, np;
	char **entry_text;
	size_t *entry_len;
	time_t clock0 = 1573416000;	/* 2019-11-10T20:00:00Z */

	if (argc < 3)
		die("%s", "usage: tlog_gen DATASET_DIR OUT_DIR [--entries N] "
		    "[--seed S] [--name ORIGIN] [--keep SIZE]... "
		    "[--receipt INDEX]...");
	dataset = argv[1];
	out = argv[2];
	for (i = 3; i + 1 < (size_t)argc; i += 2) {
		uint64_t v = strtoull(argv[i + 1], NULL, 10);
		if (strcmp(argv[i], "--entries") == 0)
			entries = v;
		else if (strcmp(argv[i], "--seed") == 0)
			seed = v;
		else if (strcmp(argv[i], "--key-seed") == 0)
			key_seed = v;
		else if (strcmp(argv[i], "--stop") == 0)
			stop = v;
		else if (strcmp(argv[i], "--journal") == 0)
			journal = argv[i + 1];
		else if (strcmp(argv[i], "--lie") == 0)
			lie = v;
		else if (strcmp(argv[i], "--old-form") == 0)
			old_form = v;
		else if (strcmp(argv[i], "--old-after") == 0)
			old_after = v;
		else if (strcmp(argv[i], "--name") == 0)
			name = argv[i + 1];
		else if (strcmp(argv[i], "--keep") == 0 && n_keep < 16)
			keep[n_keep++] = v;
		else if (strcmp(argv[i], "--receipt") == 0 && n_receipts < 16)
			receipts[n_receipts++] = v;
		else
			die("unknown option %s", argv[i]);
	}
	rng = seed * 0x9e3779b97f4a7c15ULL + 1;
	tally_json_init();
	tally_diag_init(&diag);
	snprintf(path, sizeof(path), "%s/election.json", dataset);
	if ((e = tally_election_load(path, &diag)) == NULL)
		die("cannot load %s", path);
	tally_diag_finish(&diag);
	if (tally_read_file(path, &text, &len) == -1)
		die("cannot read %s", path);
	write_file(out, "election.json", text, len);
	free(text);
	if (journal != NULL) {
		load_journal(journal, &records, &record_len, &n_records);
		if (n_records == 0)
			die("no journal records in %s", journal);
		entries = n_records;
	}
	snprintf(path, sizeof(path), "%s/results.json", dataset);
	if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL || !json_is_array(results = json_object_get(root, "results")))
		die("cannot read %s", path);
	/* Default: three revisions a province, the last final.  Asked for N
	 * entries: enough revisions that batches do not run out first (the
	 * night then stops at N, before every province is final). */
	if (entries == 0)
		entries = 3 * json_array_size(results) * 10 / 13;
	R = (entries * 13 / 10 + json_array_size(results) - 1) /
	    json_array_size(results);
	if (R == 0)
		R = 1;
	next = calloc(json_array_size(results), sizeof(*next));
	for (i = 0; i < json_array_size(results); i++)
		next[i] = 1;
	remaining = R * json_array_size(results);

	for (i = 0; i < 32; i++)
		seedkey[i] = (uint8_t)((key_seed * 0x9e3779b97f4a7c15ULL) >>
		    (i % 8 * 8)) ^ (uint8_t)i;
	if (tally_tlog_signer_init(&signer, name, seedkey) == -1)
		die("bad name %s", name);
	tally_tlog_key_format(&signer.key, vkey, sizeof(vkey));
	strcat(vkey, "\n");
	write_file(out, "key", vkey, strlen(vkey));

	s = tally_state_create(e);
	t = tally_tlog_tree_create();
	n_bundles = (size_t)(entries / 256 + 2);
	bundles = calloc(n_bundles, sizeof(*bundles));
	blen = calloc(n_bundles, sizeof(*blen));
	bcap = calloc(n_bundles, sizeof(*bcap));
	entry_text = calloc(entries + 1, sizeof(*entry_text));
	entry_len = calloc(entries + 1, sizeof(*entry_len));
	for (version = 1; version <= (stop > 0 && stop < entries ? stop :
	    entries) && remaining > 0; version++) {
		struct tally_feed *feeds[4];
		size_t nf = 0, k, want = next_rand() % 10 == 0 ? 2 +
		    next_rand() % 2 : 1;
		char at[40], *rec, *entry;
		size_t reclen, elen;
		uint8_t leaf[32];
		time_t when = clock0 + (time_t)version;
		struct tm tm;

		gmtime_r(&when, &tm);
		strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (journal != NULL) {
			/* The daemon's own record: tree size = version. */
			reclen = TALLY_JOURNAL_HEADER + record_len[next_record];
			if ((rec = malloc(reclen)) == NULL)
				die("%s", "out of memory");
			memcpy(rec + TALLY_JOURNAL_HEADER,
			    records[next_record], record_len[next_record]);
			free(records[next_record]);
			next_record++;
			goto apply;
		}
		while (nf < want && remaining > 0) {
			/* A province with revisions left, not yet in this
			 * request. */
			size_t p = (size_t)(next_rand() % json_array_size(
			    results)), tries = 0;
			json_t *body;
			while ((next[p] > R || (nf > 0 && feeds[0]->province ==
			    p) || (nf > 1 && feeds[1]->province == p) ||
			    (nf > 2 && feeds[2]->province == p)) &&
			    tries++ < json_array_size(results))
				p = (p + 1) % json_array_size(results);
			if (next[p] > R || tries > json_array_size(results))
				break;
			body = scaled(json_array_get(results, p), next[p], R,
			    next[p] < R && next_rand() % 20 == 0);
			feeds[nf] = tally_feed_parse(e, NULL, body, "", &err);
			json_decref(body);
			if (feeds[nf] == NULL)
				die("feed: %s", err.message);
			nf++;
			next[p]++;
			remaining--;
		}
		if (nf == 0)
			break;
		if (tally_journal_encode_request(0, version, at, "station-clerk",
		    feeds, nf, NULL, 0, &rec, &reclen) == -1)
			die("%s", "encode");
apply:
		if (tally_journal_apply(s, rec + TALLY_JOURNAL_HEADER,
		    reclen - TALLY_JOURNAL_HEADER, &err) == -1)
			die("apply: %s", err.message);
		if (s->version != version)
			die("record %llu is version %llu: a log needs one "
			    "record per version", (unsigned long long)version,
			    (unsigned long long)s->version);
		/* This version's leaderboard: in its entry, and in the
		 * older form's checkpoints at each --keep size (the one
		 * before --lie's, for the lie). */
		if (tally_tlog_leaderboard_sha256(s, lb) == -1)
			die("%s", "leaderboard");
		if (version == lie)
			memcpy(lb, prev_lb, 32);
		for (i = 0; i < n_keep; i++)
			if (keep[i] == version)
				memcpy(keep_lb[i], lb, 32);
		memcpy(prev_lb, lb, 32);
		if ((entry = tally_tlog_entry_encode(rec + TALLY_JOURNAL_HEADER,
		    reclen - TALLY_JOURNAL_HEADER, NULL, version <= old_form ||
		    (old_after > 0 && version > old_after) ? NULL : lb,
		    &elen, &err)) == NULL)
			die("entry: %s", err.message);
		free(rec);
		for (k = 0; k < nf; k++)
			tally_feed_destroy(feeds[k]);
		tally_tlog_leaf_hash(entry, elen, leaf);
		tally_tlog_tree_append(t, leaf);
		tally_tlog_bundle_add(&bundles[(version - 1) / 256],
		    &blen[(version - 1) / 256], &bcap[(version - 1) / 256],
		    entry, elen);
		entry_text[version - 1] = entry;
		entry_len[version - 1] = elen;
	}
	version = t->size;
	write_tiles(out, t, version, bundles, blen);
	memcpy(last_lb, lb, 32);
	text = sign_checkpoint(&signer, t, version, version <= old_form ?
	    last_lb : NULL, &len);
	write_file(out, "checkpoint", text, len);
	for (i = 0; i < n_keep; i++) {
		char *old, rel[64];
		size_t olen;
		if (keep[i] > version)
			continue;
		old = sign_checkpoint(&signer, t, keep[i], keep[i] <= old_form ?
		    keep_lb[i] : NULL, &olen);
		snprintf(path, sizeof(path), "%s.old", out);
		snprintf(rel, sizeof(rel), "checkpoint.%llu",
		    (unsigned long long)keep[i]);
		write_file(path, rel, old, olen);
		free(old);
	}
	for (i = 0; i < n_receipts; i++) {
		struct tally_tlog_proof p;
		char *ptext, rel[64];
		size_t plen;
		if (receipts[i] >= version)
			continue;
		memset(&p, 0, sizeof(p));
		p.index = receipts[i];
		tally_tlog_tree_inclusion(t, p.index, version, p.hashes, &np);
		p.n = np;
		p.extra = (uint8_t *)entry_text[p.index];
		p.extra_len = entry_len[p.index];
		p.note = text;
		p.note_len = len;
		ptext = tally_tlog_proof_format(&p, &plen);
		snprintf(path, sizeof(path), "%s.receipts", out);
		snprintf(rel, sizeof(rel), "%llu.tlog-proof",
		    (unsigned long long)p.index);
		write_file(path, rel, ptext, plen);
		free(ptext);
	}
	printf("%llu entries, %zu provinces, %llu revisions each\n",
	    (unsigned long long)version, json_array_size(results),
	    (unsigned long long)R);
	free(text);
	for (i = 0; i < entries + 1; i++)
		free(entry_text[i]);
	free(entry_text);
	free(entry_len);
	for (i = 0; i < n_bundles; i++)
		free(bundles[i]);
	free(bundles);
	free(blen);
	free(bcap);
	free(next);
	free(records);
	free(record_len);
	json_decref(root);
	tally_tlog_tree_destroy(t);
	tally_state_destroy(s);
	tally_election_destroy(e);
	return 0;
}
