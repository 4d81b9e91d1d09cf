#include "score.h"

#include <math.h>
#include <stdlib.h>

#include "base/lanes_err.h"

/* The runner-up of a row whose argmax is best: NaN never counts, as in the argmax. */
static float runner_up(const float *row, int vocab, int32_t best) {
    float second = -INFINITY;
    for (int i = 0; i < vocab; i++)
        if (i != best && row[i] > second) second = row[i];
    return second;
}

int eng_score(eng_ctx_t *c, int lane, const int32_t *tokens, int n, eng_score_t *out) {
    int vocab = eng_ctx_model_cfg(c)->vocab_size, max_cols = eng_ctx_max_cols(c);
    if (n < 1 || n > eng_ctx_seq_len(c) || lane < 0 || lane >= eng_ctx_max_lanes(c))
        return LANES_EINVAL;
    float *logits = malloc((size_t)max_cols * (size_t)vocab * sizeof *logits);
    eng_col_t *cols = malloc((size_t)max_cols * sizeof *cols);
    int32_t *next = malloc((size_t)max_cols * sizeof *next);
    int rc = LANES_ENOMEM;
    if (logits == NULL || cols == NULL || next == NULL) goto done;
    eng_ctx_set_sampler(c, lane, &(eng_sampler_t){0.0f, 0, 0.0f, 0});
    for (int p0 = 0; p0 < n; p0 += max_cols) {
        int k = n - p0 < max_cols ? n - p0 : max_cols;
        for (int i = 0; i < k; i++)
            cols[i] = (eng_col_t){lane, p0 + i, tokens[p0 + i], 1, logits + (size_t)i * vocab, NULL};
        if ((rc = eng_step(c, cols, k, next)) < 0) goto done;
        for (int i = 0; i < k; i++) {
            const float *row = logits + (size_t)i * vocab;
            float top1 = row[next[i]];
            out[p0 + i] = (eng_score_t){next[i], top1, top1 - runner_up(row, vocab, next[i])};
        }
    }
    rc = LANES_OK;
done:
    free(logits);
    free(cols);
    free(next);
    return rc;
}
