/*
 * tlogd.c - the daemon's transparency log: an entry per applied version,
 * on disk before the version is published, signed checkpoints on demand.
 *
 * Files, in DATA_DIR/tlog/ (all append-only but the checkpoint):
 *   entries	every entry with its 2-byte big-endian length before it: the
 *		byte layout of the C2SP entry bundles, so a bundle is one pread
 *   hashes	every entry's leaf hash, 32 bytes each
 *   checkpoint	the last signed checkpoint (replaced by rename)
 *   key	the signing key's 32-byte Ed25519 seed in base64 (0600), made
 *		at first start unless log_key names a file (a cluster's shared
 *		key); key.pub the verifier key, for `tallyctl key`
 *
 * The entry of a version is its journal record and the SHA-256 of its
 * leaderboard (the bytes of /v1/versions/{N}/leaderboard), rendered right
 * after the version is applied (a group-commit round applies its versions
 * one after another: each entry hashes its own version's bytes); the views
 * take those very bytes (tlogd_leaderboard_take) instead of rendering them
 * again, so what the log hashed is what is served.
 *
 * Durability.  The entry of a version is made and put in the tree when
 * the version is applied, before its subscribers are told; the files get
 * it in batches (up to 64 KiB waits in memory) and before anything reads
 * them (a tile, a receipt, a checkpoint); they are synced before a
 * checkpoint is signed (if the journal is synced per version), before a
 * snapshot is taken (a start removes the journal segments a snapshot
 * covers, even when its writer's end was never seen) and at a clean stop.  A kill -9 or a power cut may lose
 * a tail the journal still holds, and the journal replay at the next start
 * appends it again (the same record, the same tally: the same bytes).  A
 * tree behind the tally after the start (the snapshot covers versions the
 * log lacks) cannot be rebuilt: the log is turned off, loudly.
 *
 * The key never reaches a log line: only the verifier key is logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include <tally/tally.h>

#include "core.h"
#include "log.h"
#include "tlogd.h"
#include "util.h"

struct tlogd *tlogd_current;

struct tlogd {
	char			*dir;		/* DATA_DIR/tlog */
	int			 fd_entries;
	int			 fd_hashes;
	uint64_t		 entries_end;	/* bytes */
	uint64_t		*offset;	/* per entry: its length prefix */
	uint64_t		 offset_cap;
	struct tally_tlog_tree	*tree;
	struct tally_tlog_signer signer;
	char			 vkey[256];	/* the verifier key text */
	char			*note;		/* the last signed checkpoint */
	size_t			 note_len;
	uint64_t		 note_size;	/* its tree size */
	bool			 have_note;
	bool			 dirty;		/* appended, not synced */
	/*
	 * Appends not yet written: the entries (each with its length
	 * prefix) and their leaf hashes, written once TLOGD_PENDING_MAX
	 * bytes wait and before anything reads or syncs the files.  Two
	 * write(2)s per version were most of what the log still cost a
	 * POST on the CPU.  What a kill -9 takes from here the journal
	 * replay appends again at the next start (the same records, the
	 * same bytes), as it does after a power cut.
	 */
	struct pending {
		uint8_t		*p;
		size_t		 len, cap;
	}			 pend_e, pend_h;
	bool			 sync_to_sign;	/* tlogd_set_sync_to_sign */
	bool			 off;		/* turned off: see why */
	struct core		*core;
	/*
	 * The last version's leaderboard bytes, hashed into its entry, until
	 * the views take them (tlogd_leaderboard_take) or the next version
	 * replaces them.
	 */
	char			*lb;
	size_t			 lb_len;
	uint64_t		 lb_version;
	/* A further contest's id, named in each entry (tlogd_set_contest);
	 * NULL: the first contest's log, whose entries name none. */
	char			*contest;
	struct tlogd		*next;		/* every attached log (tlogd_of) */
};

/* Every log attached to a core: one per contest.  [L] */
static struct tlogd *tlogd_all;

#define TLOGD_PENDING_MAX	(64 * 1024)

static void
tlogd_turn_off(struct tlogd *t, const char *why, uint64_t version)
{
	if (t->off)
		return;
	t->off = true;
	log_warnx("transparency log turned off at version %llu (tree size "
	    "%llu): %s; /log/ answers 503 until DATA_DIR/tlog is rebuilt "
	    "(move it away and replay the whole journal)",
	    (unsigned long long)version,
	    (unsigned long long)t->tree->size, why);
}

static int
read_all(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	int fd;
	ssize_t r;
	size_t off = 0;

	*buf = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) == -1 || (*buf = malloc((size_t)st.st_size + 1)) ==
	    NULL) {
		close(fd);
		return -1;
	}
	while (off < (size_t)st.st_size) {
		if ((r = read(fd, *buf + off, (size_t)st.st_size - off)) <= 0) {
			if (r == -1 && errno == EINTR)
				continue;
			break;
		}
		off += (size_t)r;
	}
	close(fd);
	*len = off;
	(*buf)[off] = 0;
	return 0;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t w;

	while (len > 0) {
		if ((w = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Write path (a new file) durably: tmp, fsync, rename, fsync the dir. */
static int
write_file(const char *dir, const char *name, const void *buf, size_t len,
    mode_t mode, bool sync)
{
	char path[4096], tmp[4096];
	int fd, dfd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) ==
	    -1)
		return -1;
	if (write_all(fd, buf, len) == -1 || (sync && fsync(fd) == -1)) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) == -1)
		return -1;
	if (sync && (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) !=
	    -1) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* The key: 32 bytes of seed, base64, in path (made when make). */
static int
key_load(const char *path, bool make, uint8_t seed[32],
    struct tally_diag *diag)
{
	uint8_t *buf, raw[48];
	size_t len;
	char b64[64];
	long n;

	if (read_all(path, &buf, &len) == -1) {
		tally_diag_add(diag, "log_key %s: %s", path, strerror(errno));
		return -1;
	}
	if (buf == NULL) {
		char *slash, dir[4096];
		if (!make) {
			tally_diag_add(diag, "log_key %s: no such file (make "
			    "one with: head -c 32 /dev/urandom | base64 > %s; "
			    "chmod 600 %s; and give every node the same)",
			    path, path, path);
			return -1;
		}
		if (getrandom(seed, 32, 0) != 32) {
			tally_diag_add(diag, "getrandom: %s", strerror(errno));
			return -1;
		}
		tally_tlog_b64_encode(seed, 32, b64);
		len = strlen(b64);
		b64[len++] = '\n';
		snprintf(dir, sizeof(dir), "%s", path);
		if ((slash = strrchr(dir, '/')) != NULL)
			*slash = '\0';
		if (write_file(dir, slash ? slash + 1 : path, b64, len, 0600,
		    true) == -1) {
			tally_diag_add(diag, "%s: cannot write the log's key: "
			    "%s", path, strerror(errno));
			return -1;
		}
		log_info("transparency log: a new signing key in %s", path);
		return 0;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
	    buf[len - 1] == ' '))
		len--;
	n = len == 44 ? tally_tlog_b64_decode((char *)buf, len, raw) : -1;
	free(buf);
	if (n != 32) {
		/* Never the file's contents: it is the private key. */
		tally_diag_add(diag, "log_key %s: not a 32-byte key in base64 "
		    "(44 characters)", path);
		return -1;
	}
	memcpy(seed, raw, 32);
	explicit_bzero(raw, sizeof(raw));
	return 0;
}

static int
offset_push(struct tlogd *t, uint64_t off)
{
	if (t->tree->size >= t->offset_cap) {
		uint64_t ncap = t->offset_cap ? t->offset_cap * 2 : 1024;
		uint64_t *no = realloc(t->offset, ncap * sizeof(*no));
		if (no == NULL)
			return -1;
		t->offset = no;
		t->offset_cap = ncap;
	}
	t->offset[t->tree->size] = off;
	return 0;
}

/* Reload entries and hashes; cut a torn or unmatched tail. */
static int
tlogd_reload(struct tlogd *t, struct tally_diag *diag)
{
	char path[4096];
	uint8_t *ents = NULL, *hashes = NULL, leaf[32];
	size_t elen, hlen, off = 0, prev = 0, entlen;
	const uint8_t *entry;
	uint64_t n = 0;
	int rc = -1, r;

	snprintf(path, sizeof(path), "%s/entries", t->dir);
	if (read_all(path, &ents, &elen) == -1)
		goto io;
	snprintf(path, sizeof(path), "%s/hashes", t->dir);
	if (read_all(path, &hashes, &hlen) == -1)
		goto io;
	while ((r = tally_tlog_bundle_next(ents, elen, &off, &entry,
	    &entlen)) == 1 && (n + 1) * 32 <= hlen) {
		tally_tlog_leaf_hash(entry, entlen, leaf);
		if (memcmp(leaf, hashes + n * 32, 32) != 0) {
			tally_diag_add(diag, "%s/entries: entry %llu does not "
			    "match its hash in %s/hashes: the log was changed "
			    "on disk", t->dir, (unsigned long long)n, t->dir);
			goto done;
		}
		if (offset_push(t, prev) == -1 ||
		    tally_tlog_tree_append(t->tree, leaf) == -1) {
			tally_diag_add(diag, "out of memory loading the log");
			goto done;
		}
		prev = off;
		n++;
	}
	/* A torn tail (a crash mid-append): cut both files to n entries. */
	if (prev != elen || n * 32 != hlen)
		log_warnx("transparency log: cut a torn tail (%zu of %zu entry "
		    "bytes, %llu of %zu hash bytes kept)", prev, elen,
		    (unsigned long long)(n * 32), hlen);
	if (ftruncate(t->fd_entries, (off_t)prev) == -1 ||
	    ftruncate(t->fd_hashes, (off_t)(n * 32)) == -1 ||
	    lseek(t->fd_entries, 0, SEEK_END) == -1 ||
	    lseek(t->fd_hashes, 0, SEEK_END) == -1)
		goto io;
	t->entries_end = prev;
	/* The last signed checkpoint, checked at tlogd_started. */
	snprintf(path, sizeof(path), "%s/checkpoint", t->dir);
	free(ents);
	ents = NULL;
	if (read_all(path, &ents, &elen) == -1)
		goto io;
	if (ents != NULL) {
		t->note = (char *)ents;
		t->note_len = elen;
		t->have_note = true;
		ents = NULL;
	}
	rc = 0;
	goto done;
io:
	tally_diag_add(diag, "%s: %s", path, strerror(errno));
done:
	free(ents);
	free(hashes);
	return rc;
}

struct tlogd *
tlogd_open(const char *data_dir, const char *key_path,
    const char *election_id, const char *election_path,
    struct tally_diag *diag)
{
	struct tlogd *t;
	char path[4096], name[TALLY_TLOG_NAME_MAX], hex[65];
	uint8_t seed[32], *def, digest[32];
	size_t deflen, i;
	struct sha256_ctx sc;

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->tree = tally_tlog_tree_create()) == NULL) {
		tally_diag_add(diag, "out of memory");
		free(t);
		return NULL;
	}
	t->fd_entries = t->fd_hashes = -1;
	snprintf(path, sizeof(path), "%s/tlog", data_dir);
	if ((t->dir = strdup(path)) == NULL)
		goto nomem;
	if (mkdir(t->dir, 0700) == -1 && errno != EEXIST) {
		tally_diag_add(diag, "%s: %s", t->dir, strerror(errno));
		goto fail;
	}
	/*
	 * The origin binds the definition: a checkpoint signed for one
	 * definition can never pass for another's.
	 */
	if (read_all(election_path, &def, &deflen) == -1 || def == NULL) {
		tally_diag_add(diag, "%s: %s", election_path, strerror(errno));
		goto fail;
	}
	sha256_init(&sc);
	sha256_update(&sc, deflen, def);
	sha256_digest(&sc, 32, digest);
	free(def);
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	snprintf(name, sizeof(name), "tallyd/%s/%s", election_id, hex);
	if (key_path == NULL)
		snprintf(path, sizeof(path), "%s/key", t->dir);
	if (key_load(key_path ? key_path : path, key_path == NULL, seed,
	    diag) == -1)
		goto fail;
	if (tally_tlog_signer_init(&t->signer, name, seed) == -1) {
		explicit_bzero(seed, sizeof(seed));
		tally_diag_add(diag, "the election id %s does not make a log "
		    "name", election_id);
		goto fail;
	}
	explicit_bzero(seed, sizeof(seed));
	if (tally_tlog_key_format(&t->signer.key, t->vkey, sizeof(t->vkey)) ==
	    -1)
		goto nomem;
	i = strlen(t->vkey);
	t->vkey[i] = '\n';
	if (write_file(t->dir, "key.pub", t->vkey, i + 1, 0644, false) == -1)
		log_warn("%s/key.pub", t->dir);
	t->vkey[i] = '\0';
	snprintf(path, sizeof(path), "%s/entries", t->dir);
	if ((t->fd_entries = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) ==
	    -1) {
		tally_diag_add(diag, "%s: %s", path, strerror(errno));
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/hashes", t->dir);
	if ((t->fd_hashes = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) ==
	    -1) {
		tally_diag_add(diag, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (tlogd_reload(t, diag) == -1)
		goto fail;
	log_info("transparency log: %llu entries in %s; verifier key %s",
	    (unsigned long long)t->tree->size, t->dir, t->vkey);
	return t;
nomem:
	tally_diag_add(diag, "out of memory");
fail:
	tlogd_close(t);
	return NULL;
}

static int
pending_add(struct pending *b, const void *a, size_t alen, const void *c,
    size_t clen)
{
	if (b->len + alen + clen > b->cap) {
		size_t ncap = b->cap ? b->cap : 4096;
		uint8_t *np;
		while (ncap < b->len + alen + clen)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL)
			return -1;
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, a, alen);
	if (clen > 0)
		memcpy(b->p + b->len + alen, c, clen);
	b->len += alen + clen;
	return 0;
}

/* The appends waiting in memory, written.  0, or -1 (the log is off). */
static int
tlogd_write_pending(struct tlogd *t)
{
	if (t->pend_e.len == 0 && t->pend_h.len == 0)
		return 0;
	if (write_all(t->fd_entries, t->pend_e.p, t->pend_e.len) == -1 ||
	    write_all(t->fd_hashes, t->pend_h.p, t->pend_h.len) == -1) {
		/* Not retried: a partial append is cut at the next start,
		 * and the journal's replay appends the rest again. */
		log_warn("%s: append", t->dir);
		tlogd_turn_off(t, "a write failed", t->tree->size);
		t->pend_e.len = t->pend_h.len = 0;
		return -1;
	}
	t->pend_e.len = t->pend_h.len = 0;
	return 0;
}

static int
tlogd_sync(struct tlogd *t)
{
	if (tlogd_write_pending(t) == -1)
		return -1;
	if (!t->dirty)
		return 0;
	if (fdatasync(t->fd_entries) == -1 || fdatasync(t->fd_hashes) == -1) {
		/* As the journal: after a failed sync the page cache may
		 * have dropped what it could not write. */
		fatal("%s: fdatasync", t->dir);
	}
	t->dirty = false;
	return 0;
}

void
tlogd_flush(struct tlogd *t)
{
	if (t != NULL && !t->off)
		(void)tlogd_sync(t);
}

void
tlogd_close(struct tlogd *t)
{
	struct tlogd **tp;

	if (t == NULL)
		return;
	if (t->fd_entries != -1 && t->dirty)
		(void)tlogd_sync(t);
	if (t->fd_entries != -1)
		close(t->fd_entries);
	if (t->fd_hashes != -1)
		close(t->fd_hashes);
	tally_tlog_tree_destroy(t->tree);
	explicit_bzero(&t->signer, sizeof(t->signer));
	free(t->offset);
	free(t->pend_e.p);
	free(t->pend_h.p);
	free(t->lb);
	free(t->note);
	free(t->dir);
	free(t->contest);
	for (tp = &tlogd_all; *tp != NULL; tp = &(*tp)->next)
		if (*tp == t) {
			*tp = t->next;
			break;
		}
	if (tlogd_current == t)
		tlogd_current = NULL;
	free(t);
}

/* The record of a version taken without being applied: no results. */
static char *
empty_record(const struct tally_state *s, uint64_t version, size_t *len)
{
	char *rec;

	if (asprintf(&rec, "{\"version\":%llu,\"received_at\":\"%s\","
	    "\"results\":[]}", (unsigned long long)version,
	    s->updated_at[0] ? s->updated_at : "1970-01-01T00:00:00Z") == -1)
		return NULL;
	*len = strlen(rec);
	return rec;
}

/* The version hook: the entry of `version`, appended. */
static void
tlogd_on_version(void *arg, uint64_t version, const char *payload,
    size_t len)
{
	struct tlogd *t = arg;
	const struct tally_state *s = core_state(t->core);
	struct tally_error err;
	struct sha256_ctx sc;
	uint8_t leaf[32], pre[2], lb[32];
	char *entry = NULL, *empty = NULL;
	size_t elen;

	if (t->off || version <= t->tree->size)
		return;		/* kept from an earlier run */
	if (version != t->tree->size + 1) {
		tlogd_turn_off(t, "a version was skipped (the tally moved "
		    "past versions the log lacks)", version);
		return;
	}
	if (payload == NULL && (payload = empty = empty_record(s, version,
	    &len)) == NULL)
		fatalx("out of memory writing the transparency log");
	/*
	 * The leaderboard of this version (the state is at it: the hook runs
	 * right after each version is applied, before the next one of its
	 * round), rendered by the function the view renders with, hashed
	 * into the entry and kept for the view (tlogd_leaderboard_take).
	 */
	free(t->lb);
	t->lb_version = 0;
	if ((t->lb = tally_tlog_leaderboard(s, &t->lb_len)) == NULL)
		fatalx("out of memory writing the transparency log");
	t->lb_version = version;
	sha256_init(&sc);
	sha256_update(&sc, t->lb_len, (const uint8_t *)t->lb);
	sha256_digest(&sc, 32, lb);
	if ((entry = tally_tlog_entry_encode_at(payload, len, version,
	    t->contest, lb, &elen, &err)) == NULL) {
		/* The version is applied: a log without it would be a lie
		 * about what tallyd published. */
		tlogd_turn_off(t, "the entry could not be made", version);
		free(empty);
		return;
	}
	free(empty);
	tally_tlog_leaf_hash(entry, elen, leaf);
	pre[0] = (uint8_t)(elen >> 8);
	pre[1] = (uint8_t)elen;
	if (offset_push(t, t->entries_end) == -1)
		fatalx("out of memory writing the transparency log");
	if (pending_add(&t->pend_e, pre, 2, entry, elen) == -1 ||
	    pending_add(&t->pend_h, leaf, 32, NULL, 0) == -1 ||
	    tally_tlog_tree_append(t->tree, leaf) == -1)
		fatalx("out of memory writing the transparency log");
	t->entries_end += 2 + elen;
	t->dirty = true;
	free(entry);
	if (t->pend_e.len >= TLOGD_PENDING_MAX)
		(void)tlogd_write_pending(t);
}

char *
tlogd_leaderboard_take(struct tlogd *t, const struct core *c,
    uint64_t version, size_t *len)
{
	char *lb;

	if (t != NULL && t->core != c)
		t = tlogd_of(c);
	if (!tlogd_leaderboard_ready(t, c, version))
		return NULL;
	lb = t->lb;
	*len = t->lb_len;
	t->lb = NULL;
	t->lb_version = 0;
	return lb;
}

bool
tlogd_leaderboard_ready(const struct tlogd *t, const struct core *c,
    uint64_t version)
{
	/* Another contest's core: the bytes are its own log's. */
	if (t != NULL && t->core != c)
		t = tlogd_of(c);
	return t != NULL && t->lb != NULL && t->core == c &&
	    t->lb_version == version && version == core_state(t->core)->version;
}

void
tlogd_set_sync_to_sign(struct tlogd *t, bool sync)
{
	t->sync_to_sign = sync;
}

int
tlogd_set_contest(struct tlogd *t, const char *id)
{
	char *dup = NULL;

	if (id != NULL && (dup = strdup(id)) == NULL)
		return -1;
	free(t->contest);
	t->contest = dup;
	return 0;
}

void
tlogd_attach(struct tlogd *t, struct core *c)
{
	t->core = c;
	core_set_version_hook(c, tlogd_on_version, t);
	t->next = tlogd_all;
	tlogd_all = t;
}

struct tlogd *
tlogd_of(const struct core *c)
{
	struct tlogd *t;

	for (t = tlogd_all; t != NULL && t->core != c; t = t->next)
		;
	return t;
}

/*
 * The last checkpoint under another origin: the definition was edited
 * since (a restart took the edit), so the same key signs under a new name
 * from now on.  It must still be ours (our key under its old name) and the
 * tree an extension of it: the entries are not rewritten, observers fetch
 * the new verifier key.  0 with *cp, or -1.
 */
static int
checkpoint_open_renamed(struct tlogd *t, struct tally_tlog_checkpoint *cp,
    struct tally_error *err)
{
	struct tally_tlog_signer old;
	char name[TALLY_TLOG_NAME_MAX];
	const char *nl = memchr(t->note, '\n', t->note_len);
	int rc;

	if (nl == NULL || (size_t)(nl - t->note) >= sizeof(name))
		return -1;
	memcpy(name, t->note, (size_t)(nl - t->note));
	name[nl - t->note] = '\0';
	if (strcmp(name, t->signer.key.name) == 0 ||
	    tally_tlog_signer_init(&old, name, t->signer.seed) == -1)
		return -1;
	rc = tally_tlog_checkpoint_open(t->note, t->note_len, &old.key, cp,
	    err);
	explicit_bzero(&old, sizeof(old));
	if (rc == 0)
		log_warnx("transparency log: the election definition changed "
		    "since the last checkpoint (%s, size %llu); checkpoints are "
		    "signed as %s from now on: observers need the new "
		    "verifier key (GET /log/key)", name,
		    (unsigned long long)cp->size, t->signer.key.name);
	return rc;
}

int
tlogd_started(struct tlogd *t, uint64_t version, bool cluster,
    struct tally_diag *diag)
{
	struct tally_tlog_checkpoint cp;
	struct tally_error err;
	uint8_t root[32];

	if (t->have_note && (t->note_len == 0 ||
	    memmem(t->note, t->note_len, "\n\n\xe2\x80\x94 ", 6) == NULL)) {
		/* Torn by a power cut (it is not synced): no signature. */
		log_warnx("%s/checkpoint: not a signed note (cut by a crash?); "
		    "ignored, the next one is signed afresh", t->dir);
		t->have_note = false;
	}
	if (t->have_note) {
		if (tally_tlog_checkpoint_open(t->note, t->note_len,
		    &t->signer.key, &cp, &err) == -1 &&
		    checkpoint_open_renamed(t, &cp, &err) == -1) {
			tally_diag_add(diag, "%s/checkpoint: %s (signed by "
			    "another key?)", t->dir, err.message);
			return -1;
		}
		if (cp.size > t->tree->size || tally_tlog_tree_root(t->tree,
		    cp.size, root) == -1 || memcmp(root, cp.root, 32) != 0) {
			tally_diag_add(diag, "%s: the log on disk (%llu "
			    "entries) is not an extension of its own signed "
			    "checkpoint of size %llu: it was changed or lost "
			    "its tail; restore DATA_DIR/tlog from a copy",
			    t->dir, (unsigned long long)t->tree->size,
			    (unsigned long long)cp.size);
			return -1;
		}
		t->note_size = cp.size;
	}
	if (t->tree->size < version)
		tlogd_turn_off(t, "the snapshot covers versions the log does "
		    "not hold (was the log added to an existing data dir?)",
		    version);
	else if (t->tree->size > version && !cluster)
		log_warnx("transparency log: %llu entries but the tally is at "
		    "version %llu (the journal lost its tail?); the next "
		    "versions are not logged again",
		    (unsigned long long)t->tree->size,
		    (unsigned long long)version);
	return 0;
}

bool
tlogd_ok(const struct tlogd *t)
{
	return t != NULL && !t->off;
}

uint64_t
tlogd_size(const struct tlogd *t)
{
	return t->tree->size;
}

const char *
tlogd_key(const struct tlogd *t)
{
	return t->vkey;
}

const char *
tlogd_checkpoint(struct tlogd *t, size_t *len)
{
	struct tally_tlog_checkpoint cp;
	char body[512];
	size_t blen, nlen;
	char *note;

	if (t->off)
		return NULL;
	if (!t->have_note || t->note_size != t->tree->size) {
		memset(&cp, 0, sizeof(cp));
		snprintf(cp.origin, sizeof(cp.origin), "%s",
		    t->signer.key.name);
		cp.size = t->tree->size;
		/*
		 * No extension line: every entry carries its version's
		 * leaderboard hash, so the root signs them all.  (tallyd
		 * signed a leaderboard-sha256 line while entries did not;
		 * such checkpoints still open, docs/VERIFY.md.)
		 */
		if (tally_tlog_tree_root(t->tree, cp.size, cp.root) == -1 ||
		    tally_tlog_checkpoint_format(&cp, body, sizeof(body),
		    &blen) == -1)
			return NULL;
		/*
		 * Never sign what a power cut could take back (synced), nor
		 * what a kill -9 could (written: the checkpoint on disk
		 * was once ahead of the entries, and the next start
		 * refused the log as cut short).
		 */
		if (t->sync_to_sign ? tlogd_sync(t) == -1 :
		    tlogd_write_pending(t) == -1)
			return NULL;
		if ((note = tally_tlog_note_sign(body, blen, &t->signer,
		    &nlen)) == NULL)
			return NULL;
		/*
		 * Not synced (it would stall the loop once per version): a
		 * power cut may leave an older one, or a torn one, which the
		 * next start ignores; the tree itself is what was synced.
		 */
		if (write_file(t->dir, "checkpoint", note, nlen, 0644,
		    false) == -1)
			log_warn("%s/checkpoint", t->dir);
		free(t->note);
		t->note = note;
		t->note_len = nlen;
		t->note_size = cp.size;
		t->have_note = true;
	}
	*len = t->note_len;
	return t->note;
}

int
tlogd_leaf(const struct tlogd *t, uint64_t index, uint8_t out[32])
{
	const uint8_t *h;

	if (t->off || (h = tally_tlog_tree_hash(t->tree, 0, index)) == NULL)
		return -1;
	memcpy(out, h, 32);
	return 0;
}

/* Entries [from, to) as their bundle bytes (new). */
static char *
read_entries(struct tlogd *t, uint64_t from, uint64_t to, size_t *len)
{
	uint64_t a = t->offset[from], b = to < t->tree->size ? t->offset[to] :
	    t->entries_end;
	char *buf;
	size_t off = 0;
	ssize_t r;

	if (tlogd_write_pending(t) == -1 || (buf = malloc(b - a + 1)) == NULL)
		return NULL;
	while (off < b - a) {
		r = pread(t->fd_entries, buf + off, b - a - off,
		    (off_t)(a + off));
		if (r <= 0) {
			if (r == -1 && errno == EINTR)
				continue;
			log_warn("%s/entries: read", t->dir);
			free(buf);
			return NULL;
		}
		off += (size_t)r;
	}
	*len = b - a;
	return buf;
}

char *
tlogd_tile(struct tlogd *t, int level, uint64_t n, unsigned w, size_t *len,
    unsigned *status)
{
	unsigned have;
	char *buf;

	*status = 503;
	if (t->off)
		return NULL;
	/*
	 * A tile exists when the tree holds it: the full one for ever, a
	 * partial one of any width up to what the tree has (a client that
	 * read an older checkpoint asks for a narrower one).
	 */
	have = tally_tlog_tile_width(t->tree->size, level == TALLY_TLOG_ENTRIES ?
	    0 : level, n);
	*status = 404;
	if (have == 0 || w > have)
		return NULL;
	*status = 503;
	if (level == TALLY_TLOG_ENTRIES)
		return read_entries(t, n * TALLY_TLOG_TILE_WIDTH,
		    n * TALLY_TLOG_TILE_WIDTH + w, len);
	if ((buf = malloc((size_t)w * 32)) == NULL)
		return NULL;
	if (tally_tlog_tile_hashes(t->tree, level, n, w, (uint8_t *)buf) ==
	    -1) {
		free(buf);
		*status = 404;
		return NULL;
	}
	*len = (size_t)w * 32;
	return buf;
}

char *
tlogd_proof(struct tlogd *t, uint64_t index, size_t *len)
{
	struct tally_tlog_proof p;
	const char *note;
	size_t nlen, elen;
	char *out = NULL, *entry;
	uint8_t *e;
	const uint8_t *ep;

	if (t->off || index >= t->tree->size ||
	    (note = tlogd_checkpoint(t, &nlen)) == NULL)
		return NULL;
	memset(&p, 0, sizeof(p));
	p.index = index;
	if (tally_tlog_tree_inclusion(t->tree, index, t->note_size, p.hashes,
	    &p.n) == -1 ||
	    (entry = read_entries(t, index, index + 1, &elen)) == NULL)
		return NULL;
	/* The entry without its length prefix: the receipt's extra data. */
	e = (uint8_t *)entry;
	ep = e + 2;
	p.extra = (uint8_t *)(uintptr_t)ep;
	p.extra_len = elen - 2;
	p.note = (char *)(uintptr_t)note;
	p.note_len = nlen;
	out = tally_tlog_proof_format(&p, len);
	free(entry);
	return out;
}

const char *
tlogd_dir(const struct tlogd *t)
{
	return t->dir;
}

int
tlogd_open_checkpoint(const struct tlogd *t, const char *note, size_t len,
    struct tally_tlog_checkpoint *cp, struct tally_error *err)
{
	return tally_tlog_checkpoint_open(note, len, &t->signer.key, cp, err);
}

int
tlogd_root(const struct tlogd *t, uint64_t size, uint8_t out[32])
{
	if (t->off)
		return -1;
	return tally_tlog_tree_root(t->tree, size, out);
}

int
tlogd_consistency(const struct tlogd *t, uint64_t m, uint64_t n,
    uint8_t proof[][32], size_t *np)
{
	if (t->off)
		return -1;
	return tally_tlog_tree_consistency(t->tree, m, n, proof, np);
}

char *
tlogd_sign(const struct tlogd *t, const char *body, size_t len,
    size_t *outlen)
{
	return tally_tlog_note_sign(body, len, &t->signer, outlen);
}
