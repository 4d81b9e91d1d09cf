/* eng_tok: parity with run.c encode() on the shared references and on random text against a
 * transliteration of run.c, round trips, bad files, ETOOLONG, the synthetic tokenizer. */
#include <math.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "base/lanes_rand.h"
#include "test_json.h"
#include "tok/tok.h"

static char tmpdir[] = "/tmp/test_eng_tok.XXXXXX";

/* ---- run.c encode(), transliterated (qsort + bsearch + full rescan per merge) ---------------- */

typedef struct {
    int n, max_len;
    char **vocab;
    float *scores;
    struct ref_idx { const char *str; int id; } *sorted;
} ref_tok_t;

static int cmp_idx(const void *a, const void *b) {
    return strcmp(((const struct ref_idx *)a)->str, ((const struct ref_idx *)b)->str);
}

static ref_tok_t ref_load(const char *path, int n) {
    size_t size;
    char *d = test_read_file(path, &size), *p = d + 4;
    ref_tok_t r = {n, 0, calloc((size_t)n, sizeof(char *)), calloc((size_t)n, sizeof(float)),
                   calloc((size_t)n, sizeof(struct ref_idx))};
    memcpy(&r.max_len, d, 4);
    for (int i = 0; i < n; i++) {
        int len;
        memcpy(&r.scores[i], p, 4);
        memcpy(&len, p + 4, 4);
        r.vocab[i] = calloc((size_t)len + 1, 1);
        memcpy(r.vocab[i], p + 8, (size_t)len);
        p += 8 + len;
        r.sorted[i] = (struct ref_idx){r.vocab[i], i};
    }
    qsort(r.sorted, (size_t)n, sizeof *r.sorted, cmp_idx);
    free(d);
    return r;
}

static void ref_free(ref_tok_t *r) {
    for (int i = 0; i < r->n; i++) free(r->vocab[i]);
    free(r->vocab);
    free(r->scores);
    free(r->sorted);
}

static int ref_lookup(const ref_tok_t *r, const char *s) {
    struct ref_idx key = {s, 0}, *res = bsearch(&key, r->sorted, (size_t)r->n, sizeof key, cmp_idx);
    return res ? res->id : -1;
}

static int ref_encode(const ref_tok_t *r, const char *text, int bos, int *tokens) {
    char *buf = malloc((size_t)r->max_len * 2 + 3);
    size_t str_len = 0;
    int n = 0;
    if (bos) tokens[n++] = 1;
    if (text[0] != '\0') tokens[n++] = ref_lookup(r, " ");
    for (const char *c = text; *c != '\0'; c++) {
        if ((*c & 0xC0) != 0x80) str_len = 0;
        buf[str_len++] = *c;
        buf[str_len] = '\0';
        if ((*(c + 1) & 0xC0) == 0x80 && str_len < 4) continue;
        int id = ref_lookup(r, buf);
        if (id != -1) {
            tokens[n++] = id;
        } else {
            for (size_t i = 0; i < str_len; i++) tokens[n++] = (unsigned char)buf[i] + 3;
        }
        str_len = 0;
    }
    for (;;) {
        float best_score = -1e10;
        int best_id = -1, best_idx = -1;
        for (int i = 0; i < n - 1; i++) {
            sprintf(buf, "%s%s", r->vocab[tokens[i]], r->vocab[tokens[i + 1]]);
            int id = ref_lookup(r, buf);
            if (id != -1 && r->scores[id] > best_score) {
                best_score = r->scores[id];
                best_id = id;
                best_idx = i;
            }
        }
        if (best_idx == -1) break;
        tokens[best_idx] = best_id;
        for (int i = best_idx + 1; i < n - 1; i++) tokens[i] = tokens[i + 1];
        n--;
    }
    free(buf);
    return n;
}

/* ---- helpers --------------------------------------------------------------------------------- */

static void expect_ids(const eng_tok_t *t, const char *text, size_t len, int flags,
                       const int32_t *want, int nwant, const char *what) {
    int32_t got[4096];
    int n = eng_tok_encode(t, text, len, flags, got, 4096);
    test_expect_ids(got, n, want, nwant, "%s: encode(\"%.*s\") mismatch", what, (int)len, text);
}

/* Concatenates decode(prev, tok) after BOS, as run.c prints (the dummy prefix space vanishes). */
static void expect_round_trip(const eng_tok_t *t, const char *text, size_t len) {
    static int32_t ids[1 << 18];
    static char out[1 << 18];
    int n = eng_tok_encode(t, text, len, ENG_TOK_ADD_SPECIAL, ids, 1 << 18);
    ASSERT_GE(n, 1);
    ASSERT_EQ(ids[0], ENG_TOK_BOS);
    size_t o = 0;
    for (int i = 1; i < n; i++) {
        size_t pl;
        const char *p = eng_tok_decode(t, ids[i - 1], ids[i], &pl);
        ASSERT_LE(o + pl, sizeof out);
        memcpy(out + o, p, pl);
        o += pl;
    }
    if (o != len || memcmp(out, text, len) != 0) {
        fprintf(stderr, "round trip failed: \"%.*s\" -> \"%.*s\"\n", (int)len, text, (int)o, out);
        exit(1);
    }
}

static const char *round_trip_texts[] = {
    "",
    "Hello world",
    " leading space and trailing ",
    "caf\xc3\xa9 na\xc3\xafve \xc3\xa9t\xc3\xa9",                  /* café naïve été */
    "\xe4\xb8\xad\xe6\x96\x87 text",                              /* 中文 */
    "smile \xf0\x9f\x99\x82!",                                    /* 🙂 */
    "tabs\tand\nnew\nlines\r\n",
    "  \n\n   x",
    "\xff\xfe broken \x80\x80\x80\x80\x80 utf8 \xc3",             /* invalid UTF-8 */
    "Once upon a time, there was a little girl named Lily.",
};

static void round_trips(const eng_tok_t *t) {
    for (size_t i = 0; i < sizeof round_trip_texts / sizeof *round_trip_texts; i++)
        expect_round_trip(t, round_trip_texts[i], strlen(round_trip_texts[i]));
    expect_round_trip(t, "a\0b\0\0c", 6);                          /* NUL is a byte */
}

/* Random text, biased to letters, spaces and multi-byte and invalid sequences, never NUL (run.c
 * stops there). Checks the heap merge against the rescanning reference. */
static void random_vs_ref(const eng_tok_t *t, const ref_tok_t *r, int rounds, uint64_t seed) {
    static const char *bits[] = {
        "e", "t", "a", " ", "o", "n", "the", " the", "ing", "\n", "\xc3\xa9", "\x80", "\xff",
        "A", "\xe4\xb8\xad", "\xf0\x9f\x99\x82", "!", "0", "<0x41>", "<s>", "  ",
    };
    char text[600];
    int want[2048];
    int32_t got[2048];
    for (int k = 0; k < rounds; k++) {
        size_t len = 0, target = lanes_splitmix64(&seed) % 200;
        while (len < target) {
            uint64_t x = lanes_splitmix64(&seed);
            if (x % 8 == 0) {
                text[len++] = (char)(1 + (x >> 8) % 255);
            } else {
                const char *b = bits[(x >> 8) % (sizeof bits / sizeof *bits)];
                memcpy(text + len, b, strlen(b));
                len += strlen(b);
            }
        }
        text[len] = '\0';
        int bos = k % 3 != 0;
        int nw = ref_encode(r, text, bos, want);
        int ng = eng_tok_encode(t, text, len, bos ? ENG_TOK_ADD_SPECIAL : 0, got, 2048);
        ASSERT_EQ(ng, nw);
        for (int i = 0; i < nw; i++) ASSERT_EQ(got[i], want[i]);
    }
}

/* ---- always: synthetic tokenizer, bad files, limits ------------------------------------------ */

static void test_synth(void) {
    char p1[256], p2[256], p3[256];
    snprintf(p1, sizeof p1, "%s/synth_a.bin", tmpdir);
    snprintf(p2, sizeof p2, "%s/synth_b.bin", tmpdir);
    snprintf(p3, sizeof p3, "%s/synth_c.bin", tmpdir);
    ASSERT_EQ(eng_tok_synth(258, 1, &(eng_tok_t *){NULL}), LANES_EINVAL);
    const int sizes[] = {512, 32000};
    for (int s = 0; s < 2; s++) {
        eng_tok_t *a, *b, *c, *l;
        ASSERT_EQ(eng_tok_synth(sizes[s], 42, &a), LANES_OK);
        ASSERT_EQ(eng_tok_synth(sizes[s], 42, &b), LANES_OK);
        ASSERT_EQ(eng_tok_synth(sizes[s], 43, &c), LANES_OK);
        ASSERT_EQ(eng_tok_vocab_size(a), sizes[s]);
        ASSERT_EQ(eng_tok_save(a, p1), LANES_OK);
        ASSERT_EQ(eng_tok_save(b, p2), LANES_OK);
        ASSERT_EQ(eng_tok_save(c, p3), LANES_OK);
        size_t n1, n2, n3;
        char *d1 = test_read_file(p1, &n1), *d2 = test_read_file(p2, &n2);
        char *d3 = test_read_file(p3, &n3);
        ASSERT(n1 == n2 && memcmp(d1, d2, n1) == 0);              /* same seed, same bytes */
        ASSERT(n1 != n3 || memcmp(d1, d3, n1) != 0);              /* the seed matters */

        /* Loads back, saves to the same bytes, encodes the same, matches run.c. */
        ASSERT_EQ(eng_tok_load(p1, sizes[s], &l), LANES_OK);
        ASSERT_EQ(eng_tok_save(l, p2), LANES_OK);
        free(d2);
        d2 = test_read_file(p2, &n2);
        ASSERT(n1 == n2 && memcmp(d1, d2, n1) == 0);
        for (int i = 0; i < sizes[s]; i++) {
            size_t la, ll;
            const char *pa = eng_tok_decode(a, 0, i, &la), *pl = eng_tok_decode(l, 0, i, &ll);
            ASSERT(la == ll && memcmp(pa, pl, la) == 0);
        }
        for (size_t i = 0; i < sizeof round_trip_texts / sizeof *round_trip_texts; i++) {
            const char *txt = round_trip_texts[i];
            int32_t ia[512], il[512];
            int na = eng_tok_encode(a, txt, strlen(txt), ENG_TOK_ADD_SPECIAL, ia, 512);
            ASSERT_EQ(eng_tok_encode(l, txt, strlen(txt), ENG_TOK_ADD_SPECIAL, il, 512), na);
            ASSERT(memcmp(ia, il, (size_t)na * sizeof *ia) == 0);
        }
        int32_t ids[64];
        int n = eng_tok_encode(a, "the cat sat on the mat", 22, ENG_TOK_ADD_SPECIAL, ids, 64);
        ASSERT_LT(n, 23);                                           /* some merges happened */
        round_trips(a);
        ref_tok_t r = ref_load(p1, sizes[s]);
        random_vs_ref(a, &r, 200, 7 + (uint64_t)s);
        ref_free(&r);
        free(d1);
        free(d2);
        free(d3);
        eng_tok_destroy(a);
        eng_tok_destroy(b);
        eng_tok_destroy(c);
        eng_tok_destroy(l);
    }
    eng_tok_destroy(NULL);
}

/* A valid file: the 259 fixed pieces, " " (id 259), then nx extra pieces with their scores. */
static size_t good_file(unsigned char *d, int32_t mtl, const char **extra, const float *xscore,
                        int nx) {
    size_t o = 4;
    memcpy(d, &mtl, 4);
    for (int i = 0; i < 260 + nx; i++) {
        char p[16];
        float score = i < 260 ? 0.0f : xscore[i - 260];
        if (i == 0) strcpy(p, "<unk>");
        else if (i == 1) strcpy(p, "\n<s>\n");
        else if (i == 2) strcpy(p, "\n</s>\n");
        else if (i < 259) snprintf(p, sizeof p, "<0x%02X>", i - 3);
        else if (i == 259) strcpy(p, " ");
        else snprintf(p, sizeof p, "%s", extra[i - 260]);
        int32_t len = (int32_t)strlen(p);
        memcpy(d + o, &score, 4);
        memcpy(d + o + 4, &len, 4);
        memcpy(d + o + 8, p, (size_t)len);
        o += 8 + (size_t)len;
    }
    return o;
}

/* Merge rules on a crafted vocabulary, each checked by hand and against the run.c copy: strict >
 * (leftmost wins a tie), scores <= -1e10 and NaN never merge, and BOS takes part in merges. */
static void test_merge_rules(void) {
    static unsigned char d[8192];
    char path[256];
    snprintf(path, sizeof path, "%s/bad.bin", tmpdir);
    /* ids:                   260  261  262  263   264   265 */
    const char *extra[] = {"a", "b", "c", "ab", "bc", "\n<s>\n "};
    static const struct { float ab, bc, bos_sp; int bos; const char *text; int n; int32_t want[6]; }
        cases[] = {
            {-1, -1, -1e10f, 1, "abc", 4, {1, 259, 263, 262}},      /* a tie: leftmost */
            {-2, -1, -1e10f, 1, "abc", 4, {1, 259, 260, 264}},      /* higher score first */
            {NAN, -1e10f, -1e10f, 1, "abc", 5, {1, 259, 260, 261, 262}},
            {-9.9e9f, NAN, -1e10f, 1, "abc", 4, {1, 259, 263, 262}},
            {-1, -1, 0, 1, "abc", 3, {265, 263, 262}},              /* BOS merges with " " */
            {-1, -1, 0, 0, "abc", 3, {259, 263, 262}},
        };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float sc[] = {-5, -5, -5, cases[i].ab, cases[i].bc, cases[i].bos_sp};
        test_write_file(path, d, good_file(d, 7, extra, sc, 6));
        eng_tok_t *t;
        ASSERT_EQ(eng_tok_load(path, 266, &t), LANES_OK);
        expect_ids(t, cases[i].text, 3, cases[i].bos ? ENG_TOK_ADD_SPECIAL : 0, cases[i].want,
                   cases[i].n, "merge rule");
        ref_tok_t r = ref_load(path, 266);
        int ref[8];
        ASSERT_EQ(ref_encode(&r, cases[i].text, cases[i].bos, ref), cases[i].n);
        for (int k = 0; k < cases[i].n; k++) ASSERT_EQ(ref[k], cases[i].want[k]);
        random_vs_ref(t, &r, 50, i);
        ref_free(&r);
        eng_tok_destroy(t);
    }
}

static void test_bad_files(void) {
    static unsigned char d[8192];
    char path[256];
    snprintf(path, sizeof path, "%s/bad.bin", tmpdir);
    eng_tok_t *t = NULL;
    size_t n = good_file(d, 6, NULL, NULL, 0);
    test_write_file(path, d, n);
    ASSERT_EQ(eng_tok_load(path, 260, &t), LANES_OK);             /* the base case is fine */
    eng_tok_destroy(t);

    float nan = NAN;
    /* Each case: the file length, then an optional int32 (size 4) or byte (size 1) written at
     * offset at, and the vocab_size asked for. */
    enum { NONE = 0, BYTE = 1, I32 = 4 };
    struct {
        const char *what;
        size_t len;
        int size;
        size_t at;
        int32_t val;
        int vocab;
    } cases[] = {
        {"empty", 0, NONE, 0, 0, 260},
        {"truncated header", 3, NONE, 0, 0, 260},
        {"max_token_length 0", n, I32, 0, 0, 260},
        {"max_token_length -1", n, I32, 0, -1, 260},
        {"max_token_length huge", n, I32, 0, 0x7fffffff, 260},
        {"max_token_length too small for pieces", n, I32, 0, 5, 260},
        {"negative length", n, I32, 4 + 13 + 4, -1, 260},           /* piece 1's length */
        {"length > max_token_length", n, I32, 4 + 13 + 4, 7, 260},
        {"length past EOF", n, I32, n - 9 + 4, 2, 260},             /* the last piece, " " */
        {"huge length", n, I32, 4 + 4, 0x7fffffff, 260},
        {"truncated piece", n - 1, NONE, 0, 0, 260},
        {"truncated piece header", n - 5, NONE, 0, 0, 260},
        {"too few pieces", n, NONE, 0, 0, 261},
        {"trailing garbage", n + 3, NONE, 0, 0, 260},
        {"one piece too many", n, NONE, 0, 0, 259},
        {"vocab_size 2", n, NONE, 0, 0, 2},
        {"vocab_size 0", n, NONE, 0, 0, 0},
        {"vocab_size -5", n, NONE, 0, 0, -5},
        {"vocab_size huge", n, NONE, 0, 0, 1 << 30},
        {"no space piece", n, BYTE, n - 1, '!', 260},               /* " " becomes "!" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len = good_file(d, 6, NULL, NULL, 0);
        if (cases[i].len > len) memset(d + len, 0xAB, cases[i].len - len);
        if (cases[i].size == BYTE) d[cases[i].at] = (unsigned char)cases[i].val;
        if (cases[i].size == I32) memcpy(d + cases[i].at, &cases[i].val, 4);
        test_write_file(path, d, cases[i].len);
        t = NULL;
        int rc = eng_tok_load(path, cases[i].vocab, &t);
        if (rc != LANES_ETOK) {
            fprintf(stderr, "bad file \"%s\": rc %d\n", cases[i].what, rc);
            exit(1);
        }
        ASSERT(t == NULL);                                          /* *out untouched */
    }

    /* NaN and infinite scores load (run.c takes anything); a NaN piece never merges. */
    n = good_file(d, 6, NULL, NULL, 0);
    memcpy(d + 4, &nan, 4);
    test_write_file(path, d, n);
    ASSERT_EQ(eng_tok_load(path, 260, &t), LANES_OK);
    eng_tok_destroy(t);

    snprintf(path, sizeof path, "%s/missing.bin", tmpdir);
    ASSERT_EQ(eng_tok_load(path, 260, &t), LANES_EIO);
    ASSERT_EQ(eng_tok_load(tmpdir, 260, &t), LANES_EIO);            /* a directory */
}

static void test_limits(void) {
    eng_tok_t *t;
    ASSERT_EQ(eng_tok_synth(512, 1, &t), LANES_OK);
    int32_t ids[8];
    /* "\xff\xfe\xfd" needs BOS, dummy prefix and three byte-fallback ids; llama2.c tokenizers
     * add no EOS, and PARSE_SPECIAL changes nothing for them (run.c has no special tokens). */
    const int add = ENG_TOK_ADD_SPECIAL, all = ENG_TOK_ADD_SPECIAL | ENG_TOK_PARSE_SPECIAL;
    ASSERT_EQ(eng_tok_encode(t, "\xff\xfe\xfd", 3, add, ids, 5), 5);
    ASSERT_EQ(ids[0], ENG_TOK_BOS);
    ASSERT_EQ(ids[4], 3 + 0xfd);
    ASSERT_EQ(eng_tok_encode(t, "\xff\xfe\xfd", 3, add, ids, 4), LANES_ETOOLONG);
    ASSERT_EQ(eng_tok_encode(t, "\xff\xfe\xfd", 3, 0, ids, 4), 4);
    ASSERT_EQ(eng_tok_encode(t, "", 0, 0, NULL, 0), 0);
    ASSERT_EQ(eng_tok_encode(t, "", 0, add, ids, 0), LANES_ETOOLONG);
    ASSERT_EQ(eng_tok_encode(t, "", 0, all, ids, 1), 1);
    ASSERT_EQ(eng_tok_encode(t, "x", 1, add, ids, -1), LANES_EINVAL);
    int32_t a8[8], b8[8];
    int na = eng_tok_encode(t, "\n<s>\n", 5, add, a8, 8);
    ASSERT_GT(na, 2);
    ASSERT_EQ(eng_tok_encode(t, "\n<s>\n", 5, all, b8, 8), na);
    ASSERT(memcmp(a8, b8, (size_t)na * sizeof *a8) == 0);
    ASSERT_EQ(eng_tok_bos(t), ENG_TOK_BOS);
    for (int id = -1; id < 512; id++) ASSERT_EQ(eng_tok_is_eog(t, id), id == ENG_TOK_BOS);
    ASSERT_GE(eng_tok_max_text(t), 6);

    size_t len;
    ASSERT_STR_EQ(eng_tok_decode(t, 0, -1, &len), "");
    ASSERT_EQ(len, 0);
    ASSERT_STR_EQ(eng_tok_decode(t, 0, 512, &len), "");
    ASSERT_EQ(len, 0);
    const char *p = eng_tok_decode(t, ENG_TOK_BOS, 3 + 0x41, &len);  /* <0x41> */
    ASSERT(len == 1 && p[0] == 'A');
    p = eng_tok_decode(t, ENG_TOK_BOS, 3, &len);                     /* <0x00> */
    ASSERT(len == 1 && p[0] == '\0');
    p = eng_tok_decode(t, ENG_TOK_BOS, 2, &len);                     /* </s> */
    ASSERT(len == 6 && memcmp(p, "\n</s>\n", 6) == 0);

    /* 100 KB of text must not take the O(n^2) reference's seconds. */
    size_t big = 100 * 1024;
    char *text = malloc(big);
    int32_t *out = malloc(big * 2 * sizeof *out);
    uint64_t s = 3;
    for (size_t i = 0; i < big; i++)
        text[i] = "the cat sat on a mat \xc3\xa9"[lanes_splitmix64(&s) % 23];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int n = eng_tok_encode(t, text, big, ENG_TOK_ADD_SPECIAL, out, (int)big * 2);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "100 KB -> %d ids in %.1f ms\n", n, ms);
    ASSERT_GT(n, 1000);
    ASSERT_LT(ms, 2000);
    ASSERT_EQ(eng_tok_encode(t, text, big, ENG_TOK_ADD_SPECIAL, out, n - 1), LANES_ETOOLONG);
    expect_round_trip(t, text, big);
    free(text);
    free(out);
    eng_tok_destroy(t);
}

/* ---- with ../shared: the reference outputs --------------------------------------------------- */

static void check_encode_line(const cJSON *j, int line, void *arg) {
    (void)line;
    const eng_tok_t *t = arg;
    const cJSON *text = cJSON_GetObjectItem(j, "text");
    ASSERT(cJSON_IsString(text));
    int32_t want[4096];
    int n = test_json_ids(cJSON_GetObjectItem(j, "tokens"), want, 4096);
    int bos = cJSON_IsTrue(cJSON_GetObjectItem(j, "bos"));
    ASSERT(!cJSON_IsTrue(cJSON_GetObjectItem(j, "eos")));         /* run.c's EOS: never asked */
    size_t len = strlen(text->valuestring);
    expect_ids(t, text->valuestring, len, bos ? ENG_TOK_ADD_SPECIAL : 0, want, n, "encode.jsonl");
    expect_round_trip(t, text->valuestring, len);
}

static void check_prompt_line(const cJSON *j, int line, void *arg) {
    (void)line;
    const eng_tok_t *t = arg;
    const cJSON *prompt = cJSON_GetObjectItem(j, "prompt");
    ASSERT(cJSON_IsString(prompt));
    int32_t want[4096];
    int n = test_json_ids(cJSON_GetObjectItem(j, "prompt_tokens"), want, 4096);
    expect_ids(t, prompt->valuestring, strlen(prompt->valuestring), ENG_TOK_ADD_SPECIAL, want, n,
               "greedy.jsonl");
}

static int test_shared(void) {
    const char *dir;
    SKIP_WITHOUT_SHARED(dir);
    static const struct { const char *tok; int vocab; const char *encode, *greedy[2]; } sets[] = {
        {"tokenizer.bin", 32000, "tokenizer.encode.jsonl", {"synthetic32k.greedy.jsonl"}},
        {"tok512.bin", 512, "tok512.encode.jsonl", {"stories260K.greedy.jsonl"}},
        {"aidreams_tok512.bin", 512, NULL, {"aidreams260K.greedy.jsonl"}},
    };
    char path[4096];
    for (size_t s = 0; s < sizeof sets / sizeof *sets; s++) {
        eng_tok_t *t;
        snprintf(path, sizeof path, "%s/models/%s", dir, sets[s].tok);
        ASSERT_EQ(eng_tok_load(path, sets[s].vocab, &t), LANES_OK);
        ASSERT_EQ(eng_tok_vocab_size(t), sets[s].vocab);
        ref_tok_t r = ref_load(path, sets[s].vocab);
        random_vs_ref(t, &r, 150, 11 + s);
        ref_free(&r);
        round_trips(t);
        /* A wrong vocab_size is caught either way. */
        eng_tok_t *bad = NULL;
        ASSERT_EQ(eng_tok_load(path, sets[s].vocab - 1, &bad), LANES_ETOK);
        ASSERT_EQ(eng_tok_load(path, sets[s].vocab + 1, &bad), LANES_ETOK);
        int lines = 0;
        if (sets[s].encode) {
            snprintf(path, sizeof path, "%s/refs/%s", dir, sets[s].encode);
            lines += test_json_lines(path, check_encode_line, t);
        }
        for (int g = 0; g < 2 && sets[s].greedy[g]; g++) {
            snprintf(path, sizeof path, "%s/refs/%s", dir, sets[s].greedy[g]);
            lines += test_json_lines(path, check_prompt_line, t);
        }
        fprintf(stderr, "%s: %d reference lines match\n", sets[s].tok, lines);
        ASSERT_GE(lines, 5);
        eng_tok_destroy(t);
    }
    return 0;
}

static void rm_tmpdir(void) {
    static const char *names[] = {"synth_a.bin", "synth_b.bin", "synth_c.bin", "bad.bin"};
    char path[256];
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

int main(void) {
    lanes_log_level = LANES_LOG_ERROR;       /* the bad-file cases show their one line each */
    ASSERT(mkdtemp(tmpdir) != NULL);
    atexit(rm_tmpdir);
    test_synth();
    test_bad_files();
    test_merge_rules();
    test_limits();
    return test_shared();
}
