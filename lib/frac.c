/* frac.c - exact fractions from decimal text (see tally/frac.h). */
#include <stddef.h>
#include <stdio.h>

#include <tally/frac.h>

static uint64_t
gcd(uint64_t a, uint64_t b)
{
	while (b != 0) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

int
tally_frac_parse(const char *s, struct tally_frac *out)
{
	uint64_t ip = 0, fp = 0, den = 1;
	size_t idigits = 0, fdigits = 0;
	uint64_t g;

	if (s == NULL)
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		ip = ip * 10 + (uint64_t)(*s - '0');
		if (ip >= TALLY_FRAC_MAX)
			return -1;
		idigits++;
	}
	if (*s == '.') {
		s++;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (++fdigits > TALLY_FRAC_MAX_DIGITS)
				return -1;
			fp = fp * 10 + (uint64_t)(*s - '0');
			den *= 10;
		}
		if (fdigits == 0)
			return -1;	/* "3." is a typo, not a number */
	}
	if (*s != '\0' || idigits == 0)
		return -1;
	/* ip < 10^9 and den <= 10^9: ip * den + fp < 10^18 fits in 64 bits. */
	ip = ip * den + fp;
	g = gcd(ip, den);
	if (g == 0)
		g = 1;
	out->num = ip / g;
	out->den = den / g;
	return 0;
}

int
tally_frac_cmp(struct tally_frac a, struct tally_frac b)
{
	unsigned __int128 l = (unsigned __int128)a.num * b.den;
	unsigned __int128 r = (unsigned __int128)b.num * a.den;

	return (l > r) - (l < r);
}

double
tally_frac_to_double(struct tally_frac f)
{
	return f.den ? (double)f.num / (double)f.den : 0.0;
}

char *
tally_frac_format(struct tally_frac f, char *buf, size_t len)
{
	uint64_t ip, rem;
	size_t n;
	int digits = 0;

	if (len == 0)
		return buf;
	if (f.den == 0) {
		snprintf(buf, len, "0");
		return buf;
	}
	ip = f.num / f.den;
	rem = f.num % f.den;
	n = (size_t)snprintf(buf, len, "%llu", (unsigned long long)ip);
	if (rem != 0 && n + 1 < len) {
		buf[n++] = '.';
		/* Terminates: parsed denominators divide 10^9. */
		while (rem != 0 && n + 1 < len && digits++ < 18) {
			rem *= 10;
			buf[n++] = (char)('0' + rem / f.den);
			rem %= f.den;
		}
		buf[n] = '\0';
	}
	return buf;
}
