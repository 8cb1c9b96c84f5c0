/*
 * dataset_json.c - a dataset as the repository holds it.
 *
 * tests/data/elections/<id>/ is what scripts/import-dataset made of a
 * commission's CSV files: election.json (the definition), results.json
 * (every province's final count, a POST /v1/results batch body) and
 * expected.json (the official seats per province and list as posted, and
 * the levelling seats where there is a second tier).  A fresh clone has
 * these and not the CSV files (those live in the shared data set, outside
 * the repository), so replay takes either form: README's rehearsal named
 * ../shared/data/elections/es-2019-04, which a newcomer does not have.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "tallyctl.h"

static json_t *
load(const char *dir, const char *name, char *err, size_t errsize)
{
	char path[4096];
	json_error_t je;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((j = json_load_file(path, JSON_REJECT_DUPLICATES, &je)) == NULL)
		snprintf(err, errsize, "%s:%d:%d: %s", path, je.line, je.column,
		    je.text);
	else if (!json_is_object(j)) {
		snprintf(err, errsize, "%s: not a JSON object", path);
		json_decref(j);
		j = NULL;
	}
	return j;
}

bool
dataset_is_json(const char *dir)
{
	char path[4096];
	struct stat st;

	snprintf(path, sizeof(path), "%s/constituencies.csv", dir);
	if (stat(path, &st) == 0)
		return false;
	snprintf(path, sizeof(path), "%s/results.json", dir);
	return stat(path, &st) == 0;
}

/* A count of a JSON object: a non-negative integer, or -1. */
static long long
count(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (v == NULL)
		return 0;
	return json_is_integer(v) && json_integer_value(v) >= 0 ?
	    (long long)json_integer_value(v) : -1;
}

/* One province's lists: its votes from results.json, its seats from
 * expected.json (district and levelling seats together, as the leaderboard
 * counts them). */
static int
province_lists(struct ds_province *p, json_t *votes, json_t *seats,
    json_t *levelling, char *err, size_t errsize)
{
	const char *key;
	json_t *v;
	size_t n = 0;
	long long s;

	if (!json_is_object(votes) || json_object_size(votes) == 0) {
		snprintf(err, errsize, "results.json: no votes for %s", p->id);
		return -1;
	}
	if ((p->lists = calloc(json_object_size(votes),
	    sizeof(*p->lists))) == NULL)
		goto nomem;
	json_object_foreach(votes, key, v) {
		struct ds_list *l = &p->lists[n];

		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(err, errsize, "results.json: %s/%s: votes must "
			    "be a non-negative integer", p->id, key);
			return -1;
		}
		if ((l->id = strdup(key)) == NULL)
			goto nomem;
		p->n_lists = ++n;
		l->votes = (uint64_t)json_integer_value(v);
		if ((s = count(seats, key)) < 0 ||
		    count(levelling, key) < 0) {
			snprintf(err, errsize, "expected.json: %s/%s: seats must "
			    "be a non-negative integer", p->id, key);
			return -1;
		}
		l->seats = (uint32_t)(s + count(levelling, key));
	}
	/* An official seat for a list that got no votes: a broken dataset. */
	json_object_foreach(seats, key, v)
		if (json_object_get(votes, key) == NULL) {
			snprintf(err, errsize, "expected.json: %s/%s has seats "
			    "but no votes in results.json", p->id, key);
			return -1;
		}
	return 0;
nomem:
	snprintf(err, errsize, "out of memory");
	return -1;
}

/* expected.json's national seats by list, when its provinces are some. */
static int
national_seats(struct dataset *d, json_t *national, char *err,
    size_t errsize)
{
	const char *key;
	json_t *v;

	if (!json_is_object(national) || json_object_size(national) == 0) {
		snprintf(err, errsize, "expected.json: \"provinces_scope\" "
		    "needs the national seats (\"national\")");
		return -1;
	}
	if ((d->national = calloc(json_object_size(national),
	    sizeof(*d->national))) == NULL) {
		snprintf(err, errsize, "out of memory");
		return -1;
	}
	json_object_foreach(national, key, v) {
		struct ds_list *l = &d->national[d->n_national];

		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(err, errsize, "expected.json: national/%s: "
			    "seats must be a non-negative integer", key);
			return -1;
		}
		if ((l->id = strdup(key)) == NULL) {
			snprintf(err, errsize, "out of memory");
			return -1;
		}
		l->seats = (uint32_t)json_integer_value(v);
		d->n_national++;
	}
	return 0;
}

int
dataset_load_json(struct dataset *d, const char *dir, char *err,
    size_t errsize)
{
	json_t *def = NULL, *res = NULL, *exp = NULL, *pv, *r, *byid = NULL;
	json_t *eprov, *elev;
	size_t i;
	int rc = -1;

	if ((def = load(dir, "election.json", err, errsize)) == NULL ||
	    (res = load(dir, "results.json", err, errsize)) == NULL ||
	    (exp = load(dir, "expected.json", err, errsize)) == NULL)
		goto done;
	if ((byid = json_object()) == NULL)
		goto nomem;
	json_array_foreach(json_object_get(res, "results"), i, r) {
		const char *id = json_string_value(json_object_get(r,
		    "province"));
		if (id == NULL || json_object_get(byid, id) != NULL) {
			snprintf(err, errsize, "%s/results.json: /results/%zu: "
			    "a province id, once each", dir, i);
			goto done;
		}
		json_object_set(byid, id, r);
	}
	eprov = json_object_get(exp, "provinces");
	elev = json_object_get(exp, "levelling");
	pv = json_object_get(def, "provinces");
	if (json_array_size(pv) == 0) {
		snprintf(err, errsize, "%s/election.json: no provinces", dir);
		goto done;
	}
	if ((d->provinces = calloc(json_array_size(pv),
	    sizeof(*d->provinces))) == NULL)
		goto nomem;
	json_array_foreach(pv, i, r) {
		struct ds_province *p = &d->provinces[i];
		const char *id = json_string_value(json_object_get(r, "id"));
		const char *name = json_string_value(json_object_get(r, "name"));
		json_t *feed;
		long long seats = count(r, "seats");
		long long lev = count(r, "levelling_seats");

		if (id == NULL || seats < 0 || lev < 0) {
			snprintf(err, errsize, "%s/election.json: /provinces/%zu:"
			    " an id and seats", dir, i);
			goto done;
		}
		d->n_provinces = i + 1;
		if ((p->id = strdup(id)) == NULL ||
		    (p->name = strdup(name ? name : id)) == NULL)
			goto nomem;
		p->seats = (uint32_t)seats;
		p->levelling_seats = (uint32_t)lev;
		d->seats_total += (uint64_t)(seats + lev);
		if (lev > 0)
			d->has_levelling = true;
		if ((feed = json_object_get(byid, id)) == NULL) {
			snprintf(err, errsize, "%s/results.json: no result for "
			    "province %s", dir, id);
			goto done;
		}
		if (count(feed, "blank") < 0 || count(feed, "invalid") < 0) {
			snprintf(err, errsize, "%s/results.json: %s: blank and "
			    "invalid must be non-negative integers", dir, id);
			goto done;
		}
		p->blank = (uint64_t)count(feed, "blank");
		p->invalid = (uint64_t)count(feed, "invalid");
		if (province_lists(p, json_object_get(feed, "votes"),
		    json_object_get(eprov, id), json_object_get(elev, id), err,
		    errsize) == -1)
			goto done;
	}
	if (json_object_get(exp, "provinces_scope") != NULL &&
	    national_seats(d, json_object_get(exp, "national"), err,
	    errsize) == -1)
		goto done;
	rc = 0;
	goto done;
nomem:
	snprintf(err, errsize, "out of memory");
done:
	json_decref(byid);
	json_decref(def);
	json_decref(res);
	json_decref(exp);
	return rc;
}
