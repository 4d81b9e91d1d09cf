#include "model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_file.h"
#include "base/lanes_log.h"
#include "base/lanes_rand.h"

/* Dimension caps: far above any llama2.c model, low enough that every size product below fits
 * in 64 bits without overflow checks at each multiply. */
#define MAX_DIM (1 << 16)
#define MAX_LAYERS 1024
#define MAX_VOCAB (1 << 22)
#define MAX_SEQ (1 << 20)
#define HEADER_BYTES (7 * sizeof(int32_t))

struct eng_model {
    eng_model_cfg_t cfg;
    eng_weights_t w;
    void *map;          /* owned: the mmap'd file, or NULL */
    size_t map_len;
    float *data;        /* owned: synthetic weights, or NULL */
};

int eng_model_preset(const char *name, eng_model_cfg_t *cfg) {
    static const struct { const char *name; eng_model_cfg_t cfg; } presets[] = {
        {"tiny", {64, 172, 2, 4, 2, 512, 256, 1}},
        {"15m", {288, 768, 6, 6, 6, 32000, 256, 1}},
        {"110m", {768, 2048, 12, 12, 12, 32000, 1024, 1}},
    };
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        if (strcmp(name, presets[i].name) == 0) {
            *cfg = presets[i].cfg;
            return LANES_OK;
        }
    return LANES_EINVAL;
}

/* Checks the shape; returns a static description of the first problem, or NULL. */
static const char *check_cfg(const eng_model_cfg_t *c) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->seq_len <= 0)
        return "a dimension is zero or negative";
    if (c->dim > MAX_DIM || c->hidden_dim > MAX_DIM || c->n_heads > MAX_DIM)
        return "dim, hidden_dim or n_heads too large";
    if (c->n_layers > MAX_LAYERS) return "n_layers too large";
    if (c->vocab_size > MAX_VOCAB) return "vocab_size too large";
    if (c->seq_len > MAX_SEQ) return "seq_len too large";
    if (c->dim % c->n_heads != 0) return "dim is not a multiple of n_heads";
    if ((c->dim / c->n_heads) % 2 != 0) return "head size is odd (RoPE rotates pairs)";
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return "n_heads is not a multiple of n_kv_heads";
    return NULL;
}

/* Float count of each tensor in file order; freq_cis is the unused RoPE table. */
typedef struct { size_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq, cls; } sizes_t;

static sizes_t tensor_sizes(const eng_model_cfg_t *c) {
    size_t d = (size_t)c->dim, h = (size_t)c->hidden_dim, l = (size_t)c->n_layers;
    size_t kv = d * (size_t)c->n_kv_heads / (size_t)c->n_heads, hs = d / (size_t)c->n_heads;
    size_t v = (size_t)c->vocab_size;
    return (sizes_t){v * d, l * d, l * d * d, l * d * kv, l * d * kv, l * d * d, l * d,
                     l * h * d, l * d * h, l * h * d, d, (size_t)c->seq_len * hs,
                     c->shared_cls ? 0 : v * d};
}

static size_t total_floats(const sizes_t *s) {
    return s->emb + s->rms_att + s->wq + s->wk + s->wv + s->wo + s->rms_ffn + s->w1 + s->w2 + s->w3 +
           s->rms_final + s->freq + s->cls;
}

/* Points the weight table into p, laid out as a llama2.c checkpoint body. */
static void bind_weights(eng_model_t *m, const float *p) {
    sizes_t s = tensor_sizes(&m->cfg);
    eng_weights_t *w = &m->w;
    w->tok_emb = p, p += s.emb;
    w->rms_att = p, p += s.rms_att;
    w->wq = p, p += s.wq;
    w->wk = p, p += s.wk;
    w->wv = p, p += s.wv;
    w->wo = p, p += s.wo;
    w->rms_ffn = p, p += s.rms_ffn;
    w->w1 = p, p += s.w1;
    w->w2 = p, p += s.w2;
    w->w3 = p, p += s.w3;
    w->rms_final = p, p += s.rms_final;
    p += s.freq;
    w->wcls = m->cfg.shared_cls ? w->tok_emb : p;
}

int eng_model_load(const char *path, eng_model_t **out) {
    int rc = LANES_EMODEL, fd = -1;
    const char *why = NULL;
    eng_model_t *m = calloc(1, sizeof *m);
    if (m == NULL) return LANES_ENOMEM;
    size_t len;
    if ((rc = lanes_open_file("model", path, &fd, &len)) < 0) {
        if (rc != LANES_EIO) rc = LANES_EMODEL;   /* not a checkpoint, as a bad header is */
        goto fail;
    }
    rc = LANES_EMODEL;
    if (len < HEADER_BYTES) {
        why = "shorter than the 28-byte header";
        goto fail;
    }
    int32_t h[7];
    if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h) {
        why = "cannot read the header";
        goto fail;
    }
    /* A negative vocab_size flags an unshared classifier; INT32_MIN has no positive twin. */
    int32_t vocab = h[5] == INT32_MIN ? 0 : h[5] < 0 ? -h[5] : h[5];
    m->cfg = (eng_model_cfg_t){h[0], h[1], h[2], h[3], h[4], vocab, h[6], h[5] > 0};
    if ((why = check_cfg(&m->cfg)) != NULL) goto fail;
    sizes_t s = tensor_sizes(&m->cfg);
    size_t want = HEADER_BYTES + total_floats(&s) * sizeof(float);
    if (len != want) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: size %zu bytes, but the header (dim %d hidden %d "
                  "layers %d heads %d kv_heads %d vocab %d seq %d) needs %zu", path, len,
                  m->cfg.dim, m->cfg.hidden_dim, m->cfg.n_layers, m->cfg.n_heads,
                  m->cfg.n_kv_heads, h[5], m->cfg.seq_len, want);
        goto fail;
    }
    m->map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        LANES_LOG(LANES_LOG_ERROR, "model %s: mmap failed: %s", path, strerror(errno));
        rc = LANES_EIO;
        goto fail;
    }
    m->map_len = len;
    close(fd);
    bind_weights(m, (const float *)((const char *)m->map + HEADER_BYTES));
    *out = m;
    return LANES_OK;
fail:
    if (why) LANES_LOG(LANES_LOG_ERROR, "model %s: %s", path, why);
    if (fd >= 0) close(fd);
    eng_model_destroy(m);
    return rc;
}

/* Uniform in [-a, a), from 24 random bits: exact in fp32, so the same on every machine. */
static void fill_uniform(float *p, size_t n, float a, uint64_t *rng) {
    for (size_t i = 0; i < n; i++)
        p[i] = a * ((float)(int32_t)(lanes_splitmix64(rng) >> 40) / 8388608.0f - 1.0f);
}

static void fill_const(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++) p[i] = v;
}

int eng_model_synth(const eng_model_cfg_t *cfg, uint64_t seed, eng_model_t **out) {
    const char *why = check_cfg(cfg);
    if (why) {
        LANES_LOG(LANES_LOG_ERROR, "synthetic model: %s", why);
        return LANES_EINVAL;
    }
    eng_model_t *m = calloc(1, sizeof *m);
    if (m == NULL) return LANES_ENOMEM;
    m->cfg = *cfg;
    sizes_t s = tensor_sizes(cfg);
    if ((m->data = malloc(total_floats(&s) * sizeof(float))) == NULL) {
        free(m);
        return LANES_ENOMEM;
    }
    /* Scaled like a trained model (uniform with variance 1/fan_in) so activations stay O(1) and
     * the argmax is decided by real margins, not by rounding noise. */
    uint64_t rng = seed;
    float *p = m->data;
    float inv_d = 1.0f / sqrtf((float)cfg->dim), inv_h = 1.0f / sqrtf((float)cfg->hidden_dim);
    float a_d = sqrtf(3.0f) * inv_d, a_h = sqrtf(3.0f) * inv_h;
    size_t spans[][2] = {{s.emb, 0}, {s.rms_att, 1}, {s.wq, 2}, {s.wk, 2}, {s.wv, 2}, {s.wo, 2},
                         {s.rms_ffn, 1}, {s.w1, 2}, {s.w2, 3}, {s.w3, 2}, {s.rms_final, 1},
                         {s.freq, 4}, {s.cls, 2}};
    for (size_t i = 0; i < sizeof spans / sizeof *spans; i++) {
        size_t n = spans[i][0];
        switch (spans[i][1]) {
        case 0: fill_uniform(p, n, 0.1f, &rng); break;
        case 1: fill_const(p, n, 1.0f); break;
        case 2: fill_uniform(p, n, a_d, &rng); break;
        case 3: fill_uniform(p, n, a_h, &rng); break;
        default: fill_const(p, n, 0.0f); break;
        }
        p += n;
    }
    bind_weights(m, m->data);
    *out = m;
    return LANES_OK;
}

int eng_model_save(const eng_model_t *m, const char *path) {
    const eng_model_cfg_t *c = &m->cfg;
    int32_t h[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                    c->shared_cls ? c->vocab_size : -c->vocab_size, c->seq_len};
    sizes_t s = tensor_sizes(c);
    const float *body = m->w.tok_emb;   /* both backings hold the tensors contiguously */
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: cannot create: %s", path, strerror(errno));
        return LANES_EIO;
    }
    size_t n = total_floats(&s);
    int ok = fwrite(h, sizeof h, 1, f) == 1 && fwrite(body, sizeof(float), n, f) == n;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: write failed: %s", path, strerror(errno));
        return LANES_EIO;
    }
    return LANES_OK;
}

void eng_model_destroy(eng_model_t *m) {
    if (m == NULL) return;
    if (m->map) munmap(m->map, m->map_len);
    free(m->data);
    free(m);
}

const eng_model_cfg_t *eng_model_cfg(const eng_model_t *m) { return &m->cfg; }
const eng_weights_t *eng_model_weights(const eng_model_t *m) { return &m->w; }

double eng_model_flops_per_token(const eng_model_t *m) {
    const eng_model_cfg_t *c = &m->cfg;
    double d = c->dim, kv = (double)c->dim * c->n_kv_heads / c->n_heads;
    double per_layer = d * d * 2 + d * kv * 2 + 3.0 * d * c->hidden_dim;
    return 2.0 * (c->n_layers * per_layer + (double)c->vocab_size * d);
}
