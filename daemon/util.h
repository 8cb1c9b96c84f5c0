/*
 * util.h - small helpers of the daemon (util.c).
 *
 * Threads: any; they keep no state (the caller owns buf and dir).
 */
#ifndef TALLYD_UTIL_H
#define TALLYD_UTIL_H

#include <stddef.h>
#include <time.h>

/* RFC 3339 UTC with seconds: "2018-05-14T18:00:00Z". buf >= 21 bytes. */
void	time_rfc3339(time_t t, char *buf, size_t len);
/* RFC 7231 IMF-fixdate for Last-Modified. buf >= 30 bytes. */
void	time_http(time_t t, char *buf, size_t len);
/* fsync a directory, so that a rename or a new file in it is durable. */
int	fsync_dir(const char *dir);

#endif
