/* state.c - the live tally of one election (see tally/state.h). */
#include <stdlib.h>

#include <tally/state.h>

struct tally_state *
tally_state_create(const struct tally_election *e)
{
	struct tally_state *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->election = e;
	s->coalitions = calloc(e->n_coalitions ? e->n_coalitions : 1,
	    sizeof(*s->coalitions));
	if (s->coalitions == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void
tally_state_destroy(struct tally_state *s)
{
	if (s == NULL)
		return;
	free(s->coalitions);
	free(s);
}
