/* tally-private.h - internals shared between libtally's files. */
#ifndef TALLY_PRIVATE_H
#define TALLY_PRIVATE_H

#include <stddef.h>

/* Read a whole file into a new NUL-terminated buffer. 0, or -1 with errno. */
int	tally_read_file(const char *path, char **buf, size_t *len);

#endif
