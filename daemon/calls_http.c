/*
 * calls_http.c - the race calls over HTTP (see calls_http.h).
 *
 * A declared call and a retraction go the way of a lot: the token's gates
 * (ingest_gate), the body, then the core's queue, one record, one version
 * (core_submit_call), answered once the record is durable (local) or
 * ordered by the stream (cluster).  The certain calls are the state's own
 * (tally_calls_observe); this file only shows them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "auth.h"
#include "call.h"
#include "calls_http.h"
#include "core.h"
#include "ingest.h"
#include "log.h"
#include "reply.h"
#include "response.h"
#include "server.h"

/* A call request waiting for the core's answer. */
struct call_post {
	struct api		*api;
	const struct route	*rt;
	void			*ctx;		/* the server's request */
	bool			 retract;
	char			 id[TALLY_CALL_ID_MAX];	/* the call retracted */
	char			 label[64];
	/* A declaration's fields, to name the standing call a duplicate
	 * repeats (key.note owned; key.by NULL). */
	struct tally_call_op	 key;
};

static void
call_post_free(struct call_post *cp)
{
	free(cp->key.note);
	free(cp);
}

/* GET /v1/calls: every call, certain and declared, oldest first. */
void
calls_http_get(struct call *cl, const char *id)
{
	json_t *o = tally_render_calls(core_state(cl->api->core));

	(void)id;
	if (o == NULL) {
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory");
		return;
	}
	reply_json(cl->reply, 200, o);
}

/* The call an applied request made or retracted, or NULL. */
static const struct tally_call *
call_of(const struct tally_state *s, const struct call_post *cp,
    uint64_t version, bool dup)
{
	const struct tally_call *v;
	size_t n, i;

	if (dup)
		return tally_calls_duplicate(s, &cp->key);
	v = tally_calls_list(s, &n);
	for (i = n; cp->retract && i-- > 0;)
		if (strcmp(v[i].id, cp->id) == 0)
			return &v[i];
	for (i = n; !cp->retract && i-- > 0;)
		if (v[i].kind == TALLY_CALL_DECLARED && v[i].version == version)
			return &v[i];
	return NULL;
}

static void
call_done(void *arg, const struct core_outcome *out)
{
	struct call_post *cp = arg;
	struct api *api = cp->api;
	struct http_request rq;
	struct http_reply reply;
	struct call cl = { api, &rq, &reply, cp->rt, NULL, false };
	const struct tally_state *s = core_state(api->core);
	const struct tally_call *c;
	json_t *o;

	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.path = cp->rt->pattern;
	memset(&reply, 0, sizeof(reply));
	switch (out->kind) {
	case CORE_REJECTED:
		call_fail_with(&cl, out->err);
		break;
	case CORE_UNAVAILABLE:
		call_fail(&cl, 503, "log_unavailable", NULL, "the log did not "
		    "take the call (%s); nothing was applied: retry",
		    strerror(out->log_err));
		http_body_header(reply.body, "Retry-After", "1");
		break;
	case CORE_STOPPING:
		call_fail(&cl, 503, "shutting_down", NULL, "tallyd is "
		    "stopping; the call is not known to be applied: see "
		    "GET /v1/calls after the restart");
		http_body_header(reply.body, "Retry-After", "5");
		http_body_header(reply.body, "Connection", "close");
		break;
	case CORE_APPLIED:
	case CORE_DUPLICATE:
		o = json_object();
		json_object_set_new(o, "status", json_string(
		    out->kind == CORE_APPLIED ? "applied" : "duplicate"));
		json_object_set_new(o, "version",
		    json_integer((json_int_t)out->version));
		if ((c = call_of(s, cp, out->version,
		    out->kind == CORE_DUPLICATE)) != NULL)
			json_object_set_new(o, "call", tally_call_json(s, c));
		if (out->kind == CORE_APPLIED)
			log_info("%s call %s at version %llu (token %s)",
			    cp->retract ? "retracted" : "declared", c ?
			    c->id : "?",
			    (unsigned long long)out->version, cp->label);
		reply_json(&reply, out->kind == CORE_APPLIED ? 201 : 200, o);
		break;
	}
	call_count(api, cl.rt->id, reply.status);
	server_resume(cp->ctx, &reply);
	call_post_free(cp);
}

/*
 * May the token make this call?  A province's call: a token that may post
 * for the province.  A national call or a retraction: a token that may post
 * for every province (a desk's, not a single count centre's).
 */
static bool
may_call(struct call *cl, const struct token *who, size_t province)
{
	const struct tally_election *e = core_election(cl->api->core);
	size_t p;

	if (province != SIZE_MAX) {
		if (auth_may_post(who, cl->api->contest,
		    e->provinces[province].id))
			return true;
		call_fail(cl, 403, "forbidden_province", NULL, "this token may "
		    "not post for province %s", e->provinces[province].id);
		return false;
	}
	for (p = 0; p < e->n_provinces; p++)
		if (!auth_may_post(who, cl->api->contest,
		    e->provinces[p].id)) {
			call_fail(cl, 403, "forbidden_national", NULL, "a "
			    "national call or a retraction needs a token that "
			    "may post for every province; this one may not "
			    "post for %s", e->provinces[p].id);
			return false;
		}
	return true;
}

/* Hand op (taken) to the core; the answer comes in call_done. */
static void
submit_call(struct call *cl, struct tally_call_op *op, const char *label)
{
	const struct tally_call *c;
	struct call_post *cp;
	json_t *o;

	if (cl->dry_run) {
		/* Checked, changes nothing: what the record would say. */
		struct tally_error err;
		if (tally_calls_check(core_state(cl->api->core), op,
		    &err) == -1) {
			tally_call_op_destroy(op);
			call_fail_with(cl, &err);
			return;
		}
		o = json_object();
		json_object_set_new(o, "status", json_string("valid"));
		json_object_set_new(o, "call", tally_call_op_record(
		    core_state(cl->api->core), op));
		tally_call_op_destroy(op);
		reply_json(cl->reply, 200, o);
		return;
	}
	if ((c = tally_calls_duplicate(core_state(cl->api->core), op)) !=
	    NULL) {
		/* A retry of what stands: answered, nothing recorded. */
		o = json_object();
		json_object_set_new(o, "status", json_string("duplicate"));
		json_object_set_new(o, "version", json_integer((json_int_t)
		    core_state(cl->api->core)->version));
		json_object_set_new(o, "call", tally_call_json(
		    core_state(cl->api->core), c));
		tally_call_op_destroy(op);
		reply_json(cl->reply, 200, o);
		return;
	}
	if ((cp = calloc(1, sizeof(*cp))) == NULL) {
		tally_call_op_destroy(op);
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "nothing was applied, try again");
		return;
	}
	cp->api = cl->api;
	cp->rt = cl->rt;
	cp->ctx = cl->rq->ctx;
	cp->retract = op->retract;
	memcpy(cp->id, op->id, sizeof(cp->id));
	cp->key = *op;
	cp->key.by = NULL;
	if (op->note != NULL && (cp->key.note = strdup(op->note)) == NULL) {
		call_post_free(cp);
		tally_call_op_destroy(op);
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "nothing was applied, try again");
		return;
	}
	snprintf(cp->label, sizeof(cp->label), "%s", label);
	cl->reply->pending = true;
	if (core_submit_call(cl->api->core, op, call_done, cp) == -1) {
		call_post_free(cp);
		cl->reply->pending = false;
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "nothing was applied, try again");
	}
}

/* POST /v1/calls: a call a desk declares. */
void
calls_http_declare(struct call *cl, const char *id)
{
	const struct tally_election *e = core_election(cl->api->core);
	const struct token *who;
	struct tally_call_op *op;
	struct tally_error err;
	json_t *body;

	(void)id;
	if (!ingest_gate(cl, &who) || (body = ingest_body(cl)) == NULL)
		return;
	op = tally_call_op_parse(e, body, &err);
	json_decref(body);
	if (op == NULL) {
		call_fail_with(cl, &err);
		return;
	}
	if (!may_call(cl, who, op->province)) {
		tally_call_op_destroy(op);
		return;
	}
	/* Journaled with the call; NULL (no label) without memory. */
	op->by = tally_label_clean(auth_label(who));
	submit_call(cl, op, auth_label(who));
}

/* POST /v1/calls/{n}/retract: a declared call, kept but marked retracted. */
void
calls_http_retract(struct call *cl, const char *id)
{
	const struct token *who;
	struct tally_call_op *op;
	const char *p;

	if (!ingest_gate(cl, &who))
		return;
	/* An id is "d<n>" or "c<n>.<k>" (tally/calls.h): anything longer or
	 * outside [a-z0-9.] names no call. */
	for (p = id; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
	    *p == '.'; p++)
		;
	if (*p != '\0' || p == id || (size_t)(p - id) >= TALLY_CALL_ID_MAX) {
		call_fail(cl, 404, "unknown_call", NULL, "no call \"%.40s\": "
		    "a call's id is its \"id\" in GET /v1/calls", id);
		return;
	}
	/* The body, if any, says nothing: a retraction is its path. */
	if (cl->rq->body_len > 0) {
		json_t *body = ingest_body(cl);
		if (body == NULL)
			return;
		if (!json_is_object(body) || json_object_size(body) > 0) {
			json_decref(body);
			call_fail(cl, 422, "unknown_field", NULL, "a retraction "
			    "takes no fields: send {} or no body");
			return;
		}
		json_decref(body);
	}
	if (!may_call(cl, who, SIZE_MAX))
		return;
	if ((op = tally_call_op_retract(id)) == NULL) {
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "nothing was applied, try again");
		return;
	}
	submit_call(cl, op, auth_label(who));
}
