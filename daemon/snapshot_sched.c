/*
 * snapshot_sched.c - when snapshots and backups are written: the periodic
 * snapshot (every snapshot_every records), the SIGUSR1 backup and the final
 * snapshot at a clean stop.  snapshot.c writes and reads the files; this
 * file decides when, forks the writer and reaps it.  Everything here runs on
 * the loop thread; the fork child only writes and exits.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "core.h"
#include "journal.h"
#include "log.h"
#include "snapshot.h"
#include "util.h"
#include "tlogd.h"

void
snapshot_sched_init(struct snapshot_sched *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->store.fd = -1;
}

/*
 * A snapshot or backup child: write and leave, touching nothing else.  It
 * first takes back the default signal dispositions (libevent's handlers
 * would write into the parent's loop), then lets go of the sockets and the
 * lock, so that a tallyd restarted while it still writes can bind and lock.
 */
static void
writer_child_setup(struct snapshot_sched *ss)
{
	int keep[2] = { ss->store.fd, log_fd() };
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
		keep[1] = ss->store.fd;
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
snapshot_reap(struct snapshot_sched *ss, int status)
{
	ss->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		struct tally_diag diag;
		size_t stored = 0;
		ss->seq = ss->pending_seq;
		/* Older revisions now live in the snapshot, not in memory. */
		tally_diag_init(&diag);
		if (snapshot_adopt(ss->dir, ss->seq,
		    core_state(ss->core), &ss->store, &stored, &diag) == -1) {
			log_diag(&diag);
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
		/* The transparency log on disk before the journal segments
		 * that could rebuild it go (tlogd.c). */
		tlogd_flush(tlogd_current);
		snapshot_prune(ss->dir, ss->seq, false);
		log_info("snapshot up to journal sequence %llu written; "
		    "older segments removed, %zu older revisions moved to it "
		    "from memory", (unsigned long long)ss->seq, stored);
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
	struct snapshot_sched *ss = arg;
	struct tally_diag diag;
	uint64_t next;
	pid_t pid;
	int status;

	(void)fd;
	(void)what;
	if (ss->pid != 0) {
		if (waitpid(ss->pid, &status, WNOHANG) == ss->pid)
			snapshot_reap(ss, status);
		return;
	}
	/* Cluster mode: the position after the last record applied. */
	next = ss->journal != NULL ? journal_next_seq(ss->journal) :
	    core_state(ss->core)->version + 1;
	if (ss->stopping || ss->cf->snapshot_every <= 0 ||
	    next - ss->seq < (uint64_t)ss->cf->snapshot_every ||
	    (ss->journal != NULL && journal_busy(ss->journal)) ||
	    !core_round_idle(ss->core))
		return;
	/*
	 * The transparency log on disk up to the snapshot's versions before
	 * it is taken: the next start removes the segments it covers (even
	 * after a kill -9 before the writer's end was seen), and the log
	 * could not be rebuilt from them.
	 */
	tlogd_flush(tlogd_current);
	if ((pid = fork()) == -1) {
		log_warn("fork for a snapshot");
		return;
	}
	if (pid == 0) {
		int rc;
		writer_child_setup(ss);
		tally_diag_init(&diag);
		rc = snapshot_write(ss->dir, core_state(ss->core), next,
		    core_chain(ss->core), core_stamps_dump(ss->core),
		    &ss->store, &diag);
		if (rc == -1)
			log_diag(&diag);
		_exit(rc == -1 ? 1 : 0);
	}
	ss->pid = pid;
	ss->pending_seq = next;
	if (ss->journal != NULL && journal_rotate(ss->journal) == -1)
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
void
snapshot_sched_backup(struct snapshot_sched *ss)
{
	struct timeval tv = { 0, 10000 };

	if (ss->stopping) {
		log_warnx("SIGUSR1: stopping; no backup (the final snapshot is "
		    "written in %s)", ss->cf->data_dir);
		return;
	}
	if (ss->backup_pid != 0 || evtimer_pending(ss->ev_backup, NULL)) {
		log_info("SIGUSR1: a backup is already under way");
		return;
	}
	log_info("SIGUSR1: backup requested; waiting for the journal to be "
	    "idle");
	evtimer_add(ss->ev_backup, &tv);
}

/* A backup ended: tell whoever counts them (metrics). */
static void
backup_ended(struct snapshot_sched *ss, bool ok)
{
	if (ss->backup_done != NULL)
		ss->backup_done(ss->backup_done_arg, ok);
}

static void
backup_tick(evutil_socket_t fd, short what, void *arg)
{
	struct snapshot_sched *ss = arg;
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
	if (ss->backup_pid != 0) {
		if (waitpid(ss->backup_pid, &status, WNOHANG) != ss->backup_pid) {
			evtimer_add(ss->ev_backup, &tv);
			return;
		}
		ss->backup_pid = 0;
		backup_ended(ss, WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			log_info("backup written to %s (version %llu)",
			    ss->backup_path,
			    (unsigned long long)ss->backup_version);
		else
			log_warnx("backup to %s failed (status %d); see above",
			    ss->backup_path, status);
		return;
	}
	/*
	 * Everything journaled is applied, and nothing else is.  Cluster
	 * mode has no journal: the position after the last record applied,
	 * as for its periodic snapshots.
	 */
	if ((ss->journal != NULL && journal_busy(ss->journal)) ||
	    !core_round_idle(ss->core)) {
		evtimer_add(ss->ev_backup, &tv);
		return;
	}
	next = ss->journal != NULL ? journal_next_seq(ss->journal) :
	    core_state(ss->core)->version + 1;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(ss->backup_path, sizeof(ss->backup_path),
	    "%s%s/tallyd-%s-%s-v%llu", ss->cf->backup_dir != NULL ?
	    ss->cf->backup_dir : ss->cf->data_dir, ss->cf->backup_dir != NULL ?
	    "" : "/backups", core_election(ss->core)->id,
	    stamp, (unsigned long long)core_state(ss->core)->version);
	ss->backup_version = core_state(ss->core)->version;
	if ((pid = fork()) == -1) {
		log_warn("fork for a backup");
		backup_ended(ss, false);
		return;
	}
	if (pid == 0) {
		int rc = -1;
		writer_child_setup(ss);
		tally_diag_init(&diag);
		if (mkdir_p(ss->backup_path) == -1)
			log_warn("backup: cannot create %s", ss->backup_path);
		else if ((rc = snapshot_write(ss->backup_path,
		    core_state(ss->core), next, core_chain(ss->core),
		    core_stamps_dump(ss->core), &ss->store, &diag)) == -1)
			log_diag(&diag);
		else if (same_definition(core_election(ss->core),
		    ss->cf->election)) {
			snprintf(path, sizeof(path), "%s/election.json",
			    ss->backup_path);
			if (copy_file(ss->cf->election, path) == -1)
				log_warn("backup: cannot copy %s (the snapshot "
				    "is complete without it)", ss->cf->election);
			fsync_dir(ss->backup_path);
		} else
			log_warnx("backup: %s is no longer the definition in "
			    "force (changed after counting began); archive the "
			    "one tallyd started with beside the backup",
			    ss->cf->election);
		_exit(rc == -1 ? 1 : 0);
	}
	ss->backup_pid = pid;
	log_info("writing a backup of version %llu to %s (pid %ld)",
	    (unsigned long long)ss->backup_version, ss->backup_path, (long)pid);
	evtimer_add(ss->ev_backup, &tv);
}

/*
 * At a clean stop, after the journal is closed: a snapshot of everything,
 * so the next start is quick.
 */
void
snapshot_sched_final(struct snapshot_sched *ss, uint64_t next)
{
	struct tally_diag diag;
	json_t *stamps;
	int status, rc;

	if (ss->pid != 0) {
		log_info("waiting for the snapshot writer (pid %ld)",
		    (long)ss->pid);
		if (waitpid(ss->pid, &status, 0) == ss->pid)
			snapshot_reap(ss, status);
		ss->pid = 0;
	}
	if (ss->backup_pid != 0) {
		log_info("waiting for the backup writer (pid %ld)",
		    (long)ss->backup_pid);
		waitpid(ss->backup_pid, &status, 0);
		ss->backup_pid = 0;
	}
	if (next == ss->seq)
		return;
	tally_diag_init(&diag);
	stamps = core_stamps_dump(ss->core);
	rc = snapshot_write(ss->dir, core_state(ss->core), next,
	    core_chain(ss->core), stamps, &ss->store, &diag);
	json_decref(stamps);
	if (rc == -1) {
		log_diag(&diag);
		log_warnx("no snapshot at exit; the journal is kept and replayed "
		    "at the next start");
	} else {
		snapshot_prune(ss->dir, next, true);
		log_info("snapshot up to journal sequence %llu written",
		    (unsigned long long)next);
	}
	tally_diag_finish(&diag);
}


int
snapshot_sched_start(struct snapshot_sched *ss, struct event_base *base,
    const struct config *cf, struct core *core, struct journal *journal,
    const char *dir)
{
	struct timeval one = { 1, 0 };

	ss->cf = cf;
	ss->core = core;
	ss->journal = journal;
	ss->dir = dir;
	if ((ss->ev_backup = evtimer_new(base, backup_tick, ss)) == NULL ||
	    (ss->ev_snapshot = event_new(base, -1, EV_PERSIST, snapshot_tick,
	    ss)) == NULL || event_add(ss->ev_snapshot, &one) == -1)
		return -1;
	return 0;
}

void
snapshot_sched_stop(struct snapshot_sched *ss)
{
	ss->stopping = true;
}

void
snapshot_sched_finish(struct snapshot_sched *ss)
{
	snapshot_store_close(&ss->store);
	if (ss->ev_snapshot != NULL)
		event_free(ss->ev_snapshot);
	if (ss->ev_backup != NULL)
		event_free(ss->ev_backup);
	ss->ev_snapshot = ss->ev_backup = NULL;
}
