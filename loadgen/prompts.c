#include "prompts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"

/* Varied lengths and openings, in the style of the TinyStories data the small models know. */
static const char *builtin[] = {
    "Once upon a time",
    "One day, a little girl named Lily found a needle in her room.",
    "The sun was shining and the birds were singing in the big green park.",
    "Tom had a red ball.",
    "Once upon a time, there was a small dog who loved to dig holes in the garden. Every morning",
    "The old man looked at the sea and said",
    "Sara and Ben wanted to build the tallest tower of blocks in the whole house, so they",
    "It was a cold winter night.",
    "A little bird could not fly. It sat on a branch and",
    "Mom said, \"Do not touch the hot stove!\" but Timmy",
    "In a big forest, there lived a wise owl, a shy rabbit and a very hungry bear. One morning the bear",
    "The cat",
    "Lucy had a dream about a magic boat that could sail to the moon.",
    "Every day after school, Max and his friend Zoe played a game in the yard. Today",
    "The king was sad because",
    "Once upon a time, in a tiny village near the mountains, there was a girl who could talk to "
    "the wind. The wind told her secrets about faraway places, and one day it told her",
};

char *lg_json_escape(const char *s, size_t n, size_t *out_len) {
    char *out = malloc(n * 6 + 1);                /* worst case: every byte as \u00XX */
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static int push(lg_prompts_t *p, const char *s, size_t n) {
    if (n == 0) return LANES_OK;
    char **e = realloc(p->esc, (size_t)(p->n + 1) * sizeof *e);
    if (!e) return LANES_ENOMEM;
    p->esc = e;
    size_t *l = realloc(p->len, (size_t)(p->n + 1) * sizeof *l);
    if (!l) return LANES_ENOMEM;
    p->len = l;
    char *out = lg_json_escape(s, n, &p->len[p->n]);
    if (!out) return LANES_ENOMEM;
    p->esc[p->n] = out;
    p->n++;
    return LANES_OK;
}

int lg_prompts_load(lg_prompts_t *p, const char *path) {
    int rc = LANES_OK;
    memset(p, 0, sizeof *p);
    if (path == NULL) {
        for (size_t i = 0; i < sizeof builtin / sizeof builtin[0] && rc == LANES_OK; i++)
            rc = push(p, builtin[i], strlen(builtin[i]));
        return rc;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: cannot read prompts %s: %s", path, strerror(errno));
        return LANES_ENOENT;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (rc == LANES_OK && (n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        rc = push(p, line, (size_t)n);
    }
    free(line);
    fclose(f);
    if (rc == LANES_OK && p->n == 0) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: no prompts in %s", path);
        rc = LANES_EINVAL;
    }
    return rc;
}

/* Words that are one token (with their leading space, and alone at the start) in the common
 * SentencePiece and byte-level BPE vocabularies (docs/LOADGEN.md says which were checked). */
static const char *const words[16] = {"the", "of", "and", "to", "in", "is", "was", "for",
                                      "on", "with", "as", "at", "by", "from", "that", "this"};

int lg_prompts_words(lg_prompts_t *p, int n_words) {
    memset(p, 0, sizeof *p);
    size_t cap = (size_t)n_words * 6 + 1;
    char *s = malloc(cap);
    if (!s) return LANES_ENOMEM;
    int rc = LANES_OK;
    for (int k = 0; k < 16 && rc == LANES_OK; k++) {
        size_t o = 0;
        for (int i = 0; i < n_words; i++)
            o += (size_t)snprintf(s + o, cap - o, "%s%s", i ? " " : "", words[(k + i) % 16]);
        rc = push(p, s, o);
    }
    free(s);
    return rc;
}

void lg_prompts_fini(lg_prompts_t *p) {
    for (int i = 0; i < p->n; i++) free(p->esc[i]);
    free(p->esc);
    free(p->len);
    memset(p, 0, sizeof *p);
}
