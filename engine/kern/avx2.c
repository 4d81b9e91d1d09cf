#include "kern.h"

/* AVX2 + FMA + F16C: fused, equal to eng__kern_scalar() bit for bit. Built with -mavx2 -mfma
 * -mf16c; compiles to a NULL getter anywhere else. */
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <math.h>
#include "vexp.h"

typedef __m256 v8_t;
static inline v8_t v8_zero(void) { return _mm256_setzero_ps(); }
static inline v8_t v8_load(const float *p) { return _mm256_loadu_ps(p); }
/* vcvtph2ps is exact and quiets a NaN keeping its payload, as half.h does. */
static inline v8_t v8_load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}
static inline v8_t v8_load_bf16(const uint16_t *p) {
    __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
}
static inline v8_t v8_madd(v8_t a, v8_t b, v8_t acc) { return _mm256_fmadd_ps(a, b, acc); }
static inline float madd1(float a, float b, float c) { return fmaf(a, b, c); }
static inline v8_t v8_set1(float a) { return _mm256_set1_ps(a); }
static inline void v8_store(float *p, v8_t v) { _mm256_storeu_ps(p, v); }

/* Eight accumulators reduced at once, each step adding the same pairs as the canonical tree:
 * t_j = s_j + s_j+4, then u_0 = t0 + t2 and u_1 = t1 + t3, then h = u_0 + u_1. */
static inline __m256 hsum8(const __m256 a[8]) {
    __m256 t[4], u[2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) { /* t[i] = (s_j + s_j+4 of a[2i]) | (the same of a[2i+1]) */
        t[i] = _mm256_add_ps(_mm256_permute2f128_ps(a[2 * i], a[2 * i + 1], 0x20),
                             _mm256_permute2f128_ps(a[2 * i], a[2 * i + 1], 0x31));
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) { /* u[0] = u0_0 u0_1 u2_0 u2_1 | u1_0 u1_1 u3_0 u3_1 */
        u[i] = _mm256_add_ps(_mm256_shuffle_ps(t[2 * i], t[2 * i + 1], 0x44),
                             _mm256_shuffle_ps(t[2 * i], t[2 * i + 1], 0xee));
    }
    __m256 h =
        _mm256_add_ps(_mm256_shuffle_ps(u[0], u[1], 0x88), _mm256_shuffle_ps(u[0], u[1], 0xdd));
    return _mm256_permutevar8x32_ps(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)); /* h0 .. h7 */
}

/* Four accumulators: the same steps, the last two on 4-wide halves. */
static inline __m128 hsum4(const __m256 a[4]) {
    __m256 t01 = _mm256_add_ps(_mm256_permute2f128_ps(a[0], a[1], 0x20),
                               _mm256_permute2f128_ps(a[0], a[1], 0x31));
    __m256 t23 = _mm256_add_ps(_mm256_permute2f128_ps(a[2], a[3], 0x20),
                               _mm256_permute2f128_ps(a[2], a[3], 0x31));
    __m256 u = _mm256_add_ps(_mm256_shuffle_ps(t01, t23, 0x44), _mm256_shuffle_ps(t01, t23, 0xee));
    __m128 lo = _mm256_castps256_ps128(u), hi = _mm256_extractf128_ps(u, 1);
    __m128 h = _mm_add_ps(_mm_shuffle_ps(lo, hi, 0x88), _mm_shuffle_ps(lo, hi, 0xdd));
    return _mm_shuffle_ps(h, h, 0xd8); /* h0 h2 h1 h3 -> h0 h1 h2 h3 */
}

static inline __attribute__((always_inline)) void v8_hsum(const v8_t *acc, int n, float *out) {
#pragma GCC unroll 2
    for (int g = 0; g < n; g += 8) {
        __m256 a[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) a[j] = g + j < n ? acc[g + j] : _mm256_setzero_ps();
        __m256 h = hsum8(a);
        if (n - g >= 8) {
            _mm256_storeu_ps(out + g, h);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, h);
            for (int j = 0; j < n - g; j++) out[g + j] = tmp[j];
        }
    }
}

/* Lane-major output takes the reduced rows of a column as one store. */
#define KT_HAVE_HSUM_ROWS
static inline __attribute__((always_inline)) void v8_hsum_rows(const v8_t *acc, int n, float *y,
                                                               ptrdiff_t yrs, int accumulate) {
    float h[8];
    if (n == 8) {
        __m256 v = hsum8(acc);
        if (yrs == 1) {
            _mm256_storeu_ps(y, accumulate ? _mm256_add_ps(_mm256_loadu_ps(y), v) : v);
            return;
        }
        _mm256_storeu_ps(h, v);
    } else {
        __m128 v = hsum4(acc);
        if (yrs == 1) {
            _mm_storeu_ps(y, accumulate ? _mm_add_ps(_mm_loadu_ps(y), v) : v);
            return;
        }
        _mm_storeu_ps(h, v);
    }
    for (int i = 0; i < n; i++) y[i * yrs] = accumulate ? y[i * yrs] + h[i] : h[i];
}

/* 4 x 3 = 12 accumulators + 3 columns + 1 weight row fill the 16 ymm registers; 12 FMAs per 7
 * loads keep it FMA-bound. One column: 8 rows per block to stream W at memory speed. */
#define KT_MR 4
#define KT_MC 3
#define KT_FR1 8
#define KT_FR2 6

typedef __m256 af_t;
typedef __m256i ai_t;
typedef __m256 am_t;
#define KT_AW 8
static inline af_t af_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void af_store(float *p, af_t v) { _mm256_storeu_ps(p, v); }
static inline ai_t ai_load(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline void ai_store(int32_t *p, ai_t v) { _mm256_storeu_si256((__m256i *)p, v); }
static inline ai_t ai_set1(int32_t v) { return _mm256_set1_epi32(v); }
static inline am_t af_gt(af_t a, af_t b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline af_t af_blend(af_t a, af_t b, am_t m) { return _mm256_blendv_ps(a, b, m); }
static inline ai_t ai_blend(ai_t a, ai_t b, am_t m) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(b), m));
}

#include "tmpl.h"

/* y where x is not NaN, else vexp.h's one NaN. */
static inline __m256 nan_if_nan(__m256 y, __m256 x) {
    return _mm256_blendv_ps(_mm256_castsi256_ps(_mm256_set1_epi32((int)ENG_NAN_BITS)), y,
                            _mm256_cmp_ps(x, x, _CMP_ORD_Q));
}

/* vexp.h's exp, 8 wide, one IEEE operation for each of the scalar code's: no fused multiply-adds
 * (the scalar code is compiled with -ffp-contract=off), clamps that send NaN where its ternaries
 * do (max_ps returns its second operand when either is NaN, min_ps(a, b) is a < b ? a : b), the
 * same conversion and the same NaN at the end. */
static inline __m256 vexp8(__m256 x) {
    __m256 c = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));   /* NaN: -87 */
    c = _mm256_min_ps(c, _mm256_set1_ps(88.0f));
    __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 n = _mm256_sub_ps(
        _mm256_add_ps(_mm256_mul_ps(c, _mm256_set1_ps(1.44269504088896341f)), magic), magic);
    __m256 r = _mm256_sub_ps(c, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(n, _mm256_set1_ps(-2.12194440e-4f)));
    static const float k[] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
                              1.6666665459e-1f, 5.0000001201e-1f};
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    for (int i = 0; i < 5; i++) p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(k[i]));
    __m256 y = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r),
                             _mm256_set1_ps(1.0f));
    __m256i e = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
    e = _mm256_slli_epi32(e, 23);
    return nan_if_nan(_mm256_mul_ps(y, _mm256_castsi256_ps(e)), x);
}

static void swiglu(float *a, const float *b, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(a + i);
        __m256 e = vexp8(_mm256_xor_ps(x, _mm256_set1_ps(-0.0f)));   /* -x exactly */
        __m256 num = _mm256_max_ps(x, _mm256_set1_ps(-88.0f));        /* x > -88 ? x : -88 */
        __m256 s = _mm256_div_ps(num, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        __m256 y = _mm256_mul_ps(s, _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(a + i, nan_if_nan(y, y));
    }
    eng__swiglu_ref(a + i, b + i, n - i);
}

static float exp_sum(float *p, const float *x, float max, int n) {
    __m256 acc = _mm256_setzero_ps(), m = _mm256_set1_ps(max);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 keep = _mm256_cmp_ps(v, _mm256_set1_ps(-INFINITY), _CMP_GT_OQ);   /* not NaN */
        __m256 e = _mm256_and_ps(keep, vexp8(_mm256_sub_ps(v, m)));
        _mm256_storeu_ps(p + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s[8];
    _mm256_storeu_ps(s, acc);
    eng__exp_sum_ref(p + i, x + i, max, n - i);   /* the tail's p, then its sum as the reference */
    for (; i < n; i++) s[0] += p[i];
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/* vcvtps2ph with round-to-nearest-even is eng_f32_to_f16 (half.h), NaNs included. */
static void round_f16(float *y, const float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i),
                                                                 _MM_FROUND_TO_NEAREST_INT)));
    eng__round_f16_ref(y + i, x + i, n - i);
}

/* eng_f32_to_bf16's integer rounding, 8 wide: NaN quieted, everything else rounded to nearest
 * even on the 16 bits cut. */
static void round_bf16(float *y, const float *x, int n) {
    int i = 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
        __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), odd);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        __m256i q = _mm256_or_si256(u, _mm256_set1_epi32(0x00400000));
        r = _mm256_blendv_epi8(r, q, nan);
        r = _mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u));
        _mm256_storeu_si256((__m256i *)(y + i), r);
    }
    eng__round_bf16_ref(y + i, x + i, n - i);
}

/* "avx2-vnni" differs only in gemm_q (avx2_qdp.c); kern.c offers it only where the CPU has it. */
#define AVX2_OPS(NAME, GEMM_Q)                                                                     \
    {.name = NAME, .fused = 1, .gemm = gemm, .gemm_f16 = gemm_f16, .gemm_bf16 = gemm_bf16,         \
     .gemm_q = GEMM_Q, .quantize_act = eng__quantize_act_avx2, .f16_to_f32 = f16_to_f32,          \
     .bf16_to_f32 = bf16_to_f32, .round_f16 = round_f16, .round_bf16 = round_bf16, .dot = dot,    \
     .dots = dots, .wsum = wsum, .swiglu = swiglu, .argmax = argmax, .exp_sum = exp_sum}
static const eng_kern_ops_t avx2_ops = AVX2_OPS("avx2", eng__gemm_q_avx2);
static const eng_kern_ops_t avx2_vnni_ops = AVX2_OPS("avx2-vnni", eng__gemm_q_avx2_vnni);
const eng_kern_ops_t *eng__kern_avx2(void) { return &avx2_ops; }
const eng_kern_ops_t *eng__kern_avx2_vnni(void) { return &avx2_vnni_ops; }
#else
const eng_kern_ops_t *eng__kern_avx2(void) { return NULL; }
const eng_kern_ops_t *eng__kern_avx2_vnni(void) { return NULL; }
#endif
