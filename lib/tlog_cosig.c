/*
 * tlog_cosig.c - cosignatures of checkpoints by witnesses (C2SP
 * tlog-cosignature v1, Ed25519): see tally/tlog_cosig.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/eddsa.h>
#include <nettle/sha2.h>

#include <tally/tlog_cosig.h>
#include "tally-private.h"

#define COSIG_ALG	0x04	/* signed-note's type for cosignature/v1 */
#define SIG_PREFIX	"\xe2\x80\x94 "
#define SIG_PREFIX_LEN	4
#define COSIG_RAW	(4 + 8 + 64)

int
tally_tlog_cosigner_init(struct tally_tlog_signer *s, const char *name,
    const uint8_t seed[32])
{
	/* The log's init checks the name and makes the public key; only
	 * the key id differs (another signature type). */
	if (tally_tlog_signer_init(s, name, seed) == -1)
		return -1;
	tally_tlog_key_id(s->key.name, COSIG_ALG, s->key.pub, s->key.id);
	return 0;
}

int
tally_tlog_cosigner_key_format(const struct tally_tlog_key *k, char *buf,
    size_t size)
{
	uint8_t raw[33];
	char b64[48];
	int len;

	raw[0] = COSIG_ALG;
	memcpy(raw + 1, k->pub, 32);
	tally_tlog_b64_encode(raw, sizeof(raw), b64);
	len = snprintf(buf, size, "%s+%02x%02x%02x%02x+%s", k->name, k->id[0],
	    k->id[1], k->id[2], k->id[3], b64);
	return len < 0 || (size_t)len >= size ? -1 : 0;
}

int
tally_tlog_cosigner_key_parse(const char *text, struct tally_tlog_key *k,
    struct tally_error *err)
{
	const char *p = text, *end, *plus1, *plus2;
	uint8_t raw[40], id[4];
	char hex[9];
	size_t i;
	long n;

	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\n' || end[-1] == '\r'))
		end--;
	memset(k, 0, sizeof(*k));
	if ((plus1 = memchr(p, '+', (size_t)(end - p))) == NULL ||
	    (plus2 = memchr(plus1 + 1, '+', (size_t)(end - plus1 - 1))) ==
	    NULL || plus2 - plus1 != 9 || plus1 == p ||
	    (size_t)(plus1 - p) >= sizeof(k->name))
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_key", NULL,
		    "a witness key is name+<8 hex digits>+<base64 key>");
	memcpy(k->name, p, (size_t)(plus1 - p));
	memcpy(hex, plus1 + 1, 8);
	hex[8] = '\0';
	for (i = 0; i < 4; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return tally_error_set(err, TALLY_ERROR_SYNTAX,
			    "bad_key", NULL, "the key id is not 8 hex digits");
		id[i] = (uint8_t)v;
	}
	if ((size_t)(end - plus2 - 1) > 48 ||
	    (n = tally_tlog_b64_decode(plus2 + 1, (size_t)(end - plus2 - 1),
	    raw)) != 33 || raw[0] != COSIG_ALG)
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_key", NULL,
		    "not a cosignature/v1 Ed25519 key (type 0x04, 32 bytes)");
	memcpy(k->pub, raw + 1, 32);
	tally_tlog_key_id(k->name, COSIG_ALG, k->pub, k->id);
	if (memcmp(k->id, id, 4) != 0)
		return tally_error_set(err, TALLY_ERROR_INVALID, "bad_key", NULL,
		    "the key id does not match the name and key");
	return 0;
}

/* "cosignature/v1\ntime T\n" + body: new, *len. */
static uint8_t *
cosig_message(const char *body, size_t len, uint64_t t, size_t *mlen)
{
	char head[64];
	int h;
	uint8_t *m;

	h = snprintf(head, sizeof(head), "cosignature/v1\ntime %llu\n",
	    (unsigned long long)t);
	if ((m = malloc((size_t)h + len)) == NULL)
		return NULL;
	memcpy(m, head, (size_t)h);
	memcpy(m + h, body, len);
	*mlen = (size_t)h + len;
	return m;
}

char *
tally_tlog_cosign(const char *body, size_t len,
    const struct tally_tlog_signer *s, uint64_t t, size_t *outlen)
{
	uint8_t raw[COSIG_RAW], *msg;
	char b64[128], *out;
	size_t mlen, i;
	int n;

	/* A body: text ending in one newline, no blank line (no
	 * signatures), and a time within the format's 2^63 - 1. */
	if (len == 0 || body[len - 1] != '\n' || t > INT64_MAX ||
	    (len >= 2 && memmem(body, len, "\n\n", 2) != NULL) ||
	    memchr(body, '\0', len) != NULL ||
	    (msg = cosig_message(body, len, t, &mlen)) == NULL)
		return NULL;
	memcpy(raw, s->key.id, 4);
	for (i = 0; i < 8; i++)
		raw[4 + i] = (uint8_t)(t >> (56 - 8 * i));
	ed25519_sha512_sign(s->key.pub, s->seed, mlen, msg, raw + 12);
	free(msg);
	tally_tlog_b64_encode(raw, sizeof(raw), b64);
	n = asprintf(&out, SIG_PREFIX "%s %s\n", s->key.name, b64);
	if (n < 0)
		return NULL;
	*outlen = (size_t)n;
	return out;
}

int
tally_tlog_cosig_verify(const char *note, size_t len,
    const struct tally_tlog_key *k, uint64_t *t, struct tally_error *err)
{
	const char *p, *end = note + len, *split = NULL, *q;
	size_t blen, nlen = strlen(k->name), mlen, i;
	uint8_t raw[96], *msg;
	uint64_t ts;
	long n;
	int ok;

	/* The body ends at the last blank line (signatures follow it). */
	for (q = note; q + 1 < end; q++)
		if (q[0] == '\n' && q[1] == '\n')
			split = q;
	if (split == NULL || end[-1] != '\n')
		return tally_error_set(err, TALLY_ERROR_SYNTAX, "bad_note", NULL,
		    "not a signed note (no blank line before signatures)");
	blen = (size_t)(split - note) + 1;
	for (p = split + 2; p < end; p = q + 1) {
		q = memchr(p, '\n', (size_t)(end - p));
		if ((size_t)(q - p) < SIG_PREFIX_LEN + nlen + 2 ||
		    memcmp(p, SIG_PREFIX, SIG_PREFIX_LEN) != 0 ||
		    memcmp(p + SIG_PREFIX_LEN, k->name, nlen) != 0 ||
		    p[SIG_PREFIX_LEN + nlen] != ' ')
			continue;
		p += SIG_PREFIX_LEN + nlen + 1;
		if ((size_t)(q - p) > 128 ||
		    (n = tally_tlog_b64_decode(p, (size_t)(q - p), raw)) < 4 ||
		    memcmp(raw, k->id, 4) != 0)
			continue;	/* another key of that name */
		if (n != COSIG_RAW)
			return tally_error_set(err, TALLY_ERROR_INVALID,
			    "bad_signature", NULL, "the cosignature of %s is "
			    "not a timestamp and a signature", k->name);
		for (ts = 0, i = 0; i < 8; i++)
			ts = ts << 8 | raw[4 + i];
		if (ts > INT64_MAX ||
		    (msg = cosig_message(note, blen, ts, &mlen)) == NULL)
			return tally_error_set(err, TALLY_ERROR_INVALID,
			    "bad_signature", NULL, "the cosignature of %s has "
			    "a bad time", k->name);
		ok = ed25519_sha512_verify(k->pub, mlen, msg, raw + 12);
		free(msg);
		if (!ok)
			return tally_error_set(err, TALLY_ERROR_INVALID,
			    "bad_signature", NULL, "the cosignature of %s does "
			    "not verify", k->name);
		*t = ts;
		return 1;
	}
	return 0;
}
