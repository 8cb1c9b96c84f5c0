/*
 * feed.c - parse and validate a province snapshot (see tally/feed.h).
 *
 * Every field is typed and bounded; the first problem is reported with the
 * JSON pointer of the value to fix.  Nothing here touches the tally.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/feed.h>
#include <tally/seats.h>

#include "tally-private.h"

const char *
tally_status_name(enum tally_status s)
{
	switch (s) {
	case TALLY_STATUS_PARTIAL:	return "partial";
	case TALLY_STATUS_FINAL:	return "final";
	case TALLY_STATUS_NONE:		break;
	}
	return "none";
}

static int
two_digits(const char *s, int lo, int hi)
{
	int v;

	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	v = (s[0] - '0') * 10 + (s[1] - '0');
	return v < lo || v > hi ? -1 : v;
}

bool
tally_rfc3339_is_valid(const char *s)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int year, month, day;
	size_t i;

	/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	for (i = 0; i < 4; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	year = atoi(s);
	if (s[4] != '-' || (month = two_digits(s + 5, 1, 12)) < 0 ||
	    s[7] != '-' || (day = two_digits(s + 8, 1, 31)) < 0)
		return false;
	if (day > mdays[month - 1] || (month == 2 && day == 29 &&
	    !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)))
		return false;
	if ((s[10] != 'T' && s[10] != 't') || two_digits(s + 11, 0, 23) < 0 ||
	    s[13] != ':' || two_digits(s + 14, 0, 59) < 0 || s[16] != ':' ||
	    two_digits(s + 17, 0, 60) < 0)
		return false;
	s += 19;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
		return true;
	if ((*s == '+' || *s == '-') && two_digits(s + 1, 0, 23) >= 0 &&
	    s[3] == ':' && two_digits(s + 4, 0, 59) >= 0 && s[6] == '\0')
		return true;
	return false;
}

void
tally_feed_destroy(struct tally_feed *f)
{
	if (f == NULL)
		return;
	free(f->lists);
	free(f->note);
	free(f->canonical);
	free(f->by);
	free(f);
}

char *
tally_label_clean(const char *label)
{
	char *c, *p;

	if (label == NULL || (c = strdup(label)) == NULL)
		return NULL;
	for (p = c; *p != '\0'; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			*p = '_';
	return c;
}

static int
list_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tally_feed_list *)a)->id,
	    ((const struct tally_feed_list *)b)->id);
}

/*
 * The lists in id order, as the canonical form has them.  Ids are unique in
 * a feed (next_list refuses a list twice), so any sort gives one order; a
 * feed has a few lists, often sent in order already, where an insertion
 * sort does a comparison a list and qsort's merge sort ten times more.
 */
static void
sort_lists(struct tally_feed *f)
{
	struct tally_feed_list t;
	size_t i, j;

	if (f->n_lists > 64) {
		qsort(f->lists, f->n_lists, sizeof(*f->lists), list_cmp);
		return;
	}
	for (i = 1; i < f->n_lists; i++) {
		t = f->lists[i];
		for (j = i; j > 0 && strcmp(f->lists[j - 1].id, t.id) > 0; j--)
			f->lists[j] = f->lists[j - 1];
		f->lists[j] = t;
	}
}

/*
 * The canonical form: what the province said, compact, keys sorted bytewise
 * (blank, invalid, note, province, registered, reported_at, revision,
 * stations, status,
 * votes; list ids sorted), ASCII only -- the bytes json_dumps would give with
 * JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII, written directly because
 * replaying a journal canonicalises every record.
 */
/* Append n bytes at *o. */
static void
cb_put(char **o, const char *s, size_t n)
{
	memcpy(*o, s, n);
	*o += n;
}

#define CB_LIT(o, lit)	cb_put((o), (lit), sizeof(lit) - 1)

/* Append v in decimal (tally_buf_uint's digits). */
static void
cb_uint(char **o, uint64_t v)
{
	char buf[24], *p = buf + sizeof(buf);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	cb_put(o, p, (size_t)(buf + sizeof(buf) - p));
}

/* Append s quoted: ids, timestamps and status names need no escaping. */
static void
cb_plain(char **o, const char *s)
{
	*(*o)++ = '"';
	cb_put(o, s, strlen(s));
	*(*o)++ = '"';
}

/*
 * Written into one buffer sized beforehand (a bound: every number at its
 * 20 digits), not grown piece by piece: the ~80 appends of a feed of 11
 * lists cost ~6.6k instructions a POST through tally_buf (issue 24).  The
 * bytes are the same as those appends wrote: test_feed and test_journal
 * (fast path against the general one) compare them.
 */
static int
canonicalize(const struct tally_election *e, struct tally_feed *f)
{
	const char *pid = e->provinces[f->province].id;
	const char *status = tally_status_name(f->status);
	char *note = NULL, *buf, *o;
	size_t i, cap;
	json_t *j;

	if (f->note != NULL) {
		/* A note may need escaping: jansson's encoder, as before. */
		j = json_string(f->note);
		note = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) :
		    NULL;
		json_decref(j);
		if (note == NULL)
			return -1;
	}
	cap = 200 + 6 * 20 + strlen(pid) + strlen(status) +
	    strlen(f->reported_at) + (note ? strlen(note) : 0);
	for (i = 0; i < f->n_lists; i++)
		cap += strlen(f->lists[i].id) + 4 + 20;
	if ((buf = malloc(cap + 1)) == NULL) {
		free(note);
		return -1;
	}
	o = buf;
	CB_LIT(&o, "{\"blank\":");
	cb_uint(&o, f->blank);
	CB_LIT(&o, ",\"invalid\":");
	cb_uint(&o, f->invalid);
	if (note != NULL) {
		CB_LIT(&o, ",\"note\":");
		cb_put(&o, note, strlen(note));
		free(note);
	}
	CB_LIT(&o, ",\"province\":");
	cb_plain(&o, pid);
	if (f->has_registered) {
		CB_LIT(&o, ",\"registered\":");
		cb_uint(&o, f->registered);
	}
	if (f->reported_at[0] != '\0') {
		CB_LIT(&o, ",\"reported_at\":");
		cb_plain(&o, f->reported_at);
	}
	CB_LIT(&o, ",\"revision\":");
	cb_uint(&o, f->revision);
	if (f->has_stations) {
		CB_LIT(&o, ",\"stations\":{\"reporting\":");
		cb_uint(&o, f->stations_reporting);
		CB_LIT(&o, ",\"total\":");
		cb_uint(&o, f->stations_total);
		*o++ = '}';
	}
	CB_LIT(&o, ",\"status\":");
	cb_plain(&o, status);
	CB_LIT(&o, ",\"votes\":{");
	for (i = 0; i < f->n_lists; i++) {
		if (i > 0)
			*o++ = ',';
		cb_plain(&o, f->lists[i].id);
		*o++ = ':';
		cb_uint(&o, f->lists[i].votes);
	}
	CB_LIT(&o, "}}");
	*o = '\0';
	f->canonical = buf;
	f->canonical_len = (size_t)(o - buf);
	return 0;
}

/*
 * One problem found: the first goes to err; with a collector, every one is
 * kept and parsing goes on (the caller answers them all at once, as the
 * definition loader does); without one, the first ends the parse.
 */
static void
report(struct tally_error *err, struct tally_errors *all, bool *bad,
    const struct tally_error *pe)
{
	if (!*bad && err != NULL)
		*err = *pe;
	*bad = true;
	if (all == NULL)
		return;
	if (all->n < all->max)
		all->v[all->n] = *pe;
	all->n++;
}

#define PROBLEM(...) do {						\
	tally_error_set(&pe, __VA_ARGS__);				\
	report(err, all, &bad, &pe);					\
	if (all == NULL)						\
		goto fail;						\
} while (0)
#define PROBLEM_SET() do {						\
	report(err, all, &bad, &pe);					\
	if (all == NULL)						\
		goto fail;						\
} while (0)
#define NOMEM() do {							\
	tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,	\
	    "out of memory; try again");				\
	goto fail;							\
} while (0)

struct tally_feed *
tally_feed_parse(const struct tally_election *e, const char *province_id,
    json_t *body, const char *ptr, struct tally_error *err)
{
	return tally_feed_parse_all(e, province_id, body, ptr, err, NULL);
}

struct tally_feed *
tally_feed_parse_all(const struct tally_election *e, const char *province_id,
    json_t *body, const char *ptr, struct tally_error *err,
    struct tally_errors *all)
{
	static const char *const keys[] = { "province", "revision", "votes",
	    "blank", "invalid", "stations", "status", "reported_at", "note",
	    "registered", NULL };
	const struct tally_province *pv = NULL;
	struct tally_feed *f = NULL;
	struct tally_error pe;
	const char *key;
	json_t *v, *votes;
	char p[256];
	bool *seen = NULL, bad = false;
	size_t i;

	if (!json_is_object(body)) {
		tally_error_set(err, TALLY_ERROR_INVALID, "wrong_type",
		    ptr[0] ? ptr : "", "a result must be a JSON object, not %s",
		    tally_json_kind(body));
		if (all != NULL && err != NULL)
			report(NULL, all, &bad, err);
		return NULL;
	}
	json_object_foreach(body, key, v) {
		bool ok = false;
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(key, keys[i]) == 0)
				ok = true;
		if (strcmp(key, "province") == 0 && province_id != NULL)
			ok = false;	/* the path names it */
		if (!ok)
			PROBLEM(TALLY_ERROR_INVALID, "unknown_field",
			    tally_ptr_key(p, sizeof(p), ptr, key),
			    "unknown field \"%.60s\" (allowed: revision, votes, "
			    "blank, invalid, stations, status, reported_at, note, "
			    "registered%s)",
			    key, province_id == NULL ? ", province" : "");
	}
	if (province_id == NULL) {
		tally_ptr_key(p, sizeof(p), ptr, "province");
		v = json_object_get(body, "province");
		if (v == NULL || !json_is_string(v))
			PROBLEM(TALLY_ERROR_INVALID, v ? "wrong_type" :
			    "missing_field", p, "each result needs \"province\": "
			    "the province id as a string");
		else if ((pv = tally_election_province(e,
		    json_string_value(v))) == NULL)
			PROBLEM(TALLY_ERROR_INVALID, "unknown_province",
			    p, "no province \"%.64s\" in election %s (see "
			    "/v1/provinces)", json_string_value(v), e->id);
	} else if ((pv = tally_election_province(e, province_id)) == NULL) {
		/* Not a problem of the body: nothing else is worth saying. */
		tally_error_set(err, TALLY_ERROR_NOT_FOUND, "unknown_province", NULL,
		    "no province \"%.64s\" in election %s (see /v1/provinces)",
		    province_id, e->id);
		return NULL;
	}

	if ((f = calloc(1, sizeof(*f))) == NULL)
		NOMEM();
	f->province = pv ? pv->index : 0;
	f->status = TALLY_STATUS_PARTIAL;

	tally_ptr_key(p, sizeof(p), ptr, "revision");
	if ((v = json_object_get(body, "revision")) == NULL)
		PROBLEM(TALLY_ERROR_INVALID, "missing_field", p,
		    "\"revision\" is required: a positive integer that grows "
		    "with every snapshot of this province");
	else if (tally_json_uint(v, p, 1, TALLY_REVISION_MAX, &f->revision, &pe) == -1)
		PROBLEM_SET();

	tally_ptr_key(p, sizeof(p), ptr, "votes");
	if ((votes = json_object_get(body, "votes")) == NULL)
		PROBLEM(TALLY_ERROR_INVALID, "missing_field", p,
		    "\"votes\" is required: an object of list id to votes");
	else if (!json_is_object(votes)) {
		PROBLEM(TALLY_ERROR_INVALID, "wrong_type", p,
		    "must be an object of list id to votes, not %s",
		    tally_json_kind(votes));
		votes = NULL;
	}
	if (json_object_size(votes) > 0) {
		f->lists = calloc(json_object_size(votes), sizeof(*f->lists));
		seen = calloc(e->n_coalitions, sizeof(*seen));
		if (f->lists == NULL || seen == NULL)
			NOMEM();
	}
	json_object_foreach(votes, key, v) {
		const struct tally_coalition *c;
		char lp[256];
		struct tally_feed_list *l = &f->lists[f->n_lists];

		tally_ptr_key(lp, sizeof(lp), p, key);
		if (!tally_id_is_valid(key) ||
		    (c = tally_election_list(e, key)) == NULL) {
			PROBLEM(TALLY_ERROR_INVALID, "unknown_list",
			    lp, "no list \"%.64s\" in election %s (a coalition "
			    "id or one of its aliases; see /v1/election)", key,
			    e->id);
			continue;
		}
		if (seen[c->index]) {
			PROBLEM(TALLY_ERROR_INVALID, "duplicate_list",
			    lp, "coalition %s is already in this result under "
			    "another list id; a coalition runs one list per "
			    "province", c->id);
			continue;
		}
		seen[c->index] = true;
		if (tally_json_uint(v, lp, 0, TALLY_VOTES_MAX, &l->votes, &pe) == -1) {
			PROBLEM_SET();
			continue;
		}
		l->id = tally_election_list_id(e, key);
		l->coalition = c->index;
		f->n_lists++;
	}
	sort_lists(f);

	if ((v = json_object_get(body, "blank")) != NULL &&
	    tally_json_uint(v, tally_ptr_key(p, sizeof(p), ptr, "blank"), 0,
	    TALLY_VOTES_MAX, &f->blank, &pe) == -1)
		PROBLEM_SET();
	if ((v = json_object_get(body, "invalid")) != NULL &&
	    tally_json_uint(v, tally_ptr_key(p, sizeof(p), ptr, "invalid"), 0,
	    TALLY_VOTES_MAX, &f->invalid, &pe) == -1)
		PROBLEM_SET();

	/* The electorate, when the feed knows it: bounds what is uncounted. */
	if ((v = json_object_get(body, "registered")) != NULL) {
		if (tally_json_uint(v, tally_ptr_key(p, sizeof(p), ptr, "registered"), 0,
		    TALLY_COUNT_MAX, &f->registered, err) == -1)
			goto fail;
		f->has_registered = true;
	}
	if ((v = json_object_get(body, "stations")) != NULL) {
		json_t *r, *t;
		const char *sk;
		json_t *sv;
		bool st_ok = true;
		tally_ptr_key(p, sizeof(p), ptr, "stations");
		if (!json_is_object(v)) {
			PROBLEM(TALLY_ERROR_INVALID, "wrong_type", p,
			    "must be {\"reporting\": n, \"total\": n}, not %s",
			    tally_json_kind(v));
			v = NULL;
			st_ok = false;
		}
		json_object_foreach(v, sk, sv) {
			char sp[256];
			if (strcmp(sk, "reporting") != 0 && strcmp(sk, "total") != 0)
				PROBLEM(TALLY_ERROR_INVALID,
				    "unknown_field", tally_ptr_key(sp, sizeof(sp), p, sk),
				    "unknown field \"%.60s\" (allowed: reporting, "
				    "total)", sk);
		}
		r = json_object_get(v, "reporting");
		t = json_object_get(v, "total");
		if (v != NULL && (r == NULL || t == NULL)) {
			char mp[256];
			PROBLEM(TALLY_ERROR_INVALID, "missing_field",
			    tally_ptr_key(mp, sizeof(mp), p, r == NULL ? "reporting" :
			    "total"), "stations needs both \"reporting\" and "
			    "\"total\"");
			st_ok = false;
		}
		if (st_ok) {
			char rp[256], tp[256];
			tally_ptr_key(rp, sizeof(rp), p, "reporting");
			tally_ptr_key(tp, sizeof(tp), p, "total");
			if (tally_json_uint(r, rp, 0, TALLY_STATIONS_MAX,
			    &f->stations_reporting, &pe) == -1) {
				PROBLEM_SET();
				st_ok = false;
			}
			if (tally_json_uint(t, tp, 0, TALLY_STATIONS_MAX,
			    &f->stations_total, &pe) == -1) {
				PROBLEM_SET();
				st_ok = false;
			}
			if (st_ok && f->stations_reporting > f->stations_total)
				PROBLEM(TALLY_ERROR_INVALID,
				    "out_of_range", rp, "reporting (%llu) is "
				    "more than total (%llu)",
				    (unsigned long long)f->stations_reporting,
				    (unsigned long long)f->stations_total);
		}
		f->has_stations = true;
	}

	if ((v = json_object_get(body, "status")) != NULL) {
		const char *s = json_string_value(v);
		tally_ptr_key(p, sizeof(p), ptr, "status");
		if (s != NULL && strcmp(s, "partial") == 0)
			f->status = TALLY_STATUS_PARTIAL;
		else if (s != NULL && strcmp(s, "final") == 0)
			f->status = TALLY_STATUS_FINAL;
		else
			PROBLEM(TALLY_ERROR_INVALID, json_is_string(v) ?
			    "invalid_value" : "wrong_type", p,
			    "must be \"partial\" or \"final\"");
	}
	if ((v = json_object_get(body, "reported_at")) != NULL) {
		const char *s = json_string_value(v);
		tally_ptr_key(p, sizeof(p), ptr, "reported_at");
		if (s == NULL || strlen(s) >= sizeof(f->reported_at) ||
		    !tally_rfc3339_is_valid(s))
			PROBLEM(TALLY_ERROR_INVALID,
			    s == NULL ? "wrong_type" : "invalid_timestamp", p,
			    "must be an RFC 3339 time such as "
			    "\"2018-05-14T18:00:00Z\"");
		else
			snprintf(f->reported_at, sizeof(f->reported_at), "%s", s);
	}
	if ((v = json_object_get(body, "note")) != NULL) {
		tally_ptr_key(p, sizeof(p), ptr, "note");
		if (!json_is_string(v) || json_string_length(v) > TALLY_NOTE_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v))
			PROBLEM(TALLY_ERROR_INVALID, json_is_string(v) ?
			    "out_of_range" : "wrong_type", p,
			    "must be a string of at most %d bytes", TALLY_NOTE_MAX);
		else if ((f->note = strdup(json_string_value(v))) == NULL)
			NOMEM();
	}
	if (bad)
		goto fail;
	if (canonicalize(e, f) == -1)
		NOMEM();
	free(seen);
	return f;
fail:
	free(seen);
	tally_feed_destroy(f);
	return NULL;
}

#undef PROBLEM
#undef PROBLEM_SET
#undef NOMEM

/*
 * A strict reader for the canonical form alone (journal replay): fields in
 * canonical order, no white space.  Anything else is refused, and the caller
 * falls back to the general parser, so this is only ever a faster path.
 */
struct rd {
	const char	*p;
	const char	*end;
};

static bool
rd_lit(struct rd *r, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n) != 0)
		return false;
	r->p += n;
	return true;
}

static bool
rd_uint(struct rd *r, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *start = r->p;

	while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
		if (v > (max - (uint64_t)(*r->p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*r->p - '0');
		r->p++;
	}
	if (r->p == start || (r->p - start > 1 && *start == '0'))
		return false;
	*out = v;
	return true;
}

/* A plain string (no escapes): its bounds. */
static bool
rd_plain(struct rd *r, const char **s, size_t *n)
{
	const char *q;

	if (r->p >= r->end || *r->p != '"')
		return false;
	for (q = r->p + 1; q < r->end && *q != '"'; q++)
		if (*q == '\\' || (unsigned char)*q < 0x20)
			return false;
	if (q >= r->end)
		return false;
	*s = r->p + 1;
	*n = (size_t)(q - r->p - 1);
	r->p = q + 1;
	return true;
}

static bool
rd_id(struct rd *r, char *buf)
{
	const char *s;
	size_t n;

	if (!rd_plain(r, &s, &n) || n == 0 || n > TALLY_ID_MAX)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return true;
}

/*
 * The next list slot of f for list id `id` (both fast readers): grows the
 * array, resolves the id and its coalition, and refuses a coalition already
 * in the feed.  The caller reads the votes, then counts the slot in.
 */
static struct tally_feed_list *
next_list(const struct tally_election *e, struct tally_feed *f, size_t *cap,
    const char *id)
{
	const struct tally_coalition *c;
	struct tally_feed_list *l;
	size_t i;

	if (f->n_lists == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct tally_feed_list *nl = realloc(f->lists, ncap * sizeof(*nl));
		if (nl == NULL)
			return NULL;
		f->lists = nl;
		*cap = ncap;
	}
	l = &f->lists[f->n_lists];
	/* One look-up: the id as the definition spells it (the list's own
	 * or one of its aliases), as tally_election_list_id finds it. */
	if ((c = tally_election_list(e, id)) == NULL)
		return NULL;
	if (strcmp(c->id, id) == 0)
		l->id = c->id;
	else {
		l->id = NULL;
		for (i = 0; i < c->n_aliases && l->id == NULL; i++)
			if (strcmp(c->aliases[i], id) == 0)
				l->id = c->aliases[i];
		if (l->id == NULL)
			return NULL;
	}
	for (i = 0; i < f->n_lists; i++)
		if (f->lists[i].coalition == c->index)
			return NULL;
	l->coalition = c->index;
	return l;
}

struct tally_feed *
tally_feed_read_canonical(const struct tally_election *e, const char *text,
    size_t len, size_t *used)
{
	struct rd r = { text, text + len };
	const struct tally_province *pv;
	struct tally_feed *f;
	char id[TALLY_ID_MAX + 1];
	const char *s;
	size_t n, cap = 0;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	if (!rd_lit(&r, "{\"blank\":") || !rd_uint(&r, TALLY_VOTES_MAX, &f->blank) ||
	    !rd_lit(&r, ",\"invalid\":") ||
	    !rd_uint(&r, TALLY_VOTES_MAX, &f->invalid))
		goto fail;
	if (rd_lit(&r, ",\"note\":")) {
		/* Rare: let jansson decode the escaped string. */
		const char *q = r.p;
		unsigned long nomem;
		json_t *j;
		if (q >= r.end || *q != '"')
			goto fail;
		for (q++; q < r.end && *q != '"'; q++)
			if (*q == '\\')
				q++;
		if (q >= r.end)
			goto fail;
		nomem = tally_json_failures();
		j = json_loadb(r.p, (size_t)(q + 1 - r.p), JSON_DECODE_ANY, NULL);
		if (!json_is_string(j) || tally_json_failures() != nomem || (f->note = strdup(json_string_value(j))) ==
		    NULL) {
			json_decref(j);
			goto fail;
		}
		json_decref(j);
		r.p = q + 1;
	}
	if (!rd_lit(&r, ",\"province\":") || !rd_id(&r, id) ||
	    (pv = tally_election_province(e, id)) == NULL)
		goto fail;
	f->province = pv->index;
	if (rd_lit(&r, ",\"registered\":")) {
		if (!rd_uint(&r, TALLY_COUNT_MAX, &f->registered))
			goto fail;
		f->has_registered = true;
	}
	if (rd_lit(&r, ",\"reported_at\":")) {
		if (!rd_plain(&r, &s, &n) || n >= sizeof(f->reported_at))
			goto fail;
		memcpy(f->reported_at, s, n);
		f->reported_at[n] = '\0';
		if (!tally_rfc3339_is_valid(f->reported_at))
			goto fail;
	}
	if (!rd_lit(&r, ",\"revision\":") ||
	    !rd_uint(&r, TALLY_REVISION_MAX, &f->revision) || f->revision == 0)
		goto fail;
	if (rd_lit(&r, ",\"stations\":{\"reporting\":")) {
		if (!rd_uint(&r, TALLY_STATIONS_MAX, &f->stations_reporting) ||
		    !rd_lit(&r, ",\"total\":") ||
		    !rd_uint(&r, TALLY_STATIONS_MAX, &f->stations_total) ||
		    !rd_lit(&r, "}") || f->stations_reporting > f->stations_total)
			goto fail;
		f->has_stations = true;
	}
	if (rd_lit(&r, ",\"status\":\"partial\""))
		f->status = TALLY_STATUS_PARTIAL;
	else if (rd_lit(&r, ",\"status\":\"final\""))
		f->status = TALLY_STATUS_FINAL;
	else
		goto fail;
	if (!rd_lit(&r, ",\"votes\":{"))
		goto fail;
	while (!rd_lit(&r, "}")) {
		struct tally_feed_list *l;
		if (f->n_lists > 0 && !rd_lit(&r, ","))
			goto fail;
		if (!rd_id(&r, id) || !rd_lit(&r, ":") ||
		    (l = next_list(e, f, &cap, id)) == NULL ||
		    !rd_uint(&r, TALLY_VOTES_MAX, &l->votes))
			goto fail;
		/* Sorted, as canonicalize wrote it. */
		if (f->n_lists > 0 && strcmp(f->lists[f->n_lists - 1].id, l->id) >= 0)
			goto fail;
		f->n_lists++;
	}
	if (!rd_lit(&r, "}"))
		goto fail;
	n = (size_t)(r.p - text);
	if ((f->canonical = malloc(n + 1)) == NULL)
		goto fail;
	memcpy(f->canonical, text, n);
	f->canonical[n] = '\0';
	f->canonical_len = n;
	*used = n;
	return f;
fail:
	tally_feed_destroy(f);
	return NULL;
}

/*
 * The fast path for a single POST body: a scanner for the usual, valid
 * snapshot that fills a tally_feed without building a jansson tree (the
 * tree was the largest single cost of a POST).  It gives up -- and the
 * caller runs tally_feed_parse, which finds and names the problem -- on
 * anything unusual: escapes, non-ASCII text, floats, signs, unknown or
 * repeated keys, values out of bounds, unknown lists.  So every body it
 * accepts, the general parser accepts too, with the same feed
 * (tests/test_feed.c compares both on generated bodies).
 */
static void
sc_ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
	    *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

/* A string without escapes or non-ASCII: its bounds. */
static bool
sc_string(struct rd *r, const char **s, size_t *n)
{
	const char *q;

	if (r->p >= r->end || *r->p != '"')
		return false;
	for (q = r->p + 1; q < r->end && *q != '"'; q++)
		if (*q == '\\' || (unsigned char)*q < 0x20 ||
		    (unsigned char)*q >= 0x80)
			return false;
	if (q >= r->end)
		return false;
	*s = r->p + 1;
	*n = (size_t)(q - r->p - 1);
	r->p = q + 1;
	return true;
}

/* An integer as jansson reads one: no sign, no fraction, no exponent. */
static bool
sc_uint(struct rd *r, uint64_t max, uint64_t *out)
{
	if (!rd_uint(r, max, out))
		return false;
	/* "1.0" or "1e3" are reals for jansson: leave them to it. */
	return r->p >= r->end || (*r->p != '.' && *r->p != 'e' && *r->p != 'E');
}

static bool
sc_key(struct rd *r, char *key, size_t keylen)
{
	const char *s;
	size_t n;

	sc_ws(r);
	if (!sc_string(r, &s, &n) || n >= keylen)
		return false;
	memcpy(key, s, n);
	key[n] = '\0';
	sc_ws(r);
	if (r->p >= r->end || *r->p != ':')
		return false;
	r->p++;
	sc_ws(r);
	return true;
}

/* After a member: ',' (more: true) or the closing '}' (*done). */
static bool
sc_next(struct rd *r, bool *done)
{
	sc_ws(r);
	if (r->p < r->end && *r->p == ',') {
		r->p++;
		*done = false;
		return true;
	}
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		*done = true;
		return true;
	}
	return false;
}

/* An object's opening '{'; *empty when it is "{}". */
static bool
sc_open(struct rd *r, bool *empty)
{
	sc_ws(r);
	if (r->p >= r->end || *r->p != '{')
		return false;
	r->p++;
	sc_ws(r);
	*empty = r->p < r->end && *r->p == '}';
	if (*empty)
		r->p++;
	return true;
}

struct tally_feed *
tally_feed_scan(const struct tally_election *e, const char *province_id,
    const char *text, size_t len)
{
	enum { K_REVISION = 1, K_VOTES = 2, K_BLANK = 4, K_INVALID = 8,
	    K_STATIONS = 16, K_STATUS = 32, K_REPORTED = 64, K_NOTE = 128,
	    K_REGISTERED = 256 };
	struct rd r = { text, text + len };
	const struct tally_province *pv;
	struct tally_feed *f;
	unsigned seen = 0;
	char key[16], id[TALLY_ID_MAX + 1];
	bool done, empty;
	size_t cap = 0;

	if ((pv = tally_election_province(e, province_id)) == NULL ||
	    (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->province = pv->index;
	f->status = TALLY_STATUS_PARTIAL;
	if (!sc_open(&r, &empty) || empty)
		goto fail;
	do {
		const char *s;
		size_t n;
		unsigned k;

		if (!sc_key(&r, key, sizeof(key)))
			goto fail;
		if (strcmp(key, "revision") == 0)
			k = K_REVISION;
		else if (strcmp(key, "votes") == 0)
			k = K_VOTES;
		else if (strcmp(key, "blank") == 0)
			k = K_BLANK;
		else if (strcmp(key, "invalid") == 0)
			k = K_INVALID;
		else if (strcmp(key, "stations") == 0)
			k = K_STATIONS;
		else if (strcmp(key, "status") == 0)
			k = K_STATUS;
		else if (strcmp(key, "reported_at") == 0)
			k = K_REPORTED;
		else if (strcmp(key, "note") == 0)
			k = K_NOTE;
		else if (strcmp(key, "registered") == 0)
			k = K_REGISTERED;
		else
			goto fail;
		if (seen & k)
			goto fail;
		seen |= k;
		switch (k) {
		case K_REVISION:
			if (!sc_uint(&r, TALLY_REVISION_MAX, &f->revision) ||
			    f->revision == 0)
				goto fail;
			break;
		case K_BLANK:
			if (!sc_uint(&r, TALLY_VOTES_MAX, &f->blank))
				goto fail;
			break;
		case K_INVALID:
			if (!sc_uint(&r, TALLY_VOTES_MAX, &f->invalid))
				goto fail;
			break;
		case K_REGISTERED:
			if (!sc_uint(&r, TALLY_COUNT_MAX, &f->registered))
				goto fail;
			f->has_registered = true;
			break;
		case K_STATUS:
			if (!sc_string(&r, &s, &n))
				goto fail;
			if (n == 7 && memcmp(s, "partial", 7) == 0)
				f->status = TALLY_STATUS_PARTIAL;
			else if (n == 5 && memcmp(s, "final", 5) == 0)
				f->status = TALLY_STATUS_FINAL;
			else
				goto fail;
			break;
		case K_REPORTED:
			if (!sc_string(&r, &s, &n) || n >= sizeof(f->reported_at))
				goto fail;
			memcpy(f->reported_at, s, n);
			f->reported_at[n] = '\0';
			if (!tally_rfc3339_is_valid(f->reported_at))
				goto fail;
			break;
		case K_NOTE:
			if (!sc_string(&r, &s, &n) || n > TALLY_NOTE_MAX ||
			    (f->note = malloc(n + 1)) == NULL)
				goto fail;
			memcpy(f->note, s, n);
			f->note[n] = '\0';
			break;
		case K_STATIONS: {
			unsigned st = 0;
			if (!sc_open(&r, &empty) || empty)
				goto fail;
			do {
				uint64_t v;
				if (!sc_key(&r, key, sizeof(key)) ||
				    !sc_uint(&r, TALLY_STATIONS_MAX, &v))
					goto fail;
				if (strcmp(key, "reporting") == 0 && !(st & 1)) {
					f->stations_reporting = v;
					st |= 1;
				} else if (strcmp(key, "total") == 0 && !(st & 2)) {
					f->stations_total = v;
					st |= 2;
				} else
					goto fail;
				if (!sc_next(&r, &done))
					goto fail;
			} while (!done);
			if (st != 3 || f->stations_reporting > f->stations_total)
				goto fail;
			f->has_stations = true;
			break;
		}
		case K_VOTES:
			if (!sc_open(&r, &empty))
				goto fail;
			for (done = empty; !done;) {
				struct tally_feed_list *l;
				sc_ws(&r);
				if (!sc_string(&r, &s, &n) || n == 0 ||
				    n > TALLY_ID_MAX)
					goto fail;
				memcpy(id, s, n);
				id[n] = '\0';
				sc_ws(&r);
				if (r.p >= r.end || *r.p != ':')
					goto fail;
				r.p++;
				sc_ws(&r);
				/* Twice the same coalition (or the same key)
				 * fails here: the general parser says which. */
				if ((l = next_list(e, f, &cap, id)) == NULL ||
				    !sc_uint(&r, TALLY_VOTES_MAX, &l->votes))
					goto fail;
				f->n_lists++;
				if (!sc_next(&r, &done))
					goto fail;
			}
			break;
		}
		if (!sc_next(&r, &done))
			goto fail;
	} while (!done);
	sc_ws(&r);
	if (r.p != r.end || !(seen & K_REVISION) || !(seen & K_VOTES))
		goto fail;
	sort_lists(f);
	if (canonicalize(e, f) == -1)
		goto fail;
	return f;
fail:
	tally_feed_destroy(f);
	return NULL;
}

size_t
tally_feed_list_index(const struct tally_feed *f, const char *id)
{
	size_t i;

	for (i = 0; i < f->n_lists; i++)
		if (strcmp(f->lists[i].id, id) == 0)
			return i;
	return SIZE_MAX;
}

int
tally_feed_check(const struct tally_feed *prev, const struct tally_feed *f,
    const char *province, enum tally_check *result, struct tally_error *err)
{
	uint64_t have = prev ? prev->revision : 0;

	/*
	 * Revisions grow strictly per province.  A retry of the current
	 * revision with the same content is harmless (a client that lost our
	 * answer); the same revision with other content is a conflict the
	 * sender must resolve with a higher revision.
	 */
	if (f->revision > have) {
		*result = TALLY_CHECK_NEW;
		return 0;
	}
	if (f->revision == have && prev->canonical_len == f->canonical_len &&
	    memcmp(prev->canonical, f->canonical, f->canonical_len) == 0) {
		*result = TALLY_CHECK_DUPLICATE;
		return 0;
	}
	if (f->revision == have)
		return tally_error_set(err, TALLY_ERROR_CONFLICT,
		    "revision_conflict", "/revision", "revision %llu of %s was "
		    "already accepted with other content; send a correction as "
		    "revision %llu", (unsigned long long)have, province,
		    (unsigned long long)have + 1);
	return tally_error_set(err, TALLY_ERROR_CONFLICT, "stale_revision",
	    "/revision", "revision %llu of %s is older than the current "
	    "revision %llu; send revision %llu or higher",
	    (unsigned long long)f->revision, province, (unsigned long long)have,
	    (unsigned long long)have + 1);
}

int
tally_feed_check_lists(const struct tally_feed *prev, const struct tally_feed *f,
    const char *province, struct tally_error *err)
{
	char names[256];
	size_t i, j = 0, missing = 0, first = 0, o = 0;

	if (prev == NULL)
		return 0;
	/*
	 * A feed is a cumulative snapshot: a list left out of it would drop
	 * to no votes and lose its seats.  Clerks re-posting a partial file
	 * did exactly that, so a list that had votes must be named, with 0
	 * when that is the truth.  Both lists are sorted by id: a merge.
	 */
	for (i = 0; i < prev->n_lists; i++) {
		int c = 1;
		while (j < f->n_lists &&
		    (c = strcmp(f->lists[j].id, prev->lists[i].id)) < 0)
			j++;
		if (j < f->n_lists && c == 0)
			continue;
		if (prev->lists[i].votes == 0)
			continue;
		if (missing++ == 0)
			first = i;
		if (o < sizeof(names)) {
			int w = snprintf(names + o, sizeof(names) - o, "%s%s",
			    o ? ", " : "", prev->lists[i].id);
			o = w < 0 ? sizeof(names) : o + (size_t)w;
		}
	}
	if (missing == 0)
		return 0;
	if (o >= sizeof(names))
		snprintf(names + sizeof(names) - 5, 5, "...");
	tally_error_set(err, TALLY_ERROR_INVALID, "list_missing", NULL,
	    "%zu list%s with votes in revision %llu of %s %s missing from "
	    "revision %llu: %s; a snapshot is cumulative, name every list (0 "
	    "if it truly has none)", missing, missing == 1 ? "" : "s",
	    (unsigned long long)prev->revision, province,
	    missing == 1 ? "is" : "are", (unsigned long long)f->revision,
	    names);
	if (err != NULL)
		snprintf(err->field, sizeof(err->field), "/votes/%s",
		    prev->lists[first].id);
	return -1;
}

const char *
tally_uncounted_name(enum tally_uncounted u)
{
	switch (u) {
	case TALLY_UNCOUNTED_FINAL:		return "final";
	case TALLY_UNCOUNTED_REGISTERED:	return "registered";
	case TALLY_UNCOUNTED_STATIONS:		return "stations";
	default:				return "unknown";
	}
}

enum tally_uncounted
tally_uncounted_bound(const struct tally_province *pv,
    const struct tally_feed *f, uint64_t *U)
{
	enum tally_uncounted from = TALLY_UNCOUNTED_UNKNOWN;
	uint64_t counted = 0, reg;
	bool has_reg;
	size_t i;

	*U = 0;
	if (f != NULL && f->status == TALLY_STATUS_FINAL)
		return TALLY_UNCOUNTED_FINAL;
	has_reg = f != NULL && f->has_registered ? true : pv->has_registered;
	reg = f != NULL && f->has_registered ? f->registered : pv->registered;
	if (f != NULL) {
		for (i = 0; i < f->n_lists; i++)
			counted += f->lists[i].votes;
		counted += f->blank + f->invalid;
	}
	/*
	 * Everyone registered who has not been counted may still be: an upper
	 * bound whatever the turnout.  Counted above registered means the
	 * electorate figure is wrong (or out of date); it bounds nothing.
	 */
	if (has_reg && reg >= counted) {
		*U = reg - counted;
		from = TALLY_UNCOUNTED_REGISTERED;
	}
	if (f != NULL && f->has_stations && pv->station_ballots_max > 0) {
		unsigned __int128 st = (unsigned __int128)(f->stations_total -
		    f->stations_reporting) * pv->station_ballots_max;
		if (st <= UINT64_MAX && (from == TALLY_UNCOUNTED_UNKNOWN ||
		    st < *U)) {
			*U = (uint64_t)st;
			from = TALLY_UNCOUNTED_STATIONS;
		}
	}
	return from;
}
