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

/* And back, rounding to nearest even, for writing 16-bit weight files:
 *   F16: what F16C's vcvtps2ph does with round-to-nearest: too big for F16 (|x| >= 65520) gives
 *        inf, F16 subnormals rounded as well, NaN made quiet with the top 10 payload bits kept;
 *   BF16: what ggml's ggml_compute_fp32_to_bf16 does: NaN made quiet (0x40 set), everything else
 *        rounded, fp32 subnormals included, so a value past the largest BF16 gives inf. */

static inline uint32_t eng_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline uint16_t eng_f32_to_f16(float f) {
    uint32_t x = eng_f32_bits(f), a = x & 0x7fffffffu;
    uint16_t sign = (uint16_t)(x >> 16 & 0x8000u);
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | (a >> 13 & 0x3ffu));
    if (a >= 0x47800000u) return (uint16_t)(sign | 0x7c00u);   /* 2^16 and up, inf included */
    if (a >= 0x38800000u) {     /* normal: rebias, round on the 13 bits cut; a carry moves into
                                 * the exponent, into inf from 65520 (halfway to 2^16) up */
        a -= 112u << 23;
        return (uint16_t)(sign | (a + 0xfffu + (a >> 13 & 1u)) >> 13);
    }
    uint32_t e = a >> 23;       /* an F16 subnormal (in units of 2^-24) or zero */
    if (e < 102) return sign;   /* under 2^-25, half the smallest F16 subnormal */
    uint32_t m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e, q = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    return (uint16_t)(sign | (q + (rem > half || (rem == half && (q & 1u)))));
}

static inline uint16_t eng_f32_to_bf16(float f) {
    uint32_t x = eng_f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(x >> 16 | 0x40u);
    return (uint16_t)((x + 0x7fffu + (x >> 16 & 1u)) >> 16);
}

#endif
