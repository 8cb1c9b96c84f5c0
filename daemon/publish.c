/*
 * publish.c - the publisher mode: each new version's leaderboard is POSTed
 * to a push front's publisher endpoint (`publish_url`; nginx + nchan,
 * config/nchan/), which fans it out to its own subscribers (SSE and
 * long-poll).  tallyd then holds one connection per front, not one per
 * reader.
 *
 * The core tells us of every version on the loop [L] (core_subscribe):
 * the leaderboard view is rendered (once per version: the cache keeps it
 * for GET and the event stream too) and its bytes - exactly those GET
 * /v1/leaderboard answers at that version - are copied into a job on a
 * bounded queue.  The publisher's own thread [W] takes the jobs in order
 * and POSTs each once, with `X-EventSource-Event: leaderboard` (the event
 * name tallyd's own /v1/events gives these bytes) and Content-Type
 * application/json (what nchan's long-poll answers then carry).  Nothing
 * here ever waits on the front from the loop: a POST is answered whether
 * the front is up, slow or gone.
 *
 * When the front falls behind, the queue is coalesced to the latest
 * version (a subscriber of a live count wants the newest state, not every
 * step; each version's bytes are complete).  When the front is down, the
 * first failure is logged once (on the loop: the thread never logs, see
 * log.h), counted in /metrics, and the thread retries with backoff, always
 * with the latest version, so that the front's last message is the final
 * state once it is back.  A front that restarted loses its channels
 * (nchan keeps them in memory): when idle, the thread asks the publisher
 * endpoint about the channel every PROBE_MS (GET: nchan answers 404, or
 * "queued messages: 0", for a channel it does not hold) and publishes the
 * last version again.  At start the current version is published, once:
 * a front that kept the version from before a restart of tallyd shows it
 * twice (the same bytes; the "version" field says so), which costs less
 * than a front left behind by a version tallyd applied but had not yet
 * published when it stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "call.h"
#include "config.h"
#include "core.h"
#include "log.h"
#include "publish.h"
#include "tlog_push.h"
#include "views.h"

#define PUBLISH_QUEUE	64	/* versions waiting; more: coalesced */
#define PROBE_MS	1000	/* idle: is the channel still there? */
#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	2000
#define TIMEOUT_MS	5000	/* one request */

/* One version to publish: everything the thread needs (redis bio.c). */
struct job {
	uint64_t	 version;
	char		*bytes;		/* owned */
	size_t		 len;
};

static struct {
	/* [I] from publish_start */
	struct tlog_push_target	 target;
	struct api		*api;		/* borrowed */
	pthread_t		 thread;
	bool			 started;
	int			 stop[2];	/* readable: stop ([L] writes) */
	int			 wake[2];	/* [W] writes, [L] reads */
	struct event		*ev_wake;	/* [L] */
	/* [M] under mu */
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	struct job		 q[PUBLISH_QUEUE];	/* a ring */
	size_t			 head, n;
	bool			 stopping;
	bool			 up;		/* the last request got through */
	char			 error[300];	/* why not, when !up */
	uint64_t		 version;	/* the last version the front took */
	unsigned long		 published;	/* POSTs the front took */
	unsigned long		 failures;	/* requests that failed */
	unsigned long		 coalesced;	/* versions never published */
	unsigned long		 republished;	/* a lost channel refilled */
	/* [L] */
	bool			 logged_down;	/* said once per outage */
} pub = { .stop = { -1, -1 }, .wake = { -1, -1 },
    .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
    .up = true };

int
publish_parse(const char *value, struct tlog_push_target *t, char *why,
    size_t len)
{
	struct tlog_push_target tt;
	const char *p, *slash, *colon;
	unsigned long port = 80;
	char *end;

	if (t == NULL)
		t = &tt;
	memset(t, 0, sizeof(*t));
	if (strncmp(value, "http://", 7) != 0)
		goto bad;
	p = value + 7;
	if ((slash = strchr(p, '/')) == NULL || slash[1] == '\0' ||
	    strpbrk(slash, " \t\r\n") != NULL)
		goto bad;
	if (*p == '[') {
		/* An IPv6 literal: "[::1]:9080". */
		if ((colon = memchr(p, ']', (size_t)(slash - p))) == NULL)
			goto bad;
		if ((size_t)(colon - p - 1) >= sizeof(t->host))
			goto bad;
		memcpy(t->host, p + 1, (size_t)(colon - p - 1));
		colon++;
		if (colon != slash && *colon != ':')
			goto bad;
	} else {
		if ((colon = memchr(p, ':', (size_t)(slash - p))) == NULL)
			colon = slash;
		if ((size_t)(colon - p) >= sizeof(t->host))
			goto bad;
		memcpy(t->host, p, (size_t)(colon - p));
	}
	if (t->host[0] == '\0')
		goto bad;
	if (colon != slash) {
		port = strtoul(colon + 1, &end, 10);
		if (end != slash || end == colon + 1 || port == 0 ||
		    port > 65535)
			goto bad;
	}
	snprintf(t->port, sizeof(t->port), "%lu", port);
	if (strlen(slash) >= sizeof(t->path) ||
	    strlen(value) >= sizeof(t->url))
		goto bad;
	snprintf(t->path, sizeof(t->path), "%s", slash);
	snprintf(t->url, sizeof(t->url), "%s", value);
	return 0;
bad:
	snprintf(why, len, "\"%s\" is not http://HOST[:PORT]/PATH (the push "
	    "front's publisher location of the channel, plain HTTP, e.g. "
	    "http://127.0.0.1:8081/pub/leaderboard)", value);
	return -1;
}

/* Tell the loop that up/error moved (it logs; the thread may not). [W] */
static void
poke(void)
{
	char c = 1;

	if (write(pub.wake[1], &c, 1) == -1) {
		/* Full pipe: the loop has a byte to read already. */
	}
}

/* Sleep ms, or less when stopping.  [W] */
static void
nap(int ms)
{
	struct pollfd p = { .fd = pub.stop[0], .events = POLLIN };

	while (poll(&p, 1, ms) == -1 && errno == EINTR)
		;
}

/*
 * Does the front hold the channel?  1 yes (or it cannot say), 0 no (a
 * restarted front: publish again), -1 no answer (r->err).  [W]
 */
static int
probe(char *err, size_t errlen)
{
	struct tlog_push_resp r;
	int held;

	if (tlog_push_http_request(&pub.target, "GET", "Accept: text/plain"
	    "\r\n", "", 0, TIMEOUT_MS, pub.stop[0], &r) == -1) {
		snprintf(err, errlen, "%s", r.err);
		return -1;
	}
	held = !(r.status == 404 || (r.status == 200 && r.body != NULL &&
	    strstr(r.body, "queued messages: 0") != NULL));
	if (r.status >= 500) {
		snprintf(err, errlen, "GET %s: status %d", pub.target.path,
		    r.status);
		held = -1;
	}
	free(r.body);
	return held;
}

/* POST one job.  0, or -1 with err.  [W] */
static int
post(const struct job *j, char *err, size_t errlen)
{
	struct tlog_push_resp r;
	int rc = 0;

	if (tlog_push_http_request(&pub.target, "POST", "Content-Type: "
	    "application/json\r\nX-EventSource-Event: leaderboard\r\n",
	    j->bytes, j->len, TIMEOUT_MS, pub.stop[0], &r) == -1) {
		snprintf(err, errlen, "%s", r.err);
		return -1;
	}
	/* nchan: 201 a new channel, 202 an existing one. */
	if (r.status < 200 || r.status > 299) {
		snprintf(err, errlen, "POST %s: status %d %.100s",
		    pub.target.path, r.status, r.body ? r.body : "");
		rc = -1;
	}
	free(r.body);
	return rc;
}

/* The newest queued job, the others dropped (counted).  [M] held. */
static struct job
take_latest(void)
{
	struct job j;

	while (pub.n > 1) {
		free(pub.q[pub.head].bytes);
		pub.head = (pub.head + 1) % PUBLISH_QUEUE;
		pub.n--;
		pub.coalesced++;
	}
	j = pub.q[pub.head];
	pub.head = (pub.head + 1) % PUBLISH_QUEUE;
	pub.n--;
	return j;
}

static void *
publish_main(void *arg)
{
	struct job cur = { 0 }, held = { 0 };	/* [W] in hand; the front's */
	char err[300];
	int backoff = 0, rc;
	bool probe_due, again;

	(void)arg;
	for (;;) {
		probe_due = false;
		pthread_mutex_lock(&pub.mu);
		if (cur.bytes != NULL && pub.n > 0) {
			/* A retry: with the latest version, not this one. */
			free(cur.bytes);
			pub.coalesced++;
			cur = take_latest();
		}
		while (cur.bytes == NULL && pub.n == 0 && !pub.stopping &&
		    !probe_due) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += PROBE_MS / 1000;
			until.tv_nsec += (PROBE_MS % 1000) * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&pub.cv, &pub.mu, &until) ==
			    ETIMEDOUT)
				probe_due = true;
		}
		if (pub.stopping) {
			pthread_mutex_unlock(&pub.mu);
			break;
		}
		if (cur.bytes == NULL && pub.n > 0) {
			/* In order while the front keeps up; the latest when
			 * the queue is full (publish_on_version). */
			cur = pub.q[pub.head];
			pub.head = (pub.head + 1) % PUBLISH_QUEUE;
			pub.n--;
		}
		pthread_mutex_unlock(&pub.mu);

		again = false;
		if (cur.bytes == NULL) {
			/* Idle: is the channel still there? */
			if ((rc = probe(err, sizeof(err))) == 1)
				continue;
			if (rc == 0 && held.bytes != NULL &&
			    (cur.bytes = malloc(held.len + 1)) != NULL) {
				memcpy(cur.bytes, held.bytes, held.len);
				cur.len = held.len;
				cur.version = held.version;
				again = true;
			}
		}
		if (cur.bytes != NULL && (rc = post(&cur, err,
		    sizeof(err))) == 0) {
			pthread_mutex_lock(&pub.mu);
			pub.published++;
			pub.republished += again;
			pub.version = cur.version;
			if (!pub.up) {
				pub.up = true;
				poke();
			}
			pthread_mutex_unlock(&pub.mu);
			free(held.bytes);
			held = cur;
			cur = (struct job){ 0 };
			backoff = 0;
			continue;
		}
		if (rc == 0) {
			/* The channel is gone, with nothing to refill it. */
			continue;
		}
		if (again) {
			/* Not a job of the queue: the next probe tries again. */
			free(cur.bytes);
			cur = (struct job){ 0 };
		}
		pthread_mutex_lock(&pub.mu);
		pub.failures++;
		snprintf(pub.error, sizeof(pub.error), "%s", err);
		if (pub.up) {
			pub.up = false;
			poke();
		}
		pthread_mutex_unlock(&pub.mu);
		backoff = backoff == 0 ? BACKOFF_MIN_MS :
		    backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		nap(backoff);
	}
	free(cur.bytes);
	free(held.bytes);
	return NULL;
}

/* The thread said up/down moved: log the outage once, and its end. [L] */
static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	char buf[64], error[300];
	uint64_t version;
	bool up;

	(void)what;
	(void)arg;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&pub.mu);
	up = pub.up;
	version = pub.version;
	snprintf(error, sizeof(error), "%s", pub.error);
	pthread_mutex_unlock(&pub.mu);
	if (!up && !pub.logged_down) {
		log_warnx("publish: the push front at %s is unreachable (%s): "
		    "ingest goes on; retrying with the latest version",
		    pub.target.url, error);
		pub.logged_down = true;
	} else if (up && pub.logged_down) {
		log_info("publish: the push front at %s took version %llu: "
		    "back in service", pub.target.url,
		    (unsigned long long)version);
		pub.logged_down = false;
	}
}

/* A new version (a core_subscribe hook): its leaderboard, queued.  [L] */
static void
on_version(void *arg, uint64_t version, const size_t *changed, size_t n)
{
	struct view *v;
	struct job j;

	(void)arg;
	(void)changed;
	(void)n;
	if ((v = views_current(pub.api->views, VIEW_LEADERBOARD, 0)) == NULL ||
	    (j.bytes = malloc(v->len + 1)) == NULL) {
		/* The next version publishes the whole state again. */
		log_warnx("publish: version %llu not published: out of memory",
		    (unsigned long long)version);
		return;
	}
	memcpy(j.bytes, v->bytes, v->len);
	j.len = v->len;
	j.version = version;
	pthread_mutex_lock(&pub.mu);
	if (pub.n == PUBLISH_QUEUE) {
		/* The front fell behind: only the latest counts. */
		while (pub.n > 0) {
			free(pub.q[pub.head].bytes);
			pub.head = (pub.head + 1) % PUBLISH_QUEUE;
			pub.n--;
			pub.coalesced++;
		}
	}
	pub.q[(pub.head + pub.n) % PUBLISH_QUEUE] = j;
	pub.n++;
	pthread_cond_signal(&pub.cv);
	pthread_mutex_unlock(&pub.mu);
}

int
publish_start(struct api *api, struct event_base *base,
    const struct config *cf)
{
	char why[512];
	int i;

	if (cf->publish_url == NULL || pub.started)
		return 0;
	if (publish_parse(cf->publish_url, &pub.target, why,
	    sizeof(why)) == -1) {
		log_warnx("publish_url: %s: not publishing", why);
		return -1;
	}
	pub.api = api;
	if (pipe2(pub.stop, O_CLOEXEC) == -1 ||
	    pipe2(pub.wake, O_CLOEXEC | O_NONBLOCK) == -1) {
		log_warn("publish: pipe");
		goto fail;
	}
	if ((pub.ev_wake = event_new(base, pub.wake[0], EV_READ | EV_PERSIST,
	    on_wake, NULL)) == NULL || event_add(pub.ev_wake, NULL) == -1 ||
	    core_subscribe(api->core, on_version, NULL) == -1) {
		log_warnx("publish: cannot follow the versions");
		goto fail;
	}
	/* The current version first: the front may hold nothing yet. */
	on_version(NULL, core_state(api->core)->version, NULL, 0);
	if ((errno = pthread_create(&pub.thread, NULL, publish_main,
	    NULL)) != 0) {
		log_warn("publish: pthread_create");
		goto fail;
	}
	pub.started = true;
	log_info("publish: every version's leaderboard goes to %s",
	    pub.target.url);
	return 0;
fail:
	/* A subscription made stays, with nothing to follow (pub.n capped). */
	if (pub.ev_wake != NULL)
		event_free(pub.ev_wake);
	pub.ev_wake = NULL;
	for (i = 0; i < 2; i++) {
		if (pub.stop[i] != -1)
			close(pub.stop[i]);
		if (pub.wake[i] != -1)
			close(pub.wake[i]);
		pub.stop[i] = pub.wake[i] = -1;
	}
	return -1;
}

void
publish_finish(void)
{
	char c = 1;

	if (!pub.started)
		return;
	pthread_mutex_lock(&pub.mu);
	pub.stopping = true;
	pthread_cond_signal(&pub.cv);
	pthread_mutex_unlock(&pub.mu);
	if (write(pub.stop[1], &c, 1) == -1)
		log_warn("publish: stop");
	pthread_join(pub.thread, NULL);
	pub.started = false;
	while (pub.n > 0) {
		free(pub.q[pub.head].bytes);
		pub.head = (pub.head + 1) % PUBLISH_QUEUE;
		pub.n--;
	}
	event_free(pub.ev_wake);
	pub.ev_wake = NULL;
	close(pub.stop[0]);
	close(pub.stop[1]);
	close(pub.wake[0]);
	close(pub.wake[1]);
	pub.stop[0] = pub.stop[1] = pub.wake[0] = pub.wake[1] = -1;
}

void
publish_metrics(FILE *f)
{
	if (!pub.started)
		return;
	pthread_mutex_lock(&pub.mu);
	fprintf(f, "# HELP tallyd_publish_up 1 when the last request to the "
	    "push front (publish_url) got through.\n"
	    "# TYPE tallyd_publish_up gauge\n"
	    "tallyd_publish_up %d\n"
	    "# HELP tallyd_publish_version The last version the push front "
	    "took.\n"
	    "# TYPE tallyd_publish_version gauge\n"
	    "tallyd_publish_version %llu\n"
	    "# HELP tallyd_publish_queued Versions waiting for the publisher "
	    "thread.\n"
	    "# TYPE tallyd_publish_queued gauge\n"
	    "tallyd_publish_queued %zu\n"
	    "# HELP tallyd_publish_published_total Versions the push front "
	    "took.\n"
	    "# TYPE tallyd_publish_published_total counter\n"
	    "tallyd_publish_published_total %lu\n"
	    "# HELP tallyd_publish_failures_total Requests to the push front "
	    "that failed.\n"
	    "# TYPE tallyd_publish_failures_total counter\n"
	    "tallyd_publish_failures_total %lu\n"
	    "# HELP tallyd_publish_coalesced_total Versions skipped for a "
	    "later one while the front was behind or down.\n"
	    "# TYPE tallyd_publish_coalesced_total counter\n"
	    "tallyd_publish_coalesced_total %lu\n"
	    "# HELP tallyd_publish_republished_total Times a front that lost "
	    "the channel got the last version again.\n"
	    "# TYPE tallyd_publish_republished_total counter\n"
	    "tallyd_publish_republished_total %lu\n",
	    pub.up ? 1 : 0, (unsigned long long)pub.version, pub.n,
	    pub.published, pub.failures, pub.coalesced, pub.republished);
	pthread_mutex_unlock(&pub.mu);
}
