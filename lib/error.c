/* error.c - refusals with a kind, a code, a pointer and a message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <tally/error.h>

int
tally_error_set(struct tally_error *err, enum tally_error_kind kind,
    const char *code, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return -1;
	err->kind = kind;
	snprintf(err->code, sizeof(err->code), "%s", code);
	snprintf(err->field, sizeof(err->field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}
