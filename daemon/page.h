/*
 * page.h - the election-night page (page.c, generated from www/ by
 * www/embed.py at build time).  Read only: any thread.
 */
#ifndef TALLYD_PAGE_H
#define TALLYD_PAGE_H

#include <stddef.h>
#include <stdint.h>

extern const char	 page_html[];	/* page_html_len bytes and a NUL */
extern const size_t	 page_html_len;
extern const uint64_t	 page_html_digest;	/* FNV-1a of the bytes */

#endif
