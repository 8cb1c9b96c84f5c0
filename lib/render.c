/* render.c - the JSON views of a state (see tally/render.h). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/render.h>

double
tally_share(uint64_t part, uint64_t whole)
{
	unsigned __int128 bp;

	if (whole == 0)
		return 0.0;
	/* Basis points rounded half up in integers; the double is display. */
	bp = ((unsigned __int128)part * 20000 + whole) / (2 * (unsigned __int128)whole);
	return (double)(uint64_t)bp / 100.0;
}

/*
 * qsort has no context argument in C11; the state being ranked is parked
 * here for the comparison.  Rendering happens on the one thread that owns
 * the state.
 */
static const struct tally_state *rank_state;

/* Seats desc, votes desc, id asc (DESIGN: the ranking). */
static int
rank_cmp(const void *a, const void *b)
{
	const struct tally_election *e = rank_state->election;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct tally_coalition_total *x = &rank_state->coalitions[i];
	const struct tally_coalition_total *y = &rank_state->coalitions[j];

	if (x->seats != y->seats)
		return x->seats > y->seats ? -1 : 1;
	if (x->votes != y->votes)
		return x->votes > y->votes ? -1 : 1;
	return strcmp(e->coalitions[i].id, e->coalitions[j].id);
}

json_t *
tally_render_leaderboard(const struct tally_state *s, const char *updated_at)
{
	const struct tally_election *e = s->election;
	json_t *o, *el, *seats, *prov, *votes, *arr;
	size_t *order, i;

	if ((order = malloc((e->n_coalitions ? e->n_coalitions : 1) *
	    sizeof(*order))) == NULL)
		return NULL;
	for (i = 0; i < e->n_coalitions; i++)
		order[i] = i;
	rank_state = s;
	qsort(order, e->n_coalitions, sizeof(*order), rank_cmp);
	rank_state = NULL;

	o = json_object();
	el = json_object();
	json_object_set_new(el, "id", json_string(e->id));
	json_object_set_new(el, "name", json_string(e->name));
	json_object_set_new(o, "election", el);
	json_object_set_new(o, "version", json_integer((json_int_t)s->version));
	json_object_set_new(o, "updated_at", updated_at ?
	    json_string(updated_at) : json_null());
	seats = json_object();
	json_object_set_new(seats, "total", json_integer((json_int_t)e->seats_total));
	json_object_set_new(seats, "allocated",
	    json_integer((json_int_t)s->seats_allocated));
	json_object_set_new(seats, "pending",
	    json_integer((json_int_t)s->seats_pending));
	json_object_set_new(seats, "majority",
	    json_integer((json_int_t)(e->seats_total / 2 + 1)));
	json_object_set_new(o, "seats", seats);
	prov = json_object();
	json_object_set_new(prov, "total", json_integer((json_int_t)e->n_provinces));
	json_object_set_new(prov, "reporting",
	    json_integer((json_int_t)s->provinces_reporting));
	json_object_set_new(prov, "final",
	    json_integer((json_int_t)s->provinces_final));
	json_object_set_new(o, "provinces", prov);
	votes = json_object();
	json_object_set_new(votes, "valid", json_integer((json_int_t)s->valid));
	json_object_set_new(votes, "blank", json_integer((json_int_t)s->blank));
	json_object_set_new(votes, "invalid", json_integer((json_int_t)s->invalid));
	json_object_set_new(o, "votes", votes);
	arr = json_array();
	for (i = 0; i < e->n_coalitions; i++) {
		const struct tally_coalition *c = &e->coalitions[order[i]];
		const struct tally_coalition_total *t = &s->coalitions[order[i]];
		json_t *row = json_object();
		json_object_set_new(row, "rank", json_integer((json_int_t)i + 1));
		json_object_set_new(row, "id", json_string(c->id));
		json_object_set_new(row, "name", json_string(c->name));
		json_object_set_new(row, "short", json_string(c->short_name ?
		    c->short_name : c->name));
		json_object_set_new(row, "color", c->color ?
		    json_string(c->color) : json_null());
		json_object_set_new(row, "votes", json_integer((json_int_t)t->votes));
		json_object_set_new(row, "share",
		    json_real(tally_share(t->votes, s->valid)));
		json_object_set_new(row, "seats", json_integer((json_int_t)t->seats));
		json_object_set_new(row, "pending", json_integer((json_int_t)t->pending));
		json_array_append_new(arr, row);
	}
	json_object_set_new(o, "coalitions", arr);
	free(order);
	return o;
}
