/* tally-private.h - internals shared between libtally's files. */
#ifndef TALLY_PRIVATE_H
#define TALLY_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;

/* Read a whole file into a new NUL-terminated buffer. 0, or -1 with errno. */

/* A growing NUL-terminated byte buffer; after a failed allocation it only
 * remembers that (nomem) and the caller frees p. */
struct tally_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	bool	 nomem;
};

void	tally_buf_add(struct tally_buf *b, const char *s, size_t n);
void	tally_buf_str(struct tally_buf *b, const char *s);
void	tally_buf_uint(struct tally_buf *b, uint64_t v);

struct tally_state;
struct tally_error;

/* The national order of coalitions: seats desc, votes desc, id asc (new
 * array of coalition indices; NULL on allocation failure). */
size_t	*tally_ranking(const struct tally_state *s);

/* tally_journal_apply on a parsed record (borrowed). */
int	tally_journal_apply_json(struct tally_state *s, struct json_t *root,
	    struct tally_error *err);

/* "an object", "an integer", ... for messages about JSON values. */
const char	*tally_json_kind(const struct json_t *v);

#endif
