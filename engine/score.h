#ifndef ENG_SCORE_H
#define ENG_SCORE_H

#include <stdint.h>

#include "engine.h"

/* Teacher-forced scoring: how a user checks a model against another engine's references. */
typedef struct {
    int32_t argmax;     /* the greedy next token after this position (lowest id on a tie) */
    float top1;         /* its logit */
    float gap;          /* top1 minus the largest logit of any other id */
} eng_score_t;

/* Feeds tokens[0..n) through lane of c as one stream from position 0 (prefill chunks of the
 * context's max_cols), and fills out[p] with what the model predicts after tokens[0..p]. n must be
 * 1..eng_ctx_seq_len(). Returns LANES_OK, LANES_EINVAL (bad n, lane or token), LANES_ENOMEM. */
int eng_score(eng_ctx_t *c, int lane, const int32_t *tokens, int n, eng_score_t *out);

#endif
