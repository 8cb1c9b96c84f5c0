/* util.c - small helpers of the daemon. */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <tally/election.h>

#include "util.h"

void
time_rfc3339(time_t t, char *buf, size_t len)
{
	/* Every journal round stamps the time: formatted once a second
	 * (per thread, so callers on any thread may share it). */
	static _Thread_local char last[32];
	static _Thread_local time_t last_t = -1;
	struct tm tm;

	if (t != last_t) {
		gmtime_r(&t, &tm);
		if (strftime(last, sizeof(last), "%Y-%m-%dT%H:%M:%SZ",
		    &tm) == 0)
			last[0] = '\0';
		last_t = t;
	}
	snprintf(buf, len, "%s", last);
}

void
time_http(time_t t, char *buf, size_t len)
{
	struct tm tm;

	/* strftime's %a and %b follow the C locale, which the daemon keeps. */
	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd == -1)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

uint64_t
fnv1a64(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len-- > 0)
		h = fnv1a64_step(h, *p++);
	return h;
}

uint64_t
definition_digest(const struct tally_election *e)
{
	json_t *j = tally_election_dump(e);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	uint64_t h = 0;

	json_decref(j);
	if (s != NULL) {
		h = fnv1a64(FNV1A64_INIT, s, strlen(s));
		free(s);
	}
	return h;
}

int
mkdir_p(const char *path)
{
	char buf[4096], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	/* The journal and the token are nobody else's business. */
	if (mkdir(buf, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Exactly 16 lowercase hex digits: the form tallyd writes, so that the
 * name made again from the number (with %016 PRIx64) is the file listed.
 */
static bool
hex16(const char *s)
{
	size_t i;

	for (i = 0; i < 16; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int
list_numbered(const char *dir, const char *prefix, const char *suffix,
    uint64_t **nums, size_t *n)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	struct dirent *de;
	uint64_t *v = NULL, *nv;
	DIR *d;

	*n = 0;
	*nums = NULL;
	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l != pl + 16 + sl || strncmp(de->d_name, prefix, pl) != 0 ||
		    strcmp(de->d_name + l - sl, suffix) != 0 ||
		    !hex16(de->d_name + pl))
			continue;
		if ((nv = realloc(v, (*n + 1) * sizeof(*v))) == NULL) {
			free(v);
			closedir(d);
			*n = 0;
			errno = ENOMEM;
			return -1;
		}
		v = nv;
		v[(*n)++] = strtoull(de->d_name + pl, NULL, 16);
	}
	closedir(d);
	if (*n > 1)
		qsort(v, *n, sizeof(*v), u64_cmp);
	*nums = v;
	return 0;
}

bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}
