/* The quantized kernels of every table this CPU runs against the scalar references of
 * kern/quant.h, bit for bit: activation quantization (quants, scales, 16-value sums) over random
 * blocks and the edge cases (zeros, ties at .5, the largest magnitude negative or positive,
 * inf), and gemm_q for every weight type over random shapes (rows, columns, k not a multiple of
 * 256 where the block allows), both output layouts, accumulate on and off, weights as the
 * quantizers make them and as arbitrary bytes (Q8_0's -128 included). Built for aarch64 too
 * (scripts/test-neon.sh). */
#include "kern/kern.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern/half.h"
#include "kern/quant.h"
#include "model/model.h"
#include "test_kern.h"
#include "test_rng.h"
#include "test_util.h"

static float rng_val(void) { return ldexpf(rng_unit(), rng_int(-6, 3)); }

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    ASSERT(p != NULL);
    return p;
}


static const int wtypes[] = {ENG_WT_Q8_0, ENG_WT_Q4_0, ENG_WT_Q4_K, ENG_WT_Q6_K};
static const char *const wtype_names[] = {"Q8_0", "Q4_0", "Q4_K", "Q6_K"};

/* (The kernel files alone are built for aarch64: no model.c here.) */
static size_t row_bytes(int wtype, int k) {
    return (size_t)(k / eng_quant_block_values(wtype)) * eng_quant_block_bytes(wtype);
}
static const char *wtype_name(int wtype) {
    for (size_t i = 0; i < sizeof wtypes / sizeof *wtypes; i++)
        if (wtypes[i] == wtype) return wtype_names[i];
    return "?";
}

static eng_qact_t qact_alloc(int type, int ncols, int k) {
    return (eng_qact_t){type, k, xmalloc(eng_qact_qs_len(ncols, k)),
                        xmalloc(eng_qact_d_len(type, ncols, k) * sizeof(float)),
                        xmalloc(eng_qact_sums_len(ncols, k) * sizeof(int16_t))};
}
static void qact_free(eng_qact_t *a) { free(a->qs), free(a->d), free(a->sums); }

/* One block of activations of a kind the quantizers must get exactly right. */
static void fill_block(float *x, int n, int kind) {
    for (int i = 0; i < n; i++) x[i] = rng_val();
    switch (kind) {
    case 1: memset(x, 0, (size_t)n * sizeof *x); break;               /* all zero: d = 0 */
    case 2:                                                            /* ties: x * id = m + 0.5 */
        x[rng_int(0, n - 1)] = rng_int(0, 1) ? 127.0f : -127.0f;
        for (int i = 0; i < n; i++)
            if (fabsf(x[i]) != 127.0f) x[i] = (float)rng_int(-126, 125) + 0.5f;
        break;
    case 3: x[rng_int(0, n - 1)] = -1000.0f; break;                    /* a negative maximum */
    case 4: x[rng_int(0, n - 1)] = 1000.0f; break;
    case 5: for (int i = 0; i < n; i++) x[i] = ldexpf(rng_unit(), -30); break;   /* tiny */
    case 6: {   /* +max and -max: the first one is "max" */
        float m = fabsf(x[1]) + 1.0f;
        x[0] = m;
        x[1] = -m;
        break;
    }
    default: break;
    }
}

static void check_act(const eng_qact_t *want, const eng_qact_t *got, int ncols, const char *name,
                      int k) {
    size_t nq = eng_qact_qs_len(ncols, k), nd = eng_qact_d_len(want->type, ncols, k);
    size_t ns = eng_qact_sums_len(ncols, k);
    for (size_t i = 0; i < nq; i++)
        if (want->qs[i] != got->qs[i]) {
            fprintf(stderr, "%s quantize_act type %d k %d: qs[%zu] %d vs %d\n", name, want->type,
                    k, i, got->qs[i], want->qs[i]);
            exit(1);
        }
    for (size_t i = 0; i < nd; i++)
        if (bits(want->d[i]) != bits(got->d[i])) {
            fprintf(stderr, "%s quantize_act type %d k %d: d[%zu] %a vs %a\n", name, want->type, k,
                    i, got->d[i], want->d[i]);
            exit(1);
        }
    for (size_t i = 0; i < ns; i++) ASSERT_EQ(want->sums[i], got->sums[i]);
}

static void test_quantize_act(void) {
    int cases = 0;
    for (int act = ENG_ACT_Q8_0; act <= ENG_ACT_Q8_K; act++) {
        int block = eng_quant_act_block(act);
        for (int rep = 0; rep < 60; rep++) {
            int k = block * rng_int(1, act == ENG_ACT_Q8_0 ? 40 : 6), ncols = rng_int(1, 3);
            float *x = xmalloc((size_t)ncols * k * sizeof *x);
            for (int b = 0; b < ncols * k / block; b++) fill_block(x + b * block, block, rng_int(0, 8));
            eng_qact_t want = qact_alloc(act, ncols, k), got = qact_alloc(act, ncols, k);
            for (int c = 0; c < ncols; c++) eng__quantize_act_ref(&want, c, x + (size_t)c * k);
            for (int t = 0; t < ntables; t++) {
                if (!tables[t]) continue;
                memset(got.qs, 0x55, eng_qact_qs_len(ncols, k));
                for (int c = 0; c < ncols; c++) tables[t]->quantize_act(&got, c, x + (size_t)c * k);
                check_act(&want, &got, ncols, tables[t]->name, k);
            }
            qact_free(&want), qact_free(&got), free(x);
            cases++;
        }
    }
    printf("quantize_act: %d cases ok\n", cases);
}

/* rows of weight type wtype with k values: quantized from random floats where lanes can quantize
 * the type, else (and sometimes anyway) random bytes with sane scales. */
static uint8_t *make_weights(int wtype, int rows, int k) {
    size_t rb = row_bytes(wtype, k), bb = eng_quant_block_bytes(wtype);
    uint8_t *w = xmalloc(rb * rows);
    int raw = wtype == ENG_WT_Q4_K || wtype == ENG_WT_Q6_K || rng_int(0, 3) == 0;
    if (!raw) {
        float *f = xmalloc((size_t)k * sizeof *f);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < k; i++) f[i] = rng_val();
            ASSERT_EQ(eng_quant_row(wtype, w + rb * r, f, k), 0);
        }
        free(f);
        return w;
    }
    for (size_t i = 0; i < rb * rows; i++) w[i] = (uint8_t)rng_next();
    size_t nblocks = rb * rows / bb;
    for (size_t b = 0; b < nblocks; b++) {  /* finite scales: NaN bits are not what is tested */
        uint8_t *blk = w + b * bb;
        size_t at = wtype == ENG_WT_Q6_K ? 208 : 0;
        for (int j = 0; j < (wtype == ENG_WT_Q4_K ? 2 : 1); j++) {
            uint16_t h = eng_f32_to_f16(ldexpf(rng_unit(), rng_int(-12, -2)));
            blk[at + 2 * j] = (uint8_t)h;
            blk[at + 2 * j + 1] = (uint8_t)(h >> 8);
        }
    }
    return w;
}

static void check_gemm_q(int wtype, int rows, int ncols, int k, int accumulate, int channel_major) {
    int act = eng_quant_act_type(wtype);
    uint8_t *w = make_weights(wtype, rows, k);
    float *x = xmalloc((size_t)ncols * k * sizeof *x);
    int block = eng_quant_act_block(act);
    for (int b = 0; b < ncols * k / block; b++) fill_block(x + b * block, block, rng_int(0, 12));
    eng_qact_t a = qact_alloc(act, ncols, k);
    for (int c = 0; c < ncols; c++) eng__quantize_act_ref(&a, c, x + (size_t)c * k);
    ptrdiff_t yrs = channel_major ? ncols : 1, ycs = channel_major ? 1 : rows;
    size_t n = (size_t)rows * ncols, guard = 16;
    float *init = xmalloc((n + 2 * guard) * sizeof *init), *want = xmalloc((n + 2 * guard) * sizeof *want);
    float *got = xmalloc((n + 2 * guard) * sizeof *got);
    for (size_t i = 0; i < n + 2 * guard; i++) init[i] = rng_val();
    memcpy(want, init, (n + 2 * guard) * sizeof *want);
    eng__gemm_q_ref(want + guard, yrs, ycs, wtype, w, &a, rows, ncols, accumulate);
    for (int t = 0; t < ntables; t++) {
        if (!tables[t]) continue;
        memcpy(got, init, (n + 2 * guard) * sizeof *got);
        tables[t]->gemm_q(got + guard, yrs, ycs, wtype, w, &a, rows, ncols, accumulate);
        for (size_t i = 0; i < n + 2 * guard; i++)
            if (bits(got[i]) != bits(want[i])) {
                long e = (long)i - (long)guard;
                fprintf(stderr, "%s gemm_q %s rows %d ncols %d k %d acc %d cm %d: element %ld "
                        "(%s) %a vs %a\n", tables[t]->name, wtype_name(wtype), rows, ncols, k,
                        accumulate, channel_major, e, e < 0 || e >= (long)n ? "guard" : "output",
                        got[i], want[i]);
                exit(1);
            }
    }
    qact_free(&a);
    free(w), free(x), free(init), free(want), free(got);
}

static void test_gemm_q(void) {
    static const int col_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 33, 64, 128};
    int cases = 0;
    for (size_t ti = 0; ti < sizeof wtypes / sizeof *wtypes; ti++) {
        int wtype = wtypes[ti], block = eng_quant_block_values(wtype);
        for (int rep = 0; rep < 40; rep++) {
            int k = block * rng_int(1, block == 32 ? 26 : 3);
            int rows = rng_int(0, 3) ? rng_int(1, 40) : rng_int(41, 140);
            int ncols = col_counts[rng_int(0, sizeof col_counts / sizeof *col_counts - 1)];
            if (ncols >= 64 && rows > 40) rows = 40;
            check_gemm_q(wtype, rows, ncols, k, rng_int(0, 1), rng_int(0, 1));
            cases++;
        }
        check_gemm_q(wtype, 33, 3, 3 * block, 0, 0); /* odd rows meeting the main column block */
        check_gemm_q(wtype, 8, 1, block, 1, 1);
        /* Long rows (a SIMD kernel may take the weights in several chunks, carrying each
         * element's sum across them) and more columns than a kernel's column tile. */
        check_gemm_q(wtype, 11, 3, block * (block == 32 ? 130 : 17), rng_int(0, 1), 0);
        check_gemm_q(wtype, 9, 2, block * (block == 32 ? 61 : 7), 1, 1);
        check_gemm_q(wtype, 10, 131, 2 * block, rng_int(0, 1), rng_int(0, 1));
        check_gemm_q(wtype, 3, 260, block * (block == 32 ? 40 : 5), 1, 0);
        check_gemm_q(wtype, 9, 5, 0, 0, 0);   /* k = 0: every output is 0 */
        cases += 7;
    }
    printf("gemm_q: %d cases ok\n", cases);
}

int main(void) {
    test_rng_seed(0x2545f4914f6cdd1dull);
    test_kern_open();
    test_quantize_act();
    test_gemm_q();
    test_kern_done();
    return 0;
}
