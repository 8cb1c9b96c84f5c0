/*
 * hex.h - hexadecimal text to bytes, for the places that read it: token
 * hashes ("sha256:<64 hex>"), colours ("#rrggbb").
 */
#ifndef TALLY_HEX_H
#define TALLY_HEX_H

#include <stddef.h>
#include <stdint.h>

/* The value of one hexadecimal digit (either case), or -1. */
int	tally_hex_digit(int c);

/* Decodes exactly 2 * n digits of s (either case) into out[0..n).
 * Returns 0, or -1 (out undefined) at the first character that is not a
 * digit; s may go on after those 2 * n characters. */
int	tally_hex_decode(const char *s, uint8_t *out, size_t n);

#endif
