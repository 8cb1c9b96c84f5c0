/*
 * nats_dl.h - libnats, opened at run time (cluster.c only).
 *
 * Only cluster mode needs libnats, so tallyd does not link it: the package
 * recommends it instead of depending on it, and a single-node tallyd starts
 * on a machine without it.  cluster_create() opens the library named at
 * build time (TALLYD_LIBNATS, its soname) with dlopen and looks up every
 * function below; a missing library or symbol fails the cluster start with
 * a message that says which package to install.
 *
 * The types and constants still come from <nats/nats.h> (libnats-dev at
 * build time).  Each function of the list is called through a pointer of
 * the exact type its prototype has (__typeof__), and the macros at the end
 * make the calls in cluster.c read as plain libnats calls.
 *
 * Include after <nats/nats.h> (cluster_int.h does); nats_dl.c holds the
 * table and opens the library.
 */
#ifndef TALLYD_NATS_DL_H
#define TALLYD_NATS_DL_H

#define NATS_DL_FUNCTIONS(X)						\
	X(jsCtx_Destroy)						\
	X(jsMsgMetaData_Destroy)					\
	X(jsOptions_Init)						\
	X(jsPubAck_Destroy)						\
	X(jsPubOptions_Init)						\
	X(jsStreamConfig_Init)						\
	X(jsStreamInfo_Destroy)						\
	X(jsSubOptions_Init)						\
	X(js_AddStream)							\
	X(js_GetMsg)							\
	X(js_GetStreamInfo)						\
	X(js_Publish)							\
	X(js_PublishMsgAsync)						\
	X(js_Subscribe)							\
	X(natsConnection_Close)						\
	X(natsConnection_Connect)					\
	X(natsConnection_Destroy)					\
	X(natsConnection_JetStream)					\
	X(natsMsg_Create)						\
	X(natsMsg_Destroy)						\
	X(natsMsg_GetData)						\
	X(natsMsg_GetDataLength)					\
	X(natsMsg_GetMetaData)						\
	X(natsMsg_GetSubject)						\
	X(natsOptions_Create)						\
	X(natsOptions_Destroy)						\
	X(natsOptions_SetMaxPingsOut)					\
	X(natsOptions_SetClosedCB)					\
	X(natsOptions_SetDisconnectedCB)					\
	X(natsOptions_SetMaxReconnect)					\
	X(natsOptions_SetReconnectedCB)					\
	X(natsOptions_SetName)						\
	X(natsOptions_SetPingInterval)					\
	X(natsOptions_SetReconnectWait)					\
	X(natsOptions_SetServers)					\
	X(natsOptions_SetTimeout)					\
	X(natsStatus_GetText)						\
	X(natsSubscription_Destroy)					\
	X(natsSubscription_SetPendingLimits)				\
	X(natsSubscription_Unsubscribe)					\
	X(nats_CloseAndWait)						\
	X(nats_GetLastError)

/* The table: written once by nats_dl_open, then read only [I]. */
struct nats_dl {
#define NATS_DL_MEMBER(f)	__typeof__(f) *f;
	NATS_DL_FUNCTIONS(NATS_DL_MEMBER)
#undef NATS_DL_MEMBER
};

/* The table, filled by nats_dl_open. */
extern struct nats_dl	 nats_fn;

struct tally_diag;

/* Open libnats and look up every function of the list (once).  0, or -1
 * with diag saying which package to install.  The loop thread, before any
 * libnats thread exists. */
int	nats_dl_open(struct tally_diag *diag);

/* From here on, every libnats call goes through the table (not in
 * nats_dl.c, which fills it). */
#ifndef NATS_DL_TABLE
#define jsCtx_Destroy			(nats_fn.jsCtx_Destroy)
#define jsMsgMetaData_Destroy		(nats_fn.jsMsgMetaData_Destroy)
#define jsOptions_Init			(nats_fn.jsOptions_Init)
#define jsPubAck_Destroy		(nats_fn.jsPubAck_Destroy)
#define jsPubOptions_Init		(nats_fn.jsPubOptions_Init)
#define jsStreamConfig_Init		(nats_fn.jsStreamConfig_Init)
#define jsStreamInfo_Destroy		(nats_fn.jsStreamInfo_Destroy)
#define jsSubOptions_Init		(nats_fn.jsSubOptions_Init)
#define js_AddStream			(nats_fn.js_AddStream)
#define js_GetMsg			(nats_fn.js_GetMsg)
#define js_GetStreamInfo		(nats_fn.js_GetStreamInfo)
#define js_Publish			(nats_fn.js_Publish)
#define js_PublishMsgAsync		(nats_fn.js_PublishMsgAsync)
#define js_Subscribe			(nats_fn.js_Subscribe)
#define natsConnection_Close		(nats_fn.natsConnection_Close)
#define natsConnection_Connect		(nats_fn.natsConnection_Connect)
#define natsConnection_Destroy		(nats_fn.natsConnection_Destroy)
#define natsConnection_JetStream	(nats_fn.natsConnection_JetStream)
#define natsMsg_Create			(nats_fn.natsMsg_Create)
#define natsMsg_Destroy			(nats_fn.natsMsg_Destroy)
#define natsMsg_GetData			(nats_fn.natsMsg_GetData)
#define natsMsg_GetDataLength		(nats_fn.natsMsg_GetDataLength)
#define natsMsg_GetMetaData		(nats_fn.natsMsg_GetMetaData)
#define natsMsg_GetSubject		(nats_fn.natsMsg_GetSubject)
#define natsOptions_Create		(nats_fn.natsOptions_Create)
#define natsOptions_Destroy		(nats_fn.natsOptions_Destroy)
#define natsOptions_SetMaxPingsOut	(nats_fn.natsOptions_SetMaxPingsOut)
#define natsOptions_SetClosedCB		(nats_fn.natsOptions_SetClosedCB)
#define natsOptions_SetDisconnectedCB	(nats_fn.natsOptions_SetDisconnectedCB)
#define natsOptions_SetMaxReconnect	(nats_fn.natsOptions_SetMaxReconnect)
#define natsOptions_SetReconnectedCB	(nats_fn.natsOptions_SetReconnectedCB)
#define natsOptions_SetName		(nats_fn.natsOptions_SetName)
#define natsOptions_SetPingInterval	(nats_fn.natsOptions_SetPingInterval)
#define natsOptions_SetReconnectWait	(nats_fn.natsOptions_SetReconnectWait)
#define natsOptions_SetServers		(nats_fn.natsOptions_SetServers)
#define natsOptions_SetTimeout		(nats_fn.natsOptions_SetTimeout)
#define natsStatus_GetText		(nats_fn.natsStatus_GetText)
#define natsSubscription_Destroy	(nats_fn.natsSubscription_Destroy)
#define natsSubscription_SetPendingLimits \
	(nats_fn.natsSubscription_SetPendingLimits)
#define natsSubscription_Unsubscribe	(nats_fn.natsSubscription_Unsubscribe)
#define nats_CloseAndWait		(nats_fn.nats_CloseAndWait)
#define nats_GetLastError		(nats_fn.nats_GetLastError)
#endif

#endif
