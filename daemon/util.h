/*
 * util.h - small helpers of the daemon (util.c).  Any thread may call them:
 * none keeps state.
 */
#ifndef TALLYD_UTIL_H
#define TALLYD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* RFC 3339 UTC with seconds: "2018-05-14T18:00:00Z". buf >= 21 bytes. */
void	time_rfc3339(time_t t, char *buf, size_t len);
/* RFC 7231 IMF-fixdate for Last-Modified. buf >= 30 bytes. */
void	time_http(time_t t, char *buf, size_t len);
/* fsync a directory, so that a rename or a new file in it is durable. */
int	fsync_dir(const char *dir);
/*
 * mkdir -p: the parents 0755, the last one 0700 (the journal and the tokens
 * are nobody else's business).  0 or -1 with errno.
 */
int	mkdir_p(const char *path);
/*
 * The numbers of DIR's files named PREFIX<16 lowercase hex digits>SUFFIX
 * (journal segments, snapshots), ascending, in *nums (new; free it).
 * 0, or -1 with errno (*nums NULL).
 */
int	list_numbered(const char *dir, const char *prefix, const char *suffix,
	    uint64_t **nums, size_t *n);

/*
 * FNV-1a, 64 bits: not a cryptographic hash, but what it names (validators'
 * record chain, a stream's epoch, a feed's digest for the log's message id,
 * the page's ETag) only needs two different inputs not to collide by
 * accident.  The one definition in the daemon (daemon/www/embed.py computes
 * the page's digest with the same constants at build time).
 */
#define FNV1A64_INIT	0xcbf29ce484222325ULL
#define FNV1A64_PRIME	0x100000001b3ULL

/* One step: h mixed with v (a byte, or a whole 64-bit word). */
static inline uint64_t
fnv1a64_step(uint64_t h, uint64_t v)
{
	return (h ^ v) * FNV1A64_PRIME;
}

/* h carried on over len bytes of buf (start with FNV1A64_INIT). */
uint64_t fnv1a64(uint64_t h, const void *buf, size_t len);

/* Both NULL, or equal strings. */
bool	str_eq(const char *a, const char *b);

struct tally_election;
/* FNV-1a of the definition's dump (compact, sorted keys): what the core's
 * stamps and a snapshot's header name it by.  0 when out of memory. */
uint64_t definition_digest(const struct tally_election *e);

#endif
