/* expected.c - the counted share of the expected vote (tally/expected.h). */
#include <stdio.h>

#include <jansson.h>

#include <tally/expected.h>

/* Ballots counted in a province: list votes, blank and invalid. */
static uint64_t
counted(const struct tally_state *s, size_t p)
{
	const struct tally_revision *cur = tally_state_current(s, p);
	uint64_t n;
	size_t i;

	if (cur == NULL)
		return 0;
	n = cur->feed->blank + cur->feed->invalid;
	for (i = 0; i < cur->feed->n_lists; i++)
		n += cur->feed->lists[i].votes;
	return n;
}

static json_t *
member(uint64_t expected, uint64_t count, size_t provinces)
{
	unsigned __int128 q;
	char buf[48];
	json_t *o = json_object();

	/* Hundredths of a percent, half up; 0 expected: nothing to share. */
	q = expected == 0 ? 0 : ((unsigned __int128)count * 20000 + expected) /
	    (2 * (unsigned __int128)expected);
	snprintf(buf, sizeof(buf), "%llu.%02llu", (unsigned long long)(q / 100),
	    (unsigned long long)(q % 100));
	json_object_set_new(o, "ballots", json_integer((json_int_t)expected));
	json_object_set_new(o, "counted", json_integer((json_int_t)count));
	json_object_set_new(o, "counted_share", json_string(buf));
	if (provinces > 0)
		json_object_set_new(o, "provinces",
		    json_integer((json_int_t)provinces));
	json_object_set_new(o, "estimate", json_true());
	return o;
}

json_t *
tally_expected_province(const struct tally_state *s, size_t p)
{
	const struct tally_province *pv = &s->election->provinces[p];

	if (!pv->has_expected)
		return NULL;
	return member(pv->expected_ballots, counted(s, p), 0);
}

json_t *
tally_expected_national(const struct tally_state *s)
{
	const struct tally_election *e = s->election;
	uint64_t exp = 0, cnt = 0;
	size_t p, n = 0;

	for (p = 0; p < e->n_provinces; p++) {
		if (!e->provinces[p].has_expected)
			continue;
		exp += e->provinces[p].expected_ballots;
		cnt += counted(s, p);
		n++;
	}
	return n == 0 ? NULL : member(exp, cnt, n);
}
