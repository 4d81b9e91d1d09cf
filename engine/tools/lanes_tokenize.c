/* lanes-tokenize: the counterpart of llama.cpp's llama-tokenize. Each input line (or, with
 * --json, each JSON string on a line) becomes one output line: its ids as a JSON array, or with
 * --words an object {"words": [...], "ids": [...]} with the pre-tokenizer split as well. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "base/lanes_utf8.h"
#include "bundle.h"
#include "model/gguf.h"
#include "tok/tok.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lanes-tokenize -m FILE.gguf | -m MODEL.bin -z TOKENIZER.bin\n"
            "                      [--json] [--words] [--no-special] [--no-parse-special] < INPUT\n"
            "Tokenizes each stdin line (without its \\n; with --json each line is a JSON string)\n"
            "and prints its ids as a JSON array. A GGUF file may be vocab-only.\n"
            "  --words             print {\"words\": the pre-tokenizer split, \"ids\": ...}\n"
            "  --no-special        no BOS/EOS (add_bos_token/add_eos_token)\n"
            "  --no-parse-special  control-token texts in the input stay text\n");
}

/* Opens a GGUF file's tokenizer (by its magic), or a llama2.c model and tokenizer pair. */
static int open_tok(const char *model, const char *tokp, eng_bundle_t *b, eng_tok_t **tok) {
    char magic[4] = {0};
    FILE *f = fopen(model, "rb");
    if (f == NULL) {
        fprintf(stderr, "lanes-tokenize: cannot open %s\n", model);
        return LANES_EIO;
    }
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) {
        if (tokp) {
            fprintf(stderr, "lanes-tokenize: %s: a GGUF file holds its tokenizer; drop -z\n",
                    model);
            return LANES_EINVAL;
        }
        eng_gguf_t *g;
        int rc = eng_gguf_open(model, &g);
        if (rc < 0) return rc;
        rc = eng_tok_from_gguf(g, model, tok);
        eng_gguf_close(g);
        return rc;
    }
    int rc = eng_bundle_open(b, model, tokp, NULL, 0);
    *tok = b->tok;
    return rc;
}

static void add_word(void *arg, const char *start, size_t n) {
    char *valid = malloc(3 * n + 1);
    if (valid == NULL) return;                   /* the array comes out short; rare enough */
    lanes_utf8_sanitize(valid, start, n);
    cJSON_AddItemToArray(arg, cJSON_CreateString(valid));
    free(valid);
}

/* Prints one line for text[0..len); returns 0 or an error. */
static int tokenize_line(const eng_tok_t *tok, const char *text, size_t len, int flags,
                         int words) {
    int cap = len < 1u << 20 ? 2 * (int)len + 8 : 1 << 22, n;
    int32_t *ids = NULL;
    for (;;) {
        int32_t *grown = realloc(ids, (size_t)cap * sizeof *ids);
        if (grown == NULL) {
            free(ids);
            return LANES_ENOMEM;
        }
        ids = grown;
        if ((n = eng_tok_encode(tok, text, len, flags, ids, cap)) != LANES_ETOOLONG) break;
        cap *= 2;
    }
    if (n < 0) {
        free(ids);
        return n;
    }
    cJSON *o = cJSON_CreateIntArray(ids, n), *w = NULL;
    free(ids);
    if (words) {
        w = cJSON_CreateArray();
        int rc = eng_tok_words(tok, text, len, add_word, w);
        if (rc < 0) {
            cJSON_Delete(o);
            cJSON_Delete(w);
            return rc;
        }
        cJSON *obj = cJSON_CreateObject();
        cJSON_AddItemToObject(obj, "words", w);
        cJSON_AddItemToObject(obj, "ids", o);
        o = obj;
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s == NULL) return LANES_ENOMEM;
    puts(s);
    free(s);
    return LANES_OK;
}

int main(int argc, char **argv) {
    const char *model = NULL, *tokp = NULL;
    int json = 0, words = 0, flags = ENG_TOK_ADD_SPECIAL | ENG_TOK_PARSE_SPECIAL;
    static const struct option opts[] = {
        {"json", 0, 0, 'j'}, {"words", 0, 0, 'w'}, {"no-special", 0, 0, 'S'},
        {"no-parse-special", 0, 0, 'P'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "m:z:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'z': tokp = optarg; break;
        case 'j': json = 1; break;
        case 'w': words = 1; break;
        case 'S': flags &= ~ENG_TOK_ADD_SPECIAL; break;
        case 'P': flags &= ~ENG_TOK_PARSE_SPECIAL; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (model == NULL || optind != argc) {
        if (model == NULL) fprintf(stderr, "lanes-tokenize: no model: give -m FILE\n");
        usage(stderr);
        return 2;
    }
    eng_bundle_t b = {0};
    eng_tok_t *tok = NULL;
    if (open_tok(model, tokp, &b, &tok) < 0) {
        if (b.tok == NULL) eng_tok_destroy(tok);
        eng_bundle_close(&b);
        return 1;
    }
    int rc = LANES_OK;
    long line_no = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (rc == LANES_OK && (len = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        if (!json) {
            rc = tokenize_line(tok, line, (size_t)len, flags, words);
            continue;
        }
        /* The terminating NUL counts: cJSON's "nothing after the value" check reads it. */
        cJSON *j = cJSON_ParseWithLengthOpts(line, (size_t)len + 1, NULL, 1);
        if (!cJSON_IsString(j)) {
            fprintf(stderr, "lanes-tokenize: stdin line %ld: not one JSON string\n", line_no);
            rc = LANES_EINVAL;
        } else {
            rc = tokenize_line(tok, j->valuestring, strlen(j->valuestring), flags, words);
        }
        cJSON_Delete(j);
    }
    if (rc < 0 && rc != LANES_EINVAL)
        fprintf(stderr, "lanes-tokenize: stdin line %ld: %s\n", line_no, lanes_strerror(rc));
    free(line);
    if (b.tok == NULL) eng_tok_destroy(tok);
    eng_bundle_close(&b);
    return rc < 0 ? 1 : 0;
}
