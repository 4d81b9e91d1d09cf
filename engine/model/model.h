#ifndef ENG_MODEL_H
#define ENG_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "kern/wtype.h"

/* A decoder-only transformer: its shape, the architecture descriptor the one forward pass reads,
 * and read-only weights that stay in their file's element type (mmap'd, or synthetic). Nothing
 * here says which file format a model came from. */

/* Weight types: ENG_WT_* (kern/wtype.h), ggml's numbers. */
const char *eng_wtype_name(int type);   /* "F32", "F16", "BF16", "Q4_0", ...; NULL for others */
int eng_wtype_by_name(const char *name); /* the reverse, any case ("q8_0"); LANES_EINVAL for others */
size_t eng_wtype_size(int type);        /* bytes per element of an element type; 0 for others */
int eng_wtype_block(int type);          /* values per block: 1 for element types; 0 for unknown */
/* Bytes of a row of cols values; 0 for an unknown type or cols not a whole number of blocks. */
size_t eng_wtype_row_bytes(int type, int cols);
/* A row of n values of type to fp32 (exact for the element types, ggml's dequantization for the
 * block types), and fp32 to a row of type (rounding to nearest even, or eng_quant_row). Return 0, or LANES_EINVAL for a type it cannot convert or n not whole blocks. */
int eng_wtype_row_to_f32(int type, float *y, const void *row, int n);
int eng_wtype_row_from_f32(int type, void *row, const float *x, int n);
/* general.file_type (llama.cpp's LLAMA_FTYPE_*) of a GGUF file whose matrices are mostly type:
 * 0 ALL_F32, 1 MOSTLY_F16, 32 MOSTLY_BF16, 7 MOSTLY_Q8_0, 2 MOSTLY_Q4_0, 14 MOSTLY_Q4_K_S (every
 * matrix Q4_K), 18 MOSTLY_Q6_K; -1 for others. */
int eng_wtype_file_type(int type);
/* The type a matrix with rows of cols values is written in when type is asked for: type itself
 * when its blocks tile the row; else, as llama-quantize falls back, Q8_0 for a k-quant when 32
 * tiles it, and F16 otherwise. */
int eng_wtype_fallback(int type, int cols);

enum { ENG_NORM_RMS, ENG_NORM_LAYER };                  /* LayerNorm: mean removed, with bias */
enum { ENG_ROPE_NONE, ENG_ROPE_PAIRS, ENG_ROPE_NEOX };   /* PAIRS: ggml mode 0, (2i, 2i + 1);
                                                         * NEOX: (i, i + rope_dim / 2) */
enum { ENG_FFN_SWIGLU, ENG_FFN_GELU, ENG_FFN_GEGLU };   /* down(silu(gate x) * up x); down(gelu(up x));
                                                         * down(gelu(gate x) * up x) */
/* A layer's token mixer: attention over the KV cache, or Qwen3.5's gated delta net, a linear
 * attention whose per-lane state (a short convolution's last inputs and an H x d x d matrix per
 * layer) is fixed in size whatever the context (engine/dnet.h has its arithmetic). */
enum { ENG_LAYER_ATTN = 0, ENG_LAYER_DNET = 1 };
/* Whose rounding the norms and the RoPE angles follow (engine/nn.h): ggml's (GGUF models, the
 * default), or llama2.c's run.c, which its checkpoints' references were made with. */
enum { ENG_NUMERICS_GGML, ENG_NUMERICS_RUNC };

/* What distinguishes one architecture's forward pass from another's. Which biases a layer has is
 * in its weights (NULL: none). */
typedef struct {
    const char *name;   /* "llama", "qwen2", "qwen3", "gpt2" (general.architecture) */
    int norm;           /* ENG_NORM_* for every norm */
    int rope;           /* ENG_ROPE_* */
    int ffn;            /* ENG_FFN_* */
    int pos_embd;       /* 1: learned position embeddings are added to the token embedding */
    int qk_norm;        /* 1: per-head RMSNorm of q and k (head_dim weights) before RoPE */
    int post_norms;     /* 1: the attention and FFN outputs are normed (post_attn_norm,
                         * post_ffn_norm) before they are added to the residual (Gemma) */
    int attn_gate;      /* 1: wq holds each query head's head_dim rows followed by as many rows of
                         * its output gate (2 n_heads head_dim rows in all); the attention output
                         * of a head is multiplied by sigmoid(gate) before wo (Qwen3.5) */
    int v_norm;         /* 1: each KV head of v is RMS-normed, without a weight, before it is
                         * filed (Gemma 4) */
} eng_arch_t;

/* Layers per model at most. */
#define ENG_MAX_LAYERS 1024

/* The llama2.c architecture (= "llama" with its defaults): RMSNorm, adjacent-pair RoPE, SwiGLU. */
extern const eng_arch_t eng_arch_llama;

typedef struct {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared_cls;     /* 1: the classifier is the token embedding */
    int head_dim;       /* per head of q, k and v; q is n_heads * head_dim wide (not always dim) */
    int rope_dim;       /* leading channels of each head that RoPE rotates (even, <= head_dim;
                         * 0 when arch.rope is ENG_ROPE_NONE) */
    float rope_base;    /* theta_i = pos * rope_base^(-2i / rope_dim) */
    float norm_eps;
    int numerics;       /* ENG_NUMERICS_* */
    eng_arch_t arch;
    float emb_scale;    /* the token embedding is multiplied by it (Gemma: sqrtf(dim)); 0 = 1 */
    float rope_scale;   /* freq_scale of global layers: theta multiplied by it (linear scaling by a
                         * factor f is 1 / f); 0 = 1 */
    /* Sliding-window attention (Gemma 2/3/4): on a layer with layer_swa[l] set, the query at p sees
     * the keys p0 with p - window < p0 <= p, the window most recent positions itself included
     * (llama.cpp's LLAMA_SWA_TYPE_STANDARD); those layers use their own RoPE base and scale. */
    int window;         /* 0: no sliding layers */
    float rope_base_swa, rope_scale_swa;    /* scale 0 = 1 */
    uint8_t layer_swa[ENG_MAX_LAYERS];
    /* Hybrid models (Qwen3.5): layer l's mixer is layer_kind[l] (ENG_LAYER_*; all attention by
     * default). Delta-net layers' shape: ssm_k_heads query/key heads (ssm.group_count), ssm_v_heads
     * value heads (ssm.time_step_rank, a multiple of it), ssm_head_dim (ssm.state_size) each, and a
     * causal convolution of ssm_conv_kernel taps over the qkv channels. */
    uint8_t layer_kind[ENG_MAX_LAYERS];
    int ssm_k_heads, ssm_v_heads, ssm_head_dim, ssm_conv_kernel;
    /* Per-layer shapes (Gemma 4). A sliding layer's heads (q, k and v) are head_dim_swa wide, of
     * which RoPE rotates the first rope_dim_swa; layer l has layer_kv_heads[l] KV heads and an FFN
     * layer_hidden[l] wide. Zeros take the model-wide value (head_dim, rope_dim, n_kv_heads,
     * hidden_dim), so a model without per-layer shapes leaves them all 0. n_heads is every
     * layer's. */
    int head_dim_swa, rope_dim_swa;
    uint16_t layer_kv_heads[ENG_MAX_LAYERS];
    int32_t layer_hidden[ENG_MAX_LAYERS];
    /* Shared KV (Gemma 4): a layer with layer_kv_reuse[l] = r > 0 computes only its query and
     * attends, with its own mask, to the keys and values layer l - r filed in the same step; it
     * has no wk, wv nor k_norm and keeps no cache. Layer l - r is an attention layer of its kind
     * (both sliding or both global: same head dim) and KV head count, that keeps its own. */
    uint16_t layer_kv_reuse[ENG_MAX_LAYERS];
    /* Per-layer embeddings (Gemma 3n / 4): ple_dim > 0 values per layer and token, from the
     * ple_* weights (eng_weights_t, eng_layer_t): at the start of a step each column's
     * inp = (rms(ple_model_proj x / sqrtf(dim)) * ple_proj_norm, per layer's ple_dim chunk,
     * + ple_tok_emb[token] * sqrtf(ple_dim)) / sqrtf(2), x the scaled token embedding; after
     * layer l's FFN, x += rms(ple_proj (gelu(ple_gate x) * inp_l)) * ple_post_norm. */
    int ple_dim;
    float attn_scale;       /* the scores q.k are multiplied by it (Gemma 4: 1); 0: divided by
                             * sqrtf(head_dim) */
    float final_softcap;    /* logits = c tanhf(z (1 / c)) with c = final_softcap, as every logit
                             * of the classifier is read (argmax, noise, rows); 0: none */
} eng_model_cfg_t;

/* Layer l's shape as the forward pass reads it: a sliding layer's head size and RoPE span, KV
 * heads and FFN width, the model-wide value where the per-layer field is 0. */
static inline int eng_layer_slides(const eng_model_cfg_t *c, int l) {
    return c->window > 0 && c->layer_swa[l];
}
static inline int eng_layer_head_dim(const eng_model_cfg_t *c, int l) {
    return eng_layer_slides(c, l) && c->head_dim_swa ? c->head_dim_swa : c->head_dim;
}
static inline int eng_layer_rope_dim(const eng_model_cfg_t *c, int l) {
    return eng_layer_slides(c, l) && c->rope_dim_swa ? c->rope_dim_swa : c->rope_dim;
}
static inline int eng_layer_kv_heads(const eng_model_cfg_t *c, int l) {
    return c->layer_kv_heads[l] ? c->layer_kv_heads[l] : c->n_kv_heads;
}
static inline int eng_layer_hidden(const eng_model_cfg_t *c, int l) {
    return c->layer_hidden[l] ? c->layer_hidden[l] : c->hidden_dim;
}

/* A matrix W (rows, cols) applied as y = W x (x of length cols), row-major in its element type;
 * data NULL: the model has none. */
typedef struct {
    const void *data;
    int type;           /* ENG_WT_* */
    int rows, cols;
} eng_mat_t;

/* One block's weights. Vectors are fp32 whatever the file holds (they are tiny); NULL: absent. */
typedef struct {
    const float *attn_norm, *attn_norm_b;   /* (dim,) */
    eng_mat_t wq, wk, wv;                   /* (n_heads * head_dim | n_kv_heads * head_dim, dim),
                                             * the layer's head_dim and KV heads; wv may be wk
                                             * itself (same data: Gemma 4's layers without
                                             * attn_v, where v is k's product before its norm);
                                             * a shared-KV layer has neither */
    const float *bq, *bk, *bv;
    const float *q_norm, *k_norm;           /* (head_dim,) when arch.qk_norm */
    eng_mat_t wo;                           /* (dim, n_heads * head_dim) */
    const float *bo;
    const float *post_attn_norm;            /* (dim,) when arch.post_norms */
    const float *ffn_norm, *ffn_norm_b;
    eng_mat_t w_gate, w_up, w_down;         /* (hidden, dim), (hidden, dim), (dim, hidden); no gate
                                             * for GELU */
    const float *b_up, *b_down;
    const float *post_ffn_norm;             /* (dim,) when arch.post_norms */
    /* A delta-net layer's mixer (layer_kind ENG_LAYER_DNET; its wq..wo are absent). C = 2 K d + H d
     * conv channels, K = ssm_k_heads, H = ssm_v_heads, d = ssm_head_dim. */
    eng_mat_t ssm_qkv;                      /* (C, dim) attn_qkv: q (K d), k (K d), v (H d) rows */
    eng_mat_t ssm_gate;                     /* (H d, dim) attn_gate: z */
    eng_mat_t ssm_beta, ssm_alpha;          /* (H, dim) */
    eng_mat_t ssm_out;                      /* (dim, H d) */
    const float *ssm_conv;                  /* (C, ssm_conv_kernel) ssm_conv1d, channel c's taps
                                             * oldest first */
    const float *ssm_dt_bias, *ssm_a;       /* (H,) ssm_dt.bias, ssm_a = -exp(A_log) */
    const float *ssm_norm;                  /* (d,) */
    /* Per-layer embeddings (cfg.ple_dim > 0) and Gemma 4's layer scale. */
    eng_mat_t ple_gate;                     /* (ple_dim, dim) inp_gate */
    eng_mat_t ple_proj;                     /* (dim, ple_dim) proj */
    const float *ple_post_norm;             /* (dim,) post_norm */
    const float *out_scale;                 /* (1,) layer_output_scale: the residual stream is
                                             * multiplied by it at the end of the layer; NULL: 1 */
} eng_layer_t;

typedef struct {
    eng_mat_t tok_emb;          /* (vocab, dim) */
    eng_mat_t pos_emb;          /* (seq_len, dim) when arch.pos_embd */
    const float *out_norm, *out_norm_b;
    eng_mat_t cls;              /* (vocab, dim); the same data as tok_emb when shared_cls */
    const float *rope_freqs;    /* (rope_dim / 2,) divisors of each pair's frequency on the
                                 * global layers (Llama 3.1 rope scaling; Gemma 4's proportional
                                 * RoPE), or NULL */
    eng_mat_t ple_tok_emb;      /* (vocab, n_layers * ple_dim) per_layer_token_embd: layer l's
                                 * values are its ple_dim-wide chunk l */
    eng_mat_t ple_model_proj;   /* (n_layers * ple_dim, dim) per_layer_model_proj */
    const float *ple_proj_norm; /* (ple_dim,) per_layer_proj_norm */
    const eng_layer_t *layers;  /* (n_layers,) */
} eng_weights_t;

typedef struct eng_model eng_model_t;
struct eng_gguf;
struct eng_gguf_writer;

/* Opens a model file, its format detected by its first bytes: GGUF, or else a llama2.c
 * checkpoint. Every size is checked against the file before any weight is read; a bad file logs one
 * line naming the file and the problem and returns LANES_EMODEL (LANES_EIO when it cannot be opened
 * or mapped). */
int eng_model_load(const char *path, eng_model_t **out);

/* Shape presets for synthetic models: "tiny" (tests), "15m" (stories15M), "110m" (stories110M),
 * of the llama2.c architecture (run.c numerics); "SHAPE-ARCH" gives that shape another family's
 * architecture, with ggml numerics: "-llama" (Llama 3: untied classifier, base 5e5, rope_freqs),
 * "-qwen2" (q/k/v biases, NEOX), "-qwen3" (QK norm, NEOX, head_dim twice dim / n_heads, so q is
 * wider than dim), "-gpt2" (LayerNorm with biases, learned positions, GELU, biases on every
 * projection, no RoPE, untied), "-gemma3" (Gemma 3: five sliding layers to one global, window 512
 * for 15m, 1024 for 110m, 32 for tiny, context 4096, QK norm, post norms, GeGLU, NEOX, local base
 * 1e4, global 1e6 scaled by 1/8, embedding scale sqrtf(dim)), "-qwen35" (Qwen3.5: three gated
 * delta-net layers to one attention layer, (l + 1) % 4 != 0, tiny's 2 layers one of each; delta
 * nets of n_heads / 2 key and n_heads value heads of dim / n_heads; gated queries, QK norm, NEOX on
 * a quarter of each head, base 1e7, context 4096), "-gemma4" (Gemma 4 E2B's text model: four
 * sliding layers to one full, (l + 1) % 5 != 0, tiny 4 layers sliding and full in turn; full
 * layers' heads twice the sliding ones' with NEOX over all of them and rope_freqs leaving three
 * quarters of the pairs still (proportional RoPE), K = V on full layers that keep their KV; the
 * layers after the last full one within the first n - 20 n / 35 (or after the first full one:
 * 15m's last layer alone) share the KV of the last sliding or full layer before them and have
 * FFNs twice as wide; per-layer embeddings of dim / 6, V norm, layer output scales near 1,
 * attention scale 1, logit softcap 30, window and context as gemma3's, bases 1e4 and 1e6). */
int eng_model_preset(const char *name, eng_model_cfg_t *cfg);

/* Builds a deterministic random-weight model in memory (same seed, same bits on any machine) with
 * every tensor cfg's architecture has (norm weights near 1, random biases), its matrices in weight
 * type wtype (any ENG_WT_*): the fp32 draws rounded to nearest even or quantized row by row
 * with eng_quant_row (kern/quant.h), so a model is its F32 twin converted. In a quantized model
 * the embedding and the classifier are quantized too; as llama-quantize does, a matrix whose rows
 * are not whole blocks falls back (eng_wtype_fallback, logged once per row length) and learned
 * positions stay F32.
 * Vectors are F32. */
int eng_model_synth(const eng_model_cfg_t *cfg, uint64_t seed, int wtype, eng_model_t **out);

/* Writes an F32 llama2.c-architecture model as a llama2.c checkpoint; LANES_EINVAL for others. */
int eng_model_save(const eng_model_t *m, const char *path);

/* Adds a llama, gemma3, qwen35 or gemma4 model to a GGUF writer as llama.cpp names it (Llama 3.1
 * rope_freqs included; gemma3's window, layer pattern, local RoPE base and linear scaling factor;
 * qwen35's delta-net shape and tensors, layer kinds, NEOX-equivalent RoPE sections; gemma4's
 * per-layer widths and KV heads, sliding heads, shared-KV count (llama.cpp's reuse rule only),
 * per-layer embeddings, softcap, no attn_v where wv is wk, no K/V on shared layers): general.*
 * and <arch>.* keys (general.file_type as eng_wtype_file_type, general.quantization_version 2
 * when quantized), every tensor in its type (borrowed: keep m until the writer has written). LANES_EINVAL for
 * other models or a model type with no file_type; the writer's errors. */
int eng_model_to_gguf(const eng_model_t *m, struct eng_gguf_writer *w);

void eng_model_destroy(eng_model_t *m);   /* NULL is fine */

/* Borrows: valid until eng_model_destroy(). */
const eng_model_cfg_t *eng_model_cfg(const eng_model_t *m);
const eng_weights_t *eng_model_weights(const eng_model_t *m);
const char *eng_model_name(const eng_model_t *m);    /* general.name, a file name or the preset */
int eng_model_wtype(const eng_model_t *m);           /* the type of most of its matrix bytes */
/* The GGUF file a model was opened from, for the tokenizer it carries; NULL for other models. */
const struct eng_gguf *eng_model_gguf(const eng_model_t *m);

/* Bytes of all weights as stored (matrices in their type, vectors as the file holds them). */
uint64_t eng_model_weight_bytes(const eng_model_t *m);

/* Matmul flops per token (2 per weight of every projection and the classifier). */
double eng_model_flops_per_token(const eng_model_t *m);

#endif
