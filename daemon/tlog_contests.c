/*
 * tlog_contests.c - the transparency log of every further contest
 * (tlog_contests.h): opened beside the first contest's at start and by a
 * reload that adds a contest, closed at exit or when a reload removes one.
 *
 * Why one log per contest rather than one for all: a contest's versions
 * are its own (its bytes and ETags never move while another is posted), so
 * "tree size = version" holds for each contest's log and a receipt, a
 * Tally-Log-Size header or /v1/contests/{c}/versions/{n} all name the
 * contest's own version; and a contest's log replays against its own
 * definition alone.
 *
 * Loop thread only [L].
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tally/tally.h>

#include "config.h"
#include "contests.h"
#include "core.h"
#include "journal.h"
#include "log.h"
#include "tlog_contests.h"
#include "tlogd.h"
#include "util.h"

/* What a reload needs to open a log as the start did. [L] */
static struct {
	char		*data_dir;
	char		*key_path;	/* log_key, or DATA_DIR/tlog/key */
	bool		 sync_to_sign;
	bool		 on;		/* logs are kept (transparency_log) */
	struct tlogd	**v;		/* the further contests' logs */
	size_t		 n, cap;
} tc;

static int
keep(struct tlogd *t)
{
	if (tc.n == tc.cap) {
		size_t ncap = tc.cap ? tc.cap * 2 : 8;
		struct tlogd **nv = realloc(tc.v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -1;
		tc.v = nv;
		tc.cap = ncap;
	}
	tc.v[tc.n++] = t;
	return 0;
}

/* Contest c's log, in DATA_DIR/contests/<id>/tlog: open, not attached. */
static struct tlogd *
open_one(struct core *c, const char *path, struct tally_diag *diag)
{
	const char *id = core_election(c)->id;
	char dir[4096];
	struct tlogd *t;

	snprintf(dir, sizeof(dir), "%s/contests/%s", tc.data_dir, id);
	if (mkdir_p(dir) == -1) {
		tally_diag_add(diag, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	/* The key exists: the first contest's log was opened first. */
	if ((t = tlogd_open(dir, tc.key_path, id, path, diag)) == NULL)
		return NULL;
	if (tlogd_set_contest(t, id) == -1) {
		tally_diag_add(diag, "out of memory opening contest %s's log",
		    id);
		tlogd_close(t);
		return NULL;
	}
	tlogd_set_sync_to_sign(t, tc.sync_to_sign);
	return t;
}

void
tlog_contests_open(struct contests *cs, struct tlogd *first,
    const struct config *cf)
{
	struct tally_diag diag;
	char key[4096];
	struct tlogd *t;
	size_t i;

	snprintf(key, sizeof(key), "%s/tlog/key", cf->data_dir);
	free(tc.data_dir);
	free(tc.key_path);
	if ((tc.data_dir = strdup(cf->data_dir)) == NULL ||
	    (tc.key_path = strdup(cf->log_key ? cf->log_key : key)) == NULL)
		fatalx("out of memory opening the transparency logs");
	/* A journal not synced per version could lose what is signed. */
	tc.sync_to_sign = cf->cluster_urls == NULL &&
	    cf->fsync_policy != JOURNAL_ALWAYS;
	tc.on = true;
	tlogd_attach(first, contests_core(cs, 0));
	tlogd_set_sync_to_sign(first, tc.sync_to_sign);
	tally_diag_init(&diag);
	for (i = 1; i < contests_count(cs); i++) {
		struct core *c = contests_core(cs, i);
		if ((t = open_one(c, contests_path(cs, i), &diag)) == NULL) {
			log_diag(&diag);
			fatalx("cannot open the transparency log of contest %s",
			    contests_id(cs, i));
		}
		if (keep(t) == -1)
			fatalx("out of memory opening the transparency logs");
		tlogd_attach(t, c);
	}
	tally_diag_finish(&diag);
}

/*
 * Is the log t, by its last signed checkpoint, another contest's than id?
 * Its origin is tallyd/<contest>/<hash>.  (A contest moved from a contest
 * line to the first place between two runs would take DATA_DIR/tlog, the
 * log of the contest that was first, as its own.)
 */
static bool
of_another(const struct tlogd *t, const char *id, char *other, size_t size)
{
	char path[4096], line[TALLY_TLOG_NAME_MAX + 2], *slash;
	size_t n = strlen(id);
	FILE *f;
	bool another = false;

	snprintf(path, sizeof(path), "%s/checkpoint", tlogd_dir(t));
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(line, sizeof(line), f) != NULL &&
	    strncmp(line, "tallyd/", 7) == 0 &&
	    (slash = strchr(line + 7, '/')) != NULL &&
	    ((size_t)(slash - line - 7) != n ||
	    strncmp(line + 7, id, n) != 0)) {
		*slash = '\0';
		snprintf(other, size, "%s", line + 7);
		another = true;
	}
	fclose(f);
	return another;
}

int
tlog_contests_started(struct contests *cs, struct tally_diag *diag)
{
	char other[TALLY_TLOG_NAME_MAX];
	struct tlogd *t;
	size_t i;

	for (i = 0; i < contests_count(cs); i++) {
		struct core *c = contests_core(cs, i);
		if ((t = tlogd_of(c)) == NULL)
			continue;
		/* With one contest its id may change at a restart (a new
		 * name, the same log: docs/VERIFY.md, "The origin"). */
		if (contests_count(cs) > 1 && of_another(t, contests_id(cs, i),
		    other, sizeof(other))) {
			tally_diag_add(diag, "%s is the transparency log of "
			    "contest %s, but contest %s is served there (the "
			    "first contest's log is DATA_DIR/tlog, the others' "
			    "DATA_DIR/contests/<id>/tlog): give the contests in "
			    "the order they had", tlogd_dir(t), other,
			    contests_id(cs, i));
			return -1;
		}
		if (i > 0 && tlogd_started(t, core_state(c)->version, false,
		    diag) == -1)
			return -1;
	}
	return 0;
}

struct tlogd *
tlog_contests_make(struct core *c, const char *path, struct tally_diag *diag,
    int *failed)
{
	struct tlogd *t;

	*failed = 0;
	if (!tc.on)
		return NULL;
	if ((t = open_one(c, path, diag)) == NULL)
		*failed = 1;
	return t;
}

void
tlog_contests_adopt(struct tlogd *t, struct core *c)
{
	struct tally_diag diag;
	uint64_t version = core_state(c)->version;
	int rc;

	if (t == NULL)
		return;
	if (keep(t) == -1)
		fatalx("out of memory adding a contest's transparency log");
	tlogd_attach(t, c);
	tally_diag_init(&diag);
	/*
	 * A log the contest left in an earlier run is checked as at a start;
	 * one holding versions the contest does not have (its journal was
	 * reset since) would give their entries to new versions: not used.
	 */
	if ((rc = tlogd_started(t, version, false, &diag)) == -1 ||
	    tlogd_size(t) > version) {
		if (rc == -1)
			log_diag(&diag);
		log_warnx("contest %s: its transparency log in %s holds %llu "
		    "entries, the contest is at version %llu: not used (move "
		    "it away and reload); its /log/ routes answer 503",
		    core_election(c)->id, tlogd_dir(t),
		    (unsigned long long)tlogd_size(t),
		    (unsigned long long)version);
		tlog_contests_retire(c);
	}
	tally_diag_finish(&diag);
}

void
tlog_contests_retire(struct core *c)
{
	struct tlogd *t = tlogd_of(c);
	size_t i;

	if (t == NULL || t == tlogd_current)
		return;
	core_set_version_hook(c, NULL, NULL);
	for (i = 0; i < tc.n; i++)
		if (tc.v[i] == t) {
			tc.v[i] = tc.v[--tc.n];
			break;
		}
	tlogd_close(t);
}

void
tlog_contests_close(void)
{
	size_t i;

	for (i = 0; i < tc.n; i++)
		tlogd_close(tc.v[i]);
	free(tc.v);
	free(tc.data_dir);
	free(tc.key_path);
	memset(&tc, 0, sizeof(tc));
}

int
tlog_contests_receipt(const struct core *c, uint64_t version,
    uint64_t *index, char *b64)
{
	struct tlogd *t = tlogd_of(c);
	uint8_t leaf[TALLY_TLOG_HASH];

	if (!tlogd_ok(t) || version == 0 ||
	    tlogd_leaf(t, version - 1, leaf) == -1)
		return -1;
	tally_tlog_b64_encode(leaf, sizeof(leaf), b64);
	*index = version - 1;
	return 0;
}
