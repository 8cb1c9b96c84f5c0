/*
 * log_http.h - the transparency log's read-only routes (log_http.c):
 * /log/key, /log/checkpoint, /log/tile/..., /log/proof/{n}.  Loop thread.
 */
#ifndef TALLYD_LOG_HTTP_H
#define TALLYD_LOG_HTTP_H

struct call;

void	log_http_key(struct call *cl, const char *id);
void	log_http_checkpoint(struct call *cl, const char *id);
void	log_http_tile(struct call *cl, const char *id);
void	log_http_proof(struct call *cl, const char *id);
void	log_http_witnessed(struct call *cl, const char *id);
void	log_http_cosignature(struct call *cl, const char *id);

#endif
