/* Table, JSON, CSV and gnuplot output. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"

#ifndef LG_GIT_COMMIT
#define LG_GIT_COMMIT "unknown"                  /* set by loadgen/CMakeLists.txt at configure */
#endif

static const char *api_name(const lg_cfg_t *cfg) { return cfg->api == LG_API_OPENAI ? "openai" : "lanes"; }

void lg_report_header(FILE *f, const lg_cfg_t *cfg, const lg_meta_t *meta) {
    fprintf(f, "# lanes-loadgen --api %s%s%s, %s loop, %s, max_tokens %d%s%s",
            api_name(cfg), meta->model[0] ? ", model " : "", meta->model,
            cfg->mode == LG_MODE_OPEN ? "open" : "closed",
            cfg->duration_s > 0 ? "duration per point" : "fixed requests per stream",
            cfg->max_tokens, cfg->ignore_eos ? ", ignore_eos" : "", cfg->check ? ", --check" : "");
    if (cfg->input_len > 0) fprintf(f, ", input_len %d", cfg->input_len);
    fputc('\n', f);
    fprintf(f, "%7s %6s %4s %8s %9s %7s | %8s %8s %8s | %7s %7s %7s | %7s | %8s %8s | %8s %5s\n",
            "streams", "reqs", "err", "tokens", "tok/s", "req/s", "ttft_p50", "ttft_p90",
            "ttft_p99", "itl_p50", "itl_p90", "itl_p99", "tpot", "e2e_p50", "e2e_p99", "srv_tok",
            "cpu%");
    fflush(f);
}

void lg_report_row(FILE *f, const lg_point_t *p) {
    char srv[24] = "-";
    if (p->before.valid && p->after.valid) snprintf(srv, sizeof srv, "%.0f", p->server_tokens);
    fprintf(f,
            "%7.0f %6.0f %4.0f %8.0f %9.1f %7.2f | %8.2f %8.2f %8.2f | %7.2f %7.2f %7.2f | %7.2f | "
            "%8.1f %8.1f | %8s %5.1f",
            p->streams, p->requests_ok, p->requests_err, p->tokens, p->tok_s, p->req_s,
            p->ttft_ms_p50, p->ttft_ms_p90, p->ttft_ms_p99, p->itl_ms_p50, p->itl_ms_p90,
            p->itl_ms_p99, p->tpot_ms_mean, p->e2e_ms_p50, p->e2e_ms_p99, srv, p->client_cpu_pct);
    for (int i = 0; i < p->n_error_codes; i++)
        fprintf(f, "%s%s=%lld", i ? "," : "  errors: ", p->errors[i].code, p->errors[i].count);
    if (p->short_requests > 0 || p->finished_other > 0)   /* say so when not every one ran full */
        fprintf(f, "  finish: length=%.0f,stop=%.0f,other=%.0f (%.0f shorter than max_tokens)",
                p->finished_length, p->finished_stop, p->finished_other, p->short_requests);
    if (p->check_mismatches > 0) fprintf(f, "  CHECK MISMATCHES: %.0f", p->check_mismatches);
    if (!p->complete) fprintf(f, "  (incomplete)");
    fputc('\n', f);
    fflush(f);
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void json_stats(FILE *f, const char *name, const lg_srv_stats_t *s) {
    fprintf(f, ",\n      \"%s\": ", name);
    if (!s->valid) {
        fputs("null", f);
        return;
    }
    const char *sep = "{";
#define LG_X_JSON(n)                                                                              \
    fprintf(f, "%s\"" #n "\": %.15g", sep, s->n);                                                 \
    sep = ", ";
    LG_STATS_MAP(LG_X_JSON)
#undef LG_X_JSON
    fputc('}', f);
}

static int close_checked(FILE *f, const char *path) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: cannot write %s: %s", path, strerror(errno));
        return LANES_EIO;
    }
    return LANES_OK;
}

void lg_json_str_or_null(FILE *f, const char *s) {
    if (*s) json_str(f, s);
    else fputs("null", f);
}

static void json_num_or_null(FILE *f, double v) {
    if (v >= 0) fprintf(f, "%.15g", v);
    else fputs("null", f);
}

static void json_meta(FILE *f, const lg_cfg_t *cfg, const lg_meta_t *m) {
    fputs("  \"meta\": {\"model\": ", f);
    lg_json_str_or_null(f, m->model);
    fputs(", \"weight_type\": ", f);
    lg_json_str_or_null(f, m->weight_type);
    fputs(", \"server_lanes\": ", f);
    json_num_or_null(f, m->lanes_total);
    fputs(", \"server_threads\": ", f);
    json_num_or_null(f, m->threads);
    fputs(", \"date\": ", f);
    lg_json_str_or_null(f, m->date);
    fputs(", \"git_commit\": ", f);
    json_str(f, LG_GIT_COMMIT);
    fputs(", \"cpu\": ", f);
    lg_json_str_or_null(f, m->cpu);
    fputs(", \"loadgen_threads\": 1, \"command_line\": [", f);
    for (int i = 0; i < cfg->argc; i++) {
        if (i) fputs(", ", f);
        json_str(f, cfg->argv[i]);
    }
    fputs("]},\n", f);
}

int lg_report_json(const char *path, const lg_cfg_t *cfg, const lg_meta_t *meta,
                   const lg_point_t *pts, int n, int interrupted) {
    FILE *f = fopen(path, "w");
    if (!f) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: cannot write %s: %s", path, strerror(errno));
        return LANES_EIO;
    }
    fprintf(f, "{\n  \"interrupted\": %s,\n", interrupted ? "true" : "false");
    json_meta(f, cfg, meta);
    fprintf(f, "  \"config\": {\"api\": \"%s\", \"host\": ", api_name(cfg));
    json_str(f, cfg->host);
    fprintf(f, ", \"port\": %d, \"mode\": \"%s\", \"rate\": %.15g, \"requests_per_stream\": %d, "
               "\"duration_s\": %.15g, \"max_tokens\": %d, \"prompts\": ",
            cfg->port, cfg->mode == LG_MODE_OPEN ? "open" : "closed", cfg->rate, cfg->requests,
            cfg->duration_s, cfg->max_tokens);
    if (cfg->prompts_path) json_str(f, cfg->prompts_path);
    else fputs("null", f);
    fputs(", \"temperature\": ", f);
    if (cfg->has_temperature || cfg->check) fprintf(f, "%.15g", cfg->check ? 0.0 : cfg->temperature);
    else fputs("null", f);
    fputs(", \"seed\": ", f);
    if (cfg->has_seed) fprintf(f, "%llu", cfg->seed);
    else fputs("null", f);
    fprintf(f, ", \"ignore_eos\": %s, \"input_len\": ", cfg->ignore_eos ? "true" : "false");
    if (cfg->input_len > 0) fprintf(f, "%d", cfg->input_len);
    else fputs("null", f);
    fprintf(f, ", \"check\": %s},\n  \"points\": [", cfg->check ? "true" : "false");
    for (int i = 0; i < n; i++) {
        const lg_point_t *p = &pts[i];
        fprintf(f, "%s\n    {\"complete\": %s", i ? "," : "", p->complete ? "true" : "false");
#define LG_X_JSONF(name) fprintf(f, ", \"" #name "\": %.15g", p->name);
        LG_POINT_MAP(LG_X_JSONF)
#undef LG_X_JSONF
        fputs(",\n      \"errors\": {", f);
        for (int e = 0; e < p->n_error_codes; e++) {
            if (e) fputs(", ", f);
            json_str(f, p->errors[e].code);
            fprintf(f, ": %lld", p->errors[e].count);
        }
        fputc('}', f);
        json_stats(f, "server_before", &p->before);
        json_stats(f, "server_after", &p->after);
        fputc('}', f);
    }
    fputs("\n  ]\n}\n", f);
    return close_checked(f, path);
}

int lg_report_csv(const char *path, const lg_point_t *pts, int n) {
    FILE *f = fopen(path, "w");
    if (!f) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: cannot write %s: %s", path, strerror(errno));
        return LANES_EIO;
    }
    fputs("complete", f);
#define LG_X_CSVH(name) fputs("," #name, f);
    LG_POINT_MAP(LG_X_CSVH)
#undef LG_X_CSVH
#define LG_X_CSVS(name) fputs(",before_" #name, f);
    LG_STATS_MAP(LG_X_CSVS)
#undef LG_X_CSVS
#define LG_X_CSVS(name) fputs(",after_" #name, f);
    LG_STATS_MAP(LG_X_CSVS)
#undef LG_X_CSVS
    fputs(",errors\n", f);
    for (int i = 0; i < n; i++) {
        const lg_point_t *p = &pts[i];
        fprintf(f, "%d", p->complete);
#define LG_X_CSV(name) fprintf(f, ",%.15g", p->name);
        LG_POINT_MAP(LG_X_CSV)
#undef LG_X_CSV
#define LG_X_CSV(name) fprintf(f, ",%.15g", p->before.name);
        LG_STATS_MAP(LG_X_CSV)
#undef LG_X_CSV
#define LG_X_CSV(name) fprintf(f, ",%.15g", p->after.name);
        LG_STATS_MAP(LG_X_CSV)
#undef LG_X_CSV
        fputc(',', f);
        for (int e = 0; e < p->n_error_codes; e++)       /* codes are upper-case names: no quoting */
            fprintf(f, "%s%s:%lld", e ? ";" : "", p->errors[e].code, p->errors[e].count);
        fputc('\n', f);
    }
    return close_checked(f, path);
}

static int on_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char buf[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, prog);
        if (n > 0 && access(buf, X_OK) == 0) return 1;
        path += n;
        if (*path == ':') path++;
    }
    return 0;
}

/* s inside a single-quoted gnuplot string. */
static void gp_str(FILE *g, const char *s) {
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', g);
        fputc(*s, g);
    }
}

int lg_report_plot(const char *path, const lg_cfg_t *cfg, const lg_meta_t *meta,
                   const lg_point_t *pts, int n) {
    if (!on_path("gnuplot")) {
        LANES_LOG(LANES_LOG_WARN, "loadgen: gnuplot is not installed (not on PATH): skipping the plot %s",
                  path);
        return LANES_ENOENT;
    }
    int svg = strlen(path) >= 4 && strcmp(path + strlen(path) - 4, ".svg") == 0;
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: cannot run gnuplot: %s", strerror(errno));
        return LANES_EIO;
    }
    fputs("$d << EOD\n", g);
    for (int i = 0; i < n; i++)
        if (pts[i].requests_ok > 0)
            fprintf(g, "%g %g %g %g %g %g %g %g %g\n", pts[i].streams, pts[i].tok_s, pts[i].ttft_ms_p50,
                    pts[i].ttft_ms_p90, pts[i].ttft_ms_p99, pts[i].itl_ms_p50, pts[i].itl_ms_p90,
                    pts[i].itl_ms_p99, pts[i].stream_tok_s);
    fputs("EOD\n", g);
    if (svg) fputs("set terminal svg size 1800,520 dynamic noenhanced\n", g);
    else fputs("set terminal pngcairo size 1800,520 noenhanced\n", g);
    fputs("set output '", g);
    gp_str(g, path);
    char title[512];
    snprintf(title, sizeof title, "%s (--api %s, %s loop, max_tokens %d%s, %s, %s)",
             meta->model[0] ? meta->model : "unknown model", api_name(cfg),
             cfg->mode == LG_MODE_OPEN ? "open" : "closed", cfg->max_tokens,
             cfg->ignore_eos ? ", ignore_eos" : "", meta->cpu[0] ? meta->cpu : "unknown CPU", meta->date);
    fputs("'\nset multiplot layout 1,3 title '", g);
    gp_str(g, title);
    fputs("'\n"
          "set logscale x 2\nset grid\nset key top left\nset xlabel 'streams'\n"
          "set title 'aggregate output throughput'\nset ylabel 'tokens/s'\nset yrange [0:*]\n"
          "plot $d using 1:2 with linespoints lw 2 pt 7 title 'tok/s'\n"
          "set title 'latency percentiles'\nset ylabel 'ms'\nset logscale y\nset yrange [*:*]\n"
          "plot $d using 1:3 w lp pt 7 title 'TTFT p50', '' using 1:4 w lp pt 7 title 'TTFT p90', "
          "'' using 1:5 w lp pt 7 title 'TTFT p99', '' using 1:6 w lp pt 5 dt 2 title 'ITL p50', "
          "'' using 1:7 w lp pt 5 dt 2 title 'ITL p90', '' using 1:8 w lp pt 5 dt 2 title 'ITL p99'\n"
          "set title 'per-stream against aggregate throughput (labels: streams)'\n"
          "unset logscale\nset logscale x 2\nset xlabel 'aggregate tokens/s'\n"
          "set ylabel 'tokens/s per stream'\nset yrange [0:*]\nset key bottom left\n"
          "plot $d using 2:9 with linespoints lw 2 pt 7 title 'per stream', "
          "'' using 2:9:(stringcolumn(1)) with labels offset 0,1 notitle\n"
          "unset multiplot\n",
          g);
    int st = pclose(g);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: gnuplot failed drawing %s", path);
        return LANES_EIO;
    }
    return LANES_OK;
}
