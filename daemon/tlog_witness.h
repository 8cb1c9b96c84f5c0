/*
 * tlog_witness.h - witnesses' cosignatures of the transparency log's
 * checkpoints (tlog_witness.c).  Loop thread [L] only.
 */
#ifndef TALLYD_TLOG_WITNESS_H
#define TALLYD_TLOG_WITNESS_H

#include <stddef.h>
#include <stdint.h>

struct tlogd;

struct tlog_witness_result {
	unsigned	status;		/* 201, or the refusal's */
	char		code[32];
	char		message[400];
	uint64_t	size;		/* the checkpoint's */
	unsigned	added;		/* cosignatures taken from this note */
	unsigned	witnesses;	/* cosignatures the checkpoint has */
};

/*
 * A note POSTed by a witness: a checkpoint this log signed (its root the
 * tree's at its size, not older than the last cosigned one) carrying a
 * valid cosignature by a key in DATA_DIR/tlog/witnesses.  Kept as the
 * witnessed checkpoint (with the lines it had, when the same).  0, or -1
 * with res's status, code and message.
 */
int		 tlog_witness_add(struct tlogd *t, const char *note,
		    size_t len, struct tlog_witness_result *res);
/* The latest cosigned checkpoint (borrowed), or NULL. */
const char	*tlog_witness_note(struct tlogd *t, size_t *len);
/* note, or the cosigned copy of it when it is the witnessed checkpoint
 * (borrowed). */
const char	*tlog_witness_on(struct tlogd *t, const char *note,
		    size_t len, size_t *outlen);
/*
 * The keys of the witnesses tallyd pushes to (tlog_push.c sets them at
 * start; copied): taken like those of DATA_DIR/tlog/witnesses.
 */
struct tally_tlog_key;
void		 tlog_witness_set_keys(const struct tally_tlog_key *keys,
		    size_t n);
/* Free what is kept (at exit). */
void		 tlog_witness_finish(void);

#endif
