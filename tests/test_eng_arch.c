/* The architecture features of the forward pass against independent references: RoPE in both
 * modes over part of a head, ggml's and run.c's angles and the rope_freqs divisors, RMSNorm,
 * LayerNorm, GELU and the fp32 -> F16/BF16 rounding on hand-computed values; then the whole
 * forward pass of a synthetic model of every architecture and weight type against a plain
 * double-precision transformer written here from the formulas (so a feature that is computed
 * right but applied in the wrong place, or not at all, fails too). Batch invariance of the same
 * models is test_eng_batch's. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/lanes_err.h"
#include "engine.h"
#include "kern/half.h"
#include "nn.h"
#include "test_families.h"
#include "test_util.h"

#define ASSERT_NEAR(a, b, tol)                                                                    \
    do {                                                                                          \
        double a_ = (a), b_ = (b);                                                                \
        if (!(fabs(a_ - b_) <= (tol))) {                                                          \
            fprintf(stderr, "%s:%d: %s = %.9g, want %.9g (tol %g)\n", __FILE__, __LINE__, #a, a_, \
                    b_, (double)(tol));                                                           \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* Two heads of 6 channels, the first 4 rotated: pairs mode turns (0,1) and (2,3), NEOX (0,2) and
 * (1,3); channels 4 and 5 stay. */
static void check_rope(void) {
    const float cs[2] = {0.6f, 0.8f}, sn[2] = {0.8f, -0.6f};
    float v[12], w[12];
    for (int i = 0; i < 12; i++) v[i] = w[i] = (float)(i + 1);
    eng__rope(v, 2, 6, 4, ENG_ROPE_PAIRS, cs, sn);
    /* head 0: (1, 2) by angle 0 -> (1*.6 - 2*.8, 1*.8 + 2*.6); (3, 4) by angle 1 -> (3*.8 + 4*.6,
     * 3*-.6 + 4*.8) */
    const float pairs[12] = {-1.0f, 2.0f, 4.8f, 1.4f, 5, 6, 7 * .6f - 8 * .8f, 7 * .8f + 8 * .6f,
                             9 * .8f + 10 * .6f, 9 * -.6f + 10 * .8f, 11, 12};
    for (int i = 0; i < 12; i++) ASSERT_NEAR(v[i], pairs[i], 1e-5);
    eng__rope(w, 2, 6, 4, ENG_ROPE_NEOX, cs, sn);
    /* head 0: (1, 3) by angle 0 -> (.6 - 2.4, .8 + 1.8); (2, 4) by angle 1 -> (1.6 + 2.4,
     * -1.2 + 3.2) */
    const float neox[12] = {-1.8f, 4.0f, 2.6f, 2.0f, 5, 6, 7 * .6f - 9 * .8f, 8 * .8f + 10 * .6f,
                            7 * .8f + 9 * .6f, 8 * -.6f + 10 * .8f, 11, 12};
    for (int i = 0; i < 12; i++) ASSERT_NEAR(w[i], neox[i], 1e-5);
    float none[3] = {1, 2, 3};
    eng__rope(none, 1, 3, 0, ENG_ROPE_NONE, cs, sn);
    ASSERT(none[0] == 1 && none[1] == 2 && none[2] == 3);
    printf("rope: pairs and NEOX rotate the right channels of each head, the rest stay\n");
}

/* theta_i = pos * base^(-2i / rope_dim) / freqs[i]: ggml's float recurrence within float error of
 * the exact angle; run.c's table bit for bit as run.c writes it. */
static void check_rope_angles(void) {
    enum { DIM = 16 };
    const float freqs[DIM / 2] = {1, 1, 4.9234724f, 32, 32, 32, 32, 32};
    float cs[DIM / 2], sn[DIM / 2];
    for (int pos = 0; pos < 512; pos += 37) {
        eng__rope_angles(cs, sn, pos, DIM, 500000.0f, 1.0f, freqs, ENG_NUMERICS_GGML);
        for (int i = 0; i < DIM / 2; i++) {
            double t = pos * pow(500000.0, -2.0 * i / DIM) / freqs[i];
            ASSERT_NEAR(cs[i], cos(t), 2e-4);
            ASSERT_NEAR(sn[i], sin(t), 2e-4);
        }
        eng__rope_angles(cs, sn, pos, DIM, 10000.0f, 1.0f, NULL, ENG_NUMERICS_RUNC);
        for (int i = 0; i < DIM; i += 2) {
            float freq = 1.0f / powf(10000.0f, (float)i / (float)DIM), val = (float)pos * freq;
            ASSERT(cs[i / 2] == cosf(val) && sn[i / 2] == sinf(val));
        }
    }
    /* The divisor slows a pair: pair 3 of position 100 turns 32 times less. */
    eng__rope_angles(cs, sn, 100, DIM, 500000.0f, 1.0f, freqs, ENG_NUMERICS_GGML);
    ASSERT_NEAR(atan2(sn[3], cs[3]), 100 * pow(500000.0, -6.0 / DIM) / 32, 1e-5);
    printf("rope angles: ggml's within 2e-4 of exact with rope_freqs divisors, run.c's bitwise\n");
}

static void check_norms(void) {
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 2}, b[4] = {0, 1, 0, 1};
    float o[4];
    /* mean 2.5, variance 1.25 */
    eng__layernorm(o, x, w, b, 4, 0.0f);
    double s = 1 / sqrt(1.25);
    const double ln[4] = {-1.5 * s, -0.5 * s + 1, 0.5 * s * 2, 1.5 * s * 2 + 1};
    for (int i = 0; i < 4; i++) ASSERT_NEAR(o[i], ln[i], 1e-6);
    eng__layernorm(o, x, w, NULL, 4, 0.75f);   /* eps under the root: sqrt(2) */
    ASSERT_NEAR(o[3], 1.5 / sqrt(2.0) * 2, 1e-6);
    for (int numerics = ENG_NUMERICS_GGML; numerics <= ENG_NUMERICS_RUNC; numerics++) {
        eng__rmsnorm(o, x, w, 4, 1e-5f, numerics);   /* mean square 7.5 */
        for (int i = 0; i < 4; i++) ASSERT_NEAR(o[i], x[i] * w[i] / sqrt(7.5 + 1e-5), 1e-6);
    }
    printf("norms: LayerNorm with and without bias, RMSNorm in both numerics\n");
}

/* ggml's GELU: gelu_tanh(x) = 0.5 x (1 + tanh(0.7978845608 (x + 0.044715 x^3))) with its input
 * and output rounded to F16; 0 from -10 down, x from 10 up. */
static float gelu_ggml_f32(float x) {
    if (x <= -10.0f) return 0.0f;
    if (x >= 10.0f) return x;
    float h = eng_f16_to_f32(eng_f32_to_f16(x));
    float g = 0.5f * h * (1.0f + tanhf(0.79788456080286535587989211986876f * h *
                                       (1.0f + 0.044715f * h * h)));
    return eng_f16_to_f32(eng_f32_to_f16(g));
}

/* The tanh form's values computed apart in double precision, within F16 rounding; every F16
 * input and ones between them as ggml's table gives them; the geglu product. */
static void check_gelu(void) {
    float x[6] = {0.0f, 1.0f, -1.0f, 3.0f, -3.0f, 0.5f};
    const double want[6] = {0.0, 0.841191991, -0.158808009, 2.996362608, -0.003637392, 0.345714010};
    eng__gelu(x, 6);
    for (int i = 0; i < 6; i++) ASSERT_NEAR(x[i], want[i], fabs(want[i]) * 0x1p-11 + 1e-7);
    ASSERT(x[1] == 0.841308594f);   /* the F16 value next to 0.841192, not the exact form's */
    for (uint32_t h = 0; h < 0x10000u; h++) {
        float v = eng_f16_to_f32((uint16_t)h), y = v, mid = nextafterf(v, 0.0f);
        if (isnan(v)) continue;
        eng__gelu(&y, 1);
        ASSERT(y == gelu_ggml_f32(v));
        float ym = mid;   /* just below |v|: rounds to v or its neighbour as F16 does */
        eng__gelu(&ym, 1);
        ASSERT(ym == gelu_ggml_f32(mid));
    }
    float edge[4] = {-10.0f, -9.999f, 10.0f, 12.5f};
    eng__gelu(edge, 4);
    ASSERT(edge[0] == 0.0f && edge[1] == gelu_ggml_f32(-9.999f) && edge[2] == 10.0f &&
           edge[3] == 12.5f);
    float g[4] = {1.0f, -12.0f, 11.0f, 0.5f};
    const float u[4] = {3.0f, INFINITY, 2.0f, -1.0f};
    eng__geglu(g, u, 4);
    ASSERT(g[0] == gelu_ggml_f32(1.0f) * 3.0f && g[1] == 0.0f && g[2] == 22.0f &&
           g[3] == -gelu_ggml_f32(0.5f));
    printf("gelu: ggml's F16 table on every F16 input and between, tanh form within F16, geglu\n");
}

static void check_rounding(void) {
    /* Every finite F16 value converts back to itself, and the midpoint above it ties to even. */
    for (uint32_t h = 0; h < 0x7c00u; h++) {
        float f = eng_f16_to_f32((uint16_t)h);
        ASSERT_EQ(eng_f32_to_f16(f), h);
        ASSERT_EQ(eng_f32_to_f16(-f), h | 0x8000u);
        if (h + 1 == 0x7c00u) continue;
        float mid = (float)(((double)f + eng_f16_to_f32((uint16_t)(h + 1))) / 2);
        ASSERT_EQ(eng_f32_to_f16(mid), (h & 1u) ? h + 1 : h);
        ASSERT_EQ(eng_f32_to_f16(nextafterf(mid, 0.0f)), h);
        ASSERT_EQ(eng_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
    }
    ASSERT_EQ(eng_f32_to_f16(65519.996f), 0x7bffu);
    ASSERT_EQ(eng_f32_to_f16(65520.0f), 0x7c00u);
    ASSERT_EQ(eng_f32_to_f16(1e30f), 0x7c00u);
    ASSERT_EQ(eng_f32_to_f16(-INFINITY), 0xfc00u);
    ASSERT_EQ(eng_f32_to_f16(0x1p-25f), 0);          /* half the smallest subnormal: even */
    ASSERT_EQ(eng_f32_to_f16(0x1.000002p-25f), 1);
    ASSERT_EQ(eng_f32_to_f16(0x1.8p-24f), 2);        /* 1.5 units: to even */
    ASSERT(isnan(eng_f16_to_f32(eng_f32_to_f16(NAN))));
    for (uint32_t h = 0; h + 1 < 0x7f80u; h += 7) {
        float f = eng_bf16_to_f32((uint16_t)h);
        ASSERT_EQ(eng_f32_to_bf16(f), h);
        float mid = (float)(((double)f + eng_bf16_to_f32((uint16_t)(h + 1))) / 2);
        ASSERT_EQ(eng_f32_to_bf16(mid), (h & 1u) ? h + 1 : h);
        ASSERT_EQ(eng_f32_to_bf16(nextafterf(mid, INFINITY)), h + 1);
    }
    ASSERT_EQ(eng_f32_to_bf16(3.4e38f), 0x7f80u);
    ASSERT(isnan(eng_bf16_to_f32(eng_f32_to_bf16(NAN))));
    printf("rounding: fp32 -> F16/BF16 to nearest even, overflow, subnormals, NaN\n");
}

/* ---- the reference transformer ------------------------------------------------------------ */

static double *mat_d(const eng_mat_t *m) {
    size_t n = (size_t)m->rows * (size_t)m->cols;
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = m->type == ENG_WT_F16    ? eng_f16_to_f32(((const uint16_t *)m->data)[i])
               : m->type == ENG_WT_BF16 ? eng_bf16_to_f32(((const uint16_t *)m->data)[i])
                                        : ((const float *)m->data)[i];
    return d;
}

/* Whose rounding the model follows: ggml multiplies 16-bit weights with the activations
 * rounded to the same 16 bits (its vec_dot_type), and so does the engine for such models. */
static int g_numerics;

/* x as a 16-bit product of weight type wtype reads it. */
static double act_d(int wtype, double x) {
    if (g_numerics != ENG_NUMERICS_GGML) return x;
    if (wtype == ENG_WT_F16) return eng_f16_to_f32(eng_f32_to_f16((float)x));
    if (wtype == ENG_WT_BF16) return eng_bf16_to_f32(eng_f32_to_bf16((float)x));
    return x;
}

/* y = W x + b (b NULL: none) */
static void matvec(double *y, const eng_mat_t *m, const double *x, const float *b) {
    double *w = mat_d(m);
    for (int r = 0; r < m->rows; r++) {
        double s = b ? b[r] : 0.0;
        for (int k = 0; k < m->cols; k++) s += w[(size_t)r * m->cols + k] * act_d(m->type, x[k]);
        y[r] = s;
    }
    free(w);
}

/* w NULL: no weight. */
static void norm_d(double *o, const double *x, const float *w, const float *b, int n, double eps,
                   int layer) {
    double mean = 0, sq = 0;
    if (layer)
        for (int i = 0; i < n; i++) mean += x[i] / n;
    for (int i = 0; i < n; i++) sq += (x[i] - mean) * (x[i] - mean) / n;
    for (int i = 0; i < n; i++)
        o[i] = (x[i] - mean) / sqrt(sq + eps) * (w ? w[i] : 1) + (b ? b[i] : 0);
}

/* RoPE over the first rd channels of each head of hd; base and scale: the layer's (sliding layers
 * have their own), scale 0 = 1. */
static void rope_d(double *v, int heads, int hd, int rd, const eng_model_cfg_t *c, double base,
                   double scale, const float *freqs, int pos) {
    int half = rd / 2;
    if (scale == 0) scale = 1;
    for (int h = 0; h < heads && c->arch.rope != ENG_ROPE_NONE; h++)
        for (int i = 0; i < half; i++) {
            double t = scale * pos * pow(base, -2.0 * i / rd) / (freqs ? freqs[i] : 1);
            int a = c->arch.rope == ENG_ROPE_NEOX ? i : 2 * i;
            int b = c->arch.rope == ENG_ROPE_NEOX ? i + half : 2 * i + 1;
            double x0 = v[h * hd + a], x1 = v[h * hd + b];
            v[h * hd + a] = x0 * cos(t) - x1 * sin(t);
            v[h * hd + b] = x0 * sin(t) + x1 * cos(t);
        }
}

/* inp (n, n_layers * ple_dim): each position's per-layer inputs, from its token and its scaled
 * embedding x: (rms(ple_model_proj x / sqrt(dim)) * ple_proj_norm per layer's chunk +
 * ple_tok_emb[token] sqrt(ple_dim)) / sqrt(2). */
static void ple_inputs_d(const eng_model_t *m, const int32_t *ids, int n, const double *x,
                         double *inp) {
    const eng_model_cfg_t *c = eng_model_cfg(m);
    const eng_weights_t *w = eng_model_weights(m);
    int d = c->dim, P = c->ple_dim, LP = c->n_layers * P;
    double *tok = mat_d(&w->ple_tok_emb), *proj = malloc(sizeof *proj * LP);
    for (int t = 0; t < n; t++) {
        matvec(proj, &w->ple_model_proj, x + (size_t)t * d, NULL);
        for (int i = 0; i < LP; i++) proj[i] /= sqrt(d);
        for (int l = 0; l < c->n_layers; l++)
            norm_d(proj + l * P, proj + l * P, w->ple_proj_norm, NULL, P, c->norm_eps, 0);
        for (int i = 0; i < LP; i++)
            inp[(size_t)t * LP + i] = (proj[i] + tok[(size_t)ids[t] * LP + i] * sqrt(P)) / sqrt(2);
    }
    free(tok), free(proj);
}

/* Logits (n, vocab) of tokens ids[0..n) of one stream. A sliding layer's query at t sees the keys
 * t - window < p <= t and has its own RoPE base and scale, without rope_freqs, and its own head
 * size and RoPE span; each layer its own KV heads and FFN width. A shared-KV layer attends to the
 * cache of the layer it reads; a layer whose wv is wk takes v = k's product before k's norm; V
 * norm is a weightless RMSNorm per KV head. Post norms norm a branch before it joins the residual
 * stream; per-layer embeddings join after the FFN, then the layer's output scale multiplies the
 * stream; the logits are softcapped. */
static void reference(const eng_model_t *m, const int32_t *ids, int n, double *logits) {
    g_numerics = eng_model_cfg(m)->numerics;
    const eng_model_cfg_t *c = eng_model_cfg(m);
    const eng_weights_t *w = eng_model_weights(m);
    int d = c->dim, L = c->n_layers, P = c->ple_dim, LP = L * P, wq = 0, wkv = 0, wh = 0;
    for (int l = 0; l < L; l++) {   /* the widest layer's sizes */
        int lq = c->n_heads * eng_layer_head_dim(c, l);
        int lkv = eng_layer_kv_heads(c, l) * eng_layer_head_dim(c, l);
        wq = lq > wq ? lq : wq;
        wkv = lkv > wkv ? lkv : wkv;
        wh = eng_layer_hidden(c, l) > wh ? eng_layer_hidden(c, l) : wh;
    }
    int layer = c->arch.norm == ENG_NORM_LAYER;
    double *x = calloc((size_t)n * d, sizeof *x), *h = malloc(sizeof *h * (d > wq ? d : wq));
    double *q = malloc(sizeof *q * wq), *att = malloc(sizeof *att * wq), *o = malloc(sizeof *o * d);
    double *kc = malloc(sizeof *kc * L * n * wkv), *vc = malloc(sizeof *vc * L * n * wkv);
    double *g = malloc(sizeof *g * wh), *u = malloc(sizeof *u * wh), *s = malloc(sizeof *s * n);
    double *inp = malloc(sizeof *inp * ((size_t)n * LP + 1)), *pg = malloc(sizeof *pg * (P + 1));
    double *emb = mat_d(&w->tok_emb), *pos = w->pos_emb.data ? mat_d(&w->pos_emb) : NULL;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < d; i++)
            x[t * d + i] = emb[(size_t)ids[t] * d + i] * (c->emb_scale ? c->emb_scale : 1) +
                           (pos ? pos[(size_t)t * d + i] : 0);
    if (P > 0) ple_inputs_d(m, ids, n, x, inp);
    for (int l = 0; l < L; l++) {
        const eng_layer_t *lw = &w->layers[l];
        int swa = c->window > 0 && c->layer_swa[l], hd = eng_layer_head_dim(c, l);
        int kvh = eng_layer_kv_heads(c, l), rd = eng_layer_rope_dim(c, l);
        int hid = eng_layer_hidden(c, l), src = l - c->layer_kv_reuse[l];
        double base = swa ? c->rope_base_swa : c->rope_base;
        double rscale = swa ? c->rope_scale_swa : c->rope_scale;
        const float *freqs = swa ? NULL : w->rope_freqs;
        const double *ks = kc + (size_t)src * n * wkv, *vs = vc + (size_t)src * n * wkv;
        for (int t = 0; t < n; t++) {   /* causal: position t sees keys 0..t, filed in order */
            double *xt = x + (size_t)t * d, *k = kc + ((size_t)l * n + t) * wkv;
            double *v = vc + ((size_t)l * n + t) * wkv;
            norm_d(h, xt, lw->attn_norm, lw->attn_norm_b, d, c->norm_eps, layer);
            matvec(q, &lw->wq, h, lw->bq);
            for (int j = 0; c->arch.qk_norm && j < c->n_heads; j++)
                norm_d(q + j * hd, q + j * hd, lw->q_norm, NULL, hd, c->norm_eps, 0);
            rope_d(q, c->n_heads, hd, rd, c, base, rscale, freqs, t);
            if (src == l) {
                matvec(k, &lw->wk, h, lw->bk);
                if (lw->wv.data == lw->wk.data)
                    for (int i = 0; i < kvh * hd; i++) v[i] = k[i];
                else
                    matvec(v, &lw->wv, h, lw->bv);
                for (int j = 0; c->arch.qk_norm && j < kvh; j++)
                    norm_d(k + j * hd, k + j * hd, lw->k_norm, NULL, hd, c->norm_eps, 0);
                for (int j = 0; c->arch.v_norm && j < kvh; j++)
                    norm_d(v + j * hd, v + j * hd, NULL, NULL, hd, c->norm_eps, 0);
                rope_d(k, kvh, hd, rd, c, base, rscale, freqs, t);
            }
            int lo = swa && t >= c->window ? t - c->window + 1 : 0;
            for (int j = 0; j < c->n_heads; j++) {
                int kvo = j / (c->n_heads / kvh) * hd;
                double mx = -INFINITY, sum = 0;
                for (int p = lo; p <= t; p++) {
                    s[p] = 0;
                    for (int i = 0; i < hd; i++)
                        s[p] += q[j * hd + i] * ks[(size_t)p * wkv + kvo + i];
                    s[p] = c->attn_scale ? s[p] * c->attn_scale : s[p] / sqrt(hd);
                    mx = fmax(mx, s[p]);
                }
                for (int p = lo; p <= t; p++) sum += s[p] = exp(s[p] - mx);
                for (int i = 0; i < hd; i++) {
                    att[j * hd + i] = 0;
                    for (int p = lo; p <= t; p++)
                        att[j * hd + i] += s[p] / sum * vs[(size_t)p * wkv + kvo + i];
                }
            }
            matvec(o, &lw->wo, att, lw->bo);
            if (lw->post_attn_norm) norm_d(o, o, lw->post_attn_norm, NULL, d, c->norm_eps, 0);
            for (int i = 0; i < d; i++) xt[i] += o[i];
            norm_d(h, xt, lw->ffn_norm, lw->ffn_norm_b, d, c->norm_eps, layer);
            matvec(u, &lw->w_up, h, lw->b_up);
            if (c->arch.ffn == ENG_FFN_GELU) {
                for (int i = 0; i < hid; i++) g[i] = gelu_ggml_f32((float)u[i]);
            } else {
                matvec(g, &lw->w_gate, h, NULL);
                for (int i = 0; i < hid; i++)
                    g[i] = c->arch.ffn == ENG_FFN_GEGLU ? gelu_ggml_f32((float)g[i]) * u[i]
                                                        : g[i] / (1 + exp(-g[i])) * u[i];
            }
            matvec(o, &lw->w_down, g, lw->b_down);
            if (lw->post_ffn_norm) norm_d(o, o, lw->post_ffn_norm, NULL, d, c->norm_eps, 0);
            for (int i = 0; i < d; i++) xt[i] += o[i];
            if (P > 0) {
                matvec(pg, &lw->ple_gate, xt, NULL);
                for (int i = 0; i < P; i++)
                    pg[i] = gelu_ggml_f32((float)pg[i]) * inp[(size_t)t * LP + l * P + i];
                matvec(o, &lw->ple_proj, pg, NULL);
                norm_d(o, o, lw->ple_post_norm, NULL, d, c->norm_eps, 0);
                for (int i = 0; i < d; i++) xt[i] += o[i];
            }
            for (int i = 0; lw->out_scale && i < d; i++) xt[i] *= lw->out_scale[0];
        }
    }
    for (int t = 0; t < n; t++) {
        double *z = logits + (size_t)t * c->vocab_size, cap = c->final_softcap;
        norm_d(h, x + (size_t)t * d, w->out_norm, w->out_norm_b, d, c->norm_eps, layer);
        matvec(z, &w->cls, h, NULL);
        for (int i = 0; cap > 0 && i < c->vocab_size; i++) z[i] = cap * tanh(z[i] / cap);
    }
    free(x), free(h), free(q), free(att), free(o), free(kc), free(vc), free(g), free(u), free(s);
    free(inp), free(pg), free(emb), free(pos);
}

/* The engine's logits at every position of an n-token stream, fed in steps of chunk columns
 * (the context's max_cols), against the reference. */
static void check_forward(const char *name, const eng_model_cfg_t *cfg, int wtype, int n,
                          int chunk) {
    eng_model_t *m;
    ASSERT_EQ(eng_model_synth(cfg, 11, wtype, &m), LANES_OK);
    int vocab = cfg->vocab_size;
    int32_t *ids = malloc(sizeof *ids * n), out[64];
    float *got = malloc(sizeof *got * n * vocab);
    double *want = malloc(sizeof *want * n * vocab);
    eng_col_t *cols = malloc(sizeof *cols * n);
    for (int t = 0; t < n; t++) {
        ids[t] = (int32_t)((t * 97 + 5) % vocab);
        cols[t] = (eng_col_t){0, t, ids[t], 1, got + (size_t)t * vocab, NULL};
    }
    eng_ctx_t *ctx;
    ASSERT(chunk <= 64);
    ASSERT_EQ(eng_ctx_create(m, &(eng_ctx_cfg_t){1, chunk, 1, ENG_GEMM_LANES, 0}, &ctx), LANES_OK);
    for (int t = 0; t < n; t += chunk)
        ASSERT_EQ(eng_step(ctx, cols + t, n - t < chunk ? n - t : chunk, out), LANES_OK);
    reference(m, ids, n, want);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < (size_t)n * vocab; i++) {
        worst = fmax(worst, fabs(got[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    /* With 16-bit weights a ggml-numerics model rounds each product's activations to 16 bits, as
     * the reference does; where the reference's double activation and the engine's fp32 one lie
     * on the two sides of a rounding edge the two take different 16-bit values, and these random
     * models carry that difference on (moving the reference's activations by 3e-7 moves its
     * logits by 5e-4). GELU rounds its input to F16 in the same way. So those get a 16-bit bound,
     * 8 times wider for BF16 (8 bits kept, F16 11: an edge moves a value 8 times as far); a
     * forward-pass mistake moves logits by O(1) (in the gemma3-like model, of scale 1.7: a window one
     * position off 1.5, the global base on sliding layers 0.44, no linear scaling 0.6), and the exact rounding is checked
     * bit for bit by test_eng_kern and check_gelu. */
    int rounds16 = cfg->numerics == ENG_NUMERICS_GGML &&
                   (wtype != ENG_WT_F32 || cfg->arch.ffn != ENG_FFN_SWIGLU);
    double bound = !rounds16 ? 2e-5 : cfg->numerics == ENG_NUMERICS_GGML && wtype == ENG_WT_BF16
                                          ? 1.6e-2 : 2e-3;
    if (!(worst <= bound * scale)) {
        fprintf(stderr, "%s %s, steps of %d: logits differ from the reference by %g (scale %g)\n",
                name, eng_wtype_name(wtype), chunk, worst, scale);
        exit(1);
    }
    printf("%s %s: %d positions' logits in steps of %d within %.1e of the double reference "
           "(scale %.2f)\n", name, eng_wtype_name(wtype), n, chunk, worst, scale);
    eng_ctx_destroy(ctx);
    eng_model_destroy(m);
    free(ids);
    free(got);
    free(want);
    free(cols);
}

/* KV cache bytes per lane: a sliding layer keeps window + max_cols - 1 positions and window - 1
 * mirrored, whatever the context; a global one the context. */
static void check_kv_plan(void) {
    eng_model_cfg_t cfg;
    test_gemma3_cfg(&cfg);
    cfg.seq_len = 4096;
    uint64_t row = 2 * (uint64_t)cfg.n_kv_heads * cfg.head_dim * sizeof(float);
    for (int ctx = 256; ctx <= 4096; ctx *= 16) {
        eng_ctx_plan_t plan;
        ASSERT_EQ(eng_ctx_plan(&cfg, &(eng_ctx_cfg_t){8, 16, 1, ENG_GEMM_LANES, ctx}, UINT64_MAX,
                               &plan), LANES_OK);
        ASSERT_EQ(plan.kv_lane, row * (uint64_t)(ctx + 2 * (5 + 16 - 1 + 5 - 1)));
        ASSERT_EQ(plan.kv, plan.kv_lane * 8);
    }
    /* A ring as long as the context is the context. */
    eng_ctx_plan_t plan;
    ASSERT_EQ(eng_ctx_plan(&cfg, &(eng_ctx_cfg_t){8, 300, 1, ENG_GEMM_LANES, 256}, UINT64_MAX,
                           &plan), LANES_OK);
    ASSERT_EQ(plan.kv_lane, row * 3 * 256);
    printf("kv plan: a sliding layer keeps 24 positions per lane at context 256 and 4096\n");
}

/* A shared-KV layer keeps no cache: tiny-gemma4's KV per lane is its first two layers' (layer 0
 * sliding, 2 KV heads of 16; layer 1 global, 1 of 32). A layer may read only an earlier attention
 * layer of its kind, head size and KV heads that keeps its own. */
static void check_shared_kv_plan(void) {
    eng_model_cfg_t cfg, bad;
    test_gemma4_cfg(&cfg);
    eng_ctx_plan_t plan;
    eng_ctx_cfg_t cc = {8, 16, 1, ENG_GEMM_LANES, 256};
    ASSERT_EQ(eng_ctx_plan(&cfg, &cc, UINT64_MAX, &plan), LANES_OK);
    uint64_t swa_row = 2 * 2 * 16 * sizeof(float), full_row = 2 * 1 * 32 * sizeof(float);
    ASSERT_EQ(plan.kv_lane, swa_row * (5 + 16 - 1 + 5 - 1) + full_row * 256);
    static const struct { int layer, reuse, kv_heads1; } wrong[] = {
        {3, 3, 1},  /* global layer 3 reads sliding layer 0 */
        {3, 1, 1},  /* layer 2, which shares itself */
        {1, 2, 1},  /* before layer 0 */
        {3, 2, 2},  /* layer 1 of 2 KV heads, layer 3 of 1 */
    };
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        bad = cfg;
        bad.layer_kv_reuse[wrong[i].layer] = (uint16_t)wrong[i].reuse;
        bad.layer_kv_heads[1] = (uint16_t)wrong[i].kv_heads1;
        ASSERT_EQ(eng_ctx_plan(&bad, &cc, UINT64_MAX, &plan), LANES_EINVAL);
    }
    printf("shared kv: shared layers keep no cache; %zu wrong sources refused\n",
           sizeof wrong / sizeof *wrong);
}

/* A stream may go back only where its ring still holds the window before: with 2 columns a step
 * the ring keeps the last 6 positions. */
static void check_ring_rewind(void) {
    eng_model_cfg_t cfg;
    eng_model_t *m;
    eng_ctx_t *ctx;
    test_gemma3_cfg(&cfg);
    ASSERT_EQ(eng_model_synth(&cfg, 3, ENG_WT_F32, &m), LANES_OK);
    ASSERT_EQ(eng_ctx_create(m, &(eng_ctx_cfg_t){1, 2, 1, ENG_GEMM_LANES, 0}, &ctx), LANES_OK);
    int32_t out[2];
    for (int p = 0; p < 20; p++)
        ASSERT_EQ(eng_step(ctx, &(eng_col_t){0, p, 7, 0, NULL, NULL}, 1, out), LANES_OK);
    /* positions 14..19 are kept: 18 needs 14..17, 17 needs 13 */
    ASSERT_EQ(eng_step(ctx, &(eng_col_t){0, 17, 7, 0, NULL, NULL}, 1, out), LANES_EINVAL);
    ASSERT_EQ(eng_step(ctx, &(eng_col_t){0, 10, 7, 0, NULL, NULL}, 1, out), LANES_EINVAL);
    ASSERT_EQ(eng_step(ctx, &(eng_col_t){0, 18, 7, 0, NULL, NULL}, 1, out), LANES_OK);
    ASSERT_EQ(eng_step(ctx, &(eng_col_t){0, 0, 7, 0, NULL, NULL}, 1, out), LANES_OK);
    eng_ctx_destroy(ctx);
    eng_model_destroy(m);
    printf("ring: a stream goes back only where the window before it is kept\n");
}

/* A model missing a tensor its architecture reads is refused when a context is made. The test
 * breaks a synthetic model's own (heap) layer table through a cast, as a loader slip would. */
static void check_missing(void) {
    eng_model_cfg_t cfg;
    eng_model_t *m;
    eng_ctx_t *ctx;
    ASSERT_EQ(eng_model_preset("tiny-qwen3", &cfg), LANES_OK);
    ASSERT_EQ(eng_model_synth(&cfg, 1, ENG_WT_F32, &m), LANES_OK);
    eng_layer_t *lw = (eng_layer_t *)&eng_model_weights(m)->layers[1];
    const float *k_norm = lw->k_norm;
    lw->k_norm = NULL;
    ASSERT_EQ(eng_ctx_create(m, &(eng_ctx_cfg_t){1, 4, 1, ENG_GEMM_LANES, 0}, &ctx), LANES_EINVAL);
    lw->k_norm = k_norm;
    lw->wo.cols--;
    ASSERT_EQ(eng_ctx_create(m, &(eng_ctx_cfg_t){1, 4, 1, ENG_GEMM_LANES, 0}, &ctx), LANES_EINVAL);
    lw->wo.cols++;
    ASSERT_EQ(eng_ctx_create(m, &(eng_ctx_cfg_t){1, 4, 1, ENG_GEMM_LANES, 0}, &ctx), LANES_OK);
    eng_ctx_destroy(ctx);
    eng_model_destroy(m);
    printf("missing or misshapen tensors: refused at context creation\n");
}

int main(void) {
    check_missing();
    check_rope();
    check_rope_angles();
    check_norms();
    check_gelu();
    check_rounding();
    check_kv_plan();
    check_ring_rewind();
    check_shared_kv_plan();
    static const char *presets[] = {"tiny", "tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-gpt2"};
    static const int wtypes[] = {ENG_WT_F32, ENG_WT_F16, ENG_WT_BF16};
    eng_model_cfg_t cfg;
    for (size_t p = 0; p < sizeof presets / sizeof *presets; p++)
        for (size_t w = 0; w < 3; w++) {
            ASSERT_EQ(eng_model_preset(presets[p], &cfg), LANES_OK);
            check_forward(presets[p], &cfg, wtypes[w], 20, 20);
        }
    /* Whole, then chunks longer than the window (the ring wraps every 11 positions), then one
     * column at a time (every 5). */
    test_gemma3_cfg(&cfg);
    for (size_t w = 0; w < 3; w++) check_forward("gemma3-like", &cfg, wtypes[w], 48, 48);
    check_forward("gemma3-like", &cfg, ENG_WT_F32, 48, 7);
    check_forward("gemma3-like", &cfg, ENG_WT_F32, 48, 1);
    /* A softcap of 2 bends these logits (of scale 1.8) far past the bound; 30 would move them
     * by 2e-3 only. */
    test_gemma4_cfg(&cfg);
    cfg.final_softcap = 2.0f;
    for (size_t w = 0; w < 3; w++) check_forward("gemma4-like", &cfg, wtypes[w], 48, 48);
    check_forward("gemma4-like", &cfg, ENG_WT_F32, 48, 7);
    check_forward("gemma4-like", &cfg, ENG_WT_F32, 48, 1);
    return 0;
}
