#ifndef ENG_GEN_H
#define ENG_GEN_H

#include <stdint.h>

#include "engine.h"
#include "tok/tok.h"

/* How a stream ends. The rules follow llama2.c's run.c: sampling an end-of-generation token
 * (eng_tok_is_eog(): BOS for llama2.c tokenizers) ends it without emitting that token ("stop");
 * emitting max_new tokens ends it; so does a sequence that fills the context (the token sampled at
 * position seq_len - 1 is emitted but never fed back; seq_len is the context's, eng_ctx_seq_len()).
 */
enum { ENG_END_NONE = 0, ENG_END_LENGTH, ENG_END_STOP, ENG_END_CONTEXT };
const char *eng_end_name(int end);   /* "length", "stop", "context" */

/* One stream's progress through prefill and decode, independent of who schedules it. */
typedef struct {
    const int32_t *prompt;  /* borrows: n_prompt ids */
    const eng_tok_t *tok;   /* borrows: its end-of-generation set stops the stream */
    int n_prompt, max_new, lane;
    int pos;                /* next position to feed */
    int32_t last;           /* last emitted token (fed at pos once the prompt is done) */
    int n_gen, end;
    int ignore_eos;         /* set after eng_stream_init(): end-of-generation ids are ordinary
                             * tokens (emitted, fed back), so only length or context end it */
} eng_stream_t;

/* n_prompt must be 1..eng_ctx_seq_len() and max_new >= 1. */
void eng_stream_init(eng_stream_t *s, int lane, const int32_t *prompt, int n_prompt, int max_new,
                     const eng_tok_t *tok);

/* Appends up to budget columns for the next step (a prefill chunk, or one decode column). */
int eng_stream_cols(const eng_stream_t *s, int budget, eng_col_t *cols);

/* Takes the columns' outcome: ncols columns were run and, if the last sampled, it gave tok.
 * Returns 1 if tok is emitted (s->end may be set at the same time), else 0. */
int eng_stream_advance(eng_stream_t *s, int ncols, int32_t tok, int seq_len);

/* An offline generation request for eng_gen_run(). */
typedef struct {
    const int32_t *prompt;  /* borrows */
    int n_prompt, max_new;
    eng_sampler_t sampler;
    int32_t *out;           /* borrows: room for max_new ids */
    float *logits;          /* optional, borrows: (max_new, vocab) logits behind each sampled id */
    int n_out, end;         /* results */
    eng_logprobs_t *logprobs;   /* optional, borrows: (max_new,) the log-probabilities of each
                                 * emitted id; every entry's top_n set by the caller */
    int ignore_eos;         /* eng_stream_t's: only max_new or the context end the stream */
} eng_gen_req_t;

typedef struct {
    int lanes;              /* streams in flight at once, <= the context's max_lanes */
    int chunk;              /* prefill columns per stream per step; 0 = the whole prompt */
    int first_lane;         /* lanes are used from here on, cyclically: moves streams around */
    const eng_tok_t *tok;   /* borrows: the model's tokenizer, for end of generation */
} eng_gen_opts_t;

/* Runs all requests to completion, packing up to opts->lanes of them into every step; a finished
 * stream's lane goes to the next waiting request. Steps never exceed the context's max_cols. */
int eng_gen_run(eng_ctx_t *c, eng_gen_req_t *reqs, int n, const eng_gen_opts_t *opts);

#endif
