/* The tokenizer.ggml.* metadata of a GGUF file, read as llama.cpp's llama_vocab::impl::load does
 * (defaults, special ids, the end-of-generation set), but every bad value is an error here. */
#include "tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "model/gguf.h"
#include "tok_internal.h"

#define GG_MAX_VOCAB (1 << 22)
#define GG_MAX_PIECE (1 << 16)       /* real vocabularies: a few hundred bytes at most */

#define BAD(key, ...)                                                                             \
    do {                                                                                          \
        char msg_[256];                                                                           \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                                                 \
        LANES_LOG(LANES_LOG_ERROR, "tok: %s: %s: %s", path, (key), msg_);                         \
        return LANES_ETOK;                                                                        \
    } while (0)

static const char *type_name(uint32_t type) {
    static const char *names[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return type < sizeof names / sizeof *names ? names[type] : "unknown";
}

/* An optional array of elem1 or elem2 with at least min entries; *out NULL when absent. */
static int get_arr(const eng_gguf_t *g, const char *path, const char *key, uint32_t elem1,
                   uint32_t elem2, uint64_t min, const eng_gguf_value_t **out) {
    const eng_gguf_kv_t *kv = eng_gguf_kv_find(g, key);
    *out = NULL;
    if (kv == NULL) return LANES_OK;
    const eng_gguf_value_t *v = &kv->val;
    if (v->type != ENG_GGUF_ARRAY || (v->elem_type != elem1 && v->elem_type != elem2))
        BAD(key, "want an array of %s, got %s%s%s", type_name(elem1), type_name(v->type),
            v->type == ENG_GGUF_ARRAY ? " of " : "",
            v->type == ENG_GGUF_ARRAY ? type_name(v->elem_type) : "");
    if (v->count < min)
        BAD(key, "%llu entries for %llu tokens", (unsigned long long)v->count,
            (unsigned long long)min);
    *out = v;
    return LANES_OK;
}

/* An optional token id. -1 (or 2^32 - 1 unsigned, as converters write "none") leaves *id alone,
 * as llama.cpp keeps its default then; any other value outside the vocabulary is an error. */
static int get_id(const eng_gguf_t *g, const char *path, const char *key, int n, int32_t *id) {
    const eng_gguf_kv_t *kv = eng_gguf_kv_find(g, key);
    if (kv == NULL) return LANES_OK;
    const eng_gguf_value_t *v = &kv->val;
    int64_t x;
    switch (v->type) {
    case ENG_GGUF_U8: case ENG_GGUF_U16: case ENG_GGUF_U32: case ENG_GGUF_U64:
        if (v->num.u == UINT32_MAX) return LANES_OK;
        x = v->num.u > INT64_MAX ? INT64_MAX : (int64_t)v->num.u;
        break;
    case ENG_GGUF_I8: case ENG_GGUF_I16: case ENG_GGUF_I32: case ENG_GGUF_I64:
        if (v->num.i == -1) return LANES_OK;
        x = v->num.i;
        break;
    default: BAD(key, "want an integer token id, got %s", type_name(v->type));
    }
    if (x < 0 || x >= n) BAD(key, "token id %lld outside the vocabulary [0, %d)", (long long)x, n);
    *id = (int32_t)x;
    return LANES_OK;
}

static int get_bool(const eng_gguf_t *g, const char *path, const char *key, int *b) {
    const eng_gguf_kv_t *kv = eng_gguf_kv_find(g, key);
    if (kv == NULL) return LANES_OK;
    if (kv->val.type != ENG_GGUF_BOOL) BAD(key, "want bool, got %s", type_name(kv->val.type));
    *b = kv->val.num.u != 0;
    return LANES_OK;
}

static int str_is(const char *s, size_t n, const char *lit) {
    return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static uint32_t rd_le32(const void *p) {
    const unsigned char *b = p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* ---- special tokens and the end-of-generation set -------------------------------------------- */

/* Pre-tokenizers for which llama.cpp adds BOS unless add_bos_token says otherwise. */
static const char *const bos_pre[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1",
                                      "pixtral", "midm-2.0", "lfm2", "jina-v5-nano", "tekken",
                                      "chameleon"};

/* Token texts llama.cpp treats as end of generation (and as control tokens, whatever their type),
 * and the FIM pad/repo/separator texts it also stops on when no key names those tokens. */
static const char *const eog_text[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "[e~[",
};
static const char *const fim_pad_text[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>",
                                           "[PAD]"};
static const char *const fim_rep_text[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                           "<REPO>", "<reponame>"};
static const char *const fim_sep_text[] = {"<|file_sep|>"};

/* The lowest id whose text is one of texts[0..n), or -1. */
static int32_t find_any(const eng_tok_t *t, const char *const *texts, size_t n) {
    int32_t best = -1;
    for (size_t i = 0; i < n; i++) {
        int id = eng__tok_find(t, texts[i], strlen(texts[i]));
        if (id >= 0 && (best < 0 || id < best)) best = id;
    }
    return best;
}

static void add_eog(eng_tok_t *t, int32_t id) {
    if (id < 0) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    t->eog[t->n_eog++] = id;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* fim holds the FIM pad, repo and separator ids from their keys (-1: find them by text); eot and
 * eom are the EOT and EOM keys' ids (-1: none; their usual texts are in eog_text anyway). */
static int build_eog(eng_tok_t *t, const int32_t fim[3], int32_t eot, int32_t eom) {
    static const struct { const char *const *v; size_t n; } fim_texts[3] = {
        {fim_pad_text, sizeof fim_pad_text / sizeof *fim_pad_text},
        {fim_rep_text, sizeof fim_rep_text / sizeof *fim_rep_text},
        {fim_sep_text, sizeof fim_sep_text / sizeof *fim_sep_text},
    };
    size_t n_text = sizeof eog_text / sizeof *eog_text;
    t->eog = malloc((n_text + 3 + 3) * sizeof *t->eog);
    if (t->eog == NULL) return LANES_ENOMEM;
    for (int k = 0; k < 3; k++) {
        int32_t id = fim[k] >= 0 ? fim[k] : find_any(t, fim_texts[k].v, fim_texts[k].n);
        if (id >= 0 && fim[k] < 0) t->type[id] = TOK_T_CONTROL;
        add_eog(t, id);
    }
    for (size_t i = 0; i < n_text; i++) {
        int id = eng__tok_find(t, eog_text[i], strlen(eog_text[i]));
        if (id < 0) continue;
        t->type[id] = TOK_T_CONTROL;     /* llama.cpp: "control-looking token ... overridden" */
        add_eog(t, id);
    }
    add_eog(t, t->eos);
    add_eog(t, eot);
    add_eog(t, eom);
    qsort(t->eog, (size_t)t->n_eog, sizeof *t->eog, cmp_i32);
    return LANES_OK;
}

typedef struct {
    uint32_t len;
    int32_t id;
} by_len_t;

static int cmp_by_len(const void *a, const void *b) {
    const by_len_t *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Control, user-defined and unknown tokens, longest text first (ties: lower id first; llama.cpp's
 * std::sort leaves their order unspecified). */
static int build_special(eng_tok_t *t) {
    by_len_t *v = malloc((size_t)t->vocab_size * sizeof *v);
    if (v == NULL) return LANES_ENOMEM;
    int n = 0;
    for (int id = 0; id < t->vocab_size; id++) {
        int ty = t->type[id];
        if (ty == TOK_T_CONTROL || ty == TOK_T_USER_DEFINED || ty == TOK_T_UNKNOWN)
            v[n++] = (by_len_t){t->off[id + 1] - t->off[id], id};
    }
    qsort(v, (size_t)n, sizeof *v, cmp_by_len);
    t->special = malloc((size_t)(n ? n : 1) * sizeof *t->special);
    if (t->special == NULL) {
        free(v);
        return LANES_ENOMEM;
    }
    for (int i = 0; i < n; i++) t->special[i] = v[i].id;
    t->n_special = n;
    free(v);
    return LANES_OK;
}

/* ---- decoding, once per token ---------------------------------------------------------------- */

/* What token_to_piece(special = false) gives for id, into out (NULL: only the length). */
static size_t decoded(const eng_tok_t *t, int32_t id, char *out) {
    const char *p = t->bytes + t->off[id];
    size_t n = t->off[id + 1] - t->off[id], k = 0;
    int b;
    switch (t->type[id]) {
    case TOK_T_USER_DEFINED:
        if (out) memcpy(out, p, n);
        return n;
    case TOK_T_BYTE:
        if ((b = eng__tok_byte_piece(p, n)) < 0) return 0;
        if (out) out[0] = (char)b;
        return 1;
    case TOK_T_NORMAL:
        if (t->kind == TOK_BPE) {
            p = eng__bpe_piece(t->bpe, id, &n);
            if (out) memcpy(out, p, n);
            return n;
        }
        for (size_t i = 0; i < n; k++) {
            int space = n - i >= 3 && memcmp(p + i, "\xe2\x96\x81", 3) == 0;
            if (out) out[k] = space ? ' ' : p[i];
            i += space ? 3 : 1;
        }
        return k;
    default: return 0;                   /* control, unknown, unused, undefined */
    }
}

static int build_decoded(eng_tok_t *t) {
    size_t total = 0;
    t->max_text = 1;
    for (int id = 0; id < t->vocab_size; id++) {
        size_t n = decoded(t, id, NULL), raw = t->off[id + 1] - t->off[id];
        total += n;
        if (n > t->max_text) t->max_text = n;
        if (raw > t->max_text) t->max_text = raw;
    }
    if (total > UINT32_MAX) return LANES_ENOMEM;
    t->doff = malloc(((size_t)t->vocab_size + 1) * sizeof *t->doff);
    t->dbytes = malloc(total ? total : 1);
    if (t->doff == NULL || t->dbytes == NULL) return LANES_ENOMEM;
    size_t o = 0;
    for (int id = 0; id < t->vocab_size; id++) {
        t->doff[id] = (uint32_t)o;
        o += decoded(t, id, t->dbytes + o);
    }
    t->doff[t->vocab_size] = (uint32_t)o;
    return LANES_OK;
}

/* ---- the loader ------------------------------------------------------------------------------ */

/* Copies the token texts, scores and types; checks lengths and duplicates. */
static int copy_vocab(const char *path, const eng_gguf_value_t *tokens,
                      const eng_gguf_value_t *scores, const eng_gguf_value_t *types, int kind,
                      eng_tok_t **out) {
    int n = (int)tokens->count;
    size_t total = 0, len;
    int max = 0;
    for (int i = 0; i < n; i++) {
        eng_gguf_arr_str(tokens, (uint64_t)i, &len);
        if (len > GG_MAX_PIECE)
            BAD("tokenizer.ggml.tokens", "token %d is %zu bytes long (at most %d)", i, len,
                GG_MAX_PIECE);
        total += len;
        if ((int)len > max) max = (int)len;
    }
    if (total > UINT32_MAX) BAD("tokenizer.ggml.tokens", "%zu bytes of token text", total);
    eng_tok_t *t = eng__tok_alloc(n, total);
    if (t == NULL || (t->type = malloc((size_t)n)) == NULL) {
        eng_tok_destroy(t);
        return LANES_ENOMEM;
    }
    t->kind = kind;
    t->max_piece = max;
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        const char *s = eng_gguf_arr_str(tokens, (uint64_t)i, &len);
        memcpy(t->bytes + o, s, len);
        t->off[i] = (uint32_t)o;
        o += len;
        uint32_t bits = scores ? rd_le32((const char *)scores->data + 4 * (size_t)i) : 0;
        if (scores && scores->elem_type == ENG_GGUF_I32) t->scores[i] = (float)(int32_t)bits;
        else memcpy(&t->scores[i], &bits, sizeof bits);
        int32_t ty = types ? (int32_t)rd_le32((const char *)types->data + 4 * (size_t)i)
                           : TOK_T_NORMAL;
        t->type[i] = ty >= TOK_T_UNDEFINED && ty <= TOK_T_BYTE ? (uint8_t)ty : TOK_T_UNDEFINED;
    }
    t->off[n] = (uint32_t)o;
    int dup, rc = eng__tok_index(t, &dup);
    if (rc < 0) {
        eng_tok_destroy(t);
        return rc;
    }
    if (dup >= 0) {
        const char *s = t->bytes + t->off[dup];
        int l = (int)(t->off[dup + 1] - t->off[dup]), first = eng__tok_find(t, s, (size_t)l);
        eng_tok_destroy(t);
        BAD("tokenizer.ggml.tokens", "duplicate token '%.*s' (ids %d and %d)", l > 64 ? 64 : l, s,
            first, dup);
    }
    *out = t;
    return LANES_OK;
}

/* Every key the tokenizer reads, in llama.cpp's order. */
static int read_keys(const eng_gguf_t *g, const char *path, eng_tok_t **out) {
    const eng_gguf_kv_t *model = eng_gguf_kv_find(g, "tokenizer.ggml.model");
    if (model == NULL) BAD("tokenizer.ggml.model", "missing (no tokenizer in this file)");
    if (model->val.type != ENG_GGUF_STRING)
        BAD("tokenizer.ggml.model", "want string, got %s", type_name(model->val.type));
    const char *ms = model->val.str;
    size_t ml = model->val.len;
    int kind = str_is(ms, ml, "llama") ? TOK_SPM : str_is(ms, ml, "gpt2") ? TOK_BPE : -1;
    if (kind < 0)
        BAD("tokenizer.ggml.model", "'%.*s' not supported (llama, gpt2)", ml > 64 ? 64 : (int)ml,
            ms);
    const eng_gguf_kv_t *pre = eng_gguf_kv_find(g, "tokenizer.ggml.pre");
    if (pre && pre->val.type != ENG_GGUF_STRING)
        BAD("tokenizer.ggml.pre", "want string, got %s", type_name(pre->val.type));

    const eng_gguf_value_t *tokens, *scores, *types, *merges = NULL;
    int rc = get_arr(g, path, "tokenizer.ggml.tokens", ENG_GGUF_STRING, ENG_GGUF_STRING, 0,
                     &tokens);
    if (rc < 0) return rc;
    if (tokens == NULL) BAD("tokenizer.ggml.tokens", "missing");
    if (tokens->count < 1 || tokens->count > GG_MAX_VOCAB)
        BAD("tokenizer.ggml.tokens", "%llu tokens, want 1..%d", (unsigned long long)tokens->count,
            GG_MAX_VOCAB);
    int n = (int)tokens->count;
    if ((rc = get_arr(g, path, "tokenizer.ggml.scores", ENG_GGUF_F32, ENG_GGUF_I32,
                      (uint64_t)n, &scores)) < 0 ||
        (rc = get_arr(g, path, "tokenizer.ggml.token_type", ENG_GGUF_I32, ENG_GGUF_I32,
                      (uint64_t)n, &types)) < 0)
        return rc;
    if (kind == TOK_BPE) {
        if ((rc = get_arr(g, path, "tokenizer.ggml.merges", ENG_GGUF_STRING, ENG_GGUF_STRING, 0,
                          &merges)) < 0)
            return rc;
        if (merges == NULL) BAD("tokenizer.ggml.merges", "missing (a gpt2 tokenizer needs them)");
        if (merges->count > INT32_MAX)
            BAD("tokenizer.ggml.merges", "%llu merges", (unsigned long long)merges->count);
    }

    eng_tok_t *t;
    if ((rc = copy_vocab(path, tokens, scores, types, kind, &t)) < 0) return rc;
    /* llama.cpp's defaults, dropped when outside the vocabulary. */
    t->bos = kind == TOK_SPM ? 1 : 11;
    t->eos = kind == TOK_SPM ? 2 : 11;
    t->unk = kind == TOK_SPM ? 0 : -1;
    if (t->bos >= n) t->bos = -1;
    if (t->eos >= n) t->eos = -1;
    if (t->unk >= n) t->unk = -1;
    t->add_bos = kind == TOK_SPM;
    t->add_space_prefix = kind == TOK_SPM;
    for (size_t i = 0; kind == TOK_BPE && pre && i < sizeof bos_pre / sizeof *bos_pre; i++)
        if (str_is(pre->val.str, pre->val.len, bos_pre[i])) t->add_bos = 1;
    int32_t pad = -1, eot = -1, eom = -1, fim[3] = {-1, -1, -1};
    if ((rc = get_id(g, path, "tokenizer.ggml.bos_token_id", n, &t->bos)) < 0 ||
        (rc = get_id(g, path, "tokenizer.ggml.eos_token_id", n, &t->eos)) < 0 ||
        (rc = get_id(g, path, "tokenizer.ggml.eot_token_id", n, &eot)) < 0 ||
        (rc = get_id(g, path, "tokenizer.ggml.eom_token_id", n, &eom)) < 0 ||
        (rc = get_id(g, path, "tokenizer.ggml.unknown_token_id", n, &t->unk)) < 0 ||
        (rc = get_id(g, path, "tokenizer.ggml.padding_token_id", n, &pad)) < 0 ||
        (rc = get_id(g, path, "tokenizer.ggml.fim_pad_token_id", n, &fim[0])) < 0 ||
        (rc = get_id(g, path, "tokenizer.ggml.fim_rep_token_id", n, &fim[1])) < 0 ||
        (rc = get_id(g, path, "tokenizer.ggml.fim_sep_token_id", n, &fim[2])) < 0 ||
        (rc = get_bool(g, path, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix)) < 0 ||
        (rc = get_bool(g, path, "tokenizer.ggml.add_bos_token", &t->add_bos)) < 0 ||
        (rc = get_bool(g, path, "tokenizer.ggml.add_eos_token", &t->add_eos)) < 0)
        goto fail;
    rc = LANES_ETOK;
    if (t->add_bos && t->bos < 0) {
        LANES_LOG(LANES_LOG_ERROR, "tok: %s: tokenizer.ggml.add_bos_token: true, but no BOS id",
                  path);
        goto fail;
    }
    if (t->add_eos && t->eos < 0) {
        LANES_LOG(LANES_LOG_ERROR, "tok: %s: tokenizer.ggml.add_eos_token: true, but no EOS id",
                  path);
        goto fail;
    }
    if (kind == TOK_BPE) {
        rc = LANES_ENOMEM;
        eng_bpe_str_t *tv = malloc((size_t)n * sizeof *tv);
        eng_bpe_str_t *mv = malloc((size_t)(merges->count ? merges->count : 1) * sizeof *mv);
        if (tv && mv) {
            for (int i = 0; i < n; i++) tv[i].s = eng_gguf_arr_str(tokens, (uint64_t)i, &tv[i].len);
            for (uint64_t i = 0; i < merges->count; i++)
                mv[i].s = eng_gguf_arr_str(merges, i, &mv[i].len);
            rc = eng__bpe_create(tv, n, mv, (int)merges->count, pre ? pre->val.str : NULL,
                                 pre ? pre->val.len : 0, path, &t->bpe);
        }
        free(tv);
        free(mv);
        if (rc < 0) goto fail;
    }
    for (int b = 0; kind == TOK_SPM && b < 256; b++) {
        char hex[7], one = (char)b;
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        int id = eng__tok_find(t, hex, 6);
        if (id < 0) id = eng__tok_find(t, &one, 1);
        t->byte_tok[b] = id >= 0 ? id : t->unk;
    }
    if ((rc = build_eog(t, fim, eot, eom)) < 0 || (rc = build_special(t)) < 0 ||
        (rc = build_decoded(t)) < 0)
        goto fail;
    *out = t;
    return LANES_OK;
fail:
    eng_tok_destroy(t);
    return rc;
}

int eng_tok_from_gguf(const eng_gguf_t *g, const char *path, eng_tok_t **out) {
    if (g == NULL || out == NULL) return LANES_EINVAL;
    return read_keys(g, path ? path : "gguf", out);
}

/* ---- writing (lanes-mkmodel --format gguf) ---------------------------------------------------- */

/* A llama2.c piece as SentencePiece spells it: spaces become U+2581. */
static char *spm_spelling(const char *p, size_t n, size_t *len) {
    char *s = malloc(3 * n + 1);
    if (s == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ' ') {
            memcpy(s + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            s[k++] = p[i];
        }
    }
    *len = k;
    return s;
}

static uint32_t runc_type(const eng_tok_t *t, int id) {
    if (id == 0) return TOK_T_UNKNOWN;
    if (id == ENG_TOK_BOS || id == ENG_TOK_EOS) return TOK_T_CONTROL;
    size_t n = t->off[id + 1] - t->off[id];
    return eng__tok_byte_piece(t->bytes + t->off[id], n) >= 0 ? TOK_T_BYTE : TOK_T_NORMAL;
}

int eng_tok_to_gguf(const eng_tok_t *t, eng_gguf_writer_t *w) {
    if (t->kind != TOK_RUNC) {
        LANES_LOG(LANES_LOG_ERROR, "tok: only llama2.c tokenizers are written to GGUF files");
        return LANES_EINVAL;
    }
    int n = t->vocab_size, rc = LANES_ENOMEM;
    char **str = calloc((size_t)n, sizeof *str);
    size_t *len = malloc((size_t)n * sizeof *len);
    int32_t *types = malloc((size_t)n * sizeof *types);
    if (str == NULL || len == NULL || types == NULL) goto done;
    for (int i = 0; i < n; i++) {
        if ((str[i] = spm_spelling(t->bytes + t->off[i], t->off[i + 1] - t->off[i], &len[i])) ==
            NULL)
            goto done;
        types[i] = (int32_t)runc_type(t, i);
    }
    const eng_gguf_value_t model = {.type = ENG_GGUF_STRING, .str = "llama", .len = 5};
    const eng_gguf_value_t scores = {.type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_F32,
                                     .count = (uint64_t)n, .data = t->scores};
    const eng_gguf_value_t type_arr = {.type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_I32,
                                       .count = (uint64_t)n, .data = types};
    struct { const char *key; eng_gguf_value_t v; } ids[] = {
        {"tokenizer.ggml.bos_token_id", {.type = ENG_GGUF_U32, .num.u = ENG_TOK_BOS}},
        {"tokenizer.ggml.eos_token_id", {.type = ENG_GGUF_U32, .num.u = ENG_TOK_EOS}},
        {"tokenizer.ggml.unknown_token_id", {.type = ENG_GGUF_U32, .num.u = 0}},
        {"tokenizer.ggml.add_bos_token", {.type = ENG_GGUF_BOOL, .num.u = 1}},
        {"tokenizer.ggml.add_eos_token", {.type = ENG_GGUF_BOOL, .num.u = 0}},
    };
    if ((rc = eng_gguf_writer_add(w, "tokenizer.ggml.model", &model)) < 0 ||
        (rc = eng_gguf_writer_add_strs(w, "tokenizer.ggml.tokens", (const char *const *)str, len,
                                       (uint64_t)n)) < 0 ||
        (rc = eng_gguf_writer_add(w, "tokenizer.ggml.scores", &scores)) < 0 ||
        (rc = eng_gguf_writer_add(w, "tokenizer.ggml.token_type", &type_arr)) < 0)
        goto done;
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        if ((rc = eng_gguf_writer_add(w, ids[i].key, &ids[i].v)) < 0) goto done;
    rc = LANES_OK;
done:
    for (int i = 0; str && i < n; i++) free(str[i]);
    free(str);
    free(len);
    free(types);
    return rc;
}
