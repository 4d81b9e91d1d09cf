/* lanes-bench: engine-only throughput. A kernel table (our lane GEMM vs OpenBLAS on the model's
 * shapes), then decode throughput for 1..128 lanes, prefill throughput, and the decode step time
 * of each sampler against greedy. */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_arg.h"
#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "bundle.h"
#include "engine.h"
#include "kern/kern.h"

#define MAX_POINTS 16

static void usage(FILE *f) {
    fprintf(f,
            "usage: lanes-bench [-m MODEL -z TOKENIZER | --preset tiny|15m|110m[-ARCH]\n"
            "                   [--type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k] [--seq-len N]]\n"
            "                   [--threads N] [--gemm lanes|openblas] [--lanes 1,2,4,...]\n"
            "                   [--steps N] [--pos P] [--ctx N] [--no-kernels] [--no-decode]\n"
            "                   [--no-sampling] [--sample-lanes 1,32,128] [--rounds N]\n"
            "                   [--logprobs N] [--vs-global] [--vs-nocap] [--vs PRESET,...]\n"
            "                   [--json FILE]\n"
            "Without -m the synthetic 15m model is used, its matrices in --type (default f32),\n"
            "its context --seq-len (default the preset's: RoPE tables and the rest follow).\n"
            "Decode runs --steps steps per point,\n"
            "starting at position --pos (default 32) after a prefill. The sampling table times\n"
            "greedy, T=1, top-k 40 and top-p 0.9 decode steps in --rounds interleaved rounds\n"
            "(default 3) and keeps each one's best median; --logprobs N (0..%d) adds greedy\n"
            "steps where every lane asks for its logprobs and top N alternatives. --vs-global\n"
            "times a sliding-window model's decode steps and their attention phase against\n"
            "its twin with every layer global, in --rounds interleaved rounds. --vs times the\n"
            "model's decode steps against each preset listed (of the same --type, --seq-len and\n"
            "--ctx) in --rounds interleaved rounds, every lane decoding on from --pos (moved\n"
            "back so that all rounds fit the context), and gives each one's KV bytes per lane.\n"
            "--vs-nocap times a softcapped model's greedy and T=1 decode steps against its twin\n"
            "without the final logit softcap, in --rounds interleaved rounds.\n",
            ENG_MAX_TOP_LOGPROBS);
}

static double now_s(void) { return (double)lanes_now_ns() * 1e-9; }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static float *random_floats(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
    return p;
}

/* Best-of-repeats seconds for one call of fn, repeated until at least ~0.2 s have passed. */
typedef void (*bench_fn)(void *arg);
static double time_best(bench_fn fn, void *arg) {
    double best = 1e30, start = now_s();
    int reps = 0;
    do {
        double t0 = now_s();
        fn(arg);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
        reps++;
    } while (reps < 3 || (now_s() - start < 0.2 && reps < 1000));
    return best;
}

typedef struct {
    eng_ctx_t *ctx;
    float *y;
    const float *w, *x;
    int rows, n, k;
} gemm_arg_t;

static void run_ours(void *opaque) {
    gemm_arg_t *a = opaque;
    eng_ctx_gemm(a->ctx, a->y, a->w, a->x, a->rows, a->n, a->k);
}

static void run_blas(void *opaque) {
    gemm_arg_t *a = opaque;
    if (a->n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, a->rows, a->k, 1.0f, a->w, a->k, a->x, 1, 0.0f,
                    a->y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->n, a->rows, a->k, 1.0f, a->x, a->k,
                    a->w, a->k, 0.0f, a->y, a->rows);
}

static double blas_2048_gflops(void) {
    int n = 2048;
    float *a = random_floats((size_t)n * n, 1), *b = random_floats((size_t)n * n, 2);
    float *c = malloc((size_t)n * n * sizeof *c);
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / best * 1e-9;
}

static void kernel_table(eng_ctx_t *ctx, const eng_model_cfg_t *mc, cJSON *out) {
    int q = mc->n_heads * mc->head_dim, kv = mc->n_kv_heads * mc->head_dim;
    int shapes[][3] = {{q, mc->dim, 0}, {kv, mc->dim, 0}, {mc->hidden_dim, mc->dim, 0},
                       {mc->dim, mc->hidden_dim, 0}, {mc->vocab_size, mc->dim, 0}};
    const char *names[] = {"wq/wo", "wk/wv", "w1/w3", "w2", "wcls"};
    int ns[] = {1, 8, 32, 128};
    cJSON *arr = cJSON_AddArrayToObject(out, "kernels");
    printf("\n%-6s %6s %6s %4s %12s %12s %7s\n", "matrix", "rows", "k", "N", "ours GF/s",
           "openblas GF/s", "ratio");
    for (int s = 0; s < 5; s++) {
        if (s == 1 && kv == q) continue;   /* same shape as wq */
        int rows = shapes[s][0], k = shapes[s][1];
        float *w = random_floats((size_t)rows * k, 3);
        for (int i = 0; i < 4; i++) {
            int n = ns[i];
            if (n > eng_ctx_max_cols(ctx)) continue;
            float *x = random_floats((size_t)n * k, 4), *y = malloc((size_t)n * rows * sizeof *y);
            gemm_arg_t a = {ctx, y, w, x, rows, n, k};
            double flops = 2.0 * rows * (double)k * n;
            double ours = flops / time_best(run_ours, &a) * 1e-9;
            double blas = flops / time_best(run_blas, &a) * 1e-9;
            printf("%-6s %6d %6d %4d %12.1f %12.1f %6.0f%%\n", names[s], rows, k, n, ours, blas,
                   100.0 * ours / blas);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "matrix", names[s]);
            cJSON_AddNumberToObject(o, "rows", rows);
            cJSON_AddNumberToObject(o, "k", k);
            cJSON_AddNumberToObject(o, "n", n);
            cJSON_AddNumberToObject(o, "ours_gflops", ours);
            cJSON_AddNumberToObject(o, "openblas_gflops", blas);
            cJSON_AddItemToArray(arr, o);
            free(x);
            free(y);
        }
        free(w);
    }
}

typedef struct {
    const eng_kern_ops_t *ops;
    int type; /* 0 fp32, 1 F16, 2 BF16 */
    float *y;
    const void *w;
    const float *x;
    int rows, n, k;
} wtype_arg_t;

static void run_wtype(void *opaque) {
    wtype_arg_t *a = opaque;
    if (a->type == 0)
        a->ops->gemm(a->y, 1, a->rows, a->w, a->x, a->rows, a->n, a->k, 0);
    else
        (a->type == 1 ? a->ops->gemm_f16 : a->ops->gemm_bf16)(a->y, 1, a->rows, a->w, a->x, a->rows,
                                                             a->n, a->k, 0);
}

typedef struct {
    const eng_kern_ops_t *ops;
    int wtype, quantize; /* quantize: time the activation quantization of the n columns instead */
    float *y;
    const void *w;
    const float *x;
    const eng_qact_t *q;
    int rows, n;
} qtype_arg_t;

static void run_qtype(void *opaque) {
    qtype_arg_t *a = opaque;
    if (a->quantize)
        for (int c = 0; c < a->n; c++) a->ops->quantize_act(a->q, c, a->x + (size_t)c * a->q->k);
    else
        a->ops->gemm_q(a->y, 1, a->rows, a->wtype, a->w, a->q, a->rows, a->n, 0);
}

/* rows x k weights w quantized to wtype row by row; NULL when out of memory. */
static uint8_t *quant_weights(int wtype, const float *w, int rows, int k) {
    size_t rb = eng_wtype_row_bytes(wtype, k);
    uint8_t *q = malloc(rb * rows);
    for (int r = 0; q && r < rows; r++) eng_quant_row(wtype, q + rb * r, w + (size_t)r * k, k);
    return q;
}

/* A table cell; 0 is a shape the type does not apply to. */
static void print_cell(double v) {
    if (v) printf(" %7.1f", v);
    else printf(" %7s", "-");
}

/* F16, BF16 and the quantized types against fp32 on the model's shapes: the best kernel table on
 * one thread (no thread split to blur it), so the ratio is the kernels' own. The 16-bit kernels
 * read half the bytes, Q8_0 about a quarter: that pays where the weights stream from memory
 * (wcls; every matrix of a big model). The quantized GEMMs are timed without the activation
 * quantization (once per step and input in the engine, shared by wq/wk/wv and by w1/w3), which
 * is timed on its own: microseconds for the N columns. k-quants need k a multiple of 256. */
static void weight_type_table(const eng_model_cfg_t *mc, cJSON *out) {
    const eng_kern_ops_t *ops = eng_kern_best();
    int shapes[][2] = {{mc->dim, mc->dim}, {mc->hidden_dim, mc->dim}, {mc->dim, mc->hidden_dim},
                       {mc->vocab_size, mc->dim}};
    const char *names[] = {"wq/wo", "w1/w3", "w2", "wcls"};
    static const int qtypes[] = {ENG_WT_Q8_0, ENG_WT_Q4_0, ENG_WT_Q4_K, ENG_WT_Q6_K};
    static const char *const qkeys[] = {"q8_0_gflops", "q4_0_gflops", "q4_k_gflops", "q6_k_gflops"};
    int ns[] = {1, 128};
    cJSON *arr = cJSON_AddArrayToObject(out, "weight_types");
    printf("\nweight types, %s kernels, 1 thread (GFLOP/s; activation quantization in us)\n",
           ops->name);
    printf("%-6s %6s %6s %4s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s %7s\n", "matrix", "rows", "k",
           "N", "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k", "f16/f32", "q8/f32", "act8us",
           "actKus");
    for (int s = 0; s < 4; s++) {
        int rows = shapes[s][0], k = shapes[s][1];
        size_t nw = (size_t)rows * k;
        float *w = random_floats(nw, 3);
        uint16_t *w16[2] = {malloc(nw * sizeof(uint16_t)), malloc(nw * sizeof(uint16_t))};
        unsigned seed = 5;
        for (size_t i = 0; i < nw; i++) { /* values in +-[0.5, 1): no special cases */
            seed = seed * 1664525u + 1013904223u;
            w16[0][i] = (uint16_t)(0x3800u | ((seed >> 8) & 0x83ffu));
            w16[1][i] = (uint16_t)(0x3f00u | ((seed >> 8) & 0x807fu));
        }
        uint8_t *wq[4] = {0};
        for (int t = 0; t < 4; t++)
            if (k % eng_quant_block_values(qtypes[t]) == 0)
                wq[t] = quant_weights(qtypes[t], w, rows, k);
        for (int i = 0; i < 2; i++) {
            int n = ns[i];
            float *x = random_floats((size_t)n * k, 4), *y = malloc((size_t)n * rows * sizeof *y);
            double flops = 2.0 * rows * (double)k * n, gf[3], gq[4] = {0}, act_us[2] = {0};
            for (int t = 0; t < 3; t++) {
                wtype_arg_t a = {ops, t, y, t ? (const void *)w16[t - 1] : w, x, rows, n, k};
                gf[t] = flops / time_best(run_wtype, &a) * 1e-9;
            }
            for (int act = ENG_ACT_Q8_0; act <= ENG_ACT_Q8_K; act++) {
                if (k % eng_quant_act_block(act)) continue;
                eng_qact_t q = {act, k, malloc(eng_qact_qs_len(n, k)),
                                malloc(eng_qact_d_len(act, n, k) * sizeof(float)),
                                malloc(eng_qact_sums_len(n, k) * sizeof(int16_t))};
                qtype_arg_t a = {ops, 0, 1, y, NULL, x, &q, rows, n};
                act_us[act] = time_best(run_qtype, &a) * 1e6;
                run_qtype(&a);
                a.quantize = 0;
                for (int t = 0; t < 4; t++)
                    if (wq[t] && eng_quant_act_type(qtypes[t]) == act) {
                        a.wtype = qtypes[t], a.w = wq[t];
                        gq[t] = flops / time_best(run_qtype, &a) * 1e-9;
                    }
                free(q.qs), free(q.d), free(q.sums);
            }
            printf("%-6s %6d %6d %4d %7.1f %7.1f %7.1f", names[s], rows, k, n, gf[0], gf[1], gf[2]);
            for (int t = 0; t < 4; t++) print_cell(gq[t]);
            printf(" %6.2fx %6.2fx", gf[1] / gf[0], gq[0] / gf[0]);
            print_cell(act_us[0]);
            print_cell(act_us[1]);
            printf("\n");
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "matrix", names[s]);
            cJSON_AddNumberToObject(o, "rows", rows);
            cJSON_AddNumberToObject(o, "k", k);
            cJSON_AddNumberToObject(o, "n", n);
            cJSON_AddNumberToObject(o, "f32_gflops", gf[0]);
            cJSON_AddNumberToObject(o, "f16_gflops", gf[1]);
            cJSON_AddNumberToObject(o, "bf16_gflops", gf[2]);
            for (int t = 0; t < 4; t++)
                if (gq[t]) cJSON_AddNumberToObject(o, qkeys[t], gq[t]);
            cJSON_AddNumberToObject(o, "act_q8_0_us", act_us[0]);
            if (act_us[1]) cJSON_AddNumberToObject(o, "act_q8_k_us", act_us[1]);
            cJSON_AddItemToArray(arr, o);
            free(x);
            free(y);
        }
        free(w);
        free(w16[0]);
        free(w16[1]);
        for (int t = 0; t < 4; t++) free(wq[t]);
    }
}

/* A context under benchmark and how far each of its lanes is filled. */
typedef struct {
    eng_ctx_t *ctx;
    const eng_model_cfg_t *mc;
    int onward;                     /* decode each lane on from its filled length, never back */
    int filled[ENG_MAX_LANES];
} bench_lanes_t;

/* A delta-net layer's recurrent state cannot rewind: such a model always decodes onward. */
static void bench_lanes_init(bench_lanes_t *b, eng_ctx_t *ctx, int onward) {
    *b = (bench_lanes_t){ctx, eng_ctx_model_cfg(ctx), onward, {0}};
    for (int l = 0; l < b->mc->n_layers; l++) b->onward |= b->mc->layer_kind[l] == ENG_LAYER_DNET;
}

static int step_or_say(bench_lanes_t *b, const eng_col_t *cols, int n, int32_t *tok) {
    int rc = eng_step(b->ctx, cols, n, tok);
    if (rc < 0)
        fprintf(stderr, "lanes-bench: a step of %d columns from lane %d position %d was refused: %s\n",
                n, cols[0].lane, cols[0].pos, lanes_strerror(rc));
    return rc;
}

/* Fills positions 0..pos-1 of the lanes below `lanes` not filled yet, in chunks the context
 * allows. */
static int prefill_lanes(bench_lanes_t *b, int lanes, int pos) {
    int maxc = eng_ctx_max_cols(b->ctx), rc = LANES_OK;
    eng_col_t *cols = malloc((size_t)maxc * sizeof *cols);
    int32_t *tok = malloc((size_t)maxc * sizeof *tok);
    for (int l = 0; l < lanes && rc == LANES_OK; l++) {
        if (b->filled[l]) continue;
        eng_ctx_set_sampler(b->ctx, l, &(eng_sampler_t){0.0f, 0, 1.0f, 0});
        for (int p = 0; p < pos && rc == LANES_OK; p += maxc) {
            int n = pos - p < maxc ? pos - p : maxc;
            for (int i = 0; i < n; i++)
                cols[i] = (eng_col_t){l, p + i, (int32_t)((l * 131 + p + i) % b->mc->vocab_size),
                                      p + i == pos - 1, NULL, NULL};
            rc = step_or_say(b, cols, n, tok);
        }
        b->filled[l] = pos;
    }
    free(cols);
    free(tok);
    return rc;
}

/* Times `steps` decode steps of lanes 0..lanes-1 with sampler smp (lane l seeded with l), over a
 * prefill of at least pos positions: from position pos (rerunning from there only overwrites the
 * cache rows these steps wrote before), or, b->onward, each lane on from its filled length.
 * Returns the median, and the median of their attention phases in *attn (NULL: not wanted); -1
 * when a step was refused or a lane would pass the context. top_n >= 0: every column asks for
 * logprobs with that many alternatives. */
static double decode_steps(bench_lanes_t *b, int lanes, int pos, int steps,
                           const eng_sampler_t *smp, int top_n, double *attn) {
    eng_col_t *cols = malloc((size_t)lanes * sizeof *cols);
    int32_t *next = malloc((size_t)lanes * sizeof *next);
    double *t = malloc((size_t)steps * sizeof *t), *ta = malloc((size_t)steps * sizeof *ta);
    eng_logprobs_t *lp = top_n >= 0 ? malloc((size_t)lanes * sizeof *lp) : NULL;
    int *start = malloc((size_t)lanes * sizeof *start), rc = LANES_OK;
    for (int l = 0; l < lanes; l++) {
        eng_sampler_t s = *smp;
        s.seed = (uint64_t)l;
        eng_ctx_set_sampler(b->ctx, l, &s);
        next[l] = (int32_t)((l * 7 + 3) % b->mc->vocab_size);
        start[l] = b->onward ? b->filled[l] : pos;
        if (start[l] + steps > eng_ctx_seq_len(b->ctx)) {
            fprintf(stderr, "lanes-bench: lane %d would decode past the context (%d + %d steps > "
                    "%d): lower --pos or --steps\n", l, start[l], steps, eng_ctx_seq_len(b->ctx));
            rc = LANES_ERANGE;
        }
    }
    for (int s = 0; s < steps && rc == LANES_OK; s++) {
        for (int l = 0; l < lanes; l++) {
            cols[l] = (eng_col_t){l, start[l] + s, next[l], 1, NULL, lp ? &lp[l] : NULL};
            if (lp) lp[l].top_n = top_n;
        }
        uint64_t a0 = eng_ctx_attention_ns(b->ctx);
        double t0 = now_s();
        rc = step_or_say(b, cols, lanes, next);
        t[s] = now_s() - t0;
        ta[s] = (double)(eng_ctx_attention_ns(b->ctx) - a0) * 1e-9;
    }
    for (int l = 0; l < lanes && rc == LANES_OK; l++)
        if (start[l] + steps > b->filled[l]) b->filled[l] = start[l] + steps;
    double med = rc == LANES_OK ? median(t, steps) : -1;
    if (attn && rc == LANES_OK) *attn = median(ta, steps);
    free(cols);
    free(next);
    free(t);
    free(ta);
    free(lp);
    free(start);
    return med;
}

static const eng_sampler_t greedy = {0.0f, 0, 1.0f, 0};

/* Per lanes point: fills the point's lanes of each of the n contexts, then times greedy decode
 * steps in `rounds` rounds of `steps`-step medians, the contexts in turn within each round (a
 * shared host's load swing hits them alike), and keeps each context's best: step[i * n + m] and
 * attn[i * n + m] seconds for point i and context m. Prints each point's row through row(). */
typedef void (*point_row_fn)(int point, const double *step, const double *attn, void *arg);
static int time_interleaved(bench_lanes_t *const *b, int n, const int *lanes, int npoints, int pos,
                            int steps, int rounds, double *step, double *attn, point_row_fn row,
                            void *arg) {
    for (int i = 0; i < npoints; i++) {
        double *st = step + (size_t)i * n, *at = attn + (size_t)i * n;
        for (int m = 0; m < n; m++) {
            if (prefill_lanes(b[m], lanes[i], pos) < 0) return -1;
            st[m] = at[m] = 1e30;
        }
        for (int r = 0; r < rounds; r++)
            for (int m = 0; m < n; m++) {
                double a, s = decode_steps(b[m], lanes[i], pos, steps, &greedy, -1, &a);
                if (s < 0) return -1;
                if (s < st[m]) st[m] = s;
                if (a < at[m]) at[m] = a;
            }
        row(i, st, at, arg);
        fflush(stdout);
    }
    return 0;
}

typedef struct {
    const int *lanes;
    cJSON *arr;
} global_rows_t;

static void global_row(int i, const double *st, const double *at, void *arg) {
    global_rows_t *g = arg;
    printf("%5d %9.3f %9.3f %11.3f %11.3f %7.1f%% %7.2fx\n", g->lanes[i], st[0] * 1e3, at[0] * 1e3,
           st[1] * 1e3, at[1] * 1e3, 100.0 * at[0] / at[1], st[1] / st[0]);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "lanes", g->lanes[i]);
    cJSON_AddNumberToObject(o, "step_ms", st[0] * 1e3);
    cJSON_AddNumberToObject(o, "attn_ms", at[0] * 1e3);
    cJSON_AddNumberToObject(o, "global_step_ms", st[1] * 1e3);
    cJSON_AddNumberToObject(o, "global_attn_ms", at[1] * 1e3);
    cJSON_AddItemToArray(g->arr, o);
}

/* --vs-global: the model against its twin with every layer global (the same shape, window 0) at
 * each lanes point from position pos, in `rounds` interleaved rounds of `steps`-step medians,
 * best of each: step and attention-phase ms, and KV bytes per lane. */
static int global_table(bench_lanes_t *slide, bench_lanes_t *glob, const eng_ctx_plan_t *plan,
                        const eng_ctx_plan_t *gplan, const int *lanes, int npoints, int pos,
                        int steps, int rounds, cJSON *out) {
    global_rows_t g = {lanes, cJSON_AddArrayToObject(out, "vs_global")};
    printf("\nsliding window vs all layers global: decode from position %d, best of %d interleaved "
           "rounds of %d-step medians\nKV cache per lane: %.2f MiB vs %.2f MiB all global\n", pos,
           rounds, steps, (double)plan->kv_lane / (1 << 20), (double)gplan->kv_lane / (1 << 20));
    printf("%5s %9s %9s %11s %11s %8s %8s\n", "lanes", "step ms", "attn ms", "glob step",
           "glob attn", "attn %", "speedup");
    cJSON_AddNumberToObject(out, "kv_lane_bytes", (double)plan->kv_lane);
    cJSON_AddNumberToObject(out, "global_kv_lane_bytes", (double)gplan->kv_lane);
    double st[MAX_POINTS * 2], at[MAX_POINTS * 2];
    bench_lanes_t *b[2] = {slide, glob};
    return time_interleaved(b, 2, lanes, npoints, pos, steps, rounds, st, at, global_row, &g);
}

typedef struct {
    const int *lanes;
    const char *const *names;
    int n;
    cJSON *arr;
} family_rows_t;

static void family_row(int i, const double *st, const double *at, void *arg) {
    family_rows_t *f = arg;
    for (int m = 0; m < f->n; m++) {
        printf("%5d %-16s %9.3f %9.3f %10.1f %8.2fx %8.1f%%\n", f->lanes[i], f->names[m],
               st[m] * 1e3, at[m] * 1e3, f->lanes[i] / st[m], st[0] / st[m],
               100.0 * at[m] / at[0]);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "lanes", f->lanes[i]);
        cJSON_AddStringToObject(o, "model", f->names[m]);
        cJSON_AddNumberToObject(o, "step_ms", st[m] * 1e3);
        cJSON_AddNumberToObject(o, "attn_ms", at[m] * 1e3);
        cJSON_AddNumberToObject(o, "tok_s", f->lanes[i] / st[m]);
        cJSON_AddItemToArray(f->arr, o);
    }
}

/* --vs: the model (first) against other presets, every lane decoding onward from position pos in
 * all of them alike, in `rounds` interleaved rounds of `steps`-step medians, best of each: step
 * and attention-phase ms, tok/s, and KV (and recurrent state) bytes per lane; ratios to the
 * first. */
static int family_table(bench_lanes_t *const *b, const char *const *names,
                        const eng_ctx_plan_t *plans, const double *fpt, int n, const int *lanes,
                        int npoints, int pos, int steps, int rounds, cJSON *out) {
    cJSON *fam = cJSON_AddObjectToObject(out, "families");
    cJSON_AddNumberToObject(fam, "pos", pos);
    cJSON_AddNumberToObject(fam, "ctx", eng_ctx_seq_len(b[0]->ctx));
    cJSON *models = cJSON_AddArrayToObject(fam, "models");
    printf("\nmodels compared: decode steps from position %d on (each lane goes on where it is, in "
           "every model alike), best of %d interleaved rounds of %d-step medians; context %d\n",
           pos, rounds, steps, eng_ctx_seq_len(b[0]->ctx));
    printf("%-16s %12s %12s\n", "model", "KV MiB/lane", "MFLOP/token");
    for (int m = 0; m < n; m++) {
        printf("%-16s %12.2f %12.1f\n", names[m], (double)plans[m].kv_lane / (1 << 20),
               fpt[m] * 1e-6);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", names[m]);
        cJSON_AddNumberToObject(o, "kv_lane_bytes", (double)plans[m].kv_lane);
        cJSON_AddNumberToObject(o, "flops_per_token", fpt[m]);
        cJSON_AddItemToArray(models, o);
    }
    printf("%5s %-16s %9s %9s %10s %9s %9s\n", "lanes", "model", "step ms", "attn ms", "tok/s",
           "tok/s x", "attn %");
    family_rows_t f = {lanes, names, n, cJSON_AddArrayToObject(fam, "points")};
    double *st = malloc((size_t)npoints * n * sizeof *st), *at = malloc((size_t)npoints * n * sizeof *at);
    int rc = time_interleaved(b, n, lanes, npoints, pos, steps, rounds, st, at, family_row, &f);
    free(st);
    free(at);
    return rc;
}

/* Greedy, plain temperature (the fused Gumbel path) and the two whole-row filters. */
static const struct {
    const char *name;
    eng_sampler_t s;
} samplers[] = {{"greedy", {0.0f, 0, 1.0f, 0}},
                {"T=1", {1.0f, 0, 1.0f, 0}},
                {"top-k 40", {1.0f, 40, 1.0f, 0}},
                {"top-p 0.9", {1.0f, 0, 0.9f, 0}}};
#define N_SAMPLERS (int)(sizeof samplers / sizeof *samplers)

/* --vs-nocap: a softcapped model's greedy and T=1 decode steps against its twin without the cap
 * at each lanes point from position pos, in `rounds` interleaved rounds of `steps`-step medians,
 * best of each. */
static int nocap_table(bench_lanes_t *cap, bench_lanes_t *nocap, float softcap, const int *lanes,
                       int npoints, int pos, int steps, int rounds, cJSON *out) {
    cJSON *arr = cJSON_AddArrayToObject(out, "vs_nocap");
    printf("\nfinal softcap %g vs none: decode step ms from position %d, best of %d interleaved "
           "rounds of %d-step medians\n", (double)softcap, pos, rounds, steps);
    printf("%5s %9s %9s %7s %9s %9s %7s\n", "lanes", "greedy", "no cap", "cost", "T=1", "no cap",
           "cost");
    bench_lanes_t *b[2] = {cap, nocap};
    for (int i = 0; i < npoints; i++) {
        for (int m = 0; m < 2; m++)
            if (prefill_lanes(b[m], lanes[i], pos) < 0) return -1;
        double best[4] = {1e30, 1e30, 1e30, 1e30};   /* greedy, greedy uncapped, T=1, ... */
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < 4; k++) {
                double st = decode_steps(b[k % 2], lanes[i], pos, steps, &samplers[k / 2].s, -1,
                                         NULL);
                if (st < 0) return -1;
                if (st < best[k]) best[k] = st;
            }
        printf("%5d %9.3f %9.3f %6.1f%% %9.3f %9.3f %6.1f%%\n", lanes[i], best[0] * 1e3,
               best[1] * 1e3, 100.0 * (best[0] / best[1] - 1), best[2] * 1e3, best[3] * 1e3,
               100.0 * (best[2] / best[3] - 1));
        fflush(stdout);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "lanes", lanes[i]);
        cJSON_AddNumberToObject(o, "greedy_ms", best[0] * 1e3);
        cJSON_AddNumberToObject(o, "greedy_nocap_ms", best[1] * 1e3);
        cJSON_AddNumberToObject(o, "t1_ms", best[2] * 1e3);
        cJSON_AddNumberToObject(o, "t1_nocap_ms", best[3] * 1e3);
        cJSON_AddItemToArray(arr, o);
    }
    return 0;
}

/* Per lanes point: the samplers' decode steps in `rounds` interleaved rounds (a shared host's
 * load hits them alike), each sampler's best median, and its ratio to greedy's; top_n >= 0 adds
 * greedy steps with logprobs on every lane as a last column. */
static int sampling_table(bench_lanes_t *b, const int *lanes, int npoints, int pos, int steps,
                          int rounds, int top_n, cJSON *out) {
    cJSON *arr = cJSON_AddArrayToObject(out, "sampling");
    int nk = N_SAMPLERS + (top_n >= 0);
    char lp_name[32];
    snprintf(lp_name, sizeof lp_name, "logprobs %d", top_n);
    printf("\nsampling: decode step ms from position %d, best of %d rounds of %d-step medians\n",
           pos, rounds, steps);
    printf("%5s", "lanes");
    for (int k = 0; k < nk; k++)
        printf(" %10s %6s", k < N_SAMPLERS ? samplers[k].name : lp_name, "x");
    printf("\n");
    for (int i = 0; i < npoints; i++) {
        double best[N_SAMPLERS + 1];
        if (prefill_lanes(b, lanes[i], pos) < 0) return -1;
        for (int k = 0; k < nk; k++) best[k] = 1e30;
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < nk; k++) {   /* the logprobs steps are greedy's */
                double st = decode_steps(b, lanes[i], pos, steps,
                                         &samplers[k < N_SAMPLERS ? k : 0].s,
                                         k < N_SAMPLERS ? -1 : top_n, NULL);
                if (st < 0) return -1;
                if (st < best[k]) best[k] = st;
            }
        printf("%5d", lanes[i]);
        for (int k = 0; k < nk; k++) {
            printf(" %10.3f %5.2fx", best[k] * 1e3, best[k] / best[0]);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "lanes", lanes[i]);
            cJSON_AddStringToObject(o, "sampler", k < N_SAMPLERS ? samplers[k].name : lp_name);
            cJSON_AddNumberToObject(o, "step_ms", best[k] * 1e3);
            cJSON_AddNumberToObject(o, "vs_greedy", best[k] / best[0]);
            cJSON_AddItemToArray(arr, o);
        }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}

/* "1,2,4" into v (at most MAX_POINTS); raises *max. Returns the count, or -1 if malformed. */
static int parse_lanes(const char *list, int *v, int *max) {
    int n = 0;
    for (const char *p = list; *p;) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 1 || n == MAX_POINTS || (*end && *end != ',')) return -1;
        if (x > ENG_MAX_LANES) {
            fprintf(stderr, "lanes-bench: --lanes %ld: at most %d lanes\n", x, ENG_MAX_LANES);
            return -1;
        }
        v[n++] = (int)x;
        if (x > *max) *max = (int)x;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

/* The synthetic preset's model: cfg with seq_len (0: its own), weights of wtype from seed 1, the
 * draws eng_bundle_open() makes. */
static int synth_model(eng_model_cfg_t cfg, int seq_len, int wtype, eng_model_t **out) {
    if (seq_len) cfg.seq_len = seq_len;
    return eng_model_synth(&cfg, 1, wtype, out);
}

/* "a,b,c" into at most MAX_VS names pointing into list (overwritten: commas become NULs). */
#define MAX_VS 7
static int parse_names(char *list, const char **v) {
    int n = 0;
    for (char *p = list, *end; p; p = end ? end + 1 : NULL) {
        if ((end = strchr(p, ','))) *end = 0;
        if (!*p || n == MAX_VS) return -1;
        v[n++] = p;
    }
    return n;
}

int main(int argc, char **argv) {
    const char *model = NULL, *tokp = NULL, *preset = NULL, *json_path = NULL;
    const char *lanes_list = "1,2,4,8,16,32,64,128", *sample_list = "1,32,128";
    const char *vs_names[1 + MAX_VS];
    int threads = 0, gemm = ENG_GEMM_LANES, steps = 16, pos = 32, kernels = 1, decode = 1;
    int sampling = 1, rounds = 3, ctx_len = 0, wtype = ENG_WT_F32, top_n = -1, vs_global = 0;
    int seq_len = 0, nvs = 0, vs_nocap = 0;
    static const struct option opts[] = {
        {"preset", 1, 0, 'r'}, {"threads", 1, 0, 'T'}, {"gemm", 1, 0, 'g'}, {"lanes", 1, 0, 'l'},
        {"steps", 1, 0, 's'}, {"pos", 1, 0, 'p'}, {"json", 1, 0, 'j'}, {"no-kernels", 0, 0, 'K'},
        {"no-decode", 0, 0, 'D'}, {"no-sampling", 0, 0, 'S'}, {"sample-lanes", 1, 0, 'L'},
        {"rounds", 1, 0, 'R'}, {"ctx", 1, 0, 'x'}, {"type", 1, 0, 't'}, {"help", 0, 0, 'h'},
        {"logprobs", 1, 0, 'P'}, {"vs-global", 0, 0, 'G'}, {"seq-len", 1, 0, 'Q'},
        {"vs", 1, 0, 'V'}, {"vs-nocap", 0, 0, 'C'}, {0, 0, 0, 0}};
    int ch, bad = 0;
    while ((ch = getopt_long(argc, argv, "m:z:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'z': tokp = optarg; break;
        case 'r': preset = optarg; break;
        case 'T': bad |= lanes_arg_int("--threads", optarg, 0, INT_MAX, &threads) < 0; break;
        case 'l': lanes_list = optarg; break;
        case 's': bad |= lanes_arg_int("--steps", optarg, 1, INT_MAX, &steps) < 0; break;
        case 'p': bad |= lanes_arg_int("--pos", optarg, 1, INT_MAX, &pos) < 0; break;
        case 'x': bad |= lanes_arg_int("--ctx", optarg, 0, INT_MAX, &ctx_len) < 0; break;
        case 'Q': bad |= lanes_arg_int("--seq-len", optarg, 1, INT_MAX, &seq_len) < 0; break;
        case 'V': bad |= (nvs = parse_names(optarg, vs_names + 1)) < 0; break;
        case 'j': json_path = optarg; break;
        case 'K': kernels = 0; break;
        case 'D': decode = 0; break;
        case 'S': sampling = 0; break;
        case 'G': vs_global = 1; break;
        case 'C': vs_nocap = 1; break;
        case 'L': sample_list = optarg; break;
        case 'R': bad |= lanes_arg_int("--rounds", optarg, 1, INT_MAX, &rounds) < 0; break;
        case 'P':
            bad |= lanes_arg_int("--logprobs", optarg, 0, ENG_MAX_TOP_LOGPROBS, &top_n) < 0;
            break;
        case 't':
            if ((wtype = eng_wtype_by_name(optarg)) < 0) {
                fprintf(stderr, "lanes-bench: --type %s: not f32, f16, bf16, q8_0, q4_0, q4_k or "
                        "q6_k\n", optarg);
                return 2;
            }
            break;
        case 'g':
            if ((gemm = eng_gemm_by_name(optarg)) < 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int lanes[MAX_POINTS], slanes[MAX_POINTS], max_lanes = 1, unused_max = 1;
    int npoints = parse_lanes(lanes_list, lanes, &max_lanes);
    int nspoints = parse_lanes(sample_list, slanes, sampling ? &max_lanes : &unused_max);
    if (bad || npoints < 0 || nspoints < 0 || optind != argc || steps < 1 || pos < 1 || threads < 0 ||
        rounds < 1 || ctx_len < 0) {
        usage(stderr);
        return 2;
    }
    if (model && (wtype != ENG_WT_F32 || seq_len)) {
        fprintf(stderr, "lanes-bench: --type and --seq-len are for the synthetic presets; a model "
                "file keeps its own\n");
        return 2;
    }
    eng_bundle_t b;
    if (eng_bundle_open(&b, model, tokp, preset, 1) < 0) return 1;
    if (wtype != ENG_WT_F32 || seq_len) { /* the same draws, rounded: the F32 preset's twin */
        eng_model_cfg_t cfg = *eng_model_cfg(b.model);
        eng_model_destroy(b.model);
        b.model = NULL;
        if (synth_model(cfg, seq_len, wtype, &b.model) < 0) {
            eng_bundle_close(&b);
            return 1;
        }
    }
    const eng_model_cfg_t *mc = eng_model_cfg(b.model);
    int max_cols = 128;   /* the decode points and the 128-token prefill */
    eng_ctx_t *ctx, *gctx = NULL, *nctx = NULL, *vs_ctx[1 + MAX_VS] = {0};
    eng_model_t *gmodel = NULL, *nmodel = NULL, *vs_model[1 + MAX_VS] = {0};
    eng_ctx_cfg_t cc = {max_lanes, max_cols, threads, gemm, ctx_len};
    if (eng_ctx_create(b.model, &cc, &ctx) < 0) return 1;
    eng_ctx_plan_t plan, gplan, vs_plan[1 + MAX_VS];
    double vs_fpt[1 + MAX_VS];
    if (vs_global) {   /* the same shape and weight type, every layer global */
        eng_model_cfg_t gc = *mc;
        if (gc.window == 0) {
            fprintf(stderr, "lanes-bench: --vs-global: the model has no sliding layers\n");
            return 2;
        }
        gc.window = 0;
        memset(gc.layer_swa, 0, sizeof gc.layer_swa);
        if (eng_model_synth(&gc, 1, eng_model_wtype(b.model), &gmodel) < 0 ||
            eng_ctx_create(gmodel, &cc, &gctx) < 0 ||
            eng_ctx_plan(mc, &cc, UINT64_MAX, &plan) < 0 ||
            eng_ctx_plan(&gc, &cc, UINT64_MAX, &gplan) < 0)
            return 1;
    }
    if (vs_nocap) {   /* the same shape and weight type, no softcap */
        eng_model_cfg_t nc = *mc;
        if (nc.final_softcap == 0.0f) {
            fprintf(stderr, "lanes-bench: --vs-nocap: the model has no final logit softcap\n");
            return 2;
        }
        nc.final_softcap = 0.0f;
        if (eng_model_synth(&nc, 1, eng_model_wtype(b.model), &nmodel) < 0 ||
            eng_ctx_create(nmodel, &cc, &nctx) < 0)
            return 1;
    }
    int seq = eng_ctx_seq_len(ctx), vs_seq = seq;
    vs_names[0] = model ? model : preset ? preset : "15m";
    vs_ctx[0] = ctx;
    for (int m = 0; nvs && m <= nvs; m++) {   /* the presets --vs names, same weights and context */
        eng_model_cfg_t pc;
        if (m && eng_model_preset(vs_names[m], &pc) < 0) {
            fprintf(stderr, "lanes-bench: --vs %s: not a preset\n", vs_names[m]);
            return 2;
        }
        if (m && (synth_model(pc, seq_len, eng_model_wtype(b.model), &vs_model[m]) < 0 ||
                  eng_ctx_create(vs_model[m], &cc, &vs_ctx[m]) < 0))
            return 1;
        const eng_model_t *vm = m ? vs_model[m] : b.model;
        if (eng_ctx_plan(eng_model_cfg(vm), &cc, UINT64_MAX, &vs_plan[m]) < 0) return 1;
        vs_fpt[m] = eng_model_flops_per_token(vm);
        if (eng_ctx_seq_len(vs_ctx[m]) < vs_seq) vs_seq = eng_ctx_seq_len(vs_ctx[m]);
    }
    /* The comparison's lanes go on from pos: lane 0 decodes `steps` in every round of every point. */
    int vs_pos = pos, vs_span = rounds * steps * npoints;
    if (vs_pos + vs_span > vs_seq) vs_pos = vs_seq - vs_span;
    if (pos + steps + 1 > seq) pos = seq - steps - 1;
    if (pos < 1 || (nvs && vs_pos < 1)) {
        fprintf(stderr, "lanes-bench: --steps too large for the context\n");
        return 2;
    }
    openblas_set_num_threads(eng_ctx_threads(ctx));
    double fpt = eng_model_flops_per_token(b.model);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model", model ? model : preset ? preset : "15m");
    cJSON_AddStringToObject(out, "weight_type", eng_wtype_name(eng_model_wtype(b.model)));
    cJSON_AddNumberToObject(out, "weight_bytes", (double)eng_model_weight_bytes(b.model));
    cJSON_AddNumberToObject(out, "threads", eng_ctx_threads(ctx));
    cJSON_AddNumberToObject(out, "ctx", seq);
    cJSON_AddStringToObject(out, "gemm", eng_ctx_kern_name(ctx));
    cJSON_AddNumberToObject(out, "flops_per_token", fpt);
    printf("model %s: dim %d hidden %d layers %d heads %d kv_heads %d vocab %d seq %d; %.1f MFLOP/token\n",
           model ? model : preset ? preset : "15m (synthetic)", mc->dim, mc->hidden_dim,
           mc->n_layers, mc->n_heads, mc->n_kv_heads, mc->vocab_size, mc->seq_len, fpt * 1e-6);
    printf("weights %s, %.1f MiB; threads %d, kernels %s, context %d per lane\n",
           eng_wtype_name(eng_model_wtype(b.model)),
           (double)eng_model_weight_bytes(b.model) / (1 << 20), eng_ctx_threads(ctx),
           eng_ctx_kern_name(ctx), seq);
    double ref = blas_2048_gflops();
    printf("OpenBLAS sgemm 2048^3: %.1f GFLOP/s\n", ref);
    cJSON_AddNumberToObject(out, "openblas_2048_gflops", ref);
    if (kernels) {
        kernel_table(ctx, mc, out);
        weight_type_table(mc, out);
    }
    bench_lanes_t bl, gbl, nbl, *vs_bl[1 + MAX_VS] = {0};
    bench_lanes_init(&bl, ctx, 0);
    int rc = 0;
    if (decode) {
        cJSON *arr = cJSON_AddArrayToObject(out, "decode");
        printf("\ndecode from position %d%s, median of %d steps\n", pos,
               bl.onward ? " on (each lane goes on where it is: a delta-net state cannot rewind)" : "",
               steps);
        printf("%5s %9s %11s %11s %9s %8s %8s %8s\n", "lanes", "step ms", "agg tok/s",
               "tok/s/strm", "GFLOP/s", "%2048^3", "speedup", "attn ms");
        double base = 0, at;
        for (int i = 0; i < npoints && rc == 0; i++) {
            double st = prefill_lanes(&bl, lanes[i], pos) < 0
                            ? -1 : decode_steps(&bl, lanes[i], pos, steps, &greedy, -1, &at);
            if (st < 0) {
                rc = -1;
                break;
            }
            double agg = lanes[i] / st, gf = agg * fpt * 1e-9;
            if (i == 0) base = agg;
            printf("%5d %9.3f %11.1f %11.1f %9.1f %7.1f%% %7.2fx %8.3f\n", lanes[i], st * 1e3, agg,
                   1.0 / st, gf, 100.0 * gf / ref, agg / base, at * 1e3);
            fflush(stdout);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "lanes", lanes[i]);
            cJSON_AddNumberToObject(o, "step_ms", st * 1e3);
            cJSON_AddNumberToObject(o, "tok_s", agg);
            cJSON_AddNumberToObject(o, "tok_s_per_stream", 1.0 / st);
            cJSON_AddNumberToObject(o, "gflops", gf);
            cJSON_AddNumberToObject(o, "pct_of_2048", 100.0 * gf / ref);
            cJSON_AddNumberToObject(o, "speedup", agg / base);
            cJSON_AddNumberToObject(o, "attn_ms", at * 1e3);
            cJSON_AddItemToArray(arr, o);
        }
        int plen = seq < 128 ? seq : 128;
        if (rc == 0 && plen <= max_cols) {   /* lane 0 starts over with a plen-token prompt */
            eng_col_t *cols = malloc((size_t)plen * sizeof *cols);
            int32_t *tok = malloc((size_t)plen * sizeof *tok);
            double t[5];
            for (int r = 0; r < 5 && rc == 0; r++) {
                for (int p = 0; p < plen; p++)
                    cols[p] = (eng_col_t){0, p, (int32_t)((p * 31 + 5) % mc->vocab_size),
                                          p == plen - 1, NULL, NULL};
                double t0 = now_s();
                rc = step_or_say(&bl, cols, plen, tok);
                t[r] = now_s() - t0;
            }
            bl.filled[0] = plen;
            if (rc == 0) {
                double med = median(t, 5);
                printf("\nprefill: %d-token prompt in one step: %.2f ms, %.1f tok/s\n", plen,
                       med * 1e3, plen / med);
                cJSON *pf = cJSON_AddObjectToObject(out, "prefill");
                cJSON_AddNumberToObject(pf, "prompt_tokens", plen);
                cJSON_AddNumberToObject(pf, "ms", med * 1e3);
                cJSON_AddNumberToObject(pf, "tok_s", plen / med);
            }
            free(cols);
            free(tok);
        }
    }
    if (vs_global && rc == 0) {
        bench_lanes_init(&gbl, gctx, 0);
        rc = global_table(&bl, &gbl, &plan, &gplan, lanes, npoints, pos, steps, rounds, out);
    }
    if (vs_nocap && rc == 0) {
        bench_lanes_init(&nbl, nctx, 0);
        rc = nocap_table(&bl, &nbl, mc->final_softcap, lanes, npoints, pos, steps, rounds, out);
    }
    if (nvs && rc == 0) {   /* fresh lanes in every model: each starts over at position 0 */
        for (int m = 0; m <= nvs; m++) {
            vs_bl[m] = malloc(sizeof *vs_bl[m]);
            bench_lanes_init(vs_bl[m], vs_ctx[m], 1);
        }
        rc = family_table(vs_bl, vs_names, vs_plan, vs_fpt, nvs + 1, lanes, npoints, vs_pos, steps,
                          rounds, out);
        memcpy(bl.filled, vs_bl[0]->filled, sizeof bl.filled);
    }
    if (sampling && rc == 0) rc = sampling_table(&bl, slanes, nspoints, pos, steps, rounds, top_n, out);
    if (json_path && rc == 0) {
        FILE *f = fopen(json_path, "w");
        char *s = cJSON_Print(out);
        if (f) {
            fputs(s, f);
            fputc('\n', f);
            fclose(f);
        } else {
            fprintf(stderr, "lanes-bench: cannot write %s\n", json_path);
        }
        free(s);
    }
    cJSON_Delete(out);
    for (int m = 1; m <= nvs; m++) {
        eng_ctx_destroy(vs_ctx[m]);
        eng_model_destroy(vs_model[m]);
    }
    for (int m = 0; m <= nvs; m++) free(vs_bl[m]);
    eng_ctx_destroy(ctx);
    eng_ctx_destroy(gctx);
    eng_model_destroy(gmodel);
    eng_ctx_destroy(nctx);
    eng_model_destroy(nmodel);
    eng_bundle_close(&b);
    return rc < 0;
}
