/*
 * tlog_push_http.c - the smallest HTTP/1.1 client that can ask a witness
 * for a cosignature: one POST per connection (Connection: close), a
 * Content-Length or chunked answer, everything within one deadline.
 *
 * It runs on a witness's own thread [W] and blocks there, never on the
 * loop: poll(2) on the socket with the time left, and on abort_fd, so
 * that a stopping tallyd never waits for a witness that does not answer.
 * No TLS (tallyd links no TLS client): a witness reached over the
 * Internet sits behind a local TLS proxy (docs/OPERATIONS.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tlog_push.h"

#define RESP_MAX	(64 * 1024)

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Wait until fd is ready for events, the deadline passes (0, ETIMEDOUT)
 * or abort_fd is readable (0, ECANCELED).  1 when ready.
 */
static int
wait_fd(int fd, short events, long long deadline, int abort_fd)
{
	struct pollfd p[2] = { { .fd = fd, .events = events },
	    { .fd = abort_fd, .events = POLLIN } };
	long long left;
	int n;

	for (;;) {
		if ((left = deadline - mono_ms()) <= 0) {
			errno = ETIMEDOUT;
			return 0;
		}
		n = poll(p, abort_fd >= 0 ? 2 : 1, (int)left);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (abort_fd >= 0 && (p[1].revents & POLLIN)) {
			errno = ECANCELED;
			return 0;
		}
		if (n > 0)
			return 1;
	}
}

static int
connect_to(const struct tlog_push_target *t, long long deadline,
    int abort_fd, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
	    .ai_flags = AI_NUMERICSERV }, *res = NULL, *ai;
	socklen_t sl;
	int fd = -1, e, soerr = 0;

	/* getaddrinfo may block on DNS: on this thread only. */
	if ((e = getaddrinfo(t->host, t->port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%.100s: %s", t->host, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0)) == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline,
		    abort_fd) == 1) {
			sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
			    &sl) == 0 && soerr == 0)
				break;
			errno = soerr;
		}
		snprintf(err, errlen, "connect to %.100s:%s: %s", t->host,
		    t->port, strerror(errno));
		close(fd);
		fd = -1;
		if (errno == ETIMEDOUT || errno == ECANCELED)
			break;
	}
	freeaddrinfo(res);
	return fd;
}

/* Decode a chunked body in place; its length, or -1. */
static long
unchunk(char *b, size_t len)
{
	size_t in = 0, out = 0;
	unsigned long n;
	char *end;

	for (;;) {
		n = strtoul(b + in, &end, 16);
		if (end == b + in || (end = memmem(end, len - (size_t)(end - b),
		    "\r\n", 2)) == NULL)
			return -1;
		in = (size_t)(end - b) + 2;
		if (n == 0)
			return (long)out;
		if (n > len - in || len - in - n < 2)
			return -1;
		memmove(b + out, b + in, n);
		out += n;
		in += n + 2;
	}
}

int
tlog_push_http_post(const struct tlog_push_target *t, const char *body,
    size_t len, int timeout_ms, int abort_fd, struct tlog_push_resp *r)
{
	return tlog_push_http_request(t, "POST", "Content-Type: text/plain; "
	    "charset=utf-8\r\n", body, len, timeout_ms, abort_fd, r);
}

int
tlog_push_http_request(const struct tlog_push_target *t, const char *method,
    const char *headers, const char *body, size_t len, int timeout_ms,
    int abort_fd, struct tlog_push_resp *r)
{
	long long deadline = mono_ms() + timeout_ms;
	char head[768], *buf = NULL, *hend, *line, *next, *p;
	size_t hl, off = 0, blen = 0, cl = 0;
	bool have_cl = false, chunked = false, v6;
	ssize_t n;
	int fd, hn;
	long dl;

	memset(r, 0, sizeof(*r));
	if ((fd = connect_to(t, deadline, abort_fd, r->err,
	    sizeof(r->err))) == -1)
		return -1;
	/* An IPv6 literal in brackets (RFC 7230 5.4). */
	v6 = strchr(t->host, ':') != NULL;
	hn = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s%s%s:%s"
	    "\r\nUser-Agent: tallyd\r\n%sContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", method, t->path, v6 ? "[" : "",
	    t->host, v6 ? "]" : "", t->port, headers, len);
	if (hn < 0 || (size_t)hn >= sizeof(head)) {
		close(fd);
		snprintf(r->err, sizeof(r->err), "a request head over %zu "
		    "bytes", sizeof(head));
		return -1;
	}
	hl = (size_t)hn;
	/* The head, then the body: MSG_NOSIGNAL, a closed peer is an error. */
	while (off < hl + len) {
		const char *src = off < hl ? head + off : body + (off - hl);
		size_t want = off < hl ? hl - off : hl + len - off;
		if ((n = send(fd, src, want, MSG_NOSIGNAL)) > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN && wait_fd(fd, POLLOUT,
		    deadline, abort_fd) == 1)
			continue;
		snprintf(r->err, sizeof(r->err), "send: %s", strerror(errno));
		goto fail;
	}
	if ((buf = malloc(RESP_MAX + 1)) == NULL) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		goto fail;
	}
	/* Until the peer closes (we asked it to) or the body is complete. */
	for (;;) {
		if (blen == RESP_MAX) {
			snprintf(r->err, sizeof(r->err), "an answer over %d "
			    "bytes", RESP_MAX);
			goto fail;
		}
		n = recv(fd, buf + blen, RESP_MAX - blen, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			if (wait_fd(fd, POLLIN, deadline, abort_fd) == 1)
				continue;
			snprintf(r->err, sizeof(r->err), "no answer within "
			    "%d ms%s", timeout_ms, errno == ECANCELED ?
			    " (stopping)" : "");
			goto fail;
		}
		if (n == -1) {
			snprintf(r->err, sizeof(r->err), "recv: %s",
			    strerror(errno));
			goto fail;
		}
		blen += (size_t)n;
		buf[blen] = '\0';
		if ((hend = memmem(buf, blen, "\r\n\r\n", 4)) != NULL &&
		    have_cl && blen >= (size_t)(hend - buf) + 4 + cl)
			break;
		if (hend != NULL && !have_cl && !chunked) {
			/* Parse the head once, as soon as it is all here. */
			for (line = strstr(buf, "\r\n"); line != NULL &&
			    line < hend; line = next) {
				line += 2;
				next = strstr(line, "\r\n");
				if (strncasecmp(line, "Content-Length:",
				    15) == 0) {
					cl = strtoul(line + 15, NULL, 10);
					have_cl = true;
				} else if (strncasecmp(line,
				    "Transfer-Encoding:", 18) == 0)
					chunked = true;
			}
			if (have_cl && blen >= (size_t)(hend - buf) + 4 + cl)
				break;
		}
		if (n == 0)
			break;
	}
	close(fd);
	fd = -1;
	if (sscanf(buf, "HTTP/1.%*1[01] %3d", &r->status) != 1 ||
	    (hend = memmem(buf, blen, "\r\n\r\n", 4)) == NULL) {
		r->status = 0;
		snprintf(r->err, sizeof(r->err), "not an HTTP answer (%zu "
		    "bytes%s)", blen, blen == 0 ? ": closed at once" : "");
		goto fail;
	}
	if ((p = strcasestr(buf, "\r\nContent-Type:")) != NULL && p < hend) {
		p += 15;
		p += strspn(p, " \t");
		snprintf(r->type, sizeof(r->type), "%.*s",
		    (int)strcspn(p, "\r"), p);
	}
	hl = (size_t)(hend - buf) + 4;
	blen -= hl;
	memmove(buf, buf + hl, blen);
	if (chunked) {
		if ((dl = unchunk(buf, blen)) == -1) {
			r->status = 0;
			snprintf(r->err, sizeof(r->err), "a bad chunked body");
			goto fail;
		}
		blen = (size_t)dl;
	} else if (have_cl && cl < blen)
		blen = cl;
	buf[blen] = '\0';
	r->body = buf;
	r->len = blen;
	return 0;
fail:
	if (fd != -1)
		close(fd);
	free(buf);
	return -1;
}
