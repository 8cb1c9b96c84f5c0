/*
 * metrics.c - the /metrics lines an operator alerts on, beyond the API's
 * request counters: build info, fsync latency, journal and snapshot bytes,
 * free disk in the data dir, descriptors, connections per listener, and how
 * long ago the last result was applied, the number of provinces, the last
 * backup's and the last reload's result, and when the TLS certificates
 * expire.  config/prometheus/tallyd-alerts.yml has an alert rule for each
 * (docs/OPERATIONS.md explains them).
 *
 * Everything is read at scrape time on the loop: a readdir and a statvfs of
 * the data dir, a count of /proc/self/fd.  That costs well under a
 * millisecond for the handful of files a data dir holds, and keeps the
 * figures true without bookkeeping in the journal.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <dirent.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tallyd-build.h"
#include "tallyd-config.h"
#include "core.h"
#include "journal.h"
#include "metrics.h"
#include "publish.h"
#include "tlog_push.h"
#include "server.h"

static void
data_dir_bytes(const char *dir, unsigned long long *journal,
    unsigned long long *snapshot, unsigned *segments)
{
	char path[4400];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	*journal = *snapshot = 0;
	*segments = 0;
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		bool j = strncmp(de->d_name, "journal-", 8) == 0;
		bool s = strncmp(de->d_name, "snapshot-", 9) == 0;
		if (!j && !s)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &sb) == -1 || !S_ISREG(sb.st_mode))
			continue;
		if (j) {
			*journal += (unsigned long long)sb.st_size;
			(*segments)++;
		} else
			*snapshot += (unsigned long long)sb.st_size;
	}
	closedir(d);
}

static unsigned
open_fds(void)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n > 0 ? n - 1 : 0;	/* not the directory's own */
}

void
metrics_note_backup(struct metrics_src *src, bool ok)
{
	src->backup_at = time(NULL);
	src->backup_ok = ok;
	if (ok)
		src->backup_ok_at = src->backup_at;
}

void
metrics_note_reload(struct metrics_src *src, bool ok, size_t waiting)
{
	src->reload_at = time(NULL);
	src->reload_ok = ok;
	if (ok)
		src->reload_waiting = waiting;
}

/*
 * The notAfter of the first certificate in a PEM file (the server's own;
 * the chain after it expires later or is renewed with it), or 0.  Read
 * again at each reload rather than taken from the listener, which keeps
 * only what gnutls made of it: a reload that takes a renewed file moves
 * the metric with it.
 */
static time_t
cert_expiry(const char *path)
{
	gnutls_datum_t pem = { NULL, 0 };
	gnutls_x509_crt_t crt;
	time_t t = 0;

	if (path == NULL || gnutls_load_file(path, &pem) < 0)
		return 0;
	if (gnutls_x509_crt_init(&crt) == 0) {
		/* PEM: the first certificate of the file. */
		if (gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) == 0) {
			t = gnutls_x509_crt_get_expiration_time(crt);
			if (t == (time_t)-1)
				t = 0;
		}
		gnutls_x509_crt_deinit(crt);
	}
	gnutls_free(pem.data);
	return t;
}

void
metrics_note_tls(struct metrics_src *src, const struct config *cf)
{
	src->tls_expiry[0] = cert_expiry(cf->tls_cert);
	src->tls_expiry[1] = cf->ingest_listen != NULL ?
	    cert_expiry(cf->public_tls_cert) : 0;
}

void
metrics_write(void *arg, FILE *f)
{
	const struct metrics_src *src = arg;
	const struct core_stamp *st = core_stamp(src->core, SIZE_MAX);
	unsigned long long jbytes, sbytes;
	uint64_t buckets[JOURNAL_SYNC_BUCKETS + 1], cum = 0;
	struct statvfs vfs;
	struct rlimit rl;
	unsigned segments, conns;
	const char *addr;
	bool ingest;
	double sum;
	size_t i;

	fprintf(f, "# HELP tallyd_build_info The running build (always 1).\n"
	    "# TYPE tallyd_build_info gauge\n"
	    "tallyd_build_info{version=\"%s\",commit=\"%s\"} 1\n",
	    TALLYD_VERSION, TALLYD_COMMIT);
	fprintf(f, "# HELP tallyd_start_time_seconds When this process started "
	    "(Unix time).\n# TYPE tallyd_start_time_seconds gauge\n"
	    "tallyd_start_time_seconds %lld\n", (long long)src->started);

	journal_sync_histogram(src->journal, buckets, &sum);
	fprintf(f, "# HELP tallyd_journal_fsync_seconds fdatasync latency of "
	    "the journal (one per group commit).\n"
	    "# TYPE tallyd_journal_fsync_seconds histogram\n");
	for (i = 0; i < JOURNAL_SYNC_BUCKETS; i++) {
		cum += buckets[i];
		fprintf(f, "tallyd_journal_fsync_seconds_bucket{le=\"%g\"} "
		    "%llu\n", journal_sync_bounds[i], (unsigned long long)cum);
	}
	cum += buckets[JOURNAL_SYNC_BUCKETS];
	fprintf(f, "tallyd_journal_fsync_seconds_bucket{le=\"+Inf\"} %llu\n"
	    "tallyd_journal_fsync_seconds_sum %.6f\n"
	    "tallyd_journal_fsync_seconds_count %llu\n",
	    (unsigned long long)cum, sum, (unsigned long long)cum);

	data_dir_bytes(src->cf->data_dir, &jbytes, &sbytes, &segments);
	fprintf(f, "# HELP tallyd_journal_bytes Bytes in journal segments.\n"
	    "# TYPE tallyd_journal_bytes gauge\ntallyd_journal_bytes %llu\n"
	    "# HELP tallyd_journal_segments Journal segment files.\n"
	    "# TYPE tallyd_journal_segments gauge\n"
	    "tallyd_journal_segments %u\n"
	    "# HELP tallyd_snapshot_bytes Bytes in snapshot files.\n"
	    "# TYPE tallyd_snapshot_bytes gauge\ntallyd_snapshot_bytes %llu\n",
	    jbytes, segments, sbytes);
	if (statvfs(src->cf->data_dir, &vfs) == 0)
		fprintf(f, "# HELP tallyd_data_dir_free_bytes Space left for "
		    "tallyd in the data dir's file system.\n"
		    "# TYPE tallyd_data_dir_free_bytes gauge\n"
		    "tallyd_data_dir_free_bytes %llu\n"
		    "# HELP tallyd_data_dir_size_bytes Size of the data dir's "
		    "file system.\n# TYPE tallyd_data_dir_size_bytes gauge\n"
		    "tallyd_data_dir_size_bytes %llu\n",
		    (unsigned long long)vfs.f_bavail * vfs.f_frsize,
		    (unsigned long long)vfs.f_blocks * vfs.f_frsize);

	fprintf(f, "# HELP tallyd_open_fds Open file descriptors.\n"
	    "# TYPE tallyd_open_fds gauge\ntallyd_open_fds %u\n", open_fds());
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		fprintf(f, "# HELP tallyd_max_fds The descriptor limit "
		    "(RLIMIT_NOFILE).\n# TYPE tallyd_max_fds gauge\n"
		    "tallyd_max_fds %llu\n", (unsigned long long)rl.rlim_cur);

	fprintf(f, "# HELP tallyd_listener_connections Connections open now, "
	    "per listener.\n# TYPE tallyd_listener_connections gauge\n");
	for (i = 0; src->server != NULL &&
	    server_listener(src->server, i, &addr, &ingest, &conns) == 0; i++)
		fprintf(f, "tallyd_listener_connections{listener=\"%s\","
		    "address=\"%s\"} %u\n", i == 0 ? "public" : "ingest", addr,
		    conns);
	fprintf(f, "# HELP tallyd_listener_connection_limit "
	    "connection_limit, per listener.\n"
	    "# TYPE tallyd_listener_connection_limit gauge\n"
	    "tallyd_listener_connection_limit %ld\n",
	    src->cf->connection_limit);

	/* Not "_total": that suffix is for counters (promtool check metrics). */
	fprintf(f, "# HELP tallyd_provinces Provinces of the election "
	    "in force.\n# TYPE tallyd_provinces gauge\n"
	    "tallyd_provinces %zu\n",
	    core_election(src->core)->n_provinces);

	fprintf(f, "# HELP tallyd_last_backup_timestamp_seconds When the last "
	    "backup (SIGUSR1) ended, written or failed (0: none since the "
	    "start).\n# TYPE tallyd_last_backup_timestamp_seconds gauge\n"
	    "tallyd_last_backup_timestamp_seconds %lld\n"
	    "# HELP tallyd_last_backup_success_timestamp_seconds When the "
	    "last backup that was written ended (0: none since the start).\n"
	    "# TYPE tallyd_last_backup_success_timestamp_seconds gauge\n"
	    "tallyd_last_backup_success_timestamp_seconds %lld\n",
	    (long long)src->backup_at, (long long)src->backup_ok_at);
	if (src->backup_at != 0)
		fprintf(f, "# HELP tallyd_last_backup_success Whether the last "
		    "backup was written (1) or failed (0).\n"
		    "# TYPE tallyd_last_backup_success gauge\n"
		    "tallyd_last_backup_success %d\n", src->backup_ok ? 1 : 0);
	fprintf(f, "# HELP tallyd_last_reload_timestamp_seconds When the last "
	    "reload (SIGHUP) ended (0: none since the start).\n"
	    "# TYPE tallyd_last_reload_timestamp_seconds gauge\n"
	    "tallyd_last_reload_timestamp_seconds %lld\n"
	    "# HELP tallyd_settings_waiting_for_restart Settings changed in "
	    "the file that a reload could not take (named in the log).\n"
	    "# TYPE tallyd_settings_waiting_for_restart gauge\n"
	    "tallyd_settings_waiting_for_restart %zu\n",
	    (long long)src->reload_at, src->reload_waiting);
	if (src->reload_at != 0)
		fprintf(f, "# HELP tallyd_last_reload_success Whether the last "
		    "reload was taken (1) or refused (0).\n"
		    "# TYPE tallyd_last_reload_success gauge\n"
		    "tallyd_last_reload_success %d\n", src->reload_ok ? 1 : 0);
	if (src->tls_expiry[0] != 0 || src->tls_expiry[1] != 0)
		fprintf(f, "# HELP tallyd_tls_cert_expiry_timestamp_seconds "
		    "When the certificate of a TLS listener expires "
		    "(notAfter).\n"
		    "# TYPE tallyd_tls_cert_expiry_timestamp_seconds gauge\n");
	for (i = 0; i < 2; i++)
		if (src->tls_expiry[i] != 0)
			fprintf(f, "tallyd_tls_cert_expiry_timestamp_seconds"
			    "{setting=\"%s\"} %lld\n", i == 0 ? "tls_cert" :
			    "public_tls_cert", (long long)src->tls_expiry[i]);

	fprintf(f, "# HELP tallyd_last_applied_timestamp_seconds Journaled "
	    "time of the last applied result (0: none yet).\n"
	    "# TYPE tallyd_last_applied_timestamp_seconds gauge\n"
	    "tallyd_last_applied_timestamp_seconds %lld\n",
	    st->version > 0 ? (long long)st->at : 0LL);
	if (st->version > 0)
		fprintf(f, "# HELP tallyd_last_applied_age_seconds Seconds since "
		    "the last applied result.\n"
		    "# TYPE tallyd_last_applied_age_seconds gauge\n"
		    "tallyd_last_applied_age_seconds %lld\n",
		    (long long)(time(NULL) - st->at));
	tlog_push_metrics(f);
	publish_metrics(f);
}
