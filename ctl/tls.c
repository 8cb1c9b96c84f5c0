/*
 * tls.c - --cacert and TALLYD_CACERT: checked when given, so that a wrong
 * path is a usage error on the command line rather than a TLS failure
 * after the first connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tallyctl.h"

int
ctl_tls_option(struct ctl *ctl, const char *path)
{
	char *buf;
	size_t len;

	if (tally_read_file(path, &buf, &len) == -1) {
		ctl_warnx(ctl, "--cacert %s: %s", path, strerror(errno));
		return CTL_EXIT_USAGE;
	}
	/* PEM only: libcurl with OpenSSL reads nothing else from CAINFO. */
	if (strstr(buf, "-----BEGIN CERTIFICATE-----") == NULL) {
		ctl_warnx(ctl, "--cacert %s: no PEM certificate in it (a "
		    "\"-----BEGIN CERTIFICATE-----\" block: the CA that signed "
		    "the daemon's certificate)", path);
		free(buf);
		return CTL_EXIT_USAGE;
	}
	free(buf);
	ctl->cacert = path;
	return 0;
}
