/*
 * ingest.c - feeds and lots on their way in: admission before the body is
 * read (listener, token, media type, rate), the POST handlers (one
 * province, a batch, a lot), ?dry_run=1, and the answer once the core has
 * made the request durable (post_done).
 *
 * Every feed passes the same gates in the same order: feed_admit (at the
 * headers, api_admit, and again with the body), the token's rate, the
 * body, the token's provinces (may_post), then one submission path for
 * feeds and lots (submit).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "core.h"
#include "http_strict.h"
#include "log.h"
#include "server.h"
#include "tlog_contests.h"
#include "call.h"
#include "ingest.h"
#include "reply.h"


/*
 * The receipt of an applied version of c's contest: its place in that
 * contest's transparency log (index = version - 1) and its leaf hash; GET
 * /log/proof/{index} (/v1/contests/{c}/log/proof/{index}) proves it
 * against a signed checkpoint (docs/VERIFY.md).
 */
static const char *
ingest_receipt(char *buf, size_t size, const struct core *c, uint64_t version)
{
	uint64_t index;
	char b64[48];

	if (tlog_contests_receipt(c, version, &index, b64) == -1)
		return NULL;
	/* Written out, not through jansson: one per version (the base64
	 * alphabet needs no escaping). */
	snprintf(buf, size, ",\"log\":{\"index\":%llu,\"leaf_hash\":\"%s\"}",
	    (unsigned long long)index, b64);
	return buf;
}
/* A feed request waiting for the core's answer. */
struct post {
	struct api	*api;
	const struct route *rt;		/* the POST's route, for the counts */
	void		*ctx;		/* the server's request */
	bool		 batch;
	bool		 lot;
	char		 label[64];	/* the token's, for the log */
};

static bool
is_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/*
 * The charset parameter of a JSON Content-Type, if any, is UTF-8: a body in
 * another charset would be read as UTF-8 and mangled, so it is refused.
 */
static bool
is_utf8_charset(const char *ct)
{
	const char *p;

	for (p = strchr(ct, ';'); p != NULL; p = strchr(p + 1, ';')) {
		const char *v = p + 1;
		size_t n;
		while (*v == ' ' || *v == '\t')
			v++;
		if (strncasecmp(v, "charset", 7) != 0)
			continue;
		v += 7;
		while (*v == ' ')
			v++;
		if (*v++ != '=')
			return false;
		while (*v == ' ')
			v++;
		if (*v == '"')
			v++;
		n = strcspn(v, "\"; \t");
		if (!((n == 5 && strncasecmp(v, "utf-8", 5) == 0) ||
		    (n == 4 && strncasecmp(v, "utf8", 4) == 0)))
			return false;
	}
	return true;
}

/*
 * What a feed must show before its body is read: the right listener, a
 * known token and a UTF-8 JSON body sent as is.  Fills the reply and returns
 * false when refused.
 */
static bool
feed_admit(struct call *cl, const struct token **who)
{
	const struct http_request *rq = cl->rq;
	const char *h = rq->authorization;

	if (!rq->ingest) {
		call_fail(cl, 405, "method_not_allowed", NULL,
		    "feeds are accepted "
		    "on the ingest listener only (%s), not on the public one",
		    cl->api->ingest_addr);
		http_body_header(cl->reply->body, "Allow", "");
		return false;
	}
	if (auth_check_memo(cl->api->auth, h, who, rq->memo) == -1) {
		/*
		 * In the client's terms: what to send (the header, an
		 * ingest token), never where the daemon keeps its tokens --
		 * a poster cannot see the server's files.
		 */
		if (h == NULL)
			call_fail(cl, 401, "unauthorized", NULL,
			    "a feed needs an "
			    "ingest token: send the header Authorization: Bearer "
			    "<ingest token>, with the token this election's "
			    "operator issued for your province");
		else if (strncasecmp(h, "Bearer", 6) == 0 &&
		    h[6 + strspn(h + 6, " \t")] == '\0')
			/* "Bearer $TOKEN" with TOKEN unset in the shell. */
			call_fail(cl, 401, "unauthorized", NULL,
			    "the Authorization "
			    "header holds no token after \"Bearer\": send "
			    "Authorization: Bearer <ingest token>");
		else if (strncasecmp(h, "Bearer ", 7) != 0)
			call_fail(cl, 401, "unauthorized", NULL,
			    "the Authorization "
			    "header must be \"Bearer <ingest token>\" (another "
			    "scheme was sent)");
		else
			call_fail(cl, 401, "unauthorized", NULL,
			    "this ingest "
			    "token is not accepted here (mistyped, cut short, "
			    "revoked or issued for another server): send "
			    "Authorization: Bearer <ingest token> with the whole "
			    "token this election's operator issued for your "
			    "province");
		http_body_header(cl->reply->body, "WWW-Authenticate",
		    "Bearer realm=\"tallyd\"");
		return false;
	}
	if (!is_json_type(rq->content_type)) {
		call_fail(cl, 415, "unsupported_media_type", NULL,
		    "send the result as Content-Type: application/json");
		return false;
	}
	if (!is_utf8_charset(rq->content_type)) {
		call_fail(cl, 415, "unsupported_media_type", NULL,
		    "a feed is UTF-8 JSON: send Content-Type: application/json "
		    "(or with charset=utf-8)");
		return false;
	}
	if (rq->content_encoding != NULL &&
	    strcasecmp(rq->content_encoding, "identity") != 0) {
		call_fail(cl, 415, "unsupported_media_type", NULL,
		    "Content-Encoding %.40s is not decoded here: send the body "
		    "uncompressed", rq->content_encoding);
		return false;
	}
	return true;
}

/* 429 with Retry-After: the token is over its ingest_rate. */
static void
rate_refuse(struct call *cl, const struct token *who, double retry)
{
	char buf[32];

	call_fail(cl, 429, "rate_limited", NULL,
	    "this token (%s) sent more feeds "
	    "than ingest_rate allows; retry after the time in Retry-After",
	    auth_label(who));
	snprintf(buf, sizeof(buf), "%d", (int)retry + 1);
	http_body_header(cl->reply->body, "Retry-After", buf);
}

static double
mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The first gate of every feed: admission (above), then the token's rate.
 * Fills the reply and returns false when refused.
 */
static bool
feed_rate(struct call *cl, const struct token *who)
{
	double retry;

	if (!auth_take(cl->api->auth, who, mono_seconds(), &retry)) {
		rate_refuse(cl, who, retry);
		return false;
	}
	return true;
}

static bool
feed_gate(struct call *cl, const struct token **who)
{
	if (!feed_admit(cl, who))
		return false;
	/*
	 * A token scoped to other contests (issue 23) is refused before
	 * anything else, its rate bucket included: it changes nothing here.
	 */
	if (!auth_may_post_contest(*who, cl->api->contest)) {
		call_fail(cl, 403, "forbidden_contest", NULL, "this token (%s) "
		    "may not post to contest %s: its scope in the token file "
		    "names other contests (CONTEST/id or CONTEST/*)",
		    auth_label(*who), core_election(cl->api->core)->id);
		return false;
	}
	return feed_rate(cl, *who);
}

/* The body as JSON (new), or NULL with a 400 or 422 reply. */
static json_t *
parse_body(struct call *cl)
{
	const struct http_request *rq = cl->rq;
	unsigned long nomem = tally_json_failures();
	json_error_t jerr;
	json_t *body;

	body = json_loadb(rq->body ? rq->body : "", rq->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (tally_json_failures() != nomem) {
		/* jansson may have dropped characters: see tally_json_init. */
		json_decref(body);
		call_fail(cl, 503, "out_of_memory", NULL,
		    "out of memory reading the "
		    "body; nothing was applied, try again");
		return NULL;
	}
	if (body == NULL && json_error_code(&jerr) == json_error_numeric_overflow) {
		/* Well-formed JSON whose number no count can reach. */
		call_fail(cl, 422, "out_of_range", NULL, "a number at line %d, "
		    "column %d is too large: counts are integers from 0 to "
		    "10^12", jerr.line, jerr.column);
		return NULL;
	}
	if (body == NULL)
		call_fail(cl, 400, "invalid_json", NULL,
		    "the body is not valid JSON "
		    "(line %d, column %d): %s", jerr.line, jerr.column,
		    jerr.text);
	return body;
}

/* Why a cluster node answered 503 (core_cluster.c's errno). */
static const char *
cluster_why(int err)
{
	switch (err) {
	case EAGAIN:
		return "this node could not hand it to NATS: the servers are "
		    "unreachable or not answering";
	case EIO:
		return "the stream refused it or did not acknowledge it in "
		    "time: no stream leader, or NATS unreachable";
	case EBUSY:
		return "other records of the province kept arriving first";
	case ENOMEM:
		return "this node lost track of its outcome (out of memory)";
	default:
		return strerror(err);
	}
}

/* The core's answer to a POST: the reply, counted when it is given. */
/*
 * The answer to an applied or duplicate feed (new, NULL without memory),
 * written out rather than built with jansson: one per POST, in the bytes
 * jansson's compact dump gave ({"province", "revision", "status",
 * "version"} for one feed; {"status", "version", "results": [...]} for a
 * batch), `member` (borrowed, may be NULL) last, and a newline.  Province
 * ids need no escaping: they are A-Z a-z 0-9 _ - . (tally_id_is_valid).
 */
/* Append s at b + *len (the caller sized b). */
static void
put_str(char *b, size_t *len, const char *s)
{
	size_t n = strlen(s);

	memcpy(b + *len, s, n);
	*len += n;
}

/* Append v in decimal, as %lld writes it. */
static void
put_ll(char *b, size_t *len, long long v)
{
	char d[24];
	size_t n = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v :
	    (unsigned long long)v;

	do
		d[n++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		b[(*len)++] = '-';
	while (n > 0)
		b[(*len)++] = d[--n];
}

static char *
post_answer(const struct tally_election *e, const struct core_outcome *out,
    bool batch, const char *member)
{
	size_t i, len = 0, cap = 96 + (member ? strlen(member) : 0) +
	    out->n * (TALLY_ID_MAX + 96);
	char *b;

	/*
	 * Written by hand, not with snprintf: one answer per POST, and the
	 * format engine cost ~2.5k instructions of it (issue 24).  The
	 * bytes are the ones the snprintf calls wrote (test_api.py compares
	 * them with jansson's compact dump).
	 */
	if ((b = malloc(cap)) == NULL)
		return NULL;
	if (batch) {
		put_str(b, &len, out->kind == CORE_APPLIED ?
		    "{\"status\":\"applied\",\"version\":" :
		    "{\"status\":\"duplicate\",\"version\":");
		put_ll(b, &len, (long long)out->version);
		put_str(b, &len, ",\"results\":[");
	}
	for (i = 0; i < out->n && (batch || i == 0); i++) {
		put_str(b, &len, i ? ",{\"province\":\"" : "{\"province\":\"");
		put_str(b, &len, e->provinces[out->province[i]].id);
		put_str(b, &len, "\",\"revision\":");
		put_ll(b, &len, (long long)out->revision[i]);
		put_str(b, &len, out->chk[i] == TALLY_CHECK_NEW ?
		    ",\"status\":\"applied\"" : ",\"status\":\"duplicate\"");
		if (batch)
			b[len++] = '}';
	}
	if (batch) {
		b[len++] = ']';
	} else {
		put_str(b, &len, out->n ? ",\"version\":" : "{\"version\":");
		put_ll(b, &len, (long long)out->version);
	}
	if (member != NULL)
		put_str(b, &len, member);
	put_str(b, &len, "}\n");
	b[len] = '\0';
	return b;
}

static void
post_done(void *arg, const struct core_outcome *out)
{
	struct post *po = arg;
	struct api *api = po->api;
	struct http_request rq;
	struct http_reply reply;
	struct call cl = { api, &rq, &reply, po->rt, NULL, false };
	const struct tally_election *e = core_election(api->core);
	char receipt[128];
	size_t i;

	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.path = po->rt->pattern;
	memset(&reply, 0, sizeof(reply));
	switch (out->kind) {
	case CORE_REJECTED:
		call_fail_with(&cl, out->err);
		break;
	case CORE_UNAVAILABLE:
		if (strcmp(core_log_name(api->core), "cluster") == 0) {
			/* Not known to be in the stream: a retry is safe. */
			call_fail(&cl, 503, "cluster_unavailable", NULL, "the "
			    "stream did not take the record (%s); retry: a "
			    "repeat of an applied revision is answered "
			    "\"duplicate\"", cluster_why(out->log_err));
			http_body_header(reply.body, "Retry-After", "1");
			break;
		}
		call_fail(&cl, 503, "journal_unavailable", NULL,
		    "the journal could "
		    "not be written (%s); nothing was applied: retry later",
		    strerror(out->log_err));
		http_body_header(reply.body, "Retry-After", "5");
		break;
	case CORE_STOPPING:
		call_fail(&cl, 503, "shutting_down", NULL,
		    "tallyd is stopping; the "
		    "result is not known to be applied: retry after the "
		    "restart (a repeat of an applied revision is answered "
		    "\"duplicate\")");
		http_body_header(reply.body, "Retry-After", "5");
		http_body_header(reply.body, "Connection", "close");
		break;
	case CORE_APPLIED:
	case CORE_DUPLICATE:
		for (i = 0; i < out->n && out->kind == CORE_APPLIED; i++)
			if (out->chk[i] == TALLY_CHECK_NEW)
				log_info("applied %s%s revision %llu as version "
				    "%llu (token %s)", po->lot ? "a lot for " :
				    "", e->provinces[out->province[i]].id,
				    (unsigned long long)out->revision[i],
				    (unsigned long long)out->version, po->label);
		/* Each contest's version is in its own transparency log. */
		reply_json_text(&reply, out->kind == CORE_APPLIED ? 201 : 200,
		    post_answer(e, out, po->batch, out->kind == CORE_APPLIED ?
		    ingest_receipt(receipt, sizeof(receipt), api->core,
		    out->version) : NULL));
		break;
	}
	call_count(api, cl.rt->id, reply.status);
	server_resume(po->ctx, &reply);
	free(po);
}

/*
 * ?dry_run=1: what the feeds (taken) would change, answered now from the
 * applied state; nothing is journaled or applied.
 */
static void
dry_run(struct call *cl, struct tally_feed **feeds, size_t n, bool batch)
{
	struct tally_error err;
	enum tally_check *chk;
	json_t *o = NULL;
	size_t i;

	if ((chk = calloc(n ? n : 1, sizeof(*chk))) == NULL)
		tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory; try again");
	else
		o = tally_render_dry_run(core_state(cl->api->core), feeds, n,
		    chk, &err);
	for (i = 0; i < n; i++)
		tally_feed_destroy(feeds[i]);
	free(feeds);
	free(chk);
	if (o == NULL) {
		call_fail_with(cl, &err);
		return;
	}
	if (!batch) {
		/* A single POST's answer is flat, like the real one. */
		json_t *row = json_incref(json_array_get(json_object_get(o,
		    "results"), 0));
		json_object_del(o, "results");
		json_object_del(row, "status");
		json_object_update(o, row);
		json_decref(row);
	}
	reply_json(cl->reply, 200, o);
}

/* ?dry_run=1 for a lot (taken): what it would do, answered now. */
static void
lot_dry_run(struct call *cl, struct tally_lot *lot)
{
	struct tally_error err;
	enum tally_check chk;
	json_t *o = tally_render_lot_dry_run(core_state(cl->api->core), lot,
	    &chk, &err);

	tally_lot_destroy(lot);
	if (o == NULL)
		call_fail_with(cl, &err);
	else
		reply_json(cl->reply, 200, o);
}

/*
 * Hand a request to the core, now (?dry_run=1: dry_run) or when its round
 * is durable (post_done): the one submission path of feeds and lots, a lot
 * being one record answered like one feed.  Exactly one of feeds (the
 * array and its n feeds) and lot is given, and taken on every path.
 */
static void
submit(struct call *cl, struct tally_feed **feeds, size_t n,
    struct tally_lot *lot, bool batch)
{
	struct post *po;
	size_t i;
	int rc;

	if (cl->dry_run && lot == NULL) {
		dry_run(cl, feeds, n, batch);
		return;
	}
	if (cl->dry_run) {
		lot_dry_run(cl, lot);
		return;
	}
	if ((po = malloc(sizeof(*po))) == NULL) {
		for (i = 0; i < n; i++)
			tally_feed_destroy(feeds[i]);
		free(feeds);
		tally_lot_destroy(lot);
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "nothing was applied, try again");
		return;
	}
	po->api = cl->api;
	po->rt = cl->rt;
	po->ctx = cl->rq->ctx;
	po->batch = batch;
	po->lot = lot != NULL;
	{
		/* As snprintf "%s" would, cut to the field. */
		const char *by = lot != NULL ? (lot->by ? lot->by : "?") :
		    n > 0 && feeds[0]->by ? feeds[0]->by : "?";
		size_t k = strnlen(by, sizeof(po->label) - 1);
		memcpy(po->label, by, k);
		po->label[k] = '\0';
	}
	cl->reply->pending = true;
	rc = lot != NULL ? core_submit_lot(cl->api->core, lot, post_done, po) :
	    core_submit(cl->api->core, feeds, n, post_done, po);
	if (rc == -1) {
		free(po);
		cl->reply->pending = false;
		call_fail(cl, 503, "out_of_memory", NULL, "out of memory; "
		    "nothing was applied, try again");
	}
}

/*
 * May the token post for this province?  The one check of feeds and lots
 * alike (a batch names the entry: post_batch).  false after a 403.
 */
static bool
may_post(struct call *cl, const struct token *who, const char *province)
{
	/* A contest's provinces: its own (issue 23; NULL, the first's). */
	if (auth_may_post(who, cl->api->contest, province))
		return true;
	call_fail(cl, 403, "forbidden_province", NULL, "this token may not "
	    "post results for province %s of contest %s", province,
	    core_election(cl->api->core)->id);
	return false;
}

/*
 * The province a feed or a lot is posted for, or NULL after a refusal: the
 * token is checked first, so that ids are never answered without one.
 */
static const struct tally_province *
post_province_of(struct call *cl, const char *id, const struct token **who)
{
	const struct tally_election *e = core_election(cl->api->core);
	const struct tally_province *pv;

	if ((pv = tally_election_province(e, id)) == NULL) {
		/*
		 * The path names the province; "/province" is where a batch
		 * entry names it (/results/N/province), so both answers
		 * point at the same member.
		 */
		if (feed_gate(cl, who))
			call_fail(cl, 404, "unknown_province", "/province",
			    "no province \"%s\" in election %s (see "
			    "/v1/provinces)", id, e->id);
		return NULL;
	}
	if (!feed_gate(cl, who))
		return NULL;
	return pv;
}

/* POST /v1/provinces/{id}/results: one province's result. */
void
ingest_post_province(struct call *cl, const char *id)
{
	const struct tally_election *e = core_election(cl->api->core);
	const struct http_request *rq = cl->rq;
	const struct tally_province *pv;
	const struct token *who;
	struct tally_feed *f, **feeds;
	struct tally_error err;
	const char *province;
	json_t *body;

	if ((pv = post_province_of(cl, id, &who)) == NULL)
		return;
	province = pv->id;
	/* The usual body takes the fast path; anything else, the full one. */
	f = tally_feed_scan(e, province, rq->body ? rq->body : "", rq->body_len);
	if (f == NULL) {
		if ((body = parse_body(cl)) == NULL)
			return;
		struct tally_error many[16];
		struct tally_errors all = { many, 16, 0 };
		f = tally_feed_parse_all(e, province, body, "", &err, &all);
		json_decref(body);
		if (f == NULL) {
			cl->all = &all;
			call_fail_with(cl, &err);
			cl->all = NULL;
			return;
		}
	}
	if (!may_post(cl, who, province)) {
		tally_feed_destroy(f);
		return;
	}
	if ((feeds = malloc(sizeof(*feeds))) == NULL) {
		tally_feed_destroy(f);
		call_fail(cl, 503, "out_of_memory", NULL,
		    "out of memory; nothing "
		    "was applied, try again");
		return;
	}
	feeds[0] = f;
	/* Journaled beside the feed for its history; NULL on no memory. */
	f->by = tally_label_clean(auth_label(who));
	log_debug("accepted %s revision %llu (token %s)", province,
	    (unsigned long long)f->revision, auth_label(who));
	submit(cl, feeds, 1, NULL, false);
}

/* POST /v1/provinces/{id}/lot: the order drawn for a pending tie. */
void
ingest_post_lot(struct call *cl, const char *id)
{
	const struct tally_election *e = core_election(cl->api->core);
	const struct tally_province *pv;
	const struct token *who;
	struct tally_lot *lot;
	struct tally_error err;
	json_t *body;

	if ((pv = post_province_of(cl, id, &who)) == NULL ||
	    (body = parse_body(cl)) == NULL)
		return;
	lot = tally_lot_parse(e, pv->index, body, &err);
	json_decref(body);
	if (lot == NULL) {
		call_fail_with(cl, &err);
		return;
	}
	if (!may_post(cl, who, pv->id)) {
		tally_lot_destroy(lot);
		return;
	}
	lot->by = tally_label_clean(auth_label(who));
	submit(cl, NULL, 0, lot, false);
}

/*
 * A batch is all-or-nothing: every entry is parsed, authorised and checked
 * before any is applied, and one bad entry rejects the whole batch, named by
 * its JSON pointer.
 */
void
ingest_post_batch(struct call *cl, const char *id)
{
	const struct token *who;
	json_t *body;

	(void)id;
	if (feed_gate(cl, &who) && (body = parse_body(cl)) != NULL)
		ingest_batch(cl, who, body);
}

void
ingest_batch(struct call *cl, const struct token *who, json_t *body)
{
	const struct tally_election *e = core_election(cl->api->core);
	struct tally_feed **feeds = NULL;
	struct tally_error err, many[16];
	struct tally_errors all = { many, 16, 0 };
	json_t *arr, *entry, *v;
	const char *key;
	size_t i, j, n = 0;
	char ptr[64];
	bool bad = false;

	if (!json_is_object(body)) {
		tally_error_set(&err, TALLY_ERROR_INVALID, "wrong_type", "",
		    "the body must be {\"results\": [...]}");
		goto reject;
	}
	json_object_foreach(body, key, v) {
		if (strcmp(key, "results") != 0) {
			char fp[96];
			snprintf(fp, sizeof(fp), "/%.60s", key);
			tally_error_set(&err, TALLY_ERROR_INVALID, "unknown_field",
			    fp, "unknown field \"%.60s\"; the body is "
			    "{\"results\": [...]}", key);
			goto reject;
		}
	}
	arr = json_object_get(body, "results");
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		tally_error_set(&err, TALLY_ERROR_INVALID, arr ? "wrong_type" :
		    "missing_field", "/results", "\"results\" must be a non-empty "
		    "array of province results");
		goto reject;
	}
	n = json_array_size(arr);
	if ((feeds = calloc(n, sizeof(*feeds))) == NULL) {
		tally_error_set(&err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory; nothing was applied, try again");
		goto reject;
	}
	json_array_foreach(arr, i, entry) {
		struct tally_error one;
		snprintf(ptr, sizeof(ptr), "/results/%zu", i);
		/* Every entry is read: all their problems are answered. */
		if ((feeds[i] = tally_feed_parse_all(e, NULL, entry, ptr,
		    &one, &all)) == NULL) {
			if (!bad || one.kind == TALLY_ERROR_NOMEM)
				err = one;
			if (one.kind == TALLY_ERROR_NOMEM)
				goto reject;
			bad = true;
			continue;
		}
		for (j = 0; j < i; j++)
			if (feeds[j] != NULL &&
			    feeds[j]->province == feeds[i]->province) {
				tally_error_set(&err, TALLY_ERROR_INVALID,
				    "duplicate_province", ptr,
				    "province %s is already in this batch at "
				    "/results/%zu; send one result per province",
				    e->provinces[feeds[i]->province].id, j);
				snprintf(err.field, sizeof(err.field),
				    "%s/province", ptr);
				goto reject;
			}
	}
	if (bad)
		goto reject;
	for (i = 0; i < n; i++) {
		const char *pid = e->provinces[feeds[i]->province].id;
		if (!auth_may_post(who, cl->api->contest, pid)) {
			snprintf(ptr, sizeof(ptr), "/results/%zu/province", i);
			tally_error_set(&err, TALLY_ERROR_INVALID,
			    "forbidden_province", ptr, "this token may not post "
			    "results for province %s; nothing was applied", pid);
			json_decref(body);
			for (j = 0; j < n; j++)
				tally_feed_destroy(feeds[j]);
			free(feeds);
			call_fail(cl, 403, err.code, err.field, "%s", err.message);
			return;
		}
	}
	json_decref(body);
	for (i = 0; i < n; i++)
		feeds[i]->by = tally_label_clean(auth_label(who));
	submit(cl, feeds, n, NULL, true);
	return;
reject:
	cl->all = bad ? &all : NULL;
	call_fail_with(cl, &err);
	cl->all = NULL;
	for (i = 0; feeds != NULL && i < n; i++)
		tally_feed_destroy(feeds[i]);
	free(feeds);
	json_decref(body);
}

/*
 * A POST's query: `dry_run` once, 1/true/yes or 0/false/no, and nothing
 * else.  A misspelt or malformed parameter must never apply for real what
 * the poster meant to try (issue 21): 400 bad_query naming it.  false
 * after call_fail().
 */
struct post_query {
	struct call	*cl;
	bool		 bad;
	unsigned	 seen;
};

static void
post_query_arg(void *arg, const char *key, const char *value)
{
	struct post_query *q = arg;
	struct call *cl = q->cl;

	if (q->bad)
		return;
	q->bad = true;
	if (strcmp(key, "dry_run") != 0)
		call_fail(cl, 400, "bad_query", NULL, "unknown query parameter "
		    "\"%.64s\" on POST %s: the only one taken is dry_run=1 "
		    "(or true, yes; 0, false, no: a real post)", key,
		    cl->rt->pattern);
	else if (q->seen++ > 0)
		call_fail(cl, 400, "bad_query", NULL,
		    "dry_run is given more than "
		    "once: give it once, dry_run=1 or dry_run=0");
	else if (call_is_true(value))
		q->bad = false, cl->dry_run = true;
	else if (call_is_false(value))
		q->bad = false;
	else
		call_fail(cl, 400, "bad_query", NULL,
		    "dry_run=%.32s: the accepted "
		    "values are 1, true, yes (check, change nothing) and 0, "
		    "false, no (a real post)", value ? value : "");
}

bool
ingest_query(struct call *cl)
{
	struct post_query q = { cl, false, 0 };

	cl->dry_run = false;
	http_args_each(cl->rq, post_query_arg, &q);
	return !q.bad;
}

/*
 * Before the body is read: the feed admission (listener, token, content
 * type and encoding), the query, and the token's rate without taking from
 * it (the request takes its token once its body is in).  false after a
 * refusal.
 */
bool
ingest_admit(struct call *cl)
{
	const struct token *who;
	double retry;

	if (!feed_admit(cl, &who) || !ingest_query(cl))
		return false;
	/* Over its rate: 429 now, like 401, before the body is read. */
	if (!auth_ready(cl->api->auth, who, mono_seconds(), &retry)) {
		rate_refuse(cl, who, retry);
		return false;
	}
	return true;
}

/*
 * The gates of a feed for another POST taking a token (calls.c): admission
 * and the token's rate.  false after a refusal.
 */
bool
ingest_gate(struct call *cl, const struct token **who)
{
	return feed_gate(cl, who);
}

bool
ingest_admit_token(struct call *cl, const struct token **who)
{
	return feed_admit(cl, who);
}

bool
ingest_take_rate(struct call *cl, const struct token *who)
{
	return feed_rate(cl, who);
}

/* The body as JSON (new), or NULL with a 400, 422 or 503 reply. */
json_t *
ingest_body(struct call *cl)
{
	return parse_body(cl);
}
