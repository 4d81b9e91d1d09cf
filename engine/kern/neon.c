#include "kern.h"

/* NEON (aarch64 only): fused, equal to eng__kern_scalar() bit for bit. A NULL getter elsewhere. */
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

static const eng_kern_ops_t neon_ops = {
    .name = "neon", .fused = 1, .gemm = gemm, .gemm_f16 = gemm_f16, .gemm_bf16 = gemm_bf16,
    .gemm_q = eng__gemm_q_ref,
    .quantize_act = eng__quantize_act_ref, .f16_to_f32 = f16_to_f32, .bf16_to_f32 = bf16_to_f32, .dot = dot, .dots = dots, .wsum = wsum,
    .swiglu = eng__swiglu_ref, .argmax = argmax, .exp_sum = eng__exp_sum_ref};
const eng_kern_ops_t *eng__kern_neon(void) { return &neon_ops; }
#else
const eng_kern_ops_t *eng__kern_neon(void) { return NULL; }
#endif
