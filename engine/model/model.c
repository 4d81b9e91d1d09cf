#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "base/lanes_rand.h"
#include "kern/half.h"
#include "kern/quant.h"
#include "dnet.h"
#include "model/gguf.h"
#include "model_int.h"

const eng_arch_t eng_arch_llama = {.name = "llama", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_PAIRS,
                                   .ffn = ENG_FFN_SWIGLU};

const char *eng_wtype_name(int type) {
    switch (type) {
    case ENG_WT_F32: return "F32";
    case ENG_WT_F16: return "F16";
    case ENG_WT_BF16: return "BF16";
    case ENG_WT_Q4_0: return "Q4_0";
    case ENG_WT_Q8_0: return "Q8_0";
    case ENG_WT_Q4_K: return "Q4_K";
    case ENG_WT_Q6_K: return "Q6_K";
    default: return NULL;
    }
}

int eng_wtype_by_name(const char *name) {
    static const int types[] = {ENG_WT_F32,  ENG_WT_F16,  ENG_WT_BF16, ENG_WT_Q4_0,
                                ENG_WT_Q8_0, ENG_WT_Q4_K, ENG_WT_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (strcasecmp(name, eng_wtype_name(types[i])) == 0) return types[i];
    return LANES_EINVAL;
}

size_t eng_wtype_size(int type) {
    return type == ENG_WT_F32 ? 4 : type == ENG_WT_F16 || type == ENG_WT_BF16 ? 2 : 0;
}

int eng_wtype_block(int type) {
    if (eng_wtype_size(type)) return 1;
    return eng_quant_block_bytes(type) ? eng_quant_block_values(type) : 0;
}

size_t eng_wtype_row_bytes(int type, int cols) {
    int block = eng_wtype_block(type);
    if (block == 0 || cols < 0 || cols % block != 0) return 0;
    size_t unit = block == 1 ? eng_wtype_size(type) : eng_quant_block_bytes(type);
    return (size_t)(cols / block) * unit;
}

int eng_wtype_row_to_f32(int type, float *y, const void *row, int n) {
    if (n < 0 || eng_wtype_row_bytes(type, n) == 0) return LANES_EINVAL;
    const uint16_t *h = row;
    if (type == ENG_WT_F32) memcpy(y, row, (size_t)n * sizeof *y);
    else if (type == ENG_WT_F16) for (int i = 0; i < n; i++) y[i] = eng_f16_to_f32(h[i]);
    else if (type == ENG_WT_BF16) for (int i = 0; i < n; i++) y[i] = eng_bf16_to_f32(h[i]);
    else eng_dequant_row(type, y, row, n);
    return LANES_OK;
}

int eng_wtype_row_from_f32(int type, void *row, const float *x, int n) {
    if (n < 0 || eng_wtype_row_bytes(type, n) == 0) return LANES_EINVAL;
    if (type == ENG_WT_F32) memcpy(row, x, (size_t)n * sizeof *x);
    else if (type == ENG_WT_F16) eng_gguf_f32_to_f16(row, x, (size_t)n);
    else if (type == ENG_WT_BF16) eng_gguf_f32_to_bf16(row, x, (size_t)n);
    else return eng_quant_row(type, row, x, n);
    return LANES_OK;
}

int eng_wtype_file_type(int type) {
    switch (type) {
    case ENG_WT_F32: return 0;
    case ENG_WT_F16: return 1;
    case ENG_WT_BF16: return 32;
    case ENG_WT_Q8_0: return 7;
    case ENG_WT_Q4_0: return 2;
    case ENG_WT_Q4_K: return 14;
    case ENG_WT_Q6_K: return 18;
    default: return -1;
    }
}

int eng_wtype_fallback(int type, int cols) {
    if (eng_wtype_row_bytes(type, cols)) return type;
    if (eng_wtype_block(type) == 256 && eng_wtype_row_bytes(ENG_WT_Q8_0, cols)) return ENG_WT_Q8_0;
    return ENG_WT_F16;
}

/* The architectures a synthetic preset can take: each like the real family in what its forward
 * pass does (biases, RoPE mode, QK norm, norms, activation, positions, classifier). gemma3 also
 * has Gemma 3's layer pattern (swa_period 6: five sliding layers, then a global one; a shape of
 * fewer layers, tiny, takes its layer count as the period, so that its last layer is global), its
 * RoPE (base 1e4 on sliding layers, 1e6 scaled linearly by 1/8 on global ones, as Gemma 3 4B-27B),
 * the embedding scale sqrtf(dim) and a longer context than the shape's, ctx, for the window to
 * matter in. qwen35 has Qwen3.5's pattern (dnet_interval 4: layer l a delta net iff (l + 1) % 4
 * != 0, three to one; tiny, of 2 layers, takes 2, so that it has an attention layer), NEOX RoPE on
 * a quarter of each head (rope_div 4) with base 1e7, the gated query, and delta nets of n_heads / 2
 * key heads and n_heads value heads of the shape's head_dim (value channels = dim, twice as many
 * value heads as key heads as Qwen3-Next's 16 : 32), a 4-tap convolution, context 4096. gemma4 has
 * Gemma 4 E2B's pattern (swa_period 5: four sliding layers, then a full one; tiny takes the four
 * layers of gemma4-style.f32.gguf, sliding and full in turn) and the rest of its shape
 * (gemma4_plan()). */
static const struct {
    const char *suffix;
    eng_arch_t arch;
    int untied, mha, wide_heads;    /* own classifier; kv heads = heads; head_dim 2 dim / heads */
    float rope_base, norm_eps;
    int swa_period, ctx;            /* 0: no sliding layers; the shape's seq_len */
    float rope_base_swa, rope_scale;
    int dnet_interval, rope_div;    /* 0: no delta nets; RoPE on head_dim / rope_div (0: all) */
    int gemma4;                     /* gemma4_plan() */
} synth_archs[] = {
    {.suffix = "llama", .untied = 1, .rope_base = 5e5f, .norm_eps = 1e-5f,
     .arch = {.name = "llama", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_PAIRS,
              .ffn = ENG_FFN_SWIGLU}},
    {.suffix = "qwen2", .rope_base = 1e6f, .norm_eps = 1e-6f,
     .arch = {.name = "qwen2", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX,
              .ffn = ENG_FFN_SWIGLU}},
    {.suffix = "qwen3", .wide_heads = 1, .rope_base = 1e6f, .norm_eps = 1e-6f,
     .arch = {.name = "qwen3", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX,
              .ffn = ENG_FFN_SWIGLU, .qk_norm = 1}},
    {.suffix = "gpt2", .untied = 1, .mha = 1, .rope_base = 1e4f, .norm_eps = 1e-5f,
     .arch = {.name = "gpt2", .norm = ENG_NORM_LAYER, .rope = ENG_ROPE_NONE, .ffn = ENG_FFN_GELU,
              .pos_embd = 1}},
    {.suffix = "gemma3", .rope_base = 1e6f, .norm_eps = 1e-6f, .swa_period = 6, .ctx = 4096,
     .rope_base_swa = 1e4f, .rope_scale = 0.125f,
     .arch = {.name = "gemma3", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX, .ffn = ENG_FFN_GEGLU,
              .qk_norm = 1, .post_norms = 1}},
    {.suffix = "qwen35", .rope_base = 1e7f, .norm_eps = 1e-6f, .ctx = 4096, .dnet_interval = 4,
     .rope_div = 4,
     .arch = {.name = "qwen35", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX,
              .ffn = ENG_FFN_SWIGLU, .qk_norm = 1, .attn_gate = 1}},
    {.suffix = "gemma4", .rope_base = 1e6f, .norm_eps = 1e-6f, .swa_period = 5, .ctx = 4096,
     .rope_base_swa = 1e4f, .gemma4 = 1,
     .arch = {.name = "gemma4", .norm = ENG_NORM_RMS, .rope = ENG_ROPE_NEOX, .ffn = ENG_FFN_GEGLU,
              .qk_norm = 1, .post_norms = 1, .v_norm = 1}},
};

/* Gemma 4 E2B's shape (35 layers: hidden 1536, 8 heads of 256 on sliding layers and 512 on full
 * ones, proportional RoPE on a quarter of a full head, the last 20 layers sharing KV with FFNs
 * twice as wide, per-layer embeddings of 256, softcap 30) scaled to a preset whose sliding pattern
 * is set: full layers' heads twice the sliding ones', NEOX over all of them with rope_freqs
 * divisors that leave three quarters of the pairs still (draw()'s PROP_FREQS); the layers after
 * the last full one within the first n - 20 n / 35 (rounded; or after the first full one) share
 * the KV of the last sliding or full layer before them (llama.cpp's rule) with FFNs twice as
 * wide; per-layer embeddings of dim / 6; attention scale 1; logit softcap 30. The KV heads stay
 * the shape's (E2B has one), as the gemma3 preset's do. */
static void gemma4_plan(eng_model_cfg_t *c) {
    int hd = c->head_dim, L = c->n_layers;
    c->head_dim_swa = c->rope_dim_swa = hd;
    c->head_dim = c->rope_dim = 2 * hd;
    c->ple_dim = c->dim / 6;
    c->attn_scale = 1.0f;
    c->final_softcap = 30.0f;
    int keep = L - (20 * L + 17) / 35, start = 0;
    for (int l = 0; l < L; l++)
        if (!c->layer_swa[l] && (l + 1 <= keep || start == 0)) start = l + 1;
    for (int l = start; l < L; l++) {
        c->layer_kv_reuse[l] = (uint16_t)(l - (start - (c->layer_swa[l] ? 2 : 1)));
        c->layer_hidden[l] = 2 * c->hidden_dim;
    }
}

int eng_model_preset(const char *name, eng_model_cfg_t *cfg) {
    /* window: of a sliding-window architecture's local layers; Gemma 3 1B's 512 for 15m and 4B's
     * 1024 for 110m, an eighth and a quarter of the 4096 context; 32 for tiny, so that tests pass
     * it within a few dozen tokens. */
    static const struct {
        const char *name;
        int dim, hidden, layers, heads, kv_heads, vocab, seq, window;
    } presets[] = {
        {"tiny", 64, 172, 2, 4, 2, 512, 256, 32},
        {"15m", 288, 768, 6, 6, 6, 32000, 256, 512},
        {"110m", 768, 2048, 12, 12, 12, 32000, 1024, 1024},
    };
    const char *dash = strchr(name, '-');
    size_t shape_len = dash ? (size_t)(dash - name) : strlen(name);
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++) {
        if (strlen(presets[i].name) != shape_len || strncmp(name, presets[i].name, shape_len) != 0)
            continue;
        int hd = presets[i].dim / presets[i].heads;
        *cfg = (eng_model_cfg_t){.dim = presets[i].dim, .hidden_dim = presets[i].hidden,
                                 .n_layers = presets[i].layers, .n_heads = presets[i].heads,
                                 .n_kv_heads = presets[i].kv_heads, .vocab_size = presets[i].vocab,
                                 .seq_len = presets[i].seq, .shared_cls = 1, .head_dim = hd,
                                 .rope_dim = hd, .rope_base = 10000.0f, .norm_eps = 1e-5f,
                                 .numerics = ENG_NUMERICS_RUNC, .arch = eng_arch_llama};
        if (dash == NULL) return LANES_OK;
        for (size_t a = 0; a < sizeof synth_archs / sizeof *synth_archs; a++) {
            if (strcmp(dash + 1, synth_archs[a].suffix) != 0) continue;
            cfg->arch = synth_archs[a].arch;
            cfg->numerics = ENG_NUMERICS_GGML;
            cfg->shared_cls = !synth_archs[a].untied;
            if (synth_archs[a].mha) cfg->n_kv_heads = cfg->n_heads;
            if (synth_archs[a].wide_heads) cfg->head_dim = cfg->rope_dim = 2 * hd;
            if (cfg->arch.rope == ENG_ROPE_NONE) cfg->rope_dim = 0;
            cfg->rope_base = synth_archs[a].rope_base;
            cfg->norm_eps = synth_archs[a].norm_eps;
            if (synth_archs[a].ctx) cfg->seq_len = synth_archs[a].ctx;
            if (synth_archs[a].rope_div) cfg->rope_dim = cfg->head_dim / synth_archs[a].rope_div;
            int every = synth_archs[a].dnet_interval;
            if (every > cfg->n_layers) every = cfg->n_layers;
            for (int l = 0; every && l < cfg->n_layers; l++)
                cfg->layer_kind[l] = (l + 1) % every != 0 ? ENG_LAYER_DNET : ENG_LAYER_ATTN;
            if (every) {
                cfg->ssm_k_heads = cfg->n_heads / 2;
                cfg->ssm_v_heads = cfg->n_heads;
                cfg->ssm_head_dim = hd;
                cfg->ssm_conv_kernel = 4;
            }
            int period = synth_archs[a].swa_period;
            if (synth_archs[a].gemma4 && cfg->n_layers < period) {
                cfg->n_layers = 4;
                period = 2;
            }
            if (period > cfg->n_layers) period = cfg->n_layers;
            if (period) {
                cfg->window = presets[i].window;
                for (int l = 0; l < cfg->n_layers; l++) cfg->layer_swa[l] = l % period < period - 1;
                cfg->rope_base_swa = synth_archs[a].rope_base_swa;
                cfg->rope_scale_swa = 1.0f;
                cfg->rope_scale = synth_archs[a].rope_scale;
                cfg->emb_scale = sqrtf((float)cfg->dim);
            }
            if (synth_archs[a].gemma4) gemma4_plan(cfg);
            return LANES_OK;
        }
    }
    return LANES_EINVAL;
}

const char *eng__model_check_cfg(const eng_model_cfg_t *c) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->seq_len <= 0)
        return "a dimension is zero or negative";
    if (c->dim > ENG_MAX_DIM || c->hidden_dim > ENG_MAX_DIM || c->n_heads > ENG_MAX_DIM)
        return "dim, hidden_dim or n_heads too large";
    if (c->n_layers > ENG_MAX_LAYERS) return "n_layers too large";
    if (c->vocab_size > ENG_MAX_VOCAB) return "vocab_size too large";
    if (c->seq_len > ENG_MAX_SEQ) return "seq_len too large";
    if (c->head_dim == 0) { /* a llama2.c header: heads split dim */
        if (c->dim % c->n_heads != 0) return "dim is not a multiple of n_heads";
        if ((c->dim / c->n_heads) % 2 != 0) return "head size is odd (RoPE rotates pairs)";
    } else {
        if (c->head_dim < 0 || c->head_dim > ENG_MAX_DIM / c->n_heads) return "bad head_dim";
        if (c->rope_dim < 0 || c->rope_dim > c->head_dim || c->rope_dim % 2 != 0)
            return "rope dimension is odd or longer than a head";
    }
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads != 0)
        return "n_heads is not a multiple of n_kv_heads";
    if (c->window < 0) return "negative window";
    for (int l = 0; l < c->n_layers && c->window == 0; l++)
        if (c->layer_swa[l]) return "a sliding layer without a window";
    if (c->head_dim_swa < 0 || c->head_dim_swa > ENG_MAX_DIM / c->n_heads)
        return "bad head_dim_swa";
    if (c->rope_dim_swa < 0 || c->rope_dim_swa % 2 != 0 ||
        c->rope_dim_swa > (c->head_dim_swa ? c->head_dim_swa : c->head_dim))
        return "sliding rope dimension is odd or longer than a sliding head";
    if (c->ple_dim < 0 || c->ple_dim > ENG_MAX_DIM) return "bad per-layer embedding size";
    for (int l = 0; l < c->n_layers; l++) {
        int kvh = c->layer_kv_heads[l];
        if (kvh > c->n_heads || (kvh && c->n_heads % kvh != 0))
            return "a layer's n_heads is not a multiple of its KV heads";
        if (c->layer_hidden[l] < 0 || c->layer_hidden[l] > ENG_MAX_DIM)
            return "a layer's hidden_dim is negative or too large";
        if (c->layer_kv_reuse[l] > l)
            return "a layer shares the KV cache of a layer before the first";
    }
    /* A cap far from 1 would make z (1 / c) overflow or the classifier's bounds (engine.c)
     * meaningless; real models use 30 (Gemma 2-4). */
    if (!isfinite(c->attn_scale) ||
        !(c->final_softcap == 0.0f || (c->final_softcap >= 1e-3f && c->final_softcap <= 1e6f)))
        return "attention scale not finite, or a final softcap outside 1e-3..1e6";
    return NULL;
}

eng_model_t *eng__model_alloc(int n_layers) {
    eng_model_t *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    if ((m->layers = calloc((size_t)n_layers, sizeof *m->layers)) == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

int eng_model_load(const char *path, eng_model_t **out) {
    char magic[4];
    /* A file that cannot be read for its magic is the llama2.c loader's to report. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ssize_t got = fd >= 0 ? pread(fd, magic, sizeof magic, 0) : -1;
    if (fd >= 0) close(fd);
    if (got == (ssize_t)sizeof magic && memcmp(magic, "GGUF", 4) == 0)
        return eng__model_load_gguf(path, out);
    return eng__model_load_llama2c(path, out);
}

/* Uniform in [-a, a), from 24 random bits: exact in fp32, so the same on every machine. */
static float draw_uniform(float a, uint64_t *rng) {
    return a * ((float)(int32_t)(lanes_splitmix64(rng) >> 40) / 8388608.0f - 1.0f);
}

/* How a synthetic tensor is drawn. Scaled like a trained model (uniform with variance 1/fan_in)
 * so activations stay O(1) and the argmax is decided by real margins, not by rounding noise. */
enum {
    EMB, ONES, NEAR_ONE, FAN_D, FAN_Q, FAN_H, BIAS, ZERO, FREQS, FAN_CONV, FAN_SSM, DECAY,
    PROP_FREQS, FAN_PLE
};

/* The tensors of a synthetic model in the order they are drawn and laid out: each tensor of every
 * layer at once, as a llama2.c body (tok_emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3,
 * rms_final, RoPE table, cls), then the other architectures' tensors. */
enum {
    T_TOK, T_ATTN_NORM, T_WQ, T_WK, T_WV, T_WO, T_FFN_NORM, T_GATE, T_DOWN, T_UP, T_OUT_NORM,
    T_ROPE_TABLE, T_CLS, T_POS, T_ATTN_NORM_B, T_BQ, T_BK, T_BV, T_Q_NORM, T_K_NORM, T_BO,
    T_FFN_NORM_B, T_B_UP, T_B_DOWN, T_OUT_NORM_B, T_ROPE_FREQS, T_POST_ATTN_NORM, T_POST_FFN_NORM,
    T_SSM_QKV, T_SSM_GATE, T_SSM_BETA, T_SSM_ALPHA, T_SSM_OUT, T_SSM_CONV, T_SSM_DT, T_SSM_A,
    T_SSM_NORM, T_PLE_TOK, T_PLE_MODEL_PROJ, T_PLE_PROJ_NORM, T_PLE_GATE, T_PLE_PROJ,
    T_PLE_POST_NORM, T_OUT_SCALE, T_COUNT
};

/* One layer's instance of a tensor (or the model's one). */
typedef struct {
    int rows, cols;     /* rows 0: absent (from this layer); cols 0: a vector of rows floats */
    int per_layer, init;    /* per_layer: 1 for a tensor of the layers, 0 for one of the model */
} synth_tensor_t;

/* The synthetic gemma4's full-attention layers that keep their own KV have no V projection: wv
 * is wk, as in Gemma 4's K = V layers (attention_k_eq_v, the 26B and 31B models; E2B and E4B
 * have one), so that the engine's V = K path has a preset that runs it. */
static int synth_v_is_k(const eng_model_cfg_t *c, int l) {
    return strcmp(c->arch.name, "gemma4") == 0 && !eng_layer_slides(c, l) &&
           !c->layer_kv_reuse[l];
}

/* t[T_COUNT]: the tensors of layer l of c in its own shape (rows 0 where its mixer, its shared
 * KV or V = K leave one out), and the model's. */
static void synth_tensors(const eng_model_cfg_t *c, int l, int llama2c_body, synth_tensor_t *t) {
    int d = c->dim, h = eng_layer_hidden(c, l), hd = eng_layer_head_dim(c, l);
    int q = c->n_heads * hd, kv = eng_layer_kv_heads(c, l) * hd, v = c->vocab_size;
    int P = c->ple_dim, LP = c->n_layers * c->ple_dim;
    const eng_arch_t *a = &c->arch;
    int norm = c->numerics == ENG_NUMERICS_RUNC ? ONES : NEAR_ONE;
    int layer_norm = a->norm == ENG_NORM_LAYER, gelu = a->ffn == ENG_FFN_GELU;
    int qkv_bias = strcmp(a->name, "qwen2") == 0 || strcmp(a->name, "gpt2") == 0;
    int all_bias = strcmp(a->name, "gpt2") == 0, gemma4 = strcmp(a->name, "gemma4") == 0;
    memset(t, 0, sizeof *t * T_COUNT);
    t[T_TOK] = (synth_tensor_t){v, d, 0, EMB};
    t[T_ATTN_NORM] = (synth_tensor_t){d, 0, 1, norm};
    t[T_WQ] = (synth_tensor_t){a->attn_gate ? 2 * q : q, d, 1, FAN_D};
    t[T_WK] = (synth_tensor_t){kv, d, 1, FAN_D};
    t[T_WV] = (synth_tensor_t){kv, d, 1, FAN_D};
    t[T_WO] = (synth_tensor_t){d, q, 1, FAN_Q};
    t[T_FFN_NORM] = (synth_tensor_t){d, 0, 1, norm};
    if (!gelu) t[T_GATE] = (synth_tensor_t){h, d, 1, FAN_D};
    t[T_DOWN] = (synth_tensor_t){d, h, 1, FAN_H};
    t[T_UP] = (synth_tensor_t){h, d, 1, FAN_D};
    t[T_OUT_NORM] = (synth_tensor_t){d, 0, 0, norm};
    if (llama2c_body) t[T_ROPE_TABLE] = (synth_tensor_t){c->seq_len * c->head_dim, 0, 0, ZERO};
    if (!c->shared_cls) t[T_CLS] = (synth_tensor_t){v, d, 0, FAN_D};
    if (a->pos_embd) t[T_POS] = (synth_tensor_t){c->seq_len, d, 0, EMB};
    if (layer_norm) {
        t[T_ATTN_NORM_B] = (synth_tensor_t){d, 0, 1, BIAS};
        t[T_FFN_NORM_B] = (synth_tensor_t){d, 0, 1, BIAS};
        t[T_OUT_NORM_B] = (synth_tensor_t){d, 0, 0, BIAS};
    }
    if (qkv_bias) {
        t[T_BQ] = (synth_tensor_t){q, 0, 1, BIAS};
        t[T_BK] = (synth_tensor_t){kv, 0, 1, BIAS};
        t[T_BV] = (synth_tensor_t){kv, 0, 1, BIAS};
    }
    if (all_bias) {
        t[T_BO] = (synth_tensor_t){d, 0, 1, BIAS};
        t[T_B_UP] = (synth_tensor_t){h, 0, 1, BIAS};
        t[T_B_DOWN] = (synth_tensor_t){d, 0, 1, BIAS};
    }
    if (a->qk_norm) {
        t[T_Q_NORM] = (synth_tensor_t){hd, 0, 1, NEAR_ONE};
        t[T_K_NORM] = (synth_tensor_t){hd, 0, 1, NEAR_ONE};
    }
    if (strcmp(a->name, "llama") == 0 && c->numerics == ENG_NUMERICS_GGML && c->rope_dim > 0)
        t[T_ROPE_FREQS] = (synth_tensor_t){c->rope_dim / 2, 0, 0, FREQS};
    if (gemma4 && c->rope_dim > 0)
        t[T_ROPE_FREQS] = (synth_tensor_t){c->rope_dim / 2, 0, 0, PROP_FREQS};
    if (a->post_norms) {
        t[T_POST_ATTN_NORM] = (synth_tensor_t){d, 0, 1, norm};
        t[T_POST_FFN_NORM] = (synth_tensor_t){d, 0, 1, norm};
    }
    if (c->layer_kind[l] == ENG_LAYER_DNET) {
        int K = c->ssm_k_heads, H = c->ssm_v_heads, sd = c->ssm_head_dim, ch = (2 * K + H) * sd;
        t[T_SSM_QKV] = (synth_tensor_t){ch, d, 1, FAN_D};
        t[T_SSM_GATE] = (synth_tensor_t){H * sd, d, 1, FAN_D};
        t[T_SSM_BETA] = (synth_tensor_t){H, d, 1, FAN_D};
        t[T_SSM_ALPHA] = (synth_tensor_t){H, d, 1, FAN_D};
        t[T_SSM_OUT] = (synth_tensor_t){d, H * sd, 1, FAN_SSM};
        t[T_SSM_CONV] = (synth_tensor_t){ch * c->ssm_conv_kernel, 0, 1, FAN_CONV};
        t[T_SSM_DT] = (synth_tensor_t){H, 0, 1, BIAS};
        t[T_SSM_A] = (synth_tensor_t){H, 0, 1, DECAY};
        t[T_SSM_NORM] = (synth_tensor_t){sd, 0, 1, NEAR_ONE};
        for (int i = T_WQ; i <= T_WO; i++) t[i].rows = 0;
        t[T_BQ].rows = t[T_BK].rows = t[T_BV].rows = t[T_BO].rows = 0;
        t[T_Q_NORM].rows = t[T_K_NORM].rows = 0;
    }
    if (c->layer_kv_reuse[l]) t[T_WK].rows = t[T_WV].rows = t[T_BK].rows = t[T_BV].rows = 0;
    if (c->layer_kv_reuse[l]) t[T_K_NORM].rows = 0;
    if (synth_v_is_k(c, l)) t[T_WV].rows = t[T_BV].rows = 0;
    if (P > 0) {
        t[T_PLE_TOK] = (synth_tensor_t){v, LP, 0, EMB};
        t[T_PLE_MODEL_PROJ] = (synth_tensor_t){LP, d, 0, FAN_D};
        t[T_PLE_PROJ_NORM] = (synth_tensor_t){P, 0, 0, NEAR_ONE};
        t[T_PLE_GATE] = (synth_tensor_t){P, d, 1, FAN_D};
        t[T_PLE_PROJ] = (synth_tensor_t){d, P, 1, FAN_PLE};
        t[T_PLE_POST_NORM] = (synth_tensor_t){d, 0, 1, NEAR_ONE};
    }
    if (gemma4) t[T_OUT_SCALE] = (synth_tensor_t){1, 0, 1, NEAR_ONE};
}

/* Llama 3.1's shape of divisors: the fastest third of the pairs 1, the slowest third 8, a ramp
 * between. */
static float rope_freq(int i, int pairs) {
    float s = pairs > 1 ? (float)i / (float)(pairs - 1) : 0.0f;
    return s < 1.0f / 3 ? 1.0f : s > 2.0f / 3 ? 8.0f : 1.0f + 7.0f * (3.0f * s - 1.0f);
}

/* The half-width of a uniform tensor: (3 / fan_in)^(1/2), as sqrt(3) * (1 / sqrt(fan_in)) in float
 * so the llama2.c models keep their bits. */
static float fan_scale(int fan_in) { return sqrtf(3.0f) * (1.0f / sqrtf((float)fan_in)); }

/* Element i of n of a tensor drawn as init, uniform ones of half-width a. */
static float draw(int init, float a, size_t i, size_t n, uint64_t *rng) {
    switch (init) {
    case ONES: return 1.0f;
    case NEAR_ONE: return 1.0f + draw_uniform(0.1f, rng);
    case FREQS: return rope_freq((int)i, (int)n);
    case PROP_FREQS: return i < n / 4 ? 1.0f : 1e30f;   /* proportional RoPE: a quarter turns */
    case ZERO: return 0.0f;
    case DECAY: return -(0.5f + draw_uniform(0.4f, rng));   /* ssm_a = -exp(A_log) < 0 */
    default: return draw_uniform(a, rng);
    }
}

/* The synthetic tensors of every layer: tt[l * T_COUNT + i] is layer l's instance of tensor i,
 * layer 0's for a tensor of the model. */
typedef struct {
    const eng_model_cfg_t *cfg;
    synth_tensor_t *tt;     /* owned */
    int wtype;
    int layers[T_COUNT];    /* synth_layers() */
} synth_layout_t;

static const synth_tensor_t *synth_inst(const synth_layout_t *s, int i, int l) {
    return &s->tt[(size_t)l * T_COUNT + (size_t)i];
}

/* Layers to walk for tensor i's instances: every one, or layer 0 alone for a model tensor (a
 * layer tensor is one in some layer's table: those without it leave it all 0). */
static int synth_layers(const synth_layout_t *s, int i) { return s->layers[i]; }

/* The type synthetic tensor t (tensor i) is stored in: vectors and the learned positions stay F32
 * (llama-quantize leaves position_embd alone too), and a block type whose blocks do not tile a row
 * falls back (eng_wtype_fallback), as llama-quantize does. */
static int synth_type(const synth_layout_t *s, const synth_tensor_t *t, int i) {
    if (t->cols == 0 || (i == T_POS && eng_wtype_block(s->wtype) > 1)) return ENG_WT_F32;
    return eng_wtype_fallback(s->wtype, t->cols);
}

/* Bytes of instance t of tensor i, as stored. */
static size_t synth_bytes(const synth_layout_t *s, const synth_tensor_t *t, int i) {
    return t->cols ? (size_t)t->rows * eng_wtype_row_bytes(synth_type(s, t, i), t->cols)
                   : (size_t)t->rows * sizeof(float);
}

/* One warning per row length whose matrices could not take the model's type. */
static void log_fallbacks(const synth_layout_t *s) {
    for (int i = 0; i < T_COUNT; i++)
        for (int l = 0; l < synth_layers(s, i); l++) {
            const synth_tensor_t *t = synth_inst(s, i, l);
            int type = synth_type(s, t, i);
            if (!t->rows || !t->cols || i == T_POS || type == s->wtype) continue;
            int n = 0, first = 1;
            for (int j = 0; j < T_COUNT; j++)
                for (int k = 0; k < synth_layers(s, j); k++) {
                    const synth_tensor_t *u = synth_inst(s, j, k);
                    if (!u->rows || u->cols != t->cols || j == T_POS || synth_type(s, u, j) != type)
                        continue;
                    first &= j > i || (j == i && k >= l);
                    n++;
                }
            if (first)
                LANES_LOG(LANES_LOG_WARN, "synthetic model: %d matrices are %s: their rows of %d "
                          "values are not whole %s blocks of %d", n, eng_wtype_name(type), t->cols,
                          eng_wtype_name(s->wtype), eng_wtype_block(s->wtype));
        }
}

/* Where layer's instance of tensor i (laid out from base on) is, or NULL when it has none: the
 * one after the instances of the layers before. */
static void *synth_at(const synth_layout_t *s, int i, char *base, int layer) {
    if (synth_inst(s, i, layer)->rows == 0) return NULL;
    size_t at = 0;
    for (int l = 0; l < layer; l++) at += synth_bytes(s, synth_inst(s, i, l), i);
    return base + at;
}

int eng_model_synth(const eng_model_cfg_t *cfg, uint64_t seed, int wtype, eng_model_t **out) {
    const char *why = eng__model_check_cfg(cfg);
    if (why == NULL && cfg->numerics == ENG_NUMERICS_RUNC &&
        (strcmp(cfg->arch.name, "llama") != 0 || cfg->head_dim * cfg->n_heads != cfg->dim ||
         cfg->rope_dim != cfg->head_dim))
        why = "run.c numerics need the llama2.c architecture and shape";
    if (why == NULL && eng_wtype_block(wtype) == 0) why = "unknown weight type";
    if (why == NULL && (cfg->arch.rope == ENG_ROPE_NONE) != (cfg->rope_dim == 0))
        why = "rope_dim must be 0 exactly when the architecture has no RoPE";
    for (int l = 0; why == NULL && l < cfg->n_layers; l++) {
        eng_dnet_shape_t s = {cfg->ssm_k_heads, cfg->ssm_v_heads, cfg->ssm_head_dim,
                              cfg->ssm_conv_kernel, cfg->norm_eps};
        if (cfg->layer_kind[l] > ENG_LAYER_DNET) why = "a layer of an unknown kind";
        else if (cfg->layer_kind[l] == ENG_LAYER_DNET && eng__dnet_shape_check(&s) < 0)
            why = "delta-net layers of a bad shape";
    }
    if (why) {
        LANES_LOG(LANES_LOG_ERROR, "synthetic model: %s", why);
        return LANES_EINVAL;
    }
    int L = cfg->n_layers;
    eng_model_t *m = eng__model_alloc(L);
    synth_layout_t s = {cfg, malloc((size_t)L * T_COUNT * sizeof *s.tt), wtype, {0}};
    if (m == NULL || s.tt == NULL) {
        free(s.tt);
        eng_model_destroy(m);
        return LANES_ENOMEM;
    }
    m->cfg = *cfg;
    /* An F32 llama2.c-architecture model is laid out exactly as a checkpoint body, so
     * eng_model_save() can write it. */
    int llama2c_body = cfg->numerics == ENG_NUMERICS_RUNC && wtype == ENG_WT_F32;
    for (int l = 0; l < L; l++) synth_tensors(cfg, l, llama2c_body, s.tt + (size_t)l * T_COUNT);
    for (int i = 0; i < T_COUNT; i++) {
        s.layers[i] = 1;
        for (int l = 0; l < L; l++)
            if (synth_inst(&s, i, l)->per_layer) s.layers[i] = L;
    }
    int max_row = 0;
    size_t off[T_COUNT], total = 0;
    for (int i = 0; i < T_COUNT; i++) {
        size_t bytes = 0;
        for (int l = 0; l < synth_layers(&s, i); l++) {
            const synth_tensor_t *t = synth_inst(&s, i, l);
            int row = t->cols ? t->cols : t->rows;
            max_row = row > max_row ? row : max_row;
            bytes += synth_bytes(&s, t, i);
        }
        off[i] = total;
        total += (bytes + 3) & ~(size_t)3;
    }
    float *row = malloc((size_t)max_row * sizeof *row);
    if (row == NULL || (m->data = malloc(total)) == NULL) {
        free(row);
        free(s.tt);
        eng_model_destroy(m);
        return LANES_ENOMEM;
    }
    log_fallbacks(&s);
    /* Drawn in the same order whatever the type, then stored a row at a time, so a quantized or
     * 16-bit model is its F32 twin converted row by row. A tensor's values are drawn layer after
     * layer, each instance in its layer's shape. */
    uint64_t rng = seed;
    char *base = m->data;
    for (int i = 0; i < T_COUNT; i++) {
        size_t n = 0, j = 0;
        for (int l = 0; l < synth_layers(&s, i); l++) {
            const synth_tensor_t *t = synth_inst(&s, i, l);
            n += (size_t)t->rows * (size_t)(t->cols ? t->cols : 1);
        }
        char *at = base + off[i];
        for (int l = 0; l < synth_layers(&s, i); l++) {
            const synth_tensor_t *t = synth_inst(&s, i, l);
            int init = t->init, len = t->cols ? t->cols : t->rows, type = synth_type(&s, t, i);
            int rows = t->rows == 0 ? 0 : t->cols ? t->rows : 1;
            size_t row_bytes = eng_wtype_row_bytes(type, len);
            float a = init == FAN_D ? fan_scale(cfg->dim)
                      : init == FAN_H ? fan_scale(eng_layer_hidden(cfg, l))
                      : init == FAN_Q ? fan_scale(cfg->n_heads * eng_layer_head_dim(cfg, l))
                      : init == FAN_SSM ? fan_scale(cfg->ssm_v_heads * cfg->ssm_head_dim)
                      : init == FAN_CONV ? fan_scale(cfg->ssm_conv_kernel)
                      : init == FAN_PLE ? fan_scale(cfg->ple_dim) : 0.1f;
            for (int r = 0; r < rows; r++, at += row_bytes) {
                for (int k = 0; k < len; k++, j++) row[k] = draw(init, a, j, n, &rng);
                eng_wtype_row_from_f32(type, at, row, len);
            }
        }
    }
    free(row);
#define AT(i, layer) synth_at(&s, i, base + off[i], layer)
#define VEC(i, layer) ((const float *)AT(i, layer))
#define MAT(i, layer)                                                                             \
    ((eng_mat_t){AT(i, layer), synth_type(&s, synth_inst(&s, i, layer), i),                       \
                 synth_inst(&s, i, layer)->rows, synth_inst(&s, i, layer)->cols})
    for (int j = 0; j < L; j++)
        m->layers[j] = (eng_layer_t){
            .attn_norm = VEC(T_ATTN_NORM, j), .attn_norm_b = VEC(T_ATTN_NORM_B, j),
            .wq = MAT(T_WQ, j), .wk = MAT(T_WK, j),
            .wv = synth_v_is_k(cfg, j) ? MAT(T_WK, j) : MAT(T_WV, j),
            .bq = VEC(T_BQ, j), .bk = VEC(T_BK, j), .bv = VEC(T_BV, j),
            .q_norm = VEC(T_Q_NORM, j), .k_norm = VEC(T_K_NORM, j),
            .wo = MAT(T_WO, j), .bo = VEC(T_BO, j),
            .ffn_norm = VEC(T_FFN_NORM, j), .ffn_norm_b = VEC(T_FFN_NORM_B, j),
            .w_gate = MAT(T_GATE, j), .w_up = MAT(T_UP, j), .w_down = MAT(T_DOWN, j),
            .b_up = VEC(T_B_UP, j), .b_down = VEC(T_B_DOWN, j),
            .post_attn_norm = VEC(T_POST_ATTN_NORM, j), .post_ffn_norm = VEC(T_POST_FFN_NORM, j),
            .ssm_qkv = MAT(T_SSM_QKV, j), .ssm_gate = MAT(T_SSM_GATE, j),
            .ssm_beta = MAT(T_SSM_BETA, j), .ssm_alpha = MAT(T_SSM_ALPHA, j),
            .ssm_out = MAT(T_SSM_OUT, j), .ssm_conv = VEC(T_SSM_CONV, j),
            .ssm_dt_bias = VEC(T_SSM_DT, j), .ssm_a = VEC(T_SSM_A, j),
            .ssm_norm = VEC(T_SSM_NORM, j),
            .ple_gate = MAT(T_PLE_GATE, j), .ple_proj = MAT(T_PLE_PROJ, j),
            .ple_post_norm = VEC(T_PLE_POST_NORM, j), .out_scale = VEC(T_OUT_SCALE, j),
        };
    m->w = (eng_weights_t){
        .tok_emb = MAT(T_TOK, 0), .pos_emb = MAT(T_POS, 0),
        .out_norm = VEC(T_OUT_NORM, 0), .out_norm_b = VEC(T_OUT_NORM_B, 0),
        .cls = cfg->shared_cls ? MAT(T_TOK, 0) : MAT(T_CLS, 0),
        .rope_freqs = VEC(T_ROPE_FREQS, 0), .ple_tok_emb = MAT(T_PLE_TOK, 0),
        .ple_model_proj = MAT(T_PLE_MODEL_PROJ, 0), .ple_proj_norm = VEC(T_PLE_PROJ_NORM, 0),
        .layers = m->layers,
    };
#undef MAT
#undef VEC
#undef AT
    free(s.tt);
    m->wtype = wtype;
    m->weight_bytes = total;
    snprintf(m->name, sizeof m->name, "synthetic");
    *out = m;
    return LANES_OK;
}

void eng_model_destroy(eng_model_t *m) {
    if (m == NULL) return;
    if (m->map) munmap(m->map, m->map_len);
    eng_gguf_close(m->gguf);
    free(m->data);
    free(m->vecs);
    free(m->layers);
    free(m);
}

const eng_model_cfg_t *eng_model_cfg(const eng_model_t *m) { return &m->cfg; }
const eng_weights_t *eng_model_weights(const eng_model_t *m) { return &m->w; }
const char *eng_model_name(const eng_model_t *m) { return m->name; }
int eng_model_wtype(const eng_model_t *m) { return m->wtype; }
const struct eng_gguf *eng_model_gguf(const eng_model_t *m) { return m->gguf; }
uint64_t eng_model_weight_bytes(const eng_model_t *m) { return m->weight_bytes; }

/* 2 flops per weight of every matrix a token goes through: counted from the matrices the model
 * has, so every architecture (gated FFNs, delta-net layers, gated queries, per-layer embeddings'
 * projections, shared-KV layers' query alone, V = K layers' one product) is counted as it runs. */
double eng_model_flops_per_token(const eng_model_t *m) {
    const eng_mat_t *proj = &m->w.ple_model_proj;
    double weights = (double)m->w.cls.rows * m->w.cls.cols + (double)proj->rows * proj->cols;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const eng_layer_t *L = &m->w.layers[l];
        const eng_mat_t *mats[] = {&L->wq,      &L->wk,       &L->wo,       &L->w_gate,
                                   &L->w_up,    &L->w_down,   &L->ssm_qkv,  &L->ssm_gate,
                                   &L->ssm_beta, &L->ssm_alpha, &L->ssm_out, &L->ple_gate,
                                   &L->ple_proj, &L->wv};
        size_t n = sizeof mats / sizeof *mats - (L->wv.data == L->wk.data); /* V = K: no product */
        for (size_t i = 0; i < n; i++)
            if (mats[i]->data) weights += (double)mats[i]->rows * mats[i]->cols;
    }
    return 2.0 * weights;
}
