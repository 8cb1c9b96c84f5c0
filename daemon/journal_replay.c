/*
 * journal_replay.c - the journal's segments at start: list them, replay
 * each record through the core, cut a torn tail, refuse (or, with --repair,
 * cut at) damage in the middle or at the end, and open the journal for
 * appending (journal_open).  Runs on the main thread before the loop and the
 * writer start: every field of struct journal is still the loop's here.
 * What the writer does afterwards is journal.c.
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

#include <jansson.h>

#include "journal.h"
#include "log.h"
#include "util.h"
#include "journal_int.h"

/*
 * --repair: what a cut drops is saved to DATA_DIR/repair-<offset>-<name>.cut
 * (mode 0600) before the segment is truncated, and every intact record in
 * it is named in the log (sequence, version, provinces and revisions), so an
 * operator can see what to post again.  The highest version it held is
 * kept, so that no version number a client may have seen is reused.
 */
static void
name_dropped(const char *path, const char *buf, size_t from, size_t len,
    uint64_t *max_version)
{
	struct tally_record rec;
	char why[128];
	size_t off = from;

	while (off < len) {
		const char *m = memmem(buf + off, len - off, "TLJ1", 4);
		size_t at;
		json_t *root, *results, *entry;
		uint64_t version;
		char names[512];
		size_t i, used = 0;

		if (m == NULL)
			break;
		at = (size_t)(m - buf);
		off = at;
		if (tally_journal_scan(buf, len, &off, &rec, why, sizeof(why)) !=
		    TALLY_SCAN_RECORD) {
			off = at + 1;
			continue;
		}
		root = json_loadb(rec.payload, rec.len, 0, NULL);
		version = (uint64_t)json_integer_value(json_object_get(root,
		    "version"));
		if (version > *max_version)
			*max_version = version;
		results = json_object_get(root, "results");
		names[0] = '\0';
		json_array_foreach(results, i, entry) {
			int w = snprintf(names + used, sizeof(names) - used,
			    "%s%s revision %lld", i ? ", " : "",
			    json_string_value(json_object_get(entry, "province")),
			    (long long)json_integer_value(json_object_get(entry,
			    "revision")));
			if (w < 0 || (size_t)w >= sizeof(names) - used)
				break;
			used += (size_t)w;
		}
		log_warnx("--repair: %s drops record %" PRIu64 " (version %"
		    PRIu64 "): %s; post them again if they are still right",
		    path, rec.seq, version, names[0] ? names : "no results");
		json_decref(root);
	}
}

/*
 * A record's version and "province revision N, ..." into names (for the
 * messages that name a record); 0 when the payload says no version.
 */
static uint64_t
record_names(const char *payload, size_t len, char *names, size_t size)
{
	json_t *root = json_loadb(payload, len, 0, NULL), *entry;
	uint64_t version;
	size_t i, used = 0;

	names[0] = '\0';
	version = (uint64_t)json_integer_value(json_object_get(root,
	    "version"));
	json_array_foreach(json_object_get(root, "results"), i, entry) {
		int w = snprintf(names + used, size - used,
		    "%s%s revision %lld", i ? ", " : "",
		    json_string_value(json_object_get(entry, "province")),
		    (long long)json_integer_value(json_object_get(entry,
		    "revision")));
		if (w < 0 || (size_t)w >= size - used)
			break;
		used += (size_t)w;
	}
	json_array_foreach(json_object_get(root, "lots"), i, entry) {
		int w = snprintf(names + used, size - used, "%slot for %s",
		    used ? ", " : "", json_string_value(json_object_get(entry,
		    "province")));
		if (w < 0 || (size_t)w >= size - used)
			break;
		used += (size_t)w;
	}
	if (names[0] == '\0')
		snprintf(names, size, "no results");
	json_decref(root);
	return version;
}

static int
save_cut(const char *dir, const char *path, const char *buf, size_t from,
    size_t len, struct tally_diag *diag)
{
	char side[4600];
	const char *base = strrchr(path, '/');
	int fd;

	snprintf(side, sizeof(side), "%s/repair-%zu-%s.cut", dir, from,
	    base ? base + 1 : path);
	fd = open(side, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || journal_write_all(fd, buf + from, len - from) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1) {
		tally_diag_add(diag, "%s: cannot save what --repair cuts: %s",
		    side, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	fsync_dir(dir);
	log_warnx("--repair: the %zu bytes cut from %s are kept in %s", len - from,
	    path, side);
	return 0;
}

struct replay {
	uint64_t		 apply_from;	/* records before it are in the snapshot */
	unsigned		 flags;
	journal_apply_cb	 apply;
	void			*arg;
	struct journal_stats	*st;
	struct tally_diag	*diag;
};

/*
 * Replay one segment.  A torn tail is cut off (and synced); a corrupt record
 * in the middle stops the start, unless JOURNAL_REPAIR, which cuts there and
 * says how much was lost.  With JOURNAL_CHECK nothing on disk changes.
 * Returns 1 when the journal was cut here (later segments are lost), 0, -1.
 */
static int
replay_segment(struct journal *j, const char *path, bool last,
    struct replay *rp)
{
	struct tally_record rec;
	struct tally_error err;
	char *buf = NULL, why[128];
	size_t len = 0, off = 0, maplen = 0;
	bool check = (rp->flags & JOURNAL_CHECK) != 0;
	bool repair = (rp->flags & JOURNAL_REPAIR) != 0;
	bool cut = false;
	struct stat sb;
	int fd;
	double last_report = journal_mono_seconds();
	enum tally_scan sc;

	if ((fd = open(path, (check ? O_RDONLY : O_RDWR | O_APPEND) |
	    O_CLOEXEC)) == -1 || fstat(fd, &sb) == -1) {
		tally_diag_add(rp->diag, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	/*
	 * Map the segment instead of reading it: no copy, and pages are read
	 * ahead sequentially.  (An empty file cannot be mapped.)
	 */
	len = maplen = (size_t)sb.st_size;
	if (len > 0) {
		buf = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		if (buf == MAP_FAILED) {
			buf = NULL;
			tally_diag_add(rp->diag, "%s: mmap: %s", path,
			    strerror(errno));
			goto fail;
		}
		madvise(buf, len, MADV_SEQUENTIAL);
	}
	/*
	 * A record the callback holds (1: a part of a batch across contests,
	 * applied with its last part) is cut with the tail if its unit ends
	 * there unfinished: a torn job must not leave half a batch.
	 */
	bool held = false;
	size_t held_off = 0;
	uint64_t held_seq = 0;
	int arc;

	while ((sc = tally_journal_scan(buf, len, &off, &rec, why,
	    sizeof(why))) == TALLY_SCAN_RECORD) {
		if (rec.seq != j->next_seq) {
			snprintf(why, sizeof(why), "sequence %" PRIu64 " where %"
			    PRIu64 " was expected", rec.seq, j->next_seq);
			off = rec.offset;
			sc = TALLY_SCAN_CORRUPT;
			break;
		}
		/* A segment may begin before the snapshot's end. */
		if (rec.seq >= rp->apply_from) {
			if ((arc = rp->apply(rp->arg, rec.payload, rec.len,
			    &err)) == 1 && !held) {
				held = true;
				held_off = rec.offset;
				held_seq = rec.seq;
			} else if (arc == 0)
				held = false;
			if (arc == -1) {
				char names[512];
				uint64_t version = record_names(rec.payload,
				    rec.len, names, sizeof(names));
				/*
				 * Intact but not applicable (a definition
				 * edited since, or an engine bug): every start
				 * would stop here.  The record was applied
				 * whole or not at all, so --repair can cut the
				 * journal at it like at a corrupt record.
				 */
				if (repair && err.kind != TALLY_ERROR_NOMEM) {
					snprintf(why, sizeof(why), "record %"
					    PRIu64 " (version %" PRIu64 ": %.40s) "
					    "cannot be applied: %.40s", rec.seq,
					    version, names, err.code);
					log_warnx("%s: record %" PRIu64 " at "
					    "offset %zu cannot be applied: %s: %s",
					    path, rec.seq, rec.offset, err.code,
					    err.message);
					off = rec.offset;
					/* Parts of a batch before it go too. */
					if (held) {
						off = held_off;
						j->next_seq = held_seq;
					}
					sc = TALLY_SCAN_CORRUPT;
					break;
				}
				tally_diag_add(rp->diag, "%s: record %" PRIu64
				    " (version %" PRIu64 ": %s) at offset %zu "
				    "cannot be applied: %s%s%s: %s.  Refusing "
				    "to start: every start would stop at this "
				    "record.  Either fix the election definition "
				    "(was it changed since the record was "
				    "written?) and start again, or start with "
				    "--repair to cut the journal at this record "
				    "(add -n to see what it would cut; what is "
				    "cut is kept beside the journal and every "
				    "lost version is named)", path, rec.seq,
				    version, names, rec.offset, err.code,
				    err.field[0] ? " at " : "", err.field,
				    err.message);
				goto fail;
			}
			rp->st->records++;
		}
		j->next_seq++;
		{
			uint64_t v = journal_payload_version(rec.payload, rec.len);
			if (v > rp->st->end_version)
				rp->st->end_version = v;
		}
		if (journal_mono_seconds() - last_report > 2.0) {
			last_report = journal_mono_seconds();
			log_info("replaying %s: %zu of %zu bytes, %llu records",
			    path, off, len, (unsigned long long)rp->st->records);
		}
	}
	if (sc == TALLY_SCAN_TORN && !last) {
		/* Only the newest segment can have been cut short. */
		sc = TALLY_SCAN_CORRUPT;
	}
	if (held && (sc == TALLY_SCAN_END || sc == TALLY_SCAN_TORN)) {
		/*
		 * The job of a batch across contests was written in one
		 * write, in one segment; it ends unfinished here only if
		 * that write was torn: the tail from its first part goes.
		 * Before another segment it is damage.
		 */
		snprintf(why, sizeof(why), "an unfinished batch across "
		    "contests from sequence %" PRIu64, held_seq);
		off = held_off;
		j->next_seq = held_seq;
		sc = last ? TALLY_SCAN_TORN : TALLY_SCAN_CORRUPT;
	}
	if (sc == TALLY_SCAN_TORN && j->next_seq < j->ack_seq) {
		/*
		 * What looks torn was acknowledged: the record at this offset
		 * (sequence next_seq) is below the high-water mark, so it was
		 * durable when its request was answered.  Damage, not a torn
		 * write: refuse, or with --repair cut here and name the loss.
		 */
		char torn[64];
		snprintf(torn, sizeof(torn), "%.60s", why);
		snprintf(why, sizeof(why), "%.60s; but records up to sequence %"
		    PRIu64 " were acknowledged", torn, j->ack_seq - 1);
		if (!repair) {
			tally_diag_add(rp->diag, "%s: damage at offset %zu, not "
			    "a torn write: the journal ends before sequence %" PRIu64
			    " but records up to sequence %" PRIu64 " (version %"
			    PRIu64 ") were acknowledged (%s " JOURNAL_ACK_FILE "); %"
			    PRIu64 " acknowledged records are lost, versions %"
			    PRIu64 " to %" PRIu64 ".  Refusing to start.  "
			    "Restore the journal from a copy, or start with "
			    "--repair to accept the loss (every lost version "
			    "is named in the log and never reused)", path, off,
			    j->next_seq, j->ack_seq - 1, j->ack_version, j->dir,
			    j->ack_seq - j->next_seq, rp->st->end_version + 1,
			    j->ack_version);
			goto fail;
		}
		sc = TALLY_SCAN_CORRUPT;
	}
	if (sc == TALLY_SCAN_TORN || (sc == TALLY_SCAN_CORRUPT && repair)) {
		if (sc == TALLY_SCAN_TORN)
			log_warnx("%s: torn tail at offset %zu (%s): %s %zu bytes "
			    "that were never acknowledged (%s)", path, off, why,
			    check ? "a start would drop" : "dropping", len - off,
			    j->ack_seq > 0 ? "past the acknowledged mark" :
			    "no acknowledged mark in this data dir to prove it");
		else
			log_warnx("%s: --repair: corrupt record at offset %zu "
			    "(%s): %s the journal there; %zu bytes after it are "
			    "lost (records from sequence %" PRIu64 " on)%s",
			    path, off, why, check ? "would cut" : "cutting",
			    len - off, j->next_seq, last ? "" :
			    ", and so are the segments after this one");
		if (sc == TALLY_SCAN_CORRUPT) {
			name_dropped(path, buf, off, len, &rp->st->repair_max_version);
			if (!check && save_cut(j->dir, path, buf, off, len,
			    rp->diag) == -1)
				goto fail;
		}
		if (!check && (ftruncate(fd, (off_t)off) == -1 ||
		    fsync(fd) == -1)) {
			tally_diag_add(rp->diag, "%s: cannot truncate to %zu: %s",
			    path, off, strerror(errno));
			goto fail;
		}
		rp->st->bytes_dropped += len - off;
		len = off;
		if (sc == TALLY_SCAN_CORRUPT && !last) {
			rp->st->repair_cut = true;
			cut = true;
		}
	} else if (sc == TALLY_SCAN_CORRUPT) {
		tally_diag_add(rp->diag, "%s: corrupt record at offset %zu (%s); "
		    "%zu bytes follow it.  Refusing to start: results after "
		    "this point would be lost.  Inspect the file, or start "
		    "with --repair to cut the journal at this offset (add -n "
		    "to see what it would cut)", path, off, why, len - off);
		goto fail;
	}
	rp->st->bytes += len;
	if (buf != NULL)
		munmap(buf, maplen);
	if ((last || cut) && !check) {
		/* Appends continue here: the cut segment becomes the last. */
		if (j->fd != -1)
			close(j->fd);
		j->fd = fd;
		j->size = (off_t)len;
		snprintf(j->path, sizeof(j->path), "%s", path);
		if (lseek(fd, 0, SEEK_END) == -1) {
			tally_diag_add(rp->diag, "%s: lseek: %s", path,
			    strerror(errno));
			return -1;
		}
	} else
		close(fd);
	return cut ? 1 : 0;
fail:
	if (buf != NULL)
		munmap(buf, maplen);
	close(fd);
	return -1;
}

/*
 * After replay: the journal must reach the acknowledged high-water mark.  A
 * journal that ends, at a record boundary, before it lost acknowledged
 * records (a file cut short, a segment's end overwritten): refuse, or with
 * --repair name every lost version and keep the mark's version, so that the
 * version record skip_versions writes moves past all of them.  A torn or
 * corrupt last record below the mark was already handled in replay_segment.
 */
static int
ack_check(struct journal *j, struct replay *rp, bool nothing)
{
	bool repair = (rp->flags & JOURNAL_REPAIR) != 0;
	uint64_t v;

	if (j->next_seq >= j->ack_seq)
		return 0;
	if (nothing && (rp->flags & JOURNAL_EMPTY_OK)) {
		/* --empty: a new tally on purpose (and a new epoch). */
		log_warnx("--empty: records up to version %" PRIu64 " were "
		    "acknowledged in this data dir; the new tally starts "
		    "afresh", j->ack_version);
		j->ack_seq = j->ack_version = 0;
		return 0;
	}
	if (!repair && !rp->st->repair_cut) {
		tally_diag_add(rp->diag, "%s: the journal ends before sequence %"
		    PRIu64 " (version %" PRIu64 "), but records up to sequence %"
		    PRIu64 " (version %" PRIu64 ") were acknowledged (%s/"
		    JOURNAL_ACK_FILE "): %" PRIu64 " acknowledged records are lost, "
		    "versions %" PRIu64 " to %" PRIu64 ".  This is damage (a "
		    "file cut short or overwritten), not a torn write.  "
		    "Refusing to start.  Restore the journal from a copy, or "
		    "start with --repair to accept the loss (every lost "
		    "version is named in the log and never reused)",
		    j->path[0] ? j->path : j->dir, j->next_seq,
		    rp->st->end_version, j->ack_seq - 1, j->ack_version, j->dir,
		    j->ack_seq - j->next_seq, rp->st->end_version + 1,
		    j->ack_version);
		return -1;
	}
	rp->st->lost_records = j->ack_seq - j->next_seq;
	log_warnx("--repair: DAMAGE: the journal ends before sequence %"
	    PRIu64 " but records up to sequence %" PRIu64 " were acknowledged: %"
	    PRIu64 " acknowledged records are lost, versions %" PRIu64 " to %"
	    PRIu64 "; the feeds they held must be posted again", j->next_seq,
	    j->ack_seq - 1, j->ack_seq - j->next_seq, rp->st->end_version + 1,
	    j->ack_version);
	for (v = rp->st->end_version + 1; v <= j->ack_version; v++)
		log_warnx("--repair: acknowledged version %" PRIu64 " is lost",
		    v);
	if (j->ack_version > rp->st->repair_max_version)
		rp->st->repair_max_version = j->ack_version;
	return 0;
}

struct journal *
journal_open(const char *dir, enum journal_policy policy, long batch_ms,
    uint64_t first_seq, unsigned flags, journal_apply_cb apply, void *arg,
    struct journal_stats *st, struct tally_diag *diag)
{
	struct journal *j;
	struct replay rp = { first_seq, flags, apply, arg, st, diag };
	bool check = (flags & JOURNAL_CHECK) != 0;
	uint64_t *nums = NULL;
	char prev[64];
	size_t n = 0, i, start = 0;
	double t0 = journal_mono_seconds();

	if ((j = calloc(1, sizeof(*j))) == NULL || (j->dir = strdup(dir)) == NULL) {
		tally_diag_add(diag, "out of memory");
		free(j);
		return NULL;
	}
	j->fd = -1;
	j->ack_fd = -1;
	j->wake[0] = j->wake[1] = -1;
	j->policy = policy;
	j->batch_ms = batch_ms > 0 ? batch_ms : 1000;
	j->next_seq = first_seq;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
#ifdef TALLYD_FAILPOINTS
	if (!check)
		journal_read_failpoints(j);
#endif

	/* Segment files "journal-<seq, 16 hex>.log", by first sequence. */
	if (list_numbered(dir, "journal-", ".log", &nums, &n) == -1) {
		tally_diag_add(diag, "%s: cannot list: %s", dir, strerror(errno));
		goto fail;
	}
	if (journal_ack_read(dir, &j->ack_seq, &j->ack_version) == -1)
		j->ack_seq = j->ack_version = 0;
	/*
	 * Segments wholly before the snapshot (the next one starts at or
	 * before its end) are left by a crash between writing it and pruning:
	 * remove them.  The segment the snapshot ends in is replayed from its
	 * start, applying only the records after the snapshot.
	 */
	while (start + 1 < n && nums[start + 1] <=
	    first_seq) {
		char path[4300];
		snprintf(path, sizeof(path), "%s/journal-%016" PRIx64 ".log", dir,
		    nums[start]);
		if (!check) {
			log_info("%s is covered by the snapshot; removing it", path);
			if (unlink(path) == -1)
				log_warn("cannot remove %s", path);
		}
		start++;
	}
	if (start < n) {
		uint64_t first = nums[start];
		if (first < first_seq)
			j->next_seq = first;
	}
	for (i = start; i < n; i++) {
		char path[4300];
		uint64_t first = nums[i];
		int rc;

		snprintf(path, sizeof(path), "%s/journal-%016" PRIx64 ".log", dir,
		    nums[i]);
		if (i > 0)
			snprintf(prev, sizeof(prev), "journal-%016" PRIx64 ".log",
			    nums[i - 1]);
		if (st->repair_cut) {
			char lost[4400], *lbuf;
			size_t llen;
			snprintf(lost, sizeof(lost), "%s.lost", path);
			if (tally_read_file(path, &lbuf, &llen) == 0) {
				name_dropped(path, lbuf, 0, llen,
				    &st->repair_max_version);
				free(lbuf);
			}
			log_warnx("--repair: %s comes after the cut; %s %s", path,
			    check ? "would rename it to" : "renamed to", lost);
			if (!check && rename(path, lost) == -1)
				log_warn("rename %s", path);
			continue;
		}
		if (first > j->next_seq && i > start) {
			/*
			 * The segment before this one ends early.  It was
			 * complete when this one began (rotation syncs it
			 * first), so this is no torn write: acknowledged
			 * records are gone from its end.
			 */
			if (flags & JOURNAL_REPAIR) {
				log_warnx("--repair: DAMAGE: %s/%s ends before "
				    "sequence %" PRIu64 " but %s begins at %"
				    PRIu64 ": records %" PRIu64 " to %" PRIu64
				    " are lost; cutting the journal there",
				    dir, prev, j->next_seq, path, first,
				    j->next_seq, first - 1);
				st->repair_cut = true;
				i--;	/* this segment again, after the cut */
				continue;
			}
			tally_diag_add(diag, "%s/%s: damage: it ends before "
			    "sequence %" PRIu64 " but the next segment, %s, "
			    "begins at %" PRIu64 ": records %" PRIu64 " to %"
			    PRIu64 " are missing from its end (a segment "
			    "followed by a later one was complete when the "
			    "later one began: this is no torn write).  "
			    "Refusing to start.  Restore it from a copy, or "
			    "start with --repair to cut the journal there (the "
			    "later segments are renamed .lost and every lost "
			    "version is named)", dir, prev, j->next_seq,
			    path, first, j->next_seq, first - 1);
			goto fail;
		}
		if (first != j->next_seq) {
			if (i == start && first_seq == 1)
				tally_diag_add(diag, "%s: starts at sequence %"
				    PRIu64 ", but there is no snapshot to cover "
				    "the records before it: was a snapshot-*.snap "
				    "file removed from %s?  Put it back, or move "
				    "the journal away to start empty", path, first,
				    dir);
			else
				tally_diag_add(diag, "%s: starts at sequence %"
				    PRIu64 " but %" PRIu64 " was expected: the "
				    "segment journal-%016" PRIx64 ".log (or a "
				    "snapshot covering it) is missing from %s; "
				    "put it back before starting", path, first,
				    j->next_seq, j->next_seq, dir);
			goto fail;
		}
		rc = replay_segment(j, path, i + 1 == n, &rp);
		if (rc == -1)
			goto fail;
		st->segments++;
	}
	if (j->next_seq < first_seq) {
		/*
		 * The journal ends inside the snapshot: what it lacks, the
		 * snapshot holds.  Appends go to a new segment at the
		 * snapshot's sequence; appended to this one they would leave
		 * a gap in its sequence, which the next start takes for
		 * corruption.  (This segment, wholly before the snapshot, is
		 * removed at the next start.)
		 */
		j->next_seq = first_seq;
		if (!check && j->fd != -1) {
			close(j->fd);
			j->fd = -1;
		}
	}
	/*
	 * A data dir that once had a journal and now has neither a segment
	 * nor a snapshot lost them (a wrong volume mounted, files deleted):
	 * starting empty would serve an empty tally as if nothing had been
	 * counted.  Only on purpose.
	 */
	{
		char marker[4300];
		snprintf(marker, sizeof(marker), "%s/journal.started", dir);
		if (n == 0 && first_seq == 1 && access(marker, F_OK) == 0 &&
		    !(flags & JOURNAL_EMPTY_OK)) {
			tally_diag_add(diag, "%s had a journal (%s is there), but "
			    "no journal segment and no snapshot is left: restore "
			    "them from a backup, or start with --empty to begin "
			    "an empty tally on purpose", dir, marker);
			goto fail;
		}
		if (!check && access(marker, F_OK) == -1) {
			int mfd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			if (mfd == -1 || fsync(mfd) == -1)
				log_warn("cannot create %s", marker);
			if (mfd != -1)
				close(mfd);
			fsync_dir(dir);
		}
	}
	if (ack_check(j, &rp, n == 0 && first_seq == 1) == -1)
		goto fail;
	free(nums);
	nums = NULL;
	st->seconds = journal_mono_seconds() - t0;
	if (check)
		return j;
	if (j->fd == -1) {
		struct result res;
		memset(&res, 0, sizeof(res));
		if (journal_open_segment(j, j->next_seq, &res) == -1) {
			tally_diag_add(diag, "%s", res.what);
			goto fail;
		}
	}
	{
		char ack[4300];
		snprintf(ack, sizeof(ack), "%s/" JOURNAL_ACK_FILE, dir);
		if ((j->ack_fd = open(ack, O_RDWR | O_CREAT | O_CLOEXEC,
		    0600)) == -1)
			log_warn("%s: cannot open; damage at the journal's end "
			    "will not be told from a torn write", ack);
		/* Past a --repair the version record moves the mark; a
		 * mark from before this feature, or behind, moves now. */
		if (j->ack_fd != -1 && !(flags & JOURNAL_REPAIR && 
		    st->lost_records > 0) && j->next_seq >= j->ack_seq)
			journal_ack_write(j, j->next_seq, st->end_version);
	}
	if (pipe2(j->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		tally_diag_add(diag, "pipe: %s", strerror(errno));
		goto fail;
	}
	return j;
fail:
	free(nums);
	journal_close(j);
	return NULL;
}
