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

#endif
