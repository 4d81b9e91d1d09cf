/* The lane GEMM, dot and argmax written once over an 8-wide "partial sums" vector; included by
 * kern_avx2.c, kern_sse.c and kern_neon.c after they define (all static inline):
 *
 *   v8_t                     8 fp32 partial sums s0..s7 (one ymm, or two 4-wide registers)
 *   v8_zero(), v8_load(p)    p need not be aligned
 *   v8_load_f16(p), v8_load_bf16(p)   8 16-bit weights converted exactly to fp32, as half.h does
 *   v8_set1(a), v8_store(p, v)   broadcast; unaligned store
 *   v8_madd(a, b, acc)       acc + a * b, fused or not as the table says
 *   v8_hsum(acc, n, out)     out[i] = ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)) of acc[i]
 *   v8_hsum_rows(acc, n, y, yrs, a)   optional (then define KT_HAVE_HSUM_ROWS): the n = 4 or 8
 *                            sums stored to, or with a added to, y[i * yrs]
 *   madd1(a, b, c)           the scalar tail step, same fusedness
 *   KT_MR, KT_MC             the main block: KT_MR rows x KT_MC columns of accumulators
 *   KT_FR1, KT_FR2           rows per block when only 1 or 2 columns are left
 *   af_t, ai_t, am_t, KT_AW  argmax: KT_AW fp32 lanes, int32 lanes, compare mask
 *   af_load, af_store, ai_load, ai_store, ai_set1, af_gt (ordered: NaN is never greater),
 *   af_blend(a, b, m), ai_blend(a, b, m)   (b where m, else a)
 *
 * Every output element owns one accumulator and runs the canonical order of kern.h, so the block
 * shape an element lands in (which depends on rows and ncols) never changes its bits. The weight
 * type is one more constant of the block: a 16-bit weight is converted as it is loaded and the
 * multiply-adds are the fp32 ones, so the 16-bit kernels read half the bytes and give the bits of
 * the fp32 kernel on the converted weights. */

#include "half.h"

/* Cache-size knobs; an ISA file may define its own before including this. */
#ifndef KT_MAXACC
#define KT_MAXACC 16 /* accumulators per block; every block shape stays within it */
#endif
#define KT_INLINE static inline __attribute__((always_inline))
#ifndef KT_X_TILE_BYTES
#define KT_X_TILE_BYTES (192 * 1024) /* X columns kept in L2 while W passes over them */
#endif
#ifndef KT_W16_BUF_BYTES
#define KT_W16_BUF_BYTES (64 * 1024) /* a 16-bit row block converted once for many columns */
#endif
#ifndef KT_PF_BLOCK_MAX
#define KT_PF_BLOCK_MAX (16 * 1024) /* prefetch next fp32 rows only if they fit L1 beside these */
#endif

#ifndef KT_HAVE_HSUM_ROWS
/* y[i * yrs] = (accumulate ? y[i * yrs] : 0) + reduced acc[i] for i < n: n rows of one column. */
KT_INLINE void v8_hsum_rows(const v8_t *acc, int n, float *y, ptrdiff_t yrs, int accumulate) {
    float h[KT_MAXACC];
    v8_hsum(acc, n, h);
    for (int i = 0; i < n; i++) y[i * yrs] = accumulate ? y[i * yrs] + h[i] : h[i];
}
#endif

/* Weight types; WT below is always one of these as a constant. */
enum { KT_F32, KT_F16, KT_BF16 };
#define KT_WSIZE(wt) ((wt) == KT_F32 ? sizeof(float) : sizeof(uint16_t))

/* 8 weights from element i of w, and one weight, as fp32. */
KT_INLINE v8_t w_load(const int WT, const void *w, size_t i) {
    if (WT == KT_F16) return v8_load_f16((const uint16_t *)w + i);
    if (WT == KT_BF16) return v8_load_bf16((const uint16_t *)w + i);
    return v8_load((const float *)w + i);
}
KT_INLINE float w_one(const int WT, const void *w, size_t i) {
    if (WT == KT_F16) return eng_f16_to_f32(((const uint16_t *)w)[i]);
    if (WT == KT_BF16) return eng_bf16_to_f32(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

/* R rows of k weights (row stride ws elements) to fp32 at out (row stride k). */
KT_INLINE void w_expand(const int WT, float *out, const void *w, size_t ws, int R, int k) {
    for (int r = 0; r < R; r++) {
        int i = 0;
        for (; i + 8 <= k; i += 8) v8_store(out + (size_t)r * k + i, w_load(WT, w, r * ws + i));
        for (; i < k; i++) out[(size_t)r * k + i] = w_one(WT, w, r * ws + i);
    }
}

/* R rows x C columns of dot products, n (a multiple of 8) canonical steps then nt tail products:
 * w: row r at element r * ws of type WT, x: column c at x + c * xs, y: element (r, c) at y + c *
 * ycs + r * yrs. R, C and WT are constants after inlining, so the accumulators live in registers.
 * pf, if not NULL: the next R rows of W, fetched while this block computes (16-bit rows into L2
 * only: they are converted as loaded, so they would crowd L1 for no gain). They may lie past the
 * matrix: a prefetch never faults, and its address is formed as an integer, not a pointer. */
KT_INLINE void blk_body(const int R, const int C, const int WT, float *y, ptrdiff_t yrs,
                        ptrdiff_t ycs, const void *w, size_t ws, const float *x, size_t xs, int n,
                        int nt, int accumulate, const char *pf) {
    const size_t es = KT_WSIZE(WT);
    v8_t acc[KT_MAXACC];
#pragma GCC unroll 16
    for (int j = 0; j < R * C; j++) acc[j] = v8_zero();
    for (int i = 0; i < n; i += 8) {
        if (pf)
            for (size_t p = 0; p < R * 8 * es; p += 64) {
                const void *a = (const void *)((uintptr_t)pf + i * R * es + p);
                if (WT == KT_F32) __builtin_prefetch(a);
                else __builtin_prefetch(a, 0, 1);
            }
        v8_t xv[KT_MAXACC];
#pragma GCC unroll 16
        for (int c = 0; c < C; c++) xv[c] = v8_load(x + c * xs + i);
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            v8_t wv = w_load(WT, w, r * ws + i);
#pragma GCC unroll 16
            for (int c = 0; c < C; c++) acc[c * R + r] = v8_madd(wv, xv[c], acc[c * R + r]);
        }
    }
    if (R % 4 == 0 && nt == 0) { /* no tail: R rows of a column reduced and stored at once */
#pragma GCC unroll 16
        for (int c = 0; c < C; c++) v8_hsum_rows(acc + c * R, R, y + c * ycs, yrs, accumulate);
        return;
    }
    float h[KT_MAXACC];
    v8_hsum(acc, R * C, h);
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
#pragma GCC unroll 16
        for (int c = 0; c < C; c++) {
            const float *xc = x + c * xs + n;
            float s = h[c * R + r];
            for (int j = 0; j < nt; j++) s = madd1(w_one(WT, w, r * ws + n + j), xc[j], s);
            float *o = y + c * ycs + r * yrs;
            *o = accumulate ? *o + s : s;
        }
}

/* R rows against ncols columns (a multiple of C) in blocks of C, out of line so that the inner
 * loop has the registers to itself; the call is paid once per row block. */
typedef void row_fn_t(float *y, ptrdiff_t yrs, ptrdiff_t ycs, const void *w, size_t ws,
                      const float *x, size_t xs, int ncols, int n, int nt, int accumulate,
                      const char *pf);
#define KT_DEFINE_ROW(name, R, C, WT)                                                              \
    static __attribute__((noinline)) void name(                                                    \
        float *y, ptrdiff_t yrs, ptrdiff_t ycs, const void *w, size_t ws, const float *x,          \
        size_t xs, int ncols, int n, int nt, int accumulate, const char *pf) {                     \
        blk_body(R, C, WT, y, yrs, ycs, w, ws, x, xs, n, nt, accumulate, pf);                      \
        for (int c = C; c < ncols; c += C) /* this copy of the loop has no prefetch test */        \
            blk_body(R, C, WT, y + c * ycs, yrs, ycs, w, ws, x + c * xs, xs, n, nt, accumulate,    \
                     NULL);                                                                        \
    }

/* The same for 16-bit rows: converted as loaded when they meet one block of columns (one column
 * streams W, and reads half the bytes); converted once into fp32 and handed to the fp32 row
 * function f32 when they meet more, rather than converted again for every block. Either way the
 * same conversion and multiply-adds, so the same bits. (Out of line again: the buffer in the
 * same frame as the inner loop costs it its registers.) */
#define KT_DEFINE_ROW16(name, R, C, WT, f32)                                                       \
    KT_DEFINE_ROW(name##_cvt, R, C, WT)                                                            \
    static __attribute__((noinline)) void name(                                                    \
        float *y, ptrdiff_t yrs, ptrdiff_t ycs, const void *w, size_t ws, const float *x,          \
        size_t xs, int ncols, int n, int nt, int accumulate, const char *pf) {                     \
        if (ncols > C && R * (size_t)(n + nt) * sizeof(float) <= KT_W16_BUF_BYTES) {               \
            _Alignas(64) float buf[KT_W16_BUF_BYTES / sizeof(float)];                              \
            w_expand(WT, buf, w, ws, R, n + nt);                                                   \
            f32(y, yrs, ycs, buf, (size_t)(n + nt), x, xs, ncols, n, nt, accumulate, NULL);       \
        } else {                                                                                   \
            name##_cvt(y, yrs, ycs, w, ws, x, xs, ncols, n, nt, accumulate, pf);                  \
        }                                                                                          \
    }

/* The row functions of one weight type: full blocks and single rows, for KT_MC, 2 and 1 columns. */
typedef struct {
    row_fn_t *main, *main1, *two, *two1, *one, *one1;
} kt_rows_t;
#define KT_ROW_SET(sfx)                                                                            \
    static const kt_rows_t rows##sfx = {row_main##sfx, row_main1##sfx, row_two##sfx,               \
                                        row_two1##sfx, row_one##sfx,   row_one1##sfx};
KT_DEFINE_ROW(row_main_f32, KT_MR, KT_MC, KT_F32)
KT_DEFINE_ROW(row_main1_f32, 1, KT_MC, KT_F32)
KT_DEFINE_ROW(row_two_f32, KT_FR2, 2, KT_F32)
KT_DEFINE_ROW(row_two1_f32, 1, 2, KT_F32)
KT_DEFINE_ROW(row_one_f32, KT_FR1, 1, KT_F32)
KT_DEFINE_ROW(row_one1_f32, 1, 1, KT_F32)
KT_ROW_SET(_f32)
#define KT_DEFINE_ROWS16(sfx, WT)                                                                  \
    KT_DEFINE_ROW16(row_main##sfx, KT_MR, KT_MC, WT, row_main_f32)                                 \
    KT_DEFINE_ROW16(row_main1##sfx, 1, KT_MC, WT, row_main1_f32)                                   \
    KT_DEFINE_ROW16(row_two##sfx, KT_FR2, 2, WT, row_two_f32)                                      \
    KT_DEFINE_ROW16(row_two1##sfx, 1, 2, WT, row_two1_f32)                                         \
    KT_DEFINE_ROW16(row_one##sfx, KT_FR1, 1, WT, row_one_f32)                                      \
    KT_DEFINE_ROW16(row_one1##sfx, 1, 1, WT, row_one1_f32)                                         \
    KT_ROW_SET(sfx)
KT_DEFINE_ROWS16(_f16, KT_F16)
KT_DEFINE_ROWS16(_bf16, KT_BF16)

/* All rows against ncols columns (a multiple of C): blocks of R rows, each meeting every block of
 * C columns while its rows are in L1; then the leftover rows one at a time. */
KT_INLINE void sweep(const int R, row_fn_t *row, row_fn_t *row1, size_t es, float *y,
                     ptrdiff_t yrs, ptrdiff_t ycs, const char *w, const float *x, int rows,
                     int ncols, int k, int accumulate) {
    int k8 = k & ~7, nt = k - k8;
    int r = 0;
    for (; r + R <= rows; r += R) {
        const char *wr = w + (size_t)r * k * es;
        /* Prefetch the next rows while these compute: fp32 ones when they fit L1 beside them
         * (short rows from DRAM defeat the hardware prefetcher, long ones it handles better
         * alone); 16-bit ones always, into L2, past this call's last block too (there the
         * engine's next row task reads), as the hardware alone streams them at ~80 % of the fp32
         * byte rate (docs/PERF.md). */
        const char *next = (es == 2 || (r + 2 * R <= rows && R * k8 * es <= KT_PF_BLOCK_MAX))
                               ? (const char *)((uintptr_t)wr + (size_t)R * k * es) : NULL;
        row(y + r * yrs, yrs, ycs, wr, k, x, k, ncols, k8, nt, accumulate, next);
    }
    for (; r < rows; r++)
        row1(y + r * yrs, yrs, ycs, w + (size_t)r * k * es, k, x, k, ncols, k8, nt, accumulate,
             NULL);
}

/* W (rows, k) @ X (ncols, k) -> Y for the weight type of rt, es bytes a weight; see kern.h. */
KT_INLINE void gemm_w(const kt_rows_t *rt, size_t es, float *y, ptrdiff_t yrs, ptrdiff_t ycs,
                      const void *wv, const float *x, int rows, int ncols, int k, int accumulate) {
    const char *w = wv;
    /* Columns go in tiles that stay in L2 while all of W passes over them once. */
    int cmain = ncols - ncols % KT_MC;
    int ct = KT_X_TILE_BYTES / ((int)sizeof(float) * (k > 0 ? k : 1)) / KT_MC * KT_MC;
    if (ct < KT_MC) ct = KT_MC;
    for (int c0 = 0; c0 < cmain; c0 += ct) {
        int n = cmain - c0 < ct ? cmain - c0 : ct;
        sweep(KT_MR, rt->main, rt->main1, es, y + c0 * ycs, yrs, ycs, w, x + (size_t)c0 * k, rows,
              n, k, accumulate);
    }
    /* The last ncols % KT_MC columns (all of them when ncols < KT_MC) in taller blocks, so that
     * one column streams W at memory speed. */
    int c = cmain;
    for (; c + 2 <= ncols; c += 2)
        sweep(KT_FR2, rt->two, rt->two1, es, y + c * ycs, yrs, ycs, w, x + (size_t)c * k, rows, 2,
              k, accumulate);
    if (c < ncols)
        sweep(KT_FR1, rt->one, rt->one1, es, y + c * ycs, yrs, ycs, w, x + (size_t)c * k, rows, 1,
              k, accumulate);
}

static void gemm(float *y, ptrdiff_t yrs, ptrdiff_t ycs, const float *w, const float *x, int rows,
                 int ncols, int k, int accumulate) {
    gemm_w(&rows_f32, KT_WSIZE(KT_F32), y, yrs, ycs, w, x, rows, ncols, k, accumulate);
}
static void gemm_f16(float *y, ptrdiff_t yrs, ptrdiff_t ycs, const uint16_t *w, const float *x,
                     int rows, int ncols, int k, int accumulate) {
    gemm_w(&rows_f16, KT_WSIZE(KT_F16), y, yrs, ycs, w, x, rows, ncols, k, accumulate);
}
static void gemm_bf16(float *y, ptrdiff_t yrs, ptrdiff_t ycs, const uint16_t *w, const float *x,
                      int rows, int ncols, int k, int accumulate) {
    gemm_w(&rows_bf16, KT_WSIZE(KT_BF16), y, yrs, ycs, w, x, rows, ncols, k, accumulate);
}

/* 16-bit vectors to fp32, 8 at a time with the table's conversion, then half.h's. */
static void f16_to_f32(float *y, const uint16_t *x, int n) { w_expand(KT_F16, y, x, 0, 1, n); }
static void bf16_to_f32(float *y, const uint16_t *x, int n) { w_expand(KT_BF16, y, x, 0, 1, n); }

static float dot(const float *a, const float *b, int k) {
    float out;
    row_one1_f32(&out, 0, 0, a, 0, b, 0, 1, k & ~7, k & 7, 0, NULL);
    return out;
}

/* Scores of one query against n keys stride floats apart: the keys are the columns of a one-row
 * product, eight per block so the horizontal sums go eight at a time; each is the canonical dot. */
KT_DEFINE_ROW(row_dots, 1, 8, KT_F32)
static void dots(float *out, const float *q, const float *k, ptrdiff_t stride, int n, int len) {
    int main = n & ~7;
    if (main) row_dots(out, 0, 1, q, 0, k, (size_t)stride, main, len & ~7, len & 7, 0, NULL);
    for (int t = main; t < n; t++)
        row_one1_f32(out + t, 0, 1, q, 0, k + t * stride, 0, 1, len & ~7, len & 7, 0, NULL);
}

/* U registers of out (8U elements) stay in registers while all n positions pass: each element
 * still takes its n multiply-adds in position order. */
KT_INLINE void wsum_regs(const int U, float *out, const float *a, const float *v, ptrdiff_t stride,
                         int n) {
    v8_t acc[8];
#pragma GCC unroll 8
    for (int u = 0; u < U; u++) acc[u] = v8_zero();
    for (int t = 0; t < n; t++) {
        v8_t at = v8_set1(a[t]);
#pragma GCC unroll 8
        for (int u = 0; u < U; u++) acc[u] = v8_madd(at, v8_load(v + t * stride + 8 * u), acc[u]);
    }
#pragma GCC unroll 8
    for (int u = 0; u < U; u++) v8_store(out + 8 * u, acc[u]);
}

static void wsum(float *out, const float *a, const float *v, ptrdiff_t stride, int n, int len) {
    int i = 0;
    while (i + 8 <= len) { /* one pass for up to 64 elements: 8 independent multiply-add chains */
        int u = (len - i) / 8 < 8 ? (len - i) / 8 : 8;
        switch (u) {
        case 8: wsum_regs(8, out + i, a, v + i, stride, n); break;
        case 7: wsum_regs(7, out + i, a, v + i, stride, n); break;
        case 6: wsum_regs(6, out + i, a, v + i, stride, n); break;
        case 5: wsum_regs(5, out + i, a, v + i, stride, n); break;
        case 4: wsum_regs(4, out + i, a, v + i, stride, n); break;
        case 3: wsum_regs(3, out + i, a, v + i, stride, n); break;
        case 2: wsum_regs(2, out + i, a, v + i, stride, n); break;
        default: wsum_regs(1, out + i, a, v + i, stride, n); break;
        }
        i += 8 * u;
    }
    for (; i < len; i++) {
        float s = 0.0f;
        for (int t = 0; t < n; t++) s = madd1(a[t], v[t * stride + i], s);
        out[i] = s;
    }
}

/* G registers of lanes starting at column c walk all rows, keeping the running max and its row;
 * G independent compare-blend chains hide their latency. A strict ordered compare keeps the lowest
 * row on ties and skips NaN. */
KT_INLINE void argmax_lanes(const int G, const float *tile, int rows, int ncols, int c, int row0,
                            float *best, int32_t *idx) {
    af_t b[4];
    ai_t ix[4];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
        b[g] = af_load(best + c + g * KT_AW), ix[g] = ai_load(idx + c + g * KT_AW);
    for (int r = 0; r < rows; r++) {
        ai_t id = ai_set1(row0 + r);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
            af_t v = af_load(tile + (size_t)r * ncols + c + g * KT_AW);
            am_t m = af_gt(v, b[g]);
            b[g] = af_blend(b[g], v, m);
            ix[g] = ai_blend(ix[g], id, m);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
        af_store(best + c + g * KT_AW, b[g]), ai_store(idx + c + g * KT_AW, ix[g]);
}

/* tile (rows, ncols) channel-major; see kern.h. */
static void argmax(const float *tile, int rows, int ncols, int row0, float *best, int32_t *idx) {
    int c = 0;
    for (; c + 4 * KT_AW <= ncols; c += 4 * KT_AW)
        argmax_lanes(4, tile, rows, ncols, c, row0, best, idx);
    for (; c + KT_AW <= ncols; c += KT_AW) argmax_lanes(1, tile, rows, ncols, c, row0, best, idx);
    for (; c < ncols; c++)
        for (int r = 0; r < rows; r++) {
            float v = tile[(size_t)r * ncols + c];
            if (v > best[c]) {
                best[c] = v;
                idx[c] = row0 + r;
            }
        }
}
