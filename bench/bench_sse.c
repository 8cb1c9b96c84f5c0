/*
 * bench_sse - how long a new version takes to reach the last of N
 * subscribers (GET /v1/events) or long-pollers (?wait=60), and what N idle
 * ones cost tallyd; and the bare limit: a minimal loop writing the same
 * bytes to N sockets.  One thread, epoll; run by bench/sse.
 *
 *   bench_sse sse|delta|poll|burst|burst-delta PORT INGEST_PORT N POSTS
 *             TOKEN PID IDLE_SECS
 *   bench_sse bare N BYTES ROUNDS [READER_CPU]
 *
 * sse/delta/poll print "rss_before_kib rss_after_kib idle_cpu_ticks
 * idle_secs" then one line per post: "ack_to_last_ms post_rtt_ms
 * tallyd_cpu_ticks sub0_bytes" (its user + system time so far, read once
 * the last subscriber has the version; the bytes the first subscriber has
 * read so far); delta subscribes with ?deltas=1 (a delta event a version).
 * burst (burst-delta: with ?deltas=1) posts POSTS feeds back to back
 * from another process while this one reads, and prints after the header one
 * line: "last_ack_to_last_ms burst_ms tallyd_cpu_ticks sub0_bytes
 * sub0_events" (tallyd's CPU from the first POST to the last one's
 * arrival everywhere) (the events the first subscriber got for the burst).  bare
 * prints one line per round: the time from the first write to the last
 * byte read, and the writer's CPU time for the round (ms).
 *
 * BENCH_SSE_PATH=/live/leaderboard (bench/nchan): sse subscribes there
 * instead (a push front: nchan's ids are its own, so a subscriber's
 * version is read from the leaderboard's "version").
 */
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sub {
	int		 fd;
	char		 tail[96];	/* the end of what was read before */
	size_t		 tlen;
	uint64_t	 seen;		/* newest leaderboard id seen */
	uint64_t	 events;	/* leaderboard or delta events */
	uint64_t	 bytes;		/* read in all */
	size_t		 got;		/* bytes (bare), or body bytes (poll) */
	char		*resp;		/* poll: the response so far */
	size_t		 rlen, rcap;
	char		 etag[80];
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* This process's user + system time, ms. */
static double
cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

/*
 * A connection to 127.0.0.1:port from 127.0.0.<src> (0: any): one source
 * address has about 28,000 ephemeral ports, so past 20,000 subscribers
 * they come from further loopback addresses.
 */
static int
dial_from(unsigned port, bool nonblock, unsigned src)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket");
	if (src > 0) {
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + src);
#ifdef IP_BIND_ADDRESS_NO_PORT
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
		    sizeof(one));
#endif
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
			die("bind");
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (nonblock)
		fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int
dial(unsigned port, bool nonblock)
{
	return dial_from(port, nonblock, 0);
}

static void
send_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n == -1 && errno == EAGAIN)
			continue;
		if (n <= 0)
			die("write");
		s += n;
		len -= (size_t)n;
	}
}

/* The ids of "id: N-D\nevent: leaderboard" in tail+buf: the newest. */
static void
scan_sse(struct sub *s, const char *buf, size_t n)
{
	static char joined[65536 + 96];
	const char *p;
	size_t len = s->tlen + n;

	memcpy(joined, s->tail, s->tlen);
	memcpy(joined + s->tlen, buf, n);
	joined[len] = '\0';
	for (p = joined; (p = strstr(p, "id: ")) != NULL; p += 4) {
		char *end;
		unsigned long long id = strtoull(p + 4, &end, 10);
		/* Ids are "<version>-<digest>" (the epoch's digest). */
		if (*end == '-')
			end += 1 + strspn(end + 1, "0123456789abcdef");
		if ((strncmp(end, "\nevent: leaderboard\n", 20) == 0 ||
		    strncmp(end, "\nevent: delta\n", 14) == 0) &&
		    id > s->seen) {
			s->seen = id;
			s->events++;
		}
	}
	s->tlen = len < sizeof(s->tail) ? len : sizeof(s->tail);
	memcpy(s->tail, joined + len - s->tlen, s->tlen);
}

/* A push front's stream: the newest "version": N in tail+buf. */
static void
scan_version(struct sub *s, const char *buf, size_t n)
{
	static char joined[65536 + 96];
	const char *p;
	size_t len = s->tlen + n;

	memcpy(joined, s->tail, s->tlen);
	memcpy(joined + s->tlen, buf, n);
	joined[len] = '\0';
	for (p = joined; (p = strstr(p, "\"version\":")) != NULL; p += 10) {
		unsigned long long v = strtoull(p + 10, NULL, 10);
		if (v > s->seen)
			s->seen = v;
	}
	s->tlen = len < sizeof(s->tail) ? len : sizeof(s->tail);
	memcpy(s->tail, joined + len - s->tlen, s->tlen);
}

static const char *
find_header(const char *resp, const char *name)
{
	const char *p = strcasestr(resp, name);

	return p ? p + strlen(name) : NULL;
}

static void
poll_send(struct sub *s, unsigned port)
{
	char req[256];
	int n;

	n = snprintf(req, sizeof(req), "GET /v1/leaderboard?wait=60 HTTP/1.1"
	    "\r\nHost: b\r\nIf-None-Match: %s\r\n\r\n", s->etag);
	(void)port;
	send_all(s->fd, req, (size_t)n);
}

/* A long-poller's bytes: a whole response gives its version and etag. */
static void
scan_poll(struct sub *s, const char *buf, size_t n, unsigned port)
{
	const char *h, *body, *cl, *v;
	size_t need;

	if (s->rlen + n + 1 > s->rcap) {
		s->rcap = (s->rlen + n + 1) * 2;
		if ((s->resp = realloc(s->resp, s->rcap)) == NULL)
			die("realloc");
	}
	memcpy(s->resp + s->rlen, buf, n);
	s->rlen += n;
	s->resp[s->rlen] = '\0';
	if ((body = strstr(s->resp, "\r\n\r\n")) == NULL)
		return;
	body += 4;
	cl = find_header(s->resp, "Content-Length: ");
	need = (size_t)(body - s->resp) + (cl ? strtoul(cl, NULL, 10) : 0);
	if (s->rlen < need)
		return;
	if ((h = find_header(s->resp, "ETag: ")) != NULL)
		snprintf(s->etag, sizeof(s->etag), "%.*s",
		    (int)strcspn(h, "\r"), h);
	if ((v = strstr(body, "\"version\":")) != NULL)
		s->seen = strtoull(v + 10, NULL, 10);
	memmove(s->resp, s->resp + need, s->rlen - need);
	s->rlen -= need;
	poll_send(s, port);
}

static long
proc_field(pid_t pid, const char *file, const char *key)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	if (key == NULL) {
		/* stat: utime + stime (fields 14, 15). */
		unsigned long ut, st;
		if (fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
		    "%*u %lu %lu", &ut, &st) == 2)
			v = (long)(ut + st);
	} else
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, key, strlen(key)) == 0)
				v = strtol(line + strlen(key), NULL, 10);
	fclose(f);
	return v;
}

/* POST one feed on a blocking connection; the version from the 201. */
static uint64_t
post(unsigned port, const char *token, int rev)
{
	char body[256], req[1024], resp[4096];
	const char *v;
	size_t got = 0;
	int fd = dial(port, false), n;

	n = snprintf(body, sizeof(body), "{\"revision\": %d, \"votes\": "
	    "{\"sairoon\": %d, \"fatah\": 5000}}", rev, 1000 + rev);
	n = snprintf(req, sizeof(req), "POST /v1/provinces/baghdad/results "
	    "HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\nContent-Type: "
	    "application/json\r\nContent-Length: %d\r\nConnection: close\r\n"
	    "\r\n%s", token, n, body);
	send_all(fd, req, (size_t)n);
	for (;;) {
		ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	resp[got] = '\0';
	close(fd);
	if (strncmp(resp, "HTTP/1.1 201", 12) != 0 ||
	    (v = strstr(resp, "\"version\":")) == NULL) {
		fprintf(stderr, "bench_sse: POST answered: %.200s\n", resp);
		exit(1);
	}
	return strtoull(v + 10, NULL, 10);
}

/* Read whatever is ready; returns once every sub has seen `want`. */
static double
pump(int ep, struct sub *subs, size_t n, uint64_t want, bool poll_mode,
    unsigned port, double deadline)
{
	static char buf[65536];
	struct epoll_event evs[512];
	size_t behind = 0, i;
	double last = 0;

	for (i = 0; i < n; i++)
		if (subs[i].seen < want)
			behind++;
	while (behind > 0) {
		int k, m = epoll_wait(ep, evs, 512, 100);
		if (now_ms() > deadline) {
			fprintf(stderr, "bench_sse: %zu of %zu never saw version "
			    "%llu\n", behind, n, (unsigned long long)want);
			return -1;
		}
		for (k = 0; k < m; k++) {
			struct sub *s = evs[k].data.ptr;
			uint64_t before = s->seen;
			ssize_t r;
			while ((r = read(s->fd, buf, sizeof(buf))) > 0) {
				s->bytes += (uint64_t)r;
				if (poll_mode)
					scan_poll(s, buf, (size_t)r, port);
				else if (getenv("BENCH_SSE_PATH") != NULL)
					scan_version(s, buf, (size_t)r);
				else
					scan_sse(s, buf, (size_t)r);
			}
			if (r == 0) {
				fprintf(stderr, "bench_sse: a subscriber was "
				    "closed\n");
				exit(1);
			}
			if (before < want && s->seen >= want) {
				behind--;
				last = now_ms();
			}
		}
	}
	return last;
}

static int
run_client(int argc, char **argv)
{
	bool poll_mode = strcmp(argv[1], "poll") == 0;
	bool deltas = strcmp(argv[1], "delta") == 0 ||
	    strcmp(argv[1], "burst-delta") == 0;
	bool burst = strncmp(argv[1], "burst", 5) == 0;
	unsigned port = (unsigned)atoi(argv[2]), iport = (unsigned)atoi(argv[3]);
	size_t n = strtoul(argv[4], NULL, 10), i;
	int posts = atoi(argv[5]), p, ep;
	const char *token = argv[6];
	pid_t pid = atoi(argv[7]);
	int idle = atoi(argv[8]);
	struct sub *subs = calloc(n, sizeof(*subs));
	long rss0, rss1, cpu0, cpu1;
	uint64_t v0;

	(void)argc;
	if (subs == NULL || (ep = epoll_create1(0)) == -1)
		die("setup");
	v0 = post(iport, token, 1);
	rss0 = proc_field(pid, "status", "VmRSS:");
	for (i = 0; i < n; i++) {
		struct epoll_event ev = { EPOLLIN | EPOLLET, { .ptr = &subs[i] } };
		subs[i].fd = dial_from(port, true, 1 + (unsigned)(i / 20000));
		if (poll_mode) {
			/* The first answer (no If-None-Match) gives the tag. */
			snprintf(subs[i].etag, sizeof(subs[i].etag), "\"none\"");
			poll_send(&subs[i], port);
		} else if (getenv("BENCH_SSE_PATH") != NULL) {
			char req[512];
			int k = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n"
			    "Host: b\r\nAccept: text/event-stream\r\n\r\n",
			    getenv("BENCH_SSE_PATH"));
			send_all(subs[i].fd, req, (size_t)k);
		} else if (deltas)
			send_all(subs[i].fd, "GET /v1/events?deltas=1 HTTP/1.1"
			    "\r\nHost: b\r\n\r\n", 47);
		else
			send_all(subs[i].fd, "GET /v1/events HTTP/1.1\r\n"
			    "Host: b\r\n\r\n", 38);
		if (epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev) == -1)
			die("epoll_ctl");
	}
	if (pump(ep, subs, n, v0, poll_mode, port, now_ms() + 60000) < 0)
		return 1;
	usleep(500000);
	rss1 = proc_field(pid, "status", "VmRSS:");
	cpu0 = proc_field(pid, "stat", NULL);
	/* Idle: only heartbeats (sse), nothing (poll). */
	{
		double until = now_ms() + idle * 1000.0;
		while (now_ms() < until) {
			static char buf[4096];
			struct epoll_event evs[64];
			int k, m = epoll_wait(ep, evs, 64, 200);
			for (k = 0; k < m; k++) {
				struct sub *s = evs[k].data.ptr;
				while (read(s->fd, buf, sizeof(buf)) > 0)
					;
			}
		}
	}
	cpu1 = proc_field(pid, "stat", NULL);
	printf("%ld %ld %ld %d\n", rss0, rss1, cpu1 - cpu0, idle);
	fflush(stdout);
	if (burst) {
		/*
		 * A poster process sends the POSTS back to back while this one
		 * reads every subscriber: versions come as fast as tallyd takes
		 * them, faster than it can write each to N sockets, so
		 * coalescing (sse_coalesce_ms) and conflation decide what each
		 * subscriber is sent.
		 */
		static char buf[65536];
		struct epoll_event pev = { EPOLLIN, { .ptr = NULL } };
		struct { uint64_t v; double t_ack; } res;
		double t0 = now_ms(), t_last;
		uint64_t b0 = subs[0].bytes, e0 = subs[0].events;
		long c0 = proc_field(pid, "stat", NULL);
		int pfd[2];
		bool posted = false;
		pid_t poster;

		if (pipe(pfd) == -1 || epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0],
		    &pev) == -1)
			die("pipe");
		if ((poster = fork()) == 0) {
			for (p = 0; p < posts; p++)
				res.v = post(iport, token, p + 2);
			res.t_ack = now_ms();
			if (write(pfd[1], &res, sizeof(res)) != sizeof(res))
				_exit(1);
			_exit(0);
		}
		while (!posted) {
			struct epoll_event evs[512];
			int k, m = epoll_wait(ep, evs, 512, 100);
			for (k = 0; k < m; k++) {
				struct sub *su = evs[k].data.ptr;
				ssize_t r;
				if (su == NULL) {
					if (read(pfd[0], &res, sizeof(res)) !=
					    sizeof(res))
						die("poster");
					posted = true;
					continue;
				}
				while ((r = read(su->fd, buf, sizeof(buf))) > 0) {
					su->bytes += (uint64_t)r;
					scan_sse(su, buf, (size_t)r);
				}
			}
		}
		waitpid(poster, NULL, 0);
		epoll_ctl(ep, EPOLL_CTL_DEL, pfd[0], NULL);
		t_last = pump(ep, subs, n, res.v, false, port, now_ms() + 60000);
		if (t_last < 0)
			return 1;
		printf("%.3f %.3f %ld %llu %llu\n", t_last > res.t_ack ?
		    t_last - res.t_ack : 0.0, res.t_ack - t0,
		    proc_field(pid, "stat", NULL) - c0,
		    (unsigned long long)(subs[0].bytes - b0),
		    (unsigned long long)(subs[0].events - e0));
		return 0;
	}
	for (p = 0; p < posts; p++) {
		double t_ack, t_last, t_send = now_ms();
		uint64_t v = post(iport, token, p + 2);
		t_ack = now_ms();
		t_last = pump(ep, subs, n, v, poll_mode, port, now_ms() + 30000);
		if (t_last < 0)
			return 1;
		/* Arrived before the 201 was read: 0. */
		printf("%.3f %.3f %ld %llu\n", t_last > t_ack ? t_last - t_ack :
		    0.0, t_ack - t_send, proc_field(pid, "stat", NULL),
		    (unsigned long long)subs[0].bytes);
		fflush(stdout);
		usleep(20000);
	}
	return 0;
}

/* The bare limit: accept n connections, write BYTES to each, in a loop. */
static int
run_bare(int argc, char **argv)
{
	size_t n = strtoul(argv[2], NULL, 10), bytes = strtoul(argv[3], NULL, 10);
	int reader_cpu = argc > 5 ? atoi(argv[5]) : -1;
	int rounds = atoi(argv[4]), r, lfd, one = 1, ready[2], go[2];
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	char *msg = malloc(bytes);
	int *fds = calloc(n, sizeof(int));
	size_t i;
	pid_t child;

	if (msg == NULL || fds == NULL || pipe(ready) == -1 || pipe(go) == -1)
		die("setup");
	memset(msg, 'x', bytes);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(lfd, 4096) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) == -1)
		die("listen");
	if ((child = fork()) == 0) {
		/* The readers, in their own process (like the subscribers). */
		struct sub *subs = calloc(n, sizeof(*subs));
		int ep = epoll_create1(0);
		char c;
		close(lfd);
		if (reader_cpu >= 0) {
			/* The readers on the clients' CPU, as bench_sse's. */
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(reader_cpu, &set);
			if (sched_setaffinity(0, sizeof(set), &set) == -1)
				die("sched_setaffinity");
		}
		for (i = 0; i < n; i++) {
			struct epoll_event ev = { EPOLLIN | EPOLLET,
			    { .ptr = &subs[i] } };
			subs[i].fd = dial_from(ntohs(sa.sin_port), true,
			    1 + (unsigned)(i / 20000));
			epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev);
		}
		for (r = 0; r < rounds; r++) {
			static char buf[65536];
			size_t done = 0;
			double last = 0;
			if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
				_exit(1);
			for (i = 0; i < n; i++)
				subs[i].got = 0;
			while (done < n) {
				struct epoll_event evs[512];
				int k, m = epoll_wait(ep, evs, 512, 5000);
				if (m <= 0)
					_exit(1);
				for (k = 0; k < m; k++) {
					struct sub *s = evs[k].data.ptr;
					ssize_t got;
					while ((got = read(s->fd, buf,
					    sizeof(buf))) > 0) {
						s->got += (size_t)got;
						if (s->got == bytes) {
							done++;
							last = now_ms();
						}
					}
				}
			}
			if (write(ready[1], &last, sizeof(last)) !=
			    (ssize_t)sizeof(last))
				_exit(1);
		}
		_exit(0);
	}
	for (i = 0; i < n; i++)
		if ((fds[i] = accept(lfd, NULL, NULL)) == -1)
			die("accept");
	for (r = 0; r < rounds; r++) {
		double t0, last, cpu;
		char c;
		if (read(ready[0], &c, 1) != 1)
			die("child");
		if (write(go[1], "g", 1) != 1)
			die("child");
		t0 = now_ms();
		cpu = cpu_ms();
		for (i = 0; i < n; i++)
			send_all(fds[i], msg, bytes);
		cpu = cpu_ms() - cpu;
		if (read(ready[0], &last, sizeof(last)) != (ssize_t)sizeof(last))
			die("child");
		printf("%.3f %.3f\n", last - t0, cpu);
		fflush(stdout);
		usleep(20000);
	}
	waitpid(child, NULL, 0);
	return 0;
}

int
main(int argc, char **argv)
{
	if ((argc == 5 || argc == 6) && strcmp(argv[1], "bare") == 0)
		return run_bare(argc, argv);
	if (argc == 9 && (strcmp(argv[1], "sse") == 0 ||
	    strcmp(argv[1], "delta") == 0 || strcmp(argv[1], "burst") == 0 ||
	    strcmp(argv[1], "burst-delta") == 0 ||
	    strcmp(argv[1], "poll") == 0))
		return run_client(argc, argv);
	fprintf(stderr, "usage: bench_sse sse|delta|poll|burst|burst-delta "
	    "PORT INGEST_PORT N POSTS "
	    "TOKEN PID IDLE_SECS\n       bench_sse bare N BYTES ROUNDS "
	    "[READER_CPU]\n");
	return 2;
}
