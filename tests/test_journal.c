/*
 * test_journal.c - the journal record codec: encode, scan, recovery
 * classification, CRC32C and replay (tally/journal.h).
 *
 * The recovery rules are what keep acknowledged results: a record that was
 * being written when the process died can only be the last one, and is a
 * torn tail (cut off); a damaged record with data after it is corruption
 * (refuse to start).  So:
 *
 *  - a journal cut at any byte of its last two records scans as the whole
 *    records before the cut, then TORN (END exactly at a boundary), never
 *    CORRUPT and never a record that was not written;
 *  - any one-bit flip in a record in the middle is CORRUPT: never accepted,
 *    and never taken for a torn tail (which would silently drop every
 *    acknowledged record after it);
 *  - a one-bit flip in the last record, or zero bytes after the records
 *    (a file extended but not written), is TORN;
 *  - replaying the records gives the same state as applying the feeds.
 *
 * Every scan runs on a buffer allocated to its exact length, so that an
 * over-read shows under ASan.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "check.h"

/* ---- a small election -------------------------------------------------- */

static const char election_json[] =
    "{\"id\": \"j-test\", \"name\": \"Journal test\","
    " \"allocation\": {\"method\": \"dhondt\", \"threshold\":"
    "  {\"percent\": \"3\", \"of\": \"valid\", \"scope\": \"province\"}},"
    " \"coalitions\": ["
    "  {\"id\": \"red\", \"name\": \"Red\", \"aliases\": [\"r1\"]},"
    "  {\"id\": \"blue\", \"name\": \"Blue\"},"
    "  {\"id\": \"green\", \"name\": \"Green\"},"
    "  {\"id\": \"ochre\", \"name\": \"Ochre \\u00e9\"}],"
    " \"provinces\": ["
    "  {\"id\": \"n\", \"name\": \"North\", \"seats\": 7},"
    "  {\"id\": \"s\", \"name\": \"South\", \"seats\": 5},"
    "  {\"id\": \"e\", \"name\": \"East\", \"seats\": 3},"
    "  {\"id\": \"w\", \"name\": \"West\", \"seats\": 11}]}";

#define NRECORDS	12

struct fixture {
	struct tally_election	*e;
	struct tally_state	*direct;	/* feeds applied directly */
	char			*buf;		/* NRECORDS records back to back */
	size_t			 len;
	size_t			 off[NRECORDS];	/* where each record starts */
	size_t			 size[NRECORDS];
	char			*payload[NRECORDS];	/* copies */
	size_t			 plen[NRECORDS];
	uint64_t		 seq0;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t
rng(void)
{
	/* xorshift64*: deterministic, so a failure reproduces. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static struct tally_feed *
make_feed(const struct tally_election *e, const char *province,
    uint64_t revision, bool note)
{
	static const char *const lists[] = { "r1", "blue", "green", "ochre" };
	struct tally_error err;
	struct tally_feed *f;
	json_t *body, *votes;
	size_t i;

	body = json_object();
	votes = json_object();
	for (i = 0; i < 4; i++)
		if (i < 2 || rng() % 3 != 0)
			json_object_set_new(votes, lists[i],
			    json_integer((json_int_t)(rng() % 500000)));
	json_object_set_new(body, "province", json_string(province));
	json_object_set_new(body, "revision", json_integer((json_int_t)revision));
	json_object_set_new(body, "votes", votes);
	json_object_set_new(body, "blank", json_integer((json_int_t)(rng() % 900)));
	json_object_set_new(body, "invalid", json_integer((json_int_t)(rng() % 90)));
	switch (rng() % 3) {	/* status is optional (partial) */
	case 0:	json_object_set_new(body, "status", json_string("final")); break;
	case 1:	json_object_set_new(body, "status", json_string("partial"));
		break;
	}
	if (rng() % 2) {
		json_t *st = json_object();
		uint64_t total = 1 + rng() % 5000;
		json_object_set_new(st, "reporting",
		    json_integer((json_int_t)(rng() % (total + 1))));
		json_object_set_new(st, "total", json_integer((json_int_t)total));
		json_object_set_new(body, "stations", st);
	}
	if (rng() % 2)
		json_object_set_new(body, "reported_at", json_string(rng() % 2 ?
		    "2019-04-28T21:30:00Z" : "2019-04-28T23:30:00.25+02:00"));
	if (note) {
		/* Every kind of escape the canonical form can hold. */
		static const char *const notes[] = {
		    "recount \"quoted\", \\ and \xc3\xa9",
		    "line\nbreak\ttab\x01\x1f / slash \xe2\x82\xac \xf0\x9f\x98\x80",
		    "",
		    "plain note" };
		json_object_set_new(body, "note",
		    json_string(notes[rng() % 4]));
	}
	f = tally_feed_parse(e, NULL, body, "/results/0", &err);
	json_decref(body);
	CHECK(f != NULL, "feed %s/%llu parses: %s", province,
	    (unsigned long long)revision, f == NULL ? err.message : "");
	return f;
}

static bool
fixture_init(struct fixture *fx)
{
	static const char *const provinces[] = { "n", "s", "e", "w" };
	uint64_t rev[4] = { 0, 0, 0, 0 };
	struct tally_diag d;
	struct tally_error err;
	size_t r, cap = 0;

	memset(fx, 0, sizeof(*fx));
	fx->seq0 = 41;
	tally_diag_init(&d);
	fx->e = tally_election_loadb(election_json, strlen(election_json),
	    "mem", &d);
	CHECK(fx->e != NULL, "the test election loads (%zu problems: %s)",
	    d.count, d.count ? d.msgs[0] : "");
	tally_diag_finish(&d);
	if (fx->e == NULL)
		return false;
	fx->direct = tally_state_create(fx->e);
	CHECK(fx->direct != NULL, "state");
	if (fx->direct == NULL)
		return false;

	for (r = 0; r < NRECORDS; r++) {
		/* One to three provinces per record, each a new revision. */
		struct tally_feed *feeds[3];
		size_t n = 1 + (size_t)(rng() % 3), k;
		bool used[4] = { false, false, false, false };
		char received_at[40], *rec;
		size_t reclen;
		uint64_t version = fx->direct->version + 1;

		for (k = 0; k < n; k++) {
			size_t p;
			do
				p = (size_t)(rng() % 4);
			while (used[p]);
			used[p] = true;
			rev[p] += 1 + rng() % 3;
			feeds[k] = make_feed(fx->e, provinces[p], rev[p],
			    r % 3 == 1);
			if (feeds[k] == NULL)
				return false;
		}
		snprintf(received_at, sizeof(received_at),
		    "2019-04-28T2%zu:%02zu:00Z", r / 6, (r * 7) % 60);
		CHECK(tally_journal_encode(fx->seq0 + r, version, received_at,
		    feeds, n, &rec, &reclen) == 0, "encode record %zu", r);
		if (cap < fx->len + reclen) {
			cap = (fx->len + reclen) * 2;
			fx->buf = realloc(fx->buf, cap);
			if (fx->buf == NULL)
				abort();
		}
		memcpy(fx->buf + fx->len, rec, reclen);
		fx->off[r] = fx->len;
		fx->size[r] = reclen;
		fx->len += reclen;
		CHECK(reclen > TALLY_JOURNAL_HEADER, "record %zu has a payload", r);
		fx->plen[r] = reclen - TALLY_JOURNAL_HEADER;
		fx->payload[r] = malloc(fx->plen[r] + 1);
		memcpy(fx->payload[r], rec + TALLY_JOURNAL_HEADER, fx->plen[r]);
		fx->payload[r][fx->plen[r]] = '\0';
		free(rec);

		/* Apply the same feeds directly, as the daemon does. */
		for (k = 0; k < n; k++) {
			enum tally_check chk;
			CHECK(tally_state_check(fx->direct, feeds[k], &chk,
			    &err) == 0 && chk == TALLY_CHECK_NEW,
			    "record %zu feed %zu is new", r, k);
			CHECK(tally_state_apply(fx->direct, feeds[k], received_at,
			    &err) == 0, "apply: %s", err.message);
		}
		tally_state_bump(fx->direct);
		CHECK_EQ_U(fx->direct->version, version, "version after record %zu",
		    r);
	}
	return true;
}

static void
fixture_finish(struct fixture *fx)
{
	size_t r;

	for (r = 0; r < NRECORDS; r++)
		free(fx->payload[r]);
	free(fx->buf);
	tally_state_destroy(fx->direct);
	tally_election_destroy(fx->e);
}

/* ---- scanning ------------------------------------------------------------ */

/*
 * Scan `data` to the first non-RECORD result.  Checks every record returned
 * against the fixture (record i at fx->off[i], same seq and payload); stops
 * counting at the first one that differs.  Returns the final result; *nrec
 * is how many records were returned, *bad whether any of them was wrong,
 * *stop the offset scan stopped at.
 */
static enum tally_scan
scan_all(const struct fixture *fx, const char *data, size_t len, size_t *nrec,
    bool *bad, size_t *stop, char *why, size_t whylen)
{
	struct tally_record rec;
	size_t off = 0, guard = 0;
	enum tally_scan sc;
	char *copy;

	/* Exactly len bytes on the heap: over-reads show under ASan. */
	copy = malloc(len ? len : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data, len);
	*nrec = 0;
	*bad = false;
	why[0] = '\0';
	while ((sc = tally_journal_scan(copy, len, &off, &rec, why, whylen)) ==
	    TALLY_SCAN_RECORD) {
		size_t i = *nrec;
		if (i >= NRECORDS || rec.seq != fx->seq0 + i ||
		    rec.offset != fx->off[i] || rec.size != fx->size[i] ||
		    rec.len != fx->plen[i] ||
		    rec.payload != copy + fx->off[i] + TALLY_JOURNAL_HEADER ||
		    memcmp(rec.payload, fx->payload[i], rec.len) != 0)
			*bad = true;
		(*nrec)++;
		if (off != rec.offset + rec.size || ++guard > 10 * NRECORDS) {
			*bad = true;
			break;
		}
	}
	*stop = off;
	free(copy);
	return sc;
}

static const char *
scan_name(enum tally_scan sc)
{
	switch (sc) {
	case TALLY_SCAN_RECORD:		return "RECORD";
	case TALLY_SCAN_END:		return "END";
	case TALLY_SCAN_TORN:		return "TORN";
	case TALLY_SCAN_CORRUPT:	return "CORRUPT";
	}
	return "?";
}

static void
check_whole(const struct fixture *fx)
{
	size_t nrec, stop;
	bool bad;
	char why[128];
	enum tally_scan sc;
	size_t r;

	sc = scan_all(fx, fx->buf, fx->len, &nrec, &bad, &stop, why, sizeof(why));
	CHECK(sc == TALLY_SCAN_END, "whole journal ends cleanly, not %s (%s)",
	    scan_name(sc), why);
	CHECK_EQ_U(nrec, NRECORDS, "every record scanned back");
	CHECK(!bad, "every record is the one written");
	CHECK_EQ_U(stop, fx->len, "scan stops at the end");

	/* Each payload is the documented JSON. */
	for (r = 0; r < NRECORDS; r++) {
		json_error_t jerr;
		json_t *o = json_loadb(fx->payload[r], fx->plen[r], 0, &jerr);
		CHECK(o != NULL, "record %zu payload is JSON: %s", r, jerr.text);
		if (o == NULL)
			continue;
		CHECK(json_integer_value(json_object_get(o, "version")) ==
		    (json_int_t)(r + 1), "record %zu version", r);
		CHECK(json_is_string(json_object_get(o, "received_at")),
		    "record %zu received_at", r);
		CHECK(json_is_array(json_object_get(o, "results")) &&
		    json_array_size(json_object_get(o, "results")) >= 1,
		    "record %zu results", r);
		json_decref(o);
	}
	/* The header fields, little-endian. */
	{
		const unsigned char *p = (const unsigned char *)fx->buf + fx->off[1];
		CHECK(memcmp(p, "TLJ1", 4) == 0, "magic is \"TLJ1\" on disk");
		CHECK_EQ_U((uint32_t)p[8] | (uint32_t)p[9] << 8 |
		    (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24, fx->plen[1],
		    "length field");
		CHECK_EQ_U(p[12], (fx->seq0 + 1) & 0xff, "seq, low byte first");
		CHECK_EQ_U((uint32_t)p[4] | (uint32_t)p[5] << 8 |
		    (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24,
		    tally_crc32c(0, p + 8, 12 + fx->plen[1]),
		    "CRC32C of bytes 8.. and the payload");
	}
	/* An empty journal is a clean end. */
	sc = scan_all(fx, fx->buf, 0, &nrec, &bad, &stop, why, sizeof(why));
	CHECK(sc == TALLY_SCAN_END && nrec == 0, "empty journal: END, not %s",
	    scan_name(sc));
}

/*
 * Cut the journal at every byte of its last two records: the records before
 * the cut come back whole, then END (at a boundary) or TORN.  Also with the
 * missing bytes replaced by zeros (a file extended but not written).
 */
static void
check_truncation(const struct fixture *fx)
{
	size_t from = fx->off[NRECORDS - 2], cut, r;
	unsigned long wrong = 0, corrupt = 0, zwrong = 0;
	char *z = malloc(fx->len);

	if (z == NULL)
		abort();
	for (cut = from; cut <= fx->len; cut++) {
		size_t nrec, stop, whole = 0;
		bool bad, boundary = false;
		char why[128];
		enum tally_scan sc, want;

		for (r = 0; r < NRECORDS; r++) {
			if (fx->off[r] + fx->size[r] <= cut)
				whole = r + 1;
			if (fx->off[r] + fx->size[r] == cut)
				boundary = true;
		}
		want = boundary ? TALLY_SCAN_END : TALLY_SCAN_TORN;
		sc = scan_all(fx, fx->buf, cut, &nrec, &bad, &stop, why,
		    sizeof(why));
		if (sc == TALLY_SCAN_CORRUPT)
			corrupt++;
		if (sc != want || nrec != whole || bad ||
		    stop != (whole ? fx->off[whole - 1] + fx->size[whole - 1] :
		    0)) {
			if (wrong++ < 5)
				fprintf(stderr, "cut at %zu: %s after %zu records "
				    "(want %s after %zu)%s: %s\n", cut,
				    scan_name(sc), nrec, scan_name(want), whole,
				    bad ? ", a wrong record" : "", why);
		}

		/* The same cut, the rest of the file zeros. */
		if (cut == fx->len)
			continue;
		memcpy(z, fx->buf, cut);
		memset(z + cut, 0, fx->len - cut);
		sc = scan_all(fx, z, fx->len, &nrec, &bad, &stop, why,
		    sizeof(why));
		if (sc != TALLY_SCAN_TORN || nrec != whole || bad) {
			if (zwrong++ < 5)
				fprintf(stderr, "cut at %zu + zeros: %s after %zu "
				    "records (want TORN after %zu)%s: %s\n", cut,
				    scan_name(sc), nrec, whole,
				    bad ? ", a wrong record" : "", why);
		}
	}
	free(z);
	CHECK(wrong == 0, "%lu of %zu cuts in the last two records scan "
	    "wrongly", wrong, fx->len - from + 1);
	CHECK(corrupt == 0, "%lu cuts scan as CORRUPT", corrupt);
	CHECK(zwrong == 0, "%lu cuts followed by zeros scan wrongly", zwrong);
}

/* Zero bytes after the last record: TORN, every record kept. */
static void
check_zero_tail(const struct fixture *fx)
{
	static const size_t tails[] = { 1, 3, 19, 20, 21, 64, 4096, 65536 };
	size_t i;

	for (i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		char *b = calloc(1, fx->len + tails[i]), why[128];
		size_t nrec, stop;
		bool bad;
		enum tally_scan sc;

		if (b == NULL)
			abort();
		memcpy(b, fx->buf, fx->len);
		sc = scan_all(fx, b, fx->len + tails[i], &nrec, &bad, &stop, why,
		    sizeof(why));
		CHECK(sc == TALLY_SCAN_TORN, "%zu zero bytes after the records: "
		    "TORN, not %s (%s)", tails[i], scan_name(sc), why);
		CHECK(nrec == NRECORDS && !bad && stop == fx->len,
		    "%zu zero bytes after the records: all %d records kept (%zu)",
		    tails[i], NRECORDS, nrec);
		free(b);
	}
}

static const char *
field_of(size_t byte)
{
	if (byte < 4)
		return "magic";
	if (byte < 8)
		return "crc";
	if (byte < 12)
		return "length";
	if (byte < 20)
		return "seq";
	return "payload";
}

/*
 * Flip every bit of record `r`, one at a time.  The record must never be
 * accepted, the records before it must come back, and the result must be
 * `want` (CORRUPT for a record in the middle, TORN for the last).
 */
static void
check_flips(const struct fixture *fx, size_t r, enum tally_scan want)
{
	char *b = malloc(fx->len);
	size_t bit, nbits = fx->size[r] * 8;
	unsigned long accepted = 0, wrong = 0, lost = 0;
	unsigned long by_field[5][4];
	static const char *const fields[] = { "magic", "crc", "length", "seq",
	    "payload" };
	size_t k;

	memset(by_field, 0, sizeof(by_field));
	if (b == NULL)
		abort();
	memcpy(b, fx->buf, fx->len);
	for (bit = 0; bit < nbits; bit++) {
		size_t byte = bit / 8, nrec, stop;
		bool bad;
		char why[128];
		enum tally_scan sc;

		b[fx->off[r] + byte] ^= (char)(1 << (bit % 8));
		sc = scan_all(fx, b, fx->len, &nrec, &bad, &stop, why,
		    sizeof(why));
		b[fx->off[r] + byte] ^= (char)(1 << (bit % 8));

		for (k = 0; k < 5; k++)
			if (strcmp(fields[k], field_of(byte)) == 0)
				break;
		by_field[k][sc]++;
		if (bad || nrec > r) {
			/* The flipped record, or one after it, was accepted
			 * as written: a wrong record. */
			if (accepted++ < 5)
				fprintf(stderr, "record %zu bit %zu (%s): %zu "
				    "records accepted, %s\n", r, bit,
				    field_of(byte), nrec, scan_name(sc));
		} else if (nrec < r) {
			if (lost++ < 5)
				fprintf(stderr, "record %zu bit %zu (%s): only "
				    "%zu records before it kept\n", r, bit,
				    field_of(byte), nrec);
		} else if (sc != want) {
			if (wrong++ < 8)
				fprintf(stderr, "record %zu of %d, bit %zu (%s "
				    "byte %zu, bit %zu): %s, want %s (%s)\n", r,
				    NRECORDS, bit, field_of(byte), byte, bit % 8,
				    scan_name(sc), scan_name(want), why);
		}
	}
	free(b);
	fprintf(stderr, "flips in record %zu (%s, %zu bits), results by field:\n",
	    r, want == TALLY_SCAN_TORN ? "last" : "middle", nbits);
	for (k = 0; k < 5; k++)
		fprintf(stderr, "  %-8s RECORD %lu END %lu TORN %lu CORRUPT %lu\n",
		    fields[k], by_field[k][TALLY_SCAN_RECORD],
		    by_field[k][TALLY_SCAN_END], by_field[k][TALLY_SCAN_TORN],
		    by_field[k][TALLY_SCAN_CORRUPT]);
	CHECK(accepted == 0, "%lu one-bit flips of record %zu were accepted as "
	    "a valid record", accepted, r);
	CHECK(lost == 0, "%lu flips of record %zu lost records before it", lost,
	    r);
	CHECK(wrong == 0, "%lu of %zu one-bit flips of record %zu (%s) scan "
	    "as something else than %s", wrong, nbits, r,
	    want == TALLY_SCAN_TORN ? "the last" : "in the middle",
	    scan_name(want));
}

/* A few hand-made bad records. */
static void
check_crafted(const struct fixture *fx)
{
	size_t r = NRECORDS / 2, nrec, stop;
	char *b = malloc(fx->len), why[128];
	bool bad;
	enum tally_scan sc;

	if (b == NULL)
		abort();
	/* A middle record's length set to an impossible value. */
	memcpy(b, fx->buf, fx->len);
	memset(b + fx->off[r] + 8, 0xff, 4);
	sc = scan_all(fx, b, fx->len, &nrec, &bad, &stop, why, sizeof(why));
	CHECK(sc == TALLY_SCAN_CORRUPT && nrec == r && stop == fx->off[r],
	    "impossible length in the middle: CORRUPT at the record, not %s "
	    "after %zu", scan_name(sc), nrec);
	/* A middle record zeroed (a lost block): not the end of the data. */
	memcpy(b, fx->buf, fx->len);
	memset(b + fx->off[r], 0, fx->size[r]);
	sc = scan_all(fx, b, fx->len, &nrec, &bad, &stop, why, sizeof(why));
	CHECK(sc == TALLY_SCAN_CORRUPT && nrec == r && stop == fx->off[r],
	    "zeroed record in the middle: CORRUPT, not %s after %zu (%s)",
	    scan_name(sc), nrec, why);
	/* Garbage that is not zeros after the last record: data follows a
	 * bad "record", so it is corrupt rather than silently dropped. */
	{
		char *g = malloc(fx->len + 40);
		size_t i;
		if (g == NULL)
			abort();
		memcpy(g, fx->buf, fx->len);
		for (i = 0; i < 40; i++)
			g[fx->len + i] = (char)('a' + i % 26);
		sc = scan_all(fx, g, fx->len + 40, &nrec, &bad, &stop, why,
		    sizeof(why));
		CHECK(nrec == NRECORDS && !bad && sc != TALLY_SCAN_RECORD &&
		    sc != TALLY_SCAN_END, "40 bytes of text after the records: "
		    "%s after %zu records", scan_name(sc), nrec);
		free(g);
	}
	free(b);
}

/* ---- CRC32C ---------------------------------------------------------------- */

static uint32_t
crc_bitwise(uint32_t crc, const unsigned char *p, size_t len)
{
	int k;

	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78U : crc >> 1;
	}
	return ~crc;
}

static void
check_crc(void)
{
	unsigned char b[512 + 8];
	size_t i, len, align, split;

	CHECK_EQ_U(tally_crc32c(0, "123456789", 9), 0xe3069283U,
	    "CRC32C check value");
	memset(b, 0, 32);
	CHECK_EQ_U(tally_crc32c(0, b, 32), 0x8a9136aaU, "32 zero bytes (RFC 3720)");
	memset(b, 0xff, 32);
	CHECK_EQ_U(tally_crc32c(0, b, 32), 0x62a8ab43U, "32 0xff bytes (RFC 3720)");
	for (i = 0; i < 32; i++)
		b[i] = (unsigned char)i;
	CHECK_EQ_U(tally_crc32c(0, b, 32), 0x46dd794eU,
	    "32 incrementing bytes (RFC 3720)");
	for (i = 0; i < 32; i++)
		b[i] = (unsigned char)(31 - i);
	CHECK_EQ_U(tally_crc32c(0, b, 32), 0x113fdb5cU,
	    "32 decrementing bytes (RFC 3720)");
	CHECK_EQ_U(tally_crc32c(0, "", 0), 0, "empty input");
	CHECK_EQ_U(tally_crc32c(0x12345678, "", 0), 0x12345678,
	    "empty input keeps the running value");

	/* Slicing-by-8 against the bitwise definition: every length and
	 * alignment, and chaining at every split point. */
	for (i = 0; i < sizeof(b); i++)
		b[i] = (unsigned char)rng();
	for (align = 0; align < 8; align++)
		for (len = 0; len + align <= sizeof(b); len += 1 + len / 16) {
			uint32_t want = crc_bitwise(0, b + align, len);
			if (tally_crc32c(0, b + align, len) != want) {
				CHECK(0, "crc of %zu bytes at alignment %zu",
				    len, align);
				break;
			}
		}
	len = 100;
	for (split = 0; split <= len; split++) {
		uint32_t c = tally_crc32c(0, b, split);
		c = tally_crc32c(c, b + split, len - split);
		if (c != crc_bitwise(0, b, len)) {
			CHECK(0, "crc chained at %zu differs", split);
			break;
		}
	}
	CHECK(1, "crc comparisons ran");
}

/* ---- replay ------------------------------------------------------------------ */

static char *
dump(json_t *o)
{
	char *s = o ? json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

static void
check_same_state(const struct tally_state *a, const struct tally_state *b,
    const char *what)
{
	char *x, *y;
	size_t p;

	CHECK_EQ_U(a->version, b->version, "%s: version", what);
	x = dump(tally_render_leaderboard(a, "2019-04-29T00:00:00Z"));
	y = dump(tally_render_leaderboard(b, "2019-04-29T00:00:00Z"));
	CHECK(x && y && strcmp(x, y) == 0, "%s: leaderboards differ:\n%s\n%s",
	    what, x ? x : "(null)", y ? y : "(null)");
	free(x);
	free(y);
	x = dump(tally_render_provinces(a));
	y = dump(tally_render_provinces(b));
	CHECK(x && y && strcmp(x, y) == 0, "%s: provinces differ", what);
	free(x);
	free(y);
	for (p = 0; p < a->election->n_provinces; p++) {
		x = dump(tally_render_history(a, p, NULL, NULL));
		y = dump(tally_render_history(b, p, NULL, NULL));
		CHECK(x && y && strcmp(x, y) == 0, "%s: history of %s differs:"
		    "\n%s\n%s", what, a->election->provinces[p].id,
		    x ? x : "(null)", y ? y : "(null)");
		free(x);
		free(y);
		x = dump(tally_render_province(a, p, true));
		y = dump(tally_render_province(b, p, true));
		CHECK(x && y && strcmp(x, y) == 0, "%s: province %s differs",
		    what, a->election->provinces[p].id);
		free(x);
		free(y);
	}
}

static void
check_apply(const struct fixture *fx)
{
	struct tally_state *s = tally_state_create(fx->e);
	struct tally_error err;
	size_t off = 0, r = 0;
	struct tally_record rec;
	char why[128];
	uint64_t v;

	CHECK(s != NULL, "fresh state");
	if (s == NULL)
		return;
	while (tally_journal_scan(fx->buf, fx->len, &off, &rec, why,
	    sizeof(why)) == TALLY_SCAN_RECORD) {
		CHECK(tally_journal_apply(s, rec.payload, rec.len, &err) == 0,
		    "apply record %zu: %s: %s", r, err.code, err.message);
		CHECK_EQ_U(s->version, r + 1, "version after record %zu", r);
		r++;
	}
	CHECK_EQ_U(r, NRECORDS, "all records replayed");
	check_same_state(s, fx->direct, "replayed vs applied");

	/* A record applied twice repeats revisions: refused, state kept. */
	v = s->version;
	CHECK(tally_journal_apply(s, fx->payload[NRECORDS - 1],
	    fx->plen[NRECORDS - 1], &err) == -1, "a record replayed twice is "
	    "refused");
	CHECK_EQ_U(s->version, v, "version unchanged by a refused record");
	check_same_state(s, fx->direct, "after a refused repeat");

	/* Payloads that are not records. */
	{
		static const char *const bad[] = { "", "{", "[]", "{}",
		    "{\"version\":1,\"received_at\":\"x\"}",
		    "{\"version\":-1,\"received_at\":\"2019-04-28T00:00:00Z\","
		    "\"results\":[]}",
		    "{\"version\":99,\"results\":[]}",
		    "{\"version\":99,\"received_at\":\"2019-04-28T00:00:00Z\","
		    "\"results\":[{\"province\":\"zz\",\"revision\":99,"
		    "\"votes\":{}}]}" };
		size_t i;
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			CHECK(tally_journal_apply(s, bad[i], strlen(bad[i]),
			    &err) == -1, "bad payload %zu refused: %s", i, bad[i]);
			CHECK_EQ_U(s->version, v, "bad payload %zu: version", i);
		}
	}
	tally_state_destroy(s);

	/* Replaying only a prefix (what is left after a torn tail) gives the
	 * state as it was after that record. */
	s = tally_state_create(fx->e);
	off = 0;
	for (r = 0; r < NRECORDS / 2; r++) {
		CHECK(tally_journal_scan(fx->buf, fx->len, &off, &rec, why,
		    sizeof(why)) == TALLY_SCAN_RECORD, "prefix record %zu", r);
		CHECK(tally_journal_apply(s, rec.payload, rec.len, &err) == 0,
		    "prefix apply %zu", r);
	}
	CHECK_EQ_U(s->version, NRECORDS / 2, "prefix version");
	tally_state_destroy(s);
}

/*
 * Replay takes a fast path for payloads exactly as encoded; anything else
 * goes through the general JSON parser.  Both must build the same state,
 * down to each feed's canonical bytes (which decide what a retry is).
 */
static void
check_fast_vs_general(const struct fixture *fx)
{
	struct tally_state *a = tally_state_create(fx->e);
	struct tally_state *b = tally_state_create(fx->e);
	struct tally_error err;
	size_t r, p;

	if (a == NULL || b == NULL)
		abort();
	for (r = 0; r < NRECORDS; r++) {
		/* "{ " instead of "{": the same JSON, not the encoded form. */
		char *alt = malloc(fx->plen[r] + 2);
		if (alt == NULL)
			abort();
		alt[0] = '{';
		alt[1] = ' ';
		memcpy(alt + 2, fx->payload[r] + 1, fx->plen[r] - 1);
		CHECK(tally_journal_apply(a, fx->payload[r], fx->plen[r],
		    &err) == 0, "record %zu, fast path: %s", r, err.message);
		CHECK(tally_journal_apply(b, alt, fx->plen[r] + 1, &err) == 0,
		    "record %zu, general path: %s", r, err.message);
		free(alt);
	}
	check_same_state(a, b, "fast vs general replay");
	/* The fast reader takes every feed as encoded (else replay is slow). */
	for (p = 0; p < fx->e->n_provinces; p++) {
		const struct tally_province_state *ps = &fx->direct->provinces[p];
		size_t i, used = 0;
		for (i = 0; i < ps->n_revisions; i++) {
			const struct tally_feed *f = ps->revisions[i].feed;
			struct tally_feed *g = tally_feed_read_canonical(fx->e,
			    f->canonical, f->canonical_len, &used);
			CHECK(g != NULL && used == f->canonical_len &&
			    g->canonical_len == f->canonical_len &&
			    memcmp(g->canonical, f->canonical, used) == 0,
			    "the fast reader takes %s", f->canonical);
			tally_feed_destroy(g);
		}
	}
	check_same_state(a, fx->direct, "fast replay vs applied");
	for (p = 0; p < fx->e->n_provinces; p++) {
		const struct tally_revision *x = tally_state_current(a, p);
		const struct tally_revision *y = tally_state_current(b, p);
		const struct tally_revision *z = tally_state_current(fx->direct, p);
		size_t i;
		CHECK((x == NULL) == (z == NULL) && (y == NULL) == (z == NULL),
		    "province %zu reporting", p);
		if (x == NULL || y == NULL || z == NULL)
			continue;
		CHECK(x->feed->canonical_len == z->feed->canonical_len &&
		    memcmp(x->feed->canonical, z->feed->canonical,
		    z->feed->canonical_len) == 0, "province %zu: canonical bytes "
		    "after fast replay:\n%s\n%s", p, x->feed->canonical,
		    z->feed->canonical);
		CHECK(y->feed->canonical_len == z->feed->canonical_len &&
		    memcmp(y->feed->canonical, z->feed->canonical,
		    z->feed->canonical_len) == 0, "province %zu: canonical bytes "
		    "after general replay", p);
		CHECK(strcmp(x->received_at, z->received_at) == 0,
		    "province %zu received_at", p);
		CHECK((x->feed->note == NULL) == (z->feed->note == NULL) &&
		    (z->feed->note == NULL ||
		    strcmp(x->feed->note, z->feed->note) == 0),
		    "province %zu note after fast replay", p);
		CHECK(x->feed->n_lists == z->feed->n_lists, "lists");
		for (i = 0; i < x->feed->n_lists && i < z->feed->n_lists; i++)
			CHECK(strcmp(x->feed->lists[i].id, z->feed->lists[i].id) ==
			    0 && x->feed->lists[i].votes == z->feed->lists[i].votes,
			    "province %zu list %zu", p, i);
		CHECK(x->feed->has_stations == z->feed->has_stations &&
		    x->feed->stations_reporting == z->feed->stations_reporting &&
		    x->feed->stations_total == z->feed->stations_total &&
		    x->feed->status == z->feed->status &&
		    strcmp(x->feed->reported_at, z->feed->reported_at) == 0 &&
		    x->feed->blank == z->feed->blank &&
		    x->feed->invalid == z->feed->invalid,
		    "province %zu other fields after fast replay", p);
	}
	tally_state_destroy(a);
	tally_state_destroy(b);
}

static void
check_encode_empty(const struct fixture *fx)
{
	char *rec, why[128];
	size_t len, off = 0;
	struct tally_record r;
	struct tally_feed *f;

	/* Sequence numbers round-trip through all 64 bits. */
	f = make_feed(fx->e, "n", 1, false);
	if (f == NULL)
		return;
	CHECK(tally_journal_encode(UINT64_C(0xfedcba9876543210), 1,
	    "2019-04-28T00:00:00Z", &f, 1, &rec, &len) == 0, "encode");
	CHECK(tally_journal_scan(rec, len, &off, &r, why, sizeof(why)) ==
	    TALLY_SCAN_RECORD && r.seq == UINT64_C(0xfedcba9876543210) &&
	    r.offset == 0 && r.size == len && off == len, "64-bit seq");
	free(rec);
	tally_feed_destroy(f);
}

/*
 * A record with a token label and a lot: replay restores both (the general
 * path for the lot, the fast one for a labelled result), the label never
 * enters the canonical feed, and list_missing is the posting rule only.
 */
static void
check_lot_and_label(struct fixture *fx)
{
	static const char tie[] = "{\"province\": \"e\", \"revision\": 1,"
	    " \"votes\": {\"red\": 700, \"blue\": 300, \"green\": 300}}";
	static const char lotb[] = "{\"revision\": 1, \"order\": [\"green\","
	    " \"blue\"]}";
	struct tally_state *s = tally_state_create(fx->e);
	struct tally_error err;
	struct tally_feed *f, *g;
	struct tally_lot *lot;
	struct tally_record rec;
	enum tally_check chk;
	json_t *j;
	char *buf, why[96];
	size_t len, off = 0;
	bool in_force;

	j = json_loads(tie, 0, NULL);
	f = tally_feed_parse(fx->e, NULL, j, "", &err);
	json_decref(j);
	CHECK(f != NULL, "tie parses");
	if (f == NULL || s == NULL)
		goto out;
	f->by = tally_label_clean("desk \"east\"\\1");
	CHECK(strcmp(f->by, "desk _east__1") == 0, "label cleaned: %s", f->by);
	CHECK(strstr(f->canonical, "desk") == NULL, "label not canonical");
	CHECK(tally_journal_encode_request(1, 1, "2019-04-28T21:00:00Z", f->by,
	    &f, 1, NULL, 0, &buf, &len) == 0, "encode labelled");
	CHECK(tally_journal_scan(buf, len, &off, &rec, why, sizeof(why)) ==
	    TALLY_SCAN_RECORD, "scan labelled");
	CHECK(tally_journal_apply(s, rec.payload, rec.len, &err) == 0,
	    "apply labelled: %s", err.message);
	free(buf);
	tally_feed_destroy(f);
	CHECK(strcmp(tally_state_current(s, 2)->feed->by, "desk _east__1") == 0,
	    "label replayed");
	CHECK(s->provinces[2].result.pending == 1, "blue and green tie");

	j = json_loads(lotb, 0, NULL);
	lot = tally_lot_parse(fx->e, 2, j, &err);
	json_decref(j);
	CHECK(lot != NULL, "lot parses");
	if (lot == NULL)
		goto out;
	CHECK(tally_state_lot_check(s, lot, &chk, &err) == 0 &&
	    chk == TALLY_CHECK_NEW, "lot accepted: %s", err.message);
	lot->by = tally_label_clean("desk");
	off = 0;
	CHECK(tally_journal_encode_request(2, 2, "2019-04-28T21:05:00Z", lot->by,
	    NULL, 0, &lot, 1, &buf, &len) == 0, "encode lot");
	tally_lot_destroy(lot);
	CHECK(tally_journal_scan(buf, len, &off, &rec, why, sizeof(why)) ==
	    TALLY_SCAN_RECORD, "scan lot");
	CHECK(tally_journal_apply(s, rec.payload, rec.len, &err) == 0,
	    "apply lot: %s", err.message);
	free(buf);
	CHECK(s->version == 2 && s->seats_pending == 0 &&
	    s->coalitions[2].seats == 1 && s->coalitions[1].seats == 0,
	    "the lot gave green the seat");
	lot = (struct tally_lot *)tally_state_lot(s, 2, &in_force);
	CHECK(lot != NULL && in_force && strcmp(lot->by, "desk") == 0 &&
	    strcmp(lot->received_at, "2019-04-28T21:05:00Z") == 0,
	    "lot replayed with its label and time");

	/* A partial snapshot: list_missing, naming the field of the first. */
	j = json_loads("{\"province\": \"e\", \"revision\": 2, \"votes\":"
	    " {\"red\": 700}}", 0, NULL);
	g = tally_feed_parse(fx->e, NULL, j, "", &err);
	json_decref(j);
	CHECK(g != NULL, "partial parses");
	if (g != NULL) {
		CHECK(tally_feed_check_lists(tally_state_current(s, 2)->feed, g,
		    "e", &err) == -1 && strcmp(err.code, "list_missing") == 0 &&
		    strcmp(err.field, "/votes/blue") == 0 &&
		    strstr(err.message, "green") != NULL, "list_missing: %s %s",
		    err.code, err.field);
		/* The one check of a posted feed makes it too; replay's not. */
		CHECK(tally_state_check_post(s, g, &chk, &err) == -1 &&
		    strcmp(err.code, "list_missing") == 0,
		    "check_post: list_missing: %s", err.code);
		CHECK(tally_state_check(s, g, &chk, &err) == 0 &&
		    chk == TALLY_CHECK_NEW, "replay's check takes it");
		tally_feed_destroy(g);
	}
	/* The current snapshot again: a duplicate, not tried again. */
	CHECK(tally_state_check_post(s, tally_state_current(s, 2)->feed, &chk,
	    &err) == 0 && chk == TALLY_CHECK_DUPLICATE, "check_post: duplicate");
	j = json_loads("{\"province\": \"e\", \"revision\": 2, \"votes\":"
	    " {\"red\": 700, \"blue\": 0, \"green\": 0}}", 0, NULL);
	g = tally_feed_parse(fx->e, NULL, j, "", &err);
	json_decref(j);
	CHECK(g != NULL, "complete parses");
	if (g != NULL) {
		CHECK(tally_state_check_post(s, g, &chk, &err) == 0 &&
		    chk == TALLY_CHECK_NEW, "check_post: new: %s", err.message);
		g->revision = 0;
		CHECK(tally_state_check_post(s, g, &chk, &err) == -1 &&
		    strcmp(err.code, "stale_revision") == 0,
		    "check_post: stale: %s", err.code);
		tally_feed_destroy(g);
	}
out:
	tally_state_destroy(s);
}

/*
 * The trial's mark (issue 24): tally_state_apply repeats the seat engine's
 * trial of the post's check only where it could differ.  A marked feed
 * gives the same state as an unmarked one; a mark speaks only for the last
 * feed tried on its province, until that province changes (an apply, a
 * lot); an election with a national threshold marks nothing.
 */
static void
check_trial_mark(struct fixture *fx)
{
	static const char *const pids[] = { "n", "s", "e", "w" };
	static const char national[] =
	    "{\"id\": \"m-test\", \"name\": \"Mark test\","
	    " \"allocation\": {\"method\": \"dhondt\", \"threshold\":"
	    "  {\"percent\": \"5\", \"of\": \"valid\", \"scope\": \"national\"}},"
	    " \"coalitions\": [{\"id\": \"red\", \"name\": \"Red\"},"
	    "  {\"id\": \"blue\", \"name\": \"Blue\"}],"
	    " \"provinces\": [{\"id\": \"n\", \"name\": \"North\", \"seats\": 4}]}";
	static const char tie[] = "{\"province\": \"e\", \"revision\": 900,"
	    " \"votes\": {\"r1\": 700, \"blue\": 300, \"green\": 300, "
	    "\"ochre\": 0}}";
	static const char whole[] = "{\"province\": \"n\", \"revision\": 1000,"
	    " \"votes\": {\"r1\": 700, \"blue\": 300, \"green\": 200, "
	    "\"ochre\": 100}}";
	static const char lotb[] = "{\"revision\": 900, \"order\": [\"green\","
	    " \"blue\"]}";
	struct tally_state *a = tally_state_create(fx->e);
	struct tally_state *b = tally_state_create(fx->e);
	struct tally_election *ne = NULL;
	struct tally_state *ns = NULL;
	struct tally_diag d;
	struct tally_feed *f, *g;
	struct tally_lot *lot;
	struct tally_error err;
	enum tally_check ca, cb;
	size_t k, p, i, applied = 0;
	uint64_t seed, mark;
	json_t *j;

	CHECK(a != NULL && b != NULL, "states");
	if (a == NULL || b == NULL)
		goto out;
	for (k = 0; k < 60; k++) {
		const char *pid = pids[rng() % 4];
		seed = rng_state;
		f = make_feed(fx->e, pid, k + 1, k % 2);
		rng_state = seed;
		g = make_feed(fx->e, pid, k + 1, k % 2);
		if (f == NULL || g == NULL) {
			tally_feed_destroy(f);
			tally_feed_destroy(g);
			continue;
		}
		p = f->province;
		if (tally_state_check_post_mark(a, f, &ca, &err) == -1) {
			CHECK(f->trial_ == 0 && tally_state_check_post(b, g,
			    &cb, &err) == -1, "refused alike");
			tally_feed_destroy(f);
			tally_feed_destroy(g);
			continue;
		}
		CHECK(tally_state_check_post(b, g, &cb, &err) == 0 && ca == cb &&
		    ca == TALLY_CHECK_NEW, "accepted alike");
		CHECK(f->trial_ != 0 && a->provinces[p].trial_ == f->trial_ &&
		    g->trial_ == 0, "the checked feed is marked");
		CHECK(tally_state_apply(a, f, "2019-04-28T21:00:00Z", &err) == 0 &&
		    tally_state_apply(b, g, "2019-04-28T21:00:00Z", &err) == 0,
		    "applied: %s", err.message);
		tally_state_bump(a);
		tally_state_bump(b);
		applied++;
		CHECK(a->provinces[p].trial_ == 0, "an apply clears the mark");
		for (p = 0; p < fx->e->n_provinces; p++) {
			const struct tally_province_state *x = &a->provinces[p];
			const struct tally_province_state *y = &b->provinces[p];
			const struct tally_revision *cur = tally_state_current(a, p);
			size_t nl = cur ? cur->feed->n_lists : 0;
			CHECK(x->has_result == y->has_result &&
			    x->result.allocated == y->result.allocated &&
			    x->result.pending == y->result.pending &&
			    x->bounds.settled == y->bounds.settled,
			    "province %zu alike", p);
			for (i = 0; i < nl && x->has_result; i++)
				CHECK(x->result.seats[i] == y->result.seats[i] &&
				    x->bounds.min[i] == y->bounds.min[i] &&
				    x->bounds.max[i] == y->bounds.max[i],
				    "province %zu list %zu alike", p, i);
		}
		for (i = 0; i < fx->e->n_coalitions; i++)
			CHECK(a->coalitions[i].seats == b->coalitions[i].seats &&
			    a->coalitions[i].seats_min == b->coalitions[i].seats_min &&
			    a->coalitions[i].seats_max == b->coalitions[i].seats_max,
			    "coalition %zu alike", i);
	}
	CHECK(applied > 20, "most feeds applied (%zu)", applied);

	/* Two feeds tried on one province: only the last one's mark holds. */
	j = json_loads(whole, 0, NULL);
	f = tally_feed_parse(fx->e, NULL, j, "", &err);
	g = tally_feed_parse(fx->e, NULL, j, "", &err);
	json_decref(j);
	if (f != NULL && g != NULL) {
		p = f->province;
		CHECK(tally_state_check_post_mark(a, f, &ca, &err) == 0 &&
		    tally_state_check_post_mark(a, g, &cb, &err) == 0 &&
		    f->trial_ != 0 && g->trial_ != 0, "both marked");
		CHECK(a->provinces[p].trial_ == g->trial_ &&
		    a->provinces[p].trial_ != f->trial_, "the last one's");
	}
	tally_feed_destroy(f);
	tally_feed_destroy(g);

	/* A lot posted for the province: its mark no longer holds. */
	j = json_loads(tie, 0, NULL);
	f = tally_feed_parse(fx->e, NULL, j, "", &err);
	json_decref(j);
	CHECK(f != NULL, "tie parses: %s", f ? "" : err.message);
	if (f != NULL && tally_state_check_post_mark(a, f, &ca, &err) == 0 &&
	    tally_state_apply(a, f, "2019-04-28T21:00:00Z", &err) == 0) {
		tally_state_bump(a);
		j = json_loads(tie, 0, NULL);
		json_object_set_new(j, "revision", json_integer(901));
		g = tally_feed_parse(fx->e, NULL, j, "", &err);
		json_decref(j);
		CHECK(g != NULL && tally_state_check_post_mark(a, g, &ca,
		    &err) == 0 && g->trial_ != 0, "marked before the lot");
		j = json_loads(lotb, 0, NULL);
		lot = tally_lot_parse(fx->e, 2, j, &err);
		json_decref(j);
		CHECK(lot != NULL && tally_state_lot_check(a, lot, &ca, &err) == 0 &&
		    tally_state_lot_apply(a, lot, &err) == 0, "lot: %s",
		    err.message);
		CHECK(g == NULL || a->provinces[2].trial_ != g->trial_,
		    "a lot clears the mark");
		tally_feed_destroy(g);
	} else {
		CHECK(0, "the tie applies: %s", err.message);
		tally_feed_destroy(f);
	}

	/* A national threshold: other provinces move the trial, no mark. */
	tally_diag_init(&d);
	ne = tally_election_loadb(national, strlen(national), "mem", &d);
	tally_diag_finish(&d);
	CHECK(ne != NULL && (ns = tally_state_create(ne)) != NULL,
	    "the national election");
	if (ns != NULL) {
		j = json_loads("{\"province\": \"n\", \"revision\": 1, \"votes\":"
		    " {\"red\": 700, \"blue\": 30}}", 0, NULL);
		f = tally_feed_parse(ne, NULL, j, "", &err);
		json_decref(j);
		mark = 1;
		CHECK(f != NULL && tally_state_check_post_mark(ns, f, &ca,
		    &err) == 0 && ca == TALLY_CHECK_NEW && (mark = f->trial_) == 0,
		    "not marked under a national threshold (%llu)",
		    (unsigned long long)mark);
		tally_feed_destroy(f);
	}
out:
	tally_state_destroy(ns);
	tally_election_destroy(ne);
	tally_state_destroy(a);
	tally_state_destroy(b);
}

/* GET /v1/calls's body for s (new). */
static char *
calls_text(const struct tally_state *s)
{
	json_t *o = tally_render_calls(s);
	char *t = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	return t;
}

/*
 * A declared call and its retraction through the record codec: each record
 * applies whole, takes its version at tally_calls_observe, and a record
 * holding two calls, or a call beside results, is refused with the state
 * unchanged.
 */
static void
check_calls(struct fixture *fx)
{
	struct tally_state *s = tally_state_create(fx->e);
	struct tally_call_op *op;
	struct tally_error err;
	const struct tally_call *v;
	json_t *body;
	char *rec = NULL, *dump0, *dump1;
	size_t reclen, n;
	static const char *const bad[] = {
	    "{\"version\":2,\"received_at\":\"2019-04-28T22:00:00Z\","
	    "\"results\":[],\"calls\":[{\"scope\":\"national\","
	    "\"what\":\"majority\",\"coalition\":\"red\"},{\"scope\":"
	    "\"national\",\"what\":\"majority\",\"coalition\":\"blue\"}]}",
	    "{\"version\":2,\"received_at\":\"2019-04-28T22:00:00Z\","
	    "\"results\":[],\"calls\":[{\"retract\":9}]}",
	    "{\"version\":2,\"received_at\":\"2019-04-28T22:00:00Z\","
	    "\"results\":[],\"calls\":[{\"retract\":\"d9\"}]}",
	    "{\"version\":2,\"received_at\":\"2019-04-28T22:00:00Z\","
	    "\"results\":[],\"calls\":[{\"retract\":\"\"}]}",
	    "{\"version\":2,\"received_at\":\"2019-04-28T22:00:00Z\","
	    "\"results\":[],\"calls\":[{\"scope\":\"county\","
	    "\"what\":\"seats\"}]}",
	};
	size_t i;

	CHECK(s != NULL, "state");
	if (s == NULL)
		return;
	body = json_pack("{ssssssssss}", "scope", "province", "province", "n",
	    "what", "first_place", "coalition", "blue", "note",
	    "desk \"one\" \xc3\xa9");
	op = tally_call_op_parse(fx->e, body, &err);
	json_decref(body);
	CHECK(op != NULL, "a call parses: %s", op ? "" : err.message);
	if (op == NULL)
		goto out;
	op->by = strdup("desk");
	CHECK(tally_journal_encode_call(s, 1, 1, "2019-04-28T21:00:00Z", op,
	    &rec, &reclen) == 0, "a call encodes");
	tally_call_op_destroy(op);
	CHECK(tally_journal_apply(s, rec + TALLY_JOURNAL_HEADER,
	    reclen - TALLY_JOURNAL_HEADER, &err) == 0, "the call's record "
	    "applies: %s", err.message);
	free(rec);
	CHECK(tally_calls_observe(s) == 0, "observe");
	v = tally_calls_list(s, &n);
	CHECK(n == 1 && v[0].kind == TALLY_CALL_DECLARED && v[0].version == 1 &&
	    strcmp(v[0].id, "d1") == 0 && v[0].by != NULL && strcmp(v[0].by, "desk") == 0 &&
	    strcmp(v[0].note, "desk \"one\" \xc3\xa9") == 0 &&
	    strcmp(v[0].at, "2019-04-28T21:00:00Z") == 0,
	    "the declared call, its version, note, label and time");
	dump0 = calls_text(s);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(tally_journal_apply(s, bad[i], strlen(bad[i]), &err) == -1,
		    "bad call record %zu refused", i);
		CHECK(s->version == 1, "... the version unchanged");
	}
	dump1 = calls_text(s);
	CHECK(dump0 != NULL && dump1 != NULL && strcmp(dump0, dump1) == 0,
	    "refused records change no call");
	free(dump0);
	free(dump1);
	if ((op = tally_call_op_retract("d1")) != NULL) {
		CHECK(tally_journal_encode_call(s, 2, 2, "2019-04-28T21:30:00Z",
		    op, &rec, &reclen) == 0, "a retraction encodes");
		tally_call_op_destroy(op);
		CHECK(tally_journal_apply(s, rec + TALLY_JOURNAL_HEADER,
		    reclen - TALLY_JOURNAL_HEADER, &err) == 0, "it applies: %s",
		    err.message);
		free(rec);
		CHECK(tally_calls_observe(s) == 0, "observe");
		v = tally_calls_list(s, &n);
		CHECK(n == 1 && v[0].retracted && v[0].retracted_version == 2 &&
		    v[0].version == 1, "kept, retracted at version 2");
	}
	{
		/* A record written while ids were places 1, 2, ...: "retract"
		 * an integer names the call at that place. */
		static const char declare3[] = "{\"version\":3,\"received_at\":"
		    "\"2019-04-28T22:00:00Z\",\"results\":[],\"calls\":"
		    "[{\"scope\":\"national\",\"what\":\"majority\","
		    "\"coalition\":\"red\"}]}";
		static const char legacy4[] = "{\"version\":4,\"received_at\":"
		    "\"2019-04-28T22:30:00Z\",\"results\":[],\"calls\":"
		    "[{\"retract\":2}]}";
		CHECK(tally_journal_apply(s, declare3, strlen(declare3), &err) ==
		    0 && tally_calls_observe(s) == 0, "a second call: %s",
		    err.message);
		CHECK(tally_journal_apply(s, legacy4, strlen(legacy4), &err) ==
		    0 && tally_calls_observe(s) == 0, "an old retraction "
		    "record: %s", err.message);
		v = tally_calls_list(s, &n);
		CHECK(n == 2 && strcmp(v[1].id, "d3") == 0 && v[1].retracted &&
		    v[1].retracted_version == 4, "it retracts the call at "
		    "place 2 (d3)");
	}
out:
	tally_state_destroy(s);
}

/*
 * A snapshot's revision record keeps the version that applied it; a
 * record written before versions were kept decodes as
 * TALLY_VERSION_UNKNOWN; a malformed version is refused.
 */
static void
check_snapshot_versions(struct fixture *fx)
{
	const struct tally_state *s = fx->direct;
	size_t p, n = 0;

	for (p = 0; p < fx->e->n_provinces; p++) {
		const struct tally_revision *rev = tally_state_current(s, p);
		struct tally_feed *f;
		char *out = NULL, at[40], *old, *bad;
		size_t len, plen;
		const char *pl;

		if (rev == NULL)
			continue;
		n++;
		CHECK(rev->version >= 1 && rev->version <= s->version &&
		    rev->version == rev->feed->version, "province %zu's current "
		    "revision says its version (%llu)", p,
		    (unsigned long long)rev->version);
		CHECK(tally_snapshot_encode_revision(7, rev, &out, &len) == 0,
		    "encode revision");
		if (out == NULL)
			continue;
		pl = out + TALLY_JOURNAL_HEADER;
		plen = len - TALLY_JOURNAL_HEADER;
		f = tally_snapshot_decode_revision(fx->e, pl, plen, at);
		CHECK(f != NULL && f->version == rev->version &&
		    strcmp(at, rev->received_at) == 0, "the version round-trips");
		tally_feed_destroy(f);
		/* As an older tallyd wrote it: no version. */
		old = strndup(pl, plen);
		if (old != NULL && (bad = strstr(old, ",\"version\":")) != NULL) {
			strcpy(bad, "}");
			f = tally_snapshot_decode_revision(fx->e, old,
			    strlen(old), at);
			CHECK(f != NULL && f->version == TALLY_VERSION_UNKNOWN,
			    "no version: unknown");
			tally_feed_destroy(f);
			strcpy(bad, ",\"version\":0}");
			f = tally_snapshot_decode_revision(fx->e, old,
			    strlen(old), at);
			CHECK(f == NULL, "version 0 is refused");
			tally_feed_destroy(f);
			strcpy(bad, ",\"version\":12");
			f = tally_snapshot_decode_revision(fx->e, old,
			    strlen(old), at);
			CHECK(f == NULL, "a version without its closing brace is "
			    "refused");
			tally_feed_destroy(f);
		} else
			CHECK(0, "the record has a version");
		free(old);
		free(out);
	}
	CHECK(n > 0, "some province has a revision");
}

/*
 * A daemon serving several contests ends each record with "contest": its id
 * (issue 23); applying the record ignores the member, on the fast path as
 * on the general one: the same state as the untagged records.
 */
static void
check_contest_member(const struct fixture *fx)
{
	static const char *const tails[] = { ",\"contest\":\"cz-2017\"}",
	    ",\"contest\":\"a b\"}" };
	struct tally_error err;
	struct tally_state *s;
	size_t t, r, n;
	char *p;

	for (t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
		if ((s = tally_state_create(fx->e)) == NULL) {
			CHECK(0, "fresh state");
			return;
		}
		for (r = 0; r < NRECORDS; r++) {
			n = fx->plen[r] - 1 + strlen(tails[t]);
			if ((p = malloc(n + 1)) == NULL)
				break;
			memcpy(p, fx->payload[r], fx->plen[r] - 1);
			memcpy(p + fx->plen[r] - 1, tails[t], strlen(tails[t]) + 1);
			CHECK(tally_journal_apply(s, p, n, &err) == 0,
			    "tagged record %zu (%s): %s", r, tails[t],
			    err.message);
			free(p);
		}
		CHECK_EQ_U(s->version, NRECORDS, "tagged records: version");
		check_same_state(s, fx->direct, "tagged records vs applied");
		tally_state_destroy(s);
	}
}

int
main(void)
{
	struct fixture fx;
	size_t r;

	check_crc();
	if (fixture_init(&fx)) {
		check_whole(&fx);
		check_truncation(&fx);
		check_zero_tail(&fx);
		check_crafted(&fx);
		/* Every record in the middle but the first and last two. */
		for (r = 1; r + 2 < NRECORDS; r += 3)
			check_flips(&fx, r, TALLY_SCAN_CORRUPT);
		check_flips(&fx, NRECORDS - 1, TALLY_SCAN_TORN);
		check_apply(&fx);
		check_fast_vs_general(&fx);
		check_contest_member(&fx);
		check_encode_empty(&fx);
		check_lot_and_label(&fx);
		check_trial_mark(&fx);
		check_calls(&fx);
		check_snapshot_versions(&fx);
	}
	fixture_finish(&fx);
	return check_done("test_journal");
}
