#include "openai.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "scan.h"

char *lg_openai_completion(const char *host, int port, const char *model_esc,
                           const char *prompt_esc, size_t plen, const char *fields, size_t *n) {
    static const char tail[] = ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    size_t body = strlen("{\"model\":\"\",\"prompt\":\"\"") + strlen(model_esc) + plen +
                  strlen(fields) + sizeof tail - 1;
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/completions HTTP/1.1\r\nHost: %s:%d\r\n"
                      "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      host, port, body);
    if (hn < 0 || (size_t)hn >= sizeof head) return NULL;
    char *out = malloc((size_t)hn + body + 1);
    if (!out) return NULL;
    int k = snprintf(out, (size_t)hn + body + 1, "%s{\"model\":\"%s\",\"prompt\":\"", head, model_esc);
    memcpy(out + k, prompt_esc, plen);
    k += (int)plen;
    k += snprintf(out + k, (size_t)hn + body + 1 - (size_t)k, "\"%s%s", fields, tail);
    *n = (size_t)k;
    return out;
}

char *lg_openai_get(const char *host, int port, const char *path, size_t *n) {
    size_t cap = strlen(host) + strlen(path) + 96;
    char *out = malloc(cap);
    if (!out) return NULL;
    int k = snprintf(out, cap, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n\r\n", path, host, port);
    *n = (size_t)k;
    return out;
}

static void span_str(char *dst, size_t cap, lg_span_t v) {
    size_t n = 0;
    if (v.n >= 2 && v.p[0] == '"') {
        n = v.n - 2 < cap - 1 ? v.n - 2 : cap - 1;
        memcpy(dst, v.p + 1, n);
    }
    dst[n] = '\0';
}

static void usage_fields(lg_span_t v, lg_openai_chunk_t *out) {
    lg_scan_t it;
    lg_span_t k, x;
    if (lg_scan_begin(&it, v.p, v.n) < 0) return;       /* null */
    while (lg_scan_next(&it, &k, &x) == 1) {
        if (lg_span_eq(k, "prompt_tokens")) lg_span_ll(x, &out->prompt_tokens);
        else if (lg_span_eq(k, "completion_tokens")) lg_span_ll(x, &out->completion_tokens);
    }
}

/* choices[0] of a completion chunk; only its text and finish_reason matter (n is 1). */
static int first_choice(lg_span_t v, lg_openai_chunk_t *out) {
    if (v.n < 2 || v.p[0] != '[') return LANES_EPROTO;
    lg_scan_t it;
    lg_span_t k, x;
    const char *p = v.p + 1, *end = v.p + v.n - 1;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
    if (p == end) return LANES_OK;                      /* []: the usage chunk */
    if (lg_scan_begin(&it, p, (size_t)(end - p)) < 0) return LANES_EPROTO;
    int rc;
    while ((rc = lg_scan_next(&it, &k, &x)) == 1) {
        if (lg_span_eq(k, "text")) out->has_text = x.n > 2 && x.p[0] == '"';
        else if (lg_span_eq(k, "finish_reason")) span_str(out->finish, sizeof out->finish, x);
    }
    return rc < 0 ? rc : LANES_OK;
}

/* {"error":{"message":...}} (OpenAI's shape) or {"error":"..."} (some servers' mid-stream one). */
static void error_message(lg_span_t v, lg_openai_chunk_t *out) {
    lg_scan_t it;
    lg_span_t k, x;
    if (v.n > 0 && v.p[0] == '"') {
        span_str(out->error, sizeof out->error, v);
    } else if (lg_scan_begin(&it, v.p, v.n) == LANES_OK) {
        snprintf(out->error, sizeof out->error, "error");
        while (lg_scan_next(&it, &k, &x) == 1)
            if (lg_span_eq(k, "message")) span_str(out->error, sizeof out->error, x);
    }
}

int lg_openai_chunk(const char *s, size_t n, lg_openai_chunk_t *out) {
    memset(out, 0, sizeof *out);
    out->prompt_tokens = out->completion_tokens = -1;
    lg_scan_t it;
    lg_span_t k, v;
    int rc = lg_scan_begin(&it, s, n);
    while (rc >= 0 && (rc = lg_scan_next(&it, &k, &v)) == 1) {
        if (lg_span_eq(k, "choices")) rc = first_choice(v, out);
        else if (lg_span_eq(k, "usage")) usage_fields(v, out);
        else if (lg_span_eq(k, "error")) error_message(v, out);
    }
    return rc < 0 ? LANES_EPROTO : LANES_OK;
}

int lg_openai_first_model(const char *s, size_t n, char *out, size_t cap) {
    lg_scan_t it;
    lg_span_t k, v;
    int rc = lg_scan_begin(&it, s, n);
    while (rc >= 0 && (rc = lg_scan_next(&it, &k, &v)) == 1) {
        if (!lg_span_eq(k, "data")) continue;
        if (v.n < 2 || v.p[0] != '[') return LANES_EPROTO;
        const char *p = v.p + 1, *end = v.p + v.n - 1;
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')) p++;
        if (p == end) return LANES_ENOENT;
        lg_scan_t m;
        if (lg_scan_begin(&m, p, (size_t)(end - p)) < 0) return LANES_EPROTO;
        while ((rc = lg_scan_next(&m, &k, &v)) == 1)
            if (lg_span_eq(k, "id") && v.n >= 2 && v.p[0] == '"') {
                span_str(out, cap, v);
                return LANES_OK;
            }
        return LANES_EPROTO;
    }
    return LANES_EPROTO;
}

/* Prometheus text: "name{labels} value [timestamp]" per line, # comments. */
typedef struct {
    const char *name;
    size_t off;                                  /* into lg_srv_stats_t */
} metric_map_t;

#define ST(f) offsetof(lg_srv_stats_t, f)
static const metric_map_t metric_map[] = {
    {"vllm:generation_tokens_total", ST(tokens_generated)},
    {"vllm:prompt_tokens_total", ST(prompt_tokens)},
    {"vllm:num_requests_running", ST(requests_active)},
    {"vllm:num_requests_waiting", ST(queue_depth)},
    {"vllm:request_success_total", ST(requests_served)},
    {"llamacpp:tokens_predicted_total", ST(tokens_generated)},
    {"llamacpp:prompt_tokens_total", ST(prompt_tokens)},
    {"llamacpp:requests_processing", ST(requests_active)},
    {"llamacpp:requests_deferred", ST(queue_depth)},
    {"lanes_lanes_capacity", ST(lanes_total)},
    {"lanes_lanes_active", ST(lanes_active)},
    {"lanes_steps_total", ST(steps)},
    {"lanes_uptime_seconds", ST(uptime_s)},
};
#undef ST

void lg_openai_metrics(const char *s, size_t n, lg_srv_stats_t *st) {
    memset(st, 0, sizeof *st);
    double step_sum = 0, step_count = 0;
    const char *end = s + n;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        size_t nlen = 0;
        while (s + nlen < le && s[nlen] != '{' && s[nlen] != ' ' && s[nlen] != '\t') nlen++;
        const char *v = s + nlen;
        if (v < le && *v == '{') {               /* label values may hold any byte but '"' unescaped */
            int quoted = 0;
            for (v++; v < le && (quoted || *v != '}'); v++) {
                if (*v == '\\') v++;
                else if (*v == '"') quoted = !quoted;
            }
            v++;
        }
        if (*s != '#' && nlen > 0 && v < le) {
            char num[64];
            size_t k = 0;
            while (v < le && (*v == ' ' || *v == '\t')) v++;
            while (v < le && *v != ' ' && k + 1 < sizeof num) num[k++] = *v++;
            num[k] = '\0';
            char *e;
            double x = strtod(num, &e);
            if (k > 0 && *e == '\0') {
                for (size_t i = 0; i < sizeof metric_map / sizeof metric_map[0]; i++)
                    if (strlen(metric_map[i].name) == nlen && memcmp(metric_map[i].name, s, nlen) == 0) {
                        *(double *)((char *)st + metric_map[i].off) += x;
                        if (metric_map[i].off == offsetof(lg_srv_stats_t, tokens_generated)) st->valid = 1;
                    }
                if (nlen == 24 && memcmp(s, "lanes_step_seconds_count", 24) == 0) step_count += x;
                if (nlen == 22 && memcmp(s, "lanes_step_seconds_sum", 22) == 0) step_sum += x;
            }
        }
        s = nl ? nl + 1 : end;
    }
    if (step_count > 0) st->step_ms_avg = step_sum / step_count * 1000.0;
}
