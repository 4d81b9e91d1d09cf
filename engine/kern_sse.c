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

#include "kern_tmpl.h"

static const eng_kern_ops_t sse_ops = {"sse", 0, gemm, dot, dots, wsum, eng__swiglu_ref, argmax,
                                       eng__exp_sum_ref};
const eng_kern_ops_t *eng__kern_sse(void) { return &sse_ops; }
#else
const eng_kern_ops_t *eng__kern_sse(void) { return NULL; }
#endif
