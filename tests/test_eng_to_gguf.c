/* Writing models as GGUF (lanes-mkmodel --format gguf): a synthetic llama model in each weight
 * type, gemma3 ones (their sliding layers as a period or one bool per layer), qwen35 ones
 * (their delta-net layers as an interval or one bool per layer) and gemma4 ones (per-layer
 * shapes, shared KV, V = K, per-layer embeddings), written with its
 * tokenizer and opened again, has the same shape, the same tensor bytes, the same tokenizer, and
 * gives bitwise the same logits as the model in memory. A quantized synthetic
 * model is its F32 twin quantized row by row (F16 where rows are not whole blocks), and its file
 * holds those bytes with llama.cpp's file type. */
#include <stddef.h>
#include <stdint.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "bundle.h"
#include "engine.h"
#include "kern/quant.h"
#include "model/gguf.h"
#include "score.h"
#include "test_util.h"

static void same_mat(const eng_mat_t *a, const eng_mat_t *b) {
    ASSERT((a->data == NULL) == (b->data == NULL));
    if (a->data == NULL) return;   /* absent in both (a delta-net layer's wq, ...) */
    ASSERT_EQ(a->type, b->type);
    ASSERT_EQ(a->rows, b->rows);
    ASSERT_EQ(a->cols, b->cols);
    size_t row = eng_wtype_row_bytes(a->type, a->cols);
    ASSERT(row > 0 && memcmp(a->data, b->data, (size_t)a->rows * row) == 0);
}

static void same_vec(const float *a, const float *b, int n) {
    ASSERT((a == NULL) == (b == NULL));
    if (a) ASSERT(memcmp(a, b, (size_t)n * sizeof *a) == 0);
}

/* q is f32 (the same shape, F32) stored as wtype, or as F16 when its rows are not whole blocks. */
static void quantized_twin(const eng_mat_t *q, const eng_mat_t *f32, int wtype) {
    ASSERT(f32->type == ENG_WT_F32 && q->rows == f32->rows && q->cols == f32->cols);
    int want = f32->cols % eng_wtype_block(wtype) == 0 ? wtype : ENG_WT_F16;
    ASSERT_EQ(q->type, want);
    size_t rb = eng_wtype_row_bytes(want, q->cols);
    unsigned char *row = malloc(rb);
    for (int r = 0; r < q->rows; r++) {
        const float *x = (const float *)f32->data + (size_t)r * f32->cols;
        ASSERT_EQ(eng_wtype_row_from_f32(want, row, x, q->cols), LANES_OK);
        if (want == wtype) {   /* the conversion is eng_quant_row itself */
            unsigned char *ref = malloc(rb);
            ASSERT_EQ(eng_quant_row(wtype, ref, x, q->cols), 0);
            ASSERT(memcmp(ref, row, rb) == 0);
            free(ref);
        }
        ASSERT(memcmp((const char *)q->data + (size_t)r * rb, row, rb) == 0);
    }
    free(row);
}

/* The tensor named name in g has m's type, shape and bytes. */
static void file_has_mat(const eng_gguf_t *g, const char *name, const eng_mat_t *m) {
    const eng_gguf_tensor_t *t = eng_gguf_tensor_find(g, name);
    ASSERT(t != NULL);
    ASSERT_EQ(t->type, m->type);
    ASSERT(t->n_dims == 2 && t->dims[0] == (uint64_t)m->cols && t->dims[1] == (uint64_t)m->rows);
    ASSERT_EQ(t->bytes, (size_t)m->rows * eng_wtype_row_bytes(m->type, m->cols));
    ASSERT(memcmp(t->data, m->data, t->bytes) == 0);
}

static uint64_t u32_key(const eng_gguf_t *g, const char *key) {
    const eng_gguf_kv_t *kv = eng_gguf_kv_find(g, key);
    ASSERT(kv != NULL && kv->val.type == ENG_GGUF_U32);
    return kv->val.num.u;
}

/* A quantized synthetic model of shape cfg against its F32 twin, in memory and as a GGUF file. */
static void quantized(const eng_model_cfg_t *cfg, int wtype, const char *path) {
    eng_model_t *q, *f;
    ASSERT_EQ(eng_model_synth(cfg, 7, wtype, &q), LANES_OK);
    ASSERT_EQ(eng_model_synth(cfg, 7, ENG_WT_F32, &f), LANES_OK);
    ASSERT_EQ(eng_model_wtype(q), wtype);
    const eng_weights_t *wq = eng_model_weights(q), *wf = eng_model_weights(f);
    int d = cfg->dim, f16 = 0;
    quantized_twin(&wq->tok_emb, &wf->tok_emb, wtype);
    quantized_twin(&wq->cls, &wf->cls, wtype);
    same_vec(wq->out_norm, wf->out_norm, d);
    same_vec(wq->rope_freqs, wf->rope_freqs, cfg->rope_dim / 2);
    for (int l = 0; l < cfg->n_layers; l++) {
        const eng_layer_t *a = &wq->layers[l], *b = &wf->layers[l];
        const eng_mat_t *ma[] = {&a->wq, &a->wk, &a->wv, &a->wo, &a->w_gate, &a->w_up, &a->w_down};
        const eng_mat_t *mb[] = {&b->wq, &b->wk, &b->wv, &b->wo, &b->w_gate, &b->w_up, &b->w_down};
        for (int i = 0; i < 7; i++) {
            quantized_twin(ma[i], mb[i], wtype);
            f16 += ma[i]->type == ENG_WT_F16;
        }
        same_vec(a->attn_norm, b->attn_norm, d);
        same_vec(a->ffn_norm, b->ffn_norm, d);
    }

    eng_gguf_writer_t *w;
    ASSERT_EQ(eng_gguf_writer_create(0, &w), LANES_OK);
    ASSERT_EQ(eng_model_to_gguf(q, w), LANES_OK);
    ASSERT_EQ(eng_gguf_writer_write(w, path), LANES_OK);
    eng_gguf_writer_destroy(w);
    eng_gguf_t *g;
    ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
    ASSERT_EQ(u32_key(g, "general.file_type"), wtype == ENG_WT_Q8_0 ? 7 : 2);
    ASSERT_EQ(u32_key(g, "general.quantization_version"), 2);
    file_has_mat(g, "token_embd.weight", &wq->tok_emb);
    file_has_mat(g, "output.weight", &wq->cls);
    char name[64];
    for (int l = 0; l < cfg->n_layers; l++) {
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        file_has_mat(g, name, &wq->layers[l].wq);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        file_has_mat(g, name, &wq->layers[l].w_down);
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        const eng_gguf_tensor_t *t = eng_gguf_tensor_find(g, name);
        ASSERT(t != NULL && t->type == ENG_GGML_F32);
    }
    eng_gguf_close(g);
    printf("to_gguf %s hidden %d: every matrix its F32 twin's rows quantized (%d F16 for rows not "
           "whole blocks), written as file type %d\n", eng_wtype_name(wtype), cfg->hidden_dim,
           f16, wtype == ENG_WT_Q8_0 ? 7 : 2);
    ASSERT_EQ(f16, cfg->hidden_dim % 32 ? cfg->n_layers : 0);
    eng_model_destroy(q);
    eng_model_destroy(f);
}

static void scores(const eng_model_t *m, const int32_t *seq, int n, eng_score_t *out) {
    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {1, 16, 1, ENG_GEMM_LANES, 0};
    ASSERT_EQ(eng_ctx_create(m, &cc, &ctx), LANES_OK);
    ASSERT_EQ(eng_score(ctx, 0, seq, n, out), LANES_OK);
    eng_ctx_destroy(ctx);
}

/* cfg: tiny-llama (the tiny shape with GGUF numerics: ggml's norms and RoPE angles, which is what
 * a llama GGUF file is computed with when it is opened again), or a gemma3 one. */
static void round_trip(const eng_model_cfg_t *cfg, int wtype, const char *path) {
    eng_bundle_t mem = {NULL, NULL}, file;
    ASSERT_EQ(eng_model_synth(cfg, 5, wtype, &mem.model), LANES_OK);
    ASSERT_EQ(eng_tok_synth(cfg->vocab_size, 5, &mem.tok), LANES_OK);
    eng_gguf_writer_t *w;
    ASSERT_EQ(eng_gguf_writer_create(0, &w), LANES_OK);
    ASSERT_EQ(eng_model_to_gguf(mem.model, w), LANES_OK);
    ASSERT_EQ(eng_tok_to_gguf(mem.tok, w), LANES_OK);
    ASSERT_EQ(eng_gguf_writer_write(w, path), LANES_OK);
    eng_gguf_writer_destroy(w);

    ASSERT_EQ(eng_bundle_open(&file, path, NULL, NULL, 0), LANES_OK);
    const eng_model_cfg_t *a = eng_model_cfg(mem.model), *b = eng_model_cfg(file.model);
    ASSERT_STR_EQ(b->arch.name, a->arch.name);
    ASSERT(memcmp(&b->arch.norm, &a->arch.norm, sizeof a->arch - offsetof(eng_arch_t, norm)) == 0);
    ASSERT_EQ(b->dim, a->dim);
    ASSERT_EQ(b->n_layers, a->n_layers);
    ASSERT_EQ(b->n_heads, a->n_heads);
    ASSERT_EQ(b->head_dim, a->head_dim);
    ASSERT_EQ(b->rope_dim, a->rope_dim);
    ASSERT_EQ(b->vocab_size, a->vocab_size);
    ASSERT_EQ(b->seq_len, a->seq_len);
    ASSERT_EQ(b->shared_cls, a->shared_cls);
    ASSERT_EQ(b->numerics, a->numerics);
    ASSERT(b->rope_base == a->rope_base && b->norm_eps == a->norm_eps);
    ASSERT(b->emb_scale == a->emb_scale);
    ASSERT((b->rope_scale ? b->rope_scale : 1) == (a->rope_scale ? a->rope_scale : 1));   /* 0: 1 */
    ASSERT_EQ(b->window, a->window);
    ASSERT(b->rope_base_swa == a->rope_base_swa && b->rope_scale_swa == a->rope_scale_swa);
    ASSERT(memcmp(b->layer_swa, a->layer_swa, sizeof a->layer_swa) == 0);
    ASSERT(memcmp(b->layer_kind, a->layer_kind, sizeof a->layer_kind) == 0);
    ASSERT(b->ssm_k_heads == a->ssm_k_heads && b->ssm_v_heads == a->ssm_v_heads);
    ASSERT(b->ssm_head_dim == a->ssm_head_dim && b->ssm_conv_kernel == a->ssm_conv_kernel);
    ASSERT(b->head_dim_swa == a->head_dim_swa && b->rope_dim_swa == a->rope_dim_swa);
    /* Each layer's FFN width and KV heads (a file with one per layer gives every layer its own,
     * the largest model-wide; a preset gives only the layers that differ theirs). */
    for (int l = 0; l < a->n_layers; l++) {
        ASSERT_EQ(eng_layer_hidden(b, l), eng_layer_hidden(a, l));
        ASSERT_EQ(eng_layer_kv_heads(b, l), eng_layer_kv_heads(a, l));
    }
    ASSERT(memcmp(b->layer_kv_reuse, a->layer_kv_reuse, sizeof a->layer_kv_reuse) == 0);
    ASSERT(b->ple_dim == a->ple_dim && b->attn_scale == a->attn_scale);
    ASSERT(b->final_softcap == a->final_softcap);
    ASSERT_EQ(eng_model_wtype(file.model), wtype);
    const eng_weights_t *wa = eng_model_weights(mem.model), *wb = eng_model_weights(file.model);
    same_mat(&wa->tok_emb, &wb->tok_emb);
    same_mat(&wa->cls, &wb->cls);
    same_vec(wa->out_norm, wb->out_norm, a->dim);
    same_vec(wa->rope_freqs, wb->rope_freqs, a->rope_dim / 2);
    same_mat(&wa->ple_tok_emb, &wb->ple_tok_emb);
    same_mat(&wa->ple_model_proj, &wb->ple_model_proj);
    same_vec(wa->ple_proj_norm, wb->ple_proj_norm, a->ple_dim);
    for (int l = 0; l < a->n_layers; l++) {
        const eng_layer_t *la = &wa->layers[l], *lb = &wb->layers[l];
        int hd = eng_layer_head_dim(a, l);
        same_mat(&la->wq, &lb->wq);
        same_mat(&la->wk, &lb->wk);
        same_mat(&la->wv, &lb->wv);
        same_mat(&la->wo, &lb->wo);
        same_mat(&la->w_gate, &lb->w_gate);
        same_mat(&la->w_up, &lb->w_up);
        same_mat(&la->w_down, &lb->w_down);
        same_vec(la->attn_norm, lb->attn_norm, a->dim);
        same_vec(la->ffn_norm, lb->ffn_norm, a->dim);
        same_vec(la->q_norm, lb->q_norm, hd);
        same_vec(la->k_norm, lb->k_norm, hd);
        ASSERT((la->wv.data == la->wk.data) == (lb->wv.data == lb->wk.data));   /* V = K */
        same_mat(&la->ple_gate, &lb->ple_gate);
        same_mat(&la->ple_proj, &lb->ple_proj);
        same_vec(la->ple_post_norm, lb->ple_post_norm, a->dim);
        same_vec(la->out_scale, lb->out_scale, 1);
        same_vec(la->post_attn_norm, lb->post_attn_norm, a->dim);
        same_vec(la->post_ffn_norm, lb->post_ffn_norm, a->dim);
        ASSERT((la->post_ffn_norm != NULL) == a->arch.post_norms);
        int hv = a->ssm_v_heads, sd = a->ssm_head_dim, dnet = a->layer_kind[l] == ENG_LAYER_DNET;
        same_mat(&la->ssm_qkv, &lb->ssm_qkv);
        same_mat(&la->ssm_gate, &lb->ssm_gate);
        same_mat(&la->ssm_beta, &lb->ssm_beta);
        same_mat(&la->ssm_alpha, &lb->ssm_alpha);
        same_mat(&la->ssm_out, &lb->ssm_out);
        same_vec(la->ssm_conv, lb->ssm_conv, (2 * a->ssm_k_heads + hv) * sd * a->ssm_conv_kernel);
        same_vec(la->ssm_dt_bias, lb->ssm_dt_bias, hv);
        same_vec(la->ssm_a, lb->ssm_a, hv);
        same_vec(la->ssm_norm, lb->ssm_norm, sd);
        ASSERT((la->ssm_conv != NULL) == dnet && (la->wq.data == NULL) == dnet);
    }

    /* The tokenizer, now SentencePiece metadata, encodes and decodes as the llama2.c one. */
    static const char *texts[] = {"Once upon a time", "hello world", " two  spaces", "x"};
    int32_t seq[64];
    int n = 0;
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t ia[32], ib[32];
        size_t len = strlen(texts[i]);
        int na = eng_tok_encode(mem.tok, texts[i], len, ENG_TOK_ADD_SPECIAL, ia, 32);
        int nb = eng_tok_encode(file.tok, texts[i], len, ENG_TOK_ADD_SPECIAL, ib, 32);
        test_expect_ids(ib, nb, ia, na, "%s", texts[i]);
        if (i == 0) memcpy(seq, ia, (size_t)(n = na) * sizeof *ia);
    }
    ASSERT(eng_tok_is_eog(file.tok, ENG_TOK_EOS) && !eng_tok_is_eog(file.tok, 100));

    for (int i = n; i < 24; i++) seq[i] = (int32_t)(i * 37 % a->vocab_size);
    eng_score_t sa[24], sb[24];
    scores(mem.model, seq, 24, sa);
    scores(file.model, seq, 24, sb);
    ASSERT(memcmp(sa, sb, sizeof sa) == 0);
    eng_bundle_close(&mem);
    eng_bundle_close(&file);
}

/* The values of two metadata pairs are equal (arrays: their type, length and bytes). */
static int same_value(const eng_gguf_value_t *a, const eng_gguf_value_t *b) {
    if (a->type != b->type) return 0;
    if (a->type == ENG_GGUF_STRING) return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    if (a->type != ENG_GGUF_ARRAY) return memcmp(&a->num, &b->num, sizeof a->num) == 0;
    if (a->elem_type != b->elem_type || a->count != b->count) return 0;
    for (uint64_t i = 0; a->elem_type == ENG_GGUF_STRING && i < a->count; i++) {
        size_t la, lb;
        const char *sa = eng_gguf_arr_str(a, i, &la), *sb = eng_gguf_arr_str(b, i, &lb);
        if (la != lb || memcmp(sa, sb, la) != 0) return 0;
    }
    return a->elem_type == ENG_GGUF_STRING ||
           memcmp(a->data, b->data, (size_t)a->count * eng_gguf_value_size(a->elem_type)) == 0;
}

/* gemma4-style.f32.gguf written again (its tokenizer pairs copied over): every tensor of the file
 * in the new one with its type, shape and bytes, and every pair with its type and value, but
 * general.description and general.quantization_version (F32: not written). */
static void rewrite_shared(const char *path) {
    const char *shared = test_shared_dir();
    if (shared == NULL) {
        printf("to_gguf gemma4-style: ../shared not found (set LANES_SHARED), not rewritten\n");
        return;
    }
    char src[4096];
    snprintf(src, sizeof src, "%s/models/gguf/gemma4-style.f32.gguf", shared);
    eng_model_t *m;
    ASSERT_EQ(eng_model_load(src, &m), LANES_OK);
    const eng_gguf_t *g = eng_model_gguf(m);
    eng_gguf_writer_t *w;
    ASSERT_EQ(eng_gguf_writer_create(0, &w), LANES_OK);
    ASSERT_EQ(eng_model_to_gguf(m, w), LANES_OK);
    for (size_t i = 0; i < eng_gguf_kv_count(g); i++) {
        const eng_gguf_kv_t *kv = eng_gguf_kv_at(g, i);
        if (kv->key_len > 10 && memcmp(kv->key, "tokenizer.", 10) == 0) {
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)kv->key_len, kv->key);
            ASSERT_EQ(eng_gguf_writer_add(w, key, &kv->val), LANES_OK);
        }
    }
    ASSERT_EQ(eng_gguf_writer_write(w, path), LANES_OK);
    eng_gguf_writer_destroy(w);
    eng_gguf_t *out;
    ASSERT_EQ(eng_gguf_open(path, &out), LANES_OK);
    int keys = 0;
    for (size_t i = 0; i < eng_gguf_kv_count(g); i++) {
        const eng_gguf_kv_t *kv = eng_gguf_kv_at(g, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)kv->key_len, kv->key);
        if (!strcmp(key, "general.description") || !strcmp(key, "general.quantization_version"))
            continue;
        const eng_gguf_kv_t *nk = eng_gguf_kv_find(out, key);
        if (nk == NULL || !same_value(&kv->val, &nk->val)) {
            fprintf(stderr, "gemma4-style rewritten: key %s %s\n", key, nk ? "differs" : "missing");
            exit(1);
        }
        keys++;
    }
    ASSERT_EQ(eng_gguf_tensor_count(out), eng_gguf_tensor_count(g));
    for (size_t i = 0; i < eng_gguf_tensor_count(g); i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name_len, t->name);
        const eng_gguf_tensor_t *nt = eng_gguf_tensor_find(out, name);
        if (nt == NULL || nt->type != t->type || nt->n_dims != t->n_dims ||
            memcmp(nt->dims, t->dims, sizeof t->dims) != 0 || nt->bytes != t->bytes ||
            memcmp(nt->data, t->data, t->bytes) != 0) {
            fprintf(stderr, "gemma4-style rewritten: tensor %s %s\n", name,
                    nt ? "differs" : "missing");
            exit(1);
        }
    }
    printf("to_gguf gemma4-style.f32 written again: its %zu tensors and %d pairs (all but "
           "general.description, general.quantization_version) equal\n",
           eng_gguf_tensor_count(g), keys);
    eng_gguf_close(out);
    eng_model_destroy(m);
    ASSERT_EQ(unlink(path), 0);
}

int main(void) {
    char dir[] = "/tmp/lanes-to-gguf-XXXXXX", path[64];
    ASSERT(mkdtemp(dir) != NULL);
    lanes_log_level = LANES_LOG_ERROR;
    int types[] = {ENG_WT_F32, ENG_WT_F16, ENG_WT_BF16, ENG_WT_Q8_0, ENG_WT_Q4_0};
    eng_model_cfg_t cfg;
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    ASSERT_EQ(eng_model_preset("tiny-llama", &cfg), LANES_OK);
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        round_trip(&cfg, types[i], path);
        ASSERT_EQ(unlink(path), 0);
        printf("to_gguf %s: shape, tensors, tokenizer and logits equal after a round trip\n",
               eng_wtype_name(types[i]));
    }
    /* gemma3: the tiny preset (layer 0 slides, layer 1 is global: period 2), 15m's Gemma 3
     * pattern (period 6), both tiny layers sliding (period 3), and layers that no period gives
     * (written as one bool per layer, 0). */
    static const struct { const char *preset; int swa0, swa1; unsigned period; } gemma[] = {
        {"tiny-gemma3", 1, 0, 2}, {"15m-gemma3", 1, 1, 6}, {"tiny-gemma3", 1, 1, 3},
        {"tiny-gemma3", 0, 1, 0},
    };
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(eng_model_preset(gemma[i].preset, &cfg), LANES_OK);
        cfg.layer_swa[0] = (uint8_t)gemma[i].swa0;
        cfg.layer_swa[1] = (uint8_t)gemma[i].swa1;
        round_trip(&cfg, i == 0 ? ENG_WT_Q8_0 : ENG_WT_F32, path);
        eng_gguf_t *g;
        ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
        const eng_gguf_kv_t *kv = eng_gguf_kv_find(g, "gemma3.attention.sliding_window_pattern");
        ASSERT(kv != NULL);
        ASSERT(gemma[i].period ? kv->val.type == ENG_GGUF_U32 && kv->val.num.u == gemma[i].period
                               : kv->val.type == ENG_GGUF_ARRAY &&
                                     kv->val.elem_type == ENG_GGUF_BOOL);
        eng_gguf_close(g);
        ASSERT_EQ(unlink(path), 0);
        printf("to_gguf %s (pattern %u, 0: a bool per layer): shape, sliding layers, tensors, "
               "tokenizer and logits equal after a round trip\n", gemma[i].preset, gemma[i].period);
    }
    /* qwen35: tiny (layer 0 a delta net, layer 1 attention: interval 2), 15m's Qwen3.5 pattern
     * (interval 4: layers 3 attention, 0-2, 4 and 5 delta nets), and kinds that no interval gives
     * (one bool per layer in attention.recurrent_layers). */
    static const char *qwen[] = {"tiny-qwen35", "15m-qwen35", "tiny-qwen35"};
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(eng_model_preset(qwen[i], &cfg), LANES_OK);
        if (i == 2) {
            cfg.layer_kind[0] = ENG_LAYER_ATTN;
            cfg.layer_kind[1] = ENG_LAYER_DNET;
        }
        round_trip(&cfg, i == 0 ? ENG_WT_Q8_0 : ENG_WT_F32, path);
        eng_gguf_t *g;
        ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
        const eng_gguf_kv_t *kv = eng_gguf_kv_find(g, "qwen35.full_attention_interval");
        const eng_gguf_kv_t *arr = eng_gguf_kv_find(g, "qwen35.attention.recurrent_layers");
        ASSERT(i == 2 ? kv == NULL && arr && arr->val.elem_type == ENG_GGUF_BOOL
                      : arr == NULL && kv && kv->val.num.u == (i ? 4u : 2u));
        eng_gguf_close(g);
        ASSERT_EQ(unlink(path), 0);
        printf("to_gguf %s%s: shape, layer kinds, tensors, tokenizer and logits equal after a "
               "round trip\n", qwen[i], i == 2 ? " (layers 0 attention, 1 delta net)" : "");
    }
    /* gemma4: tiny (as gemma4-style: layers 0, 2 sliding, 1, 3 full, 2 and 3 sharing 0's and
     * 1's KV, 1 without attn_v), 15m's E2B-like pattern, tiny with one KV head count per layer
     * and a linear scaling of the global layers; then gemma3 with a softcap. */
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(eng_model_preset(i == 1 ? "15m-gemma4" : "tiny-gemma4", &cfg), LANES_OK);
        if (i == 2) {
            cfg.layer_kv_heads[0] = cfg.layer_kv_heads[2] = (uint16_t)cfg.n_kv_heads;
            cfg.layer_kv_heads[1] = cfg.layer_kv_heads[3] = 1;
            cfg.rope_scale = 0.5f;
        }
        if (i == 3) {
            ASSERT_EQ(eng_model_preset("tiny-gemma3", &cfg), LANES_OK);
            cfg.final_softcap = 20.0f;
        }
        round_trip(&cfg, i == 0 ? ENG_WT_Q8_0 : ENG_WT_F32, path);
        eng_gguf_t *g;
        ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
        int shared = 0, full_kv = 0;
        for (int l = 0; l < cfg.n_layers; l++) {
            char name[64];
            shared += cfg.layer_kv_reuse[l] != 0;
            full_kv += !cfg.layer_swa[l] && !cfg.layer_kv_reuse[l];
            snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
            if (i < 3 && (cfg.layer_kv_reuse[l] || !cfg.layer_swa[l]))
                ASSERT(eng_gguf_tensor_find(g, name) == NULL);   /* shared, or V = K */
            snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
            if (i < 3) ASSERT((eng_gguf_tensor_find(g, name) == NULL) == !!cfg.layer_kv_reuse[l]);
        }
        if (i < 3) {
            ASSERT_EQ(u32_key(g, "gemma4.attention.shared_kv_layers"), (uint64_t)shared);
            ASSERT(shared > 0 && full_kv > 0);
        }
        eng_gguf_close(g);
        ASSERT_EQ(unlink(path), 0);
        printf("to_gguf %s%s: shape, per-layer shapes and shared KV, tensors, tokenizer and "
               "logits equal after a round trip (%d shared layers)\n",
               i == 1 ? "15m-gemma4" : i == 3 ? "tiny-gemma3" : "tiny-gemma4",
               i == 2 ? " (KV heads per layer, global RoPE scaled)" : i == 3 ? " (softcap 20)" : "",
               shared);
    }
    rewrite_shared(path);
    /* tiny-llama's ffn_down rows (172) fit no block: they stay F16; hidden 256 fits. */
    ASSERT_EQ(eng_model_preset("tiny-llama", &cfg), LANES_OK);
    for (int h = 0; h < 2; h++) {
        cfg.hidden_dim = h ? 256 : 172;
        for (int q = 0; q < 2; q++) {
            quantized(&cfg, q ? ENG_WT_Q4_0 : ENG_WT_Q8_0, path);
            ASSERT_EQ(unlink(path), 0);
        }
    }
    ASSERT_EQ(rmdir(dir), 0);
    return 0;
}
