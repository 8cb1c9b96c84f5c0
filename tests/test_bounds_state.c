/*
 * test_bounds_state.c - seat bounds kept by the live state.
 *
 * Usage: test_bounds_state ELECTIONS_DIR
 *
 *   a. By difference: over a whole night (Spain 10N provisional, every
 *      province posted partial with an electorate, then corrected), each
 *      coalition's seats_min / seats_max always equal the sum over
 *      provinces of its lists' bounds, the seats of provinces not yet
 *      reporting are counted apart, and the settled count is right.
 *   b. A national threshold couples the provinces: on small random
 *      elections, every outcome of every distribution of the uncounted
 *      ballots (all provinces at once, applied to a fresh state) lies within
 *      the bounds the live state gave, per list and per coalition.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

static uint64_t rng = 0x17b5;

static uint64_t
below(uint64_t n)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return n ? z % n : 0;
}

static void
check_sums(const struct tally_state *s, const char *when)
{
	const struct tally_election *e = s->election;
	uint64_t *mn = calloc(e->n_coalitions, sizeof(*mn));
	uint64_t *mx = calloc(e->n_coalitions, sizeof(*mx));
	uint64_t unrep = 0;
	size_t p, i, settled = 0;
	bool ok = true;

	for (p = 0; p < e->n_provinces; p++) {
		const struct tally_revision *cur = tally_state_current(s, p);
		const struct tally_province_state *ps = &s->provinces[p];
		if (cur == NULL) {
			unrep += e->provinces[p].seats;
			continue;
		}
		for (i = 0; i < cur->feed->n_lists; i++) {
			mn[cur->feed->lists[i].coalition] += ps->bounds.min[i];
			mx[cur->feed->lists[i].coalition] += ps->bounds.max[i];
			ok = ok && ps->bounds.min[i] <= ps->result.seats[i] &&
			    ps->bounds.max[i] >= ps->result.seats[i];
		}
		if (ps->bounds.settled)
			settled++;
	}
	for (i = 0; i < e->n_coalitions; i++)
		ok = ok && s->coalitions[i].seats_min == mn[i] &&
		    s->coalitions[i].seats_max == mx[i];
	CHECK(ok && unrep == s->seats_unreported &&
	    settled == s->provinces_settled, "%s: national bounds add up", when);
	free(mn);
	free(mx);
}

static void
by_difference(const char *dir)
{
	struct tally_diag diag;
	struct tally_election *e;
	struct tally_state *s;
	json_t *root, *results, *entry;
	char path[4096], when[64];
	size_t i, n, round;

	snprintf(path, sizeof(path), "%s/es-2019-11-provisional/election.json",
	    dir);
	tally_diag_init(&diag);
	e = tally_election_load(path, &diag);
	tally_diag_finish(&diag);
	CHECK(e != NULL, "%s loads", path);
	if (e == NULL)
		return;
	s = tally_state_create(e);
	snprintf(path, sizeof(path), "%s/es-2019-11-provisional/results.json",
	    dir);
	root = json_load_file(path, 0, NULL);
	results = json_object_get(root, "results");
	n = json_array_size(results);
	check_sums(s, "empty");
	for (round = 1; round <= 3; round++) {
		for (i = 0; i < n; i++) {
			struct tally_error err;
			struct tally_feed *f;
			json_t *b, *v;
			const char *k;
			uint64_t counted = 0;
			entry = json_array_get(results, (i * 7 + round) % n);
			b = json_deep_copy(entry);
			json_object_foreach(json_object_get(b, "votes"), k, v) {
				/* Earlier rounds: part of the count. */
				json_int_t x = json_integer_value(v) * (json_int_t)round / 3;
				json_integer_set(v, x);
				counted += (uint64_t)x;
			}
			counted += (uint64_t)json_integer_value(json_object_get(b,
			    "blank")) + (uint64_t)json_integer_value(
			    json_object_get(b, "invalid"));
			json_object_set_new(b, "revision", json_integer(
			    (json_int_t)round));
			json_object_set_new(b, "status", json_string(round == 3 &&
			    i % 2 ? "final" : "partial"));
			json_object_set_new(b, "registered", json_integer(
			    (json_int_t)(counted + counted / (50 * round) + i)));
			f = tally_feed_parse(e, NULL, b, "", &err);
			CHECK(f != NULL && tally_state_apply(s, f, "x", &err) == 0,
			    "feed %zu round %zu applies", i, round);
			tally_state_bump(s);
			snprintf(when, sizeof(when), "round %zu feed %zu", round, i);
			check_sums(s, when);
			json_decref(b);
		}
	}
	printf("Spain 10N at the end: %zu of %zu provinces settled\n",
	    s->provinces_settled, e->n_provinces);
	json_decref(root);
	tally_state_destroy(s);
	tally_election_destroy(e);
}

/* Small national-threshold elections, every outcome enumerated. */
#define NP	2
#define NL	3
#define UMAX	2

struct nat {
	struct tally_election	*e;
	uint64_t		 votes[NP][NL], blank[NP], U[NP];
	/* Outcomes: per province and list, fewest firm and most reached. */
	uint32_t		 lo[NP][NL], hi[NP][NL];
	uint64_t		 clo[NL], chi[NL];
	bool			 ok;
};

static struct tally_feed *
feed(struct nat *t, size_t p, const uint64_t *add, uint64_t add_blank,
    bool final, uint64_t registered)
{
	static const char *ids[NL] = { "x", "y", "z" };
	struct tally_error err;
	struct tally_feed *f;
	json_t *b = json_object(), *v = json_object();
	size_t i;

	for (i = 0; i < NL; i++)
		json_object_set_new(v, ids[i], json_integer((json_int_t)
		    (t->votes[p][i] + (add ? add[i] : 0))));
	json_object_set_new(b, "revision", json_integer(1));
	json_object_set_new(b, "votes", v);
	json_object_set_new(b, "blank", json_integer((json_int_t)(t->blank[p] +
	    add_blank)));
	json_object_set_new(b, "status", json_string(final ? "final" :
	    "partial"));
	if (!final)
		json_object_set_new(b, "registered",
		    json_integer((json_int_t)registered));
	f = tally_feed_parse(t->e, p == 0 ? "a" : "b", b, "", &err);
	json_decref(b);
	return f;
}

/* Every distribution of province p's and later provinces' uncounted. */
static void
outcomes(struct nat *t, size_t p, uint64_t (*add)[NL + 1])
{
	uint64_t a, b2, c, bl;

	if (p == NP) {
		struct tally_state *s = tally_state_create(t->e);
		struct tally_error err;
		uint64_t cs[NL] = { 0 }, ch[NL] = { 0 };
		size_t q, i;
		for (q = 0; q < NP; q++)
			if (tally_state_apply(s, feed(t, q, add[q], add[q][NL],
			    true, 0), "x", &err) == -1)
				abort();
		for (q = 0; q < NP; q++) {
			const struct tally_seat_result *r = &s->provinces[q].result;
			for (i = 0; i < NL; i++) {
				uint32_t hi = r->seats[i];
				size_t k;
				for (k = 0; r->pending && k < r->n_tied; k++)
					if (r->tied[k] == i)
						hi++;
				if (r->seats[i] < t->lo[q][i])
					t->lo[q][i] = r->seats[i];
				if (hi > t->hi[q][i])
					t->hi[q][i] = hi;
				cs[i] += r->seats[i];
				ch[i] += hi;
			}
		}
		for (i = 0; i < NL; i++) {
			if (cs[i] < t->clo[i])
				t->clo[i] = cs[i];
			if (ch[i] > t->chi[i])
				t->chi[i] = ch[i];
		}
		tally_state_destroy(s);
		return;
	}
	for (a = 0; a <= t->U[p]; a++)
		for (b2 = 0; a + b2 <= t->U[p]; b2++)
			for (c = 0; a + b2 + c <= t->U[p]; c++)
				for (bl = 0; a + b2 + c + bl <= t->U[p]; bl++) {
					add[p][0] = a;
					add[p][1] = b2;
					add[p][2] = c;
					add[p][NL] = bl;
					outcomes(t, p + 1, add);
				}
}

static void
national(void)
{
	static const char def[] = "{\"id\":\"nat\",\"name\":\"N\","
	    "\"allocation\":{\"method\":\"dhondt\",\"threshold\":{\"percent\":"
	    "\"20\",\"of\":\"valid\",\"scope\":\"national\"},\"ties\":\"votes\"},"
	    "\"coalitions\":[{\"id\":\"x\",\"name\":\"X\"},{\"id\":\"y\","
	    "\"name\":\"Y\"},{\"id\":\"z\",\"name\":\"Z\"}],\"provinces\":["
	    "{\"id\":\"a\",\"name\":\"A\",\"seats\":3},{\"id\":\"b\","
	    "\"name\":\"B\",\"seats\":2}]}";
	struct tally_diag diag;
	int round, open_seen = 0;

	tally_diag_init(&diag);
	for (round = 0; round < 40; round++) {
		struct nat t;
		struct tally_state *s;
		struct tally_error err;
		uint64_t add[NP][NL + 1];
		size_t p, i;
		bool ok = true;

		memset(&t, 0, sizeof(t));
		t.e = tally_election_loadb(def, sizeof(def) - 1, "nat", &diag);
		if (t.e == NULL)
			abort();
		s = tally_state_create(t.e);
		for (p = 0; p < NP; p++) {
			uint64_t counted = 0;
			for (i = 0; i < NL; i++) {
				t.votes[p][i] = below(12);
				counted += t.votes[p][i];
				t.lo[p][i] = UINT32_MAX;
			}
			t.blank[p] = below(3);
			t.U[p] = below(UMAX + 1);
			if (tally_state_apply(s, feed(&t, p, NULL, 0, false,
			    counted + t.blank[p] + t.U[p]), "x", &err) == -1)
				abort();
		}
		for (i = 0; i < NL; i++) {
			t.clo[i] = UINT64_MAX;
			if (s->coalitions[i].open)
				open_seen++;
		}
		outcomes(&t, 0, add);
		for (p = 0; p < NP; p++)
			for (i = 0; i < NL; i++)
				ok = ok && s->provinces[p].bounds.min[i] <=
				    t.lo[p][i] && s->provinces[p].bounds.max[i] >=
				    t.hi[p][i];
		for (i = 0; i < NL; i++)
			ok = ok && s->coalitions[i].seats_min <= t.clo[i] &&
			    s->coalitions[i].seats_max >= t.chi[i];
		CHECK(ok, "national threshold round %d: every outcome within "
		    "the bounds", round);
		tally_state_destroy(s);
		tally_election_destroy(t.e);
	}
	CHECK(open_seen > 0, "some coalitions' national fate was open");
	tally_diag_finish(&diag);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s ELECTIONS_DIR\n", argv[0]);
		return 2;
	}
	by_difference(argv[1]);
	national();
	return check_done("bounds-state");
}
