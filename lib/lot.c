/* lot.c - an order drawn by lot for a province's tie (see tally/lot.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/lot.h>

#include "tally-private.h"

struct tally_lot *
tally_lot_parse(const struct tally_election *e, size_t province,
    json_t *body, struct tally_error *err)
{
	struct tally_lot *lot;
	const char *key, *id;
	json_t *v, *order;
	char p[48];
	size_t i;

	if (!json_is_object(body)) {
		tally_error_set(err, TALLY_ERROR_INVALID, "wrong_type", "",
		    "a lot is an object {\"revision\": n, \"order\": [list "
		    "ids, first drawn first]}");
		return NULL;
	}
	if ((lot = calloc(1, sizeof(*lot))) == NULL) {
		tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory", NULL,
		    "out of memory; nothing was applied, try again");
		return NULL;
	}
	lot->province = province;
	lot->province_id = e->provinces[province].id;
	json_object_foreach(body, key, v) {
		if (strcmp(key, "revision") != 0 && strcmp(key, "order") != 0) {
			tally_ptr_key(p, sizeof(p), "", key);
			tally_error_set(err, TALLY_ERROR_INVALID,
			    "unknown_field", p, "unknown field \"%.60s\" "
			    "(allowed: revision, order)", key);
			goto fail;
		}
	}
	if ((v = json_object_get(body, "revision")) == NULL) {
		tally_error_set(err, TALLY_ERROR_INVALID, "missing_field",
		    "/revision", "\"revision\" is required: the province's "
		    "revision the lot was drawn for");
		goto fail;
	}
	if (tally_json_uint(v, "/revision", 1, TALLY_REVISION_MAX, &lot->revision,
	    err) == -1)
		goto fail;
	if ((order = json_object_get(body, "order")) == NULL) {
		tally_error_set(err, TALLY_ERROR_INVALID, "missing_field",
		    "/order", "\"order\" is required: the tied lists, first "
		    "drawn first");
		goto fail;
	}
	if (!json_is_array(order) || json_array_size(order) < 2 ||
	    json_array_size(order) > TALLY_LOT_MAX) {
		tally_error_set(err, TALLY_ERROR_INVALID, json_is_array(order) ?
		    "out_of_range" : "wrong_type", "/order", "\"order\" is an "
		    "array of 2 to %d list ids", TALLY_LOT_MAX);
		goto fail;
	}
	json_array_foreach(order, i, v) {
		snprintf(p, sizeof(p), "/order/%zu", i);
		if (!json_is_string(v)) {
			tally_error_set(err, TALLY_ERROR_INVALID, "wrong_type", p,
			    "a list id is a string");
			goto fail;
		}
		if ((id = tally_election_list_id(e, json_string_value(v))) ==
		    NULL) {
			tally_error_set(err, TALLY_ERROR_INVALID, "unknown_list",
			    p, "no list \"%.64s\" in election %s",
			    json_string_value(v), e->id);
			goto fail;
		}
		lot->order[lot->n++] = id;
	}
	return lot;
fail:
	tally_lot_destroy(lot);
	return NULL;
}

void
tally_lot_destroy(struct tally_lot *lot)
{
	if (lot == NULL)
		return;
	free(lot->by);
	free(lot);
}

/*
 * Does the lot order exactly the lists tied in r (f's lists)?  Fills
 * order[] with their indices when it does.
 */
bool
tally_lot_matches(const struct tally_lot *lot, const struct tally_feed *f,
    const struct tally_seat_result *r, size_t *order)
{
	size_t i, j;

	if (r->pending == 0 || r->n_tied != lot->n)
		return false;
	for (i = 0; i < lot->n; i++) {
		if ((order[i] = tally_feed_list_index(f, lot->order[i])) == SIZE_MAX)
			return false;
		for (j = 0; j < r->n_tied && r->tied[j] != order[i]; j++)
			;
		if (j == r->n_tied)
			return false;
	}
	return true;
}
