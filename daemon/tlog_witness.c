/*
 * tlog_witness.c - witnesses' cosignatures of the log's checkpoints (issue
 * 27; C2SP tlog-cosignature, docs/VERIFY.md "Witnesses").
 *
 * A witness (tallyctl witness, run by somebody else) fetches a checkpoint,
 * checks that the tree only grew since the last one it cosigned, cosigns
 * it and POSTs the note with its cosignature to /log/cosignature.  tallyd
 * takes a cosignature only from a key listed in DATA_DIR/tlog/witnesses
 * (their verifier keys, one a line; read at each POST, so a witness is
 * added without a restart) and only on a checkpoint it signed itself
 * whose root is its tree's at that size.  It keeps the latest cosigned
 * checkpoint, with every witness's line, in DATA_DIR/tlog/witnessed
 * (served at /log/witnessed; /log/checkpoint carries the lines too while
 * it is that checkpoint).  Refusing to cosign two different checkpoints of
 * one size is the witness's job: a forked log is caught there.
 *
 * Threads: the loop thread [L] only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tally/tally.h>

#include "log.h"
#include "tlog_witness.h"
#include "tlogd.h"

#define WITNESSES_MAX	32

/* The keys of the witnesses tallyd pushes to (tlog_push.c). [L] */
static struct {
	struct tally_tlog_key	*keys;
	size_t			 n;
} pushed;

/* The latest cosigned checkpoint. [L] */
static struct {
	bool		 loaded;
	char		*note;	/* body, the log's line, cosignatures */
	size_t		 len;
	size_t		 body_len;
	uint64_t	 size;
} witnessed;

/* A file's text (new, NUL-terminated), or NULL (errno). */
static char *
slurp(const char *path, size_t *len)
{
	char *buf = NULL, *nb;
	size_t cap = 0, n = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if (cap > (1 << 20) || (nb = realloc(buf, cap)) ==
			    NULL) {
				free(buf);
				close(fd);
				errno = EFBIG;
				return NULL;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* The end of a note's body (after its last "\n\n" comes one '\n'). */
static size_t
body_len(const char *note, size_t len)
{
	size_t i, b = 0;

	for (i = 0; i + 1 < len; i++)
		if (note[i] == '\n' && note[i + 1] == '\n')
			b = i + 1;
	return b;
}

/* The witnesses' keys: those tallyd pushes to (the `witness` settings),
 * then DATA_DIR/tlog/witnesses; how many (0: none). */
static size_t
witness_keys(struct tlogd *t, struct tally_tlog_key *keys, size_t max)
{
	char path[4096], *text, *line, *save = NULL;
	struct tally_error err;
	size_t len, n;

	for (n = 0; n < pushed.n && n < max; n++)
		keys[n] = pushed.keys[n];

	snprintf(path, sizeof(path), "%s/witnesses", tlogd_dir(t));
	if ((text = slurp(path, &len)) == NULL) {
		if (errno != ENOENT)
			log_warn("%s", path);
		return n;
	}
	for (line = strtok_r(text, "\n", &save); line != NULL && n < max;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || line[strspn(line, " \t\r")] == '\0')
			continue;
		if (tally_tlog_cosigner_key_parse(line, &keys[n], &err) == 0)
			n++;
		else
			log_warnx("%s: %.80s: %s", path, line, err.message);
	}
	free(text);
	return n;
}

/* k's verified line on note (borrowed into out, with its '\n'), or 0. */
static size_t
witness_line(const char *note, size_t len, size_t blen,
    const struct tally_tlog_key *k, char *out, size_t outsize)
{
	const char *p, *q, *end = note + len;
	struct tally_error err;
	uint64_t ts;
	char *one;
	size_t n;

	for (p = note + blen + 1; p < end; p = q + 1) {
		if ((q = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		n = (size_t)(q - p) + 1;
		if (n >= outsize || (one = malloc(blen + 1 + n)) == NULL)
			continue;
		/* The line alone on the body: that it is the one that
		 * verifies, not another of the same name. */
		memcpy(one, note, blen);
		one[blen] = '\n';
		memcpy(one + blen + 1, p, n);
		if (tally_tlog_cosig_verify(one, blen + 1 + n, k, &ts,
		    &err) == 1) {
			free(one);
			memcpy(out, p, n);
			out[n] = '\0';
			return n;
		}
		free(one);
	}
	return 0;
}

static void
witnessed_load(struct tlogd *t)
{
	char path[4096];
	struct tally_tlog_checkpoint cp;
	struct tally_error err;
	size_t len;
	char *note;

	if (witnessed.loaded)
		return;
	witnessed.loaded = true;
	snprintf(path, sizeof(path), "%s/witnessed", tlogd_dir(t));
	if ((note = slurp(path, &len)) == NULL)
		return;
	/* Ours, and still our tree's (a log moved away and rebuilt
	 * drops it). */
	if (tlogd_open_checkpoint(t, note, len, &cp, &err) == -1 ||
	    cp.size > tlogd_size(t)) {
		log_warnx("%s: not a checkpoint of this log; ignored", path);
		free(note);
		return;
	}
	witnessed.note = note;
	witnessed.len = len;
	witnessed.body_len = body_len(note, len);
	witnessed.size = cp.size;
}

int
tlog_witness_add(struct tlogd *t, const char *note, size_t len,
    struct tlog_witness_result *res)
{
	struct tally_tlog_key keys[WITNESSES_MAX];
	struct tally_tlog_checkpoint cp;
	struct tally_error err;
	uint8_t root[32];
	size_t nkeys, blen, i, nlen, total;
	uint64_t ts;
	char *signed_note = NULL, *out = NULL, line[256];
	bool same;
	int r;

	memset(res, 0, sizeof(*res));
	res->status = 422;
	witnessed_load(t);
	if (tlogd_open_checkpoint(t, note, len, &cp, &err) == -1) {
		snprintf(res->code, sizeof(res->code), "not_our_checkpoint");
		snprintf(res->message, sizeof(res->message), "not a checkpoint "
		    "signed by this log: %s", err.message);
		return -1;
	}
	if (cp.size > tlogd_size(t) || tlogd_root(t, cp.size, root) == -1 ||
	    memcmp(root, cp.root, 32) != 0) {
		res->status = 409;
		snprintf(res->code, sizeof(res->code), "not_our_tree");
		snprintf(res->message, sizeof(res->message), "the checkpoint "
		    "of size %llu is not this log's tree (size %llu)",
		    (unsigned long long)cp.size,
		    (unsigned long long)tlogd_size(t));
		return -1;
	}
	if (witnessed.note != NULL && cp.size < witnessed.size) {
		res->status = 409;
		snprintf(res->code, sizeof(res->code), "older_checkpoint");
		snprintf(res->message, sizeof(res->message), "a checkpoint of "
		    "size %llu is cosigned already; this one is %llu",
		    (unsigned long long)witnessed.size,
		    (unsigned long long)cp.size);
		return -1;
	}
	blen = body_len(note, len);
	if ((nkeys = witness_keys(t, keys, WITNESSES_MAX)) == 0) {
		res->status = 403;
		snprintf(res->code, sizeof(res->code), "unknown_witness");
		snprintf(res->message, sizeof(res->message), "this log takes "
		    "no witnesses (neither `witness` settings nor "
		    "DATA_DIR/tlog/witnesses list any)");
		return -1;
	}
	/* The body signed again (Ed25519 is deterministic: the same line),
	 * then each witness's line from this note, else from the one kept
	 * when it is the same checkpoint. */
	same = witnessed.note != NULL && witnessed.body_len == blen &&
	    memcmp(witnessed.note, note, blen) == 0;
	if ((signed_note = tlogd_sign(t, note, blen, &nlen)) == NULL)
		goto nomem;
	total = nlen;
	if ((out = malloc(nlen + nkeys * sizeof(line) + 1)) == NULL)
		goto nomem;
	memcpy(out, signed_note, nlen);
	for (i = 0; i < nkeys; i++) {
		size_t n = 0;
		r = tally_tlog_cosig_verify(note, len, &keys[i], &ts, &err);
		if (r == -1) {
			res->status = 422;
			snprintf(res->code, sizeof(res->code),
			    "bad_cosignature");
			snprintf(res->message, sizeof(res->message), "%s",
			    err.message);
			goto fail;
		}
		if (r == 1 && (n = witness_line(note, len, blen, &keys[i],
		    line, sizeof(line))) > 0) {
			res->added++;
		} else if (!same || (n = witness_line(witnessed.note,
		    witnessed.len, witnessed.body_len, &keys[i], line,
		    sizeof(line))) == 0)
			continue;
		memcpy(out + total, line, n);
		total += n;
		res->witnesses++;
	}
	out[total] = '\0';
	if (res->added == 0) {
		res->status = 403;
		snprintf(res->code, sizeof(res->code), "unknown_witness");
		snprintf(res->message, sizeof(res->message), "the note carries "
		    "no cosignature by a witness this log takes (listed in "
		    "DATA_DIR/tlog/witnesses)");
		goto fail;
	}
	free(witnessed.note);
	witnessed.note = out;
	witnessed.len = total;
	witnessed.body_len = blen;
	witnessed.size = cp.size;
	res->size = cp.size;
	res->status = 201;
	free(signed_note);
	/* Kept across restarts; not synced: a witness sends it again. */
	{
		char path[4096], tmp[4096];
		FILE *f;
		snprintf(path, sizeof(path), "%s/witnessed", tlogd_dir(t));
		snprintf(tmp, sizeof(tmp), "%s/.witnessed.tmp", tlogd_dir(t));
		if ((f = fopen(tmp, "w")) == NULL ||
		    fwrite(out, 1, total, f) != total || fclose(f) != 0 ||
		    rename(tmp, path) == -1)
			log_warn("%s", path);
	}
	log_info("transparency log: checkpoint of size %llu cosigned by %u "
	    "witness%s", (unsigned long long)cp.size, res->witnesses,
	    res->witnesses == 1 ? "" : "es");
	return 0;
nomem:
	res->status = 503;
	snprintf(res->code, sizeof(res->code), "out_of_memory");
	snprintf(res->message, sizeof(res->message), "out of memory");
fail:
	free(signed_note);
	free(out);
	return -1;
}

const char *
tlog_witness_note(struct tlogd *t, size_t *len)
{
	witnessed_load(t);
	*len = witnessed.len;
	return witnessed.note;
}

const char *
tlog_witness_on(struct tlogd *t, const char *note, size_t len,
    size_t *outlen)
{
	witnessed_load(t);
	*outlen = len;
	if (witnessed.note == NULL || witnessed.body_len != body_len(note,
	    len) || memcmp(witnessed.note, note, witnessed.body_len) != 0)
		return note;
	*outlen = witnessed.len;
	return witnessed.note;
}

void
tlog_witness_finish(void)
{
	free(witnessed.note);
	memset(&witnessed, 0, sizeof(witnessed));
	free(pushed.keys);
	memset(&pushed, 0, sizeof(pushed));
}

void
tlog_witness_set_keys(const struct tally_tlog_key *keys, size_t n)
{
	struct tally_tlog_key *k = NULL;

	if (n > 0 && (k = calloc(n, sizeof(*k))) == NULL) {
		log_warnx("out of memory: the witnesses' cosignatures are "
		    "not taken");
		n = 0;
	}
	if (n > 0)
		memcpy(k, keys, n * sizeof(*k));
	free(pushed.keys);
	pushed.keys = k;
	pushed.n = n;
}
