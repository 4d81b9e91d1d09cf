/* Writing models as GGUF (lanes-mkmodel --format gguf): a synthetic llama model in each weight
 * type, written with its tokenizer and opened again, has the same shape, the same tensor bytes, the
 * same tokenizer, and gives bitwise the same logits as the model in memory. */
#include <stdint.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "bundle.h"
#include "engine.h"
#include "model/gguf.h"
#include "score.h"
#include "test_util.h"

static void same_mat(const eng_mat_t *a, const eng_mat_t *b) {
    ASSERT_EQ(a->type, b->type);
    ASSERT_EQ(a->rows, b->rows);
    ASSERT_EQ(a->cols, b->cols);
    ASSERT(memcmp(a->data, b->data, (size_t)a->rows * a->cols * eng_wtype_size(a->type)) == 0);
}

static void same_vec(const float *a, const float *b, int n) {
    ASSERT((a == NULL) == (b == NULL));
    if (a) ASSERT(memcmp(a, b, (size_t)n * sizeof *a) == 0);
}

static void scores(const eng_model_t *m, const int32_t *seq, int n, eng_score_t *out) {
    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {1, 16, 1, ENG_GEMM_LANES, 0};
    ASSERT_EQ(eng_ctx_create(m, &cc, &ctx), LANES_OK);
    ASSERT_EQ(eng_score(ctx, 0, seq, n, out), LANES_OK);
    eng_ctx_destroy(ctx);
}

static void round_trip(int wtype, const char *path) {
    eng_model_cfg_t cfg;
    /* tiny-llama: the tiny shape with GGUF numerics (ggml's norms and RoPE angles), which is what
     * a llama GGUF file is computed with when it is opened again. */
    ASSERT_EQ(eng_model_preset("tiny-llama", &cfg), LANES_OK);
    eng_bundle_t mem = {NULL, NULL}, file;
    ASSERT_EQ(eng_model_synth(&cfg, 5, wtype, &mem.model), LANES_OK);
    ASSERT_EQ(eng_tok_synth(cfg.vocab_size, 5, &mem.tok), LANES_OK);
    eng_gguf_writer_t *w;
    ASSERT_EQ(eng_gguf_writer_create(0, &w), LANES_OK);
    ASSERT_EQ(eng_model_to_gguf(mem.model, w), LANES_OK);
    ASSERT_EQ(eng_tok_to_gguf(mem.tok, w), LANES_OK);
    ASSERT_EQ(eng_gguf_writer_write(w, path), LANES_OK);
    eng_gguf_writer_destroy(w);

    ASSERT_EQ(eng_bundle_open(&file, path, NULL, NULL, 0), LANES_OK);
    const eng_model_cfg_t *a = eng_model_cfg(mem.model), *b = eng_model_cfg(file.model);
    ASSERT_EQ(b->dim, a->dim);
    ASSERT_EQ(b->hidden_dim, a->hidden_dim);
    ASSERT_EQ(b->n_layers, a->n_layers);
    ASSERT_EQ(b->n_heads, a->n_heads);
    ASSERT_EQ(b->n_kv_heads, a->n_kv_heads);
    ASSERT_EQ(b->head_dim, a->head_dim);
    ASSERT_EQ(b->vocab_size, a->vocab_size);
    ASSERT_EQ(b->seq_len, a->seq_len);
    ASSERT_EQ(b->shared_cls, a->shared_cls);
    ASSERT(b->rope_base == a->rope_base && b->norm_eps == a->norm_eps);
    ASSERT_EQ(eng_model_wtype(file.model), wtype);
    const eng_weights_t *wa = eng_model_weights(mem.model), *wb = eng_model_weights(file.model);
    same_mat(&wa->tok_emb, &wb->tok_emb);
    same_mat(&wa->cls, &wb->cls);
    same_vec(wa->out_norm, wb->out_norm, a->dim);
    for (int l = 0; l < a->n_layers; l++) {
        const eng_layer_t *la = &wa->layers[l], *lb = &wb->layers[l];
        same_mat(&la->wq, &lb->wq);
        same_mat(&la->wk, &lb->wk);
        same_mat(&la->wv, &lb->wv);
        same_mat(&la->wo, &lb->wo);
        same_mat(&la->w_gate, &lb->w_gate);
        same_mat(&la->w_up, &lb->w_up);
        same_mat(&la->w_down, &lb->w_down);
        same_vec(la->attn_norm, lb->attn_norm, a->dim);
        same_vec(la->ffn_norm, lb->ffn_norm, a->dim);
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

int main(void) {
    char dir[] = "/tmp/lanes-to-gguf-XXXXXX", path[64];
    ASSERT(mkdtemp(dir) != NULL);
    lanes_log_level = LANES_LOG_ERROR;
    int types[] = {ENG_WT_F32, ENG_WT_F16, ENG_WT_BF16};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/m.gguf", dir);
        round_trip(types[i], path);
        ASSERT_EQ(unlink(path), 0);
        printf("to_gguf %s: shape, tensors, tokenizer and logits equal after a round trip\n",
               eng_wtype_name(types[i]));
    }
    ASSERT_EQ(rmdir(dir), 0);
    return 0;
}
