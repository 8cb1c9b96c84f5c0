/*
 * test_render.c - the hand-written leaderboard text must be byte for byte
 * what jansson writes for the same view, at every stage of a real night
 * (Spain 2019, names with accents) and for names that need escaping.
 *
 * Usage: test_render ELECTIONS_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

static void
compare(const struct tally_state *s, const char *at, const char *what)
{
	json_t *j = tally_render_leaderboard(s, at);
	char *want = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII |
	    JSON_REAL_PRECISION(10));
	char *got = tally_render_leaderboard_text(s, at);

	CHECK(want != NULL && got != NULL, "%s: rendered", what);
	if (want != NULL && got != NULL)
		CHECK(strcmp(want, got) == 0, "%s:\n  got  %.300s\n  want %.300s",
		    what, got, want);
	free(want);
	free(got);
	json_decref(j);
}

static const char odd_json[] =
    "{\"id\":\"odd\",\"name\":\"Quote \\\" back \\\\ tab\\t \\u00e9 \\u0628 "
    "\\ud83d\\uddf3\",\"allocation\":{\"method\":\"dhondt\"},"
    "\"coalitions\":[{\"id\":\"a\",\"name\":\"\\u00d1and\\u00fa, \\\"A\\\"\","
    "\"short\":\"\\u2603\"},{\"id\":\"b\",\"name\":\"B\",\"color\":\"#123456\"}],"
    "\"provinces\":[{\"id\":\"p\",\"name\":\"P\",\"seats\":3}]}";

int
main(int argc, char **argv)
{
	struct tally_election *e;
	struct tally_state *s;
	struct tally_diag diag;
	json_t *results, *entry;
	char path[4096];
	size_t i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s ELECTIONS_DIR\n", argv[0]);
		return 2;
	}
	tally_diag_init(&diag);
	snprintf(path, sizeof(path), "%s/es-2019-04/election.json", argv[1]);
	e = tally_election_load(path, &diag);
	CHECK(e != NULL, "%s loads", path);
	if (e == NULL)
		return check_done("render");
	s = tally_state_create(e);
	compare(s, NULL, "empty, no time");
	compare(s, "2019-04-28T20:00:00Z", "empty");
	snprintf(path, sizeof(path), "%s/es-2019-04/results.json", argv[1]);
	results = json_load_file(path, 0, NULL);
	json_array_foreach(json_object_get(results, "results"), i, entry) {
		struct tally_error err;
		struct tally_feed *f = tally_feed_parse(e, NULL, entry, "", &err);
		CHECK(f != NULL && tally_state_apply(s, f, "x", &err) == 0,
		    "feed %zu applies", i);
		tally_state_bump(s);
		if (i % 10 == 0 || i + 1 == json_array_size(json_object_get(
		    results, "results")))
			compare(s, "2019-04-28T23:00:00Z", "during the night");
	}
	json_decref(results);
	tally_state_destroy(s);
	tally_election_destroy(e);

	/* A two-tier election: levelling seats in every row. */
	snprintf(path, sizeof(path), "%s/no-2021/election.json", argv[1]);
	e = tally_election_load(path, &diag);
	CHECK(e != NULL, "%s loads", path);
	if (e != NULL) {
		s = tally_state_create(e);
		compare(s, NULL, "two tiers, empty");
		snprintf(path, sizeof(path), "%s/no-2021/results.json", argv[1]);
		results = json_load_file(path, 0, NULL);
		json_array_foreach(json_object_get(results, "results"), i, entry) {
			struct tally_error err;
			struct tally_feed *f = tally_feed_parse(e, NULL, entry, "",
			    &err);
			CHECK(f != NULL && tally_state_apply(s, f, "x", &err) == 0,
			    "feed %zu applies", i);
			tally_state_bump(s);
			compare(s, "2021-09-13T23:00:00Z", "two tiers, counting");
		}
		json_decref(results);
		tally_state_destroy(s);
		tally_election_destroy(e);
	}

	e = tally_election_loadb(odd_json, strlen(odd_json), "odd", &diag);
	CHECK(e != NULL, "odd names load");
	if (e != NULL) {
		struct tally_error err;
		json_t *b = json_loads("{\"revision\":1,\"votes\":{\"a\":3,"
		    "\"b\":1}}", 0, NULL);
		struct tally_feed *f;
		s = tally_state_create(e);
		compare(s, NULL, "odd names, empty");
		f = tally_feed_parse(e, "p", b, "", &err);
		CHECK(f != NULL && tally_state_apply(s, f, "x", &err) == 0,
		    "odd feed applies");
		compare(s, "2018-05-14T18:00:00Z", "odd names, counted");
		json_decref(b);
		tally_state_destroy(s);
		tally_election_destroy(e);
	}
	tally_diag_finish(&diag);
	return check_done("render");
}
