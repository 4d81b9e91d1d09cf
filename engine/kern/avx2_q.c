#include "kern.h"

/* The AVX2 quantized kernels of avx2.c's table: activation quantization and gemm_q, equal to
 * quant.h's references bit for bit. Built with avx2.c's flags; empty anywhere else.
 *
 * The GEMM keeps 8 rows of one column in the 8 lanes of a register ("vertical"): a block of 8 rows
 * is unpacked once into a buffer where register g of a weight block holds, for each row, its
 * values 4g..4g+3 as bytes, and every column then meets it with its own 4 activations broadcast
 * (vpbroadcastd from memory). So vpmaddubsw sums within a row only, no horizontal reduction is
 * needed, and each block's float steps (quant.h's canonical order) run 8 output elements per
 * instruction. Integer block dots are exact whatever order they are summed in; that is all the
 * freedom taken. The unsigned operand of vpmaddubsw is always the weight: Q4 nibbles and Q6 quants
 * as they are (pairs stay below 2 * 63 * 127, so short runs add in 16 bits), Q8_0 as |w| with w's
 * sign moved onto the activation (vpsignb; 2 * 128 * 127 still fits).
 *
 * One column is the exception (hrow8): there the unpacking would cost more than it saves, so each
 * row's block meets the column as it lies and the 8 rows' int32 vectors are reduced together
 * before the same float steps.
 *
 * avx2_qdp.c builds gemm_q a second time with KQ_DP set and AVX512-VNNI/VL enabled, for the
 * "avx2-vnni" table: there Q8_0's many-column blocks take vpdpbusd on w + 128 (one instruction
 * for 32 multiply-adds, where vpsignb, vpmaddubsw and vpmaddwd compete for the same two ports),
 * less 128 times the column's block sum. The same exact integers, so the same bits. */
#ifndef KQ_DP
#define KQ_DP 0
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) &&                                  \
    (!KQ_DP || (defined(__AVX512VNNI__) && defined(__AVX512VL__)))
#include <immintrin.h>
#include <string.h>

#include "half.h"
#include "wtype.h"

#if !KQ_DP /* the activation quantization is the same in both tables: built once */

/* ggml's nearest_int, 8 at a time, as quant.c: the same float add and bit operations, so the same
 * int for every input (out of range and NaN included). */
static inline __m256i nearest8(__m256 v) {
    __m256i i = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.0f)));
    return _mm256_sub_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0x007fffff)),
                            _mm256_set1_epi32(0x00400000));
}

/* The low bytes of 32 int32 (as the reference's (int8_t) cast) stored in order at q. */
static inline void store_low_bytes(int8_t *q, const __m256i v[4]) {
    __m256i m = _mm256_set1_epi32(0xff);
    __m256i a = _mm256_packus_epi32(_mm256_and_si256(v[0], m), _mm256_and_si256(v[1], m));
    __m256i b = _mm256_packus_epi32(_mm256_and_si256(v[2], m), _mm256_and_si256(v[3], m));
    __m256i p = _mm256_packus_epi16(a, b); /* dwords: v0 v1 v2 v3 lows | v0 v1 v2 v3 highs */
    _mm256_storeu_si256((__m256i *)q,
                        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

/* max |x[i]| over 8n values, NaN never winning (max_ps returns its second operand on NaN), as the
 * reference's ordered compares. */
static inline float absmax(const float *x, int n) {
    __m256 sign = _mm256_set1_ps(-0.0f), m = _mm256_setzero_ps();
    for (int i = 0; i < n; i++)
        m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * i)), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}

/* 32 values times s, rounded, stored as bytes; for Q8_K also clamped at 127 first. */
static inline void quant32(int8_t *q, const float *x, __m256 s, int clamp) {
    __m256i v[4];
    for (int j = 0; j < 4; j++) {
        v[j] = nearest8(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), s));
        if (clamp) v[j] = _mm256_min_epi32(v[j], _mm256_set1_epi32(127));
    }
    store_low_bytes(q, v);
}

void eng__quantize_act_avx2(const eng_qact_t *a, int col, const float *x) {
    int k = a->k, block = eng_quant_act_block(a->type);
    int8_t *qs = a->qs + (size_t)col * k;
    float *d = a->d + (size_t)col * (k / block);
    for (int b = 0; b < k / block; b++) {
        const float *xb = x + block * b;
        int8_t *q = qs + block * b;
        float amax = absmax(xb, block / 8);
        if (a->type == ENG_ACT_Q8_0) {
            d[b] = _cvtsh_ss(_cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT)); /* half.h's */
            __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
            quant32(q, xb, id, 0);
            continue;
        }
        if (amax == 0.0f) {
            d[b] = 0.0f;
            memset(q, 0, 256);
            continue;
        }
        /* The reference's max is the first value of largest magnitude. */
        int first = 0;
        __m256 am = _mm256_set1_ps(amax), sign = _mm256_set1_ps(-0.0f);
        for (int i = 0; i < 256; i += 8) {
            __m256 e =
                _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xb + i)), am, _CMP_EQ_OQ);
            int mask = _mm256_movemask_ps(e);
            if (mask) {
                first = i + __builtin_ctz((unsigned)mask);
                break;
            }
        }
        float iscale = -127.0f / xb[first];
        for (int i = 0; i < 256; i += 32) quant32(q + i, xb + i, _mm256_set1_ps(iscale), 1);
        d[b] = 1.0f / iscale;
    }
    /* The 16-value sums: bytes to pairs to quads (exact), then two quads per sum. */
    int16_t *sums = a->sums + (size_t)col * (k / 16);
    __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1);
    for (int g = 0; g < k / 16; g += 4) {
        __m256i lo = _mm256_loadu_si256((const __m256i *)(qs + 16 * g));
        __m256i hi = k / 16 - g >= 4 ? _mm256_loadu_si256((const __m256i *)(qs + 16 * g + 32))
                                     : _mm256_setzero_si256();
        __m256i ql = _mm256_madd_epi16(_mm256_maddubs_epi16(one8, lo), one16);
        __m256i qh = _mm256_madd_epi16(_mm256_maddubs_epi16(one8, hi), one16);
        __m256i s = _mm256_hadd_epi32(ql, qh); /* pairs of quads: sums 0 0 2 2 | 1 1 3 3 */
        s = _mm256_hadd_epi32(s, s);           /* 0 2 0 2 | 1 3 1 3 */
        int32_t t[8];
        _mm256_storeu_si256((__m256i *)t, s);
        int16_t v[4] = {(int16_t)t[0], (int16_t)t[4], (int16_t)t[1], (int16_t)t[5]};
        int n = k / 16 - g < 4 ? k / 16 - g : 4;
        memcpy(sums + g, v, (size_t)n * sizeof *v);
    }
}
#endif

/* ---- gemm_q ---- */

#define KQ_INLINE static inline __attribute__((always_inline))
enum {
    KQ_PACK_YMM = 512, /* the unpacked weights of 8 rows: 16 KiB, in L1 beside the columns */
    KQ_COL_TILE = 128, /* columns whose partial sums wait in a buffer between weight chunks */
    KQ_MC = 4,         /* columns that share each load of the unpacked weights */
};

/* Registers per unpacked block of 8 rows (quant.h layouts):
 *   Q8_0  8 |w|, 8 w (its signs), fp32 d per row
 *   Q4_0  8 q, d
 *   Q4_K  64 q (8 per sub-block); 8 sub-block scales and 8 mins, each s16 twice per row (lanes
 *         2j, 2j + 1: vpmaddwd's pairs); d; dmin
 *   Q6_K  64 q (4 per sub-block of 16); 16 scales s16 twice per row; 8 scale pairs (sub-blocks
 *         2t, 2t + 1) per row for the -32 term; d */
KQ_INLINE int pack_regs(const int WT) {
    return WT == ENG_WT_Q8_0 ? 17 : WT == ENG_WT_Q4_0 ? 9 : WT == ENG_WT_Q4_K ? 82 : 89;
}

/* out[g] = bytes 4g..4g+3 of each row v[j] in lane j: an 8 x 8 transpose of dwords. */
KQ_INLINE void transpose8(__m256i *out, const __m256i v[8]) {
    __m256i t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) { /* u[4i + m]: dword m (and m + 4) of rows 4i..4i+3 */
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++) {
        _mm256_store_si256(out + m, _mm256_permute2x128_si256(u[m], u[4 + m], 0x20));
        _mm256_store_si256(out + 4 + m, _mm256_permute2x128_si256(u[m], u[4 + m], 0x31));
    }
}


/* The fp32 of the f16 at byte off of each row's block: one register (vcvtph2ps is half.h's). */
KQ_INLINE void store_f16s(__m256i *out, const uint8_t *const blk[8], int off) {
    _Alignas(16) uint16_t h[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) h[j] = eng_quant_u16(blk[j] + off);
    _mm256_store_ps((float *)out, _mm256_cvtph_ps(_mm_load_si128((const __m128i *)h)));
}

/* 16 bytes of nibbles to 32 values: low nibbles first, as Q4_0 and Q4_K order them. */
static inline __m256i nibbles(__m128i q) {
    __m128i m = _mm_set1_epi8(0x0f);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

/* The 32 six-bit quants of run r (0..3) of half h of a Q6_K block (quant.c's q6_quant). */
static inline __m256i q6_run(const uint8_t *blk, int h, int r) {
    __m256i ql = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32 * (r & 1)));
    __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + ENG_Q6_K_QH + 32 * h));
    __m256i lo = _mm256_and_si256(r < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0f));
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * r), _mm256_set1_epi8(3));
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

/* Q4_K's 8 scales (bytes 0..7) and 8 mins (bytes 8..15) from its 12 packed bytes, as ggml's
 * AVX2 code unpacks them: the same values as quant.c's scale_min_k4. */
static inline __m128i q4k_scales_mins(const uint8_t *q) {
    uint32_t u[4];
    memcpy(u, q, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    uint32_t m03 = u[1] & 0x3f3f3f3f;
    u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    u[2] = m03;
    u[0] &= 0x3f3f3f3f;
    return _mm_loadu_si128((const __m128i *)u);
}

/* Block b of the row 8 below r into L1, about one prefetch per 64 bytes: 8 streams are more than
 * the hardware prefetcher keeps ahead of alone (Q8_0 from L3: 31-34 -> 45 GFLOP/s). Past the matrix
 * is harmless: a prefetch never faults, and its address is formed as an integer. */
KQ_INLINE void prefetch_below(const int WT, const uint8_t *r, size_t below, int b) {
    const int n = WT == ENG_WT_Q8_0   ? b % 2 == 0
                  : WT == ENG_WT_Q4_0 ? b % 3 == 0
                  : WT == ENG_WT_Q4_K ? 2
                                      : 3;
    uintptr_t a = (uintptr_t)r + (size_t)b * eng_quant_block_bytes(WT) + below;
#pragma GCC unroll 3
    for (int p = 0; p < n; p++) _mm_prefetch((const char *)(a + 64 * p), _MM_HINT_T0);
}

/* Unpacks blocks b0..b0+nb-1 of the 8 rows at row[] into out (pack_regs(WT) registers each). */
KQ_INLINE void pack(const int WT, __m256i *out, const uint8_t *const row[8], size_t below, int b0,
                    int nb) {
    const size_t bb = eng_quant_block_bytes(WT);
    for (int b = b0; b < b0 + nb; b++, out += pack_regs(WT)) {
        const uint8_t *blk[8];
        __m256i v[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            blk[j] = row[j] + (size_t)b * bb;
            prefetch_below(WT, row[j], below, b);
        }
        if (WT == ENG_WT_Q8_0) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) v[j] = _mm256_loadu_si256((const __m256i *)(blk[j] + 2));
            transpose8(out + 8, v);
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++)
#if KQ_DP
                out[g] = _mm256_xor_si256(out[8 + g], _mm256_set1_epi8(-128)); /* w + 128 as u8 */
#else
                out[g] = _mm256_abs_epi8(out[8 + g]); /* -128: 128 as u8 */
#endif
            store_f16s(out + 16, blk, 0);
        } else if (WT == ENG_WT_Q4_0) {
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
                v[j] = nibbles(_mm_loadu_si128((const __m128i *)(blk[j] + 2)));
            transpose8(out, v);
            store_f16s(out + 8, blk, 0);
        } else if (WT == ENG_WT_Q4_K) {
#pragma GCC unroll 8
            for (int s = 0; s < 8; s++) {
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    __m256i q = _mm256_loadu_si256((const __m256i *)(blk[j] + 16 + 32 * (s / 2)));
                    if (s & 1) q = _mm256_srli_epi16(q, 4);
                    v[j] = _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
                }
                transpose8(out + 8 * s, v);
            }
            int16_t sc[8 * 16], mn[8 * 16];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                uint8_t u[16];
                _mm_storeu_si128((__m128i *)u, q4k_scales_mins(blk[j] + 4));
#pragma GCC unroll 8
                for (int s = 0; s < 8; s++) {
                    sc[16 * s + 2 * j] = sc[16 * s + 2 * j + 1] = u[s];
                    mn[16 * s + 2 * j] = mn[16 * s + 2 * j + 1] = u[8 + s];
                }
            }
            memcpy(out + 64, sc, sizeof sc);
            memcpy(out + 72, mn, sizeof mn);
            store_f16s(out + 80, blk, 0);
            store_f16s(out + 81, blk, 2);
        } else {
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++) v[j] = q6_run(blk[j], h, r);
                    transpose8(out + 8 * (4 * h + r), v);
                }
            int16_t sc[16 * 16], pair[8 * 16];
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++)
#pragma GCC unroll 16
                for (int s = 0; s < 16; s++) {
                    int16_t v6 = (int8_t)blk[j][192 + s];
                    sc[16 * s + 2 * j] = sc[16 * s + 2 * j + 1] = v6;
                    pair[16 * (s / 2) + 2 * j + (s & 1)] = v6;
                }
            memcpy(out + 64, sc, sizeof sc);
            memcpy(out + 80, pair, sizeof pair);
            store_f16s(out + 88, blk, ENG_Q6_K_D);
        }
    }
}

/* Four activation bytes (or two 16-value sums) in every lane. */
static inline __m256i bcast4(const void *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* acc + (dw * dx) * (float)isum: one block's canonical float steps for 8 rows. */
static inline __m256 fstep(__m256 acc, __m256 dw, float dx, __m256i isum) {
    return _mm256_add_ps(
        acc, _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(dx)), _mm256_cvtepi32_ps(isum)));
}

/* C columns of activations, at block 0 of each. */
typedef struct {
    const int8_t *x[KQ_MC];
    const float *d[KQ_MC];
    const int16_t *sums[KQ_MC];
} kq_cols_t;

/* acc[c] (8 rows of column c) through blocks b0..b0+nb-1, unpacked at P. */
KQ_INLINE void run_blocks(const int WT, const int C, __m256 *acc, const __m256i *P,
                          const kq_cols_t *cs, int b0, int nb) {
    const __m256i one16 = _mm256_set1_epi16(1);
    for (int b = b0; b < b0 + nb; b++, P += pack_regs(WT)) {
        __m256i is[KQ_MC], ms[KQ_MC];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) is[c] = ms[c] = _mm256_setzero_si256();
        if (WT == ENG_WT_Q8_0) {
#if KQ_DP
#pragma GCC unroll 2
            for (int g = 0; g < 8; g++)
#pragma GCC unroll 4
                for (int c = 0; c < C; c++)
                    is[c] = _mm256_dpbusd_epi32(is[c], P[g], bcast4(cs->x[c] + 32 * b + 4 * g));
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) /* (w + 128) x - 128 x: the sum of x from its 16-sums */
                is[c] = _mm256_add_epi32(
                    is[c], _mm256_madd_epi16(bcast4(cs->sums[c] + 2 * b), _mm256_set1_epi16(-128)));
#else
#pragma GCC unroll 2
            for (int g = 0; g < 8; g++)
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    __m256i x = _mm256_sign_epi8(bcast4(cs->x[c] + 32 * b + 4 * g), P[8 + g]);
                    is[c] = _mm256_add_epi32(
                        is[c], _mm256_madd_epi16(_mm256_maddubs_epi16(P[g], x), one16));
                }
#endif
        } else if (WT == ENG_WT_Q4_0) {
            __m256i s16[KQ_MC];
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) s16[c] = _mm256_setzero_si256();
#pragma GCC unroll 2
            for (int g = 0; g < 8; g++) /* 8 pairs of at most 2 * 15 * 127 fit 16 bits */
#pragma GCC unroll 4
                for (int c = 0; c < C; c++)
                    s16[c] = _mm256_add_epi16(
                        s16[c], _mm256_maddubs_epi16(P[g], bcast4(cs->x[c] + 32 * b + 4 * g)));
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) /* q x - 8 x: the sum of x from the two 16-sums */
                is[c] = _mm256_add_epi32(
                    _mm256_madd_epi16(s16[c], one16),
                    _mm256_madd_epi16(bcast4(cs->sums[c] + 2 * b), _mm256_set1_epi16(-8)));
        } else if (WT == ENG_WT_Q4_K) {
#pragma GCC unroll 8
            for (int s = 0; s < 8; s++) {
                __m256i s16[KQ_MC];
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) s16[c] = _mm256_setzero_si256();
#pragma GCC unroll 2
                for (int g = 0; g < 8; g++)
#pragma GCC unroll 4
                    for (int c = 0; c < C; c++)
                        s16[c] = _mm256_add_epi16(
                            s16[c], _mm256_maddubs_epi16(
                                        P[8 * s + g], bcast4(cs->x[c] + 256 * b + 32 * s + 4 * g)));
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) {
                    is[c] = _mm256_add_epi32(is[c], _mm256_madd_epi16(s16[c], P[64 + s]));
                    ms[c] = _mm256_add_epi32(
                        ms[c], _mm256_madd_epi16(P[72 + s], bcast4(cs->sums[c] + 16 * b + 2 * s)));
                }
            }
        } else {
#pragma GCC unroll 16
            for (int s = 0; s < 16; s++)
#pragma GCC unroll 4
                for (int c = 0; c < C; c++) { /* two pairs of at most 2 * 63 * 127 fit 16 bits */
                    const int8_t *x = cs->x[c] + 256 * b + 16 * s;
                    __m256i lo =
                        _mm256_add_epi16(_mm256_maddubs_epi16(P[4 * s], bcast4(x)),
                                         _mm256_maddubs_epi16(P[4 * s + 1], bcast4(x + 4)));
                    __m256i hi =
                        _mm256_add_epi16(_mm256_maddubs_epi16(P[4 * s + 2], bcast4(x + 8)),
                                         _mm256_maddubs_epi16(P[4 * s + 3], bcast4(x + 12)));
                    is[c] =
                        _mm256_add_epi32(is[c], _mm256_add_epi32(_mm256_madd_epi16(lo, P[64 + s]),
                                                                 _mm256_madd_epi16(hi, P[64 + s])));
                }
#pragma GCC unroll 8
            for (int t = 0; t < 8; t++) /* the -32: sum of scale times 16-sum */
#pragma GCC unroll 4
                for (int c = 0; c < C; c++)
                    ms[c] = _mm256_add_epi32(
                        ms[c], _mm256_madd_epi16(P[80 + t], bcast4(cs->sums[c] + 16 * b + 2 * t)));
#pragma GCC unroll 4
            for (int c = 0; c < C; c++)
                is[c] = _mm256_sub_epi32(is[c], _mm256_slli_epi32(ms[c], 5));
        }
        const int dreg = WT == ENG_WT_Q8_0   ? 16
                         : WT == ENG_WT_Q4_0 ? 8
                         : WT == ENG_WT_Q4_K ? 80
                                             : 88;
        __m256 dw = _mm256_castsi256_ps(P[dreg]);
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[c] = fstep(acc[c], dw, cs->d[c][b], is[c]);
        if (WT == ENG_WT_Q4_K) {
            __m256 dmin = _mm256_castsi256_ps(P[81]);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++)
                acc[c] = _mm256_sub_ps(
                    acc[c], _mm256_mul_ps(_mm256_mul_ps(dmin, _mm256_set1_ps(cs->d[c][b])),
                                          _mm256_cvtepi32_ps(ms[c])));
        }
    }
}

/* One weight chunk against the rows of C columns from column c: partial sums from accbuf (unless
 * this is the first chunk) and back to it, or to y after the last. */
typedef struct {
    float *y;
    ptrdiff_t yrs, ycs;
    const eng_qact_t *a;
    int nr, accumulate, first, last;
    float *accbuf; /* 8 per column of the tile */
} kq_out_t;

/* The o->nr rows of column c: y = acc, or y + acc. */
static inline void store_rows(const kq_out_t *o, int c, __m256 acc) {
    float *y = o->y + c * o->ycs;
    if (o->yrs == 1 && o->nr == 8) {
        _mm256_storeu_ps(y, o->accumulate ? _mm256_add_ps(_mm256_loadu_ps(y), acc) : acc);
        return;
    }
    float h[8];
    _mm256_storeu_ps(h, acc);
    for (int r = 0; r < o->nr; r++) {
        float *e = y + r * o->yrs;
        *e = o->accumulate ? *e + h[r] : h[r];
    }
}

KQ_INLINE void run_cols(const int WT, const int C, const kq_out_t *o, const __m256i *P, int c,
                        int ct, int b0, int nb) {
    const eng_qact_t *a = o->a;
    int k = a->k, nbx = k / eng_quant_act_block(a->type);
    kq_cols_t cs;
    __m256 acc[KQ_MC];
#pragma GCC unroll 4
    for (int i = 0; i < C; i++) {
        cs.x[i] = a->qs + (size_t)(c + i) * k;
        cs.d[i] = a->d + (size_t)(c + i) * nbx;
        cs.sums[i] = a->sums + (size_t)(c + i) * (k / 16);
        acc[i] = o->first ? _mm256_setzero_ps() : _mm256_load_ps(o->accbuf + 8 * (c - ct + i));
    }
    run_blocks(WT, C, acc, P, &cs, b0, nb);
#pragma GCC unroll 4
    for (int i = 0; i < C; i++) {
        if (o->last)
            store_rows(o, c + i, acc[i]);
        else
            _mm256_store_ps(o->accbuf + 8 * (c - ct + i), acc[i]);
    }
}

/* One column: unpacking 8 rows costs more than it saves, so each row's block meets the column as
 * it lies ("horizontal"), and the 8 rows' int32 vectors are then reduced together. */

/* Lane j = the sum of v[j]'s lanes (exact: int32). */
KQ_INLINE __m256i reduce8(const __m256i v[8]) {
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                            _mm256_permute2x128_si256(a, b, 0x31));
}

/* The fp32 of the f16 at byte offset at of each row. */
KQ_INLINE __m256 f16s_at(const uint8_t *const row[8], size_t at) {
    return _mm256_cvtph_ps(_mm_setr_epi16(
        (short)eng_quant_u16(row[0] + at), (short)eng_quant_u16(row[1] + at),
        (short)eng_quant_u16(row[2] + at), (short)eng_quant_u16(row[3] + at),
        (short)eng_quant_u16(row[4] + at), (short)eng_quant_u16(row[5] + at),
        (short)eng_quant_u16(row[6] + at), (short)eng_quant_u16(row[7] + at)));
}

/* Word i of s (16-bit lanes) in every lane of its 128-bit half; i may differ per half. */
static inline __m256i bcast_word(__m256i s, int lo, int hi) {
    __m256i m = _mm256_setr_epi8(
        2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * lo,
        2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * lo, 2 * lo + 1, 2 * hi, 2 * hi + 1,
        2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1, 2 * hi,
        2 * hi + 1, 2 * hi, 2 * hi + 1, 2 * hi, 2 * hi + 1);
    return _mm256_shuffle_epi8(s, m);
}

/* 8 rows (row[j] at their first block) against one column, all blocks: the 8 sums. */
KQ_INLINE __m256 hrow8(const int WT, const uint8_t *const row[8], const int8_t *x, const float *dx,
                       const int16_t *sums, int nblk) {
    const size_t bb = eng_quant_block_bytes(WT), pfd = 8 * (size_t)nblk * bb;
    const __m256i one16 = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nblk; b++) {
        const size_t o = (size_t)b * bb;
        __m256i v[8], mv[8];
        if (WT == ENG_WT_Q8_0) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 32 * b));
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                prefetch_below(WT, row[j], pfd, b);
                __m256i w = _mm256_loadu_si256((const __m256i *)(row[j] + o + 2));
                v[j] = _mm256_madd_epi16(
                    _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(xv, w)), one16);
            }
        } else if (WT == ENG_WT_Q4_0) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x + 32 * b));
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                prefetch_below(WT, row[j], pfd, b);
                __m256i q = nibbles(_mm_loadu_si128((const __m128i *)(row[j] + o + 2)));
                v[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xv), one16);
            }
        } else if (WT == ENG_WT_Q4_K) {
            const int8_t *xb = x + 256 * b;
            /* The 32-value sub-block sums, 16-bit (at most 32 * 127), twice. */
            __m256i s32 =
                _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(sums + 16 * b)), one16);
            __m128i ss =
                _mm_packs_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                prefetch_below(WT, row[j], pfd, b);
                __m128i sm = q4k_scales_mins(row[j] + o + 4);
                __m256i sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
                __m256i acc32 = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int t = 0; t < 4; t++) { /* sub-blocks 2t and 2t + 1: one 32-byte load */
                    __m256i q = _mm256_loadu_si256((const __m256i *)(row[j] + o + 16 + 32 * t));
                    __m256i lo = _mm256_and_si256(q, _mm256_set1_epi8(0x0f));
                    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), _mm256_set1_epi8(0x0f));
                    __m256i pl = _mm256_maddubs_epi16(
                        lo, _mm256_loadu_si256((const __m256i *)(xb + 64 * t)));
                    __m256i ph = _mm256_maddubs_epi16(
                        hi, _mm256_loadu_si256((const __m256i *)(xb + 64 * t + 32)));
                    acc32 = _mm256_add_epi32(acc32,
                                             _mm256_madd_epi16(pl, bcast_word(sc, 2 * t, 2 * t)));
                    acc32 = _mm256_add_epi32(
                        acc32, _mm256_madd_epi16(ph, bcast_word(sc, 2 * t + 1, 2 * t + 1)));
                }
                v[j] = acc32;
                mv[j] = _mm256_castsi128_si256(
                    _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(sm, 8)), ss));
            }
        } else {
            const int8_t *xb = x + 256 * b;
            __m256i sums16 = _mm256_loadu_si256((const __m256i *)(sums + 16 * b));
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const uint8_t *blk = row[j] + o;
                prefetch_below(WT, row[j], pfd, b);
                __m256i sc16 =
                    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + ENG_Q6_K_SCALES)));
                /* sum_s sc_s * (16-sum of x)_s, times 32, comes off at the end */
                __m256i acc32 = _mm256_slli_epi32(_mm256_madd_epi16(sc16, sums16), 5);
                acc32 = _mm256_sub_epi32(_mm256_setzero_si256(), acc32);
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    /* scales 8h..8h+7 in both halves: run r's sub-blocks are 8h + 2r and + 1 */
                    __m256i sch = h ? _mm256_permute4x64_epi64(sc16, 0xee)
                                    : _mm256_permute4x64_epi64(sc16, 0x44);
#pragma GCC unroll 4
                    for (int r = 0; r < 4; r++) {
                        __m256i q = q6_run(blk, h, r);
                        __m256i p = _mm256_maddubs_epi16(
                            q, _mm256_loadu_si256((const __m256i *)(xb + 128 * h + 32 * r)));
                        acc32 = _mm256_add_epi32(
                            acc32, _mm256_madd_epi16(p, bcast_word(sch, 2 * r, 2 * r + 1)));
                    }
                }
                v[j] = acc32;
            }
        }
        __m256i is = reduce8(v);
        if (WT == ENG_WT_Q4_0) /* q x - 8 x */
            is = _mm256_sub_epi32(is, _mm256_set1_epi32(8 * (sums[2 * b] + sums[2 * b + 1])));
        const size_t dat = WT == ENG_WT_Q6_K ? 208 : 0;
        acc = fstep(acc, f16s_at(row, o + dat), dx[b], is);
        if (WT == ENG_WT_Q4_K) {
            __m128i m01 =
                _mm_hadd_epi32(_mm256_castsi256_si128(mv[0]), _mm256_castsi256_si128(mv[1]));
            __m128i m23 =
                _mm_hadd_epi32(_mm256_castsi256_si128(mv[2]), _mm256_castsi256_si128(mv[3]));
            __m128i m45 =
                _mm_hadd_epi32(_mm256_castsi256_si128(mv[4]), _mm256_castsi256_si128(mv[5]));
            __m128i m67 =
                _mm_hadd_epi32(_mm256_castsi256_si128(mv[6]), _mm256_castsi256_si128(mv[7]));
            __m256i ms = _mm256_set_m128i(_mm_hadd_epi32(m45, m67), _mm_hadd_epi32(m01, m23));
            acc = _mm256_sub_ps(
                acc, _mm256_mul_ps(_mm256_mul_ps(f16s_at(row, o + 2), _mm256_set1_ps(dx[b])),
                                   _mm256_cvtepi32_ps(ms)));
        }
    }
    return acc;
}

KQ_INLINE void gemm_t(const int WT, float *y, ptrdiff_t yrs, ptrdiff_t ycs, const uint8_t *w,
                      const eng_qact_t *a, int rows, int ncols, int accumulate) {
    int nblk = a->k / eng_quant_block_values(WT), chunk = KQ_PACK_YMM / pack_regs(WT);
    size_t rb = (size_t)nblk * eng_quant_block_bytes(WT);
    _Alignas(32) __m256i buf[KQ_PACK_YMM];
    _Alignas(32) float accbuf[8 * KQ_COL_TILE];
    for (int r0 = 0; r0 < rows; r0 += 8) {
        kq_out_t o = {y + r0 * yrs, yrs, ycs, a,     rows - r0 < 8 ? rows - r0 : 8,
                      accumulate,   0,   0,   accbuf};
        const uint8_t *row[8];
        /* Past the last row, repeat it: valid memory, and those lanes are never stored. */
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) row[j] = w + (size_t)(r0 + (j < o.nr ? j : o.nr - 1)) * rb;
        /* hrow8 where it measured faster, and for k = 0 (it stores the zeros) */
        if (ncols < (WT == ENG_WT_Q6_K ? 3 : 2) || nblk == 0) {
            int nbx = a->k / eng_quant_act_block(a->type);
            for (int c = 0; c < ncols; c++)
                store_rows(&o, c,
                           hrow8(WT, row, a->qs + (size_t)c * a->k, a->d + (size_t)c * nbx,
                                 a->sums + (size_t)c * (a->k / 16), nblk));
            continue;
        }
        for (int ct = 0; ct < ncols; ct += KQ_COL_TILE) {
            int ce = ncols - ct < KQ_COL_TILE ? ncols : ct + KQ_COL_TILE;
            for (int b0 = 0; b0 < nblk; b0 += chunk) {
                int nb = nblk - b0 < chunk ? nblk - b0 : chunk;
                pack(WT, buf, row, 8 * rb, b0, nb);
                o.first = b0 == 0;
                o.last = b0 + nb == nblk;
                int c = ct;
                for (; c + KQ_MC <= ce; c += KQ_MC) run_cols(WT, KQ_MC, &o, buf, c, ct, b0, nb);
                for (; c + 2 <= ce; c += 2) run_cols(WT, 2, &o, buf, c, ct, b0, nb);
                if (c < ce) run_cols(WT, 1, &o, buf, c, ct, b0, nb);
            }
        }
    }
}

#if KQ_DP
void eng__gemm_q_avx2_vnni(float *y, ptrdiff_t yrs, ptrdiff_t ycs, int wtype, const void *w,
                           const eng_qact_t *a, int rows, int ncols, int accumulate) {
#else
void eng__gemm_q_avx2(float *y, ptrdiff_t yrs, ptrdiff_t ycs, int wtype, const void *w,
                      const eng_qact_t *a, int rows, int ncols, int accumulate) {
#endif
    switch (wtype) {
    case ENG_WT_Q8_0:
        gemm_t(ENG_WT_Q8_0, y, yrs, ycs, w, a, rows, ncols, accumulate);
        break;
    case ENG_WT_Q4_0:
        gemm_t(ENG_WT_Q4_0, y, yrs, ycs, w, a, rows, ncols, accumulate);
        break;
    case ENG_WT_Q4_K:
        gemm_t(ENG_WT_Q4_K, y, yrs, ycs, w, a, rows, ncols, accumulate);
        break;
    case ENG_WT_Q6_K:
        gemm_t(ENG_WT_Q6_K, y, yrs, ycs, w, a, rows, ncols, accumulate);
        break;
    default:
        eng__gemm_q_ref(y, yrs, ycs, wtype, w, a, rows, ncols, accumulate);
        break;
    }
}
#endif
