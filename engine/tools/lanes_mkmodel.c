/* lanes-mkmodel: writes a deterministic synthetic model: a llama2.c checkpoint with its tokenizer,
 * or one GGUF file (weights in F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K, the tokenizer in its
 * metadata). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_arg.h"
#include "base/lanes_err.h"
#include "bundle.h"
#include "model/gguf.h"

static void usage(FILE *f) {
    fprintf(f, "usage: lanes-mkmodel --preset tiny|15m|110m [--seed S] -o MODEL.bin -t TOKENIZER.bin\n"
               "       lanes-mkmodel --preset tiny|15m|110m[-llama|-gemma3|-gemma4|-qwen35]\n"
               "                     [--seed S] --format gguf\n"
               "                     [--type f32|f16|bf16|q8_0|q4_0|q4_k|q6_k] -o MODEL.gguf\n"
               "A quantized model is its F32 twin quantized row by row (Q8_0, Q4_0 as llama-quantize\n"
               "does; Q4_K, Q6_K by lanes' plain scaling), embedding and classifier included. A\n"
               "matrix whose rows are not whole blocks falls back as llama-quantize's does: a\n"
               "k-quant to Q8_0 where 32-value blocks fit, else F16 (the tiny preset's ffn_down).\n");
}

static int write_gguf(const eng_bundle_t *b, const char *path) {
    eng_gguf_writer_t *w;
    int rc = eng_gguf_writer_create(0, &w);
    if (rc < 0) return rc;
    if ((rc = eng_model_to_gguf(b->model, w)) == LANES_OK &&
        (rc = eng_tok_to_gguf(b->tok, w)) == LANES_OK)
        rc = eng_gguf_writer_write(w, path);
    eng_gguf_writer_destroy(w);
    return rc;
}

int main(int argc, char **argv) {
    const char *preset = "15m", *model_out = NULL, *tok_out = NULL, *format = "llama2c";
    uint64_t seed = 1;
    int wtype = ENG_WT_F32, bad = 0;
    static const struct option opts[] = {{"preset", 1, 0, 'p'}, {"seed", 1, 0, 's'},
                                         {"format", 1, 0, 'f'}, {"type", 1, 0, 'y'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "o:t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': preset = optarg; break;
        case 's': bad |= lanes_arg_u64("--seed", optarg, &seed) < 0; break;
        case 'o': model_out = optarg; break;
        case 't': tok_out = optarg; break;
        case 'f': format = optarg; break;
        case 'y':
            wtype = eng_wtype_by_name(optarg);
            if (wtype < 0) {
                fprintf(stderr, "lanes-mkmodel: --type %s: f32, f16, bf16, q8_0, q4_0, q4_k or "
                        "q6_k\n", optarg);
                bad = 1;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int gguf = strcmp(format, "gguf") == 0;
    if (!gguf && strcmp(format, "llama2c") != 0) {
        fprintf(stderr, "lanes-mkmodel: --format %s: llama2c or gguf\n", format);
        bad = 1;
    }
    if (!gguf && wtype != ENG_WT_F32) {
        fprintf(stderr, "lanes-mkmodel: llama2.c checkpoints hold F32 weights only\n");
        bad = 1;
    }
    if (bad || !model_out || (gguf ? tok_out != NULL : tok_out == NULL) || optind != argc) {
        usage(stderr);
        return 2;
    }
    eng_model_cfg_t cfg;
    if (eng_model_preset(preset, &cfg) < 0) {
        fprintf(stderr, "lanes-mkmodel: unknown preset '%s' (tiny, 15m, 110m, each also as "
                "SHAPE-llama, -qwen2, -qwen3, -gpt2, -gemma3, -gemma4 or -qwen35)\n", preset);
        return 2;
    }
    eng_bundle_t b = {NULL, NULL};
    int rc = eng_model_synth(&cfg, seed, wtype, &b.model);
    if (rc == LANES_OK) rc = eng_tok_synth(cfg.vocab_size, seed, &b.tok);
    if (rc == LANES_OK)
        rc = gguf ? write_gguf(&b, model_out)
                  : eng_model_save(b.model, model_out) < 0 ? LANES_EIO : eng_tok_save(b.tok, tok_out);
    eng_bundle_close(&b);
    return rc < 0;
}
