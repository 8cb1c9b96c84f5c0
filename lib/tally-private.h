/* tally-private.h - internals shared between libtally's files. */
#ifndef TALLY_PRIVATE_H
#define TALLY_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;

/* Read a whole file into a new NUL-terminated buffer. 0, or -1 with errno. */

/* A growing NUL-terminated byte buffer; after a failed allocation it only
 * remembers that (nomem) and the caller frees p. */
struct tally_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	bool	 nomem;
};

void	tally_buf_add(struct tally_buf *b, const char *s, size_t n);
/* Room for n more bytes and a NUL: where they go, or NULL (b->nomem). */
char	*tally_buf_room(struct tally_buf *b, size_t n);
void	tally_buf_str(struct tally_buf *b, const char *s);
void	tally_buf_uint(struct tally_buf *b, uint64_t v);
/* printf onto the buffer (the SVG views' coordinates and attributes). */
void	tally_buf_printf(struct tally_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Text for XML content and attribute values: & < > " ' escaped (XML 1.0,
 * 2.4 and 3.1). */
void	tally_buf_xml(struct tally_buf *b, const char *s);

struct tally_state;
struct tally_feed;

/* A signed note's key id: the first 4 bytes of SHA-256(name || 0x0A ||
 * alg || pub) (C2SP signed-note; alg 0x01 Ed25519, 0x04 cosignature/v1). */
void	tally_tlog_key_id(const char *name, uint8_t alg, const uint8_t pub[32],
	    uint8_t id[4]);

/* The index of list `id` in f's lists, or SIZE_MAX. */
size_t	tally_feed_list_index(const struct tally_feed *f, const char *id);
struct tally_error;

/* The national order of coalitions: seats desc, votes desc, id asc (new
 * array of coalition indices; NULL on allocation failure). */
size_t	*tally_ranking(const struct tally_state *s);

/* tally_journal_apply on a parsed record (borrowed). */
int	tally_journal_apply_json(struct tally_state *s, struct json_t *root,
	    struct tally_error *err);

/* "an object", "an integer", ... for messages about JSON values. */
const char	*tally_json_kind(const struct json_t *v);

struct tally_coalition;
struct tally_election;

/* Sets "color" (what every view draws), "color_source" and, when adjusted,
 * "color_defined" on a coalition's JSON object (palette.c). */
void	tally_color_json(struct json_t *obj, const struct tally_coalition *c);
/* The same three members, written as `,"color":...` into a buffer. */
void	tally_color_buf(struct tally_buf *b, const struct tally_coalition *c);

/*
 * Build "base/key" into buf (len bytes), the key escaped as RFC 6901 says
 * (~ as ~0, / as ~1); a pointer too long for buf is cut.  Returns buf.
 */
const char	*tally_ptr_key(char *buf, size_t len, const char *base,
		    const char *key);

struct tally_error;

/*
 * An integer in [min, max] at JSON pointer p: integers only, never a float
 * or a string.  0, or -1 with err (wrong_type, out_of_range).
 */
int	tally_json_uint(const struct json_t *v, const char *p, uint64_t min,
	    uint64_t max, uint64_t *out, struct tally_error *err);

struct tally_state;

/*
 * JSON text of str as jansson writes it with JSON_ENSURE_ASCII: quotes,
 * backslashes and control characters escaped, everything beyond ASCII as
 * \uXXXX (surrogate pairs above U+FFFF), at o (TALLY_JSON_STRING_ROOM
 * bytes); returns the end.  str is valid UTF-8 (jansson checked it when
 * the definition was loaded).  jsontext.c.
 */
#define TALLY_JSON_STRING_ROOM(len)	(6 * (len) + 2)
char	*tally_json_put_string(char *o, const char *str);

/*
 * A definition's leaderboard pieces that never change (jsontext.c): made
 * when it is loaded, read by every render of the leaderboard (render.c).
 */
struct tally_lb_pieces {
	char		 *head;		/* {"election":{...},"version": */
	size_t		  head_len;
	char		**row;		/* per coalition: ,"id":...,"color":... */
	size_t		 *row_len;
	uint32_t	 *id_rank;	/* per coalition: its place in id order */
	size_t		  n;
};
/* New pieces of e (free with tally_lb_pieces_destroy), or NULL. */
struct tally_lb_pieces	*tally_lb_pieces_create(const struct tally_election *e);
void	tally_lb_pieces_destroy(struct tally_lb_pieces *lp);

/* A province's first place (most seats, then most votes) as a coalition
 * index, SIZE_MAX before its first count (compare.c; map.c too). */
size_t	tally_first_place(const struct tally_state *s, size_t p);

#endif
