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
	    "source, /usr/share/doc/tallyd/API.md from the package: every "
	    "view, every field, its unit and base; each view's JSON Schema "
	    "is linked as `schema`"));
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

/* A revision after `since`, to be put in version order. */
struct change {
	uint64_t	 version;
	size_t		 province;
	size_t		 index;		/* in the province's history */
};

static int
change_cmp(const void *a, const void *b)
{
	const struct change *x = a, *y = b;

	if (x->version != y->version)
		return x->version < y->version ? -1 : 1;
	if (x->province != y->province)
		return x->province < y->province ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * The version of revision i of province p: kept beside it, or (an older
 * revision read from a snapshot) in its record on disk.  0 when it cannot
 * be read back.
 */
static uint64_t
revision_version(const struct tally_state *s, size_t p, size_t i,
    tally_revision_loader load, void *ctx)
{
	const struct tally_revision *rev = &s->provinces[p].revisions[i];
	struct tally_feed *f;
	char at[40];
	uint64_t v;

	if (rev->version != 0)
		return rev->version;
	if (rev->feed != NULL)
		return rev->feed->version;
	if (load == NULL || (f = load(ctx, rev, at)) == NULL)
		return 0;
	v = f->version;
	tally_feed_destroy(f);
	return v;
}

/*
 * The first known version of province p, UINT64_MAX when none is known, 0
 * when a revision cannot be read.  Revisions without a version came from a
 * snapshot written before versions were kept: they precede every revision
 * with one, so a binary search finds the first.
 */
static uint64_t
first_known(const struct tally_state *s, size_t p, tally_revision_loader load,
    void *ctx)
{
	size_t lo = 0, hi = s->provinces[p].n_revisions, mid;
	uint64_t v;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((v = revision_version(s, p, mid, load, ctx)) == 0)
			return 0;
		if (v == TALLY_VERSION_UNKNOWN)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == s->provinces[p].n_revisions ? UINT64_MAX :
	    revision_version(s, p, lo, load, ctx);
}

json_t *
tally_render_changes(const struct tally_state *s, uint64_t since,
    size_t max_rows, tally_revision_loader load, void *ctx,
    uint64_t *kept_after, struct tally_error *err)
{
	const struct tally_election *e = s->election;
	json_t *o = NULL, *arr = NULL, *hist = NULL;
	struct change *ch = NULL;
	size_t n_ch = 0, cap = 0, p, i, k, n;
	uint64_t min_known = UINT64_MAX, v;
	bool unknown = false, more = false;

	*kept_after = 0;
	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_province_state *ps = &s->provinces[p];
		if (ps->n_revisions == 0)
			continue;
		/* Newest first, down to `since`: only what is asked is read. */
		for (i = ps->n_revisions; i > 0; i--) {
			if ((v = revision_version(s, p, i - 1, load, ctx)) == 0)
				goto unreadable;
			if (v == TALLY_VERSION_UNKNOWN) {
				unknown = true;
				break;
			}
			if (v <= since)
				break;
			if (n_ch == cap) {
				struct change *nc;
				cap = cap ? cap * 2 : 64;
				if ((nc = realloc(ch, cap * sizeof(*ch))) == NULL)
					goto nomem;
				ch = nc;
			}
			ch[n_ch].version = v;
			ch[n_ch].province = p;
			ch[n_ch].index = i - 1;
			n_ch++;
		}
		/* A revision without a version anywhere?  The oldest says. */
		if (!unknown && i > 0 && (v = revision_version(s, p, 0, load,
		    ctx)) == TALLY_VERSION_UNKNOWN)
			unknown = true;
	}
	/*
	 * Revisions without a version came from a snapshot written before
	 * versions were kept, so they precede every revision applied since:
	 * the history answers for the changes after the first known version
	 * less one (after the current version when none is known).
	 */
	if (unknown) {
		for (p = 0; p < e->n_provinces; p++) {
			if (s->provinces[p].n_revisions == 0)
				continue;
			if ((v = first_known(s, p, load, ctx)) == 0)
				goto unreadable;
			if (v < min_known)
				min_known = v;
		}
		*kept_after = min_known != UINT64_MAX ? min_known - 1 :
		    s->version;
	}
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
	/* At most max_rows, cut between versions: a version is whole. */
	if (n_ch > max_rows && max_rows > 0) {
		for (n = max_rows; n < n_ch && ch[n].version ==
		    ch[max_rows - 1].version; n++)
			;
		more = n < n_ch;
		n_ch = n;
	}
	if ((o = json_object()) == NULL || (arr = json_array()) == NULL)
		goto nomem;
	/* Each province's rows, rendered once for its range, then placed. */
	for (k = 0; k < n_ch; k++)
		if (json_array_append_new(arr, json_null()) == -1)
			goto nomem;
	for (p = 0; p < e->n_provinces; p++) {
		size_t lo = SIZE_MAX, hi = 0;
		json_t *revs;
		for (k = 0; k < n_ch; k++)
			if (ch[k].province == p) {
				if (ch[k].index < lo)
					lo = ch[k].index;
				if (ch[k].index > hi)
					hi = ch[k].index;
			}
		if (lo == SIZE_MAX)
			continue;
		if ((hist = tally_render_history_range(s, p, lo, hi, load,
		    ctx)) == NULL)
			goto nomem;
		revs = json_object_get(hist, "revisions");
		for (k = 0; k < n_ch; k++) {
			json_t *row;
			if (ch[k].province != p)
				continue;
			if ((row = json_array_get(revs, ch[k].index - lo)) ==
			    NULL)
				goto nomem;
			json_object_set_new(row, "province",
			    json_string(e->provinces[p].id));
			json_array_set(arr, k, row);
		}
		json_decref(hist);
		hist = NULL;
	}
	json_object_set_new(o, "since", json_integer((json_int_t)since));
	json_object_set_new(o, "version", json_integer((json_int_t)s->version));
	json_object_set_new(o, "kept_after",
	    json_integer((json_int_t)*kept_after));
	json_object_set_new(o, "changes", arr);
	/* Where the next page starts: after the last version given. */
	json_object_set_new(o, "more", json_boolean(more));
	json_object_set_new(o, "next", more ? json_integer((json_int_t)
	    ch[n_ch - 1].version) : json_null());
	arr = NULL;
	goto out;
unreadable:
	tally_error_set(err, TALLY_ERROR_INTERNAL, "internal", NULL,
	    "a revision kept on disk could not be read back; try again");
	goto fail;
nomem:
	tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
	    "out of memory rendering the changes; try again");
fail:
	json_decref(o);
	o = NULL;
out:
	json_decref(hist);
	json_decref(arr);
	free(ch);
	return o;
}
