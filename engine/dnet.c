#include "dnet.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "kern/vexp.h"
#include "model/model.h"
#include "nn.h"

int eng__dnet_shape_check(const eng_dnet_shape_t *s) {
    int K = s->n_k_heads, H = s->n_v_heads, d = s->head_dim;
    if (K < 1 || H < 1 || d < 1 || s->conv_kernel < 1 || H % K != 0 || !(s->eps > 0.0f) ||
        !isfinite(s->eps)) {
        LANES_LOG(LANES_LOG_ERROR, "dnet: bad shape: %d key heads, %d value heads (a multiple of "
                  "them), head dim %d, conv kernel %d, eps %g", K, H, d, s->conv_kernel,
                  (double)s->eps);
        return LANES_EINVAL;
    }
    /* Everything below is then computed in int or size_t without overflow. */
    int64_t ch = (2 * (int64_t)K + H) * d;
    int64_t state = (s->conv_kernel - 1) * ch + (int64_t)H * d * d, scratch = ch + d;
    if (ch > INT_MAX || state > INT_MAX || scratch > INT_MAX) {
        LANES_LOG(LANES_LOG_ERROR, "dnet: %d key heads, %d value heads of %d and a %d-tap "
                  "convolution need more than %d floats per lane", K, H, d, s->conv_kernel,
                  INT_MAX);
        return LANES_EINVAL;
    }
    return LANES_OK;
}

int eng__dnet_channels(const eng_dnet_shape_t *s) {
    return (2 * s->n_k_heads + s->n_v_heads) * s->head_dim;
}

size_t eng__dnet_conv_floats(const eng_dnet_shape_t *s) {
    return (size_t)(s->conv_kernel - 1) * (size_t)eng__dnet_channels(s);
}

size_t eng__dnet_rec_floats(const eng_dnet_shape_t *s) {
    return (size_t)s->n_v_heads * (size_t)s->head_dim * (size_t)s->head_dim;
}

size_t eng__dnet_state_floats(const eng_dnet_shape_t *s) {
    return eng__dnet_conv_floats(s) + eng__dnet_rec_floats(s);
}

size_t eng__dnet_scratch_floats(const eng_dnet_shape_t *s) {
    return (size_t)eng__dnet_channels(s) + (size_t)s->head_dim;
}

void eng__dnet_reset(const eng_dnet_shape_t *s, float *state) {
    memset(state, 0, eng__dnet_state_floats(s) * sizeof *state);
}

/* x / max(||x||, eps), the sum of squares in double as ggml_l2_norm. */
static void l2_norm(float *x, int n, float eps) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    float scale = 1.0f / fmaxf(sqrtf((float)sum), eps);
    for (int i = 0; i < n; i++) x[i] *= scale;
}

/* One value head's recurrence over its (d, d) state S, as ggml's gated_delta_net kernel orders
 * it: decay, the rank-1 delta update, then the read-out o = S^T q / sqrt(d). Each of the two
 * passes walks the rows i of S in order and works along c only, so every sum over i is
 * accumulated in ascending i whatever width the compiler vectorises c with (the same bits at -O0
 * and with -O3 -march=native); restrict, as none of the buffers overlap, spares those loops their
 * alias checks. */
static void head_step(float *restrict S, float *restrict o, float *restrict delta,
                      const float *restrict q, const float *restrict k, const float *restrict v,
                      float decay, float beta, int d) {
    for (int c = 0; c < d; c++) delta[c] = 0.0f, o[c] = 0.0f;
    for (int i = 0; i < d; i++) {
        float *row = S + (size_t)i * d, ki = k[i];
        for (int c = 0; c < d; c++) {
            row[c] *= decay;
            delta[c] += row[c] * ki;
        }
    }
    for (int c = 0; c < d; c++) delta[c] = (v[c] - delta[c]) * beta;
    for (int i = 0; i < d; i++) {
        float *row = S + (size_t)i * d, ki = k[i], qi = q[i];
        for (int c = 0; c < d; c++) {
            row[c] += ki * delta[c];
            o[c] += row[c] * qi;
        }
    }
    float scale = 1.0f / sqrtf((float)d);
    for (int c = 0; c < d; c++) o[c] *= scale;
}

void eng__dnet_step(const eng_dnet_shape_t *s, const eng_dnet_weights_t *w, float *state,
                    const eng_dnet_in_t *in, float *out, float *scratch) {
    int K = s->n_k_heads, H = s->n_v_heads, d = s->head_dim, taps = s->conv_kernel;
    int ch = eng__dnet_channels(s);
    float *conv = state, *rec = state + eng__dnet_conv_floats(s);
    float *cv = scratch, *delta = scratch + ch;
    const float *m = in->qkv;

    /* The causal convolution over this token and the taps - 1 before it (zeros before the
     * sequence's first), no bias, then silu (a loop of its own, which vectorises); the stored
     * rows then move up by one token. */
    for (int i = 0; i < ch; i++) {
        const float *tap = w->conv + (size_t)i * taps;
        float sum = 0.0f;
        for (int t = 0; t < taps - 1; t++) sum += tap[t] * conv[(size_t)t * ch + i];
        cv[i] = sum + tap[taps - 1] * m[i];
    }
    for (int i = 0; i < ch; i++) cv[i] = eng_swiglu1(cv[i], 1.0f);
    if (taps > 1) {
        memmove(conv, conv + ch, (size_t)(taps - 2) * ch * sizeof *conv);
        memcpy(conv + (size_t)(taps - 2) * ch, m, (size_t)ch * sizeof *conv);
    }

    for (int h = 0; h < 2 * K; h++) l2_norm(cv + (size_t)h * d, d, s->eps);
    const float *q = cv, *k = cv + (size_t)K * d, *v = cv + (size_t)2 * K * d;
    for (int j = 0; j < H; j++) {
        /* Value head j reads key head j mod K: ggml tiles the key heads over the value heads
         * (the converter orders the value heads so), it does not repeat each K / H times. */
        int kh = j % K;
        float beta = 1.0f / (1.0f + eng_vexpf(-in->beta[j]));
        float x = in->alpha[j] + w->dt_bias[j];
        float softplus = x > 20.0f ? x : logf(1.0f + eng_vexpf(x));
        float decay = eng_vexpf(softplus * w->a[j]);
        float *o = out + (size_t)j * d;
        head_step(rec + (size_t)j * d * d, o, delta, q + (size_t)kh * d, k + (size_t)kh * d,
                  v + (size_t)j * d, decay, beta, d);
        eng__rmsnorm(o, o, w->norm, d, s->eps, ENG_NUMERICS_GGML);
        for (int c = 0; c < d; c++) o[c] = eng_swiglu1(in->gate[(size_t)j * d + c], o[c]);
    }
}

void eng__dnet_prefill(const eng_dnet_shape_t *s, const eng_dnet_weights_t *w, float *state,
                       const eng_dnet_in_t *in, int n, float *out, size_t ld_out,
                       float *scratch) {
    for (int t = 0; t < n; t++) {
        eng_dnet_in_t tok = *in;
        tok.qkv += (size_t)t * in->ld_qkv;
        tok.gate += (size_t)t * in->ld_gate;
        tok.beta += (size_t)t * in->ld_beta;
        tok.alpha += (size_t)t * in->ld_alpha;
        eng__dnet_step(s, w, state, &tok, out + (size_t)t * ld_out, scratch);
    }
}
