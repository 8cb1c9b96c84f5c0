/*
 * auth.c - bearer tokens for feeds.
 *
 * Tokens are never stored or compared in clear: each known token is kept as
 * its SHA-256 (nettle), the presented token is hashed, and the hashes are
 * compared with nettle's constant-time memeql_sec against every entry, so
 * the time taken says nothing about how close a guess was.  Tokens are never
 * logged.
 *
 * Sources, in order: the token file (`token_file`: lines of
 * "sha256:<64 hex> <scope> [label]"), TALLYD_INGEST_TOKEN (one token for
 * everything), else a token generated at first start into
 * DATA_DIR/ingest.token (mode 0600).
 *
 * A scope is "*" (every province of every contest) or a comma-separated
 * list of items: "ID" (a province of the first contest: what a scope
 * always meant, when a tallyd served one contest), "CONTEST/ID" (a province
 * of that contest) or "CONTEST/" and a star (every province of it).  An
 * id never holds '/' (tally_id_is_valid), so the forms cannot be confused.  Items of
 * the first contest are checked against its definition here; items of
 * further contests once the contests are known (auth_resolve).
 */
#include <sys/random.h>
#include <sys/stat.h>

#include <ctype.h>
#include <strings.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nettle/memops.h>
#include <nettle/sha2.h>

#include <tally/hex.h>

#include "auth.h"
#include "log.h"
#include "util.h"

/* One item of a token's scope. */
struct scope {
	char	*contest;		/* NULL: the first contest */
	char	*province;		/* NULL: every province of it */
	unsigned lineno;		/* in the token file, for auth_resolve */
};

struct token {
	uint8_t	 hash[SHA256_DIGEST_SIZE];
	bool	 all;			/* every province of every contest */
	struct scope *scopes;		/* when not all */
	size_t	 n_scopes;
	char	 label[64];
	double	 bucket;		/* requests it may make now */
	double	 bucket_at;		/* when bucket was last filled */
};

struct auth {
	struct token	*tokens;
	size_t		 n;
	double		 rate;		/* requests a second per token; 0: any */
	double		 burst;
	char		 source[4200];	/* where they came from, for the log */
	char		 path[4096];	/* the token file, or "" */
	uint32_t	 gen;		/* this set's number (auth_memo) */
};

/* The number of the newest set made.  [L] */
static uint32_t auth_gens;

static void
token_free(struct token *t)
{
	size_t i;

	for (i = 0; i < t->n_scopes; i++) {
		free(t->scopes[i].contest);
		free(t->scopes[i].province);
	}
	free(t->scopes);
}

void
auth_destroy(struct auth *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++)
		token_free(&a->tokens[i]);
	free(a->tokens);
	free(a);
}

static void
hash_token(const char *tok, size_t len, uint8_t out[SHA256_DIGEST_SIZE])
{
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, len, (const uint8_t *)tok);
	sha256_digest(&ctx, SHA256_DIGEST_SIZE, out);
}

static struct token *
add_token(struct auth *a)
{
	struct token *n = realloc(a->tokens, (a->n + 1) * sizeof(*n));

	if (n == NULL)
		return NULL;
	a->tokens = n;
	memset(&n[a->n], 0, sizeof(n[a->n]));
	return &n[a->n++];
}

/*
 * One item of a scope (the file's header comment), added to t: -1 without
 * memory; a bad item is a problem in diag, and 0.
 */
static int
add_scope(struct token *t, const char *item, const struct tally_election *e,
    const char *path, unsigned lineno, struct tally_diag *diag)
{
	const char *slash = strchr(item, '/');
	const char *pid = slash != NULL ? slash + 1 : item;
	char contest[TALLY_ID_MAX + 1];
	struct scope *n, *sc;
	size_t len = slash != NULL ? (size_t)(slash - item) : 0;

	contest[0] = '\0';
	if (slash != NULL) {
		if (len > TALLY_ID_MAX)
			len = TALLY_ID_MAX + 1;
		snprintf(contest, sizeof(contest), "%.*s", (int)len, item);
		if (len > TALLY_ID_MAX || !tally_id_is_valid(contest) ||
		    (strcmp(pid, "*") != 0 && !tally_id_is_valid(pid))) {
			tally_diag_add(diag, "%s:%u: \"%.80s\" is not CONTEST/id "
			    "or CONTEST/*", path, lineno, item);
			return 0;
		}
		/* The first contest named by its id: its items. */
		if (strcmp(contest, e->id) == 0)
			contest[0] = '\0';
	}
	if (contest[0] == '\0' && strcmp(pid, "*") != 0 &&
	    tally_election_province(e, pid) == NULL) {
		tally_diag_add(diag, "%s:%u: no province \"%.64s\" in election "
		    "%s%s", path, lineno, pid, e->id, slash == NULL ? " (the "
		    "first contest; CONTEST/id names another's)" : "");
		return 0;
	}
	if (slash == NULL && strcmp(pid, "*") == 0) {
		tally_diag_add(diag, "%s:%u: \"*\" is the whole scope (every "
		    "contest) or CONTEST/*, not one of a list", path, lineno);
		return 0;
	}
	if ((n = realloc(t->scopes, (t->n_scopes + 1) * sizeof(*n))) == NULL)
		return -1;
	t->scopes = n;
	sc = &n[t->n_scopes];
	memset(sc, 0, sizeof(*sc));
	sc->lineno = lineno;
	if ((contest[0] != '\0' && (sc->contest = strdup(contest)) == NULL) ||
	    (strcmp(pid, "*") != 0 && (sc->province = strdup(pid)) == NULL)) {
		free(sc->contest);
		return -1;
	}
	t->n_scopes++;
	return 0;
}

static int
load_file(struct auth *a, const char *path, const struct tally_election *e,
    struct tally_diag *diag)
{
	char line[8192];
	unsigned lineno = 0;
	size_t before = diag->count;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		tally_diag_add(diag, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *hash, *scope, *label, *save = NULL, *id;
		struct token *t;

		lineno++;
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		if ((hash = strtok_r(line, " \t\r\n", &save)) == NULL)
			continue;
		scope = strtok_r(NULL, " \t\r\n", &save);
		label = strtok_r(NULL, "\r\n", &save);
		if (strncmp(hash, "sha256:", 7) != 0 || strlen(hash) != 7 + 64) {
			tally_diag_add(diag, "%s:%u: expected sha256:<64 hex "
			    "digits> (make one with: printf %%s TOKEN | "
			    "sha256sum)", path, lineno);
			continue;
		}
		if (scope == NULL) {
			tally_diag_add(diag, "%s:%u: expected the provinces the "
			    "token may post: * or id,id,... (CONTEST/id or "
			    "CONTEST/* for another contest)", path, lineno);
			continue;
		}
		if ((t = add_token(a)) == NULL)
			goto nomem;
		if (tally_hex_decode(hash + 7, t->hash, SHA256_DIGEST_SIZE) ==
		    -1) {
			tally_diag_add(diag, "%s:%u: the hash is not hexadecimal",
			    path, lineno);
			continue;
		}
		if (label != NULL) {
			while (isspace((unsigned char)*label))
				label++;
			snprintf(t->label, sizeof(t->label), "%s", label);
		} else
			snprintf(t->label, sizeof(t->label), "%s:%u", path, lineno);
		if (strcmp(scope, "*") == 0) {
			t->all = true;
			continue;
		}
		for (id = strtok_r(scope, ",", &save); id != NULL;
		    id = strtok_r(NULL, ",", &save))
			if (add_scope(t, id, e, path, lineno, diag) == -1)
				goto nomem;
	}
	fclose(f);
	if (a->n == 0 && diag->count == before)
		tally_diag_add(diag, "%s: no token in the file", path);
	snprintf(a->source, sizeof(a->source), "token file %s", path);
	snprintf(a->path, sizeof(a->path), "%s", path);
	return diag->count == before ? 0 : -1;
nomem:
	fclose(f);
	tally_diag_add(diag, "%s: out of memory", path);
	return -1;
}

/* Make DATA_DIR/ingest.token once; later starts read it back. */
static int
generated_token(struct auth *a, const char *data_dir, bool check,
    struct tally_diag *diag)
{
	char path[4096], tok[80];
	uint8_t raw[24];
	struct token *t;
	ssize_t n;
	size_t i;
	int fd;

	snprintf(path, sizeof(path), "%s/ingest.token", data_dir);
	if ((fd = open(path, O_RDONLY)) != -1) {
		n = read(fd, tok, sizeof(tok) - 1);
		close(fd);
		if (n <= 0) {
			tally_diag_add(diag, "%s: empty or unreadable", path);
			return -1;
		}
		tok[n] = '\0';
		tok[strcspn(tok, "\r\n")] = '\0';
	} else if (errno == ENOENT && check) {
		/* A check changes nothing: the start will make the token. */
		snprintf(a->source, sizeof(a->source), "a token to be generated "
		    "at first start in %s", path);
		return 0;
	} else if (errno == ENOENT) {
		if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
			tally_diag_add(diag, "cannot get random bytes: %s",
			    strerror(errno));
			return -1;
		}
		for (i = 0; i < sizeof(raw); i++)
			snprintf(tok + 2 * i, 3, "%02x", raw[i]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd == -1 || write(fd, tok, strlen(tok)) != (ssize_t)strlen(tok) ||
		    write(fd, "\n", 1) != 1 || fsync(fd) == -1) {
			tally_diag_add(diag, "%s: cannot write: %s", path,
			    strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		close(fd);
		log_info("generated an ingest token in %s (mode 0600); send it "
		    "as Authorization: Bearer <token>", path);
	} else {
		tally_diag_add(diag, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((t = add_token(a)) == NULL) {
		tally_diag_add(diag, "out of memory");
		return -1;
	}
	hash_token(tok, strlen(tok), t->hash);
	t->all = true;
	snprintf(t->label, sizeof(t->label), "generated");
	snprintf(a->source, sizeof(a->source), "generated token %s", path);
	explicit_bzero(tok, sizeof(tok));
	return 0;
}

struct auth *
auth_create(const struct config *cf, const struct tally_election *e,
    bool check, struct tally_diag *diag)
{
	const char *env = getenv("TALLYD_INGEST_TOKEN");
	struct auth *a;
	struct token *t;
	int rc;

	if ((a = calloc(1, sizeof(*a))) == NULL) {
		tally_diag_add(diag, "out of memory");
		return NULL;
	}
	/* Never 0 (an empty memo), even after 2^32 reloads. */
	if (++auth_gens == 0)
		auth_gens = 1;
	a->gen = auth_gens;
	if (cf->token_file != NULL) {
		rc = load_file(a, cf->token_file, e, diag);
	} else if (env != NULL && env[0] != '\0') {
		if (strlen(env) < 16) {
			tally_diag_add(diag, "TALLYD_INGEST_TOKEN is too short: "
			    "use at least 16 characters");
			rc = -1;
		} else if ((t = add_token(a)) == NULL) {
			tally_diag_add(diag, "out of memory");
			rc = -1;
		} else {
			hash_token(env, strlen(env), t->hash);
			t->all = true;
			snprintf(t->label, sizeof(t->label), "environment");
			snprintf(a->source, sizeof(a->source),
			    "TALLYD_INGEST_TOKEN");
			rc = 0;
		}
	} else
		rc = generated_token(a, cf->data_dir, check, diag);
	if (rc == -1) {
		auth_destroy(a);
		return NULL;
	}
	a->rate = (double)cf->ingest_rate;
	a->burst = (double)(cf->ingest_burst > 0 ? cf->ingest_burst : 1);
	for (size_t i = 0; i < a->n; i++) {
		a->tokens[i].bucket = a->burst;
		a->tokens[i].bucket_at = -1;
	}
	return a;
}

/*
 * A token bucket per token: `ingest_rate` requests a second, `ingest_burst`
 * at once.  A leaked or looping poster fills the journal at that rate at
 * most, and the other tokens keep theirs.
 */
bool
auth_take(const struct auth *a, const struct token *t, double now,
    double *retry_after)
{
	struct token *tk = (struct token *)(uintptr_t)t;

	if (a->rate <= 0)
		return true;
	if (tk->bucket_at >= 0) {
		tk->bucket += (now - tk->bucket_at) * a->rate;
		if (tk->bucket > a->burst)
			tk->bucket = a->burst;
	}
	tk->bucket_at = now;
	if (tk->bucket >= 1) {
		tk->bucket -= 1;
		return true;
	}
	*retry_after = (1 - tk->bucket) / a->rate;
	return false;
}

/*
 * Whether auth_take would grant a request now, without taking it: the
 * headers-only call refuses 429 before a body is read, and the request
 * takes its token once the body is in.
 */
bool
auth_ready(const struct auth *a, const struct token *t, double now,
    double *retry_after)
{
	double bucket = t->bucket;

	if (a->rate <= 0)
		return true;
	if (t->bucket_at >= 0) {
		bucket += (now - t->bucket_at) * a->rate;
		if (bucket > a->burst)
			bucket = a->burst;
	}
	if (bucket >= 1)
		return true;
	*retry_after = (1 - bucket) / a->rate;
	return false;
}

const char *
auth_source(const struct auth *a)
{
	return a->source;
}

int
auth_check(const struct auth *a, const char *header, const struct token **who)
{
	uint8_t h[SHA256_DIGEST_SIZE];
	const char *tok;
	size_t i;
	int found = -1;

	*who = NULL;
	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return -1;
	for (tok = header + 7; *tok == ' '; tok++)
		;
	if (*tok == '\0')
		return -1;
	hash_token(tok, strlen(tok), h);
	/* Look at every entry whatever matched, in constant time each. */
	for (i = 0; i < a->n; i++)
		if (memeql_sec(h, a->tokens[i].hash, sizeof(h)) && found == -1)
			found = (int)i;
	if (found == -1)
		return -1;
	*who = &a->tokens[found];
	return 0;
}

/*
 * A request's Authorization header is looked up twice: when its headers
 * are in (admission, before the body is read) and when its body is (the
 * handler).  Hashing it twice cost ~3k instructions a POST; the memo keeps
 * what the first found: this set's number and the token's index.  It is
 * honoured only by the same set of tokens (a reload in between makes a new
 * set with a new number: the header is hashed against the new tokens), and
 * only for the same request (the server keeps the word per request).  It
 * holds nothing secret: no byte of any token.
 */
int
auth_check_memo(const struct auth *a, const char *header,
    const struct token **who, uint64_t *memo)
{
	uint64_t m = memo != NULL ? *memo : 0;
	size_t i;

	if (m != 0 && (uint32_t)(m >> 32) == a->gen &&
	    (i = (size_t)(uint32_t)m - 1) < a->n) {
		*who = &a->tokens[i];
		return 0;
	}
	if (auth_check(a, header, who) == -1)
		return -1;
	i = (size_t)(*who - a->tokens);
	if (memo != NULL && i < UINT32_MAX - 1)
		*memo = (uint64_t)a->gen << 32 | (uint64_t)(i + 1);
	return 0;
}

/* Is sc an item of this contest (NULL: the first)? */
static bool
scope_in(const struct scope *sc, const char *contest)
{
	if (sc->contest == NULL || contest == NULL)
		return sc->contest == contest;
	return strcmp(sc->contest, contest) == 0;
}

bool
auth_may_post(const struct token *t, const char *contest,
    const char *province)
{
	size_t i;

	if (t->all)
		return true;
	for (i = 0; i < t->n_scopes; i++)
		if (scope_in(&t->scopes[i], contest) &&
		    (t->scopes[i].province == NULL ||
		    strcmp(t->scopes[i].province, province) == 0))
			return true;
	return false;
}

bool
auth_may_post_contest(const struct token *t, const char *contest)
{
	size_t i;

	if (t->all)
		return true;
	for (i = 0; i < t->n_scopes; i++)
		if (scope_in(&t->scopes[i], contest))
			return true;
	return false;
}

int
auth_resolve(const struct auth *a, const struct tally_election *const *es,
    size_t n, struct tally_diag *diag)
{
	const struct token *t;
	const struct scope *sc;
	size_t before = diag->count, i, j, k;

	for (i = 0; i < a->n; i++) {
		t = &a->tokens[i];
		for (j = 0; j < t->n_scopes; j++) {
			sc = &t->scopes[j];
			if (sc->contest == NULL)
				continue;
			/* es[0] is the first, whose items have no contest. */
			for (k = 1; k < n; k++)
				if (strcmp(es[k]->id, sc->contest) == 0)
					break;
			if (k == n)
				tally_diag_add(diag, "%s:%u: no contest \"%s\" "
				    "(this tallyd serves %s%s)", a->path,
				    sc->lineno, sc->contest, es[0]->id, n > 1 ?
				    " and others: GET /v1/contests" : " only");
			else if (sc->province != NULL &&
			    tally_election_province(es[k], sc->province) ==
			    NULL)
				tally_diag_add(diag, "%s:%u: no province \"%.64s\" "
				    "in contest %s", a->path, sc->lineno,
				    sc->province, sc->contest);
		}
	}
	return diag->count == before ? 0 : -1;
}

const char *
auth_label(const struct token *t)
{
	return t->label;
}
