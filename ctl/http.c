/*
 * http.c - requests to tallyd with libcurl, retried where that is safe.
 *
 * Why libcurl rather than libevent's evhttp client: tallyctl is a
 * sequential program (post, wait, post), and the easy API is exactly that,
 * with keep-alive reuse, connect and total timeouts, and an error code that
 * says whether the request may have reached the daemon (connect refused vs
 * reply lost), which is what the retry rule needs.  A write callback reads
 * the event stream as it arrives, a header callback gives ETag and
 * Retry-After, and an https TALLYD_URL behind a proxy works as it is.  The
 * evhttp client would need a loop per request, reports failures as a NULL
 * request, and has no TLS without bufferevent_openssl glue.
 *
 * One easy handle is kept for the whole run, so requests share one
 * keep-alive connection.  Every request resets the handle's options
 * (curl_easy_reset keeps the connection cache) and sets them all again.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "tallyctl.h"

struct http {
	CURL		*curl;
	char		*base;		/* without a trailing slash */
	char		*auth;		/* "Authorization: Bearer ..." or NULL */
	double		 retry_for;
	bool		 verbose;
	const char	*prog;
	char		*cacert;	/* CA file, or NULL: the system's */
	bool		 insecure;	/* no certificate check */
	unsigned	 retries;	/* of the last http_request */
	char		*contest;	/* --contest, or NULL */
};

/*
 * With --contest, the routes a tallyd mirrors per contest go under
 * /v1/contests/ID/ (docs/API.md "Contests"); the rest (/v1/events,
 * /healthz, /log/) are the daemon's, as they are.
 */
static const char *
contest_path(const struct http *h, const char *path, char *buf, size_t size)
{
	static const char *const mirrored[] = { "provinces", "results",
	    "leaderboard", "election", "coalitions", "versions" };
	size_t i, n;

	if (h->contest == NULL || strncmp(path, "/v1/", 4) != 0)
		return path;
	for (i = 0; i < sizeof(mirrored) / sizeof(mirrored[0]); i++) {
		n = strlen(mirrored[i]);
		if (strncmp(path + 4, mirrored[i], n) == 0 &&
		    strchr("/.?", path[4 + n]) != NULL) {
			snprintf(buf, size, "/v1/contests/%s/%s", h->contest,
			    path + 4);
			return buf;
		}
	}
	return path;
}

struct http *
http_create(const struct ctl *ctl)
{
	struct http *h;
	size_t n;

	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if ((h->curl = curl_easy_init()) == NULL)
		goto fail;
	if ((h->base = strdup(ctl->url)) == NULL)
		goto fail;
	n = strlen(h->base);
	while (n > 0 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	if (ctl->token != NULL) {
		n = strlen(ctl->token) + sizeof("Authorization: Bearer ");
		if ((h->auth = malloc(n)) == NULL)
			goto fail;
		snprintf(h->auth, n, "Authorization: Bearer %s", ctl->token);
	}
	if (ctl->cacert != NULL && (h->cacert = strdup(ctl->cacert)) == NULL)
		goto fail;
	h->insecure = ctl->insecure;
	if (ctl->contest != NULL && (h->contest = strdup(ctl->contest)) == NULL)
		goto fail;
	h->retry_for = ctl->retry_for;
	h->verbose = ctl->verbose;
	h->prog = ctl->prog;
	return h;
fail:
	http_destroy(h);
	return NULL;
}

void
http_destroy(struct http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	free(h->base);
	free(h->cacert);
	free(h->contest);
	if (h->auth != NULL) {
		/* The token should not linger in freed memory. */
		memset(h->auth, 0, strlen(h->auth));
		free(h->auth);
	}
	free(h);
}

unsigned
http_retries(const struct http *h)
{
	return h->retries;
}

void
http_resp_finish(struct http_resp *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_resp *r = arg;
	size_t n = size * nmemb;
	char *b;

	if ((b = realloc(r->body, r->len + n + 1)) == NULL)
		return 0;
	memcpy(b + r->len, data, n);
	r->len += n;
	b[r->len] = '\0';
	r->body = b;
	return n;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_resp *r = arg;
	size_t n = size * nmemb, k, e;
	const char *v;

	/* A new status line starts a new response (e.g. after a 100). */
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		r->etag[0] = '\0';
		r->retry_after = -1;
		return n;
	}
	for (k = 0; k < n && data[k] != ':'; k++)
		;
	if (k == n)
		return n;
	v = data + k + 1;
	e = n - (k + 1);
	while (e > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		e--;
	}
	while (e > 0 && isspace((unsigned char)v[e - 1]))
		e--;
	if (k == 4 && strncasecmp(data, "ETag", 4) == 0 && e < sizeof(r->etag)) {
		memcpy(r->etag, v, e);
		r->etag[e] = '\0';
	} else if (k == 11 && strncasecmp(data, "Retry-After", 11) == 0) {
		/* Seconds only; an HTTP date is treated as "soon". */
		char tmp[32];
		uint64_t s;

		if (e < sizeof(tmp)) {
			memcpy(tmp, v, e);
			tmp[e] = '\0';
			r->retry_after = ctl_parse_u64(tmp, 3600, &s) ?
			    (double)s : 1.0;
		}
	}
	return n;
}

/* Whether a transport error may be retried: the request may not have
 * reached the daemon, or its answer was lost. */
static bool
retryable(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
		return true;
	default:
		return false;
	}
}

/* The certificate options of every request (--cacert, --insecure). */
static void
set_tls(struct http *h, CURL *cu, char *errbuf)
{
	errbuf[0] = '\0';
	curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, errbuf);
	if (h->cacert != NULL)
		curl_easy_setopt(cu, CURLOPT_CAINFO, h->cacert);
	if (h->insecure) {
		curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

/*
 * Whether host:port of an http:// base completes a TLS handshake: then
 * "the server returned nothing" was a TLS port meeting plain HTTP, which
 * no retry will change.  Asked only after such a failure; a daemon that
 * is really down refuses this connection too, and the retries go on.
 */
static bool
speaks_tls(const char *base)
{
	char url[2048];
	CURL *cu;
	CURLcode c;

	if (strncasecmp(base, "http://", 7) != 0 ||
	    (cu = curl_easy_init()) == NULL)
		return false;
	snprintf(url, sizeof(url), "https://%s/", base + 7);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 0L);
	c = curl_easy_perform(cu);
	curl_easy_cleanup(cu);
	return c == CURLE_OK;
}

/*
 * Whether host:port of an https:// base answers plain HTTP (any status):
 * then the TLS handshake failed because nothing speaks TLS there.  The
 * handshake's own error depends on how the server takes a ClientHello
 * (an HTTP 400 reads as "wrong version number", a close as a syscall
 * error), so the port is asked directly.
 */
static bool
speaks_http(const char *base)
{
	char url[2048];
	CURL *cu;
	CURLcode c;

	if (strncasecmp(base, "https://", 8) != 0 ||
	    (cu = curl_easy_init()) == NULL)
		return false;
	snprintf(url, sizeof(url), "http://%s/healthz", base + 8);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_NOBODY, 1L);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 3000L);
	c = curl_easy_perform(cu);
	curl_easy_cleanup(cu);
	return c == CURLE_OK;
}

/*
 * A transport failure in words an operator can act on: r->error says
 * what happened, r->hint what to change, r->tls that retrying cannot
 * help (exit 11).  libcurl's own text stays available with -v.
 */
static void
describe(struct http *h, CURLcode c, const char *errbuf,
    struct http_resp *r)
{
	const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(c);
	bool https = strncasecmp(h->base, "https://", 8) == 0;

	r->hint[0] = '\0';
	r->tls = false;
	switch (c) {
	case CURLE_PEER_FAILED_VERIFICATION:
		r->tls = true;
		if (strstr(detail, "name") != NULL && (strstr(detail,
		    "subject") != NULL || strstr(detail, "host") != NULL)) {
			snprintf(r->error, sizeof(r->error), "TLS: the "
			    "certificate of %s is not issued for that name "
			    "(TLS error, not retried)", h->base);
			snprintf(r->hint, sizeof(r->hint), "use the host name "
			    "or address the certificate names in --url "
			    "(or TALLYD_URL)");
		} else if (strstr(detail, "expired") != NULL) {
			snprintf(r->error, sizeof(r->error), "TLS: the "
			    "certificate of %s has expired (TLS error, not "
			    "retried)", h->base);
			snprintf(r->hint, sizeof(r->hint), "the daemon's "
			    "operator must renew it; --insecure skips the "
			    "check (for tests only)");
		} else {
			snprintf(r->error, sizeof(r->error), "TLS: the "
			    "certificate of %s is signed by a CA tallyctl does "
			    "not trust%s (TLS error, not retried)", h->base,
			    h->cacert ? " (not the one in --cacert)" : "");
			snprintf(r->hint, sizeof(r->hint), "give the CA's "
			    "certificate with --cacert FILE (or TALLYD_CACERT); "
			    "--insecure skips the check (for tests only)");
		}
		break;
	case CURLE_SSL_CACERT_BADFILE:
		r->tls = true;
		snprintf(r->error, sizeof(r->error), "TLS: --cacert %s: not a "
		    "readable PEM certificate (TLS error, not retried)",
		    h->cacert ? h->cacert : "?");
		snprintf(r->hint, sizeof(r->hint), "give the CA certificate "
		    "in PEM form (-----BEGIN CERTIFICATE-----)");
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_USE_SSL_FAILED:
		r->tls = true;
		if (https && (strstr(detail, "wrong version") != NULL ||
		    strstr(detail, "packet length") != NULL ||
		    strstr(detail, "unknown protocol") != NULL ||
		    strstr(detail, "record layer") != NULL ||
		    speaks_http(h->base))) {
			snprintf(r->error, sizeof(r->error), "TLS: %s answers "
			    "plain HTTP, not TLS (not retried)", h->base);
			snprintf(r->hint, sizeof(r->hint), "use http:// for "
			    "this port, or the port where the daemon serves "
			    "TLS");
		} else {
			snprintf(r->error, sizeof(r->error), "TLS: no secure "
			    "connection to %s could be set up (not retried): "
			    "%s", h->base, detail);
			snprintf(r->hint, sizeof(r->hint), "check --url and "
			    "that the daemon serves TLS there; --cacert FILE "
			    "for a private CA");
		}
		break;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		if (!https && speaks_tls(h->base)) {
			r->tls = true;
			snprintf(r->error, sizeof(r->error), "%s expects TLS: "
			    "it closed the plain HTTP request without an "
			    "answer (not retried)", h->base);
			snprintf(r->hint, sizeof(r->hint), "use --url https://"
			    "%s (and --cacert FILE if its certificate comes "
			    "from a private CA)", h->base + 7);
			break;
		}
		/* FALLTHROUGH */
	default:
		snprintf(r->error, sizeof(r->error), "%s: %s", h->base,
		    curl_easy_strerror(c));
		if (c == CURLE_COULDNT_CONNECT)
			snprintf(r->hint, sizeof(r->hint), "is tallyd running "
			    "and listening at %s? (--url or TALLYD_URL)",
			    h->base);
	}
	if (h->verbose && errbuf[0] != '\0')
		fprintf(stderr, "%s: libcurl: %s\n", h->prog, errbuf);
}

static CURLcode
once(struct http *h, const char *method, const char *path, const char *body,
    size_t len, const char *if_none_match, struct http_resp *r)
{
	struct curl_slist *hdrs = NULL, *n;
	char url[2048], inm[160], errbuf[CURL_ERROR_SIZE], cpath[1024];
	CURLcode c;
	CURL *cu = h->curl;

	free(r->body);
	r->body = NULL;
	r->len = 0;
	r->status = 0;
	r->etag[0] = '\0';
	r->retry_after = -1;
	r->error[0] = '\0';
	r->hint[0] = '\0';
	r->tls = false;
	snprintf(url, sizeof(url), "%s%s", h->base, contest_path(h, path, cpath,
	    sizeof(cpath)));
	curl_easy_reset(cu);
	set_tls(h, cu, errbuf);
	curl_easy_setopt(cu, CURLOPT_URL, url);
	curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(cu, CURLOPT_TIMEOUT_MS, 30000L);
	curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(cu, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(cu, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(cu, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(cu, CURLOPT_USERAGENT, "tallyctl");
	if (h->auth != NULL && (n = curl_slist_append(hdrs, h->auth)) != NULL)
		hdrs = n;
	if (if_none_match != NULL) {
		snprintf(inm, sizeof(inm), "If-None-Match: %s", if_none_match);
		if ((n = curl_slist_append(hdrs, inm)) != NULL)
			hdrs = n;
	}
	if (body != NULL) {
		if ((n = curl_slist_append(hdrs,
		    "Content-Type: application/json")) != NULL)
			hdrs = n;
		/* Without this curl waits for a 100 on bodies over 1 KB. */
		if ((n = curl_slist_append(hdrs, "Expect:")) != NULL)
			hdrs = n;
		curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(cu, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, hdrs);
	c = curl_easy_perform(cu);
	if (c == CURLE_OK)
		curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &r->status);
	else {
		describe(h, c, errbuf, r);
		r->status = 0;
	}
	curl_easy_setopt(cu, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(cu, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (r->body == NULL && (r->body = calloc(1, 1)) == NULL && c == CURLE_OK)
		c = CURLE_OUT_OF_MEMORY;
	return c;
}

int
http_request(struct http *h, const char *method, const char *path,
    const char *body, size_t len, const char *if_none_match,
    struct http_resp *r)
{
	double deadline = ctl_now() + h->retry_for, delay = 0.1, wait, now;
	CURLcode c;

	h->retries = 0;
	for (;;) {
		c = once(h, method, path, body, len, if_none_match, r);
		/* 503 (journal, stopping) and 429 (over the token's rate) pass:
		 * a repeat of an applied revision is a duplicate, so retrying
		 * is safe. */
		if (c == CURLE_OK && r->status != 503 && r->status != 429)
			return 0;
		if (c != CURLE_OK && (r->tls || !retryable(c)))
			return -1;
		now = ctl_now();
		if (now >= deadline)
			return c == CURLE_OK ? 0 : -1;
		wait = c == CURLE_OK && r->retry_after >= 0 ? r->retry_after :
		    delay;
		delay = delay * 2 > 2.0 ? 2.0 : delay * 2;
		if (now + wait > deadline)
			wait = deadline - now;
		if (h->verbose || h->retries == 0)
			fprintf(stderr, "%s: %s %s: %s; retrying for up to %.0f s\n",
			    h->prog, method, path, c == CURLE_OK ? (r->status ==
			    429 ? "429 rate limited" : "503 unavailable") :
			    r->error, deadline - now);
		h->retries++;
		ctl_sleep(wait);
	}
}

struct stream {
	http_stream_cb	 cb;
	void		*arg;
	CURL		*curl;
	long		 status;
};

static size_t
on_stream(char *data, size_t size, size_t nmemb, void *arg)
{
	struct stream *s = arg;

	if (s->status == 0)
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &s->status);
	/* Only a 200 is an event stream; anything else ends it here. */
	if (s->status != 200)
		return 0;
	return s->cb(data, size * nmemb, s->arg) ? size * nmemb : 0;
}

long
http_stream(struct http *h, const char *path, const char *last_event_id,
    http_stream_cb cb, void *arg, char *error, size_t errsize)
{
	struct stream s = { cb, arg, h->curl, 0 };
	struct curl_slist *hdrs = NULL, *n;
	struct http_resp tmp;
	char url[2048], lei[160], errbuf[CURL_ERROR_SIZE];
	CURLcode c;

	snprintf(url, sizeof(url), "%s%s", h->base, path);
	curl_easy_reset(h->curl);
	set_tls(h, h->curl, errbuf);
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "tallyctl");
	if ((n = curl_slist_append(hdrs, "Accept: text/event-stream")) != NULL)
		hdrs = n;
	if (last_event_id != NULL && *last_event_id != '\0') {
		snprintf(lei, sizeof(lei), "Last-Event-ID: %s", last_event_id);
		if ((n = curl_slist_append(hdrs, lei)) != NULL)
			hdrs = n;
	}
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	c = curl_easy_perform(h->curl);
	if (s.status == 0)
		curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &s.status);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (c != CURLE_OK && c != CURLE_WRITE_ERROR) {
		memset(&tmp, 0, sizeof(tmp));
		describe(h, c, errbuf, &tmp);
		if (tmp.hint[0] != '\0')
			snprintf(error, errsize, "%s; %s", tmp.error, tmp.hint);
		else
			snprintf(error, errsize, "%s", tmp.error);
	} else
		error[0] = '\0';
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
	return s.status;
}

void
ctl_error_parts(const struct http_resp *r, char *code, size_t ncode,
    char *field, size_t nfield, char *msg, size_t nmsg)
{
	json_t *j, *e;
	const char *s;

	code[0] = field[0] = msg[0] = '\0';
	if (r->body == NULL || (j = json_loadb(r->body, r->len, 0, NULL)) == NULL)
		return;
	if ((e = json_object_get(j, "error")) != NULL) {
		if ((s = json_string_value(json_object_get(e, "code"))) != NULL)
			snprintf(code, ncode, "%s", s);
		if ((s = json_string_value(json_object_get(e, "field"))) != NULL)
			snprintf(field, nfield, "%s", s);
		if ((s = json_string_value(json_object_get(e, "message"))) != NULL)
			snprintf(msg, nmsg, "%s", s);
	}
	json_decref(j);
}

int
ctl_exit_for(const struct http_resp *r, int rc)
{
	char code[64], field[256], msg[512];

	if ((rc == -1 || r->status == 0) && r->tls)
		return CTL_EXIT_TLS;
	if (rc == -1 || r->status == 0)
		return CTL_EXIT_UNAVAILABLE;
	if (r->status == 201 || r->status == 204)
		return CTL_EXIT_OK;
	if (r->status == 200 || r->status == 304)
		return CTL_EXIT_OK;
	ctl_error_parts(r, code, sizeof(code), field, sizeof(field), msg,
	    sizeof(msg));
	switch (r->status) {
	case 401:
	case 403:
		return CTL_EXIT_UNAUTHORIZED;
	case 404:
		/* An unknown route, as opposed to an unknown province. */
		return strcmp(code, "not_found") == 0 || code[0] == '\0' ?
		    CTL_EXIT_UNSUPPORTED : CTL_EXIT_INVALID;
	case 405:
		return CTL_EXIT_UNSUPPORTED;
	case 409:
		return strcmp(code, "stale_revision") == 0 ? CTL_EXIT_STALE :
		    CTL_EXIT_CONFLICT;
	case 400:
	case 413:
	case 415:
	case 422:
		return CTL_EXIT_INVALID;
	default:
		return r->status >= 500 ? CTL_EXIT_UNAVAILABLE : CTL_EXIT_ERROR;
	}
}

int
ctl_http_error(const struct ctl *ctl, const struct http_resp *r, int rc)
{
	return ctl_http_error_at(ctl, r, rc, NULL);
}
