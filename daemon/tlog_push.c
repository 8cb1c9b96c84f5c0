/*
 * tlog_push.c - tallyd asks the witnesses of its configuration to cosign
 * each new checkpoint (C2SP tlog-witness, push: docs/VERIFY.md
 * "Witnesses").
 *
 * Every `witness_interval` ms a loop timer looks at the tree: when it grew
 * past what a witness cosigned, the checkpoint of the current size is
 * signed (once per size, tlogd_checkpoint) and each idle witness gets a
 * job: the add-checkpoint body, "old <the size it cosigned last>", the
 * consistency proof from that size, a blank line and the note.  The job
 * carries everything it needs (redis bio.c's contract): the witness's own
 * thread [W] posts it with the minimal client of tlog_push_http.c, within
 * `witness_timeout`, and hands the answer back through a pipe the loop
 * watches.  So a witness that is down, slow or refusing never touches a
 * POST, a GET or the loop: it only falls behind, with its error, its
 * last cosigned size and a backoff (1 s doubling to 60 s) in /healthz
 * and /metrics.
 *
 * Answers, on the loop [L]:
 *   200  the cosignature line(s): checked with the witness's key on the
 *	  note and kept with the others (tlog_witness_add: /log/witnessed,
 *	  /log/checkpoint carry them; DATA_DIR/tlog/witnessed keeps them
 *	  across restarts)
 *   409  with a size S other than the old sent: the witness's memory is
 *	  S (tallyd restarted, another node pushed): asked again at once
 *	  from S.  With the old sent, or S larger than the tree: the witness
 *	  holds another checkpoint of that size or a larger tree than this
 *	  log - a fork or a rollback; said loudly, and retried with backoff
 *	  (only the log's operator can settle it)
 *   422  the witness refused the consistency proof: this tree does not
 *	  extend the one it cosigned (a fork)
 *   else the error, and backoff.
 *
 * Where a witness starts: the size it cosigned in DATA_DIR/tlog/witnessed
 * when that carries its line, else 0; a wrong guess costs one 409.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <tally/tally.h>

#include "config.h"
#include "log.h"
#include "tlog_push.h"
#include "tlog_witness.h"
#include "tlogd.h"

#define BACKOFF_MIN	1.0	/* seconds */
#define BACKOFF_MAX	60.0

struct pw {
	/* [I] from the configuration */
	struct tlog_push_target	 target;
	struct tally_tlog_key	 key;
	pthread_t		 thread;
	bool			 started;
	/* [M] under mu: the job and its answer */
	pthread_mutex_t		 mu;
	pthread_cond_t		 cv;
	char			*job;		/* the request body */
	size_t			 job_len;
	bool			 done;
	bool			 stopping;
	struct tlog_push_resp	 resp;
	/* [L] */
	bool			 busy;		/* a job is out */
	uint64_t		 job_old, job_size;
	char			*job_note;	/* the checkpoint sent */
	size_t			 job_note_len;
	uint64_t		 old;		/* its size as far as we know */
	uint64_t		 cosigned;	/* the last size it cosigned */
	time_t			 cosigned_at;
	bool			 ok;		/* no failure since the last
						   cosignature (true until a
						   first request fails: no
						   alert before the log grows) */
	double			 next_try;	/* monotonic seconds */
	double			 backoff;
	unsigned		 conflicts;	/* 409s in a row */
	char			 error[400];
	time_t			 error_at;
	unsigned long		 requests, failures;
};

static struct {
	struct tlogd	*t;		/* [L] */
	struct pw	 w[TLOG_PUSH_MAX];
	size_t		 n;		/* [I] */
	int		 timeout_ms;	/* [I] */
	int		 wake[2];	/* [W] writes, [L] reads */
	int		 stop[2];	/* readable: stop ([L] writes) */
	struct event	*ev_wake, *ev_tick;
} push = { .wake = { -1, -1 }, .stop = { -1, -1 } };

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int
tlog_push_parse(const char *value, struct tlog_push_target *t,
    struct tally_tlog_key *k, char *why, size_t len)
{
	struct tlog_push_target tt;
	struct tally_tlog_key kk;
	struct tally_error err;
	const char *p, *sp, *hostend, *slash;
	size_t hl;
	unsigned long port = 80;
	char *end;

	if (t == NULL)
		t = &tt;
	if (k == NULL)
		k = &kk;
	memset(t, 0, sizeof(*t));
	if (strncmp(value, "http://", 7) != 0 ||
	    (sp = strchr(value, ' ')) == NULL) {
		snprintf(why, len, "\"%s\" is not \"http://HOST:PORT[/PREFIX] "
		    "KEY\" (the witness's URL, a blank, its verifier key)",
		    value);
		return -1;
	}
	p = value + 7;
	if ((slash = memchr(p, '/', (size_t)(sp - p))) == NULL)
		slash = sp;
	if (*p == '[') {
		if ((hostend = memchr(p, ']', (size_t)(slash - p))) == NULL)
			goto badurl;
		p++;
		hl = (size_t)(hostend - p);
		hostend++;
	} else {
		hostend = memchr(p, ':', (size_t)(slash - p));
		if (hostend == NULL)
			hostend = slash;
		hl = (size_t)(hostend - p);
	}
	if (hl == 0 || hl >= sizeof(t->host))
		goto badurl;
	memcpy(t->host, p, hl);
	if (hostend < slash) {
		if (*hostend != ':')
			goto badurl;
		port = strtoul(hostend + 1, &end, 10);
		if (end != slash || end == hostend + 1 || port == 0 ||
		    port > 65535)
			goto badurl;
	}
	snprintf(t->port, sizeof(t->port), "%lu", port);
	if ((size_t)(sp - slash) + sizeof("/add-checkpoint") > sizeof(t->path))
		goto badurl;
	/* The prefix without a trailing '/', then the call's name. */
	hl = (size_t)(sp - slash);
	while (hl > 0 && slash[hl - 1] == '/')
		hl--;
	snprintf(t->path, sizeof(t->path), "%.*s/add-checkpoint", (int)hl,
	    slash);
	snprintf(t->url, sizeof(t->url), "%.*s", (int)(sp - value), value);
	while (*sp == ' ' || *sp == '\t')
		sp++;
	if (tally_tlog_cosigner_key_parse(sp, k, &err) == -1) {
		snprintf(why, len, "the witness's key: %s (`tallyctl witness "
		    "key` prints it)", err.message);
		return -1;
	}
	return 0;
badurl:
	snprintf(why, len, "\"%.*s\" is not http://HOST:PORT[/PREFIX] (plain "
	    "HTTP: a TLS proxy in front of a remote witness)",
	    (int)(sp - value), value);
	return -1;
}

/* The witness's thread: one job at a time, until stopping. */
static void *
pw_main(void *arg)
{
	struct pw *w = arg;
	struct tlog_push_resp r;
	char *job;
	size_t len;
	char c = 1;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->job == NULL && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stopping) {
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		job = w->job;
		len = w->job_len;
		w->job = NULL;
		pthread_mutex_unlock(&w->mu);
		/* No lock held across the request. */
		(void)tlog_push_http_post(&w->target, job, len,
		    push.timeout_ms, push.stop[0], &r);
		free(job);
		pthread_mutex_lock(&w->mu);
		w->resp = r;
		w->done = true;
		pthread_mutex_unlock(&w->mu);
		while (write(push.wake[1], &c, 1) == -1 && errno == EINTR)
			;
	}
}

static void
pw_error(struct pw *w, bool loud, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A failed attempt: its error kept (logged when it changes), backoff. */
static void
pw_error(struct pw *w, bool loud, const char *fmt, ...)
{
	char msg[sizeof(w->error)];
	va_list ap;
	char *c;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A witness's words are not trusted to be text: printable ASCII. */
	for (c = msg; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	w->failures++;
	w->ok = false;
	w->error_at = time(NULL);
	w->backoff = w->backoff < BACKOFF_MIN ? BACKOFF_MIN :
	    w->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : w->backoff * 2;
	w->next_try = mono() + w->backoff;
	/* A flood of the same failure is one line, not one per try. */
	if (strcmp(msg, w->error) != 0) {
		if (loud)
			log_warnx("witness %s (%s): %s", w->key.name,
			    w->target.url, msg);
		else
			log_info("witness %s (%s): %s; retrying with backoff",
			    w->key.name, w->target.url, msg);
	}
	snprintf(w->error, sizeof(w->error), "%s", msg);
}

/* Hand w the checkpoint of the current size, if it needs it. */
static void
pw_try(struct pw *w)
{
	uint8_t proof[TALLY_TLOG_PROOF_MAX][32];
	const char *note;
	char *body, *nb;
	size_t nlen, np = 0, i, len;
	uint64_t size;
	int n;

	if (w->busy || !tlogd_ok(push.t) || (size = tlogd_size(push.t)) == 0 ||
	    (w->ok && w->cosigned == size) || w->old > size ||
	    mono() < w->next_try)
		return;
	if ((note = tlogd_checkpoint(push.t, &nlen)) == NULL)
		return;
	if (w->old > 0 && w->old < size && tlogd_consistency(push.t, w->old,
	    size, proof, &np) == -1)
		return;
	len = 32 + np * 45 + 1 + nlen;
	if ((body = malloc(len)) == NULL || (nb = malloc(nlen)) == NULL) {
		free(body);
		return;
	}
	n = snprintf(body, len, "old %llu\n", (unsigned long long)w->old);
	for (i = 0; i < np; i++) {
		tally_tlog_b64_encode(proof[i], 32, body + n);
		n += 44;
		body[n++] = '\n';
	}
	body[n++] = '\n';
	memcpy(body + n, note, nlen);
	memcpy(nb, note, nlen);
	free(w->job_note);
	w->job_note = nb;
	w->job_note_len = nlen;
	w->job_old = w->old;
	w->job_size = size;
	w->busy = true;
	w->requests++;
	pthread_mutex_lock(&w->mu);
	w->job = body;
	w->job_len = (size_t)n + nlen;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* A 200: its lines on our note, each checked, kept with the others. */
static void
pw_cosigned(struct pw *w, const struct tlog_push_resp *r)
{
	struct tlog_witness_result res;
	struct tally_error err;
	uint64_t ts;
	char *full;
	size_t len = w->job_note_len + r->len;

	if (r->len == 0 || r->body[r->len - 1] != '\n' ||
	    strncmp(r->body, "\xe2\x80\x94 ", 4) != 0 ||
	    (full = malloc(len + 1)) == NULL) {
		pw_error(w, true, "answered 200 without signature lines");
		return;
	}
	memcpy(full, w->job_note, w->job_note_len);
	memcpy(full + w->job_note_len, r->body, r->len);
	full[len] = '\0';
	err.message[0] = '\0';		/* not set when there is no line */
	if (tally_tlog_cosig_verify(full, len, &w->key, &ts, &err) != 1) {
		pw_error(w, true, "answered 200 without a valid cosignature "
		    "by its key (%s)", err.message[0] ? err.message :
		    "none by that name and id");
		free(full);
		return;
	}
	/* Kept unless a newer checkpoint is cosigned already (by another:
	 * then this one is only the witness's progress). */
	if (tlog_witness_add(push.t, full, len, &res) == -1 &&
	    strcmp(res.code, "older_checkpoint") != 0)
		log_warnx("witness %s: its cosignature of size %llu was not "
		    "kept: %s", w->key.name, (unsigned long long)w->job_size,
		    res.message);
	free(full);
	if (w->error[0] != '\0')
		log_info("witness %s (%s) cosigned size %llu again, after %s",
		    w->key.name, w->target.url,
		    (unsigned long long)w->job_size, w->error);
	w->error[0] = '\0';
	w->old = w->cosigned = w->job_size;
	w->cosigned_at = time(NULL);
	w->ok = true;
	w->backoff = 0;
	w->next_try = 0;
	w->conflicts = 0;
}

static void
pw_answer(struct pw *w, struct tlog_push_resp *r)
{
	unsigned long long s;
	char *end;

	w->busy = false;
	if (r->status == 0) {
		pw_error(w, false, "%s", r->err);
		return;
	}
	if (r->status == 200) {
		pw_cosigned(w, r);
		return;
	}
	if (r->status == 409) {
		s = strtoull(r->body, &end, 10);
		if (end == r->body || (*end != '\n' && *end != '\0')) {
			pw_error(w, true, "answered 409 without its size");
			return;
		}
		if (s == w->job_old) {
			/* It holds another checkpoint of this very size. */
			pw_error(w, true, "REFUSED the checkpoint of size %llu: "
			    "it cosigned another checkpoint of size %llu (the "
			    "log forked, or this data dir was replaced)",
			    (unsigned long long)w->job_size, s);
			return;
		}
		w->old = s;
		if (s > tlogd_size(push.t)) {
			/*
			 * Said once (the sizes are left out so that it is the
			 * same message each time): in a cluster another node
			 * is ahead for a moment; alone, the log was rolled
			 * back (a restore), and the alert fires.
			 */
			pw_error(w, false, "it cosigned a larger tree than "
			    "this log has (another node is ahead, or the log "
			    "was rolled back); waiting for the log to grow");
			w->next_try = 0;	/* again once the tree is there */
			return;
		}
		/* Its memory was not ours: once more from its size. */
		if (++w->conflicts > 3) {
			pw_error(w, true, "answered 409 %u times in a row",
			    w->conflicts);
			return;
		}
		pw_try(w);
		return;
	}
	if (r->status == 422) {
		pw_error(w, true, "REFUSED the consistency proof from size %llu "
		    "to %llu: this log's tree does not extend the checkpoint "
		    "it cosigned (the log forked?): %.120s",
		    (unsigned long long)w->job_old,
		    (unsigned long long)w->job_size, r->body);
		return;
	}
	pw_error(w, r->status != 503, "answered %d: %.160s", r->status,
	    r->body != NULL ? r->body : "");
}

/* Answers came in (the pipe): each handled on the loop. */
static void
push_on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct tlog_push_resp r;
	char buf[64];
	size_t i;
	bool done;

	(void)what;
	(void)arg;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	for (i = 0; i < push.n; i++) {
		struct pw *w = &push.w[i];
		pthread_mutex_lock(&w->mu);
		done = w->done;
		r = w->resp;
		w->done = false;
		memset(&w->resp, 0, sizeof(w->resp));
		pthread_mutex_unlock(&w->mu);
		if (!done)
			continue;
		pw_answer(w, &r);
		free(r.body);
	}
}

static void
push_on_tick(evutil_socket_t fd, short what, void *arg)
{
	size_t i;

	(void)fd;
	(void)what;
	(void)arg;
	for (i = 0; i < push.n; i++)
		pw_try(&push.w[i]);
}

/* Where each witness stands after a restart: the kept checkpoint, when it
 * carries the witness's line. */
static void
push_resume(void)
{
	struct tally_tlog_checkpoint cp;
	struct tally_error err;
	const char *note;
	size_t len, i;
	uint64_t ts;

	if ((note = tlog_witness_note(push.t, &len)) == NULL ||
	    tlogd_open_checkpoint(push.t, note, len, &cp, &err) == -1)
		return;
	for (i = 0; i < push.n; i++)
		if (tally_tlog_cosig_verify(note, len, &push.w[i].key, &ts,
		    &err) == 1) {
			push.w[i].old = push.w[i].cosigned = cp.size;
			push.w[i].ok = true;
		}
}

int
tlog_push_start(struct tlogd *t, struct event_base *base,
    const struct config *cf)
{
	struct timeval tv;
	char why[512], *list, *line, *save = NULL;
	struct pw *w;
	size_t i;

	if (cf->witnesses == NULL || t == NULL)
		return 0;
	push.t = t;
	push.timeout_ms = (int)cf->witness_timeout * 1000;
	if ((list = strdup(cf->witnesses)) == NULL)
		return -1;
	for (line = strtok_r(list, "\n", &save); line != NULL &&
	    push.n < TLOG_PUSH_MAX; line = strtok_r(NULL, "\n", &save)) {
		w = &push.w[push.n];
		if (tlog_push_parse(line, &w->target, &w->key, why,
		    sizeof(why)) == -1) {
			log_warnx("witness: %s", why);	/* config.c checked */
			continue;
		}
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
		w->ok = true;
		push.n++;
	}
	free(list);
	if (pipe2(push.wake, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    pipe2(push.stop, O_CLOEXEC | O_NONBLOCK) == -1 ||
	    (push.ev_wake = event_new(base, push.wake[0], EV_READ | EV_PERSIST,
	    push_on_wake, NULL)) == NULL ||
	    (push.ev_tick = event_new(base, -1, EV_PERSIST, push_on_tick,
	    NULL)) == NULL || event_add(push.ev_wake, NULL) == -1)
		goto fail;
	tv.tv_sec = cf->witness_interval / 1000;
	tv.tv_usec = (cf->witness_interval % 1000) * 1000;
	if (event_add(push.ev_tick, &tv) == -1)
		goto fail;
	{
		struct tally_tlog_key keys[TLOG_PUSH_MAX];
		for (i = 0; i < push.n; i++)
			keys[i] = push.w[i].key;
		tlog_witness_set_keys(keys, push.n);
	}
	push_resume();
	for (i = 0; i < push.n; i++) {
		w = &push.w[i];
		if (pthread_create(&w->thread, NULL, pw_main, w) != 0)
			goto fail;
		w->started = true;
		log_info("transparency log: witness %s at %s, cosigned size "
		    "%llu so far", w->key.name, w->target.url,
		    (unsigned long long)w->cosigned);
	}
	return 0;
fail:
	log_warn("transparency log: cannot start pushing to witnesses");
	tlog_push_stop();
	return -1;
}

void
tlog_push_stop(void)
{
	struct pw *w;
	size_t i;
	char c = 1;

	if (push.stop[1] != -1)
		(void)write(push.stop[1], &c, 1);	/* ends a request */
	for (i = 0; i < push.n; i++) {
		pthread_mutex_lock(&push.w[i].mu);
		push.w[i].stopping = true;
		pthread_cond_signal(&push.w[i].cv);
		pthread_mutex_unlock(&push.w[i].mu);
	}
	for (i = 0; i < push.n; i++) {
		w = &push.w[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		free(w->job);
		free(w->job_note);
		free(w->resp.body);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
	}
	if (push.ev_tick != NULL)
		event_free(push.ev_tick);
	if (push.ev_wake != NULL)
		event_free(push.ev_wake);
	for (i = 0; i < 2; i++) {
		if (push.wake[i] != -1)
			close(push.wake[i]);
		if (push.stop[i] != -1)
			close(push.stop[i]);
	}
	memset(&push, 0, sizeof(push));
	push.wake[0] = push.wake[1] = push.stop[0] = push.stop[1] = -1;
}

void
tlog_push_finish(void)
{
	/* The threads first: they feed what tlog_witness.c frees. */
	tlog_push_stop();
	tlog_witness_finish();
}

void
tlog_push_metrics(FILE *f)
{
	const char *m[] = {
	    "tallyd_witness_cosigned_size", "gauge", "The last tree size "
	    "each witness cosigned (0: none yet).",
	    "tallyd_witness_up", "gauge", "Whether the last request to the "
	    "witness got a cosignature, or none was needed yet (1), or it "
	    "failed (0).",
	    "tallyd_witness_last_cosigned_timestamp_seconds", "gauge",
	    "When the witness last cosigned (0: not since the start).",
	    "tallyd_witness_requests_total", "counter", "add-checkpoint "
	    "requests sent to the witness.",
	    "tallyd_witness_failures_total", "counter", "Requests that got "
	    "no cosignature (no answer, a refusal, an error).",
	};
	size_t i, k;

	if (push.n == 0)
		return;
	for (k = 0; k < sizeof(m) / sizeof(m[0]); k += 3) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m[k], m[k + 2],
		    m[k], m[k + 1]);
		for (i = 0; i < push.n; i++) {
			const struct pw *w = &push.w[i];
			unsigned long long v = k == 0 ? w->cosigned : k == 3 ?
			    w->ok : k == 6 ? (unsigned long long)w->cosigned_at :
			    k == 9 ? w->requests : w->failures;
			fprintf(f, "%s{witness=\"%s\"} %llu\n", m[k],
			    w->key.name, v);
		}
	}
}

void
tlog_push_health(json_t *o)
{
	json_t *a, *e;
	size_t i;
	char at[32];

	if (push.n == 0 || (a = json_array()) == NULL)
		return;
	for (i = 0; i < push.n; i++) {
		const struct pw *w = &push.w[i];
		if ((e = json_object()) == NULL)
			break;
		json_object_set_new(e, "name", json_string(w->key.name));
		json_object_set_new(e, "url", json_string(w->target.url));
		json_object_set_new(e, "cosigned_size",
		    json_integer((json_int_t)w->cosigned));
		json_object_set_new(e, "ok", json_boolean(w->ok));
		if (w->error[0] != '\0') {
			struct tm tm;
			gmtime_r(&w->error_at, &tm);
			strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
			json_object_set_new(e, "error", json_string(w->error));
			json_object_set_new(e, "error_at", json_string(at));
		}
		json_array_append_new(a, e);
	}
	json_object_set_new(o, "witnesses", a);
}
