#ifndef ENG_BUNDLE_H
#define ENG_BUNDLE_H

#include <stdint.h>

#include "model/model.h"
#include "tok/tok.h"

/* A model with its tokenizer, as every program opens them: from a GGUF file (which carries its
 * tokenizer), from a llama2.c checkpoint and its tokenizer.bin, or the built-in synthetic model of a
 * preset ("tiny", "15m", "110m") when no model path is given. */
typedef struct {
    eng_model_t *model;     /* owned */
    eng_tok_t *tok;         /* owned */
} eng_bundle_t;

/* model_path NULL: synthesize preset (default "15m") from seed. tok_path: a llama2.c tokenizer,
 * required with a llama2.c checkpoint and refused with a GGUF file. Logs what is wrong on failure. */
int eng_bundle_open(eng_bundle_t *b, const char *model_path, const char *tok_path,
                    const char *preset, uint64_t seed);
void eng_bundle_close(eng_bundle_t *b);   /* zeroed or half-open is fine */

#endif
