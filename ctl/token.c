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

#include <jansson.h>
#include <nettle/sha2.h>

#include "tallyctl.h"

static void
token_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl token new [--provinces ID,ID...] [--election FILE]\n"
	    "           [--label NAME]\n"
	    "\n"
	    "Prints a fresh ingest token (line 1) and the line to add to tallyd's\n"
	    "token_file (line 2: its SHA-256, the provinces it may post, the label).\n"
	    "The token is shown only this once; tallyd keeps only the hash.\n"
	    "Then: kill -HUP tallyd to load it.\n"
	    "\n"
	    "  -p, --provinces IDS  comma-separated provinces (default: all, \"*\")\n"
	    "  -e, --election FILE  check the provinces against this definition\n"
	    "                       (default: against the daemon at --url)\n"
	    "  -l, --label NAME     a name for logs (no '#', no line breaks)\n"
	    "\n"
	    "With --contest ID (a tallyd of several contests) the token posts to that\n"
	    "contest only: its provinces are ID's (line 2: ID/id,... or ID/*).\n");
}

/*
 * Every id of `provinces` must be a province of the election: a token for
 * a misspelt province is accepted by tallyd's token file and then refuses
 * every post of the night with 403.  The ids come from the definition
 * (--election) or from the daemon (GET /v1/provinces).
 */
static int
check_provinces(struct ctl *ctl, const char *provinces, const char *election)
{
	struct tally_diag diag;
	struct tally_election *e = NULL;
	struct http_resp r = { .retry_after = -1 };
	struct http *h = NULL;
	json_t *known = NULL, *j = NULL, *row;
	char *copy = NULL, *id, *save = NULL, best[256];
	size_t i;
	bool found;
	int ex = CTL_EXIT_OK, rc;

	if ((known = json_array()) == NULL)
		return CTL_EXIT_ERROR;
	if (election != NULL) {
		tally_diag_init(&diag);
		if ((e = tally_election_load(election, &diag)) == NULL) {
			for (i = 0; i < diag.count && i < diag.cap; i++)
				fprintf(stderr, "%s\n", diag.msgs[i]);
			ctl_warnx(ctl, "--election %s: not a valid definition "
			    "(tallyctl check %s)", election, election);
			tally_diag_finish(&diag);
			ex = CTL_EXIT_INVALID;
			goto done;
		}
		tally_diag_finish(&diag);
		if (ctl->contest != NULL && strcmp(e->id, ctl->contest) != 0) {
			ctl_warnx(ctl, "--election %s is contest %s, not %s "
			    "(--contest)", election, e->id, ctl->contest);
			ex = CTL_EXIT_INVALID;
			goto done;
		}
		for (i = 0; i < e->n_provinces; i++)
			json_array_append_new(known, json_pack("{ssss}", "id",
			    e->provinces[i].id, "name", e->provinces[i].name));
	} else {
		if ((h = http_create(ctl)) == NULL) {
			ex = CTL_EXIT_ERROR;
			goto done;
		}
		rc = http_request(h, "GET", "/v1/provinces", NULL, 0, NULL, &r);
		if (rc == -1 || r.status != 200) {
			ctl_warnx(ctl, "--provinces: cannot check them against "
			    "the election of %s:", ctl->url);
			ex = ctl_http_error(ctl, &r, rc);
			ctl_warnx(ctl, "give the election definition with "
			    "--election FILE, or the daemon with --url");
			goto done;
		}
		if ((j = json_loadb(r.body, r.len, 0, NULL)) == NULL ||
		    !json_is_array(json_object_get(j, "provinces"))) {
			ctl_warnx(ctl, "GET /v1/provinces: no \"provinces\" "
			    "array in the answer");
			ex = CTL_EXIT_ERROR;
			goto done;
		}
		json_array_extend(known, json_object_get(j, "provinces"));
	}
	if ((copy = strdup(provinces)) == NULL) {
		ex = CTL_EXIT_ERROR;
		goto done;
	}
	for (id = strtok_r(copy, ",", &save); id != NULL;
	    id = strtok_r(NULL, ",", &save)) {
		found = false;
		json_array_foreach(known, i, row)
			if (strcmp(json_string_value(json_object_get(row,
			    "id")) ?: "", id) == 0)
				found = true;
		if (found)
			continue;
		if (ctl_suggest_province(known, id, best, sizeof(best)))
			ctl_warnx(ctl, "--provinces: no province \"%s\" in the "
			    "election; did you mean %s?", id, best);
		else
			ctl_warnx(ctl, "--provinces: no province \"%s\" in the "
			    "election (tallyctl show, or GET /v1/provinces, "
			    "lists them)", id);
		ex = CTL_EXIT_INVALID;
	}
done:
	free(copy);
	json_decref(j);
	json_decref(known);
	tally_election_destroy(e);
	http_resp_finish(&r);
	http_destroy(h);
	return ex;
}

int
cmd_token(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "provinces", required_argument, NULL, 'p' },
		{ "label", required_argument, NULL, 'l' },
		{ "election", required_argument, NULL, 'e' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	const char *provinces = "*", *label = NULL, *election = NULL;
	uint8_t raw[32], digest[SHA256_DIGEST_SIZE];
	char tok[2 * sizeof(raw) + 1], hex[2 * SHA256_DIGEST_SIZE + 1];
	char *copy, *id, *save = NULL;
	struct sha256_ctx sha;
	size_t i, got;
	ssize_t n;
	int c, ex;

	optind = 0;
	while ((c = ctl_getopt(ctl, argc, argv, "p:l:e:vh", opts)) != -1) {
		switch (c) {
		case 'p':
			provinces = optarg;
			break;
		case 'e':
			election = optarg;
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
	if (strcmp(provinces, "*") != 0 &&
	    (ex = check_provinces(ctl, provinces, election)) != CTL_EXIT_OK)
		return ex;
	/* A whole contest: it must be there (no id to check in it). */
	if (strcmp(provinces, "*") == 0 && ctl->contest != NULL &&
	    (ex = check_provinces(ctl, "", election)) != CTL_EXIT_OK)
		return ex;
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
	printf("%s\nsha256:%s ", tok, hex);
	if (ctl->contest == NULL)
		fputs(provinces, stdout);
	else {
		/* Each item of that contest (tallyd.conf(5), token_file). */
		if ((copy = strdup(provinces)) == NULL)
			return CTL_EXIT_ERROR;
		for (i = 0, id = strtok_r(copy, ",", &save); id != NULL;
		    id = strtok_r(NULL, ",", &save), i++)
			printf("%s%s/%s", i > 0 ? "," : "", ctl->contest, id);
		free(copy);
	}
	printf("%s%s\n", label ? " " : "", label ? label : "");
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
	while ((c = ctl_getopt(ctl, argc, argv, "vh", opts)) != -1) {
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
