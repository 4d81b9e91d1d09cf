#ifndef ENG_ENGINE_H
#define ENG_ENGINE_H

#include <stdint.h>

#include "model/model.h"

/* The lane-batched forward pass. A context owns the KV cache of max_lanes streams and the
 * activations of up to max_cols columns; each eng_step() runs every weight matrix once, as one GEMM
 * over all the step's columns. Single-threaded API: one thread (the engine thread) calls it; the
 * context's own compute pool does the parallel work. */
typedef struct eng_ctx eng_ctx_t;

enum { ENG_GEMM_LANES = 0, ENG_GEMM_OPENBLAS = 1 };

/* "lanes" or "openblas" (the --gemm flag) to ENG_GEMM_*, or LANES_EINVAL. */
int eng_gemm_by_name(const char *name);

/* The design's bound on streams per context (one lane GEMM column each). */
#define ENG_MAX_LANES 128
/* The default context per lane is the model's seq_len up to this many tokens: the KV cache grows
 * with lanes x context, and a long-context header would otherwise reserve gigabytes per lane. */
#define ENG_CTX_DEFAULT 4096

typedef struct {
    int max_lanes;      /* KV cache slots, 1..ENG_MAX_LANES */
    int max_cols;       /* columns per step: decode lanes plus prefill tokens */
    int threads;        /* compute threads including the caller; 0 = the CPUs this process may
                         * use (affinity mask and cgroup quota, lanes_sys_cpus()) */
    int gemm;           /* ENG_GEMM_LANES (default, batch-invariant) or ENG_GEMM_OPENBLAS */
    int ctx;            /* context per lane in tokens, 1..seq_len; 0 = min(seq_len,
                         * ENG_CTX_DEFAULT) */
} eng_ctx_cfg_t;

/* What a context of a given shape allocates. */
typedef struct {
    int ctx, threads;   /* resolved from the config's 0 defaults */
    uint64_t kv_lane;   /* KV cache bytes per lane: keys and values of every attention layer,
                         * and the recurrent state of every delta-net layer (fixed, whatever
                         * the context) */
    uint64_t kv;        /* those bytes in all */
    uint64_t total;     /* KV cache plus every activation and scratch buffer */
} eng_ctx_plan_t;

/* Sampling for one stream. A temperature below ENG_TEMP_GREEDY_BELOW (0 included) is greedy: the
 * lowest id of the largest logit, whatever the filters. top_k 0 and top_p <= 0 or >= 1 disable those
 * filters; with neither, temperature sampling is argmax(logit / T + Gumbel noise), fused with the
 * classifier. With a filter, ids rank by logit / T, then by lower id; the top_k first are kept, then
 * the shortest prefix of those holding top_p of their probability, and one is drawn in proportion
 * to its probability; NaN and -inf logits are never drawn. The noise of a stream depends only on
 * seed and position, and each row is sampled whole by one thread, so a seeded stream reproduces
 * whatever its lane, company or thread count. */
/* Temperatures below this sample greedily: 1/T would overflow the scaled logits to inf, and
 * well before that the noise could no longer change the argmax (vLLM uses the same cut). */
#define ENG_TEMP_GREEDY_BELOW 1e-5f

typedef struct {
    float temperature;
    int top_k;
    float top_p;
    uint64_t seed;
} eng_sampler_t;

/* Most top alternatives a column can ask log-probabilities for (OpenAI's chat API allows 20). */
#define ENG_MAX_TOP_LOGPROBS 20

/* Log-probabilities of a sampled column: the log-softmax of its raw logits (temperature and the
 * filters play no part, as vLLM and OpenAI report them), over the row's finite logits; chosen is
 * -inf when the sampled logit is not finite (and so for every id of a row with none finite). The
 * values depend only on the row: bitwise the same whatever the company, thread count or kernel
 * table. */
typedef struct {
    int top_n;          /* in: alternatives wanted, 0..ENG_MAX_TOP_LOGPROBS */
    float chosen;       /* out: the sampled token's log-probability */
    int n;              /* out: alternatives given: top_n, or fewer when the row has fewer finite
                         * logits (NaN and infinite logits have no probability: never listed) */
    int32_t top_id[ENG_MAX_TOP_LOGPROBS];   /* out: the most probable ids, first the highest,
                                             * equal values by lower id */
    float top_lp[ENG_MAX_TOP_LOGPROBS];     /* out: their log-probabilities */
} eng_logprobs_t;

/* One column of a step: the token at position pos of the stream in KV slot lane. */
typedef struct {
    int32_t lane, pos, token;
    int32_t sample;     /* nonzero: pick the token at pos + 1 from this column's logits */
    float *logits;      /* optional, borrows: receives the raw vocab logits of a sampled column */
    eng_logprobs_t *logprobs;   /* optional, borrows: filled for a sampled column, on the compute
                                 * pool; columns without one pay nothing for it */
} eng_col_t;

/* Sizes a context of cfg for model shape mc and checks it against avail bytes (eng_ctx_create()
 * passes lanes_sys_mem_avail()). Returns LANES_OK with *out filled; LANES_EINVAL for a bad config
 * (a ctx longer than seq_len is logged naming both); LANES_ENOMEM, logged with the bytes needed and
 * available and the advice to lower --lanes or --ctx, when it does not fit. */
int eng_ctx_plan(const eng_model_cfg_t *mc, const eng_ctx_cfg_t *cfg, uint64_t avail,
                 eng_ctx_plan_t *out);

/* Borrows m until eng_ctx_destroy(). Refuses (eng_ctx_plan()) a context that does not fit in the
 * memory this process can still get, so an oversized server fails at start instead of being killed
 * under load; logs the KV cache bytes per lane and in all. */
int eng_ctx_create(const eng_model_t *m, const eng_ctx_cfg_t *cfg, eng_ctx_t **out);
void eng_ctx_destroy(eng_ctx_t *c);   /* NULL is fine */

/* Sets the sampler of a lane (keep it for the stream's whole life). */
void eng_ctx_set_sampler(eng_ctx_t *c, int lane, const eng_sampler_t *s);

/* Runs one forward step. Columns of one lane must have consecutive positions in ascending order,
 * start at most at the lane's filled length, and stay below the context length
 * (eng_ctx_seq_len()); other lanes are untouched. A column at position 0 starts a new stream in
 * its lane. With sliding-window layers a lane keeps only its latest positions there
 * (eng_ctx_create() logs how many), so a lane that goes back starts at 0 or where the window
 * before it is still kept. In a model with delta-net layers, whose recurrent state cannot rewind,
 * a lane's columns start exactly at its filled length (continuing) or at 0 (a new stream, from a
 * zeroed state).
 * For each column with sample set, out_tok[i] receives the next token (others get -1). At most
 * max_lanes sampled columns whose sampler uses top-k or top-p, or that ask for logprobs, may come
 * without a logits buffer (the context keeps a whole row of logits for each of those, and only
 * max_lanes rows, so a big vocabulary costs lanes x vocab, not columns x vocab). A logprobs
 * top_n must be 0..ENG_MAX_TOP_LOGPROBS.
 * Returns LANES_OK or LANES_EINVAL for columns that break those rules (nothing is run then). */
int eng_step(eng_ctx_t *c, const eng_col_t *cols, int ncols, int32_t *out_tok);

/* One GEMM on the context's backend and threads, as the step runs them (for benchmarks):
 * W (rows, k) @ X (ncols, k) -> Y (ncols, rows), all lane-major. ncols <= max_cols. */
void eng_ctx_gemm(eng_ctx_t *c, float *y, const float *w, const float *x, int rows, int ncols,
                  int k);

const eng_model_cfg_t *eng_ctx_model_cfg(const eng_ctx_t *c);
int eng_ctx_threads(const eng_ctx_t *c);
int eng_ctx_max_lanes(const eng_ctx_t *c);
int eng_ctx_max_cols(const eng_ctx_t *c);
int eng_ctx_seq_len(const eng_ctx_t *c);   /* context per lane: positions are 0..seq_len - 1 */
/* Nanoseconds eng_step() has spent attending (every column's scores, softmax and weighted sums
 * of values, all layers; and the delta-net layers' recurrence, which stands in for it) since the
 * context was made: for benchmarks. */
uint64_t eng_ctx_attention_ns(const eng_ctx_t *c);
const char *eng_ctx_kern_name(const eng_ctx_t *c);

#endif
