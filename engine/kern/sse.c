#include "kern.h"

/* SSE4.1: no FMA, so unfused (each product rounded, then added); equal to
 * eng__kern_scalar_unfused() bit for bit. Built with -msse4.1; a NULL getter anywhere else. */
#if defined(__SSE4_1__)
#include <smmintrin.h>

/* The 8 partial sums as two 4-wide registers: lo holds s0..s3, hi s4..s7. */
typedef struct {
    __m128 lo, hi;
} v8_t;
static inline v8_t v8_zero(void) { return (v8_t){_mm_setzero_ps(), _mm_setzero_ps()}; }
static inline v8_t v8_load(const float *p) { return (v8_t){_mm_loadu_ps(p), _mm_loadu_ps(p + 4)}; }

/* Four F16 values (zero-extended to 32 bits) to fp32 without F16C, half.h's bits: exponent and
 * mantissa shifted into place and the exponent rebiased; inf/NaN get the all-ones exponent (and
 * NaN the quiet bit); a subnormal m * 2^-24 is formed exactly as (2^-14 + m * 2^-24) - 2^-14,
 * so no operation sees a denormal. */
static inline __m128 f16x4(__m128i h) {
    const __m128i em = _mm_and_si128(h, _mm_set1_epi32(0x7fff));
    const __m128i sign = _mm_slli_epi32(_mm_xor_si128(h, em), 16);
    const __m128i shifted = _mm_slli_epi32(em, 13);
    const __m128i infnan = _mm_cmpgt_epi32(em, _mm_set1_epi32(0x7bff));
    const __m128i nan = _mm_cmpgt_epi32(em, _mm_set1_epi32(0x7c00));
    const __m128i denorm = _mm_cmpgt_epi32(_mm_set1_epi32(0x0400), em);
    __m128i normal = _mm_add_epi32(shifted, _mm_set1_epi32(112 << 23));
    normal = _mm_add_epi32(normal, _mm_and_si128(infnan, _mm_set1_epi32(112 << 23)));
    normal = _mm_or_si128(normal, _mm_and_si128(nan, _mm_set1_epi32(0x00400000)));
    const __m128 magic = _mm_castsi128_ps(_mm_set1_epi32(113 << 23));   /* 2^-14 */
    __m128 sub = _mm_sub_ps(_mm_castsi128_ps(_mm_add_epi32(shifted, _mm_set1_epi32(113 << 23))),
                            magic);
    __m128 v = _mm_blendv_ps(_mm_castsi128_ps(normal), sub, _mm_castsi128_ps(denorm));
    return _mm_or_ps(v, _mm_castsi128_ps(sign));
}
static inline v8_t v8_load_f16(const uint16_t *p) {
    __m128i u = _mm_loadu_si128((const __m128i *)p);
    return (v8_t){f16x4(_mm_cvtepu16_epi32(u)), f16x4(_mm_cvtepu16_epi32(_mm_srli_si128(u, 8)))};
}
static inline v8_t v8_load_bf16(const uint16_t *p) {
    __m128i u = _mm_loadu_si128((const __m128i *)p), z = _mm_setzero_si128();
    return (v8_t){_mm_castsi128_ps(_mm_unpacklo_epi16(z, u)),
                  _mm_castsi128_ps(_mm_unpackhi_epi16(z, u))};
}
static inline v8_t v8_madd(v8_t a, v8_t b, v8_t acc) {
    return (v8_t){_mm_add_ps(_mm_mul_ps(a.lo, b.lo), acc.lo),
                  _mm_add_ps(_mm_mul_ps(a.hi, b.hi), acc.hi)};
}
static inline float madd1(float a, float b, float c) { return a * b + c; }
static inline v8_t v8_set1(float a) { return (v8_t){_mm_set1_ps(a), _mm_set1_ps(a)}; }
static inline void v8_store(float *p, v8_t v) {
    _mm_storeu_ps(p, v.lo);
    _mm_storeu_ps(p + 4, v.hi);
}

static inline __attribute__((always_inline)) void v8_hsum(const v8_t *acc, int n, float *out) {
#pragma GCC unroll 16
    for (int i = 0; i < n; i++) {
        __m128 t = _mm_add_ps(acc[i].lo, acc[i].hi);   /* s_j + s_j+4 */
        __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t)); /* t0 + t2, t1 + t3 */
        out[i] = _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps(u, u, 1)));
    }
}

/* 2 x 2 blocks: 8 accumulators + 4 column halves + temporaries fit the 16 xmm registers. */
#define KT_MR 2
#define KT_MC 2
#define KT_FR1 4
#define KT_FR2 2

typedef __m128 af_t;
typedef __m128i ai_t;
typedef __m128 am_t;
#define KT_AW 4
static inline af_t af_load(const float *p) { return _mm_loadu_ps(p); }
static inline void af_store(float *p, af_t v) { _mm_storeu_ps(p, v); }
static inline ai_t ai_load(const int32_t *p) { return _mm_loadu_si128((const __m128i *)p); }
static inline void ai_store(int32_t *p, ai_t v) { _mm_storeu_si128((__m128i *)p, v); }
static inline ai_t ai_set1(int32_t v) { return _mm_set1_epi32(v); }
static inline am_t af_gt(af_t a, af_t b) { return _mm_cmpgt_ps(a, b); } /* ordered: NaN -> 0 */
static inline af_t af_blend(af_t a, af_t b, am_t m) { return _mm_blendv_ps(a, b, m); }
static inline ai_t ai_blend(ai_t a, ai_t b, am_t m) {
    return _mm_castps_si128(_mm_blendv_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), m));
}

#include "tmpl.h"

static const eng_kern_ops_t sse_ops = {
    .name = "sse", .fused = 0, .gemm = gemm, .gemm_f16 = gemm_f16, .gemm_bf16 = gemm_bf16,
    .gemm_q = eng__gemm_q_ref,
    .quantize_act = eng__quantize_act_ref, .f16_to_f32 = f16_to_f32, .bf16_to_f32 = bf16_to_f32, .dot = dot, .dots = dots, .wsum = wsum,
    .swiglu = eng__swiglu_ref, .argmax = argmax, .exp_sum = eng__exp_sum_ref};
const eng_kern_ops_t *eng__kern_sse(void) { return &sse_ops; }
#else
const eng_kern_ops_t *eng__kern_sse(void) { return NULL; }
#endif
