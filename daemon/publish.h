/*
 * publish.h - the publisher mode (publish.c): tallyd POSTs each new
 * version's leaderboard to a push front's publisher endpoint (nginx +
 * nchan, config/nchan/; docs/DEPLOY.md "A push front"), so that the
 * front, not tallyd, holds the subscribers.
 *
 * Threads: the loop thread [L] calls everything here; the requests run on
 * the publisher's own thread [W] (publish.c says which field is whose).
 */
#ifndef TALLYD_PUBLISH_H
#define TALLYD_PUBLISH_H

#include <stddef.h>
#include <stdio.h>

struct api;
struct config;
struct event_base;
struct tlog_push_target;

/*
 * Parse one `publish_url` value, "http://HOST[:PORT]/PATH" (the
 * publisher location of a channel), into t (may be NULL).  0, or -1 with
 * why (what to fix).  config.c checks the setting with it.
 */
int	publish_parse(const char *value, struct tlog_push_target *t, char *why,
	    size_t len);
/*
 * Start publishing the versions of api's contest (borrowed, kept) to
 * cf->publish_url (NULL: a no-op): the current version at once, then
 * every new one, from a thread of its own.  0, or -1 (logged: tallyd
 * serves on without a publisher).
 */
int	publish_start(struct api *api, struct event_base *base,
	    const struct config *cf);
/* Stop the thread (a request in flight is abandoned) and free; no-op when
 * not started. */
void	publish_finish(void);
/* Prometheus lines of the publisher (nothing when not configured). */
void	publish_metrics(FILE *f);

#endif
