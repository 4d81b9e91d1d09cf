#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "base/lanes_rand.h"
#include "model/gguf.h"
#include "model_int.h"

const eng_arch_t eng_arch_llama = {"llama", ENG_NORM_RMS, ENG_ROPE_PAIRS, ENG_FFN_SWIGLU, 0, 0};

const char *eng_wtype_name(int type) {
    switch (type) {
    case ENG_WT_F32: return "F32";
    case ENG_WT_F16: return "F16";
    case ENG_WT_BF16: return "BF16";
    default: return NULL;
    }
}

size_t eng_wtype_size(int type) {
    return type == ENG_WT_F32 ? 4 : type == ENG_WT_F16 || type == ENG_WT_BF16 ? 2 : 0;
}

int eng_model_preset(const char *name, eng_model_cfg_t *cfg) {
    static const struct { const char *name; int dim, hidden, layers, heads, kv_heads, vocab, seq; }
        presets[] = {
            {"tiny", 64, 172, 2, 4, 2, 512, 256},
            {"15m", 288, 768, 6, 6, 6, 32000, 256},
            {"110m", 768, 2048, 12, 12, 12, 32000, 1024},
        };
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        if (strcmp(name, presets[i].name) == 0) {
            int hd = presets[i].dim / presets[i].heads;
            *cfg = (eng_model_cfg_t){presets[i].dim, presets[i].hidden, presets[i].layers,
                                     presets[i].heads, presets[i].kv_heads, presets[i].vocab,
                                     presets[i].seq, 1, hd, hd, 10000.0f, 1e-5f, eng_arch_llama};
            return LANES_OK;
        }
    return LANES_EINVAL;
}

const char *eng__model_check_cfg(const eng_model_cfg_t *c) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->seq_len <= 0)
        return "a dimension is zero or negative";
    if (c->dim > ENG_MAX_DIM || c->hidden_dim > ENG_MAX_DIM || c->n_heads > ENG_MAX_DIM)
        return "dim, hidden_dim or n_heads too large";
    if (c->n_layers > ENG_MAX_LAYERS) return "n_layers too large";
    if (c->vocab_size > ENG_MAX_VOCAB) return "vocab_size too large";
    if (c->seq_len > ENG_MAX_SEQ) return "seq_len too large";
    if (c->head_dim == 0) { /* a llama2.c header: heads split dim */
        if (c->dim % c->n_heads != 0) return "dim is not a multiple of n_heads";
        if ((c->dim / c->n_heads) % 2 != 0) return "head size is odd (RoPE rotates pairs)";
    } else {
        if (c->head_dim < 0 || c->head_dim > ENG_MAX_DIM / c->n_heads) return "bad head_dim";
        if (c->rope_dim < 0 || c->rope_dim > c->head_dim || c->rope_dim % 2 != 0)
            return "rope dimension is odd or longer than a head";
    }
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return "n_heads is not a multiple of n_kv_heads";
    return NULL;
}

eng_model_t *eng__model_alloc(int n_layers) {
    eng_model_t *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    if ((m->layers = calloc((size_t)n_layers, sizeof *m->layers)) == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

int eng_model_load(const char *path, eng_model_t **out) {
    char magic[4];
    /* A file that cannot be read for its magic is the llama2.c loader's to report. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ssize_t got = fd >= 0 ? pread(fd, magic, sizeof magic, 0) : -1;
    if (fd >= 0) close(fd);
    if (got == (ssize_t)sizeof magic && memcmp(magic, "GGUF", 4) == 0)
        return eng__model_load_gguf(path, out);
    return eng__model_load_llama2c(path, out);
}

/* Uniform in [-a, a), from 24 random bits: exact in fp32, so the same on every machine. */
static void fill_uniform(float *p, size_t n, float a, uint64_t *rng) {
    for (size_t i = 0; i < n; i++)
        p[i] = a * ((float)(int32_t)(lanes_splitmix64(rng) >> 40) / 8388608.0f - 1.0f);
}

static void fill_const(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++) p[i] = v;
}

int eng_model_synth(const eng_model_cfg_t *cfg, uint64_t seed, int wtype, eng_model_t **out) {
    const char *why = eng__model_check_cfg(cfg);
    if (why == NULL && (strcmp(cfg->arch.name, "llama") != 0 || cfg->head_dim * cfg->n_heads !=
                        cfg->dim))
        why = "only the llama2.c shape can be synthesized";
    if (why == NULL && wtype != ENG_WT_F32) why = "only F32 weights can be synthesized";
    if (why) {
        LANES_LOG(LANES_LOG_ERROR, "synthetic model: %s", why);
        return LANES_EINVAL;
    }
    eng_model_t *m = eng__model_alloc(cfg->n_layers);
    if (m == NULL) return LANES_ENOMEM;
    m->cfg = *cfg;
    size_t total = eng__llama2c_floats(cfg);
    if ((m->data = malloc(total * sizeof(float))) == NULL) {
        eng_model_destroy(m);
        return LANES_ENOMEM;
    }
    /* Scaled like a trained model (uniform with variance 1/fan_in) so activations stay O(1) and
     * the argmax is decided by real margins, not by rounding noise. Laid out as a llama2.c body
     * (tok_emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, RoPE table, cls). */
    size_t d = (size_t)cfg->dim, h = (size_t)cfg->hidden_dim, l = (size_t)cfg->n_layers;
    size_t kv = d * (size_t)cfg->n_kv_heads / (size_t)cfg->n_heads, v = (size_t)cfg->vocab_size;
    size_t rope = (size_t)cfg->seq_len * (size_t)cfg->head_dim;
    uint64_t rng = seed;
    float inv_d = 1.0f / sqrtf((float)cfg->dim), inv_h = 1.0f / sqrtf((float)cfg->hidden_dim);
    float a_d = sqrtf(3.0f) * inv_d, a_h = sqrtf(3.0f) * inv_h;
    enum { EMB, ONES, FAN_D, FAN_H, ZERO };
    size_t spans[][2] = {{v * d, EMB}, {l * d, ONES}, {l * d * d, FAN_D}, {l * d * kv, FAN_D},
                         {l * d * kv, FAN_D}, {l * d * d, FAN_D}, {l * d, ONES},
                         {l * h * d, FAN_D}, {l * d * h, FAN_H}, {l * h * d, FAN_D}, {d, ONES},
                         {rope, ZERO}, {cfg->shared_cls ? 0 : v * d, FAN_D}};
    float *p = m->data;
    for (size_t i = 0; i < sizeof spans / sizeof *spans; i++) {
        size_t n = spans[i][0];
        switch (spans[i][1]) {
        case EMB: fill_uniform(p, n, 0.1f, &rng); break;
        case ONES: fill_const(p, n, 1.0f); break;
        case FAN_D: fill_uniform(p, n, a_d, &rng); break;
        case FAN_H: fill_uniform(p, n, a_h, &rng); break;
        default: fill_const(p, n, 0.0f); break;
        }
        p += n;
    }
    eng__model_bind_llama2c(m, m->data);
    snprintf(m->name, sizeof m->name, "synthetic");
    *out = m;
    return LANES_OK;
}

void eng_model_destroy(eng_model_t *m) {
    if (m == NULL) return;
    if (m->map) munmap(m->map, m->map_len);
    eng_gguf_close(m->gguf);
    free(m->data);
    free(m->vecs);
    free(m->layers);
    free(m);
}

const eng_model_cfg_t *eng_model_cfg(const eng_model_t *m) { return &m->cfg; }
const eng_weights_t *eng_model_weights(const eng_model_t *m) { return &m->w; }
const char *eng_model_name(const eng_model_t *m) { return m->name; }
int eng_model_wtype(const eng_model_t *m) { return m->wtype; }
const struct eng_gguf *eng_model_gguf(const eng_model_t *m) { return m->gguf; }
uint64_t eng_model_weight_bytes(const eng_model_t *m) { return m->weight_bytes; }

double eng_model_flops_per_token(const eng_model_t *m) {
    const eng_model_cfg_t *c = &m->cfg;
    double d = c->dim, q = (double)c->n_heads * c->head_dim;
    double kv = (double)c->n_kv_heads * c->head_dim;
    double ffn = (c->arch.ffn == ENG_FFN_SWIGLU ? 3.0 : 2.0) * d * c->hidden_dim;
    double per_layer = 2.0 * d * q + 2.0 * d * kv + ffn;
    return 2.0 * (c->n_layers * per_layer + (double)c->vocab_size * d);
}
