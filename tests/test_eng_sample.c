/* The sampler's numerics: every noise draw maps strictly inside (0, 1) and to finite, monotone
 * Gumbel noise (checked over all 2^ENG_NOISE_BITS draws); temperatures below ENG_TEMP_GREEDY_BELOW
 * give the greedy stream bitwise and ENG_TEMP_GREEDY_BELOW itself still samples; whole-row top-k
 * and top-p return only ids of the k largest / the nucleus (found here by sorting), in the kept
 * probabilities' proportions, and rows with NaN and inf give sensible ids. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/lanes_err.h"
#include "bundle.h"
#include "engine.h"
#include "gen.h"
#include "sample.h"
#include "test_util.h"
#include "kern/vexp.h"

#define MAX_NEW 40

/* Error of a float result against a double reference, in units of the float's last place. */
static double ulps(float got, double ref) {
    double ulp = nextafterf((float)fabs(ref), INFINITY) - (float)fabs(ref);
    return fabs((double)got - ref) / ulp;
}

static void check_noise_exhaustive(void) {
    double worst_log = 0.0, worst_g = 0.0;
    float prev = -INFINITY;
    for (uint32_t b = 0; b < 1u << ENG_NOISE_BITS; b++) {
        float u = eng__unit_from_bits(b);
        if (!(u > 0.0f && u < 1.0f)) {
            fprintf(stderr, "bits %u: uniform %.9g is not strictly inside (0, 1)\n", b, u);
            exit(1);
        }
        float g = eng__gumbel_from_bits(b);
        if (!isfinite(g) || !(g >= prev)) {
            fprintf(stderr, "bits %u: gumbel %.9g (previous %.9g) not finite and monotone\n", b, g,
                    prev);
            exit(1);
        }
        prev = g;
        float l = -eng__vlogf(u);
        double e = ulps(-l, log((double)u));
        if (e > worst_log) worst_log = e;
        e = ulps(eng__vlogf(l), log((double)l));
        if (e > worst_log) worst_log = e;
        e = fabs((double)g + log(-log((double)u))) / fmax(1.0, fabs((double)g));
        if (e > worst_g) worst_g = e;
    }
    printf("noise: %u draws inside (0, 1), gumbel finite and monotone; log within %.2f ulp, "
           "gumbel within %.2g relative\n", 1u << ENG_NOISE_BITS, worst_log, worst_g);
    ASSERT(worst_log <= 1.0);
    ASSERT(worst_g <= 1e-6);
}

/* ---- tiny temperatures ---------------------------------------------------------------------- */

static void run_stream(const eng_bundle_t *b, eng_sampler_t s, int32_t *out, int *n_out) {
    int32_t ids[64];
    int np = eng_tok_encode(b->tok, "Once upon a time", 16, ENG_TOK_ADD_SPECIAL, ids, 64);
    ASSERT_GT(np, 0);
    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {.max_lanes = 1, .max_cols = 64, .threads = 1, .gemm = ENG_GEMM_LANES};
    ASSERT_EQ(eng_ctx_create(b->model, &cc, &ctx), LANES_OK);
    eng_gen_req_t r = {ids, np, MAX_NEW, s, out, NULL, 0, 0, NULL, 0};
    ASSERT_EQ(eng_gen_run(ctx, &r, 1, &(eng_gen_opts_t){1, 0, 0, b->tok}), LANES_OK);
    *n_out = r.n_out;
    eng_ctx_destroy(ctx);
}

static int same_stream(const eng_bundle_t *b, eng_sampler_t s, const int32_t *ref, int n_ref) {
    int32_t out[MAX_NEW];
    int n;
    run_stream(b, s, out, &n);
    return n == n_ref && memcmp(out, ref, sizeof *out * (size_t)n) == 0;
}

/* The filters each stream gets: none (the fused Gumbel path), top-k, top-p. */
static eng_sampler_t with_filter(float t, int f, uint64_t seed) {
    return (eng_sampler_t){t, f == 1 ? 40 : 0, f == 2 ? 0.5f : 1.0f, seed};
}

static void check_tiny_temperatures(void) {
    eng_bundle_t b;
    ASSERT_EQ(eng_bundle_open(&b, NULL, NULL, "tiny", 3), LANES_OK);
    /* Logits in the hundreds, as real models have: 1/T of a tiny temperature overflows them to
     * inf. (The weights are this test's own malloc'd synthetic ones, so writing them is fine.) */
    const eng_model_cfg_t *mc = eng_model_cfg(b.model);
    float *wcls = (float *)eng_model_weights(b.model)->cls.data;
    size_t ncls = (size_t)mc->vocab_size * (size_t)mc->dim;
    for (size_t i = 0; i < ncls; i++) wcls[i] *= 1000.0f;
    int32_t greedy[MAX_NEW];
    int n_greedy;
    run_stream(&b, (eng_sampler_t){0.0f, 0, 1.0f, 0}, greedy, &n_greedy);
    const float below[] = {1e-38f, 1e-30f, 1e-6f, nextafterf(ENG_TEMP_GREEDY_BELOW, 0.0f)};
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < 4; i++)
            for (uint64_t seed = 1; seed <= 3; seed++)
                if (!same_stream(&b, with_filter(below[i], f, seed), greedy, n_greedy)) {
                    fprintf(stderr, "temperature %g, filter %d, seed %llu: not the greedy stream\n",
                            below[i], f, (unsigned long long)seed);
                    exit(1);
                }
    /* With a classifier of zeros every logit ties: greedy always says id 0, and at
     * ENG_TEMP_GREEDY_BELOW only the noise decides. */
    memset(wcls, 0, ncls * sizeof *wcls);
    run_stream(&b, (eng_sampler_t){0.0f, 0, 1.0f, 0}, greedy, &n_greedy);
    for (int i = 0; i < n_greedy; i++) ASSERT_EQ(greedy[i], 0);
    for (int f = 0; f < 3; f++) {
        ASSERT(same_stream(&b, with_filter(below[3], f, 5), greedy, n_greedy));
        ASSERT(!same_stream(&b, with_filter(ENG_TEMP_GREEDY_BELOW, f, 5), greedy, n_greedy));
    }
    eng_bundle_close(&b);
    printf("temperatures below %g give the greedy stream bitwise (plain, top-k, top-p); "
           "%g samples\n", ENG_TEMP_GREEDY_BELOW, ENG_TEMP_GREEDY_BELOW);
}

/* ---- whole rows against a reference by sorting ---------------------------------------------- */

static float rank_x[32768];   /* scaled logits, NaN as -inf */
static int by_rank(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (rank_x[a] != rank_x[b]) return rank_x[a] > rank_x[b] ? -1 : 1;
    return a < b ? -1 : 1;
}

/* The row's probabilities as the sampler defines them (exp relative to the finite maximum; NaN and
 * -inf get 0), and ord: ids by scaled logit descending, then id. Returns 0 if no finite maximum. */
static int reference(const float *logits, int n, float t, float *p, int32_t *ord) {
    float invt = 1.0f / t, max = -INFINITY;
    ASSERT(n <= 32768);
    for (int i = 0; i < n; i++) {
        float x = logits[i] * invt;
        rank_x[i] = x == x ? x : -INFINITY;
        if (rank_x[i] > max) max = rank_x[i];
    }
    if (!(max > -INFINITY && max < INFINITY)) return 0;
    for (int i = 0; i < n; i++) {
        p[i] = rank_x[i] > -INFINITY ? eng_vexpf(rank_x[i] - max) : 0.0f;
        ord[i] = i;
    }
    qsort(ord, (size_t)n, sizeof *ord, by_rank);
    return 1;
}

/* How many ids of ord the sampler may keep: the top k, then the shortest prefix holding top_p of
 * their mass, with `slack` relative leeway for the sampler's float sums. */
static int kept_len(const float *p, const int32_t *ord, int n, const eng_sampler_t *s,
                    double slack) {
    int k = s->top_k > 0 && s->top_k < n ? s->top_k : n;
    if (!(s->top_p > 0.0f && s->top_p < 1.0f)) return k;
    double mass = 0.0, cum = 0.0;
    for (int j = 0; j < k; j++) mass += p[ord[j]];
    double want = (double)s->top_p * mass * (1.0 + slack);
    for (int j = 0; j < k; j++)
        if ((cum += p[ord[j]]) >= want) return j + 1;
    return k;
}

static uint32_t rng_next(uint64_t *st) {
    *st = *st * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*st >> 33);
}

/* The engine's table, and every table this CPU runs: each must draw the same ids. */
static const eng_kern_ops_t *kern, *tables[16];
static int ntables;

/* Every table this CPU runs. */
static void find_tables(void) {
    kern = eng_kern_best();
    const char *name;
    for (int t = 0; (name = eng_kern_name_at(t)) != NULL && ntables < 16; t++)
        if ((tables[ntables] = eng_kern_by_name(name)) != NULL) ntables++;
}

static void *scratch_for(int n) {
    void *s = malloc(eng__sample_scratch_words(n) * 4);
    ASSERT(s != NULL);
    return s;
}

/* Random rows of many shapes: every returned id lies inside the reference's kept prefix, and every
 * kernel table returns the same one (for every eighth draw, to keep the test short). Rows of
 * n ids (not a multiple of the sampler's 64-id blocks; the long ones take its interleaved
 * histograms), and k both below and above n / 64 (with and without its block prefilter). */
static void check_support(int n, int nrows) {
    static float logits[32768], p[32768];
    static int32_t ord[32768], rank[32768];
    const int draws = n > 5000 ? 30 : 100;
    const int N = n;
    void *scratch = scratch_for(N);
    const eng_sampler_t samplers[] = {
        {1.0f, 1, 1.0f, 0},   {1.0f, 2, 1.0f, 0},   {0.7f, 40, 1.0f, 0},   {1.0f, N - 1, 1.0f, 0},
        {1.0f, N + 5, 0.9f, 0}, {1.0f, 0, 1e-30f, 0}, {1.0f, 0, 0.1f, 0},  {2.0f, 0, 0.5f, 0},
        {1.0f, 0, 0.9f, 0},   {1.0f, 0, 0.999f, 0}, {1.3f, 40, 0.9f, 0},   {1.0f, 3, 0.5f, 0},
        {0.9f, 10, 1.0f, 0},  {1.0f, 700, 1.0f, 0}, {1.0f, 700, 0.8f, 0}};
    const int nsamp = (int)(sizeof samplers / sizeof *samplers);
    uint64_t st = 7 + (uint64_t)n;
    long checked = 0;
    for (int row = 0; row < nrows; row++) {
        int kind = row % 6;
        float scale = (float)(1 << (row % 5)) * 0.25f;
        for (int i = 0; i < N; i++) {
            float g = ((float)rng_next(&st) / 4294967296.0f - 0.5f) * 8.0f * scale;
            if (kind == 1) g = floorf(g);                      /* many exact ties */
            if (kind == 2) g = (float)(rng_next(&st) % 3);     /* three values only */
            if (kind == 3 && rng_next(&st) % 5 == 0) g = NAN;
            if (kind == 4 && rng_next(&st) % 3 == 0) g = -INFINITY;
            if (kind == 5) g = 0.0f;                           /* flat */
            logits[i] = g;
        }
        for (int si = 0; si < nsamp; si++) {
            const eng_sampler_t *s = &samplers[si];
            ASSERT(reference(logits, N, s->temperature, p, ord));
            int len = kept_len(p, ord, N, s, 1e-4);
            for (int j = 0; j < N; j++) rank[ord[j]] = j;
            for (int d = 0; d < draws + 2; d++) {
                uint32_t bits = d == draws       ? 0
                                : d == draws + 1 ? (1u << ENG_NOISE_BITS) - 1
                                                 : rng_next(&st) >> (32 - ENG_NOISE_BITS);
                int32_t id = eng__sample_row(kern, logits, N, s, eng__unit_from_bits(bits), scratch);
                ASSERT(id >= 0 && id < N);
                for (int t = 0; t < ntables && d % 8 == 0; t++)
                    ASSERT_EQ(eng__sample_row(tables[t], logits, N, s, eng__unit_from_bits(bits),
                                              scratch), id);
                if (rank[id] >= len || !(p[id] > 0.0f)) {
                    fprintf(stderr, "row %d (kind %d), top_k %d top_p %g: id %d (logit %g) is "
                            "outside the kept %d\n", row, kind, s->top_k, s->top_p, id,
                            logits[id], len);
                    exit(1);
                }
                checked++;
            }
        }
    }
    free(scratch);
    printf("whole rows of %d: %ld draws of top-k / top-p all inside the sorted reference's kept "
           "ids\n", n, checked);
}

/* Evenly spaced uniforms make the sampler's inverse CDF visible: each kept id's count must match
 * its share of the kept mass to within a couple of draws, and no other id may appear. */
static void check_proportions(void) {
    enum { N = 8, DRAWS = 1 << 16 };
    const float logits[N] = {1.0f, 2.0f, 1.0f, 0.5f, NAN, 0.0f, -INFINITY, -1.0f};
    /* Ranking: 1, 0, 2 (a tie, lower id first), 3, 5, 7, then NaN and -inf with nothing. */
    const struct {
        eng_sampler_t s;
        int n, kept[N];
    } cases[] = {
        {{1.0f, 1, 1.0f, 0}, 1, {1}},          {{1.0f, 2, 1.0f, 0}, 2, {1, 0}},
        {{1.0f, 3, 1.0f, 0}, 3, {1, 0, 2}},    {{1.0f, 0, 0.3f, 0}, 1, {1}},
        {{1.0f, 0, 0.5f, 0}, 2, {1, 0}},       {{1.0f, 0, 0.7f, 0}, 3, {1, 0, 2}},
        {{1.0f, 0, 0.999f, 0}, 6, {1, 0, 2, 3, 5, 7}}, {{1.0f, 4, 0.95f, 0}, 4, {1, 0, 2, 3}},
        {{0.5f, 2, 0.9f, 0}, 2, {1, 0}},
    };
    void *scratch = scratch_for(N);
    float p[N];
    int32_t ord[N];
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const eng_sampler_t *s = &cases[ci].s;
        ASSERT(reference(logits, N, s->temperature, p, ord));
        int count[N] = {0}, len = cases[ci].n;
        double mass = 0.0;
        for (int j = 0; j < len; j++) mass += p[cases[ci].kept[j]];
        ASSERT_EQ(len, kept_len(p, ord, N, s, 0.0));
        for (int d = 0; d < DRAWS; d++) {
            uint32_t bits = (uint32_t)(((uint64_t)d << ENG_NOISE_BITS) / DRAWS);
            count[eng__sample_row(kern, logits, N, s, eng__unit_from_bits(bits), scratch)]++;
        }
        int seen = 0;
        for (int j = 0; j < len; j++) {
            int id = cases[ci].kept[j];
            double want = DRAWS * (double)p[id] / mass;
            if (fabs(count[id] - want) > 2.0) {
                fprintf(stderr, "case %zu: id %d drawn %d times, expected %.1f\n", ci, id,
                        count[id], want);
                exit(1);
            }
            seen += count[id];
        }
        ASSERT_EQ(seen, DRAWS);
    }
    free(scratch);
    printf("whole rows: kept ids drawn in proportion to their probability, ties by lower id\n");
}

static void check_special_rows(void) {
    enum { N = 16 };
    float row[N];
    void *scratch = scratch_for(N);
    const eng_sampler_t s[] = {{1.0f, 3, 1.0f, 0}, {1.0f, 0, 0.9f, 0}, {1.0f, 5, 0.5f, 0}};
    for (int si = 0; si < 3; si++)
        for (uint32_t bits = 0; bits < 1u << ENG_NOISE_BITS; bits += 0x1357) {
            float u = eng__unit_from_bits(bits);
            for (int i = 0; i < N; i++) row[i] = NAN;
            ASSERT_EQ(eng__sample_row(kern, row, N, &s[si], u, scratch), 0);   /* the greedy id */
            for (int i = 0; i < N; i++) row[i] = -INFINITY;
            ASSERT_EQ(eng__sample_row(kern, row, N, &s[si], u, scratch), 0);
            row[11] = NAN;
            row[12] = 3.0f;
            ASSERT_EQ(eng__sample_row(kern, row, N, &s[si], u, scratch), 12);  /* the only number */
            for (int i = 0; i < N; i++) row[i] = (float)i;
            row[5] = row[9] = INFINITY;
            ASSERT_EQ(eng__sample_row(kern, row, N, &s[si], u, scratch), 5);   /* lowest +inf */
            for (int i = 0; i < N; i++) row[i] = i % 2 ? NAN : (float)(i % 3);
            int32_t id = eng__sample_row(kern, row, N, &s[si], u, scratch);
            ASSERT(id % 2 == 0 && id < N);                               /* never a NaN */
        }
    free(scratch);
    printf("whole rows: NaN, -inf and +inf rows give the greedy id or a number's id\n");
}

int main(void) {
    find_tables();
    check_noise_exhaustive();
    check_tiny_temperatures();
    check_support(1000, 36);
    check_support(20000, 6);
    check_proportions();
    check_special_rows();
    return 0;
}
