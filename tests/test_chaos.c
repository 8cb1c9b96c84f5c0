/*
 * test_chaos.c - fail the Nth allocation, for every N, through the election
 * loader and the whole feed path (parse, check, apply, journal record,
 * replay, render), as jansson's test_chaos does.
 *
 * libtally's own allocations are wrapped at link time (-Wl,--wrap=malloc,
 * ...: tests/meson.build) and jansson's go through json_set_alloc_funcs, so
 * one counter sees them all.  For each N the allocation number N fails and
 * the run must end cleanly: an error (with a message) or success, never a
 * crash (the ASan build runs this too), and the tally must then be exactly
 * the state before the feed or exactly the state after it: never a half.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

static long fail_at = -1;	/* the allocation that fails; -1: none */
static long allocs;

static bool
fails(void)
{
	return fail_at >= 0 && ++allocs == fail_at;
}

void	*__real_malloc(size_t);
void	*__real_calloc(size_t, size_t);
void	*__real_realloc(void *, size_t);
void	*__wrap_malloc(size_t);
void	*__wrap_calloc(size_t, size_t);
void	*__wrap_realloc(void *, size_t);

void *
__wrap_malloc(size_t n)
{
	return fails() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
	return fails() ? NULL : __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
	return fails() ? NULL : __real_realloc(p, n);
}

static void
arm(long n)
{
	fail_at = n;
	allocs = 0;
}

/* Was allocation N reached in the last run?  (If not, every N is done.) */
static bool
reached(void)
{
	bool r = allocs >= fail_at;

	fail_at = -1;
	return r;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL) {
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static char *
dump(struct tally_election *e)
{
	json_t *j = tally_election_dump(e);
	char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);

	json_decref(j);
	return s;
}

static void
chaos_loader(const char *path)
{
	struct tally_election *ref, *e;
	struct tally_diag diag;
	char *want, *got;
	long n, failures = 0;

	tally_diag_init(&diag);
	ref = tally_election_load(path, &diag);
	CHECK(ref != NULL, "%s loads", path);
	tally_diag_finish(&diag);
	if (ref == NULL)
		return;
	want = dump(ref);
	for (n = 1;; n++) {
		tally_diag_init(&diag);
		arm(n);
		e = tally_election_load(path, &diag);
		if (!reached()) {
			CHECK(e != NULL, "loads without failures");
			tally_election_destroy(e);
			tally_diag_finish(&diag);
			break;
		}
		if (e == NULL) {
			failures++;
			CHECK(diag.count > 0 || diag.nomem,
			    "allocation %ld: a failed load says why", n);
		} else {
			/* Survived the failure: then it must be whole. */
			got = dump(e);
			CHECK(got != NULL && strcmp(got, want) == 0,
			    "allocation %ld: a load that succeeds is complete", n);
			if (getenv("CHAOS_DEBUG") && got && strcmp(got, want)) {
				size_t i = 0;
				while (got[i] == want[i])
					i++;
				fprintf(stderr, "  differs at %zu: got ...%.80s\n  want ...%.80s\n",
				    i, got + (i > 40 ? i - 40 : 0), want + (i > 40 ? i - 40 : 0));
			}
			free(got);
		}
		tally_election_destroy(e);
		tally_diag_finish(&diag);
	}
	printf("loader: %ld allocations, each failed once (%ld loads "
	    "failed)\n", n - 1, failures);
	free(want);
	tally_election_destroy(ref);
}

/* A state with every province of results.json but the last applied. */
static struct tally_state *
base_state(const struct tally_election *e, json_t *results, size_t upto)
{
	struct tally_state *s = tally_state_create(e);
	struct tally_error err;
	size_t i;

	for (i = 0; s != NULL && i < upto; i++) {
		struct tally_feed *f = tally_feed_parse(e, NULL,
		    json_array_get(results, i), "", &err);
		if (f == NULL || tally_state_apply(s, f, "2019-04-28T20:00:00Z",
		    &err) == -1)
			abort();
		tally_state_bump(s);
	}
	return s;
}

static char *
render(const struct tally_state *s)
{
	return tally_render_leaderboard_text(s, "t");
}

/*
 * One POST's way through libtally: the body scanned (or parsed), checked,
 * encoded as a journal record, applied; then the record replayed into a
 * second state, and the views rendered.  0 when it all went through.
 */
static int
feed_path(const struct tally_election *e, struct tally_state *s,
    struct tally_state *replica, const char *pid, const char *body)
{
	struct tally_error err;
	struct tally_feed *f;
	enum tally_check chk;
	char *rec = NULL, *view;
	size_t reclen;
	json_t *j;
	int rc = -1;

	if ((f = tally_feed_scan(e, pid, body, strlen(body))) == NULL) {
		/* As the daemon parses a body the scanner leaves to jansson. */
		unsigned long nomem = tally_json_failures();
		json_error_t jerr;
		j = json_loads(body, JSON_REJECT_DUPLICATES, &jerr);
		if (tally_json_failures() != nomem) {
			json_decref(j);
			return -1;
		}
		if (j == NULL)
			return -1;
		f = tally_feed_parse(e, pid, j, "", &err);
		json_decref(j);
		if (f == NULL) {
			CHECK(err.message[0] != '\0', "a refusal says why");
			return -1;
		}
	}
	if (tally_state_check(s, f, &chk, &err) == -1 ||
	    tally_journal_encode(1, s->version + 1, "2019-04-28T21:00:00Z", &f, 1,
	    &rec, &reclen) == -1) {
		tally_feed_destroy(f);
		return -1;
	}
	if (tally_state_apply(s, f, "2019-04-28T21:00:00Z", &err) == -1) {
		CHECK(err.message[0] != '\0', "a failed apply says why");
		free(rec);
		return -1;
	}
	tally_state_bump(s);
	if (tally_journal_apply(replica, rec + TALLY_JOURNAL_HEADER,
	    reclen - TALLY_JOURNAL_HEADER, &err) == 0)
		rc = 0;
	else
		rc = 1;		/* the live state has it, the replica not */
	free(rec);
	/* Views may fail to render; they never change the state. */
	free(render(s));
	view = NULL;
	if ((j = tally_render_province(s, 0, true)) != NULL)
		view = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	free(view);
	return rc;
}

static void
chaos_feed(const char *dir, bool pretty)
{
	char path[4096], *text, *body, *before, *after, *want;
	struct tally_election *e;
	struct tally_state *s, *r;
	struct tally_diag diag;
	json_t *root, *results, *last;
	const char *pid;
	size_t n;
	long k, applied = 0, refused = 0;

	snprintf(path, sizeof(path), "%s/election.json", dir);
	tally_diag_init(&diag);
	e = tally_election_load(path, &diag);
	tally_diag_finish(&diag);
	snprintf(path, sizeof(path), "%s/results.json", dir);
	text = slurp(path);
	CHECK(e != NULL && text != NULL, "%s: election and results", dir);
	if (e == NULL || text == NULL)
		goto out;
	root = json_loads(text, 0, NULL);
	results = json_object_get(root, "results");
	n = json_array_size(results);
	last = json_deep_copy(json_array_get(results, n - 1));
	pid = json_string_value(json_object_get(last, "province"));
	{
		json_t *copy = json_deep_copy(last);
		json_object_del(copy, "province");
		/*
		 * Compact: the scanner reads it.  With escapes in a note and
		 * a key, the scanner leaves the note, or the body, to jansson.
		 */
		if (pretty) {
			json_object_set_new(copy, "note", json_string(
			    "recount in caf\xc3\xa9 \"Nord\""));
			body = json_dumps(copy, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		} else
			body = json_dumps(copy, JSON_COMPACT);
		json_decref(copy);
	}
	/* The two outcomes a failure may leave: before, or after. */
	s = base_state(e, results, n - 1);
	before = render(s);
	r = base_state(e, results, n - 1);
	CHECK(feed_path(e, s, r, pid, body) == 0, "the feed path works");
	after = render(s);
	want = render(r);
	CHECK(strcmp(after, want) == 0, "replay gives the live state");
	free(want);
	tally_state_destroy(s);
	tally_state_destroy(r);
	for (k = 1;; k++) {
		char *got, *got_r;
		int rc;
		s = base_state(e, results, n - 1);
		r = base_state(e, results, n - 1);
		arm(k);
		rc = feed_path(e, s, r, pid, body);
		if (!reached()) {
			CHECK(rc == 0, "goes through without failures");
			tally_state_destroy(s);
			tally_state_destroy(r);
			break;
		}
		got = render(s);
		got_r = render(r);
		if (rc == 0) {
			applied++;
			CHECK(strcmp(got, after) == 0 && strcmp(got_r, after) == 0,
			    "allocation %ld: applied whole", k);
		} else if (rc == 1) {
			/* The replica refused the record: it is unchanged. */
			applied++;
			CHECK(strcmp(got, after) == 0 && strcmp(got_r, before) == 0,
			    "allocation %ld: replay fails whole", k);
		} else {
			refused++;
			CHECK(strcmp(got, before) == 0,
			    "allocation %ld: a refused feed leaves no trace", k);
		}
		free(got);
		free(got_r);
		tally_state_destroy(s);
		tally_state_destroy(r);
	}
	printf("feed path (%s body): %ld allocations, each failed once (%ld refused "
	    "cleanly, %ld applied)\n", pretty ? "indented" : "compact", k - 1,
	    refused, applied);
	free(before);
	free(after);
	free(body);
	json_decref(last);
	json_decref(root);
out:
	free(text);
	tally_election_destroy(e);
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: test_chaos ELECTION.json DATASET_DIR\n");
		return 2;
	}
	/* jansson's allocations through libtally's guard, and so ours. */
	tally_json_init();
	chaos_loader(argv[1]);
	chaos_feed(argv[2], false);
	chaos_feed(argv[2], true);
	return check_done("chaos");
}
