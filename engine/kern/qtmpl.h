/* The quantized kernels (kern.h gemm_q and quantize_act) written once over 128-bit vectors;
 * included by sse.c and neon.c after they define (all static inline):
 *
 *   q8_t                     16 int8 lanes
 *   q8_load(p), q8_store(p, v), q8_set1(v)   p need not be aligned
 *   q8_and, q8_or, q8_sub(a, b)              lanewise, wrapping
 *   q8_shl16(a, n), q8_shr16(a, n)           shifts of the 16-bit lanes (callers mask the bytes)
 *   q8_pack(a, b, c, d)      16 int32 lanes (4 qi_t) to int8, saturating
 *   q8_sum(v)                the sum of the 16 lanes
 *   qi_t                     4 int32 lanes: partial integer dots, reduced in any order (exact)
 *   qi_zero(), qi_load(p)
 *   qi_dot(acc, w, x)        acc + the products w * x of 16 int8 pairs, summed into the 4 lanes;
 *                            w in [-128, 127], x in [-127, 127]
 *   qi_dot_sc(acc, w, x, s)  the same products times s (|s| <= 128), w in [-32, 31]
 *   qi_dotu_sc(acc, q, x, s) the same with q in [0, 15] (an ISA may use an unsigned multiply)
 *   qi_hsum4(a, b, c, d)     the 4 lane sums of a, b, c, d as one qi_t
 *   qf_t                     4 fp32 lanes
 *   qf_load, qf_store, qf_set1, qf_add, qf_sub, qf_mul   one rounding each, no fused multiply-add
 *   qf_cvt(v)                int32 to fp32, rounded to nearest
 *   qf_f16(h)                4 IEEE binary16 bit patterns to fp32, half.h's bits
 *   qf_abs(v), qf_max(m, v)  |v|; v > m ? v : m, so a NaN never wins
 *   qf_hmax(v)               the largest lane (no NaN lanes)
 *   qf_nearest(v)            quant.c's nearest_int lanewise: bits(v + 1.5 * 2^23) & 0x7fffff,
 *                            minus 2^22 (ggml's trick, which NaN goes through the same way)
 *
 * Each output element is one lane of a qf_t and runs quant.h's canonical order: for blocks b in
 * order, acc = acc + (d_w * d_x) * (float)I_b, with I_b reduced exactly in the qi_t lanes. A tile's
 * four lanes are 1 row x 4 columns, 2 x 2 or 4 x 1 (for one column left over, as in a 1-lane
 * decode, so that it still streams four rows at a time); a lane past the matrix computes a copy
 * of the last real one and is not stored. So the tile shape an element lands in never changes its
 * bits, and every table equals eng__gemm_q_ref.
 *
 * A table may need the gemm twice, with two sets of dot primitives (neon.c, for the dot-product
 * extension): it then defines KQ_NAME(n) to suffix the names and KQ_GEMM_ONLY, and includes this
 * again. */

#include <math.h>

#include "half.h"
#include "wtype.h"
#include "quant.h"

#ifndef KQ_NAME
#define KQ_NAME(n) n
#endif

#ifndef KQ_GEMM_ONLY
#define KQ_INLINE static inline __attribute__((always_inline))
#ifndef KQ_X_TILE_BYTES
#define KQ_X_TILE_BYTES (192 * 1024) /* quantized columns kept in L2 while W passes over them */
#endif

/* One weight block unpacked for the dots, once per row and reused across a tile's columns. */
typedef struct {
    q8_t v[16];         /* the integer weights in value order (Q8_0, Q4_0: v[0], v[1]) */
    int sc[16];         /* sub-block scales: Q4_K's 8 of 32 values (v[2s], v[2s + 1]), Q6_K's 16 */
    int m[8];           /* Q4_K's sub-block mins */
    uint16_t d, dmin;   /* f16 bits */
} kq_blk_t;


KQ_INLINE void q_unpack(const int WT, kq_blk_t *u, const uint8_t *blk) {
    const q8_t lo4 = q8_set1(0x0F), hi2 = q8_set1(0x30);
    if (WT == ENG_WT_Q8_0) {
        u->d = eng_quant_u16(blk);
        u->v[0] = q8_load(blk + 2);
        u->v[1] = q8_load(blk + 18);
    } else if (WT == ENG_WT_Q4_0) {
        u->d = eng_quant_u16(blk);
        q8_t q = q8_load(blk + 2), eight = q8_set1(8);
        u->v[0] = q8_sub(q8_and(q, lo4), eight);
        u->v[1] = q8_sub(q8_and(q8_shr16(q, 4), lo4), eight);
    } else if (WT == ENG_WT_Q4_K) {
        u->d = eng_quant_u16(blk);
        u->dmin = eng_quant_u16(blk + 2);
        for (int s = 0; s < 8; s++)
            eng__q4k_scale_min(s, blk + ENG_Q4_K_SCALES, &u->sc[s], &u->m[s]);
        for (int j = 0; j < 4; j++) { /* sub-blocks 2j, 2j + 1: low, high nibbles of 32 bytes */
            const uint8_t *qs = blk + ENG_Q4_K_QS + 32 * j;
            q8_t q0 = q8_load(qs), q1 = q8_load(qs + 16);
            u->v[4 * j] = q8_and(q0, lo4);
            u->v[4 * j + 1] = q8_and(q1, lo4);
            u->v[4 * j + 2] = q8_and(q8_shr16(q0, 4), lo4);
            u->v[4 * j + 3] = q8_and(q8_shr16(q1, 4), lo4);
        }
    } else { /* Q6_K: quant.c's q6_quant, 16 values at a time; vector s has scale s */
        u->d = eng_quant_u16(blk + ENG_Q6_K_D);
        for (int s = 0; s < 16; s++) u->sc[s] = (int8_t)blk[192 + s];
        const q8_t off = q8_set1(32);
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 2; p++) {
                const uint8_t *ql = blk + 64 * h + 16 * p;
                const uint8_t *qh = blk + ENG_Q6_K_QH + 32 * h + 16 * p;
                q8_t l0 = q8_load(ql), l1 = q8_load(ql + 32), b = q8_load(qh);
                q8_t *v = u->v + 8 * h + p;   /* runs of 32 are two vectors apart */
                v[0] = q8_sub(q8_or(q8_and(l0, lo4), q8_and(q8_shl16(b, 4), hi2)), off);
                v[2] = q8_sub(q8_or(q8_and(l1, lo4), q8_and(q8_shl16(b, 2), hi2)), off);
                v[4] = q8_sub(q8_or(q8_and(q8_shr16(l0, 4), lo4), q8_and(b, hi2)), off);
                v[6] = q8_sub(q8_or(q8_and(q8_shr16(l1, 4), lo4), q8_and(q8_shr16(b, 2), hi2)),
                              off);
            }
    }
}

/* M_b of a Q4_K block against one column's 16-value sums of the same 256 values. */
KQ_INLINE int32_t q_msum(const kq_blk_t *u, const int16_t *sums) {
    int32_t m = 0;
    for (int s = 0; s < 8; s++) m += u->m[s] * (sums[2 * s] + sums[2 * s + 1]);
    return m;
}

/* Quantizes x into column col of a (quant.h): the scale from a vector max, the quants and their
 * 16-value sums 16 at a time. */
static void quantize_act(const eng_qact_t *a, int col, const float *x) {
    int k = a->k, block = eng_quant_act_block(a->type);
    int8_t *qs = a->qs + (size_t)col * k;
    float *d = a->d + (size_t)col * (k / block);
    int16_t *sums = a->sums + (size_t)col * (k / 16);
    for (int b = 0; b < k / block; b++) {
        const float *xb = x + block * b;
        qf_t vmax = qf_set1(0.0f);
        for (int i = 0; i < block; i += 4) vmax = qf_max(vmax, qf_abs(qf_load(xb + i)));
        float amax = qf_hmax(vmax), mul;
        if (a->type == ENG_ACT_Q8_0) {
            d[b] = eng_f16_to_f32(eng_f32_to_f16(amax / 127.0f));
            mul = amax != 0.0f ? 127.0f / amax : 0.0f;
        } else if (amax == 0.0f) { /* all zero (or NaN): zero quants, as the reference */
            d[b] = 0.0f;
            memset(qs + block * b, 0, (size_t)block);
            memset(sums + block / 16 * b, 0, (size_t)block / 16 * sizeof *sums);
            continue;
        } else {
            int i = 0;
            while (fabsf(xb[i]) != amax) i++; /* the first value of largest magnitude */
            mul = -127.0f / xb[i];
            d[b] = 1.0f / mul;
        }
        /* The saturating pack is Q8_K's min(127, q); |x * mul| < 127.5 keeps Q8_0 in range. */
        const qf_t vmul = qf_set1(mul);
        for (int i = 0; i < block; i += 16) {
            q8_t q = q8_pack(qf_nearest(qf_mul(qf_load(xb + i), vmul)),
                             qf_nearest(qf_mul(qf_load(xb + i + 4), vmul)),
                             qf_nearest(qf_mul(qf_load(xb + i + 8), vmul)),
                             qf_nearest(qf_mul(qf_load(xb + i + 12), vmul)));
            q8_store(qs + block * b + i, q);
            sums[(block * b + i) / 16] = (int16_t)q8_sum(q);
        }
    }
}
#endif /* KQ_GEMM_ONLY */

/* I_b of an unpacked block and one column's values of the block, in 4 lanes. */
KQ_INLINE qi_t KQ_NAME(q_blk_dot)(const int WT, const kq_blk_t *u, const int8_t *x) {
    qi_t acc = qi_zero();
    if (WT == ENG_WT_Q8_0 || WT == ENG_WT_Q4_0)
        return qi_dot(qi_dot(acc, u->v[0], q8_load(x)), u->v[1], q8_load(x + 16));
    if (WT == ENG_WT_Q4_K) {
#pragma GCC unroll 8
        for (int s = 0; s < 8; s++) {
            acc = qi_dotu_sc(acc, u->v[2 * s], q8_load(x + 32 * s), u->sc[s]);
            acc = qi_dotu_sc(acc, u->v[2 * s + 1], q8_load(x + 32 * s + 16), u->sc[s]);
        }
        return acc;
    }
#pragma GCC unroll 16
    for (int s = 0; s < 16; s++) acc = qi_dot_sc(acc, u->v[s], q8_load(x + 16 * s), u->sc[s]);
    return acc;
}

/* NR x NC (= 4) output elements: rows r0 .. r0 + nr - 1, columns c0 .. c0 + nc - 1 (nr <= NR,
 * nc <= NC; the missing ones repeat the last). Each weight block is unpacked once for NC
 * columns. */
KQ_INLINE void KQ_NAME(q_tile)(const int WT, const int NR, const int NC, float *y, ptrdiff_t yrs,
                               ptrdiff_t ycs, const uint8_t *w, size_t row_bytes,
                               const eng_qact_t *a, int r0, int nr, int c0, int nc,
                               int accumulate) {
    const int k = a->k, block = eng_quant_block_values(WT), nb = k / block;
    const size_t bb = eng_quant_block_bytes(WT);
    const uint8_t *wr[4];
    const int8_t *xc[4];
    const float *dc[4];
    const int16_t *sc[4];
    for (int r = 0; r < NR; r++) wr[r] = w + (size_t)(r0 + (r < nr ? r : nr - 1)) * row_bytes;
    for (int c = 0; c < NC; c++) {
        size_t cc = (size_t)(c0 + (c < nc ? c : nc - 1));
        xc[c] = a->qs + cc * k;
        dc[c] = a->d + cc * nb;
        sc[c] = a->sums + cc * (k / 16);
    }
    qf_t acc = qf_set1(0.0f);
    for (int b = 0; b < nb; b++) {
        kq_blk_t u[4];
        qi_t isum[4];
        float dx[4];
        uint16_t dw[4], dmin[4];
        int32_t msum[4];
#pragma GCC unroll 4
        for (int r = 0; r < NR; r++) {
            q_unpack(WT, &u[r], wr[r] + b * bb);
#pragma GCC unroll 4
            for (int c = 0; c < NC; c++) {
                int l = r * NC + c;
                isum[l] = KQ_NAME(q_blk_dot)(WT, &u[r], xc[c] + b * block);
                dx[l] = dc[c][b];
                dw[l] = u[r].d;
                if (WT == ENG_WT_Q4_K) {
                    dmin[l] = u[r].dmin;
                    msum[l] = q_msum(&u[r], sc[c] + 16 * b);
                }
            }
        }
        qf_t vdx = qf_load(dx);
        qf_t i4 = qf_cvt(qi_hsum4(isum[0], isum[1], isum[2], isum[3]));
        acc = qf_add(acc, qf_mul(qf_mul(qf_f16(dw), vdx), i4));
        if (WT == ENG_WT_Q4_K)
            acc = qf_sub(acc, qf_mul(qf_mul(qf_f16(dmin), vdx), qf_cvt(qi_load(msum))));
    }
    float out[4];
    qf_store(out, acc);
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) {
            float *o = y + (c0 + c) * ycs + (r0 + r) * yrs;
            *o = accumulate ? *o + out[r * NC + c] : out[r * NC + c];
        }
}

/* All rows against columns in L2-sized tiles: each row meets four columns at a time while it is
 * in L1; the last one to three columns in the shape that wastes the fewest lanes. */
KQ_INLINE void KQ_NAME(q_gemm_wt)(const int WT, float *y, ptrdiff_t yrs, ptrdiff_t ycs,
                                  const void *w, const eng_qact_t *a, int rows, int ncols,
                                  int accumulate) {
    const size_t rb = (size_t)(a->k / eng_quant_block_values(WT)) * eng_quant_block_bytes(WT);
    int ct = KQ_X_TILE_BYTES / (a->k > 0 ? a->k : 1) / 4 * 4;
    if (ct < 4) ct = 4;
    for (int c0 = 0; c0 < ncols; c0 += ct) {
        int c1 = ncols - c0 < ct ? ncols : c0 + ct, c4 = c0 + (c1 - c0) / 4 * 4;
        for (int r = 0; r < rows; r++)
            for (int c = c0; c < c4; c += 4)
                KQ_NAME(q_tile)(WT, 1, 4, y, yrs, ycs, w, rb, a, r, 1, c, 4, accumulate);
        switch (c1 - c4) {
        case 3:
            for (int r = 0; r < rows; r++)
                KQ_NAME(q_tile)(WT, 1, 4, y, yrs, ycs, w, rb, a, r, 1, c4, 3, accumulate);
            break;
        case 2:
            for (int r = 0; r < rows; r += 2)
                KQ_NAME(q_tile)(WT, 2, 2, y, yrs, ycs, w, rb, a, r, rows - r < 2 ? rows - r : 2,
                                c4, 2, accumulate);
            break;
        case 1:
            for (int r = 0; r < rows; r += 4)
                KQ_NAME(q_tile)(WT, 4, 1, y, yrs, ycs, w, rb, a, r, rows - r < 4 ? rows - r : 4,
                                c4, 1, accumulate);
            break;
        default: break;
        }
    }
}

static void KQ_NAME(gemm_q)(float *y, ptrdiff_t yrs, ptrdiff_t ycs, int wtype, const void *w,
                            const eng_qact_t *a, int rows, int ncols, int accumulate) {
    switch (wtype) {
    case ENG_WT_Q8_0:
        KQ_NAME(q_gemm_wt)(ENG_WT_Q8_0, y, yrs, ycs, w, a, rows, ncols, accumulate);
        break;
    case ENG_WT_Q4_0:
        KQ_NAME(q_gemm_wt)(ENG_WT_Q4_0, y, yrs, ycs, w, a, rows, ncols, accumulate);
        break;
    case ENG_WT_Q4_K:
        KQ_NAME(q_gemm_wt)(ENG_WT_Q4_K, y, yrs, ycs, w, a, rows, ncols, accumulate);
        break;
    case ENG_WT_Q6_K:
        KQ_NAME(q_gemm_wt)(ENG_WT_Q6_K, y, yrs, ycs, w, a, rows, ncols, accumulate);
        break;
    default: /* no other type reaches a gemm_q; the reference's answer all the same */
        eng__gemm_q_ref(y, yrs, ycs, wtype, w, a, rows, ncols, accumulate);
        break;
    }
}
