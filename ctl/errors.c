/*
 * errors.c - the daemon's refusals in tallyctl's words.
 *
 * A refused feed may have many problems; the daemon lists them all in
 * "errors" (the first also in "error", for old clients).  Every one is
 * printed, each at the line and column of the operator's file it came
 * from when tallyctl knows the file (where.c).  An unknown province or
 * list gets a "did you mean" from the election the daemon runs.  401 and
 * 403 name what the operator can change on this side -- TALLYD_TOKEN,
 * --token-file, `tallyctl token new` -- rather than the daemon's files,
 * which the poster of a commission usually cannot see.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tallyctl.h"

/* The election's ids, fetched once on the first unknown id. */
static json_t	*known_provinces;	/* GET /v1/provinces, or NULL */
static json_t	*known_election;	/* GET /v1/election, or NULL */
static bool	 known_tried;

static json_t *
get_json(const struct ctl *ctl, const char *path)
{
	struct ctl quick = *ctl;
	struct http_resp r = { .retry_after = -1 };
	struct http *h;
	json_t *j = NULL;

	/* A suggestion is a courtesy: never wait long for it. */
	quick.retry_for = 0;
	quick.verbose = false;
	if ((h = http_create(&quick)) == NULL)
		return NULL;
	if (http_request(h, "GET", path, NULL, 0, NULL, &r) == 0 &&
	    r.status == 200)
		j = json_loadb(r.body, r.len, 0, NULL);
	http_resp_finish(&r);
	http_destroy(h);
	return j;
}

static void
fetch_known(const struct ctl *ctl)
{
	if (known_tried)
		return;
	known_tried = true;
	known_provinces = get_json(ctl, "/v1/provinces");
	known_election = get_json(ctl, "/v1/election");
}

json_t *
ctl_known_election(const struct ctl *ctl)
{
	fetch_known(ctl);
	return known_election;
}

json_t *
ctl_known_provinces(const struct ctl *ctl)
{
	fetch_known(ctl);
	return json_object_get(known_provinces, "provinces");
}

const char *
ctl_list_name(const struct ctl *ctl, const char *id, char *buf,
    size_t bufsize)
{
	json_t *c;
	size_t i;
	const char *s;

	json_array_foreach(json_object_get(ctl_known_election(ctl),
	    "coalitions"), i, c)
		if (strcmp(json_string_value(json_object_get(c, "id")) ?: "",
		    id) == 0 && (s = json_string_value(json_object_get(c,
		    "short"))) != NULL && strcmp(s, id) != 0) {
			snprintf(buf, bufsize, "%s %s", id, s);
			return buf;
		}
	snprintf(buf, bufsize, "%s", id);
	return buf;
}

/*
 * The nearest province to `word` among `provinces` (an array of {id,
 * name}): by id, or by name ("Madrd" -> 28 (Madrid)).  Writes "id (name)"
 * to out; false when nothing is near enough.
 */
bool
ctl_suggest_province(json_t *provinces, const char *word, char *out,
    size_t outsize)
{
	struct ctl_suggest by_id, by_name;
	json_t *p;
	size_t i;
	const char *best;

	ctl_suggest_init(&by_id, word);
	ctl_suggest_init(&by_name, word);
	json_array_foreach(provinces, i, p) {
		ctl_suggest_add(&by_id, json_string_value(json_object_get(p,
		    "id")));
		ctl_suggest_add(&by_name, json_string_value(json_object_get(p,
		    "name")));
	}
	best = ctl_suggest_best(&by_id);
	if (best == NULL && (best = ctl_suggest_best(&by_name)) != NULL) {
		/* A name was meant: give the id that goes with it. */
		json_array_foreach(provinces, i, p)
			if (strcmp(json_string_value(json_object_get(p,
			    "name")) ?: "", best) == 0) {
				snprintf(out, outsize, "%s (%s)",
				    json_string_value(json_object_get(p, "id")),
				    best);
				return true;
			}
		return false;
	}
	if (best == NULL)
		return false;
	json_array_foreach(provinces, i, p)
		if (strcmp(json_string_value(json_object_get(p, "id")) ?: "",
		    best) == 0) {
			snprintf(out, outsize, "%s (%s)", best,
			    json_string_value(json_object_get(p, "name")) ?: "");
			return true;
		}
	snprintf(out, outsize, "%s", best);
	return true;
}

/* The nearest list: coalition ids, their aliases and short names. */
static bool
suggest_list(json_t *election, const char *word, char *out, size_t outsize)
{
	struct ctl_suggest s;
	json_t *c, *a;
	size_t i, k;
	const char *best, *id = NULL;

	ctl_suggest_init(&s, word);
	json_array_foreach(json_object_get(election, "coalitions"), i, c) {
		ctl_suggest_add(&s, json_string_value(json_object_get(c, "id")));
		ctl_suggest_add(&s, json_string_value(json_object_get(c,
		    "short")));
		json_array_foreach(json_object_get(c, "aliases"), k, a)
			ctl_suggest_add(&s, json_string_value(a));
	}
	if ((best = ctl_suggest_best(&s)) == NULL)
		return false;
	/* A short name is not an id: say which id it belongs to. */
	json_array_foreach(json_object_get(election, "coalitions"), i, c)
		if (strcmp(json_string_value(json_object_get(c, "short")) ?: "",
		    best) == 0)
			id = json_string_value(json_object_get(c, "id"));
	if (id != NULL && strcmp(id, best) != 0)
		snprintf(out, outsize, "%s (%s)", id, best);
	else
		snprintf(out, outsize, "%s", best);
	return true;
}

/* The first "quoted" word of a message: the id it is about. */
static bool
quoted(const char *msg, char *out, size_t outsize)
{
	const char *a = strchr(msg, '"'), *b;

	if (a == NULL || (b = strchr(a + 1, '"')) == NULL ||
	    (size_t)(b - a - 1) >= outsize)
		return false;
	memcpy(out, a + 1, (size_t)(b - a - 1));
	out[b - a - 1] = '\0';
	return true;
}

/* "; did you mean X?" for an unknown province or list, or "". */
static void
did_you_mean(const struct ctl *ctl, const char *code, const char *msg,
    char *out, size_t outsize)
{
	char word[128], best[256];

	out[0] = '\0';
	if (strcmp(code, "unknown_province") != 0 &&
	    strcmp(code, "unknown_list") != 0)
		return;
	if (!quoted(msg, word, sizeof(word)))
		return;
	fetch_known(ctl);
	if (strcmp(code, "unknown_province") == 0 ?
	    ctl_suggest_province(json_object_get(known_provinces, "provinces"),
	    word, best, sizeof(best)) :
	    suggest_list(known_election, word, best, sizeof(best)))
		snprintf(out, outsize, "; did you mean %s?", best);
}

/* Where a pointer is in the operator's file, or false. */
static bool
locate(const struct ctl_where *w, const char *field, unsigned *line,
    unsigned *col)
{
	const char *f = field;

	if (w == NULL || field[0] == '\0')
		return false;
	if (w->org != NULL)
		return where_csv(w->org, field, line, col);
	if (w->text == NULL)
		return false;
	/* A bare array was sent as {"results": [...]}. */
	if (w->bare_array) {
		if (strncmp(field, "/results/", 9) != 0)
			return false;
		f = field + 8;
	}
	return where_json(w->text, w->len, f, line, col);
}

static const char *
token_source(const struct ctl *ctl, char *buf, size_t bufsize)
{
	if (ctl->token_file != NULL)
		snprintf(buf, bufsize, "--token-file %s", ctl->token_file);
	else
		snprintf(buf, bufsize, "TALLYD_TOKEN");
	return buf;
}

/* 401 and 403 in our words; true when it said something. */
static bool
auth_error(const struct ctl *ctl, const struct http_resp *r,
    const char *code, const char *msg)
{
	char src[512], prov[128];
	const char *p;

	if (r->status == 401) {
		if (ctl->token == NULL)
			ctl_warnx(ctl, "HTTP 401: no ingest token was sent: set "
			    "TALLYD_TOKEN or give --token-file FILE (a token "
			    "from `tallyctl token new`)");
		else
			ctl_warnx(ctl, "HTTP 401: the token from %s is not "
			    "accepted by %s: check that it is the whole token "
			    "(as `tallyctl token new` printed it), or give "
			    "another with --token-file FILE or TALLYD_TOKEN; a "
			    "new token works once the daemon's operator has "
			    "added it", token_source(ctl, src, sizeof(src)),
			    ctl->url);
		if (ctl->verbose)
			ctl_warnx(ctl, "the daemon said: %s", msg);
		return true;
	}
	if (r->status == 403 && strcmp(code, "forbidden_province") == 0) {
		prov[0] = '\0';
		if ((p = strstr(msg, "province ")) != NULL)
			sscanf(p + 9, "%127[A-Za-z0-9_.-]", prov);
		ctl_warnx(ctl, "HTTP 403: the token from %s may not post "
		    "province %s; use a token made for it (`tallyctl token "
		    "new --provinces %s`) with --token-file FILE or "
		    "TALLYD_TOKEN", token_source(ctl, src, sizeof(src)),
		    prov[0] ? prov : "?", prov[0] ? prov : "ID");
		if (ctl->verbose)
			ctl_warnx(ctl, "the daemon said: %s", msg);
		return true;
	}
	if (r->status == 403 && strcmp(code, "forbidden_contest") == 0) {
		/* Several contests: the token's scope names others. */
		ctl_warnx(ctl, "HTTP 403: the token from %s may not post to "
		    "this contest (%s); use a token made for it (`tallyctl "
		    "token new --provinces CONTEST/*` or CONTEST/ID,...) with "
		    "--token-file FILE or TALLYD_TOKEN",
		    token_source(ctl, src, sizeof(src)), msg);
		return true;
	}
	return false;
}

/* One error object: "file:line:col: code: message [field]". */
static void
print_one(const struct ctl *ctl, long status, json_t *e,
    const struct ctl_where *w)
{
	const char *code = json_string_value(json_object_get(e, "code")) ?: "";
	const char *msg = json_string_value(json_object_get(e, "message")) ?: "";
	const char *field = json_string_value(json_object_get(e, "field")) ?: "";
	char dym[320];
	unsigned line, col;

	did_you_mean(ctl, code, msg, dym, sizeof(dym));
	if (locate(w, field, &line, &col))
		ctl_warnx(ctl, "%s:%u:%u: HTTP %ld %s: %s%s [%s]", w->name,
		    line, col, status, code, msg, dym, field);
	else
		ctl_warnx(ctl, "HTTP %ld %s: %s%s%s%s%s", status, code, msg, dym,
		    field[0] ? " [" : "", field, field[0] ? "]" : "");
}

int
ctl_http_error_at(const struct ctl *ctl, const struct http_resp *r, int rc,
    const struct ctl_where *w)
{
	int ex = ctl_exit_for(r, rc);
	json_t *j = NULL, *err, *all, *e;
	const char *code, *msg;
	size_t i, n;

	if (rc == -1 || r->status == 0) {
		if (r->tls)
			ctl_warnx(ctl, "%s", r->error);
		else
			ctl_warnx(ctl, "unavailable: %s", r->error);
		if (r->hint[0] != '\0')
			ctl_warnx(ctl, "hint: %s", r->hint);
		return ex;
	}
	if (r->body != NULL)
		j = json_loadb(r->body, r->len, 0, NULL);
	err = json_object_get(j, "error");
	if (!json_is_object(err)) {
		ctl_warnx(ctl, "HTTP %ld: unexpected answer", r->status);
		json_decref(j);
		return ex;
	}
	code = json_string_value(json_object_get(err, "code")) ?: "";
	msg = json_string_value(json_object_get(err, "message")) ?: "";
	if (auth_error(ctl, r, code, msg)) {
		json_decref(j);
		return ex;
	}
	all = json_object_get(j, "errors");
	n = json_array_size(all);
	if (n <= 1) {
		print_one(ctl, r->status, err, w);
	} else {
		ctl_warnx(ctl, "HTTP %ld: %zu problems%s:", r->status, n +
		    (size_t)json_integer_value(json_object_get(j,
		    "errors_omitted")), r->status == 422 || r->status == 400 ||
		    r->status == 409 ? ", nothing was applied" : "");
		json_array_foreach(all, i, e)
			print_one(ctl, r->status, e, w);
		if (json_integer_value(json_object_get(j, "errors_omitted")) > 0)
			ctl_warnx(ctl, "... and %lld more (the daemon lists at "
			    "most %zu)", (long long)json_integer_value(
			    json_object_get(j, "errors_omitted")), n);
	}
	json_decref(j);
	return ex;
}
