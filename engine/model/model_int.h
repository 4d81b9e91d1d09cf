#ifndef ENG_MODEL_INT_H
#define ENG_MODEL_INT_H

/* What the model module's loaders share (model.c, llama2c.c, from_gguf.c); nothing outside
 * engine/model/ includes this. */
#include "model.h"

struct eng_gguf;

/* Dimension caps (eng__model_check_cfg): far above any real model, low enough that every size
 * product of a checked shape fits in 64 bits without overflow checks at each multiply. */
#define ENG_MAX_DIM (1 << 16)
#define ENG_MAX_VOCAB (1 << 22)
#define ENG_MAX_SEQ (1 << 20)

struct eng_model {
    eng_model_cfg_t cfg;
    eng_weights_t w;
    eng_layer_t *layers;        /* owned: (n_layers,), w.layers */
    char name[128];
    int wtype;
    uint64_t weight_bytes;
    void *map;                  /* owned: a mmap'd llama2.c file, or NULL */
    size_t map_len;
    void *data;                 /* owned: synthetic weights, or NULL */
    float *vecs;                /* owned: fp32 copies of a file's 16-bit vectors, or NULL */
    struct eng_gguf *gguf;      /* owned: the GGUF file the weights point into, or NULL */
};

/* A zeroed model with room for n_layers layers; NULL when out of memory. */
eng_model_t *eng__model_alloc(int n_layers);

/* Checks a shape; returns a static description of the first problem, or NULL. */
const char *eng__model_check_cfg(const eng_model_cfg_t *c);

/* The loaders behind eng_model_load(), by format; each logs its own errors. */
int eng__model_load_llama2c(const char *path, eng_model_t **out);
int eng__model_load_gguf(const char *path, eng_model_t **out);

/* Points m's weights into p, laid out as a llama2.c checkpoint body (all F32). */
void eng__model_bind_llama2c(eng_model_t *m, const float *p);

/* Float count of a llama2.c checkpoint body of shape c (the unused RoPE table included). */
size_t eng__llama2c_floats(const eng_model_cfg_t *c);

#endif
