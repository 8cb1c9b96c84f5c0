/*
 * log_http.c - the transparency log's routes, on the public listener,
 * read-only (C2SP tlog-tiles layout under /log/): the verifier key, the
 * signed checkpoint (signed on demand, at most once per tree size), the
 * tiles (full ones immutable), and receipts (inclusion proofs).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "call.h"
#include "cors.h"
#include "log_http.h"
#include "response.h"
#include "tlog_witness.h"
#include "tlogd.h"

/* Short-lived: the checkpoint and partial tiles move with every version. */
#define LOG_SHORT	"public, max-age=2"
#define LOG_FOREVER	"public, max-age=31536000, immutable"

/*
 * The log of the call's contest: /log/... is the first contest's, and
 * /v1/contests/{c}/log/... (contests_serve) comes with c's API.
 */
static struct tlogd *
log_or_fail(struct call *cl)
{
	struct tlogd *t = tlogd_of(cl->api->core);

	if (!tlogd_ok(t)) {
		call_fail(cl, 503, "log_unavailable", NULL, "the transparency "
		    "log is off on this server (see its log for why)");
		return NULL;
	}
	return t;
}

/* Answer bytes (taken, or copied when !take). */
static void
log_reply(struct call *cl, char *bytes, size_t len, bool take,
    const char *ctype, const char *cache)
{
	struct http_body *b;
	char *copy = bytes;

	if (!take && (copy = malloc(len + 1)) != NULL)
		memcpy(copy, bytes, len);
	if (copy == NULL || (b = http_body_new(copy, len, true)) == NULL) {
		free(copy);
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory");
		return;
	}
	http_body_header(b, "Content-Type", ctype);
	http_body_header(b, "Cache-Control", cache);
	cors_headers(cl->api->cors_origin, b);
	cl->reply->status = 200;
	cl->reply->body = b;
	cl->reply->owned = true;
}

void
log_http_key(struct call *cl, const char *id)
{
	struct tlogd *t;
	char buf[300];

	(void)id;
	if ((t = log_or_fail(cl)) == NULL)
		return;
	snprintf(buf, sizeof(buf), "%s\n", tlogd_key(t));
	log_reply(cl, buf, strlen(buf), false, "text/plain; charset=utf-8",
	    "public, max-age=3600");
}

void
log_http_checkpoint(struct call *cl, const char *id)
{
	struct tlogd *t;
	const char *note;
	size_t len;

	(void)id;
	if ((t = log_or_fail(cl)) == NULL)
		return;
	if ((note = tlogd_checkpoint(t, &len)) == NULL) {
		call_fail(cl, 503, "log_unavailable", NULL, "cannot sign the "
		    "checkpoint now; try again");
		return;
	}
	/* With the witnesses' cosignatures, when they cosigned this one
	 * (witnesses cosign the first contest's log only). */
	if (t == tlogd_current)
		note = tlog_witness_on(t, note, len, &len);
	log_reply(cl, (char *)note, len, false, "text/plain; charset=utf-8",
	    LOG_SHORT);
}

/* GET /log/witnessed: the latest checkpoint witnesses cosigned. */
void
log_http_witnessed(struct call *cl, const char *id)
{
	struct tlogd *t;
	const char *note;
	size_t len;

	(void)id;
	if ((t = log_or_fail(cl)) == NULL)
		return;
	if ((note = tlog_witness_note(t, &len)) == NULL) {
		call_fail(cl, 404, "not_found", NULL, "no checkpoint of this "
		    "log has been cosigned by a witness yet");
		return;
	}
	log_reply(cl, (char *)note, len, false, "text/plain; charset=utf-8",
	    LOG_SHORT);
}

/* POST /log/cosignature: a witness's cosigned checkpoint (a token, as
 * every POST; the cosignature itself must be by a listed witness). */
void
log_http_cosignature(struct call *cl, const char *id)
{
	struct tlog_witness_result res;
	struct tlogd *t;
	char body[160];
	json_t *j, *n;
	int rc;

	(void)id;
	if ((t = log_or_fail(cl)) == NULL)
		return;
	/* {"note": "<the checkpoint note with the cosignature line>"} */
	if (cl->rq->body == NULL || cl->rq->body_len > 16384 ||
	    (j = json_loadb(cl->rq->body, cl->rq->body_len,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL) {
		call_fail(cl, 400, "bad_json", NULL, "the body is JSON: "
		    "{\"note\": the checkpoint note with the witness's "
		    "cosignature line} (at most 16 KiB)");
		return;
	}
	if (!json_is_object(j) || json_object_size(j) != 1 ||
	    !json_is_string(n = json_object_get(j, "note"))) {
		json_decref(j);
		call_fail(cl, 422, "bad_note", "/note", "note: the checkpoint "
		    "note (a string) is the body's one member");
		return;
	}
	rc = tlog_witness_add(t, json_string_value(n), json_string_length(n),
	    &res);
	json_decref(j);
	if (rc == -1) {
		call_fail(cl, res.status, res.code, NULL, "%s", res.message);
		return;
	}
	snprintf(body, sizeof(body), "{\"status\":\"cosigned\",\"size\":%llu,"
	    "\"witnesses\":%u}\n", (unsigned long long)res.size,
	    res.witnesses);
	log_reply(cl, body, strlen(body), false, "application/json",
	    "no-store");
	cl->reply->status = 201;
}

/* id: the path after /log/tile/ ("0/x001/234", "entries/000.p/7"). */
void
log_http_tile(struct call *cl, const char *id)
{
	struct tlogd *t;
	char path[TALLY_TLOG_PATH_MAX + 8];
	int level;
	uint64_t n;
	unsigned w, status;
	size_t len;
	char *bytes;

	if ((t = log_or_fail(cl)) == NULL)
		return;
	if (strlen(id) >= TALLY_TLOG_PATH_MAX ||
	    snprintf(path, sizeof(path), "tile/%s", id) < 0 ||
	    tally_tlog_tile_parse_path(path, &level, &n, &w) == -1) {
		call_fail(cl, 404, "not_found", NULL, "no such tile: /log/"
		    "tile/%.100s (tile/<L>/<N>[.p/<W>] or tile/entries/<N>"
		    "[.p/<W>], N in 3-digit elements)", id);
		return;
	}
	if ((bytes = tlogd_tile(t, level, n, w, &len, &status)) == NULL) {
		if (status == 404)
			call_fail(cl, 404, "not_found", NULL, "tile /log/"
			    "tile/%.100s is not in the tree of size %" PRIu64,
			    id, tlogd_size(t));
		else
			call_fail(cl, 503, "log_unavailable", NULL, "cannot "
			    "read the tile now; try again");
		return;
	}
	log_reply(cl, bytes, len, true, "application/octet-stream",
	    w == TALLY_TLOG_TILE_WIDTH ? LOG_FOREVER : LOG_SHORT);
}

void
log_http_proof(struct call *cl, const char *id)
{
	struct tlogd *t;
	uint64_t index = 0;
	const char *p;
	size_t len;
	char *text;

	if ((t = log_or_fail(cl)) == NULL)
		return;
	for (p = id; *p >= '0' && *p <= '9' && index < UINT64_MAX / 10; p++)
		index = index * 10 + (uint64_t)(*p - '0');
	if (*p != '\0' || p == id || (id[0] == '0' && id[1] != '\0')) {
		call_fail(cl, 404, "not_found", NULL, "/log/proof/%.40s: the "
		    "index is a whole number (version - 1)", id);
		return;
	}
	if (index >= tlogd_size(t)) {
		call_fail(cl, 404, "not_found", NULL, "no entry %" PRIu64
		    " in the log of size %" PRIu64, index, tlogd_size(t));
		return;
	}
	if ((text = tlogd_proof(t, index, &len)) == NULL) {
		call_fail(cl, 503, "log_unavailable", NULL, "cannot make the "
		    "proof now; try again");
		return;
	}
	log_reply(cl, text, len, true, "text/plain; charset=utf-8",
	    "no-store");
}
