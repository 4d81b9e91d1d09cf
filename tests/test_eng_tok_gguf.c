/* eng_tok from GGUF metadata: crafted files in memory (special tokens, decoding, the EOG set, and
 * every bad key -> LANES_ETOK with one log line naming it), then with ../shared the SentencePiece
 * vocabularies against llama.cpp: encode references, greedy prompts and texts, random round trips.
 */
#include <stdint.h>
#include <unistd.h>

#include "base/lanes_log.h"
#include "base/lanes_rand.h"
#include "model/gguf.h"
#include "test_json.h"
#include "tok/tok.h"

/* ---- a GGUF writer for vocab-only files ------------------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t n, cap;
    uint64_t n_kv;
} gw_t;

static void put(gw_t *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        ASSERT(b->p != NULL);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_le(gw_t *b, uint64_t v, unsigned n) {
    uint8_t x[8];
    for (unsigned i = 0; i < n; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, n);
}
static void put_str(gw_t *b, const char *s) {
    put_le(b, strlen(s), 8);
    put(b, s, strlen(s));
}
static void kv_head(gw_t *b, const char *key, uint32_t type) {
    put_str(b, key);
    put_le(b, type, 4);
    b->n_kv++;
}
static void kv_str(gw_t *b, const char *key, const char *v) {
    kv_head(b, key, ENG_GGUF_STRING);
    put_str(b, v);
}
static void kv_num(gw_t *b, const char *key, uint32_t type, uint64_t v) {
    static const unsigned size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    kv_head(b, key, type);
    put_le(b, v, size[type]);
}
static void kv_arr_head(gw_t *b, const char *key, uint32_t elem, uint64_t n) {
    kv_head(b, key, ENG_GGUF_ARRAY);
    put_le(b, elem, 4);
    put_le(b, n, 8);
}

/* A small SentencePiece vocabulary: <unk> <s> </s>, the 256 byte pieces, then these. */
static const struct { const char *text; float score; int type; } extra[] = {
    {"\xe2\x96\x81", -1, 1}, {"a", -2, 1}, {"b", -3, 1}, {"\xe2\x96\x81" "a", -4, 1},
    {"ab", -5, 1}, {"<|im_end|>", 0, 1}, {"<tool>", 0, 4}, {"<ctl>", 0, 3},
};
enum { N_EXTRA = sizeof extra / sizeof *extra, N_VOCAB = 259 + N_EXTRA };
enum { ID_SP = 259, ID_A, ID_B, ID_SPA, ID_AB, ID_IM_END, ID_TOOL, ID_CTL };

/* What build() leaves out or changes, to make one key bad. */
typedef struct {
    const char *model;          /* NULL: no model key */
    int model_u32;              /* the model key as a u32 */
    int no_tokens, tokens_i32, dup, short_scores, scores_str, types_f32;
    int64_t bos;                /* -2: no key */
    int eos_str, add_bos_u8;
} spec_t;

static gw_t build(const spec_t *sp) {
    gw_t b = {0};
    if (sp->model_u32) kv_num(&b, "tokenizer.ggml.model", ENG_GGUF_U32, 7);
    else if (sp->model) kv_str(&b, "tokenizer.ggml.model", sp->model);
    char name[16];
    if (sp->tokens_i32) {
        kv_arr_head(&b, "tokenizer.ggml.tokens", ENG_GGUF_I32, N_VOCAB);
        for (int i = 0; i < N_VOCAB; i++) put_le(&b, (uint64_t)i, 4);
    } else if (!sp->no_tokens) {
        kv_arr_head(&b, "tokenizer.ggml.tokens", ENG_GGUF_STRING, N_VOCAB);
        put_str(&b, "<unk>");
        put_str(&b, "<s>");
        put_str(&b, "</s>");
        for (int i = 0; i < 256; i++) {
            snprintf(name, sizeof name, "<0x%02X>", i);
            put_str(&b, name);
        }
        for (int i = 0; i < N_EXTRA; i++) put_str(&b, sp->dup && i == 4 ? "a" : extra[i].text);
    }
    if (sp->scores_str) {
        kv_arr_head(&b, "tokenizer.ggml.scores", ENG_GGUF_STRING, 1);
        put_str(&b, "x");
    } else {
        int n = sp->short_scores ? N_VOCAB - 1 : N_VOCAB;
        kv_arr_head(&b, "tokenizer.ggml.scores", ENG_GGUF_F32, (uint64_t)n);
        for (int i = 0; i < n; i++) {
            float f = i < 259 ? 0.0f : extra[i - 259].score;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            put_le(&b, bits, 4);
        }
    }
    kv_arr_head(&b, "tokenizer.ggml.token_type", sp->types_f32 ? ENG_GGUF_F32 : ENG_GGUF_I32,
                N_VOCAB);
    for (int i = 0; i < N_VOCAB; i++)
        put_le(&b, (uint64_t)(i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : extra[i - 259].type), 4);
    if (sp->bos != -2) kv_num(&b, "tokenizer.ggml.bos_token_id", ENG_GGUF_U32, (uint64_t)sp->bos);
    if (sp->eos_str) kv_str(&b, "tokenizer.ggml.eos_token_id", "2");
    else kv_num(&b, "tokenizer.ggml.eos_token_id", ENG_GGUF_U32, 2);
    kv_num(&b, "tokenizer.ggml.padding_token_id", ENG_GGUF_U32, UINT32_MAX);   /* "none" */
    kv_num(&b, "tokenizer.ggml.add_bos_token", sp->add_bos_u8 ? ENG_GGUF_U8 : ENG_GGUF_BOOL, 1);
    /* The header last, now that the count is known. */
    gw_t f = {0};
    put(&f, "GGUF", 4);
    put_le(&f, 3, 4);
    put_le(&f, 0, 8);
    put_le(&f, b.n_kv, 8);
    put(&f, b.p, b.n);
    free(b.p);
    return f;
}

static char logbuf[4096];

/* eng_tok_from_gguf on the file of sp, with stderr captured in logbuf. */
static int load(const spec_t *sp, eng_tok_t **t) {
    gw_t f = build(sp);
    eng_gguf_t *g;
    ASSERT_EQ(eng_gguf_open_mem(f.p, f.n, "mem", &g), LANES_OK);
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_eng_tok_gguf.%d.log", (int)getpid());
    test_capture_t cap;
    test_capture_begin(&cap, path);
    *t = NULL;
    int rc = eng_tok_from_gguf(g, "crafted.gguf", t);
    test_capture_end(&cap, logbuf, sizeof logbuf);
    unlink(path);
    eng_gguf_close(g);                   /* the tokenizer copied what it keeps */
    free(f.p);
    return rc;
}

static void expect_enc(const char *what, const eng_tok_t *t, const char *text, int flags,
                       const int32_t *want, int nwant) {
    int32_t got[4096];
    int n = eng_tok_encode(t, text, strlen(text), flags, got, 4096);
    test_expect_ids(got, n, want, nwant, "%s: encode(\"%s\", flags %d)", what, text, flags);
}
#define ENC(t, text, flags, ...)                                                                  \
    expect_enc("crafted", (t), (text), (flags), (const int32_t[]){__VA_ARGS__},                   \
               (int)(sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t)))

static void expect_dec(const eng_tok_t *t, int32_t id, const char *want, size_t nwant) {
    size_t n;
    const char *p = eng_tok_decode(t, 0, id, &n);
    if (n != nwant || memcmp(p, want, n) != 0) {
        fprintf(stderr, "decode(%d) = \"%.*s\" (%zu bytes), want \"%s\"\n", (int)id, (int)n, p, n,
                want);
        exit(1);
    }
}

static void test_crafted(void) {
    const spec_t good = {.model = "llama", .bos = 1};
    eng_tok_t *t;
    ASSERT_EQ(load(&good, &t), LANES_OK);
    ASSERT_STR_EQ(logbuf, "");
    ASSERT_EQ(eng_tok_vocab_size(t), N_VOCAB);
    ASSERT_EQ(eng_tok_bos(t), 1);
    for (int id = -1; id <= N_VOCAB; id++)   /* EOS, and <|im_end|> by its text */
        ASSERT_EQ(eng_tok_is_eog(t, id), id == 2 || id == ID_IM_END);

    const int add = ENG_TOK_ADD_SPECIAL, parse = ENG_TOK_PARSE_SPECIAL;
    ENC(t, "a", add, 1, ID_SPA);                          /* BOS, prefix space merged */
    ENC(t, "ab", 0, ID_SPA, ID_B);                        /* "_a" (-4) beats "ab" (-5) */
    ENC(t, "bab", 0, ID_SP, ID_B, ID_AB);
    ENC(t, "a a", 0, ID_SPA, ID_SPA);
    ENC(t, "", add, 1);
    ENC(t, "\xc3\xa9", 0, ID_SP, 3 + 0xc3, 3 + 0xa9);     /* byte fallback */
    /* Specials: control and unknown ones only with PARSE_SPECIAL, user-defined ones always; the
     * text after a special token gets the prefix space again. */
    ENC(t, "a<s>b", add | parse, 1, ID_SPA, 1, ID_SP, ID_B);
    ENC(t, "<s></s><unk>", parse, 1, 2, 0);
    ENC(t, "<ctl>a", parse, ID_CTL, ID_SPA);
    ENC(t, "a<tool>b", 0, ID_SPA, ID_TOOL, ID_SP, ID_B);
    ENC(t, "<|im_end|>", parse, ID_IM_END);
    int32_t ids[64];
    int n = eng_tok_encode(t, "<s>", 3, 0, ids, 64);      /* plain text without parsing */
    ASSERT_GT(n, 1);
    for (int i = 0; i < n; i++) ASSERT(ids[i] != 1);
    ASSERT_EQ(eng_tok_encode(t, "a<s>b", 5, add | parse, ids, 4), LANES_ETOOLONG);
    ASSERT_EQ(eng_tok_encode(t, "", 0, 0, ids, 64), 0);

    /* Decode as token_to_piece(special = false). */
    expect_dec(t, 0, "", 0);
    expect_dec(t, 1, "", 0);
    expect_dec(t, ID_IM_END, "", 0);                      /* made a control token, as llama.cpp */
    expect_dec(t, ID_CTL, "", 0);
    expect_dec(t, ID_TOOL, "<tool>", 6);
    expect_dec(t, ID_SPA, " a", 2);
    expect_dec(t, 3 + 0x41, "A", 1);
    expect_dec(t, 3, "\0", 1);
    expect_dec(t, N_VOCAB, "", 0);
    ASSERT_GE(eng_tok_max_text(t), 10);                   /* "<|im_end|>" */
    ASSERT_EQ(eng_tok_save(t, "/dev/null"), LANES_EINVAL);
    eng_tok_destroy(t);

    /* No BOS key: llama.cpp's SentencePiece default, 1. */
    ASSERT_EQ(load(&(spec_t){.model = "llama", .bos = -2}, &t), LANES_OK);
    ASSERT_EQ(eng_tok_bos(t), 1);
    eng_tok_destroy(t);

    static const struct { spec_t sp; const char *want; } bad[] = {
        {{.bos = 1}, "tokenizer.ggml.model: missing"},
        {{.model_u32 = 1, .bos = 1}, "tokenizer.ggml.model: want string, got u32"},
        {{.model = "bert", .bos = 1}, "tokenizer.ggml.model: 'bert' not supported"},
        {{.model = "gpt2", .bos = 1}, "tokenizer.ggml.merges: missing"},
        {{.model = "llama", .no_tokens = 1, .bos = 1}, "tokenizer.ggml.tokens: missing"},
        {{.model = "llama", .tokens_i32 = 1, .bos = 1},
         "tokenizer.ggml.tokens: want an array of string, got array of i32"},
        {{.model = "llama", .dup = 1, .bos = 1},
         "tokenizer.ggml.tokens: duplicate token 'a' (ids 260 and 263)"},
        {{.model = "llama", .short_scores = 1, .bos = 1},
         "tokenizer.ggml.scores: 266 entries for 267 tokens"},
        {{.model = "llama", .scores_str = 1, .bos = 1},
         "tokenizer.ggml.scores: want an array of f32, got array of string"},
        {{.model = "llama", .types_f32 = 1, .bos = 1},
         "tokenizer.ggml.token_type: want an array of i32, got array of f32"},
        {{.model = "llama", .bos = N_VOCAB},
         "tokenizer.ggml.bos_token_id: token id 267 outside the vocabulary [0, 267)"},
        {{.model = "llama", .bos = 1, .eos_str = 1},
         "tokenizer.ggml.eos_token_id: want an integer token id, got string"},
        {{.model = "llama", .bos = 1, .add_bos_u8 = 1},
         "tokenizer.ggml.add_bos_token: want bool, got u8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ASSERT_EQ(load(&bad[i].sp, &t), LANES_ETOK);
        ASSERT(t == NULL);
        char *nl = strchr(logbuf, '\n');
        if (strstr(logbuf, "crafted.gguf") == NULL || strstr(logbuf, bad[i].want) == NULL ||
            nl == NULL || nl[1] != '\0') {
            fprintf(stderr, "case %zu: want one line with \"%s\", got:\n%s", i, bad[i].want,
                    logbuf);
            exit(1);
        }
    }
}

/* ---- with ../shared: llama.cpp's SentencePiece results --------------------------------------- */

/* The encoding of text is the id array arr. */
static void expect_ids(const eng_tok_t *t, const char *text, int flags, const cJSON *arr,
                       const char *what) {
    int32_t want[4096];
    expect_enc(what, t, text, flags, want, test_json_ids(arr, want, 4096));
}

typedef struct {
    const eng_tok_t *t;
    int n;
} ctx_t;

/* tokenizer.encode.jsonl: the lines with a source carry llama.cpp's ids. */
static void check_encode_line(const cJSON *j, int line, void *arg) {
    (void)line;
    ctx_t *c = arg;
    if (cJSON_GetObjectItem(j, "source") == NULL) return;
    const cJSON *text = cJSON_GetObjectItem(j, "text");
    ASSERT(cJSON_IsString(text));
    ASSERT(!cJSON_IsTrue(cJSON_GetObjectItem(j, "eos")));   /* the file's add_eos_token: false */
    int flags = cJSON_IsTrue(cJSON_GetObjectItem(j, "bos")) ? ENG_TOK_ADD_SPECIAL : 0;
    expect_ids(c->t, text->valuestring, flags, cJSON_GetObjectItem(j, "tokens"), "encode.jsonl");
    c->n++;
}

static int hexval(char x) { return x <= '9' ? x - '0' : (x | 0x20) - 'a' + 10; }

/* greedy.jsonl: the prompt ids, and the text of the generated ids. */
static void check_greedy_line(const cJSON *j, int line, void *arg) {
    (void)line;
    ctx_t *c = arg;
    const cJSON *prompt = cJSON_GetObjectItem(j, "prompt");
    ASSERT(cJSON_IsString(prompt));
    expect_ids(c->t, prompt->valuestring, ENG_TOK_ADD_SPECIAL | ENG_TOK_PARSE_SPECIAL,
               cJSON_GetObjectItem(j, "prompt_tokens"), "greedy.jsonl");
    static char want[1 << 16], got[1 << 16];
    size_t nw = 0, ng = 0;
    const cJSON *hex = cJSON_GetObjectItem(j, "generated_text_hex");
    if (cJSON_IsFalse(cJSON_GetObjectItem(j, "text_valid_utf8"))) {
        ASSERT(cJSON_IsString(hex));
        for (const char *h = hex->valuestring; h[0] && h[1]; h += 2)
            want[nw++] = (char)(hexval(h[0]) * 16 + hexval(h[1]));
    } else {
        const cJSON *txt = cJSON_GetObjectItem(j, "generated_text");
        ASSERT(cJSON_IsString(txt));
        nw = strlen(txt->valuestring);
        memcpy(want, txt->valuestring, nw);
    }
    int32_t gen[1024];
    int n = test_json_ids(cJSON_GetObjectItem(j, "generated"), gen, 1024);
    for (int i = 0; i < n; i++) {
        ASSERT(!eng_tok_is_eog(c->t, gen[i]));           /* every reference ran to length */
        size_t pl;
        const char *p = eng_tok_decode(c->t, i ? gen[i - 1] : 0, gen[i], &pl);
        memcpy(got + ng, p, pl);
        ng += pl;
    }
    if (ng != nw || memcmp(got, want, nw) != 0) {
        fprintf(stderr, "decode of \"%s\"'s generated ids: %zu bytes, want %zu\n",
                prompt->valuestring, ng, nw);
        exit(1);
    }
    c->n++;
}

/* Random bytes encode and decode back byte for byte, after the prefix space. Left out, as llama.cpp
 * cannot round-trip them either: U+2581 itself (it decodes to a space), and a lead byte whose
 * sequence length reaches over a space (llama.cpp splits the escaped text by lead bytes, so that
 * cuts U+2581 apart and the space comes back as raw bytes). */
static void round_trips(const eng_tok_t *t, uint64_t seed) {
    static const char *bits[] = {"e", " ", "the", "\n", "\xc3\xa9", "\x80", "\xff", "\xe4\xb8\xad",
                                 "\xf0\x9f\x99\x82", "\0", "  ", "\xe2\x96"};
    char text[400], out[4096];
    int32_t ids[2048];
    for (int k = 0; k < 300; k++) {
        size_t len = 0, target = lanes_splitmix64(&seed) % 300;
        while (len < target) {
            uint64_t x = lanes_splitmix64(&seed);
            const char *b = bits[(x >> 8) % (sizeof bits / sizeof *bits)];
            size_t bl = b[0] ? strlen(b) : 1;
            if (x % 3 == 0) text[len++] = (char)(x >> 16);
            else memcpy(text + len, b, bl), len += bl;
            if (len >= 3 && memcmp(text + len - 3, "\xe2\x96\x81", 3) == 0) len -= 3;
        }
        for (size_t i = 0; i < len;) {
            unsigned char c = (unsigned char)text[i];
            size_t n = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
            for (size_t j = i + 1; j < i + n && j < len; j++)
                if (text[j] == ' ') text[i] = 'x', n = 1;
            i += n;
        }
        int n = eng_tok_encode(t, text, len, 0, ids, 2048);
        ASSERT_GE(n, 0);
        size_t o = 0;
        for (int i = 0; i < n; i++) {
            size_t pl;
            const char *p = eng_tok_decode(t, 0, ids[i], &pl);
            memcpy(out + o, p, pl);
            o += pl;
        }
        int ok = len == 0 ? o == 0 : o == len + 1 && out[0] == ' ' && !memcmp(out + 1, text, len);
        if (!ok) {
            fprintf(stderr, "round trip %d failed: %zu bytes -> %zu\n", k, len, o);
            exit(1);
        }
    }
}

static eng_tok_t *open_tok(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/models/gguf/%s", dir, name);
    eng_gguf_t *g;
    eng_tok_t *t;
    ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
    ASSERT_EQ(eng_tok_from_gguf(g, path, &t), LANES_OK);
    eng_gguf_close(g);
    return t;
}

static int test_shared(void) {
    const char *dir;
    SKIP_WITHOUT_SHARED(dir);
    char path[4096];
    static const char *models[] = {"llama2-spm-style.f32", "stories260K.f32"};
    for (int m = 0; m < 2; m++) {
        char name[64];
        snprintf(name, sizeof name, "%s.gguf", models[m]);
        eng_tok_t *t = open_tok(dir, name);
        ASSERT_EQ(eng_tok_bos(t), 1);
        /* The README: llama.cpp's EOG set is {2} for the SentencePiece vocabulary. */
        for (int id = -1; id <= eng_tok_vocab_size(t); id++)
            ASSERT_EQ(eng_tok_is_eog(t, id), id == 2);
        ctx_t c = {t, 0};
        if (m == 0) {
            ENC(t, "<s>", ENG_TOK_PARSE_SPECIAL, 1);
            ENC(t, "</s>", ENG_TOK_PARSE_SPECIAL, 2);
            ENC(t, "Hello<s>world</s>", ENG_TOK_ADD_SPECIAL | ENG_TOK_PARSE_SPECIAL, 1, 15043, 1,
                3186, 2);
            ENC(t, "<s> </s>", 0, 529, 29879, 29958, 1533, 29879, 29958);
            snprintf(path, sizeof path, "%s/refs/tokenizer.encode.jsonl", dir);
            test_json_lines(path, check_encode_line, &c);
            fprintf(stderr, "%s: %d llama.cpp encode lines match\n", models[m], c.n);
            ASSERT_GE(c.n, 40);
            round_trips(t, 5);
        }
        c.n = 0;
        snprintf(path, sizeof path, "%s/refs/gguf/%s.greedy.jsonl", dir, models[m]);
        test_json_lines(path, check_greedy_line, &c);
        fprintf(stderr, "%s: %d greedy prompts and texts match\n", models[m], c.n);
        ASSERT_EQ(c.n, 5);
        eng_tok_destroy(t);
    }
    return 0;
}

int main(void) {
    test_crafted();
    return test_shared();
}
