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

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int	LLVMFuzzerInitialize(int *argc, char ***argv);

static struct tally_election *election;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *path = getenv("TALLY_FUZZ_ELECTION");
	struct tally_diag diag;

	(void)argc;
	(void)argv;
	tally_json_init();
	tally_diag_init(&diag);
	election = tally_election_load(path ? path :
	    "tests/data/elections/es-2019-04/election.json", &diag);
	tally_diag_finish(&diag);
	if (election == NULL) {
		fprintf(stderr, "fuzz_journal: set TALLY_FUZZ_ELECTION\n");
		abort();
	}
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
