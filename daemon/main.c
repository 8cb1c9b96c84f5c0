/*
 * main.c - tallyd: start-up, signals, reload and shutdown.
 *
 * Start-up: configuration -> the data dir's lock -> election -> commit core
 * -> snapshot and journal replay -> event_base -> signal events -> listeners
 * -> dispatch; a background start returns only then.  Teardown runs in
 * reverse.  Signal callbacks run inside the loop (libevent signal events),
 * so they may do the work themselves.
 *
 * Stop (SIGTERM/SIGINT): the listeners stop accepting; the core answers new
 * feeds 503 shutting_down and finishes what it holds; after the grace period,
 * or at a second signal, everything still waiting is answered 503.  The loop
 * ends once no request is parked and the last round is out of the journal;
 * then the HTTP daemons stop, the journal closes, and the final snapshot is
 * written.  Nothing durable is dropped, nothing acknowledged is lost.
 *
 * Under systemd (NOTIFY_SOCKET, notify.c): READY=1 once replayed and
 * listening, STATUS= as it goes, RELOADING=1/READY=1 around SIGHUP,
 * STOPPING=1 at a stop, WATCHDOG=1 from the loop.  SIGUSR1 writes a backup
 * (a snapshot, from a fork child, while serving) into backup_dir.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "publish.h"
#include "tlog_contests.h"
#include "tlog_push.h"
#include "tlogd.h"
#include "tallyd-build.h"
#include "tallyd-config.h"
#include "api.h"
#include "auth.h"
#include "cluster.h"
#include "config.h"
#include "contests.h"
#include "core.h"
#include "daemonize.h"
#include "datadir.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "server.h"
#include "snapshot.h"
#include "util.h"

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
	struct override		 overrides[64];
	size_t			 n_overrides;
	struct core		*core;
	struct api		*api;
	struct contests		*contests;	/* every contest ([0]: core) */
	struct journal		*journal;	/* NULL in cluster mode */
	struct cluster		*cluster;	/* cluster mode, else NULL */
	struct cluster_contests	*clusters;	/* the further contests' */
	char			*snap_dir;	/* where snapshots are */
	int			 lock_fd;	/* DATA_DIR/tallyd.lock, held */
	int			 dir_fd;	/* DATA_DIR, flock held */
	struct snapshot_sched	 snaps;		/* the loaded snapshot, and
						   when the next are written */
	struct server		*server;
	struct event		*ev_sigint, *ev_sigterm, *ev_sighup, *ev_drain;
	struct event		*ev_sigusr1;
	struct metrics_src	 msrc;		/* for /metrics */
	struct timespec		 shutdown_began;
	struct timespec		 abandoned_at;
	bool			 stopping;
	bool			 abandoned;	/* waiting requests answered 503 */
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
"      --election FILE      the election definition (JSON); again: one more\n"
"                           contest (/v1/contests)\n"
"      --listen HOST:PORT   public listener (default 127.0.0.1:8080)\n"
"      --ingest-listen HOST:PORT  separate listener for feeds (POST)\n"
"      --data-dir DIR       journal, token and pid file (default ./var)\n"
"      --repair             cut the journal at a corrupt record instead of\n"
"                           refusing to start (says what is lost; with -n,\n"
"                           only says what it would cut)\n"
"      --empty              start with an empty tally although the data dir\n"
"                           had a journal that is gone\n"
"  -h, --help               this help\n"
"  -V, --version            print the version\n"
"\n"
"Flags override the file; with no file, built-in defaults are used.\n"
"Signals: SIGTERM/SIGINT stop gracefully, SIGHUP reloads the configuration,\n"
"SIGUSR1 writes a backup into backup_dir.  See tallyd(8).\n");
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
	/*
	 * Half a TLS pair: said here, naming the missing key, before the
	 * journal is replayed (the listener would only say "TLS needs both"
	 * after it, under a hint about the address).
	 */
	if ((cf->tls_cert == NULL) != (cf->tls_key == NULL)) {
		tally_diag_add(diag, "%s is set but %s is not: give both or "
		    "neither", cf->tls_cert ? "tls_cert" : "tls_key",
		    cf->tls_cert ? "tls_key" : "tls_cert");
		rc = -1;
	}
	if ((cf->public_tls_cert == NULL) != (cf->public_tls_key == NULL)) {
		tally_diag_add(diag, "%s is set but %s is not: give both or "
		    "neither", cf->public_tls_cert ? "public_tls_cert" :
		    "public_tls_key", cf->public_tls_cert ? "public_tls_key" :
		    "public_tls_cert");
		rc = -1;
	}
	/* Without ingest_listen there is no public listener of its own:
	 * ignoring the pair would serve plain HTTP to someone who asked
	 * for TLS. */
	if (cf->public_tls_cert != NULL && cf->ingest_listen == NULL) {
		tally_diag_add(diag, "public_tls_cert is set but ingest_listen "
		    "is not: with one listener, set tls_cert and tls_key");
		rc = -1;
	}
	return rc;
}

static void
libevent_log(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_limited("libevent", "libevent: %s", msg);
}

/* Answers still being sent after everything waiting was answered 503. */
#define FLUSH_GRACE_SEC	2

static double
since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) +
	    (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
abandon(struct tallyd *td, const char *why)
{
	if (td->abandoned)
		return;
	td->abandoned = true;
	clock_gettime(CLOCK_MONOTONIC, &td->abandoned_at);
	log_warnx("%s: answering every feed still waiting with 503 "
	    "shutting_down (%u parked)", why, server_parked(td->server));
	contests_abandon(td->contests);
}

static void
drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct tallyd *td = arg;

	(void)fd;
	(void)what;
	if (!td->abandoned && since(&td->shutdown_began) >= SHUTDOWN_GRACE_SEC)
		abandon(td, "grace period over");
	/*
	 * Never stop the HTTP daemons with a request parked (libmicrohttpd
	 * aborts), nor before the round in the journal is written: it is
	 * applied, and snapshotted, if it became durable.
	 */
	if (server_parked(td->server) > 0 ||
	    !contests_round_idle(td->contests))
		return;
	if (server_in_flight(td->server) == 0 && contests_idle(td->contests)) {
		log_info("no request in flight; exiting");
		event_base_loopexit(td->base, NULL);
	} else if (td->abandoned && since(&td->abandoned_at) >= FLUSH_GRACE_SEC) {
		log_warnx("%u requests still being sent after %d s; exiting",
		    server_in_flight(td->server), FLUSH_GRACE_SEC);
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
		abandon(td, "signal again");
		return;
	}
	td->stopping = true;
	snapshot_sched_stop(&td->snaps);
	notify("STOPPING=1\nSTATUS=stopping: finishing requests in flight");
	log_info("signal %d: stopping; no new connections, finishing requests "
	    "in flight (at most %d s; a second signal answers what still "
	    "waits at once)", (int)sig, SHUTDOWN_GRACE_SEC);
	clock_gettime(CLOCK_MONOTONIC, &td->shutdown_began);
	server_quiesce(td->server);
	/* Long-polls and event streams are parked: answer and end them. */
	api_stop_live(td->api);
	contests_api_stop_live(td->contests);
	contests_drain(td->contests);
	td->ev_drain = event_new(td->base, -1, EV_PERSIST, drain_check, td);
	if (td->ev_drain == NULL || event_add(td->ev_drain, &tv) == -1)
		fatalx("cannot add the drain timer");
}

/*
 * SIGHUP: read the configuration and the election again.  A new one is
 * taken whole or not at all: if anything is wrong, the old one stays in
 * force and every problem is logged.  The log file is reopened either way
 * (logrotate moves it, then sends SIGHUP).
 */
/* A backup ended (snapshot_sched.c): for /metrics. */
static void
on_backup_done(void *arg, bool ok)
{
	metrics_note_backup(arg, ok);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct tallyd *td = arg;
	struct tally_election *e;
	struct tally_diag diag;
	struct config cf;
	size_t waiting;

	(void)sig;
	(void)what;
	notify_reloading();
	if (td->cf.log_file != NULL && log_reopen(td->cf.log_file) == -1)
		log_warn("cannot reopen log file %s", td->cf.log_file);
	log_info("SIGHUP: reloading the configuration");
	tally_diag_init(&diag);
	if (build_config(td, &cf, &diag) == -1 ||
	    (e = tally_election_load(cf.election, &diag)) == NULL)
		goto fail;
	/* e is ours until api_reload takes it (a TLS refusal leaked it). */
	if (contests_check_reload(td->contests, e, &diag) == -1 ||
	    server_reload_tls(td->server, &cf, &diag) == -1) {
		tally_election_destroy(e);
		goto fail;
	}
	if (contests_reload(td->contests, td->api, e, &cf, &diag) == -1)
		goto fail;
	/* The snapshot store reads revisions of the election in force. */
	td->snaps.store.election = core_election(td->core);
	/* What changed; what needs a restart keeps its value in force. */
	waiting = config_reload_note(&td->cf, &cf);
	log_setlevel(cf.log_level);
	if (cf.log_file == NULL && td->cf.log_file != NULL) {
		/* Detached: keep the file we log to. */
		cf.log_file = td->cf.log_file;
		td->cf.log_file = NULL;
	} else if (!str_eq(cf.log_file, td->cf.log_file) &&
	    log_reopen(cf.log_file) == -1)
		log_warn("cannot open log file %s", cf.log_file);
	config_finish(&td->cf);
	td->cf = cf;
	tally_diag_finish(&diag);
	log_info("reloaded: election %s from %s", core_election(td->core)->id,
	    td->cf.election);
	metrics_note_reload(&td->msrc, true, waiting);
	metrics_note_tls(&td->msrc, &td->cf);
	notify("READY=1");
	return;
fail:
	log_diag(&diag);
	log_warnx("reload failed; keeping the configuration in force");
	metrics_note_reload(&td->msrc, false, 0);
	config_finish(&cf);
	tally_diag_finish(&diag);
	notify("READY=1");
}

/* SIGUSR1: a backup (snapshot_sched.c). */
static void
on_backup_signal(evutil_socket_t sig, short what, void *arg)
{
	struct tallyd *td = arg;

	(void)sig;
	(void)what;
	if (!contests_backup_refused(td->contests, td->cf.data_dir))
		snapshot_sched_backup(&td->snaps);
}

/* STATUS= for systemctl status, refreshed by notify.c's timer. */
static void
status_text(void *arg, char *buf, size_t len)
{
	struct tallyd *td = arg;

	snprintf(buf, len, "%s version %llu of %s; %u connections",
	    td->stopping ? "stopping at" : "serving",
	    (unsigned long long)core_state(td->core)->version,
	    core_election(td->core)->id, server_connections(td->server));
}

/*
 * The watchdog check (notify.c): the loop turns, but is the journal writer
 * getting anywhere?  A write or sync out for longer than
 * journal_stall_timeout holds the ping back.
 */
static bool
writer_progress(void *arg, char *why, size_t len)
{
	struct tallyd *td = arg;
	double busy;

	if (td->journal == NULL || td->cf.journal_stall_timeout <= 0)
		return true;
	busy = journal_busy_for(td->journal);
	if (busy <= (double)td->cf.journal_stall_timeout)
		return true;
	snprintf(why, len, "the journal writer has been in "
	    "one write or fdatasync for %.0f s (journal_stall_timeout %ld s); "
	    "every POST waits for it", busy, td->cf.journal_stall_timeout);
	return false;
}

/*
 * Cluster mode: join the stream before the snapshot is read, because the
 * snapshots of one stream live in a directory of its own (its name holds
 * the stream's identity): a new stream starts from nothing, a new epoch.
 */
static void
join_cluster(struct tallyd *td)
{
	struct tally_diag diag;
	uint64_t epoch = 0;
	char *dir;

	tally_diag_init(&diag);
	if ((td->cluster = cluster_create(&td->cf, core_election(td->core),
	    &epoch, &diag)) == NULL || (td->clusters = cluster_contests_join(
	    td->contests, td->cluster, &td->cf, &diag)) == NULL) {
		log_diag(&diag);
		fatalx("cluster mode: cannot join the stream (cluster_urls%s%s)",
		    td->conf_path ? " in " : "",
		    td->conf_path ? td->conf_path : "");
	}
	tally_diag_finish(&diag);
	if (asprintf(&dir, "%s/cluster-%s-%016llx", td->cf.data_dir,
	    td->cf.cluster_stream ? td->cf.cluster_stream : "TALLY",
	    (unsigned long long)epoch) == -1)
		fatalx("out of memory");
	if (mkdir_p(dir) == -1)
		fatal("cannot create %s", dir);
	free(td->snap_dir);
	td->snap_dir = dir;
	/* The validators' epoch: every node of this stream shares it. */
	core_set_chain(td->core, fnv1a64_step(core_chain(td->core), epoch));
}

/*
 * Load the snapshot, then replay the journal after it (or, with `flags &
 * JOURNAL_CHECK`, only read them).  Exits on failure.
 */
static void
load_tally(struct tallyd *td, unsigned flags, struct journal_stats *jst)
{
	struct tally_diag diag;
	struct timespec t0;
	uint64_t chain = core_chain(td->core);
	json_t *stamps = NULL;

	tally_diag_init(&diag);
	memset(jst, 0, sizeof(*jst));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (snapshot_load(td->snap_dir, core_state(td->core),
	    &td->snaps.seq, &chain, &stamps, &td->snaps.store, jst, &diag) == -1) {
		log_diag(&diag);
		fatalx("cannot load the snapshot in %s: restore it from a copy, "
		    "or move it away to replay the journal alone (if the "
		    "journal still holds every record)", td->cf.data_dir);
	}
	core_set_chain(td->core, chain);
	if (td->snaps.store.fd != -1 && core_stamps_load(td->core, stamps) == -1)
		log_info("the snapshot keeps no stamps of the views: each view "
		    "takes the current one (a cache refetches it once)");
	json_decref(stamps);
	/* Where the journal's versions go on from (journal_open, ack_check). */
	jst->end_version = core_state(td->core)->version;
	if (td->snaps.store.fd != -1)
		log_info("snapshot: %llu revisions (%zu bytes) up to %s "
		    "sequence %llu in %.3f s",
		    (unsigned long long)jst->snapshot_revisions,
		    jst->snapshot_bytes, td->cluster ? "stream" : "journal",
		    (unsigned long long)td->snaps.seq, since(&t0));
	if (td->cluster != NULL) {
		/* Cluster mode: the stream, from here, is the log. */
		tally_diag_finish(&diag);
		return;
	}
	td->journal = journal_open(td->cf.data_dir, (enum journal_policy)
	    td->cf.fsync_policy, td->cf.fsync_batch_ms, td->snaps.seq, flags,
	    contests_replay, td->contests, jst, &diag);
	if (td->journal == NULL) {
		log_diag(&diag);
		fatalx("cannot open the journal in %s (see above for the file "
		    "and what to do)", td->cf.data_dir);
	}
	tally_diag_finish(&diag);
	log_info("journal: replayed %llu records (%zu bytes, %zu segments) in "
	    "%.3f s; version %llu", (unsigned long long)jst->records, jst->bytes,
	    jst->segments, jst->seconds,
	    (unsigned long long)core_state(td->core)->version);
}

/*
 * After --repair cut records clients may have seen as versions up to v - 1:
 * a record with no results moves the tally to version v, durably, so that no
 * version number names two different tallies.
 */
static void
skip_versions(struct tallyd *td, uint64_t v)
{
	struct tally_error err;
	char at[32], *rec;
	size_t len;

	time_rfc3339(time(NULL), at, sizeof(at));
	if (tally_journal_encode(journal_next_seq(td->journal), v, at, NULL, 0,
	    &rec, &len) == -1)
		fatalx("out of memory");
	if (journal_append_now(td->journal, rec, len, 1) == -1)
		fatal("cannot write the journal after --repair");
	if (core_replay(td->core, rec + TALLY_JOURNAL_HEADER,
	    len - TALLY_JOURNAL_HEADER, &err) == -1)
		fatalx("cannot apply the version record: %s", err.message);
	free(rec);
	log_warnx("--repair: the tally continues at version %llu, past every "
	    "version the cut records had", (unsigned long long)v);
}

/*
 * -n: everything a start would check, changing nothing: the settings, the
 * election, the tokens, the snapshot and the journal.  Every problem is
 * listed.  Returns the exit code.
 */
static int
check_all(struct tallyd *td, struct tally_election *e, bool repair)
{
	struct journal_stats jst;
	struct tally_diag diag;
	struct auth *auth;
	struct stat sb;
	int rc = 0;

	printf("election %s (%s): %zu provinces, %llu seats, %zu coalitions, "
	    "method %s\n", e->id, td->cf.election, e->n_provinces,
	    (unsigned long long)e->seats_total, e->n_coalitions,
	    tally_method_name(e->rule.method));
	tally_diag_init(&diag);
	if ((auth = auth_create(&td->cf, e, true, &diag)) == NULL) {
		log_diag(&diag);
		log_warnx("ingest tokens invalid: %zu problem%s", diag.count,
		    diag.count == 1 ? "" : "s");
		rc = 1;
	} else
		printf("ingest tokens: %s\n", auth_source(auth));
	auth_destroy(auth);
	tally_diag_finish(&diag);
	/* Cluster mode opens libnats only when it starts: try it now. */
	if (td->cf.cluster_urls != NULL && cluster_library(&diag) == -1) {
		log_diag(&diag);
		rc = 1;
	}
	tally_diag_finish(&diag);
	if ((td->core = core_create(e, td->cf.election, &diag)) == NULL ||
	    (td->contests = contests_create(td->core, &td->cf, &diag)) ==
	    NULL) {
		log_diag(&diag);
		tally_diag_finish(&diag);
		core_destroy(td->core);
		return 1;
	}
	if (contests_count(td->contests) > 1)
		printf("%zu contests: %s and %zu more\n", contests_count(
		    td->contests), e->id, contests_count(td->contests) - 1);
	if (stat(td->cf.data_dir, &sb) == -1) {
		printf("data dir %s: does not exist yet (a start creates it)\n",
		    td->cf.data_dir);
	} else {
		/* Read-only: load_tally exits with every problem listed. */
		load_tally(td, JOURNAL_CHECK | (repair ? JOURNAL_REPAIR : 0),
		    &jst);
		journal_close(td->journal);
		td->journal = NULL;
		printf("data dir %s: %llu revisions from a snapshot, %llu journal "
		    "records in %zu segments, version %llu%s\n", td->cf.data_dir,
		    (unsigned long long)jst.snapshot_revisions,
		    (unsigned long long)jst.records, jst.segments,
		    (unsigned long long)core_state(td->core)->version,
		    jst.bytes_dropped ? " (see the warnings above)" : "");
	}
	snapshot_store_close(&td->snaps.store);
	contests_destroy(td->contests);
	core_destroy(td->core);
	if (rc == 0)
		printf("configuration OK\n");
	return rc;
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
		{ "empty",		no_argument,		NULL, 6 },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const optkeys[] = { NULL, "election", "listen",
	    "ingest_listen", "data_dir" };
	struct tallyd td;
	struct tally_election *e;
	struct tally_diag diag;
	bool check = false, foreground = false, verbose = false, repair = false;
	bool empty = false;
	struct journal_stats jst;
	size_t n_elections = 0;
	char logpath[4096];
	uint64_t next;
	int ch, ready_fd = -1, rc = 0;

	tally_json_init();
	memset(&td, 0, sizeof(td));
	td.lock_fd = -1;
	td.dir_fd = -1;
	snapshot_sched_init(&td.snaps);
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
			/* Like --listen: it holds over a reload too. */
			if (td.n_overrides < sizeof(td.overrides) /
			    sizeof(td.overrides[0])) {
				td.overrides[td.n_overrides].key = "log_level";
				td.overrides[td.n_overrides++].value = "debug";
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
#ifdef TALLYD_FAILPOINTS
			printf("tallyd %s (commit %s; test build: failpoints)\n",
			    TALLYD_VERSION, TALLYD_COMMIT);
#else
			printf("tallyd %s (commit %s)\n", TALLYD_VERSION,
			    TALLYD_COMMIT);
#endif
			return 0;
		case 5:
			repair = true;
			break;
		case 6:
			empty = true;
			break;
		case 1: case 2: case 3: case 4:
			if (td.n_overrides + 2 > sizeof(td.overrides) /
			    sizeof(td.overrides[0]))
				fatalx("too many settings on the command line");
			/*
			 * --election again: one more contest.  The first
			 * replaces the file's contests too (flags override
			 * the file).
			 */
			if (ch == 1 && n_elections++ > 0) {
				td.overrides[td.n_overrides].key = "contest";
				td.overrides[td.n_overrides++].value = optarg;
				break;
			}
			td.overrides[td.n_overrides].key = optkeys[ch];
			td.overrides[td.n_overrides++].value = optarg;
			if (ch == 1) {
				td.overrides[td.n_overrides].key = "contest";
				td.overrides[td.n_overrides++].value = "";
			}
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
		log_diag(&diag);
		fatalx("configuration invalid: %zu problem%s%s%s", diag.count,
		    diag.count == 1 ? "" : "s", td.conf_path ? " in " : "",
		    td.conf_path ? td.conf_path : "");
	}
	if ((td.snap_dir = strdup(td.cf.data_dir)) == NULL)
		fatalx("out of memory");
	if (td.cf.cluster_urls != NULL && !cluster_supported())
		fatalx("cluster_urls is set but this tallyd was built without "
		    "libnats: install libnats-dev and build again, or unset "
		    "cluster_urls");
	if (verbose)
		td.cf.log_level = LOG_LEVEL_DEBUG;
	log_setlevel(td.cf.log_level);
	if ((e = tally_election_load(td.cf.election, &diag)) == NULL) {
		log_diag(&diag);
		fatalx("election %s invalid: %zu problem%s (see "
		    "docs/ELECTION.md)", td.cf.election, diag.count,
		    diag.count == 1 ? "" : "s");
	}
	tally_diag_finish(&diag);
	if (check) {
		rc = check_all(&td, e, repair);
		config_finish(&td.cf);
		free(td.snap_dir);
		return rc;
	}
	contests_check_config(&td.cf, e);
	notify_init();
	if (mkdir_p(td.cf.data_dir) == -1)
		fatal("cannot create data directory %s (set data_dir or "
		    "--data-dir to a writable place)", td.cf.data_dir);
	/* Before anything in the data dir is read. */
	td.lock_fd = datadir_lock(td.cf.data_dir, &td.dir_fd);
	if (!foreground) {
		if (td.cf.log_file == NULL) {
			snprintf(logpath, sizeof(logpath), "%s/tallyd.log",
			    td.cf.data_dir);
			td.cf.log_file = strdup(logpath);
		}
		ready_fd = daemonize(td.cf.log_file);
		datadir_note_pid(td.lock_fd);	/* the daemon's pid now */
	}
	if (td.cf.log_file != NULL && log_reopen(td.cf.log_file) == -1)
		log_warn("cannot open log file %s; logging to stderr",
		    td.cf.log_file);
	umask(077);

	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(libevent_log);
	if ((td.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	td.ev_sigint = evsignal_new(td.base, SIGINT, on_stop, &td);
	td.ev_sigterm = evsignal_new(td.base, SIGTERM, on_stop, &td);
	td.ev_sighup = evsignal_new(td.base, SIGHUP, on_hup, &td);
	td.ev_sigusr1 = evsignal_new(td.base, SIGUSR1, on_backup_signal, &td);
	if (td.ev_sigint == NULL || td.ev_sigterm == NULL ||
	    td.ev_sighup == NULL || td.ev_sigusr1 == NULL ||
	    evsignal_add(td.ev_sigint, NULL) == -1 ||
	    evsignal_add(td.ev_sigterm, NULL) == -1 ||
	    evsignal_add(td.ev_sighup, NULL) == -1 ||
	    evsignal_add(td.ev_sigusr1, NULL) == -1)
		fatalx("cannot install signal handlers");

	tally_diag_init(&diag);
	if ((td.core = core_create(e, td.cf.election, &diag)) == NULL ||
	    (td.api = api_create(td.core, &td.cf, &diag)) == NULL) {
		log_diag(&diag);
		fatalx("cannot set up the API: fix the problems above (the token "
		    "file is token_file in %s)", td.conf_path ? td.conf_path :
		    "the configuration");
	}
	if ((td.contests = contests_create(td.core, &td.cf, &diag)) == NULL ||
	    contests_api_create(td.contests, td.api, &td.cf, &diag) == -1) {
		log_diag(&diag);
		fatalx("cannot set up the contests: fix the problems above");
	}
	tally_diag_finish(&diag);
	if (td.cf.cluster_urls != NULL)
		join_cluster(&td);
	if (td.cf.transparency_log) {
		/* Before the replay: it appends what the log lacks. */
		tally_diag_init(&diag);
		if ((tlogd_current = tlogd_open(td.cf.data_dir, td.cf.log_key,
		    core_election(td.core)->id, td.cf.election, &diag)) ==
		    NULL) {
			log_diag(&diag);
			fatalx("cannot open the transparency log in %s/tlog",
			    td.cf.data_dir);
		}
		tally_diag_finish(&diag);
		tlog_contests_open(td.contests, tlogd_current, &td.cf);
	}

	/*
	 * Load the snapshot, then replay the journal after it, all before
	 * listening: nobody sees a half-rebuilt tally.  In cluster mode the
	 * stream after the snapshot follows, while we serve (flagged with
	 * the lag until caught up).
	 */
	notify_status("replaying the snapshot and journal in %s",
	    td.cf.data_dir);
	load_tally(&td, (repair ? JOURNAL_REPAIR : 0) |
	    (empty ? JOURNAL_EMPTY_OK : 0), &jst);
	if (jst.repair_max_version > 0 &&
	    jst.repair_max_version >= core_state(td.core)->version)
		skip_versions(&td, jst.repair_max_version + 1);
	notify_status("replayed %llu records (version %llu); opening listeners",
	    (unsigned long long)jst.records,
	    (unsigned long long)core_state(td.core)->version);
	core_started(td.core);
	contests_started(td.contests);
	if (tlogd_current != NULL) {
		tally_diag_init(&diag);
		if (tlogd_started(tlogd_current, core_state(td.core)->version,
		    td.cluster != NULL, &diag) == -1 ||
		    tlog_contests_started(td.contests, &diag) == -1) {
			log_diag(&diag);
			fatalx("the transparency log contradicts its signed "
			    "checkpoint: refusing to start");
		}
		tally_diag_finish(&diag);
		(void)tlog_push_start(tlogd_current, td.base, &td.cf);
	}
	td.snaps.store.election = core_election(td.core);
	api_set_loader(td.api, snapshot_load_revision, &td.snaps.store);
	if (td.cluster != NULL) {
		/* Every contest's stream into its core (cluster_contests.c). */
		if (cluster_contests_start(td.clusters, td.base) == -1)
			fatalx("cluster mode: cannot consume the stream");
	} else if (td.cf.fsync_policy == JOURNAL_ALWAYS)
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
	if (td.journal != NULL) {
		/* One journal for every contest (contests.c). */
		if (journal_start(td.journal, td.base, contests_log_done,
		    td.contests) == -1)
			fatalx("cannot start the journal writer");
		if (contests_set_journal(td.contests, td.journal) == -1)
			fatalx("out of memory");
	}
	tally_diag_init(&diag);
	/* The server calls the API only through these. */
	if ((td.server = server_create(td.base, &td.cf,
	    &(struct server_handlers){ td.api, api_handle, api_admit,
	    api_refused, api_error }, &diag)) == NULL) {
		log_diag(&diag);
		fatalx("%s: is another program on that address?  Change "
		    "listen/ingest_listen or --listen", diag.count > 0 ?
		    diag.msgs[0] : "cannot start the listeners");
	}
	tally_diag_finish(&diag);
	api_set_server(td.api, td.server);
	contests_api_set_server(td.contests, td.server);
	td.msrc = (struct metrics_src){ .cf = &td.cf, .journal = td.journal,
	    .server = td.server, .core = td.core, .started = time(NULL) };
	metrics_note_tls(&td.msrc, &td.cf);
	api_set_metrics(td.api, metrics_write, &td.msrc);
	(void)publish_start(td.api, td.base, &td.cf);	/* publish_url */
	if (td.cluster != NULL)
		server_set_header(td.server, "Tallyd-Node", cluster_header,
		    td.core);
	if (snapshot_sched_start(&td.snaps, td.base, &td.cf, td.core,
	    td.journal, td.snap_dir) == -1)
		fatalx("cannot add the snapshot and backup timers");
	td.snaps.backup_done = on_backup_done;
	td.snaps.backup_done_arg = &td.msrc;
	contests_set_snapshots(td.contests, &td.snaps);	/* one tally each */
	datadir_write_pid(td.lock_fd, &td.cf);
	e = NULL;
	log_info("tallyd %s serving election %s (%s): %zu provinces, %llu "
	    "seats; data in %s", TALLYD_VERSION, core_election(td.core)->id,
	    core_election(td.core)->name, core_election(td.core)->n_provinces,
	    (unsigned long long)core_election(td.core)->seats_total,
	    td.cf.data_dir);
	daemonize_started(ready_fd, &td.cf, core_election(td.core)->id);
	/* Replayed and listening: what READY=1 promises. */
	notify("READY=1\nMAINPID=%ld\nSTATUS=serving version %llu of %s",
	    (long)getpid(), (unsigned long long)core_state(td.core)->version,
	    core_election(td.core)->id);
	notify_set_watchdog_check(writer_progress, &td);
	if (notify_start(td.base, status_text, &td) == -1)
		fatalx("cannot add the notification timer");

	if (event_base_dispatch(td.base) == -1)
		log_warnx("event loop failed");

	/* Nothing is parked now (drain_check): the HTTP daemons may stop. */
	notify_finish();
	publish_finish();
	server_destroy(td.server);
	if (td.cluster != NULL) {
		/* The stream keeps everything; the snapshot is for speed. */
		cluster_contests_destroy(td.clusters);
		cluster_destroy(td.cluster);
		td.cluster = NULL;
		tlogd_flush(tlogd_current);
		snapshot_sched_final(&td.snaps, core_state(td.core)->version + 1);
	} else {
		next = journal_next_seq(td.journal);
		if (journal_close(td.journal) == -1) {
			log_warnx("the journal's last sync failed: no snapshot "
			    "at exit; the next start replays what is on disk");
			rc = 1;
		} else {
			/* The log on disk before the journal is compacted. */
			tlogd_flush(tlogd_current);
			if (contests_count(td.contests) == 1)
				snapshot_sched_final(&td.snaps, next);
		}
		td.journal = NULL;
	}
	free(td.snap_dir);
	contests_api_destroy(td.contests);
	contests_destroy(td.contests);
	api_destroy(td.api);
	tlog_contests_close();
	tlogd_close(tlogd_current);
	tlog_push_finish();
	core_destroy(td.core);
	snapshot_sched_finish(&td.snaps);
	if (td.ev_drain != NULL)
		event_free(td.ev_drain);
	event_free(td.ev_sigusr1);
	event_free(td.ev_sighup);
	event_free(td.ev_sigterm);
	event_free(td.ev_sigint);
	event_base_free(td.base);
	datadir_remove_pid(&td.cf);
	log_info("stopped");
	config_finish(&td.cf);
	close(td.lock_fd);
	close(td.dir_fd);
	return rc;
}
