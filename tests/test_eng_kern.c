/* Every kernel table this CPU runs against the scalar reference of the same fusedness, bit for bit:
 * gemm over random shapes, both output layouts, accumulate on and off, unaligned operands; dot
 * against a gemm element; argmax with ties, -inf and NaN. The fused reference is also checked
 * against OpenBLAS within fp32 tolerance (build with -DLANES_NO_OPENBLAS to skip, e.g. when
 * cross-compiling). */
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LANES_NO_OPENBLAS
#include <cblas.h>
#endif

#include "test_util.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rng_int(int lo, int hi) { return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1)); }
static float rng_unit(void) { return (float)(rng_next() >> 40) / (float)(1 << 24) * 2.0f - 1.0f; }
/* Spread over a few binades so that rounding differences between orders would show. */
static float rng_val(void) { return ldexpf(rng_unit(), rng_int(-4, 4)); }

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float *alloc_floats(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    ASSERT(p != NULL);
    return p;
}

static const char *const table_names[] = {"scalar", "scalar-unfused", "sse", "avx2", "neon"};
enum { NTABLES = sizeof table_names / sizeof *table_names };
static const eng_kern_ops_t *tables[NTABLES];

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
    for (int t = 0; t < NTABLES; t++) {
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
    for (int t = 2; t < NTABLES; t++) { /* the scalar tables share one argmax */
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
        for (int t = 0; t < NTABLES; t++) {
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

/* SwiGLU: every table equals the reference bit for bit, over ordinary, huge, tiny and special
 * values (the exp is clamped, NaN passes through). */
static void test_swiglu(void) {
    static const float special[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 87.0f, -87.0f, 88.5f, -88.5f,
                                    1e30f, -1e30f, INFINITY, -INFINITY, NAN};
    int cases = 0;
    for (int it = 0; it < 300; it++) {
        int n = rng_int(1, 200);
        float *a0 = alloc_floats((size_t)n), *b = alloc_floats((size_t)n);
        float *want = alloc_floats((size_t)n), *got = alloc_floats((size_t)n);
        for (int i = 0; i < n; i++) {
            a0[i] = it % 3 == 0 ? special[rng_int(0, 12)] : ldexpf(rng_unit(), rng_int(-6, 7));
            b[i] = rng_val();
        }
        memcpy(want, a0, (size_t)n * sizeof(float));
        eng__swiglu_ref(want, b, n);
        for (int t = 0; t < NTABLES; t++) {
            if (!tables[t]) continue;
            memcpy(got, a0, (size_t)n * sizeof(float));
            tables[t]->swiglu(got, b, n);
            for (int i = 0; i < n; i++)
                if (bits(got[i]) != bits(want[i])) {
                    fprintf(stderr, "%s swiglu: a %a b %a: %a vs %a\n", tables[t]->name, a0[i], b[i],
                            got[i], want[i]);
                    exit(1);
                }
            cases++;
        }
        free(a0), free(b), free(want), free(got);
    }
    printf("swiglu: %d cases ok\n", cases);
}

int main(void) {
    const char *seed = getenv("LANES_TEST_SEED");
    if (seed) rng_state = strtoull(seed, NULL, 0);
    printf("seed 0x%llx\n", (unsigned long long)rng_state);
#ifndef LANES_NO_OPENBLAS
    openblas_set_num_threads(1);
#endif
    ASSERT(eng_kern_by_name("scalar") != NULL && eng_kern_by_name("scalar-unfused") != NULL);
    ASSERT(eng_kern_best() != NULL);
    for (int t = 0; t < NTABLES; t++) {
        tables[t] = eng_kern_by_name(table_names[t]);
        if (tables[t]) ASSERT_STR_EQ(tables[t]->name, table_names[t]);
        printf("%s: %s\n", table_names[t], tables[t] ? "testing" : "not available here");
    }
    test_gemm();
    test_argmax();
    test_attention();
    test_swiglu();
    for (int t = 0; t < NTABLES; t++)
        if (tables[t]) printf("%s: ok\n", table_names[t]);
    return 0;
}
