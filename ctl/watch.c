/*
 * watch.c - tallyctl watch: a live leaderboard in the terminal.
 *
 * The leaderboard comes from GET /v1/events (Server-Sent Events: a
 * `leaderboard` event per version, a `change` event saying what changed)
 * and, when the daemon has no event stream (404, 405), from a conditional
 * GET /v1/leaderboard with If-None-Match every --interval seconds.  On a
 * terminal the table is redrawn in place; otherwise each table is printed
 * after the previous one.  --once prints one table and exits.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "tallyctl.h"

struct watch {
	const struct ctl *ctl;
	bool		 tty;
	bool		 sse;		/* the table came from the event stream */
	unsigned long	 count;		/* stop after this many tables; 0: never */
	unsigned long	 drawn;
	json_t		*prev;		/* previous leaderboard (seats, votes) */
	char		 change[512];	/* the last change, as shown */
	char		 pending_change[256];	/* from a `change` event */
	char		 status[256];	/* unavailable, reconnecting, ... */
	/* SSE parser state (WHATWG "event stream interpretation") */
	char		*line;
	size_t		 llen, lcap;
	bool		 skip_lf;	/* a CR ended the last line */
	char		 event[64];
	char		*data;
	size_t		 dlen, dcap;
	char		 last_id[128];
	long		 retry_ms;
	bool		 stop;
};

/* Print s in exactly w columns: cut or padded (left-aligned). */
static void
put_cell(const char *s, size_t w)
{
	size_t n = 0;
	const char *p;

	for (p = s; *p != '\0'; p++) {
		if (((unsigned char)*p & 0xC0) != 0x80) {
			if (n == w)
				break;
			n++;
		}
		putchar(*p);
	}
	for (; n < w; n++)
		putchar(' ');
}

/* 1234567 -> "1,234,567" */
static void
thousands(long long v, char *out, size_t n)
{
	char tmp[32];
	size_t len, i, o = 0;

	snprintf(tmp, sizeof(tmp), "%lld", v < 0 ? -v : v);
	len = strlen(tmp);
	if (v < 0 && o + 1 < n)
		out[o++] = '-';
	for (i = 0; i < len && o + 2 < n; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = tmp[i];
	}
	out[o] = '\0';
}

static json_int_t
jint(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);

	return json_integer_value(b ? json_object_get(v, b) : v);
}

static json_t *
find_coalition(json_t *lb, const char *id)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(lb, "coalitions"), i, c)
		if (strcmp(json_string_value(json_object_get(c, "id")) ?: "",
		    id) == 0)
			return c;
	return NULL;
}

/* What changed since the previous table: seats moved, provinces in. */
static void
describe_change(struct watch *w, json_t *lb)
{
	char buf[512], when[16] = "";
	const char *upd = json_string_value(json_object_get(lb, "updated_at"));
	size_t i, o = 0;
	json_t *c, *p;
	int n;

	if (w->prev == NULL) {
		if (w->pending_change[0] != '\0')
			snprintf(w->change, sizeof(w->change), "%s",
			    w->pending_change);
		return;
	}
	if (upd != NULL && strlen(upd) >= 19)
		snprintf(when, sizeof(when), " %.8s", upd + 11);
	n = snprintf(buf, sizeof(buf), "v%lld%s:", (long long)jint(lb,
	    "version", NULL), when);
	o = n > 0 ? (size_t)n : 0;
	if (w->pending_change[0] != '\0' && o < sizeof(buf)) {
		n = snprintf(buf + o, sizeof(buf) - o, " %s;", w->pending_change);
		o += n > 0 ? (size_t)n : 0;
	}
	json_array_foreach(json_object_get(lb, "coalitions"), i, c) {
		const char *id = json_string_value(json_object_get(c, "id"));
		json_int_t d;

		if (id == NULL || o >= sizeof(buf))
			continue;
		p = find_coalition(w->prev, id);
		d = jint(c, "seats", NULL) - (p ? jint(p, "seats", NULL) : 0);
		if (d != 0) {
			n = snprintf(buf + o, sizeof(buf) - o, " %s %+lld",
			    json_string_value(json_object_get(c, "short")) ?: id,
			    (long long)d);
			o += n > 0 ? (size_t)n : 0;
		}
	}
	if (o < sizeof(buf) && jint(lb, "provinces", "reporting") !=
	    jint(w->prev, "provinces", "reporting")) {
		n = snprintf(buf + o, sizeof(buf) - o, " provinces reporting "
		    "%lld -> %lld", (long long)jint(w->prev, "provinces",
		    "reporting"), (long long)jint(lb, "provinces", "reporting"));
		o += n > 0 ? (size_t)n : 0;
	}
	if (o < sizeof(buf) && jint(lb, "votes", "valid") !=
	    jint(w->prev, "votes", "valid")) {
		char d[32];
		thousands(jint(lb, "votes", "valid") - jint(w->prev, "votes",
		    "valid"), d, sizeof(d));
		snprintf(buf + o, sizeof(buf) - o, " %s%s valid votes",
		    d[0] == '-' ? "" : "+", d);
	}
	snprintf(w->change, sizeof(w->change), "%s", buf);
	w->pending_change[0] = '\0';
}

static int
term_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
		return ws.ws_row;
	return 24;
}

static void
draw(struct watch *w, json_t *lb)
{
	char votes[32], valid[32], when[16] = "";
	const char *upd = json_string_value(json_object_get(lb, "updated_at"));
	size_t i, shown = 0, rows;
	json_t *c, *p;

	if (w->prev != NULL && jint(w->prev, "version", NULL) ==
	    jint(lb, "version", NULL) && w->drawn > 0)
		return;			/* the same version again */
	describe_change(w, lb);
	rows = w->tty ? (size_t)(term_rows() > 10 ? term_rows() - 9 : 1) :
	    SIZE_MAX;
	if (w->tty)
		fputs("\033[H\033[2J", stdout);
	if (upd != NULL && strlen(upd) >= 19)
		snprintf(when, sizeof(when), "%.8s UTC", upd + 11);
	printf("%s — version %lld%s%s\n",
	    json_string_value(json_object_get(json_object_get(lb, "election"),
	    "name")) ?: "?", (long long)jint(lb, "version", NULL),
	    when[0] ? ", " : "", when);
	thousands(jint(lb, "votes", "valid"), valid, sizeof(valid));
	printf("seats %lld/%lld allocated, %lld pending, majority %lld | "
	    "provinces %lld/%lld reporting, %lld final | %s valid votes\n\n",
	    (long long)jint(lb, "seats", "allocated"),
	    (long long)jint(lb, "seats", "total"),
	    (long long)jint(lb, "seats", "pending"),
	    (long long)jint(lb, "seats", "majority"),
	    (long long)jint(lb, "provinces", "reporting"),
	    (long long)jint(lb, "provinces", "total"),
	    (long long)jint(lb, "provinces", "final"), valid);
	printf("  # party            seats  change         votes   share\n");
	json_array_foreach(json_object_get(lb, "coalitions"), i, c) {
		const char *id = json_string_value(json_object_get(c, "id"));
		const char *sh = json_string_value(json_object_get(c, "short"));
		json_int_t s = jint(c, "seats", NULL), v = jint(c, "votes", NULL);
		char chg[16] = "";

		if (s == 0 && v == 0)
			continue;
		if (shown == rows) {
			printf("  ... and more\n");
			break;
		}
		shown++;
		if (w->prev != NULL && id != NULL) {
			p = find_coalition(w->prev, id);
			json_int_t d = s - (p ? jint(p, "seats", NULL) : 0);
			if (d != 0)
				snprintf(chg, sizeof(chg), "%+lld", (long long)d);
		}
		thousands(v, votes, sizeof(votes));
		printf("%3lld ", (long long)jint(c, "rank", NULL));
		put_cell(sh ? sh : id ? id : "?", 16);
		printf(" %5lld  %6s %13s %6.2f%%\n", (long long)s, chg, votes,
		    json_number_value(json_object_get(c, "share")));
	}
	if (shown == 0)
		printf("  (no results yet)\n");
	printf("\nlast change: %s\n", w->change[0] ? w->change : "none yet");
	if (w->tty)
		printf("%s%s  (Ctrl-C quits)\n", w->sse ? "live (events)" :
		    "polling", w->status[0] ? " — " : "");
	else
		printf("\n");
	if (w->tty && w->status[0])
		printf("%s\n", w->status);
	fflush(stdout);
	json_decref(w->prev);
	w->prev = json_incref(lb);
	w->drawn++;
	if (w->count > 0 && w->drawn >= w->count)
		w->stop = true;
}

/* ------------------------------------------------------------ SSE */

static void
sse_dispatch(struct watch *w)
{
	json_t *j;

	if (w->dlen == 0) {
		w->event[0] = '\0';
		return;
	}
	w->data[--w->dlen] = '\0';	/* the last data line's newline */
	if (w->event[0] == '\0' || strcmp(w->event, "leaderboard") == 0) {
		if ((j = json_loadb(w->data, w->dlen, 0, NULL)) != NULL &&
		    json_object_get(j, "coalitions") != NULL) {
			w->sse = true;
			draw(w, j);
		}
		json_decref(j);
	} else if (strcmp(w->event, "change") == 0) {
		/* {"version": N, "provinces": [id or {"id": ...}, ...]} or text */
		json_t *ps;
		size_t i, o = 0;
		int n;

		j = json_loadb(w->data, w->dlen, 0, NULL);
		ps = json_object_get(j, "provinces");
		if (json_is_array(ps) && json_array_size(ps) > 0) {
			json_t *p;
			n = snprintf(w->pending_change, sizeof(w->pending_change),
			    "province%s", json_array_size(ps) > 1 ? "s" : "");
			o = n > 0 ? (size_t)n : 0;
			json_array_foreach(ps, i, p) {
				const char *id = json_is_string(p) ?
				    json_string_value(p) : json_string_value(
				    json_object_get(p, "id"));
				if (id == NULL || o >= sizeof(w->pending_change))
					continue;
				n = snprintf(w->pending_change + o,
				    sizeof(w->pending_change) - o, "%s %s",
				    i ? "," : "", id);
				o += n > 0 ? (size_t)n : 0;
			}
		} else if (j == NULL)
			snprintf(w->pending_change, sizeof(w->pending_change),
			    "%.120s", w->data);
		json_decref(j);
	}
	w->dlen = 0;
	w->event[0] = '\0';
}

static void
sse_line(struct watch *w, char *line, size_t len)
{
	char *colon, *value;
	size_t vlen;

	if (len == 0) {
		sse_dispatch(w);
		return;
	}
	if (line[0] == ':')		/* a comment, e.g. a keep-alive */
		return;
	if ((colon = memchr(line, ':', len)) != NULL) {
		*colon = '\0';
		value = colon + 1;
		if (*value == ' ')
			value++;
		vlen = len - (size_t)(value - line);
	} else {
		value = line + len;
		vlen = 0;
	}
	if (strcmp(line, "event") == 0)
		snprintf(w->event, sizeof(w->event), "%.*s", (int)vlen, value);
	else if (strcmp(line, "data") == 0) {
		if (w->dlen + vlen + 2 > w->dcap) {
			size_t ncap = (w->dlen + vlen + 2) * 2;
			char *n = realloc(w->data, ncap);
			if (n == NULL) {
				w->stop = true;
				return;
			}
			w->data = n;
			w->dcap = ncap;
		}
		memcpy(w->data + w->dlen, value, vlen);
		w->dlen += vlen;
		w->data[w->dlen++] = '\n';
		w->data[w->dlen] = '\0';
	} else if (strcmp(line, "id") == 0) {
		if (memchr(value, '\0', vlen) == NULL)
			snprintf(w->last_id, sizeof(w->last_id), "%.*s",
			    (int)vlen, value);
	} else if (strcmp(line, "retry") == 0) {
		uint64_t ms;
		if (ctl_parse_u64(value, 600000, &ms))
			w->retry_ms = (long)ms;
	}
}

/* Bytes of the stream: split into lines on CRLF, LF or CR. */
static bool
on_sse(const char *data, size_t len, void *arg)
{
	struct watch *w = arg;
	size_t i;

	for (i = 0; i < len && !w->stop; i++) {
		char ch = data[i];

		if (w->skip_lf) {
			w->skip_lf = false;
			if (ch == '\n')
				continue;
		}
		if (ch == '\r' || ch == '\n') {
			w->skip_lf = ch == '\r';
			w->line[w->llen] = '\0';
			sse_line(w, w->line, w->llen);
			w->llen = 0;
			continue;
		}
		if (w->llen + 2 > w->lcap) {
			size_t ncap = w->lcap ? w->lcap * 2 : 4096;
			char *n;
			if (ncap > (64u << 20) ||
			    (n = realloc(w->line, ncap)) == NULL)
				return false;
			w->line = n;
			w->lcap = ncap;
		}
		w->line[w->llen++] = ch;
	}
	return !w->stop;
}

static void
watch_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl watch [--once] [--poll] [--interval S] [--count N]\n"
	    "\n"
	    "A live national leaderboard: seats, change, votes, share, provinces\n"
	    "reporting and the last change, from GET /v1/events, or by polling\n"
	    "GET /v1/leaderboard (If-None-Match) when the daemon has no events.\n"
	    "\n"
	    "      --once          print one table and exit\n"
	    "      --poll          poll even if the event stream exists\n"
	    "      --interval S    seconds between polls (default 1)\n"
	    "      --count N       exit after N tables\n"
	    "      --url URL       tallyd (TALLYD_URL, default http://127.0.0.1:8080)\n"
	    "\n"
	    "exit: 0 done, 7 unavailable (--once), 8 no leaderboard there\n");
}

/* One conditional GET; draws on 200.  Returns an exit code or -1 (go on). */
static int
poll_once(struct watch *w, struct http *h, struct http_resp *r, char *etag,
    size_t etagsize)
{
	json_t *lb;
	int rc;

	rc = http_request(h, "GET", "/v1/leaderboard", NULL, 0,
	    etag[0] ? etag : NULL, r);
	if (rc != 0 || r->status == 0 || r->status >= 500) {
		snprintf(w->status, sizeof(w->status), "unavailable: %.200s",
		    r->status ? "HTTP 5xx" : r->error);
		if (w->tty)
			fprintf(stderr, "\r\033[K%s (retrying)", w->status);
		return -1;
	}
	if (w->status[0] != '\0' && w->tty)
		fprintf(stderr, "\r\033[K");
	w->status[0] = '\0';
	if (r->status == 304)
		return -1;
	if (r->status != 200)
		return ctl_http_error(w->ctl, r, rc);
	if ((lb = json_loadb(r->body, r->len, 0, NULL)) == NULL) {
		ctl_warnx(w->ctl, "/v1/leaderboard is not JSON");
		return CTL_EXIT_ERROR;
	}
	snprintf(etag, etagsize, "%s", r->etag);
	draw(w, lb);
	json_decref(lb);
	return -1;
}

int
cmd_watch(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "once", no_argument, NULL, '1' },
		{ "poll", no_argument, NULL, 'P' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	struct watch w = { .ctl = ctl, .retry_ms = 1000 };
	struct http_resp r = { .retry_after = -1 };
	struct http *h;
	double interval = 1;
	bool once = false, poll_only = false;
	char etag[128] = "", err[256], *end, events[200] = "/v1/events";
	uint64_t n;
	long status;
	int c, ex = CTL_EXIT_OK, x;

	optind = 0;
	while ((c = ctl_getopt(ctl, argc, argv, "vh", opts)) != -1) {
		switch (c) {
		case '1':
			once = true;
			break;
		case 'P':
			poll_only = true;
			break;
		case 'i':
			interval = strtod(optarg, &end);
			if (*end != '\0' || !(interval >= 0.05 &&
			    interval <= 3600)) {
				ctl_warnx(ctl, "--interval: seconds, 0.05 to 3600");
				return CTL_EXIT_USAGE;
			}
			break;
		case 'n':
			if (!ctl_parse_u64(optarg, 1000000000, &n) || n == 0) {
				ctl_warnx(ctl, "--count: a whole number from 1");
				return CTL_EXIT_USAGE;
			}
			w.count = (unsigned long)n;
			break;
		case 'h':
			watch_usage(stdout);
			return CTL_EXIT_OK;
		default:
			if ((x = ctl_common_option(ctl, c, optarg)) != 0) {
				watch_usage(stderr);
				return x;
			}
		}
	}
	/* /v1/events is the first contest's; another has its own stream
	 * (a tallyd without it answers 404: polled then). */
	if (ctl->contest != NULL)
		snprintf(events, sizeof(events), "/v1/contests/%s/events",
		    ctl->contest);
	if (optind != argc) {
		watch_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if ((h = http_create(ctl)) == NULL)
		return CTL_EXIT_ERROR;
	if (once) {
		/* One table, plain text, whatever stdout is. */
		x = http_request(h, "GET", "/v1/leaderboard", NULL, 0, NULL, &r);
		if (x != 0 || r.status != 200)
			ex = ctl_http_error(ctl, &r, x);
		else {
			json_t *lb = json_loadb(r.body, r.len, 0, NULL);
			if (lb == NULL) {
				ctl_warnx(ctl, "/v1/leaderboard is not JSON");
				ex = CTL_EXIT_ERROR;
			} else {
				draw(&w, lb);
				json_decref(lb);
			}
		}
		goto done;
	}
	w.tty = isatty(STDOUT_FILENO);
	/* Polls keep going through outages; one attempt each. */
	ctl->retry_for = 0;
	http_destroy(h);
	if ((h = http_create(ctl)) == NULL)
		return CTL_EXIT_ERROR;
	/*
	 * A stream may only speak at the next change: show where things
	 * stand first (an event of the same version is then not drawn again).
	 */
	if (!poll_only && http_request(h, "GET", "/v1/leaderboard", NULL, 0,
	    NULL, &r) == 0 && r.status == 200) {
		json_t *lb = json_loadb(r.body, r.len, 0, NULL);
		if (lb != NULL && json_object_get(lb, "coalitions") != NULL) {
			snprintf(etag, sizeof(etag), "%s", r.etag);
			draw(&w, lb);
		}
		json_decref(lb);
	}
	while (!poll_only && !w.stop) {
		w.llen = w.dlen = 0;
		w.skip_lf = false;
		w.event[0] = '\0';
		status = http_stream(h, events, w.last_id, on_sse, &w,
		    err, sizeof(err));
		if (w.stop)
			break;
		if (status == 200) {		/* the stream ended: resume */
			ctl_sleep((double)w.retry_ms / 1000);
			continue;
		}
		if (status == 0) {		/* nobody there yet */
			snprintf(w.status, sizeof(w.status),
			    "unavailable: %.200s", err);
			if (w.tty)
				fprintf(stderr, "\r\033[K%s (retrying)", w.status);
			ctl_sleep(interval);
			continue;
		}
		/* No event stream here: poll instead. */
		if (ctl->verbose)
			fprintf(stderr, "%s: %s answered %ld; polling "
			    "/v1/leaderboard every %g s\n", ctl->prog, events,
			    status, interval);
		break;
	}
	while (!w.stop) {
		double t0 = ctl_now();

		if ((x = poll_once(&w, h, &r, etag, sizeof(etag))) != -1) {
			ex = x;
			break;
		}
		if (w.stop)
			break;
		ctl_sleep(interval - (ctl_now() - t0));
	}
done:
	json_decref(w.prev);
	free(w.line);
	free(w.data);
	http_resp_finish(&r);
	http_destroy(h);
	return ex;
}
