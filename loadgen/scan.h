#ifndef LG_SCAN_H
#define LG_SCAN_H

#include <stddef.h>

/* A minimal, allocation-free walk over the top-level members of one JSON object line, for the
 * hot path (token and done events): the loadgen reads a few fields and skips the rest. It checks
 * structure (quotes, nesting, separators), not every literal. Spans borrow the line. */
typedef struct {
    const char *p;                               /* first byte */
    size_t n;
} lg_span_t;

typedef struct {
    const char *cur, *end;
} lg_scan_t;

/* LANES_OK when s[0..n) starts an object (after blanks); LANES_EPROTO otherwise. */
int lg_scan_begin(lg_scan_t *it, const char *s, size_t n);
/* The next member: key without its quotes (escapes left as they are), value as raw text (a string
 * keeps its quotes). 1 for a member, 0 at the closing brace, LANES_EPROTO for bad input. */
int lg_scan_next(lg_scan_t *it, lg_span_t *key, lg_span_t *val);

/* 1 when the span equals the NUL-terminated s. */
int lg_span_eq(lg_span_t sp, const char *s);
/* A number value as long long; LANES_EINVAL when it is not a plain number. */
int lg_span_ll(lg_span_t sp, long long *out);
/* An array of integers: calls fn(arg, i, value) for each; returns the count or LANES_EPROTO. */
int lg_span_ints(lg_span_t sp, void (*fn)(void *arg, int i, long long v), void *arg);

#endif
