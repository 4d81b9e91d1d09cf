/* Writing a model's description and weights as GGUF metadata and tensors (lanes-mkmodel). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "model/gguf.h"
#include "model_int.h"

static int add_mat(eng_gguf_writer_t *w, const char *name, const eng_mat_t *m) {
    if (m->data == NULL) return LANES_OK;
    uint64_t dims[2] = {(uint64_t)m->cols, (uint64_t)m->rows};
    return eng_gguf_writer_add_tensor(w, name, (uint32_t)m->type, 2, dims, m->data,
                                      (size_t)m->rows * eng_wtype_row_bytes(m->type, m->cols));
}

static int add_vec(eng_gguf_writer_t *w, const char *name, const float *v, int n) {
    if (v == NULL) return LANES_OK;
    uint64_t dims[1] = {(uint64_t)n};
    return eng_gguf_writer_add_tensor(w, name, ENG_GGML_F32, 1, dims, v, (size_t)n * sizeof *v);
}

static int add_u32(eng_gguf_writer_t *w, const char *arch, const char *key, uint64_t v) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return eng_gguf_writer_add(w, k, &(eng_gguf_value_t){.type = ENG_GGUF_U32, .num.u = v});
}

static int add_f32(eng_gguf_writer_t *w, const char *arch, const char *key, double v) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return eng_gguf_writer_add(w, k, &(eng_gguf_value_t){.type = ENG_GGUF_F32, .num.f = v});
}

static int add_str(eng_gguf_writer_t *w, const char *key, const char *s) {
    return eng_gguf_writer_add(w, key, &(eng_gguf_value_t){.type = ENG_GGUF_STRING, .str = s,
                                                           .len = strlen(s)});
}

/* The smallest period n of layer_swa (layer l slides iff l % n < n - 1; n_layers + 1: every
 * layer), or 0 when it has none. */
static int swa_period(const eng_model_cfg_t *c) {
    for (int n = 1; n <= c->n_layers + 1; n++) {
        int l = 0;
        while (l < c->n_layers && c->layer_swa[l] == (l % n < n - 1)) l++;
        if (l == c->n_layers) return n;
    }
    return 0;
}

/* gemma3's keys beyond llama's, as llama.cpp's converter writes them: the window, its layer
 * pattern (a period, or one bool per layer when no period gives it), the local RoPE base, and
 * the global layers' linear scaling as its factor. */
static int add_gemma3(eng_gguf_writer_t *w, const eng_model_cfg_t *c) {
    const char *a = c->arch.name;
    float scale = c->rope_scale ? c->rope_scale : 1.0f;
    int rc, period = swa_period(c);
    if ((rc = add_u32(w, a, "attention.sliding_window", (uint64_t)c->window)) < 0 ||
        (rc = add_f32(w, a, "rope.freq_base_swa", c->rope_base_swa)) < 0 ||
        (rc = add_str(w, "gemma3.rope.scaling.type", "linear")) < 0 ||
        (rc = add_f32(w, a, "rope.scaling.factor", 1.0f / scale)) < 0)
        return rc;
    if (period) return add_u32(w, a, "attention.sliding_window_pattern", (uint64_t)period);
    return eng_gguf_writer_add(w, "gemma3.attention.sliding_window_pattern", &(eng_gguf_value_t){
        .type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_BOOL, .count = (uint64_t)c->n_layers,
        .data = c->layer_swa});
}

int eng_model_to_gguf(const eng_model_t *m, eng_gguf_writer_t *w) {
    const eng_model_cfg_t *c = &m->cfg;
    const eng_weights_t *wt = &m->w;
    int gemma3 = strcmp(c->arch.name, "gemma3") == 0;
    if (strcmp(c->arch.name, "llama") != 0 && !gemma3) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: only llama and gemma3 models are written to GGUF "
                  "files", m->name);
        return LANES_EINVAL;
    }
    /* What a gemma3 file's reader takes as given (from_gguf.c). */
    if (gemma3 && (c->window < 1 || c->emb_scale != sqrtf((float)c->dim) ||
                   (c->rope_scale_swa != 0.0f && c->rope_scale_swa != 1.0f))) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: a gemma3 file holds only a window of at least 1, "
                  "the embedding scale sqrtf(dim) and unscaled RoPE on sliding layers", m->name);
        return LANES_EINVAL;
    }
    int ftype = eng_wtype_file_type(m->wtype);
    if (ftype < 0) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: %s weights have no general.file_type to write",
                  m->name, eng_wtype_name(m->wtype));
        return LANES_EINVAL;
    }
    const char *a = c->arch.name;
    int rc;
    if ((rc = add_str(w, "general.architecture", a)) < 0 || (rc = add_str(w, "general.name", m->name)) < 0 ||
        (rc = eng_gguf_writer_add(w, "general.file_type", &(eng_gguf_value_t){
             .type = ENG_GGUF_U32, .num.u = (uint64_t)ftype})) < 0 ||
        (eng_wtype_block(m->wtype) > 1 &&
         (rc = eng_gguf_writer_add(w, "general.quantization_version", &(eng_gguf_value_t){
              .type = ENG_GGUF_U32, .num.u = ENG_GGUF_QUANT_VERSION})) < 0) ||
        (rc = add_u32(w, a, "block_count", (uint64_t)c->n_layers)) < 0 ||
        (rc = add_u32(w, a, "context_length", (uint64_t)c->seq_len)) < 0 ||
        (rc = add_u32(w, a, "embedding_length", (uint64_t)c->dim)) < 0 ||
        (rc = add_u32(w, a, "feed_forward_length", (uint64_t)c->hidden_dim)) < 0 ||
        (rc = add_u32(w, a, "attention.head_count", (uint64_t)c->n_heads)) < 0 ||
        (rc = add_u32(w, a, "attention.head_count_kv", (uint64_t)c->n_kv_heads)) < 0 ||
        (rc = add_u32(w, a, "attention.key_length", (uint64_t)c->head_dim)) < 0 ||
        (rc = add_u32(w, a, "attention.value_length", (uint64_t)c->head_dim)) < 0 ||
        (rc = add_u32(w, a, "rope.dimension_count", (uint64_t)c->rope_dim)) < 0 ||
        (rc = add_u32(w, a, "vocab_size", (uint64_t)c->vocab_size)) < 0 ||
        (rc = add_f32(w, a, "rope.freq_base", c->rope_base)) < 0 ||
        (rc = add_f32(w, a, "attention.layer_norm_rms_epsilon", c->norm_eps)) < 0 ||
        (gemma3 && (rc = add_gemma3(w, c)) < 0))
        return rc;
    if ((rc = add_mat(w, "token_embd.weight", &wt->tok_emb)) < 0) return rc;
    for (int l = 0; l < c->n_layers; l++) {
        const eng_layer_t *ly = &wt->layers[l];
        /* Vectors are dim long but for the per-head QK norms; absent ones are not written. */
        struct { const char *role; const eng_mat_t *m; const float *v; int n; } t[] = {
            {"attn_norm.weight", NULL, ly->attn_norm, c->dim},
            {"attn_q.weight", &ly->wq, NULL, 0},
            {"attn_k.weight", &ly->wk, NULL, 0},
            {"attn_v.weight", &ly->wv, NULL, 0},
            {"attn_q_norm.weight", NULL, ly->q_norm, c->head_dim},
            {"attn_k_norm.weight", NULL, ly->k_norm, c->head_dim},
            {"attn_output.weight", &ly->wo, NULL, 0},
            {"post_attention_norm.weight", NULL, ly->post_attn_norm, c->dim},
            {"ffn_norm.weight", NULL, ly->ffn_norm, c->dim},
            {"ffn_gate.weight", &ly->w_gate, NULL, 0},
            {"ffn_down.weight", &ly->w_down, NULL, 0},
            {"ffn_up.weight", &ly->w_up, NULL, 0},
            {"post_ffw_norm.weight", NULL, ly->post_ffn_norm, c->dim},
        };
        for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s", l, t[i].role);
            if ((rc = t[i].m ? add_mat(w, name, t[i].m) : add_vec(w, name, t[i].v, t[i].n)) < 0)
                return rc;
        }
    }
    if ((rc = add_vec(w, "output_norm.weight", wt->out_norm, c->dim)) < 0 ||
        (rc = add_vec(w, "rope_freqs.weight", wt->rope_freqs, c->rope_dim / 2)) < 0)
        return rc;
    return c->shared_cls ? LANES_OK : add_mat(w, "output.weight", &wt->cls);
}
