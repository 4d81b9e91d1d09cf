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

#endif
