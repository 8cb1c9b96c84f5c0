/*
 * post.c - tallyctl post (JSON or CSV) and tallyctl lot.
 *
 * A JSON file is sent as it is (after a local syntax check that names the
 * line and column): an object with "results" or an array is a batch, an
 * object with "province" or a --province is one snapshot.  A CSV export is
 * turned into one all-or-nothing batch; every cell keeps its line and
 * column so that a rejection by the daemon can be traced back to the file.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "tallyctl.h"

#define VOTES_MAX	1000000000000ULL	/* 10^12, as the daemon */

/* --revision next: each province's current revision plus one. */
#define REVISION_NEXT	UINT64_MAX

static void
post_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl post [--dry-run] [--province ID] [--revision N|next] FILE|-\n"
	    "       tallyctl post [--dry-run] --csv FILE|- --revision N|next\n"
	    "           [--status partial|final]\n"
	    "\n"
	    "Posts one snapshot or a batch ({\"results\": [...]}) of JSON, or a CSV\n"
	    "export: long (province,list,votes) or wide (province, then a column per\n"
	    "list, plus revision, blank, invalid, stations_reporting, stations_total,\n"
	    "status, reported_at, note columns).  In the long form the lists \"blank\"\n"
	    "and \"invalid\" are those counts.  Retries on connection errors, 503 and 429.\n"
	    "\n"
	    "  -p, --province ID   the province of a single snapshot without \"province\"\n"
	    "      --csv           the input is CSV\n"
	    "  -r, --revision N    revision of every province (replaces a JSON file's;\n"
	    "                      a CSV revision column wins); \"next\": each\n"
	    "                      province's current revision plus one, asked\n"
	    "                      from the daemon\n"
	    "      --status S      status of every province in a CSV (partial, final)\n"
	    "  -n, --dry-run       check and print the seat changes; apply nothing\n"
	    "      --url URL       tallyd (TALLYD_URL, default http://127.0.0.1:8080)\n"
	    "      --token-file F  ingest token (default TALLYD_TOKEN)\n"
	    "      --retry S       keep retrying for S seconds (default 30; 0: never)\n"
	    "      --cacert FILE   the CA of the daemon's TLS certificate (TALLYD_CACERT)\n"
	    "      --insecure      TLS without checking the certificate (tests only)\n"
	    "      --contest ID    a contest of a tallyd serving several\n"
	    "                      (/v1/contests/ID/...; default: its first)\n"
	    "  -v, --verbose       say more\n"
	    "\n"
	    "exit: 0 applied, duplicate or dry run, 2 usage, 3 invalid, 4 stale,\n"
	    "      5 conflict, 6 unauthorised, 7 unavailable (after the retries),\n"
	    "      8 unsupported, 11 TLS set-up failed (not retried)\n");
}

/* Parse a vote-like count in a CSV cell; err names the cell. */
static int
cell_u64(const struct csv *c, const struct csv_field *fl, const char *what,
    uint64_t max, uint64_t *out, char *err, size_t errsize)
{
	if (!ctl_parse_u64(fl->text, max, out)) {
		snprintf(err, errsize, "%s:%u:%u: %s: expected a whole number "
		    "from 0 to %llu, got \"%.40s\"", c->name, fl->line, fl->col,
		    what, (unsigned long long)max, fl->text);
		return -1;
	}
	return 0;
}

static void
trim(char *s)
{
	size_t n = strlen(s), i = 0;

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	while (s[i] == ' ' || s[i] == '\t')
		i++;
	if (i > 0)
		memmove(s, s + i, n - i + 1);
}

static int
check_id(const struct csv *c, const struct csv_field *fl, const char *what,
    char *err, size_t errsize)
{
	if (!tally_id_is_valid(fl->text)) {
		snprintf(err, errsize, "%s:%u:%u: %s \"%.64s\" is not an id "
		    "([A-Za-z0-9_.-], 1 to 64)", c->name, fl->line, fl->col,
		    what, fl->text);
		return -1;
	}
	return 0;
}

static int
set_u64(json_t *o, const char *key, uint64_t v)
{
	return json_object_set_new(o, key, json_integer((json_int_t)v));
}

/* The entry of `province` in the batch, made on first sight. */
static json_t *
entry_for(json_t *results, json_t *index, struct origin *org,
    const char *province, unsigned line, uint64_t revision,
    const char *status)
{
	json_t *e = json_object_get(index, province);

	if (e != NULL)
		return e;
	if ((e = json_object()) == NULL)
		return NULL;
	json_object_set_new(e, "province", json_string(province));
	if (revision > 0 && revision != REVISION_NEXT)
		set_u64(e, "revision", revision);
	json_object_set_new(e, "votes", json_object());
	if (status != NULL)
		json_object_set_new(e, "status", json_string(status));
	json_array_append_new(results, e);
	json_object_set(index, province, e);
	if (origin_entry(org, line) == -1)
		return NULL;
	return e;
}

/* The index of entry e in results (a CSV has at most a few hundred). */
static size_t
entry_index(json_t *results, json_t *e)
{
	size_t i;

	for (i = 0; i < json_array_size(results); i++)
		if (json_array_get(results, i) == e)
			break;
	return i;
}

/* Remember the cell a member of entry e came from (see where.c). */
static int
note_cell(struct origin *org, json_t *results, json_t *e, const char *key,
    const char *key2, const struct csv_field *fl)
{
	char k[160];

	snprintf(k, sizeof(k), "%s%s%s", key, key2 ? "/" : "", key2 ?: "");
	return origin_cell(org, entry_index(results, e), k, fl->line, fl->col);
}

enum wide_col { W_LIST, W_REVISION, W_BLANK, W_INVALID, W_SREP, W_STOT,
    W_STATIONS, W_STATUS, W_REPORTED, W_NOTE };

static enum wide_col
wide_kind(const char *name)
{
	static const struct { const char *n; enum wide_col k; } t[] = {
		{ "revision", W_REVISION }, { "blank", W_BLANK },
		{ "invalid", W_INVALID }, { "stations_reporting", W_SREP },
		{ "stations_total", W_STOT }, { "stations", W_STATIONS },
		{ "status", W_STATUS }, { "reported_at", W_REPORTED },
		{ "note", W_NOTE },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcasecmp(name, t[i].n) == 0)
			return t[i].k;
	return W_LIST;
}

static int
check_status(const struct csv *c, const struct csv_field *fl, char *err,
    size_t errsize)
{
	if (strcmp(fl->text, "partial") != 0 && strcmp(fl->text, "final") != 0) {
		snprintf(err, errsize, "%s:%u:%u: status: expected partial or "
		    "final, got \"%.40s\"", c->name, fl->line, fl->col, fl->text);
		return -1;
	}
	return 0;
}

/* One data row of a wide CSV. */
static int
wide_row(struct csv *c, char **names, enum wide_col *kinds, size_t ncols,
    json_t *results, json_t *index, struct origin *org, uint64_t revision,
    const char *status, char *err, size_t errsize)
{
	json_t *e, *votes, *stations = NULL;
	const struct csv_field *fl;
	uint64_t v, srep = 0, stot = 0;
	bool has_rep = false, has_tot = false, has_rev = revision > 0;
	size_t i;

	if (c->n != ncols) {
		snprintf(err, errsize, "%s:%u:%u: %zu fields, the header has %zu",
		    c->name, c->fields[0].line, c->fields[c->n - 1].col, c->n,
		    ncols);
		return -1;
	}
	fl = &c->fields[0];
	trim(fl->text);
	if (check_id(c, fl, "province", err, errsize) == -1)
		return -1;
	if (json_object_get(index, fl->text) != NULL) {
		snprintf(err, errsize, "%s:%u:%u: province %s has a second row",
		    c->name, fl->line, fl->col, fl->text);
		return -1;
	}
	if ((e = entry_for(results, index, org, fl->text, fl->line, revision,
	    status)) == NULL)
		goto nomem;
	votes = json_object_get(e, "votes");
	if (note_cell(org, results, e, "province", NULL, &c->fields[0]) == -1)
		goto nomem;
	for (i = 1; i < ncols; i++) {
		static const char *const key[] = { [W_LIST] = "votes",
		    [W_REVISION] = "revision", [W_BLANK] = "blank",
		    [W_INVALID] = "invalid", [W_SREP] = "stations/reporting",
		    [W_STOT] = "stations/total", [W_STATIONS] = "stations",
		    [W_STATUS] = "status", [W_REPORTED] = "reported_at",
		    [W_NOTE] = "note" };

		fl = &c->fields[i];
		if (kinds[i] != W_NOTE)
			trim(fl->text);
		/* Before the empty check: a list the daemon misses
		 * (list_missing) is this empty cell. */
		if (note_cell(org, results, e, key[kinds[i]], kinds[i] ==
		    W_LIST ? names[i] : NULL, fl) == -1)
			goto nomem;
		if (fl->text[0] == '\0')	/* not standing / not given */
			continue;
		switch (kinds[i]) {
		case W_LIST:
			if (cell_u64(c, fl, names[i], VOTES_MAX, &v, err,
			    errsize) == -1)
				return -1;
			set_u64(votes, names[i], v);
			break;
		case W_REVISION:
			if (cell_u64(c, fl, "revision", TALLY_REVISION_MAX, &v,
			    err, errsize) == -1)
				return -1;
			if (v == 0) {
				snprintf(err, errsize, "%s:%u:%u: revision: "
				    "must be at least 1", c->name, fl->line,
				    fl->col);
				return -1;
			}
			set_u64(e, "revision", v);
			has_rev = true;
			break;
		case W_BLANK:
		case W_INVALID:
			if (cell_u64(c, fl, names[i], VOTES_MAX, &v, err,
			    errsize) == -1)
				return -1;
			set_u64(e, kinds[i] == W_BLANK ? "blank" : "invalid", v);
			break;
		case W_SREP:
		case W_STOT:
			if (cell_u64(c, fl, names[i], TALLY_STATIONS_MAX, &v,
			    err, errsize) == -1)
				return -1;
			if (kinds[i] == W_SREP) {
				srep = v;
				has_rep = true;
			} else {
				stot = v;
				has_tot = true;
			}
			break;
		case W_STATIONS: {
			/* "reporting/total" in one cell */
			char *slash = strchr(fl->text, '/');
			if (slash == NULL) {
				snprintf(err, errsize, "%s:%u:%u: stations: "
				    "expected reporting/total, got \"%.40s\"",
				    c->name, fl->line, fl->col, fl->text);
				return -1;
			}
			*slash = '\0';
			if (!ctl_parse_u64(fl->text, TALLY_STATIONS_MAX, &srep) ||
			    !ctl_parse_u64(slash + 1, TALLY_STATIONS_MAX, &stot)) {
				*slash = '/';
				snprintf(err, errsize, "%s:%u:%u: stations: "
				    "expected reporting/total, got \"%.40s\"",
				    c->name, fl->line, fl->col, fl->text);
				return -1;
			}
			has_rep = has_tot = true;
			break;
		}
		case W_STATUS:
			if (check_status(c, fl, err, errsize) == -1)
				return -1;
			json_object_set_new(e, "status", json_string(fl->text));
			break;
		case W_REPORTED:
			json_object_set_new(e, "reported_at",
			    json_string(fl->text));
			break;
		case W_NOTE:
			json_object_set_new(e, "note", json_string(fl->text));
			break;
		}
	}
	if (has_rep != has_tot) {
		snprintf(err, errsize, "%s:%u: stations_reporting and "
		    "stations_total go together", c->name, c->fields[0].line);
		return -1;
	}
	if (has_rep) {
		if ((stations = json_object()) == NULL)
			goto nomem;
		set_u64(stations, "reporting", srep);
		set_u64(stations, "total", stot);
		json_object_set_new(e, "stations", stations);
	}
	if (!has_rev) {
		snprintf(err, errsize, "%s:%u: no revision for province %s "
		    "(give --revision N, --revision next for its current "
		    "revision plus one, or a revision column)", c->name,
		    c->fields[0].line, c->fields[0].text);
		return -1;
	}
	return 0;
nomem:
	snprintf(err, errsize, "out of memory");
	return -1;
}

/* One data row of a long CSV: province,list,votes. */
static int
long_row(struct csv *c, json_t *results, json_t *index, struct origin *org,
    uint64_t revision, const char *status, char *err, size_t errsize)
{
	struct csv_field *p, *l, *vf;
	json_t *e, *votes;
	uint64_t v;
	bool special, first;

	if (c->n != 3) {
		snprintf(err, errsize, "%s:%u:%u: %zu fields, expected 3 "
		    "(province,list,votes)", c->name, c->fields[0].line,
		    c->fields[c->n - 1].col, c->n);
		return -1;
	}
	p = &c->fields[0];
	l = &c->fields[1];
	vf = &c->fields[2];
	trim(p->text);
	trim(l->text);
	trim(vf->text);
	if (check_id(c, p, "province", err, errsize) == -1 ||
	    check_id(c, l, "list", err, errsize) == -1)
		return -1;
	if (revision == 0) {
		snprintf(err, errsize, "%s:%u: no revision (give --revision N, "
		    "or --revision next for each province's current revision "
		    "plus one)", c->name, p->line);
		return -1;
	}
	if (cell_u64(c, vf, "votes", VOTES_MAX, &v, err, errsize) == -1)
		return -1;
	if ((e = entry_for(results, index, org, p->text, p->line, revision,
	    status)) == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	special = strcmp(l->text, "blank") == 0 || strcmp(l->text, "invalid") == 0;
	/*
	 * A list the daemon refuses points at its id, a count at itself; the
	 * province at the row that started its entry.
	 */
	first = org->lines[entry_index(results, e)] == p->line;
	if ((first && note_cell(org, results, e, "province", NULL, p) == -1) ||
	    note_cell(org, results, e, special ? l->text : "votes", special ?
	    NULL : l->text, special ? vf : l) == -1) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	votes = special ? e : json_object_get(e, "votes");
	if (json_object_get(votes, l->text) != NULL) {
		snprintf(err, errsize, "%s:%u:%u: %s in province %s a second "
		    "time", c->name, l->line, l->col, l->text, p->text);
		return -1;
	}
	set_u64(votes, l->text, v);
	return 0;
}

/* A CSV export as a batch body; -1 with err naming line and column. */
static json_t *
csv_batch(const char *path, uint64_t revision, const char *status,
    struct origin *org, char *err, size_t errsize)
{
	struct csv c;
	json_t *body = NULL, *results = NULL, *index = NULL;
	char **names = NULL;
	enum wide_col *kinds = NULL;
	size_t ncols = 0, i;
	bool is_long;
	int rc;

	if (csv_open(&c, path, err, errsize) == -1)
		return NULL;
	if ((rc = csv_next(&c, err, errsize)) != 1) {
		if (rc == 0)
			snprintf(err, errsize, "%s: empty", c.name);
		goto fail;
	}
	ncols = c.n;
	names = calloc(ncols, sizeof(*names));
	kinds = calloc(ncols, sizeof(*kinds));
	if (names == NULL || kinds == NULL)
		goto nomem;
	for (i = 0; i < ncols; i++) {
		trim(c.fields[i].text);
		if ((names[i] = strdup(c.fields[i].text)) == NULL)
			goto nomem;
		kinds[i] = i == 0 ? W_LIST : wide_kind(names[i]);
	}
	if (strcasecmp(names[0], "province") != 0) {
		snprintf(err, errsize, "%s:1:1: the first column must be "
		    "\"province\" (long: province,list,votes; wide: province, "
		    "then a column per list)", c.name);
		goto fail;
	}
	is_long = ncols == 3 && strcasecmp(names[1], "list") == 0 &&
	    strcasecmp(names[2], "votes") == 0;
	for (i = 1; i < ncols && !is_long; i++) {
		size_t j;

		if (kinds[i] == W_LIST && !tally_id_is_valid(names[i])) {
			snprintf(err, errsize, "%s:%u:%u: column \"%.64s\" is "
			    "neither a list id nor one of revision, blank, "
			    "invalid, stations_reporting, stations_total, "
			    "stations, status, reported_at, note", c.name,
			    c.fields[i].line, c.fields[i].col, names[i]);
			goto fail;
		}
		for (j = 1; j < i; j++)
			if (strcmp(names[j], names[i]) == 0) {
				snprintf(err, errsize, "%s:%u:%u: column "
				    "\"%.64s\" a second time", c.name,
				    c.fields[i].line, c.fields[i].col, names[i]);
				goto fail;
			}
	}
	body = json_object();
	results = json_array();
	index = json_object();
	if (body == NULL || results == NULL || index == NULL)
		goto nomem;
	while ((rc = csv_next(&c, err, errsize)) == 1) {
		if (is_long)
			rc = long_row(&c, results, index, org, revision, status,
			    err, errsize);
		else
			rc = wide_row(&c, names, kinds, ncols, results, index,
			    org, revision, status, err, errsize);
		if (rc == -1)
			goto fail;
	}
	if (rc == -1)
		goto fail;
	if (json_array_size(results) == 0) {
		snprintf(err, errsize, "%s: no rows after the header", c.name);
		goto fail;
	}
	json_object_set_new(body, "results", results);
	results = NULL;
	goto done;
nomem:
	snprintf(err, errsize, "out of memory");
fail:
	json_decref(body);
	body = NULL;
done:
	json_decref(results);
	json_decref(index);
	for (i = 0; names != NULL && i < ncols; i++)
		free(names[i]);
	free(names);
	free(kinds);
	csv_close(&c);
	return body;
}

/* Say what the daemon answered to a successful post. */
static int
report_success(const struct ctl *ctl, const struct http_resp *r, bool batch)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL);
	json_t *results;
	size_t i, applied = 0, dup = 0;
	bool dup_all = r->status != 201;

	if (j == NULL) {
		ctl_warnx(ctl, "HTTP %ld with a body that is not JSON", r->status);
		return CTL_EXIT_ERROR;
	}
	/*
	 * For a duplicate the daemon answers its current version, which holds
	 * the revision (nothing was added): say so, so that a retry script's
	 * log reads as the success it is.
	 */
	if (!batch && dup_all) {
		printf("duplicate: province %s revision %lld is already applied "
		    "(held in version %lld); nothing changed\n",
		    json_string_value(json_object_get(j, "province")) ?: "?",
		    (long long)json_integer_value(json_object_get(j, "revision")),
		    (long long)json_integer_value(json_object_get(j, "version")));
	} else if (!batch) {
		printf("applied: province %s revision %lld (version %lld)\n",
		    json_string_value(json_object_get(j, "province")) ?: "?",
		    (long long)json_integer_value(json_object_get(j, "revision")),
		    (long long)json_integer_value(json_object_get(j, "version")));
	} else {
		results = json_object_get(j, "results");
		for (i = 0; i < json_array_size(results); i++) {
			json_t *e = json_array_get(results, i);
			const char *st = json_string_value(json_object_get(e,
			    "status"));
			if (st != NULL && strcmp(st, "applied") == 0)
				applied++;
			else
				dup++;
			if (ctl->verbose)
				printf("  %s revision %lld: %s\n",
				    json_string_value(json_object_get(e,
				    "province")) ?: "?", (long long)
				    json_integer_value(json_object_get(e,
				    "revision")), st ? st : "?");
		}
		printf("%s: %zu applied, %zu duplicate (%s version %lld)\n",
		    dup_all ? "duplicate" : "applied", applied, dup,
		    dup_all ? "all already held in" : "as",
		    (long long)json_integer_value(json_object_get(j, "version")));
	}
	json_decref(j);
	return CTL_EXIT_OK;
}

/*
 * --revision N|next on every entry of body (a snapshot or {"results"}).
 * "next" asks the daemon for each province's current revision: the
 * province view's "revision" (0 before its first result).  A JSON entry's
 * own revision gives way, said on stderr (the command line is what the
 * operator asked for now); a CSV's revision column wins, being per row.
 */
static int
apply_revision(struct ctl *ctl, struct http *h, json_t *body,
    const char *single, uint64_t revision, bool from_csv)
{
	struct http_resp r = { .retry_after = -1 };
	json_t *results, *e, *cur = NULL, *p;
	const char *pid;
	uint64_t rev;
	size_t i, k;
	int rc, ex = CTL_EXIT_OK;

	if (revision == REVISION_NEXT) {
		rc = http_request(h, "GET", "/v1/provinces", NULL, 0, NULL, &r);
		if (rc == -1 || r.status != 200) {
			ctl_warnx(ctl, "--revision next: cannot read the "
			    "provinces' current revisions:");
			ex = ctl_http_error(ctl, &r, rc);
			goto done;
		}
		cur = json_loadb(r.body, r.len, 0, NULL);
		if (!json_is_array(json_object_get(cur, "provinces"))) {
			ctl_warnx(ctl, "--revision next: GET /v1/provinces "
			    "answered no \"provinces\" array");
			ex = CTL_EXIT_ERROR;
			goto done;
		}
	}
	results = single != NULL ? NULL : json_object_get(body, "results");
	for (i = 0; i < (single != NULL ? 1 : json_array_size(results)); i++) {
		e = single != NULL ? body : json_array_get(results, i);
		if (!json_is_object(e))
			continue;	/* the daemon names it */
		pid = single != NULL ? single :
		    json_string_value(json_object_get(e, "province"));
		/* A CSV's revision column wins (it is per row); a JSON
		 * file's revision gives way to the command line, which says
		 * so: the operator asked for this one. */
		if (from_csv && json_object_get(e, "revision") != NULL)
			continue;
		rev = revision;
		if (revision == REVISION_NEXT) {
			rev = 1;	/* unknown: the daemon will say so */
			json_array_foreach(json_object_get(cur, "provinces"), k,
			    p)
				if (pid != NULL && strcmp(json_string_value(
				    json_object_get(p, "id")) ?: "", pid) == 0)
					rev = (uint64_t)json_integer_value(
					    json_object_get(p, "revision")) + 1;
			if (ctl->verbose || single != NULL)
				fprintf(stderr, "%s: province %s is at revision "
				    "%llu: posting revision %llu\n", ctl->prog,
				    pid ?: "?", (unsigned long long)(rev - 1),
				    (unsigned long long)rev);
		}
		if (json_is_integer(json_object_get(e, "revision")) &&
		    (uint64_t)json_integer_value(json_object_get(e,
		    "revision")) != rev)
			fprintf(stderr, "%s: province %s: --revision replaces "
			    "the file's revision %lld\n", ctl->prog, pid ?: "?",
			    (long long)json_integer_value(json_object_get(e,
			    "revision")));
		set_u64(e, "revision", rev);
	}
done:
	json_decref(cur);
	http_resp_finish(&r);
	return ex;
}

/* "+2 000096 PSOE, -1 000022 PP" from {id: delta}; false when empty. */
static bool
print_deltas(const struct ctl *ctl, const char *lead, json_t *deltas)
{
	const char *id;
	json_t *v;
	char name[160];
	bool any = false;

	json_object_foreach(deltas, id, v) {
		json_int_t d = json_integer_value(v);

		if (d == 0)
			continue;
		printf("%s%+lld %s", any ? ", " : lead, (long long)d,
		    ctl_list_name(ctl, id, name, sizeof(name)));
		any = true;
	}
	if (any)
		printf("\n");
	return any;
}

static void
dry_province(const struct ctl *ctl, json_t *e)
{
	const char *st = json_string_value(json_object_get(e, "status")) ?: "?";

	printf("province %s revision %lld: %s\n",
	    json_string_value(json_object_get(e, "province")) ?: "?",
	    (long long)json_integer_value(json_object_get(e, "revision")),
	    strcmp(st, "duplicate") == 0 ? "a duplicate (the daemon holds "
	    "exactly this already): no change" : "would be applied");
	if (strcmp(st, "duplicate") == 0)
		return;
	if (!print_deltas(ctl, "  seats: ", json_object_get(e, "seats")))
		printf("  seats: no change\n");
	if (json_integer_value(json_object_get(e, "pending")) > 0)
		printf("  pending tie: %lld seat(s) to be drawn by lot "
		    "(tallyctl show %s)\n", (long long)json_integer_value(
		    json_object_get(e, "pending")), json_string_value(
		    json_object_get(e, "province")) ?: "PROVINCE");
}

/* A dry run's answer: the seat changes per province and nationally. */
static int
report_dry_run(const struct ctl *ctl, const struct http_resp *r,
    const char *province)
{
	json_t *j = json_loadb(r->body, r->len, 0, NULL), *e;
	size_t i;

	if (j == NULL || json_object_get(j, "dry_run") != json_true()) {
		/* A daemon that ignored the query would have applied it. */
		ctl_warnx(ctl, "HTTP %ld without \"dry_run\": true: this daemon "
		    "may not know dry runs; check what it holds (tallyctl "
		    "show)", r->status);
		json_decref(j);
		return CTL_EXIT_ERROR;
	}
	printf("dry run: nothing was applied\n");
	if (json_is_array(json_object_get(j, "results"))) {
		json_array_foreach(json_object_get(j, "results"), i, e)
			dry_province(ctl, e);
	} else {
		if (json_object_get(j, "province") == NULL && province != NULL)
			json_object_set_new(j, "province", json_string(province));
		dry_province(ctl, j);
	}
	if (!print_deltas(ctl, "national seats: ",
	    json_object_get(j, "national_seats")))
		printf("national seats: no change\n");
	printf("as version %lld, if nothing else is applied first\n",
	    (long long)json_integer_value(json_object_get(j, "version")));
	json_decref(j);
	return CTL_EXIT_OK;
}

int
cmd_post(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "province", required_argument, NULL, 'p' },
		{ "csv", no_argument, NULL, 'c' },
		{ "revision", required_argument, NULL, 'r' },
		{ "status", required_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'n' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	const char *province = NULL, *status = NULL, *path, *name;
	struct origin org = { 0 };
	struct ctl_where where = { 0 };
	struct http_resp r = { .retry_after = -1 };
	struct http *h = NULL;
	uint64_t revision = 0;
	json_t *body = NULL, *p;
	json_error_t jerr;
	char err[1024], urlpath[256], *text = NULL, *buf = NULL;
	size_t len = 0;
	bool csv = false, batch, dry = false;
	int c, ex, rc;

	optind = 0;
	while ((c = ctl_getopt(ctl, argc, argv, "p:r:nvh", opts)) != -1) {
		switch (c) {
		case 'p':
			province = optarg;
			break;
		case 'c':
			csv = true;
			break;
		case 'n':
			dry = true;
			break;
		case 'r':
			if (strcmp(optarg, "next") == 0) {
				revision = REVISION_NEXT;
				break;
			}
			if (!ctl_parse_u64(optarg, TALLY_REVISION_MAX, &revision) ||
			    revision == 0) {
				ctl_warnx(ctl, "--revision: expected a whole "
				    "number from 1, or \"next\"");
				return CTL_EXIT_USAGE;
			}
			break;
		case 's':
			if (strcmp(optarg, "partial") != 0 &&
			    strcmp(optarg, "final") != 0) {
				ctl_warnx(ctl, "--status: partial or final");
				return CTL_EXIT_USAGE;
			}
			status = optarg;
			break;
		case 'h':
			post_usage(stdout);
			return CTL_EXIT_OK;
		default:
			if ((ex = ctl_common_option(ctl, c, optarg)) != 0) {
				post_usage(stderr);
				return ex;
			}
		}
	}
	if (optind != argc - 1) {
		post_usage(stderr);
		/* Last, where the eye lands: what was wrong ("post 28 f.json",
		 * the way show takes its province, said only the usage). */
		if (argc - optind == 2 && province == NULL && !csv)
			ctl_warnx(ctl, "one FILE only; a single snapshot's "
			    "province goes in --province: tallyctl post "
			    "--province %s %s", argv[optind], argv[optind + 1]);
		else if (argc == optind)
			ctl_warnx(ctl, "which FILE? (- reads the standard "
			    "input)");
		else
			ctl_warnx(ctl, "one FILE only, not %d",
			    argc - optind);
		return CTL_EXIT_USAGE;
	}
	path = argv[optind];
	name = strcmp(path, "-") == 0 ? "<stdin>" : path;
	if (csv) {
		if (province != NULL) {
			ctl_warnx(ctl, "--province does not go with --csv (the "
			    "CSV names its provinces)");
			return CTL_EXIT_USAGE;
		}
		if ((body = csv_batch(path, revision, status, &org, err,
		    sizeof(err))) == NULL) {
			ctl_warnx(ctl, "%s", err);
			origin_finish(&org);
			return CTL_EXIT_INVALID;
		}
		batch = true;
		where.name = name;
		where.org = &org;
	} else {
		if (status != NULL) {
			ctl_warnx(ctl, "--status is for --csv; a JSON snapshot "
			    "carries its own");
			return CTL_EXIT_USAGE;
		}
		if (tally_read_file(path, &buf, &len) == -1) {
			ctl_warnx(ctl, "%s: %s", path, strerror(errno));
			return CTL_EXIT_INVALID;
		}
		body = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
		if (body == NULL) {
			ctl_warnx(ctl, "%s:%d:%d: %s", name, jerr.line,
			    jerr.column, jerr.text);
			free(buf);
			return CTL_EXIT_INVALID;
		}
		where.name = name;
		where.text = buf;
		where.len = len;
		if (json_is_array(body)) {
			json_t *o = json_pack("{sO}", "results", body);
			json_decref(body);
			body = o;
			where.bare_array = true;
		}
		batch = json_object_get(body, "results") != NULL;
		ex = CTL_EXIT_USAGE;
		if (!json_is_object(body)) {
			ctl_warnx(ctl, "%s: expected a JSON object (a snapshot or "
			    "{\"results\": [...]}) or an array", path);
			ex = CTL_EXIT_INVALID;
			goto done;
		}
		if (!batch) {
			p = json_object_get(body, "province");
			if (p != NULL && !json_is_string(p)) {
				ctl_warnx(ctl, "%s: \"province\" must be a string",
				    path);
				ex = CTL_EXIT_INVALID;
				goto done;
			}
			if (p != NULL && province != NULL &&
			    strcmp(json_string_value(p), province) != 0) {
				ctl_warnx(ctl, "%s names province %s, "
				    "--province says %s", path,
				    json_string_value(p), province);
				goto done;
			}
			if (p != NULL)
				province = json_string_value(p);
			if (province == NULL) {
				ctl_warnx(ctl, "%s: which province? (a "
				    "\"province\" member or --province ID)",
				    path);
				goto done;
			}
			if (!tally_id_is_valid(province)) {
				ctl_warnx(ctl, "province \"%.64s\" is not an id",
				    province);
				ex = CTL_EXIT_INVALID;
				goto done;
			}
			snprintf(urlpath, sizeof(urlpath),
			    "/v1/provinces/%s/results", province);
			/* The single-POST body does not name its province
			 * (the path does): keep the name for messages. */
			if (p != NULL) {
				snprintf(err, sizeof(err), "%s", province);
				province = err;
				json_object_del(body, "province");
			}
		} else if (province != NULL) {
			ctl_warnx(ctl, "--province does not go with a batch");
			goto done;
		}
	}
	if (batch)
		snprintf(urlpath, sizeof(urlpath), "/v1/results");
	if ((h = http_create(ctl)) == NULL) {
		ctl_warnx(ctl, "out of memory");
		ex = CTL_EXIT_ERROR;
		goto done;
	}
	if (revision != 0 && (!csv || revision == REVISION_NEXT) &&
	    (ex = apply_revision(ctl, h, body, batch ? NULL : province,
	    revision, csv)) != CTL_EXIT_OK)
		goto done;
	/* A dry run is the same request with ?dry_run=1: the daemon checks
	 * it exactly as a post and answers what it would change. */
	if (dry)
		strncat(urlpath, "?dry_run=1", sizeof(urlpath) -
		    strlen(urlpath) - 1);
	if ((text = json_dumps(body, JSON_COMPACT)) == NULL) {
		ctl_warnx(ctl, "out of memory");
		ex = CTL_EXIT_ERROR;
		goto done;
	}
	rc = http_request(h, "POST", urlpath, text, strlen(text), NULL, &r);
	if (rc == 0 && dry && r.status == 200)
		ex = report_dry_run(ctl, &r, batch ? NULL : province);
	else if (rc == 0 && (r.status == 200 || r.status == 201)) {
		ex = report_success(ctl, &r, batch);
		/* Only a daemon without dry runs answers 201 to one. */
		if (dry && r.status == 201) {
			ctl_warnx(ctl, "this daemon does not know dry runs: the "
			    "post above WAS applied");
			ex = CTL_EXIT_ERROR;
		}
	}
	else {
		ex = ctl_http_error_at(ctl, &r, rc, &where);
		if (ex == CTL_EXIT_UNSUPPORTED && r.status == 405)
			ctl_warnx(ctl, "this listener takes no feeds: post to "
			    "tallyd's ingest listener");
	}
done:
	http_resp_finish(&r);
	http_destroy(h);
	free(text);
	free(buf);
	origin_finish(&org);
	json_decref(body);
	return ex;
}

static void
lot_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl lot [--revision N] PROVINCE LIST...\n"
	    "\n"
	    "Posts the order drawn by lot for a province's pending tie:\n"
	    "POST /v1/provinces/PROVINCE/lot {\"revision\": N, \"order\": [LIST...]},\n"
	    "the first list drawn first.  N is the province's current revision\n"
	    "(read from GET /v1/provinces/PROVINCE unless given).\n"
	    "\n"
	    "  -r, --revision N    the revision the lot was drawn for\n"
	    "      --url, --token-file, --retry, -v as for post\n"
	    "\n"
	    "exit: 0 applied or duplicate, 3 invalid, 4 stale, 5 conflict,\n"
	    "      6 unauthorised, 7 unavailable, 8 the daemon takes no lot results,\n"
	    "      11 TLS set-up failed\n");
}

int
cmd_lot(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "revision", required_argument, NULL, 'r' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	struct http_resp r = { .retry_after = -1 };
	struct http *h = NULL;
	const char *province;
	uint64_t revision = 0;
	json_t *body = NULL, *order, *j;
	char path[256], *text = NULL;
	int c, ex, rc, i, k;

	optind = 0;
	while ((c = ctl_getopt(ctl, argc, argv, "r:vh", opts)) != -1) {
		switch (c) {
		case 'r':
			if (!ctl_parse_u64(optarg, TALLY_REVISION_MAX, &revision) ||
			    revision == 0) {
				ctl_warnx(ctl, "--revision: expected a whole "
				    "number from 1");
				return CTL_EXIT_USAGE;
			}
			break;
		case 'h':
			lot_usage(stdout);
			return CTL_EXIT_OK;
		default:
			if ((ex = ctl_common_option(ctl, c, optarg)) != 0) {
				lot_usage(stderr);
				return ex;
			}
		}
	}
	if (argc - optind < 3) {
		ctl_warnx(ctl, "a lot orders at least two lists");
		lot_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	province = argv[optind];
	for (i = optind; i < argc; i++) {
		if (!tally_id_is_valid(argv[i])) {
			ctl_warnx(ctl, "\"%.64s\" is not an id", argv[i]);
			return CTL_EXIT_USAGE;
		}
		for (k = optind + 1; k < i && i > optind; k++)
			if (strcmp(argv[k], argv[i]) == 0) {
				ctl_warnx(ctl, "list %s named twice", argv[i]);
				return CTL_EXIT_USAGE;
			}
	}
	if ((h = http_create(ctl)) == NULL || (order = json_array()) == NULL) {
		http_destroy(h);
		return CTL_EXIT_ERROR;
	}
	for (i = optind + 1; i < argc; i++)
		json_array_append_new(order, json_string(argv[i]));
	if (revision == 0) {
		snprintf(path, sizeof(path), "/v1/provinces/%s", province);
		rc = http_request(h, "GET", path, NULL, 0, NULL, &r);
		if (rc == -1 || r.status != 200) {
			ex = ctl_http_error(ctl, &r, rc);
			json_decref(order);
			goto done;
		}
		j = json_loadb(r.body, r.len, 0, NULL);
		revision = (uint64_t)json_integer_value(json_object_get(j,
		    "revision"));
		if (j != NULL && json_array_size(json_object_get(j,
		    "pending")) == 0)
			ctl_warnx(ctl, "note: province %s shows no pending tie "
			    "at revision %llu", province,
			    (unsigned long long)revision);
		json_decref(j);
		if (revision == 0) {
			ctl_warnx(ctl, "province %s has no result yet: nothing "
			    "to draw lots for", province);
			json_decref(order);
			ex = CTL_EXIT_INVALID;
			goto done;
		}
	}
	body = json_pack("{sIso}", "revision", (json_int_t)revision, "order",
	    order);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		ex = CTL_EXIT_ERROR;
		goto done;
	}
	snprintf(path, sizeof(path), "/v1/provinces/%s/lot", province);
	rc = http_request(h, "POST", path, text, strlen(text), NULL, &r);
	if (rc == 0 && (r.status == 200 || r.status == 201)) {
		j = json_loadb(r.body, r.len, 0, NULL);
		ex = CTL_EXIT_OK;	/* a duplicate too: see enum ctl_exit */
		if (r.status == 201)
			printf("applied: lot for province %s at revision %llu "
			    "(version %lld)\n", province,
			    (unsigned long long)revision, (long long)
			    json_integer_value(json_object_get(j, "version")));
		else
			printf("duplicate: the lot for province %s at revision "
			    "%llu is already applied (held in version %lld); "
			    "nothing changed\n", province,
			    (unsigned long long)revision, (long long)
			    json_integer_value(json_object_get(j, "version")));
		json_decref(j);
	} else {
		ex = ctl_http_error(ctl, &r, rc);
		if (ex == CTL_EXIT_UNSUPPORTED)
			ctl_warnx(ctl, "this tallyd does not take lot results "
			    "(POST %s answered %ld)", path, r.status);
	}
done:
	free(text);
	json_decref(body);
	http_resp_finish(&r);
	http_destroy(h);
	return ex;
}
