/*
 * fuzz_journal.c - libFuzzer target: the journal reader.  Any bytes are
 * scanned record by record as replay does (torn tail, corruption, valid
 * records) and every valid record is applied to a tally of es-2019-04, as
 * replay does, until one is refused (replay would stop the start there):
 * no crash, no sanitizer report, no hang.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <tally/tally.h>

#include "fuzz.h"

static struct tally_election *election;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	election = fuzz_election("fuzz_journal");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tally_state *s = tally_state_create(election);
	struct tally_record rec;
	struct tally_error err;
	char why[128];
	size_t off = 0, last = 0;

	if (s == NULL)
		return 0;
	while (tally_journal_scan((const char *)data, size, &off, &rec, why,
	    sizeof(why)) == TALLY_SCAN_RECORD) {
		if (off <= last)
			abort();	/* the scan must move forward */
		last = off;
		if (tally_journal_apply(s, rec.payload, rec.len, &err) == -1)
			break;
	}
	free(tally_render_leaderboard_text(s, NULL));
	tally_state_destroy(s);
	return 0;
}
