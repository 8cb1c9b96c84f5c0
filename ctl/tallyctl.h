/*
 * tallyctl.h - tallyctl's private header, one section per file.
 *
 * tallyctl is a client: it talks to tallyd over HTTP (libcurl) and uses
 * libtally only for what must match the daemon byte for byte: loading an
 * election definition (check, import) and id syntax.
 */
#ifndef TALLYCTL_H
#define TALLYCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <tally/tally.h>

struct json_t;

/*
 * Exit codes, documented in tallyctl(1).  One table so that every command
 * means the same thing by the same number.
 */
enum ctl_exit {
	/*
	 * Applied, a duplicate, or the command did its job.  A duplicate is
	 * the documented outcome of a retry (the daemon had exactly this), so
	 * it is success: a `set -e` script that retries must go on.  1 used
	 * to mean duplicate and is not used any more.
	 */
	CTL_EXIT_OK = 0,
	CTL_EXIT_USAGE = 2,		/* bad command line */
	CTL_EXIT_INVALID = 3,		/* bad input: ours (file:line:col) or 400/404/413/415/422 */
	CTL_EXIT_STALE = 4,		/* 409 stale_revision */
	CTL_EXIT_CONFLICT = 5,		/* 409 revision_conflict */
	CTL_EXIT_UNAUTHORIZED = 6,	/* 401, 403 */
	CTL_EXIT_UNAVAILABLE = 7,	/* no connection, 503 or 5xx after the retries */
	CTL_EXIT_UNSUPPORTED = 8,	/* the daemon has no such endpoint (404 not_found, 405) */
	CTL_EXIT_MISMATCH = 9,		/* replay: seats differ from the official ones */
	CTL_EXIT_ERROR = 10,		/* anything else: local I/O, out of memory, odd replies */
	/*
	 * TLS could not be set up: an unknown CA, a name that does not match,
	 * http:// to a TLS port or https:// to a plain one.  Apart from 7,
	 * because retrying cannot help: the command line must change.
	 */
	CTL_EXIT_TLS = 11,
};

/* main.c */
struct ctl {
	const char	*prog;		/* "tallyctl post" in messages */
	const char	*url;		/* base URL, no trailing slash */
	char		*token;		/* or NULL; owned */
	const char	*token_file;	/* where token came from, or NULL: env */
	const char	*cacert;	/* --cacert / TALLYD_CACERT, or NULL */
	bool		 insecure;	/* --insecure: no certificate check */
	double		 retry_for;	/* seconds to keep retrying */
	bool		 verbose;
	const char	*contest;	/* --contest: /v1/contests/ID/..., or
					   NULL: the daemon's first contest */
};

/* Common long options of every subcommand (values >= CTL_OPT_BASE). */
#define CTL_OPT_BASE		1000
#define CTL_OPT_URL		(CTL_OPT_BASE + 0)
#define CTL_OPT_TOKEN_FILE	(CTL_OPT_BASE + 1)
#define CTL_OPT_RETRY		(CTL_OPT_BASE + 2)
#define CTL_OPT_CACERT		(CTL_OPT_BASE + 3)
#define CTL_OPT_INSECURE	(CTL_OPT_BASE + 4)
#define CTL_OPT_CONTEST		(CTL_OPT_BASE + 5)
#define CTL_COMMON_OPTIONS						\
	{ "url", required_argument, NULL, CTL_OPT_URL },		\
	{ "token-file", required_argument, NULL, CTL_OPT_TOKEN_FILE },	\
	{ "retry", required_argument, NULL, CTL_OPT_RETRY },		\
	{ "cacert", required_argument, NULL, CTL_OPT_CACERT },		\
	{ "insecure", no_argument, NULL, CTL_OPT_INSECURE },		\
	{ "contest", required_argument, NULL, CTL_OPT_CONTEST },	\
	{ "verbose", no_argument, NULL, 'v' },				\
	{ "help", no_argument, NULL, 'h' }

/* Handle a common option; returns 0, or an exit code on a bad value. */
int	ctl_common_option(struct ctl *ctl, int c, const char *arg);
/* tls.c: --cacert FILE (must hold a PEM certificate); 0 or an exit code. */
int	ctl_tls_option(struct ctl *ctl, const char *path);
void	ctl_warnx(const struct ctl *ctl, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Parse a whole decimal number into *out; false on anything else. */
bool	ctl_parse_u64(const char *s, uint64_t max, uint64_t *out);
double	ctl_now(void);			/* monotonic seconds */
void	ctl_sleep(double seconds);

int	cmd_post(struct ctl *ctl, int argc, char **argv);
int	cmd_show(struct ctl *ctl, int argc, char **argv);
int	cmd_lot(struct ctl *ctl, int argc, char **argv);
int	cmd_replay(struct ctl *ctl, int argc, char **argv);
int	cmd_watch(struct ctl *ctl, int argc, char **argv);
int	cmd_token(struct ctl *ctl, int argc, char **argv);
int	cmd_check(struct ctl *ctl, int argc, char **argv);
int	cmd_import(struct ctl *ctl, int argc, char **argv);
/* dataset.c: tallyctl check's warnings on missing and near-identical colours */
void	ctl_check_colors(const char *path, const struct tally_election *e);
int	cmd_verify(struct ctl *ctl, int argc, char **argv);	/* verify.c */
int	cmd_key(struct ctl *ctl, int argc, char **argv);	/* key.c */
int	cmd_witness(struct ctl *ctl, int argc, char **argv);	/* witness.c */

/* http.c */
struct http_resp {
	long	 status;		/* 0 when no response arrived */
	char	*body;			/* NUL-terminated; owned */
	size_t	 len;
	char	 etag[128];
	double	 retry_after;		/* seconds, or -1 */
	char	 error[512];		/* transport error when status is 0 */
	char	 hint[512];		/* what to change, or "" */
	bool	 tls;			/* a TLS set-up failure: exit 11 */
};

struct http;

struct http	*http_create(const struct ctl *ctl);
void		 http_destroy(struct http *h);
void		 http_resp_finish(struct http_resp *r);
/*
 * One request, retried on connection errors and 503 (honouring Retry-After)
 * with exponential backoff for ctl->retry_for seconds: safe for feeds,
 * because the same revision again is a 200 duplicate.  `body` may be NULL,
 * `if_none_match` may be NULL.  Returns 0 with r filled (any status), or -1
 * with r->error set when no usable answer came in time.
 */
int	http_request(struct http *h, const char *method, const char *path,
	    const char *body, size_t len, const char *if_none_match,
	    struct http_resp *r);
/* GET with the body streamed to cb (Server-Sent Events).  Returns the
 * status (0 on a transport error, r->error set); cb returning false stops. */
typedef bool (*http_stream_cb)(const char *data, size_t len, void *arg);
long	http_stream(struct http *h, const char *path, const char *last_event_id,
	    http_stream_cb cb, void *arg, char *error, size_t errsize);
/* How many retries the last http_request needed (for progress output). */
unsigned	http_retries(const struct http *h);

/*
 * Print a daemon error ("HTTP 409 stale_revision: message [field]") or a
 * transport error, and map it to an exit code.  `where` prefixes a field
 * pointer when the caller can say where in its input it came from; it may
 * be NULL.
 */
int	ctl_http_error(const struct ctl *ctl, const struct http_resp *r,
	    int rc);
/* The exit code for a response without printing anything. */
int	ctl_exit_for(const struct http_resp *r, int rc);
/* The error object's code/field of a response body, or "" (borrowed copy). */
void	ctl_error_parts(const struct http_resp *r, char *code, size_t ncode,
	    char *field, size_t nfield, char *msg, size_t nmsg);

/*
 * errors.c: every error of a refusal, located in the operator's file.
 * A ctl_where says which file the body came from: a JSON text (borrowed;
 * bare_array when the file was an array sent as {"results": [...]}) or
 * the cells of a CSV (org).
 */
struct origin_cell {
	size_t		 entry;		/* index in "results" */
	char		*key;		/* "votes/000096", "blank", ...; owned */
	unsigned	 line, col;
};

struct origin {
	unsigned		*lines;		/* line where entry i starts */
	size_t			 n;
	struct origin_cell	*cells;
	size_t			 ncells, cellcap;
};

struct ctl_where {
	const char		*name;		/* the file, for messages */
	const char		*text;		/* JSON text, or NULL */
	size_t			 len;
	bool			 bare_array;
	const struct origin	*org;		/* CSV cells, or NULL */
};

/* Like ctl_http_error, every error of errors[], each located through w
 * (may be NULL), with "did you mean" for unknown provinces and lists. */
int	ctl_http_error_at(const struct ctl *ctl, const struct http_resp *r,
	    int rc, const struct ctl_where *w);
/* The daemon's GET /v1/election and /v1/provinces, fetched once (borrowed;
 * NULL when it could not be had). */
struct json_t	*ctl_known_election(const struct ctl *ctl);
struct json_t	*ctl_known_provinces(const struct ctl *ctl);
/* A list's display name: "000096 PSOE" (short name from the election). */
const char	*ctl_list_name(const struct ctl *ctl, const char *id, char *buf,
		    size_t bufsize);
/* The nearest province of a /v1/provinces array to word, as "id (name)". */
bool	ctl_suggest_province(struct json_t *provinces, const char *word,
	    char *out, size_t outsize);

/* where.c */
bool	where_json(const char *text, size_t len, const char *pointer,
	    unsigned *line, unsigned *col);
bool	where_csv(const struct origin *org, const char *pointer,
	    unsigned *line, unsigned *col);
int	origin_entry(struct origin *org, unsigned line);
int	origin_cell(struct origin *org, size_t entry, const char *key,
	    unsigned line, unsigned col);
void	origin_finish(struct origin *org);

/* suggest.c: "did you mean" by edit distance. */
struct ctl_suggest {
	const char	*word;		/* borrowed */
	const char	*best;		/* borrowed from the candidates */
	size_t		 dist;
	unsigned	 ties;
};

struct option;
/* Restricted Damerau-Levenshtein, case-insensitive; (size_t)-1 if long. */
size_t	ctl_distance(const char *a, const char *b);
void	ctl_suggest_init(struct ctl_suggest *s, const char *word);
void	ctl_suggest_add(struct ctl_suggest *s, const char *cand);
/* The candidate near enough to be what was meant, or NULL. */
const char *ctl_suggest_best(const struct ctl_suggest *s);
/* getopt_long with our messages: "unknown option --x; did you mean --y?" */
int	ctl_getopt(const struct ctl *ctl, int argc, char **argv,
	    const char *shortopts, const struct option *longopts);

/* csv.c: RFC 4180 records with the line and column of every field. */
struct csv_field {
	char		*text;
	unsigned	 line;
	unsigned	 col;		/* 1-based, in characters */
};

struct csv {
	FILE		*f;
	const char	*name;
	unsigned	 line;		/* current position */
	unsigned	 col;
	int		 peeked;	/* a char read ahead, or -2 */
	struct csv_field *fields;
	size_t		 n, cap;
	char		*buf;
	size_t		 blen, bcap;
	size_t		*offs;
	size_t		 ocap;
	bool		 first;
};

/* Open `path` ("-" is stdin); `name` is used in messages. */
int	csv_open(struct csv *c, const char *path, char *err, size_t errsize);
void	csv_close(struct csv *c);
/* The next record: 1, 0 at the end, -1 with "name:line:col: why" in err. */
int	csv_next(struct csv *c, char *err, size_t errsize);

/* dataset.c: a ../shared/data/elections dataset directory. */
struct ds_list {
	char		*id;
	uint64_t	 votes;
	uint32_t	 seats;		/* official */
};

struct ds_province {
	char		*id;
	char		*name;
	uint32_t	 seats;
	uint32_t	 levelling_seats;	/* seats_incl_levelling - seats */
	uint64_t	 blank, invalid;
	struct ds_list	*lists;
	size_t		 n_lists;
};

struct dataset {
	char			*dir;
	char			*id;		/* the directory's name */
	struct ds_province	*provinces;
	size_t			 n_provinces;
	uint64_t		 seats_total;
	bool			 has_levelling;	/* seats_incl_levelling given */
	/* The official national seats (no votes) when the provinces' are
	 * partial: what a replay compares instead of their sum. */
	struct ds_list		*national;
	size_t			 n_national;
};

/*
 * Load constituencies and, with `results`, votes, totals (optional) and
 * official seats; 0, or -1 with "file:line:col: why" in err.
 */
int	dataset_load(struct dataset *d, const char *dir, bool results,
	    char *err, size_t errsize);
void	dataset_finish(struct dataset *d);
/*
 * The same from the files scripts/import-dataset writes (election.json,
 * results.json, expected.json: tests/data/elections/<id>), when the
 * directory has no constituencies.csv (dataset_json.c).
 */
bool	dataset_is_json(const char *dir);
int	dataset_load_json(struct dataset *d, const char *dir, char *err,
	    size_t errsize);

#endif
