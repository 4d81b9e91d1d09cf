/* eng__bpe (byte-level BPE): llama.cpp's words and ids for the 90 strings under each of the 13
 * pre-tokenizers of shared/models/gguf/vocab, its own GPT-2 test strings through the three
 * GPT-2-vocab models, byte-exact decoding, random and hostile bytes, long words, bad input. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "base/lanes_rand.h"
#include "model/gguf.h"
#include "test_json.h"
#include "tok/bpe.h"

#define MAX_IDS (1 << 20)

static const char *const PRES[] = {"gpt-2",     "llama-bpe",      "qwen2",         "qwen35",
                                   "smollm",    "starcoder",      "falcon",        "tekken",
                                   "gpt-4o",    "olmo",           "deepseek-llm",  "deepseek-coder",
                                   "deepseek-v3"};
#define N_PRES (int)(sizeof PRES / sizeof PRES[0])

static const char *shared;
static int32_t ids[MAX_IDS];

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The tokenizer arrays of a GGUF file, borrowed from it. */
typedef struct {
    eng_gguf_t *g;
    eng_bpe_str_t *tokens, *merges;
    int n_tokens, n_merges;
    const char *pre;
    size_t pre_len;
} vocab_t;

static eng_bpe_str_t *str_array(const eng_gguf_t *g, const char *key, int *n) {
    const eng_gguf_kv_t *kv = eng_gguf_kv_find(g, key);
    ASSERT(kv != NULL);
    ASSERT_EQ(kv->val.type, ENG_GGUF_ARRAY);
    ASSERT_EQ(kv->val.elem_type, ENG_GGUF_STRING);
    *n = (int)kv->val.count;
    eng_bpe_str_t *a = calloc(kv->val.count + 1, sizeof *a);
    ASSERT(a != NULL);
    for (uint64_t i = 0; i < kv->val.count; i++) a[i].s = eng_gguf_arr_str(&kv->val, i, &a[i].len);
    return a;
}

static vocab_t vocab_open(const char *path) {
    vocab_t v = {0};
    ASSERT_EQ(eng_gguf_open(path, &v.g), LANES_OK);
    v.tokens = str_array(v.g, "tokenizer.ggml.tokens", &v.n_tokens);
    v.merges = str_array(v.g, "tokenizer.ggml.merges", &v.n_merges);
    const eng_gguf_kv_t *pre = eng_gguf_kv_find(v.g, "tokenizer.ggml.pre");
    ASSERT(pre != NULL && pre->val.type == ENG_GGUF_STRING);
    v.pre = pre->val.str;
    v.pre_len = pre->val.len;
    return v;
}

static void vocab_close(vocab_t *v) {
    free(v->tokens);
    free(v->merges);
    eng_gguf_close(v->g);
}

static eng_bpe_t *bpe_of(const vocab_t *v, const char *path) {
    eng_bpe_t *b = NULL;
    ASSERT_EQ(eng__bpe_create(v->tokens, v->n_tokens, v->merges, v->n_merges, v->pre, v->pre_len,
                              path, &b),
              LANES_OK);
    return b;
}

/* Text for a failure message: printable ASCII as it is, anything else escaped. */
static void print_escaped(const char *what, const char *s, size_t n) {
    fprintf(stderr, "%s \"", what);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') fputc(c, stderr);
        else fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "\"\n");
}

/* ---- words, ids and pieces against llama.cpp's refs ---------------------------------------- */

typedef struct {
    const char *base;
    size_t n, cap;
    size_t *start, *len;
} words_t;

static void on_word(void *arg, const char *s, size_t len) {
    words_t *w = arg;
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->start = realloc(w->start, w->cap * sizeof *w->start);
        w->len = realloc(w->len, w->cap * sizeof *w->len);
        ASSERT(w->start && w->len);
    }
    w->start[w->n] = (size_t)(s - w->base);
    w->len[w->n++] = len;
}

/* Whether pieces of ids[0..n) concatenate to text[0..len). */
static int pieces_equal(const eng_bpe_t *b, const int32_t *t, int n, const char *text, size_t len) {
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t pl;
        const char *p = eng__bpe_piece(b, t[i], &pl);
        if (pl > len - at || memcmp(p, text + at, pl) != 0) return 0;
        at += pl;
    }
    return at == len;
}

typedef struct {
    const eng_bpe_t *b;
    const char *pre;
    int words_ok, ids_ok, decode_ok, printed;
} counts_t;

static void check_ref_line(const cJSON *j, int line, void *arg) {
    counts_t *c = arg;
    const eng_bpe_t *b = c->b;
    const char *pre = c->pre;
    const cJSON *text = cJSON_GetObjectItem(j, "text"), *words = cJSON_GetObjectItem(j, "words");
    ASSERT(cJSON_IsString(text) && cJSON_IsArray(words));
    const char *s = text->valuestring;
    size_t len = strlen(s);
    static int32_t want[MAX_IDS];
    int nw = test_json_ids(cJSON_GetObjectItem(j, "ids"), want, MAX_IDS);

    words_t w = {.base = s};
    ASSERT_EQ(eng__bpe_words(b, s, len, on_word, &w), LANES_OK);
    int ok = (int)w.n == cJSON_GetArraySize(words);
    for (size_t i = 0; ok && i < w.n; i++) {
        const char *ws = cJSON_GetArrayItem(words, (int)i)->valuestring;
        ok = strlen(ws) == w.len[i] && memcmp(ws, s + w.start[i], w.len[i]) == 0;
    }
    c->words_ok += ok;
    if (!ok && c->printed++ == 0) {
        fprintf(stderr, "%s line %d: words differ\n", pre, line);
        print_escaped("  text", s, len);
        for (int i = 0; i < cJSON_GetArraySize(words); i++) {
            const char *ws = cJSON_GetArrayItem(words, i)->valuestring;
            print_escaped("  llama.cpp", ws, strlen(ws));
        }
        for (size_t i = 0; i < w.n; i++) print_escaped("  ours     ", s + w.start[i], w.len[i]);
    }
    free(w.start);
    free(w.len);

    int n = eng__bpe_encode(b, s, len, ids, MAX_IDS);
    ASSERT_GE(n, 0);
    ok = n == nw;
    for (int i = 0; ok && i < n; i++) ok = ids[i] == want[i];
    c->ids_ok += ok;
    if (!ok && c->printed++ == 0) {
        fprintf(stderr, "%s line %d: ids differ\n", pre, line);
        print_escaped("  text", s, len);
        fprintf(stderr, "  llama.cpp:");
        for (int i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n  ours:     ");
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    /* llama.cpp's detok differs from the text only by its clean_spaces pass; the raw pieces of
     * its ids give the text back for every line (the vocab README's check 4), so ours must too. */
    c->decode_ok += pieces_equal(b, ids, n, s, len);
}

static void test_refs(void) {
    char path[4096];
    int total_bad = 0;
    for (int p = 0; p < N_PRES; p++) {
        snprintf(path, sizeof path, "%s/models/gguf/vocab/vocab-gpt2.%s.gguf", shared, PRES[p]);
        vocab_t v = vocab_open(path);
        ASSERT(v.pre_len == strlen(PRES[p]) && memcmp(v.pre, PRES[p], v.pre_len) == 0);
        eng_bpe_t *b = bpe_of(&v, path);
        snprintf(path, sizeof path, "%s/refs/gguf/tokenizer/vocab-gpt2.%s.tokens.jsonl", shared,
                 PRES[p]);
        counts_t c = {.b = b, .pre = PRES[p]};
        int lines = test_json_lines(path, check_ref_line, &c);
        printf("%-14s words %d/%d  ids %d/%d  pieces %d/%d\n", PRES[p], c.words_ok, lines,
               c.ids_ok, lines, c.decode_ok, lines);
        ASSERT_EQ(lines, 90);
        total_bad += 3 * lines - c.words_ok - c.ids_ok - c.decode_ok;
        eng__bpe_destroy(b);
        vocab_close(&v);
    }
    ASSERT_EQ(total_bad, 0);
}

static void check_round_trip(const eng_bpe_t *b, const char *pre, const char *s, size_t len);

/* ---- splits the refs do not reach ------------------------------------------------------------
 * Derived by hand from llama.cpp's unicode.cpp (the refs have no such text): each case fails if
 * one of pretok.c's rewrites is undone. Words are separated by "|". */

static void check_words(const eng_bpe_t *b, const char *pre, const char *text, const char *want) {
    words_t w = {.base = text};
    ASSERT_EQ(eng__bpe_words(b, text, strlen(text), on_word, &w), LANES_OK);
    char got[256] = "";
    for (size_t i = 0; i < w.n; i++) {
        ASSERT_LT(strlen(got) + w.len[i] + 2, sizeof got);
        if (i) strcat(got, "|");
        strncat(got, text + w.start[i], w.len[i]);
    }
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "%s: words of the text below differ\n", pre);
        print_escaped("  text", text, strlen(text));
        print_escaped("  llama.cpp", want, strlen(want));
        print_escaped("  ours     ", got, strlen(got));
        exit(1);
    }
    free(w.start);
    free(w.len);
}

static void test_rules(void) {
    static const struct { const char *pre, *text, *words; } cases[] = {
        /* U+180E is no whitespace to llama.cpp (Unicode dropped it in 6.3), but PCRE2's \s. */
        {"gpt-2", "!\xe1\xa0\x8e?", "!\xe1\xa0\x8e?"},
        {"llama-bpe", "x\xe1\xa0\x8e\xe1\xa0\x8ey", "x|\xe1\xa0\x8e\xe1\xa0\x8e|y"},
        /* std::wregex sees U+3000 as U+000B, outside deepseek-llm's class that lists it. */
        {"deepseek-llm", "\xe3\x80\x80\xe3\x80\x80!", "\xe3\x80\x80|\xe3\x80\x80!"},
        /* "~" is neither \p{P} nor \p{S} in the collapsed text: a letter may follow it. */
        {"deepseek-v3", "~\xc3\xa9", "~\xc3\xa9"},
        {"deepseek-v3", "a ~~", "a| |~~"},
        /* Bad bytes are U+FFFD (a symbol) to llama.cpp, and stay in the word as they are. */
        {"gpt-2", "a\xff!", "a|\xff!"},
        {"gpt-2", "a\xc3(b", "a|\xc3(|b"},
        {"deepseek-v3", "x\xff+", "x|\xff+"},
        /* An overlong form is the code point it spells (here "A"); a surrogate is no letter. */
        {"qwen2", "a\xc1\x81" "b", "a\xc1\x81" "b"},
        {"qwen2", "\xed\xa0\x80z", "\xed\xa0\x80z"},
    };
    char path[4096];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        snprintf(path, sizeof path, "%s/models/gguf/vocab/vocab-gpt2.%s.gguf", shared, cases[k].pre);
        vocab_t v = vocab_open(path);
        eng_bpe_t *b = bpe_of(&v, path);
        check_words(b, cases[k].pre, cases[k].text, cases[k].words);
        check_round_trip(b, cases[k].pre, cases[k].text, strlen(cases[k].text));
        eng__bpe_destroy(b);
        vocab_close(&v);
    }
    printf("rules: %zu splits the refs do not reach\n", sizeof cases / sizeof cases[0]);
}

/* ignore_merges (llama-bpe, tekken): a word that is a token is that token even when no merge
 * makes it; of two tokens with one text the last id is the one, as llama.cpp's token_to_id. */
static void test_ignore_merges(void) {
    char path[4096];
    for (int p = 0; p < N_PRES; p++) {
        snprintf(path, sizeof path, "%s/models/gguf/vocab/vocab-gpt2.%s.gguf", shared, PRES[p]);
        vocab_t v = vocab_open(path);
        eng_bpe_t *b = NULL;
        ASSERT_EQ(eng__bpe_create(v.tokens, v.n_tokens, v.merges, 0, v.pre, v.pre_len, path, &b),
                  LANES_OK);
        int n = eng__bpe_encode(b, "Hello", 5, ids, MAX_IDS);
        int ignores = strcmp(PRES[p], "llama-bpe") == 0 || strcmp(PRES[p], "tekken") == 0;
        ASSERT_EQ(n, ignores ? 1 : 5);
        ASSERT_EQ(ids[0], ignores ? 15496 : 39);   /* "Hello", or "H" */
        eng__bpe_destroy(b);
        /* One more token, with the text of "Hello": it wins, with merges or without. */
        v.tokens[v.n_tokens] = v.tokens[15496];
        ASSERT_EQ(eng__bpe_create(v.tokens, v.n_tokens + 1, v.merges, v.n_merges, v.pre, v.pre_len,
                                  path, &b),
                  LANES_OK);
        ASSERT_EQ(eng__bpe_encode(b, "Hello", 5, ids, MAX_IDS), 1);
        ASSERT_EQ(ids[0], v.n_tokens);
        eng__bpe_destroy(b);
        vocab_close(&v);
    }
    printf("ignore_merges: llama-bpe and tekken only; duplicate texts: the last id\n");
}

/* ---- llama.cpp's test-tokenizer-0 strings for the GPT-2 vocab ------------------------------ */

static void test_inp_out(const char *model) {
    char path[4096];
    snprintf(path, sizeof path, "%s/models/gguf/%s", shared, model);
    vocab_t v = vocab_open(path);
    eng_bpe_t *b = bpe_of(&v, path);
    size_t isz, osz;
    snprintf(path, sizeof path, "%s/refs/gguf/ggml-vocab-gpt-2.gguf.inp", shared);
    char *inp = test_read_file(path, &isz);
    snprintf(path, sizeof path, "%s/refs/gguf/ggml-vocab-gpt-2.gguf.out", shared);
    char *out = test_read_file(path, &osz);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int n_ok = 0, n = 0;
    char *s = inp, *o = out;
    for (char *e; (e = strstr(s, sep)) != NULL; s = e + strlen(sep), n++) {
        char *ol = strchr(o, '\n');
        ASSERT(ol != NULL);
        *ol = 0;
        int got = eng__bpe_encode(b, s, (size_t)(e - s), ids, MAX_IDS), k = 0, ok = got >= 0;
        for (char *q = o, *end; ok && *q; q = end) {
            long id = strtol(q, &end, 10);
            if (end == q) break;
            ok = k < got && ids[k++] == id;
        }
        ok = ok && k == got;
        n_ok += ok;
        if (!ok) {
            fprintf(stderr, "%s: string %d differs\n", model, n);
            print_escaped("  text", s, (size_t)(e - s));
            fprintf(stderr, "  llama.cpp: %s\n  ours:     ", o);
            for (int i = 0; i < got; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n");
        }
        o = ol + 1;
    }
    printf("%-22s ggml-vocab-gpt-2.gguf.inp %d/%d\n", model, n_ok, n);
    ASSERT_EQ(n, 46);
    ASSERT_EQ(n_ok, n);
    free(inp);
    free(out);
    eng__bpe_destroy(b);
    vocab_close(&v);
}

/* ---- random and hostile bytes ------------------------------------------------------------- */

/* Bytes that exercise every path: ASCII letters, digits, spaces and newlines, apostrophes,
 * UTF-8 lead and continuation bytes in and out of order, and whole multi-byte characters. */
static size_t random_text(uint64_t *rng, char *buf, size_t max) {
    static const char *const bits[] = {"a", "Z", "7", " ", "\n", "\r", "\t", "'", "'s", "~", ".",
                                       "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x81", "\xcc\x81",
                                       "\xe3\x80\x80", "\xc2\x85", "\xe2\x80\xa8", "\x80", "\xbf",
                                       "\xc3", "\xe4\xb8", "\xf0\x9f", "\xff", "\xc0\x80",
                                       "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x00", "\x0b"};
    size_t n = 0, want = lanes_splitmix64(rng) % max;
    while (n < want) {
        if (lanes_splitmix64(rng) % 3 == 0) {
            buf[n++] = (char)(lanes_splitmix64(rng) & 0xff);
            continue;
        }
        const char *b = bits[lanes_splitmix64(rng) % (sizeof bits / sizeof bits[0])];
        size_t bl = b[0] ? strlen(b) : 1;
        if (n + bl > want) break;
        memcpy(buf + n, b, bl);
        n += bl;
    }
    return n;
}

static void check_round_trip(const eng_bpe_t *b, const char *pre, const char *s, size_t len) {
    int n = eng__bpe_encode(b, s, len, ids, MAX_IDS);
    ASSERT_GE(n, 0);
    if (!pieces_equal(b, ids, n, s, len)) {
        fprintf(stderr, "%s: pieces do not give the bytes back\n", pre);
        print_escaped("  text", s, len);
        exit(1);
    }
    /* The words cover the text in order, none empty. */
    words_t w = {.base = s};
    ASSERT_EQ(eng__bpe_words(b, s, len, on_word, &w), LANES_OK);
    size_t at = 0;
    for (size_t i = 0; i < w.n; i++) {
        ASSERT_EQ(w.start[i], at);
        ASSERT_GT(w.len[i], 0);
        at += w.len[i];
    }
    ASSERT_EQ(at, len);
    free(w.start);
    free(w.len);
}

static void test_random_bytes(void) {
    char path[4096], buf[256];
    uint64_t rng = 8;
    for (int p = 0; p < N_PRES; p++) {
        snprintf(path, sizeof path, "%s/models/gguf/vocab/vocab-gpt2.%s.gguf", shared, PRES[p]);
        vocab_t v = vocab_open(path);
        eng_bpe_t *b = bpe_of(&v, path);
        for (int i = 0; i < 300; i++) check_round_trip(b, PRES[p], buf, random_text(&rng, buf, sizeof buf));
        eng__bpe_destroy(b);
        vocab_close(&v);
    }
    printf("random bytes: 300 strings x %d pre-tokenizers round-trip\n", N_PRES);
}

/* ---- two threads on one tokenizer ------------------------------------------------------------ */

typedef struct {
    const eng_bpe_t *b;
    uint64_t seed;
    int *counts;   /* per string: ids from this thread */
    int32_t *out;  /* 256 per string */
} thread_arg_t;

static void *encode_many(void *p) {
    thread_arg_t *a = p;
    char buf[256];
    uint64_t rng = a->seed;
    for (int i = 0; i < 500; i++) {
        size_t n = random_text(&rng, buf, sizeof buf);
        a->counts[i] = eng__bpe_encode(a->b, buf, n, a->out + 256 * i, 256);
    }
    return NULL;
}

static void test_threads(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/models/gguf/vocab/vocab-gpt2.gpt-4o.gguf", shared);
    vocab_t v = vocab_open(path);
    eng_bpe_t *b = bpe_of(&v, path);
    int *counts = calloc(3 * 500, sizeof *counts);
    int32_t *out = calloc(3 * 500 * 256, sizeof *out);
    ASSERT(counts && out);
    thread_arg_t a[3];
    for (int t = 0; t < 3; t++) a[t] = (thread_arg_t){b, 99, counts + 500 * t, out + 500 * 256 * t};
    encode_many(&a[0]);   /* alone first: the reference */
    pthread_t th[2];
    for (int t = 0; t < 2; t++) ASSERT_EQ(pthread_create(&th[t], NULL, encode_many, &a[t + 1]), 0);
    for (int t = 0; t < 2; t++) ASSERT_EQ(pthread_join(th[t], NULL), 0);
    for (int t = 1; t < 3; t++) {
        ASSERT(memcmp(counts, counts + 500 * t, 500 * sizeof *counts) == 0);
        ASSERT(memcmp(out, out + 500 * 256 * t, 500 * 256 * sizeof *out) == 0);
    }
    free(counts);
    free(out);
    eng__bpe_destroy(b);
    vocab_close(&v);
    printf("threads: two threads on one tokenizer give the ids of one alone\n");
}

/* ---- long words: the merge loop and the regexes stay O(n log n) ----------------------------- */

/* The best of five encodes of a word of n bytes made of one repeated pattern. */
static double encode_time(const eng_bpe_t *b, const char *unit, size_t n, char *buf) {
    size_t ul = strlen(unit);
    for (size_t i = 0; i < n; i++) buf[i] = unit[i % ul];
    double best = 1e9;
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        int got = eng__bpe_encode(b, buf, n, ids, MAX_IDS);
        double t = now_s() - t0;
        ASSERT_GT(got, 0);
        ASSERT(pieces_equal(b, ids, got, buf, n));
        if (t < best) best = t;
    }
    return best;
}

static void test_long_words(void) {
    /* Letters, digits, punctuation, spaces, invalid bytes, CJK: one word or one run each. */
    static const char *const units[] = {"abcdefghij", "a", "ABCdef", "1234567890", "!?", "  ",
                                        "\xe4\xb8\xad", "\xff", "\xcc\x81"};
    enum { BIG = 64 * 1024, SMALL = 4 * 1024 };
    char *buf = malloc(BIG), path[4096];
    ASSERT(buf != NULL);
    double worst = 0;
    for (int p = 0; p < N_PRES; p++) {
        snprintf(path, sizeof path, "%s/models/gguf/vocab/vocab-gpt2.%s.gguf", shared, PRES[p]);
        vocab_t v = vocab_open(path);
        eng_bpe_t *b = bpe_of(&v, path);
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            double small = encode_time(b, units[u], SMALL, buf);
            double big = encode_time(b, units[u], BIG, buf);
            /* 16x the bytes: n log n gives about 20x the time (a little more once the 64 KiB
             * word's merge state leaves the cache; about 40x under ASan), n^2 256x. */
            double ratio = big / (small > 2e-5 ? small : 2e-5);
            if (ratio > worst) worst = ratio;
            if (ratio > 128 || big > 5.0) {
                fprintf(stderr, "%s: a %d-byte run of \"%s\" takes %.4f s, %.1fx the %d-byte one\n",
                        PRES[p], BIG, units[u], big, ratio, SMALL);
                exit(1);
            }
        }
        eng__bpe_destroy(b);
        vocab_close(&v);
    }
    printf("long words: 64 KiB runs at most %.1fx the time of 4 KiB ones\n", worst);
    free(buf);
}

/* ---- bad input ---------------------------------------------------------------------------- */

static void test_bad_input(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/models/gguf/vocab/vocab-gpt2.gpt-2.gguf", shared);
    vocab_t v = vocab_open(path);
    eng_bpe_t *b = (eng_bpe_t *)1;
    ASSERT_EQ(eng__bpe_create(v.tokens, v.n_tokens, v.merges, v.n_merges, "no-such-pre", 11, path, &b),
              LANES_ETOK);
    ASSERT_EQ(eng__bpe_create(v.tokens, v.n_tokens, v.merges, v.n_merges, "gpt-2x", 5, path, &b),
              LANES_OK);   /* the length counts, not the NUL */
    eng__bpe_destroy(b);
    ASSERT_EQ(eng__bpe_create(v.tokens, v.n_tokens, v.merges, v.n_merges, "GPT-2", 5, path, &b),
              LANES_ETOK);
    /* No pre-tokenizer name: llama.cpp's default list. */
    ASSERT_EQ(eng__bpe_create(v.tokens, v.n_tokens, v.merges, v.n_merges, NULL, 0, path, &b), LANES_OK);
    int n = eng__bpe_encode(b, "Hello, world 1234!", 18, ids, MAX_IDS);
    ASSERT_GT(n, 0);
    ASSERT(pieces_equal(b, ids, n, "Hello, world 1234!", 18));
    eng__bpe_destroy(b);
    static const char *const bad_merges[] = {"Ġt", "", " t", "x"};
    for (size_t k = 0; k < sizeof bad_merges / sizeof bad_merges[0]; k++) {
        eng_bpe_str_t keep = v.merges[7];
        v.merges[7] = (eng_bpe_str_t){bad_merges[k], strlen(bad_merges[k])};
        ASSERT_EQ(eng__bpe_create(v.tokens, v.n_tokens, v.merges, v.n_merges, "gpt-2", 5, path, &b),
                  LANES_ETOK);
        v.merges[7] = keep;
    }
    ASSERT_EQ(eng__bpe_create(v.tokens, 0, v.merges, v.n_merges, "gpt-2", 5, path, &b), LANES_ETOK);
    ASSERT_EQ(eng__bpe_create(v.tokens, v.n_tokens, v.merges, -1, "gpt-2", 5, path, &b), LANES_ETOK);
    /* Too many ids for the room given. */
    ASSERT_EQ(eng__bpe_create(v.tokens, v.n_tokens, v.merges, v.n_merges, "gpt-2", 5, path, &b), LANES_OK);
    ASSERT_EQ(eng__bpe_encode(b, "a b c", 5, ids, 2), LANES_ETOOLONG);
    ASSERT_EQ(eng__bpe_encode(b, "a b c", 5, ids, 3), 3);
    ASSERT_EQ(eng__bpe_encode(b, "", 0, ids, 0), 0);
    size_t pl;
    ASSERT_EQ(eng__bpe_piece(b, -1, &pl)[0], 0);
    ASSERT_EQ(pl, 0);
    ASSERT_EQ(eng__bpe_piece(b, v.n_tokens, &pl)[0], 0);
    ASSERT_EQ(pl, 0);
    /* An added token's text stays as stored. */
    const char *eot = eng__bpe_piece(b, 50256, &pl);
    ASSERT(pl == 13 && memcmp(eot, "<|endoftext|>", 13) == 0);
    eng__bpe_destroy(b);
    vocab_close(&v);
    printf("bad input: unknown pre-tokenizer, malformed merges, counts, room: clear errors\n");
}

int main(void) {
    SKIP_WITHOUT_SHARED(shared);
    test_bad_input();
    test_refs();
    test_inp_out("llama3-style.f32.gguf");
    test_inp_out("qwen2-style.f32.gguf");
    test_inp_out("gpt2-style.f32.gguf");
    test_rules();
    test_ignore_merges();
    test_random_bytes();
    test_threads();
    test_long_words();
    return 0;
}
