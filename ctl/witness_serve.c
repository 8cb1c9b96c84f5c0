/*
 * witness_serve.c - tallyctl witness serve: a witness that logs push to
 * (C2SP tlog-witness, the add-checkpoint call; docs/VERIFY.md).
 *
 *	tallyctl witness serve --dir DIR --log-key VKEY... --listen HOST:PORT
 *
 * POST /add-checkpoint with the body
 *
 *	old <size>\n  <consistency proof hashes, base64, a line each>  \n
 *	<the signed checkpoint note>
 *
 * is answered, in the order the spec gives:
 *	400  a malformed body, or old > the checkpoint's size
 *	404  a checkpoint of a log (origin) this witness does not know
 *	403  no signature by that log's key verifies
 *	409  old is not the size of the last checkpoint cosigned for that log
 *	     (the body: that size and a newline, text/x.tlog.size); also the
 *	     same size as that one with another root - a fork, whose note is
 *	     kept as DIR/fork-<size>, the evidence
 *	422  the consistency proof from old does not verify
 *	200  the cosignature line (C2SP tlog-cosignature v1), after the
 *	     checkpoint was stored (synced) as the log's latest
 *
 * The state is the one `tallyctl witness cosign` keeps (DIR/log-<hash of the
 * origin>), so both modes share one memory of each log.  One thread, one
 * request at a time: checking `old` against the stored size and storing the
 * new checkpoint are atomic, as the spec requires (no request can roll the
 * state back between the two).  Keep-alive connections, a poll(2) loop; a
 * connection idle for 30 s is closed.  Plain HTTP: put a TLS proxy in front
 * of a witness that is reached over the Internet.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <tally/tally.h>

#include "tallyctl.h"
#include "witness.h"

#define SERVE_CONNS	64
#define SERVE_REQ_MAX	(64 * 1024)	/* a proof of 63 lines and a note */
#define SERVE_IDLE	30.0		/* seconds */

struct sconn {
	int	 fd;
	char	*in;			/* what was read, not yet handled */
	size_t	 inlen;
	char	*out;			/* answers not yet written */
	size_t	 outlen, outoff;
	bool	 closing;		/* close once out is written */
	bool	 continued;		/* 100 Continue sent for the request
					   in hand */
	double	 last;
};

struct serve {
	struct ctl		*ctl;
	const char		*dir;
	struct tally_tlog_signer signer;
	struct tally_tlog_key	 logs[WITNESS_LOGS_MAX];
	size_t			 nlogs;
	struct sconn		 conns[SERVE_CONNS];
};

static volatile sig_atomic_t serve_stop;

static void
serve_on_signal(int sig)
{
	(void)sig;
	serve_stop = 1;
}

struct answer {
	int		 status;
	const char	*type;
	char		 body[1024];
};

static void
answer(struct answer *a, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
answer(struct answer *a, int status, const char *fmt, ...)
{
	va_list ap;

	a->status = status;
	a->type = "text/plain; charset=utf-8";
	va_start(ap, fmt);
	vsnprintf(a->body, sizeof(a->body), fmt, ap);
	va_end(ap);
}

static const char *
reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 422: return "Unprocessable Entity";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	default:  return "Error";
	}
}

/* The log of a checkpoint whose first line is origin, or NULL. */
static const struct tally_tlog_key *
known_log(const struct serve *sv, const char *note, size_t len)
{
	const char *nl = memchr(note, '\n', len);
	size_t i, n;

	if (nl == NULL)
		return NULL;
	n = (size_t)(nl - note);
	for (i = 0; i < sv->nlogs; i++)
		if (strlen(sv->logs[i].name) == n &&
		    memcmp(sv->logs[i].name, note, n) == 0)
			return &sv->logs[i];
	return NULL;
}

/*
 * One add-checkpoint body: the checks of C2SP tlog-witness in its order,
 * then the state stored (synced) before the cosignature is made.
 */
static void
add_checkpoint(struct serve *sv, const char *body, size_t len,
    struct answer *a)
{
	uint8_t proof[TALLY_TLOG_PROOF_MAX][32];
	const struct tally_tlog_key *lk;
	struct tally_tlog_checkpoint cp, old;
	struct tally_error err;
	const char *p = body, *end = body + len, *nl, *note;
	char state[64], path[4096], *oldnote = NULL, *line = NULL, num[24];
	size_t np = 0, nlen, oldlen, tlen, n;
	uint64_t old_size, stored = 0;
	bool have_old = false;

	/* "old <size>\n": decimal, no leading zero but for 0. */
	if ((nl = memchr(p, '\n', len)) == NULL || nl - p < 5 ||
	    memcmp(p, "old ", 4) != 0 || (size_t)(nl - p - 4) >= sizeof(num)) {
		answer(a, 400, "the body must begin with \"old <size>\\n\"\n");
		return;
	}
	memcpy(num, p + 4, (size_t)(nl - p - 4));
	num[nl - p - 4] = '\0';
	if ((num[0] == '0' && num[1] != '\0') ||
	    !ctl_parse_u64(num, INT64_MAX, &old_size)) {
		answer(a, 400, "old: \"%s\" is not a size (decimal, no "
		    "leading zeroes)\n", num);
		return;
	}
	/* The proof: a base64 hash a line, up to 63, then a blank line. */
	for (p = nl + 1; p < end && *p != '\n'; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL ||
		    np == 63 || nl - p != 44 ||
		    tally_tlog_b64_decode(p, 44, proof[np]) != 32) {
			answer(a, 400, "proof line %zu: not one base64 SHA-256 "
			    "hash (at most 63 lines, then a blank line)\n",
			    np + 1);
			return;
		}
		np++;
	}
	if (p >= end) {
		answer(a, 400, "no blank line and checkpoint after the "
		    "proof\n");
		return;
	}
	note = p + 1;
	nlen = (size_t)(end - note);
	if ((lk = known_log(sv, note, nlen)) == NULL) {
		answer(a, 404, "unknown log: this witness has no key for that "
		    "origin\n");
		return;
	}
	if (tally_tlog_note_open(note, nlen, lk, 1, &tlen, &err) == -1) {
		answer(a, 403, "the checkpoint is not signed by the log's key "
		    "(%s)\n", err.message);
		return;
	}
	if (tally_tlog_checkpoint_open(note, nlen, lk, &cp, &err) == -1) {
		answer(a, 400, "not a checkpoint: %s\n", err.message);
		return;
	}
	if (old_size > cp.size) {
		answer(a, 400, "old %llu is larger than the checkpoint's size "
		    "%llu\n", (unsigned long long)old_size,
		    (unsigned long long)cp.size);
		return;
	}
	witness_state_name(cp.origin, state);
	snprintf(path, sizeof(path), "%s/%s", sv->dir, state);
	if (tally_read_file(path, &oldnote, &oldlen) == 0) {
		if (tally_tlog_checkpoint_open(oldnote, oldlen, lk, &old,
		    &err) == -1) {
			answer(a, 500, "%s: %s\n", path, err.message);
			goto out;
		}
		have_old = true;
		stored = old.size;
	} else if (errno != ENOENT) {
		answer(a, 500, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	if (old_size != stored) {
		fprintf(stderr, "%s: %s: 409: old %llu, but the size cosigned "
		    "last is %llu\n", sv->ctl->prog, cp.origin,
		    (unsigned long long)old_size, (unsigned long long)stored);
		answer(a, 409, "%llu\n", (unsigned long long)stored);
		a->type = "text/x.tlog.size";
		goto out;
	}
	if (have_old && cp.size == old.size &&
	    memcmp(cp.root, old.root, 32) != 0) {
		/* Two signed checkpoints of one size: keep the evidence. */
		snprintf(num, sizeof(num), "fork-%llu",
		    (unsigned long long)cp.size);
		(void)witness_write_file(sv->dir, num, note, nlen, 0644);
		fprintf(stderr, "%s: %s: a second checkpoint of size %llu "
		    "with another root (kept in %s/%s): the log forked\n",
		    sv->ctl->prog, cp.origin, (unsigned long long)cp.size,
		    sv->dir, num);
		answer(a, 409, "%llu\n", (unsigned long long)stored);
		a->type = "text/x.tlog.size";
		goto out;
	}
	if (old_size == 0 ? np != 0 : !tally_tlog_consistency_verify(old.size,
	    cp.size, (const uint8_t (*)[32])proof, np, old.root, cp.root)) {
		fprintf(stderr, "%s: %s: the proof from size %llu to %llu "
		    "does not verify\n", sv->ctl->prog, cp.origin,
		    (unsigned long long)old_size, (unsigned long long)cp.size);
		answer(a, 422, "the consistency proof from size %llu to %llu "
		    "does not verify\n", (unsigned long long)old_size,
		    (unsigned long long)cp.size);
		goto out;
	}
	/* Remembered (synced) before the cosignature leaves. */
	if ((!have_old || cp.size != old.size) &&
	    witness_write_file(sv->dir, state, note, nlen, 0644) == -1) {
		answer(a, 500, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	if ((line = tally_tlog_cosign(note, tlen, &sv->signer,
	    (uint64_t)time(NULL), &n)) == NULL || n >= sizeof(a->body)) {
		answer(a, 500, "cannot cosign the checkpoint\n");
		goto out;
	}
	a->status = 200;
	a->type = "text/plain; charset=utf-8";
	memcpy(a->body, line, n + 1);
	fprintf(stderr, "%s: %s: cosigned size %llu (old %llu)\n",
	    sv->ctl->prog, cp.origin, (unsigned long long)cp.size,
	    (unsigned long long)old_size);
out:
	free(oldnote);
	free(line);
}

static int
out_add(struct sconn *c, const char *buf, size_t len)
{
	char *n;

	if ((n = realloc(c->out, c->outlen + len)) == NULL)
		return -1;
	c->out = n;
	memcpy(c->out + c->outlen, buf, len);
	c->outlen += len;
	return 0;
}

static void
reply(struct sconn *c, const struct answer *a)
{
	char head[256];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\nContent-Type: "
	    "%s\r\nContent-Length: %zu\r\n%s\r\n", a->status,
	    reason(a->status), a->type, strlen(a->body),
	    c->closing ? "Connection: close\r\n" : "");
	if (out_add(c, head, (size_t)n) == -1 ||
	    out_add(c, a->body, strlen(a->body)) == -1)
		c->closing = true;
}

/*
 * Handle every complete request in c->in.  Framing is strict: a
 * Content-Length (once), no Transfer-Encoding; anything else is answered
 * and the connection closed.
 */
static void
serve_input(struct serve *sv, struct sconn *c)
{
	struct answer a;
	char *hend, *line, *next, method[16], target[256], head[8192];
	size_t hlen, clen = 0, used;
	bool have_len = false, http10, bad = false, close_after = false;
	bool expect = false;

	while (!c->closing && c->inlen > 0) {
		if ((hend = memmem(c->in, c->inlen, "\r\n\r\n", 4)) == NULL) {
			if (c->inlen > 8192) {
				c->closing = true;
				answer(&a, 413, "headers too large\n");
				reply(c, &a);
			}
			return;
		}
		hlen = (size_t)(hend - c->in) + 4;
		if (hlen > sizeof(head)) {
			c->closing = true;
			answer(&a, 413, "headers too large\n");
			reply(c, &a);
			return;
		}
		/* Parsed in a copy: the body may come in a later read. */
		memcpy(head, c->in, hlen - 4);
		head[hlen - 4] = '\0';
		hend = head + hlen - 4;
		if ((next = strstr(head, "\r\n")) != NULL)
			*next = '\0';
		if (sscanf(head, "%15s %255s HTTP/1.%*1[01]", method,
		    target) != 2 || strncmp(strrchr(head, ' ') != NULL ?
		    strrchr(head, ' ') + 1 : "", "HTTP/1.", 7) != 0) {
			c->closing = true;
			answer(&a, 400, "not an HTTP/1.x request\n");
			reply(c, &a);
			return;
		}
		http10 = strstr(head, "HTTP/1.0") != NULL;
		for (line = next != NULL ? next + 2 : hend; line < hend;
		    line = next != NULL ? next + 2 : hend) {
			if ((next = strstr(line, "\r\n")) != NULL)
				*next = '\0';
			if (strncasecmp(line, "Content-Length:", 15) == 0) {
				char *e;
				unsigned long long v = strtoull(line + 15, &e,
				    10);
				if (have_len || e == line + 15 ||
				    v > SERVE_REQ_MAX)
					bad = true;
				have_len = true;
				clen = (size_t)v;
			} else if (strncasecmp(line, "Transfer-Encoding:",
			    18) == 0)
				bad = true;
			else if (strncasecmp(line, "Connection:", 11) == 0 &&
			    strcasestr(line + 11, "close") != NULL)
				close_after = true;
			else if (strncasecmp(line, "Expect:", 7) == 0 &&
			    strcasestr(line + 7, "100-continue") != NULL)
				expect = true;
		}
		if (bad) {
			c->closing = true;
			answer(&a, 400, "one Content-Length (at most %d "
			    "bytes) and no Transfer-Encoding\n",
			    SERVE_REQ_MAX);
			reply(c, &a);
			return;
		}
		if (c->inlen - hlen < clen) {
			/* The body is still coming; a client that waits for
			 * leave to send it (curl past 1 KiB) gets it now. */
			if (expect && !http10 && !c->continued) {
				c->continued = true;
				if (out_add(c, "HTTP/1.1 100 Continue\r\n\r\n",
				    25) == -1)
					c->closing = true;
			}
			return;
		}
		c->continued = false;
		/* Closed once this request is answered (not before). */
		if (close_after || http10)
			c->closing = true;
		if (strcmp(target, "/add-checkpoint") != 0)
			answer(&a, 404, "no such resource (this witness "
			    "answers POST /add-checkpoint)\n");
		else if (strcmp(method, "POST") != 0)
			answer(&a, 405, "POST only\n");
		else
			add_checkpoint(sv, c->in + hlen, clen, &a);
		reply(c, &a);
		used = hlen + clen;
		memmove(c->in, c->in + used, c->inlen - used);
		c->inlen -= used;
		have_len = false;
		expect = false;
		clen = 0;
	}
}

static void
conn_close(struct sconn *c)
{
	close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static int
listen_on(struct ctl *ctl, const char *addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], *colon, shost[128], sport[16];
	int fd = -1, one = 1, e;

	snprintf(host, sizeof(host), "%s", addr);
	if ((colon = strrchr(host, ':')) == NULL) {
		ctl_warnx(ctl, "--listen %s: not HOST:PORT", addr);
		return -1;
	}
	*colon = '\0';
	if (host[0] == '[' && colon[-1] == ']') {
		colon[-1] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	if ((e = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		ctl_warnx(ctl, "--listen %s: %s", addr, gai_strerror(e));
		return -1;
	}
	if ((fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ==
	    -1 || bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == -1 ||
	    getnameinfo((struct sockaddr *)&ss, sl, shost, sizeof(shost),
	    sport, sizeof(sport), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		ctl_warnx(ctl, "--listen %s: %s", addr, strerror(errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -1;
	}
	freeaddrinfo(res);
	/* The address actually bound (a port 0 asks for any). */
	printf("listening on %s%s%s:%s\n", ss.ss_family == AF_INET6 ? "[" : "",
	    shost, ss.ss_family == AF_INET6 ? "]" : "", sport);
	fflush(stdout);
	return fd;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int
witness_serve(struct ctl *ctl, const char *dir, const char **log_keys,
    size_t n, const char *listen_addr)
{
	struct serve *sv;
	struct pollfd pfd[SERVE_CONNS + 1];
	struct sconn *c;
	struct sigaction sa;
	struct tally_error err;
	char *text;
	size_t i, len, slot[SERVE_CONNS + 1], np;
	ssize_t r;
	int lfd, fd, rc = CTL_EXIT_ERROR;

	if ((sv = calloc(1, sizeof(*sv))) == NULL)
		return CTL_EXIT_ERROR;
	sv->ctl = ctl;
	sv->dir = dir;
	for (i = 0; i < SERVE_CONNS; i++)
		sv->conns[i].fd = -1;
	if (witness_load_signer(ctl, dir, NULL, false, &sv->signer) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		text = strchr(log_keys[i], '+') != NULL ? strdup(log_keys[i]) :
		    tally_read_file(log_keys[i], &text, &len) == 0 ? text :
		    NULL;
		if (text == NULL || tally_tlog_key_parse(text,
		    &sv->logs[sv->nlogs], &err) == -1) {
			ctl_warnx(ctl, "--log-key %s: %s", log_keys[i],
			    text == NULL ? strerror(errno) : err.message);
			free(text);
			goto out;
		}
		free(text);
		sv->nlogs++;
	}
	if ((lfd = listen_on(ctl, listen_addr)) == -1)
		goto out;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = serve_on_signal;	/* no SA_RESTART: poll ends */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!serve_stop) {
		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (np = 1, i = 0; i < SERVE_CONNS; i++) {
			c = &sv->conns[i];
			if (c->fd == -1)
				continue;
			if (now() - c->last > SERVE_IDLE) {
				conn_close(c);
				continue;
			}
			pfd[np] = (struct pollfd){ .fd = c->fd, .events =
			    c->outoff < c->outlen ? POLLOUT : POLLIN };
			slot[np++] = i;
		}
		if (poll(pfd, np, 1000) == -1) {
			if (errno == EINTR)
				continue;
			ctl_warnx(ctl, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
			    SOCK_CLOEXEC)) != -1) {
				for (i = 0; i < SERVE_CONNS &&
				    sv->conns[i].fd != -1; i++)
					;
				if (i == SERVE_CONNS) {
					close(fd);	/* full: try later */
					break;
				}
				sv->conns[i].fd = fd;
				sv->conns[i].last = now();
			}
		}
		for (i = 1; i < np; i++) {
			c = &sv->conns[slot[i]];
			if (pfd[i].revents == 0)
				continue;
			c->last = now();
			if (c->outoff < c->outlen) {
				r = write(c->fd, c->out + c->outoff,
				    c->outlen - c->outoff);
				if (r == -1 && errno != EAGAIN &&
				    errno != EINTR) {
					conn_close(c);
					continue;
				}
				if (r > 0)
					c->outoff += (size_t)r;
				if (c->outoff == c->outlen) {
					c->outoff = c->outlen = 0;
					if (c->closing)
						conn_close(c);
				}
				continue;
			}
			if (c->in == NULL && (c->in = malloc(SERVE_REQ_MAX +
			    8192)) == NULL) {
				conn_close(c);
				continue;
			}
			r = read(c->fd, c->in + c->inlen, SERVE_REQ_MAX +
			    8192 - c->inlen);
			if (r == 0 || (r == -1 && errno != EAGAIN &&
			    errno != EINTR)) {
				conn_close(c);
				continue;
			}
			if (r > 0)
				c->inlen += (size_t)r;
			serve_input(sv, c);
			if (c->outlen == 0 && c->closing)
				conn_close(c);
		}
	}
	rc = CTL_EXIT_OK;
	for (i = 0; i < SERVE_CONNS; i++)
		if (sv->conns[i].fd != -1)
			conn_close(&sv->conns[i]);
	close(lfd);
out:
	explicit_bzero(&sv->signer, sizeof(sv->signer));
	free(sv);
	return rc;
}
