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
 * Include after <nats/nats.h>, in one file.
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
	X(natsConnection_Status)					\
	X(natsMsg_Create)						\
	X(natsMsg_Destroy)						\
	X(natsMsg_GetData)						\
	X(natsMsg_GetDataLength)					\
	X(natsMsg_GetMetaData)						\
	X(natsMsg_GetSubject)						\
	X(natsOptions_Create)						\
	X(natsOptions_Destroy)						\
	X(natsOptions_SetMaxPingsOut)					\
	X(natsOptions_SetMaxReconnect)					\
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

#endif
