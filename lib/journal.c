/*
 * journal.c - journal record codec and replay (see tally/journal.h).
 *
 * Recovery rules (redis aof.c makes the same distinction): a record that was
 * being written when the process or machine died can only be the last one,
 * so an incomplete or unverifiable tail is cut off; a bad record with valid
 * data after it means the file was damaged, and guessing would lose
 * acknowledged results silently, so that is reported, never repaired
 * implicitly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/calls.h>
#include <tally/journal.h>

#include "tally-private.h"

/* CRC32C (Castagnoli, reflected polynomial 0x82f63b78), table-driven. */
static uint32_t crc_table[8][256];
static bool crc_ready;

static void
crc_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
		crc_table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			crc_table[j][i] = (crc_table[j - 1][i] >> 8) ^
			    crc_table[0][crc_table[j - 1][i] & 0xff];
	crc_ready = true;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* The SSE 4.2 crc32 instruction computes the same CRC32C, 8 bytes a step. */
__attribute__((target("sse4.2")))
static uint32_t
crc32c_hw(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = ~crc;

	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#define HAVE_CRC32C_HW 1
#endif

uint32_t
tally_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

#ifdef HAVE_CRC32C_HW
	static int hw = -1;

	if (hw == -1)
		hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	if (hw)
		return crc32c_hw(crc, p, len);
#endif
	if (!crc_ready)
		crc_init();
	crc = ~crc;
	/* Slicing by 8: eight table lookups per 8 bytes. */
	while (len >= 8) {
		uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
		    (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
		    crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][p[4]] ^ crc_table[2][p[5]] ^
		    crc_table[1][p[6]] ^ crc_table[0][p[7]];
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

static void
put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void
put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

int
tally_journal_frame(uint64_t seq, char *buf, size_t payload_len)
{
	unsigned char *b = (unsigned char *)buf;

	if (payload_len > TALLY_JOURNAL_MAX)
		return -1;
	put32(b, TALLY_JOURNAL_MAGIC);
	put32(b + 8, (uint32_t)payload_len);
	put64(b + 12, seq);
	put32(b + 4, tally_crc32c(0, b + 8, 12 + payload_len));
	return 0;
}

int
tally_journal_encode(uint64_t seq, uint64_t version, const char *received_at,
    struct tally_feed *const *feeds, size_t n, char **out, size_t *outlen)
{
	return tally_journal_encode_request(seq, version, received_at, NULL,
	    feeds, n, NULL, 0, out, outlen);
}

/* {"province":..,"revision":..,"order":[..]}: ids need no escaping. */
static size_t
lot_encode(const struct tally_lot *lot, char *buf, size_t len)
{
	size_t off, i;
	int w;

	w = snprintf(buf, len, "{\"province\":\"%s\",\"revision\":%llu,"
	    "\"order\":[", lot->province_id,
	    (unsigned long long)lot->revision);
	off = w < 0 ? len : (size_t)w;
	for (i = 0; i < lot->n && off < len; i++) {
		w = snprintf(buf + off, len - off, "%s\"%s\"", i ? "," : "",
		    lot->order[i]);
		off = w < 0 ? len : off + (size_t)w;
	}
	if (off < len) {
		w = snprintf(buf + off, len - off, "]}");
		off = w < 0 ? len : off + (size_t)w;
	}
	return off;
}

int
tally_journal_encode_request(uint64_t seq, uint64_t version,
    const char *received_at, const char *by, struct tally_feed *const *feeds,
    size_t n, struct tally_lot *const *lots, size_t n_lots, char **out,
    size_t *outlen)
{
	size_t len = 64 + strlen(received_at), i, off;
	char *buf;
	int w;

	if (by != NULL)
		len += 8 + strlen(by);
	for (i = 0; i < n_lots; i++)
		len += 64 + TALLY_ID_MAX * (lots[i]->n + 1) + 3 * lots[i]->n;
	if (n_lots > 0)
		len += 16;

	/*
	 * The payload is assembled from the feeds' canonical bytes (already
	 * compact JSON), so nothing is encoded twice.
	 */
	for (i = 0; i < n; i++)
		len += feeds[i]->canonical_len + 1;
	if (len > TALLY_JOURNAL_MAX)
		return -1;
	if ((buf = malloc(TALLY_JOURNAL_HEADER + len + 1)) == NULL)
		return -1;
	off = TALLY_JOURNAL_HEADER;
	w = snprintf(buf + off, len + 1,
	    "{\"version\":%llu,\"received_at\":\"%s\"%s%s%s,\"results\":[",
	    (unsigned long long)version, received_at, by ? ",\"by\":\"" : "",
	    by ? by : "", by ? "\"" : "");
	off += (size_t)w;
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf[off++] = ',';
		memcpy(buf + off, feeds[i]->canonical, feeds[i]->canonical_len);
		off += feeds[i]->canonical_len;
	}
	buf[off++] = ']';
	if (n_lots > 0) {
		memcpy(buf + off, ",\"lots\":[", 9);
		off += 9;
		for (i = 0; i < n_lots; i++) {
			if (i > 0)
				buf[off++] = ',';
			off += lot_encode(lots[i],
			    buf + off, TALLY_JOURNAL_HEADER + len - off);
		}
		buf[off++] = ']';
	}
	buf[off++] = '}';
	tally_journal_frame(seq, buf, off - TALLY_JOURNAL_HEADER);
	*out = buf;
	*outlen = off;
	return 0;
}

int
tally_snapshot_encode_revision(uint64_t seq, const struct tally_revision *rev,
    char **out, size_t *outlen)
{
	const struct tally_feed *f = rev->feed;
	size_t len = 96 + strlen(rev->received_at) + f->canonical_len +
	    (f->by ? strlen(f->by) : 0);
	char ver[40] = "";
	char *buf;
	int w;

	if ((buf = malloc(TALLY_JOURNAL_HEADER + len)) == NULL)
		return -1;
	/* The version that applied it (history rows and /v1/changes say it). */
	if (f->version != 0 && f->version != TALLY_VERSION_UNKNOWN)
		snprintf(ver, sizeof(ver), ",\"version\":%llu",
		    (unsigned long long)f->version);
	w = snprintf(buf + TALLY_JOURNAL_HEADER, len,
	    "{\"received_at\":\"%s\",\"feed\":%s%s%s%s%s}", rev->received_at,
	    f->canonical, f->by ? ",\"by\":\"" : "", f->by ? f->by : "",
	    f->by ? "\"" : "", ver);
	if (w < 0 || (size_t)w >= len ||
	    tally_journal_frame(seq, buf, (size_t)w) == -1) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = TALLY_JOURNAL_HEADER + (size_t)w;
	return 0;
}

struct tally_feed *
tally_snapshot_decode_revision(const struct tally_election *e,
    const char *payload, size_t len, char *received_at)
{
	const char *p = payload, *end = payload + len, *q;
	struct tally_feed *f;
	size_t used;

	if (len < 17 || memcmp(p, "{\"received_at\":\"", 16) != 0)
		return NULL;
	p += 16;
	if ((q = memchr(p, '"', (size_t)(end - p))) == NULL || q - p >= 40)
		return NULL;
	memcpy(received_at, p, (size_t)(q - p));
	received_at[q - p] = '\0';
	p = q + 1;
	if ((size_t)(end - p) < 9 || memcmp(p, ",\"feed\":", 8) != 0)
		return NULL;
	p += 8;
	f = tally_feed_read_canonical(e, p, (size_t)(end - p), &used);
	if (f == NULL)
		return NULL;
	p += used;
	if ((size_t)(end - p) > 7 && memcmp(p, ",\"by\":\"", 7) == 0) {
		/* The label of the token that posted it (cleaned, unescaped). */
		p += 7;
		if ((q = memchr(p, '"', (size_t)(end - p))) == NULL ||
		    (f->by = strndup(p, (size_t)(q - p))) == NULL) {
			tally_feed_destroy(f);
			return NULL;
		}
		p = q + 1;
	}
	/* Snapshots written before versions were kept have none. */
	f->version = TALLY_VERSION_UNKNOWN;
	if ((size_t)(end - p) > 11 && memcmp(p, ",\"version\":", 11) == 0) {
		uint64_t v = 0;
		/* Digits within the payload only (it is not NUL-terminated). */
		for (p += 11; p < end && *p >= '0' && *p <= '9' &&
		    v < UINT64_MAX / 10 - 1; p++)
			v = v * 10 + (uint64_t)(*p - '0');
		if (v == 0) {
			tally_feed_destroy(f);
			return NULL;
		}
		f->version = v;
	}
	if (end - p != 1 || *p != '}') {
		tally_feed_destroy(f);
		return NULL;
	}
	return f;
}

/* Does a whole, valid record start exactly at p (len bytes available)? */
static bool
valid_record_at(const unsigned char *p, size_t len)
{
	uint32_t plen;

	if (len < TALLY_JOURNAL_HEADER || get32(p) != TALLY_JOURNAL_MAGIC)
		return false;
	plen = get32(p + 8);
	if (plen > TALLY_JOURNAL_MAX || (size_t)plen > len - TALLY_JOURNAL_HEADER)
		return false;
	return tally_crc32c(0, p + 8, 12 + (size_t)plen) == get32(p + 4);
}

/*
 * A bad record is a torn tail only if nothing valid follows it: a write cut
 * short can only ever be the last thing in the file.  If any valid record
 * starts after it, the file was damaged in the middle (a flipped length
 * can make a middle record look as if it ran past the end, so the length
 * alone must not decide).  Searching is costly but only happens on damage.
 */
static enum tally_scan
classify(const unsigned char *p, size_t left)
{
	size_t i;

	for (i = 1; i + TALLY_JOURNAL_HEADER <= left; i++)
		if (p[i] == (TALLY_JOURNAL_MAGIC & 0xff) &&
		    valid_record_at(p + i, left - i))
			return TALLY_SCAN_CORRUPT;
	return TALLY_SCAN_TORN;
}

enum tally_scan
tally_journal_scan(const char *buf, size_t len, size_t *off,
    struct tally_record *rec, char *why, size_t whylen)
{
	const unsigned char *p = (const unsigned char *)buf + *off;
	size_t left = len - *off;
	uint32_t plen;

	if (left == 0)
		return TALLY_SCAN_END;
	if (left < TALLY_JOURNAL_HEADER) {
		snprintf(why, whylen, "%zu bytes of a record header", left);
		return TALLY_SCAN_TORN;
	}
	plen = get32(p + 8);
	if (get32(p) != TALLY_JOURNAL_MAGIC) {
		snprintf(why, whylen, "bad magic");
		return classify(p, left);
	}
	if (plen > TALLY_JOURNAL_MAX) {
		snprintf(why, whylen, "impossible length %u", plen);
		return classify(p, left);
	}
	if ((size_t)plen > left - TALLY_JOURNAL_HEADER) {
		snprintf(why, whylen, "a record of %u bytes with %zu written",
		    plen, left - TALLY_JOURNAL_HEADER);
		return classify(p, left);
	}
	if (tally_crc32c(0, p + 8, 12 + (size_t)plen) != get32(p + 4)) {
		snprintf(why, whylen, "checksum mismatch");
		return classify(p, left);
	}
	rec->seq = get64(p + 12);
	rec->payload = (const char *)p + TALLY_JOURNAL_HEADER;
	rec->len = plen;
	rec->offset = *off;
	rec->size = TALLY_JOURNAL_HEADER + (size_t)plen;
	*off += rec->size;
	return TALLY_SCAN_RECORD;
}

/*
 * The end of a record's results: "]}", or "]" and the contest member a
 * daemon serving several contests adds last (,"contest":"<id>"}), which
 * says whose the record is and is not the state's business; a part of a
 * batch across contests has ,"batch":[i,n] before it (the daemon's replay
 * reads it; the state ignores it).
 */
static bool
fast_end(const char *p, const char *end)
{
	static const char member[] = "],\"contest\":\"";
	static const char batch[] = "],\"batch\":[";
	size_t ml = sizeof(member) - 1, bl = sizeof(batch) - 1;
	const char *q;

	if ((size_t)(end - p) == 2 && memcmp(p, "]}", 2) == 0)
		return true;
	/* A part of a batch across contests: "batch": [i, n] comes first. */
	if ((size_t)(end - p) > bl && memcmp(p, batch, bl) == 0) {
		for (q = p + bl; q < end && ((*q >= '0' && *q <= '9') ||
		    *q == ','); q++)
			;
		if (q == end || *q != ']')
			return false;
		p = q;
	}
	if ((size_t)(end - p) < ml + 3 || memcmp(p, member, ml) != 0 ||
	    end[-1] != '}' || end[-2] != '"')
		return false;
	for (p += ml; p < end - 2; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
		    *p == '.'))
			return false;
	return true;
}

/*
 * The fast path: the payload exactly as tally_journal_encode wrote it.
 * Returns 1 when the payload is not in that form (nothing applied: the
 * caller takes the general path), 0 when applied, -1 on a refused feed.
 */
static int
apply_fast(struct tally_state *s, const char *payload, size_t len,
    struct tally_error *err)
{
	const char *p = payload, *end = payload + len, *q;
	char received_at[40], by[128];
	bool has_by = false;
	struct tally_feed *feeds[64];
	enum tally_check chk;
	uint64_t version = 0;
	size_t n = 0, used, i;
	int rc = 1;

	if (len < 12 || memcmp(p, "{\"version\":", 11) != 0)
		return 1;
	for (p += 11; p < end && *p >= '0' && *p <= '9'; p++)
		version = version * 10 + (uint64_t)(*p - '0');
	if ((size_t)(end - p) < 16 || memcmp(p, ",\"received_at\":\"", 16) != 0)
		return 1;
	p += 16;
	if ((q = memchr(p, '"', (size_t)(end - p))) == NULL ||
	    (size_t)(q - p) >= sizeof(received_at))
		return 1;
	memcpy(received_at, p, (size_t)(q - p));
	received_at[q - p] = '\0';
	p = q + 1;
	if ((size_t)(end - p) > 7 && memcmp(p, ",\"by\":\"", 7) == 0) {
		/* Labels are written cleaned: no escapes to read. */
		p += 7;
		if ((q = memchr(p, '"', (size_t)(end - p))) == NULL ||
		    memchr(p, '\\', (size_t)(q - p)) != NULL ||
		    (size_t)(q - p) >= sizeof(by))
			return 1;
		memcpy(by, p, (size_t)(q - p));
		by[q - p] = '\0';
		has_by = true;
		p = q + 1;
	}
	if ((size_t)(end - p) < 12 || memcmp(p, ",\"results\":[", 12) != 0)
		return 1;
	p += 12;
	while (p < end && *p != ']') {
		if (n > 0) {
			if (*p != ',')
				goto out;
			p++;
		}
		if (n == sizeof(feeds) / sizeof(feeds[0]))
			goto out;	/* a big batch: the general path */
		if ((feeds[n] = tally_feed_read_canonical(s->election, p,
		    (size_t)(end - p), &used)) == NULL)
			goto out;
		n++;
		p += used;
	}
	if (!fast_end(p, end))
		goto out;
	/* Parsed whole: from here on, errors are real. */
	rc = -1;
	for (i = 0; i < n && has_by; i++)
		if ((feeds[i]->by = tally_label_clean(by)) == NULL) {
			tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory reading a record");
			goto out;
		}
	/*
	 * A record is applied whole or not at all: a batch's feeds are all
	 * checked, the seat engine included, before the first is applied (a
	 * single feed is checked by tally_state_apply itself).
	 */
	for (i = 0; i < n; i++) {
		if (tally_state_check(s, feeds[i], &chk, err) == -1)
			goto out;
		if (chk != TALLY_CHECK_NEW) {
			tally_error_set(err, TALLY_ERROR_CONFLICT, "bad_record",
			    NULL, "record repeats the current revision");
			goto out;
		}
		if (n > 1 && tally_state_check_apply(s, feeds[i], err) == -1)
			goto out;
	}
	for (i = 0; i < n; i++) {
		if (tally_state_apply(s, feeds[i], received_at, err) == -1) {
			feeds[i] = NULL;
			goto out;
		}
		feeds[i] = NULL;
	}
	s->version = version;
	rc = 0;
out:
	for (i = 0; i < n; i++)
		tally_feed_destroy(feeds[i]);
	return rc;
}

int
tally_journal_apply(struct tally_state *s, const char *payload, size_t len,
    struct tally_error *err)
{
	json_error_t jerr;
	json_t *root;
	unsigned long nomem;
	int rc;

	if ((rc = apply_fast(s, payload, len, err)) != 1)
		return rc;
	nomem = tally_json_failures();
	root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (tally_json_failures() != nomem) {
		json_decref(root);
		return tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory",
		    NULL, "out of memory reading a record");
	}
	if (root == NULL)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_record", NULL,
		    "record payload is not JSON: %s", jerr.text);
	rc = tally_journal_apply_json(s, root, err);
	json_decref(root);
	return rc;
}

/*
 * The general path on a parsed record (borrowed); the transparency log's
 * entries (lib/tlog.c) are records with two more members and come here.
 */
int
tally_journal_apply_json(struct tally_state *s, json_t *root,
    struct tally_error *err)
{
	json_t *results, *entry, *v, *lots;
	const char *received_at, *by;
	enum tally_check chk = TALLY_CHECK_NEW;
	size_t i;
	char ptr[48];
	int rc = -1;

	results = json_object_get(root, "results");
	received_at = json_string_value(json_object_get(root, "received_at"));
	v = json_object_get(root, "version");
	if (!json_is_array(results) || received_at == NULL ||
	    !json_is_integer(v) || json_integer_value(v) < 0) {
		tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_record", NULL,
		    "record payload lacks version, received_at or results");
		goto out;
	}
	by = json_string_value(json_object_get(root, "by"));
	lots = json_object_get(root, "lots");
	if (lots != NULL && !json_is_array(lots)) {
		tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_record", NULL,
		    "record member \"lots\" is not an array");
		goto out;
	}
	/* A record of a call holds nothing else (tally/calls.h): whole or
	 * nothing with no undo. */
	if (json_object_get(root, "calls") != NULL &&
	    (json_array_size(results) > 0 || lots != NULL)) {
		tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_record", NULL,
		    "a record of a call holds no results or lots");
		goto out;
	}
	/* Whole or nothing, as in apply_fast: check every feed first. */
	json_array_foreach(results, i, entry) {
		struct tally_feed *f;
		snprintf(ptr, sizeof(ptr), "/results/%zu", i);
		if (json_array_size(results) < 2)
			break;
		if ((f = tally_feed_parse(s->election, NULL, entry, ptr,
		    err)) == NULL)
			goto out;
		rc = tally_state_check(s, f, &chk, err) == -1 ? -1 :
		    chk != TALLY_CHECK_NEW ? 0 :
		    tally_state_check_apply(s, f, err);
		tally_feed_destroy(f);
		if (rc == -1)
			goto out;
		rc = -1;
	}
	json_array_foreach(results, i, entry) {
		struct tally_feed *f;
		snprintf(ptr, sizeof(ptr), "/results/%zu", i);
		if ((f = tally_feed_parse(s->election, NULL, entry, ptr,
		    err)) == NULL)
			goto out;
		if (by != NULL && (f->by = tally_label_clean(by)) == NULL) {
			tally_feed_destroy(f);
			tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory reading a record");
			goto out;
		}
		if (tally_state_check(s, f, &chk, err) == -1 ||
		    chk != TALLY_CHECK_NEW) {
			if (chk == TALLY_CHECK_DUPLICATE)
				tally_error_set(err, TALLY_ERROR_CONFLICT,
				    "bad_record", ptr, "record repeats the "
				    "current revision");
			tally_feed_destroy(f);
			goto out;
		}
		if (tally_state_apply(s, f, received_at, err) == -1)
			goto out;
	}
	json_array_foreach(lots, i, entry) {
		const struct tally_province *pv = tally_election_province(
		    s->election, json_string_value(json_object_get(entry,
		    "province")));
		struct tally_lot *lot;
		json_t *body;
		if (pv == NULL || (body = json_copy(entry)) == NULL) {
			tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_record",
			    NULL, "lot %zu of the record names no province", i);
			goto out;
		}
		json_object_del(body, "province");
		lot = tally_lot_parse(s->election, pv->index, body, err);
		json_decref(body);
		if (lot == NULL)
			goto out;
		snprintf(lot->received_at, sizeof(lot->received_at), "%s",
		    received_at);
		if (by != NULL && (lot->by = tally_label_clean(by)) == NULL) {
			tally_lot_destroy(lot);
			tally_error_set(err, TALLY_ERROR_NOMEM, "out_of_memory",
			    NULL, "out of memory reading a record");
			goto out;
		}
		/*
		 * Checked at apply time, as a feed is: in cluster mode two
		 * nodes may publish lots for one tie, and every node must
		 * refuse the later one alike (a local journal only holds lots
		 * checked against the same state, so replay passes).
		 */
		if (tally_state_lot_check(s, lot, &chk, err) == -1 ||
		    chk != TALLY_CHECK_NEW) {
			/*
			 * Replaying our own journal, a lot checked against the
			 * same state when it was written can only fail here if
			 * the definition changed since: the tie it settled is
			 * gone (or another tie stands), so the draw is moot.
			 * It stays in the log and keeps its version; what it
			 * would have decided now needs a lot of its own.
			 */
			if (s->replay_moot_lots && (chk != TALLY_CHECK_NEW ||
			    err == NULL || err->kind == TALLY_ERROR_CONFLICT ||
			    err->kind == TALLY_ERROR_INVALID)) {
				s->moot_lots++;
				if (tally_state_lot_keep_moot(s, lot) == -1) {
					tally_error_set(err, TALLY_ERROR_NOMEM,
					    "out_of_memory", NULL, "out of memory "
					    "reading a record");
					goto out;
				}
				continue;
			}
			if (chk == TALLY_CHECK_DUPLICATE)
				tally_error_set(err, TALLY_ERROR_CONFLICT,
				    "bad_record", NULL, "record repeats the lot "
				    "in force");
			tally_lot_destroy(lot);
			goto out;
		}
		if (tally_state_lot_apply(s, lot, err) == -1)
			goto out;
	}
	/* Calls last: a record of calls carries no feeds (tally/calls.h). */
	if (tally_calls_apply_record(s, json_object_get(root, "calls"),
	    received_at, by, err) == -1)
		goto out;
	s->version = (uint64_t)json_integer_value(v);
	rc = 0;
out:
	return rc;
}

int
tally_journal_encode_call(const struct tally_state *s, uint64_t seq,
    uint64_t version, const char *received_at,
    const struct tally_call_op *op, char **out, size_t *outlen)
{
	json_t *o = json_object(), *calls = json_array();
	char *body = NULL, *buf = NULL;
	size_t len;
	int rc = -1;

	/* Key order as the other records: version, received_at, by. */
	json_object_set_new(o, "version", json_integer((json_int_t)version));
	json_object_set_new(o, "received_at", json_string(received_at));
	if (op->by != NULL)
		json_object_set_new(o, "by", json_string(op->by));
	json_object_set_new(o, "results", json_array());
	json_array_append_new(calls, tally_call_op_record(s, op));
	json_object_set_new(o, "calls", calls);
	if ((body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_ENSURE_ASCII)) == NULL)
		goto out;
	len = strlen(body);
	if (len > TALLY_JOURNAL_MAX ||
	    (buf = malloc(TALLY_JOURNAL_HEADER + len)) == NULL)
		goto out;
	memcpy(buf + TALLY_JOURNAL_HEADER, body, len);
	tally_journal_frame(seq, buf, len);
	*out = buf;
	*outlen = TALLY_JOURNAL_HEADER + len;
	rc = 0;
out:
	free(body);
	json_decref(o);
	return rc;
}
