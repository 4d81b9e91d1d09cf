#ifndef LANES_ARG_H
#define LANES_ARG_H

#include <stdint.h>

/* Strict command-line numbers: all of s must be one number in [lo, hi] (no trailing bytes, no
 * overflow, "abc" is not 0 as atoi says). Otherwise one error line "bad FLAG 'S': want ..." is
 * logged and LANES_EINVAL returned, *out untouched. */
int lanes_arg_int(const char *flag, const char *s, long lo, long hi, int *out);
int lanes_arg_i64(const char *flag, const char *s, long long lo, long long hi, long long *out);
int lanes_arg_u64(const char *flag, const char *s, uint64_t *out);   /* 0..2^64-1 */
int lanes_arg_num(const char *flag, const char *s, double lo, double hi, double *out);

#endif
