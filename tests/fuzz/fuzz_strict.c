/*
 * fuzz_strict.c - libFuzzer target: the strict-HTTP checks alone, with
 * invariants only they can state (fuzz_http runs the whole daemon).  Each
 * input is the raw bytes a client sends on one connection.  They go through a real
 * libmicrohttpd (the 0.9.75 the daemon links, in the same mode: external
 * polling, strict for clients) over a socketpair, to an access handler that
 * makes the daemon's checks (daemon/http_strict.c) as server.c makes them:
 * the raw path in the URI callback, the header section in the headers-only
 * call, then the body read or refused.
 *
 * What it finds: memory errors (ASan) in the checks, which read the header
 * section in place, past what libmicrohttpd hands out; and a header section
 * the checks accept although a header name holds a character that is not a
 * token's, or a Transfer-Encoding that is not exactly chunked (abort).
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http_strict.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int	LLVMFuzzerInitialize(int *argc, char ***argv);

static struct MHD_Daemon *mhd;
static struct MHD_Response *answer;

struct req {
	int	 started;
	int	 bad_path;
	size_t	 body;
};

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct req *r = calloc(1, sizeof(*r));

	(void)cls;
	(void)c;
	if (r != NULL)
		r->bad_path = !http_strict_path(uri);
	return r;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result
check_name(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	size_t i;

	(void)cls;
	(void)kind;
	for (i = 0; i < key_size; i++) {
		unsigned char ch = (unsigned char)key[i];
		if (ch <= ' ' || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}",
		    ch) != NULL)
			abort();	/* accepted a name that is no token */
	}
	if (strcasecmp(key, "Transfer-Encoding") == 0 &&
	    (value_size != 7 || strcasecmp(value, "chunked") != 0))
		abort();
	return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct req *r = *con_cls;
	struct http_head head;
	const char *bad;

	(void)cls;
	(void)url;
	(void)method;
	if (r == NULL)
		return MHD_NO;
	if (!r->started) {
		r->started = 1;
		bad = http_strict_head(c, version, &head);
		if (bad == NULL && !r->bad_path && head.content_length <= 1 &&
		    !(head.content_length > 0 && head.transfer_encoding > 0) &&
		    (head.transfer_encoding == 0 || head.chunked_only)) {
			MHD_get_connection_values_n(c, MHD_HEADER_KIND,
			    check_name, NULL);
			return MHD_YES;
		}
		/* Refused before the body, as server.c does. */
		return MHD_queue_response(c, 400, answer);
	}
	if (*upload_data_size > 0) {
		r->body += *upload_data_size;
		*upload_data_size = 0;
		(void)upload_data;
		return r->body > 65536 ? MHD_NO : MHD_YES;
	}
	return MHD_queue_response(c, 200, answer);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char ok[] = "{}\n";

	(void)argc;
	(void)argv;
	mhd = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_EPOLL,
	    0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_STRICT_FOR_CLIENT, 1,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
	    MHD_OPTION_END);
	answer = MHD_create_response_from_buffer(sizeof(ok) - 1, ok,
	    MHD_RESPMEM_PERSISTENT);
	if (mhd == NULL || answer == NULL)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in sin;
	char sink[4096];
	int sv[2], i;
	size_t off = 0;

	if (size > 60000)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(40000);
	(void)fcntl(sv[1], F_SETFL, O_NONBLOCK);
	if (MHD_add_connection(mhd, sv[0], (struct sockaddr *)&sin,
	    sizeof(sin)) != MHD_YES) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	/* Feed the bytes, run the server, drain its answers, until it closes. */
	for (i = 0; i < 200; i++) {
		ssize_t n;
		if (off < size) {
			n = write(sv[1], data + off, size - off);
			if (n > 0)
				off += (size_t)n;
			if (off == size)
				(void)shutdown(sv[1], SHUT_WR);
		} else if (size == 0)
			(void)shutdown(sv[1], SHUT_WR);
		MHD_run(mhd);
		n = read(sv[1], sink, sizeof(sink));
		if (n == 0)
			break;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			break;
	}
	close(sv[1]);
	/* Let libmicrohttpd see the close and finish the connection. */
	for (i = 0; i < 4; i++)
		MHD_run(mhd);
	return 0;
}
