/*
 * contests_batch.c - POST /v1/results across contests (issue 23): a batch
 * whose entries carry "contest": id is applied whole, in every contest it
 * names, or not at all.
 *
 * An entry without "contest" is of the route's contest (the first on
 * /v1/results, the named one on /v1/contests/{c}/results).  A batch of the
 * route's contest only is today's batch (ingest_batch), answer for answer.
 * Otherwise every entry is read against its contest's definition and the
 * token's scope, then the batch waits in contests.c's queue for a journal
 * job with nothing else of its contests (batch_run): each contest's part
 * is checked against that contest's durable results, and only when every
 * part passes are the parts encoded, one record per contest, each marked
 * "batch": [i, n], and handed to the journal as one write.  A part is then
 * its core's round: core_log_done applies and answers it, and the batch is
 * answered when its last part is.  Replay (contests_replay) applies the
 * parts only once the last is read, and the journal cuts a batch that a
 * torn write left unfinished: after a crash the batch is there whole or not
 * at all.
 *
 * Loop thread only [L].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "call.h"
#include "contests.h"
#include "core.h"
#include "ingest.h"
#include "log.h"
#include "reply.h"
#include "server.h"
#include "tlog_contests.h"
#include "util.h"

struct batch;

/* One contest's entries of a batch. */
struct batch_part {
	struct batch		*b;
	size_t			 contest;	/* its index in the registry (a
						   reload may move it: batch_run
						   finds it again by core) */
	struct core		*core;		/* its contest's */
	struct tally_feed	**feeds;	/* until checked */
	size_t			*index;		/* per feed: its entry */
	size_t			 n;
	struct pending		*p;		/* checked, not started */
	bool			 has_new;
	bool			 started;	/* the core answers it */
	enum core_outcome_kind	 kind;
	int			 log_err;
	uint64_t		 version;
};

struct batch {
	struct contests_group	 g;		/* contests.c's; first */
	struct contests		*cs;
	struct api		*api;		/* the route's */
	const struct route	*rt;
	void			*ctx;		/* the server's request */
	size_t			 n;		/* entries */
	struct core		**core;		/* per entry: its contest's */
	enum tally_check	*chk;		/* per entry */
	size_t			*province;	/* per entry */
	uint64_t		*revision;	/* per entry */
	struct batch_part	*parts;
	size_t			 n_parts;
	size_t			 waiting;	/* started parts unanswered */
	char			 label[64];
};

static void
batch_free(struct batch *b)
{
	size_t k, i;

	for (k = 0; k < b->n_parts; k++) {
		struct batch_part *pt = &b->parts[k];
		for (i = 0; pt->feeds != NULL && i < pt->n; i++)
			tally_feed_destroy(pt->feeds[i]);
		free(pt->feeds);
		core_part_free(pt->p);
		free(pt->index);
	}
	free(b->parts);
	free(b->core);
	free(b->chk);
	free(b->province);
	free(b->revision);
	free(b);
}

/* The pending request's answer: reply, count, resume; b is freed. */
static void
batch_reply(struct batch *b, struct http_reply *reply)
{
	call_count(b->api, b->rt->id, reply->status);
	server_resume(b->ctx, reply);
	batch_free(b);
}

/* A refusal of the pending request (err), and b is freed. */
static void
batch_fail(struct batch *b, const struct tally_error *err)
{
	struct http_request rq;
	struct http_reply reply;
	struct call cl = { b->api, &rq, &reply, b->rt, NULL, false };

	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.path = b->rt->pattern;
	memset(&reply, 0, sizeof(reply));
	call_fail_with(&cl, err);
	batch_reply(b, &reply);
}

/* The answer once every part is: applied, duplicate, or 503 for all. */
static void
batch_answer(struct batch *b)
{
	struct http_request rq;
	struct http_reply reply;
	struct call cl = { b->api, &rq, &reply, b->rt, NULL, false };
	json_t *o, *results, *cv;
	bool applied = false;
	size_t i, k;

	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.path = b->rt->pattern;
	memset(&reply, 0, sizeof(reply));
	for (k = 0; k < b->n_parts; k++) {
		struct batch_part *pt = &b->parts[k];
		if (pt->kind == CORE_STOPPING) {
			call_fail(&cl, 503, "shutting_down", NULL, "tallyd is "
			    "stopping; the batch is not known to be applied: "
			    "retry after the restart (a repeat of an applied "
			    "revision is answered \"duplicate\")");
			http_body_header(reply.body, "Retry-After", "5");
			http_body_header(reply.body, "Connection", "close");
			batch_reply(b, &reply);
			return;
		}
		if (pt->kind == CORE_UNAVAILABLE) {
			call_fail(&cl, 503, "journal_unavailable", NULL, "the "
			    "journal could not be written (%s); nothing was "
			    "applied in any contest: retry later",
			    strerror(pt->log_err));
			http_body_header(reply.body, "Retry-After", "5");
			batch_reply(b, &reply);
			return;
		}
		if (pt->kind == CORE_APPLIED)
			applied = true;
		if (!pt->started)	/* every feed a duplicate */
			pt->version = core_state(pt->core)->version;
	}
	o = json_object();
	results = json_array();
	cv = json_array();
	for (k = 0; k < b->n_parts; k++) {
		struct batch_part *pt = &b->parts[k];
		json_t *row = json_pack("{sssssI}", "id",
		    core_election(pt->core)->id, "status",
		    pt->kind == CORE_APPLIED ? "applied" : "duplicate",
		    "version", (json_int_t)pt->version);
		uint64_t index;
		char leaf[48];
		/* The receipt of the part's version, in its contest's log. */
		if (row != NULL && pt->kind == CORE_APPLIED &&
		    tlog_contests_receipt(pt->core, pt->version, &index,
		    leaf) == 0)
			json_object_set_new(row, "log", json_pack("{sIss}",
			    "index", (json_int_t)index, "leaf_hash", leaf));
		json_array_append_new(cv, row);
	}
	for (i = 0; i < b->n; i++) {
		struct batch_part *pt;
		const struct tally_election *e;
		for (k = 0; b->parts[k].core != b->core[i]; k++)
			;
		pt = &b->parts[k];
		e = core_election(pt->core);
		if (b->chk[i] == TALLY_CHECK_NEW)
			log_info("applied %s revision %llu of contest %s as its "
			    "version %llu (token %s, a batch across contests)",
			    e->provinces[b->province[i]].id,
			    (unsigned long long)b->revision[i], e->id,
			    (unsigned long long)pt->version, b->label);
		json_array_append_new(results, json_pack("{sssssIsssI}",
		    "contest", e->id, "province",
		    e->provinces[b->province[i]].id, "revision",
		    (json_int_t)b->revision[i], "status",
		    b->chk[i] == TALLY_CHECK_NEW ? "applied" : "duplicate",
		    "version", (json_int_t)pt->version));
	}
	json_object_set_new(o, "status", json_string(applied ? "applied" :
	    "duplicate"));
	json_object_set_new(o, "results", results);
	json_object_set_new(o, "contests", cv);
	reply_json(&reply, applied ? 201 : 200, o);
	batch_reply(b, &reply);
}

/* A started part's answer, from its core's core_log_done (or abandon). */
static void
part_done(void *ctx, const struct core_outcome *out)
{
	struct batch_part *pt = ctx;
	struct batch *b = pt->b;

	pt->kind = out->kind;
	pt->log_err = out->log_err;
	pt->version = out->version;
	if (--b->waiting == 0)
		batch_answer(b);
}

/* err's field, of feed `feed` of part pt, as the batch's entry names it. */
static void
part_error(const struct batch_part *pt, size_t feed, struct tally_error *err)
{
	char fld[sizeof(err->field)], msg[sizeof(err->message)];

	if (feed == SIZE_MAX)
		return;
	snprintf(fld, sizeof(fld), "%s", err->field);
	snprintf(err->field, sizeof(err->field), "/results/%zu%.160s",
	    pt->index[feed], fld);
	snprintf(msg, sizeof(msg), "%s", err->message);
	snprintf(err->message, sizeof(err->message), "%.240s; nothing was "
	    "applied in any contest", msg);
}

/*
 * The batch's turn (contests.c): every part checked against its contest's
 * durable results, then all of them written in one job, or none.
 */
static int
batch_run(struct contests_group *g)
{
	struct batch *b = (struct batch *)g;
	struct tally_error err;
	size_t k, i, bad, m = 0, *list = NULL;
	char *buf = NULL, at[32];
	size_t len = 0, cap = 0;
	uint64_t seq;

	for (k = 0; k < b->n_parts; k++) {
		struct batch_part *pt = &b->parts[k];
		/* Where a reload may have moved it (none removes it: it
		 * waits for this batch). */
		pt->contest = contests_find(b->cs, core_election(pt->core)->id);
		if (pt->contest == SIZE_MAX ||
		    contests_core(b->cs, pt->contest) != pt->core)
			fatalx("a batch across contests lost contest %s",
			    core_election(pt->core)->id);
		if (!contests_group_free(b->cs, pt->contest))
			return 1;
	}
	for (k = 0; k < b->n_parts; k++) {
		struct batch_part *pt = &b->parts[k];
		const enum tally_check *chk;
		pt->p = core_part_check(pt->core, pt->feeds, pt->n, part_done, pt, &pt->has_new, &bad, &err);
		pt->feeds = NULL;
		if (pt->p == NULL) {
			part_error(pt, bad, &err);
			batch_fail(b, &err);
			return 0;
		}
		chk = core_part_checks(pt->p);
		for (i = 0; i < pt->n; i++)
			b->chk[pt->index[i]] = chk[i];
		pt->kind = pt->has_new ? CORE_APPLIED : CORE_DUPLICATE;
		if (pt->has_new)
			m++;
	}
	if (m == 0) {
		batch_answer(b);
		return 0;
	}
	if ((list = calloc(m, sizeof(*list))) == NULL)
		goto nomem;
	seq = contests_group_seq(b->cs);
	time_rfc3339(time(NULL), at, sizeof(at));
	for (k = 0, i = 0; k < b->n_parts; k++) {
		struct batch_part *pt = &b->parts[k];
		if (!pt->has_new)
			continue;
		if (core_part_encode(pt->core, pt->p,
		    i + 1, m, seq + i, at, &buf, &len, &cap) == -1)
			goto nomem;
		list[i++] = pt->contest;
	}
	/* From here the cores answer the parts (part_done). */
	for (k = 0; k < b->n_parts; k++) {
		struct batch_part *pt = &b->parts[k];
		if (!pt->has_new)
			continue;
		core_part_start(pt->core, pt->p);
		pt->p = NULL;
		pt->started = true;
		b->waiting++;
	}
	contests_group_append(b->cs, buf, len, m, list, m);
	free(list);
	return 0;
nomem:
	free(buf);
	free(list);
	tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
	    "out of memory; nothing was applied in any contest, try again");
	batch_fail(b, &err);
	return 0;
}

static void
batch_stop(struct contests_group *g)
{
	struct batch *b = (struct batch *)g;
	size_t k;

	for (k = 0; k < b->n_parts; k++)
		b->parts[k].kind = CORE_STOPPING;
	batch_answer(b);
}

/*
 * ?dry_run=1 across contests: each contest's part as its own dry run
 * would answer it, under "contests"; nothing is journaled or applied.
 */
static void
batch_dry_run(struct call *cl, struct batch *b)
{
	json_t *o = json_object(), *a = json_array(), *one;
	struct tally_error err;
	enum tally_check *chk;
	size_t k;

	json_object_set_new(o, "dry_run", json_true());
	json_object_set_new(o, "contests", a);
	for (k = 0; k < b->n_parts; k++) {
		struct batch_part *pt = &b->parts[k];
		if ((chk = calloc(pt->n, sizeof(*chk))) == NULL) {
			tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory; try again");
			goto fail;
		}
		one = tally_render_dry_run(core_state(pt->core), pt->feeds,
		    pt->n, chk, &err);
		free(chk);
		if (one == NULL) {
			/* Its field is "/results/i" of the part when n > 1. */
			size_t feed = 0;
			const char *rest = err.field;
			char fld[sizeof(err.field)];
			if (pt->n > 1 && sscanf(err.field, "/results/%zu",
			    &feed) == 1 && feed < pt->n) {
				rest = strchr(err.field + 9, '/');
				rest = rest != NULL ? rest : "";
			}
			snprintf(fld, sizeof(fld), "%s", rest);
			snprintf(err.field, sizeof(err.field), "%s", fld);
			part_error(pt, feed, &err);
			goto fail;
		}
		json_object_set_new(one, "id", json_string(
		    core_election(pt->core)->id));
		json_object_del(one, "dry_run");
		json_array_append_new(a, one);
	}
	reply_json(cl->reply, 200, o);
	batch_free(b);
	return;
fail:
	json_decref(o);
	call_fail_with(cl, &err);
	batch_free(b);
}

/* The contest of each entry (SIZE_MAX: none given); -1 after a refusal. */
static int
entry_contests(struct call *cl, struct contests *cs, json_t *arr,
    size_t *ci)
{
	json_t *entry, *c;
	size_t i;

	json_array_foreach(arr, i, entry) {
		ci[i] = SIZE_MAX;
		if (!json_is_object(entry) ||
		    (c = json_object_get(entry, "contest")) == NULL)
			continue;
		if (!json_is_string(c)) {
			char fp[64];
			snprintf(fp, sizeof(fp), "/results/%zu/contest", i);
			call_fail(cl, 422, "wrong_type", fp, "\"contest\" is a "
			    "contest id, a string (GET /v1/contests lists "
			    "them); nothing was applied");
			return -1;
		}
		if ((ci[i] = contests_find(cs, json_string_value(c))) ==
		    SIZE_MAX) {
			char fp[64];
			snprintf(fp, sizeof(fp), "/results/%zu/contest", i);
			call_fail(cl, 404, "unknown_contest", fp, "no contest "
			    "\"%.64s\" (GET /v1/contests lists them); nothing "
			    "was applied", json_string_value(c));
			return -1;
		}
	}
	json_array_foreach(arr, i, entry)
		if (json_is_object(entry))
			json_object_del(entry, "contest");
	return 0;
}

/*
 * Read every entry against its contest (ci) and the token (who), into b's
 * parts.  -1 after a refusal (b freed by the caller).
 */
static int
batch_read(struct call *cl, struct batch *b, const struct token *who,
    json_t *arr, const size_t *ci)
{
	struct tally_error err, many[16], one;
	struct tally_errors all = { many, 16, 0 };
	struct tally_feed **feeds;
	json_t *entry;
	size_t i, j, k;
	char ptr[64];
	bool bad = false;

	if ((feeds = calloc(b->n, sizeof(*feeds))) == NULL)
		goto nomem;
	/* The token's contests first: a forbidden one changes nothing. */
	for (i = 0; i < b->n; i++) {
		const char *cid = ci[i] == 0 ? NULL : contests_id(b->cs, ci[i]);
		b->core[i] = contests_core(b->cs, ci[i]);
		if (!auth_may_post_contest(who, cid)) {
			snprintf(ptr, sizeof(ptr), "/results/%zu/contest", i);
			call_fail(cl, 403, "forbidden_contest", ptr, "this token "
			    "(%s) may not post to contest %s (entry %zu): its "
			    "scope in the token file names other contests; "
			    "nothing was applied", auth_label(who),
			    contests_id(b->cs, ci[i]), i);
			goto fail;
		}
	}
	json_array_foreach(arr, i, entry) {
		const struct tally_election *e =
		    core_election(contests_core(b->cs, ci[i]));
		snprintf(ptr, sizeof(ptr), "/results/%zu", i);
		/* Every entry is read: all their problems are answered. */
		if ((feeds[i] = tally_feed_parse_all(e, NULL, entry, ptr, &one,
		    &all)) == NULL) {
			if (!bad || one.kind == TALLY_ERROR_NOMEM)
				err = one;
			if (one.kind == TALLY_ERROR_NOMEM) {
				call_fail_with(cl, &err);
				goto fail;
			}
			bad = true;
			continue;
		}
		for (j = 0; j < i; j++)
			if (feeds[j] != NULL && ci[j] == ci[i] &&
			    feeds[j]->province == feeds[i]->province) {
				snprintf(ptr, sizeof(ptr), "/results/%zu/province",
				    i);
				call_fail(cl, 422, "duplicate_province", ptr,
				    "province %s of contest %s is already in "
				    "this batch at /results/%zu; send one result "
				    "per province", e->provinces[
				    feeds[i]->province].id, e->id, j);
				goto fail;
			}
	}
	if (bad) {
		cl->all = &all;
		call_fail_with(cl, &err);
		cl->all = NULL;
		goto fail;
	}
	for (i = 0; i < b->n; i++) {
		const char *cid = ci[i] == 0 ? NULL : contests_id(b->cs, ci[i]);
		const struct tally_election *e =
		    core_election(contests_core(b->cs, ci[i]));
		const char *pid = e->provinces[feeds[i]->province].id;
		if (!auth_may_post(who, cid, pid)) {
			snprintf(ptr, sizeof(ptr), "/results/%zu/province", i);
			call_fail(cl, 403, "forbidden_province", ptr, "this token "
			    "may not post results for province %s of contest "
			    "%s; nothing was applied", pid, e->id);
			goto fail;
		}
		feeds[i]->by = tally_label_clean(auth_label(who));
		b->province[i] = feeds[i]->province;
		b->revision[i] = feeds[i]->revision;
	}
	/* The parts, in the order their contests first appear. */
	for (i = 0; i < b->n; i++) {
		struct batch_part *pt;
		for (k = 0; k < b->n_parts && b->parts[k].contest != ci[i]; k++)
			;
		pt = &b->parts[k];
		if (k == b->n_parts) {
			b->n_parts++;
			pt->b = b;
			pt->contest = ci[i];
			pt->core = contests_core(b->cs, ci[i]);
			if ((pt->feeds = calloc(b->n, sizeof(*pt->feeds))) ==
			    NULL || (pt->index = calloc(b->n,
			    sizeof(*pt->index))) == NULL)
				goto nomem;
		}
		pt->index[pt->n] = i;
		pt->feeds[pt->n++] = feeds[i];
		feeds[i] = NULL;
	}
	free(feeds);
	return 0;
nomem:
	call_fail(cl, 503, "out_of_memory", NULL, "out of memory; nothing was "
	    "applied, try again");
fail:
	for (i = 0; feeds != NULL && i < b->n; i++)
		tally_feed_destroy(feeds[i]);
	free(feeds);
	return -1;
}

void
contests_post_batch(struct call *cl, const char *id)
{
	struct api *fa = cl->api->first != NULL ? cl->api->first : cl->api;
	struct contests *cs = fa->contests;
	const struct token *who;
	struct batch *b = NULL;
	struct core_log_status st;
	json_t *body, *arr;
	size_t *ci = NULL, route, i, n;
	bool cross = false;

	if (cs == NULL || contests_count(cs) == 1) {
		ingest_post_batch(cl, id);
		return;
	}
	route = cl->api->contest == NULL ? 0 : contests_find(cs,
	    cl->api->contest);
	/*
	 * The token's contest is checked per entry, once the body says
	 * which; its rate is taken only then (a refused contest takes
	 * nothing, as feed_gate does).
	 */
	if (!ingest_admit_token(cl, &who) || (body = ingest_body(cl)) == NULL)
		return;
	arr = json_object_get(body, "results");
	n = json_is_object(body) && json_is_array(arr) ? json_array_size(arr) :
	    0;
	if (n > 0 && (ci = calloc(n, sizeof(*ci))) == NULL) {
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "nothing was applied, try again");
		goto done;
	}
	if (n > 0 && entry_contests(cl, cs, arr, ci) == -1)
		goto done;
	for (i = 0; i < n; i++) {
		if (ci[i] == SIZE_MAX)
			ci[i] = route;
		if (ci[i] != route)
			cross = true;
	}
	if (cross && core_log_status(contests_core(cs, 0), &st)) {
		/* Cluster mode: each contest is a stream of its own, and two
		 * streams commit apart (cluster_contests.c). */
		call_fail(cl, 422, "batch_in_cluster", "/results", "cluster "
		    "mode cannot apply a batch across contests as one (each "
		    "contest is a stream of its own): post each contest's part "
		    "separately, one province per request to /v1/contests/"
		    "{contest}/provinces/{id}/results; nothing was applied");
		goto done;
	}
	if (!cross) {
		/* The route's contest only: today's batch. */
		if (!auth_may_post_contest(who, cl->api->contest)) {
			call_fail(cl, 403, "forbidden_contest", NULL, "this token "
			    "(%s) may not post to contest %s: its scope in the "
			    "token file names other contests (CONTEST/id or "
			    "CONTEST/*)", auth_label(who),
			    contests_id(cs, route));
			goto done;
		}
		if (!ingest_take_rate(cl, who))
			goto done;
		free(ci);
		ingest_batch(cl, who, body);
		return;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->core = calloc(n, sizeof(*b->core))) == NULL ||
	    (b->chk = calloc(n, sizeof(*b->chk))) == NULL ||
	    (b->province = calloc(n, sizeof(*b->province))) == NULL ||
	    (b->revision = calloc(n, sizeof(*b->revision))) == NULL ||
	    (b->parts = calloc(n, sizeof(*b->parts))) == NULL) {
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "nothing was applied, try again");
		goto done;
	}
	b->cs = cs;
	b->n = n;
	if (batch_read(cl, b, who, arr, ci) == -1 || !ingest_take_rate(cl, who))
		goto done;
	json_decref(body);
	free(ci);
	if (cl->dry_run) {
		batch_dry_run(cl, b);
		return;
	}
	b->g.run = batch_run;
	b->g.stop = batch_stop;
	b->api = cl->api;
	b->rt = cl->rt;
	b->ctx = cl->rq->ctx;
	snprintf(b->label, sizeof(b->label), "%s", auth_label(who));
	cl->reply->pending = true;
	contests_group_submit(cs, &b->g);
	return;
done:
	if (b != NULL)
		batch_free(b);
	free(ci);
	json_decref(body);
}
