/*
 * tallyd.h - the daemon's private header, on its way out (issue 22): each
 * module now has a header of its own, declaring its interface and which
 * thread may call what (log.h, config.h, util.h, journal.h, snapshot.h,
 * datadir.h, core.h, cluster.h, auth.h, notify.h, metrics.h); this file
 * includes them so that every .c file compiles unchanged, and still holds
 * the server's, http_strict's, the API's and the page's sections.
 */
#ifndef TALLYD_H
#define TALLYD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <tally/tally.h>

/* The leaf modules, each with its own header (issue 22). */
#include "auth.h"
#include "config.h"
#include "http_strict.h"
#include "log.h"
#include "notify.h"
#include "util.h"
#include "response.h"

struct event_base;

/* The commit core and the logs behind it (issue 22). */
#include "journal.h"
#include "snapshot.h"
#include "datadir.h"
#include "core.h"
#include "cluster.h"

/* server.c: the listeners on the event loop (server.h) */
#include "server.h"

/*
 * api.h: the HTTP API as main.c and server.c see it.  The API's own
 * modules (routes, call, get, ingest, live, views, metrics_http, reply,
 * cors) have a header each, included only where they are used.
 */
#include "api.h"
#include "metrics.h"

/* page.c, generated from www/ by www/embed.py: the election-night page */
extern const char	 page_html[];	/* page_html_len bytes and a NUL */
extern const size_t	 page_html_len;
extern const uint64_t	 page_html_digest;	/* FNV-1a of the bytes */

#endif
