/*
 * fuzz_election.c - libFuzzer target: the election loader.  Any input is
 * either refused with at least one message, or loads; a loaded definition
 * dumps (the /v1/election view, with derived fields such as the majority),
 * and loading the same bytes again gives the same dump: nothing in the
 * loader depends on memory it did not initialise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int	LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	tally_json_init();
	return 0;
}

static char *
dump(const struct tally_election *e)
{
	json_t *j = tally_election_dump(e);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	json_decref(j);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tally_election *e, *again;
	struct tally_diag diag;
	char *a, *b;

	tally_diag_init(&diag);
	e = tally_election_loadb((const char *)data, size, "fuzz", &diag);
	if (e == NULL && diag.count == 0 && !diag.nomem)
		abort();	/* refused without saying why */
	tally_diag_finish(&diag);
	if (e == NULL)
		return 0;
	a = dump(e);
	tally_diag_init(&diag);
	again = tally_election_loadb((const char *)data, size, "again", &diag);
	if (again == NULL || a == NULL)
		abort();
	b = dump(again);
	if (b == NULL || strcmp(a, b) != 0)
		abort();
	free(a);
	free(b);
	tally_diag_finish(&diag);
	tally_election_destroy(again);
	tally_election_destroy(e);
	return 0;
}
