/*
 * dataset.c - a results dataset directory (the ../shared/data/elections
 * format) for replay, and tallyctl import, which writes an election
 * definition from one.
 *
 * The files: constituencies.csv (constituency_id,name,seats), votes.csv
 * (constituency_id,party_id,votes), official_seats.csv
 * (constituency_id,party_id,seats; zero rows omitted), parties.csv
 * (party_id,name[,full_name,national_group_id]), rule.json and, optionally,
 * constituency_totals.csv (blank_votes,null_votes).  Every complaint names
 * the file, line and column.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "tallyctl.h"

#define MAXCOLS	8

typedef int (*row_fn)(void *arg, struct csv *c, struct csv_field **f,
    char *err, size_t errsize);

/*
 * Read dir/name, find the columns `cols` in its header (any order, others
 * ignored; a column name ending in '?' is optional and NULL when absent),
 * and call fn for every row.  Returns 0, 1 when the file is missing and
 * !required, -1 with err.
 */
static int
read_table(const char *dir, const char *name, bool required,
    const char *const *cols, size_t ncols, row_fn fn, void *arg, char *err,
    size_t errsize)
{
	char path[1024];
	struct csv c;
	struct csv_field *f[MAXCOLS];
	size_t idx[MAXCOLS], i, j, hdr;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!required) {
		FILE *t = fopen(path, "r");
		if (t == NULL)
			return 1;
		fclose(t);
	}
	if (csv_open(&c, path, err, errsize) == -1)
		return -1;
	if ((rc = csv_next(&c, err, errsize)) != 1) {
		if (rc == 0)
			snprintf(err, errsize, "%.900s: empty", path);
		goto fail;
	}
	hdr = c.n;
	for (i = 0; i < ncols; i++) {
		size_t n = strlen(cols[i]);
		bool opt = cols[i][n - 1] == '?';

		idx[i] = SIZE_MAX;
		for (j = 0; j < c.n; j++)
			if (strlen(c.fields[j].text) == n - opt &&
			    strncmp(c.fields[j].text, cols[i], n - opt) == 0)
				idx[i] = j;
		if (idx[i] == SIZE_MAX && !opt) {
			snprintf(err, errsize, "%.900s:1: no column %s", path,
			    cols[i]);
			goto fail;
		}
	}
	while ((rc = csv_next(&c, err, errsize)) == 1) {
		if (c.n != hdr) {
			snprintf(err, errsize, "%.900s:%u: %zu fields, the header "
			    "has %zu", path, c.fields[0].line, c.n, hdr);
			goto fail;
		}
		for (i = 0; i < ncols; i++)
			f[i] = idx[i] == SIZE_MAX ? NULL : &c.fields[idx[i]];
		if (fn(arg, &c, f, err, errsize) == -1)
			goto fail;
	}
	if (rc == -1)
		goto fail;
	csv_close(&c);
	return 0;
fail:
	csv_close(&c);
	return -1;
}

static int
field_u64(struct csv *c, struct csv_field *f, const char *what, uint64_t max,
    uint64_t *out, char *err, size_t errsize)
{
	if (!ctl_parse_u64(f->text, max, out)) {
		snprintf(err, errsize, "%s:%u:%u: %s: expected a whole number, "
		    "got \"%.40s\"", c->name, f->line, f->col, what, f->text);
		return -1;
	}
	return 0;
}

static int
field_id(struct csv *c, struct csv_field *f, const char *what, char *err,
    size_t errsize)
{
	if (!tally_id_is_valid(f->text)) {
		snprintf(err, errsize, "%s:%u:%u: %s \"%.64s\" is not an id",
		    c->name, f->line, f->col, what, f->text);
		return -1;
	}
	return 0;
}

static struct ds_province *
find_province(struct dataset *d, const char *id)
{
	size_t i;

	for (i = 0; i < d->n_provinces; i++)
		if (strcmp(d->provinces[i].id, id) == 0)
			return &d->provinces[i];
	return NULL;
}

static struct ds_list *
find_list(struct ds_province *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->n_lists; i++)
		if (strcmp(p->lists[i].id, id) == 0)
			return &p->lists[i];
	return NULL;
}

static int
on_constituency(void *arg, struct csv *c, struct csv_field **f, char *err,
    size_t errsize)
{
	struct dataset *d = arg;
	struct ds_province *n, *p;
	uint64_t seats;

	if (field_id(c, f[0], "constituency_id", err, errsize) == -1 ||
	    field_u64(c, f[2], "seats", TALLY_SEATS_MAX, &seats, err,
	    errsize) == -1)
		return -1;
	if (find_province(d, f[0]->text) != NULL) {
		snprintf(err, errsize, "%s:%u:%u: constituency %s a second time",
		    c->name, f[0]->line, f[0]->col, f[0]->text);
		return -1;
	}
	if ((n = realloc(d->provinces, (d->n_provinces + 1) * sizeof(*n))) ==
	    NULL)
		goto nomem;
	d->provinces = n;
	p = &n[d->n_provinces];
	memset(p, 0, sizeof(*p));
	d->n_provinces++;
	if ((p->id = strdup(f[0]->text)) == NULL ||
	    (p->name = strdup(f[1]->text)) == NULL)
		goto nomem;
	p->seats = (uint32_t)seats;
	d->seats_total += seats;
	if (f[3] != NULL) {
		uint64_t all;
		if (field_u64(c, f[3], "seats_incl_levelling", TALLY_SEATS_MAX,
		    &all, err, errsize) == -1)
			return -1;
		if (all < seats) {
			snprintf(err, errsize, "%s:%u:%u: seats_incl_levelling "
			    "%llu is below seats %llu", c->name, f[3]->line,
			    f[3]->col, (unsigned long long)all,
			    (unsigned long long)seats);
			return -1;
		}
		p->levelling_seats = (uint32_t)(all - seats);
		d->has_levelling = true;
	}
	return 0;
nomem:
	snprintf(err, errsize, "out of memory");
	return -1;
}

static struct ds_province *
row_province(struct dataset *d, struct csv *c, struct csv_field *f, char *err,
    size_t errsize)
{
	struct ds_province *p = find_province(d, f->text);

	if (p == NULL)
		snprintf(err, errsize, "%s:%u:%u: constituency \"%.64s\" is not "
		    "in constituencies.csv", c->name, f->line, f->col, f->text);
	return p;
}

static int
on_votes(void *arg, struct csv *c, struct csv_field **f, char *err,
    size_t errsize)
{
	struct dataset *d = arg;
	struct ds_province *p;
	struct ds_list *n;
	uint64_t v;

	if ((p = row_province(d, c, f[0], err, errsize)) == NULL ||
	    field_id(c, f[1], "party_id", err, errsize) == -1 ||
	    field_u64(c, f[2], "votes", 1000000000000ULL, &v, err,
	    errsize) == -1)
		return -1;
	if (find_list(p, f[1]->text) != NULL) {
		snprintf(err, errsize, "%s:%u:%u: a second row for %s in %s",
		    c->name, f[1]->line, f[1]->col, f[1]->text, p->id);
		return -1;
	}
	if ((n = realloc(p->lists, (p->n_lists + 1) * sizeof(*n))) == NULL)
		goto nomem;
	p->lists = n;
	memset(&n[p->n_lists], 0, sizeof(*n));
	if ((n[p->n_lists].id = strdup(f[1]->text)) == NULL)
		goto nomem;
	n[p->n_lists++].votes = v;
	return 0;
nomem:
	snprintf(err, errsize, "out of memory");
	return -1;
}

static int
on_totals(void *arg, struct csv *c, struct csv_field **f, char *err,
    size_t errsize)
{
	struct dataset *d = arg;
	struct ds_province *p;

	if ((p = row_province(d, c, f[0], err, errsize)) == NULL ||
	    field_u64(c, f[1], "blank_votes", 1000000000000ULL, &p->blank, err,
	    errsize) == -1 ||
	    field_u64(c, f[2], "null_votes", 1000000000000ULL, &p->invalid, err,
	    errsize) == -1)
		return -1;
	return 0;
}

static int
on_seats(void *arg, struct csv *c, struct csv_field **f, char *err,
    size_t errsize)
{
	struct dataset *d = arg;
	struct ds_province *p;
	struct ds_list *l;
	uint64_t s;

	if ((p = row_province(d, c, f[0], err, errsize)) == NULL ||
	    field_u64(c, f[2], "seats", TALLY_SEATS_MAX, &s, err, errsize) == -1)
		return -1;
	if ((l = find_list(p, f[1]->text)) == NULL) {
		snprintf(err, errsize, "%s:%u:%u: %s has seats in %s but no "
		    "votes there", c->name, f[1]->line, f[1]->col, f[1]->text,
		    p->id);
		return -1;
	}
	l->seats = (uint32_t)s;
	return 0;
}

/*
 * official_levelling.csv (a second tier, Norway): a list's levelling
 * seats, added to its district seats as the leaderboard counts them.
 * Unread before, so replay said MISMATCH on every two-tier dataset.
 */
static int
on_levelling(void *arg, struct csv *c, struct csv_field **f, char *err,
    size_t errsize)
{
	struct dataset *d = arg;
	struct ds_province *p;
	struct ds_list *l;
	uint64_t s;

	if ((p = row_province(d, c, f[0], err, errsize)) == NULL ||
	    field_u64(c, f[2], "levelling_seats", TALLY_SEATS_MAX, &s, err,
	    errsize) == -1)
		return -1;
	if ((l = find_list(p, f[1]->text)) == NULL) {
		snprintf(err, errsize, "%s:%u:%u: %s has a levelling seat in %s "
		    "but no votes there", c->name, f[1]->line, f[1]->col,
		    f[1]->text, p->id);
		return -1;
	}
	l->seats += (uint32_t)s;
	return 0;
}

/*
 * official_national.csv (national_group_id,votes,seats): read when the
 * provinces' official seats fall short of the parliament's (Czechia's
 * dataset gives three regions' only), and compared instead of their sum.
 */
static int
on_national(void *arg, struct csv *c, struct csv_field **f, char *err,
    size_t errsize)
{
	struct dataset *d = arg;
	struct ds_list *nl;
	uint64_t s;

	if (field_u64(c, f[2], "seats", TALLY_SEATS_MAX, &s, err, errsize) ==
	    -1)
		return -1;
	if ((nl = realloc(d->national, (d->n_national + 1) *
	    sizeof(*nl))) == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	d->national = nl;
	nl += d->n_national;
	memset(nl, 0, sizeof(*nl));
	if ((nl->id = strdup(f[0]->text)) == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	nl->seats = (uint32_t)s;
	d->n_national++;
	return 0;
}

/* The provinces' official seats, all lists. */
static uint64_t
province_seats(const struct dataset *d)
{
	uint64_t n = 0;
	size_t i, j;

	for (i = 0; i < d->n_provinces; i++)
		for (j = 0; j < d->provinces[i].n_lists; j++)
			n += d->provinces[i].lists[j].seats;
	return n;
}

int
dataset_load(struct dataset *d, const char *dir, bool results, char *err,
    size_t errsize)
{
	static const char *const cc[] = { "constituency_id", "name", "seats",
	    "seats_incl_levelling?" };
	static const char *const vc[] = { "constituency_id", "party_id", "votes" };
	static const char *const tc[] = { "constituency_id", "blank_votes",
	    "null_votes" };
	static const char *const sc[] = { "constituency_id", "party_id", "seats" };
	static const char *const lc[] = { "constituency_id", "party_id",
	    "levelling_seats" };
	static const char *const nc[] = { "national_group_id", "votes",
	    "seats" };
	const char *base;
	size_t i;

	memset(d, 0, sizeof(*d));
	if ((d->dir = strdup(dir)) == NULL)
		goto nomem;
	while (strlen(d->dir) > 1 && d->dir[strlen(d->dir) - 1] == '/')
		d->dir[strlen(d->dir) - 1] = '\0';
	base = strrchr(d->dir, '/');
	if ((d->id = strdup(base ? base + 1 : d->dir)) == NULL)
		goto nomem;
	/* The repository's form (tests/data/elections/<id>): dataset_json.c. */
	if (results && dataset_is_json(dir)) {
		if (dataset_load_json(d, dir, err, errsize) == -1)
			goto fail;
		return 0;
	}
	if (read_table(dir, "constituencies.csv", true, cc, 4, on_constituency,
	    d, err, errsize) == -1)
		goto fail;
	if (results && (read_table(dir, "votes.csv", true, vc, 3, on_votes, d, err,
	    errsize) == -1 ||
	    read_table(dir, "constituency_totals.csv", false, tc, 3, on_totals,
	    d, err, errsize) == -1 ||
	    read_table(dir, "official_seats.csv", true, sc, 3, on_seats, d, err,
	    errsize) == -1 ||
	    read_table(dir, "official_levelling.csv", false, lc, 3,
	    on_levelling, d, err, errsize) == -1))
		goto fail;
	if (d->n_provinces == 0) {
		snprintf(err, errsize, "%s/constituencies.csv: no rows", dir);
		goto fail;
	}
	for (i = 0; results && i < d->n_provinces; i++)
		if (d->provinces[i].n_lists == 0) {
			snprintf(err, errsize, "%s/votes.csv: no votes for %s",
			    dir, d->provinces[i].id);
			goto fail;
		}
	if (results && province_seats(d) < d->seats_total &&
	    read_table(dir, "official_national.csv", false, nc, 3,
	    on_national, d, err, errsize) == -1)
		goto fail;
	return 0;
nomem:
	snprintf(err, errsize, "out of memory");
fail:
	dataset_finish(d);
	return -1;
}

void
dataset_finish(struct dataset *d)
{
	size_t i, j;

	for (i = 0; i < d->n_provinces; i++) {
		for (j = 0; j < d->provinces[i].n_lists; j++)
			free(d->provinces[i].lists[j].id);
		free(d->provinces[i].lists);
		free(d->provinces[i].id);
		free(d->provinces[i].name);
	}
	free(d->provinces);
	for (i = 0; i < d->n_national; i++)
		free(d->national[i].id);
	free(d->national);
	free(d->dir);
	free(d->id);
	memset(d, 0, sizeof(*d));
}

/* ---------------------------------------------------------------- import */

struct parties {
	json_t	*coalitions;	/* id -> coalition object, in order */
	json_t	*l2c;		/* list id -> coalition id */
	bool	 grouped;	/* parties.csv has national_group_id */
};

static int
on_party(void *arg, struct csv *c, struct csv_field **f, char *err,
    size_t errsize)
{
	struct parties *ps = arg;
	const char *pid = f[0]->text, *gid;
	const char *name = f[1]->text, *full;
	json_t *co, *aliases;

	if (field_id(c, f[0], "party_id", err, errsize) == -1)
		return -1;
	if (json_object_get(ps->l2c, pid) != NULL &&
	    json_object_get(ps->coalitions, pid) == NULL) {
		snprintf(err, errsize, "%s:%u:%u: party %s a second time",
		    c->name, f[0]->line, f[0]->col, pid);
		return -1;
	}
	full = f[2] != NULL && f[2]->text[0] != '\0' ? f[2]->text : name;
	if (f[3] != NULL) {
		if (field_id(c, f[3], "national_group_id", err, errsize) == -1)
			return -1;
		gid = f[3]->text;
	} else
		gid = pid;
	if (*name == '\0')
		name = pid;
	if (*full == '\0')
		full = name;
	co = json_object_get(ps->coalitions, gid);
	if (co == NULL) {
		co = json_pack("{ss ss ss s[]}", "id", gid, "name", full,
		    "short", strlen(name) <= 16 ? name : pid, "aliases");
		if (co == NULL || json_object_set_new(ps->coalitions, gid, co))
			goto nomem;
	}
	/* The group's own candidacy names the coalition. */
	if (strcmp(pid, gid) == 0) {
		json_object_set_new(co, "name", json_string(full));
		json_object_set_new(co, "short",
		    json_string(strlen(name) <= 16 ? name : pid));
	} else {
		aliases = json_object_get(co, "aliases");
		json_array_append_new(aliases, json_string(pid));
	}
	json_object_set_new(ps->l2c, pid, json_string(gid));
	return 0;
nomem:
	snprintf(err, errsize, "out of memory");
	return -1;
}

/* An exact decimal string for a JSON number of rule.json. */
static void
decimal(json_t *v, char *out, size_t n)
{
	char *dot;
	size_t k;

	if (json_is_integer(v)) {
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
		return;
	}
	if (json_is_string(v)) {
		snprintf(out, n, "%s", json_string_value(v));
		return;
	}
	/* At most 9 decimals, as a definition allows; trailing zeros cut. */
	snprintf(out, n, "%.9f", json_number_value(v));
	if ((dot = strchr(out, '.')) != NULL) {
		k = strlen(out);
		while (k > 0 && out[k - 1] == '0')
			out[--k] = '\0';
		if (out[k - 1] == '.')
			out[k - 1] = '\0';
	}
}

static json_t *
allocation(const char *path, json_t *rule, char *err, size_t errsize)
{
	const char *method = json_string_value(json_object_get(rule, "method"));
	const char *tie = json_string_value(json_object_get(rule, "tie_break"));
	json_t *a, *pct = json_object_get(rule, "threshold_percent");
	json_t *fd = json_object_get(rule, "first_divisor");
	char buf[64];
	const char *s;

	const char *quota = json_string_value(json_object_get(rule,
	    "droop_quota"));

	if (method == NULL) {
		snprintf(err, errsize, "%.900s: no method", path);
		return NULL;
	}
	if ((a = json_object()) == NULL)
		goto nomem;
	if (strcmp(method, "dhondt") == 0)
		json_object_set_new(a, "method", json_string("dhondt"));
	else if (strcmp(method, "sainte_lague") == 0 ||
	    strcmp(method, "sainte_lague_modified") == 0)
		json_object_set_new(a, "method", json_string("sainte-lague"));
	else if (strcmp(method, "hare") == 0)
		json_object_set_new(a, "method", json_string("hare"));
	else if (strcmp(method, "droop") == 0 && quota == NULL &&
	    json_object_get(rule, "droop_quota") == NULL)
		json_object_set_new(a, "method", json_string("droop"));
	/* votes/(seats+1), rounded up (Slovakia) or exact. */
	else if (strcmp(method, "droop") == 0 && quota != NULL &&
	    strcmp(quota, "ceil") == 0)
		json_object_set_new(a, "method",
		    json_string("hagenbach-bischoff-ceil"));
	else if (strcmp(method, "droop") == 0 && quota != NULL &&
	    strcmp(quota, "exact") == 0)
		json_object_set_new(a, "method", json_string("hagenbach-bischoff"));
	else {
		snprintf(err, errsize, "%.900s: method \"%.64s\"%s is not one tallyd "
		    "knows", path, method, json_object_get(rule, "droop_quota") ?
		    " with its droop_quota" : "");
		goto fail;
	}
	if (fd != NULL && json_is_number(fd) && json_number_value(fd) != 1) {
		decimal(fd, buf, sizeof(buf));
		json_object_set_new(a, "first_divisor", json_string(buf));
	}
	if (pct != NULL && !json_is_null(pct)) {
		const char *of, *scope;

		s = json_string_value(json_object_get(rule, "threshold_base"));
		of = s == NULL ? NULL : strcmp(s, "valid_votes_incl_blank") == 0 ?
		    "valid" : strcmp(s, "party_votes") == 0 ||
		    strcmp(s, "list_votes") == 0 ? "list" : NULL;
		s = json_string_value(json_object_get(rule, "threshold_scope"));
		scope = s == NULL ? NULL : strcmp(s, "constituency") == 0 ?
		    "province" : strcmp(s, "national") == 0 ? "national" : NULL;
		s = json_string_value(json_object_get(rule,
		    "threshold_comparison"));
		if (of == NULL || scope == NULL || (s != NULL &&
		    strcmp(s, ">=") != 0)) {
			snprintf(err, errsize, "%.900s: cannot express the threshold "
			    "(threshold_base, threshold_scope, "
			    "threshold_comparison)", path);
			goto fail;
		}
		decimal(pct, buf, sizeof(buf));
		json_object_set_new(a, "threshold", json_pack("{ss ss ss}",
		    "percent", buf, "of", of, "scope", scope));
	}
	/* "more (total) votes ... then lot" is the votes rule; lot alone is lot. */
	if (tie != NULL && strstr(tie, "more") != NULL &&
	    strstr(tie, "votes") != NULL)
		json_object_set_new(a, "ties", json_string("votes"));
	else if (tie != NULL && strstr(tie, "lot") != NULL)
		json_object_set_new(a, "ties", json_string("lot"));
	else {
		snprintf(err, errsize, "%.900s: cannot map tie_break \"%.80s\"", path,
		    tie ? tie : "");
		goto fail;
	}
	return a;
nomem:
	snprintf(err, errsize, "out of memory");
fail:
	json_decref(a);
	return NULL;
}

/*
 * rule.json's list_thresholds (a list's own percent) and threshold_exempt
 * (lists no threshold applies to) on the coalitions the lists belong to.
 */
static int
own_thresholds(const char *path, json_t *rule, struct parties *ps, char *err,
    size_t errsize)
{
	json_t *lt = json_object_get(rule, "list_thresholds");
	json_t *ex = json_object_get(rule, "threshold_exempt"), *v, *co;
	const char *pid, *cid;
	char buf[64];
	size_t i;

	json_object_foreach(lt, pid, v) {
		if ((cid = json_string_value(json_object_get(ps->l2c, pid))) ==
		    NULL || (co = json_object_get(ps->coalitions, cid)) == NULL) {
			snprintf(err, errsize, "%.900s: list_thresholds names %.64s, "
			    "which is not in parties.csv", path, pid);
			return -1;
		}
		decimal(v, buf, sizeof(buf));
		json_object_set_new(co, "threshold", json_pack("{ss ss}",
		    "percent", buf, "reason", "the list's own threshold "
		    "(rule.json list_thresholds)"));
	}
	json_array_foreach(ex, i, v) {
		pid = json_string_value(v);
		if (pid == NULL || (cid = json_string_value(json_object_get(
		    ps->l2c, pid))) == NULL ||
		    (co = json_object_get(ps->coalitions, cid)) == NULL) {
			snprintf(err, errsize, "%.900s: threshold_exempt names "
			    "%.64s, which is not in parties.csv", path,
			    pid ? pid : "a non-string");
			return -1;
		}
		json_object_set_new(co, "threshold", json_pack("{sb ss}",
		    "exempt", 1, "reason", "exempt by law (rule.json "
		    "threshold_exempt)"));
	}
	return 0;
}

/*
 * A levelling tier (constituencies.csv with seats_incl_levelling): the one
 * two-tier rule a dataset can name today, Norway's (Valgloven ch. 11): 4 %
 * of the national list votes, a national apportionment by modified
 * Sainte-Laguë (1.4), the seats placed in counties by votes per seat.
 */
static json_t *
levelling_tier(void)
{
	return json_pack("{s{ss ss s{ss ss ss} ss} s{ss ss ss ss}}",
	    "allocation", "method", "sainte-lague", "first_divisor", "1.4",
	    "threshold", "percent", "4", "of", "list", "scope", "national",
	    "ties", "lot",
	    "assignment", "method", "sainte-lague", "first_divisor", "1",
	    "scale", "votes_per_seat", "ties", "lot");
}

/* The title of the dataset's README.md, or NULL. */
static char *
readme_title(const char *dir)
{
	char path[1024], *buf, *s, *e;
	size_t len;

	snprintf(path, sizeof(path), "%s/README.md", dir);
	if (tally_read_file(path, &buf, &len) == -1)
		return NULL;
	for (s = buf; *s == '#' || *s == ' '; s++)
		;
	for (e = s; *e != '\0' && *e != '\n'; e++)
		;
	*e = '\0';
	memmove(buf, s, (size_t)(e - s) + 1);
	if (*buf == '\0') {
		free(buf);
		return NULL;
	}
	return buf;
}

/*
 * The palette's colours into the coalitions `cs` of `def` that have none,
 * in the order the loader saw them (e's); the text is dumped again.
 */
static int
import_colors(json_t *def, json_t *cs, const struct tally_election *e,
    char **text)
{
	char *t;
	size_t i;

	for (i = 0; i < e->n_coalitions && i < json_array_size(cs); i++) {
		json_t *co = json_array_get(cs, i);
		if (json_object_get(co, "color") == NULL &&
		    json_object_set_new(co, "color",
		    json_string(e->coalitions[i].shown.hex)) == -1)
			return -1;
	}
	if ((t = json_dumps(def, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
		return -1;
	free(*text);
	*text = t;
	return 0;
}

/*
 * tallyctl check's warnings about colours: coalitions without one (drawn in
 * the palette's, which an editor may want to choose instead) and defined
 * colours near-identical to an earlier coalition's (drawn lighter or
 * darker: say which, so the definition can give one of its own).
 */
void
ctl_check_colors(const char *path, const struct tally_election *e)
{
	size_t i, missing = 0;

	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_coalition *c = &e->coalitions[i];
		const struct tally_coalition *o = &e->coalitions[c->shown.near];

		if (c->shown.source == TALLY_COLOR_PALETTE) {
			if (missing++ < 8)
				fprintf(stderr, "%s: /coalitions/%zu: warning: "
				    "%s has no \"color\": drawn in the palette's "
				    "%s\n", path, i, c->id, c->shown.hex);
		} else if (c->shown.source == TALLY_COLOR_ADJUSTED)
			fprintf(stderr, "%s: /coalitions/%zu/color: warning: "
			    "%s's %s is near-identical to %s's %s "
			    "(/coalitions/%zu, distance %u, under %d): drawn as "
			    "%s; give it a colour of its own\n", path, i, c->id,
			    c->color, o->id, o->color, c->shown.near,
			    (unsigned)tally_color_distance(c->color, o->color),
			    TALLY_COLOR_NEAR, c->shown.hex);
	}
	if (missing > 8)
		fprintf(stderr, "%s: warning: and %zu more coalitions without "
		    "\"color\"\n", path, missing - 8);
}

static void
import_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl import [-o FILE] [--id ID] [--name NAME] DATASET_DIR\n"
	    "\n"
	    "Writes an election definition (for tallyd --election) from a dataset\n"
	    "directory: constituencies.csv, parties.csv, rule.json (and, if there,\n"
	    "votes.csv: every list must be reachable).  The result is checked with tallyd's\n"
	    "own loader before it is written.\n"
	    "\n"
	    "  -o, --output FILE   write here (default: standard output)\n"
	    "      --id ID         election id (default: the directory's name)\n"
	    "      --name NAME     election name (default: rule.json election_name,\n"
	    "                      else the README's title)\n"
	    "\n"
	    "exit: 0 written, 2 usage, 3 the dataset cannot be expressed or is wrong\n");
}

int
cmd_import(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "id", required_argument, NULL, 'i' },
		{ "name", required_argument, NULL, 'n' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	static const char *const pc[] = { "party_id", "name", "full_name?",
	    "national_group_id?" };
	struct parties ps = { NULL, NULL, false };
	struct dataset d = { 0 };
	struct tally_diag diag;
	struct tally_election *e;
	const char *out = NULL, *id = NULL, *name = NULL, *dir, *key;
	char err[1024], path[1024], *title = NULL, *text = NULL, *buf = NULL;
	json_t *rule = NULL, *alloc = NULL, *def = NULL, *cs, *pv, *co;
	json_error_t jerr;
	size_t i, j;
	int c, ex = CTL_EXIT_INVALID;
	FILE *f;

	optind = 0;
	while ((c = ctl_getopt(ctl, argc, argv, "o:vh", opts)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'i':
			id = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'h':
			import_usage(stdout);
			return CTL_EXIT_OK;
		default:
			if ((ex = ctl_common_option(ctl, c, optarg)) != 0) {
				import_usage(stderr);
				return ex;
			}
			ex = CTL_EXIT_INVALID;
		}
	}
	if (optind != argc - 1) {
		import_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	dir = argv[optind];
	/* Results are optional: a definition is made before the night. */
	snprintf(path, sizeof(path), "%.1000s/votes.csv", dir);
	if (dataset_load(&d, dir, access(path, F_OK) == 0, err,
	    sizeof(err)) == -1)
		goto fail;
	snprintf(path, sizeof(path), "%s/rule.json", dir);
	if ((rule = json_load_file(path, 0, &jerr)) == NULL) {
		snprintf(err, sizeof(err), "%.700s:%d:%d: %.150s", path, jerr.line,
		    jerr.column, jerr.text);
		goto fail;
	}
	if ((alloc = allocation(path, rule, err, sizeof(err))) == NULL)
		goto fail;
	ps.coalitions = json_object();
	ps.l2c = json_object();
	if (ps.coalitions == NULL || ps.l2c == NULL)
		goto nomem;
	if (read_table(dir, "parties.csv", true, pc, 4, on_party, &ps, err,
	    sizeof(err)) == -1)
		goto fail;
	/* Every list that got votes must be reachable from a feed (when the
	 * dataset has votes). */
	for (i = 0; i < d.n_provinces; i++)
		for (j = 0; j < d.provinces[i].n_lists; j++)
			if (json_object_get(ps.l2c,
			    d.provinces[i].lists[j].id) == NULL) {
				snprintf(err, sizeof(err), "%s/votes.csv: list %s "
				    "(in %s) is not in parties.csv", dir,
				    d.provinces[i].lists[j].id,
				    d.provinces[i].id);
				goto fail;
			}
	if (own_thresholds(path, rule, &ps, err, sizeof(err)) == -1)
		goto fail;
	if (name == NULL)
		name = json_string_value(json_object_get(rule, "election_name"));
	if (name == NULL)
		name = title = readme_title(dir);
	if (id == NULL)
		id = d.id;
	cs = json_array();
	pv = json_array();
	def = json_pack("{ss ss so so so}", "id", id, "name", name ? name : id,
	    "allocation", alloc, "coalitions", cs ? cs : json_array(),
	    "provinces", pv ? pv : json_array());
	alloc = NULL;
	if (def == NULL || cs == NULL || pv == NULL)
		goto nomem;
	json_object_foreach(ps.coalitions, key, co)
		json_array_append(cs, co);
	for (i = 0; i < d.n_provinces; i++) {
		json_t *row = json_pack("{ss ss si}", "id", d.provinces[i].id,
		    "name", d.provinces[i].name, "seats",
		    (int)d.provinces[i].seats);
		if (row != NULL && d.has_levelling)
			json_object_set_new(row, "levelling_seats",
			    json_integer(d.provinces[i].levelling_seats));
		json_array_append_new(pv, row);
	}
	if (d.has_levelling && json_object_set_new(def, "levelling",
	    levelling_tier()) == -1)
		goto nomem;
	if ((text = json_dumps(def, JSON_INDENT(2) |
	    JSON_PRESERVE_ORDER)) == NULL)
		goto nomem;
	/* tallyd's own loader has the last word, with its own messages. */
	tally_diag_init(&diag);
	e = tally_election_loadb(text, strlen(text), out ? out : "<output>",
	    &diag);
	if (e == NULL) {
		for (i = 0; i < diag.count && i < diag.cap; i++)
			ctl_warnx(ctl, "%s", diag.msgs[i]);
		tally_diag_finish(&diag);
		snprintf(err, sizeof(err), "the definition made from %s is not "
		    "valid", dir);
		goto fail;
	}
	tally_diag_finish(&diag);
	/* Write down the colours tallyd would draw anyway (lib/palette.c), so
	 * that the definition says them and whoever edits one sees the rest. */
	if (import_colors(def, cs, e, &text) == -1) {
		tally_election_destroy(e);
		goto nomem;
	}
	f = out == NULL ? stdout : fopen(out, "w");
	if (f == NULL || fputs(text, f) == EOF || fputc('\n', f) == EOF ||
	    (f != stdout ? fclose(f) : fflush(f)) != 0) {
		snprintf(err, sizeof(err), "%s: cannot write", out ? out :
		    "<stdout>");
		ex = CTL_EXIT_ERROR;
		goto fail;
	}
	fprintf(stderr, "%s: %s: %zu provinces, %llu seats, %zu coalitions, "
	    "%s\n", ctl->prog, id, e->n_provinces,
	    (unsigned long long)e->seats_total, e->n_coalitions,
	    tally_method_name(e->rule.method));
	tally_election_destroy(e);
	ex = CTL_EXIT_OK;
	goto done;
nomem:
	snprintf(err, sizeof(err), "out of memory");
	ex = CTL_EXIT_ERROR;
fail:
	ctl_warnx(ctl, "%s", err);
done:
	free(buf);
	free(title);
	free(text);
	json_decref(def);
	json_decref(alloc);
	json_decref(rule);
	json_decref(ps.coalitions);
	json_decref(ps.l2c);
	dataset_finish(&d);
	return ex;
}
