/*
 * witness.h - what witness.c (tallyctl witness key, cosign) shares with
 * witness_serve.c (tallyctl witness serve).
 */
#ifndef TALLYCTL_WITNESS_H
#define TALLYCTL_WITNESS_H

#include "tallyctl.h"

/* witness.c, for witness_serve.c */
#define WITNESS_LOGS_MAX	16
/* The witness's signer from DIR (made when make and missing).  0, -1. */
int	witness_load_signer(struct ctl *ctl, const char *dir, const char *name,
	    bool make, struct tally_tlog_signer *s);
/* DIR/name replaced by buf, synced before the rename.  0, -1 (errno). */
int	witness_write_file(const char *dir, const char *name, const char *buf,
	    size_t len, unsigned mode);
/* The state file of the log of origin: "log-<16 hex digits>". */
void	witness_state_name(const char *origin, char out[64]);
/* witness_serve.c: tallyctl witness serve; an exit code. */
int	witness_serve(struct ctl *ctl, const char *dir, const char **log_keys,
	    size_t n, const char *listen);

#endif
