#include "gen.h"

#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "tok/tok.h"

const char *eng_end_name(int end) {
    switch (end) {
    case ENG_END_LENGTH: return "length";
    case ENG_END_STOP: return "stop";
    case ENG_END_CONTEXT: return "context";
    default: return "none";
    }
}

void eng_stream_init(eng_stream_t *s, int lane, const int32_t *prompt, int n_prompt, int max_new,
                     const eng_tok_t *tok) {
    *s = (eng_stream_t){prompt, tok, n_prompt, max_new, lane, 0, -1, 0, ENG_END_NONE, 0};
}

int eng_stream_cols(const eng_stream_t *s, int budget, eng_col_t *cols) {
    if (s->end || budget <= 0) return 0;
    if (s->pos >= s->n_prompt) {
        cols[0] = (eng_col_t){s->lane, s->pos, s->last, 1, NULL, NULL};
        return 1;
    }
    int n = s->n_prompt - s->pos < budget ? s->n_prompt - s->pos : budget;
    for (int i = 0; i < n; i++) {
        int p = s->pos + i;
        cols[i] = (eng_col_t){s->lane, p, s->prompt[p], p == s->n_prompt - 1, NULL, NULL};
    }
    return n;
}

int eng_stream_advance(eng_stream_t *s, int ncols, int32_t tok, int seq_len) {
    int sampled_pos = s->pos + ncols - 1;
    s->pos += ncols;
    if (s->pos < s->n_prompt) return 0;
    if (!s->ignore_eos && eng_tok_is_eog(s->tok, tok)) {
        s->end = ENG_END_STOP;
        return 0;
    }
    s->last = tok;
    s->n_gen++;
    if (s->n_gen >= s->max_new) s->end = ENG_END_LENGTH;
    else if (sampled_pos + 1 >= seq_len) s->end = ENG_END_CONTEXT;
    return 1;
}

int eng_gen_run(eng_ctx_t *c, eng_gen_req_t *reqs, int n, const eng_gen_opts_t *opts) {
    int lanes = opts->lanes, max_cols = eng_ctx_max_cols(c), seq_len = eng_ctx_seq_len(c);
    int vocab = eng_ctx_model_cfg(c)->vocab_size;
    if (lanes < 1 || lanes > eng_ctx_max_lanes(c) || lanes > max_cols || opts->tok == NULL)
        return LANES_EINVAL;
    int rc = LANES_ENOMEM;
    eng_stream_t *st = calloc((size_t)lanes, sizeof *st);
    int *req_of = malloc((size_t)lanes * sizeof *req_of);
    eng_col_t *cols = malloc((size_t)max_cols * sizeof *cols);
    int32_t *toks = malloc((size_t)max_cols * sizeof *toks);
    int *span = malloc((size_t)lanes * 2 * sizeof *span);
    if (!st || !req_of || !cols || !toks || !span) goto done;
    for (int i = 0; i < n; i++) {
        reqs[i].n_out = 0;
        reqs[i].end = ENG_END_NONE;
        if (reqs[i].n_prompt < 1 || reqs[i].n_prompt > seq_len || reqs[i].max_new < 1) {
            rc = LANES_EINVAL;
            goto done;
        }
    }
    for (int l = 0; l < lanes; l++) {
        req_of[l] = -1;
        st[l].end = ENG_END_LENGTH;
    }
    int next = 0, live = 0;
    for (;;) {
        for (int l = 0; l < lanes && next < n; l++)
            if (req_of[l] < 0) {
                eng_gen_req_t *r = &reqs[next];
                int lane = (opts->first_lane + l) % lanes;
                eng_stream_init(&st[l], lane, r->prompt, r->n_prompt, r->max_new, opts->tok);
                st[l].ignore_eos = r->ignore_eos;
                eng_ctx_set_sampler(c, lane, &r->sampler);
                req_of[l] = next++;
                live++;
            }
        if (live == 0) break;
        /* Decode columns first, then prefill chunks in the room left, so arrivals never stall
         * the streams already decoding. */
        int nc = 0;
        for (int pass = 0; pass < 2; pass++)
            for (int l = 0; l < lanes; l++) {
                if (req_of[l] < 0 || (st[l].pos >= st[l].n_prompt) != (pass == 0)) continue;
                int budget = pass == 0 ? 1 : opts->chunk ? opts->chunk : seq_len;
                if (budget > max_cols - nc) budget = max_cols - nc;
                span[2 * l] = nc;
                span[2 * l + 1] = eng_stream_cols(&st[l], budget, cols + nc);
                eng_gen_req_t *r = &reqs[req_of[l]];
                eng_col_t *last = &cols[nc + span[2 * l + 1] - 1];
                if (span[2 * l + 1] > 0 && last->sample) {
                    if (r->logits) last->logits = r->logits + (size_t)r->n_out * vocab;
                    if (r->logprobs) last->logprobs = &r->logprobs[r->n_out];
                }
                nc += span[2 * l + 1];
            }
        if ((rc = eng_step(c, cols, nc, toks)) < 0) goto done;
        for (int l = 0; l < lanes; l++) {
            if (req_of[l] < 0) continue;
            eng_gen_req_t *r = &reqs[req_of[l]];
            int k = span[2 * l + 1];
            if (k == 0) continue;
            if (eng_stream_advance(&st[l], k, toks[span[2 * l] + k - 1], seq_len))
                r->out[r->n_out++] = st[l].last;
            if (st[l].end) {
                r->end = st[l].end;
                req_of[l] = -1;
                live--;
            }
        }
    }
    rc = LANES_OK;
done:
    free(st);
    free(req_of);
    free(cols);
    free(toks);
    free(span);
    return rc;
}
