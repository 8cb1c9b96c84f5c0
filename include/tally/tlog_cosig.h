/*
 * tally/tlog_cosig.h - witnesses' cosignatures of the log's checkpoints
 * (C2SP tlog-cosignature, cosignature/v1, Ed25519).
 *
 * A witness keeps the last checkpoint of the log it verified; it cosigns a
 * newer one only once it checked that the newer tree extends the older
 * (consistency), and never two different checkpoints of one size.  Its
 * cosignature is one more signature line on the checkpoint note:
 *
 *	— <witness name> base64(key id(4) || timestamp(8, big-endian) ||
 *	    Ed25519 signature(64))
 *
 * over "cosignature/v1\ntime <timestamp>\n" followed by the checkpoint's
 * whole body (any extension line included).  The key id is the first 4
 * bytes of SHA-256(name || 0x0A || 0x04 || public key), the verifier key
 * text "name+<id hex>+base64(0x04 || public key)".  Verifiers of the log
 * (tally_tlog_note_open) ignore these lines: another type, another id.
 */
#ifndef TALLY_TLOG_COSIG_H
#define TALLY_TLOG_COSIG_H

#include <stdint.h>

#include <tally/tlog.h>

/* A witness's signer from a name and a 32-byte seed.  0, or -1 (name). */
int	tally_tlog_cosigner_init(struct tally_tlog_signer *s, const char *name,
	    const uint8_t seed[32]);
/* A witness's verifier key text (NUL-terminated into buf).  0, or -1. */
int	tally_tlog_cosigner_key_format(const struct tally_tlog_key *k,
	    char *buf, size_t size);
/* Parse a witness's verifier key (type 0x04).  0, or -1 with err. */
int	tally_tlog_cosigner_key_parse(const char *text,
	    struct tally_tlog_key *k, struct tally_error *err);

/*
 * The cosignature line (ending in '\n') of the checkpoint body
 * body[0..len) by s at `timestamp` (POSIX seconds): new, NUL-terminated,
 * *outlen its length; NULL when body is not a note's text.
 */
char	*tally_tlog_cosign(const char *body, size_t len,
	    const struct tally_tlog_signer *s, uint64_t timestamp,
	    size_t *outlen);

/*
 * k's cosignature on a signed checkpoint note: 1 with *timestamp when the
 * note carries one and it verifies over the note's body; 0 when it
 * carries none; -1 with err when the note is not a note or k's line is
 * there but does not verify.
 */
int	tally_tlog_cosig_verify(const char *note, size_t len,
	    const struct tally_tlog_key *k, uint64_t *timestamp,
	    struct tally_error *err);

#endif
