#ifndef ENG_VEXP_H
#define ENG_VEXP_H

#include <stdint.h>
#include <string.h>

/* exp(x) within 2 ulp (Cephes' expf polynomial after a Cody-Waite reduction), clamped to
 * [-87, 88] so the result stays normal and finite; NaN stays NaN. This sequence of IEEE operations
 * is the definition: the compiler vectorises loops that call it, and kern_avx2.c repeats it 8 wide
 * with the same operations (no fused multiply-adds), so every table gives the same bits. */
static inline float eng_vexpf(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round(x / ln 2) */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * (r * r) + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;   /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale;
}

/* SwiGLU of one element: silu(a) * b. */
static inline float eng_swiglu1(float a, float b) { return a / (1.0f + eng_vexpf(-a)) * b; }

#endif
