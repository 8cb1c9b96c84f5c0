/*
 * http_strict.c - what libmicrohttpd 0.9.75 lets through and tallyd refuses,
 * and how its own refusals read (http_strict_page).
 *
 * This file and server.c are the only ones that include <microhttpd.h>;
 * this one holds no state but the catch of libmicrohttpd's own refusal
 * pages (at the end), and links alone, so that the strict-HTTP fuzz target
 * (tests/fuzz/fuzz_strict.c) runs it under a real libmicrohttpd without
 * the daemon.
 */
#include <sys/socket.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "http_strict.h"
#include "response.h"

bool
http_strict_path(const char *uri)
{
	size_t n = strcspn(uri, "?#"), i;

	/*
	 * An encoded NUL would cut the decoded path, and an encoded slash
	 * would join two segments into one ("baghdad%2Fresults").
	 */
	for (i = 0; i + 2 < n; i++)
		if (uri[i] == '%' &&
		    ((uri[i + 1] == '0' && uri[i + 2] == '0') ||
		    (uri[i + 1] == '2' && (uri[i + 2] == 'f' ||
		    uri[i + 2] == 'F'))))
			return false;
	return true;
}

/*
 * The header section as libmicrohttpd 0.9.75 left it.  It parses in place:
 * each line of the read buffer has its CR LF overwritten with two NULs (a
 * bare LF with one), the colon with one, and every key and value points
 * into that buffer, in order.  So the bytes between one header's value and
 * the next one's key tell how the line ended: exactly two NULs for CR LF.
 * Anything else is a bare LF, a NUL inside a value (the value was cut
 * there), or a folded line (obs-fold: moved, or merged into the key) --
 * all refused.  MHD itself accepts every one of them.
 */
struct header_scan {
	const char	*end;		/* where the last line's text ended */
	const char	*bad;		/* why the section is refused */
	struct http_head *head;
};

static bool
is_tchar(unsigned char c)
{
	/* RFC 9110 5.6.2 token characters. */
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
line_ended_crlf(const char *end, const char *next)
{
	return next == end + 2 && end[0] == '\0' && end[1] == '\0';
}

static enum MHD_Result
scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct header_scan *hs = cls;
	const char *p;
	size_t i;

	(void)kind;
	if (hs->bad != NULL)
		return MHD_NO;
	if (!line_ended_crlf(hs->end, key)) {
		hs->bad = "each header line must end in CR LF (no bare LF, no "
		    "NUL in a value, no folded line)";
		return MHD_NO;
	}
	if (key_size == 0 || key[key_size] != '\0') {
		hs->bad = "a header has no name";
		return MHD_NO;
	}
	for (i = 0; i < key_size; i++)
		if (!is_tchar((unsigned char)key[i])) {
			hs->bad = "a header name holds a character that is not "
			    "allowed (a space before the colon?)";
			return MHD_NO;
		}
	/* Between the colon and the value: optional spaces and tabs only. */
	for (p = key + key_size + 1; p < value; p++)
		if (*p != ' ' && *p != '\t') {
			hs->bad = "malformed header line";
			return MHD_NO;
		}
	for (i = 0; i < value_size; i++) {
		unsigned char c = (unsigned char)value[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			hs->bad = "a header value holds a control character "
			    "(a bare CR?)";
			return MHD_NO;
		}
	}
	hs->end = value + value_size;
	if (strcasecmp(key, "Content-Length") == 0)
		hs->head->content_length++;
	else if (strcasecmp(key, "Transfer-Encoding") == 0) {
		hs->head->transfer_encoding++;
		/* Exactly "chunked": no list, no parameters, no spaces. */
		if (value_size != 7 || strcasecmp(value, "chunked") != 0)
			hs->head->chunked_only = false;
	} else if (strcasecmp(key, "Content-Encoding") == 0)
		hs->head->content_encoding = value;
	else if (strcasecmp(key, "Host") == 0 && ++hs->head->host > 1) {
		/* RFC 9112 3.2: which host would it be? */
		hs->bad = "more than one Host header";
		return MHD_NO;
	}
	return MHD_YES;
}

const char *
http_strict_head(void *conn, const char *version, struct http_head *head)
{
	struct header_scan hs;

	memset(head, 0, sizeof(*head));
	head->chunked_only = true;
	hs.end = version + strlen(version);
	hs.bad = NULL;
	hs.head = head;
	MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_header, &hs);
	/* The empty line that ends the section: two more NULs. */
	if (hs.bad == NULL && !(hs.end[0] == '\0' && hs.end[1] == '\0' &&
	    hs.end[2] == '\0' && hs.end[3] == '\0'))
		hs.bad = "the header section must end in CR LF CR LF";
	return hs.bad;
}

/*
 * libmicrohttpd 0.9.75's own refusals (transmit_error_response_len in its
 * connection.c) are small HTML pages; server.c catches them and answers
 * with JSON instead.  Each is known by a phrase of its text.
 */
struct mhd_page {
	const char	*needle;	/* in libmicrohttpd's page */
	const char	*code;
	const char	*message;
};

static const struct mhd_page mhd_pages[] = {
	{ "too large value for <b>Content-Length", "body_too_large",
	    "the Content-Length is larger than this server takes" },
	{ "wrong value for <b>Content-Length", "bad_framing",
	    "Content-Length must be one decimal number" },
	{ "chunked encoding was syntactically incorrect", "bad_framing",
	    "the chunked transfer coding of the body is malformed" },
	{ "chunk size used in your HTTP chunked", "body_too_large",
	    "a chunk of the body is larger than this server takes" },
	{ "&quot;Host:&quot; header required", "missing_host",
	    "an HTTP/1.1 request needs a Host header" },
	{ "version is too old", "http_version",
	    "send HTTP/1.1 (or HTTP/1.0)" },
	{ "version is not supported", "http_version",
	    "send HTTP/1.1 (or HTTP/1.0)" },
	{ "header was too big", "headers_too_large",
	    "the request line and header section are larger than this "
	    "server takes (about 16 KiB)" },
	{ "request was syntactically incorrect", "bad_request",
	    "malformed request line or header line (the request line is "
	    "METHOD SP target SP HTTP/1.1, each header NAME: value)" },
	{ "Internal server error", "internal",
	    "an internal error; try again" },
};

void
http_strict_page(const char *page, const char **code, const char **message)
{
	size_t i;

	/* The last one, "internal", also stands for a page not known. */
	for (i = 0; i < sizeof(mhd_pages) / sizeof(mhd_pages[0]) - 1; i++)
		if (strstr(page, mhd_pages[i].needle) != NULL)
			break;
	*code = mhd_pages[i].code;
	*message = mhd_pages[i].message;
}

/*
 * What the API reads of a request, as libmicrohttpd parsed it: the
 * headers of struct http_request and the query (response.h).
 */
void
http_strict_request(void *conn, struct http_request *hr)
{
	struct MHD_Connection *c = conn;

	hr->if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_IF_NONE_MATCH);
	hr->if_modified_since = MHD_lookup_connection_value(c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	hr->authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_AUTHORIZATION);
	hr->content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	hr->content_encoding = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_ENCODING);
	hr->last_event_id = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    "Last-Event-ID");
}

const char *
http_arg(const struct http_request *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct args_walk {
	void	(*fn)(void *, const char *, const char *);
	void	*arg;
};

static enum MHD_Result
args_walk(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct args_walk *w = cls;

	(void)kind;
	w->fn(w->arg, key, value);
	return MHD_YES;
}

void
http_args_each(const struct http_request *rq,
    void (*fn)(void *, const char *, const char *), void *arg)
{
	struct args_walk w = { fn, arg };

	MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, args_walk,
	    &w);
}

/*
 * A refusal written on the socket (or the TLS session) in one
 * non-blocking send, for a connection that is closed right after: nothing
 * of a response has been sent on it before.  If the socket cannot take it
 * at once, the client sees the connection close.
 */
void
http_strict_send_refusal(void *conn, bool tls, unsigned status,
    const char *code, const char *message)
{
	struct MHD_Connection *c = conn;
	const union MHD_ConnectionInfo *ci;
	char buf[640];
	int n;

	ci = MHD_get_connection_info(c, tls ?
	    MHD_CONNECTION_INFO_GNUTLS_SESSION :
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return;
	if ((n = http_strict_refusal(buf, sizeof(buf), status, code,
	    message)) == -1)
		return;
	if (tls)
		(void)gnutls_record_send((gnutls_session_t)ci->tls_session, buf,
		    (size_t)n);
	else
		(void)send(ci->connect_fd, buf, (size_t)n, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
}

int
http_strict_refusal(char *buf, size_t size, unsigned status, const char *code,
    const char *message)
{
	const char *reason;
	int body_len, n;

	reason = status == 413 ? "Content Too Large" :
	    MHD_get_reason_phrase_for(status);
	body_len = snprintf(NULL, 0, "{\"error\":{\"code\":\"%s\",\"message\":"
	    "\"%s\"}}\n", code, message);
	n = snprintf(buf, size, "HTTP/1.1 %u %s\r\n"
	    "Connection: close\r\nContent-Type: application/json; "
	    "charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: %d\r\n"
	    "\r\n{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n", status,
	    reason, body_len, code, message);
	if (n <= 0 || (size_t)n >= size)
		return -1;
	return n;
}

/*
 * libmicrohttpd's own refusals.  Some requests never reach on_request:
 * libmicrohttpd 0.9.75 answers them itself (transmit_error_response_len in
 * its connection.c) with a small HTML page -- a Content-Length that is
 * not a number or too large, an HTTP/1.1 request without Host, a request
 * line or header section too large for the connection's memory, a
 * malformed request line or header line, an HTTP version other than 1.0 or
 * 1.1, malformed chunked encoding, a chunk too large -- and for the
 * Content-Length and Host cases it even writes the status line and the
 * headers twice (measured: two "HTTP/1.1 400" in one answer).  It offers no
 * hook for those answers, but it makes them through its exported
 * MHD_create_response_from_buffer and MHD_queue_response, which it calls
 * through its PLT: this executable defines both (every call, ours and
 * libmicrohttpd's, comes here first), passes everything on to the real
 * ones (dlsym RTLD_NEXT), and recognises libmicrohttpd's pages by their
 * text (http_strict_page).  Such a response is not queued: the server's
 * refusal function (http_strict_on_refusal; server.c writes the JSON
 * refusal every other error has on the socket, once, and counts it) is
 * called instead, and MHD_queue_response returns MHD_NO, on which
 * libmicrohttpd closes the connection.  Until a refusal function is set
 * (the fuzz target of this file alone), everything passes through.  One
 * thread runs libmicrohttpd (the loop), so the statics below need no lock.
 */
static struct MHD_Response	*mhd_page_resp;	/* made from mhd_page_text */
static const char		*mhd_page_text;
static http_strict_refuse_fn	 refuse;	/* server.c's */

typedef struct MHD_Response *(*create_fn)(size_t, void *,
    enum MHD_ResponseMemoryMode);
typedef enum MHD_Result (*queue_fn)(struct MHD_Connection *, unsigned int,
    struct MHD_Response *);

struct MHD_Response *
MHD_create_response_from_buffer(size_t size, void *buffer,
    enum MHD_ResponseMemoryMode mode)
{
	static create_fn real;
	struct MHD_Response *r;

	if (real == NULL && (real = (create_fn)(uintptr_t)dlsym(RTLD_NEXT,
	    "MHD_create_response_from_buffer")) == NULL)
		return NULL;
	r = real(size, buffer, mode);
	if (r != NULL && mode == MHD_RESPMEM_PERSISTENT && size > 19 &&
	    memcmp(buffer, "<html><head><title>", 19) == 0) {
		mhd_page_resp = r;
		mhd_page_text = buffer;
	}
	return r;
}

enum MHD_Result
MHD_queue_response(struct MHD_Connection *c, unsigned int status,
    struct MHD_Response *r)
{
	static queue_fn real;
	const char *code, *message;
	bool page;

	if (real == NULL && (real = (queue_fn)(uintptr_t)dlsym(RTLD_NEXT,
	    "MHD_queue_response")) == NULL)
		return MHD_NO;
	/* libmicrohttpd queues its page right after making it. */
	page = r != NULL && r == mhd_page_resp;
	mhd_page_resp = NULL;
	if (!page || refuse == NULL)
		return real(c, status, r);
	http_strict_page(mhd_page_text, &code, &message);
	refuse(c, status, code, message);
	return MHD_NO;
}

void
http_strict_on_refusal(http_strict_refuse_fn fn)
{
	refuse = fn;
}
