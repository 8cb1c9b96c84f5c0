/*
 * main.c - tallyd: start-up, signals, reload and shutdown.
 *
 * Start-up: configuration -> election -> state -> event_base -> signal
 * events -> listeners -> dispatch.  Teardown runs in reverse.  Signal
 * callbacks run inside the loop (libevent signal events), so they may do the
 * work themselves.
 */
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <microhttpd.h>

#include "tallyd-config.h"
#include "tallyd.h"

#define SHUTDOWN_GRACE_SEC	10

/* Settings given on the command line, re-applied over the file on reload. */
struct override {
	const char	*key;
	const char	*value;
};

struct tallyd {
	struct event_base	*base;
	struct config		 cf;
	const char		*conf_path;	/* -f, or NULL */
	struct override		 overrides[8];
	size_t			 n_overrides;
	struct api		*api;
	struct journal		*journal;
	struct snapshot_store	 store;		/* the loaded snapshot */
	uint64_t		 snapshot_seq;	/* covered by the newest snapshot */
	pid_t			 snapshot_pid;	/* a snapshot being written, or 0 */
	uint64_t		 snapshot_pending_seq;
	struct event		*ev_snapshot;
	struct server		*server;
	struct event		*ev_sigint, *ev_sigterm, *ev_sighup, *ev_drain;
	struct timespec		 shutdown_began;
	bool			 stopping;
};

static void
usage(FILE *out)
{
	fprintf(out,
"usage: tallyd [-dnv] [-f file] [--election file] [--listen host:port]\n"
"              [--ingest-listen host:port] [--data-dir dir]\n"
"\n"
"  -f, --config FILE        read settings from FILE (see config/tallyd.conf)\n"
"  -n, --check              check the configuration and election, then exit\n"
"  -d, --foreground         stay in the foreground and log to stderr\n"
"  -v, --verbose            log debug messages\n"
"      --election FILE      the election definition (JSON)\n"
"      --listen HOST:PORT   public listener (default 127.0.0.1:8080)\n"
"      --ingest-listen HOST:PORT  separate listener for feeds (POST)\n"
"      --data-dir DIR       journal, token and pid file (default ./var)\n"
"      --repair             cut the journal at a corrupt record instead of\n"
"                           refusing to start (says what is lost)\n"
"  -h, --help               this help\n"
"  -V, --version            print the version\n"
"\n"
"Flags override the file; with no file, built-in defaults are used.\n"
"Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration.\n");
}

static void
print_diag(const struct tally_diag *diag)
{
	size_t i;

	for (i = 0; i < diag->count && i < diag->cap; i++)
		log_warnx("%s", diag->msgs[i]);
	if (diag->nomem)
		log_warnx("(%zu more problems could not be shown: out of memory)",
		    diag->count - diag->cap);
}

/* Build a configuration: defaults, then the file, then the flags. */
static int
build_config(struct tallyd *td, struct config *cf, struct tally_diag *diag)
{
	size_t i;
	int rc = 0;

	if (config_defaults(cf) == -1) {
		tally_diag_add(diag, "out of memory");
		return -1;
	}
	if (td->conf_path != NULL && config_load(cf, td->conf_path, diag) == -1)
		rc = -1;
	for (i = 0; i < td->n_overrides; i++)
		if (config_set(cf, td->overrides[i].key, td->overrides[i].value,
		    diag) == -1)
			rc = -1;
	return rc;
}

static void
libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_limited("libevent", "libevent: %s", msg);
}

static int
mkdir_p(const char *path)
{
	char buf[4096], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0755) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static void
write_pidfile(const struct config *cf)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/tallyd.pid", cf->data_dir);
	if ((f = fopen(path, "w")) == NULL) {
		log_warn("cannot write %s", path);
		return;
	}
	fprintf(f, "%ld\n", (long)getpid());
	fclose(f);
}

static void
remove_pidfile(const struct config *cf)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/tallyd.pid", cf->data_dir);
	unlink(path);
}

static void
drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct tallyd *td = arg;
	struct timespec now;

	(void)fd;
	(void)what;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (server_in_flight(td->server) == 0 && api_idle(td->api)) {
		log_info("no request in flight; exiting");
		event_base_loopexit(td->base, NULL);
	} else if (now.tv_sec - td->shutdown_began.tv_sec >= SHUTDOWN_GRACE_SEC) {
		log_warnx("%u requests still in flight after %d s; exiting",
		    server_in_flight(td->server), SHUTDOWN_GRACE_SEC);
		event_base_loopexit(td->base, NULL);
	}
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct tallyd *td = arg;
	struct timeval tv = { 0, 20000 };

	(void)what;
	if (td->stopping) {
		log_warnx("signal %d again: exiting now", (int)sig);
		event_base_loopbreak(td->base);
		return;
	}
	td->stopping = true;
	log_info("signal %d: stopping; no new connections, finishing requests "
	    "in flight", (int)sig);
	clock_gettime(CLOCK_MONOTONIC, &td->shutdown_began);
	server_quiesce(td->server);
	td->ev_drain = event_new(td->base, -1, EV_PERSIST, drain_check, td);
	if (td->ev_drain == NULL || event_add(td->ev_drain, &tv) == -1)
		event_base_loopexit(td->base, NULL);
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * SIGHUP: read the configuration and the election again.  A new one is
 * taken whole or not at all: if anything is wrong, the old one stays in
 * force and every problem is logged.
 */
static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct tallyd *td = arg;
	struct tally_election *e;
	struct tally_diag diag;
	struct config cf;

	(void)sig;
	(void)what;
	log_info("SIGHUP: reloading the configuration");
	tally_diag_init(&diag);
	if (build_config(td, &cf, &diag) == -1 ||
	    (e = tally_election_load(cf.election, &diag)) == NULL) {
		print_diag(&diag);
		log_warnx("reload failed; keeping the configuration in force");
		goto out;
	}
	if (api_reload(td->api, e, &cf, &diag) == -1) {
		print_diag(&diag);
		log_warnx("reload failed; keeping the configuration in force");
		goto out;
	}
	if (!str_eq(cf.listen, td->cf.listen) ||
	    !str_eq(cf.ingest_listen, td->cf.ingest_listen) ||
	    !str_eq(cf.data_dir, td->cf.data_dir))
		log_warnx("listen, ingest_listen and data_dir changes take "
		    "effect at the next restart");
	log_setlevel(cf.log_level);
	if (!str_eq(cf.log_file, td->cf.log_file) && cf.log_file != NULL &&
	    log_reopen(cf.log_file) == -1)
		log_warn("cannot open log file %s", cf.log_file);
	/* Keep the addresses the listeners really use. */
	free(cf.listen);
	cf.listen = td->cf.listen;
	td->cf.listen = NULL;
	free(cf.ingest_listen);
	cf.ingest_listen = td->cf.ingest_listen;
	td->cf.ingest_listen = NULL;
	free(cf.data_dir);
	cf.data_dir = td->cf.data_dir;
	td->cf.data_dir = NULL;
	config_finish(&td->cf);
	td->cf = cf;
	tally_diag_finish(&diag);
	log_info("reloaded: election %s from %s", api_election_id(td->api),
	    td->cf.election);
	return;
out:
	config_finish(&cf);
	tally_diag_finish(&diag);
}

/*
 * Snapshots.  Every second, if the journal has grown by snapshot_every
 * records since the last snapshot and no round is in flight (so everything
 * journaled is applied), the journal moves to a new segment and a child
 * process writes the tally as it stands, from its copy-on-write image of
 * our memory, while we go on serving.  When the child succeeds, the
 * segments it covers are removed.
 */
static void
snapshot_tick(evutil_socket_t fd, short what, void *arg)
{
	struct tallyd *td = arg;
	struct tally_diag diag;
	uint64_t next;
	pid_t pid;
	int status;

	(void)fd;
	(void)what;
	if (td->snapshot_pid != 0) {
		if (waitpid(td->snapshot_pid, &status, WNOHANG) != td->snapshot_pid)
			return;
		td->snapshot_pid = 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			td->snapshot_seq = td->snapshot_pending_seq;
			snapshot_prune(td->cf.data_dir, td->snapshot_seq);
			log_info("snapshot up to journal sequence %llu written; "
			    "older segments removed",
			    (unsigned long long)td->snapshot_seq);
		} else
			log_warnx("snapshot writer failed (status %d); the "
			    "journal segments are kept", status);
		return;
	}
	next = journal_next_seq(td->journal);
	if (td->stopping || td->cf.snapshot_every <= 0 ||
	    next - td->snapshot_seq < (uint64_t)td->cf.snapshot_every ||
	    journal_busy(td->journal) || !api_round_idle(td->api))
		return;
	tally_diag_init(&diag);
	if (journal_rotate(td->journal, &diag) == -1) {
		print_diag(&diag);
		tally_diag_finish(&diag);
		return;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork for a snapshot");
		tally_diag_finish(&diag);
		return;
	}
	if (pid == 0) {
		/*
		 * The child: write and leave, touching nothing else.  It first
		 * lets go of the listening sockets and connections, so that a
		 * tallyd restarted while it still writes can bind its ports.
		 */
		int rc, keep[2] = { td->store.fd, log_fd() };
		unsigned from = 3;
		size_t k;
		if (keep[0] > keep[1]) {
			keep[0] = keep[1];
			keep[1] = td->store.fd;
		}
		for (k = 0; k < 2; k++) {
			if (keep[k] < (int)from)
				continue;
			if ((unsigned)keep[k] > from)
				close_range(from, (unsigned)keep[k] - 1, 0);
			from = (unsigned)keep[k] + 1;
		}
		close_range(from, ~0U, 0);
		rc = snapshot_write(td->cf.data_dir, api_state(td->api), next,
		    &td->store, &diag);
		if (rc == -1)
			print_diag(&diag);
		_exit(rc == -1 ? 1 : 0);
	}
	td->snapshot_pid = pid;
	td->snapshot_pending_seq = next;
	log_info("writing a snapshot up to journal sequence %llu (pid %ld)",
	    (unsigned long long)next, (long)pid);
	tally_diag_finish(&diag);
}

/* At a clean stop: a snapshot of everything, so the next start is quick. */
static void
final_snapshot(struct tallyd *td)
{
	struct tally_diag diag;
	uint64_t next = journal_next_seq(td->journal);
	int status;

	if (td->snapshot_pid != 0) {
		log_info("waiting for the snapshot writer (pid %ld)",
		    (long)td->snapshot_pid);
		waitpid(td->snapshot_pid, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			td->snapshot_seq = td->snapshot_pending_seq;
			snapshot_prune(td->cf.data_dir, td->snapshot_seq);
		}
		td->snapshot_pid = 0;
	}
	journal_close(td->journal);
	td->journal = NULL;
	if (next == td->snapshot_seq)
		return;
	tally_diag_init(&diag);
	if (snapshot_write(td->cf.data_dir, api_state(td->api), next, &td->store,
	    &diag) == -1) {
		print_diag(&diag);
		log_warnx("no snapshot at exit; the journal is kept and replayed "
		    "at the next start");
	} else {
		snapshot_prune(td->cf.data_dir, next);
		log_info("snapshot up to journal sequence %llu written",
		    (unsigned long long)next);
	}
	tally_diag_finish(&diag);
}

static void
daemonize(void)
{
	pid_t pid;
	int fd;

	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if (setsid() == -1)
		fatal("setsid");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0)
		_exit(0);
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config",		required_argument,	NULL, 'f' },
		{ "check",		no_argument,		NULL, 'n' },
		{ "foreground",		no_argument,		NULL, 'd' },
		{ "verbose",		no_argument,		NULL, 'v' },
		{ "help",		no_argument,		NULL, 'h' },
		{ "version",		no_argument,		NULL, 'V' },
		{ "election",		required_argument,	NULL, 1 },
		{ "listen",		required_argument,	NULL, 2 },
		{ "ingest-listen",	required_argument,	NULL, 3 },
		{ "data-dir",		required_argument,	NULL, 4 },
		{ "repair",		no_argument,		NULL, 5 },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const optkeys[] = { NULL, "election", "listen",
	    "ingest_listen", "data_dir" };
	struct tallyd td;
	struct tally_election *e;
	struct tally_diag diag;
	bool check = false, foreground = false, verbose = false, repair = false;
	struct journal_stats jst;
	char logpath[4096];
	int ch;

	memset(&td, 0, sizeof(td));
	log_init(LOG_LEVEL_INFO, NULL);
	while ((ch = getopt_long(argc, argv, "f:ndvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			td.conf_path = optarg;
			break;
		case 'n':
			check = true;
			break;
		case 'd':
			foreground = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("tallyd %s\n", TALLYD_VERSION);
			return 0;
		case 5:
			repair = true;
			break;
		case 1: case 2: case 3: case 4:
			if (td.n_overrides == sizeof(td.overrides) /
			    sizeof(td.overrides[0]))
				fatalx("too many settings on the command line");
			td.overrides[td.n_overrides].key = optkeys[ch];
			td.overrides[td.n_overrides++].value = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "tallyd: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}

	tally_diag_init(&diag);
	if (build_config(&td, &td.cf, &diag) == -1) {
		print_diag(&diag);
		fatalx("configuration invalid: %zu problem%s", diag.count,
		    diag.count == 1 ? "" : "s");
	}
	if (verbose)
		td.cf.log_level = LOG_LEVEL_DEBUG;
	log_setlevel(td.cf.log_level);
	if ((e = tally_election_load(td.cf.election, &diag)) == NULL) {
		print_diag(&diag);
		fatalx("election %s invalid: %zu problem%s", td.cf.election,
		    diag.count, diag.count == 1 ? "" : "s");
	}
	tally_diag_finish(&diag);
	if (check) {
		printf("configuration OK: election %s (%s): %zu provinces, "
		    "%llu seats, %zu coalitions, method %s\n", e->id,
		    td.cf.election, e->n_provinces,
		    (unsigned long long)e->seats_total, e->n_coalitions,
		    tally_method_name(e->rule.method));
		tally_election_destroy(e);
		config_finish(&td.cf);
		return 0;
	}

	if (mkdir_p(td.cf.data_dir) == -1)
		fatal("cannot create data directory %s", td.cf.data_dir);
	if (!foreground) {
		if (td.cf.log_file == NULL) {
			snprintf(logpath, sizeof(logpath), "%s/tallyd.log",
			    td.cf.data_dir);
			td.cf.log_file = strdup(logpath);
		}
		printf("tallyd: starting in the background; log: %s\n",
		    td.cf.log_file);
		fflush(stdout);
		daemonize();
	}
	if (td.cf.log_file != NULL && log_reopen(td.cf.log_file) == -1)
		log_warn("cannot open log file %s; logging to stderr",
		    td.cf.log_file);

	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(libevent_log);
	if ((td.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	td.ev_sigint = evsignal_new(td.base, SIGINT, on_stop, &td);
	td.ev_sigterm = evsignal_new(td.base, SIGTERM, on_stop, &td);
	td.ev_sighup = evsignal_new(td.base, SIGHUP, on_hup, &td);
	if (td.ev_sigint == NULL || td.ev_sigterm == NULL ||
	    td.ev_sighup == NULL || evsignal_add(td.ev_sigint, NULL) == -1 ||
	    evsignal_add(td.ev_sigterm, NULL) == -1 ||
	    evsignal_add(td.ev_sighup, NULL) == -1)
		fatalx("cannot install signal handlers");

	tally_diag_init(&diag);
	if ((td.api = api_create(e, &td.cf, &diag)) == NULL) {
		print_diag(&diag);
		fatalx("cannot set up the API");
	}
	tally_diag_finish(&diag);

	/*
	 * Load the snapshot, then replay the journal after it, all before
	 * listening: nobody sees a half-rebuilt tally.
	 */
	tally_diag_init(&diag);
	memset(&jst, 0, sizeof(jst));
	{
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (snapshot_load(td.cf.data_dir, api_state(td.api),
		    &td.snapshot_seq, &td.store, &jst, &diag) == -1) {
			print_diag(&diag);
			fatalx("cannot load the snapshot in %s", td.cf.data_dir);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (td.store.fd != -1)
			log_info("snapshot: %llu revisions (%zu bytes) up to "
			    "journal sequence %llu in %.3f s",
			    (unsigned long long)jst.snapshot_revisions,
			    jst.snapshot_bytes,
			    (unsigned long long)td.snapshot_seq,
			    (double)(t1.tv_sec - t0.tv_sec) +
			    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	api_set_loader(td.api, snapshot_load_revision, &td.store);
	td.journal = journal_open(td.cf.data_dir, (enum journal_policy)
	    td.cf.fsync_policy, td.cf.fsync_batch_ms, td.snapshot_seq,
	    api_state(td.api), repair, &jst, &diag);
	if (td.journal == NULL) {
		print_diag(&diag);
		fatalx("cannot open the journal in %s", td.cf.data_dir);
	}
	tally_diag_finish(&diag);
	log_info("journal: replayed %llu records (%zu bytes, %zu segments) in "
	    "%.3f s; version %llu", (unsigned long long)jst.records, jst.bytes,
	    jst.segments, jst.seconds,
	    (unsigned long long)api_state(td.api)->version);
	if (td.cf.fsync_policy == JOURNAL_ALWAYS)
		log_info("fsync policy always: a feed is acknowledged after its "
		    "journal record is on disk");
	else if (td.cf.fsync_policy == JOURNAL_BATCH)
		log_warnx("fsync policy batch:%ld: feeds are acknowledged before "
		    "they are synced; a power cut can lose up to %ld ms of "
		    "acknowledged feeds", td.cf.fsync_batch_ms,
		    td.cf.fsync_batch_ms);
	else
		log_warnx("fsync policy off: feeds are acknowledged before they "
		    "are synced; a power cut can lose acknowledged feeds");
	if (journal_start(td.journal, td.base, api_journal_done, td.api) == -1)
		fatalx("cannot start the journal writer");
	api_set_journal(td.api, td.journal);

	tally_diag_init(&diag);
	if ((td.server = server_create(td.base, &td.cf, &diag)) == NULL) {
		print_diag(&diag);
		fatalx("cannot start the listeners");
	}
	tally_diag_finish(&diag);
	server_set_api(td.server, td.api);
	api_set_server(td.api, td.server);
	{
		struct timeval one = { 1, 0 };
		td.ev_snapshot = event_new(td.base, -1, EV_PERSIST,
		    snapshot_tick, &td);
		if (td.ev_snapshot == NULL || event_add(td.ev_snapshot, &one) == -1)
			fatalx("cannot add the snapshot timer");
	}
	write_pidfile(&td.cf);
	log_info("tallyd %s serving election %s (%s): %zu provinces, %llu "
	    "seats; data in %s", TALLYD_VERSION, e->id, e->name,
	    e->n_provinces, (unsigned long long)e->seats_total, td.cf.data_dir);

	if (event_base_dispatch(td.base) == -1)
		log_warnx("event loop failed");

	server_destroy(td.server);
	final_snapshot(&td);
	api_destroy(td.api);
	snapshot_store_close(&td.store);
	if (td.ev_snapshot != NULL)
		event_free(td.ev_snapshot);
	if (td.ev_drain != NULL)
		event_free(td.ev_drain);
	event_free(td.ev_sighup);
	event_free(td.ev_sigterm);
	event_free(td.ev_sigint);
	event_base_free(td.base);
	remove_pidfile(&td.cf);
	log_info("stopped");
	config_finish(&td.cf);
	return 0;
}
