/*
 * fuzz_feed.c - libFuzzer target: the POST body scanner against the full
 * parser.  The scanner (tally_feed_scan) is a fast path that must never
 * accept a body the parser refuses, and must yield exactly the parser's
 * feed (the same canonical bytes) whenever it accepts one.
 *
 * The election is tests/data/elections/es-2019-04 (TALLY_FUZZ_ELECTION).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "fuzz.h"

static struct tally_election *election;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	election = fuzz_election("fuzz_feed");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *pid = election->provinces[0].id;
	struct tally_feed *fast, *full = NULL;
	struct tally_error err;
	json_error_t jerr;
	json_t *j;

	fast = tally_feed_scan(election, pid, (const char *)data, size);
	j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
	if (j != NULL)
		full = tally_feed_parse(election, pid, j, "", &err);
	json_decref(j);
	if (fast != NULL) {
		/* The fast path accepted it: so must the parser, identically. */
		if (full == NULL)
			abort();
		if (fast->canonical_len != full->canonical_len ||
		    memcmp(fast->canonical, full->canonical,
		    fast->canonical_len) != 0)
			abort();
	}
	tally_feed_destroy(fast);
	tally_feed_destroy(full);
	return 0;
}
