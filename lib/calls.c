/* calls.c - certain and declared race calls (see tally/calls.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/calls.h>

#include "tally-private.h"

/* The state's calls (made on first use; the state frees them through
 * calls_free, since the state sits below this unit). */
struct tally_calls {
	struct tally_call	*v;
	size_t			 n;
	size_t			 cap;
	/* Declared in the record being applied: [first_new, n) take the
	 * version at tally_calls_observe, and so do the retractions. */
	size_t			 first_new;
	size_t			*retract;	/* indices in v */
	size_t			 n_retract;
	size_t			 cap_retract;
	/*
	 * The index in v of each certain call in force (SIZE_MAX: none): per
	 * province its seats [0, P), the national first place [P], per
	 * coalition its majority [P + 1, P + 1 + C).  NULL until
	 * tally_calls_observe builds it; kept as calls are made and dropped.
	 */
	size_t			*at;
	/*
	 * The version of the last observe that went through every province
	 * (swept): a province's certainty only moves when it is allocated
	 * again, which lists it in the state's allocated_, so the next
	 * observe need only look at those.
	 */
	uint64_t		 swept_at;
	bool			 swept;
};

static const char *const kind_names[] = { "certain", "declared" };
static const char *const scope_names[] = { "province", "national" };
static const char *const what_names[] = { "seats", "first_place",
    "majority" };

static void
call_finish(struct tally_call *c)
{
	free(c->note);
	free(c->by);
	free(c->seats);
}

static void
calls_free(struct tally_calls *cs)
{
	size_t i;

	if (cs == NULL)
		return;
	for (i = 0; i < cs->n; i++)
		call_finish(&cs->v[i]);
	free(cs->v);
	free(cs->retract);
	free(cs->at);
	free(cs);
}

static struct tally_calls *
calls_of(struct tally_state *s)
{
	if (s->calls == NULL) {
		if ((s->calls = calloc(1, sizeof(*s->calls))) == NULL)
			return NULL;
		s->calls_free = calls_free;
	}
	return s->calls;
}

/* A new call at the end (zeroed but for its id), or NULL. */
static struct tally_call *
calls_add(struct tally_calls *cs)
{
	struct tally_call *nv;
	size_t ncap;

	if (cs->n == cs->cap) {
		ncap = cs->cap ? 2 * cs->cap : 16;
		if ((nv = realloc(cs->v, ncap * sizeof(*nv))) == NULL)
			return NULL;
		cs->v = nv;
		cs->cap = ncap;
	}
	memset(&cs->v[cs->n], 0, sizeof(cs->v[0]));
	cs->v[cs->n].province = SIZE_MAX;
	cs->v[cs->n].coalition = SIZE_MAX;
	return &cs->v[cs->n++];
}

/*
 * Name call i once its version is known (tally/calls.h): a declared call
 * by its record's version, a certain one by its version and its place
 * among the certain calls made at that version.
 */
static void
call_name(struct tally_calls *cs, size_t i)
{
	struct tally_call *c = &cs->v[i];
	size_t j, k = 1;

	if (c->kind == TALLY_CALL_DECLARED) {
		snprintf(c->id, sizeof(c->id), "d%llu",
		    (unsigned long long)c->version);
		return;
	}
	for (j = 0; j < i; j++)
		if (cs->v[j].kind == TALLY_CALL_CERTAIN &&
		    cs->v[j].version == c->version)
			k++;
	snprintf(c->id, sizeof(c->id), "c%llu.%zu",
	    (unsigned long long)c->version, k);
}

/* The index of the call op retracts, or SIZE_MAX. */
static size_t
call_find(const struct tally_calls *cs, const struct tally_call_op *op)
{
	size_t i;

	if (cs == NULL)
		return SIZE_MAX;
	if (op->legacy_index > 0)
		return op->legacy_index <= cs->n ? op->legacy_index - 1 :
		    SIZE_MAX;
	for (i = 0; i < cs->n; i++)
		if (cs->v[i].id[0] != '\0' && strcmp(cs->v[i].id, op->id) == 0)
			return i;
	return SIZE_MAX;
}

void
tally_call_op_destroy(struct tally_call_op *op)
{
	if (op == NULL)
		return;
	free(op->note);
	free(op->by);
	free(op);
}

static int
name_index(const char *const *names, size_t n, const char *v)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		if (strcmp(names[i], v) == 0)
			return (int)i;
	return -1;
}

/* A required or optional string member; -1 with err when not a string. */
static int
member_str(json_t *body, const char *key, bool required, const char **out,
    struct tally_error *err)
{
	json_t *v = json_object_get(body, key);
	char p[48];

	snprintf(p, sizeof(p), "/%s", key);
	*out = NULL;
	if (v == NULL || (json_is_null(v) && !required)) {
		if (required)
			return tally_error_set(err, TALLY_ERROR_INVALID,
			    "missing_field", p, "\"%s\" is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return tally_error_set(err, TALLY_ERROR_INVALID, "wrong_type", p,
		    "\"%s\" is a string", key);
	*out = json_string_value(v);
	return 0;
}

struct tally_call_op *
tally_call_op_parse(const struct tally_election *e, json_t *body,
    struct tally_error *err)
{
	struct tally_call_op *op;
	const char *key, *scope, *what, *pid, *cid, *note;
	const struct tally_province *pv;
	const struct tally_coalition *co;
	json_t *v;
	char p[48];
	int k;

	if (!json_is_object(body)) {
		tally_error_set(err, TALLY_ERROR_INVALID, "wrong_type", "",
		    "a call is an object {\"scope\", \"province\"?, \"what\", "
		    "\"coalition\"?, \"note\"?}");
		return NULL;
	}
	json_object_foreach(body, key, v) {
		if (name_index((const char *const[]){ "scope", "province",
		    "what", "coalition", "note" }, 5, key) == -1) {
			tally_ptr_key(p, sizeof(p), "", key);
			tally_error_set(err, TALLY_ERROR_INVALID,
			    "unknown_field", p, "unknown field \"%.60s\" "
			    "(allowed: scope, province, what, coalition, note)",
			    key);
			return NULL;
		}
	}
	if (member_str(body, "scope", true, &scope, err) == -1 ||
	    member_str(body, "what", true, &what, err) == -1 ||
	    member_str(body, "province", false, &pid, err) == -1 ||
	    member_str(body, "coalition", false, &cid, err) == -1 ||
	    member_str(body, "note", false, &note, err) == -1)
		return NULL;
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory; nothing was applied, try again");
		return NULL;
	}
	op->province = SIZE_MAX;
	op->coalition = SIZE_MAX;
	if ((k = name_index(scope_names, 2, scope)) == -1) {
		tally_error_set(err, TALLY_ERROR_INVALID, "bad_value", "/scope",
		    "\"scope\" is \"province\" or \"national\"");
		goto fail;
	}
	op->scope = (enum tally_call_scope)k;
	if ((k = name_index(what_names, 3, what)) == -1) {
		tally_error_set(err, TALLY_ERROR_INVALID, "bad_value", "/what",
		    "\"what\" is \"seats\", \"first_place\" or \"majority\"");
		goto fail;
	}
	op->what = (enum tally_call_what)k;
	if (op->scope == TALLY_CALL_PROVINCE) {
		if (pid == NULL) {
			tally_error_set(err, TALLY_ERROR_INVALID,
			    "province_required", "/province", "a province call "
			    "names its \"province\"");
			goto fail;
		}
		if ((pv = tally_election_province(e, pid)) == NULL) {
			tally_error_set(err, TALLY_ERROR_INVALID,
			    "unknown_province", "/province", "no province "
			    "\"%.64s\" in election %s", pid, e->id);
			goto fail;
		}
		op->province = pv->index;
	} else if (pid != NULL) {
		tally_error_set(err, TALLY_ERROR_INVALID, "province_not_allowed",
		    "/province", "a national call names no province");
		goto fail;
	}
	/*
	 * What a desk can call: a province's seats (no coalition: all of
	 * them), a first place (whose: a coalition) in a province or the
	 * nation, a majority (whose) in the nation only -- a province elects
	 * no government.
	 */
	if (op->what == TALLY_CALL_MAJORITY && op->scope != TALLY_CALL_NATIONAL) {
		tally_error_set(err, TALLY_ERROR_INVALID, "bad_call", "/what",
		    "a majority is called nationally (scope \"national\")");
		goto fail;
	}
	if (op->what == TALLY_CALL_SEATS && op->scope != TALLY_CALL_PROVINCE) {
		tally_error_set(err, TALLY_ERROR_INVALID, "bad_call", "/what",
		    "seats are called per province (scope \"province\")");
		goto fail;
	}
	if (op->what == TALLY_CALL_SEATS && cid != NULL) {
		tally_error_set(err, TALLY_ERROR_INVALID,
		    "coalition_not_allowed", "/coalition", "a call of a "
		    "province's seats calls every list's; it names no coalition");
		goto fail;
	}
	if (op->what != TALLY_CALL_SEATS && cid == NULL) {
		tally_error_set(err, TALLY_ERROR_INVALID, "coalition_required",
		    "/coalition", "a %s call names its \"coalition\"",
		    what_names[op->what]);
		goto fail;
	}
	if (cid != NULL) {
		if ((co = tally_election_coalition(e, cid)) == NULL) {
			tally_error_set(err, TALLY_ERROR_INVALID,
			    "unknown_coalition", "/coalition", "no coalition "
			    "\"%.64s\" in election %s", cid, e->id);
			goto fail;
		}
		op->coalition = co->index;
	}
	if (note != NULL) {
		if (strlen(note) > TALLY_CALL_NOTE_MAX) {
			tally_error_set(err, TALLY_ERROR_INVALID,
			    "note_too_long", "/note", "\"note\" is at most %d "
			    "bytes", TALLY_CALL_NOTE_MAX);
			goto fail;
		}
		if ((op->note = strdup(note)) == NULL) {
			tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory; nothing was applied");
			goto fail;
		}
	}
	return op;
fail:
	tally_call_op_destroy(op);
	return NULL;
}

struct tally_call_op *
tally_call_op_retract(const char *id)
{
	struct tally_call_op *op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		return NULL;
	op->retract = true;
	snprintf(op->id, sizeof(op->id), "%s", id);
	op->province = SIZE_MAX;
	op->coalition = SIZE_MAX;
	return op;
}

int
tally_calls_check(const struct tally_state *s, const struct tally_call_op *op,
    struct tally_error *err)
{
	const struct tally_calls *cs = s->calls;
	const struct tally_call *c;
	size_t i, k;

	if (!op->retract)
		return 0;
	if ((k = call_find(cs, op)) == SIZE_MAX) {
		if (op->legacy_index > 0)
			return tally_error_set(err, TALLY_ERROR_NOT_FOUND,
			    "unknown_call", NULL, "no call number %llu",
			    (unsigned long long)op->legacy_index);
		return tally_error_set(err, TALLY_ERROR_NOT_FOUND,
		    "unknown_call", NULL, "no call \"%.40s\": a call's id is "
		    "its \"id\" in GET /v1/calls", op->id);
	}
	c = &cs->v[k];
	if (c->kind != TALLY_CALL_DECLARED)
		return tally_error_set(err, TALLY_ERROR_CONFLICT,
		    "not_declared", NULL, "call %s is certain: the bounds "
		    "prove it, no desk can retract it", c->id);
	for (i = 0; i < cs->n_retract; i++)
		if (cs->retract[i] == k)
			break;
	if (c->retracted || i < cs->n_retract)
		return tally_error_set(err, TALLY_ERROR_CONFLICT,
		    "already_retracted", NULL, "call %s is retracted already "
		    "(at version %llu)", c->id,
		    (unsigned long long)c->retracted_version);
	return 0;
}

const struct tally_call *
tally_calls_duplicate(const struct tally_state *s,
    const struct tally_call_op *op)
{
	const struct tally_calls *cs = s->calls;
	const struct tally_call *c;
	size_t i;

	if (cs == NULL)
		return NULL;
	if (op->retract) {
		if ((i = call_find(cs, op)) == SIZE_MAX)
			return NULL;
		c = &cs->v[i];
		return c->kind == TALLY_CALL_DECLARED && c->retracted ? c :
		    NULL;
	}
	for (i = cs->n; i-- > 0;) {
		c = &cs->v[i];
		if (c->kind == TALLY_CALL_DECLARED && !c->retracted &&
		    c->id[0] != '\0' && c->scope == op->scope &&
		    c->what == op->what && c->province == op->province &&
		    c->coalition == op->coalition &&
		    (c->note == NULL ? op->note == NULL : op->note != NULL &&
		    strcmp(c->note, op->note) == 0))
			return c;
	}
	return NULL;
}

int
tally_calls_apply(struct tally_state *s, struct tally_call_op *op,
    struct tally_error *err)
{
	struct tally_calls *cs;
	struct tally_call *c;
	size_t *nr, ncap, k;
	int rc = -1;

	if (tally_calls_check(s, op, err) == -1)
		goto out;
	if ((cs = calls_of(s)) == NULL)
		goto nomem;
	if (op->retract) {
		if (cs->n_retract == cs->cap_retract) {
			ncap = cs->cap_retract ? 2 * cs->cap_retract : 4;
			if ((nr = realloc(cs->retract, ncap * sizeof(*nr))) ==
			    NULL)
				goto nomem;
			cs->retract = nr;
			cs->cap_retract = ncap;
		}
		k = call_find(cs, op);
		cs->retract[cs->n_retract++] = k;
		snprintf(cs->v[k].retracted_at,
		    sizeof(cs->v[0].retracted_at), "%s", op->received_at);
		rc = 0;
		goto out;
	}
	if (cs->first_new > cs->n)
		cs->first_new = cs->n;
	if ((c = calls_add(cs)) == NULL)
		goto nomem;
	c->kind = TALLY_CALL_DECLARED;
	c->scope = op->scope;
	c->what = op->what;
	c->province = op->province;
	c->coalition = op->coalition;
	snprintf(c->at, sizeof(c->at), "%s", op->received_at);
	c->note = op->note;
	c->by = op->by;
	op->note = op->by = NULL;
	rc = 0;
	goto out;
nomem:
	tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
	    "out of memory applying a call");
out:
	tally_call_op_destroy(op);
	return rc;
}

/* The most seats coalition c can still reach, as the leaderboard says. */
static uint64_t
coalition_max(const struct tally_state *s, size_t c)
{
	return s->coalitions[c].seats_max + s->seats_unreported +
	    (s->election->levelling.enabled ? s->election->levelling.seats : 0);
}

/* A certain call's place in the index of those in force (struct tally_calls). */
static size_t
slot(const struct tally_election *e, const struct tally_call *c)
{
	switch (c->what) {
	case TALLY_CALL_SEATS:
		return c->province;
	case TALLY_CALL_FIRST_PLACE:
		return e->n_provinces;
	case TALLY_CALL_MAJORITY:
	default:
		return e->n_provinces + 1 + c->coalition;
	}
}

/* The certain call in force at index slot k, or NULL. */
static struct tally_call *
in_force(struct tally_calls *cs, size_t k)
{
	return cs->at[k] != SIZE_MAX ? &cs->v[cs->at[k]] : NULL;
}

/*
 * Is province p's every list's seat count proven (district seats: a
 * levelling tier's seats are the nation's, decided with it)?
 */
static bool
province_certain(const struct tally_state *s, size_t p)
{
	const struct tally_province_state *ps = &s->provinces[p];
	const struct tally_revision *cur = tally_state_current(s, p);
	size_t i;

	if (cur == NULL || !ps->has_result || !ps->bounds.known)
		return false;
	for (i = 0; i < cur->feed->n_lists; i++)
		if (ps->bounds.min[i] != ps->bounds.max[i])
			return false;
	return true;
}

static int
index_cmp(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* The coalition whose fewest seats exceed every other's most, or SIZE_MAX. */
static size_t
first_place(const struct tally_state *s)
{
	size_t n = s->election->n_coalitions, lead = SIZE_MAX, c;

	for (c = 0; c < n; c++)
		if (lead == SIZE_MAX ||
		    s->coalitions[c].seats_min > s->coalitions[lead].seats_min)
			lead = c;
	if (lead == SIZE_MAX || n < 2)
		return SIZE_MAX;
	for (c = 0; c < n; c++)
		if (c != lead &&
		    s->coalitions[lead].seats_min <= coalition_max(s, c))
			return SIZE_MAX;
	return lead;
}

/* A new certain call of this subject at the state's version, or -1. */
static int
certain_add(struct tally_state *s, struct tally_calls *cs,
    enum tally_call_scope scope, enum tally_call_what what, size_t province,
    size_t coalition)
{
	struct tally_call *c;
	size_t i;

	if ((c = calls_add(cs)) == NULL)
		return -1;
	c->kind = TALLY_CALL_CERTAIN;
	c->scope = scope;
	c->what = what;
	c->province = province;
	c->coalition = coalition;
	c->version = s->version;
	snprintf(c->at, sizeof(c->at), "%s", s->updated_at);
	if (what == TALLY_CALL_SEATS) {
		const struct tally_revision *cur = tally_state_current(s,
		    province);
		if ((c->seats = calloc(s->election->n_coalitions ?
		    s->election->n_coalitions : 1, sizeof(*c->seats))) == NULL) {
			cs->n--;
			return -1;
		}
		for (i = 0; i < cur->feed->n_lists; i++)
			c->seats[cur->feed->lists[i].coalition] +=
			    s->provinces[province].bounds.min[i];
	}
	call_name(cs, cs->n - 1);
	cs->at[slot(s->election, c)] = cs->n - 1;
	return 0;
}

/* Are c's seats province p's proven seats now? */
static bool
same_seats(const struct tally_state *s, size_t p, const struct tally_call *c)
{
	const struct tally_revision *cur = tally_state_current(s, p);
	const struct tally_feed *f = cur->feed;
	uint64_t n;
	size_t i, j;

	/* Per coalition: its lists' seats (a coalition may run several). */
	for (i = 0; i < f->n_lists; i++) {
		for (j = 0, n = 0; j < f->n_lists; j++)
			if (f->lists[j].coalition == f->lists[i].coalition)
				n += s->provinces[p].bounds.min[j];
		if (n != c->seats[f->lists[i].coalition])
			return false;
	}
	/* ... and no coalition called that has no list now. */
	for (i = 0, n = 0; i < s->election->n_coalitions; i++)
		n += c->seats[i];
	for (i = 0; i < f->n_lists; i++)
		n -= s->provinces[p].bounds.min[i];
	return n == 0;
}

static void
certain_drop(const struct tally_state *s, struct tally_calls *cs,
    struct tally_call *c)
{
	cs->at[slot(s->election, c)] = SIZE_MAX;
	c->retracted = true;
	c->retracted_version = s->version;
	snprintf(c->retracted_at, sizeof(c->retracted_at), "%s",
	    s->updated_at);
}

int
tally_calls_observe(struct tally_state *s)
{
	const struct tally_election *e = s->election;
	struct tally_calls *cs;
	struct tally_call *c;
	uint64_t m = e->seats_total / 2 + 1;
	size_t i, k, n, p, lead;
	bool now, full;

	if ((cs = calls_of(s)) == NULL)
		return -1;
	/* The record's own: declarations and retractions take its version. */
	for (i = cs->first_new; i < cs->n; i++)
		if (cs->v[i].kind == TALLY_CALL_DECLARED && cs->v[i].version == 0) {
			cs->v[i].version = s->version;
			call_name(cs, i);
		}
	for (i = 0; i < cs->n_retract; i++) {
		c = &cs->v[cs->retract[i]];
		c->retracted = true;
		c->retracted_version = s->version;
	}
	cs->n_retract = 0;
	/*
	 * The certain calls.  A province's seats: every list's fewest equal
	 * its most (the CSV's `certain` for every list).  A call the bounds
	 * stop proving (a correction that lowered a count can reopen them)
	 * is retracted; one proving other seats than called is retracted and
	 * made again.
	 */
	if (cs->at == NULL) {
		/* Made once (and after a snapshot's calls are loaded). */
		if ((cs->at = malloc((e->n_provinces + 1 + e->n_coalitions) *
		    sizeof(*cs->at))) == NULL)
			return -1;
		cs->swept = false;
		for (i = 0; i < e->n_provinces + 1 + e->n_coalitions; i++)
			cs->at[i] = SIZE_MAX;
		for (i = 0; i < cs->n; i++)
			if (cs->v[i].kind == TALLY_CALL_CERTAIN &&
			    !cs->v[i].retracted)
				cs->at[slot(e, &cs->v[i])] = i;
	}
	full = !cs->swept || s->version < cs->swept_at;
	cs->swept = false;
	/* In the order of a full sweep: the calls' ids count within a
	 * version in that order. */
	if (!full)
		qsort(s->allocated_, s->n_allocated_, sizeof(size_t), index_cmp);
	/* Past the first sweep, only the provinces allocated since: the
	 * others' calls (or none) stand. */
	n = full ? e->n_provinces : s->n_allocated_;
	for (k = 0; k < n; k++) {
		p = full ? k : s->allocated_[k];
		now = province_certain(s, p);
		c = in_force(cs, p);
		/* Still certain after a re-allocation (a correction), but of
		 * other seats: retracted, and made again below. */
		if (c != NULL && now && s->provinces[p].changed == s->version &&
		    !same_seats(s, p, c)) {
			certain_drop(s, cs, c);
			c = NULL;
		}
		if (c != NULL && !now)
			certain_drop(s, cs, c);
		else if (c == NULL && now && certain_add(s, cs,
		    TALLY_CALL_PROVINCE, TALLY_CALL_SEATS, p, SIZE_MAX) == -1)
			return -1;
	}
	for (k = 0; k < s->n_allocated_; k++)
		s->provinces[s->allocated_[k]].listed_ = false;
	s->n_allocated_ = 0;
	/* The national first place: the leader's fewest above all others'
	 * most (a tie at the top is never certain). */
	lead = first_place(s);
	c = in_force(cs, e->n_provinces);
	if (c != NULL && c->coalition != lead) {
		certain_drop(s, cs, c);
		c = NULL;
	}
	if (c == NULL && lead != SIZE_MAX && certain_add(s, cs,
	    TALLY_CALL_NATIONAL, TALLY_CALL_FIRST_PLACE, SIZE_MAX, lead) == -1)
		return -1;
	/* A majority clinched: the coalition's fewest reach it. */
	for (i = 0; i < e->n_coalitions; i++) {
		now = s->coalitions[i].seats_min >= m;
		c = in_force(cs, e->n_provinces + 1 + i);
		if (c != NULL && !now)
			certain_drop(s, cs, c);
		else if (c == NULL && now && certain_add(s, cs,
		    TALLY_CALL_NATIONAL, TALLY_CALL_MAJORITY, SIZE_MAX, i) == -1)
			return -1;
	}
	cs->first_new = cs->n;
	cs->swept = true;
	cs->swept_at = s->version;
	return 0;
}

const struct tally_call *
tally_calls_list(const struct tally_state *s, size_t *n)
{
	*n = s->calls != NULL ? s->calls->n : 0;
	return s->calls != NULL ? s->calls->v : NULL;
}

json_t *
tally_call_json(const struct tally_state *s, const struct tally_call *c)
{
	const struct tally_election *e = s->election;
	json_t *o = json_object(), *seats;
	size_t i;

	json_object_set_new(o, "id", json_string(c->id));
	json_object_set_new(o, "kind", json_string(kind_names[c->kind]));
	json_object_set_new(o, "scope", json_string(scope_names[c->scope]));
	json_object_set_new(o, "province", c->province == SIZE_MAX ?
	    json_null() : json_string(e->provinces[c->province].id));
	json_object_set_new(o, "what", json_string(what_names[c->what]));
	json_object_set_new(o, "coalition", c->coalition == SIZE_MAX ?
	    json_null() : json_string(e->coalitions[c->coalition].id));
	json_object_set_new(o, "version", json_integer((json_int_t)c->version));
	json_object_set_new(o, "at", c->at[0] ? json_string(c->at) :
	    json_null());
	json_object_set_new(o, "note", c->note ? json_string(c->note) :
	    json_null());
	json_object_set_new(o, "retracted", json_boolean(c->retracted));
	json_object_set_new(o, "retracted_version", c->retracted ?
	    json_integer((json_int_t)c->retracted_version) : json_null());
	json_object_set_new(o, "retracted_at", c->retracted &&
	    c->retracted_at[0] ? json_string(c->retracted_at) : json_null());
	if (c->kind == TALLY_CALL_DECLARED)
		json_object_set_new(o, "by", c->by ? json_string(c->by) :
		    json_null());
	if (c->seats != NULL) {
		seats = json_object();
		for (i = 0; i < e->n_coalitions; i++)
			if (c->seats[i] > 0)
				json_object_set_new(seats, e->coalitions[i].id,
				    json_integer((json_int_t)c->seats[i]));
		json_object_set_new(o, "seats", seats);
	}
	return o;
}

json_t *
tally_render_calls(const struct tally_state *s)
{
	json_t *o = json_object(), *a = json_array();
	const struct tally_call *v;
	size_t n, i;

	v = tally_calls_list(s, &n);
	for (i = 0; i < n; i++)
		json_array_append_new(a, tally_call_json(s, &v[i]));
	json_object_set_new(o, "version", json_integer((json_int_t)s->version));
	json_object_set_new(o, "calls", a);
	return o;
}

json_t *
tally_calls_dump(const struct tally_state *s)
{
	json_t *o = tally_render_calls(s), *a;

	a = json_incref(json_object_get(o, "calls"));
	json_decref(o);
	return a;
}

/* A copy of a JSON string member into buf (size), "" when absent. */
static void
copy_str(char *buf, size_t size, const json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	snprintf(buf, size, "%s", v ? v : "");
}

int
tally_calls_load(struct tally_state *s, const json_t *a,
    struct tally_error *err)
{
	const struct tally_election *e = s->election;
	struct tally_calls *cs;
	struct tally_call *c;
	const json_t *o, *seats, *v;
	const struct tally_province *pv;
	const struct tally_coalition *co;
	const char *str, *key;
	size_t i;
	int k;

	if (a == NULL)
		return 0;
	if (!json_is_array(a) || (cs = calls_of(s)) == NULL)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_record",
		    NULL, "\"calls\" is not an array");
	json_array_foreach(a, i, o) {
		if ((c = calls_add(cs)) == NULL)
			return tally_error_set(err, TALLY_ERROR_NOMEM,
			    "out_of_memory", NULL, "out of memory");
		if ((k = name_index(kind_names, 2, json_string_value(
		    json_object_get(o, "kind")))) == -1)
			goto bad;
		c->kind = (enum tally_call_kind)k;
		if ((k = name_index(scope_names, 2, json_string_value(
		    json_object_get(o, "scope")))) == -1)
			goto bad;
		c->scope = (enum tally_call_scope)k;
		if ((k = name_index(what_names, 3, json_string_value(
		    json_object_get(o, "what")))) == -1)
			goto bad;
		c->what = (enum tally_call_what)k;
		if ((str = json_string_value(json_object_get(o, "province"))) !=
		    NULL) {
			if ((pv = tally_election_province(e, str)) == NULL)
				goto bad;
			c->province = pv->index;
		}
		if ((str = json_string_value(json_object_get(o,
		    "coalition"))) != NULL) {
			if ((co = tally_election_coalition(e, str)) == NULL)
				goto bad;
			c->coalition = co->index;
		}
		c->version = (uint64_t)json_integer_value(json_object_get(o,
		    "version"));
		/* Named by what it is, not by the id a snapshot stored (one
		 * written before ids were stable numbered them 1..n). */
		call_name(cs, cs->n - 1);
		copy_str(c->at, sizeof(c->at), o, "at");
		c->retracted = json_is_true(json_object_get(o, "retracted"));
		c->retracted_version = (uint64_t)json_integer_value(
		    json_object_get(o, "retracted_version"));
		copy_str(c->retracted_at, sizeof(c->retracted_at), o,
		    "retracted_at");
		if ((str = json_string_value(json_object_get(o, "note"))) !=
		    NULL && (c->note = strdup(str)) == NULL)
			goto nomem;
		if ((str = json_string_value(json_object_get(o, "by"))) !=
		    NULL && (c->by = strdup(str)) == NULL)
			goto nomem;
		if ((seats = json_object_get(o, "seats")) != NULL) {
			if ((c->seats = calloc(e->n_coalitions ?
			    e->n_coalitions : 1, sizeof(*c->seats))) == NULL)
				goto nomem;
			json_object_foreach((json_t *)seats, key, v) {
				if ((co = tally_election_coalition(e, key)) ==
				    NULL)
					goto bad;
				c->seats[co->index] =
				    (uint32_t)json_integer_value(v);
			}
		}
	}
	cs->first_new = cs->n;
	free(cs->at);
	cs->at = NULL;
	return 0;
bad:
	return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_record", NULL,
	    "call %zu of the snapshot cannot be read", i + 1);
nomem:
	return tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
	    "out of memory");
}

json_t *
tally_call_op_record(const struct tally_state *s,
    const struct tally_call_op *op)
{
	const struct tally_election *e = s->election;
	json_t *o = json_object();

	if (op->retract) {
		json_object_set_new(o, "retract", json_string(op->id));
		return o;
	}
	json_object_set_new(o, "scope", json_string(scope_names[op->scope]));
	if (op->province != SIZE_MAX)
		json_object_set_new(o, "province",
		    json_string(e->provinces[op->province].id));
	json_object_set_new(o, "what", json_string(what_names[op->what]));
	if (op->coalition != SIZE_MAX)
		json_object_set_new(o, "coalition",
		    json_string(e->coalitions[op->coalition].id));
	if (op->note != NULL)
		json_object_set_new(o, "note", json_string(op->note));
	return o;
}

/*
 * Replaying our own journal (the state's replay_moot_lots, as for lots), a
 * call that no longer reads -- the election definition was edited since and
 * the province or coalition it names is gone, or the call a retraction
 * names was such a call -- is kept in the log without effect instead of
 * stopping the start.  Live and in cluster mode it is refused.
 */
static bool
moot(const struct tally_state *s, const struct tally_error *err)
{
	return s->replay_moot_lots && err != NULL &&
	    (err->kind == TALLY_ERROR_INVALID ||
	    err->kind == TALLY_ERROR_NOT_FOUND ||
	    err->kind == TALLY_ERROR_CONFLICT);
}

int
tally_calls_apply_record(struct tally_state *s, const json_t *a,
    const char *received_at, const char *by, struct tally_error *err)
{
	struct tally_call_op *op;
	const json_t *entry, *id;
	size_t i;

	if (a == NULL)
		return 0;
	/*
	 * One call a record (as tally_journal_encode_call writes): a record
	 * is applied whole or not at all, and one call is either.
	 */
	if (!json_is_array(a) || json_array_size(a) != 1)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_record",
		    NULL, "record member \"calls\" is not an array of one "
		    "call");
	json_array_foreach(a, i, entry) {
		if ((id = json_object_get(entry, "retract")) != NULL) {
			/* A string: the call's id; an integer: a record
			 * written before ids were stable, its place. */
			if (!(json_is_string(id) && json_string_length(id) > 0 &&
			    json_string_length(id) < TALLY_CALL_ID_MAX) &&
			    !(json_is_integer(id) && json_integer_value(id) >= 1))
				return tally_error_set(err, TALLY_ERROR_SYNTAX,
				    "bad_record", NULL, "call %zu of the record "
				    "retracts no call", i);
			if ((op = tally_call_op_retract(json_is_string(id) ?
			    json_string_value(id) : "")) == NULL)
				return tally_error_set(err, TALLY_ERROR_NOMEM,
				    "out_of_memory", NULL, "out of memory");
			if (json_is_integer(id))
				op->legacy_index = (uint64_t)
				    json_integer_value(id);
		} else if ((op = tally_call_op_parse(s->election,
		    (json_t *)entry, err)) == NULL) {
			if (moot(s, err))
				continue;
			return -1;
		}
		snprintf(op->received_at, sizeof(op->received_at), "%s",
		    received_at);
		if (by != NULL && !op->retract &&
		    (op->by = tally_label_clean(by)) == NULL) {
			tally_call_op_destroy(op);
			return tally_error_set(err, TALLY_ERROR_NOMEM,
			    "out_of_memory", NULL, "out of memory");
		}
		if (tally_calls_apply(s, op, err) == -1) {
			if (moot(s, err))
				continue;
			return -1;
		}
	}
	return 0;
}
