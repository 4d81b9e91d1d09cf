#ifndef ENG_HALF_H
#define ENG_HALF_H

#include <stdint.h>
#include <string.h>

/* 16-bit weight formats to fp32, exactly: every F16 and BF16 value is an fp32 value, so the
 * conversion never rounds and a 16-bit GEMM can equal the fp32 GEMM of the converted weights.
 * These are the references the SIMD conversions (F16C, NEON, kern_sse.c's integer version) must
 * equal bit for bit on all 65536 inputs, NaNs included:
 *   F16: subnormals normalised, inf kept, NaN made quiet with its payload kept (sign | 0x7fc00000
 *        | payload << 13), which is what F16C's vcvtph2ps and NEON's fcvtl do;
 *   BF16: the bits shifted into the top half, nothing else (a signalling NaN stays one). */

static inline float eng_f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float eng_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return eng_f32_from_bits(sign | 0x7f800000u | m << 13 | (m ? 0x00400000u : 0));
    if (e) return eng_f32_from_bits(sign | (e + 112) << 23 | m << 13);
    if (!m) return eng_f32_from_bits(sign);
    e = 113; /* subnormal m * 2^-24: shift the leading one into the implicit bit */
    while (!(m & 0x400u)) m <<= 1, e--;
    return eng_f32_from_bits(sign | e << 23 | (m & 0x3ffu) << 13);
}

static inline float eng_bf16_to_f32(uint16_t h) { return eng_f32_from_bits((uint32_t)h << 16); }

/* f32 -> 16-bit rounding (fwd) */
/* fp32 to the nearest F16 / BF16, ties to even, as F16C's vcvtps2ph (rounding mode 0) and
 * gguf-py's numpy conversions do: overflow goes to inf, F16 underflow to subnormals or zero, NaN
 * stays NaN (made quiet, the payload's top bits kept). */
static inline uint16_t eng_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   /* >= 65520: past the last tie */
    if (a < 0x38800000u) { /* below 2^-14: a multiple of 2^-24 (a subnormal F16) or zero */
        int shift = 126 - (int)(a >> 23);
        if (shift > 24) return (uint16_t)sign;
        uint32_t mant = (a & 0x7fffffu) | 0x800000u, q = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = a - 0x38000000u; /* exponent bias 127 -> 15 */
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (r >> 13));
}

static inline uint16_t eng_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#endif
