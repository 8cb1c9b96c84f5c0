/*
 * call.c - the one exit of a refused request and the API's request
 * counters.  Every refusal of every handler comes here (OpenBSD httpd's
 * server_abort_http does the same), so that each one is answered in the
 * same JSON shape, counted and logged alike.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <tally/tally.h>

#include "response.h"
#include "log.h"
#include "call.h"
#include "reply.h"

const unsigned call_statuses[CALL_N_STATUSES] = { 200, 201, 204, 304, 400,
    401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503 };

void
call_count_rejection(struct api *api, const char *code)
{
	struct call_counters *m;

	/* A further contest's requests are counted where /metrics reads. */
	if (api->first != NULL)
		api = api->first;
	m = &api->counters;
	size_t i;

	for (i = 0; i < CALL_N_REASONS; i++) {
		if (m->rejected[i].code[0] == '\0')
			snprintf(m->rejected[i].code,
			    sizeof(m->rejected[i].code), "%s", code);
		if (strcmp(m->rejected[i].code, code) == 0) {
			m->rejected[i].n++;
			return;
		}
	}
}

void
call_count(struct api *api, enum route_id route, unsigned status)
{
	size_t k;

	for (k = 0; k < CALL_N_STATUSES && call_statuses[k] != status; k++)
		;
	if (api->first != NULL)
		api = api->first;
	api->counters.requests[route][k]++;
}

/* The one exit of a refused request: reply, and count a refused feed. */
void
call_fail(struct call *cl, unsigned status, const char *code,
    const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_verror(cl->reply, status, code, field, cl->all, fmt, ap);
	va_end(ap);
	if (cl->rt->token) {
		call_count_rejection(cl->api, code);
		log_info_limited("refused feeds", "refused %s %.200s: %u %s",
		    cl->rq->method, cl->rq->path, status, code);
	}
	log_debug("%s %.200s: %u %s", cl->rq->method, cl->rq->path, status,
	    code);
}

void
call_fail_with(struct call *cl, const struct tally_error *err)
{
	/* The single place where an error kind becomes an HTTP status. */
	static const unsigned status[] = {
		[TALLY_ERROR_NONE] = 500, [TALLY_ERROR_SYNTAX] = 400,
		[TALLY_ERROR_INVALID] = 422, [TALLY_ERROR_NOT_FOUND] = 404,
		[TALLY_ERROR_CONFLICT] = 409, [TALLY_ERROR_NOMEM] = 503,
	};
	unsigned st = (size_t)err->kind < sizeof(status) / sizeof(status[0]) ?
	    status[err->kind] : 500;

	call_fail(cl, st, err->code, err->field[0] ? err->field : NULL, "%s",
	    err->message);
}

bool
call_is_true(const char *v)
{
	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 ||
	    strcmp(v, "yes") == 0);
}

bool
call_is_false(const char *v)
{
	return v != NULL && (strcmp(v, "0") == 0 || strcmp(v, "false") == 0 ||
	    strcmp(v, "no") == 0);
}
