#ifndef LANES_UTF8_H
#define LANES_UTF8_H

#include <stddef.h>

/* The length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 when s[0] starts none. ASCII gives 1. */
size_t lanes_utf8_seq_len(const unsigned char *s, size_t n);

/* Copies s[0..n) to out with every byte that starts no well-formed sequence replaced by U+FFFD, so
 * the result is valid UTF-8 (what JSON requires). out needs 3 * n + 1 bytes; returns its length and
 * NUL-terminates it. */
size_t lanes_utf8_sanitize(char *out, const char *s, size_t n);

#endif
