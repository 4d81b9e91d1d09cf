#include "oai.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_utf8.h"
#include "proto.h"

/* Requests are read by cJSON, so the body is checked first for what cJSON lets through or gets
 * wrong: JSON text must be UTF-8 (cJSON does not validate it), and cJSON ends a string at \u0000,
 * so a NUL escape is refused instead of silently cutting a prompt short. */

/* 2^53: from there on a double no longer holds every integer, so "9007199254740993" would reach
 * cJSON's double as ...992; seeds stay below it in magnitude, where every one is read exactly. */
#define SEED_LIMIT 9007199254740992.0

void oai_err_set(oai_err_t *e, int status, const char *type, const char *code, const char *param,
                 const char *fmt, ...) {
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* A 400 invalid_request_error naming param; returns -1 for the caller to return. */
static int invalid(oai_err_t *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int invalid(oai_err_t *e, const char *param, const char *fmt, ...) {
    char msg[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    oai_err_set(e, 400, "invalid_request_error", NULL, param, "%s", msg);
    return -1;
}

static int nomem(oai_err_t *e) {
    oai_err_set(e, 500, "server_error", NULL, NULL, "out of memory");
    return -1;
}

/* The body's first problem cJSON would not report, or NULL. */
static const char *check_bytes(const char *body, size_t len) {
    for (size_t i = 0, k; i < len; i += k) {
        unsigned char c = (unsigned char)body[i];
        k = 1;
        if (c == 0) return "a NUL byte in the request body";
        if (c >= 0x80 && (k = lanes_utf8_seq_len((const unsigned char *)body + i, len - i)) == 0)
            return "the request body is not valid UTF-8";
        if (c == '\\') {    /* every backslash in valid JSON starts a two-byte-or-longer escape */
            if (len - i >= 6 && memcmp(body + i + 1, "u0000", 5) == 0)
                return "\\u0000 (NUL) in a JSON string is not supported";
            k = 2;
        }
    }
    return NULL;
}

/* A member that is present and not null: OpenAI's clients send null for "use the default". */
static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return v == NULL || cJSON_IsNull(v) ? NULL : v;
}

static int is_integer(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
}

/* An integer member in [lo, hi], or dflt when absent. */
static int read_int(const cJSON *o, const char *name, int lo, int hi, int dflt, int *out,
                    oai_err_t *e) {
    const cJSON *v = field(o, name);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (!is_integer(v) || v->valuedouble < lo || v->valuedouble > hi) {
        if (hi == INT_MAX) return invalid(e, name, "'%s' must be an integer >= %d", name, lo);
        return invalid(e, name, "'%s' must be an integer from %d to %d", name, lo, hi);
    }
    *out = (int)v->valuedouble;
    return 0;
}

/* A number member in [lo, hi] ((lo, hi] when lo_open), or dflt when absent. */
static int read_num(const cJSON *o, const char *name, double lo, int lo_open, double hi,
                    float dflt, float *out, oai_err_t *e) {
    const cJSON *v = field(o, name);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(lo_open ? x > lo : x >= lo) || !(x <= hi))
        return invalid(e, name, "'%s' must be a number %s %g and <= %g", name,
                       lo_open ? ">" : ">=", lo, hi);
    *out = (float)x;
    return 0;
}

static int read_bool(const cJSON *o, const char *name, int *out, oai_err_t *e) {
    const cJSON *v = field(o, name);
    *out = 0;
    if (v == NULL) return 0;
    if (!cJSON_IsBool(v)) return invalid(e, name, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Returns a copy of s[0..n) with a NUL after it, or NULL on ENOMEM. */
static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d == NULL) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Fields of OpenAI's API that change what is generated in ways lanes does not implement: a
 * request that sets one to anything but its neutral value is refused rather than answered as if
 * it had not. */
static int check_unsupported(const cJSON *o, oai_err_t *e) {
    static const char *const lists[] = { "tools", "functions" };
    static const char *const choices[] = { "tool_choice", "function_call" };
    static const struct { const char *name; double neutral; } nums[] = {
        { "presence_penalty", 0 }, { "frequency_penalty", 0 }, { "repetition_penalty", 1 },
    };
    const cJSON *v;
    if ((v = field(o, "best_of")) && !(is_integer(v) && v->valuedouble == 1))
        return invalid(e, "best_of", "'best_of' is not supported (only 1)");
    if ((v = field(o, "suffix")) && !(cJSON_IsString(v) && v->valuestring[0] == '\0'))
        return invalid(e, "suffix", "'suffix' is not supported");
    if ((v = field(o, "logit_bias")) && !(cJSON_IsObject(v) && v->child == NULL))
        return invalid(e, "logit_bias", "'logit_bias' is not supported");
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if ((v = field(o, nums[i].name)) && !(cJSON_IsNumber(v) && v->valuedouble == nums[i].neutral))
            return invalid(e, nums[i].name, "'%s' is not supported (only %g)", nums[i].name,
                           nums[i].neutral);
    for (size_t i = 0; i < 2; i++) {
        if ((v = field(o, lists[i])) && !(cJSON_IsArray(v) && v->child == NULL))
            return invalid(e, lists[i], "'%s' is not supported (no tool calling)", lists[i]);
        if ((v = field(o, choices[i])) && !(cJSON_IsString(v) && !strcmp(v->valuestring, "none")))
            return invalid(e, choices[i], "'%s' is not supported (no tool calling)", choices[i]);
    }
    if ((v = field(o, "response_format"))) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "type");
        if (!cJSON_IsObject(v) || !cJSON_IsString(t) || strcmp(t->valuestring, "text") != 0)
            return invalid(e, "response_format",
                           "'response_format' is not supported (only {\"type\":\"text\"})");
    }
    return 0;
}

static int parse_prompt(const cJSON *o, oai_req_t *r, oai_err_t *e) {
    const cJSON *v = field(o, "prompt"), *it;
    if (v == NULL) return invalid(e, "prompt", "'prompt' is required");
    int n = cJSON_IsString(v) ? 1 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 0) return invalid(e, "prompt", "'prompt' must be a string or an array of strings");
    if (n == 0) return invalid(e, "prompt", "'prompt' must not be empty");
    if (n > OAI_MAX_CHOICES)
        return invalid(e, "prompt", "'prompt' has %d strings, more than %d", n, OAI_MAX_CHOICES);
    if (!(r->prompt = calloc((size_t)n, sizeof *r->prompt)) ||
        !(r->prompt_len = calloc((size_t)n, sizeof *r->prompt_len)))
        return nomem(e);
    int i = 0;
    for (it = cJSON_IsString(v) ? v : v->child; i < n; it = it->next, i++) {
        if (cJSON_IsNumber(it) || cJSON_IsArray(it))
            return invalid(e, "prompt", "token-id prompts are not supported: send text");
        if (!cJSON_IsString(it))
            return invalid(e, "prompt", "'prompt' must be a string or an array of strings");
        size_t len = strlen(it->valuestring);
        if (len == 0) return invalid(e, "prompt", "'prompt' must not be empty");
        if (!(r->prompt[i] = dup_n(it->valuestring, len))) return nomem(e);
        r->prompt_len[i] = len;
        r->n_prompt = i + 1;
    }
    return 0;
}

/* A message's text: a string, or the "text" of an array of {"type":"text"} parts joined by
 * newlines (as vLLM joins them). */
static int parse_content(const cJSON *c, int idx, oai_msg_t *m, oai_err_t *e) {
    if (cJSON_IsString(c)) {
        m->content_len = strlen(c->valuestring);
        return (m->content = dup_n(c->valuestring, m->content_len)) ? 0 : nomem(e);
    }
    if (!cJSON_IsArray(c))
        return invalid(e, "messages", "messages[%d].content must be a string or an array of "
                       "content parts", idx);
    size_t len = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "text") != 0 || !cJSON_IsString(x))
            return invalid(e, "messages", "messages[%d].content: only {\"type\":\"text\","
                           "\"text\":...} parts are supported", idx);
        len += strlen(x->valuestring) + 1;
    }
    if (!(m->content = malloc(len + 1))) return nomem(e);
    m->content_len = 0;
    cJSON_ArrayForEach(p, c) {
        const char *x = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        if (p != c->child) m->content[m->content_len++] = '\n';
        memcpy(m->content + m->content_len, x, strlen(x));
        m->content_len += strlen(x);
    }
    m->content[m->content_len] = '\0';
    return 0;
}

/* Roles the built-in templates know; "developer" is OpenAI's newer name for "system". */
static int parse_messages(const cJSON *o, oai_req_t *r, oai_err_t *e) {
    const cJSON *v = field(o, "messages"), *it;
    if (v == NULL) return invalid(e, "messages", "'messages' is required");
    if (!cJSON_IsArray(v)) return invalid(e, "messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(v);
    if (n == 0) return invalid(e, "messages", "'messages' must not be empty");
    if (!(r->msgs = calloc((size_t)n, sizeof *r->msgs))) return nomem(e);
    int i = 0;
    cJSON_ArrayForEach(it, v) {
        oai_msg_t *m = &r->msgs[i];
        if (!cJSON_IsObject(it)) return invalid(e, "messages", "messages[%d] must be an object", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(it, "role");
        const cJSON *content = field(it, "content");
        if (!cJSON_IsString(role))
            return invalid(e, "messages", "messages[%d].role must be a string", i);
        const char *name = role->valuestring;
        if (!strcmp(name, "developer")) name = "system";
        if (strcmp(name, "system") && strcmp(name, "user") && strcmp(name, "assistant"))
            return invalid(e, "messages", "messages[%d].role '%.32s' is not supported (system, "
                           "user, assistant, developer)", i, role->valuestring);
        if (!(m->role = dup_n(name, strlen(name)))) return nomem(e);
        r->n_msgs = ++i;
        if (content == NULL) {  /* an assistant turn may have none (it made tool calls) */
            if (strcmp(name, "assistant") != 0)
                return invalid(e, "messages", "messages[%d].content is required", i - 1);
            if (!(m->content = dup_n("", 0))) return nomem(e);
            continue;
        }
        if (parse_content(content, i - 1, m, e) < 0) return -1;
    }
    return 0;
}

static int parse_stop(const cJSON *o, oai_req_t *r, oai_err_t *e) {
    static const char bad[] = "'stop' must be a string or an array of up to 4 strings";
    const cJSON *v = field(o, "stop"), *it;
    if (v == NULL) return 0;
    if (!cJSON_IsString(v) && !cJSON_IsArray(v)) return invalid(e, "stop", bad);
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > IO_MAX_STOP) return invalid(e, "stop", bad);
    for (it = cJSON_IsString(v) ? v : v->child; it; it = cJSON_IsString(v) ? NULL : it->next) {
        if (!cJSON_IsString(it)) return invalid(e, "stop", bad);
        size_t len = strlen(it->valuestring);
        if (len == 0 || len > IO_MAX_STOP_LEN)
            return invalid(e, "stop", "each 'stop' string must have 1 to %d bytes",
                           IO_MAX_STOP_LEN);
        if (!(r->stop[r->n_stop] = dup_n(it->valuestring, len))) return nomem(e);
        r->stop_len[r->n_stop++] = len;
    }
    return 0;
}

static int parse_logprobs(const cJSON *o, oai_req_t *r, oai_err_t *e) {
    if (r->kind == OAI_COMPLETIONS)
        return read_int(o, "logprobs", 0, OAI_MAX_LOGPROBS_COMPLETIONS, -1, &r->logprobs, e);
    int on, top;
    if (read_bool(o, "logprobs", &on, e) < 0 ||
        read_int(o, "top_logprobs", 0, OAI_MAX_LOGPROBS_CHAT, 0, &top, e) < 0)
        return -1;
    if (!on && field(o, "top_logprobs"))
        return invalid(e, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    r->logprobs = on ? top : -1;
    return 0;
}

static int parse_seed(const cJSON *o, oai_req_t *r, oai_err_t *e) {
    const cJSON *v = field(o, "seed");
    if (v == NULL) return 0;
    if (!is_integer(v) || fabs(v->valuedouble) >= SEED_LIMIT)
        return invalid(e, "seed", "'seed' must be an integer below 2^53 in magnitude");
    r->seed = (uint64_t)(int64_t)v->valuedouble;   /* a negative seed wraps, as any 64-bit one */
    r->has_seed = 1;
    return 0;
}

static int parse_fields(const cJSON *o, oai_req_t *r, oai_err_t *e) {
    const cJSON *v;
    if ((v = field(o, "model"))) {
        if (!cJSON_IsString(v)) return invalid(e, "model", "'model' must be a string");
        if (!(r->model = dup_n(v->valuestring, strlen(v->valuestring)))) return nomem(e);
    }
    if (check_unsupported(o, e) < 0) return -1;
    if (r->kind == OAI_COMPLETIONS ? parse_prompt(o, r, e) < 0 : parse_messages(o, r, e) < 0)
        return -1;
    if (r->kind == OAI_COMPLETIONS) {
        if (read_int(o, "max_tokens", 1, IO_MAX_TOKENS, 16, &r->max_tokens, e) < 0) return -1;
    } else {
        const char *name = field(o, "max_completion_tokens") ? "max_completion_tokens"
                                                               : "max_tokens";
        if (read_int(o, name, 1, IO_MAX_TOKENS, 0, &r->max_tokens, e) < 0) return -1;
    }
    int top_k;
    if (read_num(o, "temperature", 0, 0, 2, 1, &r->temperature, e) < 0 ||
        read_num(o, "top_p", 0, 1, 1, 1, &r->top_p, e) < 0 ||
        read_int(o, "top_k", -1, INT_MAX, 0, &top_k, e) < 0 || parse_seed(o, r, e) < 0 ||
        parse_stop(o, r, e) < 0 || read_int(o, "n", 1, OAI_MAX_CHOICES, 1, &r->n, e) < 0 ||
        parse_logprobs(o, r, e) < 0 || read_bool(o, "stream", &r->stream, e) < 0 ||
        read_bool(o, "ignore_eos", &r->ignore_eos, e) < 0)
        return -1;
    r->top_k = top_k < 0 ? 0 : top_k;
    int prompts = r->kind == OAI_COMPLETIONS ? r->n_prompt : 1;
    if (prompts * r->n > OAI_MAX_CHOICES)
        return invalid(e, "n", "%d prompts x 'n' %d is more than %d choices per request", prompts,
                       r->n, OAI_MAX_CHOICES);
    if (r->kind == OAI_COMPLETIONS) {
        if (read_bool(o, "echo", &r->echo, e) < 0) return -1;
        if (r->echo && r->logprobs >= 0)
            return invalid(e, "echo", "'echo' with 'logprobs' is not supported (no prompt "
                           "logprobs)");
    }
    if ((v = field(o, "stream_options"))) {
        if (!r->stream)
            return invalid(e, "stream_options", "'stream_options' needs 'stream': true");
        if (!cJSON_IsObject(v))
            return invalid(e, "stream_options", "'stream_options' must be an object");
        if (read_bool(v, "include_usage", &r->include_usage, e) < 0) {
            snprintf(e->param, sizeof e->param, "stream_options.include_usage");
            return -1;
        }
    }
    return 0;
}

int oai_parse(int kind, const char *body, size_t len, oai_req_t *req, oai_err_t *err) {
    memset(req, 0, sizeof *req);
    req->kind = kind;
    req->logprobs = -1;
    req->n = 1;
    const char *why = check_bytes(body, len);
    if (why) return invalid(err, NULL, "%s", why);
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (o == NULL) return invalid(err, NULL, "the request body is not valid JSON");
    while (end < body + len && *end && strchr(" \t\r\n", *end)) end++;
    int rc = -1;
    if (end != body + len) invalid(err, NULL, "the request body is not valid JSON (bytes after "
                                   "the object)");
    else if (!cJSON_IsObject(o)) invalid(err, NULL, "the request body must be a JSON object");
    else rc = parse_fields(o, req, err);
    cJSON_Delete(o);
    return rc;
}

void oai_req_fini(oai_req_t *r) {
    free(r->model);
    for (int i = 0; i < r->n_prompt; i++) free(r->prompt[i]);
    free(r->prompt);
    free(r->prompt_len);
    for (int i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].role);
        free(r->msgs[i].content);
    }
    free(r->msgs);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

/* The response writer: compact JSON appended to one growing buffer. Strings go through
 * io_json_escape, which cJSON's printer cannot replace: it neither writes NUL bytes nor turns
 * bytes that are not UTF-8 into U+FFFD. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} jbuf_t;

static int reserve(jbuf_t *b, size_t n) {
    if (b->oom) return -1;
    if (b->len + n + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put(jbuf_t *b, const char *s, size_t n) {
    if (reserve(b, n) < 0) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void put_lit(jbuf_t *b, const char *s) { put(b, s, strlen(s)); }

static void put_fmt(jbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(jbuf_t *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* s[0..n) as a quoted JSON string; NULL is written as null. */
static void put_str(jbuf_t *b, const char *s, size_t n) {
    if (s == NULL) {
        put_lit(b, "null");
        return;
    }
    if (reserve(b, 6 * n + 2) < 0) return;  /* \u00XX is the longest form of one byte */
    b->p[b->len++] = '"';
    b->len = (size_t)io_json_escape(b->p, b->cap, b->len, s, n);
    b->p[b->len++] = '"';
}

static void put_cstr(jbuf_t *b, const char *s) { put_str(b, s, s ? strlen(s) : 0); }

static void put_lp(jbuf_t *b, float lp) {
    char t[IO_LP_CHARS];
    put_fmt(b, "%s", io_lp_fmt(lp, t));
}

static char *finish(jbuf_t *b, size_t *len) {
    if (reserve(b, 0) < 0) {
        free(b->p);
        return NULL;
    }
    b->p[b->len] = '\0';
    if (len) *len = b->len;
    return b->p;
}

static const char *piece(const oai_meta_t *m, int32_t id, size_t *len) {
    const char *s = m->piece ? m->piece(m->piece_arg, id, len) : NULL;
    if (s == NULL) *len = 0;
    return s ? s : "";
}

static void put_head(jbuf_t *b, const oai_meta_t *m, const char *object) {
    put_lit(b, "{\"id\":");
    put_cstr(b, m->id ? m->id : "");
    put_fmt(b, ",\"object\":\"%s\",\"created\":%lld,\"model\":", object, m->created);
    put_cstr(b, m->model ? m->model : "");
    put_lit(b, ",\"choices\":[");
}

static void put_usage(jbuf_t *b, const oai_usage_t *u) {
    if (u == NULL) {
        put_lit(b, "\"usage\":null");
        return;
    }
    put_fmt(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,", u->prompt_tokens,
            u->completion_tokens);
    put_fmt(b, "\"total_tokens\":%d}", u->prompt_tokens + u->completion_tokens);
}

/* The legacy completions shape: parallel lists, and per position a map from token string to
 * log-probability of the top alternatives and the chosen token (as vLLM gives; a string that two
 * ids decode to is listed once). Offsets are in bytes. */
static void put_logprobs_completion(jbuf_t *b, const oai_meta_t *m, const oai_choice_t *c) {
    const char *s;
    size_t n, off = c->text_offset;
    put_lit(b, "{\"tokens\":[");
    for (int i = 0; i < c->n_tok; i++) {
        if (i) put_lit(b, ",");
        s = piece(m, c->ids[i], &n);
        put_str(b, s, n);
    }
    put_lit(b, "],\"token_logprobs\":[");
    for (int i = 0; i < c->n_tok; i++) {
        if (i) put_lit(b, ",");
        put_lp(b, c->lps[i].chosen);
    }
    put_lit(b, "],\"top_logprobs\":[");
    for (int i = 0; i < c->n_tok; i++) {
        const eng_logprobs_t *lp = &c->lps[i];
        int32_t ids[ENG_MAX_TOP_LOGPROBS + 1];
        float vals[ENG_MAX_TOP_LOGPROBS + 1];
        int k = 0, chosen_in = 0;
        for (int j = 0; j < lp->n && j < ENG_MAX_TOP_LOGPROBS; j++) {
            ids[k] = lp->top_id[j];
            vals[k++] = lp->top_lp[j];
            chosen_in |= lp->top_id[j] == c->ids[i];
        }
        if (!chosen_in) ids[k] = c->ids[i], vals[k++] = lp->chosen;
        put_lit(b, i ? ",{" : "{");
        for (int j = 0, first = 1; j < k; j++) {
            s = piece(m, ids[j], &n);
            int dup = 0;
            for (int q = 0; q < j && !dup; q++) {
                size_t qn;
                const char *qs = piece(m, ids[q], &qn);
                dup = qn == n && memcmp(qs, s, n) == 0;
            }
            if (dup) continue;
            if (!first) put_lit(b, ",");
            first = 0;
            put_str(b, s, n);
            put_lit(b, ":");
            put_lp(b, vals[j]);
        }
        put_lit(b, "}");
    }
    put_lit(b, "],\"text_offset\":[");
    for (int i = 0; i < c->n_tok; i++) {
        put_fmt(b, i ? ",%zu" : "%zu", off);
        piece(m, c->ids[i], &n);
        off += n;
    }
    put_lit(b, "]}");
}

/* One chat logprobs entry: the token's string, its value and its exact bytes. */
static void put_chat_token(jbuf_t *b, const oai_meta_t *m, int32_t id, float lp) {
    size_t n;
    const char *s = piece(m, id, &n);
    put_lit(b, "{\"token\":");
    put_str(b, s, n);
    put_lit(b, ",\"logprob\":");
    put_lp(b, lp);
    put_lit(b, ",\"bytes\":[");
    for (size_t i = 0; i < n; i++) put_fmt(b, i ? ",%u" : "%u", (unsigned)(unsigned char)s[i]);
    put_lit(b, "]");
}

static void put_logprobs_chat(jbuf_t *b, const oai_meta_t *m, const oai_choice_t *c) {
    put_lit(b, "{\"content\":[");
    for (int i = 0; i < c->n_tok; i++) {
        const eng_logprobs_t *lp = &c->lps[i];
        if (i) put_lit(b, ",");
        put_chat_token(b, m, c->ids[i], lp->chosen);
        put_lit(b, ",\"top_logprobs\":[");
        for (int j = 0; j < lp->n && j < ENG_MAX_TOP_LOGPROBS; j++) {
            if (j) put_lit(b, ",");
            put_chat_token(b, m, lp->top_id[j], lp->top_lp[j]);
            put_lit(b, "}");
        }
        put_lit(b, "]}");
    }
    put_lit(b, "]}");
}

/* One element of "choices": whole (message) or streamed (delta). */
static void put_choice(jbuf_t *b, int kind, const oai_meta_t *m, const oai_choice_t *c,
                       int chunk) {
    put_fmt(b, "{\"index\":%d,", c->index);
    if (kind == OAI_COMPLETIONS) {
        put_lit(b, "\"text\":");
        put_str(b, c->text ? c->text : "", c->text ? c->text_len : 0);
    } else if (!chunk) {
        put_lit(b, "\"message\":{\"role\":\"assistant\",\"content\":");
        put_str(b, c->text ? c->text : "", c->text ? c->text_len : 0);
        put_lit(b, "}");
    } else {    /* role first, then content, then {} beside the finish_reason, as OpenAI sends */
        put_lit(b, c->role ? "\"delta\":{\"role\":\"assistant\"" : "\"delta\":{");
        if (c->role || c->text_len > 0) {
            put_lit(b, c->role ? ",\"content\":" : "\"content\":");
            put_str(b, c->text ? c->text : "", c->text ? c->text_len : 0);
        }
        put_lit(b, "}");
    }
    put_lit(b, ",\"logprobs\":");
    if (c->lps == NULL || c->ids == NULL) put_lit(b, "null");
    else if (kind == OAI_COMPLETIONS) put_logprobs_completion(b, m, c);
    else put_logprobs_chat(b, m, c);
    put_lit(b, ",\"finish_reason\":");
    put_cstr(b, c->finish_reason);
    put_lit(b, "}");
}

char *oai_response_json(int kind, const oai_meta_t *m, const oai_choice_t *choices, int n,
                        const oai_usage_t *usage, size_t *len) {
    jbuf_t b = { 0 };
    put_head(&b, m, kind == OAI_COMPLETIONS ? "text_completion" : "chat.completion");
    for (int i = 0; i < n; i++) {
        if (i) put_lit(&b, ",");
        put_choice(&b, kind, m, &choices[i], 0);
    }
    put_lit(&b, "],");
    put_usage(&b, usage);
    put_lit(&b, "}");
    return finish(&b, len);
}

char *oai_chunk_json(int kind, const oai_meta_t *m, const oai_choice_t *choice, size_t *len) {
    jbuf_t b = { 0 };
    put_head(&b, m, kind == OAI_COMPLETIONS ? "text_completion" : "chat.completion.chunk");
    put_choice(&b, kind, m, choice, 1);
    put_lit(&b, "]}");
    return finish(&b, len);
}

char *oai_usage_chunk_json(int kind, const oai_meta_t *m, const oai_usage_t *usage, size_t *len) {
    jbuf_t b = { 0 };
    put_head(&b, m, kind == OAI_COMPLETIONS ? "text_completion" : "chat.completion.chunk");
    put_lit(&b, "],");
    put_usage(&b, usage);
    put_lit(&b, "}");
    return finish(&b, len);
}

char *oai_error_json(const oai_err_t *e, size_t *len) {
    jbuf_t b = { 0 };
    put_lit(&b, "{\"error\":{\"message\":");
    put_cstr(&b, e->message);
    put_lit(&b, ",\"type\":");
    put_cstr(&b, e->type ? e->type : "server_error");
    put_lit(&b, ",\"param\":");
    put_cstr(&b, e->param[0] ? e->param : NULL);
    put_lit(&b, ",\"code\":");
    put_cstr(&b, e->code);
    put_lit(&b, "}}");
    return finish(&b, len);
}

char *oai_models_json(const char *model, long long created, size_t *len) {
    jbuf_t b = { 0 };
    put_lit(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    put_cstr(&b, model ? model : "");
    put_fmt(&b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"lanes\"}]}", created);
    return finish(&b, len);
}
