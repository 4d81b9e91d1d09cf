#ifndef ENG_MODEL_H
#define ENG_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* A Llama-architecture model: its shape and read-only fp32 weights (mmap'd or synthetic). */
typedef struct {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared_cls;     /* 1: the classifier is the token embedding */
} eng_model_cfg_t;

/* Weight pointers; all (out, in) row-major as in llama2.c checkpoints. */
typedef struct {
    const float *tok_emb;   /* (vocab, dim) */
    const float *rms_att;   /* (layer, dim) */
    const float *wq;        /* (layer, dim, dim) */
    const float *wk;        /* (layer, kv_dim, dim) */
    const float *wv;        /* (layer, kv_dim, dim) */
    const float *wo;        /* (layer, dim, dim) */
    const float *rms_ffn;   /* (layer, dim) */
    const float *w1;        /* (layer, hidden, dim) */
    const float *w2;        /* (layer, dim, hidden) */
    const float *w3;        /* (layer, hidden, dim) */
    const float *rms_final; /* (dim,) */
    const float *wcls;      /* (vocab, dim) */
} eng_weights_t;

typedef struct eng_model eng_model_t;

/* Maps a llama2.c checkpoint. Every size is checked against the file length before any weight is
 * read; a bad file logs one line naming the file and the problem and returns LANES_EMODEL (or
 * LANES_EIO when it cannot be opened). */
int eng_model_load(const char *path, eng_model_t **out);

/* Shape presets for synthetic models: "tiny" (tests), "15m" (stories15M), "110m" (stories110M). */
int eng_model_preset(const char *name, eng_model_cfg_t *cfg);

/* Builds a deterministic random-weight model in memory (same seed, same bits on any machine). */
int eng_model_synth(const eng_model_cfg_t *cfg, uint64_t seed, eng_model_t **out);

/* Writes m as a llama2.c checkpoint. */
int eng_model_save(const eng_model_t *m, const char *path);

void eng_model_destroy(eng_model_t *m);   /* NULL is fine */

/* Borrows: valid until eng_model_destroy(). */
const eng_model_cfg_t *eng_model_cfg(const eng_model_t *m);
const eng_weights_t *eng_model_weights(const eng_model_t *m);

/* Matmul flops per token (2 per weight of every projection and the classifier). */
double eng_model_flops_per_token(const eng_model_t *m);

#endif
