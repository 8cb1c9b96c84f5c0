/*
 * diag.h - collected diagnostics.
 *
 * Loaders report every problem they find, not only the first, so a
 * configuration can be fixed in one pass.  A struct tally_diag is owned by the
 * caller (init/finish); each message is "where: pointer: problem".
 */
#ifndef TALLY_DIAG_H
#define TALLY_DIAG_H

#include <stddef.h>

struct tally_diag {
	size_t	  count;	/* messages collected */
	size_t	  cap;
	char	**msgs;		/* owned; each NUL-terminated */
	int	  nomem;	/* set when a message could not be stored */
};

void	tally_diag_init(struct tally_diag *diag);
void	tally_diag_finish(struct tally_diag *diag);
/* Append one message; never fails from the caller's point of view (on
 * allocation failure the diag is marked nomem and the count still grows). */
void	tally_diag_add(struct tally_diag *diag, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
