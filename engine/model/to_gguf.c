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
 * pattern (a period, or one bool per layer when no period gives it), the local RoPE base, the
 * global layers' linear scaling as its factor, and the final softcap when there is one. */
static int add_gemma3(eng_gguf_writer_t *w, const eng_model_cfg_t *c) {
    const char *a = c->arch.name;
    float scale = c->rope_scale ? c->rope_scale : 1.0f;
    int rc, period = swa_period(c);
    if ((rc = add_u32(w, a, "attention.sliding_window", (uint64_t)c->window)) < 0 ||
        (rc = add_f32(w, a, "rope.freq_base_swa", c->rope_base_swa)) < 0 ||
        (rc = add_str(w, "gemma3.rope.scaling.type", "linear")) < 0 ||
        (rc = add_f32(w, a, "rope.scaling.factor", 1.0f / scale)) < 0 ||
        (c->final_softcap &&
         (rc = add_f32(w, a, "final_logit_softcapping", c->final_softcap)) < 0))
        return rc;
    if (period) return add_u32(w, a, "attention.sliding_window_pattern", (uint64_t)period);
    return eng_gguf_writer_add(w, "gemma3.attention.sliding_window_pattern", &(eng_gguf_value_t){
        .type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_BOOL, .count = (uint64_t)c->n_layers,
        .data = c->layer_swa});
}

static int add_i32s(eng_gguf_writer_t *w, const char *arch, const char *key, const int32_t *v,
                    int n) {
    char k[96];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    return eng_gguf_writer_add(w, k, &(eng_gguf_value_t){.type = ENG_GGUF_ARRAY,
                                                         .elem_type = ENG_GGUF_I32,
                                                         .count = (uint64_t)n, .data = v});
}

/* Whether gemma4's shared KV is llama.cpp's: the last *shared layers reuse, each the layer
 * n_layers - shared - 2 when it slides, - 1 when global, and no other layer does. */
static int gemma4_shared(const eng_model_cfg_t *c, int *shared) {
    int first = c->n_layers;
    while (first > 0 && c->layer_kv_reuse[first - 1]) first--;
    *shared = c->n_layers - first;
    for (int l = 0; l < c->n_layers; l++) {
        int src = l < first ? l : first - (c->layer_swa[l] ? 2 : 1);
        if (c->layer_kv_reuse[l] != l - src) return 0;
    }
    return 1;
}

/* gemma4's keys beyond llama's, as llama.cpp's converter writes them: FFN widths and KV heads as
 * one INT32 per layer when a layer has its own, the sliding layers' head and RoPE dims, the window
 * and its per-layer bools, the local RoPE base, the global layers' linear scaling when there is
 * one, the shared-KV layer count, the per-layer embedding width and the softcap. */
static int add_gemma4(eng_gguf_writer_t *w, const eng_model_cfg_t *c, int shared) {
    const char *a = c->arch.name;
    int32_t ff[ENG_MAX_LAYERS], kv[ENG_MAX_LAYERS];
    int per_ff = 0, per_kv = 0, rc;
    for (int l = 0; l < c->n_layers; l++) {
        ff[l] = eng_layer_hidden(c, l);
        kv[l] = eng_layer_kv_heads(c, l);
        per_ff |= c->layer_hidden[l] != 0;
        per_kv |= c->layer_kv_heads[l] != 0;
    }
    int hd_swa = c->head_dim_swa ? c->head_dim_swa : c->head_dim;
    int rope_swa = c->rope_dim_swa ? c->rope_dim_swa : c->rope_dim;
    float scale = c->rope_scale ? c->rope_scale : 1.0f;
    if ((rc = per_ff ? add_i32s(w, a, "feed_forward_length", ff, c->n_layers)
                     : add_u32(w, a, "feed_forward_length", (uint64_t)c->hidden_dim)) < 0 ||
        (rc = per_kv ? add_i32s(w, a, "attention.head_count_kv", kv, c->n_layers)
                     : add_u32(w, a, "attention.head_count_kv", (uint64_t)c->n_kv_heads)) < 0 ||
        (rc = add_u32(w, a, "attention.key_length_swa", (uint64_t)hd_swa)) < 0 ||
        (rc = add_u32(w, a, "attention.value_length_swa", (uint64_t)hd_swa)) < 0 ||
        (rc = add_u32(w, a, "rope.dimension_count_swa", (uint64_t)rope_swa)) < 0 ||
        (rc = add_f32(w, a, "rope.freq_base_swa", c->rope_base_swa)) < 0 ||
        (rc = add_u32(w, a, "attention.sliding_window", (uint64_t)c->window)) < 0 ||
        (rc = eng_gguf_writer_add(w, "gemma4.attention.sliding_window_pattern",
                                  &(eng_gguf_value_t){.type = ENG_GGUF_ARRAY,
                                                      .elem_type = ENG_GGUF_BOOL,
                                                      .count = (uint64_t)c->n_layers,
                                                      .data = c->layer_swa})) < 0 ||
        (rc = add_u32(w, a, "attention.shared_kv_layers", (uint64_t)shared)) < 0 ||
        (rc = add_u32(w, a, "embedding_length_per_layer_input", (uint64_t)c->ple_dim)) < 0 ||
        (rc = add_f32(w, a, "final_logit_softcapping", c->final_softcap)) < 0)
        return rc;
    if (scale == 1.0f) return LANES_OK;
    if ((rc = add_str(w, "gemma4.rope.scaling.type", "linear")) < 0) return rc;
    return add_f32(w, a, "rope.scaling.factor", 1.0f / scale);
}

/* The interval n of layer_kind (layer l a delta net iff (l + 1) % n != 0), or 0 when none gives
 * it. */
static int attn_interval(const eng_model_cfg_t *c) {
    for (int n = 1; n <= c->n_layers; n++) {
        int l = 0;
        while (l < c->n_layers && (c->layer_kind[l] == ENG_LAYER_DNET) == ((l + 1) % n != 0)) l++;
        if (l == c->n_layers) return n;
    }
    return 0;
}

/* qwen35's keys beyond llama's: RoPE sections that make its IMROPE plain NEOX on text (pair class
 * k of t, h, w gets the ceil((P - k) / 3) of the P pairs that are k mod 3, as Qwen3.5's own
 * [11, 11, 10, 0] for 32; from_gguf.c reads them back as NEOX), the delta-net shape, and which
 * layers are delta nets: full_attention_interval, or one bool per layer in
 * attention.recurrent_layers when no interval gives them. */
static int add_qwen35(eng_gguf_writer_t *w, const eng_model_cfg_t *c) {
    const char *a = c->arch.name;
    int p = c->rope_dim / 2, rc, every = attn_interval(c);
    int32_t sections[4] = {(p + 2) / 3, (p + 1) / 3, p / 3, 0};
    uint8_t recurrent[ENG_MAX_LAYERS];
    eng_gguf_value_t secs = {.type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_I32, .count = 4,
                             .data = sections};
    if ((rc = eng_gguf_writer_add(w, "qwen35.rope.dimension_sections", &secs)) < 0 ||
        (rc = add_u32(w, a, "ssm.conv_kernel", (uint64_t)c->ssm_conv_kernel)) < 0 ||
        (rc = add_u32(w, a, "ssm.state_size", (uint64_t)c->ssm_head_dim)) < 0 ||
        (rc = add_u32(w, a, "ssm.group_count", (uint64_t)c->ssm_k_heads)) < 0 ||
        (rc = add_u32(w, a, "ssm.time_step_rank", (uint64_t)c->ssm_v_heads)) < 0 ||
        (rc = add_u32(w, a, "ssm.inner_size", (uint64_t)c->ssm_v_heads * c->ssm_head_dim)) < 0)
        return rc;
    if (every) return add_u32(w, a, "full_attention_interval", (uint64_t)every);
    for (int l = 0; l < c->n_layers; l++) recurrent[l] = c->layer_kind[l] == ENG_LAYER_DNET;
    return eng_gguf_writer_add(w, "qwen35.attention.recurrent_layers", &(eng_gguf_value_t){
        .type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_BOOL, .count = (uint64_t)c->n_layers,
        .data = recurrent});
}

int eng_model_to_gguf(const eng_model_t *m, eng_gguf_writer_t *w) {
    const eng_model_cfg_t *c = &m->cfg;
    const eng_weights_t *wt = &m->w;
    int gemma3 = strcmp(c->arch.name, "gemma3") == 0, qwen35 = strcmp(c->arch.name, "qwen35") == 0;
    int gemma4 = strcmp(c->arch.name, "gemma4") == 0, shared = 0;
    if (strcmp(c->arch.name, "llama") != 0 && !gemma3 && !qwen35 && !gemma4) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: only llama, gemma3, qwen35 and gemma4 models are "
                  "written to GGUF files", m->name);
        return LANES_EINVAL;
    }
    /* What a gemma4 file's reader takes as given (from_gguf.c): llama.cpp's shared-KV rule, a
     * window, sqrtf(dim), unscaled scores and local RoPE, a global head's rope_freqs. */
    if (gemma4 && (!gemma4_shared(c, &shared) || c->window < 1 ||
                   c->emb_scale != sqrtf((float)c->dim) || c->attn_scale != 1.0f ||
                   (c->rope_scale_swa != 0.0f && c->rope_scale_swa != 1.0f) ||
                   (wt->rope_freqs && c->rope_dim != c->head_dim))) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: a gemma4 file holds only llama.cpp's shared-KV "
                  "layers (the last ones, each reusing the last layer of its kind before them), "
                  "a window of at least 1, the embedding scale sqrtf(dim), attention scale 1, "
                  "unscaled RoPE on sliding layers and RoPE over all of a global head with "
                  "rope_freqs", m->name);
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
        (!gemma4 && (rc = add_u32(w, a, "feed_forward_length", (uint64_t)c->hidden_dim)) < 0) ||
        (rc = add_u32(w, a, "attention.head_count", (uint64_t)c->n_heads)) < 0 ||
        (!gemma4 &&
         (rc = add_u32(w, a, "attention.head_count_kv", (uint64_t)c->n_kv_heads)) < 0) ||
        (rc = add_u32(w, a, "attention.key_length", (uint64_t)c->head_dim)) < 0 ||
        (rc = add_u32(w, a, "attention.value_length", (uint64_t)c->head_dim)) < 0 ||
        (rc = add_u32(w, a, "rope.dimension_count", (uint64_t)c->rope_dim)) < 0 ||
        (rc = add_u32(w, a, "vocab_size", (uint64_t)c->vocab_size)) < 0 ||
        (rc = add_f32(w, a, "rope.freq_base", c->rope_base)) < 0 ||
        (rc = add_f32(w, a, "attention.layer_norm_rms_epsilon", c->norm_eps)) < 0 ||
        (gemma3 && (rc = add_gemma3(w, c)) < 0) || (qwen35 && (rc = add_qwen35(w, c)) < 0) ||
        (gemma4 && (rc = add_gemma4(w, c, shared)) < 0))
        return rc;
    if ((rc = add_mat(w, "token_embd.weight", &wt->tok_emb)) < 0 ||
        (rc = add_mat(w, "per_layer_token_embd.weight", &wt->ple_tok_emb)) < 0 ||
        (rc = add_mat(w, "per_layer_model_proj.weight", &wt->ple_model_proj)) < 0 ||
        (rc = add_vec(w, "per_layer_proj_norm.weight", wt->ple_proj_norm, c->ple_dim)) < 0)
        return rc;
    for (int l = 0; l < c->n_layers; l++) {
        const eng_layer_t *ly = &wt->layers[l];
        /* Vectors are dim long but for the per-head QK norms (the layer's head), the delta net's
         * and the output scale; absent ones are not written, nor is a wv that is wk (gemma4: no
         * attn_v). qwen35 names its pre-FFN norm post_attention_norm. */
        int hv = c->ssm_v_heads, sd = c->ssm_head_dim, hd = eng_layer_head_dim(c, l);
        const eng_mat_t none = {0}, *wv = ly->wv.data == ly->wk.data ? &none : &ly->wv;
        struct { const char *role; const eng_mat_t *m; const float *v; int n; } t[] = {
            {"attn_norm.weight", NULL, ly->attn_norm, c->dim},
            {"attn_q.weight", &ly->wq, NULL, 0},
            {"attn_k.weight", &ly->wk, NULL, 0},
            {"attn_v.weight", wv, NULL, 0},
            {"attn_q_norm.weight", NULL, ly->q_norm, hd},
            {"attn_k_norm.weight", NULL, ly->k_norm, hd},
            {"attn_output.weight", &ly->wo, NULL, 0},
            {"post_attention_norm.weight", NULL, ly->post_attn_norm, c->dim},
            {qwen35 ? "post_attention_norm.weight" : "ffn_norm.weight", NULL, ly->ffn_norm,
             c->dim},
            {"ffn_gate.weight", &ly->w_gate, NULL, 0},
            {"ffn_down.weight", &ly->w_down, NULL, 0},
            {"ffn_up.weight", &ly->w_up, NULL, 0},
            {"post_ffw_norm.weight", NULL, ly->post_ffn_norm, c->dim},
            {"attn_qkv.weight", &ly->ssm_qkv, NULL, 0},
            {"attn_gate.weight", &ly->ssm_gate, NULL, 0},
            {"ssm_dt.bias", NULL, ly->ssm_dt_bias, hv},
            {"ssm_a", NULL, ly->ssm_a, hv},
            {"ssm_beta.weight", &ly->ssm_beta, NULL, 0},
            {"ssm_alpha.weight", &ly->ssm_alpha, NULL, 0},
            {"ssm_norm.weight", NULL, ly->ssm_norm, sd},
            {"ssm_out.weight", &ly->ssm_out, NULL, 0},
            {"layer_output_scale.weight", NULL, ly->out_scale, 1},
            {"inp_gate.weight", &ly->ple_gate, NULL, 0},
            {"proj.weight", &ly->ple_proj, NULL, 0},
            {"post_norm.weight", NULL, ly->ple_post_norm, c->dim},
        };
        for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s", l, t[i].role);
            if ((rc = t[i].m ? add_mat(w, name, t[i].m) : add_vec(w, name, t[i].v, t[i].n)) < 0)
                return rc;
        }
        /* ggml's [taps, channels]: channel c's taps in a row, in F32 as its ssm_conv takes it */
        char name[64];
        int ch = (2 * c->ssm_k_heads + hv) * sd;
        uint64_t dims[2] = {(uint64_t)c->ssm_conv_kernel, (uint64_t)ch};
        snprintf(name, sizeof name, "blk.%d.ssm_conv1d.weight", l);
        if (ly->ssm_conv &&
            (rc = eng_gguf_writer_add_tensor(w, name, ENG_GGML_F32, 2, dims, ly->ssm_conv,
                                             (size_t)ch * (size_t)c->ssm_conv_kernel *
                                                 sizeof *ly->ssm_conv)) < 0)
            return rc;
    }
    if ((rc = add_vec(w, "output_norm.weight", wt->out_norm, c->dim)) < 0 ||
        (rc = add_vec(w, "rope_freqs.weight", wt->rope_freqs, c->rope_dim / 2)) < 0)
        return rc;
    return c->shared_cls ? LANES_OK : add_mat(w, "output.weight", &wt->cls);
}
