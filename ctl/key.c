/*
 * key.c - tallyctl key: the verifier key of a tallyd's transparency log,
 * read from its data directory (DATA_DIR/tlog/key.pub, written by tallyd at
 * every start), for observers to give `tallyctl verify --key`.  Never the
 * signing key: that file (tlog/key, or log_key) is not read here.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <tally/tally.h>

#include "tallyctl.h"

static void
key_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl [--contest ID] key --data-dir DIR\n"
	    "\n"
	    "Prints the verifier key of the transparency log tallyd keeps in DIR\n"
	    "(name+keyid+key, as GET /log/key serves it): what observers give\n"
	    "`tallyctl verify log|receipt|leaderboard --key`.  With --contest,\n"
	    "that contest's log's (GET /v1/contests/ID/log/key): each contest\n"
	    "has its own log, signed with the one key under its own name.\n");
}

int
cmd_key(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "data-dir", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	char path[4096], buf[512];
	struct tally_tlog_key k;
	struct tally_error err;
	size_t n;
	FILE *f;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "D:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'D':
			dir = optarg;
			break;
		case 'h':
			key_usage(stdout);
			return CTL_EXIT_OK;
		default:
			key_usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (dir == NULL || optind != argc) {
		key_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	/*
	 * A further contest's log is in DIR/contests/ID/tlog; the first
	 * contest's in DIR/tlog, whose key names it (tallyd/ID/...).
	 */
	if (ctl->contest != NULL) {
		snprintf(path, sizeof(path), "%s/contests/%s/tlog/key.pub",
		    dir, ctl->contest);
		if (access(path, F_OK) == -1)
			snprintf(path, sizeof(path), "%s/tlog/key.pub", dir);
	} else
		snprintf(path, sizeof(path), "%s/tlog/key.pub", dir);
	if ((f = fopen(path, "r")) == NULL) {
		ctl_warnx(ctl, "%s: %s (has tallyd started with this data "
		    "directory, with transparency_log on?)", path,
		    strerror(errno));
		return CTL_EXIT_ERROR;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (tally_tlog_key_parse(buf, &k, &err) == -1) {
		ctl_warnx(ctl, "%s: %s", path, err.message);
		return CTL_EXIT_INVALID;
	}
	if (ctl->contest != NULL && (strncmp(k.name, "tallyd/", 7) != 0 ||
	    strncmp(k.name + 7, ctl->contest, strlen(ctl->contest)) != 0 ||
	    k.name[7 + strlen(ctl->contest)] != '/')) {
		ctl_warnx(ctl, "%s: no log of contest %s in %s (this is %s's)",
		    path, ctl->contest, dir, k.name);
		return CTL_EXIT_ERROR;
	}
	if (tally_tlog_key_format(&k, buf, sizeof(buf)) == -1)
		return CTL_EXIT_ERROR;
	printf("%s\n", buf);
	return CTL_EXIT_OK;
}
