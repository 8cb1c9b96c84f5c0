/*
 * show.c - tallyctl show PROVINCE: what the daemon holds for a province,
 * for the operator who is about to post the next revision or draw a lot.
 *
 * Everything comes from GET /v1/provinces/ID (the public view), so show
 * needs no token; list names come from GET /v1/election.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tallyctl.h"

static void
show_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl show [--json] PROVINCE\n"
	    "\n"
	    "Shows what tallyd holds for a province: its current revision (the\n"
	    "next post is that plus one: post --revision next), status, stations,\n"
	    "votes, the seats of each list and any tie pending a lot.\n"
	    "\n"
	    "      --json          print the daemon's JSON as it is\n"
	    "      --url, --cacert, --insecure, --retry, -v as for post\n"
	    "\n"
	    "exit: 0 shown, 2 usage, 3 no such province, 7 unavailable, 11 TLS\n");
}

/* 1234567 as "1,234,567": counts an operator compares with a paper. */
static const char *
grouped(json_int_t v, char *buf, size_t size)
{
	char tmp[32];
	size_t n, i, o = 0;

	snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
	n = strlen(tmp);
	for (i = 0; i < n && o + 2 < size; i++) {
		if (i > 0 && tmp[i - 1] != '-' && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

static json_int_t
num(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static const char *
str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key)) ?: "";
}

/* The threshold state of a list row, as a note after its seats. */
static const char *
threshold_note(const char *t)
{
	if (strcmp(t, "failed") == 0)
		return "  (below the threshold)";
	if (strcmp(t, "excluded") == 0)
		return "  (excluded: below a national threshold)";
	if (strcmp(t, "exempt") == 0)
		return "  (exempt from the threshold)";
	return "";
}

static void
print_province(const struct ctl *ctl, json_t *p)
{
	json_t *st = json_object_get(p, "stations"), *v, *l, *t, *x, *lot;
	char a[32], b[32], name[160];
	size_t i, k;
	json_int_t rev = num(p, "revision");

	printf("province %s (%s), %lld seats\n", str(p, "id"), str(p, "name"),
	    (long long)num(p, "seats"));
	if (rev == 0) {
		printf("revision: 0 (no result yet; the first post is "
		    "revision 1)\n");
		return;
	}
	printf("revision: %lld, %s (the next post is revision %lld)\n",
	    (long long)rev, str(p, "status"), (long long)rev + 1);
	printf("received: %s", str(p, "received_at"));
	if (json_is_string(json_object_get(p, "reported_at")))
		printf(", reported at %s", str(p, "reported_at"));
	printf("\n");
	if (json_is_object(st))
		printf("stations: %s of %s reporting\n",
		    grouped(num(st, "reporting"), a, sizeof(a)),
		    grouped(num(st, "total"), b, sizeof(b)));
	v = json_object_get(p, "votes");
	printf("votes: %s valid", grouped(num(v, "valid"), a, sizeof(a)));
	printf(" (blank %s),", grouped(num(v, "blank"), a, sizeof(a)));
	printf(" invalid %s\n", grouped(num(v, "invalid"), a, sizeof(a)));
	printf("seats: %lld of %lld allocated", (long long)num(p, "allocated"),
	    (long long)num(p, "seats"));
	if (num(p, "pending_seats") > 0)
		printf(", %lld pending a lot", (long long)num(p,
		    "pending_seats"));
	printf("%s\n", json_is_true(json_object_get(p, "settled")) ?
	    "; settled (no count to come can change them)" : "");
	printf("\n  %-28s %13s %8s %5s\n", "list", "votes", "share", "seats");
	json_array_foreach(json_object_get(p, "lists"), i, l) {
		json_t *sh = json_object_get(l, "share");

		/* The share is the daemon's, for reading only. */
		printf("  %-28.28s %13s %7.2f%% %5lld%s\n",
		    ctl_list_name(ctl, str(l, "id"), name, sizeof(name)),
		    grouped(num(l, "votes"), a, sizeof(a)),
		    json_is_number(sh) ? json_number_value(sh) : 0.0,
		    (long long)num(l, "seats"), threshold_note(str(l,
		    "threshold")));
	}
	json_array_foreach(json_object_get(p, "pending"), i, t) {
		printf("\npending tie: %lld seat(s), rule %s, between",
		    (long long)num(t, "seats"), str(t, "rule"));
		json_array_foreach(json_object_get(t, "tied"), k, x)
			printf("%s %s", k ? "," : "", ctl_list_name(ctl,
			    json_string_value(x) ?: "", name, sizeof(name)));
		printf("\n  draw the lot, then: tallyctl lot %s", str(p, "id"));
		json_array_foreach(json_object_get(t, "tied"), k, x)
			printf(" %s", json_string_value(x) ?: "");
		printf("  (in the order drawn; revision %lld)\n",
		    (long long)rev);
	}
	lot = json_object_get(p, "lot");
	if (json_is_object(lot)) {
		printf("\nlot: drawn for revision %lld, order",
		    (long long)num(lot, "revision"));
		json_array_foreach(json_object_get(lot, "order"), k, x)
			printf("%s %s", k ? "," : "", json_string_value(x) ?: "");
		printf("%s\n", json_is_true(json_object_get(lot, "stale")) ?
		    " (stale: a later count changed the tie)" : "");
	}
}

int
cmd_show(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	struct http_resp r = { .retry_after = -1 };
	struct http *h = NULL;
	char path[256];
	json_t *j = NULL;
	bool raw = false;
	int c, ex, rc;

	optind = 0;
	while ((c = ctl_getopt(ctl, argc, argv, "vh", opts)) != -1) {
		switch (c) {
		case 'j':
			raw = true;
			break;
		case 'h':
			show_usage(stdout);
			return CTL_EXIT_OK;
		default:
			if ((ex = ctl_common_option(ctl, c, optarg)) != 0) {
				show_usage(stderr);
				return ex;
			}
		}
	}
	if (optind != argc - 1) {
		show_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (!tally_id_is_valid(argv[optind])) {
		ctl_warnx(ctl, "\"%.64s\" is not a province id ([A-Za-z0-9_.-], "
		    "1 to 64)", argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if ((h = http_create(ctl)) == NULL)
		return CTL_EXIT_ERROR;
	snprintf(path, sizeof(path), "/v1/provinces/%s", argv[optind]);
	rc = http_request(h, "GET", path, NULL, 0, NULL, &r);
	if (rc == -1 || r.status != 200) {
		ex = ctl_http_error(ctl, &r, rc);
		goto done;
	}
	if (raw) {
		fwrite(r.body, 1, r.len, stdout);
		if (r.len > 0 && r.body[r.len - 1] != '\n')
			putchar('\n');
		ex = CTL_EXIT_OK;
		goto done;
	}
	if ((j = json_loadb(r.body, r.len, 0, NULL)) == NULL ||
	    !json_is_object(j)) {
		ctl_warnx(ctl, "GET %s: the answer is not a JSON object", path);
		ex = CTL_EXIT_ERROR;
		goto done;
	}
	print_province(ctl, j);
	ex = CTL_EXIT_OK;
done:
	json_decref(j);
	http_resp_finish(&r);
	http_destroy(h);
	return ex;
}
