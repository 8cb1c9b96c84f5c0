/*
 * state.h - the live tally of one election.
 *
 * The state is a pure function of the ordered feed log: the daemon applies
 * accepted snapshots in journal order and every replica that applies the
 * same log holds the same state.  One thread owns a state; it has no locks.
 */
#ifndef TALLY_STATE_H
#define TALLY_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tally/election.h>
#include <tally/seats.h>

struct tally_coalition_total {
	uint64_t votes;
	uint64_t seats;
	uint64_t pending;	/* seats in ties this coalition is part of */
	size_t	 provinces;	/* provinces where it has votes */
};

struct tally_state {
	const struct tally_election	*election;	/* borrowed */
	uint64_t			 version;	/* bumps once per applied change */
	struct tally_coalition_total	*coalitions;	/* n_coalitions entries */
	uint64_t			 valid;		/* list votes + blank */
	uint64_t			 blank;
	uint64_t			 invalid;
	uint64_t			 seats_allocated;
	uint64_t			 seats_pending;
	size_t				 provinces_reporting;
	size_t				 provinces_final;
};

/* A new empty state for `e` (borrowed: it must outlive the state). */
struct tally_state	*tally_state_create(const struct tally_election *e);
void			 tally_state_destroy(struct tally_state *s);

#endif
