/*
 * hex.c - hexadecimal text to bytes (hex.h).
 */
#include <tally/hex.h>

int
tally_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
tally_hex_decode(const char *s, uint8_t *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi = tally_hex_digit((unsigned char)s[2 * i]), lo;

		/* hi first: s may end (NUL) at s[2 * i], never read past */
		if (hi < 0 || (lo = tally_hex_digit((unsigned char)s[2 * i +
		    1])) < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
