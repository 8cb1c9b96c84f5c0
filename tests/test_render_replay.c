/*
 * test_render_replay.c - the leaderboard the transparency log hashes at
 * every version, written from the definition's pieces (lib/jsontext.c,
 * escaped once when it is loaded) and ranked by the merge sort, must be
 * byte for byte what the piece-by-piece writer (a definition without
 * pieces, ranked by qsort: the rows' order is in the bytes) and jansson
 * give: at every version of every
 * real election in each ELECTIONS_DIR, posted in file order, then every
 * province corrected in reverse order with every count lowered (rankings
 * change, ties at zero come and go).
 *
 * Usage: test_render_replay ELECTIONS_DIR...
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

static unsigned long versions;

/* The leaderboard of s with and without e's pieces; the same bytes. */
static void
compare_version(struct tally_election *e, struct tally_state *s,
    const char *what)
{
	struct tally_lb_pieces *lp = e->lb_pieces;
	size_t nlen = 0, olen = 0;
	char *got, *old, *text, *want;
	json_t *j;

	got = tally_tlog_leaderboard(s, &nlen);
	text = tally_render_leaderboard_text(s, s->updated_at);
	e->lb_pieces = NULL;
	old = tally_tlog_leaderboard(s, &olen);
	e->lb_pieces = lp;
	j = tally_render_leaderboard(s, s->updated_at);
	want = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII |
	    JSON_REAL_PRECISION(10));
	CHECK(got != NULL && old != NULL && text != NULL && want != NULL, "%s v%llu: "
	    "rendered", what, (unsigned long long)s->version);
	if (got != NULL && old != NULL)
		CHECK(nlen == olen && memcmp(got, old, nlen) == 0,
		    "%s v%llu: the log's bytes from the pieces:\n  got  %.400s"
		    "\n  want %.400s", what, (unsigned long long)s->version,
		    got, old);
	if (text != NULL && want != NULL)
		CHECK(strcmp(text, want) == 0, "%s v%llu: as jansson:\n  got  "
		    "%.400s\n  want %.400s", what,
		    (unsigned long long)s->version, text, want);
	versions++;
	free(got);
	free(old);
	free(text);
	free(want);
	json_decref(j);
}

static void
post(struct tally_election *e, struct tally_state *s, json_t *entry,
    const char *what, size_t i)
{
	struct tally_error err;
	struct tally_feed *f = tally_feed_parse(e, NULL, entry, "", &err);

	CHECK(f != NULL, "%s: feed %zu parses: %s", what, i,
	    f ? "" : err.message);
	if (f == NULL)
		return;
	if (tally_state_apply(s, f, "2026-01-01T00:00:00Z", &err) == -1) {
		CHECK(0, "%s: feed %zu applies: %s", what, i, err.message);
		return;
	}
	tally_state_bump(s);
	compare_version(e, s, what);
}

static void
replay(const char *dir, const char *name)
{
	char path[4096];
	struct tally_diag diag;
	struct tally_election *e;
	struct tally_state *s;
	json_t *results, *arr, *entry, *votes, *v;
	const char *k;
	size_t i, n;

	snprintf(path, sizeof(path), "%s/%s/results.json", dir, name);
	if ((results = json_load_file(path, 0, NULL)) == NULL)
		return;		/* a definition without results */
	tally_diag_init(&diag);
	snprintf(path, sizeof(path), "%s/%s/election.json", dir, name);
	e = tally_election_load(path, &diag);
	CHECK(e != NULL && e->lb_pieces != NULL, "%s loads, with its pieces",
	    path);
	tally_diag_finish(&diag);
	if (e == NULL || (s = tally_state_create(e)) == NULL) {
		tally_election_destroy(e);
		json_decref(results);
		return;
	}
	compare_version(e, s, name);
	arr = json_object_get(results, "results");
	n = json_array_size(arr);
	json_array_foreach(arr, i, entry)
		post(e, s, entry, name, i);
	/* Corrections, last province first: every count lowered. */
	for (i = n; i-- > 0;) {
		entry = json_deep_copy(json_array_get(arr, i));
		json_object_set_new(entry, "revision", json_integer(
		    json_integer_value(json_object_get(entry, "revision")) + 1));
		votes = json_object_get(entry, "votes");
		json_object_foreach(votes, k, v)
			json_integer_set(v, json_integer_value(v) *
			    (json_int_t)(i % 3) / 3);
		if (json_object_get(entry, "blank") != NULL)
			json_object_set_new(entry, "blank", json_integer(0));
		post(e, s, entry, name, n + i);
		json_decref(entry);
	}
	tally_state_destroy(s);
	tally_election_destroy(e);
	json_decref(results);
}

int
main(int argc, char **argv)
{
	struct dirent **ents;
	int i, k, m;

	if (argc < 2) {
		fprintf(stderr, "usage: %s ELECTIONS_DIR...\n", argv[0]);
		return 2;
	}
	for (k = 1; k < argc; k++) {
		if ((m = scandir(argv[k], &ents, NULL, alphasort)) < 0) {
			CHECK(0, "%s: cannot list", argv[k]);
			continue;
		}
		for (i = 0; i < m; i++) {
			if (ents[i]->d_name[0] != '.')
				replay(argv[k], ents[i]->d_name);
			free(ents[i]);
		}
		free(ents);
	}
	printf("%lu versions compared\n", versions);
	return check_done("render-replay");
}
