/* GET /metrics text: exact lines for a hand-made snapshot (cumulative buckets, +Inf == _count,
 * vLLM's names, labels and finish reasons, label escaping), and promtool's check of the output. */
#include <sys/wait.h>

#include "metrics.h"
#include "test_util.h"

static const double le_s[] = {0.001, 0.005, 0.5, 1, 2560};
static const double le_cols[] = {1, 8, 64};

static const char model[] = "my \"model\"\\v2\nq8 \xff";
static const char lbl[] = "model_name=\"my \\\"model\\\"\\\\v2\\nq8 \xef\xbf\xbd\",engine=\"0\"";

static bat_hist_t hist(const double *le, int n, const uint64_t *count, double sum) {
    bat_hist_t h = {.n = n, .le = le, .sum = sum};
    for (int i = 0; i <= n; i++) {
        h.count[i] = count[i];
        h.total += count[i];
    }
    return h;
}

static void fill(bat_stats_t *st, io_metrics_io_t *io) {
    memset(st, 0, sizeof *st);
    st->lanes_total = 128;
    st->lanes_active = 3;
    st->kv_lane_bytes = 22679552;   /* 15m-gemma3's at context 4096, 128 lanes */
    st->queue_depth = 7;
    st->requests_rejected = 11;
    st->tokens_generated = 123456789012ull;
    st->prompt_tokens = 4242;
    st->steps = 99;
    st->uptime_s = 12.5;
    st->ended[BAT_END_STOP] = 3;
    st->ended[BAT_END_LENGTH] = 4;
    st->ended[BAT_END_CONTEXT] = 5;
    st->ended[BAT_END_CANCELLED] = 6;
    st->errors = 2;
    st->kv_usage = 0.25;
    static const uint64_t ttft[] = {1, 0, 2, 3, 4, 5}, one[] = {0, 1, 0, 0, 0, 0};
    static const uint64_t cols[] = {10, 20, 30, 1};
    st->hist[BAT_H_TTFT] = hist(le_s, 5, ttft, 1234.5);
    st->hist[BAT_H_ITL] = hist(le_s, 5, one, 0.004);
    st->hist[BAT_H_E2E] = hist(le_s, 5, one, 0.004);
    st->hist[BAT_H_QUEUE] = hist(le_s, 5, one, 0.004);
    st->hist[BAT_H_STEP] = hist(le_s, 5, one, 0.004);
    st->hist[BAT_H_COLS] = hist(le_cols, 3, cols, 1900);
    *io = (io_metrics_io_t){.connections = 5, .connections_paused = 1, .bytes_queued = 65536,
                            .http_requests = 77};
}

/* The text holds this exact line. */
static void has_line(const char *text, const char *fmt, ...) {
    char want[512], pat[520];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    snprintf(pat, sizeof pat, "\n%s\n", want);
    if (strstr(text, pat) == NULL && strncmp(text, pat + 1, strlen(pat + 1)) != 0) {
        fprintf(stderr, "missing line: %s\n--- text:\n%s", want, text);
        exit(1);
    }
}

/* Every family has one HELP and one TYPE line, right before its samples, and every sample line
 * belongs to the family declared last (name, or name_bucket/_sum/_count for a histogram). */
static void check_families(const char *text) {
    char fam[128] = "", type[16] = "";
    int n_types = 0;
    for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
        char name[128];
        if (sscanf(p, "# TYPE %127s %15s", name, type) == 2) {
            ASSERT_STR_EQ(name, fam);   /* HELP came first, for the same name */
            n_types++;
            char again[140];
            snprintf(again, sizeof again, "# TYPE %s ", name);
            ASSERT(strstr(strstr(text, again) + 1, again) == NULL);   /* one family per name */
            size_t k = strlen(name);
            int total = k > 6 && strcmp(name + k - 6, "_total") == 0;
            ASSERT((strcmp(type, "counter") == 0) == total);  /* and no gauge ends in _total */
        } else if (sscanf(p, "# HELP %127s", fam) == 1) {
            type[0] = 0;
        } else {
            ASSERT(type[0] != 0);
            size_t k = strlen(fam);
            ASSERT(strncmp(p, fam, k) == 0);
            const char *rest = p + k;
            if (strcmp(type, "histogram") == 0 && *rest == '_')
                ASSERT(strncmp(rest, "_bucket{", 8) == 0 || strncmp(rest, "_sum", 4) == 0 ||
                       strncmp(rest, "_count", 6) == 0);
            else ASSERT(*rest == '{' || *rest == ' ');
        }
    }
    ASSERT_EQ(n_types, 23);
}

/* promtool parses the text as Prometheus does (exit 1 on a parse error) and lints it (exit 3):
 * names, _total on counters only, HELP, units. Its one lint vLLM's own /metrics fails too, a ':'
 * in a name (reserved for recording rules), is the price of vLLM's names; any other problem fails.
 * Returns -1 without promtool. */
static int promtool_ok(const char *text, size_t len) {
    if (system("command -v promtool >/dev/null") != 0) return -1;
    char path[] = "/tmp/lanes_metrics_XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT(write(fd, text, len) == (ssize_t)len);
    ASSERT(close(fd) == 0);
    char cmd[128], out[8192];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    ASSERT(p != NULL);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int status = pclose(p);
    unlink(path);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int ok = code == 0 || code == 3;
    char lines[sizeof out];
    memcpy(lines, out, n + 1);
    for (char *line = strtok(lines, "\n"); ok && line != NULL; line = strtok(NULL, "\n")) {
        char name[128], rest[128];
        ok = sscanf(line, "%127s %127[^\n]", name, rest) == 2 && strncmp(name, "vllm:", 5) == 0 &&
             strcmp(rest, "metric names should not contain ':'") == 0;
    }
    if (!ok) fprintf(stderr, "promtool (exit %d):\n%s", code, out);
    return ok;
}

int main(void) {
    bat_stats_t st;
    io_metrics_io_t io;
    fill(&st, &io);
    size_t len = 0;
    char *text = io_metrics_text(&st, &io, model, &len);
    ASSERT(text != NULL);
    ASSERT_EQ(len, strlen(text));
    ASSERT(len > 0 && text[len - 1] == '\n');

    has_line(text, "# HELP vllm:num_requests_running Requests in a lane (prefilling or decoding).");
    has_line(text, "# TYPE vllm:num_requests_running gauge");
    has_line(text, "vllm:num_requests_running{%s} 3.0", lbl);
    has_line(text, "vllm:num_requests_waiting{%s} 7.0", lbl);
    has_line(text, "vllm:kv_cache_usage_perc{%s} 0.25", lbl);
    has_line(text, "# TYPE vllm:prompt_tokens_total counter");
    has_line(text, "vllm:prompt_tokens_total{%s} 4242", lbl);
    has_line(text, "vllm:generation_tokens_total{%s} 123456789012", lbl);
    has_line(text, "# TYPE vllm:request_success_total counter");
    has_line(text, "vllm:request_success_total{%s,finished_reason=\"stop\"} 3", lbl);
    has_line(text, "vllm:request_success_total{%s,finished_reason=\"length\"} 9", lbl);
    has_line(text, "vllm:request_success_total{%s,finished_reason=\"abort\"} 6", lbl);

    /* Buckets are cumulative; +Inf counts every observation, as _count does. */
    const char *t = "vllm:time_to_first_token_seconds";
    has_line(text, "# TYPE %s histogram", t);
    has_line(text, "%s_bucket{%s,le=\"0.001\"} 1", t, lbl);
    has_line(text, "%s_bucket{%s,le=\"0.005\"} 1", t, lbl);
    has_line(text, "%s_bucket{%s,le=\"0.5\"} 3", t, lbl);
    has_line(text, "%s_bucket{%s,le=\"1.0\"} 6", t, lbl);
    has_line(text, "%s_bucket{%s,le=\"2560.0\"} 10", t, lbl);
    has_line(text, "%s_bucket{%s,le=\"+Inf\"} 15", t, lbl);
    has_line(text, "%s_sum{%s} 1234.5", t, lbl);
    has_line(text, "%s_count{%s} 15", t, lbl);
    for (int i = 0; i < 3; i++) {
        static const char *const other[] = {"vllm:inter_token_latency_seconds",
                                            "vllm:e2e_request_latency_seconds",
                                            "vllm:request_queue_time_seconds"};
        has_line(text, "# TYPE %s histogram", other[i]);
        has_line(text, "%s_bucket{%s,le=\"0.001\"} 0", other[i], lbl);
        has_line(text, "%s_bucket{%s,le=\"0.005\"} 1", other[i], lbl);
        has_line(text, "%s_bucket{%s,le=\"+Inf\"} 1", other[i], lbl);
        has_line(text, "%s_sum{%s} 0.004", other[i], lbl);
    }
    /* Our own metrics carry no labels. */
    has_line(text, "lanes_step_columns_bucket{le=\"1.0\"} 10");
    has_line(text, "lanes_step_columns_bucket{le=\"8.0\"} 30");
    has_line(text, "lanes_step_columns_bucket{le=\"64.0\"} 60");
    has_line(text, "lanes_step_columns_bucket{le=\"+Inf\"} 61");
    has_line(text, "lanes_step_columns_sum 1900.0");
    has_line(text, "lanes_step_columns_count 61");
    has_line(text, "lanes_step_seconds_count 1");
    has_line(text, "lanes_steps_total 99");
    has_line(text, "lanes_lanes_active 3.0");
    has_line(text, "lanes_lanes_capacity 128.0");
    has_line(text, "lanes_kv_lane_bytes 22679552.0");
    has_line(text, "lanes_requests_rejected_total 11");
    has_line(text, "lanes_request_errors_total 2");
    has_line(text, "lanes_connections 5.0");
    has_line(text, "lanes_connections_paused 1.0");
    has_line(text, "lanes_bytes_queued 65536.0");
    has_line(text, "lanes_http_requests_total 77");
    has_line(text, "lanes_uptime_seconds 12.5");
    check_families(text);
    int ok = promtool_ok(text, len);
    free(text);

    /* A zero snapshot (a server that has served nothing) and no model name are valid too. */
    memset(&st, 0, sizeof st);
    memset(&io, 0, sizeof io);
    text = io_metrics_text(&st, &io, NULL, &len);
    ASSERT(text != NULL);
    has_line(text, "vllm:num_requests_running{model_name=\"\",engine=\"0\"} 0.0");
    has_line(text, "vllm:request_queue_time_seconds_bucket{%s,le=\"+Inf\"} 0",
             "model_name=\"\",engine=\"0\"");
    has_line(text, "vllm:request_queue_time_seconds_sum{model_name=\"\",engine=\"0\"} 0.0");
    has_line(text, "lanes_step_seconds_count 0");
    check_families(text);
    int ok0 = promtool_ok(text, len);
    free(text);

    if (ok < 0) {
        fprintf(stderr, "SKIP: no promtool (Debian: prometheus); the text's own checks passed\n");
        return TEST_SKIP;
    }
    ASSERT(ok == 1 && ok0 == 1);
    return 0;
}
