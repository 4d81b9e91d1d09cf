#ifndef ENG_DNET_H
#define ENG_DNET_H

/* The gated delta net mixer of Qwen3.5's linear-attention layers (llama.cpp's qwen35 with its
 * fused ggml_gated_delta_net op; ../shared/models/gguf/FAMILIES.md, "5. qwen35-style"), as the
 * per-lane arithmetic between the layer's projections and ssm_out. The GEMMs (W_qkv, W_gate,
 * W_beta, W_alpha, then ssm_out) stay in the engine, batched over lanes; these functions read one
 * lane's state and that lane's projections only, in one fixed order, so a lane's bits never
 * depend on its company, the thread that runs it or how its prompt was chunked. */
#include <stddef.h>

typedef struct {
    int n_k_heads;      /* K: query and key heads (ssm.group_count) */
    int n_v_heads;      /* H: value heads (ssm.time_step_rank), a multiple of K */
    int head_dim;       /* d: of q, k and v (ssm.state_size) */
    int conv_kernel;    /* taps of the short causal convolution (ssm.conv_kernel) */
    float eps;          /* of the l2 norms of q and k and the rms norm of the output (rms eps) */
} eng_dnet_shape_t;

/* The layer's small weights, fp32, borrowed for the call. */
typedef struct {
    const float *conv;      /* (channels, conv_kernel) ssm_conv1d: row c = channel c's taps, the
                             * oldest token's first, the current token's last */
    const float *dt_bias;   /* (H,) ssm_dt.bias */
    const float *a;         /* (H,) ssm_a = -exp(A_log) */
    const float *norm;      /* (d,) ssm_norm, one head's */
} eng_dnet_weights_t;

/* One lane's projections of its tokens, as the GEMMs leave them, borrowed for the call. ld_*:
 * floats from one token's vector to the next's (eng__dnet_prefill only). */
typedef struct {
    const float *qkv;       /* (channels,) W_qkv h: q (K d), k (K d), v (H d), heads in order */
    const float *gate;      /* (H d,) z = W_gate h */
    const float *beta;      /* (H,) W_beta h, before its sigmoid */
    const float *alpha;     /* (H,) W_alpha h, before dt_bias and softplus */
    size_t ld_qkv, ld_gate, ld_beta, ld_alpha;
} eng_dnet_in_t;

/* LANES_OK, or LANES_EINVAL (logged) for a shape the step cannot run: a count below 1, H not a
 * multiple of K, eps not positive, or a lane's state or scratch past INT_MAX floats. */
int eng__dnet_shape_check(const eng_dnet_shape_t *s);

/* Floats a shape's pieces take: the conv input channels 2 K d + H d; one lane's conv state
 * (conv_kernel - 1, channels), the previous tokens' qkv rows oldest first; one lane's recurrent
 * state (H, d, d), head j's S[i][c] (i key dim, c value dim) at j d d + i d + c (ggml stores it
 * transposed; this way every loop of the step runs along contiguous c); their sum, which is
 * what one lane holds per delta-net layer ([conv | recurrent]), whatever its context length; and
 * the step's scratch. */
int eng__dnet_channels(const eng_dnet_shape_t *s);
size_t eng__dnet_conv_floats(const eng_dnet_shape_t *s);
size_t eng__dnet_rec_floats(const eng_dnet_shape_t *s);
size_t eng__dnet_state_floats(const eng_dnet_shape_t *s);
size_t eng__dnet_scratch_floats(const eng_dnet_shape_t *s);

/* Zeroes a lane's state (eng__dnet_state_floats), as at a sequence's start: call it whenever a
 * lane takes a new stream. */
void eng__dnet_reset(const eng_dnet_shape_t *s, float *state);

/* One token of one lane: updates state (conv rows shifted, S decayed and written) and writes
 * out (H d,) = concat_j rms(o_j) * ssm_norm * silu(z_j), the input of ssm_out. scratch holds
 * eng__dnet_scratch_floats floats; none of the buffers overlap. */
void eng__dnet_step(const eng_dnet_shape_t *s, const eng_dnet_weights_t *w, float *state,
                    const eng_dnet_in_t *in, float *out, float *scratch);

/* n tokens of one lane in order, token t's vectors at in's pointers + t ld_*, its output at
 * out + t ld_out: the same bits as n calls of eng__dnet_step, so a prompt chunked any way ends in
 * the same state. */
void eng__dnet_prefill(const eng_dnet_shape_t *s, const eng_dnet_weights_t *w, float *state,
                       const eng_dnet_in_t *in, int n, float *out, size_t ld_out,
                       float *scratch);

#endif
