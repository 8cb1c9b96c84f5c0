/*
 * cluster_join.c - joining the replicated log (cluster_create): connect to
 * the NATS servers, find or create the stream, and read its epoch.  Runs at
 * start-up on the main thread, before the loop; what happens once the stream
 * is consumed is cluster.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cluster.h"
#include "log.h"
#include "util.h"

/* Subject tokens may not hold '.', '*', '>' or blanks. */
char *
cluster_subject_token(const char *prefix, const char *id)
{
	char *s, *p;

	if (asprintf(&s, "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
	    id) == -1)
		return NULL;
	for (p = s + (prefix ? strlen(prefix) + 1 : 0); *p != '\0'; p++)
		if (*p == '.' || *p == '*' || *p == '>' || *p == ' ' ||
		    *p == '\t')
			*p = '_';
	return s;
}

#ifdef TALLYD_CLUSTER

#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>

#include <nats/nats.h>

#include "cluster_int.h"

/*
 * The stream's identity, for the validators' epoch: a random id in its
 * first message, written by whichever node finds the stream empty (the
 * same message id makes every other node's attempt a duplicate).  The
 * stream's creation time would do, but JetStream 2.9 answered two nodes
 * that created the stream at once with two different times.
 */
static natsStatus
stream_epoch(struct cluster *cl, uint64_t *epoch, char *why, size_t whylen)
{
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	natsStatus st;
	unsigned char rnd[16];
	char subj[300], body[64];
	const char *d;
	uint64_t h = FNV1A64_INIT;
	int i, len;

	snprintf(subj, sizeof(subj), "%s._epoch", cl->prefix);
	st = js_GetMsg(&m, cl->js, cl->stream, 1, NULL, &jerr);
	if (st == NATS_NOT_FOUND) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return NATS_ERR;
		len = snprintf(body, sizeof(body), "{\"tallyd_epoch\":\"");
		for (i = 0; i < 16; i++)
			len += snprintf(body + len, sizeof(body) - (size_t)len,
			    "%02x", rnd[i]);
		len += snprintf(body + len, sizeof(body) - (size_t)len, "\"}");
		jsPubOptions_Init(&po);
		po.MsgId = "tallyd-epoch";
		st = js_Publish(&pa, cl->js, subj, body, len, &po, &jerr);
		jsPubAck_Destroy(pa);
		if (st == NATS_OK)
			st = js_GetMsg(&m, cl->js, cl->stream, 1, NULL, &jerr);
	}
	if (st != NATS_OK) {
		snprintf(why, whylen, "reading the stream's first message: %s "
		    "(JetStream error %d)", natsStatus_GetText(st), (int)jerr);
		return st;
	}
	if (strcmp(natsMsg_GetSubject(m), subj) != 0) {
		snprintf(why, whylen, "the stream's first message is on "
		    "%.60s, not %.60s: is this stream another application's?",
		    natsMsg_GetSubject(m), subj);
		natsMsg_Destroy(m);
		return NATS_ERR;
	}
	d = natsMsg_GetData(m);
	*epoch = fnv1a64(h, d, (size_t)natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
	return NATS_OK;
}

static natsStatus
find_stream(struct cluster *cl, const struct config *cf, uint64_t *epoch,
    char *why, size_t whylen)
{
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	natsStatus st;
	char *filter;
	const char *subjects[1];

	st = js_GetStreamInfo(&si, cl->js, cl->stream, NULL, &jerr);
	if (st == NATS_NOT_FOUND) {
		if (asprintf(&filter, "%s.>", cl->prefix) == -1)
			return NATS_NO_MEMORY;
		subjects[0] = filter;
		jsStreamConfig_Init(&sc);
		sc.Name = cl->stream;
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Replicas = cf->cluster_replicas;
		sc.Duplicates = 120LL * 1000000000LL;	/* 2 minutes */
		st = js_AddStream(&si, cl->js, &sc, NULL, &jerr);
		free(filter);
		if (st != NATS_OK) {
			/* Another node may have made it just now. */
			jsStreamInfo_Destroy(si);
			si = NULL;
			st = js_GetStreamInfo(&si, cl->js, cl->stream, NULL,
			    &jerr);
		} else
			log_info("cluster: created stream %s (%d replicas)",
			    cl->stream, (int)cf->cluster_replicas);
	}
	if (st == NATS_OK) {
		if (si->Config != NULL && si->Config->Replicas <
		    (int64_t)cf->cluster_replicas)
			log_warnx("cluster: stream %s has %d replicas (%ld "
			    "configured): losing a machine may lose "
			    "acknowledged feeds", cl->stream,
			    (int)si->Config->Replicas, cf->cluster_replicas);
	} else
		snprintf(why, whylen, "%s (JetStream error %d)",
		    natsStatus_GetText(st), (int)jerr);
	jsStreamInfo_Destroy(si);
	if (st == NATS_OK)
		st = stream_epoch(cl, epoch, why, whylen);
	return st;
}

/* libnats' connection callbacks (its own thread): cl->connected. */
static void
on_conn_down(natsConnection *nc, void *arg)
{
	struct cluster *cl = arg;

	(void)nc;
	atomic_store(&cl->connected, false);
}

static void
on_conn_up(natsConnection *nc, void *arg)
{
	struct cluster *cl = arg;

	(void)nc;
	atomic_store(&cl->connected, true);
}

struct cluster *
cluster_create(const struct config *cf, const struct tally_election *e,
    uint64_t *epoch, struct tally_diag *diag)
{
	return cluster_create_stream(cf, e, cf->cluster_stream ?
	    cf->cluster_stream : "TALLY", epoch, diag);
}

struct cluster *
cluster_create_stream(const struct config *cf, const struct tally_election *e,
    const char *stream, uint64_t *epoch, struct tally_diag *diag)
{
	struct cluster *cl;
	natsOptions *o = NULL;
	jsOptions jo;
	const char *urls[16];
	char *list = NULL, *tok, *save, why[256];
	struct timespec t0;
	natsStatus st;
	int n = 0;
	size_t i;

	if (nats_dl_open(diag) == -1)
		return NULL;
	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		goto nomem;
	cluster_live++;		/* cluster_destroy counts it out */
#ifdef TALLYD_FAILPOINTS
	cluster_read_failpoints();
#endif
	cl->wake[0] = cl->wake[1] = -1;
	pthread_mutex_init(&cl->mu, NULL);
	pthread_cond_init(&cl->cv, NULL);
	pthread_cond_init(&cl->pub_cv, NULL);
	cl->q_tail = &cl->q;
	cl->jobs_tail = &cl->jobs;
#ifdef TALLYD_FAILPOINTS
	{
		const char *fp = getenv("TALLYD_FAILPOINTS");
		if (fp != NULL && strstr(fp, "cluster_drop_acks") != NULL) {
			cl->fp_drop_acks = true;
			log_warnx("cluster failpoint in force: cluster_drop_acks");
		}
	}
#endif
	cl->stream = strdup(stream);
	cl->prefix = cluster_subject_token("tally", e->id);
	cl->node = strdup(cf->cluster_node ? cf->cluster_node : cf->listen);
	cl->n_provinces = e->n_provinces;
	if (cl->stream == NULL || cl->prefix == NULL || cl->node == NULL ||
	    (cl->subjects = calloc(e->n_provinces, sizeof(char *))) == NULL)
		goto nomem;
	for (i = 0; i < e->n_provinces; i++)
		if ((cl->subjects[i] = cluster_subject_token(cl->prefix,
		    e->provinces[i].id)) == NULL)
			goto nomem;
	if (pipe2(cl->wake, O_NONBLOCK | O_CLOEXEC) == -1) {
		tally_diag_add(diag, "cluster: pipe: %s", strerror(errno));
		goto fail;
	}
	if ((list = strdup(cf->cluster_urls)) == NULL)
		goto nomem;
	for (tok = strtok_r(list, ", ", &save); tok != NULL && n < 16;
	    tok = strtok_r(NULL, ", ", &save))
		urls[n++] = tok;
	if (n == 0) {
		tally_diag_add(diag, "cluster_urls: no URL");
		goto fail;
	}
	if (natsOptions_Create(&o) != NATS_OK ||
	    natsOptions_SetServers(o, urls, n) != NATS_OK ||
	    natsOptions_SetName(o, cl->node) != NATS_OK ||
	    natsOptions_SetMaxReconnect(o, -1) != NATS_OK ||
	    natsOptions_SetReconnectWait(o, 100) != NATS_OK ||
	    natsOptions_SetTimeout(o, 1000) != NATS_OK ||
	    natsOptions_SetPingInterval(o, 1000) != NATS_OK ||
	    natsOptions_SetMaxPingsOut(o, 2) != NATS_OK ||
	    natsOptions_SetDisconnectedCB(o, on_conn_down, cl) != NATS_OK ||
	    natsOptions_SetReconnectedCB(o, on_conn_up, cl) != NATS_OK ||
	    natsOptions_SetClosedCB(o, on_conn_down, cl) != NATS_OK)
		goto nomem;
	/*
	 * At start the servers may be starting too (scripts/cluster up, a
	 * reboot), or the stream may be electing a leader after a lost
	 * machine: try for 60 s, saying so every 5 s, then give up with the
	 * reason.
	 */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned tries = 1;; tries++) {
		st = natsConnection_Connect(&cl->nc, o);
		if (st == NATS_OK) {
			atomic_store(&cl->connected, true);
			jsOptions_Init(&jo);
			jo.Wait = 2000;
			jo.PublishAsync.AckHandler = cluster_on_ack;
			jo.PublishAsync.AckHandlerClosure = cl;
			jo.PublishAsync.MaxPending = 65536;
			st = natsConnection_JetStream(&cl->js, cl->nc, &jo);
			if (st == NATS_OK)
				st = find_stream(cl, cf, epoch, why, sizeof(why));
			else
				snprintf(why, sizeof(why), "%s",
				    natsStatus_GetText(st));
		} else
			snprintf(why, sizeof(why), "%s", natsStatus_GetText(st));
		if (st == NATS_OK)
			break;
		if (cluster_ms_since(&t0) > 60000) {
			tally_diag_add(diag, "cluster: cannot reach stream %s at "
			    "%s for 60 s: %s", cl->stream, cf->cluster_urls, why);
			goto fail;
		}
		if (tries % 20 == 0)
			log_info("cluster: waiting for stream %s (%s)", cl->stream,
			    why);
		jsCtx_Destroy(cl->js);
		cl->js = NULL;
		natsConnection_Destroy(cl->nc);
		cl->nc = NULL;
		usleep(250000);
	}
	natsOptions_Destroy(o);
	free(list);
	log_info("cluster: node %s on stream %s (subjects %s.>), epoch %llu",
	    cl->node, cl->stream, cl->prefix, (unsigned long long)*epoch);
	return cl;
nomem:
	tally_diag_add(diag, "cluster: out of memory");
fail:
	natsOptions_Destroy(o);
	free(list);
	cluster_destroy(cl);
	return NULL;
}

#endif
