#ifndef ENG_NN_H
#define ENG_NN_H

/* The per-column vector pieces of the forward pass (engine.c): norms, RoPE, GELU. Each works on
 * one column and reads nothing else, so a column's bits never depend on its company. Two numerics
 * exist where the references differ: ENG_NUMERICS_RUNC reproduces llama2.c's run.c bit for bit
 * (its checkpoints' references), ENG_NUMERICS_GGML computes as ggml's CPU backend does (the GGUF
 * references), model.h. */

/* o = x / sqrt(mean(x^2) + eps) * w (o may be x). RUNC: the sum of squares in float; GGML: in
 * double, as ggml's rms_norm. */
void eng__rmsnorm(float *o, const float *x, const float *w, int n, float eps, int numerics);

/* o = (x - mean) / sqrt(var + eps) * w + b, mean and variance summed in double as ggml's norm
 * (o may be x); b NULL: no bias. */
void eng__layernorm(float *o, const float *x, const float *w, const float *b, int n, float eps);

/* x[i] = gelu(x[i]) for i < n, the tanh form: 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2))). */
void eng__gelu(float *x, int n);

/* The RoPE angles of position pos, cos/sin[i] for the pairs i < rope_dim / 2:
 * theta_i = pos * base^(-2i / rope_dim) / freqs[i] (freqs NULL: 1). RUNC: run.c's
 * pos * (1 / powf(base, 2i / rope_dim)); GGML: ggml's rope cache, theta_0 = pos and theta_{i+1} =
 * theta_i * powf(base, -2 / rope_dim) in float, divided by freqs[i]. */
void eng__rope_angles(float *cos_out, float *sin_out, int pos, int rope_dim, float base,
                      const float *freqs, int numerics);

/* Rotates the first rope_dim channels of each of n_heads heads of head_dim channels at v by the
 * angles of eng__rope_angles: mode ENG_ROPE_PAIRS rotates (2i, 2i + 1), ENG_ROPE_NEOX (i,
 * i + rope_dim / 2), as (a, b) -> (a cos - b sin, a sin + b cos). ENG_ROPE_NONE: nothing. */
void eng__rope(float *v, int n_heads, int head_dim, int rope_dim, int mode, const float *cos_t,
               const float *sin_t);

#endif
