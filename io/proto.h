#ifndef IO_PROTO_H
#define IO_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* The request-line parser: one line (without its '\n') in, one validated message out. Pure and
 * allocation-light so the fuzzer and unit tests drive it without a server. docs/PROTOCOL.md is
 * the reference for every field, limit and error code. */

#define IO_MAX_LINE (64 * 1024)     /* bytes per request line, '\n' excluded */
#define IO_MAX_ID 256               /* bytes of an id as sent */
#define IO_MAX_TOKENS 65536         /* max_tokens upper bound (the context ends streams earlier) */
#define IO_DEFAULT_TOKENS 64
#define IO_MAX_STOP 4               /* = BAT_MAX_STOP (asserted where requests are submitted) */
#define IO_MAX_STOP_LEN 256         /* = BAT_MAX_STOP_LEN (likewise) */
#define IO_MAX_LOGPROBS ENG_MAX_TOP_LOGPROBS    /* as BAT_MAX_LOGPROBS */

enum { IO_OP_GENERATE = 0, IO_OP_CANCEL, IO_OP_STATS, IO_OP_HEALTH };

typedef struct {
    int op;                 /* IO_OP_* */
    int plain;              /* 1: plain-text shorthand (prompt is the whole line) */
    char *id;               /* owned: the id's JSON text exactly as sent ("\"a\\u0031\"", "1.10"),
                             * or NULL; has no NUL byte (the parser refuses raw control bytes) */
    const char *prompt;     /* borrows the line (plain) or text_: valid until io_msg_fini */
    size_t prompt_len;      /* the prompt may hold NUL bytes ("\u0000") */
    int max_tokens;
    float temperature, top_p;
    int top_k;
    uint64_t seed;
    int ignore_eos;         /* "ignore_eos": true */
    int logprobs;           /* "logprobs": N (0..IO_MAX_LOGPROBS); -1 when absent or null */
    int n_stop;             /* "stop": a string or an array of up to IO_MAX_STOP strings */
    char *stop[IO_MAX_STOP];            /* owned, decoded (may hold NUL bytes) */
    size_t stop_len[IO_MAX_STOP];       /* 1..IO_MAX_STOP_LEN each */
    const char *err_msg;    /* on error: a static message naming the problem */
    char *text_;            /* owned: the decoded prompt of a JSON line */
} io_msg_t;

/* Parses line[0..len). Returns LANES_OK, or LANES_EPROTO (not strict JSON, not UTF-8, a raw control
 * byte in a string, bytes after the object), LANES_EINVAL (wrong type, missing or out-of-range
 * field, unknown op), LANES_ETOOLONG (id longer than IO_MAX_ID as sent). On error msg->err_msg
 * says why and msg->id holds the id when it could be read. Always io_msg_fini() after. */
int io_msg_parse(const char *line, size_t len, io_msg_t *msg);
void io_msg_fini(io_msg_t *msg);

/* Appends s[0..n) JSON-escaped (no quotes) to out; returns the new length or -1 if it won't fit.
 * Valid UTF-8 passes through; a byte that starts no valid sequence becomes U+FFFD. */
long io_json_escape(char *out, size_t cap, size_t len, const char *s, size_t n);

/* A log-probability as JSON can carry it (JSON has no infinity): below vLLM's floor of -9999 (a
 * token masked out by its logit is -inf) or NaN, -9999; else the 9 digits that give the float back
 * exactly. Writes out (IO_LP_CHARS bytes, NUL-terminated) and returns it. */
#define IO_LP_CHARS 24
const char *io_lp_fmt(float lp, char out[IO_LP_CHARS]);

#endif
