#ifndef ENG_SAMPLE_H
#define ENG_SAMPLE_H

/* Engine-internal: the sampler's noise and whole-row (top-k / top-p) sampling, for engine.c and
 * tests/test_eng_sample.c. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine.h"
#include "kern/kern.h"

/* Random bits per noise draw. With 23 bits every draw maps to an odd multiple of 2^-24, which a
 * float holds exactly, so the uniform never rounds onto 0 or 1. */
#define ENG_NOISE_BITS 23

/* bits (< 2^ENG_NOISE_BITS) to a uniform (2 * bits + 1) * 2^-24: strictly inside (0, 1). */
static inline float eng__unit_from_bits(uint32_t bits) {
    return (float)(int32_t)(2u * bits + 1u) * (1.0f / 16777216.0f);   /* exact below 2^24 */
}

/* log(x) for positive normal finite x (Cephes' logf polynomial after a frexp done on the bits),
 * within 1 ulp on the noise's inputs (tests/test_eng_sample.c checks them all). As vexp.h's exp,
 * this sequence of IEEE operations is the definition: loops that call it vectorise, and any vector
 * width gives the same bits. */
static inline float eng__vlogf(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    int32_t e = (int32_t)(b >> 23) - 126;   /* x = m * 2^e, m in [0.5, 1) */
    b = (b & 0x007fffffu) | 0x3f000000u;
    float m;
    memcpy(&m, &b, sizeof m);
    int low = m < 0.707106781186547524f;    /* then use 2m in [sqrt(1/2), 1) and e - 1 */
    e -= low;
    m = (low ? m + m : m) - 1.0f;           /* exact (Sterbenz) */
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    float fe = (float)e;
    y = y + -2.12194440e-4f * fe;
    y = y + -0.5f * z;
    return (m + y) + 0.693359375f * fe;
}

/* The Gumbel noise -log(-log(u)) of a draw: finite for every bits (tests/test_eng_sample.c checks
 * all of them). */
static inline float eng__gumbel_from_bits(uint32_t bits) {
    return -eng__vlogf(-eng__vlogf(eng__unit_from_bits(bits)));
}

/* Upper bounds of the Gumbel noise per group of draws sharing their top ENG_NOISE_BOUND_BITS bits:
 * bound[bits >> (ENG_NOISE_BITS - ENG_NOISE_BOUND_BITS)] >= eng__gumbel_from_bits(bits), as the
 * noise grows with bits. A candidate whose logit plus its bound cannot beat the best so far needs
 * no logarithm. */
#define ENG_NOISE_BOUND_BITS 10
void eng__gumbel_bounds(float bound[1 << ENG_NOISE_BOUND_BITS]);

/* 4-byte words of scratch eng__sample_row() needs for a row of vocab logits. */
size_t eng__sample_scratch_words(int vocab);

/* The next token of a whole-row sampler (top_k > 0 and/or 0 < top_p < 1, temperature at least
 * ENG_TEMP_GREEDY_BELOW) from a row's raw logits, given the stream's uniform u in (0, 1) for this
 * position. Ids rank by logit / T (so by probability), then by lower id; the top_k first are kept,
 * then the shortest prefix of those holding top_p of their mass, and one of them is drawn in
 * proportion to its probability. NaN and -inf logits are never drawn; a row with a +inf or no
 * number at all gives the greedy id. Borrows scratch (eng__sample_scratch_words(vocab) words);
 * never allocates; the result depends only on the arguments (kern's table gives the same bits as
 * any other: it only makes the exponentials faster). */
int32_t eng__sample_row(const eng_kern_ops_t *kern, const float *logits, int vocab,
                        const eng_sampler_t *s, float u, void *scratch);

/* The log-probabilities of a row of vocab raw logits whose sampled id is tok, as eng_logprobs_t
 * defines them (reads lp->top_n, fills the rest): lp = x - (max + log sum), the sum of
 * exp(x - max) over the finite logits in a fixed order (kern's exp_sum per block of a few hundred,
 * the blocks added in double) and the subtraction in double, so the error is the final rounding
 * plus a few 1e-7 (relative) of the sum's. NaN and infinite logits get no probability and are
 * never listed; a row with no finite logit gives n = 0 and chosen -inf. Never allocates; the
 * result depends only on the arguments (every kern table gives the same bits: exp_sum's). */
void eng__logprobs_row(const eng_kern_ops_t *kern, const float *row, int vocab, int32_t tok,
                       eng_logprobs_t *lp);

#endif
