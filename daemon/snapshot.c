/*
 * snapshot.c - the whole tally in one file, so that start-up reads it
 * instead of replaying every feed of the night.
 *
 * A snapshot DATA_DIR/snapshot-<K>.snap holds everything the journal held
 * before sequence K: a header (version, election, how many revisions each
 * province has) and every revision of every province, oldest first, in the
 * journal's own CRC32C framing.  Loading it parses only each province's
 * current revision; older ones stay in the file and are read back on demand
 * for the history view, so start-up costs a checksum pass and one feed per
 * province, however long the night was.
 *
 * It is written to a temporary file, fsync'ed, renamed into place and the
 * directory fsync'ed, so a crash leaves either the old snapshot or the new
 * one.  The journal segments it covers are removed only after that.
 *
 * The header names the definition it was written under (a digest).  Loaded
 * under the same one, the current revisions, the lots and the calls are
 * the state.  Loaded under an edited one, they are not: a lot is in force
 * only if it settles the tie standing at its place in the log, and the
 * certain calls are the bounds' after each version -- both under the
 * definition in force, as the journal's replay decides them (core_replay).
 * The journal the snapshot covers may be gone, so the snapshot replays
 * itself: every revision, lot and declared call in the order of their
 * versions (replay_ordered).  So a clean restart and a kill -9 give the
 * same state, whichever way the daemon starts.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "journal.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"

struct tally_feed *
snapshot_load_revision(void *ctx, const struct tally_revision *rev,
    char *received_at)
{
	struct snapshot_store *st = ctx;
	struct tally_record rec;
	struct tally_feed *f = NULL;
	char *buf, why[96];
	size_t off = 0;

	if (st->fd == -1 || (buf = malloc(rev->len)) == NULL)
		return NULL;
	if (pread(st->fd, buf, rev->len, (off_t)rev->off) == (ssize_t)rev->len &&
	    tally_journal_scan(buf, rev->len, &off, &rec, why, sizeof(why)) ==
	    TALLY_SCAN_RECORD)
		f = tally_snapshot_decode_revision(st->election, rec.payload,
		    rec.len, received_at);
	if (f == NULL)
		log_warnx("snapshot: cannot read back the revision at offset %llu",
		    (unsigned long long)rev->off);
	free(buf);
	return f;
}

/* Append one framed record through a stdio buffer. */
static int
put_record(FILE *out, const char *rec, size_t len)
{
	return fwrite(rec, 1, len, out) == len ? 0 : -1;
}

int
snapshot_write(const char *dir, const struct tally_state *s, uint64_t next_seq,
    uint64_t chain, json_t *stamps, const struct snapshot_store *old,
    struct tally_diag *diag)
{
	const struct tally_election *e = s->election;
	char tmp[4200], final[4200], *rec = NULL, *payload = NULL;
	json_t *hdr = NULL, *counts;
	uint64_t seq = 0;
	size_t p, i, len;
	FILE *out = NULL;
	int fd = -1;

	snprintf(tmp, sizeof(tmp), "%s/snapshot-%016" PRIx64 ".tmp", dir, next_seq);
	snprintf(final, sizeof(final), "%s/snapshot-%016" PRIx64 ".snap", dir,
	    next_seq);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1 ||
	    (out = fdopen(fd, "wb")) == NULL)
		goto io;
	fd = -1;
	setvbuf(out, NULL, _IOFBF, 1 << 20);

	hdr = json_object();
	counts = json_array();
	for (p = 0; p < e->n_provinces; p++)
		json_array_append_new(counts, json_integer((json_int_t)
		    s->provinces[p].n_revisions));
	json_object_set_new(hdr, "snapshot", json_integer(1));
	json_object_set_new(hdr, "election", json_string(e->id));
	json_object_set_new(hdr, "version", json_integer((json_int_t)s->version));
	json_object_set_new(hdr, "next_seq", json_integer((json_int_t)next_seq));
	{
		char hex[24];
		snprintf(hex, sizeof(hex), "%016" PRIx64, chain);
		json_object_set_new(hdr, "chain", json_string(hex));
	}
	json_object_set_new(hdr, "counts", counts);
	{
		char hex[24];
		snprintf(hex, sizeof(hex), "%016" PRIx64,
		    definition_digest(e));
		json_object_set_new(hdr, "definition", json_string(hex));
	}
	/* Each view's stamp, so that a restart keeps its ETag (core.c). */
	if (stamps != NULL)
		json_object_set(hdr, "stamps", stamps);
	{
		/* Lots are few: the header holds them all, oldest first per
		 * province, and loading restores them after the revisions;
		 * then those the journal's replay found moot ("moot": true),
		 * kept as the journal keeps them. */
		json_t *lots = json_array();
		for (p = 0; p <= e->n_provinces; p++)
			for (i = 0; i < (p < e->n_provinces ?
			    s->provinces[p].n_lots : s->n_moot); i++) {
				const struct tally_lot *l = p < e->n_provinces ?
				    s->provinces[p].lots[i] : s->moot[i];
				json_t *order = json_array();
				size_t k;
				for (k = 0; k < l->n; k++)
					json_array_append_new(order,
					    json_string(l->order[k]));
				json_t *lj = json_pack(
				    "{sssIsossss?}", "province", l->province_id,
				    "revision", (json_int_t)l->revision,
				    "order", order, "received_at",
				    l->received_at, "by", l->by);
				if (l->version != 0 &&
				    l->version != TALLY_VERSION_UNKNOWN)
					json_object_set_new(lj, "version",
					    json_integer((json_int_t)
					    l->version));
				if (p == e->n_provinces)
					json_object_set_new(lj, "moot",
					    json_true());
				json_array_append_new(lots, lj);
			}
		if (json_array_size(lots) > 0)
			json_object_set_new(hdr, "lots", lots);
		else
			json_decref(lots);
	}
	{
		/* The calls, made and retracted (tally/calls.h). */
		json_t *calls = tally_calls_dump(s);
		if (json_array_size(calls) > 0)
			json_object_set_new(hdr, "calls", calls);
		else
			json_decref(calls);
	}
	if ((payload = json_dumps(hdr, JSON_COMPACT)) == NULL)
		goto nomem;
	len = strlen(payload);
	if ((rec = malloc(TALLY_JOURNAL_HEADER + len)) == NULL)
		goto nomem;
	memcpy(rec + TALLY_JOURNAL_HEADER, payload, len);
	if (tally_journal_frame(seq++, rec, len) == -1 ||
	    put_record(out, rec, TALLY_JOURNAL_HEADER + len) == -1)
		goto io;
	free(rec);
	rec = NULL;

	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_province_state *ps = &s->provinces[p];
		for (i = 0; i < ps->n_revisions; i++) {
			const struct tally_revision *rv = &ps->revisions[i];
			size_t rlen;
			if (rv->feed != NULL) {
				if (tally_snapshot_encode_revision(seq++, rv, &rec,
				    &rlen) == -1)
					goto nomem;
			} else {
				/* Kept in the snapshot we loaded: copy it over,
				 * framed with its new sequence number. */
				if (old == NULL || old->fd == -1 ||
				    (rec = malloc(rv->len)) == NULL)
					goto nomem;
				if (pread(old->fd, rec, rv->len, (off_t)rv->off) !=
				    (ssize_t)rv->len)
					goto io;
				rlen = rv->len;
				/*
				 * Re-framing gives the bytes a new checksum:
				 * check the old one first, or damage on disk
				 * would be certified as good.
				 */
				{
					struct tally_record chk;
					char why[96];
					size_t coff = 0;
					if (tally_journal_scan(rec, rlen, &coff,
					    &chk, why, sizeof(why)) !=
					    TALLY_SCAN_RECORD || coff != rlen) {
						errno = EIO;
						tally_diag_add(diag, "snapshot: the "
						    "stored revision at offset %llu "
						    "of the loaded snapshot is "
						    "damaged (%s)",
						    (unsigned long long)rv->off, why);
						goto io;
					}
				}
				tally_journal_frame(seq++, rec,
				    rlen - TALLY_JOURNAL_HEADER);
			}
			if (put_record(out, rec, rlen) == -1)
				goto io;
			free(rec);
			rec = NULL;
		}
	}
	if (fflush(out) != 0 || fsync(fileno(out)) == -1)
		goto io;
	if (fclose(out) != 0) {
		out = NULL;
		goto io;
	}
	out = NULL;
	if (rename(tmp, final) == -1 || fsync_dir(dir) == -1)
		goto io;
	json_decref(hdr);
	free(payload);
	return 0;
nomem:
	errno = ENOMEM;
io:
	tally_diag_add(diag, "snapshot %s: %s", tmp, strerror(errno));
	if (out != NULL)
		fclose(out);
	if (fd != -1)
		close(fd);
	unlink(tmp);
	json_decref(hdr);
	free(payload);
	free(rec);
	return -1;
}

/*
 * The header of the snapshot mapped at map (size bytes, read from path):
 * its first record, sequence 0, {"snapshot": 1, "election": id, "counts":
 * [revisions per province], ...} for election e.  The header (new) with
 * *counts borrowed from it and *off past it, or NULL with diag.  The one
 * reader of the header: loading a snapshot and adopting a new one.
 */
static json_t *
header_read(const char *path, const char *map, size_t size, size_t *off,
    const struct tally_election *e, json_t **counts, struct tally_diag *diag)
{
	struct tally_record rec;
	const char *id;
	char why[128];
	json_t *hdr;

	if (tally_journal_scan(map, size, off, &rec, why, sizeof(why)) !=
	    TALLY_SCAN_RECORD || rec.seq != 0) {
		tally_diag_add(diag, "%s: no valid header (%s)", path, why);
		return NULL;
	}
	if ((hdr = json_loadb(rec.payload, rec.len, 0, NULL)) == NULL ||
	    json_integer_value(json_object_get(hdr, "snapshot")) != 1 ||
	    !json_is_array(*counts = json_object_get(hdr, "counts"))) {
		tally_diag_add(diag, "%s: unreadable header", path);
		json_decref(hdr);
		return NULL;
	}
	id = json_string_value(json_object_get(hdr, "election"));
	if (strcmp(id ? id : "", e->id) != 0 ||
	    json_array_size(*counts) != e->n_provinces) {
		tally_diag_add(diag, "%s: a snapshot of election %s with %zu "
		    "provinces, but election %s with %zu provinces is loaded",
		    path, id, json_array_size(*counts), e->id, e->n_provinces);
		json_decref(hdr);
		return NULL;
	}
	return hdr;
}

/*
 * Lot entry l of a header: a new lot (with its time, label and version:
 * TALLY_VERSION_UNKNOWN when the writer kept none), or NULL.
 */
static struct tally_lot *
lot_read(const struct tally_election *e, const json_t *l)
{
	const struct tally_province *pv = tally_election_province(e,
	    json_string_value(json_object_get(l, "province")));
	const char *at = json_string_value(json_object_get(l, "received_at"));
	const char *by = json_string_value(json_object_get(l, "by"));
	const json_t *v = json_object_get(l, "version");
	struct tally_lot *lot = NULL;
	struct tally_error err;
	json_t *body = json_pack("{sOsO}", "revision",
	    json_object_get(l, "revision"), "order", json_object_get(l, "order"));

	if (pv != NULL && body != NULL)
		lot = tally_lot_parse(e, pv->index, body, &err);
	json_decref(body);
	if (lot == NULL)
		return NULL;
	snprintf(lot->received_at, sizeof(lot->received_at), "%s", at ? at : "");
	lot->version = json_is_integer(v) && json_integer_value(v) > 0 ?
	    (uint64_t)json_integer_value(v) : TALLY_VERSION_UNKNOWN;
	if (by != NULL && (lot->by = tally_label_clean(by)) == NULL) {
		tally_lot_destroy(lot);
		return NULL;
	}
	return lot;
}

/* One thing the snapshot's log held, for replay_ordered. */
struct event {
	uint64_t		 version;
	enum { EV_REVISION, EV_LOT, EV_CALL, EV_RETRACT } kind;
	size_t			 seq;		/* its place in the file */
	size_t			 p, k;		/* a revision: province, index */
	struct tally_feed	*f;		/* a revision (owned) */
	char			 at[40];
	uint64_t		 off;
	uint32_t		 size;
	const json_t		*j;		/* a lot, a call: the header's */
};

static int
event_cmp(const void *a, const void *b)
{
	const struct event *x = a, *y = b;

	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A version a snapshot can order by (older writers kept none). */
static bool
ordered(uint64_t v)
{
	return v != 0 && v != TALLY_VERSION_UNKNOWN;
}

/* Event i of a declared call (or its retraction), made moot or applied. */
static bool
call_apply(struct tally_state *s, const struct event *ev)
{
	const json_t *o = ev->j;
	struct tally_call_op *op;
	struct tally_error err;
	const char *by = json_string_value(json_object_get(o, "by"));
	char id[TALLY_CALL_ID_MAX];

	if (ev->kind == EV_RETRACT) {
		snprintf(id, sizeof(id), "d%llu", (unsigned long long)
		    json_integer_value(json_object_get(o, "version")));
		if ((op = tally_call_op_retract(id)) == NULL)
			return false;
	} else {
		json_t *body = json_pack("{sOsO}", "scope", json_object_get(o,
		    "scope"), "what", json_object_get(o, "what"));
		static const char *const opt[] = { "province", "coalition",
		    "note" };
		size_t i;
		for (i = 0; body != NULL && i < 3; i++)
			if (json_is_string(json_object_get(o, opt[i])))
				json_object_set(body, opt[i],
				    json_object_get(o, opt[i]));
		op = body != NULL ? tally_call_op_parse(s->election, body,
		    &err) : NULL;
		json_decref(body);
		if (op == NULL)
			return false;
		if (by != NULL && (op->by = tally_label_clean(by)) == NULL) {
			tally_call_op_destroy(op);
			return false;
		}
	}
	snprintf(op->received_at, sizeof(op->received_at), "%s", ev->at);
	return tally_calls_apply(s, op, &err) == 0;
}

/*
 * The snapshot at map (header hdr read, *off past it) loaded under another
 * definition than the one it was written under: every revision, lot and
 * declared call (and retraction) applied in the order of their versions,
 * each lot checked against the tie standing at its place (one that no
 * longer settles it is kept without effect, as replay does), the calls
 * observed after each version.  Older revisions then go back to disk.
 * 1: the snapshot keeps no versions to order by (written before they were
 * kept: nothing changed, the caller loads it as it is); 0; -1 with diag.
 */
static int
replay_ordered(const char *path, const char *map, size_t size, size_t *off,
    json_t *hdr, const json_t *counts, struct tally_state *s,
    struct journal_stats *stats, struct tally_diag *diag)
{
	const struct tally_election *e = s->election;
	json_t *lots = json_object_get(hdr, "lots"), *calls, *o;
	struct event *ev = NULL;
	struct tally_record rec;
	struct tally_error err;
	size_t n = 0, cap, i, p, start = *off;
	unsigned long moot_lots = 0, moot_calls = 0;
	uint64_t seq = 1, v;
	char why[128];
	int rc = -1;

	calls = json_object_get(hdr, "calls");
	cap = json_array_size(lots) + 2 * json_array_size(calls) + 1;
	for (p = 0; p < e->n_provinces; p++)
		cap += (size_t)json_integer_value(json_array_get(counts, p));
	if ((ev = calloc(cap, sizeof(*ev))) == NULL) {
		tally_diag_add(diag, "out of memory");
		return -1;
	}
	for (p = 0; p < e->n_provinces; p++) {
		json_int_t c = json_integer_value(json_array_get(counts, p)), k;
		for (k = 0; k < c; k++, n++) {
			enum tally_scan sc = tally_journal_scan(map, size, off,
			    &rec, why, sizeof(why));
			if (sc != TALLY_SCAN_RECORD || rec.seq != seq++) {
				tally_diag_add(diag, "%s: damaged at offset %zu "
				    "(%s).  A snapshot is written whole or not "
				    "at all, so this is damage on disk: restore "
				    "the file from a copy", path, *off,
				    sc == TALLY_SCAN_RECORD ?
				    "sequence out of order" : why);
				goto out;
			}
			ev[n].kind = EV_REVISION;
			ev[n].seq = n;
			ev[n].p = p;
			ev[n].k = (size_t)k;
			ev[n].off = rec.offset;
			ev[n].size = (uint32_t)rec.size;
			if ((ev[n].f = tally_snapshot_decode_revision(e,
			    rec.payload, rec.len, ev[n].at)) == NULL) {
				tally_diag_add(diag, "%s: the revision of %s at "
				    "offset %zu cannot be read", path,
				    e->provinces[p].id, rec.offset);
				goto out;
			}
			ev[n].version = ev[n].f->version;
			if (!ordered(ev[n].version)) {
				rc = 1;
				goto out;
			}
		}
	}
	json_array_foreach(lots, i, o) {
		json_t *jv = json_object_get(o, "version");
		if (!json_is_integer(jv) || json_integer_value(jv) < 1) {
			rc = 1;
			goto out;
		}
		ev[n].kind = EV_LOT;
		ev[n].seq = n;
		ev[n].version = (uint64_t)json_integer_value(jv);
		ev[n++].j = o;
	}
	json_array_foreach(calls, i, o) {
		const char *kind = json_string_value(json_object_get(o, "kind"));
		if (kind == NULL || strcmp(kind, "declared") != 0)
			continue;	/* the certain ones are derived again */
		ev[n].kind = EV_CALL;
		ev[n].seq = n;
		ev[n].version = (uint64_t)json_integer_value(json_object_get(o,
		    "version"));
		snprintf(ev[n].at, sizeof(ev[n].at), "%s", json_string_value(
		    json_object_get(o, "at")) ? json_string_value(
		    json_object_get(o, "at")) : "");
		ev[n].j = o;
		if (!ordered(ev[n++].version)) {
			rc = 1;
			goto out;
		}
		if (json_is_true(json_object_get(o, "retracted"))) {
			const char *rat = json_string_value(json_object_get(o,
			    "retracted_at"));
			ev[n].kind = EV_RETRACT;
			ev[n].seq = n;
			ev[n].version = (uint64_t)json_integer_value(
			    json_object_get(o, "retracted_version"));
			snprintf(ev[n].at, sizeof(ev[n].at), "%s", rat ? rat : "");
			ev[n].j = o;
			if (!ordered(ev[n++].version)) {
				rc = 1;
				goto out;
			}
		}
	}
	qsort(ev, n, sizeof(*ev), event_cmp);
	for (i = 0; i < n;) {
		/* One version: its record's feeds, then its lots (a record
		 * holds both in that order), then a call. */
		v = ev[i].version;
		s->version = v - 1;
		for (; i < n && ev[i].version == v; i++) {
			struct tally_lot *lot;
			enum tally_check chk = TALLY_CHECK_NEW;
			switch (ev[i].kind) {
			case EV_REVISION:
				if (tally_state_apply(s, ev[i].f, ev[i].at,
				    &err) == -1) {
					ev[i].f = NULL;
					tally_diag_add(diag, "%s: %s", path,
					    err.message);
					goto out;
				}
				ev[i].f = NULL;
				stats->snapshot_revisions++;
				break;
			case EV_LOT:
				if ((lot = lot_read(e, ev[i].j)) == NULL) {
					/* Its province or a list is gone:
					 * moot, as the journal's record is. */
					moot_lots++;
					break;
				}
				lot->version = v;
				if (tally_state_lot_check(s, lot, &chk, &err) ==
				    -1 || chk != TALLY_CHECK_NEW) {
					moot_lots++;
					if (tally_state_lot_keep_moot(s, lot) == -1) {
						tally_diag_add(diag, "out of memory");
						goto out;
					}
					break;
				}
				if (tally_state_lot_apply(s, lot, &err) == -1) {
					tally_diag_add(diag, "%s: %s", path,
					    err.message);
					goto out;
				}
				break;
			case EV_CALL:
			case EV_RETRACT:
				if (!call_apply(s, &ev[i]))
					moot_calls++;
				break;
			}
		}
		s->version = v;
		if (tally_calls_observe(s) == -1) {
			tally_diag_add(diag, "out of memory");
			goto out;
		}
	}
	/* Older revisions leave memory again, as a plain load leaves them. */
	for (i = 0; i < n; i++)
		if (ev[i].kind == EV_REVISION)
			tally_state_store(s, ev[i].p, ev[i].k, ev[i].off,
			    ev[i].size);
	if (moot_lots > 0 || moot_calls > 0)
		log_warnx("%s: %lu lot%s and %lu declared call%s or "
		    "retraction%s no longer settle or name anything under "
		    "this election definition (edited since): kept without "
		    "effect", path, moot_lots, moot_lots == 1 ? "" : "s",
		    moot_calls, moot_calls == 1 ? "" : "s",
		    moot_calls == 1 ? "" : "s");
	rc = 0;
out:
	for (i = 0; i < n; i++)
		tally_feed_destroy(ev[i].f);
	free(ev);
	if (rc == 1)
		*off = start;
	return rc;
}

int
snapshot_load(const char *dir, struct tally_state *s, uint64_t *next_seq,
    uint64_t *chain, json_t **stamps, struct snapshot_store *store,
    struct journal_stats *stats, struct tally_diag *diag)
{
	const struct tally_election *e = s->election;
	struct tally_record rec;
	struct tally_error err;
	struct stat sb;
	uint64_t *nums = NULL, newest = 0, seq = 0;
	char path[4200], why[128];
	size_t n = 0, i, off = 0, p;
	json_t *hdr = NULL, *counts;
	char *map = NULL;
	bool edited = false;
	int fd = -1, rc = -1;

	*next_seq = 1;
	*stamps = NULL;
	store->fd = -1;
	store->election = e;
	if (list_numbered(dir, "snapshot-", ".snap", &nums, &n) == -1) {
		tally_diag_add(diag, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++)
		if (nums[i] > newest)
			newest = nums[i];
	free(nums);
	if (n == 0)
		return 0;
	snprintf(path, sizeof(path), "%s/snapshot-%016" PRIx64 ".snap", dir,
	    newest);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &sb) == -1 ||
	    sb.st_size == 0) {
		tally_diag_add(diag, "%s: %s", path, fd == -1 || errno ?
		    strerror(errno) : "empty");
		goto out;
	}
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE |
	    MAP_POPULATE, fd, 0);
	if (map == MAP_FAILED) {
		map = NULL;
		tally_diag_add(diag, "%s: mmap: %s", path, strerror(errno));
		goto out;
	}
#define BAD(...) do { tally_diag_add(diag, __VA_ARGS__); goto out; } while (0)
	if ((hdr = header_read(path, map, (size_t)sb.st_size, &off, e, &counts,
	    diag)) == NULL)
		goto out;
	{
		const char *hex = json_string_value(json_object_get(hdr,
		    "definition"));
		/* No digest: written before it was kept; taken as it is. */
		edited = hex != NULL && strtoull(hex, NULL, 16) !=
		    definition_digest(e);
	}
	if (edited) {
		int r = replay_ordered(path, map, (size_t)sb.st_size, &off, hdr,
		    counts, s, stats, diag);
		if (r == -1)
			goto out;
		if (r == 1) {
			log_warnx("%s was written under another election "
			    "definition, before snapshots kept the versions of "
			    "lots: loaded as it is (a lot it holds is not "
			    "checked against the edited definition)", path);
			edited = false;
		} else
			log_info("%s was written under another election "
			    "definition: its revisions, lots and calls replayed "
			    "in order under this one; every view takes the "
			    "current stamp", path);
	}
	seq = 1;
	for (p = 0; !edited && p < e->n_provinces; p++) {
		json_int_t c = json_integer_value(json_array_get(counts, p));
		json_int_t k;
		for (k = 0; k < c; k++) {
			enum tally_scan sc = tally_journal_scan(map,
			    (size_t)sb.st_size, &off, &rec, why, sizeof(why));
			if (sc != TALLY_SCAN_RECORD || rec.seq != seq++)
				BAD("%s: damaged at offset %zu (%s).  A snapshot "
				    "is written whole or not at all, so this is "
				    "damage on disk: restore the file from a copy",
				    path, off, sc == TALLY_SCAN_RECORD ?
				    "sequence out of order" : why);
			if (k + 1 < c) {
				/* Older revisions stay on disk. */
				if (tally_state_add_stored(s, p, rec.offset,
				    (uint32_t)rec.size) == -1)
					BAD("out of memory");
			} else {
				char at[40];
				struct tally_feed *f = tally_snapshot_decode_revision(
				    e, rec.payload, rec.len, at);
				if (f == NULL)
					BAD("%s: the current revision of %s at "
					    "offset %zu cannot be read", path,
					    e->provinces[p].id, rec.offset);
				if (tally_state_apply(s, f, at, &err) == -1)
					BAD("%s: %s", path, err.message);
			}
			stats->snapshot_revisions++;
		}
	}
	if (off != (size_t)sb.st_size)
		BAD("%s: %zu bytes after the last province", path,
		    (size_t)sb.st_size - off);
	if (!edited) {
		json_t *lots = json_object_get(hdr, "lots"), *l;
		size_t k;
		json_array_foreach(lots, k, l) {
			struct tally_lot *lot = lot_read(e, l);
			if (lot == NULL)
				BAD("%s: lot %zu of the header cannot be read", path,
				    k);
			if (json_is_true(json_object_get(l, "moot"))) {
				if (tally_state_lot_keep_moot(s, lot) == -1)
					BAD("out of memory");
			} else if (tally_state_lot_apply(s, lot, &err) == -1)
				BAD("%s: %s", path, err.message);
		}
		if (tally_calls_load(s, json_object_get(hdr, "calls"), &err) ==
		    -1)
			BAD("%s: %s", path, err.message);
	}
	s->version = (uint64_t)json_integer_value(json_object_get(hdr, "version"));
	{
		const char *hex = json_string_value(json_object_get(hdr, "chain"));
		if (hex != NULL)
			*chain = strtoull(hex, NULL, 16);
		else {
			/*
			 * Written before validators had a history digest:
			 * start a new one, so no earlier ETag can match.
			 */
			if (getrandom(chain, sizeof(*chain), 0) !=
			    (ssize_t)sizeof(*chain))
				*chain ^= (uint64_t)time(NULL);
			log_info("%s has no history digest: validators start "
			    "afresh", path);
		}
	}
	*next_seq = (uint64_t)json_integer_value(json_object_get(hdr, "next_seq"));
	if (*next_seq != newest)
		BAD("%s: names sequence %" PRIu64 " but covers up to %" PRIu64,
		    path, newest, *next_seq);
#undef BAD
	/* The stamps were the old definition's views' (see above). */
	if (!edited && (*stamps = json_object_get(hdr, "stamps")) != NULL)
		json_incref(*stamps);
	store->fd = fd;
	fd = -1;
	stats->snapshot_bytes = (size_t)sb.st_size;
	rc = 0;
out:
	json_decref(hdr);
	if (map != NULL)
		munmap(map, (size_t)sb.st_size);
	if (fd != -1)
		close(fd);
	return rc;
}

void
snapshot_prune(const char *dir, uint64_t keep, bool journal_closed)
{
	uint64_t *nums;
	char path[4200];
	size_t n, i;

	/* Older snapshots, then the journal segments the new one covers. */
	if (list_numbered(dir, "snapshot-", ".snap", &nums, &n) == 0) {
		for (i = 0; i < n; i++) {
			if (nums[i] >= keep)
				continue;
			snprintf(path, sizeof(path), "%s/snapshot-%016" PRIx64
			    ".snap", dir, nums[i]);
			if (unlink(path) == -1)
				log_warn("cannot remove %s", path);
		}
		free(nums);
	}
	if (list_numbered(dir, "journal-", ".log", &nums, &n) == 0) {
		for (i = 0; i < n; i++) {
			/*
			 * Only a segment wholly before `keep`: the next one
			 * starts at or before it (or, once the journal is
			 * closed at `keep`, every segment that starts before).
			 * A segment the snapshot ends inside holds records
			 * it does not cover.
			 */
			if (nums[i] >= keep || (!journal_closed &&
			    (i + 1 == n || nums[i + 1] > keep)))
				continue;
			snprintf(path, sizeof(path), "%s/journal-%016" PRIx64
			    ".log", dir, nums[i]);
			if (unlink(path) == -1)
				log_warn("cannot remove %s", path);
		}
		free(nums);
	}
	fsync_dir(dir);
}

/*
 * After a snapshot up to `seq` was written: the revisions it holds that are
 * no longer current leave memory, and history reads them from the new file
 * instead (so a long night costs disk, not RAM).  The file is read first
 * and nothing changes unless all of it reads back.
 */
int
snapshot_adopt(const char *dir, uint64_t seq, struct tally_state *s,
    struct snapshot_store *store, size_t *stored, struct tally_diag *diag)
{
	const struct tally_election *e = s->election;
	struct tally_record rec;
	struct stat sb;
	struct { size_t p, i; uint64_t off; uint32_t len; } *todo = NULL;
	size_t n = 0, cap = 0, off = 0, p, k;
	char path[4200], why[128];
	json_t *hdr = NULL, *counts;
	char *map = NULL;
	int fd, rc = -1;

	*stored = 0;
	snprintf(path, sizeof(path), "%s/snapshot-%016" PRIx64 ".snap", dir, seq);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &sb) == -1 ||
	    sb.st_size == 0) {
		tally_diag_add(diag, "%s: %s", path, strerror(errno ? errno : EIO));
		goto out;
	}
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		map = NULL;
		tally_diag_add(diag, "%s: mmap: %s", path, strerror(errno));
		goto out;
	}
	if ((hdr = header_read(path, map, (size_t)sb.st_size, &off, e, &counts,
	    diag)) == NULL)
		goto out;
	for (p = 0; p < e->n_provinces; p++) {
		size_t c = (size_t)json_integer_value(json_array_get(counts, p));
		for (k = 0; k < c; k++) {
			if (tally_journal_scan(map, (size_t)sb.st_size, &off, &rec,
			    why, sizeof(why)) != TALLY_SCAN_RECORD) {
				tally_diag_add(diag, "%s: damaged at offset %zu (%s)",
				    path, off, why);
				goto out;
			}
			/* Revisions only grow: index k is the same revision. */
			if (k >= s->provinces[p].n_revisions ||
			    k + 1 >= s->provinces[p].n_revisions)
				continue;
			if (n == cap) {
				void *nt;
				cap = cap ? cap * 2 : 1024;
				if ((nt = realloc(todo, cap * sizeof(*todo))) == NULL) {
					tally_diag_add(diag, "out of memory");
					goto out;
				}
				todo = nt;
			}
			todo[n].p = p;
			todo[n].i = k;
			todo[n].off = rec.offset;
			todo[n++].len = (uint32_t)rec.size;
		}
	}
	for (k = 0; k < n; k++)
		tally_state_store(s, todo[k].p, todo[k].i, todo[k].off,
		    todo[k].len);
	*stored = n;
	snapshot_store_close(store);
	store->fd = fd;
	fd = -1;
	rc = 0;
out:
	free(todo);
	json_decref(hdr);
	if (map != NULL)
		munmap(map, (size_t)sb.st_size);
	if (fd != -1)
		close(fd);
	return rc;
}

void
snapshot_store_close(struct snapshot_store *store)
{
	if (store->fd != -1)
		close(store->fd);
	store->fd = -1;
}
