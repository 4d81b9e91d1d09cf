#ifndef TEST_FAMILIES_H
#define TEST_FAMILIES_H

/* The small synthetic models of the issue-11 families that several tests run (their cfg on top
 * of a preset, shaped as the real test files are). */
#include "base/lanes_err.h"
#include "model/model.h"
#include "test_util.h"

/* tiny-gemma3 as gemma3-style.f32.gguf's pattern is: layers 0 and 1 sliding (window 5, which 48
 * positions pass many times over), 2 global, each kind with its own RoPE base and linear scaling. */
static inline void test_gemma3_cfg(eng_model_cfg_t *cfg) {
    ASSERT_EQ(eng_model_preset("tiny-gemma3", cfg), LANES_OK);
    cfg->n_layers = 3;
    cfg->seq_len = 256;
    cfg->window = 5;
    for (int l = 0; l < 3; l++) cfg->layer_swa[l] = l < 2;
    ASSERT(cfg->rope_base != cfg->rope_base_swa && cfg->rope_scale != 1.0f);
}

/* tiny-gemma4 as gemma4-style.f32.gguf is: layers 0 and 2 sliding (window 5), 1 and 3 full with
 * heads twice as wide, proportional RoPE and V = K; KV heads 2, 1, 2, 1; layers 2 and 3 read
 * layer 0's and layer 1's KV and have FFNs twice as wide; per-layer embeddings, layer output
 * scales, V norm, attention scale 1, logit softcap 30. */
static inline void test_gemma4_cfg(eng_model_cfg_t *cfg) {
    ASSERT_EQ(eng_model_preset("tiny-gemma4", cfg), LANES_OK);
    cfg->seq_len = 256;
    cfg->window = 5;
    for (int l = 0; l < 4; l++) cfg->layer_kv_heads[l] = l % 2 ? 1 : 2;
    ASSERT(cfg->n_layers == 4 && cfg->layer_kv_reuse[2] == 2 && cfg->layer_kv_reuse[3] == 2);
    ASSERT(cfg->head_dim == 2 * cfg->head_dim_swa && cfg->layer_hidden[3] == 2 * cfg->hidden_dim);
    ASSERT(cfg->ple_dim > 0 && cfg->final_softcap > 0 && cfg->attn_scale == 1.0f);
}

#endif
