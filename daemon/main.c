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
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "tallyd-build.h"
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
	struct core		*core;
	struct api		*api;
	struct journal		*journal;	/* NULL in cluster mode */
	struct cluster		*cluster;	/* cluster mode, else NULL */
	char			*snap_dir;	/* where snapshots are */
	int			 lock_fd;	/* DATA_DIR/tallyd.lock, held */
	int			 dir_fd;	/* DATA_DIR, flock held */
	struct snapshot_store	 store;		/* the loaded snapshot */
	uint64_t		 snapshot_seq;	/* covered by the newest snapshot */
	pid_t			 snapshot_pid;	/* a snapshot being written, or 0 */
	uint64_t		 snapshot_pending_seq;
	struct event		*ev_snapshot;
	struct server		*server;
	struct event		*ev_sigint, *ev_sigterm, *ev_sighup, *ev_drain;
	struct event		*ev_sigusr1, *ev_backup;
	struct metrics_src	 msrc;		/* for /metrics */
	pid_t			 backup_pid;	/* a backup being written, or 0 */
	char			 backup_path[4200];
	uint64_t		 backup_version;
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
"      --election FILE      the election definition (JSON)\n"
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
	/* The journal and the token are nobody else's business. */
	if (mkdir(buf, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

/*
 * The pid holding an flock on the file open at fd, from /proc/locks (whose
 * lines read "1: FLOCK  ADVISORY  WRITE <pid> <maj>:<min>:<inode> 0 EOF",
 * device numbers in hex), or 0 when it cannot be told.  The pid is the one
 * that took the lock: for a background start that is the parent that has
 * since exited (the daemon is its grandchild), so a dead pid says nothing.
 */
static long
lock_holder(int fd)
{
	char line[256], mode[16], type[16];
	unsigned maj, min;
	unsigned long long ino;
	long pid, found = 0;
	struct stat st;
	FILE *f;

	if (fstat(fd, &st) == -1 || (f = fopen("/proc/locks", "re")) == NULL)
		return 0;
	while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
		/* "->" lines are waiters, not holders: their scan fails. */
		if (sscanf(line, "%*d: %15s %*s %15s %ld %x:%x:%llu", type, mode,
		    &pid, &maj, &min, &ino) == 6 && strcmp(type, "FLOCK") == 0 &&
		    maj == major(st.st_dev) && min == minor(st.st_dev) &&
		    ino == (unsigned long long)st.st_ino)
			found = pid;
	}
	fclose(f);
	if (found > 0 && kill((pid_t)found, 0) == -1 && errno == ESRCH)
		return 0;
	return found;
}

/* The lock file names its holder; a failure only costs the refusal's pid. */
static void
lock_note_pid(int lock_fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(lock_fd, 0) == -1 || pwrite(lock_fd, buf, (size_t)n, 0) != n)
		log_warn("cannot write the pid into the lock file");
}

/*
 * One daemon per data dir: two would interleave their journals and each
 * acknowledge what the other overwrites.  The lock is taken before anything
 * in the directory is read, and held (the descriptors stay open) until
 * exit; the kernel drops it if the process dies.
 *
 * The lock that counts is an flock on the data directory itself, open
 * O_DIRECTORY: nobody can remove the directory from under a running daemon
 * and keep its journal, whereas tallyd.lock can be deleted by a hand that
 * takes it for a stale leftover, and a lock on a file that is no longer
 * there stops nobody (the next daemon creates a new file and locks that).
 * tallyd.lock is still locked as well, for tools that look at it, and it
 * holds the pid so that the refusal can say who has the data dir (written
 * at once, not only once serving: a replay can take minutes, and the pid
 * of the run before would be named meanwhile); when it is gone,
 * /proc/locks or else tallyd.pid names the holder.
 */
static int
lock_data_dir(const char *dir, int *dir_fd)
{
	char path[4200], pid[32] = "";
	long holder;
	ssize_t n;
	int fd, dfd;

	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		fatal("cannot open the data dir %s (check the data_dir "
		    "setting and its permissions)", dir);
	snprintf(path, sizeof(path), "%s/tallyd.lock", dir);
	if (flock(dfd, LOCK_EX | LOCK_NB) == 0) {
		if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
			fatal("cannot open %s (check the data_dir setting and "
			    "its permissions)", path);
		/* Held elsewhere only by a tallyd that predates the dir lock. */
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*dir_fd = dfd;
			lock_note_pid(fd);
			return fd;
		}
		if (errno != EWOULDBLOCK)
			fatal("cannot lock %s", path);
	} else {
		if (errno != EWOULDBLOCK)
			fatal("cannot lock the data dir %s", dir);
		/* Only read: the holder's files are not ours to create. */
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd != -1 && (n = pread(fd, pid, sizeof(pid) - 1, 0)) > 0) {
		pid[n] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
	}
	if (pid[0] == '\0' && (holder = lock_holder(dfd)) > 0)
		snprintf(pid, sizeof(pid), "%ld", holder);
	if (pid[0] == '\0') {
		snprintf(path, sizeof(path), "%s/tallyd.pid", dir);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1 &&
		    (n = pread(fd, pid, sizeof(pid) - 1, 0)) > 0) {
			pid[n] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
		}
	}
	fatalx("data dir %s is in use by another tallyd (pid %s): stop it "
	    "first, or give this one its own --data-dir", dir,
	    pid[0] ? pid : "unknown");
}

static void
write_pid(int lock_fd, const struct config *cf)
{
	char buf[32], path[4200];
	FILE *f;

	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	lock_note_pid(lock_fd);
	/* tallyd.pid for scripts; the lock on the data dir is the authority. */
	snprintf(path, sizeof(path), "%s/tallyd.pid", cf->data_dir);
	if ((f = fopen(path, "w")) == NULL) {
		log_warn("cannot write %s", path);
		return;
	}
	fputs(buf, f);
	fclose(f);
}

static void
remove_pidfile(const struct config *cf)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/tallyd.pid", cf->data_dir);
	unlink(path);
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
	core_abandon(td->core);
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
	if (server_parked(td->server) > 0 || !core_round_idle(td->core))
		return;
	if (server_in_flight(td->server) == 0 && core_idle(td->core)) {
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
	notify("STOPPING=1\nSTATUS=stopping: finishing requests in flight");
	log_info("signal %d: stopping; no new connections, finishing requests "
	    "in flight (at most %d s; a second signal answers what still "
	    "waits at once)", (int)sig, SHUTDOWN_GRACE_SEC);
	clock_gettime(CLOCK_MONOTONIC, &td->shutdown_began);
	server_quiesce(td->server);
	/* Long-polls and event streams are parked: answer and end them. */
	api_stop_live(td->api);
	core_drain(td->core);
	td->ev_drain = event_new(td->base, -1, EV_PERSIST, drain_check, td);
	if (td->ev_drain == NULL || event_add(td->ev_drain, &tv) == -1)
		fatalx("cannot add the drain timer");
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
 * force and every problem is logged.  The log file is reopened either way
 * (logrotate moves it, then sends SIGHUP).
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
	notify_reloading();
	if (td->cf.log_file != NULL && log_reopen(td->cf.log_file) == -1)
		log_warn("cannot reopen log file %s", td->cf.log_file);
	log_info("SIGHUP: reloading the configuration");
	tally_diag_init(&diag);
	if (build_config(td, &cf, &diag) == -1 ||
	    (e = tally_election_load(cf.election, &diag)) == NULL) {
		print_diag(&diag);
		log_warnx("reload failed; keeping the configuration in force");
		goto out;
	}
	if (server_reload_tls(td->server, &cf, &diag) == -1 ||
	    api_reload(td->api, e, &cf, &diag) == -1) {
		print_diag(&diag);
		log_warnx("reload failed; keeping the configuration in force");
		goto out;
	}
	/* The snapshot store reads revisions of the election in force. */
	td->store.election = core_election(td->core);
	if (!str_eq(cf.listen, td->cf.listen) ||
	    !str_eq(cf.ingest_listen, td->cf.ingest_listen) ||
	    !str_eq(cf.data_dir, td->cf.data_dir))
		log_warnx("listen, ingest_listen and data_dir changes take "
		    "effect at the next restart");
	log_setlevel(cf.log_level);
	if (cf.log_file == NULL && td->cf.log_file != NULL) {
		/* Detached: keep the file we log to. */
		cf.log_file = td->cf.log_file;
		td->cf.log_file = NULL;
	} else if (!str_eq(cf.log_file, td->cf.log_file) &&
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
	log_info("reloaded: election %s from %s", core_election(td->core)->id,
	    td->cf.election);
	notify("READY=1");
	return;
out:
	config_finish(&cf);
	tally_diag_finish(&diag);
	notify("READY=1");
}

/*
 * A snapshot or backup child: write and leave, touching nothing else.  It
 * first takes back the default signal dispositions (libevent's handlers
 * would write into the parent's loop), then lets go of the sockets and the
 * lock, so that a tallyd restarted while it still writes can bind and lock.
 */
static void
writer_child_setup(struct tallyd *td)
{
	int keep[2] = { td->store.fd, log_fd() };
	unsigned from = 3;
	sigset_t none;
	size_t k;

	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
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
}

static void
snapshot_reap(struct tallyd *td, int status)
{
	td->snapshot_pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		struct tally_diag diag;
		size_t stored = 0;
		td->snapshot_seq = td->snapshot_pending_seq;
		/* Older revisions now live in the snapshot, not in memory. */
		tally_diag_init(&diag);
		if (snapshot_adopt(td->snap_dir, td->snapshot_seq,
		    core_state(td->core), &td->store, &stored, &diag) == -1) {
			print_diag(&diag);
			log_warnx("older revisions stay in memory");
		}
#ifdef __GLIBC__
		/*
		 * The freed revisions are spread over the heap: without a
		 * trim, glibc keeps every page and RSS does not come down.
		 */
		if (stored > 0)
			malloc_trim(0);
#endif
		tally_diag_finish(&diag);
		snapshot_prune(td->snap_dir, td->snapshot_seq, false);
		log_info("snapshot up to journal sequence %llu written; "
		    "older segments removed, %zu older revisions moved to it "
		    "from memory", (unsigned long long)td->snapshot_seq, stored);
	} else
		log_warnx("snapshot writer failed (status %d); the journal "
		    "segments are kept", status);
}

/*
 * Snapshots.  Every second, if the journal has grown by snapshot_every
 * records since the last snapshot and nothing is in the journal (so
 * everything journaled is applied), a child process writes the tally as it
 * stands, from its copy-on-write image of our memory, while we go on
 * serving; at the same moment the journal moves to a new segment on its
 * writer, so that the old segments are wholly covered.  When the child
 * succeeds, they are removed.
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
		if (waitpid(td->snapshot_pid, &status, WNOHANG) == td->snapshot_pid)
			snapshot_reap(td, status);
		return;
	}
	/* Cluster mode: the position after the last record applied. */
	next = td->journal != NULL ? journal_next_seq(td->journal) :
	    core_state(td->core)->version + 1;
	if (td->stopping || td->cf.snapshot_every <= 0 ||
	    next - td->snapshot_seq < (uint64_t)td->cf.snapshot_every ||
	    (td->journal != NULL && journal_busy(td->journal)) ||
	    !core_round_idle(td->core))
		return;
	if ((pid = fork()) == -1) {
		log_warn("fork for a snapshot");
		return;
	}
	if (pid == 0) {
		int rc;
		writer_child_setup(td);
		tally_diag_init(&diag);
		rc = snapshot_write(td->snap_dir, core_state(td->core), next,
		    core_chain(td->core), core_stamps_dump(td->core),
		    &td->store, &diag);
		if (rc == -1)
			print_diag(&diag);
		_exit(rc == -1 ? 1 : 0);
	}
	td->snapshot_pid = pid;
	td->snapshot_pending_seq = next;
	if (td->journal != NULL && journal_rotate(td->journal) == -1)
		log_warn("journal rotation");
	log_info("writing a snapshot up to journal sequence %llu (pid %ld)",
	    (unsigned long long)next, (long)pid);
}

/* Copy the election definition beside a backup, for the archive. */
static int
copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in, out, rc = -1;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto out;
	if (n == 0 && fsync(out) == 0)
		rc = 0;
out:
	close(in);
	if (close(out) == -1)
		rc = -1;
	return rc;
}

/*
 * Whether the file still holds the definition in force: a reload may have
 * named another file, or the file been edited, after counting began (the
 * new one is then taken only at the next restart).  A backup must not
 * archive a definition it was not counted under.
 */
static bool
same_definition(const struct tally_election *e, const char *path)
{
	struct tally_election *f;
	struct tally_diag diag;
	json_t *a, *b;
	bool same;

	tally_diag_init(&diag);
	f = tally_election_load(path, &diag);
	tally_diag_finish(&diag);
	if (f == NULL)
		return false;
	a = tally_election_dump(e);
	b = tally_election_dump(f);
	same = a != NULL && b != NULL && json_equal(a, b);
	json_decref(a);
	json_decref(b);
	tally_election_destroy(f);
	return same;
}

/*
 * Backups (SIGUSR1).  A backup is a snapshot of the whole tally, written
 * like the periodic ones -- by a fork child from its copy-on-write image,
 * while we go on serving -- but into a new directory under backup_dir, with
 * a copy of the election definition.  It is consistent because the child is
 * forked only when nothing is in the journal (every journaled record is
 * applied, and nothing applied is missing from the journal).  Restoring is
 * putting the snapshot into an empty data dir: the snapshot holds every
 * revision, the version and the history digest, so the restored tallyd
 * serves the same bytes under the same ETags.  Nothing is pruned: the
 * journal is not rotated for a backup.
 */
static void
on_backup_signal(evutil_socket_t sig, short what, void *arg)
{
	struct tallyd *td = arg;
	struct timeval tv = { 0, 10000 };

	(void)sig;
	(void)what;
	if (td->stopping) {
		log_warnx("SIGUSR1: stopping; no backup (the final snapshot is "
		    "written in %s)", td->cf.data_dir);
		return;
	}
	if (td->backup_pid != 0 || evtimer_pending(td->ev_backup, NULL)) {
		log_info("SIGUSR1: a backup is already under way");
		return;
	}
	log_info("SIGUSR1: backup requested; waiting for the journal to be "
	    "idle");
	evtimer_add(td->ev_backup, &tv);
}

static void
backup_tick(evutil_socket_t fd, short what, void *arg)
{
	struct tallyd *td = arg;
	struct timeval tv = { 0, 10000 };
	struct tally_diag diag;
	char stamp[32], path[4400];
	struct tm tm;
	time_t now;
	uint64_t next;
	pid_t pid;
	int status;

	(void)fd;
	(void)what;
	if (td->backup_pid != 0) {
		if (waitpid(td->backup_pid, &status, WNOHANG) != td->backup_pid) {
			evtimer_add(td->ev_backup, &tv);
			return;
		}
		td->backup_pid = 0;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			log_info("backup written to %s (version %llu)",
			    td->backup_path,
			    (unsigned long long)td->backup_version);
		else
			log_warnx("backup to %s failed (status %d); see above",
			    td->backup_path, status);
		return;
	}
	/* Everything journaled is applied, and nothing else is. */
	if (journal_busy(td->journal) || !core_round_idle(td->core)) {
		evtimer_add(td->ev_backup, &tv);
		return;
	}
	next = journal_next_seq(td->journal);
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(td->backup_path, sizeof(td->backup_path),
	    "%s%s/tallyd-%s-%s-v%llu", td->cf.backup_dir != NULL ?
	    td->cf.backup_dir : td->cf.data_dir, td->cf.backup_dir != NULL ?
	    "" : "/backups", core_election(td->core)->id,
	    stamp, (unsigned long long)core_state(td->core)->version);
	td->backup_version = core_state(td->core)->version;
	if ((pid = fork()) == -1) {
		log_warn("fork for a backup");
		return;
	}
	if (pid == 0) {
		int rc = -1;
		writer_child_setup(td);
		tally_diag_init(&diag);
		if (mkdir_p(td->backup_path) == -1)
			log_warn("backup: cannot create %s", td->backup_path);
		else if ((rc = snapshot_write(td->backup_path,
		    core_state(td->core), next, core_chain(td->core),
		    core_stamps_dump(td->core), &td->store, &diag)) == -1)
			print_diag(&diag);
		else if (same_definition(core_election(td->core),
		    td->cf.election)) {
			snprintf(path, sizeof(path), "%s/election.json",
			    td->backup_path);
			if (copy_file(td->cf.election, path) == -1)
				log_warn("backup: cannot copy %s (the snapshot "
				    "is complete without it)", td->cf.election);
			fsync_dir(td->backup_path);
		} else
			log_warnx("backup: %s is no longer the definition in "
			    "force (changed after counting began); archive the "
			    "one tallyd started with beside the backup",
			    td->cf.election);
		_exit(rc == -1 ? 1 : 0);
	}
	td->backup_pid = pid;
	log_info("writing a backup of version %llu to %s (pid %ld)",
	    (unsigned long long)td->backup_version, td->backup_path, (long)pid);
	evtimer_add(td->ev_backup, &tv);
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
 * At a clean stop, after the journal is closed: a snapshot of everything,
 * so the next start is quick.
 */
static void
final_snapshot(struct tallyd *td, uint64_t next)
{
	struct tally_diag diag;
	json_t *stamps;
	int status, rc;

	if (td->snapshot_pid != 0) {
		log_info("waiting for the snapshot writer (pid %ld)",
		    (long)td->snapshot_pid);
		if (waitpid(td->snapshot_pid, &status, 0) == td->snapshot_pid)
			snapshot_reap(td, status);
		td->snapshot_pid = 0;
	}
	if (td->backup_pid != 0) {
		log_info("waiting for the backup writer (pid %ld)",
		    (long)td->backup_pid);
		waitpid(td->backup_pid, &status, 0);
		td->backup_pid = 0;
	}
	if (next == td->snapshot_seq)
		return;
	tally_diag_init(&diag);
	stamps = core_stamps_dump(td->core);
	rc = snapshot_write(td->snap_dir, core_state(td->core), next,
	    core_chain(td->core), stamps, &td->store, &diag);
	json_decref(stamps);
	if (rc == -1) {
		print_diag(&diag);
		log_warnx("no snapshot at exit; the journal is kept and replayed "
		    "at the next start");
	} else {
		snapshot_prune(td->snap_dir, next, true);
		log_info("snapshot up to journal sequence %llu written",
		    (unsigned long long)next);
	}
	tally_diag_finish(&diag);
}

/*
 * Detach, and return in the child; the parent waits for the child's word
 * (the write end of `ready`): "ok" once it listens and has replayed, or the
 * fatal message that stopped it, and exits with it.
 */
static int
daemonize(const char *logpath)
{
	char buf[1100];
	int ready[2];
	pid_t pid;
	ssize_t n;
	size_t len = 0;
	int fd;

	if (pipe2(ready, O_CLOEXEC) == -1)
		fatal("pipe");
	if ((pid = fork()) == -1)
		fatal("fork");
	if (pid > 0) {
		close(ready[1]);
		while (len < sizeof(buf) - 1 && (n = read(ready[0], buf + len,
		    sizeof(buf) - 1 - len)) != 0) {
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1)
				break;
			len += (size_t)n;
		}
		buf[len] = '\0';
		if (strcmp(buf, "ok") == 0)
			_exit(0);
		fprintf(stderr, "tallyd: did not start: %s\n(log: %s)\n",
		    len > 0 ? buf : "it exited before it was ready", logpath);
		_exit(1);
	}
	close(ready[0]);
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
	log_startup_fd(ready[1]);
	return ready[1];
}

static void
started(int ready_fd)
{
	if (ready_fd == -1)
		return;
	log_startup_fd(-1);
	if (write(ready_fd, "ok", 2) != 2)
		log_warn("cannot tell the starter we are ready");
	close(ready_fd);
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
	    &epoch, &diag)) == NULL) {
		print_diag(&diag);
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
	core_set_chain(td->core, (core_chain(td->core) ^ epoch) *
	    0x100000001b3ULL);
}

/* The journal behind the commit core. */
static int
jlog_append(void *log, char *buf, size_t len, size_t records)
{
	return journal_submit(log, buf, len, records);
}

static uint64_t
jlog_next_seq(void *log)
{
	return journal_next_seq(log);
}

static bool
jlog_busy(void *log)
{
	return journal_busy(log);
}

static const struct core_log_ops journal_log = {
	"journal", jlog_append, jlog_next_seq, jlog_busy, NULL, NULL,
};

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
	    &td->snapshot_seq, &chain, &stamps, &td->store, jst, &diag) == -1) {
		print_diag(&diag);
		fatalx("cannot load the snapshot in %s: restore it from a copy, "
		    "or move it away to replay the journal alone (if the "
		    "journal still holds every record)", td->cf.data_dir);
	}
	core_set_chain(td->core, chain);
	if (td->store.fd != -1 && core_stamps_load(td->core, stamps) == -1)
		log_info("the snapshot keeps no stamps of the views: each view "
		    "takes the current one (a cache refetches it once)");
	json_decref(stamps);
	/* Where the journal's versions go on from (journal_open, ack_check). */
	jst->end_version = core_state(td->core)->version;
	if (td->store.fd != -1)
		log_info("snapshot: %llu revisions (%zu bytes) up to %s "
		    "sequence %llu in %.3f s",
		    (unsigned long long)jst->snapshot_revisions,
		    jst->snapshot_bytes, td->cluster ? "stream" : "journal",
		    (unsigned long long)td->snapshot_seq, since(&t0));
	if (td->cluster != NULL) {
		/* Cluster mode: the stream, from here, is the log. */
		tally_diag_finish(&diag);
		return;
	}
	td->journal = journal_open(td->cf.data_dir, (enum journal_policy)
	    td->cf.fsync_policy, td->cf.fsync_batch_ms, td->snapshot_seq, flags,
	    core_replay, td->core, jst, &diag);
	if (td->journal == NULL) {
		print_diag(&diag);
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
		print_diag(&diag);
		log_warnx("ingest tokens invalid: %zu problem%s", diag.count,
		    diag.count == 1 ? "" : "s");
		rc = 1;
	} else
		printf("ingest tokens: %s\n", auth_source(auth));
	auth_destroy(auth);
	tally_diag_finish(&diag);
	if ((td->core = core_create(e, td->cf.election, &diag)) == NULL) {
		print_diag(&diag);
		return 1;
	}
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
	snapshot_store_close(&td->store);
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
	char logpath[4096];
	uint64_t next;
	int ch, ready_fd = -1, rc = 0;

	tally_json_init();
	memset(&td, 0, sizeof(td));
	td.lock_fd = -1;
	td.dir_fd = -1;
	td.store.fd = -1;
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
		print_diag(&diag);
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
	notify_init();

	if (mkdir_p(td.cf.data_dir) == -1)
		fatal("cannot create data directory %s (set data_dir or "
		    "--data-dir to a writable place)", td.cf.data_dir);
	/* Before anything in the data dir is read. */
	td.lock_fd = lock_data_dir(td.cf.data_dir, &td.dir_fd);
	if (!foreground) {
		if (td.cf.log_file == NULL) {
			snprintf(logpath, sizeof(logpath), "%s/tallyd.log",
			    td.cf.data_dir);
			td.cf.log_file = strdup(logpath);
		}
		ready_fd = daemonize(td.cf.log_file);
		lock_note_pid(td.lock_fd);	/* the daemon's pid now */
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
	td.ev_backup = evtimer_new(td.base, backup_tick, &td);
	if (td.ev_sigint == NULL || td.ev_sigterm == NULL ||
	    td.ev_sighup == NULL || td.ev_sigusr1 == NULL ||
	    td.ev_backup == NULL || evsignal_add(td.ev_sigint, NULL) == -1 ||
	    evsignal_add(td.ev_sigterm, NULL) == -1 ||
	    evsignal_add(td.ev_sighup, NULL) == -1 ||
	    evsignal_add(td.ev_sigusr1, NULL) == -1)
		fatalx("cannot install signal handlers");

	tally_diag_init(&diag);
	if ((td.core = core_create(e, td.cf.election, &diag)) == NULL ||
	    (td.api = api_create(td.core, &td.cf, &diag)) == NULL) {
		print_diag(&diag);
		fatalx("cannot set up the API: fix the problems above (the token "
		    "file is token_file in %s)", td.conf_path ? td.conf_path :
		    "the configuration");
	}
	tally_diag_finish(&diag);
	if (td.cf.cluster_urls != NULL)
		join_cluster(&td);

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
	td.store.election = core_election(td.core);
	api_set_loader(td.api, snapshot_load_revision, &td.store);
	if (td.cluster != NULL) {
		if (cluster_start(td.cluster, td.base, td.core,
		    core_state(td.core)->version) == -1)
			fatalx("cluster mode: cannot consume the stream");
		core_set_log(td.core, &cluster_log_ops, td.cluster);
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
		if (journal_start(td.journal, td.base, core_log_done,
		    td.core) == -1)
			fatalx("cannot start the journal writer");
		core_set_log(td.core, &journal_log, td.journal);
	}

	tally_diag_init(&diag);
	/* The server calls the API only through these. */
	if ((td.server = server_create(td.base, &td.cf,
	    &(struct server_handlers){ td.api, api_handle, api_admit,
	    api_refused, api_error }, &diag)) == NULL) {
		print_diag(&diag);
		fatalx("%s: is another program on that address?  Change "
		    "listen/ingest_listen or --listen", diag.count > 0 ?
		    diag.msgs[0] : "cannot start the listeners");
	}
	tally_diag_finish(&diag);
	api_set_server(td.api, td.server);
	td.msrc = (struct metrics_src){ &td.cf, td.journal, td.server, td.core,
	    time(NULL) };
	api_set_metrics(td.api, metrics_write, &td.msrc);
	if (td.cluster != NULL)
		server_set_header(td.server, "Tallyd-Node", cluster_header,
		    td.core);
	{
		struct timeval one = { 1, 0 };
		td.ev_snapshot = event_new(td.base, -1, EV_PERSIST,
		    snapshot_tick, &td);
		if (td.ev_snapshot == NULL || event_add(td.ev_snapshot, &one) == -1)
			fatalx("cannot add the snapshot timer");
	}
	write_pid(td.lock_fd, &td.cf);
	e = NULL;
	log_info("tallyd %s serving election %s (%s): %zu provinces, %llu "
	    "seats; data in %s", TALLYD_VERSION, core_election(td.core)->id,
	    core_election(td.core)->name, core_election(td.core)->n_provinces,
	    (unsigned long long)core_election(td.core)->seats_total,
	    td.cf.data_dir);
	started(ready_fd);
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
	server_destroy(td.server);
	if (td.cluster != NULL) {
		/* The stream keeps everything; the snapshot is for speed. */
		cluster_destroy(td.cluster);
		td.cluster = NULL;
		final_snapshot(&td, core_state(td.core)->version + 1);
	} else {
		next = journal_next_seq(td.journal);
		if (journal_close(td.journal) == -1) {
			log_warnx("the journal's last sync failed: no snapshot "
			    "at exit; the next start replays what is on disk");
			rc = 1;
		} else
			final_snapshot(&td, next);
		td.journal = NULL;
	}
	free(td.snap_dir);
	api_destroy(td.api);
	core_destroy(td.core);
	snapshot_store_close(&td.store);
	if (td.ev_snapshot != NULL)
		event_free(td.ev_snapshot);
	if (td.ev_drain != NULL)
		event_free(td.ev_drain);
	event_free(td.ev_backup);
	event_free(td.ev_sigusr1);
	event_free(td.ev_sighup);
	event_free(td.ev_sigterm);
	event_free(td.ev_sigint);
	event_base_free(td.base);
	remove_pidfile(&td.cf);
	log_info("stopped");
	config_finish(&td.cf);
	close(td.lock_fd);
	close(td.dir_fd);
	return rc;
}
