/*
 * suggest.c - "did you mean": the nearest of the known words to a
 * misspelt one, for subcommands, options, provinces and lists.
 *
 * The distance is Damerau-Levenshtein in its restricted form (optimal
 * string alignment: insert, delete, substitute, swap two neighbours),
 * case-insensitive, because the typical slips are a doubled or dropped
 * letter, a swapped pair ("pots") and the wrong case ("Madrid" for an id
 * "madrid").  A suggestion is made only when the word is close enough that
 * it is likely what was meant: at most a third of the longer word's
 * length, and at least one edit allowed, so that "28" for "29" does not
 * suggest a different province with confidence it does not have -- ids
 * of two characters get a suggestion only for a swapped pair or a case
 * slip.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "tallyctl.h"

#define WORD_MAX	64		/* longer words are never suggested */

size_t
ctl_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, best;
	/* Three rows: two back for the swap, one back, this one. */
	size_t r0[WORD_MAX + 1], r1[WORD_MAX + 1], r2[WORD_MAX + 1];
	size_t *pp = r0, *p = r1, *c = r2, *t;

	if (la > WORD_MAX || lb > WORD_MAX)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		p[j] = j;
	for (i = 1; i <= la; i++) {
		c[0] = i;
		for (j = 1; j <= lb; j++) {
			int ca = tolower((unsigned char)a[i - 1]);
			int cb = tolower((unsigned char)b[j - 1]);
			size_t cost = ca == cb ? 0 : 1;

			best = p[j] + 1;			/* delete */
			if (c[j - 1] + 1 < best)
				best = c[j - 1] + 1;		/* insert */
			if (p[j - 1] + cost < best)
				best = p[j - 1] + cost;		/* substitute */
			if (i > 1 && j > 1 &&
			    ca == tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) == cb &&
			    pp[j - 2] + 1 < best)
				best = pp[j - 2] + 1;		/* swap */
			c[j] = best;
		}
		t = pp;
		pp = p;
		p = c;
		c = t;
	}
	return p[lb];
}

/* Whether `d` edits make `word` a plausible slip for `cand`. */
static bool
close_enough(const char *word, const char *cand, size_t d)
{
	size_t lw = strlen(word), lc = strlen(cand);
	size_t longer = lw > lc ? lw : lc;
	size_t limit = longer / 3;

	if (d == 0)
		/* Equal but for case (or a name equal to the word): meant. */
		return true;
	if (limit < 1)
		limit = 1;
	/* Two-character ids: only a swap or a case slip (d == 1 with the
	 * same letters), never another id one digit away. */
	if (longer <= 2) {
		return lw == 2 && lc == 2 &&
		    tolower((unsigned char)word[0]) ==
		    tolower((unsigned char)cand[1]) &&
		    tolower((unsigned char)word[1]) ==
		    tolower((unsigned char)cand[0]);
	}
	return d <= limit;
}

void
ctl_suggest_init(struct ctl_suggest *s, const char *word)
{
	s->word = word;
	s->best = NULL;
	s->dist = (size_t)-1;
	s->ties = 0;
}

void
ctl_suggest_add(struct ctl_suggest *s, const char *cand)
{
	size_t d;

	if (cand == NULL || s->word == NULL)
		return;
	d = ctl_distance(s->word, cand);
	if (d == (size_t)-1 || !close_enough(s->word, cand, d))
		return;
	if (d < s->dist) {
		s->best = cand;
		s->dist = d;
		s->ties = 0;
	} else if (d == s->dist && strcasecmp(cand, s->best) != 0)
		/* An id and its short name in another case ("fatah",
		 * "Fatah") are one word, not two candidates. */
		s->ties++;
}

const char *
ctl_suggest_best(const struct ctl_suggest *s)
{
	/*
	 * Two candidates equally near: naming one would be a guess that
	 * looks like knowledge.  A case-only match (distance 0) is never
	 * ambiguous in practice; keep it.
	 */
	if (s->ties > 0 && s->dist > 0)
		return NULL;
	return s->best;
}

int
ctl_getopt(const struct ctl *ctl, int argc, char **argv, const char *shortopts,
    const struct option *longopts)
{
	struct ctl_suggest s;
	const char *arg, *eq;
	char name[WORD_MAX + 1];
	size_t i, n;
	int c;

	/* Our own messages: glibc's say "unrecognized option" and stop.
	 * Restored at once, for the commands that call getopt_long. */
	opterr = 0;
	c = getopt_long(argc, argv, shortopts, longopts, NULL);
	opterr = 1;
	if (c != '?')
		return c;
	arg = optind > 0 && optind <= argc ? argv[optind - 1] : NULL;
	if (optopt != 0 && arg != NULL && strncmp(arg, "--", 2) == 0) {
		/* A known long option: a value missing, or one it takes not. */
		for (i = 0; longopts[i].name != NULL; i++)
			if (longopts[i].val == optopt) {
				ctl_warnx(ctl, "option --%s %s", longopts[i].name,
				    longopts[i].has_arg == no_argument ?
				    "takes no value" : "needs a value");
				return '?';
			}
	}
	if (optopt != 0) {
		const char *o = strchr(shortopts, optopt);

		if (o != NULL && o[1] == ':')
			ctl_warnx(ctl, "option -%c needs a value", optopt);
		else
			ctl_warnx(ctl, "unknown option -%c", optopt);
		return '?';
	}
	if (arg == NULL || strncmp(arg, "--", 2) != 0) {
		ctl_warnx(ctl, "unknown option %s", arg ? arg : "");
		return '?';
	}
	n = (eq = strchr(arg + 2, '=')) != NULL ? (size_t)(eq - (arg + 2)) :
	    strlen(arg + 2);
	if (n > WORD_MAX)
		n = WORD_MAX;
	memcpy(name, arg + 2, n);
	name[n] = '\0';
	ctl_suggest_init(&s, name);
	for (i = 0; longopts[i].name != NULL; i++)
		ctl_suggest_add(&s, longopts[i].name);
	/* "--dry_run" for "--dry-run": underscores are a common slip. */
	for (i = 0; i < n; i++)
		if (name[i] == '_')
			name[i] = '-';
	for (i = 0; ctl_suggest_best(&s) == NULL && longopts[i].name != NULL;
	    i++)
		if (strcmp(name, longopts[i].name) == 0)
			s.best = longopts[i].name, s.dist = 1, s.ties = 0;
	if (ctl_suggest_best(&s) != NULL)
		ctl_warnx(ctl, "unknown option --%.*s; did you mean --%s?",
		    (int)n, arg + 2, ctl_suggest_best(&s));
	else
		ctl_warnx(ctl, "unknown option --%.*s (see %s --help)", (int)n,
		    arg + 2, ctl->prog);
	return '?';
}
