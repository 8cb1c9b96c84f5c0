/*
 * nats_dl.c - libnats, opened at run time (nats_dl.h says why).
 */
#include <string.h>

#include "cluster.h"

#ifndef TALLYD_CLUSTER

int
cluster_library(struct tally_diag *diag)
{
	tally_diag_add(diag, "this tallyd was built without cluster mode");
	return -1;
}

#else

#include <dlfcn.h>

#include <nats/nats.h>

#define NATS_DL_TABLE	/* names as they are: this file fills the table */
#include <tally/tally.h>

#include "nats_dl.h"

/*
 * Written by the first nats_dl_open (cluster_create, or the start-up check
 * of cluster_library), on the loop thread before any libnats thread exists;
 * read only after that [I].
 */
struct nats_dl	 nats_fn;
static void	*nats_handle;

#ifndef TALLYD_LIBNATS
#define TALLYD_LIBNATS	"libnats.so"
#endif
#ifndef TALLYD_LIBNATS_PACKAGE
#define TALLYD_LIBNATS_PACKAGE	"libnats"
#endif

int
nats_dl_open(struct tally_diag *diag)
{
	void *h;
	const char *missing = NULL;

	if (nats_handle != NULL)
		return 0;
	if ((h = dlopen(TALLYD_LIBNATS, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		tally_diag_add(diag, "cluster mode needs libnats, which is not "
		    "installed (%s): install it (apt install %s) or unset "
		    "cluster_urls to run a single node", dlerror(),
		    TALLYD_LIBNATS_PACKAGE);
		return -1;
	}
	/*
	 * dlsym returns a void *; POSIX guarantees it converts to a function
	 * pointer, ISO C does not say so: go through memcpy.
	 */
#define NATS_DL_LOOKUP(f) do {							void *sym = dlsym(h, #f);						if (sym == NULL && missing == NULL)						missing = #f;							memcpy(&nats_fn.f, &sym, sizeof(nats_fn.f));			} while (0);
	NATS_DL_FUNCTIONS(NATS_DL_LOOKUP)
#undef NATS_DL_LOOKUP
	if (missing != NULL) {
		tally_diag_add(diag, "cluster mode: %s has no %s: this tallyd "
		    "was built against another libnats version; install %s",
		    TALLYD_LIBNATS, missing, TALLYD_LIBNATS_PACKAGE);
		memset(&nats_fn, 0, sizeof(nats_fn));
		dlclose(h);
		return -1;
	}
	nats_handle = h;
	return 0;
}

int
cluster_library(struct tally_diag *diag)
{
	return nats_dl_open(diag);
}

#endif
