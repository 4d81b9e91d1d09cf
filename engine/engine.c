#include "engine.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "base/lanes_rand.h"
#include "base/lanes_sys.h"
#include "dnet.h"
#include "kern/kern.h"
#include "nn.h"
#include "pool.h"
#include "sample.h"
#include "kern/vexp.h"

/* Rows per classifier tile: a tile of logits (CLS_TILE, columns) stays in L1/L2 while the argmax
 * walks it, so the (vocab, columns) logits matrix is never written to memory. */
#define CLS_TILE 64
/* Rows per GEMM task, and per classifier task. Tasks are claimed dynamically by the pool's
 * threads; only speed depends on these sizes, as each output element is reduced the same way
 * wherever it lands. */
#define ROW_TASK 32
#define CLS_TASK 256

struct eng_ctx {
    eng_model_cfg_t cfg;
    const eng_weights_t *w;
    const eng_kern_ops_t *kern;
    eng_pool_t *pool;
    int gemm_backend;
    int max_lanes, max_cols;
    int ctx_len;        /* context per lane: positions 0..ctx_len - 1 */
    /* Layers may differ in head size, KV heads and FFN width (model.h): each layer's shape comes
     * from the accessors below, and the activation buffers are sized for the widest layer. */
    int max_q_dim, max_q_ld, max_kv_dim, max_hidden;
    int rope_pairs[2];  /* angles per position of the global table (rope_dim / 2), then of the
                         * sliding one (the sliding layers' rope dim / 2) */
    /* The KV cache of a sliding layer is a ring of swa_ring positions per lane: position p sits in
     * slot p % swa_ring. A step files all its columns before any attends, so the ring holds the
     * window and the most columns one lane can bring (max_cols) less one: the chunk's last key
     * never overwrites one its first column still reads. Slots swa_ring .. swa_slots - 1 mirror
     * slots 0 .. window - 2, so the window of any position is that many consecutive rows, read in
     * ascending position order in one pass whatever the wrap (a read split in two would round the
     * weighted sum of values differently). When that would not be smaller than the context, a
     * sliding layer keeps the whole context as a global one does (swa_ring = ctx_len). */
    int swa_ring, swa_slots;
    size_t cache_off[ENG_MAX_LAYERS];   /* floats before layer l's cache in key/value_cache */
    /* Delta-net layers (hybrid models) keep no KV cache: each lane holds dn_lane floats of state
     * per such layer (eng__dnet_state_floats, whatever its context), layer l's for every lane
     * from state_off[l] on in dn_state. */
    eng_dnet_shape_t dn;
    size_t dn_lane;     /* 0: the model has no delta-net layer */
    size_t state_off[ENG_MAX_LAYERS];

    float *x;           /* (col, dim) residual stream */
    float *xb;          /* (col, max(dim, the widest layer's q_dim)) normed input / attention
                         * output */
    float *xo;          /* (col, dim) a projection whose bias joins before the residual add; the
                         * position embedding row */
    float *q;           /* (col, q_ld) of the current layer */
    float *k;           /* (col, kv_dim) this step's keys, before they go to the cache */
    float *v;           /* (col, kv_dim) */
    float *hb, *hb2;    /* (col, hidden) of the current layer */
    float *xs;          /* (sampled col, dim) final-normed inputs of the classifier */
    float *ple_inp;     /* (col, n_layers * ple_dim) each layer's per-layer input (model.h) */
    float *ple_g;       /* (col, ple_dim) the current layer's gated per-layer input */
    float *ple_row;     /* (n_layers * ple_dim,) a per-layer token embedding row */
    /* The current projection input's columns as its matrices multiply them: quantized for
     * block-quantized weights, one buffer per activation type (ENG_ACT_*), and rounded to F16 or
     * BF16 for 16-bit weights of a GGUF model (act_of()), each (col, widest k); qmask: the types
     * that input's matrices need (bit 1 << act_of()), set by qact_begin(). */
    eng_qact_t qact[2];
    float *xr[2];
    int qmask;
    float *key_cache;   /* per layer (lane, layer_slots(), the layer's kv_dim) */
    float *value_cache; /* the same */
    float *rope_cos, *rope_sin;     /* (ctx_len, rope_pairs[0]) of the global layers, then
                                     * (ctx_len, rope_pairs[1]) of the sliding ones when the
                                     * model has any */
    float *att;         /* (thread, ctx_len) attention scores */
    float *dn_state;    /* (delta-net layer, lane, dn_lane) */
    float *dn_qkv;      /* (col, eng__dnet_channels) a delta-net layer's W_qkv h */
    float *dn_z;        /* (col, H d) its W_gate h */
    float *dn_ba;       /* (col, 2 H) its W_beta h, then W_alpha h */
    float *dn_o;        /* (col, H d) its gated, normed output: ssm_out's input */
    float *dn_scratch;  /* (thread, eng__dnet_scratch_floats) */
    float *tile;        /* (thread, CLS_TILE, max_cols) classifier logits tile */
    float *cap_thr;     /* (thread, max_cols) classify_task()'s softcap scratch */
    int32_t *cap_span;  /* (thread, max_cols, 2) */
    float *best;        /* (classifier task, max_cols) running argmax per sampled column */
    int32_t *best_idx;  /* (classifier task, max_cols) */
    float *full;        /* (max_lanes, vocab) raw logits of top-k/top-p and logprobs columns that
                         * bring no logits buffer: bounded by lanes, not columns, for big
                         * vocabularies */
    float *samp_scratch;    /* (thread, eng__sample_scratch_words(vocab)) whole-row sampling */
    eng_sampler_t *samplers;    /* (lane,) */
    int32_t *lane_next; /* (lane,) validation scratch: next position expected in this step */
    int32_t *lane_len;  /* (lane,) positions with keys and values in the cache (a lane's filled
                         * length): a column may not start past it, or attention would read the
                         * cache of an older stream */
    /* The step's columns by lane, for the delta-net layers' per-lane tasks: step_first[i] is the
     * first column of the i-th lane of the step (step_lanes of them), col_next[col] the next
     * column of col's lane (-1 after its last); lane_last is scratch. */
    int32_t *step_first, *col_next, *lane_last;
    int step_lanes;

    /* The current step, for the pool's phase functions. */
    const eng_col_t *cols;
    int ncols, nsamp, layer;
    int32_t *samp_col;  /* (max_cols,) step column of each sampled column */
    float *samp_invt;   /* (max_cols,) 1/T for Gumbel lanes, 0 for greedy and full-row lanes */
    float **samp_row;   /* (max_cols,) where the raw row goes (the column's logits buffer, else a
                         * row of full for top-k/top-p and logprobs), or NULL */
    int32_t *lp_samp;   /* (max_cols,) the sampled columns that ask for logprobs */
    uint64_t attn_ns;   /* eng_ctx_attention_ns() */
    float gumbel_ub[1 << ENG_NOISE_BOUND_BITS];   /* eng__gumbel_bounds() */
};

/* ---- helpers ---------------------------------------------------------------------------- */

/* Layer l of model shape mc is a gated delta net (model.h). */
static int layer_dnet(const eng_model_cfg_t *mc, int l) {
    return mc->layer_kind[l] == ENG_LAYER_DNET;
}

/* The delta-net layers' shape of model shape mc (model.h's ssm_* fields). */
static eng_dnet_shape_t dnet_shape(const eng_model_cfg_t *mc) {
    return (eng_dnet_shape_t){mc->ssm_k_heads, mc->ssm_v_heads, mc->ssm_head_dim,
                              mc->ssm_conv_kernel, mc->norm_eps};
}

/* Column s of the current step takes the lazy greedy softcap (classify_task()): a softcapped
 * model, no logits row read, no temperature. */
static int caps_lazily_greedy(const eng_ctx_t *c, int s) {
    return c->cfg.final_softcap != 0.0f && c->samp_row[s] == NULL && !(c->samp_invt[s] > 0.0f);
}

/* Layer l's widths (its shape: model.h's eng_layer_*). */
static int q_dim_of(const eng_model_cfg_t *mc, int l) {
    return mc->n_heads * eng_layer_head_dim(mc, l);
}

/* Floats per column of layer l's q: q_dim, or 2 q_dim with arch.attn_gate, each head's query
 * then its gate. */
static int q_ld_of(const eng_model_cfg_t *mc, int l) {
    return mc->arch.attn_gate ? 2 * q_dim_of(mc, l) : q_dim_of(mc, l);
}

static int kv_dim_of(const eng_model_cfg_t *mc, int l) {
    return eng_layer_kv_heads(mc, l) * eng_layer_head_dim(mc, l);
}

/* The layer whose keys and values layer l attends to: itself, or the earlier one whose cache it
 * shares (model.h). */
static int kv_source(const eng_model_cfg_t *mc, int l) { return l - mc->layer_kv_reuse[l]; }

/* Positions each lane keeps of layer l's keys and values: none for a delta-net layer, nor for
 * one that reads another's. */
static int layer_slots(const eng_ctx_t *c, int l) {
    if (layer_dnet(&c->cfg, l) || c->cfg.layer_kv_reuse[l]) return 0;
    return eng_layer_slides(&c->cfg, l) ? c->swa_slots : c->ctx_len;
}

/* The architecture's norm of one dim-wide row: o = norm(x) * w (+ b where b is not NULL). */
static void norm_row(const eng_ctx_t *c, float *o, const float *x, const float *w,
                     const float *b) {
    int d = c->cfg.dim;
    if (c->cfg.arch.norm == ENG_NORM_LAYER) {
        eng__layernorm(o, x, w, b, d, c->cfg.norm_eps);
        return;
    }
    eng__rmsnorm(o, x, w, d, c->cfg.norm_eps, c->cfg.numerics);
    if (b)
        for (int j = 0; j < d; j++) o[j] += b[j];
}

/* What the activations of a matrix of type wtype are turned into: ENG_ACT_* for block-quantized
 * weights; ACT_F16 / ACT_BF16 (rounded, kept in fp32) for 16-bit weights where the model follows
 * ggml's rounding, as ggml computes those products against a 16-bit copy of the activations
 * (its vec_dot_type); -1: used as they are. */
enum { ACT_F16 = 2, ACT_BF16 = 3 };   /* after ENG_ACT_Q8_0 and ENG_ACT_Q8_K */
static int act_of(const eng_ctx_t *c, int wtype) {
    if (c->cfg.numerics == ENG_NUMERICS_GGML && wtype == ENG_WT_F16) return ACT_F16;
    if (c->cfg.numerics == ENG_NUMERICS_GGML && wtype == ENG_WT_BF16) return ACT_BF16;
    return eng_quant_act_type(wtype);
}

/* act_of() of matrix m as a qmask bit; 0 for activations used as they are (and an absent
 * matrix). */
static int act_bit(const eng_ctx_t *c, const eng_mat_t *m) {
    int t = act_of(c, m->type);
    return t < 0 ? 0 : 1 << t;
}

/* The next projection input has k values per column, to be quantized to the types in mask.
 * Each input is quantized once per step where it is already in cache: the attention and FFN
 * inputs right after their norm (the calling thread walks the columns there), wo's at the end of
 * its column's attention task, the classifier's after its final norm; hb, whose rows the FFN
 * tasks split, in a pool phase of its own over columns. */
static void qact_begin(eng_ctx_t *c, int mask, int k) {
    c->qmask = mask;
    for (int t = 0; t < 2; t++) c->qact[t].k = k;
}

/* Quantizes column col of the input (x: its k values) for every type in qmask. Each column is
 * quantized alone (quant.h), so it may run on any thread, before or after its neighbours. */
static void qact_col(const eng_ctx_t *c, int col, const float *x) {
    for (int t = 0; t < 2; t++)
        if (c->qmask & 1 << t) c->kern->quantize_act(&c->qact[t], col, x);
    int k = c->qact[0].k;   /* every type's k is the input's */
    if (c->qmask & 1 << ACT_F16) c->kern->round_f16(c->xr[0] + (size_t)col * k, x, k);
    if (c->qmask & 1 << ACT_BF16) c->kern->round_bf16(c->xr[1] + (size_t)col * k, x, k);
}

/* xb = norm(x) of every column, quantized for the types in mask while the row is in L1. */
static void norm_cols(eng_ctx_t *c, const float *w, const float *b, int mask) {
    int d = c->cfg.dim;
    qact_begin(c, mask, d);
    for (int col = 0; col < c->ncols; col++) {
        float *xb = c->xb + (size_t)col * d;
        norm_row(c, xb, c->x + (size_t)col * d, w, b);
        qact_col(c, col, xb);
    }
}

/* y[col * ld + i] += b[i] for i < n of every column; b NULL: nothing. */
static void add_bias(const eng_ctx_t *c, float *y, size_t ld, const float *b, int n) {
    if (b == NULL) return;
    for (int col = 0; col < c->ncols; col++)
        for (int i = 0; i < n; i++) y[(size_t)col * ld + i] += b[i];
}

static void softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    for (int i = 0; i < n; i++) x[i] = eng_vexpf(x[i] - max);
    float sum = 0.0f;
    for (int i = 0; i < n; i++) sum += x[i];
    for (int i = 0; i < n; i++) x[i] /= sum;
}

/* Noise bits that depend only on (seed, pos, index): counter-based, so the noise of a stream is
 * the same whatever thread, tile or lane computes it. noise_key(seed, pos) is the per-position
 * part; each index then costs one 64x64->128 multiply (wyrand's mix of a Weyl sequence), as the
 * classifier draws one per vocab entry per temperature lane. */
static uint64_t noise_key(uint64_t seed, int32_t pos) {
    return lanes_mix64(seed + 0x9e3779b97f4a7c15ull * ((uint64_t)(uint32_t)pos + 1));
}

static uint32_t noise_bits(uint64_t key, uint32_t index) {
    uint64_t z = key + 0xa0761d6478bd642full * ((uint64_t)index + 1);
    unsigned __int128 t = (unsigned __int128)z * (z ^ 0xe7037ed1a0b428dbull);
    return (uint32_t)(((uint64_t)(t >> 64) ^ (uint64_t)t) >> (64 - ENG_NOISE_BITS));
}

/* ---- GEMM backends -------------------------------------------------------------------------- */

/* W (rows, k) @ X (ncols, k) -> Y, laid out as kern.h's gemm; W in its weight type. Quantized
 * weights multiply qx, X's columns quantized to their activation type (the lane kernel's inputs;
 * the OpenBLAS backend has no such GEMM). */
typedef struct {
    float *y;
    ptrdiff_t yrs, ycs;
    const void *w;
    int wtype;
    const float *x;
    const eng_qact_t *qx;
    int rows, k, accumulate;
} gemm_job_t;

/* Row r of weights w of type wtype and rows of k values. */
static const void *weight_row(const void *w, int wtype, int k, int r) {
    return (const char *)w + (size_t)r * eng_wtype_row_bytes(wtype, k);
}

static void run_job_rows(const eng_ctx_t *c, const gemm_job_t *j, int ncols, int r0, int r1) {
    if (r1 <= r0) return;
    float *y = j->y + r0 * j->yrs;
    const void *w = weight_row(j->w, j->wtype, j->k, r0);
    switch (j->wtype) {
    case ENG_WT_F16:
        c->kern->gemm_f16(y, j->yrs, j->ycs, w, j->x, r1 - r0, ncols, j->k, j->accumulate);
        break;
    case ENG_WT_BF16:
        c->kern->gemm_bf16(y, j->yrs, j->ycs, w, j->x, r1 - r0, ncols, j->k, j->accumulate);
        break;
    case ENG_WT_F32:
        c->kern->gemm(y, j->yrs, j->ycs, w, j->x, r1 - r0, ncols, j->k, j->accumulate);
        break;
    default:
        c->kern->gemm_q(y, j->yrs, j->ycs, j->wtype, w, j->qx, r1 - r0, ncols, j->accumulate);
        break;
    }
}

/* The quantized activations a job on weights of type wtype reads: the current input's columns in
 * that type's activation type (qact_begin() set their k), or NULL for float weights. */
static const eng_qact_t *job_qx(const eng_ctx_t *c, int wtype) {
    int t = eng_quant_act_type(wtype);
    return t < 0 ? NULL : &c->qact[t];
}

/* The float activations a job on weights of type wtype reads: the input x, or its copy rounded
 * to 16 bits (act_of()). */
static const float *job_x(const eng_ctx_t *c, int wtype, const float *x) {
    int t = act_of(c, wtype);
    return t == ACT_F16 || t == ACT_BF16 ? c->xr[t - ACT_F16] : x;
}

/* A job over all rows of matrix m. */
static gemm_job_t mat_job(const eng_ctx_t *c, float *y, ptrdiff_t yrs, ptrdiff_t ycs,
                          const eng_mat_t *m, const float *x, int accumulate) {
    return (gemm_job_t){y,       yrs, ycs, m->data, m->type, job_x(c, m->type, x),
                        job_qx(c, m->type), m->rows, m->cols, accumulate};
}

/* y = row r of m as fp32: an embedding row in any weight type. */
static void mat_row_f32(const eng_ctx_t *c, float *y, const eng_mat_t *m, int r) {
    const void *row = weight_row(m->data, m->type, m->cols, r);
    switch (m->type) {
    case ENG_WT_F16: c->kern->f16_to_f32(y, row, m->cols); break;
    case ENG_WT_BF16: c->kern->bf16_to_f32(y, row, m->cols); break;
    case ENG_WT_F32: memcpy(y, row, (size_t)m->cols * sizeof *y); break;
    default: eng_dequant_row(m->type, y, row, m->cols); break;
    }
}

/* The OpenBLAS backend, for comparison: F32 weights only, so 16-bit and quantized ones take the
 * lane kernel on the calling thread (OpenBLAS has no such GEMM). */
static void blas_job(const eng_ctx_t *c, const gemm_job_t *j, int ncols) {
    if (j->wtype != ENG_WT_F32) {
        run_job_rows(c, j, ncols, 0, j->rows);
        return;
    }
    const float *w = j->w;
    float beta = j->accumulate ? 1.0f : 0.0f;
    if (j->yrs == 1) { /* lane-major: Y (ncols, rows) = X (ncols, k) @ W^T */
        if (ncols == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, j->rows, j->k, 1.0f, w, j->k, j->x, 1, beta,
                        j->y, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, ncols, j->rows, j->k, 1.0f, j->x,
                        j->k, w, j->k, beta, j->y, (int)j->ycs);
    } else { /* channel-major: Y (rows, ncols) = W @ X^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->rows, ncols, j->k, 1.0f, w, j->k,
                    j->x, j->k, beta, j->y, (int)j->yrs);
    }
}

typedef struct {
    eng_ctx_t *c;
    const gemm_job_t *jobs;
    int njobs;
} jobs_arg_t;

static int ceil_div(int a, int b) { return (a + b - 1) / b; }

/* Task t: rows [t * ROW_TASK, (t + 1) * ROW_TASK) of the jobs' rows, concatenated. */
static void jobs_task(void *opaque, int task, int tid) {
    (void)tid;
    jobs_arg_t *a = opaque;
    int r0 = task * ROW_TASK, r1 = r0 + ROW_TASK;
    for (int i = 0, base = 0; i < a->njobs && base < r1; base += a->jobs[i].rows, i++) {
        int lo = r0 - base, hi = r1 - base;
        if (lo < 0) lo = 0;
        if (hi > a->jobs[i].rows) hi = a->jobs[i].rows;
        run_job_rows(a->c, &a->jobs[i], a->c->ncols, lo, hi);
    }
}

static void run_jobs(eng_ctx_t *c, const gemm_job_t *jobs, int njobs) {
    if (c->gemm_backend == ENG_GEMM_OPENBLAS) {
        for (int i = 0; i < njobs; i++) blas_job(c, &jobs[i], c->ncols);
        return;
    }
    int total = 0;
    for (int i = 0; i < njobs; i++) total += jobs[i].rows;
    jobs_arg_t a = {c, jobs, njobs};
    eng_pool_run(c->pool, ceil_div(total, ROW_TASK), jobs_task, &a);
}

void eng_ctx_gemm(eng_ctx_t *c, float *y, const float *w, const float *x, int rows, int ncols,
                  int k) {
    gemm_job_t j = {y, 1, rows, w, ENG_WT_F32, x, NULL, rows, k, 0};
    c->ncols = ncols;
    run_jobs(c, &j, 1);
}

/* ---- phases ----------------------------------------------------------------------------- */

/* The FFN's up projections: SwiGLU's and GeGLU's gate into hb and up into hb2, GELU's up into
 * hb. */
static int ffn_up_jobs(const eng_ctx_t *c, gemm_job_t *jobs) {
    const eng_layer_t *lw = &c->w->layers[c->layer];
    int h = eng_layer_hidden(&c->cfg, c->layer);
    if (c->cfg.arch.ffn == ENG_FFN_GELU) {
        jobs[0] = mat_job(c, c->hb, 1, h, &lw->w_up, c->xb, 0);
        return 1;
    }
    jobs[0] = mat_job(c, c->hb, 1, h, &lw->w_gate, c->xb, 0);
    jobs[1] = mat_job(c, c->hb2, 1, h, &lw->w_up, c->xb, 0);
    return 2;
}

/* Hidden rows [r0, r1) of every column after the up projections: the up bias, then hb =
 * silu(hb) * hb2, gelu(hb) * hb2 or gelu(hb). */
static void ffn_act_rows(eng_ctx_t *c, int r0, int r1) {
    const float *b_up = c->w->layers[c->layer].b_up;
    int h = eng_layer_hidden(&c->cfg, c->layer), ffn = c->cfg.arch.ffn;
    for (int col = 0; col < c->ncols; col++) {
        float *a = c->hb + (size_t)col * h, *b = c->hb2 + (size_t)col * h;
        float *up = ffn == ENG_FFN_GELU ? a : b;
        if (b_up)
            for (int r = r0; r < r1; r++) up[r] += b_up[r];
        if (ffn == ENG_FFN_GELU) eng__gelu(a + r0, r1 - r0);
        else if (ffn == ENG_FFN_GEGLU) eng__geglu(a + r0, b + r0, r1 - r0);
        else c->kern->swiglu(a + r0, b + r0, r1 - r0);
    }
}

/* A task does the up products of its hidden rows, then their activation, so no barrier sits
 * between. */
static void ffn_up_task(void *opaque, int task, int tid) {
    (void)tid;
    eng_ctx_t *c = opaque;
    int h = eng_layer_hidden(&c->cfg, c->layer);
    int r0 = task * ROW_TASK, r1 = r0 + ROW_TASK < h ? r0 + ROW_TASK : h;
    gemm_job_t jobs[2];
    int n = ffn_up_jobs(c, jobs);
    for (int i = 0; i < n; i++) run_job_rows(c, &jobs[i], c->ncols, r0, r1);
    ffn_act_rows(c, r0, r1);
}

/* x += post(W in + b), post the RMSNorm with weights post_norm (NULL: none): with a bias or a
 * post norm the product is formed apart and finished before it joins the residual stream, as
 * llama.cpp adds them; with neither, it accumulates into x directly. */
static void residual_proj(eng_ctx_t *c, const eng_mat_t *w, const float *in, const float *b,
                          const float *post_norm) {
    int d = c->cfg.dim;
    if (b == NULL && post_norm == NULL) {
        gemm_job_t j = mat_job(c, c->x, 1, d, w, in, 1);
        run_jobs(c, &j, 1);
        return;
    }
    gemm_job_t j = mat_job(c, c->xo, 1, d, w, in, 0);
    run_jobs(c, &j, 1);
    for (int col = 0; col < c->ncols; col++) {
        float *x = c->x + (size_t)col * d, *o = c->xo + (size_t)col * d;
        if (post_norm == NULL) {
            for (int i = 0; i < d; i++) x[i] += o[i] + b[i];
            continue;
        }
        if (b)
            for (int i = 0; i < d; i++) o[i] += b[i];
        eng__rmsnorm(o, o, post_norm, d, c->cfg.norm_eps, c->cfg.numerics);
        for (int i = 0; i < d; i++) x[i] += o[i];
    }
}

/* Floats before the cache row of slot of lane in layer l's cache. */
static size_t cache_row(const eng_ctx_t *c, int l, int lane, int slot) {
    return c->cache_off[l] +
           ((size_t)lane * layer_slots(c, l) + (size_t)slot) * kv_dim_of(&c->cfg, l);
}

/* A column attends to the positions p0 with pos - window < p0 <= pos on a sliding layer, all up to
 * pos on a global one; either way to n rows from the slot of the first, in position order, of its
 * own cache or of the layer it shares (of its kind, so the same ring). */
static void attention_column(eng_ctx_t *c, int col, float *att) {
    const eng_model_cfg_t *mc = &c->cfg;
    const eng_col_t *cl = &c->cols[col];
    int l = c->layer, hs = eng_layer_head_dim(mc, l), kv_dim = kv_dim_of(mc, l), n = cl->pos + 1;
    int kv_mul = mc->n_heads / eng_layer_kv_heads(mc, l), slot0 = 0;
    if (eng_layer_slides(mc, l) && n > mc->window) {
        n = mc->window;
        slot0 = (cl->pos + 1 - n) % c->swa_ring;
    }
    size_t off = cache_row(c, kv_source(mc, l), cl->lane, slot0);
    const float *kc = c->key_cache + off, *vc = c->value_cache + off;
    int gated = mc->arch.attn_gate, qhs = gated ? 2 * hs : hs;
    const float *q = c->q + (size_t)col * q_ld_of(mc, l);
    float *out = c->xb + (size_t)col * q_dim_of(mc, l);
    float scale = sqrtf((float)hs);
    for (int h = 0; h < mc->n_heads; h++) {
        const float *qh = q + h * qhs;
        float *oh = out + h * hs;
        int kvo = (h / kv_mul) * hs;
        c->kern->dots(att, qh, kc + kvo, kv_dim, n, hs);
        if (mc->attn_scale != 0.0f)
            for (int t = 0; t < n; t++) att[t] *= mc->attn_scale;
        else
            for (int t = 0; t < n; t++) att[t] /= scale;
        softmax(att, n);
        c->kern->wsum(oh, att, vc + kvo, kv_dim, n, hs);
        if (gated)  /* sigmoid as ggml's: 1 / (1 + expf(-x)) */
            for (int i = 0; i < hs; i++) oh[i] *= 1.0f / (1.0f + expf(-qh[hs + i]));
    }
    qact_col(c, col, out);   /* wo's input, while this task has it in cache */
}

/* w_down's input is whole only when every FFN row task is done, so it is quantized in a phase of
 * its own, a column per task. */
static void hb_quant_task(void *opaque, int col, int tid) {
    (void)tid;
    eng_ctx_t *c = opaque;
    qact_col(c, col, c->hb + (size_t)col * eng_layer_hidden(&c->cfg, c->layer));
}

/* One task per column: their cost grows with position, so they are claimed one at a time. */
static void attention_task(void *opaque, int col, int tid) {
    eng_ctx_t *c = opaque;
    attention_column(c, col, c->att + (size_t)tid * c->ctx_len);
}

/* Files k and v of position pos of lane in the current layer's cache: at its slot, and at the
 * mirror of a sliding ring's first window - 1 slots. */
static void cache_put(eng_ctx_t *c, int lane, int pos, const float *k, const float *v) {
    int slots = layer_slots(c, c->layer);
    int ring = eng_layer_slides(&c->cfg, c->layer) ? c->swa_ring : slots;
    size_t bytes = (size_t)kv_dim_of(&c->cfg, c->layer) * sizeof *k;
    for (int slot = pos % ring; slot < slots; slot += ring) {
        size_t off = cache_row(c, c->layer, lane, slot);
        memcpy(c->key_cache + off, k, bytes);
        memcpy(c->value_cache + off, v, bytes);
    }
}

/* q, k and v of every column after their products: the biases, v = k's product where the layer
 * has no V of its own (wv is wk), the per-head QK norm and V norm, RoPE by position with the
 * layer's table; then k and v are filed in the lane's cache. A layer that shares another's cache
 * has a query only. */
static void qkv_finish(eng_ctx_t *c) {
    const eng_layer_t *lw = &c->w->layers[c->layer];
    const eng_model_cfg_t *mc = &c->cfg;
    int l = c->layer, qd = q_dim_of(mc, l), q_ld = q_ld_of(mc, l), kv_dim = kv_dim_of(mc, l);
    int hs = eng_layer_head_dim(mc, l), kvh = eng_layer_kv_heads(mc, l);
    int rd = eng_layer_rope_dim(mc, l);
    int qhs = q_ld / mc->n_heads;   /* a head's query, and its gate when gated */
    int own_kv = !mc->layer_kv_reuse[l], v_is_k = lw->wv.data == lw->wk.data;
    int table = eng_layer_slides(mc, l), pairs = c->rope_pairs[table];
    size_t table_off = table ? (size_t)c->ctx_len * c->rope_pairs[0] : 0;
    add_bias(c, c->q, (size_t)q_ld, lw->bq, qd);
    if (own_kv) {
        add_bias(c, c->k, (size_t)kv_dim, lw->bk, kv_dim);
        add_bias(c, c->v, (size_t)kv_dim, lw->bv, kv_dim);
    }
    for (int col = 0; col < c->ncols; col++) {
        const eng_col_t *cl = &c->cols[col];
        float *q = c->q + (size_t)col * q_ld, *k = c->k + (size_t)col * kv_dim;
        float *v = c->v + (size_t)col * kv_dim;
        if (own_kv && v_is_k) memcpy(v, k, (size_t)kv_dim * sizeof *v);
        if (mc->arch.qk_norm) {
            for (int h = 0; h < mc->n_heads; h++)
                eng__rmsnorm(q + h * qhs, q + h * qhs, lw->q_norm, hs, mc->norm_eps,
                             mc->numerics);
            for (int h = 0; own_kv && h < kvh; h++)
                eng__rmsnorm(k + h * hs, k + h * hs, lw->k_norm, hs, mc->norm_eps, mc->numerics);
        }
        for (int h = 0; own_kv && mc->arch.v_norm && h < kvh; h++)
            eng__rmsnorm(v + h * hs, v + h * hs, NULL, hs, mc->norm_eps, mc->numerics);
        const float *cs = c->rope_cos + table_off + (size_t)cl->pos * pairs;
        const float *sn = c->rope_sin + table_off + (size_t)cl->pos * pairs;
        for (int h = 0; h < mc->n_heads; h++)
            eng__rope(q + h * qhs, 1, hs, rd, mc->arch.rope, cs, sn);
        if (!own_kv) continue;
        eng__rope(k, kvh, hs, rd, mc->arch.rope, cs, sn);
        cache_put(c, cl->lane, cl->pos, k, v);
    }
}

/* One task per lane of the step: its columns through its state of the current delta-net layer, in
 * position order (a column at position 0 starts a new stream: the state left by the lane's last
 * one is zeroed first). What a lane computes reads only its own projections and state, so its
 * bits depend on no other lane nor on the thread. */
static void dnet_task(void *opaque, int i, int tid) {
    eng_ctx_t *c = opaque;
    const eng_layer_t *lw = &c->w->layers[c->layer];
    const eng_dnet_shape_t *s = &c->dn;
    eng_dnet_weights_t w = {lw->ssm_conv, lw->ssm_dt_bias, lw->ssm_a, lw->ssm_norm};
    size_t ch = (size_t)eng__dnet_channels(s), H = (size_t)s->n_v_heads;
    size_t hd = H * (size_t)s->head_dim;
    int col = c->step_first[i];
    float *state = c->dn_state + c->state_off[c->layer] + (size_t)c->cols[col].lane * c->dn_lane;
    float *scratch = c->dn_scratch + (size_t)tid * eng__dnet_scratch_floats(s);
    if (c->cols[col].pos == 0) eng__dnet_reset(s, state);
    for (; col >= 0; col = c->col_next[col]) {
        const float *ba = c->dn_ba + (size_t)col * 2 * H;
        eng_dnet_in_t in = {c->dn_qkv + (size_t)col * ch, c->dn_z + (size_t)col * hd, ba, ba + H,
                            0, 0, 0, 0};
        float *o = c->dn_o + (size_t)col * hd;
        eng__dnet_step(s, &w, state, &in, o, scratch);
        qact_col(c, col, o);   /* ssm_out's input, while this task has it in cache */
    }
}

/* Where z (1 / c) is subnormal, its rounding is coarser than the relative margin below: an
 * absolute slack far above those values keeps the bound an upper one there too. */
#define SOFTCAP_SLACK 1e-30f

/* 0 when softcap(z) invt + x <= run is sure without the softcap: c tanhf(z (1 / c)) is at most
 * z for z >= 0 (c tanh(z / c) <= z, and the roundings and tanhf's error, 2 ulps in glibc, come
 * to well under a 1e-4 margin) and at most 0 for z <= 0 (tanhf keeps the sign), so at most
 * max(z 1.0001, 0): the test holds when both z 1.0001 invt + x and x are at most run (written
 * without a branch on z's sign, which would be mispredicted half the time). 1 for a NaN z or
 * run. */
static int softcap_may_exceed(float z, float invt, float x, float run) {
    return !(((z * 1.0001f + SOFTCAP_SLACK) * invt + x <= run) & (x <= run));
}

/* A tile (rows, ns) of raw logits, row by row so that it vectorizes: a logit whose softcap is
 * surely below thr[s] (its bound max(z 1.0001, 0) is) becomes -inf (thr[s] NaN: the column is
 * kept as it is); span[s] = (first, last) row kept (first rows: none). */
static void softcap_skip(float *tile, int rows, int ns, const float *thr, int32_t *span) {
    for (int s = 0; s < ns; s++) span[2 * s] = rows, span[2 * s + 1] = -1;
    for (int r = 0; r < rows; r++) {
        float *row = tile + (size_t)r * ns;
        for (int s = 0; s < ns; s++) {
            int skip = (row[s] * 1.0001f + SOFTCAP_SLACK < thr[s]) & (0.0f < thr[s]);
            row[s] = skip ? -INFINITY : row[s];
            span[2 * s] = !skip && span[2 * s] == rows ? r : span[2 * s];
            span[2 * s + 1] = skip ? span[2 * s + 1] : r;
        }
    }
}

/* m[s] = the largest of column s of a tile (rows, ns) of logits (-inf for none; NaN ignored). */
static void tile_col_max(const float *tile, int rows, int ns, float *m) {
    for (int s = 0; s < ns; s++) m[s] = -INFINITY;
    for (int r = 0; r < rows; r++)
        for (int s = 0; s < ns; s++) {
            float z = tile[(size_t)r * ns + s];
            m[s] = z > m[s] ? z : m[s];
        }
}

/* Classifier task: rows [task * CLS_TASK, ...) in tiles. Logits (rows, sampled columns) land in a
 * cache-resident tile of this thread, are softcapped (final_softcap), raw rows are copied out
 * where wanted, Gumbel noise is added for temperature lanes, and the task's own running argmax is
 * updated.
 * The noise costs two logarithms, so it is computed only where it can matter: a row whose scaled
 * logit plus its noise's upper bound cannot beat the best value before it (of this task, lower ids)
 * could never win the strict > argmax, and gets -inf instead. The argmax, all that is read of a
 * noised tile, is the same as with every row noised. The softcap's tanhf costs as much as the
 * classifier's product at 128 lanes, so a column whose row nobody reads caps only where it can
 * matter in the same way: a row whose bound (softcap_may_exceed) cannot beat the best before it
 * gets -inf uncapped. Greedy columns take a first pass over the whole tile (softcap_skip) against
 * a softcap that another row reaches (the best before the tile, or in a task's first tile the cap
 * of the tile's largest logit: a row below it cannot be the largest, whatever its place), then
 * the rows it kept, in order, against the best so far. */
static void classify_task(void *opaque, int task, int tid) {
    eng_ctx_t *c = opaque;
    int ns = c->nsamp, d = c->cfg.dim, vocab = c->cfg.vocab_size;
    int r0 = task * CLS_TASK, r1 = r0 + CLS_TASK < vocab ? r0 + CLS_TASK : vocab;
    float *tile = c->tile + (size_t)tid * CLS_TILE * c->max_cols;
    float *best = c->best + (size_t)task * c->max_cols, cap = c->cfg.final_softcap;
    float *thr = c->cap_thr + (size_t)tid * c->max_cols;
    int32_t *idx = c->best_idx + (size_t)task * c->max_cols;
    int32_t *span = c->cap_span + (size_t)tid * 2 * c->max_cols;
    for (int s = 0; s < ns; s++) {
        best[s] = -INFINITY;
        idx[s] = 0;
    }
    for (int t0 = r0; t0 < r1; t0 += CLS_TILE) {
        int rows = r1 - t0 < CLS_TILE ? r1 - t0 : CLS_TILE;
        const eng_mat_t *cls = &c->w->cls;
        gemm_job_t j = {tile, ns, 1, weight_row(cls->data, cls->type, d, t0), cls->type,
                        job_x(c, cls->type, c->xs), job_qx(c, cls->type), rows, d, 0};
        if (c->gemm_backend == ENG_GEMM_OPENBLAS) blas_job(c, &j, ns);
        else run_job_rows(c, &j, ns, 0, rows);
        int lazy_greedy = 0;
        for (int s = 0; s < ns; s++) lazy_greedy |= caps_lazily_greedy(c, s);
        if (lazy_greedy) {
            if (t0 == r0) tile_col_max(tile, rows, ns, thr);
            for (int s = 0; s < ns; s++) {
                int lazy = caps_lazily_greedy(c, s);
                if (t0 == r0 && lazy) eng__softcap(&thr[s], 1, cap);
                thr[s] = !lazy ? NAN : t0 == r0 ? thr[s] : best[s];
            }
            softcap_skip(tile, rows, ns, thr, span);
        }
        for (int s = 0; s < ns; s++) {
            int lazy = cap != 0.0f && c->samp_row[s] == NULL;   /* capped where it can matter */
            if (cap != 0.0f && !lazy)
                for (int r = 0; r < rows; r++) eng__softcap(&tile[r * ns + s], 1, cap);
            if (c->samp_row[s])
                for (int r = 0; r < rows; r++) c->samp_row[s][t0 + r] = tile[r * ns + s];
            float run = best[s];
            if (c->samp_invt[s] > 0.0f) {
                const eng_col_t *cl = &c->cols[c->samp_col[s]];
                uint64_t key = noise_key(c->samplers[cl->lane].seed, cl->pos);
                float top = c->gumbel_ub[(1 << ENG_NOISE_BOUND_BITS) - 1], invt = c->samp_invt[s];
                for (int r = 0; r < rows; r++) {
                    float v = tile[r * ns + s], g = 0;
                    uint32_t b = 0;
                    /* no draw could lift it, so skip the hash too; the lazy cap likewise */
                    int may = lazy ? softcap_may_exceed(v, invt, top, run) : v * invt + top > run;
                    if (may) {
                        g = c->gumbel_ub[(b = noise_bits(key, (uint32_t)(t0 + r))) >>
                                         (ENG_NOISE_BITS - ENG_NOISE_BOUND_BITS)];
                        may = lazy ? softcap_may_exceed(v, invt, g, run) : v * invt + g > run;
                    }
                    if (may && lazy) eng__softcap(&v, 1, cap);
                    v *= invt;
                    if (may && v + top > run && v + g > run) {
                        v += eng__gumbel_from_bits(b);
                        run = v > run ? v : run;
                    } else {
                        v = -INFINITY;
                    }
                    tile[r * ns + s] = v;
                }
            } else if (lazy) {
                for (int r = span[2 * s]; r <= span[2 * s + 1]; r++) {
                    float *v = &tile[r * ns + s];
                    /* skipped, or a -inf logit, whose -c is below thr too: neither can win; with
                     * thr <= 0 none was skipped */
                    if (*v == -INFINITY && thr[s] > 0.0f) continue;
                    if (!softcap_may_exceed(*v, 1.0f, 0.0f, run)) {
                        *v = -INFINITY;
                        continue;
                    }
                    eng__softcap(v, 1, cap);
                    run = *v > run ? *v : run;
                }
            }
        }
        c->kern->argmax(tile, rows, ns, t0, best, idx);
    }
}

/* ---- sampling ------------------------------------------------------------------------------ */

/* Below ENG_TEMP_GREEDY_BELOW (or a NaN temperature) a stream takes the fused argmax unscaled. */
static int samples_greedily(const eng_sampler_t *s) {
    return !(s->temperature >= ENG_TEMP_GREEDY_BELOW);
}

/* Top-k and top-p need the whole row of logits; greedy and plain temperature use the fused argmax. */
static int wants_full_row(const eng_sampler_t *s) {
    return !samples_greedily(s) && (s->top_k > 0 || (s->top_p > 0.0f && s->top_p < 1.0f));
}

/* One task per sampled column; a column that needs its whole row is sampled entirely by one task,
 * in a fixed order, with this thread's scratch: its token never depends on the split or company. */
static void sample_task(void *opaque, int s, int tid) {
    eng_ctx_t *c = opaque;
    const eng_col_t *cl = &c->cols[c->samp_col[s]];
    const eng_sampler_t *smp = &c->samplers[cl->lane];
    if (!wants_full_row(smp)) return;
    int vocab = c->cfg.vocab_size;
    float u = eng__unit_from_bits(noise_bits(noise_key(smp->seed, cl->pos), UINT32_MAX));
    float *scratch = c->samp_scratch + (size_t)tid * eng__sample_scratch_words(vocab);
    c->best_idx[s] = eng__sample_row(c->kern, c->samp_row[s], vocab, smp, u, scratch);
}

/* ---- log-probabilities ---------------------------------------------------------------------- */

/* One task per column that asks for logprobs, after its token is known: the whole row by one
 * thread (eng__logprobs_row()), so the values depend on the row alone. */
static void logprobs_task(void *opaque, int t, int tid) {
    (void)tid;
    eng_ctx_t *c = opaque;
    int s = c->lp_samp[t];
    eng__logprobs_row(c->kern, c->samp_row[s], c->cfg.vocab_size, c->best_idx[s],
                      c->cols[c->samp_col[s]].logprobs);
}

/* ---- the step ------------------------------------------------------------------------------- */

/* A lane's sliding-layer rings hold only its last swa_ring positions, so a stream may go back to
 * pos (below the filled length) only while the window before pos is among them. Without sliding
 * layers (swa_ring 0) every position is kept. */
static int ring_has_window(const eng_ctx_t *c, int lane, int pos) {
    int lo = pos - c->cfg.window + 1;
    return c->swa_ring == 0 || c->swa_ring == c->ctx_len || pos == 0 ||
           (lo > 0 ? lo : 0) >= c->lane_len[lane] - c->swa_ring;
}

static int check_cols(eng_ctx_t *c, const eng_col_t *cols, int ncols) {
    if (ncols < 0 || ncols > c->max_cols) return LANES_EINVAL;
    int full_rows = 0;
    for (int i = 0; i < ncols; i++) c->lane_next[cols[i].lane < 0 || cols[i].lane >= c->max_lanes
                                                     ? 0 : cols[i].lane] = -1;
    for (int i = 0; i < ncols; i++) {
        const eng_col_t *cl = &cols[i];
        if (cl->lane < 0 || cl->lane >= c->max_lanes || cl->pos < 0 || cl->pos >= c->ctx_len ||
            cl->token < 0 || cl->token >= c->cfg.vocab_size)
            return LANES_EINVAL;
        int32_t *next = &c->lane_next[cl->lane];
        if (*next >= 0 ? cl->pos != *next
                       : cl->pos > c->lane_len[cl->lane] || !ring_has_window(c, cl->lane, cl->pos))
            return LANES_EINVAL;
        /* A recurrent state cannot rewind: a lane continues or restarts. */
        if (*next < 0 && c->dn_lane && cl->pos != 0 && cl->pos != c->lane_len[cl->lane])
            return LANES_EINVAL;
        *next = cl->pos + 1;
        if (cl->sample && cl->logprobs &&
            (cl->logprobs->top_n < 0 || cl->logprobs->top_n > ENG_MAX_TOP_LOGPROBS))
            return LANES_EINVAL;
        if (cl->sample && cl->logits == NULL &&
            (wants_full_row(&c->samplers[cl->lane]) || cl->logprobs) && ++full_rows > c->max_lanes)
            return LANES_EINVAL;
    }
    return LANES_OK;
}

/* x += the attention of every column (the layer's pre-norm first, its post-norm last). */
static void attention_mixer(eng_ctx_t *c, const eng_layer_t *lw) {
    const eng_model_cfg_t *mc = &c->cfg;
    int l = c->layer, kv = kv_dim_of(mc, l);
    /* The products a layer needs: a shared-KV layer's query alone; no V of its own when wv is wk
     * (qkv_finish copies k's). */
    int n = mc->layer_kv_reuse[l] ? 1 : lw->wv.data == lw->wk.data ? 2 : 3;
    norm_cols(c, lw->attn_norm, lw->attn_norm_b,
              act_bit(c, &lw->wq) | (n > 1 ? act_bit(c, &lw->wk) : 0) |
                  (n > 2 ? act_bit(c, &lw->wv) : 0));
    gemm_job_t qkv[3] = {
        mat_job(c, c->q, 1, q_ld_of(mc, l), &lw->wq, c->xb, 0),
        mat_job(c, c->k, 1, kv, &lw->wk, c->xb, 0),
        mat_job(c, c->v, 1, kv, &lw->wv, c->xb, 0),
    };
    run_jobs(c, qkv, n);
    qkv_finish(c);
    qact_begin(c, act_bit(c, &lw->wo), q_dim_of(mc, l));
    uint64_t t0 = lanes_now_ns();
    eng_pool_run(c->pool, c->ncols, attention_task, c);
    c->attn_ns += lanes_now_ns() - t0;
    residual_proj(c, &lw->wo, c->xb, lw->bo, lw->post_attn_norm);
}

/* x += the gated delta net of every column: its four input projections as one GEMM job list over
 * all columns, the recurrence a lane per task (counted as attention time: it is what replaces
 * attention), then ssm_out. */
static void dnet_mixer(eng_ctx_t *c, const eng_layer_t *lw) {
    int ch = eng__dnet_channels(&c->dn), H = c->dn.n_v_heads, hd = H * c->dn.head_dim;
    norm_cols(c, lw->attn_norm, lw->attn_norm_b,
              act_bit(c, &lw->ssm_qkv) | act_bit(c, &lw->ssm_gate) | act_bit(c, &lw->ssm_beta) |
                  act_bit(c, &lw->ssm_alpha));
    gemm_job_t in[4] = {
        mat_job(c, c->dn_qkv, 1, ch, &lw->ssm_qkv, c->xb, 0),
        mat_job(c, c->dn_z, 1, hd, &lw->ssm_gate, c->xb, 0),
        mat_job(c, c->dn_ba, 1, 2 * H, &lw->ssm_beta, c->xb, 0),
        mat_job(c, c->dn_ba + H, 1, 2 * H, &lw->ssm_alpha, c->xb, 0),
    };
    run_jobs(c, in, 4);
    qact_begin(c, act_bit(c, &lw->ssm_out), hd);
    uint64_t t0 = lanes_now_ns();
    eng_pool_run(c->pool, c->step_lanes, dnet_task, c);
    c->attn_ns += lanes_now_ns() - t0;
    residual_proj(c, &lw->ssm_out, c->dn_o, NULL, lw->post_attn_norm);
}

/* Every column's per-layer inputs from its token and its scaled embedding x, as ggml orders the
 * operations (FAMILIES.md §4 step 2): inp = (rms(ple_model_proj x * (1 / sqrtf(dim))) *
 * ple_proj_norm, per layer's ple_dim chunk, + ple_tok_emb[token] * sqrtf(ple_dim)) *
 * (1 / sqrtf(2)). */
static void ple_inputs(eng_ctx_t *c) {
    const eng_weights_t *w = c->w;
    const eng_model_cfg_t *mc = &c->cfg;
    int d = mc->dim, P = mc->ple_dim, LP = mc->n_layers * P;
    qact_begin(c, act_bit(c, &w->ple_model_proj), d);
    for (int col = 0; col < c->ncols; col++) qact_col(c, col, c->x + (size_t)col * d);
    gemm_job_t j = mat_job(c, c->ple_inp, 1, LP, &w->ple_model_proj, c->x, 0);
    run_jobs(c, &j, 1);
    float proj_scale = 1.0f / sqrtf((float)d), tok_scale = sqrtf((float)P);
    float in_scale = 1.0f / sqrtf(2.0f);
    for (int col = 0; col < c->ncols; col++) {
        float *inp = c->ple_inp + (size_t)col * LP;
        mat_row_f32(c, c->ple_row, &w->ple_tok_emb, c->cols[col].token);
        for (int i = 0; i < LP; i++) inp[i] *= proj_scale;
        for (int l = 0; l < mc->n_layers; l++)
            eng__rmsnorm(inp + (size_t)l * P, inp + (size_t)l * P, w->ple_proj_norm, P,
                         mc->norm_eps, mc->numerics);
        for (int i = 0; i < LP; i++) {
            float tok = c->ple_row[i] * tok_scale;
            inp[i] = (inp[i] + tok) * in_scale;
        }
    }
}

/* The end of layer lw (the current one) after its FFN: x += rms(ple_proj (gelu(ple_gate x) *
 * inp_l)) * ple_post_norm with per-layer inputs, then x *= out_scale where the layer has one
 * (FAMILIES.md §4 step 3). */
static void layer_end(eng_ctx_t *c, const eng_layer_t *lw) {
    const eng_model_cfg_t *mc = &c->cfg;
    int d = mc->dim, P = mc->ple_dim;
    if (P > 0) {
        size_t LP = (size_t)mc->n_layers * P;
        qact_begin(c, act_bit(c, &lw->ple_gate), d);
        for (int col = 0; col < c->ncols; col++) qact_col(c, col, c->x + (size_t)col * d);
        gemm_job_t j = mat_job(c, c->ple_g, 1, P, &lw->ple_gate, c->x, 0);
        run_jobs(c, &j, 1);
        qact_begin(c, act_bit(c, &lw->ple_proj), P);
        for (int col = 0; col < c->ncols; col++) {
            float *g = c->ple_g + (size_t)col * P;
            const float *inp = c->ple_inp + (size_t)col * LP + (size_t)c->layer * P;
            eng__gelu(g, P);
            for (int i = 0; i < P; i++) g[i] *= inp[i];
            qact_col(c, col, g);
        }
        residual_proj(c, &lw->ple_proj, c->ple_g, NULL, lw->ple_post_norm);
    }
    if (lw->out_scale)
        for (size_t i = 0; i < (size_t)c->ncols * d; i++) c->x[i] *= lw->out_scale[0];
}

/* step_first, col_next and step_lanes of the current step's columns. */
static void lanes_by_col(eng_ctx_t *c) {
    c->step_lanes = 0;
    for (int col = 0; col < c->ncols; col++) c->lane_last[c->cols[col].lane] = -1;
    for (int col = 0; col < c->ncols; col++) {
        int32_t *last = &c->lane_last[c->cols[col].lane];
        if (*last < 0) c->step_first[c->step_lanes++] = col;
        else c->col_next[*last] = col;
        *last = col;
        c->col_next[col] = -1;
    }
}

int eng_step(eng_ctx_t *c, const eng_col_t *cols, int ncols, int32_t *out_tok) {
    int rc = check_cols(c, cols, ncols);
    if (rc < 0) return rc;
    if (ncols == 0) return LANES_OK;
    for (int i = 0; i < ncols; i++) c->lane_len[cols[i].lane] = cols[i].pos + 1;
    const eng_weights_t *w = c->w;
    int d = c->cfg.dim;
    c->cols = cols;
    c->ncols = ncols;

    for (int col = 0; col < ncols; col++) {
        float *x = c->x + (size_t)col * d;
        mat_row_f32(c, x, &w->tok_emb, cols[col].token);
        if (c->cfg.emb_scale != 0.0f)
            for (int i = 0; i < d; i++) x[i] *= c->cfg.emb_scale;
        if (c->cfg.arch.pos_embd) {
            float *p = c->xo + (size_t)col * d;
            mat_row_f32(c, p, &w->pos_emb, cols[col].pos);
            for (int i = 0; i < d; i++) x[i] += p[i];
        }
    }
    if (c->cfg.ple_dim > 0) ple_inputs(c);

    if (c->dn_lane) lanes_by_col(c);
    for (int l = 0; l < c->cfg.n_layers; l++) {
        const eng_layer_t *lw = &w->layers[l];
        int h = eng_layer_hidden(&c->cfg, l);
        c->layer = l;
        if (layer_dnet(&c->cfg, l)) dnet_mixer(c, lw);
        else attention_mixer(c, lw);
        norm_cols(c, lw->ffn_norm, lw->ffn_norm_b,
                  act_bit(c, &lw->w_gate) | act_bit(c, &lw->w_up));
        if (c->gemm_backend == ENG_GEMM_OPENBLAS) {
            gemm_job_t up[2];
            run_jobs(c, up, ffn_up_jobs(c, up));
            ffn_act_rows(c, 0, h);
        } else {
            eng_pool_run(c->pool, ceil_div(h, ROW_TASK), ffn_up_task, c);
        }
        qact_begin(c, act_bit(c, &lw->w_down), h);
        if (c->qmask) eng_pool_run(c->pool, ncols, hb_quant_task, c);
        residual_proj(c, &lw->w_down, c->hb, lw->b_down, lw->post_ffn_norm);
        layer_end(c, lw);
    }

    /* Only sampled columns reach the classifier: prefill positions before the last skip it. */
    int ns = 0, nfull = 0, nrows = 0, nlp = 0;
    qact_begin(c, act_bit(c, &w->cls), d);
    for (int col = 0; col < ncols; col++) {
        out_tok[col] = -1;
        if (!cols[col].sample) continue;
        const eng_sampler_t *s = &c->samplers[cols[col].lane];
        int full_row = wants_full_row(s);
        norm_row(c, c->xs + (size_t)ns * d, c->x + (size_t)col * d, w->out_norm, w->out_norm_b);
        qact_col(c, ns, c->xs + (size_t)ns * d);
        c->samp_col[ns] = col;
        c->samp_row[ns] = cols[col].logits ? cols[col].logits
                          : full_row || cols[col].logprobs
                              ? c->full + (size_t)nrows++ * c->cfg.vocab_size : NULL;
        if (cols[col].logprobs) c->lp_samp[nlp++] = ns;
        c->samp_invt[ns] = !samples_greedily(s) && !full_row ? 1.0f / s->temperature : 0.0f;
        nfull += full_row;
        ns++;
    }
    c->nsamp = ns;
    if (ns == 0) return LANES_OK;
    int tasks = ceil_div(c->cfg.vocab_size, CLS_TASK);
    if (c->gemm_backend == ENG_GEMM_OPENBLAS)   /* BLAS runs its own threads */
        for (int t = 0; t < tasks; t++) classify_task(c, t, 0);
    else
        eng_pool_run(c->pool, tasks, classify_task, c);
    /* Tasks hold ascending row ranges, so a strict > merge in task order keeps the lowest id. */
    for (int t = 1; t < tasks; t++)
        for (int s = 0; s < ns; s++)
            if (c->best[(size_t)t * c->max_cols + s] > c->best[s]) {
                c->best[s] = c->best[(size_t)t * c->max_cols + s];
                c->best_idx[s] = c->best_idx[(size_t)t * c->max_cols + s];
            }
    if (nfull > 0) eng_pool_run(c->pool, ns, sample_task, c);
    if (nlp > 0) eng_pool_run(c->pool, nlp, logprobs_task, c);
    for (int s = 0; s < ns; s++) out_tok[c->samp_col[s]] = c->best_idx[s];
    return LANES_OK;
}

/* ---- lifetime ------------------------------------------------------------------------------- */

int eng_gemm_by_name(const char *name) {
    if (strcmp(name, "lanes") == 0) return ENG_GEMM_LANES;
    if (strcmp(name, "openblas") == 0) return ENG_GEMM_OPENBLAS;
    return LANES_EINVAL;
}

void eng_ctx_set_sampler(eng_ctx_t *c, int lane, const eng_sampler_t *s) {
    if (lane >= 0 && lane < c->max_lanes) c->samplers[lane] = *s;
}

const eng_model_cfg_t *eng_ctx_model_cfg(const eng_ctx_t *c) { return &c->cfg; }
int eng_ctx_threads(const eng_ctx_t *c) { return eng_pool_threads(c->pool); }
int eng_ctx_max_lanes(const eng_ctx_t *c) { return c->max_lanes; }
int eng_ctx_max_cols(const eng_ctx_t *c) { return c->max_cols; }
int eng_ctx_seq_len(const eng_ctx_t *c) { return c->ctx_len; }
uint64_t eng_ctx_attention_ns(const eng_ctx_t *c) { return c->attn_ns; }
const char *eng_ctx_kern_name(const eng_ctx_t *c) {
    return c->gemm_backend == ENG_GEMM_OPENBLAS ? "openblas" : c->kern->name;
}

enum { BUF_SIZE, BUF_ALLOC, BUF_FREE };

/* Every buffer of a context, sized from c's shape fields: one list serves eng_ctx_plan() (op
 * BUF_SIZE), allocation (zeroed) and freeing. Returns the bytes in all; 0 when an allocation
 * failed. */
static uint64_t ctx_buffers(eng_ctx_t *c, int threads, int op) {
    size_t mc = (size_t)c->max_cols, d = (size_t)c->cfg.dim, kv = (size_t)c->max_kv_dim;
    size_t qd = (size_t)c->max_q_dim, xbd = qd > d ? qd : d;
    size_t h = (size_t)c->max_hidden, seq = (size_t)c->ctx_len;
    size_t dch = 0, dhd = 0, dH = 0, dscratch = 0, dstate = 0;   /* delta-net buffers */
    if (c->dn_lane) {
        dch = (size_t)eng__dnet_channels(&c->dn);
        dH = (size_t)c->dn.n_v_heads;
        dhd = dH * (size_t)c->dn.head_dim;
        dscratch = eng__dnet_scratch_floats(&c->dn);
        for (int l = 0; l < c->cfg.n_layers; l++) dstate += layer_dnet(&c->cfg, l) ? c->dn_lane : 0;
    }
    size_t P = (size_t)c->cfg.ple_dim, LP = (size_t)c->cfg.n_layers * P;
    size_t widest = xbd > h ? xbd : h;
    if (dhd > widest) widest = dhd;
    int kq = (int)(widest > P ? widest : P);   /* the widest projection input */
    size_t vocab = (size_t)c->cfg.vocab_size, nt = (size_t)threads, lanes = (size_t)c->max_lanes;
    int last = c->cfg.n_layers - 1;
    size_t cache = c->cache_off[last] +
                   lanes * (size_t)layer_slots(c, last) * (size_t)kv_dim_of(&c->cfg, last);
    size_t cls_tasks = (vocab + CLS_TASK - 1) / CLS_TASK;
    size_t rope = seq * (size_t)(c->rope_pairs[0] + (c->swa_slots ? c->rope_pairs[1] : 0));
    uint64_t total = 0;
    int ok = 1;
#define BUF(field, count)                                                                         \
    do {                                                                                          \
        size_t n_ = (count);                                                                      \
        if (n_ == 0) n_ = 1;                                                                      \
        total += (uint64_t)n_ * sizeof *c->field;                                                 \
        if (op == BUF_ALLOC && (c->field = calloc(n_, sizeof *c->field)) == NULL) ok = 0;         \
        if (op == BUF_FREE) free(c->field);                                                       \
    } while (0)
    BUF(x, mc * d);
    BUF(xb, mc * xbd);
    BUF(xo, mc * d);
    BUF(q, mc * (size_t)c->max_q_ld);
    BUF(k, mc * kv);
    BUF(v, mc * kv);
    BUF(hb, mc * h);
    BUF(hb2, mc * h);
    BUF(xs, mc * d);
    BUF(ple_inp, mc * LP);
    BUF(ple_g, mc * P);
    BUF(ple_row, LP);
    /* Whatever the weights are: the plan has only the model's shape, and each quantized type
     * adds 1.25 bytes per value of the widest input, each 16-bit rounding (ggml numerics only) 4,
     * next to the 4 of each float activation. */
    for (int t = 0; t < 2; t++) {
        BUF(qact[t].qs, eng_qact_qs_len((int)mc, kq));
        BUF(qact[t].d, eng_qact_d_len(t, (int)mc, kq));
        BUF(qact[t].sums, eng_qact_sums_len((int)mc, kq));
        BUF(xr[t], c->cfg.numerics == ENG_NUMERICS_GGML ? mc * (size_t)kq : 0);
    }
    BUF(key_cache, cache);
    BUF(value_cache, cache);
    BUF(rope_cos, rope);
    BUF(rope_sin, rope);
    BUF(att, nt * seq);
    BUF(dn_state, lanes * dstate);
    BUF(dn_qkv, mc * dch);
    BUF(dn_z, mc * dhd);
    BUF(dn_ba, mc * 2 * dH);
    BUF(dn_o, mc * dhd);
    BUF(dn_scratch, nt * dscratch);
    BUF(tile, nt * CLS_TILE * mc);
    BUF(cap_thr, nt * mc);
    BUF(cap_span, nt * mc * 2);
    BUF(best, cls_tasks * mc);
    BUF(best_idx, cls_tasks * mc);
    BUF(full, lanes * vocab);
    BUF(samp_scratch, nt * eng__sample_scratch_words((int)vocab));
    BUF(samplers, lanes);
    BUF(lane_next, lanes);
    BUF(lane_len, lanes);
    BUF(samp_col, mc);
    BUF(samp_invt, mc);
    BUF(samp_row, mc);
    BUF(lp_samp, mc);
    BUF(step_first, mc);
    BUF(col_next, mc);
    BUF(lane_last, lanes);
#undef BUF
    return ok ? total : 0;
}

void eng_ctx_destroy(eng_ctx_t *c) {
    if (c == NULL) return;
    eng_pool_destroy(c->pool);
    ctx_buffers(c, 0, BUF_FREE);
    free(c);
}

/* The shape fields of a context for model shape mc and cfg, as ctx_buffers() reads them. */
static void set_shape(eng_ctx_t *c, const eng_model_cfg_t *mc, const eng_ctx_cfg_t *cfg, int ctx) {
    c->cfg = *mc;
    c->max_lanes = cfg->max_lanes;
    c->max_cols = cfg->max_cols;
    c->ctx_len = ctx;
    c->max_q_dim = c->max_q_ld = c->max_kv_dim = c->max_hidden = 0;
    for (int l = 0; l < mc->n_layers; l++) {
        if (q_ld_of(mc, l) > c->max_q_ld) c->max_q_ld = q_ld_of(mc, l);
        if (q_dim_of(mc, l) > c->max_q_dim) c->max_q_dim = q_dim_of(mc, l);
        if (kv_dim_of(mc, l) > c->max_kv_dim) c->max_kv_dim = kv_dim_of(mc, l);
        if (eng_layer_hidden(mc, l) > c->max_hidden) c->max_hidden = eng_layer_hidden(mc, l);
    }
    c->rope_pairs[0] = mc->rope_dim / 2;
    c->rope_pairs[1] = (mc->rope_dim_swa ? mc->rope_dim_swa : mc->rope_dim) / 2;
    for (int t = 0; t < 2; t++) c->qact[t].type = t;
    c->swa_ring = c->swa_slots = 0;
    for (int l = 0; l < mc->n_layers; l++)
        if (eng_layer_slides(mc, l)) {
            int64_t ring = (int64_t)mc->window + c->max_cols - 1;
            c->swa_ring = c->swa_slots = ctx;
            if (ring + mc->window - 1 < ctx) {
                c->swa_ring = (int)ring;
                c->swa_slots = (int)(ring + mc->window - 1);
            }
        }
    size_t off = 0;
    for (int l = 0; l < mc->n_layers; l++) {
        c->cache_off[l] = off;
        off += (size_t)c->max_lanes * (size_t)layer_slots(c, l) * (size_t)kv_dim_of(mc, l);
    }
    c->dn = dnet_shape(mc);
    c->dn_lane = 0;
    off = 0;
    for (int l = 0; l < mc->n_layers; l++) {
        c->state_off[l] = off;
        if (layer_dnet(mc, l)) {   /* the shape is checked (eng_ctx_plan) */
            c->dn_lane = eng__dnet_state_floats(&c->dn);
            off += (size_t)c->max_lanes * c->dn_lane;
        }
    }
}

/* "9.0 GiB": bytes for a log line. */
static const char *fmt_bytes(char *buf, size_t cap, uint64_t n) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 6) v /= 1024.0, u++;
    snprintf(buf, cap, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
    return buf;
}

/* What is wrong with layer l's own shape in model shape mc (a known kind), or NULL. */
static const char *layer_shape_error(const eng_model_cfg_t *mc, int l) {
    int kvh = eng_layer_kv_heads(mc, l), src = kv_source(mc, l);
    if (eng_layer_head_dim(mc, l) <= 0 || eng_layer_hidden(mc, l) <= 0 || kvh <= 0 ||
        mc->n_heads % kvh != 0)
        return "has no heads or FFN, or a KV head count that does not divide the heads";
    if (src == l) return NULL;
    if (src < 0 || layer_dnet(mc, l) || layer_dnet(mc, src) || mc->layer_kv_reuse[src] ||
        eng_layer_slides(mc, src) != eng_layer_slides(mc, l) ||
        eng_layer_kv_heads(mc, src) != kvh ||
        eng_layer_head_dim(mc, src) != eng_layer_head_dim(mc, l))
        return "shares the KV cache of a layer that is not an earlier attention layer of its kind "
               "(sliding or global), head size and KV heads keeping its own";
    return NULL;
}

int eng_ctx_plan(const eng_model_cfg_t *mc, const eng_ctx_cfg_t *cfg, uint64_t avail,
                 eng_ctx_plan_t *out) {
    if (cfg->max_lanes < 1 || cfg->max_lanes > ENG_MAX_LANES || cfg->max_cols < 1 ||
        cfg->threads < 0 || cfg->ctx < 0) {
        LANES_LOG(LANES_LOG_ERROR, "engine: bad context config: %d lanes (1..%d), %d columns, "
                  "%d threads, ctx %d", cfg->max_lanes, ENG_MAX_LANES, cfg->max_cols, cfg->threads,
                  cfg->ctx);
        return LANES_EINVAL;
    }
    if (mc->window < 0 || mc->window > mc->seq_len) {
        LANES_LOG(LANES_LOG_ERROR, "engine: sliding window %d is outside 0..seq_len %d",
                  mc->window, mc->seq_len);
        return LANES_EINVAL;
    }
    if (cfg->ctx > mc->seq_len) {
        LANES_LOG(LANES_LOG_ERROR, "engine: --ctx %d is longer than the model's seq_len %d",
                  cfg->ctx, mc->seq_len);
        return LANES_EINVAL;
    }
    for (int l = 0; l < mc->n_layers; l++) {
        eng_dnet_shape_t s = dnet_shape(mc);
        if (mc->layer_kind[l] > ENG_LAYER_DNET) {
            LANES_LOG(LANES_LOG_ERROR, "engine: layer %d is of unknown kind %d", l,
                      mc->layer_kind[l]);
            return LANES_EINVAL;
        }
        if (layer_dnet(mc, l) && eng__dnet_shape_check(&s) < 0) return LANES_EINVAL;
        const char *why = layer_shape_error(mc, l);
        if (why) {
            LANES_LOG(LANES_LOG_ERROR, "engine: layer %d %s", l, why);
            return LANES_EINVAL;
        }
    }
    int ctx = cfg->ctx ? cfg->ctx : mc->seq_len < ENG_CTX_DEFAULT ? mc->seq_len : ENG_CTX_DEFAULT;
    int threads = cfg->threads ? cfg->threads : lanes_sys_cpus();
    eng_ctx_t shape = {0};
    set_shape(&shape, mc, cfg, ctx);
    uint64_t kv_lane = 0;   /* keys and values, or a delta-net layer's state */
    for (int l = 0; l < mc->n_layers; l++) {
        uint64_t floats = layer_dnet(mc, l) ? shape.dn_lane
                          : 2 * (uint64_t)layer_slots(&shape, l) * (uint64_t)kv_dim_of(mc, l);
        kv_lane += floats * sizeof(float);
    }
    *out = (eng_ctx_plan_t){ctx, threads, kv_lane, kv_lane * (uint64_t)cfg->max_lanes,
                            ctx_buffers(&shape, threads, BUF_SIZE)};
    if (out->total > avail) {
        char need[32], have[32], kv[32];
        LANES_LOG(LANES_LOG_ERROR, "engine: lanes %d x context %d tokens need %s (KV cache %s) "
                  "but only %s of memory is available: lower --lanes or --ctx", cfg->max_lanes, ctx,
                  fmt_bytes(need, sizeof need, out->total), fmt_bytes(kv, sizeof kv, out->kv),
                  fmt_bytes(have, sizeof have, avail));
        return LANES_ENOMEM;
    }
    return LANES_OK;
}

/* 1 when m is a matrix of a supported weight type, rows of whole blocks, of shape (rows, cols). */
static int mat_ok(const eng_mat_t *m, int rows, int cols) {
    return m->data != NULL && eng_wtype_row_bytes(m->type, cols) != 0 && m->rows == rows &&
           m->cols == cols;
}

/* Every tensor the architecture reads is there in the shape the config gives, so a loader's
 * slip is an error here, not a wild read in a step. Returns a description of the first problem
 * (*layer: its layer, or -1), or NULL. */
static const char *check_weights(const eng_model_cfg_t *c, const eng_weights_t *w, int ctx_len,
                                 int *layer) {
    *layer = -1;
    int d = c->dim, v = c->vocab_size, P = c->ple_dim, LP = c->n_layers * c->ple_dim;
    if (!mat_ok(&w->tok_emb, v, d) || !mat_ok(&w->cls, v, d) || w->out_norm == NULL)
        return "token embedding, classifier or output norm missing or misshapen";
    if (c->arch.pos_embd && (!mat_ok(&w->pos_emb, w->pos_emb.rows, d) || w->pos_emb.rows < ctx_len))
        return "position embeddings missing or shorter than the context";
    if (P > 0 && (!mat_ok(&w->ple_tok_emb, v, LP) || !mat_ok(&w->ple_model_proj, LP, d) ||
                  w->ple_proj_norm == NULL))
        return "per-layer token embedding, model projection or projection norm missing or "
               "misshapen";
    /* A delta-net layer's sizes (their shape is checked, eng_ctx_plan). */
    int K = c->ssm_k_heads, H = c->ssm_v_heads, sd = c->ssm_head_dim, ch = (2 * K + H) * sd;
    for (int l = 0; l < c->n_layers; l++) {
        const eng_layer_t *lw = &w->layers[l];
        int h = eng_layer_hidden(c, l), qd = q_dim_of(c, l), kvd = kv_dim_of(c, l);
        int rd = eng_layer_rope_dim(c, l);
        *layer = l;
        if (c->layer_kind[l] != ENG_LAYER_DNET && c->arch.rope != ENG_ROPE_NONE &&
            (rd <= 0 || rd % 2 != 0 || rd > eng_layer_head_dim(c, l)))
            return "rope dimension is not an even count of at most the head size";
        /* A layer with its own KV has wk and wv (wv may be wk: V = K, with no bias of its own);
         * one that shares another's has neither. */
        int own_kv = !c->layer_kv_reuse[l];
        int kv_ok = !own_kv || (mat_ok(&lw->wk, kvd, d) && mat_ok(&lw->wv, kvd, d) &&
                                (!c->arch.qk_norm || lw->k_norm) &&
                                !(lw->wv.data == lw->wk.data && lw->bv));
        int mixer_ok = c->layer_kind[l] == ENG_LAYER_DNET
            ? mat_ok(&lw->ssm_qkv, ch, d) && mat_ok(&lw->ssm_gate, H * sd, d) &&
              mat_ok(&lw->ssm_beta, H, d) && mat_ok(&lw->ssm_alpha, H, d) &&
              mat_ok(&lw->ssm_out, d, H * sd) && lw->ssm_conv && lw->ssm_dt_bias && lw->ssm_a &&
              lw->ssm_norm
            : mat_ok(&lw->wq, c->arch.attn_gate ? 2 * qd : qd, d) && kv_ok &&
              mat_ok(&lw->wo, d, qd) && (!c->arch.qk_norm || lw->q_norm) &&
              !(c->arch.attn_gate && lw->bq);   /* a bias of the gated layout: none exists */
        int ple_ok = P == 0 || (mat_ok(&lw->ple_gate, P, d) && mat_ok(&lw->ple_proj, d, P) &&
                                lw->ple_post_norm);
        if (!mixer_ok || !ple_ok || lw->attn_norm == NULL || lw->ffn_norm == NULL ||
            !mat_ok(&lw->w_up, h, d) || !mat_ok(&lw->w_down, d, h) ||
            (c->arch.ffn != ENG_FFN_GELU && !mat_ok(&lw->w_gate, h, d)) ||
            (c->arch.post_norms && (lw->post_attn_norm == NULL || lw->post_ffn_norm == NULL)))
            return "a tensor of this layer is missing or misshapen";
    }
    *layer = -1;
    return NULL;
}

int eng_ctx_create(const eng_model_t *m, const eng_ctx_cfg_t *cfg, eng_ctx_t **out) {
    eng_ctx_plan_t plan;
    int rc = eng_ctx_plan(eng_model_cfg(m), cfg, lanes_sys_mem_avail(), &plan);
    if (rc < 0) return rc;
    int layer;
    const char *why = check_weights(eng_model_cfg(m), eng_model_weights(m), plan.ctx, &layer);
    if (why) {
        if (layer >= 0)
            LANES_LOG(LANES_LOG_ERROR, "engine: model %s, layer %d: %s", eng_model_name(m), layer,
                      why);
        else
            LANES_LOG(LANES_LOG_ERROR, "engine: model %s: %s", eng_model_name(m), why);
        return LANES_EINVAL;
    }
    eng_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) return LANES_ENOMEM;
    set_shape(c, eng_model_cfg(m), cfg, plan.ctx);
    c->w = eng_model_weights(m);
    c->kern = eng_kern_best();
    c->gemm_backend = cfg->gemm;

    int threads = plan.threads;
    if (c->gemm_backend == ENG_GEMM_OPENBLAS) openblas_set_num_threads(threads);
    rc = LANES_ENOMEM;
    if (ctx_buffers(c, threads, BUF_ALLOC) == 0) {
        LANES_LOG(LANES_LOG_ERROR, "engine: cannot allocate buffers for %d lanes, %d columns",
                  c->max_lanes, c->max_cols);
        goto fail;
    }
    /* The global layers' table, then the sliding layers' (their own base and scale; rope_freqs
     * are the global layers' alone, as Gemma 4's full layers carry them). */
    const eng_model_cfg_t *mc = &c->cfg;
    for (int t = 0; t < (c->swa_slots ? 2 : 1); t++)
        for (int p = 0; p < c->ctx_len; p++) {
            size_t row = (t ? (size_t)c->ctx_len * c->rope_pairs[0] : 0) +
                         (size_t)p * c->rope_pairs[t];
            float base = t ? mc->rope_base_swa : mc->rope_base;
            float scale = t ? mc->rope_scale_swa : mc->rope_scale;
            eng__rope_angles(c->rope_cos + row, c->rope_sin + row, p, 2 * c->rope_pairs[t], base,
                             scale != 0.0f ? scale : 1.0f, t ? NULL : c->w->rope_freqs,
                             mc->numerics);
        }
    eng__gumbel_bounds(c->gumbel_ub);
    if ((rc = eng_pool_create(threads, &c->pool)) < 0) goto fail;
    char kv_lane[32], kv[32], total[32];
    LANES_LOG(LANES_LOG_INFO, "engine: lanes %d, context %d tokens: KV cache%s %s per lane, %s in "
              "all; %s with the other buffers; threads %d", c->max_lanes, c->ctx_len,
              c->dn_lane ? " and delta-net state" : "",
              fmt_bytes(kv_lane, sizeof kv_lane, plan.kv_lane), fmt_bytes(kv, sizeof kv, plan.kv),
              fmt_bytes(total, sizeof total, plan.total), threads);
    if (c->dn_lane) {
        char st[32];
        LANES_LOG(LANES_LOG_INFO, "engine: delta-net layers hold %s of state per lane and layer "
                  "(its convolution's last %d inputs and %d value heads' %dx%d matrices), whatever "
                  "the context", fmt_bytes(st, sizeof st, c->dn_lane * sizeof(float)),
                  c->dn.conv_kernel - 1, c->dn.n_v_heads, c->dn.head_dim, c->dn.head_dim);
    }
    if (c->swa_slots)
        LANES_LOG(LANES_LOG_INFO, "engine: sliding layers (window %d) keep %d positions per lane "
                  "(the window + %d columns per step - 1, + the window - 1 mirrored; at most the "
                  "context)", mc->window, c->swa_slots, c->max_cols);
    int sharing = 0;
    for (int l = 0; l < mc->n_layers; l++) sharing += mc->layer_kv_reuse[l] != 0;
    if (sharing)
        LANES_LOG(LANES_LOG_INFO, "engine: %d of %d layers read an earlier layer's KV cache and "
                  "keep none of their own", sharing, mc->n_layers);
    *out = c;
    return LANES_OK;
fail:
    eng_ctx_destroy(c);
    return rc;
}
