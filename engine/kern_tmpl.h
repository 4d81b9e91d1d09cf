/* The lane GEMM, dot and argmax written once over an 8-wide "partial sums" vector; included by
 * kern_avx2.c, kern_sse.c and kern_neon.c after they define (all static inline):
 *
 *   v8_t                        8 fp32 partial sums s0..s7 (one ymm, or two 4-wide registers)
 *   v8_zero(), v8_load(p)       p need not be aligned
 *   v8_set1(a), v8_store(p, v)  broadcast; unaligned store
 *   v8_madd(a, b, acc)          acc + a * b, fused or not as the table says
 *   v8_hsum(acc, n, out)        out[i] = ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)) of
 * acc[i] madd1(a, b, c)              the scalar tail step, same fusedness KT_MR, KT_MC the main
 * block: KT_MR rows x KT_MC columns of accumulators KT_FR1, KT_FR2              rows per block when
 * only 1 or 2 columns are left af_t, ai_t, am_t, KT_AW     argmax: KT_AW fp32 lanes, int32 lanes,
 * compare mask af_load, af_store, ai_load, ai_store, ai_set1, af_gt (ordered: NaN is never
 * greater), af_blend(a, b, m), ai_blend(a, b, m)   (b where m, else a)
 *
 * Every output element owns one accumulator and runs the canonical order of kern.h, so the block
 * shape an element lands in (which depends on rows and ncols) never changes its bits. */

#ifndef KT_MAXACC
#define KT_MAXACC 16 /* accumulators per block; every block shape stays within it */
#endif
#define KT_INLINE static inline __attribute__((always_inline))
#define KT_X_TILE_BYTES (192 * 1024) /* X columns kept in L2 while W passes over them */

/* R rows x C columns of dot products; w: row r at w + r * k, x: column c at x + c * k,
 * y: element (r, c) at y + c * ycs + r * yrs. R and C are constants after inlining, so the
 * accumulators live in registers. */
KT_INLINE void blk(const int R, const int C, float *y, ptrdiff_t yrs, ptrdiff_t ycs, const float *w,
                   const float *x, int k, int accumulate) {
    v8_t acc[KT_MAXACC];
#pragma GCC unroll 16
    for (int j = 0; j < R * C; j++) acc[j] = v8_zero();
    int i = 0;
    for (; i + 8 <= k; i += 8) {
        v8_t xv[KT_MAXACC];
#pragma GCC unroll 16
        for (int c = 0; c < C; c++) xv[c] = v8_load(x + (size_t)c * k + i);
#pragma GCC unroll 16
        for (int r = 0; r < R; r++) {
            v8_t wv = v8_load(w + (size_t)r * k + i);
#pragma GCC unroll 16
            for (int c = 0; c < C; c++) acc[r * C + c] = v8_madd(wv, xv[c], acc[r * C + c]);
        }
    }
    float h[KT_MAXACC];
    v8_hsum(acc, R * C, h);
#pragma GCC unroll 16
    for (int r = 0; r < R; r++)
#pragma GCC unroll 16
        for (int c = 0; c < C; c++) {
            const float *wr = w + (size_t)r * k, *xc = x + (size_t)c * k;
            float s = h[r * C + c];
            for (int j = i; j < k; j++) s = madd1(wr[j], xc[j], s);
            float *o = y + c * ycs + r * yrs;
            *o = accumulate ? *o + s : s;
        }
}

/* All rows against ncols columns (a multiple of C): blocks of R rows, each meeting every block of
 * C columns while its rows are in L1; then the leftover rows one at a time. */
KT_INLINE void sweep(const int R, const int C, float *y, ptrdiff_t yrs, ptrdiff_t ycs,
                     const float *w, const float *x, int rows, int ncols, int k, int accumulate) {
    int r = 0;
    for (; r + R <= rows; r += R)
        for (int c = 0; c < ncols; c += C)
            blk(R, C, y + c * ycs + r * yrs, yrs, ycs, w + (size_t)r * k, x + (size_t)c * k, k,
                accumulate);
    for (; r < rows; r++)
        for (int c = 0; c < ncols; c += C)
            blk(1, C, y + c * ycs + r * yrs, yrs, ycs, w + (size_t)r * k, x + (size_t)c * k, k,
                accumulate);
}

/* W (rows, k) @ X (ncols, k) -> Y; see kern.h. */
static void gemm(float *y, ptrdiff_t yrs, ptrdiff_t ycs, const float *w, const float *x, int rows,
                 int ncols, int k, int accumulate) {
    /* Columns go in tiles that stay in L2 while all of W passes over them once. */
    int cmain = ncols - ncols % KT_MC;
    int ct = KT_X_TILE_BYTES / ((int)sizeof(float) * (k > 0 ? k : 1)) / KT_MC * KT_MC;
    if (ct < KT_MC) ct = KT_MC;
    for (int c0 = 0; c0 < cmain; c0 += ct) {
        int n = cmain - c0 < ct ? cmain - c0 : ct;
        sweep(KT_MR, KT_MC, y + c0 * ycs, yrs, ycs, w, x + (size_t)c0 * k, rows, n, k, accumulate);
    }
    /* The last ncols % KT_MC columns (all of them when ncols < KT_MC) in taller blocks, so that
     * one column streams W at memory speed. */
    int c = cmain;
    for (; c + 2 <= ncols; c += 2)
        sweep(KT_FR2, 2, y + c * ycs, yrs, ycs, w, x + (size_t)c * k, rows, 2, k, accumulate);
    if (c < ncols)
        sweep(KT_FR1, 1, y + c * ycs, yrs, ycs, w, x + (size_t)c * k, rows, 1, k, accumulate);
}

static float dot(const float *a, const float *b, int k) {
    float out;
    blk(1, 1, &out, 0, 0, a, b, k, 0);
    return out;
}

/* tile (rows, ncols) channel-major; see kern.h. One register of lanes walks all rows, keeping the
 * running max and its row; a strict ordered compare keeps the lowest row on ties and skips NaN. */
/* Scores of one query against n keys stride floats apart, each the canonical dot. */
static void dots(float *out, const float *q, const float *k, ptrdiff_t stride, int n, int len) {
    for (int t = 0; t < n; t++) blk(1, 1, out + t, 0, 0, q, k + t * stride, len, 0);
}

/* Elementwise, so vectorising over i keeps each element's single multiply-add. */
static void axpy(float *y, float a, const float *x, int len) {
    v8_t av = v8_set1(a);
    int i = 0;
    for (; i + 8 <= len; i += 8) v8_store(y + i, v8_madd(av, v8_load(x + i), v8_load(y + i)));
    for (; i < len; i++) y[i] = madd1(a, x[i], y[i]);
}

static void argmax(const float *tile, int rows, int ncols, int row0, float *best, int32_t *idx) {
    int c = 0;
    for (; c + KT_AW <= ncols; c += KT_AW) {
        af_t b = af_load(best + c);
        ai_t ix = ai_load(idx + c);
        for (int r = 0; r < rows; r++) {
            af_t v = af_load(tile + (size_t)r * ncols + c);
            am_t m = af_gt(v, b);
            b = af_blend(b, v, m);
            ix = ai_blend(ix, ai_set1(row0 + r), m);
        }
        af_store(best + c, b);
        ai_store(idx + c, ix);
    }
    for (; c < ncols; c++)
        for (int r = 0; r < rows; r++) {
            float v = tile[(size_t)r * ncols + c];
            if (v > best[c]) {
                best[c] = v;
                idx[c] = row0 + r;
            }
        }
}
