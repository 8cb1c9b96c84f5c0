/*
 * file.h - reading a whole file.
 */
#ifndef TALLY_FILE_H
#define TALLY_FILE_H

#include <stddef.h>

/*
 * Read the file at `path` ("-": standard input) whole into *buf (new,
 * NUL-terminated; free), its length in *len.  0, or -1 with errno.
 */
int	tally_read_file(const char *path, char **buf, size_t *len);

#endif
