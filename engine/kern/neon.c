#include "kern.h"

/* NEON (aarch64 only): fused, equal to eng__kern_scalar() bit for bit; "neon-dot" is the same table
 * with the quantized gemm on the dot-product extension. NULL getters elsewhere. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

/* The 8 partial sums as two 4-wide registers: lo holds s0..s3, hi s4..s7. */
typedef struct {
    float32x4_t lo, hi;
} v8_t;
static inline v8_t v8_zero(void) { return (v8_t){vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)}; }
static inline v8_t v8_load(const float *p) { return (v8_t){vld1q_f32(p), vld1q_f32(p + 4)}; }
/* fcvtl is exact and (FPCR.DN clear, as Linux runs) quiets a NaN keeping its payload, as half.h. */
static inline v8_t v8_load_f16(const uint16_t *p) {
    uint16x8_t u = vld1q_u16(p);
    return (v8_t){vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(u))),
                  vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(u)))};
}
static inline v8_t v8_load_bf16(const uint16_t *p) {
    uint16x8_t u = vld1q_u16(p);
    return (v8_t){vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(u), 16)),
                  vreinterpretq_f32_u32(vshll_high_n_u16(u, 16))};
}
static inline v8_t v8_set1(float a) { return (v8_t){vdupq_n_f32(a), vdupq_n_f32(a)}; }
static inline void v8_store(float *p, v8_t v) {
    vst1q_f32(p, v.lo);
    vst1q_f32(p + 4, v.hi);
}
static inline v8_t v8_madd(v8_t a, v8_t b, v8_t acc) {
    return (v8_t){vfmaq_f32(acc.lo, a.lo, b.lo), vfmaq_f32(acc.hi, a.hi, b.hi)};
}
static inline float madd1(float a, float b, float c) { return fmaf(a, b, c); }

static inline __attribute__((always_inline)) void v8_hsum(const v8_t *acc, int n, float *out) {
#pragma GCC unroll 16
    for (int i = 0; i < n; i++) {
        float32x4_t t = vaddq_f32(acc[i].lo, acc[i].hi);             /* s_j + s_j+4 */
        float32x2_t u = vadd_f32(vget_low_f32(t), vget_high_f32(t)); /* t0 + t2, t1 + t3 */
        out[i] = vget_lane_f32(u, 0) + vget_lane_f32(u, 1);
    }
}

/* 4 x 2 blocks: 8 accumulators (16 q registers) + 4 column halves + 2 weight halves fit the
 * 32 q registers. */
#define KT_MR 4
#define KT_MC 2
#define KT_FR1 8
#define KT_FR2 4

typedef float32x4_t af_t;
typedef int32x4_t ai_t;
typedef uint32x4_t am_t;
#define KT_AW 4
static inline af_t af_load(const float *p) { return vld1q_f32(p); }
static inline void af_store(float *p, af_t v) { vst1q_f32(p, v); }
static inline ai_t ai_load(const int32_t *p) { return vld1q_s32(p); }
static inline void ai_store(int32_t *p, ai_t v) { vst1q_s32(p, v); }
static inline ai_t ai_set1(int32_t v) { return vdupq_n_s32(v); }
static inline am_t af_gt(af_t a, af_t b) { return vcgtq_f32(a, b); } /* ordered: NaN -> 0 */
static inline af_t af_blend(af_t a, af_t b, am_t m) { return vbslq_f32(m, b, a); }
static inline ai_t ai_blend(ai_t a, ai_t b, am_t m) { return vbslq_s32(m, b, a); }

#include "tmpl.h"

/* The quantized kernels' primitives (qtmpl.h): int8 products widened to int16 (smull; none
 * overflows, -128 * -127 included) and pairwise added into int32 (sadalp). */
typedef int8x16_t q8_t;
static inline q8_t q8_load(const void *p) { return vld1q_s8(p); }
static inline void q8_store(void *p, q8_t v) { vst1q_s8(p, v); }
static inline q8_t q8_set1(int v) { return vdupq_n_s8((int8_t)v); }
static inline q8_t q8_and(q8_t a, q8_t b) { return vandq_s8(a, b); }
static inline q8_t q8_or(q8_t a, q8_t b) { return vorrq_s8(a, b); }
static inline q8_t q8_sub(q8_t a, q8_t b) { return vsubq_s8(a, b); }
static inline q8_t q8_shl16(q8_t a, int n) {
    return vreinterpretq_s8_u16(vshlq_u16(vreinterpretq_u16_s8(a), vdupq_n_s16((int16_t)n)));
}
static inline q8_t q8_shr16(q8_t a, int n) { return q8_shl16(a, -n); }
static inline q8_t q8_pack(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    int16x8_t ab = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
    int16x8_t cd = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
    return vcombine_s8(vqmovn_s16(ab), vqmovn_s16(cd));
}
static inline int q8_sum(q8_t v) { return vaddlvq_s8(v); }

typedef int32x4_t qi_t;
static inline qi_t qi_zero(void) { return vdupq_n_s32(0); }
static inline qi_t qi_load(const int32_t *p) { return vld1q_s32(p); }
static inline qi_t qi_dot(qi_t acc, q8_t w, q8_t x) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(w, x));
}
static inline qi_t qi_dot_sc(qi_t acc, q8_t w, q8_t x, int s) {
    return vmlaq_n_s32(acc, qi_dot(qi_zero(), w, x), s);
}
static inline qi_t qi_dotu_sc(qi_t acc, q8_t q, q8_t x, int s) { return qi_dot_sc(acc, q, x, s); }
static inline qi_t qi_hsum4(qi_t a, qi_t b, qi_t c, qi_t d) {
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

typedef float32x4_t qf_t;
static inline qf_t qf_load(const float *p) { return vld1q_f32(p); }
static inline void qf_store(float *p, qf_t v) { vst1q_f32(p, v); }
static inline qf_t qf_set1(float v) { return vdupq_n_f32(v); }
static inline qf_t qf_add(qf_t a, qf_t b) { return vaddq_f32(a, b); }
static inline qf_t qf_sub(qf_t a, qf_t b) { return vsubq_f32(a, b); }
static inline qf_t qf_mul(qf_t a, qf_t b) { return vmulq_f32(a, b); }
static inline qf_t qf_cvt(qi_t v) { return vcvtq_f32_s32(v); }
static inline qf_t qf_f16(const uint16_t *h) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}
static inline qf_t qf_abs(qf_t v) { return vabsq_f32(v); }
static inline qf_t qf_max(qf_t m, qf_t v) { return vbslq_f32(vcgtq_f32(v, m), v, m); }
static inline float qf_hmax(qf_t v) { return vmaxvq_f32(v); }
static inline qi_t qf_nearest(qf_t v) {
    int32x4_t t = vreinterpretq_s32_f32(vaddq_f32(v, vdupq_n_f32(12582912.0f)));
    return vsubq_s32(vandq_s32(t, vdupq_n_s32(0x007fffff)), vdupq_n_s32(0x00400000));
}

#include "qtmpl.h"

/* The same gemm with the dot-product extension (ARMv8.2 sdot: four int8 products summed into each
 * int32 lane), for the "neon-dot" table, which kern.c offers only where the CPU has it. */
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
static inline qi_t qi_dot_dp(qi_t acc, q8_t w, q8_t x) { return vdotq_s32(acc, w, x); }
static inline qi_t qi_dot_sc_dp(qi_t acc, q8_t w, q8_t x, int s) {
    return vmlaq_n_s32(acc, vdotq_s32(qi_zero(), w, x), s);
}
#define qi_dot qi_dot_dp
#define qi_dot_sc qi_dot_sc_dp
#define qi_dotu_sc qi_dot_sc_dp
#define KQ_GEMM_ONLY
#undef KQ_NAME
#define KQ_NAME(n) n##_dp
#include "qtmpl.h"
#pragma GCC pop_options

#define NEON_OPS(nm, gemm_q_fn)                                                          \
    {.name = nm, .fused = 1, .gemm = gemm, .gemm_f16 = gemm_f16, .gemm_bf16 = gemm_bf16, \
     .gemm_q = gemm_q_fn, .quantize_act = quantize_act, .f16_to_f32 = f16_to_f32,        \
     .bf16_to_f32 = bf16_to_f32, .round_f16 = eng__round_f16_ref,                        \
     .round_bf16 = eng__round_bf16_ref, .dot = dot, .dots = dots, .wsum = wsum,          \
     .swiglu = eng__swiglu_ref, .argmax = argmax, .exp_sum = eng__exp_sum_ref}
static const eng_kern_ops_t neon_ops = NEON_OPS("neon", gemm_q);
static const eng_kern_ops_t neon_dot_ops = NEON_OPS("neon-dot", gemm_q_dp);
const eng_kern_ops_t *eng__kern_neon(void) { return &neon_ops; }
const eng_kern_ops_t *eng__kern_neon_dot(void) { return &neon_dot_ops; }
#else
const eng_kern_ops_t *eng__kern_neon(void) { return NULL; }
const eng_kern_ops_t *eng__kern_neon_dot(void) { return NULL; }
#endif
