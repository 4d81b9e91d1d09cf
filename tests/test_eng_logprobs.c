/* Log-probabilities and ignore_eos. eng__logprobs_row() on rows we build (realistic logit rows of
 * 32k and 152k ids against a double-precision reference within 1e-5, the same bits from every
 * kernel table, ties, NaN and infinities, a row without a finite logit, top_n above the
 * vocabulary); eng_step() fills a column's logprobs
 * from the raw row it returns (chosen = the lp of out_tok, for greedy and sampled lanes, with and
 * without a logits buffer); a stream's logprobs are bitwise the same alone on one thread and among
 * 127 other lanes of mixed samplers, some asking for logprobs, on two; at most max_lanes logprobs
 * columns come without a logits buffer; ignore_eos runs stories260K past its end-of-generation
 * token to max_new, emitting that token (skipped visibly without ../shared). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/lanes_err.h"
#include "bundle.h"
#include "engine.h"
#include "gen.h"
#include "kern/kern.h"
#include "sample.h"
#include "test_rng.h"
#include "test_util.h"

#define TOL 1e-5

/* ---- rows against a double reference -------------------------------------------------------- */

static const float *sort_row;

/* Finite ids first, by value descending, then id ascending. */
static int cmp_rank(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    float x = sort_row[a], y = sort_row[b];
    int fa = isfinite(x), fb = isfinite(y);
    if (fa != fb) return fb - fa;
    if (fa && x != y) return x > y ? -1 : 1;
    return (a > b) - (a < b);
}

/* Checks lp (asked for top_n, sampled id tok) against the double log-softmax of row's finite
 * logits; returns the largest absolute error. */
static double check_against_ref(const float *row, int n, int32_t tok, int top_n,
                                const eng_logprobs_t *lp) {
    double max = -INFINITY, sum = 0.0;
    int finite = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(row[i])) {
            finite++;
            if (row[i] > max) max = row[i];
        }
    int want_n = top_n < finite ? top_n : finite;
    ASSERT_EQ(lp->n, want_n);
    if (finite == 0) {
        ASSERT(lp->chosen == -INFINITY);
        return 0.0;
    }
    for (int i = 0; i < n; i++)
        if (isfinite(row[i])) sum += exp((double)row[i] - max);
    double lse = max + log(sum), worst = 0.0;
    if (isfinite(row[tok])) {
        worst = fabs(lp->chosen - ((double)row[tok] - lse));
    } else {
        ASSERT(lp->chosen == -INFINITY);
    }
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    ASSERT(ids != NULL);
    for (int i = 0; i < n; i++) ids[i] = i;
    sort_row = row;
    qsort(ids, (size_t)n, sizeof *ids, cmp_rank);
    for (int j = 0; j < lp->n; j++) {
        if (lp->top_id[j] != ids[j]) {
            fprintf(stderr, "top %d: id %d (%.9g), the reference says %d (%.9g)\n", j,
                    lp->top_id[j], row[lp->top_id[j]], ids[j], row[ids[j]]);
            exit(1);
        }
        double e = fabs(lp->top_lp[j] - ((double)row[ids[j]] - lse));
        if (e > worst) worst = e;
        if (j > 0) ASSERT(lp->top_lp[j] <= lp->top_lp[j - 1]);
    }
    free(ids);
    return worst;
}

/* Logits as models give them: a bell of width sigma and a few ids far above it. */
static void realistic_row(float *row, int n, float sigma) {
    for (int i = 0; i < n; i++)
        row[i] = sigma * (rng_unit() + rng_unit() + rng_unit() + rng_unit()) - 3.0f;
    for (int k = 0; k < 8; k++) row[rng_int(0, n - 1)] = sigma * 4.0f + 3.0f * (float)k;
}

/* Checks one row against the reference, and that every kernel table this CPU runs gives the
 * same bits. */
static double row_case(const float *row, int n, int32_t tok, int top_n) {
    eng_logprobs_t lp, other;
    memset(&lp, 0xa5, sizeof lp);   /* the function must fill what it reports */
    lp.top_n = top_n;
    eng__logprobs_row(eng_kern_best(), row, n, tok, &lp);
    for (int t = 0; eng_kern_name_at(t); t++) {
        const eng_kern_ops_t *k = eng_kern_by_name(eng_kern_name_at(t));
        if (k == NULL) continue;
        memset(&other, 0xa5, sizeof other);
        other.top_n = top_n;
        eng__logprobs_row(k, row, n, tok, &other);
        if (memcmp(&lp, &other, sizeof lp) != 0) {
            fprintf(stderr, "kernel table %s: logprobs differ from %s's\n", k->name,
                    eng_kern_best()->name);
            exit(1);
        }
    }
    return check_against_ref(row, n, tok, top_n, &lp);
}

static void check_rows(void) {
    static float row[151936];
    double worst = 0.0, e;
    const int vocabs[] = {32000, 151936, 1000, 255};
    const float sigmas[] = {0.5f, 2.0f, 6.0f, 15.0f};
    for (int v = 0; v < 4; v++)
        for (int s = 0; s < 4; s++) {
            realistic_row(row, vocabs[v], sigmas[s]);
            for (int t = 0; t < 3; t++) {
                e = row_case(row, vocabs[v], rng_int(0, vocabs[v] - 1), t == 0 ? 20 : t * 5);
                if (e > worst) worst = e;
            }
        }
    printf("realistic rows: largest |lp - double reference| %.3g\n", worst);
    ASSERT(worst <= TOL);

    /* Ties: equal values list by lower id, and each lp is -log(n). */
    for (int i = 0; i < 100; i++) row[i] = 1.5f;
    eng_logprobs_t lp = {.top_n = 20};
    eng__logprobs_row(eng_kern_best(), row, 100, 42, &lp);
    ASSERT_EQ(lp.n, 20);
    for (int j = 0; j < 20; j++) {
        ASSERT_EQ(lp.top_id[j], j);
        ASSERT(fabs(lp.top_lp[j] + log(100.0)) <= TOL);
    }
    ASSERT(fabs(lp.chosen + log(100.0)) <= TOL);
    /* Ties among the top of a bell, beside unequal ones. */
    realistic_row(row, 1000, 2.0f);
    for (int k = 0; k < 6; k++) row[900 - 150 * k] = 40.0f;
    row[7] = 40.5f;
    ASSERT(row_case(row, 1000, 7, 10) <= TOL);

    /* NaN and infinities: no probability, never listed. */
    realistic_row(row, 300, 3.0f);
    row[0] = NAN, row[1] = INFINITY, row[2] = -INFINITY, row[299] = INFINITY;
    ASSERT(row_case(row, 300, 1, 20) <= TOL);
    ASSERT(row_case(row, 300, 0, 20) <= TOL);
    ASSERT(row_case(row, 300, 5, 20) <= TOL);
    /* Fewer finite logits than asked for; one finite value has lp 0. */
    for (int i = 0; i < 50; i++) row[i] = i % 3 ? NAN : -INFINITY;
    row[17] = -3.0f, row[30] = 4.0f, row[31] = 4.0f;
    ASSERT(row_case(row, 50, 30, 5) <= TOL);
    row[30] = row[31] = NAN;
    lp = (eng_logprobs_t){.top_n = 5};
    eng__logprobs_row(eng_kern_best(), row, 50, 17, &lp);
    ASSERT(lp.n == 1 && lp.top_id[0] == 17 && lp.top_lp[0] == 0.0f && lp.chosen == 0.0f);
    /* No finite logit at all: nothing listed, chosen -inf. */
    row[17] = INFINITY;
    lp = (eng_logprobs_t){.top_n = 5, .chosen = 1.0f, .n = 3};
    eng__logprobs_row(eng_kern_best(), row, 50, 17, &lp);
    ASSERT(lp.n == 0 && lp.chosen == -INFINITY);
    /* top_n 0 and a vocabulary below top_n. */
    realistic_row(row, 7, 1.0f);
    ASSERT(row_case(row, 7, 3, 0) <= TOL);
    ASSERT(row_case(row, 7, 3, 20) <= TOL);
    printf("ties by lower id; NaN and infinities never listed; short and empty rows\n");
}

/* ---- eng_step ------------------------------------------------------------------------------- */

#define NS 4   /* samplers: greedy, temperature, top-k, top-p */
static eng_sampler_t sampler_of(int kind, uint64_t seed) {
    switch (kind) {
    case 1: return (eng_sampler_t){1.0f, 0, 1.0f, seed};
    case 2: return (eng_sampler_t){0.8f, 40, 1.0f, seed};
    case 3: return (eng_sampler_t){1.2f, 0, 0.9f, seed};
    default: return (eng_sampler_t){0.0f, 0, 1.0f, 0};
    }
}

/* The 15m preset with its classifier scaled so its logits spread as a trained model's do. */
static void open_15m(eng_bundle_t *b) {
    ASSERT_EQ(eng_bundle_open(b, NULL, NULL, "15m", 7), LANES_OK);
    const eng_model_cfg_t *mc = eng_model_cfg(b->model);
    float *w = (float *)eng_model_weights(b->model)->cls.data;   /* this test's synthetic copy */
    for (size_t i = 0; i < (size_t)mc->vocab_size * (size_t)mc->dim; i++) w[i] *= 8.0f;
}

/* 8 lanes, two of each sampler; after a prefill, decode steps where even lanes bring a logits
 * buffer and odd ones do not (their row is the context's own): each logprobs is the reference's
 * for the row the step computed, and chosen is the lp of the token it returned. */
static void check_step(const eng_bundle_t *b) {
    enum { L = 8, PROMPT = 5, STEPS = 4 };
    const eng_model_cfg_t *mc = eng_model_cfg(b->model);
    int vocab = mc->vocab_size;
    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {L, 2 * L * PROMPT, 2, ENG_GEMM_LANES, 64};
    ASSERT_EQ(eng_ctx_create(b->model, &cc, &ctx), LANES_OK);
    float *logits = malloc((size_t)L * vocab * sizeof *logits);
    eng_col_t cols[2 * L * PROMPT];
    int32_t tok[2 * L * PROMPT], next[L];
    eng_logprobs_t lp[L];
    ASSERT(logits != NULL);
    int nc = 0;
    for (int l = 0; l < L; l++) {
        eng_sampler_t smp = sampler_of(l % NS, 100 + (uint64_t)l);
        eng_ctx_set_sampler(ctx, l, &smp);
        for (int p = 0; p < PROMPT; p++)
            cols[nc++] = (eng_col_t){l, p, (int32_t)((l * 977 + p * 31 + 3) % vocab),
                                     p == PROMPT - 1, NULL, NULL};
    }
    double worst = 0.0;
    float lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s <= STEPS; s++) {
        for (int i = 0, l = 0; i < nc; i++) {
            if (!cols[i].sample) continue;
            lp[l] = (eng_logprobs_t){.top_n = 1 + 4 * l % (ENG_MAX_TOP_LOGPROBS)};
            cols[i].logprobs = &lp[l];
            cols[i].logits = l % 2 == 0 ? logits + (size_t)l * vocab : NULL;
            l++;
        }
        ASSERT_EQ(eng_step(ctx, cols, nc, tok), LANES_OK);
        for (int i = 0, l = 0; i < nc; i++) {
            if (!cols[i].sample) continue;
            next[l] = tok[i];
            if (l % 2 == 0) {
                const float *row = logits + (size_t)l * vocab;
                double e = check_against_ref(row, vocab, tok[i], lp[l].top_n, &lp[l]);
                if (e > worst) worst = e;
                for (int j = 0; j < vocab; j++) {
                    lo = row[j] < lo ? row[j] : lo;
                    hi = row[j] > hi ? row[j] : hi;
                }
                /* The same row through eng__logprobs_row() gives the step's bits. */
                eng_logprobs_t again = {.top_n = lp[l].top_n};
                eng__logprobs_row(eng_kern_best(), row, vocab, tok[i], &again);
                ASSERT(memcmp(&again, &lp[l], sizeof again) == 0);
            }
            if (l % NS == 0) ASSERT_EQ(lp[l].top_id[0], tok[i]);   /* greedy */
            l++;
        }
        nc = 0;
        for (int l = 0; l < L; l++)
            cols[nc++] = (eng_col_t){l, PROMPT + s, next[l], 1, NULL, NULL};
    }
    printf("eng_step: logits %.1f..%.1f; every lane within %.3g of the reference, chosen = lp of "
           "its token\n", lo, hi, worst);
    ASSERT(worst <= TOL);
    eng_ctx_destroy(ctx);
    free(logits);
}

/* A column without a logits buffer (its row is the context's own) gets the bits of the same
 * column with one: lane 3's prompt in two fresh contexts. */
static void check_unbuffered(const eng_bundle_t *b) {
    enum { PROMPT = 5 };
    int vocab = eng_model_cfg(b->model)->vocab_size;
    float *row = malloc((size_t)vocab * sizeof *row);
    ASSERT(row != NULL);
    eng_logprobs_t lp[2];
    int32_t tok[2][PROMPT];
    eng_sampler_t smp = sampler_of(3, 103);
    for (int k = 0; k < 2; k++) {
        eng_ctx_t *ctx;
        ASSERT_EQ(eng_ctx_create(b->model, &(eng_ctx_cfg_t){1, PROMPT, 1 + k, ENG_GEMM_LANES, 64},
                                 &ctx), LANES_OK);
        eng_ctx_set_sampler(ctx, 0, &smp);
        eng_col_t cols[PROMPT];
        lp[k] = (eng_logprobs_t){.top_n = 13};
        for (int p = 0; p < PROMPT; p++)
            cols[p] = (eng_col_t){0, p, (int32_t)((3 * 977 + p * 31 + 3) % vocab),
                                  p == PROMPT - 1, NULL, p == PROMPT - 1 ? &lp[k] : NULL};
        cols[PROMPT - 1].logits = k == 0 ? row : NULL;
        ASSERT_EQ(eng_step(ctx, cols, PROMPT, tok[k]), LANES_OK);
        eng_ctx_destroy(ctx);
    }
    ASSERT(check_against_ref(row, vocab, tok[0][PROMPT - 1], 13, &lp[0]) <= TOL);
    ASSERT_EQ(tok[0][PROMPT - 1], tok[1][PROMPT - 1]);
    ASSERT(memcmp(&lp[0], &lp[1], sizeof lp[0]) == 0);
    printf("a top-p column without a logits buffer gives the buffered column's bits\n");
    free(row);
}

/* ---- batch invariance ----------------------------------------------------------------------- */

#define LANES 128
#define MAX_NEW 6
#define N_TARGETS 3

typedef struct {
    int32_t ids[32], out[MAX_NEW];
    eng_logprobs_t lp[MAX_NEW];
    int n_prompt, n_out;
} stream_t;

/* Target t: its prompt, sampler and top_n (the last lane of each sampler kind asks for 20). */
static void target_req(const eng_bundle_t *b, int t, stream_t *st, eng_gen_req_t *r) {
    static const char *prompts[N_TARGETS] = {"Once upon a time", "The little dog", "One day"};
    st->n_prompt = eng_tok_encode(b->tok, prompts[t], strlen(prompts[t]), ENG_TOK_ADD_SPECIAL,
                                  st->ids, 32);
    ASSERT_GT(st->n_prompt, 0);
    for (int i = 0; i < MAX_NEW; i++) st->lp[i] = (eng_logprobs_t){.top_n = 20 - 7 * t};
    *r = (eng_gen_req_t){st->ids, st->n_prompt, MAX_NEW, sampler_of(t + 1, 55 + (uint64_t)t),
                         st->out, NULL, 0, 0, st->lp, 0};
}

/* The targets alone on one thread, then packed among LANES - 1 others (every sampler, two in
 * three asking for logprobs, so up to max_lanes rows without a buffer) on two threads from a
 * shifted first lane: the targets' tokens and logprobs are bitwise the same. */
static void check_invariance(const eng_bundle_t *b) {
    static stream_t alone[N_TARGETS], packed[LANES];
    static eng_gen_req_t reqs[LANES];
    int vocab = eng_model_cfg(b->model)->vocab_size;
    for (int t = 0; t < N_TARGETS; t++) {
        eng_ctx_t *ctx;
        ASSERT_EQ(eng_ctx_create(b->model, &(eng_ctx_cfg_t){1, 32, 1, ENG_GEMM_LANES, 64}, &ctx),
                  LANES_OK);
        target_req(b, t, &alone[t], &reqs[0]);
        ASSERT_EQ(eng_gen_run(ctx, reqs, 1, &(eng_gen_opts_t){1, 0, 0, b->tok}), LANES_OK);
        alone[t].n_out = reqs[0].n_out;
        ASSERT_EQ(alone[t].n_out, MAX_NEW);
        for (int k = 0; k < MAX_NEW; k++)   /* filled, so the comparison below means something */
            ASSERT(alone[t].lp[k].n == alone[t].lp[k].top_n && alone[t].lp[k].chosen <= 0.0f &&
                   alone[t].lp[k].chosen > -INFINITY);
        eng_ctx_destroy(ctx);
    }
    const int target_at[N_TARGETS] = {0, 64, 127};
    for (int i = 0, t = 0; i < LANES; i++) {
        stream_t *st = &packed[i];
        if (t < N_TARGETS && i == target_at[t]) {
            target_req(b, t++, st, &reqs[i]);
            continue;
        }
        st->n_prompt = 1 + (int)(rng_next() % 20);
        st->ids[0] = 1;
        for (int p = 1; p < st->n_prompt; p++) st->ids[p] = (int32_t)(rng_next() % (uint64_t)vocab);
        for (int k = 0; k < MAX_NEW; k++) st->lp[k] = (eng_logprobs_t){.top_n = i % 21};
        reqs[i] = (eng_gen_req_t){st->ids, st->n_prompt, MAX_NEW, sampler_of(i % NS, (uint64_t)i),
                                  st->out, NULL, 0, 0, i % 3 ? st->lp : NULL, 0};
    }
    eng_ctx_t *ctx;
    ASSERT_EQ(eng_ctx_create(b->model, &(eng_ctx_cfg_t){LANES, LANES + 64, 2, ENG_GEMM_LANES, 64},
                             &ctx), LANES_OK);
    ASSERT_EQ(eng_gen_run(ctx, reqs, LANES, &(eng_gen_opts_t){LANES, 3, 17, b->tok}), LANES_OK);
    eng_ctx_destroy(ctx);
    for (int t = 0; t < N_TARGETS; t++) {
        const eng_gen_req_t *r = &reqs[target_at[t]];
        ASSERT_EQ(r->n_out, alone[t].n_out);
        ASSERT(memcmp(r->out, alone[t].out, sizeof alone[t].out) == 0);
        for (int k = 0; k < MAX_NEW; k++)
            if (memcmp(&r->logprobs[k], &alone[t].lp[k], sizeof alone[t].lp[k]) != 0) {
                fprintf(stderr, "target %d token %d: logprobs differ packed (chosen %.9g, top %d) "
                        "and alone (%.9g, %d)\n", t, k, r->logprobs[k].chosen,
                        r->logprobs[k].top_id[0], alone[t].lp[k].chosen, alone[t].lp[k].top_id[0]);
                exit(1);
            }
    }
    printf("logprobs bitwise the same alone on 1 thread and among %d lanes on 2 (%s kernels)\n",
           LANES, eng_kern_best()->name);
}

/* ---- the bound on rows without a buffer ----------------------------------------------------- */

static void check_bounds(const eng_bundle_t *b) {
    enum { ML = 4 };
    eng_ctx_t *ctx;
    ASSERT_EQ(eng_ctx_create(b->model, &(eng_ctx_cfg_t){ML, 2 * ML, 1, ENG_GEMM_LANES, 64}, &ctx),
              LANES_OK);
    int vocab = eng_model_cfg(b->model)->vocab_size;
    float *bufs = malloc((size_t)(ML + 1) * vocab * sizeof *bufs);
    ASSERT(bufs != NULL);
    eng_logprobs_t lp[ML + 1];
    eng_col_t cols[ML + 1];
    int32_t tok[ML + 1];
    /* One lane, every column sampled and asking for logprobs, none with a buffer. */
    for (int i = 0; i <= ML; i++) {
        lp[i] = (eng_logprobs_t){.top_n = 3};
        cols[i] = (eng_col_t){0, i, (int32_t)(i + 5), 1, NULL, &lp[i]};
    }
    ASSERT_EQ(eng_step(ctx, cols, ML + 1, tok), LANES_EINVAL);
    ASSERT_EQ(eng_step(ctx, cols, ML, tok), LANES_OK);
    for (int i = 0; i < ML; i++) ASSERT_EQ(lp[i].n, 3);
    for (int i = 0; i <= ML; i++) cols[i].logits = bufs + (size_t)i * vocab;   /* buffers: no bound */
    ASSERT_EQ(eng_step(ctx, cols, ML + 1, tok), LANES_OK);
    /* A top-k lane asking for logprobs keeps one row, not two. */
    eng_sampler_t topk = sampler_of(2, 9);
    eng_ctx_set_sampler(ctx, 1, &topk);
    for (int i = 0; i <= ML; i++) cols[i] = (eng_col_t){1, i, (int32_t)(i + 9), 1, NULL, &lp[i]};
    ASSERT_EQ(eng_step(ctx, cols, ML, tok), LANES_OK);
    ASSERT_EQ(eng_step(ctx, cols, ML + 1, tok), LANES_EINVAL);
    /* top_n outside 0..ENG_MAX_TOP_LOGPROBS; a column that does not sample ignores it. */
    for (int bad = 0; bad < 2; bad++) {
        lp[0].top_n = bad ? ENG_MAX_TOP_LOGPROBS + 1 : -1;
        ASSERT_EQ(eng_step(ctx, cols, 1, tok), LANES_EINVAL);
        cols[0].sample = 0;
        ASSERT_EQ(eng_step(ctx, cols, 1, tok), LANES_OK);
        cols[0].sample = 1;
    }
    lp[0].top_n = ENG_MAX_TOP_LOGPROBS;
    ASSERT_EQ(eng_step(ctx, cols, 1, tok), LANES_OK);
    ASSERT_EQ(lp[0].n, ENG_MAX_TOP_LOGPROBS);
    printf("%d logprobs columns without a buffer run, %d are refused; top_n checked\n", ML,
           ML + 1);
    free(bufs);
    eng_ctx_destroy(ctx);
}

/* ---- ignore_eos ----------------------------------------------------------------------------- */

/* stories260K's greedy story after "cat" ends with its end-of-generation token (the end was
 * found by running it); with ignore_eos it runs to max_new, emitting that token where the plain
 * stream stopped, the same tokens before. */
static void check_ignore_eos(void) {
    const char *shared = test_shared_dir();
    if (shared == NULL) {
        printf("ignore_eos part not run: ../shared not found\n");
        return;
    }
    char m[1024], t[1024];
    snprintf(m, sizeof m, "%s/models/stories260K.bin", shared);
    snprintf(t, sizeof t, "%s/models/tok512.bin", shared);
    eng_bundle_t b;
    ASSERT_EQ(eng_bundle_open(&b, m, t, NULL, 0), LANES_OK);
    enum { N = 300 };
    int32_t ids[16], out[2][N];
    int np = eng_tok_encode(b.tok, "cat", 3, ENG_TOK_ADD_SPECIAL, ids, 16);
    ASSERT_GT(np, 0);
    eng_gen_req_t r[2];
    for (int k = 0; k < 2; k++) {
        eng_ctx_t *ctx;
        ASSERT_EQ(eng_ctx_create(b.model, &(eng_ctx_cfg_t){1, 16, 2, ENG_GEMM_LANES, 0}, &ctx),
                  LANES_OK);
        r[k] = (eng_gen_req_t){ids, np, N, {0.0f, 0, 1.0f, 0}, out[k], NULL, 0, 0, NULL, k};
        ASSERT_EQ(eng_gen_run(ctx, &r[k], 1, &(eng_gen_opts_t){1, 0, 0, b.tok}), LANES_OK);
        eng_ctx_destroy(ctx);
    }
    ASSERT_EQ(r[0].end, ENG_END_STOP);
    ASSERT_LT(r[0].n_out, N);
    ASSERT_EQ(r[1].end, ENG_END_LENGTH);
    ASSERT_EQ(r[1].n_out, N);
    ASSERT(memcmp(out[0], out[1], (size_t)r[0].n_out * sizeof *out[0]) == 0);
    ASSERT(eng_tok_is_eog(b.tok, out[1][r[0].n_out]));
    printf("stories260K \"cat\": stops after %d tokens; with ignore_eos emits id %d there and runs "
           "to %d\n", r[0].n_out, out[1][r[0].n_out], N);
    eng_bundle_close(&b);
}

int main(void) {
    test_rng_seed(0x10970b5);
    check_rows();
    eng_bundle_t b;
    open_15m(&b);
    check_step(&b);
    check_unbuffered(&b);
    check_invariance(&b);
    check_bounds(&b);
    eng_bundle_close(&b);
    check_ignore_eos();
    return 0;
}
