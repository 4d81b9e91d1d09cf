/* GGUF models (engine/model/from_gguf.c): small GGUF files of each architecture written here,
 * loaded and checked role by role; then each broken in one way (missing or mistyped keys, out of
 * range values, missing, misshapen, unsupported-type or unknown tensors): each must give
 * LANES_EMODEL and exactly one log line "model PATH: ..." naming the problem (this test also runs
 * under ASan+UBSan). Then every F32/F16/quantized file of the four architectures in
 * ../shared/models/gguf loads with the hyperparameters and tensor types README.md, FAMILIES.md and
 * QUANT.md state, gemma3-style's, qwen35-style's and gemma4-style's (layer by layer) too. */
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "base/lanes_log.h"
#include "model/gguf.h"
#include "model/model.h"
#include "test_util.h"

/* ---- a model as a list of keys and tensors, written on demand ---- */

enum { MAX_KV = 48, MAX_T = 96 };

typedef struct {
    char key[80];
    uint32_t type;      /* ENG_GGUF_*; ENG_GGUF_ARRAY: an array of u strings, or of u numbers */
    uint64_t u;         /* integers (two's complement for signed ones), bools */
    double f;
    char s[64];
    uint32_t elem_type; /* an array of numbers: their type, and their bytes in arr */
    int numeric;
    unsigned char arr[64];
} kv_t;

typedef struct {
    char name[64];
    uint32_t type, n_dims;   /* any ENG_GGML_* */
    uint64_t dims[2];
    float val;               /* every element (rounded to F16/BF16 by the writer's rounding);
                              * blocks of other types are all zero bytes */
} ten_t;

typedef struct {
    char arch[16];
    kv_t kv[MAX_KV];
    int nkv;
    ten_t t[MAX_T];
    int nt;
} spec_t;

static const char *akey(const spec_t *s, const char *suffix) {
    static char buf[80];
    snprintf(buf, sizeof buf, "%s.%s", s->arch, suffix);
    return buf;
}

static kv_t *find_kv(spec_t *s, const char *key) {
    for (int i = 0; i < s->nkv; i++)
        if (strcmp(s->kv[i].key, key) == 0) return &s->kv[i];
    return NULL;
}

/* The key (added if absent) with its value cleared and type set. */
static kv_t *set_kv(spec_t *s, const char *key, uint32_t type) {
    kv_t *k = find_kv(s, key);
    if (!k) {
        ASSERT(s->nkv < MAX_KV);
        k = &s->kv[s->nkv++];
    }
    memset(k, 0, sizeof *k);
    snprintf(k->key, sizeof k->key, "%s", key);
    k->type = type;
    return k;
}
static void set_u(spec_t *s, const char *key, uint32_t type, uint64_t u) {
    set_kv(s, key, type)->u = u;
}
static void set_f(spec_t *s, const char *key, uint32_t type, double f) {
    set_kv(s, key, type)->f = f;
}
static void set_s(spec_t *s, const char *key, const char *v) {
    snprintf(set_kv(s, key, ENG_GGUF_STRING)->s, sizeof s->kv[0].s, "%s", v);
}
/* key = an array of n numbers of type elem_type, bytes their little-endian encoding. */
static void set_arr(spec_t *s, const char *key, uint32_t elem_type, uint64_t n, const void *bytes) {
    kv_t *k = set_kv(s, key, ENG_GGUF_ARRAY);
    size_t len = (size_t)n * eng_gguf_value_size(elem_type);
    ASSERT(len <= sizeof k->arr);
    k->u = n;
    k->elem_type = elem_type;
    k->numeric = 1;
    memcpy(k->arr, bytes, len);
}
static void del_kv(spec_t *s, const char *key) {
    kv_t *k = find_kv(s, key);
    ASSERT(k != NULL);
    *k = s->kv[--s->nkv];
}

static ten_t *find_t(spec_t *s, const char *name) {
    for (int i = 0; i < s->nt; i++)
        if (strcmp(s->t[i].name, name) == 0) return &s->t[i];
    fprintf(stderr, "no tensor %s in the spec\n", name);
    exit(1);
}
static ten_t *add_t(spec_t *s, const char *name, uint64_t d0, uint64_t d1) {
    ASSERT(s->nt < MAX_T);
    ten_t *t = &s->t[s->nt++];
    *t = (ten_t){.type = ENG_GGML_F32, .n_dims = d1 ? 2 : 1, .dims = {d0, d1 ? d1 : 1}, .val = 1};
    snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}
static void del_t(spec_t *s, const char *name) {
    ten_t *t = find_t(s, name);
    memmove(t, t + 1, (size_t)(s->t + s->nt - (t + 1)) * sizeof *t);
    s->nt--;
}

/* The test shape: dim 32, ffn 64, 2 layers, 4 heads of 8 (2 KV heads; gpt2: 4), context 16,
 * vocab 16; tied output (gpt2: untied, as llama.cpp b4747 requires). gemma3: window 4, pattern 2
 * (layer 0 slides, layer 1 is global), local base 1e4, linear scaling by 4. */
enum { D = 32, H = 64, NL = 2, NH = 4, NKV = 2, HD = 8, CTX = 16, VOCAB = 16 };
/* qwen35: full_attention_interval 2 (layer 0 a delta net, layer 1 attention with an output gate),
 * sections [2, 1, 1, 0] on 8 RoPE dims; delta net of SK key heads, SH value heads of SD, SKER taps,
 * SC = 2 SK SD + SH SD conv channels. */
enum { SK = 2, SH = 4, SD = 4, SKER = 4, SC = 2 * SK * SD + SH * SD };
/* gemma4, as gemma4-style in FAMILIES.md 4 at this test's size: 4 layers, sliding ones (0, 2) with
 * heads of G4_SWA and 2 KV heads, global ones (1, 3) with heads of G4_HD and 1 KV head, FFN widths
 * H, H, 2H, 2H, RoPE on all of a head, window 4; layers 2 and 3 reuse layer 0's and 1's KV (shared
 * 2), layer 1 has no attn_v; per-layer embeddings of G4_PLE; every layer an output scale. */
enum { G4_NL = 4, G4_HD = 16, G4_SWA = 8, G4_PLE = 4 };
static const int g4_kv[G4_NL] = {2, 1, 2, 1}, g4_ff[G4_NL] = {H, H, 2 * H, 2 * H};

static void base_spec(spec_t *s, const char *arch) {
    memset(s, 0, sizeof *s);
    snprintf(s->arch, sizeof s->arch, "%s", arch);
    int gpt2 = strcmp(arch, "gpt2") == 0, qwen2 = strcmp(arch, "qwen2") == 0;
    int qwen3 = strcmp(arch, "qwen3") == 0, kv = gpt2 ? NH : NKV;
    int gemma3 = strcmp(arch, "gemma3") == 0, qwen35 = strcmp(arch, "qwen35") == 0;
    int gemma4 = strcmp(arch, "gemma4") == 0, nl = gemma4 ? G4_NL : NL;
    set_s(s, "general.architecture", arch);
    set_s(s, "general.name", "crafted");
    set_u(s, akey(s, "block_count"), ENG_GGUF_U32, (uint64_t)nl);
    set_u(s, akey(s, "context_length"), ENG_GGUF_U32, CTX);
    set_u(s, akey(s, "embedding_length"), ENG_GGUF_U32, D);
    set_u(s, akey(s, "feed_forward_length"), ENG_GGUF_U32, H);
    set_u(s, akey(s, "attention.head_count"), ENG_GGUF_U32, NH);
    if (gpt2) {
        set_f(s, akey(s, "attention.layer_norm_epsilon"), ENG_GGUF_F32, 1e-5);
    } else {
        set_u(s, akey(s, "attention.head_count_kv"), ENG_GGUF_U32, NKV);
        set_f(s, akey(s, "rope.freq_base"), ENG_GGUF_F32, 10000);
        set_f(s, akey(s, "attention.layer_norm_rms_epsilon"), ENG_GGUF_F32, 1e-6);
    }
    if (gemma3) {
        set_u(s, akey(s, "attention.sliding_window"), ENG_GGUF_U32, 4);
        set_u(s, akey(s, "attention.sliding_window_pattern"), ENG_GGUF_U32, 2);
        set_f(s, akey(s, "rope.freq_base_swa"), ENG_GGUF_F32, 1e4);
        set_s(s, akey(s, "rope.scaling.type"), "linear");
        set_f(s, akey(s, "rope.scaling.factor"), ENG_GGUF_F32, 4);
    }
    if (gemma4) {
        set_arr(s, akey(s, "feed_forward_length"), ENG_GGUF_I32, G4_NL, g4_ff);
        set_arr(s, akey(s, "attention.head_count_kv"), ENG_GGUF_I32, G4_NL, g4_kv);
        set_u(s, akey(s, "attention.key_length"), ENG_GGUF_U32, G4_HD);
        set_u(s, akey(s, "attention.value_length"), ENG_GGUF_U32, G4_HD);
        set_u(s, akey(s, "attention.key_length_swa"), ENG_GGUF_U32, G4_SWA);
        set_u(s, akey(s, "attention.value_length_swa"), ENG_GGUF_U32, G4_SWA);
        set_u(s, akey(s, "rope.dimension_count"), ENG_GGUF_U32, G4_HD);
        set_u(s, akey(s, "rope.dimension_count_swa"), ENG_GGUF_U32, G4_SWA);
        set_f(s, akey(s, "rope.freq_base"), ENG_GGUF_F32, 1e6);
        set_f(s, akey(s, "rope.freq_base_swa"), ENG_GGUF_F32, 1e4);
        set_u(s, akey(s, "attention.sliding_window"), ENG_GGUF_U32, 4);
        set_arr(s, akey(s, "attention.sliding_window_pattern"), ENG_GGUF_BOOL, G4_NL,
                (const uint8_t[]){1, 0, 1, 0});
        set_u(s, akey(s, "attention.shared_kv_layers"), ENG_GGUF_U32, 2);
        set_u(s, akey(s, "embedding_length_per_layer_input"), ENG_GGUF_U32, G4_PLE);
        set_f(s, akey(s, "final_logit_softcapping"), ENG_GGUF_F32, 30);
    }
    if (qwen35) {
        set_arr(s, akey(s, "rope.dimension_sections"), ENG_GGUF_I32, 4,
                (const int32_t[]){2, 1, 1, 0});
        set_u(s, akey(s, "ssm.conv_kernel"), ENG_GGUF_U32, SKER);
        set_u(s, akey(s, "ssm.state_size"), ENG_GGUF_U32, SD);
        set_u(s, akey(s, "ssm.group_count"), ENG_GGUF_U32, SK);
        set_u(s, akey(s, "ssm.time_step_rank"), ENG_GGUF_U32, SH);
        set_u(s, akey(s, "ssm.inner_size"), ENG_GGUF_U32, SH * SD);
        set_u(s, akey(s, "full_attention_interval"), ENG_GGUF_U32, 2);
    }
    set_u(s, "tokenizer.ggml.tokens", ENG_GGUF_ARRAY, VOCAB);
    add_t(s, "token_embd.weight", D, VOCAB);
    if (gpt2) add_t(s, "position_embd.weight", D, CTX);
    if (gemma4) {
        add_t(s, "per_layer_token_embd.weight", G4_NL * G4_PLE, VOCAB);
        add_t(s, "per_layer_model_proj.weight", D, G4_NL * G4_PLE);
        add_t(s, "per_layer_proj_norm.weight", G4_PLE, 0);
        add_t(s, "rope_freqs.weight", G4_HD / 2, 0);
    }
    for (int l = 0; l < nl; l++) {
        char n[64];
#define T(name, d0, d1) (snprintf(n, sizeof n, "blk.%d.%s", l, name), add_t(s, n, d0, d1))
        T("attn_norm.weight", D, 0);
        if (gemma4) {   /* per-layer shapes; K and V only on layers 0 and 1, V only on 0 */
            int hd = l % 2 ? G4_HD : G4_SWA;
            T("attn_q.weight", D, NH * hd);
            if (l < 2) T("attn_k.weight", D, g4_kv[l] * hd);
            if (l == 0) T("attn_v.weight", D, g4_kv[l] * hd);
            T("attn_output.weight", NH * hd, D);
            T("attn_q_norm.weight", hd, 0);
            if (l < 2) T("attn_k_norm.weight", hd, 0);
            T("post_attention_norm.weight", D, 0);
            T("layer_output_scale.weight", 1, 0);
            T("ffn_norm.weight", D, 0);
            T("ffn_gate.weight", D, g4_ff[l]);
            T("ffn_up.weight", D, g4_ff[l]);
            T("ffn_down.weight", g4_ff[l], D);
            T("post_ffw_norm.weight", D, 0);
            T("inp_gate.weight", D, G4_PLE);
            T("proj.weight", G4_PLE, D);
            T("post_norm.weight", D, 0);
            continue;
        }
        if (qwen35) {   /* its own layer list: the mixer by layer kind, the pre-FFN norm */
            if (l == 0) {
                T("attn_qkv.weight", D, SC);
                T("attn_gate.weight", D, SH * SD);
                T("ssm_conv1d.weight", SKER, SC);
                T("ssm_dt.bias", SH, 0);
                T("ssm_a", SH, 0);
                T("ssm_beta.weight", D, SH);
                T("ssm_alpha.weight", D, SH);
                T("ssm_norm.weight", SD, 0);
                T("ssm_out.weight", SH * SD, D);
            } else {
                T("attn_q.weight", D, 2 * NH * HD);
                T("attn_k.weight", D, NKV * HD);
                T("attn_v.weight", D, NKV * HD);
                T("attn_q_norm.weight", HD, 0);
                T("attn_k_norm.weight", HD, 0);
                T("attn_output.weight", NH * HD, D);
            }
            T("post_attention_norm.weight", D, 0);
            T("ffn_gate.weight", D, H);
            T("ffn_up.weight", D, H);
            T("ffn_down.weight", H, D);
            continue;
        }
        if (gpt2) {
            T("attn_norm.bias", D, 0);
            T("attn_qkv.weight", D, 3 * D);
            T("attn_qkv.bias", 3 * D, 0);
        } else {
            T("attn_q.weight", D, NH * HD);
            T("attn_k.weight", D, kv * HD);
            T("attn_v.weight", D, kv * HD);
        }
        if (qwen2) {
            T("attn_q.bias", NH * HD, 0);
            T("attn_k.bias", kv * HD, 0);
            T("attn_v.bias", kv * HD, 0);
        }
        if (qwen3 || gemma3) {
            T("attn_q_norm.weight", HD, 0);
            T("attn_k_norm.weight", HD, 0);
        }
        T("attn_output.weight", NH * HD, D);
        if (gemma3) T("post_attention_norm.weight", D, 0);
        if (gpt2) T("attn_output.bias", D, 0);
        T("ffn_norm.weight", D, 0);
        if (gpt2) T("ffn_norm.bias", D, 0);
        if (!gpt2) T("ffn_gate.weight", D, H);
        T("ffn_up.weight", D, H);
        if (gpt2) T("ffn_up.bias", H, 0);
        T("ffn_down.weight", H, D);
        if (gpt2) T("ffn_down.bias", D, 0);
        if (gemma3) T("post_ffw_norm.weight", D, 0);
#undef T
    }
    add_t(s, "output_norm.weight", D, 0);
    if (gpt2) {
        add_t(s, "output_norm.bias", D, 0);
        add_t(s, "output.weight", D, VOCAB);
    }
}

static uint64_t tensor_bytes(const ten_t *t) {
    size_t bytes;
    char why[160];
    ASSERT_EQ(eng_gguf_tensor_size(t->type, t->n_dims, t->dims, &bytes, why, sizeof why), LANES_OK);
    return bytes;
}

/* Writes s as a GGUF file through the project's writer (model/gguf_write.c), aligned to its
 * general.alignment when it has one. */
static void write_spec(const spec_t *s, const char *file) {
    const kv_t *ak = find_kv((spec_t *)s, "general.alignment");
    eng_gguf_writer_t *w;
    ASSERT_EQ(eng_gguf_writer_create(ak ? (uint32_t)ak->u : 0, &w), LANES_OK);
    for (int i = 0; i < s->nkv; i++) {
        const kv_t *k = &s->kv[i];
        eng_gguf_value_t v = {.type = k->type};
        if (k->type == ENG_GGUF_ARRAY && k->numeric) {
            v.elem_type = k->elem_type;
            v.count = k->u;
            v.data = k->arr;
            ASSERT_EQ(eng_gguf_writer_add(w, k->key, &v), LANES_OK);
            continue;
        }
        if (k->type == ENG_GGUF_ARRAY) {   /* the tokens "t0", "t1", ... */
            static char names[64][24];
            const char *str[64];
            ASSERT(k->u <= 64);
            for (uint64_t j = 0; j < k->u; j++) {
                snprintf(names[j], sizeof names[j], "t%llu", (unsigned long long)j);
                str[j] = names[j];
            }
            ASSERT_EQ(eng_gguf_writer_add_strs(w, k->key, str, NULL, k->u), LANES_OK);
            continue;
        }
        if (k->type == ENG_GGUF_STRING) {
            v.str = k->s;
            v.len = strlen(k->s);
        } else if (k->type == ENG_GGUF_F32 || k->type == ENG_GGUF_F64) v.num.f = k->f;
        else if (k->type == ENG_GGUF_I8 || k->type == ENG_GGUF_I16 || k->type == ENG_GGUF_I32 ||
                 k->type == ENG_GGUF_I64) v.num.i = (int64_t)k->u;
        else
            v.num.u = k->u;
        ASSERT_EQ(eng_gguf_writer_add(w, k->key, &v), LANES_OK);
    }
    void *data[MAX_T];
    for (int i = 0; i < s->nt; i++) {
        const ten_t *t = &s->t[i];
        size_t bytes = tensor_bytes(t), n = bytes / (t->type == ENG_GGML_F32 ? 4 : 2);
        ASSERT((data[i] = calloc(1, bytes)) != NULL);
        for (size_t j = 0; t->type == ENG_GGML_F32 && j < n; j++) ((float *)data[i])[j] = t->val;
        if (t->type == ENG_GGML_F16) eng_gguf_f32_to_f16(data[i], (const float[]){t->val}, 1);
        if (t->type == ENG_GGML_BF16) eng_gguf_f32_to_bf16(data[i], (const float[]){t->val}, 1);
        int half = t->type == ENG_GGML_F16 || t->type == ENG_GGML_BF16;
        for (size_t j = 1; half && j < n; j++)
            ((uint16_t *)data[i])[j] = ((uint16_t *)data[i])[0];
        ASSERT_EQ(eng_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->dims, data[i],
                                             bytes), LANES_OK);
    }
    ASSERT_EQ(eng_gguf_writer_write(w, file), LANES_OK);
    eng_gguf_writer_destroy(w);
    for (int i = 0; i < s->nt; i++) free(data[i]);
}

/* Rewrites the ggml type of tensor name in a written file (its info: name, n_dims, dims, type). */
static void patch_type(const char *file, const char *name, uint32_t type) {
    FILE *f = fopen(file, "r+b");
    ASSERT(f != NULL);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f), len = strlen(name);
    char *at = NULL;
    for (size_t i = 8; !at && i + len <= n; i++)
        if (memcmp(buf + i, name, len) == 0 && buf[i - 8] == (char)len) at = buf + i;
    ASSERT(at != NULL);
    uint32_t n_dims;
    memcpy(&n_dims, at + len, 4);
    long off = (long)(at - buf) + (long)len + 4 + 8 * (long)n_dims;
    ASSERT(fseek(f, off, SEEK_SET) == 0);
    ASSERT(fwrite(&type, 4, 1, f) == 1);
    ASSERT(fclose(f) == 0);
}

/* ---- loading with the log captured ---- */

static char logbuf[8192];
static char path[64];   /* the model file; stderr goes to path + ".log" while the loader runs */

static void remove_files(void) {
    char log[80];
    snprintf(log, sizeof log, "%s.log", path);
    unlink(path);
    unlink(log);
}

static int load_file(const char *file, eng_model_t **m) {
    char log[4200];
    snprintf(log, sizeof log, "%s.log", path);
    test_capture_t cap;
    test_capture_begin(&cap, log);
    *m = NULL;
    int rc = eng_model_load(file, m);
    test_capture_end(&cap, logbuf, sizeof logbuf);
    ASSERT(rc < 0 ? *m == NULL : rc == LANES_OK && *m != NULL);
    return rc;
}

static int load_spec(const spec_t *s, eng_model_t **m) {
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/test_eng_model_gguf.%d.gguf", (int)getpid());
        atexit(remove_files);
    }
    write_spec(s, path);
    return load_file(path, m);
}

/* A bad model: LANES_EMODEL and one log line "model FILE: ..." holding each part of want. */
static void expect_bad_log(int rc, const char *file, const char *want, const char *label) {
    char head[4200];
    snprintf(head, sizeof head, "model %s: ", file);
    if (rc != LANES_EMODEL || test_count_lines(logbuf) != 1 || !strstr(logbuf, head) ||
        !test_has_all(logbuf, want)) {
        fprintf(stderr, "case %s: rc %d, log:\n%s(wanted \"%s\")\n", label, rc, logbuf, want);
        exit(1);
    }
}

static void expect_bad(const spec_t *s, const char *want, const char *label) {
    eng_model_t *m;
    int rc = load_spec(s, &m);
    eng_model_destroy(m);
    expect_bad_log(rc, path, want, label);
}

/* ---- the crafted models ---- */

static const eng_gguf_tensor_t *file_tensor(const eng_model_t *m, const char *name) {
    const eng_gguf_tensor_t *t = eng_gguf_tensor_find(eng_model_gguf(m), name);
    if (!t) fprintf(stderr, "tensor %s missing\n", name);
    ASSERT(t != NULL);
    return t;
}

/* A matrix of the model is the file's tensor, in place: same bytes, type and shape. */
static void expect_in_file(const eng_model_t *m, const eng_mat_t *w, const char *name) {
    const eng_gguf_tensor_t *t = file_tensor(m, name);
    ASSERT(w->data == t->data);
    ASSERT_EQ(w->type, t->type);
    ASSERT_EQ(w->cols, t->dims[0]);
    ASSERT_EQ(w->rows, t->dims[1]);
}

/* qwen35: layer 0 a delta net bound tensor by tensor (ssm_conv1d as F32 taps, channel-major),
 * layer 1 attention with its gated query (2 x 4 x 8 rows) and QK norm; post_attention_norm is
 * both layers' pre-FFN norm; NEOX on 8 dims; the ssm shape. Then the layer kinds from an
 * attention.recurrent_layers array instead of full_attention_interval, and other sections that
 * are plain NEOX on text. */
static void test_qwen35_good(void) {
    static spec_t s;
    eng_model_t *m;
    base_spec(&s, "qwen35");
    int rc = load_spec(&s, &m);
    if (rc != LANES_OK) fprintf(stderr, "qwen35: %s", logbuf);
    ASSERT_EQ(rc, LANES_OK);
    ASSERT_EQ(test_count_lines(logbuf), 0);
    const eng_model_cfg_t *c = eng_model_cfg(m);
    const eng_layer_t *l0 = &eng_model_weights(m)->layers[0], *l1 = l0 + 1;
    ASSERT_STR_EQ(c->arch.name, "qwen35");
    ASSERT(c->arch.attn_gate == 1 && c->arch.qk_norm == 1 && c->arch.post_norms == 0);
    ASSERT(c->arch.rope == ENG_ROPE_NEOX && c->arch.ffn == ENG_FFN_SWIGLU);
    ASSERT(c->numerics == ENG_NUMERICS_GGML && c->shared_cls == 1 && c->window == 0);
    ASSERT(c->layer_kind[0] == ENG_LAYER_DNET && c->layer_kind[1] == ENG_LAYER_ATTN);
    ASSERT(c->ssm_k_heads == SK && c->ssm_v_heads == SH && c->ssm_head_dim == SD);
    ASSERT(c->ssm_conv_kernel == SKER && c->rope_dim == HD && c->head_dim == HD);
    expect_in_file(m, &l0->ssm_qkv, "blk.0.attn_qkv.weight");
    expect_in_file(m, &l0->ssm_gate, "blk.0.attn_gate.weight");
    expect_in_file(m, &l0->ssm_beta, "blk.0.ssm_beta.weight");
    expect_in_file(m, &l0->ssm_alpha, "blk.0.ssm_alpha.weight");
    expect_in_file(m, &l0->ssm_out, "blk.0.ssm_out.weight");
    ASSERT(l0->ssm_conv == file_tensor(m, "blk.0.ssm_conv1d.weight")->data);
    ASSERT(l0->ssm_dt_bias == file_tensor(m, "blk.0.ssm_dt.bias")->data);
    ASSERT(l0->ssm_a == file_tensor(m, "blk.0.ssm_a")->data);
    ASSERT(l0->ssm_norm == file_tensor(m, "blk.0.ssm_norm.weight")->data);
    ASSERT(l0->wq.data == NULL && l0->wo.data == NULL && l0->q_norm == NULL);
    expect_in_file(m, &l1->wq, "blk.1.attn_q.weight");
    ASSERT_EQ(l1->wq.rows, 2 * NH * HD);
    expect_in_file(m, &l1->wk, "blk.1.attn_k.weight");
    expect_in_file(m, &l1->wo, "blk.1.attn_output.weight");
    ASSERT(l1->q_norm == file_tensor(m, "blk.1.attn_q_norm.weight")->data);
    ASSERT(l1->ssm_qkv.data == NULL && l1->ssm_conv == NULL && l1->ssm_a == NULL);
    for (int l = 0; l < 2; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.post_attention_norm.weight", l);
        ASSERT(l0[l].ffn_norm == file_tensor(m, name)->data && l0[l].post_attn_norm == NULL);
        snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
        expect_in_file(m, &l0[l].w_gate, name);
    }
    eng_model_destroy(m);

    base_spec(&s, "qwen35");
    del_kv(&s, "qwen35.full_attention_interval");
    set_arr(&s, "qwen35.attention.recurrent_layers", ENG_GGUF_BOOL, 2, (const uint8_t[]){1, 0});
    ASSERT_EQ(load_spec(&s, &m), LANES_OK);
    ASSERT(eng_model_cfg(m)->layer_kind[0] == ENG_LAYER_DNET);
    ASSERT(eng_model_cfg(m)->layer_kind[1] == ENG_LAYER_ATTN);
    eng_model_destroy(m);
    /* Sections interleave t, h, w: [1, 1, 1, 0] (sum 3) gives the 4 pairs sectors 0, 1, 2, 0:
     * t, h, w, t; Qwen3.5's own [11, 11, 10, 0] covers its 32 pairs. */
    static const int32_t ok[][4] = {{1, 1, 1, 0}, {11, 11, 10, 0}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        base_spec(&s, "qwen35");
        set_arr(&s, "qwen35.rope.dimension_sections", ENG_GGUF_I32, 4, ok[i]);
        if (ok[i][0] == 11) {   /* Qwen3.5's own: 64 RoPE dims of 256-dim heads */
            set_u(&s, "qwen35.attention.key_length", ENG_GGUF_U32, 256);
            set_u(&s, "qwen35.attention.value_length", ENG_GGUF_U32, 256);
            set_u(&s, "qwen35.rope.dimension_count", ENG_GGUF_U32, 64);
            find_t(&s, "blk.1.attn_q.weight")->dims[1] = 2 * NH * 256;
            find_t(&s, "blk.1.attn_k.weight")->dims[1] = NKV * 256;
            find_t(&s, "blk.1.attn_v.weight")->dims[1] = NKV * 256;
            find_t(&s, "blk.1.attn_output.weight")->dims[0] = NH * 256;
            find_t(&s, "blk.1.attn_q_norm.weight")->dims[0] = 256;
            find_t(&s, "blk.1.attn_k_norm.weight")->dims[0] = 256;
        }
        rc = load_spec(&s, &m);
        if (rc != LANES_OK) fprintf(stderr, "sections %zu: %s", i, logbuf);
        ASSERT_EQ(rc, LANES_OK);
        eng_model_destroy(m);
    }
}

/* Layer l's tensor role of m's file. */
static const void *layer_tensor(const eng_model_t *m, int l, const char *role) {
    char name[64];
    snprintf(name, sizeof name, "blk.%d.%s", l, role);
    return file_tensor(m, name)->data;
}

/* gemma4: the per-layer shapes, the window and pattern, shared KV by llama.cpp's rule, the
 * per-layer embeddings, V as K where attn_v is absent, and the softcap; then the variants llama.cpp
 * takes too: K and V stored on shared layers (shape-checked, unused), no output scales, no
 * per-layer embeddings, an untied output, scalar widths and KV heads, a scalar bool pattern,
 * 16-bit integer arrays, the softcap's default and 0, rope.dimension_count_swa's default. */
static void test_gemma4_good(void) {
    spec_t s;
    eng_model_t *m;
    base_spec(&s, "gemma4");
    int rc = load_spec(&s, &m);
    if (rc != LANES_OK) fprintf(stderr, "gemma4: %s", logbuf);
    ASSERT_EQ(rc, LANES_OK);
    const eng_model_cfg_t *c = eng_model_cfg(m);
    const eng_weights_t *w = eng_model_weights(m);
    ASSERT_STR_EQ(c->arch.name, "gemma4");
    ASSERT(c->arch.norm == ENG_NORM_RMS && c->arch.rope == ENG_ROPE_NEOX);
    ASSERT(c->arch.ffn == ENG_FFN_GEGLU && c->arch.qk_norm && c->arch.post_norms);
    ASSERT(c->arch.v_norm && !c->arch.attn_gate && !c->arch.pos_embd);
    ASSERT(c->n_layers == G4_NL && c->n_heads == NH && c->n_kv_heads == 2);
    ASSERT(c->hidden_dim == 2 * H && c->head_dim == G4_HD && c->head_dim_swa == G4_SWA);
    ASSERT(c->rope_dim == G4_HD && c->rope_dim_swa == G4_SWA);
    ASSERT(c->rope_base == 1e6f && c->rope_base_swa == 1e4f);
    ASSERT(c->rope_scale == 1.0f && c->rope_scale_swa == 1.0f);
    ASSERT(c->window == 4 && c->ple_dim == G4_PLE && c->attn_scale == 1.0f);
    ASSERT(c->final_softcap == 30.0f && c->emb_scale == sqrtf(32.0f) && c->shared_cls);
    static const int reuse[G4_NL] = {0, 0, 2, 2};
    for (int l = 0; l < G4_NL; l++) {
        const eng_layer_t *ly = &w->layers[l];
        int hd = l % 2 ? G4_HD : G4_SWA;
        ASSERT_EQ(c->layer_swa[l], l % 2 == 0);
        ASSERT_EQ(c->layer_kv_heads[l], g4_kv[l]);
        ASSERT_EQ(c->layer_hidden[l], g4_ff[l]);
        ASSERT_EQ(c->layer_kv_reuse[l], reuse[l]);
        ASSERT(ly->wq.rows == NH * hd && ly->wq.cols == D && ly->wo.cols == NH * hd);
        ASSERT(ly->q_norm == layer_tensor(m, l, "attn_q_norm.weight"));
        ASSERT(ly->w_up.rows == g4_ff[l] && ly->w_down.cols == g4_ff[l]);
        ASSERT(ly->post_attn_norm && ly->post_ffn_norm && ly->ffn_norm);
        ASSERT(ly->out_scale == layer_tensor(m, l, "layer_output_scale.weight"));
        ASSERT(ly->ple_gate.data == layer_tensor(m, l, "inp_gate.weight"));
        ASSERT(ly->ple_gate.rows == G4_PLE && ly->ple_gate.cols == D);
        ASSERT(ly->ple_proj.data == layer_tensor(m, l, "proj.weight"));
        ASSERT(ly->ple_proj.rows == D && ly->ple_proj.cols == G4_PLE);
        ASSERT(ly->ple_post_norm == layer_tensor(m, l, "post_norm.weight"));
        if (l >= 2) {   /* shared: neither K nor V of its own */
            ASSERT(!ly->wk.data && !ly->wv.data && !ly->k_norm);
            continue;
        }
        ASSERT(ly->wk.data == layer_tensor(m, l, "attn_k.weight"));
        ASSERT(ly->wk.rows == g4_kv[l] * hd && ly->k_norm);
        if (l == 0) ASSERT(ly->wv.data == layer_tensor(m, 0, "attn_v.weight"));
        else ASSERT(memcmp(&ly->wv, &ly->wk, sizeof ly->wv) == 0);   /* no attn_v: V = K */
    }
    ASSERT(w->rope_freqs == file_tensor(m, "rope_freqs.weight")->data);
    ASSERT(w->ple_tok_emb.data == file_tensor(m, "per_layer_token_embd.weight")->data);
    ASSERT(w->ple_tok_emb.rows == VOCAB && w->ple_tok_emb.cols == G4_NL * G4_PLE);
    ASSERT(w->ple_model_proj.rows == G4_NL * G4_PLE && w->ple_model_proj.cols == D);
    ASSERT(w->ple_proj_norm == file_tensor(m, "per_layer_proj_norm.weight")->data);
    eng_model_destroy(m);

    base_spec(&s, "gemma4");
    add_t(&s, "blk.2.attn_k.weight", D, 2 * G4_SWA);
    add_t(&s, "blk.3.attn_v.weight", D, G4_HD);
    add_t(&s, "blk.3.attn_k_norm.weight", G4_HD, 0);
    for (int l = 0; l < G4_NL; l++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%d.layer_output_scale.weight", l);
        del_t(&s, n);
    }
    add_t(&s, "output.weight", D, VOCAB);
    ASSERT_EQ(load_spec(&s, &m), LANES_OK);
    w = eng_model_weights(m);
    ASSERT(!w->layers[2].wk.data && !w->layers[3].wv.data && !w->layers[3].k_norm);
    ASSERT(!w->layers[0].out_scale && !eng_model_cfg(m)->shared_cls);
    ASSERT(w->cls.data == file_tensor(m, "output.weight")->data);
    eng_model_destroy(m);

    /* no per-layer embeddings; one width, one KV head count, every layer global, no sharing */
    base_spec(&s, "gemma4");
    set_u(&s, "gemma4.embedding_length_per_layer_input", ENG_GGUF_U32, 0);
    static const char *ple[] = {"per_layer_token_embd.weight", "per_layer_model_proj.weight",
                                "per_layer_proj_norm.weight"};
    for (int i = 0; i < 3; i++) del_t(&s, ple[i]);
    for (int l = 0; l < G4_NL; l++) {
        static const char *roles[] = {"inp_gate.weight", "proj.weight", "post_norm.weight"};
        for (int i = 0; i < 3; i++) {
            char n[64];
            snprintf(n, sizeof n, "blk.%d.%s", l, roles[i]);
            del_t(&s, n);
        }
    }
    set_u(&s, "gemma4.feed_forward_length", ENG_GGUF_U32, 2 * H);
    set_u(&s, "gemma4.attention.head_count_kv", ENG_GGUF_U16, 1);
    set_u(&s, "gemma4.attention.sliding_window_pattern", ENG_GGUF_BOOL, 0);
    set_u(&s, "gemma4.attention.shared_kv_layers", ENG_GGUF_U32, 0);
    del_kv(&s, "gemma4.final_logit_softcapping");
    for (int i = 0; i < s.nt; i++) {
        ten_t *t = &s.t[i];
        int layer = t->name[0] == 'b' ? t->name[4] - '0' : -1;
        if (strstr(t->name, "ffn_up") || strstr(t->name, "ffn_gate")) t->dims[1] = 2 * H;
        if (strstr(t->name, "ffn_down")) t->dims[0] = 2 * H;
        if (layer % 2 == 0 && (strstr(t->name, "attn_q.") || strstr(t->name, "attn_output")))
            t->dims[strstr(t->name, "attn_q.") ? 1 : 0] = NH * G4_HD;
        if (layer % 2 == 0 && strstr(t->name, "attn_q_norm")) t->dims[0] = G4_HD;
    }
    for (int l = 0; l < G4_NL; l++) {
        char n[64];
        snprintf(n, sizeof n, "blk.%d.attn_k.weight", l);
        if (l == 0) find_t(&s, n)->dims[1] = G4_HD;
        else if (l >= 2) add_t(&s, n, D, G4_HD);
        snprintf(n, sizeof n, "blk.%d.attn_k_norm.weight", l);
        if (l == 0) find_t(&s, n)->dims[0] = G4_HD;
        else if (l >= 2) add_t(&s, n, G4_HD, 0);
    }
    del_t(&s, "blk.0.attn_v.weight");
    rc = load_spec(&s, &m);
    if (rc != LANES_OK) fprintf(stderr, "gemma4 variant: %s", logbuf);
    ASSERT_EQ(rc, LANES_OK);
    c = eng_model_cfg(m);
    w = eng_model_weights(m);
    ASSERT(c->ple_dim == 0 && c->hidden_dim == 2 * H && c->n_kv_heads == 1);
    ASSERT(c->final_softcap == 30.0f && !w->ple_tok_emb.data && !w->layers[1].ple_gate.data);
    for (int l = 0; l < G4_NL; l++) {
        ASSERT(c->layer_swa[l] == 0 && c->layer_kv_reuse[l] == 0);
        ASSERT(c->layer_hidden[l] == 0 && c->layer_kv_heads[l] == 0);
        ASSERT(w->layers[l].wk.data && memcmp(&w->layers[l].wv, &w->layers[l].wk,
                                              sizeof w->layers[l].wk) == 0);
    }
    eng_model_destroy(m);

    /* a U16 array of KV heads, an all-sliding bool, no global layer so no rope_freqs, softcap 0,
     * RoPE dims on sliding layers by default the global count */
    base_spec(&s, "gemma4");
    set_arr(&s, "gemma4.attention.head_count_kv", ENG_GGUF_U16, G4_NL,
            (const uint16_t[]){2, 1, 2, 1});
    set_u(&s, "gemma4.attention.sliding_window_pattern", ENG_GGUF_BOOL, 1);
    set_u(&s, "gemma4.attention.shared_kv_layers", ENG_GGUF_U32, 0);
    set_u(&s, "gemma4.attention.key_length", ENG_GGUF_U32, G4_SWA);
    set_u(&s, "gemma4.attention.value_length", ENG_GGUF_U32, G4_SWA);
    set_u(&s, "gemma4.rope.dimension_count", ENG_GGUF_U32, G4_SWA);
    del_kv(&s, "gemma4.rope.dimension_count_swa");
    set_f(&s, "gemma4.final_logit_softcapping", ENG_GGUF_F64, 0);
    del_t(&s, "rope_freqs.weight");
    for (int i = 0; i < s.nt; i++) {
        ten_t *t = &s.t[i];
        if ((strstr(t->name, "blk.1.") || strstr(t->name, "blk.3.")) && strstr(t->name, "attn_"))
            for (int d = 0; d < 2; d++)
                if (t->dims[d] == NH * G4_HD || t->dims[d] == G4_HD) t->dims[d] /= 2;
    }
    add_t(&s, "blk.2.attn_k.weight", D, 2 * G4_SWA);
    add_t(&s, "blk.2.attn_k_norm.weight", G4_SWA, 0);
    add_t(&s, "blk.3.attn_k.weight", D, G4_SWA);
    add_t(&s, "blk.3.attn_k_norm.weight", G4_SWA, 0);
    rc = load_spec(&s, &m);
    if (rc != LANES_OK) fprintf(stderr, "gemma4 all sliding: %s", logbuf);
    ASSERT_EQ(rc, LANES_OK);
    c = eng_model_cfg(m);
    ASSERT(c->final_softcap == 0.0f && c->rope_dim_swa == G4_SWA);
    ASSERT(eng_model_weights(m)->rope_freqs == NULL);
    for (int l = 0; l < G4_NL; l++)
        ASSERT(c->layer_swa[l] == 1 && c->layer_kv_heads[l] == g4_kv[l]);
    eng_model_destroy(m);
}

static void test_good(void) {
    static spec_t s;
    eng_model_t *m;
    const char *arches[] = {"llama", "qwen2", "qwen3", "gpt2", "gemma3"};
    for (int a = 0; a < 5; a++) {
        base_spec(&s, arches[a]);
        int rc = load_spec(&s, &m);
        if (rc != LANES_OK) fprintf(stderr, "%s: %s", arches[a], logbuf);
        ASSERT_EQ(rc, LANES_OK);
        ASSERT_EQ(test_count_lines(logbuf), 0);
        const eng_model_cfg_t *c = eng_model_cfg(m);
        const eng_weights_t *w = eng_model_weights(m);
        const eng_layer_t *l1 = &w->layers[1];
        int gpt2 = a == 3, gemma3 = a == 4, qk_norm = a == 2 || gemma3;
        ASSERT_STR_EQ(c->arch.name, arches[a]);
        ASSERT_STR_EQ(eng_model_name(m), "crafted");
        ASSERT_EQ(c->dim, D);
        ASSERT_EQ(c->hidden_dim, H);
        ASSERT_EQ(c->n_layers, NL);
        ASSERT_EQ(c->n_heads, NH);
        ASSERT_EQ(c->n_kv_heads, gpt2 ? NH : NKV);
        ASSERT_EQ(c->head_dim, HD);
        ASSERT_EQ(c->rope_dim, gpt2 ? 0 : HD);
        ASSERT_EQ(c->vocab_size, VOCAB);
        ASSERT_EQ(c->seq_len, CTX);
        ASSERT(c->norm_eps == (gpt2 ? 1e-5f : 1e-6f));
        ASSERT_EQ(c->arch.rope, a == 0 ? ENG_ROPE_PAIRS : gpt2 ? ENG_ROPE_NONE : ENG_ROPE_NEOX);
        ASSERT_EQ(c->arch.norm, gpt2 ? ENG_NORM_LAYER : ENG_NORM_RMS);
        ASSERT_EQ(c->arch.ffn, gpt2 ? ENG_FFN_GELU : gemma3 ? ENG_FFN_GEGLU : ENG_FFN_SWIGLU);
        ASSERT_EQ(c->arch.pos_embd, gpt2);
        ASSERT_EQ(c->arch.qk_norm, qk_norm);
        ASSERT_EQ(c->arch.post_norms, gemma3);
        ASSERT_EQ(c->shared_cls, !gpt2);
        ASSERT_EQ(eng_model_wtype(m), ENG_WT_F32);
        /* gemma3: the window, layer 0 sliding (0 % 2 < 1) and layer 1 global, the RoPE of each,
         * sqrtf(dim); the others have none of it. */
        ASSERT_EQ(c->window, gemma3 ? 4 : 0);
        ASSERT(c->layer_swa[0] == gemma3 && c->layer_swa[1] == 0);
        ASSERT(c->rope_base_swa == (gemma3 ? 1e4f : 0) && c->rope_scale == (gemma3 ? 0.25f : 0));
        ASSERT(c->rope_scale_swa == (gemma3 ? 1 : 0));
        ASSERT(c->emb_scale == (gemma3 ? sqrtf(32.0f) : 0));
        ASSERT((l1->post_attn_norm != NULL) == gemma3 && (l1->post_ffn_norm != NULL) == gemma3);
        if (gemma3) {
            ASSERT(l1->post_attn_norm == file_tensor(m, "blk.1.post_attention_norm.weight")->data);
            ASSERT(l1->post_ffn_norm == file_tensor(m, "blk.1.post_ffw_norm.weight")->data);
        }
        expect_in_file(m, &w->tok_emb, "token_embd.weight");
        expect_in_file(m, &w->cls, gpt2 ? "output.weight" : "token_embd.weight");
        ASSERT(w->out_norm == file_tensor(m, "output_norm.weight")->data);
        expect_in_file(m, &l1->wo, "blk.1.attn_output.weight");
        expect_in_file(m, &l1->w_up, "blk.1.ffn_up.weight");
        expect_in_file(m, &l1->w_down, "blk.1.ffn_down.weight");
        ASSERT(l1->ffn_norm == file_tensor(m, "blk.1.ffn_norm.weight")->data);
        ASSERT((l1->bq != NULL) == (a == 1 || gpt2));
        ASSERT((l1->q_norm != NULL) == qk_norm && (l1->k_norm != NULL) == qk_norm);
        ASSERT((l1->bo != NULL) == gpt2 && (l1->b_up != NULL) == gpt2);
        ASSERT((l1->b_down != NULL) == gpt2 && (l1->attn_norm_b != NULL) == gpt2);
        ASSERT((w->pos_emb.data != NULL) == gpt2 && (w->out_norm_b != NULL) == gpt2);
        ASSERT(w->rope_freqs == NULL);
        if (gpt2) {   /* the fused QKV: row views of one tensor, q then k then v */
            const eng_gguf_tensor_t *qkv = file_tensor(m, "blk.1.attn_qkv.weight");
            const float *b = file_tensor(m, "blk.1.attn_qkv.bias")->data;
            const float *p = qkv->data;
            ASSERT(l1->wq.data == p && l1->wk.data == p + D * D && l1->wv.data == p + 2 * D * D);
            ASSERT(l1->wq.rows == D && l1->wk.rows == D && l1->wv.rows == D && l1->wv.cols == D);
            ASSERT(l1->bq == b && l1->bk == b + D && l1->bv == b + 2 * D);
            ASSERT(l1->w_gate.data == NULL);
            expect_in_file(m, &w->pos_emb, "position_embd.weight");
        } else {
            expect_in_file(m, &l1->wq, "blk.1.attn_q.weight");
            expect_in_file(m, &l1->wk, "blk.1.attn_k.weight");
            expect_in_file(m, &l1->wv, "blk.1.attn_v.weight");
            expect_in_file(m, &l1->w_gate, "blk.1.ffn_gate.weight");
        }
        uint64_t bytes = 0;
        for (int i = 0; i < s.nt; i++) bytes += tensor_bytes(&s.t[i]);
        ASSERT_EQ(eng_model_weight_bytes(m), bytes);
        eng_model_destroy(m);
    }

    /* gemma3's layer pattern as one bool per layer (as Gemma 4 writes it) or one integer per
     * layer; absent, llama.cpp's period 6 (both layers slide); the local base read; scaling of
     * type "none", or a factor 0, or the older rope.scale_linear key; a softcap of 0 is none. */
    static const struct { uint32_t elem; uint64_t n; unsigned char bytes[8]; int swa0, swa1; }
        patterns[] = {
            {ENG_GGUF_BOOL, 2, {0, 1}, 0, 1},
            {ENG_GGUF_I32, 2, {1, 0, 0, 0, 0, 0, 0, 0}, 1, 0},
            {ENG_GGUF_U16, 2, {0, 1, 2, 0}, 1, 1},
            {ENG_GGUF_U32, 0, {0}, 1, 1},   /* the key absent */
        };
    for (size_t i = 0; i < sizeof patterns / sizeof *patterns; i++) {
        base_spec(&s, "gemma3");
        const char *key = "gemma3.attention.sliding_window_pattern";
        if (patterns[i].n)
            set_arr(&s, key, patterns[i].elem, patterns[i].n, patterns[i].bytes);
        else
            del_kv(&s, key);
        ASSERT_EQ(load_spec(&s, &m), LANES_OK);
        ASSERT_EQ(eng_model_cfg(m)->layer_swa[0], patterns[i].swa0);
        ASSERT_EQ(eng_model_cfg(m)->layer_swa[1], patterns[i].swa1);
        eng_model_destroy(m);
    }
    static const struct { const char *type, *key; double factor; float scale; } scalings[] = {
        {"none", "rope.scaling.factor", 8, 1.0f},
        {"linear", "rope.scaling.factor", 0, 1.0f},
        {NULL, "rope.scale_linear", 2, 0.5f},
    };
    for (size_t i = 0; i < sizeof scalings / sizeof *scalings; i++) {
        base_spec(&s, "gemma3");
        del_kv(&s, "gemma3.rope.scaling.factor");
        if (scalings[i].type) set_s(&s, "gemma3.rope.scaling.type", scalings[i].type);
        else del_kv(&s, "gemma3.rope.scaling.type");
        set_f(&s, akey(&s, scalings[i].key), ENG_GGUF_F32, scalings[i].factor);
        set_f(&s, "gemma3.rope.freq_base_swa", ENG_GGUF_F64, 2e4);
        set_f(&s, "gemma3.final_logit_softcapping", ENG_GGUF_F32, 0);
        ASSERT_EQ(load_spec(&s, &m), LANES_OK);
        ASSERT(eng_model_cfg(m)->rope_scale == scalings[i].scale);
        ASSERT(eng_model_cfg(m)->rope_base_swa == 2e4f);
        eng_model_destroy(m);
    }
    base_spec(&s, "gemma3");
    del_kv(&s, "gemma3.rope.freq_base_swa");
    ASSERT_EQ(load_spec(&s, &m), LANES_OK);
    ASSERT(eng_model_cfg(m)->rope_base_swa == 1e4f);
    eng_model_destroy(m);
    test_qwen35_good();
    test_gemma4_good();
    /* gemma3 with a final softcap (llama.cpp applies it when the key is there) */
    base_spec(&s, "gemma3");
    set_f(&s, "gemma3.final_logit_softcapping", ENG_GGUF_F32, 30);
    ASSERT_EQ(load_spec(&s, &m), LANES_OK);
    ASSERT(eng_model_cfg(m)->final_softcap == 30.0f);
    eng_model_destroy(m);

    /* qwen3's heads need not split dim: 4 x 16 = 64 query rows for dim 32. An untied output,
     * 16-bit vectors (converted to fp32), BF16 matrices, and the name from the file when
     * general.name is absent. */
    base_spec(&s, "qwen3");
    set_u(&s, akey(&s, "attention.key_length"), ENG_GGUF_U16, 16);
    set_u(&s, akey(&s, "attention.value_length"), ENG_GGUF_I64, 16);
    set_u(&s, akey(&s, "rope.dimension_count"), ENG_GGUF_U8, 8);
    set_f(&s, akey(&s, "rope.freq_base"), ENG_GGUF_F64, 1e6);
    for (int i = 0; i < s.nt; i++) {
        ten_t *t = &s.t[i];
        if (strstr(t->name, "attn_q.") || strstr(t->name, "attn_k.") || strstr(t->name, "attn_v."))
            t->dims[1] = t->dims[1] * 2;
        if (strstr(t->name, "attn_output")) t->dims[0] *= 2;
        if (strstr(t->name, "_q_norm") || strstr(t->name, "_k_norm")) t->dims[0] = 16;
        if (t->n_dims == 2) t->type = ENG_GGML_BF16;
    }
    add_t(&s, "output.weight", D, VOCAB)->type = ENG_GGML_F16;
    find_t(&s, "blk.0.attn_norm.weight")->type = ENG_GGML_F16;
    find_t(&s, "blk.0.attn_norm.weight")->val = 2;
    find_t(&s, "blk.1.attn_k_norm.weight")->type = ENG_GGML_BF16;
    find_t(&s, "blk.1.attn_k_norm.weight")->val = 2;
    del_kv(&s, "general.name");
    ASSERT_EQ(load_spec(&s, &m), LANES_OK);
    const eng_model_cfg_t *c = eng_model_cfg(m);
    const eng_weights_t *w = eng_model_weights(m);
    ASSERT_EQ(c->head_dim, 16);
    ASSERT_EQ(c->rope_dim, 8);
    ASSERT(c->rope_base == 1e6f);
    ASSERT_EQ(w->layers[0].wq.rows, 64);
    ASSERT_EQ(w->layers[0].wo.cols, 64);
    ASSERT_EQ(c->shared_cls, 0);
    expect_in_file(m, &w->cls, "output.weight");
    ASSERT_EQ(eng_model_wtype(m), ENG_WT_BF16);   /* most matrix bytes; output is F16 */
    const char *base = strrchr(path, '/') + 1;
    ASSERT_STR_EQ(eng_model_name(m), base);
    for (int i = 0; i < D; i++) ASSERT(w->layers[0].attn_norm[i] == 2.0f);
    for (int i = 0; i < 16; i++) ASSERT(w->layers[1].k_norm[i] == 2.0f);
    ASSERT(w->layers[1].attn_norm == file_tensor(m, "blk.1.attn_norm.weight")->data);
    eng_model_destroy(m);

    /* Llama 3.1 scaling: rope_freqs.weight, one divisor per rotated pair. */
    base_spec(&s, "llama");
    add_t(&s, "rope_freqs.weight", HD / 2, 0)->val = 4;
    set_u(&s, akey(&s, "vocab_size"), ENG_GGUF_I32, VOCAB);
    set_s(&s, akey(&s, "rope.scaling.type"), "none");
    ASSERT_EQ(load_spec(&s, &m), LANES_OK);
    w = eng_model_weights(m);
    ASSERT(w->rope_freqs == file_tensor(m, "rope_freqs.weight")->data && w->rope_freqs[3] == 4);
    eng_model_destroy(m);

    /* Block-quantized matrices, each tensor its own type (Q4_K_M files mix types, some keep an
     * F16 tensor): in place, and the type of most bytes names the model. */
    base_spec(&s, "llama");
    for (int i = 0; i < s.nt; i++)
        if (s.t[i].n_dims == 2) s.t[i].type = ENG_GGML_Q8_0;
    find_t(&s, "token_embd.weight")->type = ENG_GGML_Q4_0;
    find_t(&s, "blk.0.attn_v.weight")->type = ENG_GGML_Q4_0;
    find_t(&s, "blk.1.ffn_down.weight")->type = ENG_GGML_F16;
    ASSERT_EQ(load_spec(&s, &m), LANES_OK);
    ASSERT_EQ(test_count_lines(logbuf), 0);
    w = eng_model_weights(m);
    ASSERT_EQ(eng_model_wtype(m), ENG_WT_Q8_0);
    ASSERT_STR_EQ(eng_wtype_name(eng_model_wtype(m)), "Q8_0");
    expect_in_file(m, &w->tok_emb, "token_embd.weight");
    expect_in_file(m, &w->cls, "token_embd.weight");
    expect_in_file(m, &w->layers[0].wq, "blk.0.attn_q.weight");
    expect_in_file(m, &w->layers[0].wv, "blk.0.attn_v.weight");
    expect_in_file(m, &w->layers[1].w_down, "blk.1.ffn_down.weight");
    ASSERT_EQ(w->layers[0].wv.type, ENG_WT_Q4_0);
    ASSERT_EQ(w->layers[1].w_down.type, ENG_WT_F16);
    uint64_t bytes = 0;
    for (int i = 0; i < s.nt; i++) bytes += tensor_bytes(&s.t[i]);
    ASSERT_EQ(eng_model_weight_bytes(m), bytes);
    eng_model_destroy(m);

    /* gpt2's fused QKV in Q8_0: its row views start at whole rows of 34-byte blocks. */
    base_spec(&s, "gpt2");
    for (int i = 0; i < s.nt; i++)
        if (s.t[i].n_dims == 2) s.t[i].type = ENG_GGML_Q8_0;
    ASSERT_EQ(load_spec(&s, &m), LANES_OK);
    const eng_layer_t *l1 = &eng_model_weights(m)->layers[1];
    const char *qkv = file_tensor(m, "blk.1.attn_qkv.weight")->data;
    size_t row = D / 32 * 34;
    ASSERT(l1->wq.data == qkv && l1->wk.data == qkv + D * row && l1->wv.data == qkv + 2 * D * row);
    ASSERT(l1->wq.type == ENG_WT_Q8_0 && l1->wv.type == ENG_WT_Q8_0 && l1->wv.rows == D);
    eng_model_destroy(m);
}

static void test_bad(void) {
    static spec_t s;
#define CASE(arch, change, want)                                                                  \
    do {                                                                                          \
        base_spec(&s, arch);                                                                      \
        change;                                                                                   \
        expect_bad(&s, want, #change);                                                            \
    } while (0)
    /* keys */
    CASE("llama", del_kv(&s, "general.architecture"),
         "required key missing (key general.architecture)");
    CASE("llama", set_u(&s, "general.architecture", ENG_GGUF_U32, 1),
         "expected a string (key general.architecture)");
    CASE("llama", set_s(&s, "general.architecture", "mamba"),
         "architecture \"mamba\" not supported");
    CASE("llama", set_s(&s, "general.architecture", "bad\narch"), "architecture \"bad?arch\"");
    CASE("llama", set_u(&s, "general.name", ENG_GGUF_U32, 1),
         "expected a string (key general.name)");
    CASE("llama", del_kv(&s, "llama.block_count"), "required key missing (key llama.block_count)");
    CASE("qwen2", del_kv(&s, "qwen2.context_length"),
         "required key missing (key qwen2.context_length)");
    CASE("gpt2", del_kv(&s, "gpt2.attention.layer_norm_epsilon"),
         "missing (key gpt2.attention.layer_norm_epsilon)");
    CASE("llama", del_kv(&s, "llama.attention.layer_norm_rms_epsilon"),
         "missing (key llama.attention.layer_norm_rms_epsilon)");
    CASE("llama", set_s(&s, "llama.embedding_length", "32"),
         "expected an integer (key llama.embedding_length)");
    CASE("llama", set_f(&s, "llama.block_count", ENG_GGUF_F32, 2),
         "expected an integer (key llama.block_count)");
    CASE("llama", set_u(&s, "llama.block_count", ENG_GGUF_BOOL, 1),
         "expected an integer (key llama.block_count)");
    CASE("llama", set_u(&s, "llama.rope.freq_base", ENG_GGUF_U32, 10000),
         "expected a float (key llama.rope.freq_base)");
    CASE("llama", set_u(&s, "tokenizer.ggml.tokens", ENG_GGUF_U32, 16),
         "expected an array of strings (key tokenizer.ggml.tokens)");
    /* values */
    CASE("llama", set_u(&s, "llama.block_count", ENG_GGUF_U64, 1ull << 40),
         "value 1099511627776 out of range 1..1024 (key llama.block_count)");
    CASE("llama", set_u(&s, "llama.block_count", ENG_GGUF_U32, 0),
         "value 0 out of range 1..1024 (key llama.block_count)");
    CASE("llama", set_u(&s, "llama.embedding_length", ENG_GGUF_I32, (uint64_t)-5),
         "value -5 out of range 1..65536 (key llama.embedding_length)");
    CASE("llama", set_u(&s, "llama.context_length", ENG_GGUF_U32, 0x80000000u),
         "value 2147483648 out of range 1..1048576 (key llama.context_length)");
    CASE("llama", set_u(&s, "llama.feed_forward_length", ENG_GGUF_I64, (uint64_t)INT64_MIN),
         "value -9223372036854775808 out of range 1..65536 (key llama.feed_forward_length)");
    CASE("llama", set_u(&s, "llama.attention.head_count", ENG_GGUF_U32, 0),
         "value 0 out of range 1..65536 (key llama.attention.head_count)");
    CASE("llama", set_u(&s, "llama.attention.head_count_kv", ENG_GGUF_U32, 8),
         "value 8 out of range 1..4 (key llama.attention.head_count_kv)");
    CASE("llama", set_f(&s, "llama.rope.freq_base", ENG_GGUF_F64, 1e300),
         "value 1e+300 out of range|(key llama.rope.freq_base)");
    CASE("llama", set_f(&s, "llama.rope.freq_base", ENG_GGUF_F32, -1),
         "value -1 out of range|(key llama.rope.freq_base)");
    CASE("llama", set_f(&s, "llama.attention.layer_norm_rms_epsilon", ENG_GGUF_F32, NAN),
         "value nan out of range|(key llama.attention.layer_norm_rms_epsilon)");
    CASE("llama", set_f(&s, "llama.attention.layer_norm_rms_epsilon", ENG_GGUF_F64, INFINITY),
         "value inf out of range|(key llama.attention.layer_norm_rms_epsilon)");
    CASE("llama", set_u(&s, "llama.rope.dimension_count", ENG_GGUF_U32, 7),
         "odd (RoPE rotates pairs) (key llama.rope.dimension_count)");
    CASE("llama", set_u(&s, "llama.rope.dimension_count", ENG_GGUF_U32, 16),
         "value 16 out of range 2..8 (key llama.rope.dimension_count)");
    CASE("llama", set_u(&s, "llama.attention.head_count", ENG_GGUF_U32, 6),
         "embedding_length 32 is not a multiple of head_count 6, and no "
         "llama.attention.key_length");
    CASE("llama", set_u(&s, "llama.attention.head_count_kv", ENG_GGUF_U32, 3),
         "head_count 4 is not a multiple of head_count_kv 3 (key llama.attention.head_count_kv)");
    CASE("qwen3",
         (set_u(&s, "qwen3.attention.key_length", ENG_GGUF_U32, 8),
          set_u(&s, "qwen3.attention.value_length", ENG_GGUF_U32, 16)),
         "key_length 8 != value_length 16: not supported (key qwen3.attention.value_length)");
    CASE("qwen3", set_u(&s, "qwen3.attention.value_length", ENG_GGUF_U32, 4),
         "key_length 8 != value_length 4");
    CASE("qwen3",
         (set_u(&s, "qwen3.attention.key_length", ENG_GGUF_U32, 1 << 15),
          set_u(&s, "qwen3.attention.value_length", ENG_GGUF_U32, 1 << 15)),
         "head_count 4 x key_length 32768 too large");
    CASE("llama", set_u(&s, "llama.vocab_size", ENG_GGUF_U32, 17),
         "vocab_size 17, but token_embd.weight has 16 rows (key llama.vocab_size)");
    CASE("llama", set_u(&s, "tokenizer.ggml.tokens", ENG_GGUF_ARRAY, 15),
         "15 tokens, but token_embd.weight has 16 rows (key tokenizer.ggml.tokens)");
    CASE("llama", set_s(&s, "llama.rope.scaling.type", "yarn"),
         "rope scaling type \"yarn\" not supported (key llama.rope.scaling.type)");
    CASE("qwen2", set_f(&s, "qwen2.rope.scaling.factor", ENG_GGUF_F32, 8),
         "rope scaling factor 8 not supported (key qwen2.rope.scaling.factor)");
    CASE("llama", set_f(&s, "llama.rope.scale_linear", ENG_GGUF_F32, 2),
         "rope scaling factor 2 not supported (key llama.rope.scale_linear)");
    /* gemma3 */
    CASE("gemma3", set_u(&s, "gemma3.attention.sliding_window_pattern", ENG_GGUF_U32, 0),
         "value 0 out of range 1..1024 (key gemma3.attention.sliding_window_pattern)");
    CASE("gemma3", set_u(&s, "gemma3.attention.sliding_window", ENG_GGUF_U32, 0),
         "value 0 out of range 1..1048576 (key gemma3.attention.sliding_window)");
    CASE("gemma3", del_kv(&s, "gemma3.attention.sliding_window"),
         "required key missing (key gemma3.attention.sliding_window)");
    CASE("gemma3", set_f(&s, "gemma3.attention.sliding_window_pattern", ENG_GGUF_F32, 6),
         "value type 6, expected an integer (key gemma3.attention.sliding_window_pattern)");
    CASE("gemma3",
         set_arr(&s, "gemma3.attention.sliding_window_pattern", ENG_GGUF_BOOL, 3,
                 (const unsigned char[]){1, 0, 1}),
         "3 values, expected one per layer (block_count 2) (key "
         "gemma3.attention.sliding_window_pattern)");
    CASE("gemma3",
         set_arr(&s, "gemma3.attention.sliding_window_pattern", ENG_GGUF_F32, 2,
                 (const float[]){1, 0}),
         "an array of value type 6, expected one bool or integer per layer (key "
         "gemma3.attention.sliding_window_pattern)");
    CASE("gemma3", set_u(&s, "gemma3.rope.freq_base_swa", ENG_GGUF_U32, 10000),
         "expected a float (key gemma3.rope.freq_base_swa)");
    CASE("gemma3", set_s(&s, "gemma3.rope.scaling.type", "yarn"),
         "rope scaling type \"yarn\" not supported (key gemma3.rope.scaling.type)");
    CASE("gemma3", set_f(&s, "gemma3.rope.scaling.factor", ENG_GGUF_F32, -4),
         "value -4 out of range 0..1e+06 (key gemma3.rope.scaling.factor)");
    CASE("gemma3", set_f(&s, "gemma3.final_logit_softcapping", ENG_GGUF_F32, -30),
         "value -30 out of range 0..1e+09 (key gemma3.final_logit_softcapping)");
    CASE("gemma3",
         (set_u(&s, "gemma3.block_count", ENG_GGUF_U32, 62),
          set_u(&s, "gemma3.attention.key_length", ENG_GGUF_U32, 16),
          set_u(&s, "gemma3.attention.value_length", ENG_GGUF_U32, 16)),
         "62 layers (Gemma 3 27B) scale queries by 1/sqrt(embedding_length / head_count = 8), "
         "not 1/sqrt(key_length 16): not supported yet (key gemma3.block_count)");
    CASE("gemma3", del_t(&s, "blk.1.post_ffw_norm.weight"),
         "missing (tensor blk.1.post_ffw_norm.weight)");
    CASE("gemma3", del_t(&s, "blk.0.post_attention_norm.weight"),
         "missing (tensor blk.0.post_attention_norm.weight)");
    CASE("gemma3", del_t(&s, "blk.0.attn_k_norm.weight"),
         "missing (tensor blk.0.attn_k_norm.weight)");
    CASE("gemma3", find_t(&s, "blk.1.post_ffw_norm.weight")->dims[0] = 16,
         "shape [16], expected [32] (tensor blk.1.post_ffw_norm.weight)");
    CASE("gemma3", add_t(&s, "rope_freqs.weight", HD / 2, 0),
         "not part of the gemma3 architecture (tensor rope_freqs.weight)");
    /* gemma4 */
#define G4(k) "gemma4." k
    CASE("gemma4", del_kv(&s, G4("attention.sliding_window_pattern")),
         "required key missing (key gemma4.attention.sliding_window_pattern)");
    CASE("gemma4", set_u(&s, G4("attention.sliding_window_pattern"), ENG_GGUF_U32, 2),
         "value type 4, expected one bool per layer or one for all (key "
         "gemma4.attention.sliding_window_pattern)");
    CASE("gemma4",
         set_arr(&s, G4("attention.sliding_window_pattern"), ENG_GGUF_BOOL, 3,
                 (const uint8_t[]){1, 0, 1}),
         "3 values, expected one per layer (block_count 4) (key "
         "gemma4.attention.sliding_window_pattern)");
    CASE("gemma4", del_kv(&s, G4("attention.sliding_window")),
         "required key missing (key gemma4.attention.sliding_window)");
    CASE("gemma4", del_kv(&s, G4("attention.layer_norm_rms_epsilon")),
         "required key missing (key gemma4.attention.layer_norm_rms_epsilon)");
    CASE("gemma4", del_kv(&s, G4("embedding_length_per_layer_input")),
         "required key missing (key gemma4.embedding_length_per_layer_input)");
    CASE("gemma4", del_kv(&s, G4("attention.key_length_swa")),
         "required key missing (key gemma4.attention.key_length_swa)");
    CASE("gemma4", del_kv(&s, G4("attention.value_length_swa")),
         "required key missing (key gemma4.attention.value_length_swa)");
    CASE("gemma4", set_u(&s, G4("attention.value_length_swa"), ENG_GGUF_U32, 16),
         "key_length_swa 8 != value_length_swa 16 (Gemma 4 requires them equal) (key "
         "gemma4.attention.value_length_swa)");
    CASE("gemma4", set_u(&s, G4("attention.value_length"), ENG_GGUF_U32, 8),
         "key_length 16 != value_length 8: not supported (key gemma4.attention.value_length)");
    CASE("gemma4", set_f(&s, G4("final_logit_softcapping"), ENG_GGUF_F32, 1e-5),
         "attention scale not finite, or a final softcap outside 1e-3..1e6");
    CASE("gemma4", set_f(&s, G4("final_logit_softcapping"), ENG_GGUF_F32, 2e6),
         "attention scale not finite, or a final softcap outside 1e-3..1e6");
    CASE("gemma4",
         set_arr(&s, G4("attention.head_count_kv"), ENG_GGUF_I32, 3, (const int32_t[]){2, 1, 2}),
         "3 values, expected one per layer (block_count 4) (key gemma4.attention.head_count_kv)");
    CASE("gemma4",
         set_arr(&s, G4("attention.head_count_kv"), ENG_GGUF_I32, 4,
                 (const int32_t[]){2, 3, 2, 3}),
         "head_count 4 is not a multiple of layer 1's head_count_kv 3 (key "
         "gemma4.attention.head_count_kv)");
    CASE("gemma4",
         set_arr(&s, G4("attention.head_count_kv"), ENG_GGUF_I32, 4,
                 (const int32_t[]){2, 0, 2, 1}),
         "layer 1's value 0 out of range 1..4 (key gemma4.attention.head_count_kv)");
    CASE("gemma4",
         set_arr(&s, G4("attention.head_count_kv"), ENG_GGUF_I32, 4,
                 (const int32_t[]){2, 1, 2, -1}),
         "layer 3's value -1 out of range 1..4 (key gemma4.attention.head_count_kv)");
    CASE("gemma4",
         set_arr(&s, G4("feed_forward_length"), ENG_GGUF_F32, 4, (const float[]){64, 64, 64, 64}),
         "an array of value type 6, expected one integer per layer (key "
         "gemma4.feed_forward_length)");
    CASE("gemma4",
         set_arr(&s, G4("attention.head_count"), ENG_GGUF_I32, 4, (const int32_t[]){4, 4, 2, 4}),
         "layer 2 has 2 heads, the largest layer 4: per-layer head counts not supported (key "
         "gemma4.attention.head_count)");
    CASE("llama",
         set_arr(&s, "llama.feed_forward_length", ENG_GGUF_I32, 2, (const int32_t[]){64, 64}),
         "value type 9, expected an integer (key llama.feed_forward_length)");
    CASE("gemma4", set_u(&s, G4("attention.shared_kv_layers"), ENG_GGUF_U32, 4),
         "value 4 out of range 0..3 (key gemma4.attention.shared_kv_layers)");
    CASE("gemma4", set_u(&s, G4("attention.shared_kv_layers"), ENG_GGUF_U32, 3),
         "3 shared layers: global layer 1 would reuse the KV of layer 0, which is sliding (key "
         "gemma4.attention.shared_kv_layers)");
    CASE("gemma4",
         set_arr(&s, G4("attention.sliding_window_pattern"), ENG_GGUF_BOOL, 4,
                 (const uint8_t[]){1, 1, 1, 0}),
         "2 shared layers: global layer 3 would reuse the KV of layer 1, which is sliding (key "
         "gemma4.attention.shared_kv_layers)");
    CASE("gemma4",
         (set_arr(&s, G4("attention.sliding_window_pattern"), ENG_GGUF_BOOL, 4,
                  (const uint8_t[]){1, 1, 1, 1}),
          set_u(&s, G4("attention.shared_kv_layers"), ENG_GGUF_U32, 3)),
         "3 shared layers: sliding layer 1 would reuse the KV of layer -1 (key "
         "gemma4.attention.shared_kv_layers)");
    CASE("gemma4",
         set_arr(&s, G4("attention.head_count_kv"), ENG_GGUF_I32, 4,
                 (const int32_t[]){2, 1, 1, 1}),
         "2 shared layers: layer 2 of 1 KV heads would reuse the KV of layer 0, of 2 (key "
         "gemma4.attention.shared_kv_layers)");
    CASE("gemma4", set_u(&s, G4("rope.dimension_count_swa"), ENG_GGUF_U32, 10),
         "10 RoPE dims on sliding layers (by default rope.dimension_count), expected an even "
         "number in 2..key_length_swa 8 (key gemma4.rope.dimension_count_swa)");
    CASE("gemma4", del_kv(&s, G4("rope.dimension_count_swa")),
         "16 RoPE dims on sliding layers|(key gemma4.rope.dimension_count_swa)");
    CASE("gemma4", set_f(&s, G4("final_logit_softcapping"), ENG_GGUF_F32, -1),
         "value -1 out of range 0..1e+09 (key gemma4.final_logit_softcapping)");
    CASE("gemma4", set_s(&s, G4("rope.scaling.type"), "yarn"),
         "rope scaling type \"yarn\" not supported (key gemma4.rope.scaling.type)");
    CASE("gemma4", del_t(&s, "rope_freqs.weight"), "missing (tensor rope_freqs.weight)");
    CASE("gemma4", find_t(&s, "rope_freqs.weight")->dims[0] = G4_SWA / 2,
         "shape [4], expected [8] (tensor rope_freqs.weight)");
    CASE("gemma4", find_t(&s, "rope_freqs.weight")->val = -1,
         "value -1 at 0 is not a positive frequency divisor (tensor rope_freqs.weight)");
    CASE("gemma4", del_t(&s, "blk.1.attn_k.weight"), "missing (tensor blk.1.attn_k.weight)");
    CASE("gemma4", del_t(&s, "blk.0.attn_k_norm.weight"),
         "missing (tensor blk.0.attn_k_norm.weight)");
    CASE("gemma4", del_t(&s, "blk.2.attn_q_norm.weight"),
         "missing (tensor blk.2.attn_q_norm.weight)");
    CASE("gemma4", del_t(&s, "blk.3.post_ffw_norm.weight"),
         "missing (tensor blk.3.post_ffw_norm.weight)");
    CASE("gemma4", del_t(&s, "per_layer_token_embd.weight"),
         "missing (tensor per_layer_token_embd.weight)");
    CASE("gemma4", del_t(&s, "per_layer_proj_norm.weight"),
         "missing (tensor per_layer_proj_norm.weight)");
    CASE("gemma4", del_t(&s, "blk.3.inp_gate.weight"), "missing (tensor blk.3.inp_gate.weight)");
    CASE("gemma4", del_t(&s, "blk.0.post_norm.weight"), "missing (tensor blk.0.post_norm.weight)");
    CASE("gemma4", set_u(&s, G4("embedding_length_per_layer_input"), ENG_GGUF_U32, 0),
         "not part of the gemma4 architecture (tensor per_layer_token_embd.weight)");
    CASE("gemma4", find_t(&s, "per_layer_token_embd.weight")->dims[0] = G4_PLE,
         "shape [4, 16], expected [16, 16] (ggml order: columns, rows) (tensor "
         "per_layer_token_embd.weight)");
    CASE("gemma4", find_t(&s, "blk.1.proj.weight")->dims[0] = D,
         "shape [32, 32], expected [4, 32] (ggml order: columns, rows) (tensor "
         "blk.1.proj.weight)");
    CASE("gemma4", find_t(&s, "blk.1.attn_q.weight")->dims[1] = NH * G4_SWA,
         "shape [32, 32], expected [32, 64] (ggml order: columns, rows) (tensor "
         "blk.1.attn_q.weight)");
    CASE("gemma4", find_t(&s, "blk.0.attn_k.weight")->dims[1] = G4_SWA,
         "shape [32, 8], expected [32, 16] (ggml order: columns, rows) (tensor "
         "blk.0.attn_k.weight)");
    CASE("gemma4", find_t(&s, "blk.2.ffn_up.weight")->dims[1] = H,
         "shape [32, 64], expected [32, 128] (ggml order: columns, rows) (tensor "
         "blk.2.ffn_up.weight)");
    CASE("gemma4", find_t(&s, "blk.3.attn_q_norm.weight")->dims[0] = G4_SWA,
         "shape [8], expected [16] (tensor blk.3.attn_q_norm.weight)");
    CASE("gemma4", add_t(&s, "blk.1.attn_v.weight", D, 2 * G4_HD),
         "shape [32, 32], expected [32, 16] (ggml order: columns, rows) (tensor "
         "blk.1.attn_v.weight)");
    CASE("gemma4", add_t(&s, "blk.3.attn_k.weight", D, 2 * G4_HD),
         "shape [32, 32], expected [32, 16] (ggml order: columns, rows) (tensor "
         "blk.3.attn_k.weight)");
    CASE("gemma4", find_t(&s, "blk.2.layer_output_scale.weight")->dims[0] = 2,
         "shape [2], expected [1] (tensor blk.2.layer_output_scale.weight)");
    CASE("gemma4", add_t(&s, "blk.1.ffn_gate_inp.weight", D, 8),
         "a mixture-of-experts layer (Gemma 4 26B-A4B): not supported (tensor "
         "blk.1.ffn_gate_inp.weight)");
    CASE("gemma4", add_t(&s, "blk.0.ffn_down_exps.weight", H, D),
         "a mixture-of-experts layer|(tensor blk.0.ffn_down_exps.weight)");
    CASE("gemma4", add_t(&s, "blk.3.post_ffw_norm_2.weight", D, 0),
         "a mixture-of-experts layer|(tensor blk.3.post_ffw_norm_2.weight)");
    CASE("gemma4", add_t(&s, "blk.0.ssm_a", SH, 0),
         "not part of the gemma4 architecture (tensor blk.0.ssm_a)");
    CASE("gemma3", add_t(&s, "blk.0.layer_output_scale.weight", 1, 0),
         "not part of the gemma3 architecture (tensor blk.0.layer_output_scale.weight)");
#undef G4
    /* qwen35 */
    CASE("qwen35", set_u(&s, "qwen35.ssm.time_step_rank", ENG_GGUF_U32, 3),
         "time_step_rank (value heads) 3 is not a multiple of group_count (key heads) 2 (key "
         "qwen35.ssm.time_step_rank)");
    CASE("qwen35", set_u(&s, "qwen35.ssm.inner_size", ENG_GGUF_U32, 8),
         "inner_size 8, expected time_step_rank 4 x state_size 4 (key qwen35.ssm.inner_size)");
    CASE("qwen35", del_kv(&s, "qwen35.ssm.group_count"),
         "required key missing (key qwen35.ssm.group_count)");
    CASE("qwen35", del_kv(&s, "qwen35.full_attention_interval"),
         "required key missing (key qwen35.full_attention_interval)");
    CASE("qwen35", set_u(&s, "qwen35.full_attention_interval", ENG_GGUF_U32, 0),
         "value 0 out of range 1..1024 (key qwen35.full_attention_interval)");
    CASE("qwen35", set_u(&s, "qwen35.attention.recurrent_layers", ENG_GGUF_U32, 1),
         "value type 4, expected an array of one bool or integer per layer (key "
         "qwen35.attention.recurrent_layers)");
    CASE("qwen35", del_kv(&s, "qwen35.rope.dimension_sections"),
         "required key missing (key qwen35.rope.dimension_sections)");
    CASE("qwen35",
         set_arr(&s, "qwen35.rope.dimension_sections", ENG_GGUF_I32, 3,
                 (const int32_t[]){2, 1, 1}),
         "expected an array of 4 integers (key qwen35.rope.dimension_sections)");
    CASE("qwen35",
         set_arr(&s, "qwen35.rope.dimension_sections", ENG_GGUF_I32, 4,
                 (const int32_t[]){1, 1, 1, 1}),
         "sections [1, 1, 1, 1] give RoPE pair 3 (of 4) the fourth position stream|plain NEOX|"
         "(key qwen35.rope.dimension_sections)");
    CASE("qwen35",
         set_arr(&s, "qwen35.rope.dimension_sections", ENG_GGUF_I32, 4,
                 (const int32_t[]){4, 0, 0, 0}),
         "sections [4, 0, 0, 0] give RoPE pair 1 (of 4)");
    CASE("qwen35",
         set_arr(&s, "qwen35.rope.dimension_sections", ENG_GGUF_I32, 4,
                 (const int32_t[]){2, -1, 1, 0}),
         "section 1 out of range 0..8 (key qwen35.rope.dimension_sections)");
    CASE("qwen35",
         set_arr(&s, "qwen35.rope.dimension_sections", ENG_GGUF_I32, 4,
                 (const int32_t[]){0, 0, 0, 0}),
         "sections sum to 0, expected 1..8 (key_length) (key qwen35.rope.dimension_sections)");
    CASE("qwen35", del_t(&s, "blk.0.ssm_a"), "missing (tensor blk.0.ssm_a)");
    CASE("qwen35", del_t(&s, "blk.1.attn_q_norm.weight"),
         "missing (tensor blk.1.attn_q_norm.weight)");
    CASE("qwen35", (find_t(&s, "blk.0.ssm_conv1d.weight")->dims[0] = SC,
                    find_t(&s, "blk.0.ssm_conv1d.weight")->dims[1] = SKER),
         "shape [32, 4], expected [4, 32] (ggml order: columns, rows) (tensor "
         "blk.0.ssm_conv1d.weight)");
    CASE("qwen35", find_t(&s, "blk.0.ssm_conv1d.weight")->type = ENG_GGML_F16,
         "weight type F16, expected F32|(tensor blk.0.ssm_conv1d.weight)");
    CASE("qwen35", find_t(&s, "blk.0.attn_qkv.weight")->dims[1] = 3 * D,
         "shape [32, 96], expected [32, 32] (ggml order: columns, rows) (tensor "
         "blk.0.attn_qkv.weight)");
    CASE("qwen35", find_t(&s, "blk.1.attn_q.weight")->dims[1] = NH * HD,
         "shape [32, 32], expected [32, 64] (ggml order: columns, rows) (tensor "
         "blk.1.attn_q.weight)");
    CASE("qwen35", add_t(&s, "blk.1.ssm_a", SH, 0),
         "not part of a qwen35 attention layer (tensor blk.1.ssm_a)");
    CASE("qwen35", add_t(&s, "blk.1.attn_qkv.weight", D, SC),
         "not part of a qwen35 attention layer (tensor blk.1.attn_qkv.weight)");
    CASE("qwen35", add_t(&s, "blk.0.attn_k.weight", D, NKV * HD),
         "not part of a qwen35 delta-net layer (tensor blk.0.attn_k.weight)");
    CASE("qwen35", add_t(&s, "blk.0.ffn_norm.weight", D, 0),
         "not part of the qwen35 architecture (tensor blk.0.ffn_norm.weight)");
    CASE("gemma3", add_t(&s, "blk.0.ssm_a", SH, 0),
         "not part of the gemma3 architecture (tensor blk.0.ssm_a)");
    CASE("llama", add_t(&s, "blk.0.post_attention_norm.weight", D, 0),
         "not part of the llama architecture (tensor blk.0.post_attention_norm.weight)");
    CASE("qwen3", add_t(&s, "blk.1.post_ffw_norm.weight", D, 0),
         "not part of the qwen3 architecture (tensor blk.1.post_ffw_norm.weight)");
    /* tensors */
    CASE("llama", del_t(&s, "token_embd.weight"), "missing (tensor token_embd.weight)");
    CASE("llama", del_t(&s, "blk.1.ffn_up.weight"), "missing (tensor blk.1.ffn_up.weight)");
    CASE("llama", del_t(&s, "output_norm.weight"), "missing (tensor output_norm.weight)");
    CASE("qwen2", del_t(&s, "blk.0.attn_k.bias"), "missing (tensor blk.0.attn_k.bias)");
    CASE("qwen3", del_t(&s, "blk.1.attn_q_norm.weight"),
         "missing (tensor blk.1.attn_q_norm.weight)");
    CASE("gpt2", del_t(&s, "position_embd.weight"), "missing (tensor position_embd.weight)");
    CASE("gpt2", del_t(&s, "blk.0.attn_qkv.bias"), "missing (tensor blk.0.attn_qkv.bias)");
    CASE("llama", find_t(&s, "blk.0.attn_k.weight")->dims[1] = 32,
         "shape [32, 32], expected [32, 16] (ggml order: columns, rows) (tensor "
         "blk.0.attn_k.weight)");
    CASE("llama", find_t(&s, "blk.1.ffn_down.weight")->dims[0] = 32, "expected [64, 32]");
    CASE("gpt2", find_t(&s, "position_embd.weight")->dims[1] = 8,
         "shape [32, 8], expected [32, 16] (ggml order: columns, rows) (tensor "
         "position_embd.weight)");
    CASE("gpt2", find_t(&s, "blk.1.attn_qkv.bias")->dims[0] = 64,
         "shape [64], expected [96] (tensor blk.1.attn_qkv.bias)");
    CASE("llama",
         (find_t(&s, "blk.0.attn_norm.weight")->n_dims = 2,
          find_t(&s, "blk.0.attn_norm.weight")->dims[1] = 1),
         "2 dimensions, expected 1 (tensor blk.0.attn_norm.weight)");
    CASE("llama", find_t(&s, "blk.1.attn_q.weight")->n_dims = 1,
         "1 dimensions, expected 2 (tensor blk.1.attn_q.weight)");
    CASE("llama", find_t(&s, "token_embd.weight")->n_dims = 1,
         "1 dimensions, expected 2 (tensor token_embd.weight)");
    CASE("llama", find_t(&s, "output_norm.weight")->type = ENG_GGML_Q8_0,
         "weight type Q8_0 not supported for a vector (F32, F16, BF16 are) (tensor "
         "output_norm.weight)\n");
    CASE("llama", find_t(&s, "blk.1.ffn_norm.weight")->type = ENG_GGML_Q4_0,
         "weight type Q4_0 not supported for a vector|(tensor blk.1.ffn_norm.weight)\n");
    CASE("llama", find_t(&s, "blk.0.attn_q.weight")->type = ENG_GGML_Q4_1,
         "weight type Q4_1 not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K are) (tensor "
         "blk.0.attn_q.weight)\n");
    CASE("llama", find_t(&s, "blk.1.ffn_up.weight")->type = ENG_GGML_Q5_0,
         "weight type Q5_0 not supported|(tensor blk.1.ffn_up.weight)\n");
    CASE("llama", find_t(&s, "token_embd.weight")->type = ENG_GGML_IQ4_NL,
         "weight type IQ4_NL not supported|(tensor token_embd.weight)\n");
    /* 256-value blocks do not fit the 32-wide rows: the type check, first, names the tensor. */
    CASE("llama", add_t(&s, "blk.0.ffn_gate_exps.weight", 256, 2)->type = ENG_GGML_Q5_K,
         "weight type Q5_K not supported|(tensor blk.0.ffn_gate_exps.weight)\n");
    CASE("llama", add_t(&s, "blk.0.ffn_gate_exps.weight", 256, 2)->type = ENG_GGML_Q2_K,
         "weight type Q2_K not supported|(tensor blk.0.ffn_gate_exps.weight)\n");
    CASE("llama", add_t(&s, "blk.0.ffn_gate_exps.weight", 256, 2)->type = ENG_GGML_IQ4_XS,
         "weight type IQ4_XS not supported|(tensor blk.0.ffn_gate_exps.weight)\n");
    CASE("llama", add_t(&s, "blk.0.ffn_gate_inp.weight", D, 4),
         "unexpected tensor for the llama architecture with 2 layers (tensor "
         "blk.0.ffn_gate_inp.weight)");
    CASE("llama", add_t(&s, "blk.2.attn_norm.weight", D, 0),
         "unexpected tensor|(tensor blk.2.attn_norm.weight)");
    CASE("llama", add_t(&s, "blk.01.attn_norm.weight", D, 0),
         "unexpected tensor|(tensor blk.01.attn_norm.weight)");
    CASE("llama", add_t(&s, "blk.99999999999999999999.attn_norm.weight", D, 0),
         "unexpected tensor");
    CASE("llama", add_t(&s, "blk.0.x\nsecond line", D, 0), "(tensor blk.0.x?second line)");
    CASE("llama", add_t(&s, "per_layer_token_embd.weight", D, 0),
         "not part of the llama architecture (tensor per_layer_token_embd.weight)");
    CASE("qwen3", add_t(&s, "blk.0.attn_q.bias", NH * HD, 0),
         "not part of the qwen3 architecture (tensor blk.0.attn_q.bias)");
    CASE("gpt2", add_t(&s, "blk.1.attn_q.weight", D, D),
         "not part of the gpt2 architecture (tensor blk.1.attn_q.weight)");
    CASE("qwen2", add_t(&s, "rope_freqs.weight", HD / 2, 0),
         "not part of the qwen2 architecture (tensor rope_freqs.weight)");
    CASE("llama", add_t(&s, "rope_freqs.weight", HD, 0),
         "shape [8], expected [4] (tensor rope_freqs.weight)");
    CASE("llama", add_t(&s, "rope_freqs.weight", HD / 2, 0)->val = 0,
         "value 0 at 0 is not a positive frequency divisor (tensor rope_freqs.weight)");
    CASE("llama", add_t(&s, "rope_freqs.weight", HD / 2, 0)->val = NAN,
         "not a positive frequency divisor (tensor rope_freqs.weight)");
#undef CASE
    /* general.alignment 2 (a power of two: the reader takes it): with one name length or the
     * other, token_embd's data starts 2 bytes past a multiple of 4. */
    for (int pad = 0;; pad++) {
        ASSERT(pad < 2);
        base_spec(&s, "llama");
        set_u(&s, "general.alignment", ENG_GGUF_U32, 2);
        set_s(&s, "general.name", pad ? "crafted.." : "crafted");
        write_spec(&s, path);
        eng_gguf_t *g;
        ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
        uintptr_t at = (uintptr_t)eng_gguf_tensor_find(g, "token_embd.weight")->data;
        eng_gguf_close(g);
        if (at % 4 == 0) continue;
        expect_bad(&s, "data not aligned to its 4-byte elements (tensor token_embd.weight)",
                   "general.alignment 2");
        break;
    }
    /* general.alignment 1: a Q8_0 token_embd at an odd address is refused (its blocks' fp16
     * scales are read as uint16). */
    for (int pad = 0;; pad++) {
        ASSERT(pad < 2);
        base_spec(&s, "llama");
        set_u(&s, "general.alignment", ENG_GGUF_U32, 1);
        set_s(&s, "general.name", pad ? "crafted." : "crafted");
        find_t(&s, "token_embd.weight")->type = ENG_GGML_Q8_0;
        write_spec(&s, path);
        eng_gguf_t *g;
        ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
        uintptr_t at = (uintptr_t)eng_gguf_tensor_find(g, "token_embd.weight")->data;
        eng_gguf_close(g);
        if (at % 2 == 0) continue;
        expect_bad(&s, "data not aligned to its 2-byte block scales (tensor token_embd.weight)",
                   "general.alignment 1, Q8_0");
        break;
    }
    /* A Q4_K row of 32 values is not a whole number of 256-value blocks: the GGUF reader
     * refuses the file (the writer cannot make one, so an F32 tensor's type is patched). */
    base_spec(&s, "llama");
    write_spec(&s, path);
    patch_type(path, "blk.0.attn_q.weight", ENG_GGML_Q4_K);
    eng_model_t *m;
    int rc = load_file(path, &m);
    char head[4200];
    snprintf(head, sizeof head, "gguf %s: ", path);
    if (rc != LANES_EMODEL || test_count_lines(logbuf) != 1 || !strstr(logbuf, head) ||
        !strstr(logbuf, "row length 32 not a multiple of the Q4_K block (256) (tensor "
                        "blk.0.attn_q.weight)")) {
        fprintf(stderr, "case Q4_K row of 32: rc %d, log:\n%s", rc, logbuf);
        exit(1);
    }
}

/* ---- the files in ../shared ---- */

typedef struct {
    const char *file, *arch, *name;
    int dim, hidden, layers, heads, kv_heads, head_dim, rope_dim;
    float rope_base, eps;
    int vocab, seq, shared_cls, wtype;
    int qkv_bias, rope_freqs;   /* 1: q/k/v biases (gpt2: every bias); rope_freqs.weight */
} fact_t;

/* README.md's tables, FAMILIES.md sections 1-5, QUANT.md's model table. */
static const fact_t facts[] = {
    {"llama3-style.f32", "llama", "llama3-style (random weights)", 32, 352, 4, 8, 2, 4, 4, 500000,
     1e-5f, 50257, 512, 0, ENG_WT_F32, 0, 0},
    {"llama3-style.f16", "llama", "llama3-style (random weights)", 32, 352, 4, 8, 2, 4, 4, 500000,
     1e-5f, 50257, 512, 0, ENG_WT_F16, 0, 0},
    {"llama2-spm-style.f32", "llama", "llama2-spm-style (random weights)", 24, 64, 4, 3, 3, 8, 8,
     10000, 1e-5f, 32000, 512, 1, ENG_WT_F32, 0, 0},
    {"qwen2-style.f32", "qwen2", "qwen2-style (random weights)", 16, 96, 4, 4, 2, 4, 4, 1e6,
     1e-6f, 50257, 512, 1, ENG_WT_F32, 1, 0},
    {"gpt2-style.f32", "gpt2", "gpt2-style (random weights)", 12, 48, 4, 2, 2, 6, 0, 10000,
     1e-5f, 50257, 512, 0, ENG_WT_F32, 1, 0},
    {"qwen3-style.f32", "qwen3", "qwen3-style (random weights)", 32, 96, 4, 4, 2, 16, 16, 1e6,
     1e-6f, 50257, 512, 1, ENG_WT_F32, 0, 0},
    {"llama32-style.f32", "llama", "llama32-style (random weights)", 32, 128, 4, 2, 1, 16, 16,
     500000, 1e-5f, 50257, 512, 1, ENG_WT_F32, 0, 1},
    {"stories260K.f32", "llama", "llama", 64, 172, 5, 8, 4, 8, 8, 10000, 1e-5f, 512, 512, 0,
     ENG_WT_F32, 0, 0},
    {"stories260K.f16", "llama", "llama", 64, 172, 5, 8, 4, 8, 8, 10000, 1e-5f, 512, 512, 0,
     ENG_WT_F16, 0, 0},
    {"aidreams260K.f32", "llama", "llama", 64, 172, 4, 4, 4, 16, 16, 10000, 1e-5f, 512, 128, 0,
     ENG_WT_F32, 0, 0},
    {"q4-style.f32", "llama", "llama", 256, 768, 4, 4, 2, 64, 64, 10000, 1e-5f, 512, 512, 0,
     ENG_WT_F32, 0, 0},
    {"gemma3-style.f32", "gemma3", "gemma3-style (random weights)", 32, 128, 4, 4, 1, 16, 16, 1e6,
     1e-6f, 32000, 512, 1, ENG_WT_F32, 0, 0},
    {"qwen35-style.f32", "qwen35", "qwen35-style (random weights)", 32, 96, 4, 2, 1, 32, 8, 1e7,
     1e-6f, 50257, 512, 1, ENG_WT_F32, 0, 0},
    /* per-layer widths and KV heads: the largest (gemma4_facts has each layer's) */
    {"gemma4-style.f32", "gemma4", "gemma4-style (random weights)", 32, 128, 4, 2, 2, 32, 32, 1e6,
     1e-6f, 32000, 512, 1, ENG_WT_F32, 0, 1},
    /* Quantized: wtype is the type of most matrix bytes, which every attn_q has. */
    {"llama3-style.q8_0", "llama", "llama3-style (random weights)", 32, 352, 4, 8, 2, 4, 4,
     500000, 1e-5f, 50257, 512, 0, ENG_WT_Q8_0, 0, 0},
    {"stories260K.q8_0", "llama", "llama", 64, 172, 5, 8, 4, 8, 8, 10000, 1e-5f, 512, 512, 0,
     ENG_WT_Q8_0, 0, 0},
    {"aidreams260K.q8_0", "llama", "llama", 64, 172, 4, 4, 4, 16, 16, 10000, 1e-5f, 512, 128, 0,
     ENG_WT_Q8_0, 0, 0},
    {"q4-style.q4_0", "llama", "llama", 256, 768, 4, 4, 2, 64, 64, 10000, 1e-5f, 512, 512, 0,
     ENG_WT_Q4_0, 0, 0},
    {"q4-style.q4_k_m", "llama", "llama", 256, 768, 4, 4, 2, 64, 64, 10000, 1e-5f, 512, 512, 0,
     ENG_WT_Q4_K, 0, 0},
    {"q4-style.q6_k", "llama", "llama", 256, 768, 4, 4, 2, 64, 64, 10000, 1e-5f, 512, 512, 0,
     ENG_WT_Q6_K, 0, 0},
    {"q4-style.q8_0", "llama", "llama", 256, 768, 4, 4, 2, 64, 64, 10000, 1e-5f, 512, 512, 0,
     ENG_WT_Q8_0, 0, 0},
};

/* QUANT.md's tensors of another type than the file's main one. */
static const struct { const char *file, *tensor; int wtype; } odd_types[] = {
    {"stories260K.q8_0", "blk.4.ffn_down.weight", ENG_WT_F16},
    {"aidreams260K.q8_0", "blk.0.ffn_down.weight", ENG_WT_F16},
    {"q4-style.q4_0", "output.weight", ENG_WT_Q6_K},
    {"q4-style.q4_k_m", "output.weight", ENG_WT_Q6_K},
    {"q4-style.q4_k_m", "blk.2.attn_v.weight", ENG_WT_Q6_K},
    {"q4-style.q4_k_m", "blk.3.ffn_down.weight", ENG_WT_Q6_K},
    {"q4-style.q4_k_m", "blk.1.ffn_down.weight", ENG_WT_Q4_K},
};

static void file_path(char *buf, size_t cap, const char *dir, const char *stem) {
    snprintf(buf, cap, "%s/%s.gguf", dir, stem);
}

/* FAMILIES.md 4, layer by layer: layers 0 and 2 slide (window 8; heads of 16, 2 KV heads, all 16
 * dims rotated, base 1e4), 1 and 3 are global (heads of 32, 1 KV head, base 1e6 with rope_freqs
 * [1, 1, 1, 1, 1e30 x 12]); FFN widths 64, 64, 128, 128; layer 1 has no attn_v (V = K), layers 2
 * and 3 reuse layer 0's and 1's KV; per-layer embeddings of 4; the output scales; softcap 30. */
static void gemma4_facts(const eng_model_t *m) {
    const eng_model_cfg_t *c = eng_model_cfg(m);
    const eng_weights_t *w = eng_model_weights(m);
    ASSERT(c->arch.v_norm && c->arch.post_norms && c->arch.ffn == ENG_FFN_GEGLU);
    ASSERT(c->head_dim_swa == 16 && c->rope_dim_swa == 16 && c->rope_base_swa == 1e4f);
    ASSERT(c->rope_scale == 1.0f && c->rope_scale_swa == 1.0f && c->window == 8);
    ASSERT(c->ple_dim == 4 && c->attn_scale == 1.0f && c->final_softcap == 30.0f);
    ASSERT(c->emb_scale == sqrtf(32.0f));
    static const int kv[4] = {2, 1, 2, 1}, ff[4] = {64, 64, 128, 128}, reuse[4] = {0, 0, 2, 2};
    static const float scale[4] = {1.0512495f, 0.9364439f, 0.8365015f, 1.0856624f};
    for (int l = 0; l < 4; l++) {
        const eng_layer_t *ly = &w->layers[l];
        int hd = l % 2 ? 32 : 16;
        char name[64];
        ASSERT_EQ(c->layer_swa[l], l % 2 == 0);
        ASSERT_EQ(c->layer_kv_heads[l], kv[l]);
        ASSERT_EQ(c->layer_hidden[l], ff[l]);
        ASSERT_EQ(c->layer_kv_reuse[l], reuse[l]);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        expect_in_file(m, &ly->wq, name);
        ASSERT(ly->wq.rows == 2 * hd && ly->wo.cols == 2 * hd && ly->w_up.rows == ff[l]);
        ASSERT(ly->out_scale && fabsf(ly->out_scale[0] - scale[l]) < 1e-6f);
        ASSERT(ly->ple_gate.rows == 4 && ly->ple_proj.cols == 4 && ly->ple_post_norm);
        ASSERT(ly->post_attn_norm && ly->post_ffn_norm && ly->q_norm);
        if (l >= 2) {
            ASSERT(!ly->wk.data && !ly->wv.data && !ly->k_norm);
            continue;
        }
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        expect_in_file(m, &ly->wk, name);
        ASSERT(ly->wk.rows == kv[l] * hd && ly->k_norm);
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        if (l == 0) expect_in_file(m, &ly->wv, name);
        else ASSERT(memcmp(&ly->wv, &ly->wk, sizeof ly->wk) == 0);
    }
    expect_in_file(m, &w->ple_tok_emb, "per_layer_token_embd.weight");
    expect_in_file(m, &w->ple_model_proj, "per_layer_model_proj.weight");
    ASSERT(w->ple_tok_emb.cols == 16 && w->ple_model_proj.rows == 16 && w->ple_proj_norm);
    for (int j = 0; j < 16; j++) ASSERT(w->rope_freqs[j] == (j < 4 ? 1.0f : 1e30f));
}

static void test_facts(const char *dir) {
    for (size_t i = 0; i < sizeof facts / sizeof *facts; i++) {
        const fact_t *f = &facts[i];
        char file[4200];
        file_path(file, sizeof file, dir, f->file);
        eng_model_t *m;
        int rc = load_file(file, &m);
        if (rc != LANES_OK) fprintf(stderr, "%s: %s", f->file, logbuf);
        ASSERT_EQ(rc, LANES_OK);
        const eng_model_cfg_t *c = eng_model_cfg(m);
        const eng_weights_t *w = eng_model_weights(m);
        printf("%-22s %-6s dim %3d ffn %3d layers %d heads %d/%d x %2d rope %2d base %g eps %g "
               "vocab %5d ctx %3d %s %s\n", f->file, c->arch.name, c->dim, c->hidden_dim,
               c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->rope_dim, c->rope_base,
               c->norm_eps, c->vocab_size, c->seq_len, c->shared_cls ? "tied" : "untied",
               eng_wtype_name(eng_model_wtype(m)));
        ASSERT_STR_EQ(c->arch.name, f->arch);
        ASSERT_STR_EQ(eng_model_name(m), f->name);
        ASSERT_EQ(c->dim, f->dim);
        ASSERT_EQ(c->hidden_dim, f->hidden);
        ASSERT_EQ(c->n_layers, f->layers);
        ASSERT_EQ(c->n_heads, f->heads);
        ASSERT_EQ(c->n_kv_heads, f->kv_heads);
        ASSERT_EQ(c->head_dim, f->head_dim);
        ASSERT_EQ(c->rope_dim, f->rope_dim);
        ASSERT(c->rope_base == f->rope_base);
        ASSERT(c->norm_eps == f->eps);
        ASSERT_EQ(c->vocab_size, f->vocab);
        ASSERT_EQ(c->seq_len, f->seq);
        ASSERT_EQ(c->shared_cls, f->shared_cls);
        ASSERT_EQ(eng_model_wtype(m), f->wtype);
        int gpt2 = strcmp(f->arch, "gpt2") == 0, gemma3 = strcmp(f->arch, "gemma3") == 0;
        int qwen35 = strcmp(f->arch, "qwen35") == 0;
        if (strcmp(f->arch, "gemma4") == 0) {
            gemma4_facts(m);
            eng_model_destroy(m);
            continue;
        }
        ASSERT_EQ(c->arch.qk_norm, strcmp(f->arch, "qwen3") == 0 || gemma3 || qwen35);
        ASSERT_EQ(c->arch.attn_gate, qwen35);
        /* FAMILIES.md 5: layers 0-2 delta nets of 2 key heads, 4 value heads of 8, 4 taps. */
        for (int l = 0; l < c->n_layers; l++)
            ASSERT_EQ(c->layer_kind[l], qwen35 && l != 3 ? ENG_LAYER_DNET : ENG_LAYER_ATTN);
        ASSERT(c->ssm_k_heads == (qwen35 ? 2 : 0) && c->ssm_v_heads == (qwen35 ? 4 : 0));
        ASSERT(c->ssm_head_dim == (qwen35 ? 8 : 0) && c->ssm_conv_kernel == (qwen35 ? 4 : 0));
        ASSERT_EQ(c->arch.pos_embd, gpt2);
        ASSERT_EQ(c->arch.post_norms, gemma3);
        ASSERT_EQ(c->arch.ffn, gpt2 ? ENG_FFN_GELU : gemma3 ? ENG_FFN_GEGLU : ENG_FFN_SWIGLU);
        /* FAMILIES.md 3: pattern 3 slides layers 0, 1 and 3 (window 12), base 1e4 there; the
         * global layer 2 has 1e6 (rope_base above) scaled by 1/8; x = token_embd * sqrtf(32). */
        ASSERT_EQ(c->window, gemma3 ? 12 : 0);
        for (int l = 0; l < c->n_layers; l++) ASSERT_EQ(c->layer_swa[l], gemma3 && l != 2);
        ASSERT(c->rope_base_swa == (gemma3 ? 1e4f : 0) && c->rope_scale == (gemma3 ? 0.125f : 0));
        ASSERT(c->emb_scale == (gemma3 ? 5.656854f : 0));
        for (int l = 0; l < c->n_layers; l++) {
            const eng_layer_t *ly = &w->layers[l];
            char name[64];
#define ROLE(r) (snprintf(name, sizeof name, "blk.%d.%s", l, r), name)
            if (qwen35) {   /* post_attention_norm is the pre-FFN norm on every layer */
                ASSERT(ly->ffn_norm == file_tensor(m, ROLE("post_attention_norm.weight"))->data);
                expect_in_file(m, &ly->w_gate, ROLE("ffn_gate.weight"));
            }
            if (c->layer_kind[l] == ENG_LAYER_DNET) {   /* FAMILIES.md 5's shapes */
                expect_in_file(m, &ly->ssm_qkv, ROLE("attn_qkv.weight"));
                expect_in_file(m, &ly->ssm_gate, ROLE("attn_gate.weight"));
                expect_in_file(m, &ly->ssm_beta, ROLE("ssm_beta.weight"));
                expect_in_file(m, &ly->ssm_alpha, ROLE("ssm_alpha.weight"));
                expect_in_file(m, &ly->ssm_out, ROLE("ssm_out.weight"));
                ASSERT(ly->ssm_qkv.rows == 64 && ly->ssm_gate.rows == 32 && ly->ssm_out.cols == 32);
                ASSERT(ly->ssm_beta.rows == 4 && ly->ssm_alpha.rows == 4);
                ASSERT(ly->ssm_conv == file_tensor(m, ROLE("ssm_conv1d.weight"))->data);
                ASSERT(ly->ssm_a == file_tensor(m, ROLE("ssm_a"))->data);
                for (int j = 0; j < 4; j++) ASSERT(ly->ssm_a[j] < 0);   /* -exp(A_log) */
                ASSERT(ly->ssm_dt_bias && ly->ssm_norm && !ly->wq.data && !ly->q_norm);
                continue;
            }
            if (qwen35) ASSERT(ly->wq.rows == 128 && ly->wo.cols == 64 && ly->ssm_qkv.data == NULL);
#undef ROLE
            ASSERT((ly->bq != NULL) == f->qkv_bias && (ly->bv != NULL) == f->qkv_bias);
            ASSERT((ly->bo != NULL) == gpt2 && (ly->b_down != NULL) == gpt2);
            ASSERT((ly->q_norm != NULL) == c->arch.qk_norm);
            ASSERT((ly->post_attn_norm != NULL) == gemma3 && (ly->post_ffn_norm != NULL) == gemma3);
            ASSERT(ly->wq.type == f->wtype);
            if (gpt2) continue;
            /* Every matrix is its file tensor, in that tensor's own type. */
            static const char *roles[] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                          "ffn_gate", "ffn_up", "ffn_down"};
            const eng_mat_t *mats[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate,
                                       &ly->w_up, &ly->w_down};
            for (int r = 0; r < 7; r++) {
                snprintf(name, sizeof name, "blk.%d.%s.weight", l, roles[r]);
                expect_in_file(m, mats[r], name);
            }
        }
        for (size_t j = 0; j < sizeof odd_types / sizeof *odd_types; j++)
            if (strcmp(odd_types[j].file, f->file) == 0)
                ASSERT_EQ(file_tensor(m, odd_types[j].tensor)->type, odd_types[j].wtype);
        expect_in_file(m, &w->tok_emb, "token_embd.weight");
        expect_in_file(m, &w->cls, f->shared_cls ? "token_embd.weight" : "output.weight");
        char last[64];
        snprintf(last, sizeof last, "blk.%d.ffn_down.weight", c->n_layers - 1);
        expect_in_file(m, &w->layers[c->n_layers - 1].w_down, last);
        ASSERT_EQ(w->rope_freqs != NULL, f->rope_freqs);
        if (f->rope_freqs) {   /* FAMILIES.md: [1, 1, 4.9234724, 32, 32, 32, 32, 32] */
            static const float want[8] = {1, 1, 4.9234724f, 32, 32, 32, 32, 32};
            for (int j = 0; j < 8; j++) ASSERT(fabsf(w->rope_freqs[j] - want[j]) < 1e-6f);
        }
        /* Resident weights: the file's tensor bytes, not an fp32 copy of them. */
        uint64_t have = eng_model_weight_bytes(m), data = eng_gguf_data_bytes(eng_model_gguf(m));
        ASSERT_LE(have, data + data / 20);
        ASSERT_GE(have, data - data / 20);
        eng_model_destroy(m);
    }
}

int main(void) {
    test_good();
    test_bad();
    printf("crafted GGUF models: 7 architectures load; every broken variant refused in one line\n");
    const char *shared;
    SKIP_WITHOUT_SHARED(shared);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models/gguf", shared);
    test_facts(dir);
    printf("shared: %zu model files (7 quantized) load as documented\n",
           sizeof facts / sizeof *facts);
    return 0;
}
