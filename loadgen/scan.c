#include "scan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
    return p;
}

/* p at an opening quote: returns the byte after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end) {
    for (p++; p < end; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

/* p at the first byte of a value: returns the byte after it, or NULL. */
static const char *skip_value(const char *p, const char *end) {
    if (p >= end) return NULL;
    if (*p == '"') return skip_string(p, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            char c = *p;
            if (c == '"') {
                if (!(p = skip_string(p, end))) return NULL;
                continue;
            }
            if (c == '{' || c == '[') depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0) return p + 1;
            }
            p++;
        }
        return NULL;
    }
    const char *q = p;
    while (q < end && *q != ',' && *q != '}' && *q != ']' && *q != ' ' && *q != '\t' && *q != '\r' &&
           *q != '\n')
        q++;
    return q > p ? q : NULL;
}

int lg_scan_begin(lg_scan_t *it, const char *s, size_t n) {
    const char *end = s + n, *p = skip_ws(s, end);
    if (p >= end || *p != '{') return LANES_EPROTO;
    it->cur = p + 1;
    it->end = end;
    return LANES_OK;
}

int lg_scan_next(lg_scan_t *it, lg_span_t *key, lg_span_t *val) {
    const char *p = skip_ws(it->cur, it->end), *end = it->end;
    if (p < end && *p == ',') p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        it->cur = p + 1;
        return 0;
    }
    if (p >= end || *p != '"') return LANES_EPROTO;
    const char *k = p;
    if (!(p = skip_string(p, end))) return LANES_EPROTO;
    key->p = k + 1;
    key->n = (size_t)(p - k - 2);
    p = skip_ws(p, end);
    if (p >= end || *p != ':') return LANES_EPROTO;
    p = skip_ws(p + 1, end);
    const char *v = p;
    if (!(p = skip_value(p, end))) return LANES_EPROTO;
    val->p = v;
    val->n = (size_t)(p - v);
    p = skip_ws(p, end);
    if (p >= end || (*p != ',' && *p != '}')) return LANES_EPROTO;
    it->cur = p;
    return 1;
}

int lg_span_eq(lg_span_t sp, const char *s) {
    size_t n = strlen(s);
    return sp.n == n && memcmp(sp.p, s, n) == 0;
}

int lg_span_ll(lg_span_t sp, long long *out) {
    char buf[32];
    if (sp.n == 0 || sp.n >= sizeof buf) return LANES_EINVAL;
    memcpy(buf, sp.p, sp.n);
    buf[sp.n] = '\0';
    char *e;
    errno = 0;
    long long v = strtoll(buf, &e, 10);
    if (errno || e == buf) return LANES_EINVAL;
    if (*e == '.' || *e == 'e' || *e == 'E') {  /* 7.0 or 1e3: take the double */
        double d = strtod(buf, &e);
        if (*e) return LANES_EINVAL;
        v = (long long)d;
    } else if (*e) {
        return LANES_EINVAL;
    }
    *out = v;
    return LANES_OK;
}

int lg_span_ints(lg_span_t sp, void (*fn)(void *arg, int i, long long v), void *arg) {
    const char *p = sp.p, *end = sp.p + sp.n;
    if (sp.n < 2 || *p != '[' || end[-1] != ']') return LANES_EPROTO;
    end--;
    p = skip_ws(p + 1, end);
    int i = 0;
    while (p < end) {
        int neg = 0;
        if (*p == '-') {
            neg = 1;
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') return LANES_EPROTO;
        long long v = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (v > 100000000000000LL) return LANES_EPROTO;   /* no token id is this big */
            v = v * 10 + (*p++ - '0');
        }
        fn(arg, i++, neg ? -v : v);
        p = skip_ws(p, end);
        if (p < end) {
            if (*p != ',') return LANES_EPROTO;
            p = skip_ws(p + 1, end);
            if (p >= end) return LANES_EPROTO;   /* trailing comma */
        }
    }
    return i;
}
