/*
 * frac.h - exact non-negative fractions parsed from decimal text.
 *
 * Configuration decimals (a first divisor of 1.7, a threshold of 3 percent)
 * are held as reduced fractions so that no seat ever depends on binary
 * floating point.
 */
#ifndef TALLY_FRAC_H
#define TALLY_FRAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parsed values are below TALLY_FRAC_MAX with at most 9 decimals, so the
 * denominator is at most 10^9 (< 2^30).  The election loader bounds each use
 * further (a first divisor below 3, a percent up to 100), which keeps every
 * cross-multiplication of the seat engine within 128 bits. */
#define TALLY_FRAC_MAX		1000000000ULL
#define TALLY_FRAC_MAX_DIGITS	9

struct tally_frac {
	uint64_t num;
	uint64_t den;		/* > 0; num/den is in lowest terms */
};

/*
 * Parse a plain decimal ("3", "1.7", "0.25"; no sign, no exponent, at most
 * TALLY_FRAC_MAX_DIGITS fractional digits, value below TALLY_FRAC_MAX) into
 * *out.  Returns 0, or -1 when the text is not such a decimal.
 */
int	tally_frac_parse(const char *text, struct tally_frac *out);

/* -1, 0 or 1 as a is less than, equal to or greater than b (exact). */
int	tally_frac_cmp(struct tally_frac a, struct tally_frac b);

/*
 * Write f as an exact decimal ("1.7", "3") into buf; f must come from
 * tally_frac_parse (a denominator dividing a power of ten).  Returns buf.
 */
char	*tally_frac_format(struct tally_frac f, char *buf, size_t len);

/* For display only: never use the result in a decision. */
double	tally_frac_to_double(struct tally_frac f);

#endif
