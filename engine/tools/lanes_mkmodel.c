/* lanes-mkmodel: writes a deterministic synthetic llama2.c checkpoint and a matching tokenizer. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "bundle.h"

static void usage(FILE *f) {
    fprintf(f, "usage: lanes-mkmodel --preset tiny|15m|110m [--seed S] -o MODEL.bin -t TOKENIZER.bin\n");
}

int main(int argc, char **argv) {
    const char *preset = "15m", *model_out = NULL, *tok_out = NULL;
    unsigned long long seed = 1;
    static const struct option opts[] = {{"preset", 1, 0, 'p'}, {"seed", 1, 0, 's'},
                                         {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "o:t:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': preset = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'o': model_out = optarg; break;
        case 't': tok_out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!model_out || !tok_out || optind != argc) {
        usage(stderr);
        return 2;
    }
    eng_bundle_t b;
    if (eng_bundle_open(&b, NULL, NULL, preset, seed) < 0) return 1;
    int rc = eng_model_save(b.model, model_out) < 0 || eng_tok_save(b.tok, tok_out) < 0;
    eng_bundle_close(&b);
    return rc;
}
