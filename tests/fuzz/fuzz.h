/*
 * fuzz.h - what the libFuzzer targets share: the election they post to
 * (tests/data/elections/es-2019-04, or TALLY_FUZZ_ELECTION).
 */
#ifndef TALLY_FUZZ_H
#define TALLY_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#include <tally/tally.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int	LLVMFuzzerInitialize(int *argc, char ***argv);

static inline struct tally_election *
fuzz_election(const char *target)
{
	const char *path = getenv("TALLY_FUZZ_ELECTION");
	struct tally_election *e;
	struct tally_diag diag;

	tally_json_init();
	tally_diag_init(&diag);
	e = tally_election_load(path ? path :
	    "tests/data/elections/es-2019-04/election.json", &diag);
	tally_diag_finish(&diag);
	if (e == NULL) {
		fprintf(stderr, "%s: set TALLY_FUZZ_ELECTION to an election "
		    "definition\n", target);
		abort();
	}
	return e;
}

#endif
