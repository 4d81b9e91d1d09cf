#include "kern.h"

#include <math.h>

#include "half.h"
#include "vexp.h"

/* The reference kernels: plain loops that define the canonical order (kern.h). Each SIMD table must
 * equal the scalar table of the same fusedness bit for bit. */

static inline float madd_fused(float a, float b, float c) { return fmaf(a, b, c); }
static inline float madd_unfused(float a, float b, float c) { return a * b + c; }

static inline float w_f32(float w) { return w; }

/* dot(a, b) of a of type T, each a[i] read as fp32 through cvt. */
#define DEFINE_DOT(name, madd, T, cvt)                                                            \
    static float name(const T *a, const float *b, int k) {                                        \
        float s[8] = {0};                                                                         \
        int i = 0;                                                                                \
        for (; i + 8 <= k; i += 8)                                                                \
            for (int j = 0; j < 8; j++) s[j] = madd(cvt(a[i + j]), b[i + j], s[j]);               \
        float h = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));              \
        for (; i < k; i++) h = madd(cvt(a[i]), b[i], h);                                          \
        return h;                                                                                 \
    }
DEFINE_DOT(dot_fused, madd_fused, float, w_f32)
DEFINE_DOT(dot_unfused, madd_unfused, float, w_f32)
DEFINE_DOT(dot_f16_fused, madd_fused, uint16_t, eng_f16_to_f32)
DEFINE_DOT(dot_f16_unfused, madd_unfused, uint16_t, eng_f16_to_f32)
DEFINE_DOT(dot_bf16_fused, madd_fused, uint16_t, eng_bf16_to_f32)
DEFINE_DOT(dot_bf16_unfused, madd_unfused, uint16_t, eng_bf16_to_f32)

#define DEFINE_GEMM(name, dot, T)                                                                 \
    static void name(float *y, ptrdiff_t yrs, ptrdiff_t ycs, const T *w, const float *x,          \
                     int rows, int ncols, int k, int accumulate) {                                \
        for (int r = 0; r < rows; r++)                                                            \
            for (int c = 0; c < ncols; c++) {                                                     \
                float *o = y + c * ycs + r * yrs;                                                 \
                float v = dot(w + (size_t)r * k, x + (size_t)c * k, k);                           \
                *o = accumulate ? *o + v : v;                                                     \
            }                                                                                     \
    }
DEFINE_GEMM(gemm_fused, dot_fused, float)
DEFINE_GEMM(gemm_unfused, dot_unfused, float)
DEFINE_GEMM(gemm_f16_fused, dot_f16_fused, uint16_t)
DEFINE_GEMM(gemm_f16_unfused, dot_f16_unfused, uint16_t)
DEFINE_GEMM(gemm_bf16_fused, dot_bf16_fused, uint16_t)
DEFINE_GEMM(gemm_bf16_unfused, dot_bf16_unfused, uint16_t)

static void f16_to_f32(float *y, const uint16_t *x, int n) {
    for (int i = 0; i < n; i++) y[i] = eng_f16_to_f32(x[i]);
}
static void bf16_to_f32(float *y, const uint16_t *x, int n) {
    for (int i = 0; i < n; i++) y[i] = eng_bf16_to_f32(x[i]);
}

#define DEFINE_ATTN(dots_name, wsum_name, dot, madd)                                              \
    static void dots_name(float *out, const float *q, const float *k, ptrdiff_t stride, int n,     \
                          int len) {                                                               \
        for (int t = 0; t < n; t++) out[t] = dot(q, k + t * stride, len);                         \
    }                                                                                             \
    static void wsum_name(float *out, const float *a, const float *v, ptrdiff_t stride, int n,    \
                          int len) {                                                               \
        for (int i = 0; i < len; i++) out[i] = 0.0f;                                              \
        for (int t = 0; t < n; t++)                                                               \
            for (int i = 0; i < len; i++) out[i] = madd(a[t], v[t * stride + i], out[i]);          \
    }
DEFINE_ATTN(dots_fused, wsum_fused, dot_fused, madd_fused)
DEFINE_ATTN(dots_unfused, wsum_unfused, dot_unfused, madd_unfused)

void eng__round_f16_ref(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] = eng_f16_to_f32(eng_f32_to_f16(x[i]));
}
void eng__round_bf16_ref(float *y, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] = eng_bf16_to_f32(eng_f32_to_bf16(x[i]));
}

void eng__swiglu_ref(float *a, const float *b, int n) {
    for (int i = 0; i < n; i++) a[i] = eng_swiglu1(a[i], b[i]);
}

float eng__exp_sum_ref(float *p, const float *x, float max, int n) {
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float v = x[i + j];
            acc[j] += p[i + j] = v > -INFINITY ? eng_vexpf(v - max) : 0.0f;
        }
    for (; i < n; i++) acc[0] += p[i] = x[i] > -INFINITY ? eng_vexpf(x[i] - max) : 0.0f;
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

static void argmax(const float *tile, int rows, int ncols, int row0, float *best, int32_t *idx) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ncols; c++) {
            float v = tile[(size_t)r * ncols + c];
            if (v > best[c]) {
                best[c] = v;
                idx[c] = row0 + r;
            }
        }
}

static const eng_kern_ops_t scalar_ops = {
    .name = "scalar", .fused = 1, .gemm = gemm_fused, .gemm_f16 = gemm_f16_fused,
    .gemm_bf16 = gemm_bf16_fused, .gemm_q = eng__gemm_q_ref,
    .quantize_act = eng__quantize_act_ref, .f16_to_f32 = f16_to_f32, .bf16_to_f32 = bf16_to_f32,
    .round_f16 = eng__round_f16_ref, .round_bf16 = eng__round_bf16_ref,
    .dot = dot_fused, .dots = dots_fused, .wsum = wsum_fused, .swiglu = eng__swiglu_ref,
    .argmax = argmax, .exp_sum = eng__exp_sum_ref};
static const eng_kern_ops_t scalar_unfused_ops = {
    .name = "scalar-unfused", .fused = 0, .gemm = gemm_unfused, .gemm_f16 = gemm_f16_unfused,
    .gemm_bf16 = gemm_bf16_unfused, .gemm_q = eng__gemm_q_ref,
    .quantize_act = eng__quantize_act_ref, .f16_to_f32 = f16_to_f32, .bf16_to_f32 = bf16_to_f32,
    .round_f16 = eng__round_f16_ref, .round_bf16 = eng__round_bf16_ref,
    .dot = dot_unfused, .dots = dots_unfused, .wsum = wsum_unfused, .swiglu = eng__swiglu_ref,
    .argmax = argmax, .exp_sum = eng__exp_sum_ref};

const eng_kern_ops_t *eng__kern_scalar(void) { return &scalar_ops; }
const eng_kern_ops_t *eng__kern_scalar_unfused(void) { return &scalar_unfused_ops; }
