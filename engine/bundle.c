#include "bundle.h"

#include <stddef.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "model/gguf.h"

/* A GGUF file carries its tokenizer; a llama2.c checkpoint needs its tokenizer.bin (-z). */
static int open_file_tok(eng_bundle_t *b, const char *model_path, const char *tok_path) {
    const eng_gguf_t *g = eng_model_gguf(b->model);
    if (g != NULL && tok_path != NULL) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: a GGUF file carries its own tokenizer: -z %s is "
                  "only for llama2.c checkpoints", model_path, tok_path);
        return LANES_EINVAL;
    }
    if (g == NULL && tok_path == NULL) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: a tokenizer file is needed too (-z)", model_path);
        return LANES_EINVAL;
    }
    int vocab = eng_model_cfg(b->model)->vocab_size;
    int rc = g ? eng_tok_from_gguf(g, model_path, &b->tok) : eng_tok_load(tok_path, vocab, &b->tok);
    if (rc == LANES_OK && eng_tok_vocab_size(b->tok) != vocab) {
        LANES_LOG(LANES_LOG_ERROR, "model %s: the tokenizer has %d tokens but the model %d",
                  model_path, eng_tok_vocab_size(b->tok), vocab);
        rc = LANES_EMODEL;
    }
    return rc;
}

int eng_bundle_open(eng_bundle_t *b, const char *model_path, const char *tok_path,
                    const char *preset, uint64_t seed) {
    int rc;
    *b = (eng_bundle_t){NULL, NULL};
    if (model_path) {
        if ((rc = eng_model_load(model_path, &b->model)) < 0) goto fail;
        if ((rc = open_file_tok(b, model_path, tok_path)) < 0) goto fail;
        return LANES_OK;
    }
    eng_model_cfg_t cfg;
    if (eng_model_preset(preset ? preset : "15m", &cfg) < 0) {
        LANES_LOG(LANES_LOG_ERROR, "unknown model preset '%s' (tiny, 15m, 110m)", preset);
        return LANES_EINVAL;
    }
    if ((rc = eng_model_synth(&cfg, seed, ENG_WT_F32, &b->model)) < 0) goto fail;
    rc = tok_path ? eng_tok_load(tok_path, cfg.vocab_size, &b->tok)
                  : eng_tok_synth(cfg.vocab_size, seed, &b->tok);
    if (rc < 0) goto fail;
    return LANES_OK;
fail:
    eng_bundle_close(b);
    return rc;
}

void eng_bundle_close(eng_bundle_t *b) {
    eng_tok_destroy(b->tok);
    eng_model_destroy(b->model);
    *b = (eng_bundle_t){NULL, NULL};
}
