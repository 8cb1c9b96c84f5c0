/* util.c - small helpers shared by libtally's files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tally-private.h"

int
tally_read_file(const char *path, char **bufp, size_t *lenp)
{
	FILE *f;
	char *buf = NULL, *n;
	size_t len = 0, cap = 0, got;
	int saved;

	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 65536;
			if ((n = realloc(buf, cap + 1)) == NULL)
				goto fail;
			buf = n;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f))
				goto fail;
			break;
		}
	}
	fclose(f);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
fail:
	saved = errno ? errno : ENOMEM;
	fclose(f);
	free(buf);
	errno = saved;
	return -1;
}
