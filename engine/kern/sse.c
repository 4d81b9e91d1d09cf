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

/* The quantized kernels' primitives (qtmpl.h). A signed int8 product goes through pmaddubsw
 * (unsigned x signed) with w's sign moved onto x: |w| <= 128 and |x| <= 127 keep each pair's sum
 * within int16 (2 * 128 * 127 = 32512), so it never saturates; pmaddwd then sums pairs into int32,
 * times the sub-block scale where there is one. */
typedef __m128i q8_t;
static inline q8_t q8_load(const void *p) { return _mm_loadu_si128((const __m128i *)p); }
static inline void q8_store(void *p, q8_t v) { _mm_storeu_si128((__m128i *)p, v); }
static inline q8_t q8_set1(int v) { return _mm_set1_epi8((char)v); }
static inline q8_t q8_and(q8_t a, q8_t b) { return _mm_and_si128(a, b); }
static inline q8_t q8_or(q8_t a, q8_t b) { return _mm_or_si128(a, b); }
static inline q8_t q8_sub(q8_t a, q8_t b) { return _mm_sub_epi8(a, b); }
static inline q8_t q8_shl16(q8_t a, int n) { return _mm_sll_epi16(a, _mm_cvtsi32_si128(n)); }
static inline q8_t q8_shr16(q8_t a, int n) { return _mm_srl_epi16(a, _mm_cvtsi32_si128(n)); }
static inline q8_t q8_pack(__m128i a, __m128i b, __m128i c, __m128i d) {
    return _mm_packs_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d));
}
static inline int q8_sum(q8_t v) { /* psadbw sums bytes unsigned: bias them by 128 */
    __m128i s = _mm_sad_epu8(_mm_xor_si128(v, _mm_set1_epi8((char)0x80)), _mm_setzero_si128());
    return _mm_cvtsi128_si32(s) + _mm_extract_epi16(s, 4) - 16 * 128;
}

typedef __m128i qi_t;
static inline qi_t qi_zero(void) { return _mm_setzero_si128(); }
static inline qi_t qi_load(const int32_t *p) { return _mm_loadu_si128((const __m128i *)p); }
static inline qi_t qi_dot_sc(qi_t acc, q8_t w, q8_t x, int s) {
    __m128i p = _mm_maddubs_epi16(_mm_sign_epi8(w, w), _mm_sign_epi8(x, w));
    return _mm_add_epi32(acc, _mm_madd_epi16(p, _mm_set1_epi16((short)s)));
}
static inline qi_t qi_dot(qi_t acc, q8_t w, q8_t x) { return qi_dot_sc(acc, w, x, 1); }
static inline qi_t qi_dotu_sc(qi_t acc, q8_t q, q8_t x, int s) {
    return _mm_add_epi32(acc, _mm_madd_epi16(_mm_maddubs_epi16(q, x), _mm_set1_epi16((short)s)));
}
static inline qi_t qi_hsum4(qi_t a, qi_t b, qi_t c, qi_t d) {
    return _mm_hadd_epi32(_mm_hadd_epi32(a, b), _mm_hadd_epi32(c, d));
}

typedef __m128 qf_t;
static inline qf_t qf_load(const float *p) { return _mm_loadu_ps(p); }
static inline void qf_store(float *p, qf_t v) { _mm_storeu_ps(p, v); }
static inline qf_t qf_set1(float v) { return _mm_set1_ps(v); }
static inline qf_t qf_add(qf_t a, qf_t b) { return _mm_add_ps(a, b); }
static inline qf_t qf_sub(qf_t a, qf_t b) { return _mm_sub_ps(a, b); }
static inline qf_t qf_mul(qf_t a, qf_t b) { return _mm_mul_ps(a, b); }
static inline qf_t qf_cvt(qi_t v) { return _mm_cvtepi32_ps(v); }
static inline qf_t qf_f16(const uint16_t *h) {
    return f16x4(_mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)h)));
}
static inline qf_t qf_abs(qf_t v) {
    return _mm_and_ps(v, _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff)));
}
static inline qf_t qf_max(qf_t m, qf_t v) { return _mm_max_ps(v, m); } /* unordered: m */
static inline float qf_hmax(qf_t v) {
    v = _mm_max_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_max_ss(v, _mm_shuffle_ps(v, v, 1)));
}
static inline qi_t qf_nearest(qf_t v) {
    __m128i t = _mm_castps_si128(_mm_add_ps(v, _mm_set1_ps(12582912.0f)));
    return _mm_sub_epi32(_mm_and_si128(t, _mm_set1_epi32(0x007fffff)), _mm_set1_epi32(0x00400000));
}

#include "qtmpl.h"

static const eng_kern_ops_t sse_ops = {
    .name = "sse", .fused = 0, .gemm = gemm, .gemm_f16 = gemm_f16, .gemm_bf16 = gemm_bf16,
    .gemm_q = gemm_q, .quantize_act = quantize_act, .f16_to_f32 = f16_to_f32,
    .bf16_to_f32 = bf16_to_f32, .round_f16 = eng__round_f16_ref,
    .round_bf16 = eng__round_bf16_ref, .dot = dot, .dots = dots, .wsum = wsum,
    .swiglu = eng__swiglu_ref, .argmax = argmax, .exp_sum = eng__exp_sum_ref};
const eng_kern_ops_t *eng__kern_sse(void) { return &sse_ops; }
#else
const eng_kern_ops_t *eng__kern_sse(void) { return NULL; }
#endif
