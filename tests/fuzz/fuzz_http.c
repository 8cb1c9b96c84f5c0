/*
 * fuzz_http.c - libFuzzer target: the daemon's whole request path, as
 * shipped.  The real tallyd runs inside the fuzzer: daemon/main.c is built
 * with its main() renamed tallyd_main (scripts/fuzz does that) and started
 * once, in a thread, with a temporary data dir, the election of
 * TALLY_FUZZ_ELECTION and a free loopback port.  Nothing of the daemon is
 * re-implemented here: its configuration, journal, core, api.c and
 * server.c's listeners are the ones tallyd runs.
 *
 * Each input is the raw bytes one client sends on one TCP connection: they
 * go through server.c's accept path and strict-HTTP checks, then api.c's
 * router (routes, query strings, ?wait, ?dry_run, feeds, batches, the lot
 * body, the views) with the token FUZZ_TOKEN (seeds in tests/fuzz/corpus/
 * http/ carry it).  The client then half-closes and reads the answers until
 * the server closes, has been quiet for IDLE_MS after answering, or
 * READ_BOUND_MS pass (a long-poll or an event stream is left to the server,
 * which must cope with a client that went away).
 *
 * What it finds: memory errors and undefined behaviour (ASan, UBSan) in
 * the daemon; an exit or abort of the daemon (a request must never end it);
 * a request that makes the daemon stop answering (the next input's connect
 * or answer times out: abort).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	tallyd_main(int argc, char **argv);

#define FUZZ_TOKEN	"fuzz-ingest-token-0123456789abcdef"
#define READ_BOUND_MS	500
#define IDLE_MS		5

static uint16_t	 port;
static char	*daemon_argv[16];

static void *
run_daemon(void *arg)
{
	int argc = 0;

	(void)arg;
	while (daemon_argv[argc] != NULL)
		argc++;
	/* tallyd_main returns only when the daemon stops: never, here. */
	fprintf(stderr, "fuzz_http: tallyd stopped (%d)\n",
	    tallyd_main(argc, daemon_argv));
	abort();
}

static int
connect_daemon(void)
{
	struct sockaddr_in sin;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static uint16_t
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		abort();
	close(fd);
	return ntohs(sin.sin_port);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/tallyd-fuzz-http.XXXXXX";
	static char conf[sizeof(dir) + 16], data[sizeof(dir) + 16];
	static char listen[32];
	const char *election = getenv("TALLY_FUZZ_ELECTION");
	struct timespec tick = { 0, 20 * 1000000L };
	pthread_t th;
	FILE *f;
	int i, fd;

	(void)argc;
	(void)argv;
	if (election == NULL)
		election = "tests/data/elections/es-2019-04/election.json";
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(conf, sizeof(conf), "%s/tallyd.conf", dir);
	snprintf(data, sizeof(data), "%s/var", dir);
	/*
	 * Quiet (a log line per feed would drown the fuzzer's output), no
	 * per-IP limit (every input comes from 127.0.0.1, and streams left
	 * to the server linger), no fsync (speed; durability is not tested
	 * here).
	 */
	if ((f = fopen(conf, "w")) == NULL)
		abort();
	fprintf(f, "log_level warn\nper_ip_connection_limit 0\n"
	    "connection_limit 4000\nfsync off\nconnection_timeout 5\n"
	    "request_timeout 5\n");
	fclose(f);
	port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	setenv("TALLYD_INGEST_TOKEN", FUZZ_TOKEN, 1);
	i = 0;
	daemon_argv[i++] = "tallyd";
	daemon_argv[i++] = "-d";
	daemon_argv[i++] = "-f";
	daemon_argv[i++] = conf;
	daemon_argv[i++] = "--election";
	daemon_argv[i++] = (char *)election;
	daemon_argv[i++] = "--listen";
	daemon_argv[i++] = listen;
	daemon_argv[i++] = "--data-dir";
	daemon_argv[i++] = data;
	daemon_argv[i] = NULL;
	/* The daemon ignores SIGPIPE itself; the client side needs it too. */
	signal(SIGPIPE, SIG_IGN);
	if (pthread_create(&th, NULL, run_daemon, NULL) != 0)
		abort();
	for (i = 0; i < 1500; i++) {
		if ((fd = connect_daemon()) != -1) {
			close(fd);
			fprintf(stderr, "fuzz_http: tallyd on %s, data in %s\n",
			    listen, data);
			return 0;
		}
		nanosleep(&tick, NULL);
	}
	fprintf(stderr, "fuzz_http: tallyd never listened on %s\n", listen);
	abort();
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	    (t.tv_nsec - t0->tv_nsec) / 1000000;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct timespec t0;
	char sink[16384];
	size_t off = 0;
	int fd, i, answered = 0;

	if (size > 65536)
		return 0;
	/* A daemon that stopped accepting is a finding, not a skip. */
	for (i = 0; (fd = connect_daemon()) == -1; i++) {
		struct timespec tick = { 0, 10 * 1000000L };
		if (i == 500) {
			fprintf(stderr, "fuzz_http: tallyd no longer accepts "
			    "connections: %s\n", strerror(errno));
			abort();
		}
		nanosleep(&tick, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (off < size) {
		struct pollfd p = { fd, POLLOUT | POLLIN, 0 };
		ssize_t n;
		if (poll(&p, 1, READ_BOUND_MS) <= 0 ||
		    ms_since(&t0) > READ_BOUND_MS)
			break;
		if (p.revents & POLLIN) {
			/* Answered (or refused) before the whole input. */
			n = read(fd, sink, sizeof(sink));
			if (n <= 0)
				break;
			answered = 1;
			continue;
		}
		n = write(fd, data + off, size - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	(void)shutdown(fd, SHUT_WR);
	/*
	 * Until the server closes; or, once it has answered, until it has
	 * been quiet for IDLE_MS (tallyd keeps a half-closed keep-alive
	 * connection open until connection_timeout, so its close cannot be
	 * waited for).  Only the speed depends on these bounds.
	 */
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left = READ_BOUND_MS - ms_since(&t0);
		if (answered && left > IDLE_MS)
			left = IDLE_MS;
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		if (read(fd, sink, sizeof(sink)) <= 0)
			break;
		answered = 1;
	}
	close(fd);
	return 0;
}
