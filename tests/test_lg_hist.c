/* lg_hist percentiles against exact nearest-rank percentiles of known distributions. */
#include "hist.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "test_util.h"

#define N 200000

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* xorshift64*: deterministic, no libc rand() state. */
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double uniform01(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static uint64_t exact_pct(const uint64_t *sorted, size_t n, double p) {
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return sorted[rank - 1];
}

/* Records v[0..n) and checks p0..p100 and the moments against the sorted sample. */
static void check(const char *name, uint64_t *v, size_t n) {
    lg_hist_t *h = lg_hist_create();
    ASSERT(h != NULL);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        lg_hist_record(h, v[i]);
        sum += (double)v[i];
    }
    qsort(v, n, sizeof *v, cmp_u64);
    ASSERT_EQ(lg_hist_count(h), n);
    ASSERT_EQ(lg_hist_min(h), v[0]);
    ASSERT_EQ(lg_hist_max(h), v[n - 1]);
    ASSERT(fabs(lg_hist_mean(h) - sum / (double)n) <= 1e-9 * sum / (double)n + 1e-9);
    static const double ps[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double want = (double)exact_pct(v, n, ps[i]);
        double got = lg_hist_percentile(h, ps[i]);
        /* Exact below LG_HIST_EXACT_US, within the stated relative error above. */
        double tol = want < LG_HIST_EXACT_US ? 0.0 : want * LG_HIST_REL_ERR;
        if (fabs(got - want) > tol) {
            fprintf(stderr, "%s p%g: got %.3f want %.0f (tol %.3f)\n", name, ps[i], got, want, tol);
            exit(1);
        }
    }
    lg_hist_destroy(h);
    fprintf(stderr, "%s: ok\n", name);
}

int main(void) {
    uint64_t *v = malloc(N * sizeof *v);
    ASSERT(v != NULL);

    for (size_t i = 0; i < N; i++) v[i] = (uint64_t)(uniform01() * 1000000.0);     /* 0..1 s */
    check("uniform", v, N);
    for (size_t i = 0; i < N; i++) v[i] = (uint64_t)(uniform01() * 100.0);         /* exact range */
    check("uniform-small", v, N);
    for (size_t i = 0; i < N; i++) v[i] = (uint64_t)(-log(1.0 - uniform01()) * 20000.0);
    check("exponential", v, N);
    for (size_t i = 0; i < N; i++) v[i] = 12345;
    check("constant", v, N);
    for (size_t i = 0; i < N; i++)                 /* 90% near 2 ms, 10% near 800 ms */
        v[i] = uniform01() < 0.9 ? 1900 + (uint64_t)(uniform01() * 200.0)
                                 : 790000 + (uint64_t)(uniform01() * 20000.0);
    check("bimodal", v, N);
    for (size_t i = 0; i < N; i++) v[i] = (uint64_t)1 << (i % 37);                  /* every octave */
    check("powers", v, N);
    v[0] = 7;
    check("single", v, 1);

    /* Clamping, merge and reset. */
    lg_hist_t *a = lg_hist_create(), *b = lg_hist_create();
    lg_hist_record(a, UINT64_MAX);
    ASSERT_EQ(lg_hist_max(a), LG_HIST_MAX_US);
    lg_hist_record_n(b, 50, 3);
    lg_hist_merge(a, b);
    ASSERT_EQ(lg_hist_count(a), 4);
    ASSERT_EQ(lg_hist_min(a), 50);
    ASSERT(lg_hist_percentile(a, 75) == 50.0);
    lg_hist_reset(a);
    ASSERT_EQ(lg_hist_count(a), 0);
    ASSERT(lg_hist_percentile(a, 50) == 0.0);
    lg_hist_destroy(a);
    lg_hist_destroy(b);
    lg_hist_destroy(NULL);
    free(v);
    return 0;
}
