#include "proto.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_utf8.h"

/* JSON lines are read by one strict RFC 8259 scanner over the raw bytes. Not cJSON: it keeps no
 * source positions (ids are echoed as sent), ends strings at \u0000, and accepts raw control bytes
 * and numbers such as 01 or 1. that a reply must not echo. */

#define MAX_DEPTH 1000      /* nesting, as cJSON's CJSON_NESTING_LIMIT allowed before */

typedef struct { const char *p; size_t n; } span_t;

/* The members the protocol reads; the first occurrence counts, as in cJSON_GetObjectItem. */
enum {
    F_ID, F_OP, F_PROMPT, F_MAX_TOKENS, F_TEMPERATURE, F_TOP_K, F_TOP_P, F_SEED, F_STOP,
    F_IGNORE_EOS, F_LOGPROBS, F_COUNT
};
static const char *const field_name[F_COUNT] = {
    "id", "op", "prompt", "max_tokens", "temperature", "top_k", "top_p", "seed", "stop",
    "ignore_eos", "logprobs",
};
static const char *const op_name[] = {
    [IO_OP_GENERATE] = "generate", [IO_OP_CANCEL] = "cancel", [IO_OP_STATS] = "stats",
    [IO_OP_HEALTH] = "health",
};

typedef struct {
    const char *end;
    const char *why;        /* the first error */
    span_t f[F_COUNT];      /* raw value of each known top-level member, p == NULL if absent */
} scan_t;

static const char *bad(scan_t *s, const char *why) {
    s->why = why;
    return NULL;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const char *skip_digits(const char *p, const char *end) {
    while (p < end && is_digit(*p)) p++;
    return p;
}

/* The code unit of the four hex digits at p, or -1. */
static long hex4(const char *p, const char *end) {
    if (end - p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)p[i] | 0x20;     /* lower case letters; digits keep their value */
        if (is_digit(p[i])) v = v << 4 | (p[i] - '0');
        else if (c >= 'a' && c <= 'f') v = v << 4 | (c - 'a' + 10);
        else return -1;
    }
    return v;
}

static int is_high_surrogate(long u) { return u >= 0xd800 && u <= 0xdbff; }
static int is_low_surrogate(long u) { return u >= 0xdc00 && u <= 0xdfff; }

/* p is at the opening quote. Strings are where a reply echoes bytes (ids), so they must be UTF-8
 * with no raw control byte, and every \u escape must name a Unicode scalar value. */
static const char *scan_string(scan_t *s, const char *p) {
    static const char unpaired[] = "unpaired UTF-16 surrogate in a \\u escape";
    for (p++; p < s->end;) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return bad(s, "raw control character in a JSON string (escape it)");
        if (c >= 0x80) {
            size_t k = lanes_utf8_seq_len((const unsigned char *)p, (size_t)(s->end - p));
            if (k == 0) return bad(s, "JSON text is not valid UTF-8");
            p += k;
        } else if (c != '\\') {
            p++;
        } else if (s->end - p >= 2 && memchr("\"\\/bfnrt", p[1], 8) != NULL) {
            p += 2;
        } else if (s->end - p >= 2 && p[1] == 'u') {
            long u = hex4(p + 2, s->end);
            if (u < 0) return bad(s, "invalid \\u escape in a JSON string");
            p += 6;
            if (is_high_surrogate(u)) {
                long lo = s->end - p >= 2 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2, s->end) : -1;
                if (!is_low_surrogate(lo)) return bad(s, unpaired);
                p += 6;
            } else if (is_low_surrogate(u)) {
                return bad(s, unpaired);
            }
        } else {
            return bad(s, "invalid escape in a JSON string");
        }
    }
    return bad(s, "unterminated JSON string");
}

static const char *scan_number(scan_t *s, const char *p) {
    const char *end = s->end, *q;
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0') p++;
    else if ((q = skip_digits(p, end)) > p) p = q;
    else return bad(s, "invalid JSON value");
    if (p < end && *p == '.') {
        if ((q = skip_digits(p + 1, end)) == p + 1) return bad(s, "invalid JSON number");
        p = q;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if ((q = skip_digits(p, end)) == p) return bad(s, "invalid JSON number");
        p = q;
    }
    return p;
}

static const char *scan_literal(scan_t *s, const char *p, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - p) < n || memcmp(p, word, n) != 0) return bad(s, "invalid JSON value");
    return p + n;
}

static int span_is(const char *p, size_t n, const char *word) {
    return strlen(word) == n && memcmp(p, word, n) == 0;
}

static size_t put_utf8(char *out, unsigned long u) {
    if (u < 0x80) {
        out[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        out[0] = (char)(0xc0 | u >> 6);
        out[1] = (char)(0x80 | (u & 0x3f));
        return 2;
    }
    if (u < 0x10000) {
        out[0] = (char)(0xe0 | u >> 12);
        out[1] = (char)(0x80 | (u >> 6 & 0x3f));
        out[2] = (char)(0x80 | (u & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | u >> 18);
    out[1] = (char)(0x80 | (u >> 12 & 0x3f));
    out[2] = (char)(0x80 | (u >> 6 & 0x3f));
    out[3] = (char)(0x80 | (u & 0x3f));
    return 4;
}

/* Decodes the body p[0..n) of a string scan_string accepted into out[0..cap); returns its length,
 * or cap + 1 when it does not fit. Never longer than n: no escape is shorter than what it names. */
static size_t str_decode(const char *p, size_t n, char *out, size_t cap) {
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        char b[4];
        size_t k = 1;
        if (p[i] != '\\') {
            b[0] = p[i++];
        } else if (p[i + 1] != 'u') {
            char e = p[i + 1];
            b[0] = e == 'b' ? '\b' : e == 'f' ? '\f' : e == 'n' ? '\n' : e == 'r' ? '\r'
                 : e == 't' ? '\t' : e;
            i += 2;
        } else {
            unsigned long u = (unsigned long)hex4(p + i + 2, p + n);
            i += 6;
            if (is_high_surrogate((long)u)) {
                unsigned long lo = (unsigned long)hex4(p + i + 2, p + n);
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                i += 6;
            }
            k = put_utf8(b, u);
        }
        if (len + k > cap) return cap + 1;
        memcpy(out + len, b, k);
        len += k;
    }
    return len;
}

/* Remembers the first occurrence of each member the protocol reads. The key is compared decoded,
 * as cJSON did ("\u0069d" is "id"), but with its length ("id\u0000" is not). */
static void record(scan_t *s, span_t key, span_t val) {
    char name[16];
    size_t n = str_decode(key.p, key.n, name, sizeof name);
    for (int i = 0; i < F_COUNT; i++) {
        if (s->f[i].p == NULL && n <= sizeof name && span_is(name, n, field_name[i])) {
            s->f[i] = val;
            return;
        }
    }
}

static const char *scan_value(scan_t *s, const char *p, int depth);

/* p is at '{' or '[' of a container at nesting level depth (the line's object is 1). */
static const char *scan_container(scan_t *s, const char *p, int depth) {
    if (depth > MAX_DEPTH) return bad(s, "JSON nested deeper than 1000 levels");
    int obj = *p == '{';
    char close = obj ? '}' : ']';
    p = skip_ws(p + 1, s->end);
    if (p < s->end && *p == close) return p + 1;
    for (;;) {
        span_t key = {NULL, 0};
        if (obj) {
            if (p >= s->end || *p != '"') return bad(s, "invalid JSON: expected a member name");
            const char *k = p;
            if ((p = scan_string(s, p)) == NULL) return NULL;
            key = (span_t){k + 1, (size_t)(p - k) - 2};
            p = skip_ws(p, s->end);
            if (p >= s->end || *p != ':') return bad(s, "invalid JSON: expected ':'");
            p = skip_ws(p + 1, s->end);
        }
        const char *v = p;
        if ((p = scan_value(s, p, depth)) == NULL) return NULL;
        if (obj && depth == 1) record(s, key, (span_t){v, (size_t)(p - v)});
        p = skip_ws(p, s->end);
        if (p < s->end && *p == ',') {
            p = skip_ws(p + 1, s->end);
        } else if (p < s->end && *p == close) {
            return p + 1;
        } else {
            return bad(s, obj ? "invalid JSON: expected ',' or '}'"
                              : "invalid JSON: expected ',' or ']'");
        }
    }
}

static const char *scan_value(scan_t *s, const char *p, int depth) {
    if (p >= s->end) return bad(s, "invalid JSON: unexpected end of line");
    switch (*p) {
    case '"': return scan_string(s, p);
    case '{':
    case '[': return scan_container(s, p, depth + 1);
    case 't': return scan_literal(s, p, "true");
    case 'f': return scan_literal(s, p, "false");
    case 'n': return scan_literal(s, p, "null");
    default: return scan_number(s, p);
    }
}

/* ---- fields ---------------------------------------------------------------------------------- */

void io_msg_fini(io_msg_t *msg) {
    free(msg->id);
    free(msg->text_);
    for (int i = 0; i < msg->n_stop; i++) free(msg->stop[i]);
    memset(msg, 0, sizeof *msg);
}

static int fail(io_msg_t *msg, int rc, const char *why) {
    msg->err_msg = why;
    return rc;
}

static int is_null(span_t v) { return v.p == NULL || span_is(v.p, v.n, "null"); }
static int is_number(span_t v) { return v.p[0] == '-' || is_digit(v.p[0]); }

/* A number member: 0 when absent or null, 1 with its value, -1 when it is not a number. A nonzero
 * number that underflows a double reads as the smallest one of its sign, never as zero. */
static int get_number(span_t v, double *out) {
    if (is_null(v)) return 0;
    if (!is_number(v)) return -1;
    char *end;
    errno = 0;
    double d = strtod(v.p, &end);   /* the server never calls setlocale: '.' is the decimal point */
    assert(end == v.p + v.n);       /* the scanner checked the grammar; what follows is no digit */
    if (d == 0 && errno == ERANGE) d = copysign(DBL_TRUE_MIN, d);
    *out = d;
    return 1;
}

/* A number member in [lo, hi]: 0 absent, 1 set, -1 wrong type or out of range. */
static int get_range(span_t v, double lo, double hi, double *out) {
    int r = get_number(v, out);
    if (r > 0 && !(isfinite(*out) && *out >= lo && *out <= hi)) return -1;
    return r;
}

static int get_int(span_t v, double lo, double hi, double *out) {
    int r = get_range(v, lo, hi, out);
    if (r > 0 && *out != floor(*out)) return -1;
    return r;
}

/* The seed, exactly: a plain digit string is read as a 64-bit integer (a double would round
 * 2^53 + 1 to 2^53, so two seeds would give one stream); other integral forms (7.0, 7e3) go
 * through the double path and must be below 2^53. */
static int get_seed(span_t v, uint64_t *out) {
    if (is_null(v)) return 0;
    size_t i = 0;
    while (i < v.n && is_digit(v.p[i])) i++;
    if (i == v.n) {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(v.p, &end, 10);
        if (errno == ERANGE) return -1;
        *out = (uint64_t)u;
        return 1;
    }
    double d;
    int r = get_int(v, 0, 9007199254740992.0, &d);
    if (r > 0) *out = (uint64_t)d;
    return r;
}

/* "stop": a string or an array of 1..IO_MAX_STOP of them, each decoded to 1..IO_MAX_STOP_LEN bytes.
 * The scanner has vouched for v's grammar, so only the types are checked here. */
static int get_stop(span_t v, io_msg_t *msg) {
    static const char type[] = "stop must be a string or an array of 1 to 4 strings";
    if (is_null(v)) return LANES_OK;
    scan_t s = {.end = v.p + v.n};
    const char *p = v.p;
    int array = *p == '[';
    if (array) p = skip_ws(p + 1, s.end);
    for (;;) {
        if (*p != '"') return fail(msg, LANES_EINVAL, type);
        if (msg->n_stop == IO_MAX_STOP)
            return fail(msg, LANES_EINVAL, "stop has more than 4 strings");
        const char *q = scan_string(&s, p);
        size_t body = (size_t)(q - p) - 2;
        char *dec = malloc(body > 0 ? body : 1);
        if (dec == NULL) return fail(msg, LANES_ENOMEM, "out of memory");
        size_t n = str_decode(p + 1, body, dec, body);
        msg->stop[msg->n_stop] = dec;
        msg->stop_len[msg->n_stop++] = n;
        if (n == 0) return fail(msg, LANES_EINVAL, "stop strings must not be empty");
        if (n > IO_MAX_STOP_LEN)
            return fail(msg, LANES_EINVAL, "stop string longer than 256 bytes");
        if (!array) return LANES_OK;
        p = skip_ws(q, s.end);
        if (*p == ']') return LANES_OK;
        p = skip_ws(p + 1, s.end);  /* past the ',' */
    }
}

static int parse_json(const char *line, size_t len, io_msg_t *msg) {
    scan_t s = {.end = line + len};
    const char *p = scan_container(&s, line, 1);
    if (p == NULL) return fail(msg, LANES_EPROTO, s.why);
    for (; p < s.end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r')
            return fail(msg, LANES_EPROTO, "trailing bytes after the JSON object");

    span_t v = s.f[F_ID];
    if (v.p != NULL) {  /* kept as sent: the scanner vouched it is UTF-8 with no control byte */
        if (v.p[0] != '"' && !is_number(v))
            return fail(msg, LANES_EINVAL, "id must be a string or a number");
        if (v.n > IO_MAX_ID) return fail(msg, LANES_ETOOLONG, "id longer than 256 bytes");
        if ((msg->id = malloc(v.n + 1)) == NULL) return fail(msg, LANES_ENOMEM, "out of memory");
        memcpy(msg->id, v.p, v.n);
        msg->id[v.n] = 0;
    }

    v = s.f[F_OP];
    if (v.p != NULL) {
        if (v.p[0] != '"') return fail(msg, LANES_EINVAL, "op must be a string");
        char name[16];
        size_t n = str_decode(v.p + 1, v.n - 2, name, sizeof name);
        msg->op = -1;
        for (int i = 0; i < (int)(sizeof op_name / sizeof *op_name); i++)
            if (n <= sizeof name && span_is(name, n, op_name[i])) msg->op = i;
        if (msg->op < 0) return fail(msg, LANES_EINVAL, "unknown op");
    }
    if (msg->op == IO_OP_CANCEL && msg->id == NULL)
        return fail(msg, LANES_EINVAL, "cancel needs the id of the request");
    if (msg->op != IO_OP_GENERATE) return LANES_OK;

    v = s.f[F_PROMPT];
    if (v.p == NULL) return fail(msg, LANES_EINVAL, "prompt is required");
    if (v.p[0] != '"') return fail(msg, LANES_EINVAL, "prompt must be a string");
    if ((msg->text_ = malloc(v.n)) == NULL) return fail(msg, LANES_ENOMEM, "out of memory");
    msg->prompt = msg->text_;
    msg->prompt_len = str_decode(v.p + 1, v.n - 2, msg->text_, v.n - 2);
    if (msg->prompt_len == 0) return fail(msg, LANES_EINVAL, "empty prompt");

    double d;
    int r;
    if ((r = get_int(s.f[F_MAX_TOKENS], 1, IO_MAX_TOKENS, &d)) < 0)
        return fail(msg, LANES_EINVAL, "max_tokens must be an integer in 1..65536");
    if (r) msg->max_tokens = (int)d;
    /* Narrowing keeps [0, 100] (both ends are floats); what falls below 1e-5, or to 0, the engine
     * samples greedily. */
    if ((r = get_range(s.f[F_TEMPERATURE], 0, 100, &d)) < 0)
        return fail(msg, LANES_EINVAL, "temperature must be a number in 0..100");
    if (r) msg->temperature = (float)d;
    if ((r = get_int(s.f[F_TOP_K], 0, 1 << 20, &d)) < 0)
        return fail(msg, LANES_EINVAL, "top_k must be an integer in 0..1048576");
    if (r) msg->top_k = (int)d;
    if ((r = get_range(s.f[F_TOP_P], 0, 1, &d)) < 0 || (r && d <= 0))
        return fail(msg, LANES_EINVAL, "top_p must be a number in (0, 1]");
    /* A positive top_p below the smallest normal float would reach the engine as 0 ("off") or a
     * subnormal: it keeps only the top token, which FLT_MIN does too (the engine keeps ids until
     * their mass reaches top_p of the total). */
    if (r) msg->top_p = (float)d < FLT_MIN ? FLT_MIN : (float)d;
    if ((r = get_seed(s.f[F_SEED], &msg->seed)) < 0)
        return fail(msg, LANES_EINVAL, "seed must be an integer in 0..2^64-1");
    if ((r = get_stop(s.f[F_STOP], msg)) < 0) return r;
    v = s.f[F_IGNORE_EOS];
    if (!is_null(v)) {
        msg->ignore_eos = span_is(v.p, v.n, "true");
        if (!msg->ignore_eos && !span_is(v.p, v.n, "false"))
            return fail(msg, LANES_EINVAL, "ignore_eos must be true or false");
    }
    if ((r = get_int(s.f[F_LOGPROBS], 0, IO_MAX_LOGPROBS, &d)) < 0)
        return fail(msg, LANES_EINVAL, "logprobs must be an integer in 0..20 or null");
    if (r) msg->logprobs = (int)d;
    return LANES_OK;
}

int io_msg_parse(const char *line, size_t len, io_msg_t *msg) {
    memset(msg, 0, sizeof *msg);
    msg->max_tokens = IO_DEFAULT_TOKENS;
    msg->top_p = 1.0f;
    msg->logprobs = -1;
    if (len > IO_MAX_LINE) return fail(msg, LANES_ETOOLONG, "line too long");
    if (len == 0 || line[0] != '{') {   /* plain-text shorthand: the line is the prompt */
        msg->op = IO_OP_GENERATE;
        msg->plain = 1;
        msg->prompt = line;
        msg->prompt_len = len;
        if (len == 0) return fail(msg, LANES_EINVAL, "empty prompt");
        return LANES_OK;
    }
    return parse_json(line, len, msg);
}

long io_json_escape(char *out, size_t cap, size_t len, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (len + 6 > cap) return -1;
        if (c >= 0x80) { /* JSON is UTF-8: a byte that starts no valid sequence becomes U+FFFD */
            size_t k = lanes_utf8_seq_len((const unsigned char *)s + i, n - i);
            if (k == 0) {
                memcpy(out + len, "\xef\xbf\xbd", 3);
                len += 3;
            } else {
                memcpy(out + len, s + i, k);
                len += k;
                i += k - 1;
            }
        } else if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
        } else if (c >= 0x20) {
            out[len++] = (char)c;
        } else if (c == '\n') {
            out[len++] = '\\', out[len++] = 'n';
        } else if (c == '\r') {
            out[len++] = '\\', out[len++] = 'r';
        } else if (c == '\t') {
            out[len++] = '\\', out[len++] = 't';
        } else {
            memcpy(out + len, "\\u00", 4);
            out[len + 4] = hex[c >> 4];
            out[len + 5] = hex[c & 15];
            len += 6;
        }
    }
    return (long)len;
}

const char *io_lp_fmt(float lp, char out[IO_LP_CHARS]) {
    snprintf(out, IO_LP_CHARS, "%.9g", lp >= -9999.0f ? (double)lp : -9999.0);
    return out;
}
