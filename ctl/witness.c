/*
 * witness.c - tallyctl witness: cosign a tallyd's checkpoints as an
 * independent witness (C2SP tlog-cosignature v1; docs/VERIFY.md).
 *
 *	tallyctl witness key --dir DIR [--name NAME]
 *	tallyctl witness cosign --dir DIR --log-key VKEY [--url URL]
 *	    [--token-file F]
 *
 * `key` makes the witness's Ed25519 key in DIR (DIR/key, 0600, made once)
 * and prints its verifier key, which the log's operator lists in
 * DATA_DIR/tlog/witnesses.  `cosign` fetches the log's checkpoint, opens
 * it with the log's key, and compares it with the last one this witness
 * cosigned for that log (DIR/log-<hash of the origin>): a smaller size
 * (rolled back) or the same size with another root (forked) is refused,
 * and the two signed notes are the evidence; a larger size must extend
 * it, which is checked by recomputing both roots from the log's hash
 * tiles (the tree of the new size holds every node of the old).  Only
 * then is the new checkpoint stored (before anything is published) and
 * cosigned, and the note with the cosignature POSTed to /log/cosignature.
 *
 * Exit 0 when cosigned; 9 when the log contradicts what the witness saw;
 * others as every subcommand (an HTTP refusal, a missing key).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <nettle/sha2.h>

#include <tally/tally.h>

#include "tallyctl.h"
#include "witness.h"

#define TILE_CACHE	16

struct tile {
	int		 level;
	uint64_t	 n;
	unsigned	 w;
	uint8_t		*hashes;
};

struct witness {
	struct ctl	*ctl;
	struct http	*http;
	uint64_t	 size;		/* the tree the tiles are of */
	struct tile	 cache[TILE_CACHE];
	size_t		 ncache;
	char		 why[640];
};

static void
witness_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl witness key --dir DIR [--name NAME]\n"
	    "       tallyctl witness cosign --dir DIR --log-key VKEY "
	    "[--url URL] [--token-file F]\n"
	    "       tallyctl witness serve --dir DIR --log-key VKEY... "
	    "--listen HOST:PORT\n"
	    "\n"
	    "key     makes (once) and prints this witness's verifier key, for\n"
	    "        the log's DATA_DIR/tlog/witnesses\n"
	    "cosign  checks the log's checkpoint against the last one cosigned\n"
	    "        (append-only: no rollback, no fork), cosigns it and posts\n"
	    "        the cosignature (a token: --token-file or TALLYD_TOKEN)\n"
	    "serve   answers C2SP tlog-witness add-checkpoint requests (POST\n"
	    "        /add-checkpoint) for the logs of the keys given, with the\n"
	    "        same checks, until SIGTERM\n");
}

/* A file's bytes (new, NUL-terminated), or NULL (errno). */
static char *
read_text(const char *path, size_t *len)
{
	char *buf;

	if (tally_read_file(path, &buf, len) == -1)
		return NULL;
	return buf;
}

int
witness_write_file(const char *dir, const char *name, const char *buf,
    size_t len, unsigned mode)
{
	char path[4096], tmp[4096];
	int fd;
	ssize_t w;
	size_t off = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    (mode_t)mode)) == -1)
		return -1;
	while (off < len) {
		if ((w = write(fd, buf + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	/* The witness's memory of the log: durable before it cosigns. */
	if (fsync(fd) == -1 || close(fd) == -1 || rename(tmp, path) == -1)
		return -1;
	return 0;
}

int
witness_load_signer(struct ctl *ctl, const char *dir, const char *name,
    bool make, struct tally_tlog_signer *s)
{
	char path[4096], *text, b64[64], vkey[300];
	struct tally_tlog_key pubk;
	struct tally_error err;
	uint8_t seed[48];
	size_t len;
	long n;

	snprintf(path, sizeof(path), "%s/key", dir);
	if ((text = read_text(path, &len)) == NULL) {
		if (errno != ENOENT || !make) {
			ctl_warnx(ctl, "%s: %s%s", path, strerror(errno),
			    errno == ENOENT ? " (make it with tallyctl witness "
			    "key --dir DIR --name NAME)" : "");
			return -1;
		}
		if (name == NULL) {
			ctl_warnx(ctl, "a new witness needs --name (e.g. "
			    "witness.example.org/1)");
			return -1;
		}
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			ctl_warnx(ctl, "%s: %s", dir, strerror(errno));
			return -1;
		}
		if (getrandom(seed, 32, 0) != 32 ||
		    tally_tlog_cosigner_init(s, name, seed) == -1) {
			ctl_warnx(ctl, "cannot make a key named %s (visible "
			    "ASCII, no '+')", name);
			return -1;
		}
		tally_tlog_b64_encode(seed, 32, b64);
		explicit_bzero(seed, sizeof(seed));
		strcat(b64, "\n");
		tally_tlog_cosigner_key_format(&s->key, vkey, sizeof(vkey) - 1);
		strcat(vkey, "\n");
		if (witness_write_file(dir, "key", b64, strlen(b64), 0600) == -1 ||
		    witness_write_file(dir, "key.pub", vkey, strlen(vkey),
		    0644) == -1) {
			ctl_warnx(ctl, "%s: %s", dir, strerror(errno));
			return -1;
		}
		explicit_bzero(b64, sizeof(b64));
		return 0;
	}
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		len--;
	n = len == 44 ? tally_tlog_b64_decode(text, len, seed) : -1;
	explicit_bzero(text, len);
	free(text);
	/* The name is the one key.pub gives (made with the key). */
	snprintf(path, sizeof(path), "%s/key.pub", dir);
	if (n != 32 || (text = read_text(path, &len)) == NULL ||
	    tally_tlog_cosigner_key_parse(text, &pubk, &err) == -1) {
		ctl_warnx(ctl, "%s: not a witness's key and key.pub", dir);
		if (n == 32)
			free(text);
		return -1;
	}
	free(text);
	if (name != NULL && strcmp(name, pubk.name) != 0) {
		ctl_warnx(ctl, "%s holds the key of %s, not %s", dir,
		    pubk.name, name);
		return -1;
	}
	if (tally_tlog_cosigner_init(s, pubk.name, seed) == -1 ||
	    memcmp(s->key.pub, pubk.pub, 32) != 0) {
		explicit_bzero(seed, sizeof(seed));
		ctl_warnx(ctl, "%s: key and key.pub do not match", dir);
		return -1;
	}
	explicit_bzero(seed, sizeof(seed));
	return 0;
}

/* Hash tile (level, n) of width w at the tree size (cached). */
static const uint8_t *
get_tile(struct witness *wt, int level, uint64_t n, unsigned w)
{
	char rel[TALLY_TLOG_PATH_MAX], path[TALLY_TLOG_PATH_MAX + 8];
	struct http_resp r = { .retry_after = -1 };
	struct tile *c;
	size_t i;

	for (i = 0; i < wt->ncache; i++)
		if (wt->cache[i].level == level && wt->cache[i].n == n &&
		    wt->cache[i].w == w)
			return wt->cache[i].hashes;
	tally_tlog_tile_path(rel, sizeof(rel), level, n, w);
	snprintf(path, sizeof(path), "/log/%s", rel);
	if (http_request(wt->http, "GET", path, NULL, 0, NULL, &r) == -1 ||
	    r.status != 200 || r.len != (size_t)w * 32) {
		snprintf(wt->why, sizeof(wt->why), "%s: %.400s", path,
		    r.status == 0 ? r.error : r.status != 200 ? "not 200" :
		    "not the tile's size");
		http_resp_finish(&r);
		return NULL;
	}
	c = &wt->cache[wt->ncache < TILE_CACHE ? wt->ncache++ :
	    (size_t)(n % TILE_CACHE)];
	free(c->hashes);
	c->level = level;
	c->n = n;
	c->w = w;
	c->hashes = (uint8_t *)r.body;
	r.body = NULL;
	http_resp_finish(&r);
	return c->hashes;
}

/*
 * The hash of the complete subtree of height h whose leaves start at
 * index << h, from the tile of level h / 8 below it (C2SP tlog-tiles: a
 * tile of level L holds the hashes of tree level 8L).
 */
static int
node_hash(struct witness *wt, unsigned h, uint64_t index, uint8_t out[32])
{
	unsigned b = h % 8, w, k, m;
	int level = (int)(h / 8);
	uint64_t first = index << b, n = first / TALLY_TLOG_TILE_WIDTH;
	uint8_t buf[128][32];
	const uint8_t *tile;

	w = tally_tlog_tile_width(wt->size, level, n);
	if (w == 0 || first + (1u << b) > n * TALLY_TLOG_TILE_WIDTH + w ||
	    (tile = get_tile(wt, level, n, w)) == NULL) {
		if (wt->why[0] == '\0')
			snprintf(wt->why, sizeof(wt->why), "the tiles of size "
			    "%llu lack a node", (unsigned long long)wt->size);
		return -1;
	}
	tile += (first - n * TALLY_TLOG_TILE_WIDTH) * 32;
	if (b == 0) {
		memcpy(out, tile, 32);
		return 0;
	}
	for (k = 0, m = 1u << b; k < m / 2; k++)
		tally_tlog_node_hash(tile + 64 * k, tile + 64 * k + 32, buf[k]);
	for (m /= 2; m > 1; m /= 2)
		for (k = 0; k < m / 2; k++)
			tally_tlog_node_hash(buf[2 * k], buf[2 * k + 1],
			    buf[k]);
	memcpy(out, buf[0], 32);
	return 0;
}

/* MTH of leaves [a, b) (a aligned as RFC 6962's split makes it). */
static int
range_hash(struct witness *wt, uint64_t a, uint64_t b, uint8_t out[32])
{
	uint64_t n = b - a, k = 1;
	unsigned h = 0;
	uint8_t l[32], r[32];

	if ((n & (n - 1)) == 0 && a % n == 0) {
		while ((1ULL << h) < n)
			h++;
		return node_hash(wt, h, a >> h, out);
	}
	while (k * 2 < n)
		k *= 2;
	if (range_hash(wt, a, a + k, l) == -1 ||
	    range_hash(wt, a + k, b, r) == -1)
		return -1;
	tally_tlog_node_hash(l, r, out);
	return 0;
}

void
witness_state_name(const char *origin, char out[64])
{
	struct sha256_ctx sc;
	uint8_t oh[32];
	size_t i;

	/* One state file per log, named by its origin. */
	sha256_init(&sc);
	sha256_update(&sc, strlen(origin), (const uint8_t *)origin);
	sha256_digest(&sc, 32, oh);
	snprintf(out, 64, "log-");
	for (i = 0; i < 8; i++)
		snprintf(out + 4 + 2 * i, 3, "%02x", oh[i]);
}

static void
b64h(const uint8_t h[32], char out[48])
{
	tally_tlog_b64_encode(h, 32, out);
}

static int
cosign(struct ctl *ctl, const char *dir, const char *log_key)
{
	struct witness wt = { .ctl = ctl };
	struct tally_tlog_signer s;
	struct tally_tlog_key lk;
	struct tally_tlog_checkpoint cp, old;
	struct tally_error err;
	struct http_resp r = { .retry_after = -1 };
	uint8_t root[32];
	char state[64], path[4096], *text = NULL, *note = NULL, *oldnote = NULL,
	    *line = NULL, *post = NULL, h1[48], h2[48];
	size_t len, oldlen, blen, llen, i;
	bool have_old = false;
	json_t *json;
	int rc = CTL_EXIT_ERROR;

	if (witness_load_signer(ctl, dir, NULL, false, &s) == -1)
		return CTL_EXIT_ERROR;
	if ((text = strchr(log_key, '+') == NULL ? read_text(log_key, &len) :
	    strdup(log_key)) == NULL) {
		ctl_warnx(ctl, "%s: %s", log_key, strerror(errno));
		goto out;
	}
	if (tally_tlog_key_parse(text, &lk, &err) == -1) {
		ctl_warnx(ctl, "--log-key: %s", err.message);
		goto out;
	}
	if ((wt.http = http_create(ctl)) == NULL) {
		ctl_warnx(ctl, "out of memory");
		goto out;
	}
	if (http_request(wt.http, "GET", "/log/checkpoint", NULL, 0, NULL,
	    &r) == -1 || r.status != 200) {
		rc = ctl_http_error(ctl, &r, CTL_EXIT_UNAVAILABLE);
		goto out;
	}
	note = r.body;
	len = r.len;
	r.body = NULL;
	if (tally_tlog_checkpoint_open(note, len, &lk, &cp, &err) == -1) {
		fprintf(stderr, "%s: FAIL: /log/checkpoint: %s\n", ctl->prog,
		    err.message);
		rc = CTL_EXIT_MISMATCH;
		goto out;
	}
	witness_state_name(cp.origin, state);
	snprintf(path, sizeof(path), "%s/%s", dir, state);
	if ((oldnote = read_text(path, &oldlen)) != NULL) {
		if (tally_tlog_checkpoint_open(oldnote, oldlen, &lk, &old,
		    &err) == -1) {
			ctl_warnx(ctl, "%s: %s", path, err.message);
			goto out;
		}
		have_old = true;
	} else if (errno != ENOENT) {
		ctl_warnx(ctl, "%s: %s", path, strerror(errno));
		goto out;
	}
	wt.size = cp.size;
	if (have_old && old.size > cp.size) {
		fprintf(stderr, "%s: FAIL: the log is at size %llu, but this "
		    "witness cosigned size %llu (%s): the log was rolled back\n",
		    ctl->prog, (unsigned long long)cp.size,
		    (unsigned long long)old.size, path);
		rc = CTL_EXIT_MISMATCH;
		goto out;
	}
	if (have_old && old.size == cp.size && memcmp(old.root, cp.root, 32) !=
	    0) {
		/* Two signed checkpoints of one size: the evidence. */
		char fork[80];
		snprintf(fork, sizeof(fork), "fork-%llu",
		    (unsigned long long)cp.size);
		(void)witness_write_file(dir, fork, note, len, 0644);
		b64h(old.root, h1);
		b64h(cp.root, h2);
		fprintf(stderr, "%s: FAIL: two checkpoints of size %llu with "
		    "other roots (%s in %s, %s now, kept in %s/%s): the log "
		    "forked\n", ctl->prog, (unsigned long long)cp.size, h1,
		    path, h2, dir, fork);
		rc = CTL_EXIT_MISMATCH;
		goto out;
	}
	/* Both roots from the tiles of the new size: the old tree is its
	 * prefix, and the tiles are the tree the checkpoint signs. */
	if (cp.size > 0 && (range_hash(&wt, 0, cp.size, root) == -1 ||
	    memcmp(root, cp.root, 32) != 0)) {
		fprintf(stderr, "%s: FAIL: the log's tiles do not give the "
		    "checkpoint's root (size %llu)%s%s\n", ctl->prog,
		    (unsigned long long)cp.size, wt.why[0] ? ": " : "", wt.why);
		rc = CTL_EXIT_MISMATCH;
		goto out;
	}
	if (have_old && old.size > 0 && (range_hash(&wt, 0, old.size,
	    root) == -1 || memcmp(root, old.root, 32) != 0)) {
		fprintf(stderr, "%s: FAIL: the tree of size %llu does not "
		    "start with the tree of size %llu this witness cosigned "
		    "(%s)%s%s: the log was rewritten\n", ctl->prog,
		    (unsigned long long)cp.size, (unsigned long long)old.size,
		    path, wt.why[0] ? ": " : "", wt.why);
		rc = CTL_EXIT_MISMATCH;
		goto out;
	}
	/* Remembered before anything is published. */
	if (witness_write_file(dir, state, note, len, 0644) == -1) {
		ctl_warnx(ctl, "%s: %s", path, strerror(errno));
		goto out;
	}
	for (blen = 0, i = 0; i + 1 < len; i++)
		if (note[i] == '\n' && note[i + 1] == '\n')
			blen = i + 1;
	if ((line = tally_tlog_cosign(note, blen, &s, (uint64_t)time(NULL),
	    &llen)) == NULL || (post = malloc(len + llen)) == NULL) {
		ctl_warnx(ctl, "cannot cosign the checkpoint");
		goto out;
	}
	memcpy(post, note, len);
	memcpy(post + len, line, llen);
	http_resp_finish(&r);
	/* The API's bodies are JSON: {"note": "..."}. */
	json = json_pack("{s:s%}", "note", post, len + llen);
	free(post);
	post = json != NULL ? json_dumps(json, JSON_COMPACT) : NULL;
	json_decref(json);
	if (post == NULL) {
		ctl_warnx(ctl, "out of memory");
		goto out;
	}
	if (http_request(wt.http, "POST", "/log/cosignature", post,
	    strlen(post), NULL, &r) == -1 || r.status != 201) {
		rc = ctl_http_error(ctl, &r, CTL_EXIT_ERROR);
		goto out;
	}
	b64h(cp.root, h1);
	printf("ok: cosigned %s size %llu root %s\n", cp.origin,
	    (unsigned long long)cp.size, h1);
	if (have_old)
		printf("    consistent with the last one cosigned, which was "
		    "size %llu\n", (unsigned long long)old.size);
	else
		printf("    the first checkpoint of this log this witness "
		    "saw\n");
	rc = CTL_EXIT_OK;
out:
	explicit_bzero(&s, sizeof(s));
	for (i = 0; i < wt.ncache; i++)
		free(wt.cache[i].hashes);
	http_resp_finish(&r);
	http_destroy(wt.http);
	free(text);
	free(note);
	free(oldnote);
	free(line);
	free(post);
	return rc;
}

int
cmd_witness(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "name", required_argument, NULL, 'n' },
		{ "log-key", required_argument, NULL, 'k' },
		{ "listen", required_argument, NULL, 'l' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *name = NULL, *log_key = NULL, *what,
	    *listen = NULL, *keys[WITNESS_LOGS_MAX];
	size_t nkeys = 0;
	struct tally_tlog_signer s;
	char vkey[300];
	int c, rc;

	ctl->prog = "tallyctl witness";
	optind = 0;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'k':
			log_key = optarg;
			if (nkeys == WITNESS_LOGS_MAX) {
				ctl_warnx(ctl, "at most %d --log-key",
				    WITNESS_LOGS_MAX);
				return CTL_EXIT_USAGE;
			}
			keys[nkeys++] = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'h':
			witness_usage(stdout);
			return CTL_EXIT_OK;
		default:
			if (c >= CTL_OPT_BASE || c == 'v') {
				if ((rc = ctl_common_option(ctl, c, optarg)) != 0)
					return rc;
				break;
			}
			witness_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || dir == NULL) {
		witness_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	what = argv[optind];
	if (strcmp(what, "key") == 0) {
		if (witness_load_signer(ctl, dir, name, true, &s) == -1)
			return CTL_EXIT_ERROR;
		tally_tlog_cosigner_key_format(&s.key, vkey, sizeof(vkey));
		explicit_bzero(&s, sizeof(s));
		printf("%s\n", vkey);
		return CTL_EXIT_OK;
	}
	if (strcmp(what, "cosign") == 0 && nkeys == 1 && name == NULL &&
	    listen == NULL)
		return cosign(ctl, dir, log_key);
	if (strcmp(what, "serve") == 0 && nkeys > 0 && name == NULL &&
	    listen != NULL)
		return witness_serve(ctl, dir, keys, nkeys, listen);
	witness_usage(stderr);
	return CTL_EXIT_USAGE;
}
