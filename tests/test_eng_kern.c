/* Every kernel table this CPU runs against the scalar reference of the same fusedness, bit for bit:
 * gemm over random shapes, both output layouts, accumulate on and off, unaligned operands; the
 * F16/BF16 gemms against the same table's fp32 gemm of the converted weights, and the conversions
 * over all 65536 inputs; dot
 * against a gemm element; argmax with ties, -inf and NaN; SwiGLU equal across tables and within
 * vexp.h's error bound of a double-precision silu(a) * b, and vexp's accuracy against exp. The
 * fused reference is also checked
 * against OpenBLAS within fp32 tolerance (build with -DLANES_NO_OPENBLAS to skip, e.g. when
 * cross-compiling). */
#include "kern/kern.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LANES_NO_OPENBLAS
#include <cblas.h>
#endif

#include "kern/half.h"
#include "test_kern.h"
#include "test_rng.h"
#include "test_util.h"
#include "kern/vexp.h"

/* Spread over a few binades so that rounding differences between orders would show. */
static float rng_val(void) { return ldexpf(rng_unit(), rng_int(-4, 4)); }

static float *alloc_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    ASSERT(p != NULL);
    return p;
}


typedef struct {
    int rows, ncols, k, accumulate, channel_major;
} gemm_case_t;

/* Output buffer with a guard band around it; layout per case. */
typedef struct {
    ptrdiff_t yrs, ycs;
    size_t n; /* elements addressed by the layout, plus padding */
} layout_t;

static layout_t layout_of(const gemm_case_t *gc) {
    layout_t l;
    if (gc->channel_major) {
        l.yrs = gc->ncols, l.ycs = 1;
        l.n = (size_t)gc->rows * gc->ncols;
    } else { /* a leading dimension with slack, as the engine's activation buffers have */
        ptrdiff_t ldy = gc->rows + (gc->rows % 3);
        l.yrs = 1, l.ycs = ldy;
        l.n = (size_t)ldy * gc->ncols;
    }
    return l;
}

static void check_gemm_case(const gemm_case_t *gc) {
    int rows = gc->rows, ncols = gc->ncols, k = gc->k;
    layout_t l = layout_of(gc);
    /* +1: operands start one float past an aligned allocation, so SIMD loads are unaligned. */
    float *wbuf = alloc_floats((size_t)rows * k + 1), *xbuf = alloc_floats((size_t)ncols * k + 1);
    float *w = wbuf + 1, *x = xbuf + 1;
    for (size_t i = 0; i < (size_t)rows * k; i++) w[i] = rng_val();
    for (size_t i = 0; i < (size_t)ncols * k; i++) x[i] = rng_val();
    float *y0 = alloc_floats(l.n), *yref[2], *y = alloc_floats(l.n);
    for (size_t i = 0; i < l.n; i++) y0[i] = rng_val();
    for (int f = 0; f < 2; f++) {
        yref[f] = alloc_floats(l.n);
        memcpy(yref[f], y0, l.n * sizeof *y0);
        const eng_kern_ops_t *ref = f ? tables[0] : tables[1];
        ref->gemm(yref[f], l.yrs, l.ycs, w, x, rows, ncols, k, gc->accumulate);
    }
    for (int t = 0; t < ntables; t++) {
        const eng_kern_ops_t *ops = tables[t];
        if (!ops) continue;
        memcpy(y, y0, l.n * sizeof *y0);
        ops->gemm(y, l.yrs, l.ycs, w, x, rows, ncols, k, gc->accumulate);
        const float *want = yref[ops->fused ? 1 : 0];
        for (size_t i = 0; i < l.n; i++) {
            if (bits(y[i]) == bits(want[i])) continue;
            fprintf(stderr, "%s gemm rows %d ncols %d k %d acc %d %s: y[%zu] = %a, reference %a\n",
                    ops->name, rows, ncols, k, gc->accumulate,
                    gc->channel_major ? "channel-major" : "lane-major", i, y[i], want[i]);
            exit(1);
        }
        /* dot is the same reduction as one gemm element */
        int r = rng_int(0, rows - 1), c = rng_int(0, ncols - 1);
        float d = ops->dot(w + (size_t)r * k, x + (size_t)c * k, k);
        float e = tables[ops->fused ? 0 : 1]->dot(w + (size_t)r * k, x + (size_t)c * k, k);
        if (bits(d) != bits(e)) {
            fprintf(stderr, "%s dot k %d row %d col %d: %a, reference %a\n", ops->name, k, r, c, d,
                    e);
            exit(1);
        }
        if (!gc->accumulate && bits(d) != bits(y[c * l.ycs + r * l.yrs])) {
            fprintf(stderr, "%s dot k %d row %d col %d: %a, gemm element %a\n", ops->name, k, r, c,
                    d, y[c * l.ycs + r * l.yrs]);
            exit(1);
        }
    }
#ifndef LANES_NO_OPENBLAS
    /* The fused reference against OpenBLAS: |a - b| <= 1e-5 * sum |w x| + 1e-6 per element. */
    float *yb = alloc_floats((size_t)rows * ncols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, ncols, k, 1.0f, w, k, x, k, 0.0f, yb,
                ncols);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ncols; c++) {
            double mag = 0;
            for (int i = 0; i < k; i++)
                mag += fabs((double)w[(size_t)r * k + i] * x[(size_t)c * k + i]);
            float a = yref[1][c * l.ycs + r * l.yrs];
            float b = yb[(size_t)r * ncols + c] + (gc->accumulate ? y0[c * l.ycs + r * l.yrs] : 0);
            double tol =
                1e-5 * (mag + (gc->accumulate ? fabs(y0[c * l.ycs + r * l.yrs]) : 0)) + 1e-6;
            if (!(fabs((double)a - b) <= tol)) {
                fprintf(stderr,
                        "scalar vs openblas rows %d ncols %d k %d: (%d,%d) %a vs %a, tol %g\n",
                        rows, ncols, k, r, c, a, b, tol);
                exit(1);
            }
        }
    free(yb);
#endif
    free(wbuf), free(xbuf), free(y0), free(y), free(yref[0]), free(yref[1]);
}

static void test_gemm(void) {
    /* Model shapes (rows x k) with a few column counts, kept cheap for the scalar reference. */
    static const int model[][2] = {{288, 288}, {768, 288}, {288, 768}, {64, 64},
                                   {172, 64},  {64, 172},  {32, 64},   {768, 768}};
    static const int model_cols[] = {1, 2, 3, 4, 5, 7, 8, 13};
    int ncase = 0;
    for (size_t s = 0; s < sizeof model / sizeof *model; s++) {
        gemm_case_t gc = {model[s][0], model_cols[s], model[s][1], (int)s & 1, (int)(s >> 1) & 1};
        check_gemm_case(&gc), ncase++;
    }
    /* Random shapes: every ncols 1..130 once, rows and k across block and tail boundaries. */
    for (int ncols = 1; ncols <= 130; ncols++) {
        gemm_case_t gc = {rng_int(1, 300), ncols, rng_int(1, 800), rng_int(0, 1), rng_int(0, 1)};
        if (ncols % 2) gc.k = (gc.k + 7) & ~7; /* half without a k tail: stored differently */
        /* keep the scalar reference cheap: at most ~2M multiply-adds per case */
        while ((double)gc.rows * gc.k * gc.ncols > 2e6) {
            if (gc.rows > 8)
                gc.rows /= 2;
            else
                gc.k /= 2;
        }
        check_gemm_case(&gc), ncase++;
    }
    for (int i = 0; i < 200; i++) { /* small shapes: every block remainder and k tail */
        gemm_case_t gc = {rng_int(1, 20), rng_int(1, 14), rng_int(1, 40), rng_int(0, 1),
                          rng_int(0, 1)};
        if (i % 2) gc.k = (gc.k + 7) & ~7;
        check_gemm_case(&gc), ncase++;
    }
    printf("gemm/dot: %d cases ok\n", ncase);
}

/* F16/BF16 half.h conversions against an independent computation over all 65536 inputs, and every
 * table's conversion op against half.h bit for bit (NaNs too), at odd offsets and lengths. */
static void test_half_convert(void) {
    for (uint32_t u = 0; u < 65536; u++) {
        uint16_t h = (uint16_t)u;
        int e = (h >> 10) & 31, m = h & 1023, neg = h >> 15;
        float got = eng_f16_to_f32(h);
        if (e == 31 && m) { /* NaN: quiet, sign and payload kept (what F16C and NEON do) */
            ASSERT(isnan(got) && (signbit(got) != 0) == neg);
            ASSERT((bits(got) & 0x00400000u) && (bits(got) & 0x003fe000u) >> 13 == (m & 0x1ffu));
        } else {
            double v = e == 31 ? INFINITY : ldexp(e ? 1024 + m : m, (e ? e : 1) - 25);
            float want = (float)(neg ? -v : v);
            if (bits(got) != bits(want)) {
                fprintf(stderr, "f16 %04x: %a, want %a\n", (unsigned)h, got, want);
                exit(1);
            }
        }
        uint32_t b = u << 16;
        float bf;
        memcpy(&bf, &b, sizeof bf);
        ASSERT(bits(eng_bf16_to_f32(h)) == bits(bf));
    }
    uint16_t *all = malloc(65537 * sizeof *all);
    float *want = alloc_floats(65537), *got = alloc_floats(65537);
    ASSERT(all != NULL);
    for (int bf = 0; bf < 2; bf++) {
        for (int i = 0; i < 65537; i++) all[i] = (uint16_t)(i * 40503u); /* all, permuted */
        for (int i = 0; i < 65537; i++)
            want[i] = bf ? eng_bf16_to_f32(all[i]) : eng_f16_to_f32(all[i]);
        for (int t = 0; t < ntables; t++) {
            if (!tables[t]) continue;
            void (*cvt)(float *, const uint16_t *, int) =
                bf ? tables[t]->bf16_to_f32 : tables[t]->f16_to_f32;
            for (int off = 0; off < 2; off++) {
                int n = 65537 - off - 3 * off; /* both lengths leave a tail */
                memset(got, 0, 65537 * sizeof *got);
                cvt(got + off, all + off, n);
                for (int i = off; i < off + n; i++)
                    if (bits(got[i]) != bits(want[i])) {
                        fprintf(stderr, "%s %s_to_f32(%04x) = %a (%08x), half.h %a (%08x)\n",
                                tables[t]->name, bf ? "bf16" : "f16", (unsigned)all[i], got[i],
                                bits(got[i]), want[i], bits(want[i]));
                        exit(1);
                    }
            }
        }
    }
    free(all), free(want), free(got);
    printf("f16/bf16 conversion: 65536 inputs ok\n");
}

/* A random finite 16-bit weight: mostly within a few binades of 1 (so that a different order of
 * the multiply-adds would round differently), sometimes a subnormal, a zero or any finite value
 * of the type short of overflowing the sums. */
/* round_f16/round_bf16 of every table against half.h's conversions, on values around every
 * rounding edge: all exponents (F16 overflow and subnormals, fp32 subnormals), ties, inf, NaN. */
static void test_round16(void) {
    enum { N = 1 << 16 };
    float *x = alloc_floats(N), *want = alloc_floats(N), *got = alloc_floats(N);
    for (int i = 0; i < N; i++) {
        uint32_t u = (uint32_t)rng_next();
        if (i % 4 == 1) u = (u & 0xffff0000u) | 0x8000u | (u & 0x10000u);  /* BF16 ties */
        if (i % 4 == 2) u = (u & 0xffffe000u) | 0x1000u;                     /* F16 ties */
        if (i % 8 == 3) u = (u & 0x807fffffu) | (uint32_t)rng_int(96, 145) << 23;  /* F16 range */
        memcpy(&x[i], &u, sizeof u);
    }
    x[0] = INFINITY, x[1] = -INFINITY, x[2] = NAN, x[3] = 65520.0f, x[4] = 65519.0f, x[5] = 0x1p-25f;
    for (int bf = 0; bf < 2; bf++) {
        (bf ? eng__round_bf16_ref : eng__round_f16_ref)(want, x, N);
        for (int t = 0; t < ntables; t++) {
            if (!tables[t]) continue;
            int n = N - rng_int(0, 7);  /* a tail too */
            (bf ? tables[t]->round_bf16 : tables[t]->round_f16)(got, x, n);
            for (int i = 0; i < n; i++)
                if (bits(got[i]) != bits(want[i])) {
                    fprintf(stderr, "%s round_%s(%a): %a vs %a\n", tables[t]->name,
                            bf ? "bf16" : "f16", x[i], got[i], want[i]);
                    exit(1);
                }
        }
    }
    free(x), free(want), free(got);
    printf("round16: ok\n");
}

static uint16_t rng_w16(int bf) {
    int r = rng_int(0, 15), neg = rng_int(0, 1);
    int mbits = bf ? 7 : 10, bias = bf ? 127 : 15, emax = bf ? bias + 40 : 30;
    int m = rng_int(0, (1 << mbits) - 1);
    int e = r == 0 ? 0 : r == 1 ? rng_int(1, emax) : rng_int(bias - 4, bias + 4);
    if (r == 2) m = 0, e = 0; /* +-0 */
    return (uint16_t)(neg << 15 | e << mbits | m);
}

/* The 16-bit GEMMs on every table: equal bit for bit to (a) the same table's fp32 gemm of the
 * converted weights and (b) the scalar reference's 16-bit gemm of the same fusedness. */
static void check_gemm16_case(const gemm_case_t *gc, int bf) {
    int rows = gc->rows, ncols = gc->ncols, k = gc->k;
    layout_t l = layout_of(gc);
    size_t nw = (size_t)rows * k;
    /* +1: 16-bit weights 2 bytes and fp32 operands 4 bytes past an aligned allocation. */
    uint16_t *wbuf = malloc((nw + 1) * sizeof *wbuf), *w = wbuf + 1;
    float *wfbuf = alloc_floats(nw + 1), *wf = wfbuf + 1;
    float *xbuf = alloc_floats((size_t)ncols * k + 1), *x = xbuf + 1;
    ASSERT(wbuf != NULL);
    for (size_t i = 0; i < nw; i++) {
        w[i] = rng_w16(bf);
        wf[i] = bf ? eng_bf16_to_f32(w[i]) : eng_f16_to_f32(w[i]);
    }
    for (size_t i = 0; i < (size_t)ncols * k; i++) x[i] = rng_val();
    float *y0 = alloc_floats(l.n), *y = alloc_floats(l.n), *y32 = alloc_floats(l.n);
    float *yref[2];
    for (size_t i = 0; i < l.n; i++) y0[i] = rng_val();
    for (int f = 0; f < 2; f++) {
        const eng_kern_ops_t *ref = f ? tables[0] : tables[1];
        yref[f] = alloc_floats(l.n);
        memcpy(yref[f], y0, l.n * sizeof *y0);
        (bf ? ref->gemm_bf16 : ref->gemm_f16)(yref[f], l.yrs, l.ycs, w, x, rows, ncols, k,
                                              gc->accumulate);
    }
    for (int t = 0; t < ntables; t++) {
        const eng_kern_ops_t *ops = tables[t];
        if (!ops) continue;
        memcpy(y, y0, l.n * sizeof *y0);
        memcpy(y32, y0, l.n * sizeof *y0);
        (bf ? ops->gemm_bf16 : ops->gemm_f16)(y, l.yrs, l.ycs, w, x, rows, ncols, k,
                                              gc->accumulate);
        ops->gemm(y32, l.yrs, l.ycs, wf, x, rows, ncols, k, gc->accumulate);
        const float *want = yref[ops->fused ? 1 : 0];
        for (size_t i = 0; i < l.n; i++) {
            if (bits(y[i]) == bits(want[i]) && bits(y[i]) == bits(y32[i])) continue;
            fprintf(stderr,
                    "%s gemm_%s rows %d ncols %d k %d acc %d %s: y[%zu] = %a, fp32 gemm of the "
                    "converted weights %a, reference %a\n",
                    ops->name, bf ? "bf16" : "f16", rows, ncols, k, gc->accumulate,
                    gc->channel_major ? "channel-major" : "lane-major", i, y[i], y32[i], want[i]);
            exit(1);
        }
    }
    free(wbuf), free(wfbuf), free(xbuf), free(y0), free(y), free(y32), free(yref[0]),
        free(yref[1]);
}

static void test_gemm16(void) {
    int ncase = 0;
    for (int bf = 0; bf < 2; bf++) {
        static const int cols[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 128};
        for (size_t ci = 0; ci < sizeof cols / sizeof *cols; ci++)
            for (int rep = 0; rep < 12; rep++) {
                gemm_case_t gc = {rng_int(1, 70), cols[ci], rng_int(1, 300), rng_int(0, 1),
                                  rng_int(0, 1)};
                if (rep % 3 == 0) gc.k = (gc.k + 7) & ~7; /* some without a k tail */
                if (rep == 1) gc.k = rng_int(1, 7);      /* only a tail */
                while ((double)gc.rows * gc.k * gc.ncols > 1e6) gc.rows = (gc.rows + 1) / 2;
                check_gemm16_case(&gc, bf), ncase++;
            }
        /* a model shape: 288 x 288 (15m's wq), one column and a batch; and rows too long for
         * kern_tmpl.h's conversion buffer (KT_W16_BUF_BYTES), so converted as loaded although
         * they meet several blocks of columns */
        gemm_case_t one = {288, 1, 288, 0, 0}, many = {288, 13, 288, 1, 1};
        gemm_case_t longk = {9, 7, 8192 + 8 * rng_int(1, 4) + rng_int(0, 7), 0, 0};
        check_gemm16_case(&one, bf), check_gemm16_case(&many, bf), ncase += 2;
        check_gemm16_case(&longk, bf), ncase++;
    }
    printf("gemm_f16/gemm_bf16: %d cases ok\n", ncase);
}

typedef enum { FILL_RANDOM, FILL_TIES, FILL_NEG_INF, FILL_NAN, NFILL } fill_t;

static void check_argmax_case(int rows, int ncols, fill_t fill) {
    size_t n = (size_t)rows * ncols;
    float *tile = alloc_floats(n);
    for (size_t i = 0; i < n; i++)
        tile[i] = fill == FILL_TIES ? (float)rng_int(0, 5) : rng_val(); /* ties: few values */
    if (fill == FILL_TIES) /* plant the max in several rows of one column: lowest row must win */
        for (int j = 0; j < 4; j++) tile[(size_t)rng_int(0, rows - 1) * ncols + ncols / 2] = 9.0f;
    if (fill == FILL_NEG_INF) /* whole -inf rows, and one column that is -inf throughout */
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < ncols; c++)
                if (r % 3 == 0 || c == ncols - 1) tile[(size_t)r * ncols + c] = -INFINITY;
    if (fill == FILL_NAN) { /* scattered NaN (first element included) and one all-NaN column */
        for (size_t i = 0; i < n; i += (size_t)rng_int(1, 7)) tile[i] = NAN;
        tile[0] = NAN;
        for (int r = 0; r < rows; r++) tile[(size_t)r * ncols + ncols / 3] = NAN;
    }
    float *best = alloc_floats(ncols), *rbest = alloc_floats(ncols);
    int32_t *idx = malloc(ncols * sizeof *idx), *ridx = malloc(ncols * sizeof *ridx);
    ASSERT(idx && ridx);
    /* Two calls over halves of the tile, as the engine walks vocab tiles with a running row0. */
    int half = rows / 2, row0 = rng_int(0, 1000);
    for (int i = 0; i < ncols; i++) rbest[i] = -INFINITY, ridx[i] = 0;
    tables[0]->argmax(tile, half, ncols, row0, rbest, ridx);
    tables[0]->argmax(tile + (size_t)half * ncols, rows - half, ncols, row0 + half, rbest, ridx);
    if (fill == FILL_NAN) {
        ASSERT_EQ(ridx[ncols / 3], 0);
        ASSERT(rbest[ncols / 3] == -INFINITY);
    }
    for (int t = 2; t < ntables; t++) { /* the scalar tables share one argmax */
        const eng_kern_ops_t *ops = tables[t];
        if (!ops) continue;
        for (int i = 0; i < ncols; i++) best[i] = -INFINITY, idx[i] = 0;
        ops->argmax(tile, half, ncols, row0, best, idx);
        ops->argmax(tile + (size_t)half * ncols, rows - half, ncols, row0 + half, best, idx);
        for (int c = 0; c < ncols; c++)
            if (idx[c] != ridx[c] || bits(best[c]) != bits(rbest[c])) {
                fprintf(stderr,
                        "%s argmax rows %d ncols %d fill %d col %d: %d %a, reference %d %a\n",
                        ops->name, rows, ncols, (int)fill, c, idx[c], best[c], ridx[c], rbest[c]);
                exit(1);
            }
    }
    free(tile), free(best), free(rbest), free(idx), free(ridx);
}

static void test_argmax(void) {
    int ncase = 0;
    for (int ncols = 1; ncols <= 128; ncols++) {
        int rows = rng_int(1, 600);
        check_argmax_case(rows, ncols, (fill_t)(ncols % NFILL)), ncase++;
    }
    for (fill_t f = 0; f < NFILL; f++) { /* a whole vocabulary at a few batch sizes */
        check_argmax_case(32000, 8 + 5 * (int)f, f), ncase++;
        check_argmax_case(32000, 1 + (int)f, f), ncase++;
    }
    printf("argmax: %d cases ok\n", ncase);
}

/* Attention ops: scores of one query against keys at a stride, and the weighted sum of values; each
 * table equals the scalar reference of its fusedness bit for bit, and a score equals dot(). */
static void test_attention(void) {
    int cases = 0;
    for (int it = 0; it < 200; it++) {
        int len = rng_int(1, 130), n = rng_int(1, 300), stride = len + rng_int(0, 40);
        float *q = alloc_floats((size_t)len), *k = alloc_floats((size_t)n * stride);
        float *want = alloc_floats((size_t)n), *got = alloc_floats((size_t)n);
        float *owant = alloc_floats((size_t)len), *ogot = alloc_floats((size_t)len);
        for (int i = 0; i < len; i++) q[i] = rng_val();
        for (size_t i = 0; i < (size_t)n * stride; i++) k[i] = rng_val();
        for (int t = 0; t < ntables; t++) {
            if (!tables[t]) continue;
            const eng_kern_ops_t *ref = tables[t]->fused ? tables[0] : tables[1];
            ref->dots(want, q, k, stride, n, len);
            tables[t]->dots(got, q, k, stride, n, len);
            for (int i = 0; i < n; i++) {
                if (bits(got[i]) != bits(want[i]) ||
                    bits(want[i]) != bits(ref->dot(q, k + (size_t)i * stride, len))) {
                    fprintf(stderr, "%s dots: len %d n %d stride %d: [%d] %a vs %a\n",
                            tables[t]->name, len, n, stride, i, got[i], want[i]);
                    exit(1);
                }
            }
            /* The scores double as weights and the keys as values. */
            ref->wsum(owant, want, k, stride, n, len);
            tables[t]->wsum(ogot, want, k, stride, n, len);
            for (int i = 0; i < len; i++)
                if (bits(ogot[i]) != bits(owant[i])) {
                    fprintf(stderr, "%s wsum: len %d n %d: [%d] %a vs %a\n", tables[t]->name, len,
                            n, i, ogot[i], owant[i]);
                    exit(1);
                }
            cases++;
        }
        free(q), free(k), free(want), free(got), free(owant), free(ogot);
    }
    printf("attention ops: %d cases ok\n", cases);
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Inputs where exp, silu and their clamps have edges; NaNs of both signs, quiet and signalling,
 * with payloads (every table must still give the one NaN). */
static const uint32_t special_bits[] = {
    0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x807fffff, /* 0, denormals */
    0x00800000, 0x3f800000, 0xbf800000, 0x42ae0000, 0xc2ae0000,             /* 1, +-87 */
    0x42b00000, 0xc2b00000, 0x42b00001, 0xc2b00001, 0x42b10000, 0xc2b10000, /* +-88, +-88.5 */
    0xc2af0000, 0x42af0000, 0x7149f2ca, 0xf149f2ca, 0x7f7fffff, 0xff7fffff, /* 87.5, 1e30, max */
    0x7f800000, 0xff800000,                                                 /* inf */
    0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fc12345, 0xffa00000, /* NaN */
};
enum { NSPECIAL = sizeof special_bits / sizeof *special_bits };

/* x's error against exp in ulps of the float result: the double exp is exact enough to judge. */
static double exp_ulps(float x) {
    double want = exp((double)x);
    int e;
    frexp(want, &e);
    return fabs((double)eng_vexpf(x) - want) / ldexp(1.0, e - 24);
}

/* vexp.h's claims: within 1 ulp of exp over [-87, 88] (every 509th float, and every float near
 * the points where round(x / ln 2) steps, where the reduced argument is largest), the clamp
 * outside it, and the one NaN. */
static void test_vexp(void) {
    double worst = 0;
    float worst_x = 0;
    long n = 0;
    for (int sign = 0; sign < 2; sign++) {
        uint32_t last = sign ? 0x42ae0000u : 0x42b00000u; /* 87, 88 */
        for (uint32_t u = 0;; u += 509) {
            if (u > last) u = last; /* the end point too */
            float x = from_bits(u | (uint32_t)sign << 31);
            double err = exp_ulps(x);
            if (err > worst) worst = err, worst_x = x;
            n++;
            if (u == last) break;
        }
    }
    for (int k = -126; k <= 127; k++) {
        float mid = (float)((k + 0.5) * 0.69314718055994531);
        uint32_t m = bits(mid);
        for (uint32_t u = m - 200; u <= m + 200; u++) {
            float x = from_bits(u);
            if (!(x >= -87.0f && x <= 88.0f)) continue;
            double err = exp_ulps(x);
            if (err > worst) worst = err, worst_x = x;
            n++;
        }
    }
    printf("vexp: %ld points in [-87, 88], worst %.3f ulp at %a\n", n, worst, worst_x);
    if (!(worst <= 1.0)) {
        fprintf(stderr, "vexp: %.3f ulp at %a (%.9g): more than the 1 ulp vexp.h claims\n", worst,
                worst_x, worst_x);
        exit(1);
    }
    uint32_t lo = bits(eng_vexpf(-87.0f)), hi = bits(eng_vexpf(88.0f));
    ASSERT(fabs(exp(-87.0) / eng_vexpf(-87.0f) - 1) < 1e-6 && isnormal(eng_vexpf(-87.0f)));
    for (int i = 0; i < NSPECIAL; i++) {
        float x = from_bits(special_bits[i]);
        uint32_t got = bits(eng_vexpf(x));
        uint32_t want = isnan(x) ? ENG_NAN_BITS : x < -87.0f ? lo : x > 88.0f ? hi : got;
        if (got != want) {
            fprintf(stderr, "vexp(%a) = %a, want %a\n", x, from_bits(got), from_bits(want));
            exit(1);
        }
    }
}

/* One SwiGLU result against silu(a) * b in double. The bound: vexp's 1 ulp (2^-23 relative)
 * carries through 1 + e at most unchanged, then three roundings of 2^-24 each (the sum, the
 * quotient, the product): 2.5 * 2^-23 relative; a result in the denormals adds half a denormal
 * per rounding, scaled by |b| at most. Below a = -88 vexp.h promises only |result| <= 6e-37 |b|. */
static void check_swiglu_value(const char *name, float a, float b, float got) {
    int ok;
    double want = NAN;
    if (isnan(a) || isnan(b) || (a == INFINITY && b == 0.0f)) {
        ok = bits(got) == ENG_NAN_BITS;
    } else if (a < -88.0f) {
        want = 0; /* the limit of silu(a) as a goes to -inf */
        ok = !isnan(got) && fabs((double)got) <= 6e-37 * fabs((double)b);
    } else {
        double ad = a, silu = ad / (1.0 + exp(-ad)); /* a = +inf: inf */
        want = silu * b;
        double tol = 2.5 * 0x1p-23 * (1 + 1e-6) * fabs(want) + 0x1p-149 * (1 + fabs((double)b));
        if (isnan(want)) /* 0 * inf */
            ok = bits(got) == ENG_NAN_BITS;
        else if (isinf(b) && fabs(silu) < 0x1p-149) /* silu(a) may round to 0: 0 * inf */
            ok = bits(got) == ENG_NAN_BITS || (isinf(got) && (got > 0) == (want > 0));
        else if (isinf(got))
            ok = fabs(want) >= FLT_MAX * (1 - 2.5 * 0x1p-23) && (got > 0) == (want > 0);
        else
            ok = fabs((double)got - want) <= tol;
    }
    if (!ok) {
        fprintf(stderr, "%s swiglu(%a, %a) = %a (%.9g), silu(a) * b = %.17g\n", name, a, b, got,
                got, want);
        exit(1);
    }
}

/* SwiGLU: every table within vexp's bound of silu(a) * b computed in double, and all tables equal
 * bit for bit, over ordinary, huge, tiny and special values. */
static void test_swiglu(void) {
    int cases = 0;
    for (int it = 0; it < 400; it++) {
        int n = rng_int(1, 200);
        float *a0 = alloc_floats((size_t)n), *b = alloc_floats((size_t)n);
        float *want = alloc_floats((size_t)n), *got = alloc_floats((size_t)n);
        for (int i = 0; i < n; i++) {
            if (it % 4 == 0) { /* specials in a, b or both */
                a0[i] = from_bits(special_bits[rng_int(0, NSPECIAL - 1)]);
                b[i] = rng_int(0, 2) ? rng_val()
                                     : from_bits(special_bits[rng_int(0, NSPECIAL - 1)]);
            } else if (it % 4 == 1) { /* a dense walk over [-100, 100], where silu bends */
                a0[i] = -100.0f + 200.0f * (float)(it * 200 + i) / (400.0f * 200.0f);
                b[i] = rng_val();
            } else {
                a0[i] = ldexpf(rng_unit(), rng_int(-6, 7));
                b[i] = rng_val();
            }
        }
        memcpy(want, a0, (size_t)n * sizeof(float));
        tables[0]->swiglu(want, b, n);
        for (int t = 0; t < ntables; t++) {
            if (!tables[t]) continue;
            memcpy(got, a0, (size_t)n * sizeof(float));
            tables[t]->swiglu(got, b, n);
            for (int i = 0; i < n; i++) {
                check_swiglu_value(tables[t]->name, a0[i], b[i], got[i]);
                if (bits(got[i]) != bits(want[i])) {
                    fprintf(stderr, "%s swiglu: a %a b %a: %a, scalar table %a\n",
                            tables[t]->name, a0[i], b[i], got[i], want[i]);
                    exit(1);
                }
            }
            cases++;
        }
        free(a0), free(b), free(want), free(got);
    }
    printf("swiglu: %d cases ok\n", cases);
}

/* exp_sum: every table gives the reference's probabilities and sum bitwise (a -inf or NaN gives
 * 0), for lengths around the 8-wide blocks and maxima that send some exponents past the clamp. */
static void test_exp_sum(void) {
    int cases = 0;
    for (int it = 0; it < 400; it++) {
        int n = rng_int(0, 70);
        float *x = alloc_floats((size_t)n), *want = alloc_floats((size_t)n);
        float *got = alloc_floats((size_t)n);
        float max = it % 3 ? 0.0f : (float)rng_int(-100, 100);
        for (int i = 0; i < n; i++) {
            int r = rng_int(0, 9);
            x[i] = r == 0   ? -INFINITY
                   : r == 1 ? NAN
                   : r == 2 ? ldexpf(rng_val(), rng_int(3, 7))   /* past the clamp, some */
                            : max + 4.0f * rng_unit();          /* sums that round */
        }
        float sum = eng__exp_sum_ref(want, x, max, n);
        for (int t = 0; t < ntables; t++) {
            if (!tables[t]) continue;
            float s = tables[t]->exp_sum(got, x, max, n);
            for (int i = 0; i < n; i++)
                if (bits(got[i]) != bits(want[i])) {
                    fprintf(stderr, "%s exp_sum: x %a max %a: %a, reference %a\n",
                            tables[t]->name, x[i], max, got[i], want[i]);
                    exit(1);
                }
            if (bits(s) != bits(sum)) {
                fprintf(stderr, "%s exp_sum of %d: %a, reference %a\n", tables[t]->name, n, s,
                        sum);
                exit(1);
            }
            cases++;
        }
        for (int i = 0; i < n; i++)
            if (!(x[i] > -INFINITY)) ASSERT(bits(want[i]) == 0);
        free(x), free(want), free(got);
    }
    printf("exp_sum: %d cases ok\n", cases);
}

int main(void) {
    test_rng_seed(0x9e3779b97f4a7c15ull);
#ifndef LANES_NO_OPENBLAS
    openblas_set_num_threads(1);
#endif
    ASSERT(eng_kern_best() != NULL);
    test_kern_open();
    test_gemm();
    test_half_convert();
    test_round16();
    test_gemm16();
    test_argmax();
    test_attention();
    test_vexp();
    test_swiglu();
    test_exp_sum();
    test_kern_done();
    return 0;
}
