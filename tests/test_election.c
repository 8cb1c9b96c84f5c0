/*
 * test_election.c - the election loader, case by case, and its helpers.
 *
 * Usage: test_election CASES_DIR [DEFINITION.json ...]
 *
 * CASES_DIR holds one directory per case (tests/data/election/<case>/), run
 * in sorted order, the way jansson's test suites are laid out.  Each holds
 * election.json, the input (which may be deliberately broken, even invalid
 * JSON), and one of:
 *
 *   expected-errors.txt	the exact messages tally_election_load appends to
 *			the diag, one a line, in order; the load must fail.
 *   expected.json	the load must succeed; tally_election_dump's output
 *			must equal this file (compared as JSON).
 *
 * A case may also hold `xfail`: a known loader bug, described in that file.
 * The expected file then says what the loader *should* produce; while the
 * bug is there the mismatch is printed and not counted, and once the loader
 * is fixed the case fails until `xfail` is removed, so a fix is noticed.
 *
 * The test chdirs into each case and loads "election.json", so every message
 * starts with "election.json" whatever the build directory is.
 *
 * Each further argument is a real definition (config/elections/iraq-2018.json
 * from meson), checked for its known shape.  Unit checks of tally_frac_*,
 * tally_id_is_valid and the loader's edges run first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

/* ---- helpers ---------------------------------------------------------- */

/* Read a whole file; NULL (errno set) when it cannot be read. */
static char *
slurp(const char *path, size_t *lenp)
{
	FILE *f;
	char *buf = NULL, *n;
	size_t len = 0, cap = 0, got;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	for (;;) {
		if (cap - len < 1024) {
			cap = cap ? cap * 2 : 4096;
			if ((n = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = n;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return buf;
}

static bool
exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void
print_diag(const char *prefix, const struct tally_diag *d)
{
	size_t i;

	for (i = 0; i < d->count && i < d->cap; i++)
		fprintf(stderr, "%s%s\n", prefix, d->msgs[i]);
	if (d->count == 0)
		fprintf(stderr, "%s(no messages)\n", prefix);
}

static void
print_json(const char *prefix, const json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

	fprintf(stderr, "%s%s\n", prefix, s ? s : "(null)");
	free(s);
}

static bool
frac_eq(struct tally_frac a, uint64_t num, uint64_t den)
{
	return a.num == num && a.den == den;
}

static bool
rule_eq(const struct tally_rule *a, const struct tally_rule *b)
{
	return a->method == b->method &&
	    tally_frac_cmp(a->first_divisor, b->first_divisor) == 0 &&
	    a->threshold_of == b->threshold_of &&
	    (a->threshold_of == TALLY_THRESHOLD_NONE ||
	    tally_frac_cmp(a->threshold_percent, b->threshold_percent) == 0) &&
	    a->threshold_scope == b->threshold_scope &&
	    a->ties == b->ties;
}

/* ---- one data-driven case --------------------------------------------- */

/*
 * Problems found in the case being run.  A case counts as one check: it
 * passes when nothing was noted (or, for an xfail case, when something was).
 */
struct run {
	const char	*name;
	unsigned	 problems;
	bool		 quiet;		/* xfail: say less */
};

static void note(struct run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
note(struct run *r, const char *fmt, ...)
{
	va_list ap;

	r->problems++;
	fprintf(stderr, "%s: ", r->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * What every loaded election must satisfy whatever its file says: totals add
 * up and every id looks up to its own entry (and aliases only as lists).
 */
static void
check_invariants(struct run *r, const struct tally_election *e)
{
	uint64_t total = 0;
	size_t i, j;

	for (i = 0; i < e->n_provinces; i++) {
		const struct tally_province *pv = &e->provinces[i];
		total += pv->seats;
		if (pv->seats < 1 || pv->seats > TALLY_SEATS_MAX)
			note(r, "province %s has %u seats", pv->id, pv->seats);
		if (pv->index != i)
			note(r, "province %s has index %zu, not %zu", pv->id,
			    pv->index, i);
		if (tally_election_province(e, pv->id) != pv)
			note(r, "province %s does not look up to itself", pv->id);
		if (!pv->own_rule && !rule_eq(&pv->rule, &e->rule))
			note(r, "province %s without its own allocation has a "
			    "rule different from the election's", pv->id);
		if (pv->rule.threshold_of != TALLY_THRESHOLD_NONE &&
		    pv->rule.threshold_scope == TALLY_SCOPE_NATIONAL &&
		    pv->own_rule)
			note(r, "province %s has its own national threshold",
			    pv->id);
	}
	/* A levelling tier adds its seats to the district seats. */
	if (total != e->district_seats ||
	    e->levelling.seats + e->district_seats != e->seats_total)
		note(r, "seats_total %llu, provinces add up to %llu",
		    (unsigned long long)e->seats_total,
		    (unsigned long long)total);
	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_coalition *c = &e->coalitions[i];
		if (c->index != i)
			note(r, "coalition %s has index %zu, not %zu", c->id,
			    c->index, i);
		if (tally_election_coalition(e, c->id) != c)
			note(r, "coalition %s: tally_election_coalition", c->id);
		if (tally_election_list(e, c->id) != c)
			note(r, "coalition %s: tally_election_list", c->id);
		for (j = 0; j < c->n_aliases; j++) {
			if (tally_election_list(e, c->aliases[j]) != c)
				note(r, "alias %s does not list as %s",
				    c->aliases[j], c->id);
			if (tally_election_coalition(e, c->aliases[j]) != NULL)
				note(r, "alias %s found as a coalition",
				    c->aliases[j]);
		}
	}
	if (tally_election_province(e, "no-such-province") != NULL ||
	    tally_election_list(e, "no-such-list") != NULL ||
	    tally_election_coalition(e, "no-such-list") != NULL)
		note(r, "an unknown id was found");
	if (e->has_national_threshold != (e->rule.threshold_of !=
	    TALLY_THRESHOLD_NONE && e->rule.threshold_scope == TALLY_SCOPE_NATIONAL))
		note(r, "has_national_threshold disagrees with the rule");
}

static void
expect_errors(struct run *r, const struct tally_election *e,
    const struct tally_diag *d, const char *want_text)
{
	const char *line = want_text, *nl;
	size_t i = 0, nwant = 0;
	bool mismatch = false;

	if (e != NULL)
		note(r, "loaded, but errors were expected");
	if (d->nomem)
		note(r, "diag ran out of memory");
	while (*line != '\0') {
		size_t n;
		nl = strchr(line, '\n');
		n = nl ? (size_t)(nl - line) : strlen(line);
		if (i >= d->count || i >= d->cap) {
			note(r, "missing message %zu: %.*s", i + 1, (int)n, line);
			mismatch = true;
		} else if (strlen(d->msgs[i]) != n ||
		    memcmp(d->msgs[i], line, n) != 0) {
			note(r, "message %zu:\n  want: %.*s\n  got:  %s", i + 1,
			    (int)n, line, d->msgs[i]);
			mismatch = true;
		}
		i++;
		nwant++;
		line = nl ? nl + 1 : line + n;
	}
	if (nwant == 0)
		note(r, "expected-errors.txt is empty");
	for (; i < d->count && i < d->cap; i++) {
		note(r, "unexpected message %zu: %s", i + 1, d->msgs[i]);
		mismatch = true;
	}
	if (mismatch && !r->quiet)
		print_diag("  all messages: ", d);
}

static void
expect_dump(struct run *r, const struct tally_election *e,
    const struct tally_diag *d)
{
	json_error_t jerr;
	json_t *want, *got;

	if (e == NULL || d->count != 0) {
		note(r, "%s", e ? "loaded with messages" : "did not load");
		print_diag("  ", d);
		if (e == NULL)
			return;
	}
	if ((want = json_load_file("expected.json", JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		note(r, "expected.json:%d:%d: %s", jerr.line, jerr.column,
		    jerr.text);
		return;
	}
	if ((got = tally_election_dump(e)) == NULL) {
		note(r, "tally_election_dump failed");
	} else if (!json_equal(want, got)) {
		note(r, "dump differs from expected.json");
		print_json("  want: ", want);
		print_json("  got:  ", got);
	}
	json_decref(got);
	json_decref(want);
	check_invariants(r, e);
}

/* Run one case; the current directory is the case's. */
static void
run_case(struct run *r)
{
	struct tally_diag d, db;
	struct tally_election *e, *eb;
	char *want_errors = NULL, *buf;
	size_t len, i;

	if (!exists("election.json")) {
		note(r, "no election.json");
		return;
	}
	if (exists("expected-errors.txt") == exists("expected.json")) {
		note(r, "needs exactly one of expected-errors.txt, expected.json");
		return;
	}
	tally_diag_init(&d);
	e = tally_election_load("election.json", &d);
	if (exists("expected-errors.txt")) {
		if ((want_errors = slurp("expected-errors.txt", NULL)) == NULL)
			note(r, "expected-errors.txt: %s", strerror(errno));
		else
			expect_errors(r, e, &d, want_errors);
	} else
		expect_dump(r, e, &d);

	/* The in-memory loader must say exactly the same. */
	if ((buf = slurp("election.json", &len)) == NULL) {
		note(r, "election.json: %s", strerror(errno));
	} else {
		tally_diag_init(&db);
		eb = tally_election_loadb(buf, len, "election.json", &db);
		if ((eb == NULL) != (e == NULL) || db.count != d.count)
			note(r, "tally_election_loadb disagrees with "
			    "tally_election_load");
		for (i = 0; i < db.count && i < d.count && i < db.cap &&
		    i < d.cap; i++)
			if (strcmp(db.msgs[i], d.msgs[i]) != 0)
				note(r, "loadb message %zu differs: %s", i + 1,
				    db.msgs[i]);
		tally_election_destroy(eb);
		tally_diag_finish(&db);
		free(buf);
	}
	free(want_errors);
	tally_election_destroy(e);
	tally_diag_finish(&d);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
run_cases(const char *dir)
{
	DIR *dp;
	struct dirent *de;
	char **names = NULL, **n, path[4096];
	size_t count = 0, cap = 0, i;
	int home;

	if ((dp = opendir(dir)) == NULL) {
		CHECK(0, "opendir %s: %s", dir, strerror(errno));
		return;
	}
	while ((de = readdir(dp)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) == -1 || !S_ISDIR(st.st_mode))
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			if ((n = realloc(names, cap * sizeof(*n))) == NULL)
				abort();
			names = n;
		}
		if ((names[count++] = strdup(de->d_name)) == NULL)
			abort();
	}
	closedir(dp);
	qsort(names, count, sizeof(*names), cmp_names);
	CHECK(count > 0, "no cases in %s", dir);

	if ((home = open(".", O_RDONLY | O_DIRECTORY)) == -1) {
		CHECK(0, "open .: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < count; i++) {
		struct run r = { names[i], 0, false };
		bool xfail;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (chdir(path) == -1) {
			CHECK(0, "chdir %s: %s", path, strerror(errno));
			continue;
		}
		xfail = exists("xfail");
		r.quiet = xfail;
		run_case(&r);
		if (!xfail) {
			CHECK(r.problems == 0, "case %s", names[i]);
		} else if (r.problems == 0) {
			CHECK(0, "case %s passes now: remove its xfail file",
			    names[i]);
		} else {
			char *why = slurp("xfail", NULL);
			fprintf(stderr, "%s: known loader bug (xfail), not "
			    "counted: %s", names[i], why ? why : "?\n");
			free(why);
			CHECK(1, "xfail");
		}
		if (fchdir(home) == -1) {
			CHECK(0, "fchdir: %s", strerror(errno));
			break;
		}
	}
	close(home);
	printf("%zu cases\n", count);
out:
	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* ---- real definitions ------------------------------------------------- */

/* config/elections/iraq-2018.json: the shape we know it has. */
static void
check_iraq(const struct tally_election *e)
{
	const struct tally_province *pv;
	const struct tally_coalition *c;
	struct run r = { "iraq-2018", 0, false };
	size_t i;

	CHECK(strcmp(e->id, "iq-2018") == 0, "id %s", e->id);
	CHECK_EQ_U(e->seats_total, 329, "Council of Representatives seats");
	CHECK_EQ_U(e->n_provinces, 23, "18 governorates and 5 quota seats");
	CHECK(e->rule.method == TALLY_METHOD_SAINTE_LAGUE, "method %s",
	    tally_method_name(e->rule.method));
	CHECK(frac_eq(e->rule.first_divisor, 17, 10),
	    "first divisor %llu/%llu",
	    (unsigned long long)e->rule.first_divisor.num,
	    (unsigned long long)e->rule.first_divisor.den);
	CHECK(e->rule.ties == TALLY_TIES_LOT, "ties");
	CHECK(e->rule.threshold_of == TALLY_THRESHOLD_NONE, "no threshold");
	CHECK(!e->has_national_threshold, "no national threshold");

	pv = tally_election_province(e, "baghdad");
	CHECK(pv != NULL, "baghdad");
	if (pv != NULL) {
		CHECK_EQ_U(pv->seats, 69, "Baghdad's seats");
		CHECK(strcmp(pv->id, "baghdad") == 0, "baghdad's id");
		CHECK(!pv->own_rule, "baghdad uses the election's rule");
	}
	pv = tally_election_province(e, "quota-christian");
	CHECK(pv != NULL, "quota-christian");
	if (pv != NULL) {
		CHECK_EQ_U(pv->seats, 5, "Christian quota seats");
		CHECK(pv->own_rule, "quota seats carry their own allocation");
		CHECK(pv->rule.method == TALLY_METHOD_SAINTE_LAGUE &&
		    frac_eq(pv->rule.first_divisor, 17, 10),
		    "quota seats: Sainte-Laguë 1.7");
	}
	CHECK(tally_election_province(e, "Baghdad") == NULL,
	    "ids are case-sensitive");
	CHECK(tally_election_province(e, "sairoon") == NULL,
	    "a coalition id is not a province id");

	c = tally_election_list(e, "sairoon");
	CHECK(c != NULL && strcmp(c->id, "sairoon") == 0, "list sairoon");
	CHECK(c != NULL && c == tally_election_coalition(e, "sairoon"),
	    "list and coalition agree on sairoon");
	CHECK(c != NULL && c == &e->coalitions[c->index], "index of sairoon");
	CHECK(tally_election_list(e, "baghdad") == NULL,
	    "a province id is not a list id");
	/* The Iraqi definition has no aliases; alias lookups are checked in
	 * check_lookups() and on every valid case. */
	for (i = 0; i < e->n_coalitions; i++)
		CHECK_EQ_U(e->coalitions[i].n_aliases, 0, "iraq: no aliases");

	check_invariants(&r, e);
	CHECK(r.problems == 0, "iraq-2018 invariants");
}

static void
check_definition(const char *path)
{
	struct tally_diag d;
	struct tally_election *e;

	tally_diag_init(&d);
	e = tally_election_load(path, &d);
	CHECK(e != NULL && d.count == 0, "%s loads", path);
	if (e == NULL)
		print_diag("  ", &d);
	else if (strstr(path, "iraq-2018") != NULL)
		check_iraq(e);
	tally_election_destroy(e);
	tally_diag_finish(&d);
}

/* ---- unit checks ------------------------------------------------------ */

static void
check_frac(void)
{
	static const struct {
		const char	*text;
		uint64_t	 num, den;
		const char	*formatted;
	} good[] = {
		{ "0", 0, 1, "0" },
		{ "3", 3, 1, "3" },
		{ "007", 7, 1, "7" },
		{ "1.7", 17, 10, "1.7" },
		{ "1.4", 7, 5, "1.4" },
		{ "0.50", 1, 2, "0.5" },
		{ "0.25", 1, 4, "0.25" },
		{ "3.000", 3, 1, "3" },
		{ "0.0", 0, 1, "0" },
		{ "100", 100, 1, "100" },
		{ "0.000000001", 1, 1000000000, "0.000000001" },
		{ "1.123456789", 1123456789, 1000000000, "1.123456789" },
		{ "999999999", 999999999, 1, "999999999" },
		{ "999999999.999999999", 999999999999999999ULL, 1000000000,
		    "999999999.999999999" },
		{ "2.500000000", 5, 2, "2.5" },
	};
	static const char *const bad[] = {
		"", ".", ".5", "1.", "3.", "-1", "+1", "-0", "1e3", "1E3",
		"1.1234567891", "0.0000000001", "1000000000", "1000000000.5",
		"99999999999999999999", " 1", "1 ", "1,5", "1.2.3", "0x10",
		"abc", "1..2", "١", "inf", "nan",
	};
	struct tally_frac f, g;
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		f.num = 12345;
		f.den = 0;
		CHECK(tally_frac_parse(good[i].text, &f) == 0, "parse \"%s\"",
		    good[i].text);
		CHECK(frac_eq(f, good[i].num, good[i].den),
		    "\"%s\" is %llu/%llu, not %llu/%llu", good[i].text,
		    (unsigned long long)good[i].num,
		    (unsigned long long)good[i].den,
		    (unsigned long long)f.num, (unsigned long long)f.den);
		tally_frac_format(f, buf, sizeof(buf));
		CHECK(strcmp(buf, good[i].formatted) == 0,
		    "format \"%s\": \"%s\"", good[i].text, buf);
		/* Round trip: the formatted text parses to the same value. */
		CHECK(tally_frac_parse(buf, &g) == 0 && frac_eq(g, f.num, f.den),
		    "round trip of \"%s\"", good[i].text);
		CHECK(tally_frac_cmp(f, g) == 0, "\"%s\" equals itself",
		    good[i].text);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(tally_frac_parse(bad[i], &f) == -1, "\"%s\" must not parse",
		    bad[i]);
	CHECK(tally_frac_parse(NULL, &f) == -1, "NULL must not parse");

	/* Exact comparison, including neighbours a double could not tell. */
	{
		static const struct { const char *a, *b; int want; } cmp[] = {
			{ "1.7", "2", -1 }, { "2", "1.7", 1 },
			{ "0.5", "0.50", 0 }, { "1.4", "1.40000", 0 },
			{ "3", "2.999999999", 1 }, { "0", "0.000000001", -1 },
			{ "100", "100.000000001", -1 },
			{ "999999999.999999999", "999999999.999999998", 1 },
			{ "0.333333333", "0.333333334", -1 },
		};
		for (i = 0; i < sizeof(cmp) / sizeof(cmp[0]); i++) {
			CHECK(tally_frac_parse(cmp[i].a, &f) == 0 &&
			    tally_frac_parse(cmp[i].b, &g) == 0, "parse %s, %s",
			    cmp[i].a, cmp[i].b);
			CHECK(tally_frac_cmp(f, g) == cmp[i].want,
			    "cmp(%s, %s) == %d", cmp[i].a, cmp[i].b, cmp[i].want);
			CHECK(tally_frac_cmp(g, f) == -cmp[i].want,
			    "cmp(%s, %s) == %d", cmp[i].b, cmp[i].a, -cmp[i].want);
		}
	}

	/* A zero-length buffer is left alone. */
	buf[0] = 'x';
	CHECK(tally_frac_format(f, buf, 0) == buf && buf[0] == 'x',
	    "format into no room");
}

static void
check_ids(void)
{
	char id[TALLY_ID_MAX + 2];

	CHECK(tally_id_is_valid("a"), "one letter");
	CHECK(tally_id_is_valid("28"), "digits (Spanish province codes)");
	CHECK(tally_id_is_valid("000096"), "leading zeros");
	CHECK(tally_id_is_valid("state-of-law"), "hyphens");
	CHECK(tally_id_is_valid("A_z.0-9"), "all classes");
	CHECK(tally_id_is_valid("."), "a lone dot");
	CHECK(!tally_id_is_valid(NULL), "NULL");
	CHECK(!tally_id_is_valid(""), "empty");
	CHECK(!tally_id_is_valid("a b"), "space");
	CHECK(!tally_id_is_valid("a/b"), "slash");
	CHECK(!tally_id_is_valid("a~b"), "tilde");
	CHECK(!tally_id_is_valid("a:b"), "colon");
	CHECK(!tally_id_is_valid("a\nb"), "newline");
	CHECK(!tally_id_is_valid("b\xc3\xa9"), "non-ASCII letter");
	memset(id, 'x', sizeof(id));
	id[TALLY_ID_MAX] = '\0';
	CHECK(tally_id_is_valid(id), "%d bytes", TALLY_ID_MAX);
	id[TALLY_ID_MAX] = 'x';
	id[TALLY_ID_MAX + 1] = '\0';
	CHECK(!tally_id_is_valid(id), "%d bytes", TALLY_ID_MAX + 1);
}

static void
check_names(void)
{
#define NAME(fn, v, s) CHECK(strcmp(fn(v), s) == 0, "%s(%s)", #fn, #v)
	NAME(tally_method_name, TALLY_METHOD_DHONDT, "dhondt");
	NAME(tally_method_name, TALLY_METHOD_SAINTE_LAGUE, "sainte-lague");
	NAME(tally_method_name, TALLY_METHOD_HARE, "hare");
	NAME(tally_method_name, TALLY_METHOD_DROOP, "droop");
	NAME(tally_threshold_of_name, TALLY_THRESHOLD_NONE, "none");
	NAME(tally_threshold_of_name, TALLY_THRESHOLD_VALID, "valid");
	NAME(tally_threshold_of_name, TALLY_THRESHOLD_LIST, "list");
	NAME(tally_scope_name, TALLY_SCOPE_PROVINCE, "province");
	NAME(tally_scope_name, TALLY_SCOPE_NATIONAL, "national");
	NAME(tally_ties_name, TALLY_TIES_VOTES, "votes");
	NAME(tally_ties_name, TALLY_TIES_LOT, "lot");
#undef NAME
}

static const char aliased[] =
    "{\"id\": \"x\", \"name\": \"X\", \"allocation\": {\"method\": \"dhondt\"},"
    " \"coalitions\": [{\"id\": \"psoe\", \"name\": \"PSOE\","
    " \"aliases\": [\"000096\", \"psc\"]}, {\"id\": \"pp\", \"name\": \"PP\"}],"
    " \"provinces\": [{\"id\": \"28\", \"name\": \"Madrid\", \"seats\": 37},"
    " {\"id\": \"psoe\", \"name\": \"A province named like a coalition\","
    " \"seats\": 1}]}";

static void
check_lookups(void)
{
	struct tally_diag d;
	struct tally_election *e;
	const struct tally_coalition *psoe;
	char longid[TALLY_ID_MAX + 20];

	tally_diag_init(&d);
	e = tally_election_loadb(aliased, strlen(aliased), "mem", &d);
	CHECK(e != NULL && d.count == 0, "in-memory definition loads");
	if (e == NULL) {
		print_diag("  ", &d);
		tally_diag_finish(&d);
		return;
	}
	psoe = tally_election_coalition(e, "psoe");
	CHECK(psoe == &e->coalitions[0], "coalition psoe");
	CHECK(tally_election_list(e, "psoe") == psoe, "list psoe");
	CHECK(tally_election_list(e, "000096") == psoe, "alias 000096 lists as psoe");
	CHECK(tally_election_list(e, "psc") == psoe, "alias psc lists as psoe");
	CHECK(tally_election_coalition(e, "000096") == NULL,
	    "an alias is not a coalition");
	CHECK(tally_election_coalition(e, "psc") == NULL,
	    "an alias is not a coalition");
	CHECK(tally_election_coalition(e, "pp") == &e->coalitions[1], "pp");
	CHECK(tally_election_province(e, "psoe") == &e->provinces[1],
	    "provinces and lists are separate namespaces");
	CHECK(tally_election_province(e, "000096") == NULL,
	    "an alias is not a province");
	CHECK(tally_election_list(e, "28") == NULL, "a province is not a list");
	CHECK(tally_election_list(e, NULL) == NULL, "NULL list id");
	CHECK(tally_election_coalition(e, NULL) == NULL, "NULL coalition id");
	CHECK(tally_election_province(e, NULL) == NULL, "NULL province id");
	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	CHECK(tally_election_list(e, longid) == NULL, "overlong id");
	CHECK_EQ_U(e->seats_total, 38, "37 + 1 seats");
	tally_election_destroy(e);
	tally_diag_finish(&d);
}

static void
check_load_edges(void)
{
	struct tally_diag d;
	struct tally_election *e;
	const char *p = "no-such-dir/election.json";
	const char *want = "no-such-dir/election.json: cannot read: ";

	tally_election_destroy(NULL);	/* a no-op, must not crash */
	CHECK(1, "tally_election_destroy(NULL)");

	tally_diag_init(&d);
	e = tally_election_load(p, &d);
	CHECK(e == NULL, "a missing file does not load");
	CHECK_EQ_U(d.count, 1, "one message for a missing file");
	if (d.count >= 1)
		CHECK(strncmp(d.msgs[0], want, strlen(want)) == 0 &&
		    strlen(d.msgs[0]) > strlen(want),
		    "\"%s\" starts with \"%s\" and names the reason",
		    d.msgs[0], want);
	tally_election_destroy(e);

	/* A directory is not a definition either. */
	tally_diag_finish(&d);
	tally_diag_init(&d);
	e = tally_election_load(".", &d);
	CHECK(e == NULL && d.count == 1, "a directory does not load");
	tally_election_destroy(e);
	tally_diag_finish(&d);

	/* Without a name, messages say "election". */
	tally_diag_init(&d);
	e = tally_election_loadb("[]", 2, NULL, &d);
	CHECK(e == NULL && d.count == 1, "[] does not load");
	if (d.count == 1)
		CHECK(strcmp(d.msgs[0], "election: /: the definition must be "
		    "a JSON object, not an array") == 0, "%s", d.msgs[0]);
	tally_diag_finish(&d);

	/* A NULL diag is allowed: the caller only learns that it failed. */
	e = tally_election_loadb("{}", 2, "x", NULL);
	CHECK(e == NULL, "{} does not load, NULL diag");
	e = tally_election_loadb("{", 1, "x", NULL);
	CHECK(e == NULL, "invalid JSON, NULL diag");

	/* The buffer is taken by length, not up to a NUL. */
	tally_diag_init(&d);
	e = tally_election_loadb(aliased, strlen(aliased) - 1, "cut", &d);
	CHECK(e == NULL && d.count == 1 && strncmp(d.msgs[0], "cut:1:", 6) == 0,
	    "a definition cut short is invalid JSON");
	tally_diag_finish(&d);

	/* The diag is appended to, not reset. */
	tally_diag_init(&d);
	tally_diag_add(&d, "earlier");
	e = tally_election_loadb("[]", 2, "x", &d);
	CHECK(e == NULL && d.count == 2 && strcmp(d.msgs[0], "earlier") == 0,
	    "messages are appended");
	tally_diag_finish(&d);
}

int
main(int argc, char **argv)
{
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CASES_DIR [DEFINITION.json ...]\n",
		    argv[0]);
		return 2;
	}
	check_frac();
	check_ids();
	check_names();
	check_lookups();
	check_load_edges();
	run_cases(argv[1]);
	for (i = 2; i < argc; i++)
		check_definition(argv[i]);
	return check_done("test_election");
}
