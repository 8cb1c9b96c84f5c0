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
	"{\"revision\":4,\"votes\":{\"a\":5},\"blank\":1,\"registered\":100,"
	    "\"reported_at\":\"2018-05-14T18:00:00Z\"}",
};

static uint64_t seed = 0x5eedf00dULL;

static uint64_t
rnd(void)
{
	uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static const char *
pick(const char *const *v, size_t n)
{
	return v[rnd() % n];
}

#define PICK(v) pick(v, sizeof(v) / sizeof(v[0]))

/* A random body: mostly valid snapshots, some with one thing wrong. */
static void
gen_body(char *buf, size_t len)
{
	static const char *const ws[] = { "", "", "", " ", "\n  ", "\t" };
	static const char *const ints[] = { "0", "1", "7", "42", "1000000000000",
	    "1000000000001", "-1", "1.0", "1e3", "01", "\"3\"", "99999999999999999999" };
	static const char *const revs[] = { "1", "2", "17", "0", "-2", "2.5",
	    "1000000000000000", "1000000000000001" };
	static const char *const ids[] = { "a", "a-1", "b", "B2", "c.x", "zz",
	    "a\\u0041", "" };
	static const char *const status[] = { "\"partial\"", "\"final\"",
	    "\"done\"", "1" };
	static const char *const times[] = { "\"2018-05-14T18:00:00Z\"",
	    "\"2018-05-14T18:00:00.25+03:00\"", "\"2018-02-30T10:00:00Z\"",
	    "\"yesterday\"", "12" };
	static const char *const notes[] = { "\"recount\"", "\"\"",
	    "\"tab\\there\"", "\"\\u00e9\"", "\"caf\xc3\xa9\"", "null" };
	const char *keys[12];
	size_t nk = 0, i, off = 0;

	keys[nk++] = "revision";
	keys[nk++] = "votes";
	if (rnd() % 2) keys[nk++] = "blank";
	if (rnd() % 2) keys[nk++] = "invalid";
	if (rnd() % 3 == 0) keys[nk++] = "stations";
	if (rnd() % 3 == 0) keys[nk++] = "status";
	if (rnd() % 3 == 0) keys[nk++] = "reported_at";
	if (rnd() % 4 == 0) keys[nk++] = "note";
	if (rnd() % 4 == 0) keys[nk++] = "registered";
	if (rnd() % 15 == 0) keys[nk++] = "province";
	if (rnd() % 15 == 0) {					/* repeated */
		keys[nk] = keys[rnd() % nk];
		nk++;
	}
	if (rnd() % 20 == 0) nk--;				/* one missing */
	for (i = nk; i > 1; i--) {				/* any order */
		size_t j = rnd() % i;
		const char *t = keys[i - 1];
		keys[i - 1] = keys[j];
		keys[j] = t;
	}
#define OUT(...) off += (size_t)snprintf(buf + off, len - off, __VA_ARGS__)
	OUT("%s{", PICK(ws));
	for (i = 0; i < nk && off < len - 512; i++) {
		const char *k = keys[i];
		OUT("%s%s\"%s\"%s:%s", i ? "," : "", PICK(ws), k, PICK(ws), PICK(ws));
		if (strcmp(k, "revision") == 0)
			OUT("%s", rnd() % 4 ? "3" : PICK(revs));
		else if (strcmp(k, "votes") == 0) {
			size_t n = rnd() % 5, j;
			OUT("{");
			for (j = 0; j < n; j++)
				OUT("%s%s\"%s\":%s%s", j ? "," : "", PICK(ws),
				    rnd() % 3 ? ids[rnd() % 5] : PICK(ids), PICK(ws),
				    rnd() % 4 ? "123" : PICK(ints));
			OUT("%s}", PICK(ws));
		} else if (strcmp(k, "blank") == 0 || strcmp(k, "invalid") == 0 ||
		    strcmp(k, "registered") == 0)
			OUT("%s", rnd() % 3 ? "5" : PICK(ints));
		else if (strcmp(k, "stations") == 0)
			OUT("{\"reporting\":%s,\"total\":%s%s}",
			    rnd() % 2 ? "4" : PICK(ints), rnd() % 2 ? "9" : PICK(ints),
			    rnd() % 8 ? "" : ",\"extra\":1");
		else if (strcmp(k, "status") == 0)
			OUT("%s", PICK(status));
		else if (strcmp(k, "reported_at") == 0)
			OUT("%s", PICK(times));
		else if (strcmp(k, "note") == 0)
			OUT("%s", PICK(notes));
		else
			OUT("\"p_1\"");
	}
	OUT("%s}%s", PICK(ws), rnd() % 20 ? "" : "x");
#undef OUT
}

/*
 * The fast path must never accept a body the general parser refuses, and
 * must give the same feed for the ones it accepts.
 */
static void
test_scan_matches_parse(const struct tally_election *e)
{
	size_t i, fast = 0, general = 0;
	char body[4096];

	for (i = 0; i < 20000; i++) {
		struct tally_feed *f, *g = NULL;
		struct tally_error err;
		json_t *j;

		gen_body(body, sizeof(body));
		f = tally_feed_scan(e, "p_1", body, strlen(body));
		j = json_loadb(body, strlen(body), JSON_REJECT_DUPLICATES, NULL);
		if (j != NULL)
			g = tally_feed_parse(e, "p_1", j, "", &err);
		if (g != NULL)
			general++;
		if (f != NULL) {
			fast++;
			CHECK(g != NULL, "the fast path accepted a body the general "
			    "parser refuses: %s", body);
			if (g != NULL)
				CHECK(strcmp(f->canonical, g->canonical) == 0,
				    "different feeds for %s:\n  %s\n  %s", body,
				    f->canonical, g->canonical);
		}
		tally_feed_destroy(f);
		tally_feed_destroy(g);
		json_decref(j);
	}
	printf("scan: %zu of %zu generated bodies valid, %zu taken by the fast "
	    "path\n", general, i, fast);
	CHECK(fast > i / 10, "the fast path takes the usual bodies (%zu)", fast);
}

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
	test_scan_matches_parse(e);
	tally_election_destroy(e);
	tally_diag_finish(&diag);
	return check_done("feed");
}
