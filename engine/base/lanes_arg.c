#include "lanes_arg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lanes_err.h"
#include "lanes_log.h"

/* strto* skip leading blanks and take signs as they like: a number starts with a digit, or a sign
 * or point before one. */
static int starts_number(const char *s) {
    if (*s == '-' || *s == '+') s++;
    if (*s == '.') s++;
    return isdigit((unsigned char)*s);
}

static int bad(const char *flag, const char *s, const char *want) {
    LANES_LOG(LANES_LOG_ERROR, "bad %s '%s': want %s", flag, s, want);
    return LANES_EINVAL;
}

int lanes_arg_i64(const char *flag, const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !starts_number(s) || *end || v < lo || v > hi) {
        char want[96];
        snprintf(want, sizeof want, "an integer in %lld..%lld", lo, hi);
        return bad(flag, s, want);
    }
    *out = v;
    return LANES_OK;
}

int lanes_arg_int(const char *flag, const char *s, long lo, long hi, int *out) {
    long long v;
    int rc = lanes_arg_i64(flag, s, lo, hi, &v);
    if (rc == LANES_OK) *out = (int)v;
    return rc;
}

int lanes_arg_u64(const char *flag, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !isdigit((unsigned char)s[0]) || *end)
        return bad(flag, s, "an integer in 0..18446744073709551615");
    *out = (uint64_t)v;
    return LANES_OK;
}

int lanes_arg_num(const char *flag, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* ERANGE also flags a nonzero value that underflows to 0 (5e-400 is not 0). */
    if (errno || !starts_number(s) || *end || !(v >= lo && v <= hi)) {
        char want[96];
        snprintf(want, sizeof want, "a number in %g..%g", lo, hi);
        return bad(flag, s, want);
    }
    *out = v;
    return LANES_OK;
}
