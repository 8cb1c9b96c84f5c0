/*
 * replay.c - tallyctl replay: a rehearsal election night from a dataset.
 *
 * Every province reports in several growing partial revisions, then its
 * official final count (optionally a wrong "final" followed by a
 * correction), at times drawn from a seeded generator: the same --seed gives
 * the same night.  The night is posted in real time scaled by --speed (0:
 * as fast as the daemon answers).  At the end the daemon's leaderboard is
 * compared with the dataset's official seats.
 *
 * The simulation uses doubles for the partial counts and the clock; they
 * are made-up intermediate numbers.  The final revision is the dataset's
 * exact integers, and the comparison is of integers.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "tallyctl.h"

struct feed {
	double		 t;		/* simulated seconds after the polls close */
	size_t		 ds;		/* its dataset (contest) of the night */
	size_t		 province;	/* index in the dataset */
	uint64_t	 revision;	/* as posted */
	char		*body;		/* JSON text; owned */
	bool		 last;		/* the province's last revision */
	const char	*kind;		/* "partial", "final", "correction" */
};

/* splitmix64: small, good enough, and the same everywhere. */
static uint64_t
rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double
unif(uint64_t *s)
{
	return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int
cmp_feed(const void *a, const void *b)
{
	const struct feed *x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->ds != y->ds)
		return x->ds < y->ds ? -1 : 1;
	if (x->province != y->province)
		return x->province < y->province ? -1 : 1;
	return x->revision < y->revision ? -1 : x->revision > y->revision;
}

struct night {
	struct feed	*feeds;
	size_t		 n, cap;
	size_t		 ds;		/* the dataset being planned */
};

static int
add_feed(struct night *nt, double t, size_t p, uint64_t rev, json_t *body,
    const char *kind)
{
	struct feed *f;

	if (nt->n == nt->cap) {
		size_t ncap = nt->cap ? nt->cap * 2 : 256;
		if ((f = realloc(nt->feeds, ncap * sizeof(*f))) == NULL) {
			json_decref(body);
			return -1;
		}
		nt->feeds = f;
		nt->cap = ncap;
	}
	f = &nt->feeds[nt->n];
	f->t = t;
	f->ds = nt->ds;
	f->province = p;
	f->revision = rev;
	f->last = false;
	f->kind = kind;
	f->body = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (f->body == NULL)
		return -1;
	nt->n++;
	return 0;
}

static json_t *
snapshot(uint64_t rev, const struct ds_province *p, const uint64_t *votes,
    uint64_t blank, uint64_t invalid, uint64_t srep, uint64_t stot,
    const char *status, const char *note)
{
	json_t *o = json_object(), *v = json_object();
	size_t i;

	if (o == NULL || v == NULL) {
		json_decref(o);
		json_decref(v);
		return NULL;
	}
	json_object_set_new(o, "revision", json_integer((json_int_t)rev));
	for (i = 0; i < p->n_lists; i++)
		json_object_set_new(v, p->lists[i].id,
		    json_integer((json_int_t)votes[i]));
	json_object_set_new(o, "votes", v);
	json_object_set_new(o, "blank", json_integer((json_int_t)blank));
	json_object_set_new(o, "invalid", json_integer((json_int_t)invalid));
	json_object_set_new(o, "stations", json_pack("{sIsI}", "reporting",
	    (json_int_t)srep, "total", (json_int_t)stot));
	json_object_set_new(o, "status", json_string(status));
	if (note != NULL)
		json_object_set_new(o, "note", json_string(note));
	return o;
}

/*
 * One province's night: 2 to 5 partial counts that grow towards the final
 * one (each list at its own pace, as urban and rural stations report at
 * different times, converging on the final figures), then the official
 * count; with corrections, one province in five first reports a final
 * count with one list 5 % too high and corrects it later.
 */
static int
plan_province(struct night *nt, const struct ds_province *p, size_t pi,
    uint64_t base, uint64_t seed, bool corrections)
{
	uint64_t s = seed * 0x100000001b3ULL + pi + 1, *cur = NULL, *prev = NULL;
	uint64_t total = p->blank + p->invalid, stot, srep, prep = 0;
	uint64_t blank = 0, invalid = 0, rev = base;
	double *bias = NULL, frac[5], t0, t1, tf;
	size_t k, j, i, wrong = SIZE_MAX;
	char note[160];
	int rc = -1;

	rnd(&s);
	cur = calloc(p->n_lists, sizeof(*cur));
	prev = calloc(p->n_lists, sizeof(*prev));
	bias = calloc(p->n_lists, sizeof(*bias));
	if (cur == NULL || prev == NULL || bias == NULL)
		goto done;
	for (i = 0; i < p->n_lists; i++) {
		total += p->lists[i].votes;
		bias[i] = 0.8 + 0.4 * unif(&s);
	}
	stot = total / 400 + 1;
	k = 2 + (size_t)(rnd(&s) % 4);
	t0 = 600 + 2400 * unif(&s);
	tf = t0 + 2400 + 7200 * unif(&s);
	for (j = 0; j < k; j++)
		frac[j] = 0.03 + 0.92 * unif(&s);
	qsort(frac, k, sizeof(frac[0]), cmp_double);
	for (j = 0; j < k; j++) {
		double f = frac[j];

		t1 = j == 0 ? t0 : t0 + (tf - t0) * 0.95 * f;
		for (i = 0; i < p->n_lists; i++) {
			double b = 1 + (bias[i] - 1) * (1 - f);
			uint64_t v = (uint64_t)floor((double)p->lists[i].votes *
			    f * b);
			if (v > p->lists[i].votes)
				v = p->lists[i].votes;
			cur[i] = v < prev[i] ? prev[i] : v;
			prev[i] = cur[i];
		}
		blank = (uint64_t)floor((double)p->blank * f) > blank ?
		    (uint64_t)floor((double)p->blank * f) : blank;
		invalid = (uint64_t)floor((double)p->invalid * f) > invalid ?
		    (uint64_t)floor((double)p->invalid * f) : invalid;
		srep = (uint64_t)floor((double)stot * f);
		if (srep >= stot)
			srep = stot - 1;
		if (srep < prep)
			srep = prep;
		prep = srep;
		rev++;
		if (add_feed(nt, t1, pi, rev, snapshot(rev, p, cur, blank,
		    invalid, srep, stot, "partial", NULL), "partial") == -1)
			goto done;
	}
	for (i = 0; i < p->n_lists; i++)
		cur[i] = p->lists[i].votes;
	if (corrections && rnd(&s) % 5 == 0) {
		for (i = 0; i < p->n_lists; i++)
			if (cur[i] >= 100 && (wrong == SIZE_MAX ||
			    rnd(&s) % 3 == 0))
				wrong = i;
	}
	if (wrong != SIZE_MAX) {
		uint64_t delta = cur[wrong] / 20 + 1;

		cur[wrong] += delta;
		rev++;
		if (add_feed(nt, tf, pi, rev, snapshot(rev, p, cur, p->blank,
		    p->invalid, stot, stot, "final", NULL), "final") == -1)
			goto done;
		cur[wrong] -= delta;
		snprintf(note, sizeof(note), "correction: %.64s had %llu votes "
		    "too many (a transcription error)", p->lists[wrong].id,
		    (unsigned long long)delta);
		rev++;
		if (add_feed(nt, tf + 600 + 3000 * unif(&s), pi, rev,
		    snapshot(rev, p, cur, p->blank, p->invalid, stot, stot,
		    "final", note), "correction") == -1)
			goto done;
	} else if (add_feed(nt, tf, pi, rev + 1, snapshot(rev + 1, p, cur,
	    p->blank, p->invalid, stot, stot, "final", NULL), "final") == -1)
		goto done;
	rc = 0;
done:
	free(cur);
	free(prev);
	free(bias);
	return rc;
}

static void
replay_usage(FILE *f)
{
	fprintf(f,
	    "usage: tallyctl replay [--speed X] [--seed N] [--corrections] DATASET_DIR...\n"
	    "\n"
	    "Rehearses an election night on a running tallyd (started with the same\n"
	    "election, e.g. one written by tallyctl import): each province posts\n"
	    "growing partial counts in a seeded, realistic order, then its official\n"
	    "count.  At the end the leaderboard is compared with the official seats.\n"
	    "Several datasets make one night of several contests, interleaved: each\n"
	    "posts to the contest named like its directory (/v1/contests/ID/).\n"
	    "\n"
	    "  -s, --speed X       X times real time (default 1; 600: a night in\n"
	    "                      about 20 s; 0: as fast as tallyd answers)\n"
	    "      --seed N        the night's random order (default 1)\n"
	    "  -c, --corrections   some provinces correct their final count\n"
	    "      --url, --token-file, --retry, -v as for post\n"
	    "\n"
	    "exit: 0 official seats matched, 3 feeds rejected, 6 unauthorised,\n"
	    "      7 unavailable, 9 the seats differ from the official ones\n");
}

/* Progress on a terminal: one line redrawn; otherwise nothing here. */
static void
progress(bool tty, size_t final, size_t total, size_t posted, size_t nfeeds,
    size_t rejected, double eta)
{
	char bar[31];
	size_t i, w = total ? final * 30 / total : 0;

	if (!tty)
		return;
	for (i = 0; i < 30; i++)
		bar[i] = i < w ? '#' : '-';
	bar[30] = '\0';
	fprintf(stderr, "\r\033[K[%s] %zu/%zu final  %zu/%zu feeds  %zu "
	    "rejected  ETA %d:%02d", bar, final, total, posted, nfeeds, rejected,
	    (int)(eta / 60), (int)fmod(eta, 60));
	fflush(stderr);
}

/* Add n lists' official seats to want, by coalition (l2c: list -> it). */
static void
want_seats(json_t *want, json_t *l2c, const struct ds_list *lists, size_t n)
{
	size_t j;

	for (j = 0; j < n; j++) {
		const char *co = json_string_value(json_object_get(l2c,
		    lists[j].id));
		if (lists[j].seats == 0 || co == NULL)
			continue;
		json_object_set_new(want, co, json_integer(json_integer_value(
		    json_object_get(want, co)) + lists[j].seats));
	}
}

/*
 * The official national seats by coalition (via the daemon's own election
 * definition, so aliases count where tallyd counts them), compared with the
 * leaderboard.  Returns 0 on a match, 1 on a mismatch, -1 on failure.
 */
static int
compare(const struct ctl *ctl, struct http *h, const struct dataset *d,
    json_t *election)
{
	struct http_resp r = { .retry_after = -1 };
	json_t *l2c = json_object(), *want = json_object(), *lb = NULL, *c, *v;
	json_t *cs = json_object_get(election, "coalitions"), *a;
	const char *key;
	size_t i, k, differ = 0, final = 0, ptotal = 0;
	int rc = -1;

	json_array_foreach(cs, i, c) {
		const char *id = json_string_value(json_object_get(c, "id"));
		if (id == NULL)
			continue;
		json_object_set_new(l2c, id, json_string(id));
		json_array_foreach(json_object_get(c, "aliases"), k, a)
			if (json_is_string(a))
				json_object_set_new(l2c, json_string_value(a),
				    json_string(id));
	}
	/* The national seats when the dataset gives them for some
	 * provinces only; else the provinces' sum. */
	if (d->n_national > 0)
		want_seats(want, l2c, d->national, d->n_national);
	else
		for (i = 0; i < d->n_provinces; i++)
			want_seats(want, l2c, d->provinces[i].lists,
			    d->provinces[i].n_lists);
	if (http_request(h, "GET", "/v1/leaderboard", NULL, 0, NULL, &r) != 0 ||
	    r.status != 200 || (lb = json_loadb(r.body, r.len, 0, NULL)) == NULL) {
		ctl_http_error(ctl, &r, -1);
		goto done;
	}
	final = (size_t)json_integer_value(json_object_get(json_object_get(lb,
	    "provinces"), "final"));
	ptotal = (size_t)json_integer_value(json_object_get(json_object_get(lb,
	    "provinces"), "total"));
	json_array_foreach(json_object_get(lb, "coalitions"), i, c) {
		const char *id = json_string_value(json_object_get(c, "id"));
		json_int_t got = json_integer_value(json_object_get(c, "seats"));
		json_int_t exp = json_integer_value(json_object_get(want,
		    id ? id : ""));
		if (id != NULL && got != exp) {
			printf("  %s: %lld seats here, %lld official\n", id,
			    (long long)got, (long long)exp);
			differ++;
		}
		if (id != NULL)
			json_object_del(want, id);
	}
	json_object_foreach(want, key, v) {
		printf("  %s: not on the leaderboard, %lld official\n", key,
		    (long long)json_integer_value(v));
		differ++;
	}
	if (differ == 0) {
		printf("official seats: match (%llu seats, %zu/%zu provinces "
		    "final):", (unsigned long long)d->seats_total, final, ptotal);
		json_array_foreach(json_object_get(lb, "coalitions"), i, c) {
			json_int_t s = json_integer_value(json_object_get(c,
			    "seats"));
			if (s > 0)
				printf(" %s %lld", json_string_value(
				    json_object_get(c, "short")) ?: "?",
				    (long long)s);
		}
		printf("\n");
	} else
		printf("official seats: MISMATCH in %zu coalitions\n", differ);
	rc = differ == 0 ? 0 : 1;
done:
	http_resp_finish(&r);
	json_decref(lb);
	json_decref(l2c);
	json_decref(want);
	return rc;
}

/* One dataset of the night: its contest on the daemon and its plan. */
struct rset {
	struct dataset	 d;
	struct http	*h;		/* its contest's routes */
	json_t		*election;
	uint64_t	*base;		/* per province: the revision now */
};

#define REPLAY_MAX	16	/* datasets in one night */

/*
 * Load dataset `dir` into rs and ask the daemon (its contest: `contest`,
 * or NULL for --contest / the first) where each province stands.  A
 * tallyctl exit code other than CTL_EXIT_OK on failure (told).
 */
static int
rset_load(struct ctl *ctl, struct rset *rs, const char *dir,
    const char *contest)
{
	struct http_resp r = { .retry_after = -1 };
	const char *keep = ctl->contest;
	json_t *provs = NULL, *p;
	char err[1024];
	size_t i, k;
	int rc, ex = CTL_EXIT_ERROR;

	if (dataset_load(&rs->d, dir, true, err, sizeof(err)) == -1) {
		ctl_warnx(ctl, "%s", err);
		return CTL_EXIT_INVALID;
	}
	if (contest != NULL)
		ctl->contest = contest;
	rs->h = http_create(ctl);
	ctl->contest = keep;
	if (rs->h == NULL)
		return CTL_EXIT_ERROR;
	/* The daemon's definition and where each province stands now. */
	rc = http_request(rs->h, "GET", "/v1/election", NULL, 0, NULL, &r);
	if (rc != 0 || r.status != 200 ||
	    (rs->election = json_loadb(r.body, r.len, 0, NULL)) == NULL) {
		ex = ctl_http_error(ctl, &r, rc);
		goto done;
	}
	rc = http_request(rs->h, "GET", "/v1/provinces", NULL, 0, NULL, &r);
	if (rc != 0 || r.status != 200 ||
	    (provs = json_loadb(r.body, r.len, 0, NULL)) == NULL) {
		ex = ctl_http_error(ctl, &r, rc);
		goto done;
	}
	if ((rs->base = calloc(rs->d.n_provinces, sizeof(*rs->base))) == NULL)
		goto done;
	for (i = 0; i < rs->d.n_provinces; i++) {
		bool found = false;

		json_array_foreach(json_object_get(provs, "provinces"), k, p)
			if (strcmp(json_string_value(json_object_get(p, "id")) ?:
			    "", rs->d.provinces[i].id) == 0) {
				rs->base[i] = (uint64_t)json_integer_value(
				    json_object_get(p, "revision"));
				found = true;
			}
		if (!found) {
			ctl_warnx(ctl, "province %s of %s is not in the daemon's "
			    "election %s: start tallyd with this dataset's "
			    "definition (tallyctl import)", rs->d.provinces[i].id,
			    rs->d.id, json_string_value(json_object_get(
			    rs->election, "id")) ?: "?");
			ex = CTL_EXIT_INVALID;
			goto done;
		}
	}
	ex = CTL_EXIT_OK;
done:
	json_decref(provs);
	http_resp_finish(&r);
	return ex;
}

static void
rset_finish(struct rset *rs)
{
	free(rs->base);
	json_decref(rs->election);
	http_destroy(rs->h);
	dataset_finish(&rs->d);
}

int
cmd_replay(struct ctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "speed", required_argument, NULL, 's' },
		{ "seed", required_argument, NULL, 'S' },
		{ "corrections", no_argument, NULL, 'c' },
		CTL_COMMON_OPTIONS,
		{ NULL, 0, NULL, 0 }
	};
	struct http_resp r = { .retry_after = -1 };
	struct night nt = { NULL, 0, 0, 0 };
	struct rset sets[REPLAY_MAX];
	uint64_t seed = 1;
	size_t i, k, ns = 0, applied = 0, dup = 0, rejected = 0, finals = 0;
	size_t retries = 0, provinces = 0;
	double speed = 1, start, wait, now, last_t;
	bool corrections = false, tty = isatty(STDERR_FILENO);
	char path[256], *end, who[96];
	int c, ex = CTL_EXIT_ERROR, rc, x;

	memset(sets, 0, sizeof(sets));
	optind = 0;
	while ((c = ctl_getopt(ctl, argc, argv, "s:cvh", opts)) != -1) {
		switch (c) {
		case 's':
			speed = strtod(optarg, &end);
			if (*end != '\0' || end == optarg || !(speed >= 0 &&
			    speed <= 1e7)) {
				ctl_warnx(ctl, "--speed: a number from 0 (no "
				    "waiting) to 10000000");
				return CTL_EXIT_USAGE;
			}
			break;
		case 'S':
			if (!ctl_parse_u64(optarg, UINT64_MAX, &seed)) {
				ctl_warnx(ctl, "--seed: a whole number");
				return CTL_EXIT_USAGE;
			}
			break;
		case 'c':
			corrections = true;
			break;
		case 'h':
			replay_usage(stdout);
			return CTL_EXIT_OK;
		default:
			if ((x = ctl_common_option(ctl, c, optarg)) != 0) {
				replay_usage(stderr);
				return x;
			}
		}
	}
	if (optind >= argc || argc - optind > REPLAY_MAX) {
		if (argc - optind > REPLAY_MAX)
			ctl_warnx(ctl, "at most %d datasets in one night",
			    REPLAY_MAX);
		replay_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	if (argc - optind > 1 && ctl->contest != NULL) {
		ctl_warnx(ctl, "--contest names one contest; with several "
		    "datasets each posts to the contest named like its "
		    "directory");
		return CTL_EXIT_USAGE;
	}
	/*
	 * One dataset: the contest of --contest, or the first.  Several: the
	 * contest named like each directory (as tallyctl import names the
	 * definition), so that two nights are rehearsed at once.
	 */
	for (ns = 0; ns < (size_t)(argc - optind); ns++) {
		const char *dir = argv[optind + ns], *base;
		char id[128];

		if (argc - optind > 1) {
			size_t len = strlen(dir);
			while (len > 1 && dir[len - 1] == '/')
				len--;
			for (base = dir + len; base > dir && base[-1] != '/';
			    base--)
				;
			snprintf(id, sizeof(id), "%.*s", (int)(dir + len - base),
			    base);
		}
		if ((ex = rset_load(ctl, &sets[ns], dir, argc - optind > 1 ?
		    id : NULL)) != CTL_EXIT_OK) {
			ns++;
			goto done;
		}
		provinces += sets[ns].d.n_provinces;
	}
	ex = CTL_EXIT_ERROR;
	for (k = 0; k < ns; k++) {
		nt.ds = k;
		for (i = 0; i < sets[k].d.n_provinces; i++)
			if (plan_province(&nt, &sets[k].d.provinces[i], i,
			    sets[k].base[i], seed + k, corrections) == -1) {
				ctl_warnx(ctl, "out of memory");
				goto done;
			}
	}
	qsort(nt.feeds, nt.n, sizeof(nt.feeds[0]), cmp_feed);
	/* After sorting, the last feed of each province is its final word. */
	for (i = nt.n; i-- > 0;)
		if (sets[nt.feeds[i].ds].base[nt.feeds[i].province] !=
		    UINT64_MAX) {
			nt.feeds[i].last = true;
			sets[nt.feeds[i].ds].base[nt.feeds[i].province] =
			    UINT64_MAX;
		}
	last_t = nt.n ? nt.feeds[nt.n - 1].t : 0;
	printf("replay");
	for (k = 0; k < ns; k++)
		printf("%s %s: %zu provinces", k > 0 ? ";" : "", sets[k].d.id,
		    sets[k].d.n_provinces);
	printf(", %zu feeds over %d:%02d simulated, speed %g, seed %llu%s\n",
	    nt.n, (int)(last_t / 3600), (int)fmod(last_t / 60, 60), speed,
	    (unsigned long long)seed, corrections ? ", with corrections" : "");
	fflush(stdout);
	start = ctl_now();
	for (i = 0; i < nt.n; i++) {
		struct feed *f = &nt.feeds[i];
		struct rset *rs = &sets[f->ds];
		const char *pid = rs->d.provinces[f->province].id;

		if (speed > 0) {
			for (;;) {
				now = ctl_now();
				wait = start + f->t / speed - now;
				if (wait <= 0)
					break;
				progress(tty, finals, provinces, i, nt.n,
				    rejected, (last_t - f->t) / speed + wait);
				ctl_sleep(wait < 0.25 ? wait : 0.25);
			}
		}
		/* Several contests: each line says whose province it is. */
		snprintf(who, sizeof(who), "%s%s%s", ns > 1 ? rs->d.id : "",
		    ns > 1 ? "/" : "", pid);
		snprintf(path, sizeof(path), "/v1/provinces/%s/results", pid);
		rc = http_request(rs->h, "POST", path, f->body, strlen(f->body),
		    NULL, &r);
		retries += http_retries(rs->h);
		if (tty)
			fprintf(stderr, "\r\033[K");
		if (rc == 0 && (r.status == 201 || r.status == 200)) {
			if (r.status == 201)
				applied++;
			else
				dup++;
			if (f->last)
				finals++;
			if (!tty)
				printf("t+%d:%02d:%02d %s revision %llu %s: %s\n",
				    (int)(f->t / 3600), (int)fmod(f->t / 60, 60),
				    (int)fmod(f->t, 60), who,
				    (unsigned long long)f->revision, f->kind,
				    r.status == 201 ? "applied" : "duplicate");
			progress(tty, finals, provinces, i + 1, nt.n,
			    rejected, speed > 0 ? (last_t - f->t) / speed : 0);
			continue;
		}
		x = ctl_exit_for(&r, rc);
		fflush(stdout);
		ctl_warnx(ctl, "%s revision %llu:", who,
		    (unsigned long long)f->revision);
		ctl_http_error(ctl, &r, rc);
		if (x == CTL_EXIT_UNAUTHORIZED || x == CTL_EXIT_UNAVAILABLE ||
		    x == CTL_EXIT_UNSUPPORTED || x == CTL_EXIT_ERROR) {
			ctl_warnx(ctl, "stopped after %zu of %zu feeds", i,
			    nt.n);
			ex = x;
			goto done;
		}
		rejected++;
	}
	if (tty)
		fprintf(stderr, "\r\033[K");
	now = ctl_now() - start;
	printf("posted %zu feeds in %.1f s (%.0f/s): %zu applied, %zu "
	    "duplicate, %zu rejected, %zu retries\n", nt.n, now,
	    now > 0 ? (double)nt.n / now : 0.0, applied, dup, rejected,
	    retries);
	/* Each contest against its official seats; the worst answer wins. */
	rc = 0;
	for (k = 0; k < ns; k++) {
		int one;
		if (ns > 1)
			printf("%s: ", sets[k].d.id);
		one = compare(ctl, sets[k].h, &sets[k].d, sets[k].election);
		if (one == -1 || (one == 1 && rc == 0))
			rc = one;
	}
	ex = rc == -1 ? CTL_EXIT_UNAVAILABLE : rc == 1 ? CTL_EXIT_MISMATCH :
	    rejected > 0 ? CTL_EXIT_INVALID : CTL_EXIT_OK;
done:
	for (i = 0; i < nt.n; i++)
		free(nt.feeds[i].body);
	free(nt.feeds);
	for (k = 0; k < ns; k++)
		rset_finish(&sets[k]);
	http_resp_finish(&r);
	return ex;
}
