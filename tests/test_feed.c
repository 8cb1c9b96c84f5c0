/*
 * test_feed.c - the feed codec: the hand-written canonical form must be
 * exactly what jansson writes with sorted keys, since identical retries are
 * recognised by comparing these bytes and journal records carry them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

static const char election_json[] =
    "{\"id\":\"t\",\"name\":\"T\",\"allocation\":{\"method\":\"dhondt\"},"
    "\"coalitions\":[{\"id\":\"a\",\"name\":\"A\",\"aliases\":[\"a-1\"]},"
    "{\"id\":\"b\",\"name\":\"B\"},{\"id\":\"B2\",\"name\":\"B2\"},"
    "{\"id\":\"c.x\",\"name\":\"C\"}],"
    "\"provinces\":[{\"id\":\"p_1\",\"name\":\"P\",\"seats\":3}]}";

static const char *const bodies[] = {
	"{\"revision\":1,\"votes\":{}}",
	"{\"revision\":7,\"votes\":{\"b\":5,\"a-1\":10,\"B2\":0,\"c.x\":1000000000000},"
	    "\"blank\":3,\"invalid\":4}",
	"{\"revision\":2,\"votes\":{\"a\":1},\"stations\":{\"reporting\":1,"
	    "\"total\":9},\"status\":\"final\",\"reported_at\":"
	    "\"2018-05-14T18:00:00.5+03:00\"}",
	"{\"revision\":3,\"votes\":{\"a\":1},\"note\":\"quote \\\" slash \\\\ "
	    "tab\\t nl\\n \\u00e9\\u0628 \\ud83d\\ude00 </script>\"}",
};

int
main(void)
{
	struct tally_election *e;
	struct tally_diag diag;
	size_t i;

	tally_diag_init(&diag);
	e = tally_election_loadb(election_json, strlen(election_json), "t", &diag);
	CHECK(e != NULL, "election loads");
	if (e == NULL)
		return check_done("feed");
	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		json_error_t jerr;
		json_t *body = json_loads(bodies[i], 0, &jerr), *ref, *votes, *v;
		struct tally_error err;
		struct tally_feed *f;
		const char *key;
		char *want;

		CHECK(body != NULL, "body %zu parses: %s", i, jerr.text);
		f = tally_feed_parse(e, "p_1", body, "", &err);
		CHECK(f != NULL, "feed %zu: %s", i, f ? "" : err.message);
		if (f == NULL) {
			json_decref(body);
			continue;
		}
		/* The reference: the same content through json_dumps. */
		ref = json_deep_copy(body);
		json_object_set_new(ref, "province", json_string("p_1"));
		if (json_object_get(ref, "blank") == NULL)
			json_object_set_new(ref, "blank", json_integer(0));
		if (json_object_get(ref, "invalid") == NULL)
			json_object_set_new(ref, "invalid", json_integer(0));
		if (json_object_get(ref, "status") == NULL)
			json_object_set_new(ref, "status", json_string("partial"));
		votes = json_object_get(ref, "votes");
		json_object_foreach(votes, key, v)
			CHECK(json_is_integer(v), "votes are integers");
		want = json_dumps(ref, JSON_COMPACT | JSON_SORT_KEYS |
		    JSON_ENSURE_ASCII);
		CHECK(strcmp(f->canonical, want) == 0, "feed %zu canonical:\n"
		    "  got  %s\n  want %s", i, f->canonical, want);
		CHECK_EQ_U(f->canonical_len, strlen(want), "feed %zu length", i);
		free(want);
		json_decref(ref);
		json_decref(body);
		tally_feed_destroy(f);
	}
	tally_election_destroy(e);
	tally_diag_finish(&diag);
	return check_done("feed");
}
