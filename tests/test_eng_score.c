/* Teacher-forced scoring: a greedy generation fed back as one sequence is predicted token for token,
 * with the very logits (bitwise: batch invariance) the generation sampled from, in prefill chunks
 * narrower and wider than the sequence. */
#include <math.h>
#include <stdint.h>

#include "base/lanes_err.h"
#include "bundle.h"
#include "engine.h"
#include "gen.h"
#include "score.h"
#include "test_util.h"

#define MAX_NEW 40

static float top_gap(const float *row, int vocab, int32_t best) {
    float second = -INFINITY;
    for (int i = 0; i < vocab; i++)
        if (i != best && row[i] > second) second = row[i];
    return row[best] - second;
}

int main(void) {
    eng_bundle_t b;
    ASSERT_EQ(eng_bundle_open(&b, NULL, NULL, "tiny", 7), LANES_OK);
    int vocab = eng_model_cfg(b.model)->vocab_size;
    const int32_t prompt[] = {1, 40, 91, 200, 17};
    const int np = (int)(sizeof prompt / sizeof *prompt);
    int32_t gen[MAX_NEW];
    float *logits = malloc((size_t)MAX_NEW * vocab * sizeof *logits);
    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {1, 64, 1, ENG_GEMM_LANES, 0};
    ASSERT_EQ(eng_ctx_create(b.model, &cc, &ctx), LANES_OK);
    eng_gen_req_t r = {prompt, np, MAX_NEW, {0.0f, 0, 1.0f, 0}, gen, logits, 0, 0, NULL, 0};
    ASSERT_EQ(eng_gen_run(ctx, &r, 1, &(eng_gen_opts_t){1, 0, 0, b.tok}), LANES_OK);
    ASSERT(r.n_out >= 8);
    eng_ctx_destroy(ctx);

    int n = np + r.n_out;
    int32_t seq[np + MAX_NEW];
    memcpy(seq, prompt, sizeof prompt);
    memcpy(seq + np, gen, (size_t)r.n_out * sizeof *gen);
    eng_score_t sc[np + MAX_NEW];
    for (int max_cols = 3; max_cols <= 64; max_cols += 61) {   /* chunked, and one step */
        eng_ctx_cfg_t sc_cfg = {2, max_cols, 1, ENG_GEMM_LANES, 0};
        ASSERT_EQ(eng_ctx_create(b.model, &sc_cfg, &ctx), LANES_OK);
        ASSERT_EQ(eng_score(ctx, 1, seq, n, sc), LANES_OK);
        for (int i = 0; i < r.n_out; i++) {
            const eng_score_t *s = &sc[np - 1 + i];
            const float *row = logits + (size_t)i * vocab;
            ASSERT_EQ(s->argmax, gen[i]);
            ASSERT(memcmp(&s->top1, &row[gen[i]], sizeof s->top1) == 0);
            float gap = top_gap(row, vocab, gen[i]);
            ASSERT(memcmp(&s->gap, &gap, sizeof gap) == 0);
            ASSERT(s->gap >= 0.0f);
        }
        ASSERT_EQ(eng_score(ctx, 0, seq, 0, sc), LANES_EINVAL);
        ASSERT_EQ(eng_score(ctx, 2, seq, n, sc), LANES_EINVAL);
        eng_ctx_destroy(ctx);
    }
    free(logits);
    eng_bundle_close(&b);
    printf("score: %d generated tokens predicted back with the same logits\n", r.n_out);
    return 0;
}
