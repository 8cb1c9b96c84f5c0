/*
 * config.c - tallyd.conf: "key value" lines, '#' comments.
 *
 * One table lists every key with its type and bounds (tmux's options-table
 * and redis's config.c work the same way); config/tallyd.conf documents each
 * one with its default.  Flags override the file; built-in defaults work
 * without any file.
 */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tallyd-config.h"
#include "config.h"
#include "log.h"
#include "publish.h"
#include "tlog_push.h"

enum cf_type { CF_PATH, CF_ADDR, CF_ADDR_OR_EMPTY, CF_PATH_OR_EMPTY, CF_LONG,
    CF_LEVEL, CF_FSYNC, CF_STRING_OR_EMPTY, CF_PATH_LIST, CF_WITNESS,
    CF_PUBLISH };

struct cf_key {
	const char	*name;
	enum cf_type	 type;
	size_t		 offset;
	long		 min, max;
	bool		 restart;	/* a reload cannot change it (below) */
};

/*
 * CF: a setting a reload (SIGHUP) takes.  CF_RESTART: one that is read
 * once, when the listeners, the journal, the API's buffers or the cluster
 * connection are made; a reload that changes it says so and keeps the
 * value in force (config_reload_note), so that what the daemon reports is
 * what it does.
 */
#define CF(name, type, field, min, max) \
	{ name, type, offsetof(struct config, field), min, max, false }
#define CF_RESTART(name, type, field, min, max) \
	{ name, type, offsetof(struct config, field), min, max, true }

static const struct cf_key cf_keys[] = {
	CF("election",		 CF_PATH,		election, 0, 0),
	/* Each line one more contest after `election` (issue 23); a reload
	 * adds and removes contests (contests_reload.c). */
	CF("contest",		 CF_PATH_LIST,		contests, 0, 0),
	CF_RESTART("listen",		 CF_ADDR,		listen, 0, 0),
	CF_RESTART("ingest_listen",	 CF_ADDR_OR_EMPTY,	ingest_listen, 0, 0),
	CF_RESTART("data_dir",		 CF_PATH,		data_dir, 0, 0),
	CF("log_file",		 CF_PATH_OR_EMPTY,	log_file, 0, 0),
	CF("log_level",		 CF_LEVEL,		log_level, 0, 0),
	CF("max_age",		 CF_LONG,		max_age, 0, 31536000),
	CF_RESTART("body_limit",	 CF_LONG,		body_limit, 1024, 1L << 30),
	CF_RESTART("connection_timeout", CF_LONG,		connection_timeout, 1, 86400),
	CF_RESTART("connection_limit",	 CF_LONG,		connection_limit, 16, 1000000),
	CF("token_file",	 CF_PATH_OR_EMPTY,	token_file, 0, 0),
	CF_RESTART("fsync",		 CF_FSYNC,		fsync_policy, 0, 0),
	CF("snapshot_every",	 CF_LONG,		snapshot_every, 0, 1000000000),
	CF("ingest_rate",	 CF_LONG,		ingest_rate, 0, 1000000),
	CF("ingest_burst",	 CF_LONG,		ingest_burst, 1, 1000000),
	CF("backup_dir",	 CF_PATH_OR_EMPTY,	backup_dir, 0, 0),
	CF_RESTART("sse_heartbeat",	 CF_LONG,		sse_heartbeat, 1, 3600),
	CF_RESTART("sse_stall_timeout",	 CF_LONG,		sse_stall_timeout, 1, 86400),
	CF_RESTART("sse_max_clients",	 CF_LONG,		sse_max_clients, 0, 1000000),
	CF_RESTART("sse_coalesce_ms",	 CF_LONG,		sse_coalesce_ms, 0, 60000),
	CF_RESTART("keep_versions",	 CF_LONG,		keep_versions, 1, 65536),
	CF_RESTART("log_key",		 CF_PATH_OR_EMPTY,	log_key, 0, 0),
	CF_RESTART("transparency_log",	 CF_LONG,		transparency_log, 0, 1),
	/* Each line one witness tallyd pushes checkpoints to (tlog_push.c). */
	CF_RESTART("witness",		 CF_WITNESS,		witnesses, 0, 0),
	CF_RESTART("witness_timeout",	 CF_LONG,		witness_timeout, 1, 300),
	CF_RESTART("witness_interval",	 CF_LONG,		witness_interval, 10,
	    3600000),
	CF_RESTART("cors_origin",	 CF_STRING_OR_EMPTY,	cors_origin, 0, 0),
	CF_RESTART("cluster_urls",	 CF_STRING_OR_EMPTY,	cluster_urls, 0, 0),
	CF_RESTART("cluster_stream",	 CF_STRING_OR_EMPTY,	cluster_stream, 0, 0),
	CF_RESTART("cluster_replicas",	 CF_LONG,		cluster_replicas, 1, 5),
	CF_RESTART("cluster_node",	 CF_STRING_OR_EMPTY,	cluster_node, 0, 0),
	CF_RESTART("per_ip_connection_limit", CF_LONG,	per_ip_connection_limit, 0,
	    1000000),
	CF_RESTART("request_timeout",	 CF_LONG,		request_timeout, 0, 86400),
	CF("journal_stall_timeout", CF_LONG,	journal_stall_timeout, 0,
	    86400),
	CF_RESTART("body_memory",	 CF_LONG,		body_memory, 1024, 1L << 40),
	CF("tls_cert",		 CF_PATH_OR_EMPTY,	tls_cert, 0, 0),
	CF("tls_key",		 CF_PATH_OR_EMPTY,	tls_key, 0, 0),
	CF("public_tls_cert",	 CF_PATH_OR_EMPTY,	public_tls_cert, 0, 0),
	CF("public_tls_key",	 CF_PATH_OR_EMPTY,	public_tls_key, 0, 0),
	/* Each version's leaderboard POSTed to a push front (publish.c). */
	CF_RESTART("publish_url",	 CF_PUBLISH,		publish_url, 0, 0),
};

int
config_defaults(struct config *cf)
{
	memset(cf, 0, sizeof(*cf));
	/*
	 * The default election: the copy beside the working directory (a
	 * source checkout), else the one meson install put in the data dir,
	 * else the one in the source tree the build came from.
	 */
	cf->election = strdup("config/elections/iraq-2018.json");
	if (cf->election != NULL && access(cf->election, R_OK) == -1) {
		free(cf->election);
		cf->election = strdup(TALLYD_INSTALLED_ELECTION);
	}
	if (cf->election != NULL && access(cf->election, R_OK) == -1) {
		free(cf->election);
		cf->election = strdup(TALLYD_DEFAULT_ELECTION);
	}
	cf->listen = strdup("127.0.0.1:8080");
	cf->data_dir = strdup("var");
	cf->log_level = LOG_LEVEL_INFO;
	cf->max_age = 1;
	cf->body_limit = 1024 * 1024;
	cf->connection_timeout = 10;
	cf->per_ip_connection_limit = 64;
	cf->request_timeout = 30;
	cf->journal_stall_timeout = 30;
	cf->body_memory = 64L * 1024 * 1024;
	cf->connection_limit = 10000;
	cf->fsync_policy = JOURNAL_ALWAYS;
	cf->fsync_batch_ms = 1000;
	cf->snapshot_every = 100000;
	cf->ingest_rate = 0;
	cf->ingest_burst = 100;
	cf->sse_heartbeat = 15;
	cf->sse_stall_timeout = 30;
	cf->sse_max_clients = 7500;
	cf->keep_versions = 256;
	cf->transparency_log = 1;
	cf->witness_timeout = 5;
	cf->witness_interval = 1000;
	cf->cors_origin = strdup("*");
	cf->cluster_replicas = 3;
	if (cf->cors_origin == NULL || cf->election == NULL || cf->listen == NULL || cf->data_dir == NULL)
		return -1;
	return 0;
}

void
config_finish(struct config *cf)
{
	free(cf->path);
	free(cf->election);
	free(cf->contests);
	free(cf->listen);
	free(cf->ingest_listen);
	free(cf->data_dir);
	free(cf->log_file);
	free(cf->token_file);
	free(cf->log_key);
	free(cf->witnesses);
	free(cf->backup_dir);
	free(cf->cors_origin);
	free(cf->cluster_urls);
	free(cf->cluster_stream);
	free(cf->cluster_node);
	free(cf->publish_url);
	free(cf->tls_cert);
	free(cf->tls_key);
	free(cf->public_tls_cert);
	free(cf->public_tls_key);
	memset(cf, 0, sizeof(*cf));
}

int
config_split_hostport(const char *s, char *host, unsigned *port)
{
	const char *colon, *h = s;
	size_t hlen;
	char *end;
	unsigned long p;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		h = s + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen) != NULL)
			return -1;	/* bare IPv6 needs brackets */
	}
	if (hlen == 0 || hlen > 255)
		return -1;
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || p > 65535)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (unsigned)p;
	return 0;
}

/* Resolve a relative path against `dir` (the config file's directory). */
static char *
resolve(const char *dir, const char *value)
{
	char *out;

	if (dir == NULL || value[0] == '/')
		return strdup(value);
	if (asprintf(&out, "%s/%s", dir, value) == -1)
		return NULL;
	return out;
}

static int
set_key(struct config *cf, const struct cf_key *k, const char *value,
    const char *dir, const char *where, struct tally_diag *diag)
{
	char **sp = (char **)((char *)cf + k->offset);
	char host[256], why[512], *end, *n;
	unsigned port;
	long v;

	switch (k->type) {
	case CF_STRING_OR_EMPTY:
		/* A header value: printable ASCII only. */
		for (end = (char *)(uintptr_t)value; *end != '\0'; end++)
			if (*end < 0x20 || *end > 0x7e) {
				tally_diag_add(diag, "%s: %s: only printable "
				    "ASCII is allowed", where, k->name);
				return -1;
			}
		if (value[0] == '\0') {
			free(*sp);
			*sp = NULL;
			return 0;
		}
		if ((n = strdup(value)) == NULL)
			goto nomem;
		free(*sp);
		*sp = n;
		return 0;
	case CF_PUBLISH:
		if (value[0] == '\0') {
			free(*sp);
			*sp = NULL;
			return 0;
		}
		if (publish_parse(value, NULL, why, sizeof(why)) == -1) {
			tally_diag_add(diag, "%s: %s: %s", where, k->name, why);
			return -1;
		}
		if ((n = strdup(value)) == NULL)
			goto nomem;
		free(*sp);
		*sp = n;
		return 0;
	case CF_PATH_OR_EMPTY:
	case CF_ADDR_OR_EMPTY:
		if (value[0] == '\0') {
			free(*sp);
			*sp = NULL;
			return 0;
		}
		if (k->type == CF_PATH_OR_EMPTY)
			goto path;
		/* FALLTHROUGH */
	case CF_ADDR:
		if (config_split_hostport(value, host, &port) == -1) {
			tally_diag_add(diag, "%s: %s: \"%s\" is not HOST:PORT "
			    "(e.g. 127.0.0.1:8080 or [::1]:8080)", where,
			    k->name, value);
			return -1;
		}
		if ((n = strdup(value)) == NULL)
			goto nomem;
		free(*sp);
		*sp = n;
		return 0;
	case CF_PATH:
		if (value[0] == '\0') {
			tally_diag_add(diag, "%s: %s: a path is required",
			    where, k->name);
			return -1;
		}
path:
		if ((n = resolve(dir, value)) == NULL)
			goto nomem;
		free(*sp);
		*sp = n;
		return 0;
	case CF_PATH_LIST:
	case CF_WITNESS:
		/*
		 * Repeatable: each appends a path (newline-separated, so that
		 * a path may hold blanks) or a witness; "" empties the list.
		 */
		if (value[0] == '\0') {
			free(*sp);
			*sp = NULL;
			return 0;
		}
		if (k->type == CF_WITNESS) {
			if (tlog_push_parse(value, NULL, NULL, why,
			    sizeof(why)) == -1) {
				tally_diag_add(diag, "%s: %s: %s", where,
				    k->name, why);
				return -1;
			}
			n = strdup(value);
		} else
			n = resolve(dir, value);
		if (n == NULL)
			goto nomem;
		if (*sp != NULL) {
			char *joined;
			if (asprintf(&joined, "%s\n%s", *sp, n) == -1) {
				free(n);
				goto nomem;
			}
			free(n);
			n = joined;
		}
		free(*sp);
		*sp = n;
		return 0;
	case CF_LONG:
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno != 0 || *end != '\0' || end == value || v < k->min ||
		    v > k->max) {
			tally_diag_add(diag, "%s: %s: \"%s\" must be an integer "
			    "from %ld to %ld", where, k->name, value, k->min,
			    k->max);
			return -1;
		}
		*(long *)((char *)cf + k->offset) = v;
		return 0;
	case CF_LEVEL:
		if (strcmp(value, "warn") == 0)
			cf->log_level = LOG_LEVEL_WARN;
		else if (strcmp(value, "info") == 0)
			cf->log_level = LOG_LEVEL_INFO;
		else if (strcmp(value, "debug") == 0)
			cf->log_level = LOG_LEVEL_DEBUG;
		else {
			tally_diag_add(diag, "%s: %s: \"%s\" must be warn, info "
			    "or debug", where, k->name, value);
			return -1;
		}
		return 0;
	case CF_FSYNC:
		/* always | batch:<ms> | off */
		if (strcmp(value, "always") == 0)
			cf->fsync_policy = JOURNAL_ALWAYS;
		else if (strcmp(value, "off") == 0)
			cf->fsync_policy = JOURNAL_OFF;
		else if (strncmp(value, "batch:", 6) == 0 &&
		    (v = strtol(value + 6, &end, 10)) >= 1 && v <= 60000 &&
		    *end == '\0' && end != value + 6) {
			cf->fsync_policy = JOURNAL_BATCH;
			cf->fsync_batch_ms = v;
		} else {
			tally_diag_add(diag, "%s: %s: \"%s\" must be always, "
			    "batch:<ms> (1 to 60000) or off", where, k->name,
			    value);
			return -1;
		}
		return 0;
	}
	return -1;
nomem:
	tally_diag_add(diag, "%s: %s: out of memory", where, k->name);
	return -1;
}

static const struct cf_key *
find_key(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(cf_keys) / sizeof(cf_keys[0]); i++)
		if (strcmp(cf_keys[i].name, name) == 0)
			return &cf_keys[i];
	return NULL;
}

int
config_set(struct config *cf, const char *key, const char *value,
    struct tally_diag *diag)
{
	const struct cf_key *k = find_key(key);
	char where[64];

	snprintf(where, sizeof(where), "--%s", key);
	if (k == NULL) {
		tally_diag_add(diag, "unknown setting %s", key);
		return -1;
	}
	return set_key(cf, k, value, NULL, where, diag);
}

int
config_load(struct config *cf, const char *path, struct tally_diag *diag)
{
	char line[4096], where[PATH_MAX + 32], *copy, *dir;
	size_t before = diag->count;
	unsigned lineno = 0;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		tally_diag_add(diag, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	if ((copy = strdup(path)) == NULL) {
		fclose(f);
		tally_diag_add(diag, "%s: out of memory", path);
		return -1;
	}
	dir = dirname(copy);
	while (fgets(line, sizeof(line), f) != NULL) {
		const struct cf_key *k;
		char *key, *value, *e;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (strchr(line, '\n') == NULL && !feof(f)) {
			tally_diag_add(diag, "%s: line too long", where);
			break;
		}
		/* Strip comments and surrounding blanks. */
		if ((e = strchr(line, '#')) != NULL)
			*e = '\0';
		for (key = line; isspace((unsigned char)*key); key++)
			;
		e = key + strlen(key);
		while (e > key && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (*key == '\0')
			continue;
		for (value = key; *value && !isspace((unsigned char)*value); value++)
			;
		if (*value != '\0')
			*value++ = '\0';
		while (isspace((unsigned char)*value))
			value++;
		/* A value may be quoted to hold blanks or be empty: "". */
		if (value[0] == '"') {
			size_t vl = strlen(value);
			if (vl < 2 || value[vl - 1] != '"') {
				tally_diag_add(diag, "%s: %s: unterminated quote",
				    where, key);
				continue;
			}
			value[vl - 1] = '\0';
			value++;
		}
		if ((k = find_key(key)) == NULL) {
			tally_diag_add(diag, "%s: unknown key \"%s\" (see "
			    "config/tallyd.conf for every key)", where, key);
			continue;
		}
		set_key(cf, k, value, dir, where, diag);
	}
	fclose(f);
	free(copy);
	free(cf->path);
	cf->path = strdup(path);
	return diag->count == before ? 0 : -1;
}

/* A key's value in cf as text, for the reload's log lines. */
static void
key_text(const struct config *cf, const struct cf_key *k, char *buf,
    size_t len)
{
	const char *const *sp = (const char *const *)(const void *)
	    ((const char *)cf + k->offset);

	switch (k->type) {
	case CF_LONG:
		snprintf(buf, len, "%ld",
		    *(const long *)(const void *)((const char *)cf + k->offset));
		return;
	case CF_LEVEL:
		snprintf(buf, len, "%s", cf->log_level == LOG_LEVEL_WARN ?
		    "warn" : cf->log_level == LOG_LEVEL_DEBUG ? "debug" : "info");
		return;
	case CF_FSYNC:
		if (cf->fsync_policy == JOURNAL_BATCH)
			snprintf(buf, len, "batch:%ld", cf->fsync_batch_ms);
		else
			snprintf(buf, len, "%s", cf->fsync_policy ==
			    JOURNAL_OFF ? "off" : "always");
		return;
	default:
		snprintf(buf, len, "%s", *sp != NULL ? *sp : "(none)");
		/* A list (contest lines) on one log line. */
		for (; k->type == CF_PATH_LIST && *buf != '\0'; buf++)
			if (*buf == '\n')
				*buf = ' ';
		return;
	}
}

/* Swap one key's value between a and b (the reload keeps a restart key). */
static void
key_swap(struct config *a, struct config *b, const struct cf_key *k)
{
	char *pa = (char *)a + k->offset, *pb = (char *)b + k->offset;
	char tmp[sizeof(long) > sizeof(char *) ? sizeof(long) :
	    sizeof(char *)];
	size_t n;

	switch (k->type) {
	case CF_LONG:
		n = sizeof(long);
		break;
	case CF_LEVEL:
		n = sizeof(a->log_level);
		break;
	case CF_FSYNC:
		n = sizeof(a->fsync_policy);
		memcpy(tmp, &a->fsync_batch_ms, sizeof(long));
		memcpy(&a->fsync_batch_ms, &b->fsync_batch_ms, sizeof(long));
		memcpy(&b->fsync_batch_ms, tmp, sizeof(long));
		break;
	default:
		n = sizeof(char *);
		break;
	}
	memcpy(tmp, pa, n);
	memcpy(pa, pb, n);
	memcpy(pb, tmp, n);
}

size_t
config_reload_note(struct config *cur, struct config *next)
{
	char was[512], now[512];
	size_t i, changed = 0, waiting = 0;

	for (i = 0; i < sizeof(cf_keys) / sizeof(cf_keys[0]); i++) {
		const struct cf_key *k = &cf_keys[i];
		key_text(cur, k, was, sizeof(was));
		key_text(next, k, now, sizeof(now));
		/*
		 * Without log_file, a reload keeps the file in use (main.c's
		 * reload): a detached tallyd logs to DATA_DIR/tallyd.log, a
		 * name no file gives.
		 */
		if (k->offset == offsetof(struct config, log_file) &&
		    next->log_file == NULL)
			continue;
		if (strcmp(was, now) == 0)
			continue;
		changed++;
		if (k->restart) {
			waiting++;
			log_warnx("reload: %s changed from %s to %s: it takes "
			    "effect at the next restart; %s stays in force "
			    "until then", k->name, was, now, was);
			key_swap(cur, next, k);
		} else
			log_info("reload: %s changed from %s to %s", k->name,
			    was, now);
	}
	if (changed == 0)
		log_info("reload: no setting changed");
	else if (waiting > 0)
		log_warnx("reload: %zu of %zu changed settings wait for a "
		    "restart (named above)", waiting, changed);
	return waiting;
}
