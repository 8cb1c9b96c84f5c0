/*
 * reference.c - the route index and the national changes feed
 * (tally/reference.h).  Both are views of what the daemon already has: the
 * index of its route table, the changes feed of every province's history,
 * so neither can say something the routes or the histories do not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/reference.h>
#include <tally/render.h>

#include "tally-private.h"

json_t *
tally_render_index(const struct tally_route_doc *routes, size_t n)
{
	json_t *o = json_object(), *arr = json_array();
	size_t i;

	if (o == NULL || arr == NULL)
		goto fail;
	json_object_set_new(o, "api", json_string("tallyd"));
	json_object_set_new(o, "docs", json_string("docs/API.md in the "
	    "source: every view, every field, its unit and base; each "
	    "view's JSON Schema is linked as `schema`"));
	for (i = 0; i < n; i++) {
		const struct tally_route_doc *r = &routes[i];
		json_t *row = json_object();
		char schema[128];
		if (row == NULL || json_array_append_new(arr, row) == -1)
			goto fail;
		json_object_set_new(row, "method", json_string(r->methods));
		json_object_set_new(row, "path", json_string(r->path));
		/* A link only where the path is a URL as it stands. */
		json_object_set_new(row, "href", strchr(r->path, '{') == NULL ?
		    json_string(r->path) : json_null());
		json_object_set_new(row, "token", json_boolean(r->token));
		json_object_set_new(row, "description",
		    json_string(r->description));
		if (r->schema != NULL) {
			snprintf(schema, sizeof(schema), "/v1/schemas/%s.json",
			    r->schema);
			json_object_set_new(row, "schema", json_string(schema));
		} else
			json_object_set_new(row, "schema", json_null());
	}
	json_object_set_new(o, "routes", arr);
	return o;
fail:
	json_decref(arr);
	json_decref(o);
	return NULL;
}

/* A row of the changes feed, to be put in version order. */
struct change {
	uint64_t	 version;
	size_t		 province;
	size_t		 seq;		/* its place in the province's history */
	json_t		*row;		/* borrowed from the province's history */
};

static int
change_cmp(const void *a, const void *b)
{
	const struct change *x = a, *y = b;

	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	if (x->province != y->province)
		return x->province < y->province ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

json_t *
tally_render_changes(const struct tally_state *s, uint64_t since,
    tally_revision_loader load, void *ctx, uint64_t *kept_after,
    struct tally_error *err)
{
	const struct tally_election *e = s->election;
	json_t **hist = NULL, *o = NULL, *arr = NULL;
	struct change *ch = NULL;
	size_t n_ch = 0, cap = 0, p, i;
	uint64_t min_known = UINT64_MAX;
	bool unknown = false;

	*kept_after = 0;
	if ((hist = calloc(e->n_provinces ? e->n_provinces : 1,
	    sizeof(*hist))) == NULL)
		goto nomem;
	/*
	 * Every history is rendered whole: a row's seat moves are counted
	 * against the revision before it, which may itself be older than
	 * `since`.
	 */
	for (p = 0; p < e->n_provinces; p++) {
		json_t *revs, *row;
		if (s->provinces[p].n_revisions == 0)
			continue;
		if ((hist[p] = tally_render_history(s, p, load, ctx)) == NULL)
			goto nomem;
		revs = json_object_get(hist[p], "revisions");
		json_array_foreach(revs, i, row) {
			json_t *v = json_object_get(row, "version");
			uint64_t ver;
			if (!json_is_integer(v)) {
				unknown = true;
				continue;
			}
			ver = (uint64_t)json_integer_value(v);
			if (ver < min_known)
				min_known = ver;
			if (ver <= since)
				continue;
			if (n_ch == cap) {
				struct change *nc;
				cap = cap ? cap * 2 : 64;
				if ((nc = realloc(ch, cap * sizeof(*ch))) == NULL)
					goto nomem;
				ch = nc;
			}
			ch[n_ch].version = ver;
			ch[n_ch].province = p;
			ch[n_ch].seq = i;
			ch[n_ch].row = row;
			n_ch++;
		}
	}
	/*
	 * Revisions without a version came from a snapshot written before
	 * versions were kept, so they precede every revision applied since:
	 * the history answers for the changes after the first known version
	 * less one (after the current version when none is known).
	 */
	if (unknown)
		*kept_after = min_known != UINT64_MAX ? min_known - 1 :
		    s->version;
	if (since < *kept_after) {
		tally_error_set(err, TALLY_ERROR_NOT_FOUND, "history_not_kept",
		    "since", "the changes after version %llu are not all kept: "
		    "the history says every change after version %llu (ask "
		    "/v1/changes?since=%llu, or start again from /v1/provinces)",
		    (unsigned long long)since, (unsigned long long)*kept_after,
		    (unsigned long long)*kept_after);
		goto fail;
	}
	if (n_ch > 1)
		qsort(ch, n_ch, sizeof(*ch), change_cmp);
	if ((o = json_object()) == NULL || (arr = json_array()) == NULL)
		goto nomem;
	for (i = 0; i < n_ch; i++) {
		json_t *row = json_deep_copy(ch[i].row);
		if (row == NULL || json_array_append_new(arr, row) == -1)
			goto nomem;
		json_object_set_new(row, "province",
		    json_string(e->provinces[ch[i].province].id));
	}
	json_object_set_new(o, "since", json_integer((json_int_t)since));
	json_object_set_new(o, "version", json_integer((json_int_t)s->version));
	json_object_set_new(o, "kept_after",
	    json_integer((json_int_t)*kept_after));
	json_object_set_new(o, "changes", arr);
	arr = NULL;
	goto out;
nomem:
	tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
	    "out of memory rendering the changes; try again");
fail:
	json_decref(o);
	o = NULL;
out:
	json_decref(arr);
	for (p = 0; hist != NULL && p < e->n_provinces; p++)
		json_decref(hist[p]);
	free(hist);
	free(ch);
	return o;
}
