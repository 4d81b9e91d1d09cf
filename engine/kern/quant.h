#ifndef ENG_QUANT_H
#define ENG_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "wtype.h"

/* Block-quantized weights (ggml's Q8_0, Q4_0, Q4_K, Q6_K, as GGUF files store them) and the
 * int8 activations they are multiplied with. These are the scalar references; every kernel table
 * (kern.h gemm_q, quantize_act) equals them bit for bit.
 *
 * Weight blocks (little-endian, packed; "f16" is an IEEE binary16 bit pattern):
 *   Q8_0  32 values, 34 bytes: f16 d; int8 qs[32]                      value i = d * qs[i]
 *   Q4_0  32 values, 18 bytes: f16 d; uint8 qs[16]                     value i = d * (q_i - 8),
 *         q_i = qs[i] & 15 for i < 16, qs[i - 16] >> 4 for i >= 16
 *   Q4_K 256 values, 144 bytes: f16 d, dmin; uint8 scales[12]; uint8 qs[128]: eight sub-blocks
 *         of 32, each with a 6-bit scale sc_s and min m_s packed in scales (ggml's
 *         get_scale_min_k4); sub-blocks 2j and 2j + 1 are the low and high nibbles of
 *         qs[32j .. 32j + 31]; value = (d * sc_s) * q - (dmin * m_s)
 *   Q6_K 256 values, 210 bytes: uint8 ql[128], qh[64]; int8 scales[16]; f16 d: sixteen
 *         sub-blocks of 16 with an int8 scale; 6-bit q from 4 bits of ql and 2 of qh laid out as
 *         ggml's dequantize_row_q6_K; value = (d * scales[s]) * (q - 32)
 * Dequantization evaluates exactly those float expressions in that order (no fused multiply-add),
 * which is what ggml's to_float does: the files in shared/models/gguf/dequant/ equal it bit for
 * bit.
 *
 * Activations are quantized per column, once per step and input, so a column's bits never depend
 * on its company:
 *   ENG_ACT_Q8_0 (for Q8_0 and Q4_0 weights), blocks of 32, as ggml's AVX2 quantize_row_q8_0 (the
 *     path llama.cpp ran for our references): amax = max |x|, d = fp16(amax / 127), id = amax ?
 *     127 / amax : 0, q = x * id rounded to nearest, ties to even; the block's scale is d widened
 *     back to fp32.
 *   ENG_ACT_Q8_K (for Q4_K and Q6_K), blocks of 256, as ggml's quantize_row_q8_K: max = the value
 *     of largest magnitude (the first such), iscale = -127 / max, q = min(127, nearest(iscale *
 *     x)) (ties to even), d = 1 / iscale in fp32; all zero when max is 0.
 *   Both keep the sum of every 16 consecutive q (ggml's bsums).
 *
 * The canonical order of one output element of W (rows, k) @ A: integer block dots are exact, so
 * only the float combination is fixed. For blocks b = 0, 1, ... in order:
 *   I_b = sum of w_i * a_i over the block's values with w_i the integer quant (q - 8 for Q4_0, the
 *         sub-block scale times q for Q4_K, the scale times (q - 32) for Q6_K), exact in int32;
 *   D_b = fp32(w.d) * a.d[b] (for Q4_K also M_b = sum_s m_s * (a's sum of sub-block s), exact,
 *         and N_b = fp32(w.dmin) * a.d[b]);
 *   acc = acc + D_b * (float)I_b, each operation rounded (no fused multiply-add on any table, so
 *         SSE equals AVX2, NEON and scalar); for Q4_K then acc = acc - N_b * (float)M_b;
 * starting from acc = 0; then y = accumulate ? y + acc : acc. Nothing depends on the number of
 * columns or rows, their blocking or the thread split: batch invariance holds for every type. */

enum { ENG_ACT_Q8_0, ENG_ACT_Q8_K };

/* Byte offsets inside the blocks, which kernels read byte by byte: a GGUF tensor is only aligned
 * as a whole, and a block may start anywhere. */
enum {
    ENG_Q8_0_BYTES = 34, ENG_Q4_0_BYTES = 18, ENG_Q4_K_BYTES = 144, ENG_Q6_K_BYTES = 210,
    ENG_Q4_K_SCALES = 4, ENG_Q4_K_QS = 16,
    ENG_Q6_K_QH = 128, ENG_Q6_K_SCALES = 192, ENG_Q6_K_D = 208,
};

/* Values and bytes per block of a quantized weight type (wtype.h ENG_WT_*); 0 for other types.
 * Inline, so that a kernel specialised on a constant type folds them. */
static inline int eng_quant_block_values(int wtype) {
    switch (wtype) {
    case ENG_WT_Q8_0: case ENG_WT_Q4_0: return 32;
    case ENG_WT_Q4_K: case ENG_WT_Q6_K: return 256;
    default: return 0;
    }
}
static inline size_t eng_quant_block_bytes(int wtype) {
    switch (wtype) {
    case ENG_WT_Q8_0: return ENG_Q8_0_BYTES;
    case ENG_WT_Q4_0: return ENG_Q4_0_BYTES;
    case ENG_WT_Q4_K: return ENG_Q4_K_BYTES;
    case ENG_WT_Q6_K: return ENG_Q6_K_BYTES;
    default: return 0;
    }
}

/* The little-endian 16-bit word at p (a block's fp16 scale). */
static inline uint16_t eng_quant_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* The activation type a quantized weight type multiplies with; -1 for others. */
int eng_quant_act_type(int wtype);
int eng_quant_act_block(int act_type);      /* 32 or 256 */

/* ncols quantized activation columns of k values (k a multiple of the type's block): column c's
 * quants at qs + c * k, its block scales at d + c * (k / block), the sums of its 16-value groups
 * at sums + c * (k / 16). The engine owns the memory. */
typedef struct {
    int type;           /* ENG_ACT_* */
    int k;
    int8_t *qs;
    float *d;
    int16_t *sums;
} eng_qact_t;

/* Elements of each array for ncols columns of k values. */
size_t eng_qact_qs_len(int ncols, int k);
size_t eng_qact_d_len(int act_type, int ncols, int k);
size_t eng_qact_sums_len(int ncols, int k);

/* y[0..k) = the values of one row of weight type wtype (k a multiple of its block). */
void eng_dequant_row(int wtype, float *y, const void *row, int k);

/* Quantizes k values (a multiple of the block) into one row of weight type wtype as llama.cpp's
 * llama-quantize does with plain absmax scaling: Q8_0 by ggml's quantize_row_q8_0_ref (d = amax /
 * 127, q = roundf(x * (1 / d))), Q4_0 by quantize_row_q4_0_ref (d = max / -8 of the value of
 * largest magnitude, q = min(15, (int8)(x * (1 / d) + 8.5))); d stored as fp16. Q4_K and Q6_K
 * by lanes' own plain scaling (min/max per sub-block for Q4_K, absmax for Q6_K, the sub-block
 * scales rounded to their 6 or 8 bits, each value to its nearest level), not llama-quantize's
 * iterative scale search: valid files of those types, for benchmarks and tests, a little less
 * accurate than llama-quantize's. Returns 0, or LANES_EINVAL for other types. */
int eng_quant_row(int wtype, void *out, const float *x, int k);

/* ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j (0..7) of a Q4_K block, whose
 * 12 packed scale bytes are at q. Inline: the SIMD tables decode one per sub-block and row. */
static inline void eng__q4k_scale_min(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* The references behind the scalar table (kern.h quantize_act and gemm_q). */
void eng__quantize_act_ref(const eng_qact_t *a, int col, const float *x);
void eng__gemm_q_ref(float *y, ptrdiff_t yrs, ptrdiff_t ycs, int wtype, const void *w,
                     const eng_qact_t *a, int rows, int ncols, int accumulate);

#endif
