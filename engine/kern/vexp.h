#ifndef ENG_VEXP_H
#define ENG_VEXP_H

#include <stdint.h>
#include <string.h>

/* The quiet NaN every table returns for any NaN result: NaN payloads and signs propagate
 * differently on x86 and Arm (and with the operand order the compiler picks), so we pick one. */
#define ENG_NAN_BITS 0x7fc00000u
static inline float eng_nanf(void) {
    uint32_t u = ENG_NAN_BITS;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* exp(x) within 1 ulp (Cephes' expf polynomial after a Cody-Waite reduction; at most 0.99 ulp
 * over every float in [-87, 88], tests/test_eng_kern.c samples it). x is clamped to [-87, 88] so
 * the result stays normal and finite (-inf gives exp(-87), +inf exp(88)); NaN gives eng_nanf().
 * The clamp sends NaN to -87 so the conversion to int below is always defined. This sequence of
 * IEEE operations is the definition: the compiler vectorises loops that call it, and kern_avx2.c
 * repeats it 8 wide with the same operations (no fused multiply-adds), so every table gives the
 * same bits. */
static inline float eng_vexpf(float x) {
    float c = x > -87.0f ? x : -87.0f;   /* NaN compares false: c = -87 */
    c = c < 88.0f ? c : 88.0f;
    float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round(c / ln 2) */
    float r = c - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;   /* 2^n, n in [-126, 127] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x == x ? y * scale : eng_nanf();
}

/* SwiGLU of one element: silu(a) * b. Below a = -88 silu(a) is within 6e-37 of zero, and
 * exp(-a) would leave the clamp, so a is raised to -88 in the numerator (|error| <= 6e-37 |b|,
 * and -inf gives silu(-88) * b instead of -inf). Any NaN result (a or b NaN, inf * 0) is
 * eng_nanf(). */
static inline float eng_swiglu1(float a, float b) {
    float y = (a > -88.0f ? a : -88.0f) / (1.0f + eng_vexpf(-a)) * b;
    return y == y ? y : eng_nanf();
}

#endif
