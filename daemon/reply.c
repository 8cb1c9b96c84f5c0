/*
 * reply.c - answers that need no state of the API: uncached JSON bodies and
 * the one JSON error shape every refusal has (the API's and the server's).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <tally/tally.h>

#include "api.h"
#include "server.h"
#include "reply.h"

/* A newline at the end of a body (taken) is kind to curl users. */
char *
reply_with_newline(char *bytes)
{
	size_t len;
	char *nb;

	if (bytes == NULL)
		return NULL;
	len = strlen(bytes);
	if ((nb = realloc(bytes, len + 2)) == NULL) {
		free(bytes);
		return NULL;
	}
	nb[len] = '\n';
	nb[len + 1] = '\0';
	return nb;
}

/*
 * An uncached JSON reply from j (taken): errors, POST answers, health.
 * Compact, ending in a newline, never stored by caches.
 */
void
reply_json(struct http_reply *reply, unsigned status, json_t *j)
{
	reply_json_with(reply, status, j, NULL);
}

void
reply_json_with(struct http_reply *reply, unsigned status, json_t *j,
    const char *member)
{
	char *bytes = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII |
	    JSON_REAL_PRECISION(10)) : NULL, *nb;
	size_t len, mlen;

	if (bytes != NULL && member != NULL && (len = strlen(bytes)) > 1 &&
	    bytes[len - 1] == '}') {
		mlen = strlen(member);
		if ((nb = realloc(bytes, len + mlen + 1)) == NULL) {
			free(bytes);
			bytes = NULL;
		} else {
			bytes = nb;
			memcpy(bytes + len - 1, member, mlen);
			bytes[len - 1 + mlen] = '}';
			bytes[len + mlen] = '\0';
		}
	}
	json_decref(j);
	reply_json_text(reply, status, reply_with_newline(bytes));
}

void
reply_json_text(struct http_reply *reply, unsigned status, char *bytes)
{
	static char empty[] = "";

	reply->status = status;
	reply->owned = true;
	reply->body = NULL;
	if (bytes != NULL && (reply->body = http_body_new(bytes, strlen(bytes),
	    true)) == NULL)
		free(bytes);
	if (reply->body == NULL) {
		/* Out of memory: at least the status goes out. */
		reply->status = status < 500 ? 503 : status;
		if ((reply->body = http_body_new(empty, 0, false)) == NULL)
			return;
	}
	http_body_header(reply->body, "Content-Type",
	    "application/json; charset=utf-8");
	http_body_header(reply->body, "Cache-Control", "no-store");
}

/*
 * Replace each byte of s that is not part of well-formed UTF-8 (RFC 3629:
 * no overlongs, no surrogates, nothing above U+10FFFF), and each control
 * character, with '?', in place: jansson refuses a string with any of them,
 * and the message would be lost.
 */
static void
utf8_scrub(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p != '\0') {
		size_t n, i;
		unsigned lo = 0x80, hi = 0xbf;

		if (*p < 0x20 || *p == 0x7f) {
			*p++ = '?';
			continue;
		}
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf)
			n = 1;
		else if (*p >= 0xe0 && *p <= 0xef) {
			n = 2;
			if (*p == 0xe0)
				lo = 0xa0;
			else if (*p == 0xed)
				hi = 0x9f;
		} else if (*p >= 0xf0 && *p <= 0xf4) {
			n = 3;
			if (*p == 0xf0)
				lo = 0x90;
			else if (*p == 0xf4)
				hi = 0x8f;
		} else {
			*p++ = '?';
			continue;
		}
		for (i = 1; i <= n; i++) {
			unsigned c = p[i];
			if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xbf))
				break;
		}
		if (i <= n) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}

void
reply_verror(struct http_reply *reply, unsigned status, const char *code,
    const char *field, const struct tally_errors *all, const char *fmt,
    va_list ap)
{
	json_t *o, *err;
	char msg[512];
	size_t i;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* A message quoting the client (a path) must stay a JSON string. */
	utf8_scrub(msg);
	err = json_object();
	json_object_set_new(err, "code", json_string(code));
	json_object_set_new(err, "message", json_string(msg));
	if (field != NULL)
		json_object_set_new(err, "field", json_string(field));
	o = json_object();
	json_object_set_new(o, "error", err);
	if (all != NULL && all->n > 1) {
		/* Beside the first (the compatible shape): every one found. */
		json_t *arr = json_array();
		for (i = 0; i < all->n && i < all->max; i++) {
			json_t *x = json_object();
			json_object_set_new(x, "code", json_string(all->v[i].code));
			json_object_set_new(x, "message",
			    json_string(all->v[i].message));
			if (all->v[i].field[0] != '\0')
				json_object_set_new(x, "field",
				    json_string(all->v[i].field));
			json_array_append_new(arr, x);
		}
		json_object_set_new(o, "errors", arr);
		if (all->n > all->max)
			json_object_set_new(o, "errors_omitted",
			    json_integer((json_int_t)(all->n - all->max)));
	}
	reply_json(reply, status, o);
	/* An error reply keeps its status even without memory for a body. */
	reply->status = status;
}

void
api_error(struct http_reply *reply, unsigned status, const char *code,
    const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_verror(reply, status, code, field, NULL, fmt, ap);
	va_end(ap);
}
