#ifndef ENG_KERN_H
#define ENG_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "quant.h"

/* Compute kernels, one table per ISA (kern_scalar.c, kern_sse.c, kern_avx2.c, kern_neon.c).
 *
 * The canonical reduction order. Every dot product of length k (and so every GEMM output element)
 * is computed as: eight partial sums s[j] (j = 0..7), s[j] += a[i + j] * b[i + j] for i = 0, 8, 16,
 * ... while i + 8 <= k; then h = ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)); then the tail
 * h += a[i] * b[i] for the remaining i in ascending order. "Fused" tables do each multiply-add as one
 * rounding (fmaf / FMA instructions); "unfused" tables (SSE4.1 has no FMA) round the product first.
 * Scalar, AVX2 and NEON are fused and equal bitwise; SSE equals the unfused scalar reference.
 * Nothing depends on the number of columns, their order, the row blocking or the thread split, which
 * is what makes the engine batch-invariant (DESIGN.md invariant 2). */

typedef struct {
    const char *name;   /* "scalar", "scalar-unfused", "sse", "avx2", "avx2-vnni", "neon",
                           "neon-dot" */
    int fused;          /* 1: multiply-adds round once */

    /* W (rows, k) @ X (ncols, k) -> Y. w: row-major, row stride k. x: lane-major, column stride k.
     * y[c * ycs + r * yrs] = (accumulate ? y[c * ycs + r * yrs] : 0) + dot(w[r], x[c]).
     * yrs = 1, ycs = ldy gives lane-major output; yrs = ncols, ycs = 1 gives channel-major tiles. */
    void (*gemm)(float *y, ptrdiff_t yrs, ptrdiff_t ycs, const float *w, const float *x, int rows,
                 int ncols, int k, int accumulate);

    /* gemm with 16-bit weights, which stay 16-bit in memory: w holds IEEE binary16 (F16) or
     * bfloat16 (BF16) bit patterns, each converted exactly to fp32 as it is loaded (half.h), then
     * the same multiply-adds as gemm. So on every table gemm_f16(W) equals gemm(fp32 of W) bit for
     * bit, and batch invariance holds for every weight type. (Weights that are inf or NaN give
     * inf/NaN results, with NaN bits as the hardware makes them, as gemm's do.) */
    void (*gemm_f16)(float *y, ptrdiff_t yrs, ptrdiff_t ycs, const uint16_t *w, const float *x,
                     int rows, int ncols, int k, int accumulate);
    void (*gemm_bf16)(float *y, ptrdiff_t yrs, ptrdiff_t ycs, const uint16_t *w, const float *x,
                      int rows, int ncols, int k, int accumulate);

    /* W (rows, a->k) in block-quantized weight type wtype (rows of whole blocks, back to back)
     * @ A's first ncols columns -> Y, laid out as gemm's; a->type is eng_quant_act_type(wtype).
     * Each element in quant.h's canonical order: the same bits on every table. */
    void (*gemm_q)(float *y, ptrdiff_t yrs, ptrdiff_t ycs, int wtype, const void *w,
                   const eng_qact_t *a, int rows, int ncols, int accumulate);

    /* Quantizes x (a->k values) into column col of a, as quant.h says for a->type. */
    void (*quantize_act)(const eng_qact_t *a, int col, const float *x);

    /* y[i] = x[i] converted to fp32 for i < n, half.h's bits (NaNs included) on every table: an
     * embedding row or a norm/bias vector of a 16-bit model. */
    void (*f16_to_f32)(float *y, const uint16_t *x, int n);
    void (*bf16_to_f32)(float *y, const uint16_t *x, int n);

    /* y[i] = x[i] rounded to F16 / BF16 (half.h's eng_f32_to_f16 / eng_f32_to_bf16) and back, for
     * i < n, half.h's bits on every table: the activations of a 16-bit GEMM as ggml rounds them. */
    void (*round_f16)(float *y, const float *x, int n);
    void (*round_bf16)(float *y, const float *x, int n);

    /* The same reduction as one gemm element. */
    float (*dot)(const float *a, const float *b, int k);

    /* Attention scores: out[t] = dot(q, k + t * stride, len) for t in 0..n-1, each the same
     * reduction as dot(). */
    void (*dots)(float *out, const float *q, const float *k, ptrdiff_t stride, int n, int len);

    /* The attention-weighted sum of values: out[i] = 0, then out[i] = out[i] + a[t] * v[t * stride
     * + i] for t = 0..n-1 in order (one multiply-add each, fused or not as the table), i < len. */
    void (*wsum)(float *out, const float *a, const float *v, ptrdiff_t stride, int n, int len);

    /* a[i] = silu(a[i]) * b[i] for i < n, with vexp.h's exp: the same bits on every table. */
    void (*swiglu)(float *a, const float *b, int n);

    /* tile (rows, ncols) channel-major, row r holding vocab id row0 + r. For each column c: if
     * tile[r][c] > best[c] then best[c] = tile[r][c], idx[c] = row0 + r; rows are walked in
     * ascending order, so the lowest id wins a tie and NaN never wins. Callers start best at -inf
     * and idx at 0. */
    void (*argmax)(const float *tile, int rows, int ncols, int row0, float *best, int32_t *idx);

    /* p[i] = exp(x[i] - max) with vexp.h's exp (0 where x[i] is -inf or NaN) for i < n; returns
     * their sum: eight partial sums s[j] += p[i + j] for i = 0, 8, ... while i + 8 <= n, the rest
     * added to s0 in order, then ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)). The same bits
     * on every table (sample.c's probabilities). */
    float (*exp_sum)(float *p, const float *x, float max, int n);
} eng_kern_ops_t;

/* The best table this CPU runs, or the one LANES_SIMD=NAME forces (eng_kern_name_at's names; an
 * unsupported forced name logs a warning and falls back). Never NULL. Thread-safe after the first
 * call. */
const eng_kern_ops_t *eng_kern_best(void);

/* A table by name, or NULL if unknown or this CPU cannot run it. */
const eng_kern_ops_t *eng_kern_by_name(const char *name);

/* The name of table i of all this build knows ("scalar", "scalar-unfused", then the SIMD ones,
 * best first), whether this CPU runs it or not; NULL past the last. */
const char *eng_kern_name_at(int i);

/* Per-ISA tables; NULL-returning getters where the ISA is not compiled in. */
const eng_kern_ops_t *eng__kern_scalar(void);
const eng_kern_ops_t *eng__kern_scalar_unfused(void);
const eng_kern_ops_t *eng__kern_sse(void);
const eng_kern_ops_t *eng__kern_avx2(void);
const eng_kern_ops_t *eng__kern_avx2_vnni(void); /* AVX2 with AVX512-VNNI/VL (vpdpbusd on ymm) */
const eng_kern_ops_t *eng__kern_neon(void);
const eng_kern_ops_t *eng__kern_neon_dot(void);  /* NEON with ARMv8.2 dotprod (sdot) */

/* The AVX2 table's quantized kernels (kern/avx2_q.c). */
void eng__gemm_q_avx2(float *y, ptrdiff_t yrs, ptrdiff_t ycs, int wtype, const void *w,
                      const eng_qact_t *a, int rows, int ncols, int accumulate);
void eng__quantize_act_avx2(const eng_qact_t *a, int col, const float *x);
void eng__gemm_q_avx2_vnni(float *y, ptrdiff_t yrs, ptrdiff_t ycs, int wtype, const void *w,
                           const eng_qact_t *a, int rows, int ncols, int accumulate);

/* The reference SwiGLU, shared by the tables that have no faster one. */
void eng__swiglu_ref(float *a, const float *b, int n);

/* The reference roundings to 16 bits, likewise. */
void eng__round_f16_ref(float *y, const float *x, int n);
void eng__round_bf16_ref(float *y, const float *x, int n);

/* The reference exp_sum, likewise. */
float eng__exp_sum_ref(float *p, const float *x, float max, int n);

#endif
