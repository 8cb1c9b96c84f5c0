/*
 * main.c - tallyctl: post, rehearse and watch an election night.
 *
 * Dispatches to one function per subcommand.  Options common to every
 * subcommand (--url, --token-file, --retry, -v, --help) are handled here;
 * the environment gives TALLYD_URL and TALLYD_TOKEN.  They may come before
 * the command (as the usage line shows) or after it, among the command's
 * own options; the later one wins.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "tallyctl.h"
#include "tallyd-config.h"

static const struct {
	const char	*name;
	int		(*fn)(struct ctl *, int, char **);
	const char	*what;
} commands[] = {
	{ "post",	cmd_post,	"post a snapshot, a batch or a CSV export" },
	{ "lot",	cmd_lot,	"post the order drawn by lot for a pending tie" },
	{ "show",	cmd_show,	"a province: revision, votes, seats, status, tie" },
	{ "replay",	cmd_replay,	"rehearse an election night from a dataset" },
	{ "watch",	cmd_watch,	"a live leaderboard in the terminal" },
	{ "token",	cmd_token,	"token new: make an ingest token" },
	{ "check",	cmd_check,	"validate an election definition" },
	{ "import",	cmd_import,	"write an election definition from a dataset" },
	{ "verify",	cmd_verify,	"verify a results log (or a receipt) offline" },
	{ "key",	cmd_key,	"the verifier key of a data dir's results log" },
	{ "witness",	cmd_witness,	"cosign a results log's checkpoints (witness)" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: tallyctl [--url URL] [--token-file FILE] [--retry S] "
	    "[--cacert FILE] [--insecure] [--contest ID] [-v] COMMAND [ARGS]\n"
	    "\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].what);
	fprintf(f, "\n'tallyctl COMMAND --help' for each; man tallyctl for "
	    "the exit codes.\nTALLYD_URL (default http://127.0.0.1:8080), "
	    "TALLYD_TOKEN, TALLYD_CACERT.\n");
}

void
ctl_warnx(const struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", ctl->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

bool
ctl_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

double
ctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
ctl_sleep(double seconds)
{
	struct timespec ts;

	if (seconds <= 0)
		return;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* The first line of a token file, without surrounding blanks. */
static char *
read_token(const char *path)
{
	char *buf, *s, *e;
	size_t len;

	if (tally_read_file(path, &buf, &len) == -1)
		return NULL;
	for (s = buf; *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'; s++)
		;
	for (e = s; *e != '\0' && *e != '\n' && *e != '\r'; e++)
		;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*e = '\0';
	memmove(buf, s, (size_t)(e - s) + 1);
	return buf;
}

/* A token goes into a header line: visible ASCII only, no blanks. */
static bool
token_is_sane(const char *t)
{
	if (*t == '\0')
		return false;
	for (; *t != '\0'; t++)
		if (*t <= ' ' || *t > '~')
			return false;
	return true;
}

int
ctl_common_option(struct ctl *ctl, int c, const char *arg)
{
	char *end;

	switch (c) {
	case CTL_OPT_URL:
		ctl->url = arg;
		return 0;
	case CTL_OPT_TOKEN_FILE:
		free(ctl->token);
		if ((ctl->token = read_token(arg)) == NULL) {
			ctl_warnx(ctl, "%s: %s", arg, strerror(errno));
			return CTL_EXIT_USAGE;
		}
		if (!token_is_sane(ctl->token)) {
			ctl_warnx(ctl, "%s: no token on its first line (visible "
			    "ASCII, no blanks)", arg);
			return CTL_EXIT_USAGE;
		}
		ctl->token_file = arg;
		return 0;
	case CTL_OPT_CACERT:
		return ctl_tls_option(ctl, arg);
	case CTL_OPT_INSECURE:
		ctl->insecure = true;
		return 0;
	case CTL_OPT_CONTEST:
		/* A contest id (tally_id_is_valid): it goes into URLs as is. */
		if (arg[0] == '\0' || strlen(arg) > 64 || strspn(arg,
		    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "0123456789_.-") != strlen(arg) || strcmp(arg, ".") == 0 ||
		    strcmp(arg, "..") == 0) {
			ctl_warnx(ctl, "--contest: expected a contest id (letters, "
			    "digits, _ . -, not . or ..; GET /v1/contests lists "
			    "them)");
			return CTL_EXIT_USAGE;
		}
		ctl->contest = arg;
		return 0;
	case CTL_OPT_RETRY:
		errno = 0;
		ctl->retry_for = strtod(arg, &end);
		if (errno != 0 || *end != '\0' || end == arg ||
		    !(ctl->retry_for >= 0 && ctl->retry_for <= 86400)) {
			ctl_warnx(ctl, "--retry: expected seconds, 0 to 86400");
			return CTL_EXIT_USAGE;
		}
		return 0;
	case 'v':
		ctl->verbose = true;
		return 0;
	default:
		return CTL_EXIT_USAGE;
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		CTL_COMMON_OPTIONS,
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static char prog[64];
	struct ctl ctl = { .prog = "tallyctl", .retry_for = 30 };
	const char *env;
	size_t i;
	int c, rc;

	ctl.url = (env = getenv("TALLYD_URL")) != NULL && *env != '\0' ? env :
	    "http://127.0.0.1:8080";
	if ((env = getenv("TALLYD_TOKEN")) != NULL && *env != '\0') {
		if (!token_is_sane(env)) {
			fprintf(stderr, "tallyctl: TALLYD_TOKEN: visible ASCII "
			    "only, no blanks or line breaks\n");
			return CTL_EXIT_USAGE;
		}
		if ((ctl.token = strdup(env)) == NULL)
			return CTL_EXIT_ERROR;
	}
	/*
	 * Global options, up to the command ("+": stop at the first word
	 * that is not an option, so that the command's own options are left
	 * for it).  They override the environment; the command's own
	 * --url etc. override them in turn.
	 */
	if ((env = getenv("TALLYD_CACERT")) != NULL && *env != '\0' &&
	    ctl_tls_option(&ctl, env) != 0) {
		free(ctl.token);
		return CTL_EXIT_USAGE;
	}
	while ((c = ctl_getopt(&ctl, argc, argv, "+vh", opts)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			free(ctl.token);
			return CTL_EXIT_OK;
		case 'V':
			printf("tallyctl %s\n", TALLYD_VERSION);
			free(ctl.token);
			return CTL_EXIT_OK;
		case '?':
			usage(stderr);
			free(ctl.token);
			return CTL_EXIT_USAGE;
		default:
			if ((rc = ctl_common_option(&ctl, c, optarg)) != 0) {
				free(ctl.token);
				return rc;
			}
		}
	}
	if (optind >= argc) {
		usage(stderr);
		free(ctl.token);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		usage(stdout);
		free(ctl.token);
		return CTL_EXIT_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[optind], commands[i].name) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		struct ctl_suggest sg;

		ctl_suggest_init(&sg, argv[optind]);
		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
			ctl_suggest_add(&sg, commands[i].name);
		if (ctl_suggest_best(&sg) != NULL)
			fprintf(stderr, "tallyctl: unknown command '%s'; did you "
			    "mean '%s'?\n", argv[optind], ctl_suggest_best(&sg));
		else
			fprintf(stderr, "tallyctl: unknown command '%s'\n",
			    argv[optind]);
		usage(stderr);
		free(ctl.token);
		return CTL_EXIT_USAGE;
	}
	snprintf(prog, sizeof(prog), "tallyctl %s", commands[i].name);
	ctl.prog = prog;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		ctl_warnx(&ctl, "cannot initialise libcurl");
		free(ctl.token);
		return CTL_EXIT_ERROR;
	}
	rc = commands[i].fn(&ctl, argc - optind, argv + optind);
	curl_global_cleanup();
	free(ctl.token);
	return rc;
}
