/*
 * schemas.h - the JSON Schemas of docs/schemas/, compiled in by
 * docs/schemas/embed.py and served at GET /v1/schemas/NAME.json (get.c).
 *
 * Threads: [I] constant data.
 */
#ifndef TALLYD_SCHEMAS_H
#define TALLYD_SCHEMAS_H

#include <stddef.h>
#include <stdint.h>

struct schema_file {
	const char	*name;		/* "leaderboard" for leaderboard.json */
	const char	*bytes;		/* len bytes and a NUL */
	size_t		 len;
	uint64_t	 digest;	/* FNV-1a of the bytes: its ETag */
};

/* Every schema, then an entry whose name is NULL. */
extern const struct schema_file schema_files[];

#endif
