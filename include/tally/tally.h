/* tally.h - libtally, the domain of tallyd.  Include this one header. */
#ifndef TALLY_TALLY_H
#define TALLY_TALLY_H

#include <tally/diag.h>
#include <tally/frac.h>
#include <tally/election.h>
#include <tally/error.h>
#include <tally/file.h>
#include <tally/feed.h>
#include <tally/journal.h>
#include <tally/levelling.h>
#include <tally/lot.h>
#include <tally/seats.h>
#include <tally/tlog.h>
#include <tally/tlog_entry.h>
#include <tally/tlog_cosig.h>
#include <tally/bounds.h>
#include <tally/state.h>
#include <tally/totals.h>
#include <tally/render.h>
#include <tally/majority.h>
#include <tally/calls.h>
#include <tally/compare.h>
#include <tally/expected.h>
#include <tally/map.h>

#endif
