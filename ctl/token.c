/*
 * token.c - tallyctl token new and tallyctl check.
 *
 * A token is 32 bytes from getrandom(2) in hex.  The token_file line is the
 * form daemon/auth.c reads: "sha256:<64 hex> <provinces> [label]", where
 * provinces is "*" or id,id,...; '#' starts a comment there, so a label may
 * not hold one.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "tallyctl.h"

static void
token_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl token new [--provinces ID,ID...] [--label NAME]\n"
	    "\n"
	    "Prints a fresh ingest token (line 1) and the line to add to tallyd's\n"
	    "token_file (line 2: its SHA-256, the provinces it may post, the label).\n"
	    "The token is shown only this once; tallyd keeps only the hash.\n"
	    "Then: kill -HUP tallyd to load it.\n"
	    "\n"
	    "  -p, --provinces IDS  comma-separated provinces (default: all, \"*\")\n"
	    "  -l, --label NAME     a name for logs (no '#', no line breaks)\n");
}

int
cmd_token(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "provinces", required_argument, NULL, 'p' },
		{ "label", required_argument, NULL, 'l' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	const char *provinces = "*", *label = NULL;
	uint8_t raw[32], digest[SHA256_DIGEST_SIZE];
	char tok[2 * sizeof(raw) + 1], hex[2 * SHA256_DIGEST_SIZE + 1];
	char *copy, *id, *save = NULL;
	struct sha256_ctx sha;
	size_t i, got;
	ssize_t n;
	int c, ex;

	optind = 0;
	while ((c = getopt_long(argc, argv, "p:l:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			provinces = optarg;
			break;
		case 'l':
			label = optarg;
			break;
		case 'h':
			token_usage(stdout);
			return CTL_EXIT_OK;
		default:
			if ((ex = ctl_common_option(ctl, c, optarg)) != 0) {
				token_usage(stderr);
				return ex;
			}
		}
	}
	if (optind != argc - 1 || strcmp(argv[optind], "new") != 0) {
		token_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(provinces, "*") != 0) {
		if ((copy = strdup(provinces)) == NULL)
			return CTL_EXIT_ERROR;
		for (id = strtok_r(copy, ",", &save); id != NULL;
		    id = strtok_r(NULL, ",", &save))
			if (!tally_id_is_valid(id)) {
				ctl_warnx(ctl, "--provinces: \"%.64s\" is not a "
				    "province id", id);
				free(copy);
				return CTL_EXIT_USAGE;
			}
		free(copy);
		if (provinces[0] == ',' || provinces[0] == '\0' ||
		    provinces[strlen(provinces) - 1] == ',' ||
		    strstr(provinces, ",,") != NULL) {
			ctl_warnx(ctl, "--provinces: id,id,... without empty "
			    "ids");
			return CTL_EXIT_USAGE;
		}
	}
	if (label != NULL && (strpbrk(label, "#\r\n") != NULL ||
	    label[0] == '\0' || label[0] == ' ' || label[0] == '\t')) {
		ctl_warnx(ctl, "--label: no '#' or line breaks, not empty, no "
		    "leading blank (the token file would read it otherwise)");
		return CTL_EXIT_USAGE;
	}
	for (got = 0; got < sizeof(raw); got += (size_t)n)
		if ((n = getrandom(raw + got, sizeof(raw) - got, 0)) <= 0) {
			ctl_warnx(ctl, "getrandom failed");
			return CTL_EXIT_ERROR;
		}
	for (i = 0; i < sizeof(raw); i++)
		snprintf(tok + 2 * i, 3, "%02x", raw[i]);
	sha256_init(&sha);
	sha256_update(&sha, strlen(tok), (const uint8_t *)tok);
	sha256_digest(&sha, sizeof(digest), digest);
	for (i = 0; i < sizeof(digest); i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	printf("%s\nsha256:%s %s%s%s\n", tok, hex, provinces, label ? " " : "",
	    label ? label : "");
	if (isatty(STDOUT_FILENO))
		fprintf(stderr, "\nLine 1 is the token (shown only now; give it "
		    "to the poster as TALLYD_TOKEN).\nAdd line 2 to tallyd's "
		    "token_file, then kill -HUP tallyd.\n");
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(tok, sizeof(tok));
	return CTL_EXIT_OK;
}

static void
check_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl check ELECTION.json...\n"
	    "\n"
	    "Validates election definitions with tallyd's own loader and messages\n"
	    "(every problem, with its JSON pointer).  exit: 0 valid, 3 invalid.\n");
}

int
cmd_check(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	struct tally_diag diag;
	struct tally_election *e;
	int c, ex = CTL_EXIT_OK, i;
	size_t k;

	optind = 0;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		if (c == 'h') {
			check_usage(stdout);
			return CTL_EXIT_OK;
		}
		if ((i = ctl_common_option(ctl, c, optarg)) != 0) {
			check_usage(stderr);
			return i;
		}
	}
	if (optind == argc) {
		check_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	for (i = optind; i < argc; i++) {
		tally_diag_init(&diag);
		if ((e = tally_election_load(argv[i], &diag)) == NULL) {
			for (k = 0; k < diag.count && k < diag.cap; k++)
				fprintf(stderr, "%s\n", diag.msgs[k]);
			if (diag.nomem)
				fprintf(stderr, "%s: and %zu more problems\n",
				    argv[i], diag.count - diag.cap);
			ex = CTL_EXIT_INVALID;
		} else {
			printf("%s: ok: %s \"%s\": %zu provinces, %llu seats, "
			    "%zu coalitions, %s\n", argv[i], e->id, e->name,
			    e->n_provinces, (unsigned long long)e->seats_total,
			    e->n_coalitions, tally_method_name(e->rule.method));
			ctl_check_colors(argv[i], e);
			tally_election_destroy(e);
		}
		tally_diag_finish(&diag);
	}
	return ex;
}
