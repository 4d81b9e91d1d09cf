/* GGUF models: the model description from general.architecture and the <arch>.* keys (as
 * llama.cpp reads them, defaults included), tensors mapped by role. Matrices stay in the file's
 * mapping in their own type, each its own (Q4_K_M files mix Q4_K and Q6_K; some keep an F16
 * tensor); only 16-bit vectors are copied, as fp32, into m->vecs. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "model/gguf.h"
#include "model_int.h"

enum { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3, ARCH_GPT2, ARCH_GEMMA3, ARCH_QWEN35, ARCH_GEMMA4,
       N_ARCH };

static const eng_arch_t archs[N_ARCH] = {
    [ARCH_LLAMA] = {.name = "llama", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_PAIRS,
                    .ffn = ENG_FFN_SWIGLU},
    [ARCH_QWEN2] = {.name = "qwen2", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX,
                    .ffn = ENG_FFN_SWIGLU},
    [ARCH_QWEN3] = {.name = "qwen3", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX,
                    .ffn = ENG_FFN_SWIGLU, .qk_norm = 1},
    [ARCH_GPT2] = {.name = "gpt2", .norm = ENG_NORM_LAYER, .rope = ENG_ROPE_NONE,
                   .ffn = ENG_FFN_GELU, .pos_embd = 1},
    [ARCH_GEMMA3] = {.name = "gemma3", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX,
                     .ffn = ENG_FFN_GEGLU, .qk_norm = 1, .post_norms = 1},
    [ARCH_QWEN35] = {.name = "qwen35", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX,
                     .ffn = ENG_FFN_SWIGLU, .qk_norm = 1, .attn_gate = 1},
    [ARCH_GEMMA4] = {.name = "gemma4", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX,
                     .ffn = ENG_FFN_GEGLU, .qk_norm = 1, .post_norms = 1, .v_norm = 1},
};

/* Symbolic tensor dimensions, resolved from the cfg once it is read; N_HIDDEN, N_Q, N_QG, N_KV,
 * N_QKV and N_HEAD again for each layer, whose shape may be its own (gemma4). N_QG: the query
 * rows, twice N_Q with an output gate; N_SSM_*: a delta-net layer's conv channels (2 K d + H d),
 * value channels (H d), value heads (H), head dim (d) and conv taps (the columns of ssm_conv1d,
 * bound as an fp32 array: ggml's ssm_conv takes it in F32 only); N_PLE, N_PLE_ALL: the per-layer
 * embedding width, and that of all layers' together; N_ONE: 1. */
enum { N_NONE, N_DIM, N_HIDDEN, N_Q, N_QG, N_KV, N_QKV, N_HEAD, N_VOCAB, N_CTX, N_ROPE_PAIRS,
       N_SSM_C, N_SSM_INNER, N_SSM_H, N_SSM_D, N_SSM_KERNEL, N_PLE, N_PLE_ALL, N_ONE, N_COUNT };

#define FUSED ((size_t)-1)   /* attn_qkv: split into the q, k and v fields */

/* One tensor role. need has one letter per architecture (llama, qwen2, qwen3, gpt2, gemma3,
 * qwen35, gemma4): R required, O optional, - not part of it (an error when present, as in
 * llama.cpp); A and D: required on attention layers, or on delta-net layers, and not part of the
 * other kind; K and V: required (K) or optional (V) on a layer that computes its own K and V, and
 * on a layer that reuses another's (shared KV) optional and unused, as llama.cpp takes them; P:
 * required with per-layer embeddings, else not part of it; G: required when a layer is global.
 * One name may have a role per architecture (qwen35's attn_qkv is its delta net's, not gpt2's
 * fused q, k, v). */
typedef struct {
    const char *name;       /* layer roles: the part after "blk.N." */
    int rows, cols;         /* N_*; cols N_NONE: a vector of rows values */
    const char *need;
    size_t off;             /* of its field in eng_layer_t / eng_weights_t, or FUSED */
} role_t;

#define L(f) offsetof(eng_layer_t, f)
static const role_t layer_roles[] = {
    {"attn_norm.weight", N_DIM, N_NONE, "RRRRRRR", L(attn_norm)},
    {"attn_norm.bias", N_DIM, N_NONE, "---R---", L(attn_norm_b)},
    {"attn_q.weight", N_QG, N_DIM, "RRR-RAR", L(wq)},
    {"attn_k.weight", N_KV, N_DIM, "RRR-RAK", L(wk)},
    {"attn_v.weight", N_KV, N_DIM, "RRR-RAV", L(wv)},
    {"attn_q.bias", N_Q, N_NONE, "OR-----", L(bq)},
    {"attn_k.bias", N_KV, N_NONE, "OR-----", L(bk)},
    {"attn_v.bias", N_KV, N_NONE, "OR-----", L(bv)},
    {"attn_qkv.weight", N_QKV, N_DIM, "---R---", FUSED},   /* rows: q, then k, then v */
    {"attn_qkv.bias", N_QKV, N_NONE, "---R---", FUSED},
    {"attn_q_norm.weight", N_HEAD, N_NONE, "--R-RAR", L(q_norm)},
    {"attn_k_norm.weight", N_HEAD, N_NONE, "--R-RAK", L(k_norm)},
    {"attn_output.weight", N_DIM, N_Q, "RRRRRAR", L(wo)},
    {"attn_output.bias", N_DIM, N_NONE, "O--R---", L(bo)},
    {"post_attention_norm.weight", N_DIM, N_NONE, "----R-R", L(post_attn_norm)},
    {"post_attention_norm.weight", N_DIM, N_NONE, "-----R-", L(ffn_norm)},   /* qwen35's pre-FFN */
    {"ffn_norm.weight", N_DIM, N_NONE, "RRRRR-R", L(ffn_norm)},
    {"ffn_norm.bias", N_DIM, N_NONE, "---R---", L(ffn_norm_b)},
    {"ffn_gate.weight", N_HIDDEN, N_DIM, "RRR-RRR", L(w_gate)},
    {"ffn_up.weight", N_HIDDEN, N_DIM, "RRRRRRR", L(w_up)},
    {"ffn_up.bias", N_HIDDEN, N_NONE, "---R---", L(b_up)},
    {"ffn_down.weight", N_DIM, N_HIDDEN, "RRRRRRR", L(w_down)},
    {"ffn_down.bias", N_DIM, N_NONE, "---R---", L(b_down)},
    {"post_ffw_norm.weight", N_DIM, N_NONE, "----R-R", L(post_ffn_norm)},
    {"attn_qkv.weight", N_SSM_C, N_DIM, "-----D-", L(ssm_qkv)},   /* rows: q, then k, then v */
    {"attn_gate.weight", N_SSM_INNER, N_DIM, "-----D-", L(ssm_gate)},
    {"ssm_conv1d.weight", N_SSM_C, N_SSM_KERNEL, "-----D-", L(ssm_conv)},
    {"ssm_dt.bias", N_SSM_H, N_NONE, "-----D-", L(ssm_dt_bias)},
    {"ssm_a", N_SSM_H, N_NONE, "-----D-", L(ssm_a)},
    {"ssm_beta.weight", N_SSM_H, N_DIM, "-----D-", L(ssm_beta)},
    {"ssm_alpha.weight", N_SSM_H, N_DIM, "-----D-", L(ssm_alpha)},
    {"ssm_norm.weight", N_SSM_D, N_NONE, "-----D-", L(ssm_norm)},
    {"ssm_out.weight", N_DIM, N_SSM_INNER, "-----D-", L(ssm_out)},
    {"layer_output_scale.weight", N_ONE, N_NONE, "------O", L(out_scale)},
    {"inp_gate.weight", N_PLE, N_DIM, "------P", L(ple_gate)},
    {"proj.weight", N_DIM, N_PLE, "------P", L(ple_proj)},
    {"post_norm.weight", N_DIM, N_NONE, "------P", L(ple_post_norm)},
};
#undef L

#define W(f) offsetof(eng_weights_t, f)
static const role_t global_roles[] = {
    {"token_embd.weight", N_VOCAB, N_DIM, "RRRRRRR", W(tok_emb)},
    {"position_embd.weight", N_CTX, N_DIM, "---R---", W(pos_emb)},
    /* Llama 3.1's scaling; gemma4's proportional RoPE on its global layers */
    {"rope_freqs.weight", N_ROPE_PAIRS, N_NONE, "O-----G", W(rope_freqs)},
    {"output_norm.weight", N_DIM, N_NONE, "RRRRRRR", W(out_norm)},
    {"output_norm.bias", N_DIM, N_NONE, "---R---", W(out_norm_b)},
    {"output.weight", N_VOCAB, N_DIM, "OOOOOOO", W(cls)},   /* absent: tied to token_embd */
    {"per_layer_token_embd.weight", N_VOCAB, N_PLE_ALL, "------P", W(ple_tok_emb)},
    {"per_layer_model_proj.weight", N_PLE_ALL, N_DIM, "------P", W(ple_model_proj)},
    {"per_layer_proj_norm.weight", N_PLE, N_NONE, "------P", W(ple_proj_norm)},
};
#undef W

#define N_ELEMS(a) (sizeof(a) / sizeof *(a))

typedef struct {
    const char *path;
    eng_gguf_t *g;
    int arch;
    char key[160];          /* the last key asked for, "<arch>.suffix" */
    uint64_t n[N_COUNT];    /* N_* -> length */
    const eng_model_cfg_t *cfg;   /* once read */
    float *vec_next;        /* the next free float of m->vecs */
} ld_t;

__attribute__((format(printf, 2, 3))) static int fail(const ld_t *ld, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    LANES_LOG(LANES_LOG_ERROR, "model %s: %s", ld->path, msg);
    return LANES_EMODEL;
}

/* The key "<arch>.suffix", or suffix itself for general.* keys. */
static const eng_gguf_kv_t *find_key(ld_t *ld, const char *suffix) {
    if (strncmp(suffix, "general.", 8) == 0 || strncmp(suffix, "tokenizer.", 10) == 0)
        snprintf(ld->key, sizeof ld->key, "%s", suffix);
    else
        snprintf(ld->key, sizeof ld->key, "%s.%s", archs[ld->arch].name, suffix);
    return eng_gguf_kv_find(ld->g, ld->key);
}

static int is_int_type(uint32_t t) {
    return t == ENG_GGUF_U8 || t == ENG_GGUF_I8 || t == ENG_GGUF_U16 || t == ENG_GGUF_I16 ||
           t == ENG_GGUF_U32 || t == ENG_GGUF_I32 || t == ENG_GGUF_U64 || t == ENG_GGUF_I64;
}

static int is_signed_type(uint32_t t) {
    return t == ENG_GGUF_I8 || t == ENG_GGUF_I16 || t == ENG_GGUF_I32 || t == ENG_GGUF_I64;
}

/* Element i (< count) of an array of integers or bools (little-endian in the file), sign-extended
 * for signed types; an unsigned value past INT64_MAX reads as INT64_MAX. */
static int64_t arr_int(const eng_gguf_value_t *v, uint64_t i) {
    size_t es = eng_gguf_value_size(v->elem_type);
    const unsigned char *p = (const unsigned char *)v->data + (size_t)i * es;
    uint64_t u = 0;
    for (size_t b = 0; b < es; b++) u |= (uint64_t)p[b] << (8 * b);
    if (is_signed_type(v->elem_type) && es < 8 && (p[es - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * es);
    if (is_signed_type(v->elem_type)) return (int64_t)u;
    return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
}

/* An integer key (any integer type) in lo..hi into *out; absent: def, or an error if def < 0. */
static int key_int(ld_t *ld, const char *suffix, int64_t def, int64_t lo, int64_t hi, int *out) {
    const eng_gguf_kv_t *kv = find_key(ld, suffix);
    if (kv == NULL) {
        if (def < 0) return fail(ld, "required key missing (key %s)", ld->key);
        *out = (int)def;
        return LANES_OK;
    }
    uint32_t t = kv->val.type;
    if (!is_int_type(t)) return fail(ld, "value type %u, expected an integer (key %s)", t, ld->key);
    int neg = is_signed_type(t) && kv->val.num.i < 0;
    if (neg || kv->val.num.u < (uint64_t)lo || kv->val.num.u > (uint64_t)hi) {
        if (neg)
            return fail(ld, "value %lld out of range %lld..%lld (key %s)",
                        (long long)kv->val.num.i, (long long)lo, (long long)hi, ld->key);
        return fail(ld, "value %llu out of range %lld..%lld (key %s)",
                    (unsigned long long)kv->val.num.u, (long long)lo, (long long)hi, ld->key);
    }
    *out = (int)kv->val.num.u;
    return LANES_OK;
}

/* An integer key llama.cpp reads as one value or one per layer (get_key_or_arr), as key_int into
 * *out; on gemma4 also an array of one integer per layer, each in lo..hi, into per_layer[] (left
 * as it is for a scalar), *out then the largest. */
static int key_int_layers(ld_t *ld, const char *suffix, int64_t def, int64_t lo, int64_t hi,
                          int n_layers, int *out, int *per_layer) {
    const eng_gguf_kv_t *kv = find_key(ld, suffix);
    if (kv == NULL || kv->val.type != ENG_GGUF_ARRAY || ld->arch != ARCH_GEMMA4)
        return key_int(ld, suffix, def, lo, hi, out);
    if (!is_int_type(kv->val.elem_type))
        return fail(ld, "an array of value type %u, expected one integer per layer (key %s)",
                    kv->val.elem_type, ld->key);
    if (kv->val.count != (uint64_t)n_layers)
        return fail(ld, "%llu values, expected one per layer (block_count %d) (key %s)",
                    (unsigned long long)kv->val.count, n_layers, ld->key);
    *out = 0;
    for (int l = 0; l < n_layers; l++) {
        int64_t v = arr_int(&kv->val, (uint64_t)l);
        if (v < lo || v > hi)
            return fail(ld, "layer %d's value %lld out of range %lld..%lld (key %s)", l,
                        (long long)v, (long long)lo, (long long)hi, ld->key);
        per_layer[l] = (int)v;
        if (per_layer[l] > *out) *out = per_layer[l];
    }
    return LANES_OK;
}

/* A float key (F32 or F64), finite and in lo..hi; absent: def, or an error if def is NaN. */
static int key_float(ld_t *ld, const char *suffix, double def, double lo, double hi, float *out) {
    const eng_gguf_kv_t *kv = find_key(ld, suffix);
    if (kv == NULL) {
        if (isnan(def)) return fail(ld, "required key missing (key %s)", ld->key);
        *out = (float)def;
        return LANES_OK;
    }
    if (kv->val.type != ENG_GGUF_F32 && kv->val.type != ENG_GGUF_F64)
        return fail(ld, "value type %u, expected a float (key %s)", kv->val.type, ld->key);
    double v = kv->val.num.f;
    if (!(v >= lo && v <= hi)) return fail(ld, "value %g out of range %g..%g (key %s)", v, lo, hi,
                                           ld->key);
    *out = (float)v;
    return LANES_OK;
}

/* A string key, or NULL (*len 0) when absent; a value of another type is an error. */
static int key_str(ld_t *ld, const char *suffix, const char **s, size_t *len) {
    const eng_gguf_kv_t *kv = find_key(ld, suffix);
    *s = NULL;
    *len = 0;
    if (kv == NULL) return LANES_OK;
    if (kv->val.type != ENG_GGUF_STRING)
        return fail(ld, "value type %u, expected a string (key %s)", kv->val.type, ld->key);
    *s = kv->val.str;
    *len = kv->val.len;
    return LANES_OK;
}

/* s (len bytes from the file) as a C string in buf, cut to fit, control bytes shown as '?' so that
 * a log line stays one line. Returns buf. */
static char *printable(const char *s, size_t len, char *buf, size_t cap) {
    if (len > cap - 1) len = cap - 1;
    for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    buf[len] = 0;
    return buf;
}

static int str_is(const char *s, size_t len, const char *want) {
    return len == strlen(want) && memcmp(s, want, len) == 0;
}

/* The linear RoPE scaling of the rope.scaling.* keys (llama.cpp: freq_scale = 1 / factor, from
 * rope.scaling.factor, else the older rope.scale_linear; a factor 0 is none, and so is type
 * "none"), into *scale when the architecture takes it: gemma3's and gemma4's global layers
 * (cfg.rope_scale).
 * Elsewhere a factor other than 1 is refused, as Llama 3.1+ scaling lives in the rope_freqs tensor.
 * Other types (YaRN, ...) would change the forward pass in ways it does not implement, so they are
 * refused by name. */
static int read_rope_scaling(ld_t *ld, float *scale) {
    const char *type;
    size_t len;
    int rc = key_str(ld, "rope.scaling.type", &type, &len);
    if (rc < 0) return rc;
    char shown[64];
    int none = type && str_is(type, len, "none");
    if (type && !none && !str_is(type, len, "linear"))
        return fail(ld, "rope scaling type \"%s\" not supported (key %s)",
                    printable(type, len, shown, sizeof shown), ld->key);
    const char *key = find_key(ld, "rope.scaling.factor") ? "rope.scaling.factor"
                                                          : "rope.scale_linear";
    float f;
    if ((rc = key_float(ld, key, 1.0, -HUGE_VAL, HUGE_VAL, &f)) < 0) return rc;
    int gemma = ld->arch == ARCH_GEMMA3 || ld->arch == ARCH_GEMMA4;
    if (!gemma && f != 0.0f && f != 1.0f)
        return fail(ld, "rope scaling factor %g not supported (key %s)", f, ld->key);
    if (!(f >= 0.0f && f <= 1e6f))
        return fail(ld, "value %g out of range 0..1e+06 (key %s)", f, ld->key);
    if (gemma) *scale = none || f == 0.0f ? 1.0f : 1.0f / f;
    return LANES_OK;
}

/* An array key kv (ld->key) of one bool or integer per layer into flags: 1 where nonzero. */
static int layer_flags(ld_t *ld, const eng_gguf_kv_t *kv, int n_layers, uint8_t *flags) {
    uint32_t et = kv->val.elem_type;
    if (kv->val.type != ENG_GGUF_ARRAY)
        return fail(ld, "value type %u, expected an array of one bool or integer per layer (key "
                    "%s)", kv->val.type, ld->key);
    if (et != ENG_GGUF_BOOL && !is_int_type(et))
        return fail(ld, "an array of value type %u, expected one bool or integer per layer (key "
                    "%s)", et, ld->key);
    if (kv->val.count != (uint64_t)n_layers)
        return fail(ld, "%llu values, expected one per layer (block_count %d) (key %s)",
                    (unsigned long long)kv->val.count, n_layers, ld->key);
    size_t es = eng_gguf_value_size(et);
    const unsigned char *p = kv->val.data;
    for (int l = 0; l < n_layers; l++) {
        unsigned nz = 0;
        for (size_t i = 0; i < es; i++) nz |= p[(size_t)l * es + i];
        flags[l] = nz != 0;
    }
    return LANES_OK;
}

/* Gemma 3's and 4's sliding window (FAMILIES.md 3, 4): the window (attention.sliding_window,
 * required as in llama.cpp); which layers slide (attention.sliding_window_pattern: one bool or
 * integer per layer, nonzero sliding, as Gemma 4 writes it; or, on gemma3, a period n, layer l
 * sliding iff l % n < n - 1, llama.cpp's 6 when absent as in Gemma 3 files converted before the
 * key existed; gemma4 requires the key, and llama.cpp reads a scalar there as one bool for every
 * layer, so a scalar integer is refused); the local layers' RoPE base (rope.freq_base_swa,
 * llama.cpp's 10000 when absent), never scaled. A period 0, which llama.cpp reads as "every
 * layer", is refused: no Gemma file writes it. */
static int read_swa(ld_t *ld, eng_model_cfg_t *c) {
    int rc, n;
    if ((rc = key_int(ld, "attention.sliding_window", -1, 1, ENG_MAX_SEQ, &c->window)) < 0 ||
        (rc = key_float(ld, "rope.freq_base_swa", 10000.0, 1e-3, 1e12, &c->rope_base_swa)) < 0)
        return rc;
    c->rope_scale_swa = 1.0f;
    const eng_gguf_kv_t *kv = find_key(ld, "attention.sliding_window_pattern");
    if (ld->arch == ARCH_GEMMA4 && (kv == NULL || kv->val.type != ENG_GGUF_ARRAY)) {
        if (kv == NULL) return fail(ld, "required key missing (key %s)", ld->key);
        if (kv->val.type != ENG_GGUF_BOOL)
            return fail(ld, "value type %u, expected one bool per layer or one for all (key %s)",
                        kv->val.type, ld->key);
        memset(c->layer_swa, kv->val.num.u != 0, (size_t)c->n_layers);
        return LANES_OK;
    }
    if (kv == NULL || kv->val.type != ENG_GGUF_ARRAY) {
        if ((rc = key_int(ld, "attention.sliding_window_pattern", 6, 1, ENG_MAX_LAYERS, &n)) < 0)
            return rc;
        for (int l = 0; l < c->n_layers; l++) c->layer_swa[l] = l % n < n - 1;
        return LANES_OK;
    }
    return layer_flags(ld, kv, c->n_layers, c->layer_swa);
}

/* What gemma3 adds to the cfg besides its sliding window: the embedding scale sqrtf(dim) (in
 * float, as llama.cpp) and the final logit softcap (final_logit_softcapping, none when absent or
 * 0). Refused until the descriptor has it: the 62-layer (27B) query scale
 * 1 / sqrt(embedding_length / head_count) where that is not 1 / sqrt(key_length), the scale the
 * forward pass uses. */
static int read_gemma3(ld_t *ld, eng_model_cfg_t *c) {
    int rc = key_float(ld, "final_logit_softcapping", 0.0, 0.0, 1e9, &c->final_softcap);
    if (rc < 0) return rc;
    if (c->n_layers == 62 && c->dim / c->n_heads != c->head_dim)
        return fail(ld, "62 layers (Gemma 3 27B) scale queries by 1/sqrt(embedding_length / "
                    "head_count = %d), not 1/sqrt(key_length %d): not supported yet (key "
                    "gemma3.block_count)", c->dim / c->n_heads, c->head_dim);
    c->emb_scale = sqrtf((float)c->dim);
    return read_swa(ld, c);
}

/* Gemma 4's shared KV (attention.shared_kv_layers s, none when absent): as llama.cpp, layer
 * l >= n_layers - s computes no K and V and reads those of layer n_layers - s - 2 when it slides,
 * n_layers - s - 1 when it is global; that layer must exist and be of l's kind and KV head count
 * (llama.cpp would read a cache of another head size). */
static int read_shared_kv(ld_t *ld, eng_model_cfg_t *c) {
    int rc, shared;
    if ((rc = key_int(ld, "attention.shared_kv_layers", 0, 0, c->n_layers - 1, &shared)) < 0)
        return rc;
    int first = c->n_layers - shared;
    for (int l = first; l < c->n_layers; l++) {
        int src = first - (c->layer_swa[l] ? 2 : 1);
        const char *kind = c->layer_swa[l] ? "sliding" : "global";
        if (src < 0)
            return fail(ld, "%d shared layers: %s layer %d would reuse the KV of layer %d (key %s)",
                        shared, kind, l, src, ld->key);
        if (c->layer_swa[src] != c->layer_swa[l])
            return fail(ld, "%d shared layers: %s layer %d would reuse the KV of layer %d, which "
                        "is %s (key %s)", shared, kind, l, src,
                        c->layer_swa[src] ? "sliding" : "global", ld->key);
        if (eng_layer_kv_heads(c, src) != eng_layer_kv_heads(c, l))
            return fail(ld, "%d shared layers: layer %d of %d KV heads would reuse the KV of "
                        "layer %d, of %d (key %s)", shared, l, eng_layer_kv_heads(c, l), src,
                        eng_layer_kv_heads(c, src), ld->key);
        c->layer_kv_reuse[l] = (uint16_t)(l - src);
    }
    return LANES_OK;
}

/* What gemma4 adds (FAMILIES.md 4), each key as llama.cpp's gemma4 loader reads it: the sliding
 * window (read_swa); the sliding layers' heads (attention.key_length_swa = value_length_swa, both
 * required) and RoPE dims (rope.dimension_count_swa, by default the global layers' count); shared
 * KV (read_shared_kv); per-layer embeddings (embedding_length_per_layer_input, required, 0: none);
 * the final logit softcap (final_logit_softcapping; absent, llama.cpp's default 30, which gemma4
 * keeps; 0: none). Scores are not scaled; the embedding is, by sqrtf(dim). */
static int read_gemma4(ld_t *ld, eng_model_cfg_t *c) {
    int rc, k_swa, v_swa;
    if ((rc = read_swa(ld, c)) < 0 ||
        (rc = key_int(ld, "attention.key_length_swa", -1, 1, ENG_MAX_DIM, &k_swa)) < 0 ||
        (rc = key_int(ld, "attention.value_length_swa", -1, 1, ENG_MAX_DIM, &v_swa)) < 0)
        return rc;
    if (k_swa != v_swa)
        return fail(ld, "key_length_swa %d != value_length_swa %d (Gemma 4 requires them equal) "
                    "(key %s)", k_swa, v_swa, ld->key);
    if ((uint64_t)k_swa * (uint64_t)c->n_heads > ENG_MAX_DIM)
        return fail(ld, "head_count %d x key_length_swa %d too large (key %s)", c->n_heads, k_swa,
                    ld->key);
    c->head_dim_swa = k_swa;
    if ((rc = key_int(ld, "rope.dimension_count_swa", c->rope_dim, 0, ENG_MAX_DIM,
                      &c->rope_dim_swa)) < 0)
        return rc;
    if (c->rope_dim_swa < 2 || c->rope_dim_swa > k_swa || c->rope_dim_swa % 2 != 0)
        return fail(ld, "%d RoPE dims on sliding layers (by default rope.dimension_count), "
                    "expected an even number in 2..key_length_swa %d (key %s)", c->rope_dim_swa,
                    k_swa, ld->key);
    if ((rc = read_shared_kv(ld, c)) < 0 ||
        (rc = key_int(ld, "embedding_length_per_layer_input", -1, 0, ENG_MAX_DIM,
                      &c->ple_dim)) < 0)
        return rc;
    if ((uint64_t)c->ple_dim * (uint64_t)c->n_layers > ENG_MAX_DIM)
        return fail(ld, "%d per-layer embedding values x %d layers too many (key %s)", c->ple_dim,
                    c->n_layers, ld->key);
    if ((rc = key_float(ld, "final_logit_softcapping", 30.0, 0.0, 1e9, &c->final_softcap)) < 0)
        return rc;
    c->attn_scale = 1.0f;
    c->emb_scale = sqrtf((float)c->dim);
    return LANES_OK;
}

/* Qwen3.5's multi-axis RoPE (IMROPE) on text: positions (p, p, p, 0) on the t, h, w and e
 * streams, pair i of the rope_dim / 2 taking its stream from sector i % (sum of the sections):
 * sector s is h when s % 3 == 1 and s < 3 sections[1], w when s % 3 == 2 and s < 3 sections[2], t
 * when s % 3 == 0 and s < 3 sections[0], else e (ggml's ggml_mrope_cache_init). The angles step
 * by base^(-2 / rope_dim) per pair whatever the stream, so when no rotated pair lands on e this
 * is NEOX RoPE on rope_dim dims (FAMILIES.md 5), what the forward pass does; other sections
 * would rotate some pairs by position 0, and are refused. */
static int read_mrope_sections(ld_t *ld, const eng_model_cfg_t *c) {
    const eng_gguf_kv_t *kv = find_key(ld, "rope.dimension_sections");
    if (kv == NULL) return fail(ld, "required key missing (key %s)", ld->key);
    if (kv->val.type != ENG_GGUF_ARRAY || !is_int_type(kv->val.elem_type) || kv->val.count != 4)
        return fail(ld, "expected an array of 4 integers (key %s)", ld->key);
    int64_t sec[4], sum = 0;
    for (int i = 0; i < 4; i++) {
        sec[i] = arr_int(&kv->val, (uint64_t)i);
        if (sec[i] < 0 || sec[i] > c->head_dim)
            return fail(ld, "section %d out of range 0..%d (key %s)", i, c->head_dim, ld->key);
        sum += sec[i];
    }
    if (sum < 1 || sum > c->head_dim)
        return fail(ld, "sections sum to %lld, expected 1..%d (key_length) (key %s)",
                    (long long)sum, c->head_dim, ld->key);
    for (int i = 0; i < c->rope_dim / 2; i++) {
        int64_t s = i % sum;
        int thw = (s % 3 == 1 && s < 3 * sec[1]) || (s % 3 == 2 && s < 3 * sec[2]) ||
                  (s % 3 == 0 && s < 3 * sec[0]);
        if (!thw)
            return fail(ld, "sections [%lld, %lld, %lld, %lld] give RoPE pair %d (of %d) the "
                        "fourth position stream, not text positions: only sections that make it "
                        "plain NEOX RoPE are supported (key %s)", (long long)sec[0],
                        (long long)sec[1], (long long)sec[2], (long long)sec[3], i,
                        c->rope_dim / 2, ld->key);
    }
    return LANES_OK;
}

/* What qwen35 adds to the cfg (FAMILIES.md 5): the delta-net shape from the ssm.* keys, checked
 * against each other (H value heads a multiple of K key heads, inner_size H d), and which layers
 * are delta nets: an attention.recurrent_layers array (one bool or integer per layer, nonzero
 * recurrent) when present, else full_attention_interval n, layer l a delta net iff
 * (l + 1) % n != 0. */
static int read_qwen35(ld_t *ld, eng_model_cfg_t *c) {
    int rc, inner, n;
    if ((rc = read_mrope_sections(ld, c)) < 0 ||
        (rc = key_int(ld, "ssm.conv_kernel", -1, 1, 64, &c->ssm_conv_kernel)) < 0 ||
        (rc = key_int(ld, "ssm.state_size", -1, 1, ENG_MAX_DIM, &c->ssm_head_dim)) < 0 ||
        (rc = key_int(ld, "ssm.group_count", -1, 1, ENG_MAX_DIM, &c->ssm_k_heads)) < 0 ||
        (rc = key_int(ld, "ssm.time_step_rank", -1, 1, ENG_MAX_DIM, &c->ssm_v_heads)) < 0 ||
        (rc = key_int(ld, "ssm.inner_size", -1, 1, ENG_MAX_DIM, &inner)) < 0)
        return rc;
    if (c->ssm_v_heads % c->ssm_k_heads != 0)
        return fail(ld, "time_step_rank (value heads) %d is not a multiple of group_count (key "
                    "heads) %d (key qwen35.ssm.time_step_rank)", c->ssm_v_heads, c->ssm_k_heads);
    uint64_t hd = (uint64_t)c->ssm_v_heads * (uint64_t)c->ssm_head_dim;
    if (hd != (uint64_t)inner)
        return fail(ld, "inner_size %d, expected time_step_rank %d x state_size %d (key %s)",
                    inner, c->ssm_v_heads, c->ssm_head_dim, ld->key);
    if (2 * (uint64_t)c->ssm_k_heads * (uint64_t)c->ssm_head_dim + hd > ENG_MAX_DIM)
        return fail(ld, "delta-net channels 2 x %d x %d + %d too many (key %s)", c->ssm_k_heads,
                    c->ssm_head_dim, inner, ld->key);
    const eng_gguf_kv_t *kv = find_key(ld, "attention.recurrent_layers");
    if (kv != NULL) {
        if ((rc = layer_flags(ld, kv, c->n_layers, c->layer_kind)) < 0) return rc;
        for (int l = 0; l < c->n_layers; l++)
            c->layer_kind[l] = c->layer_kind[l] ? ENG_LAYER_DNET : ENG_LAYER_ATTN;
        return LANES_OK;
    }
    if ((rc = key_int(ld, "full_attention_interval", -1, 1, ENG_MAX_LAYERS, &n)) < 0) return rc;
    for (int l = 0; l < c->n_layers; l++)
        c->layer_kind[l] = (l + 1) % n != 0 ? ENG_LAYER_DNET : ENG_LAYER_ATTN;
    return LANES_OK;
}

/* The cfg from the <arch>.* keys; vocab_size comes from token_embd, later. gemma4's FFN widths
 * and KV head counts may be one per layer (layer_hidden, layer_kv_heads; hidden_dim and
 * n_kv_heads then the largest); its query head count is every layer's. */
static int read_cfg(ld_t *ld, eng_model_cfg_t *c) {
    int rc, kv_len, v_len, heads[ENG_MAX_LAYERS], kv_heads[ENG_MAX_LAYERS] = {0};
    int hidden[ENG_MAX_LAYERS] = {0};
    c->arch = archs[ld->arch];
    if ((rc = key_int(ld, "block_count", -1, 1, ENG_MAX_LAYERS, &c->n_layers)) < 0 ||
        (rc = key_int(ld, "embedding_length", -1, 1, ENG_MAX_DIM, &c->dim)) < 0 ||
        (rc = key_int_layers(ld, "feed_forward_length", -1, 1, ENG_MAX_DIM, c->n_layers,
                             &c->hidden_dim, hidden)) < 0 ||
        (rc = key_int(ld, "context_length", -1, 1, ENG_MAX_SEQ, &c->seq_len)) < 0)
        return rc;
    for (int l = 0; l < c->n_layers; l++) heads[l] = -1;
    if ((rc = key_int_layers(ld, "attention.head_count", -1, 1, ENG_MAX_DIM, c->n_layers,
                             &c->n_heads, heads)) < 0)
        return rc;
    for (int l = 0; l < c->n_layers; l++)
        if (heads[l] >= 0 && heads[l] != c->n_heads)
            return fail(ld, "layer %d has %d heads, the largest layer %d: per-layer head "
                        "counts not supported (key %s)", l, heads[l], c->n_heads, ld->key);
    if ((rc = key_int_layers(ld, "attention.head_count_kv", c->n_heads, 1, c->n_heads,
                             c->n_layers, &c->n_kv_heads, kv_heads)) < 0)
        return rc;
    for (int l = 0; l < c->n_layers; l++) {
        int kvh = kv_heads[l] ? kv_heads[l] : c->n_kv_heads;
        if (c->n_heads % kvh != 0 && kv_heads[l])
            return fail(ld, "head_count %d is not a multiple of layer %d's head_count_kv %d (key "
                        "%s)", c->n_heads, l, kvh, ld->key);
        if (c->n_heads % kvh != 0)
            return fail(ld, "head_count %d is not a multiple of head_count_kv %d (key %s)",
                        c->n_heads, kvh, ld->key);
        c->layer_kv_heads[l] = (uint16_t)kv_heads[l];
        c->layer_hidden[l] = hidden[l];
    }
    /* As llama.cpp: a head is embedding_length / head_count unless the file says otherwise. */
    int def_head = c->dim % c->n_heads == 0 ? c->dim / c->n_heads : -1;
    if (def_head < 0 && (!find_key(ld, "attention.key_length") ||
                         !find_key(ld, "attention.value_length")))
        return fail(ld, "embedding_length %d is not a multiple of head_count %d, and no %s",
                    c->dim, c->n_heads, ld->key);
    if ((rc = key_int(ld, "attention.key_length", def_head, 1, ENG_MAX_DIM, &kv_len)) < 0 ||
        (rc = key_int(ld, "attention.value_length", def_head, 1, ENG_MAX_DIM, &v_len)) < 0)
        return rc;
    if (kv_len != v_len)
        return fail(ld, "key_length %d != value_length %d: not supported (key %s)", kv_len, v_len,
                    ld->key);
    c->head_dim = kv_len;
    if ((uint64_t)c->head_dim * (uint64_t)c->n_heads > ENG_MAX_DIM)
        return fail(ld, "head_count %d x key_length %d too large (key %s)", c->n_heads,
                    c->head_dim, ld->key);
    if (c->arch.rope == ENG_ROPE_NONE) {
        c->rope_dim = 0;
        c->rope_base = 10000.0f;
    } else {
        if ((rc = key_int(ld, "rope.dimension_count", c->head_dim, 2, c->head_dim,
                          &c->rope_dim)) < 0)
            return rc;
        if (c->rope_dim % 2 != 0)
            return fail(ld, "value %d is odd (RoPE rotates pairs) (key %s)", c->rope_dim, ld->key);
        if ((rc = key_float(ld, "rope.freq_base", 10000.0, 1e-3, 1e12, &c->rope_base)) < 0 ||
            (rc = read_rope_scaling(ld, &c->rope_scale)) < 0)
            return rc;
    }
    const char *eps = c->arch.norm == ENG_NORM_RMS ? "attention.layer_norm_rms_epsilon"
                                                   : "attention.layer_norm_epsilon";
    if ((rc = key_float(ld, eps, NAN, 1e-12, 0.1, &c->norm_eps)) < 0) return rc;
    if (ld->arch == ARCH_GEMMA3) return read_gemma3(ld, c);
    if (ld->arch == ARCH_GEMMA4) return read_gemma4(ld, c);
    return ld->arch == ARCH_QWEN35 ? read_qwen35(ld, c) : LANES_OK;
}

/* vocab_size: token_embd's rows, which the tokenizer and <arch>.vocab_size must agree with. */
static int read_vocab(ld_t *ld, eng_model_cfg_t *c) {
    const eng_gguf_tensor_t *t = eng_gguf_tensor_find(ld->g, "token_embd.weight");
    if (t == NULL) return fail(ld, "missing (tensor token_embd.weight)");
    if (t->n_dims != 2)
        return fail(ld, "%u dimensions, expected 2 (tensor token_embd.weight)", t->n_dims);
    if (t->dims[1] < 1 || t->dims[1] > ENG_MAX_VOCAB)
        return fail(ld, "%llu rows (the vocabulary), expected 1..%d (tensor token_embd.weight)",
                    (unsigned long long)t->dims[1], ENG_MAX_VOCAB);
    c->vocab_size = (int)t->dims[1];
    int rc, v;
    if ((rc = key_int(ld, "vocab_size", c->vocab_size, 1, ENG_MAX_VOCAB, &v)) < 0) return rc;
    if (v != c->vocab_size)
        return fail(ld, "vocab_size %d, but token_embd.weight has %d rows (key %s)", v,
                    c->vocab_size, ld->key);
    const eng_gguf_kv_t *kv = find_key(ld, "tokenizer.ggml.tokens");
    if (kv != NULL && (kv->val.type != ENG_GGUF_ARRAY || kv->val.elem_type != ENG_GGUF_STRING))
        return fail(ld, "expected an array of strings (key %s)", ld->key);
    if (kv != NULL && kv->val.count != (uint64_t)c->vocab_size)
        return fail(ld, "%llu tokens, but token_embd.weight has %d rows (key %s)",
                    (unsigned long long)kv->val.count, c->vocab_size, ld->key);
    return LANES_OK;
}

/* The ggml numbering of weight types is model.h's: any type it names a block for is supported. */
static int is_weight_type(uint32_t t) { return t <= ENG_WT_BF16 && eng_wtype_block((int)t) != 0; }

/* Points dst (an eng_mat_t, or a const float * for a vector) at tensor t of role r, after checking
 * its shape and alignment; 16-bit vectors are converted into ld->vec_next. */
static int bind(ld_t *ld, const eng_gguf_tensor_t *t, const role_t *r, void *dst) {
    const char *name = t->name;
    int nm = (int)t->name_len;
    uint32_t want_dims = r->cols == N_NONE ? 1 : 2;
    if (t->n_dims != want_dims)
        return fail(ld, "%u dimensions, expected %u (tensor %.*s)", t->n_dims, want_dims, nm, name);
    uint64_t cols = r->cols == N_NONE ? ld->n[r->rows] : ld->n[r->cols], rows = ld->n[r->rows];
    if (t->dims[0] != cols || (want_dims == 2 && t->dims[1] != rows)) {
        if (want_dims == 1)
            return fail(ld, "shape [%llu], expected [%llu] (tensor %.*s)",
                        (unsigned long long)t->dims[0], (unsigned long long)cols, nm, name);
        return fail(ld, "shape [%llu, %llu], expected [%llu, %llu] (ggml order: columns, rows) "
                    "(tensor %.*s)", (unsigned long long)t->dims[0],
                    (unsigned long long)t->dims[1], (unsigned long long)cols,
                    (unsigned long long)rows, nm, name);
    }
    /* general.alignment may be 1 or 2. Blocks are an even number of bytes with their fp16 scales
     * at even offsets, so 2-byte alignment lets kernels load those as uint16. */
    size_t es = eng_wtype_size((int)t->type);
    if ((uintptr_t)t->data % (es ? es : 2) != 0)
        return fail(ld, "data not aligned to its %zu-byte %s (tensor %.*s)", es ? es : 2,
                    es ? "elements" : "block scales", nm, name);
    if (r->cols == N_SSM_KERNEL) {
        if (t->type != ENG_GGML_F32)
            return fail(ld, "weight type %s, expected F32 (ggml computes with it in F32 only) "
                        "(tensor %.*s)", eng_gguf_type_name(t->type), nm, name);
        *(const float **)dst = t->data;
        return LANES_OK;
    }
    if (want_dims == 2) {
        *(eng_mat_t *)dst = (eng_mat_t){t->data, (int)t->type, (int)rows, (int)cols};
        return LANES_OK;
    }
    const float *v = t->data;
    if (t->type != ENG_GGML_F32) {
        float *out = ld->vec_next;   /* F16 or BF16: quantized vectors were refused above */
        eng_wtype_row_to_f32((int)t->type, out, t->data, (int)cols);
        ld->vec_next += cols;
        v = out;
    }
    *(const float **)dst = v;
    return LANES_OK;
}

/* Splits attn_qkv (rows q, then k, then v) into row views, its bias likewise. */
static void split_fused(const ld_t *ld, eng_layer_t *l, const eng_mat_t *qkv, const float *b) {
    int q = (int)ld->n[N_Q], kv = (int)ld->n[N_KV];
    if (qkv) {
        size_t row = eng_wtype_row_bytes(qkv->type, qkv->cols);
        const char *p = qkv->data;
        l->wq = (eng_mat_t){p, qkv->type, q, qkv->cols};
        l->wk = (eng_mat_t){p + (size_t)q * row, qkv->type, kv, qkv->cols};
        l->wv = (eng_mat_t){p + (size_t)(q + kv) * row, qkv->type, kv, qkv->cols};
    }
    if (b) {
        l->bq = b;
        l->bk = b + q;
        l->bv = b + q + kv;
    }
}

/* Role r's need letter on layer (-1: a global role) of the file's architecture: R, O, -, or I
 * (optional, its shape checked, not bound: a shared-KV layer's own K and V, which llama.cpp
 * loads and never uses). */
static char need_of(const ld_t *ld, const role_t *r, int layer) {
    const eng_model_cfg_t *c = ld->cfg;
    char need = r->need[ld->arch];
    int own_kv = layer >= 0 && c->layer_kv_reuse[layer] == 0, global = 0;
    switch (need) {
    case 'A':
    case 'D': return (need == 'D') == (layer >= 0 && c->layer_kind[layer] == ENG_LAYER_DNET)
                     ? 'R' : '-';
    case 'K': return own_kv ? 'R' : 'I';
    case 'V': return own_kv ? 'O' : 'I';
    case 'P': return c->ple_dim > 0 ? 'R' : '-';
    case 'G':
        for (int l = 0; l < c->n_layers; l++) global |= !c->layer_swa[l];
        return global ? 'R' : '-';
    default: return need;
    }
}

/* Whether r's name is part of the architecture on this layer through any role of roles: 'R'
 * yes, 'K' only on the other kind of layer, '-' no. */
static char name_role(const ld_t *ld, const role_t *roles, size_t n, const role_t *r, int layer) {
    char found = '-';
    for (size_t i = 0; i < n; i++) {
        if (strcmp(roles[i].name, r->name) != 0) continue;
        if (need_of(ld, &roles[i], layer) != '-') return 'R';
        if (strchr("AD", roles[i].need[ld->arch])) found = 'K';
    }
    return found;
}

/* Binds every role of roles (prefixed "blk.layer." when layer >= 0) into base. */
static int bind_roles(ld_t *ld, const role_t *roles, size_t n, int layer, void *base) {
    for (size_t i = 0; i < n; i++) {
        const role_t *r = &roles[i];
        char name[96];
        if (layer >= 0) snprintf(name, sizeof name, "blk.%d.%s", layer, r->name);
        else snprintf(name, sizeof name, "%s", r->name);
        const eng_gguf_tensor_t *t = eng_gguf_tensor_find(ld->g, name);
        char need = need_of(ld, r, layer);
        if (t == NULL) {
            if (need == 'R') return fail(ld, "missing (tensor %s)", name);
            continue;
        }
        char named = need == '-' ? name_role(ld, roles, n, r, layer) : 'R';
        if (named == 'R' && need == '-') continue;   /* another role of this name binds it */
        if (named == 'K')
            return fail(ld, "not part of a %s %s layer (tensor %s)", archs[ld->arch].name,
                        ld->cfg->layer_kind[layer] == ENG_LAYER_DNET ? "delta-net" : "attention",
                        name);
        if (named == '-')
            return fail(ld, "not part of the %s architecture (tensor %s)", archs[ld->arch].name,
                        name);
        eng_mat_t mat = {0};
        const float *vec = NULL;
        int local = r->off == FUSED || need == 'I';
        void *dst = !local ? (char *)base + r->off : r->cols ? (void *)&mat : (void *)&vec;
        int rc = bind(ld, t, r, dst);
        if (rc < 0) return rc;
        if (r->off == FUSED) split_fused(ld, base, r->cols ? &mat : NULL, r->cols ? NULL : vec);
    }
    return LANES_OK;
}

/* Whether tensor t is a role of this architecture (bind_roles found every such one). */
static int is_known(const ld_t *ld, const eng_gguf_tensor_t *t, int n_layers) {
    char name[96];
    for (size_t i = 0; i < N_ELEMS(global_roles); i++)
        if (need_of(ld, &global_roles[i], -1) != '-' &&
            str_is(t->name, t->name_len, global_roles[i].name))
            return 1;
    if (t->name_len < 5 || memcmp(t->name, "blk.", 4) != 0) return 0;
    int layer = 0;
    for (size_t i = 4; i < t->name_len && i < 9 && t->name[i] >= '0' && t->name[i] <= '9'; i++)
        layer = layer * 10 + (t->name[i] - '0');
    if (layer >= n_layers) return 0;
    for (size_t i = 0; i < N_ELEMS(layer_roles); i++) {
        if (need_of(ld, &layer_roles[i], layer) == '-') continue;
        snprintf(name, sizeof name, "blk.%d.%s", layer, layer_roles[i].name);
        if (str_is(t->name, t->name_len, name)) return 1;
    }
    return 0;
}

/* Whether t is one of a mixture-of-experts layer's tensors (llama.cpp's gemma4 MoE: the router,
 * the experts, their norms). */
static int is_moe(const eng_gguf_tensor_t *t) {
    static const char *const parts[] = {".ffn_gate_inp.", "_exps.", ".pre_ffw_norm_2.",
                                        ".post_ffw_norm_1.", ".post_ffw_norm_2."};
    char name[128];
    if (t->name_len >= sizeof name) return 0;
    memcpy(name, t->name, t->name_len);
    name[t->name_len] = 0;
    for (size_t i = 0; i < N_ELEMS(parts); i++)
        if (strstr(name, parts[i])) return 1;
    return 0;
}

/* The per-layer symbolic dims of layer l (its head dim, KV heads and FFN width). */
static void set_layer_dims(ld_t *ld, const eng_model_cfg_t *c, int l) {
    uint64_t hd = (uint64_t)eng_layer_head_dim(c, l);
    uint64_t q = (uint64_t)c->n_heads * hd, kv = (uint64_t)eng_layer_kv_heads(c, l) * hd;
    ld->n[N_HEAD] = hd;
    ld->n[N_Q] = q;
    ld->n[N_QG] = c->arch.attn_gate ? 2 * q : q;
    ld->n[N_KV] = kv;
    ld->n[N_QKV] = q + 2 * kv;
    ld->n[N_HIDDEN] = (uint64_t)eng_layer_hidden(c, l);
}

static int find_arch(ld_t *ld) {
    const char *s;
    size_t len;
    int rc = key_str(ld, "general.architecture", &s, &len);
    if (rc < 0) return rc;
    if (s == NULL) return fail(ld, "required key missing (key general.architecture)");
    for (int a = 0; a < N_ARCH; a++)
        if (str_is(s, len, archs[a].name)) {
            ld->arch = a;
            return LANES_OK;
        }
    char shown[64];
    return fail(ld, "architecture \"%s\" not supported (llama, qwen2, qwen3, gpt2, gemma3, "
                "qwen35, gemma4 are) (key general.architecture)",
                printable(s, len, shown, sizeof shown));
}

/* general.name, else the file's name. */
static int set_name(ld_t *ld, eng_model_t *m) {
    const char *s;
    size_t len;
    int rc = key_str(ld, "general.name", &s, &len);
    if (rc < 0) return rc;
    if (s == NULL || len == 0) {
        const char *slash = strrchr(ld->path, '/');
        s = slash ? slash + 1 : ld->path;
        len = strlen(s);
    }
    printable(s, len, m->name, sizeof m->name);
    return LANES_OK;
}

static int load(ld_t *ld, eng_model_t **out) {
    eng_gguf_t *g = ld->g;
    eng_model_cfg_t c = {0};
    char shown[128];
    int rc;
    if ((rc = find_arch(ld)) < 0) return rc;
    size_t nt = eng_gguf_tensor_count(g), vec_floats = 0;
    for (size_t i = 0; i < nt; i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(g, i);
        const char *tn = eng_gguf_type_name(t->type);
        if (!is_weight_type(t->type))
            return fail(ld, "weight type %s not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K "
                        "are) (tensor %s)", tn ? tn : "?",
                        printable(t->name, t->name_len, shown, sizeof shown));
        /* ggml keeps norms and biases in float types; a quantized one would need its own path */
        if (t->n_dims == 1 && eng_wtype_block((int)t->type) != 1)
            return fail(ld, "weight type %s not supported for a vector (F32, F16, BF16 are) "
                        "(tensor %s)", tn, printable(t->name, t->name_len, shown, sizeof shown));
        if (t->n_dims == 1 && t->type != ENG_GGML_F32) vec_floats += t->dims[0];
    }
    if ((rc = read_cfg(ld, &c)) < 0 || (rc = read_vocab(ld, &c)) < 0) return rc;
    const char *why = eng__model_check_cfg(&c);
    if (why) return fail(ld, "%s", why);
    /* gemma4's rope_freqs is a global head's pairs long (llama.cpp: n_embd_head / 2), whatever
     * the RoPE dims; llama 3.1's is rope_dim / 2 = head_dim / 2. */
    int gemma4 = ld->arch == ARCH_GEMMA4, freqs = (gemma4 ? c.head_dim : c.rope_dim) / 2;
    uint64_t sd = (uint64_t)c.ssm_head_dim, inner = (uint64_t)c.ssm_v_heads * sd;
    uint64_t n[N_COUNT] = {[N_DIM] = c.dim, [N_VOCAB] = c.vocab_size, [N_CTX] = c.seq_len,
                           [N_ROPE_PAIRS] = (uint64_t)freqs,
                           [N_SSM_C] = 2 * (uint64_t)c.ssm_k_heads * sd + inner,
                           [N_SSM_INNER] = inner, [N_SSM_H] = (uint64_t)c.ssm_v_heads,
                           [N_SSM_D] = sd, [N_SSM_KERNEL] = (uint64_t)c.ssm_conv_kernel,
                           [N_PLE] = (uint64_t)c.ple_dim,
                           [N_PLE_ALL] = (uint64_t)c.ple_dim * (uint64_t)c.n_layers, [N_ONE] = 1};
    memcpy(ld->n, n, sizeof n);

    eng_model_t *m = eng__model_alloc(c.n_layers);
    if (m == NULL) return LANES_ENOMEM;
    m->cfg = c;
    ld->cfg = &m->cfg;
    if (vec_floats && (m->vecs = malloc(vec_floats * sizeof *m->vecs)) == NULL) {
        eng_model_destroy(m);
        return LANES_ENOMEM;
    }
    ld->vec_next = m->vecs;
    rc = bind_roles(ld, global_roles, N_ELEMS(global_roles), -1, &m->w);
    for (int l = 0; rc == LANES_OK && l < c.n_layers; l++) {
        eng_layer_t *ly = &m->layers[l];
        set_layer_dims(ld, &c, l);
        rc = bind_roles(ld, layer_roles, N_ELEMS(layer_roles), l, ly);
        if (gemma4 && c.layer_kv_reuse[l] == 0 && ly->wv.data == NULL) ly->wv = ly->wk; /* V=K */
    }
    for (size_t i = 0; rc == LANES_OK && i < nt; i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(g, i);
        if (is_known(ld, t, c.n_layers)) continue;
        printable(t->name, t->name_len, shown, sizeof shown);
        if (gemma4 && is_moe(t))
            rc = fail(ld, "a mixture-of-experts layer (Gemma 4 26B-A4B): not supported (tensor "
                      "%s)", shown);
        else
            rc = fail(ld, "unexpected tensor for the %s architecture with %d layers (tensor %s)",
                      c.arch.name, c.n_layers, shown);
    }
    for (int i = 0; rc == LANES_OK && m->w.rope_freqs && i < freqs; i++)
        if (!(m->w.rope_freqs[i] > 0.0f && isfinite(m->w.rope_freqs[i])))
            rc = fail(ld, "value %g at %d is not a positive frequency divisor (tensor "
                      "rope_freqs.weight)", m->w.rope_freqs[i], i);
    if (rc == LANES_OK) rc = set_name(ld, m);
    if (rc < 0) {
        eng_model_destroy(m);
        return rc;
    }
    m->w.layers = m->layers;
    if (m->w.cls.data == NULL) {
        m->w.cls = m->w.tok_emb;
        m->cfg.shared_cls = 1;
    }
    /* The type of most matrix bytes names the model's weights ("F16" with F32 norms). */
    uint64_t by_type[ENG_WT_BF16 + 1] = {0};
    for (size_t i = 0; i < nt; i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(g, i);
        m->weight_bytes += t->bytes;
        if (t->n_dims == 2) by_type[t->type] += t->bytes;
    }
    m->wtype = ENG_WT_F32;
    for (int t = 1; t <= ENG_WT_BF16; t++)
        if (by_type[t] > by_type[m->wtype]) m->wtype = t;
    *out = m;
    return LANES_OK;
}

int eng__model_load_gguf(const char *path, eng_model_t **out) {
    ld_t ld = {.path = path};
    int rc = eng_gguf_open(path, &ld.g);
    if (rc < 0) return rc;
    eng_model_t *m = NULL;
    if ((rc = load(&ld, &m)) < 0) {
        eng_gguf_close(ld.g);
        return rc;
    }
    m->gguf = ld.g;   /* the weights point into its mapping */
    *out = m;
    return LANES_OK;
}
