/* llama2.c checkpoints: a 28-byte header of seven int32 (dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size (negative: an unshared classifier follows), seq_len), then fp32 tensors
 * in a fixed order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_file.h"
#include "base/lanes_log.h"
#include "model_int.h"

#define HEADER_BYTES (7 * sizeof(int32_t))

/* Float count of each tensor in file order; freq is the unused RoPE table. */
typedef struct { size_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq, cls; } sizes_t;

static sizes_t tensor_sizes(const eng_model_cfg_t *c) {
    size_t d = (size_t)c->dim, h = (size_t)c->hidden_dim, l = (size_t)c->n_layers;
    size_t kv = d * (size_t)c->n_kv_heads / (size_t)c->n_heads, hs = d / (size_t)c->n_heads;
    size_t v = (size_t)c->vocab_size;
    return (sizes_t){v * d, l * d, l * d * d, l * d * kv, l * d * kv, l * d * d, l * d,
                     l * h * d, l * d * h, l * h * d, d, (size_t)c->seq_len * hs,
                     c->shared_cls ? 0 : v * d};
}

size_t eng__llama2c_floats(const eng_model_cfg_t *c) {
    sizes_t s = tensor_sizes(c);
    return s.emb + s.rms_att + s.wq + s.wk + s.wv + s.wo + s.rms_ffn + s.w1 + s.w2 + s.w3 +
           s.rms_final + s.freq + s.cls;
}

static eng_mat_t f32_mat(const float *p, int rows, int cols) {
    return (eng_mat_t){p, ENG_WT_F32, rows, cols};
}

void eng__model_bind_llama2c(eng_model_t *m, const float *p) {
    const eng_model_cfg_t *c = &m->cfg;
    sizes_t s = tensor_sizes(c);
    size_t d = (size_t)c->dim, h = (size_t)c->hidden_dim, kv = s.wk / (size_t)c->n_layers / d;
    const float *rms_att = p + s.emb, *wq = rms_att + s.rms_att, *wk = wq + s.wq, *wv = wk + s.wk;
    const float *wo = wv + s.wv, *rms_ffn = wo + s.wo, *w1 = rms_ffn + s.rms_ffn, *w2 = w1 + s.w1;
    const float *w3 = w2 + s.w2, *rms_final = w3 + s.w3, *cls = rms_final + s.rms_final + s.freq;
    for (size_t l = 0; l < (size_t)c->n_layers; l++)
        m->layers[l] = (eng_layer_t){
            .attn_norm = rms_att + l * d,
            .wq = f32_mat(wq + l * d * d, (int)d, (int)d),
            .wk = f32_mat(wk + l * kv * d, (int)kv, (int)d),
            .wv = f32_mat(wv + l * kv * d, (int)kv, (int)d),
            .wo = f32_mat(wo + l * d * d, (int)d, (int)d),
            .ffn_norm = rms_ffn + l * d,
            .w_gate = f32_mat(w1 + l * h * d, (int)h, (int)d),
            .w_down = f32_mat(w2 + l * d * h, (int)d, (int)h),
            .w_up = f32_mat(w3 + l * h * d, (int)h, (int)d),
        };
    m->w = (eng_weights_t){
        .tok_emb = f32_mat(p, c->vocab_size, (int)d),
        .out_norm = rms_final,
        .cls = f32_mat(c->shared_cls ? p : cls, c->vocab_size, (int)d),
        .layers = m->layers,
    };
    m->wtype = ENG_WT_F32;
    m->weight_bytes = eng__llama2c_floats(c) * sizeof(float);
}

int eng__model_load_llama2c(const char *path, eng_model_t **out) {
    int rc, fd = -1;
    const char *why = NULL;
    eng_model_t *m = NULL;
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
    eng_model_cfg_t cfg = {.dim = h[0], .hidden_dim = h[1], .n_layers = h[2], .n_heads = h[3],
                           .n_kv_heads = h[4], .vocab_size = vocab, .seq_len = h[6],
                           .shared_cls = h[5] > 0};
    if ((why = eng__model_check_cfg(&cfg)) != NULL) goto fail;
    cfg.head_dim = cfg.rope_dim = cfg.dim / cfg.n_heads;
    cfg.rope_base = 10000.0f;
    cfg.norm_eps = 1e-5f;
    cfg.numerics = ENG_NUMERICS_RUNC;
    cfg.arch = eng_arch_llama;
    size_t want = HEADER_BYTES + eng__llama2c_floats(&cfg) * sizeof(float);
    if (len != want) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: size %zu bytes, but the header (dim %d hidden %d "
                  "layers %d heads %d kv_heads %d vocab %d seq %d) needs %zu", path, len,
                  cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, h[5],
                  cfg.seq_len, want);
        goto fail;
    }
    if ((m = eng__model_alloc(cfg.n_layers)) == NULL) {
        rc = LANES_ENOMEM;
        goto fail;
    }
    m->cfg = cfg;
    m->map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        LANES_LOG(LANES_LOG_ERROR, "model %s: mmap failed: %s", path, strerror(errno));
        rc = LANES_EIO;
        goto fail;
    }
    m->map_len = len;
    close(fd);
    eng__model_bind_llama2c(m, (const float *)((const char *)m->map + HEADER_BYTES));
    const char *base = strrchr(path, '/');
    snprintf(m->name, sizeof m->name, "%s", base ? base + 1 : path);
    *out = m;
    return LANES_OK;
fail:
    if (why) LANES_LOG(LANES_LOG_ERROR, "model %s: %s", path, why);
    if (fd >= 0) close(fd);
    eng_model_destroy(m);
    return rc;
}

/* Only a model bound by eng__model_bind_llama2c() has the checkpoint's contiguous body. */
int eng_model_save(const eng_model_t *m, const char *path) {
    const eng_model_cfg_t *c = &m->cfg;
    if (m->gguf != NULL || m->wtype != ENG_WT_F32 || c->numerics != ENG_NUMERICS_RUNC ||
        strcmp(c->arch.name, "llama") != 0 || c->head_dim * c->n_heads != c->dim) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: only an F32 llama model of llama2.c's shape can be "
                  "saved as a llama2.c checkpoint", path);
        return LANES_EINVAL;
    }
    int32_t h[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                    c->shared_cls ? c->vocab_size : -c->vocab_size, c->seq_len};
    const float *body = m->w.tok_emb.data;
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: cannot create: %s", path, strerror(errno));
        return LANES_EIO;
    }
    size_t n = eng__llama2c_floats(c);
    int ok = fwrite(h, sizeof h, 1, f) == 1 && fwrite(body, sizeof(float), n, f) == n;
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: write failed: %s", path, strerror(errno));
        return LANES_EIO;
    }
    return LANES_OK;
}
