/*
 * election.c - load and validate an election definition.
 *
 * The loader never stops at the first problem: it walks the whole document
 * and reports every error with the file name and the JSON pointer of the
 * offending value, so an operator fixes a definition in one pass.  Nothing of
 * a definition with errors is returned.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/election.h>
#include <tally/error.h>
#include <tally/file.h>

#include "tally-private.h"

struct loader {
	const char		*name;	/* file name for messages */
	struct tally_diag	*diag;
	size_t			 errors;
};

static void lerr(struct loader *l, const char *ptr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
lerr(struct loader *l, const char *ptr, const char *fmt, ...)
{
	char msg[512], *c;
	va_list ap;


	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Names come from the file: a newline or escape must not reach a log. */
	for (c = msg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	l->errors++;
	tally_diag_add(l->diag, "%s: %s: %s", l->name, ptr[0] ? ptr : "/", msg);
}

bool
tally_id_is_valid(const char *id)
{
	size_t n = 0;

	if (id == NULL)
		return false;
	for (; id[n] != '\0'; n++) {
		char c = id[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return false;
	}
	return n >= 1 && n <= TALLY_ID_MAX;
}

const char *
tally_method_name(enum tally_method m)
{
	switch (m) {
	case TALLY_METHOD_DHONDT:	return "dhondt";
	case TALLY_METHOD_SAINTE_LAGUE:	return "sainte-lague";
	case TALLY_METHOD_HARE:		return "hare";
	case TALLY_METHOD_DROOP:	return "droop";
	case TALLY_METHOD_HAGENBACH_BISCHOFF:	return "hagenbach-bischoff";
	case TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL:
		return "hagenbach-bischoff-ceil";
	}
	return "?";
}

const char *
tally_threshold_of_name(enum tally_threshold_of t)
{
	switch (t) {
	case TALLY_THRESHOLD_NONE:	return "none";
	case TALLY_THRESHOLD_VALID:	return "valid";
	case TALLY_THRESHOLD_LIST:	return "list";
	}
	return "?";
}

const char *
tally_scope_name(enum tally_scope s)
{
	return s == TALLY_SCOPE_NATIONAL ? "national" : "province";
}

const char *
tally_ties_name(enum tally_ties t)
{
	return t == TALLY_TIES_VOTES ? "votes" : "lot";
}

const char *
tally_scale_name(enum tally_levelling_scale s)
{
	return s == TALLY_SCALE_VOTES_PER_SEAT ? "votes_per_seat" : "none";
}

#define METHODS	"\"dhondt\", \"sainte-lague\", \"hare\", \"droop\", " \
		"\"hagenbach-bischoff\", \"hagenbach-bischoff-ceil\""

/* A method name, or -1. */
static int
method_from_name(const char *s)
{
	static const enum tally_method all[] = { TALLY_METHOD_DHONDT,
	    TALLY_METHOD_SAINTE_LAGUE, TALLY_METHOD_HARE, TALLY_METHOD_DROOP,
	    TALLY_METHOD_HAGENBACH_BISCHOFF,
	    TALLY_METHOD_HAGENBACH_BISCHOFF_CEIL };
	size_t i;

	for (i = 0; s != NULL && i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(s, tally_method_name(all[i])) == 0)
			return (int)all[i];
	return -1;
}

static const char *
ptr_idx(char *buf, size_t len, const char *base, size_t i)
{
	if (snprintf(buf, len, "%s/%zu", base, i) >= (int)len)
		buf[len - 1] = '\0';
	return buf;
}

/* Unknown keys are errors: a misspelt "treshold" must not pass silently. */
static void
check_keys(struct loader *l, const json_t *obj, const char *ptr,
    const char *const *allowed)
{
	const char *key;
	json_t *v;
	char p[256];

	json_object_foreach((json_t *)obj, key, v) {
		size_t i;
		bool ok = false;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], key) == 0)
				ok = true;
		if (!ok)
			lerr(l, tally_ptr_key(p, sizeof(p), ptr, key),
			    "unknown key (allowed: see docs/ELECTION.md)");
	}
}

static char *
get_string(struct loader *l, const json_t *obj, const char *ptr,
    const char *key, bool required)
{
	json_t *v = json_object_get(obj, key);
	char p[256];
	char *s;

	tally_ptr_key(p, sizeof(p), ptr, key);
	if (v == NULL) {
		if (required)
			lerr(l, p, "missing (a non-empty string)");
		return NULL;
	}
	if (!json_is_string(v)) {
		lerr(l, p, "must be a string, not %s", tally_json_kind(v));
		return NULL;
	}
	if (json_string_length(v) == 0 ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		lerr(l, p, "must be a non-empty string without NUL");
		return NULL;
	}
	if ((s = strdup(json_string_value(v))) == NULL)
		lerr(l, p, "out of memory");
	return s;
}

static char *
get_id(struct loader *l, const json_t *obj, const char *ptr)
{
	char p[256];
	char *id = get_string(l, obj, ptr, "id", true);

	/*
	 * An election's (a contest's), a coalition's or a province's id is
	 * a path segment of URLs (/v1/contests/{id}/, /v1/provinces/{id},
	 * /v1/coalitions/{id}), where "." and ".." are dot-segments (RFC 3986
	 * 5.2.4) that a browser, curl or a proxy removes or resolves to the
	 * segment above: /v1/contests/../leaderboard is /v1/leaderboard.  A
	 * list alias is only ever a key of a feed's votes, so it may be one.
	 */
	if (id != NULL && (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)) {
		lerr(l, tally_ptr_key(p, sizeof(p), ptr, "id"),
		    "\"%s\" is not an id: ids go into URLs, where \".\" and "
		    "\"..\" mean this directory and the one above; use "
		    "another", id);
		free(id);
		return NULL;
	}
	if (id != NULL && !tally_id_is_valid(id)) {
		lerr(l, tally_ptr_key(p, sizeof(p), ptr, "id"),
		    "\"%.80s\" is not an id: use 1 to %d of A-Z a-z 0-9 _ - .",
		    id, TALLY_ID_MAX);
		free(id);
		return NULL;
	}
	return id;
}

/*
 * A decimal from the configuration: a string ("1.7") or a JSON number.  A
 * JSON number is read by jansson as a double; we recover the decimal the
 * author wrote as the shortest text that reads back as the same double (at
 * most 15 significant digits are taken as written), then parse that text
 * exactly.  Decisions never see the double.
 */
static int
get_decimal(struct loader *l, const json_t *v, const char *p,
    struct tally_frac *out)
{
	char buf[64];

	if (json_is_string(v)) {
		if (tally_frac_parse(json_string_value(v), out) == 0)
			return 0;
	} else if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		if (tally_frac_parse(buf, out) == 0)
			return 0;
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		int prec;
		for (prec = 1; prec <= 15; prec++) {
			snprintf(buf, sizeof(buf), "%.*f", prec, d);
			if (strtod(buf, NULL) == d)
				break;
		}
		/* Trim trailing zeros left by %f. */
		if (prec <= 15 && isfinite(d)) {
			char *e = buf + strlen(buf) - 1;
			while (*e == '0' && e[-1] != '.')
				*e-- = '\0';
			if (tally_frac_parse(buf, out) == 0)
				return 0;
		}
	} else {
		lerr(l, p, "must be a decimal number or string, not %s",
		    tally_json_kind(v));
		return -1;
	}
	lerr(l, p, "must be a plain non-negative decimal below 10^9 with at most "
	    "9 decimals, e.g. \"1.7\"");
	return -1;
}

static int
parse_rule(struct loader *l, const json_t *obj, const char *ptr,
    struct tally_rule *rule, bool in_province)
{
	static const char *const keys[] = { "method", "first_divisor",
	    "threshold", "ties", NULL };
	static const char *const tkeys[] = { "percent", "of", "scope", NULL };
	size_t before = l->errors;
	bool method_ok = false;
	json_t *v, *t;
	char p[256], tp[256];
	const char *s;

	if (!json_is_object(obj)) {
		lerr(l, ptr, "must be an object, not %s", tally_json_kind(obj));
		return -1;
	}
	check_keys(l, obj, ptr, keys);
	memset(rule, 0, sizeof(*rule));
	rule->first_divisor.num = 1;
	rule->first_divisor.den = 1;
	rule->threshold_of = TALLY_THRESHOLD_NONE;
	rule->threshold_scope = TALLY_SCOPE_PROVINCE;
	rule->ties = TALLY_TIES_LOT;

	tally_ptr_key(p, sizeof(p), ptr, "method");
	v = json_object_get(obj, "method");
	s = json_string_value(v);
	if (v == NULL)
		lerr(l, p, "missing: one of " METHODS);
	else if (method_from_name(s) >= 0)
		method_ok = true,
		    rule->method = (enum tally_method)method_from_name(s);
	else
		lerr(l, p, "must be one of " METHODS);

	/* Without a known method there is no second divisor to compare with. */
	if ((v = json_object_get(obj, "first_divisor")) != NULL && method_ok) {
		tally_ptr_key(p, sizeof(p), ptr, "first_divisor");
		if (TALLY_METHOD_IS_QUOTA(rule->method))
			lerr(l, p, "only divisor methods (dhondt, sainte-lague) "
			    "take a first divisor");
		else if (get_decimal(l, v, p, &rule->first_divisor) == 0) {
			/*
			 * The first divisor must be positive and below the
			 * second (2 for D'Hondt, 3 for Sainte-Laguë) so that
			 * each list's quotients strictly decrease; every
			 * modified method in use (1.4, 1.7) is.
			 */
			struct tally_frac second = { rule->method ==
			    TALLY_METHOD_DHONDT ? 2 : 3, 1 };
			if (rule->first_divisor.num == 0 ||
			    tally_frac_cmp(rule->first_divisor, second) >= 0)
				lerr(l, p, "must be greater than 0 and less than "
				    "the second divisor (%llu)",
				    (unsigned long long)second.num);
		}
	}

	if ((t = json_object_get(obj, "threshold")) != NULL &&
	    !json_is_null(t)) {
		tally_ptr_key(tp, sizeof(tp), ptr, "threshold");
		if (!json_is_object(t)) {
			lerr(l, tp, "must be an object {\"percent\", \"of\", "
			    "\"scope\"} or null");
		} else {
			check_keys(l, t, tp, tkeys);
			rule->threshold_of = TALLY_THRESHOLD_VALID;
			tally_ptr_key(p, sizeof(p), tp, "percent");
			if ((v = json_object_get(t, "percent")) == NULL)
				lerr(l, p, "missing: the threshold in percent, "
				    "e.g. \"3\"");
			else if (get_decimal(l, v, p,
			    &rule->threshold_percent) == 0) {
				struct tally_frac hundred = { 100, 1 };
				if (rule->threshold_percent.num == 0 ||
				    tally_frac_cmp(rule->threshold_percent,
				    hundred) > 0)
					lerr(l, p, "must be greater than 0 and "
					    "at most 100");
			}
			tally_ptr_key(p, sizeof(p), tp, "of");
			if ((v = json_object_get(t, "of")) != NULL) {
				s = json_string_value(v);
				if (s != NULL && strcmp(s, "valid") == 0)
					rule->threshold_of = TALLY_THRESHOLD_VALID;
				else if (s != NULL && strcmp(s, "list") == 0)
					rule->threshold_of = TALLY_THRESHOLD_LIST;
				else
					lerr(l, p, "must be \"valid\" (list "
					    "votes + blank) or \"list\"");
			}
			tally_ptr_key(p, sizeof(p), tp, "scope");
			if ((v = json_object_get(t, "scope")) != NULL) {
				s = json_string_value(v);
				if (s != NULL && strcmp(s, "province") == 0)
					rule->threshold_scope = TALLY_SCOPE_PROVINCE;
				else if (s != NULL && strcmp(s, "national") == 0) {
					rule->threshold_scope = TALLY_SCOPE_NATIONAL;
					if (in_province)
						lerr(l, p, "a national threshold "
						    "belongs in the election's "
						    "allocation, not a province's");
				} else
					lerr(l, p, "must be \"province\" or "
					    "\"national\"");
			}
		}
	}

	tally_ptr_key(p, sizeof(p), ptr, "ties");
	if ((v = json_object_get(obj, "ties")) != NULL) {
		s = json_string_value(v);
		if (s != NULL && strcmp(s, "votes") == 0)
			rule->ties = TALLY_TIES_VOTES;
		else if (s != NULL && strcmp(s, "lot") == 0)
			rule->ties = TALLY_TIES_LOT;
		else
			lerr(l, p, "must be \"votes\" (more votes wins, then "
			    "lot) or \"lot\"");
	}
	return l->errors == before ? 0 : -1;
}

/*
 * Record id -> index under a namespace prefix; report a clash with the
 * pointer of the first use.
 */
static void
index_put(struct loader *l, json_t *index, char ns, const char *id,
    size_t pos, const char *ptr, const char *what)
{
	char key[TALLY_ID_MAX + 3], where[TALLY_ID_MAX + 3];

	/* "p:id" -> position; "P:id" -> the pointer where it was defined. */
	snprintf(key, sizeof(key), "%c:%s", ns, id);
	snprintf(where, sizeof(where), "%c:%s", ns - 'a' + 'A', id);
	if (json_object_get(index, key) != NULL) {
		lerr(l, ptr, "duplicate %s \"%s\" (already used at %s)", what,
		    id, json_string_value(json_object_get(index, where)));
		return;
	}
	json_object_set_new(index, key, json_integer((json_int_t)pos));
	json_object_set_new(index, where, json_string(ptr));
}

static void
free_names(struct tally_name *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(names[i].lang);
		free(names[i].text);
	}
	free(names);
}

/*
 * A language tag as BCP 47 writes it, in the subset a definition needs: a
 * primary subtag of 2 to 8 letters, then subtags of 1 to 8 letters or
 * digits, joined by '-' ("ar", "ku-Arab", "zh-Hant-TW").
 */
static bool
is_lang_tag(const char *s)
{
	size_t n = 0, k = 0;
	bool first = true;

	for (;; s++) {
		if (*s == '-' || *s == '\0') {
			if (first ? (n < 2 || n > 8) : (n < 1 || n > 8))
				return false;
			if (*s == '\0')
				return k <= 64;
			first = false;
			n = 0;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (!first && *s >= '0' && *s <= '9'))
			n++;
		else
			return false;
		k++;
	}
}

/*
 * "names": {"ar": "...", ...}: the names a reader may choose instead of
 * `name`.  Each key a language tag, each value a non-empty string.
 */
static void
parse_names(struct loader *l, const json_t *obj, const char *ptr,
    struct tally_name **out, size_t *n_out)
{
	json_t *names, *v;
	const char *lang;
	char p[256], np[256];

	if ((names = json_object_get(obj, "names")) == NULL)
		return;
	tally_ptr_key(p, sizeof(p), ptr, "names");
	if (!json_is_object(names)) {
		lerr(l, p, "must be an object of language tag to name, e.g. "
		    "{\"ar\": \"...\"}, not %s", tally_json_kind(names));
		return;
	}
	if (json_object_size(names) == 0)
		return;
	if ((*out = calloc(json_object_size(names), sizeof(**out))) == NULL) {
		lerr(l, p, "out of memory");
		return;
	}
	json_object_foreach(names, lang, v) {
		struct tally_name *nm = &(*out)[*n_out];
		if (!is_lang_tag(lang)) {
			lerr(l, tally_ptr_key(np, sizeof(np), p, lang), "\"%.40s\" is "
			    "not a language tag (BCP 47, e.g. \"ar\", "
			    "\"ku-Arab\")", lang);
			continue;
		}
		if ((nm->text = get_string(l, names, p, lang, true)) == NULL)
			continue;
		if ((nm->lang = strdup(lang)) == NULL) {
			free(nm->text);
			nm->text = NULL;
			lerr(l, p, "out of memory");
			continue;
		}
		(*n_out)++;
	}
}

/* The colour each view draws a coalition in: see tally/palette.h. */
static int
assign_colors(struct loader *l, struct tally_election *e)
{
	const char **defined;
	struct tally_color *shown;
	size_t i;
	int ret = -1;

	defined = calloc(e->n_coalitions + 1, sizeof(*defined));
	shown = calloc(e->n_coalitions + 1, sizeof(*shown));
	if (defined != NULL && shown != NULL) {
		for (i = 0; i < e->n_coalitions; i++)
			defined[i] = e->coalitions[i].color;
		ret = tally_palette_assign(defined, e->n_coalitions, shown);
		for (i = 0; ret == 0 && i < e->n_coalitions; i++)
			e->coalitions[i].shown = shown[i];
	}
	if (ret == -1)
		lerr(l, "/coalitions", "out of memory");
	free(defined);
	free(shown);
	return ret;
}

static void
free_coalition(struct tally_coalition *c)
{
	size_t i;

	free_names(c->names, c->n_names);
	free(c->id);
	free(c->name);
	free(c->short_name);
	free(c->color);
	for (i = 0; i < c->n_aliases; i++)
		free(c->aliases[i]);
	free(c->aliases);
	for (i = 0; i < c->n_predecessors; i++)
		free(c->predecessors[i]);
	free(c->predecessors);
	free(c->threshold.reason);
}

static bool
is_color(const char *s)
{
	size_t i;

	if (strlen(s) != 7 || s[0] != '#')
		return false;
	for (i = 1; i < 7; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

static void	parse_aliases(struct loader *, const json_t *, const char *,
		    struct tally_coalition *, json_t *, size_t);

/*
 * "predecessors": ["id", ...], the coalition's lists in the previous
 * election.  Whether they exist there is checked when the previous
 * election is loaded (tally_previous_load); here only their syntax.
 */
static void
parse_predecessors(struct loader *l, const json_t *obj, const char *ptr,
    struct tally_coalition *c)
{
	json_t *al, *v;
	char p[256], ap[256];
	size_t i, j;

	if ((al = json_object_get(obj, "predecessors")) == NULL)
		return;
	tally_ptr_key(p, sizeof(p), ptr, "predecessors");
	if (!json_is_array(al)) {
		lerr(l, p, "must be an array of the previous election's "
		    "coalition ids");
		return;
	}
	if (json_array_size(al) > 0 && (c->predecessors =
	    calloc(json_array_size(al), sizeof(char *))) == NULL) {
		lerr(l, p, "out of memory");
		return;
	}
	json_array_foreach(al, i, v) {
		ptr_idx(ap, sizeof(ap), p, i);
		if (!json_is_string(v) || !tally_id_is_valid(json_string_value(v))) {
			lerr(l, ap, "must be a coalition id of the previous "
			    "election: 1 to %d of A-Z a-z 0-9 _ - .", TALLY_ID_MAX);
			continue;
		}
		for (j = 0; j < c->n_predecessors; j++)
			if (strcmp(c->predecessors[j], json_string_value(v)) == 0)
				break;
		if (j < c->n_predecessors) {
			lerr(l, ap, "\"%s\" is given twice",
			    json_string_value(v));
			continue;
		}
		if ((c->predecessors[c->n_predecessors] =
		    strdup(json_string_value(v))) == NULL) {
			lerr(l, ap, "out of memory");
			continue;
		}
		c->n_predecessors++;
	}
}
static void	parse_list_threshold(struct loader *, const json_t *,
		    const char *, struct tally_list_threshold *);

static void
parse_coalition(struct loader *l, const json_t *obj, const char *ptr,
    struct tally_coalition *c, json_t *index, size_t pos)
{
	static const char *const keys[] = { "id", "name", "short", "color",
	    "aliases", "threshold", "names", "predecessors", NULL };
	json_t *v;
	char p[256];

	if (!json_is_object(obj)) {
		lerr(l, ptr, "must be an object, not %s", tally_json_kind(obj));
		return;
	}
	check_keys(l, obj, ptr, keys);
	c->index = pos;
	c->id = get_id(l, obj, ptr);
	c->name = get_string(l, obj, ptr, "name", true);
	c->short_name = get_string(l, obj, ptr, "short", false);
	parse_names(l, obj, ptr, &c->names, &c->n_names);
	c->color = get_string(l, obj, ptr, "color", false);
	if (c->color != NULL && !is_color(c->color)) {
		lerr(l, tally_ptr_key(p, sizeof(p), ptr, "color"),
		    "must be a colour \"#rrggbb\"");
	}
	if (c->id != NULL)
		index_put(l, index, 'l', c->id, pos,
		    tally_ptr_key(p, sizeof(p), ptr, "id"), "coalition or alias id");
	parse_aliases(l, obj, ptr, c, index, pos);
	parse_predecessors(l, obj, ptr, c);
	if ((v = json_object_get(obj, "threshold")) != NULL)
		parse_list_threshold(l, v, tally_ptr_key(p, sizeof(p), ptr,
		    "threshold"), &c->threshold);
}

/*
 * A coalition's own threshold: {"percent": "8", "reason": "..."} or
 * {"exempt": true, "reason": "..."}.
 */
static void
parse_list_threshold(struct loader *l, const json_t *obj, const char *ptr,
    struct tally_list_threshold *t)
{
	static const char *const keys[] = { "percent", "exempt", "reason",
	    NULL };
	json_t *pc, *ex;
	char p[256];

	if (!json_is_object(obj)) {
		lerr(l, ptr, "must be an object {\"percent\", \"reason\"} or "
		    "{\"exempt\": true, \"reason\"}");
		return;
	}
	check_keys(l, obj, ptr, keys);
	pc = json_object_get(obj, "percent");
	ex = json_object_get(obj, "exempt");
	if (pc != NULL && ex != NULL)
		lerr(l, ptr, "give either \"percent\" or \"exempt\", not both");
	else if (pc == NULL && ex == NULL)
		lerr(l, ptr, "missing: \"percent\" (the coalition's own "
		    "threshold) or \"exempt\": true");
	else if (pc != NULL) {
		tally_ptr_key(p, sizeof(p), ptr, "percent");
		if (get_decimal(l, pc, p, &t->percent) == 0) {
			struct tally_frac hundred = { 100, 1 };
			if (t->percent.num == 0 ||
			    tally_frac_cmp(t->percent, hundred) > 0)
				lerr(l, p, "must be greater than 0 and at most "
				    "100");
			else
				t->set = true;
		}
	} else if (!json_is_true(ex)) {
		lerr(l, tally_ptr_key(p, sizeof(p), ptr, "exempt"),
		    "must be true (leave the threshold out when not exempt)");
	} else
		t->set = t->exempt = true;
	t->reason = get_string(l, obj, ptr, "reason", false);
}

static void
parse_aliases(struct loader *l, const json_t *obj, const char *ptr,
    struct tally_coalition *c, json_t *index, size_t pos)
{
	json_t *al, *v;
	char p[256];
	size_t i;

	if ((al = json_object_get(obj, "aliases")) == NULL)
		return;
	tally_ptr_key(p, sizeof(p), ptr, "aliases");
	if (!json_is_array(al)) {
		lerr(l, p, "must be an array of list ids");
		return;
	}
	if (json_array_size(al) > 0 &&
	    (c->aliases = calloc(json_array_size(al), sizeof(char *))) == NULL) {
		lerr(l, p, "out of memory");
		return;
	}
	json_array_foreach(al, i, v) {
		char ap[256];
		ptr_idx(ap, sizeof(ap), p, i);
		if (!json_is_string(v) || !tally_id_is_valid(json_string_value(v))) {
			lerr(l, ap, "must be a list id: 1 to %d of A-Z a-z 0-9 "
			    "_ - .", TALLY_ID_MAX);
			continue;
		}
		if ((c->aliases[c->n_aliases] = strdup(json_string_value(v))) == NULL) {
			lerr(l, ap, "out of memory");
			continue;
		}
		index_put(l, index, 'l', c->aliases[c->n_aliases], pos, ap,
		    "coalition or alias id");
		c->n_aliases++;
	}
}

/*
 * An optional count of ballots (`registered`, `station_ballots_max`): a JSON
 * integer from 0 to 10^12.  true when given and valid.
 */
static bool
get_count(struct loader *l, const json_t *obj, const char *ptr,
    const char *key, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);
	char p[256];

	if (v == NULL)
		return false;
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > TALLY_COUNT_MAX) {
		lerr(l, tally_ptr_key(p, sizeof(p), ptr, key),
		    "must be a non-negative integer (at most 10^12)");
		return false;
	}
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static void
parse_province(struct loader *l, const json_t *obj, const char *ptr,
    struct tally_province *pv, const struct tally_rule *rule, json_t *index,
    size_t pos, bool levelling, uint64_t station_max)
{
	static const char *const keys[] = { "id", "name", "seats",
	    "allocation", "levelling_seats", "registered",
	    "station_ballots_max", "names", "expected_ballots",
	    "expected_turnout", "tile", NULL };
	json_t *v;
	char p[256];

	if (!json_is_object(obj)) {
		lerr(l, ptr, "must be an object, not %s", tally_json_kind(obj));
		return;
	}
	check_keys(l, obj, ptr, keys);
	pv->index = pos;
	pv->id = get_id(l, obj, ptr);
	pv->name = get_string(l, obj, ptr, "name", true);
	parse_names(l, obj, ptr, &pv->names, &pv->n_names);
	if (pv->id != NULL)
		index_put(l, index, 'p', pv->id, pos,
		    tally_ptr_key(p, sizeof(p), ptr, "id"), "province id");
	tally_ptr_key(p, sizeof(p), ptr, "seats");
	v = json_object_get(obj, "seats");
	if (v == NULL)
		lerr(l, p, "missing: a positive integer");
	else if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > TALLY_SEATS_MAX)
		lerr(l, p, "must be a positive integer (at most %d)",
		    TALLY_SEATS_MAX);
	else
		pv->seats = (uint32_t)json_integer_value(v);
	pv->rule = *rule;
	if ((v = json_object_get(obj, "allocation")) != NULL) {
		tally_ptr_key(p, sizeof(p), ptr, "allocation");
		if (parse_rule(l, v, p, &pv->rule, true) == 0)
			pv->own_rule = true;
	}
	if ((v = json_object_get(obj, "levelling_seats")) != NULL) {
		tally_ptr_key(p, sizeof(p), ptr, "levelling_seats");
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > TALLY_SEATS_MAX)
			lerr(l, p, "must be an integer from 0 to %d",
			    TALLY_SEATS_MAX);
		else if (!levelling)
			lerr(l, p, "levelling seats need a \"levelling\" tier "
			    "in the definition");
		else
			pv->levelling_seats = (uint32_t)json_integer_value(v);
	}
	pv->has_registered = get_count(l, obj, ptr, "registered",
	    &pv->registered);
	if (!get_count(l, obj, ptr, "station_ballots_max",
	    &pv->station_ballots_max))
		pv->station_ballots_max = station_max;
	pv->has_expected = get_count(l, obj, ptr, "expected_ballots",
	    &pv->expected_ballots);
	if ((v = json_object_get(obj, "expected_turnout")) != NULL) {
		/* Percent of the registered electorate, exactly (floor). */
		struct tally_frac t, hundred = { 100, 1 };
		tally_ptr_key(p, sizeof(p), ptr, "expected_turnout");
		if (get_decimal(l, v, p, &t) == 0) {
			if (t.num == 0 || tally_frac_cmp(t, hundred) > 0)
				lerr(l, p, "must be greater than 0 and at most "
				    "100");
			else if (pv->has_expected)
				lerr(l, p, "give expected_ballots or "
				    "expected_turnout, not both");
			else if (!pv->has_registered)
				lerr(l, p, "needs \"registered\" (the "
				    "turnout is a percent of it)");
			else {
				pv->has_expected = true;
				pv->expected_ballots = (uint64_t)(
				    (unsigned __int128)pv->registered * t.num /
				    ((unsigned __int128)t.den * 100));
			}
		}
	}
	if ((v = json_object_get(obj, "tile")) != NULL) {
		/* [column, row] of the tile map, each 0 to 99. */
		tally_ptr_key(p, sizeof(p), ptr, "tile");
		if (!json_is_array(v) || json_array_size(v) != 2 ||
		    !json_is_integer(json_array_get(v, 0)) ||
		    !json_is_integer(json_array_get(v, 1)) ||
		    json_integer_value(json_array_get(v, 0)) < 0 ||
		    json_integer_value(json_array_get(v, 0)) > 99 ||
		    json_integer_value(json_array_get(v, 1)) < 0 ||
		    json_integer_value(json_array_get(v, 1)) > 99)
			lerr(l, p, "must be [column, row], two integers from "
			    "0 to 99");
		else {
			pv->has_tile = true;
			pv->tile_x = (uint32_t)json_integer_value(
			    json_array_get(v, 0));
			pv->tile_y = (uint32_t)json_integer_value(
			    json_array_get(v, 1));
		}
	}
}

/*
 * The levelling tier: {"allocation": {divisor method, national threshold},
 * "assignment": {divisor method, "scale"}}.
 */
static void
parse_levelling(struct loader *l, const json_t *obj, struct tally_levelling *lv)
{
	static const char *const keys[] = { "allocation", "assignment", NULL };
	static const char *const akeys[] = { "method", "first_divisor",
	    "scale", "ties", NULL };
	const char *ptr = "/levelling";
	json_t *v, *copy;
	const char *s;
	char p[256];

	if (!json_is_object(obj)) {
		lerr(l, ptr, "must be an object {\"allocation\", "
		    "\"assignment\"}");
		return;
	}
	check_keys(l, obj, ptr, keys);
	lv->enabled = true;
	if ((v = json_object_get(obj, "allocation")) == NULL)
		lerr(l, "/levelling/allocation", "missing: the national "
		    "apportionment {\"method\", \"first_divisor\", "
		    "\"threshold\"}");
	else if (parse_rule(l, v, "/levelling/allocation", &lv->national,
	    false) == 0) {
		if (TALLY_METHOD_IS_QUOTA(lv->national.method))
			lerr(l, "/levelling/allocation/method", "the levelling "
			    "tier needs a divisor method (dhondt, sainte-lague)");
		/* The national apportionment's threshold is national. */
		lv->national.threshold_scope = TALLY_SCOPE_NATIONAL;
	}
	if ((v = json_object_get(obj, "assignment")) == NULL) {
		lerr(l, "/levelling/assignment", "missing: how levelling seats "
		    "go to provinces {\"method\", \"first_divisor\", "
		    "\"scale\"}");
		return;
	}
	if (!json_is_object(v)) {
		lerr(l, "/levelling/assignment", "must be an object, not %s",
		    tally_json_kind(v));
		return;
	}
	check_keys(l, v, "/levelling/assignment", akeys);
	lv->scale = TALLY_SCALE_NONE;
	tally_ptr_key(p, sizeof(p), "/levelling/assignment", "scale");
	if ((s = json_string_value(json_object_get(v, "scale"))) != NULL &&
	    strcmp(s, "votes_per_seat") == 0)
		lv->scale = TALLY_SCALE_VOTES_PER_SEAT;
	else if (json_object_get(v, "scale") != NULL &&
	    (s == NULL || strcmp(s, "none") != 0))
		lerr(l, p, "must be \"votes_per_seat\" (quotients divided by "
		    "the province's votes per district seat) or \"none\"");
	if ((copy = json_copy(v)) == NULL) {
		lerr(l, p, "out of memory");
		return;
	}
	json_object_del(copy, "scale");
	if (parse_rule(l, copy, "/levelling/assignment", &lv->assign,
	    false) == 0 && TALLY_METHOD_IS_QUOTA(lv->assign.method))
		lerr(l, "/levelling/assignment/method", "the levelling "
		    "assignment needs a divisor method (dhondt, sainte-lague)");
	json_decref(copy);
}

/*
 * A coalition's own percent replaces the percent of the threshold in force,
 * so there must be one; an exemption needs none but is harmless.
 */
static void
check_list_thresholds(struct loader *l, struct tally_election *e,
    const json_t *root)
{
	size_t i;
	char p[256], cp[64];

	(void)root;
	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_coalition *c = &e->coalitions[i];
		if (!c->threshold.set)
			continue;
		e->has_list_thresholds = true;
		if (!c->threshold.exempt &&
		    e->rule.threshold_of == TALLY_THRESHOLD_NONE)
			lerr(l, tally_ptr_key(p, sizeof(p), ptr_idx(cp, sizeof(cp),
			    "/coalitions", i), "threshold"), "a coalition's own "
			    "threshold needs a threshold in the election's "
			    "allocation (its base and scope apply)");
	}
}

static struct tally_election *
load_json(json_t *root, struct loader *l)
{
	static const char *const keys[] = { "id", "name", "description",
	    "date", "allocation", "station_ballots_max", "coalitions",
	    "provinces", "levelling", "names", "previous", NULL };
	struct tally_election *e;
	json_t *v, *arr;
	size_t i;
	char p[256];
	bool rule_ok = false;

	if ((e = calloc(1, sizeof(*e))) == NULL) {
		lerr(l, "", "out of memory");
		return NULL;
	}
	if ((e->index = json_object()) == NULL) {
		lerr(l, "", "out of memory");
		goto fail;
	}
	if (!json_is_object(root)) {
		lerr(l, "", "the definition must be a JSON object, not %s",
		    tally_json_kind(root));
		goto fail;
	}
	check_keys(l, root, "", keys);
	e->id = get_id(l, root, "");
	e->name = get_string(l, root, "", "name", true);
	parse_names(l, root, "", &e->names, &e->n_names);
	for (i = 0; i < 2; i++) {
		const char *k = i == 0 ? "description" : "date";
		if ((v = json_object_get(root, k)) != NULL && !json_is_string(v))
			lerr(l, tally_ptr_key(p, sizeof(p), "", k), "must be a string");
	}

	if ((v = json_object_get(root, "allocation")) == NULL)
		lerr(l, "/allocation", "missing: {\"method\": ..., ...}");
	else if (parse_rule(l, v, "/allocation", &e->rule, false) == 0)
		rule_ok = true;
	e->has_national_threshold = rule_ok &&
	    e->rule.threshold_of != TALLY_THRESHOLD_NONE &&
	    e->rule.threshold_scope == TALLY_SCOPE_NATIONAL;

	get_count(l, root, "", "station_ballots_max", &e->station_ballots_max);
	if ((v = json_object_get(root, "previous")) != NULL) {
		static const char *const pkeys[] = { "definition", "results",
		    NULL };
		if (!json_is_object(v))
			lerr(l, "/previous", "must be an object: "
			    "{\"definition\": FILE, \"results\": FILE}");
		else {
			check_keys(l, v, "/previous", pkeys);
			e->previous_definition = get_string(l, v, "/previous",
			    "definition", true);
			e->previous_results = get_string(l, v, "/previous",
			    "results", true);
		}
	}

	arr = json_object_get(root, "coalitions");
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		lerr(l, "/coalitions", "must be a non-empty array of coalitions");
	} else {
		e->coalitions = calloc(json_array_size(arr), sizeof(*e->coalitions));
		if (e->coalitions == NULL) {
			lerr(l, "/coalitions", "out of memory");
			goto fail;
		}
		e->n_coalitions = json_array_size(arr);
		json_array_foreach(arr, i, v)
			parse_coalition(l, v, ptr_idx(p, sizeof(p),
			    "/coalitions", i), &e->coalitions[i], e->index, i);
	}

	arr = json_object_get(root, "provinces");
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		lerr(l, "/provinces", "must be a non-empty array of provinces");
	} else {
		e->provinces = calloc(json_array_size(arr), sizeof(*e->provinces));
		if (e->provinces == NULL) {
			lerr(l, "/provinces", "out of memory");
			goto fail;
		}
		e->n_provinces = json_array_size(arr);
		json_array_foreach(arr, i, v) {
			parse_province(l, v, ptr_idx(p, sizeof(p), "/provinces",
			    i), &e->provinces[i], &e->rule, e->index, i,
			    json_object_get(root, "levelling") != NULL,
			    e->station_ballots_max);
			e->seats_total += e->provinces[i].seats;
			e->levelling.seats += e->provinces[i].levelling_seats;
			if (e->provinces[i].has_expected)
				e->has_expected = true;
		}
	}
	e->district_seats = e->seats_total;
	if ((v = json_object_get(root, "levelling")) != NULL) {
		parse_levelling(l, v, &e->levelling);
		if (e->levelling.enabled && e->levelling.seats == 0 &&
		    e->provinces != NULL)
			lerr(l, "/levelling", "no province has levelling_seats: "
			    "the tier would have no seats");
		e->seats_total += e->levelling.seats;
	}
	check_list_thresholds(l, e, root);
	if (l->errors == 0 && assign_colors(l, e) == 0) {
		/* Without them the leaderboard is only slower (render.c). */
		e->lb_pieces = tally_lb_pieces_create(e);
		return e;
	}
fail:
	tally_election_destroy(e);
	return NULL;
}

struct tally_election *
tally_election_loadb(const char *buf, size_t len, const char *name,
    struct tally_diag *diag)
{
	struct loader l = { name ? name : "election", diag, 0 };
	struct tally_election *e;
	unsigned long nomem = tally_json_failures();
	json_error_t jerr;
	json_t *root;

	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (tally_json_failures() != nomem) {
		/* See tally_json_init: the text may have lost characters. */
		json_decref(root);
		tally_diag_add(diag, "%s: out of memory while reading it", l.name);
		return NULL;
	}
	if (root == NULL) {
		tally_diag_add(diag, "%s:%d:%d: invalid JSON: %s", l.name,
		    jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	e = load_json(root, &l);
	json_decref(root);
	return e;
}

/*
 * A file named in a definition: relative to the definition's own
 * directory (so a definition and its previous election move together), or
 * absolute.  *out new.  0 or -1.
 */
static int
resolve_beside(const char *def, const char *name, char **out)
{
	const char *slash = strrchr(def, '/');
	size_t dir = slash != NULL ? (size_t)(slash - def) + 1 : 0;

	if (name[0] == '/' || dir == 0) {
		*out = strdup(name);
		return *out != NULL ? 0 : -1;
	}
	if ((*out = malloc(dir + strlen(name) + 1)) == NULL)
		return -1;
	memcpy(*out, def, dir);
	strcpy(*out + dir, name);
	return 0;
}

/*
 * The previous election's files are part of what the views show: their
 * bytes go into the definition's digest (through the dump), so that
 * editing them moves every validator.  -1 with diag when one cannot be
 * read.
 */
static int
previous_digest(struct tally_election *e, const char *path,
    struct tally_diag *diag)
{
	const char *files[2] = { e->previous_definition_path,
	    e->previous_results_path };
	const char *keys[2] = { "definition", "results" };
	uint64_t h = 14695981039346656037ULL;
	size_t i, k, len;
	char *buf;

	for (i = 0; i < 2; i++) {
		if (tally_read_file(files[i], &buf, &len) == -1) {
			tally_diag_add(diag, "%s: /previous/%s: cannot read "
			    "%s: %s", path, keys[i], files[i], strerror(errno));
			return -1;
		}
		for (k = 0; k < len; k++) {
			h ^= (unsigned char)buf[k];
			h *= 1099511628211ULL;
		}
		free(buf);
	}
	e->previous_digest = h;
	return 0;
}

struct tally_election *
tally_election_load(const char *path, struct tally_diag *diag)
{
	struct tally_election *e = NULL;
	char *buf = NULL;
	size_t len;

	if (tally_read_file(path, &buf, &len) == -1) {
		tally_diag_add(diag, "%s: cannot read: %s", path,
		    strerror(errno));
		return NULL;
	}
	e = tally_election_loadb(buf, len, path, diag);
	free(buf);
	if (e != NULL && e->previous_definition != NULL &&
	    (resolve_beside(path, e->previous_definition,
	    &e->previous_definition_path) == -1 ||
	    resolve_beside(path, e->previous_results,
	    &e->previous_results_path) == -1)) {
		tally_diag_add(diag, "%s: /previous: out of memory", path);
		tally_election_destroy(e);
		return NULL;
	}
	if (e != NULL && e->previous_definition != NULL &&
	    previous_digest(e, path, diag) == -1) {
		tally_election_destroy(e);
		return NULL;
	}
	return e;
}

void
tally_election_destroy(struct tally_election *e)
{
	size_t i;

	if (e == NULL)
		return;
	tally_lb_pieces_destroy(e->lb_pieces);
	for (i = 0; i < e->n_coalitions; i++)
		free_coalition(&e->coalitions[i]);
	free(e->coalitions);
	for (i = 0; i < e->n_provinces; i++) {
		free(e->provinces[i].id);
		free(e->provinces[i].name);
		free_names(e->provinces[i].names, e->provinces[i].n_names);
	}
	free(e->provinces);
	free(e->id);
	free(e->name);
	free_names(e->names, e->n_names);
	free(e->previous_definition);
	free(e->previous_results);
	free(e->previous_definition_path);
	free(e->previous_results_path);
	json_decref(e->index);
	free(e);
}

static long
index_get(const struct tally_election *e, char ns, const char *id)
{
	char key[TALLY_ID_MAX + 3];
	size_t n;
	json_t *v;

	if (id == NULL || (n = strlen(id)) > TALLY_ID_MAX)
		return -1;
	/* On every list of every feed: no printf here. */
	key[0] = ns;
	key[1] = ':';
	memcpy(key + 2, id, n + 1);
	v = json_object_get(e->index, key);
	return v ? (long)json_integer_value(v) : -1;
}

const struct tally_province *
tally_election_province(const struct tally_election *e, const char *id)
{
	long i = index_get(e, 'p', id);

	return i < 0 ? NULL : &e->provinces[i];
}

const struct tally_coalition *
tally_election_list(const struct tally_election *e, const char *list_id)
{
	long i = index_get(e, 'l', list_id);

	return i < 0 ? NULL : &e->coalitions[i];
}

const char *
tally_election_list_id(const struct tally_election *e, const char *list_id)
{
	const struct tally_coalition *c = tally_election_list(e, list_id);
	size_t i;

	if (c == NULL)
		return NULL;
	if (strcmp(c->id, list_id) == 0)
		return c->id;
	for (i = 0; i < c->n_aliases; i++)
		if (strcmp(c->aliases[i], list_id) == 0)
			return c->aliases[i];
	return NULL;
}

const struct tally_coalition *
tally_election_coalition(const struct tally_election *e, const char *id)
{
	const struct tally_coalition *c = tally_election_list(e, id);

	return c != NULL && strcmp(c->id, id) == 0 ? c : NULL;
}

static json_t *
dump_rule(const struct tally_rule *r)
{
	char buf[64];
	json_t *o = json_object(), *t;

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "method", json_string(tally_method_name(r->method)));
	if (r->method == TALLY_METHOD_DHONDT ||
	    r->method == TALLY_METHOD_SAINTE_LAGUE)
		json_object_set_new(o, "first_divisor", json_string(
		    tally_frac_format(r->first_divisor, buf, sizeof(buf))));
	if (r->threshold_of == TALLY_THRESHOLD_NONE) {
		json_object_set_new(o, "threshold", json_null());
	} else {
		t = json_object();
		json_object_set_new(t, "percent", json_string(
		    tally_frac_format(r->threshold_percent, buf, sizeof(buf))));
		json_object_set_new(t, "of", json_string(
		    tally_threshold_of_name(r->threshold_of)));
		json_object_set_new(t, "scope", json_string(
		    tally_scope_name(r->threshold_scope)));
		json_object_set_new(o, "threshold", t);
	}
	json_object_set_new(o, "ties", json_string(tally_ties_name(r->ties)));
	return o;
}

static json_t *
dump_list_threshold(const struct tally_list_threshold *t)
{
	char buf[64];
	json_t *o = json_object();

	if (t->exempt)
		json_object_set_new(o, "exempt", json_true());
	else
		json_object_set_new(o, "percent", json_string(
		    tally_frac_format(t->percent, buf, sizeof(buf))));
	json_object_set_new(o, "reason", t->reason ? json_string(t->reason) :
	    json_null());
	return o;
}

/* "names" only when the definition gives some. */
static void
dump_names(json_t *o, const struct tally_name *names, size_t n)
{
	json_t *m;
	size_t i;

	if (n == 0)
		return;
	m = json_object();
	for (i = 0; i < n; i++)
		json_object_set_new(m, names[i].lang, json_string(names[i].text));
	json_object_set_new(o, "names", m);
}

json_t *
tally_election_dump(const struct tally_election *e)
{
	json_t *o, *arr, *c, *al;
	size_t i, j;

	if ((o = json_object()) == NULL)
		return NULL;
	json_object_set_new(o, "id", json_string(e->id));
	json_object_set_new(o, "name", json_string(e->name));
	dump_names(o, e->names, e->n_names);
	json_object_set_new(o, "seats", json_integer((json_int_t)e->seats_total));
	json_object_set_new(o, "majority",
	    json_integer((json_int_t)(e->seats_total / 2 + 1)));
	json_object_set_new(o, "allocation", dump_rule(&e->rule));
	if (e->station_ballots_max != 0)
		json_object_set_new(o, "station_ballots_max",
		    json_integer((json_int_t)e->station_ballots_max));
	arr = json_array();
	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_coalition *co = &e->coalitions[i];
		c = json_object();
		json_object_set_new(c, "id", json_string(co->id));
		json_object_set_new(c, "name", json_string(co->name));
		json_object_set_new(c, "short", json_string(co->short_name ?
		    co->short_name : co->name));
		tally_color_json(c, co);
		al = json_array();
		for (j = 0; j < co->n_aliases; j++)
			json_array_append_new(al, json_string(co->aliases[j]));
		json_object_set_new(c, "aliases", al);
		if (co->threshold.set)
			json_object_set_new(c, "threshold",
			    dump_list_threshold(&co->threshold));
		if (co->n_predecessors > 0) {
			al = json_array();
			for (j = 0; j < co->n_predecessors; j++)
				json_array_append_new(al,
				    json_string(co->predecessors[j]));
			json_object_set_new(c, "predecessors", al);
		}
		dump_names(c, co->names, co->n_names);
		json_array_append_new(arr, c);
	}
	json_object_set_new(o, "coalitions", arr);
	arr = json_array();
	for (i = 0; i < e->n_provinces; i++) {
		const struct tally_province *pv = &e->provinces[i];
		c = json_object();
		json_object_set_new(c, "id", json_string(pv->id));
		json_object_set_new(c, "name", json_string(pv->name));
		json_object_set_new(c, "seats", json_integer(pv->seats));
		if (pv->own_rule)
			json_object_set_new(c, "allocation", dump_rule(&pv->rule));
		if (e->levelling.enabled)
			json_object_set_new(c, "levelling_seats",
			    json_integer(pv->levelling_seats));
		if (pv->has_registered)
			json_object_set_new(c, "registered",
			    json_integer((json_int_t)pv->registered));
		if (pv->station_ballots_max != e->station_ballots_max)
			json_object_set_new(c, "station_ballots_max",
			    json_integer((json_int_t)pv->station_ballots_max));
		if (pv->has_expected)
			json_object_set_new(c, "expected_ballots",
			    json_integer((json_int_t)pv->expected_ballots));
		if (pv->has_tile)
			json_object_set_new(c, "tile", json_pack("[ii]",
			    (int)pv->tile_x, (int)pv->tile_y));
		dump_names(c, pv->names, pv->n_names);
		json_array_append_new(arr, c);
	}
	json_object_set_new(o, "provinces", arr);
	if (e->previous_definition != NULL) {
		char dg[24];
		snprintf(dg, sizeof(dg), "%016llx",
		    (unsigned long long)e->previous_digest);
		json_object_set_new(o, "previous", json_pack("{ssssss}",
		    "definition", e->previous_definition, "results",
		    e->previous_results, "digest", dg));
	}
	if (e->levelling.enabled) {
		json_t *lv = json_object(), *as;
		json_object_set_new(lv, "seats",
		    json_integer((json_int_t)e->levelling.seats));
		json_object_set_new(lv, "allocation",
		    dump_rule(&e->levelling.national));
		as = dump_rule(&e->levelling.assign);
		json_object_del(as, "threshold");
		json_object_set_new(as, "scale", json_string(
		    tally_scale_name(e->levelling.scale)));
		json_object_set_new(lv, "assignment", as);
		json_object_set_new(o, "levelling", lv);
	}
	return o;
}
