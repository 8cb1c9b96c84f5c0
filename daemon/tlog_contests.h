/*
 * tlog_contests.h - a transparency log for every contest (issue 27 with
 * issue 23): each contest has its own version counter, so each has its own
 * log (tree size = that contest's version), served under
 * /v1/contests/{contest}/log/ (the first contest's also under /log/).
 *
 * The first contest's log is tlogd_current, in DATA_DIR/tlog, its entries
 * naming no contest (a single-contest daemon's log, byte for byte).  Every
 * further contest's log is in DATA_DIR/contests/<id>/tlog, its entries
 * naming it ("contest": id); all are signed with the one key (DATA_DIR/
 * tlog/key or log_key), each under its own origin tallyd/<id>/<the
 * definition's hash>, so each has its own verifier key text.
 *
 * Loop thread only [L]; before the loop, main.c's start-up.
 */
#ifndef TALLYD_TLOG_CONTESTS_H
#define TALLYD_TLOG_CONTESTS_H

#include <stdint.h>

struct config;
struct contests;
struct core;
struct tally_diag;
struct tlogd;

/*
 * After the first contest's log `first` is open, before the journal is
 * replayed: first attached to cs's first core, and the log of every further
 * contest opened and attached to its core.  A log that cannot be opened
 * stops the start (logged).
 */
void		 tlog_contests_open(struct contests *cs, struct tlogd *first,
		    const struct config *cf);
/* After the replay: each further log at its contest's version
 * (tlogd_started).  -1 with diag. */
int		 tlog_contests_started(struct contests *cs,
		    struct tally_diag *diag);
/*
 * A reload (contests_reload.c).  _make: the log of a contest about to be
 * added (core c, definition at path), opened but not attached, or NULL:
 * no logs are kept (none at start), or with diag (refuse the reload).
 * _adopt: attached to c once the contest is served (its version 0).
 * _retire: a contest removed: its log synced and closed, its files kept.
 */
struct tlogd	*tlog_contests_make(struct core *c, const char *path,
		    struct tally_diag *diag, int *failed);
void		 tlog_contests_adopt(struct tlogd *t, struct core *c);
void		 tlog_contests_retire(struct core *c);
/* At exit (after the first's tlogd_flush): every further log closed. */
void		 tlog_contests_close(void);
/*
 * The receipt of version `version` of c's contest: its index in that
 * contest's log (version - 1) and its leaf hash in base64 (b64 >= 48
 * bytes).  0, or -1 (no log for c, or off).
 */
int		 tlog_contests_receipt(const struct core *c, uint64_t version,
		    uint64_t *index, char *b64);

#endif
