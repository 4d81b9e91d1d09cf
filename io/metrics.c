#include "metrics.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_utf8.h"

/* The text goes through open_memstream: one growing buffer, and a single ENOMEM check at the end
 * (a failed write sets the stream's error flag, which fclose reports). */

/* A sample value or bucket bound as prometheus_client (vLLM's exporter) prints it: the shortest
 * text that reads back as the same double, with ".0" on integral values, so le="1.0" and
 * le="0.005" match the series vLLM's dashboards and recording rules were written against. */
static const char *fmt_num(char buf[32], double v) {
    if (isnan(v)) return "NaN";
    if (isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    int digits = 1;
    while (snprintf(buf, 32, "%.*e", digits - 1, v), strtod(buf, NULL) != v && digits < 17)
        digits++;
    int exp = atoi(strchr(buf, 'e') + 1);   /* Python's repr: positional for 1e-4 <= |v| < 1e16 */
    int frac = digits - 1 - exp;
    if (exp >= -4 && exp < 16) snprintf(buf, 32, "%.*f", frac > 0 ? frac : 0, v);
    if (strpbrk(buf, ".e") == NULL) strcat(buf, ".0");
    return buf;
}

/* A label value escaped as the format wants (backslash, double quote, newline), made valid UTF-8
 * (a byte that starts no sequence becomes U+FFFD, as in JSON replies); out needs 3 * n + 1
 * bytes. */
static void escape_label(char *out, const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = lanes_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (c == '\\' || c == '"') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c == '\n') {
            *out++ = '\\';
            *out++ = 'n';
        } else if (k == 0) {
            memcpy(out, "\xef\xbf\xbd", 3);
            out += 3;
        } else {
            memcpy(out, s + i, k);
            out += k;
            i += k;
            continue;
        }
        i++;
    }
    *out = 0;
}

static void family(FILE *f, const char *name, const char *type, const char *help) {
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{labels,extra} (braces only when there is a label). */
static void series(FILE *f, const char *name, const char *suffix, const char *labels,
                   const char *extra) {
    fprintf(f, "%s%s", name, suffix);
    if (*labels || *extra) fprintf(f, "{%s%s%s}", labels, *labels && *extra ? "," : "", extra);
    fputc(' ', f);
}

static void put_u64(FILE *f, const char *name, const char *suffix, const char *labels,
                    const char *extra, uint64_t v) {
    series(f, name, suffix, labels, extra);
    fprintf(f, "%llu\n", (unsigned long long)v);
}

static void put_num(FILE *f, const char *name, const char *suffix, const char *labels, double v) {
    char buf[32];
    series(f, name, suffix, labels, "");
    fprintf(f, "%s\n", fmt_num(buf, v));
}

static void counter(FILE *f, const char *name, const char *labels, const char *help, uint64_t v) {
    family(f, name, "counter", help);
    put_u64(f, name, "", labels, "", v);
}

static void gauge(FILE *f, const char *name, const char *labels, const char *help, double v) {
    family(f, name, "gauge", help);
    put_num(f, name, "", labels, v);
}

/* bat_hist_t keeps per-bucket counts; the format wants them cumulative, ending with le="+Inf",
 * which is every observation and so equals _count. */
static void histogram(FILE *f, const char *name, const char *labels, const char *help,
                      const bat_hist_t *h) {
    char le[48], buf[32];
    uint64_t cum = 0;
    family(f, name, "histogram", help);
    for (int i = 0; i <= h->n; i++) {
        cum += h->count[i];
        snprintf(le, sizeof le, "le=\"%s\"", i < h->n ? fmt_num(buf, h->le[i]) : "+Inf");
        put_u64(f, name, "_bucket", labels, le, cum);
    }
    assert(cum == h->total);
    put_num(f, name, "_sum", labels, h->sum);
    put_u64(f, name, "_count", labels, "", cum);
}

char *io_metrics_text(const bat_stats_t *st, const io_metrics_io_t *io, const char *model,
                      size_t *len) {
    if (model == NULL) model = "";
    size_t n = strlen(model);
    char *lbl = malloc(sizeof "model_name=\"\",engine=\"0\"" + 3 * n);
    if (lbl == NULL) return NULL;
    char *p = lbl + sprintf(lbl, "model_name=\"");
    escape_label(p, model, n);
    strcat(p, "\",engine=\"0\"");   /* vLLM labels each engine core; lanes has one */

    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (f == NULL) {
        free(lbl);
        return NULL;
    }
    const uint64_t *end = st->ended;
    const bat_hist_t *h = st->hist;

    gauge(f, "vllm:num_requests_running", lbl, "Requests in a lane (prefilling or decoding).",
          st->lanes_active);
    gauge(f, "vllm:num_requests_waiting", lbl,
          "Requests waiting for a lane (being tokenized or queued).", st->queue_depth);
    gauge(f, "vllm:kv_cache_usage_perc", lbl,
          "KV cache positions filled over all lanes' room; 1 means full.", st->kv_usage);
    counter(f, "vllm:prompt_tokens_total", lbl, "Prompt tokens of the requests accepted.",
            st->prompt_tokens);
    counter(f, "vllm:generation_tokens_total", lbl, "Tokens generated (sent in token events).",
            st->tokens_generated);
    /* vLLM's finish reasons: running out of the lane's context is a length end too, and a cancel
     * (by the client, or its disconnect) is an abort. */
    family(f, "vllm:request_success_total", "counter",
           "Requests that ended with a done event, by finish reason.");
    put_u64(f, "vllm:request_success_total", "", lbl, "finished_reason=\"stop\"",
            end[BAT_END_STOP]);
    put_u64(f, "vllm:request_success_total", "", lbl, "finished_reason=\"length\"",
            end[BAT_END_LENGTH] + end[BAT_END_CONTEXT]);
    put_u64(f, "vllm:request_success_total", "", lbl, "finished_reason=\"abort\"",
            end[BAT_END_CANCELLED]);
    histogram(f, "vllm:time_to_first_token_seconds", lbl,
              "Seconds from a request's arrival to its first token.", &h[BAT_H_TTFT]);
    histogram(f, "vllm:inter_token_latency_seconds", lbl,
              "Seconds between successive tokens of a stream.", &h[BAT_H_ITL]);
    histogram(f, "vllm:e2e_request_latency_seconds", lbl,
              "Seconds from a request's arrival to its end (requests that got a lane).",
              &h[BAT_H_E2E]);
    histogram(f, "vllm:request_queue_time_seconds", lbl,
              "Seconds from a request's arrival to its admission into a lane.", &h[BAT_H_QUEUE]);

    histogram(f, "lanes_step_seconds", "", "Engine step time in seconds.", &h[BAT_H_STEP]);
    histogram(f, "lanes_step_columns", "",
              "Columns (prompt and decode tokens) computed per engine step.", &h[BAT_H_COLS]);
    counter(f, "lanes_steps_total", "", "Engine steps run.", st->steps);
    gauge(f, "lanes_lanes_active", "", "Lanes holding a stream.", st->lanes_active);
    gauge(f, "lanes_lanes_capacity", "", "Lanes (KV cache slots): streams at once.",
          st->lanes_total);
    gauge(f, "lanes_kv_lane_bytes", "",
          "KV cache bytes per lane: every global layer's keys and values, sliding layers' rings, "
          "delta-net layers' state.", (double)st->kv_lane_bytes);
    counter(f, "lanes_requests_rejected_total", "",
            "Requests refused because every lane and queue slot was taken (EBUSY, HTTP 429).",
            st->requests_rejected);
    counter(f, "lanes_request_errors_total", "",
            "Requests the engine ended with an error (ETOOLONG, ECLOSED, ...).", st->errors);
    gauge(f, "lanes_connections", "", "Open client connections.", io->connections);
    gauge(f, "lanes_connections_paused", "",
          "Connections not being read because their replies are not taken.",
          io->connections_paused);
    gauge(f, "lanes_bytes_queued", "", "Reply bytes queued for clients that have not taken them.",
          (double)io->bytes_queued);
    counter(f, "lanes_http_requests_total", "", "HTTP requests answered.", io->http_requests);
    gauge(f, "lanes_uptime_seconds", "", "Seconds since the server started.", st->uptime_s);

    free(lbl);
    int err = ferror(f);
    if (fclose(f) != 0 || err) {
        free(text);
        return NULL;
    }
    return text;
}
