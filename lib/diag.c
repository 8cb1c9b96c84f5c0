/* diag.c - collected diagnostics (see tally/diag.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tally/diag.h>

void
tally_diag_init(struct tally_diag *diag)
{
	memset(diag, 0, sizeof(*diag));
}

void
tally_diag_finish(struct tally_diag *diag)
{
	size_t i;

	if (diag == NULL)
		return;
	for (i = 0; i < diag->count && i < diag->cap; i++)
		free(diag->msgs[i]);
	free(diag->msgs);
	memset(diag, 0, sizeof(*diag));
}

void
tally_diag_add(struct tally_diag *diag, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	int len;

	if (diag == NULL)
		return;
	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	/*
	 * Messages are kept in order; once one could not be stored the rest
	 * are only counted, so the caller can still say "and N more".
	 */
	if (len < 0 || diag->nomem)
		goto nomem;
	if (diag->count == diag->cap) {
		size_t ncap = diag->cap ? diag->cap * 2 : 8;
		char **n = realloc(diag->msgs, ncap * sizeof(*n));
		if (n == NULL)
			goto nomem;
		diag->msgs = n;
		diag->cap = ncap;
	}
	if ((msg = malloc((size_t)len + 1)) == NULL)
		goto nomem;
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)len + 1, fmt, ap);
	va_end(ap);
	diag->msgs[diag->count++] = msg;
	return;
nomem:
	diag->nomem = 1;
	diag->count++;
	if (diag->cap > diag->count - 1)
		diag->cap = diag->count - 1;
}
