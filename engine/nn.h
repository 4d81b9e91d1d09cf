#ifndef ENG_NN_H
#define ENG_NN_H

/* The per-column vector pieces of the forward pass (engine.c): norms, RoPE, GELU. Each works on
 * one column and reads nothing else, so a column's bits never depend on its company. Two numerics
 * exist where the references differ: ENG_NUMERICS_RUNC reproduces llama2.c's run.c bit for bit
 * (its checkpoints' references), ENG_NUMERICS_GGML computes as ggml's CPU backend does (the GGUF
 * references), model.h. */

/* o = x / sqrt(mean(x^2) + eps) * w (o may be x; w NULL: no weight, ggml_rms_norm alone). RUNC:
 * the sum of squares in float; GGML: in double, as ggml's rms_norm. */
void eng__rmsnorm(float *o, const float *x, const float *w, int n, float eps, int numerics);

/* o = (x - mean) / sqrt(var + eps) * w + b, mean and variance summed in double as ggml's norm
 * (o may be x); b NULL: no bias. */
void eng__layernorm(float *o, const float *x, const float *w, const float *b, int n, float eps);

/* x[i] = gelu(x[i]) for i < n as ggml's CPU backend computes it (every model with a GELU is a
 * ggml-numerics one, and run.c has none): x <= -10 gives 0, x >= 10 gives x, others
 * fp32(table[fp16(x)]) with table[h] = fp16(gelu_tanh(fp32(h))) computed in float, gelu_tanh(x) =
 * 0.5 x (1 + tanhf(0.7978845608 x (1 + 0.044715 x^2))), fp16 rounded to nearest even; so its input
 * and output are both rounded to fp16. The exact tanh form is closer to the real function but not
 * to the references: teacher-forced over gemma3-style.f32.gguf's 5 public references (lanes-run
 * --teacher-force, 2026-12-01) both give every id, but the table's top-1 logits are within 0.0039
 * of llama.cpp's (as FAMILIES.md's numpy emulation) and the exact form's within 0.019 only, against
 * top-2 gaps down to 0.010 (0.0013 in gemma4-style, whose exact-form error FAMILIES.md puts at 0.13).
 * The 65536-entry table is built once per process. */
void eng__gelu(float *x, int n);

/* g[i] = gelu(g[i]) * u[i] for i < n, ggml's geglu: the GELU above, then one float multiply (and 0
 * where g[i] <= -10, whatever u[i]). */
void eng__geglu(float *g, const float *u, int n);

/* x[i] = cap * tanhf(x[i] * (1 / cap)) for i < n, as ggml's scale, tanh, scale (Gemma's final
 * logit softcapping). */
void eng__softcap(float *x, int n, float cap);

/* The RoPE angles of position pos, cos/sin[i] for the pairs i < rope_dim / 2:
 * theta_i = scale * pos * base^(-2i / rope_dim) / freqs[i] (freqs NULL: 1; scale is the linear
 * scaling's freq_scale, 1 for none). RUNC (scale 1 only): run.c's pos * (1 / powf(base,
 * 2i / rope_dim)); GGML: ggml's rope cache, t_0 = pos and t_{i+1} = t_i * powf(base, -2 / rope_dim)
 * in float, then theta_i = scale * (t_i / freqs[i]) as its rope_yarn rounds it. */
void eng__rope_angles(float *cos_out, float *sin_out, int pos, int rope_dim, float base,
                      float scale, const float *freqs, int numerics);

/* Rotates the first rope_dim channels of each of n_heads heads of head_dim channels at v by the
 * angles of eng__rope_angles: mode ENG_ROPE_PAIRS rotates (2i, 2i + 1), ENG_ROPE_NEOX (i,
 * i + rope_dim / 2), as (a, b) -> (a cos - b sin, a sin + b cos). ENG_ROPE_NONE: nothing. */
void eng__rope(float *v, int n_heads, int head_dim, int rope_dim, int mode, const float *cos_t,
               const float *sin_t);

#endif
