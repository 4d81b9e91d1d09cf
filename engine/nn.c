#include "nn.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "kern/half.h"
#include "model/model.h"

void eng__rmsnorm(float *o, const float *x, const float *w, int n, float eps, int numerics) {
    float ss;
    if (numerics == ENG_NUMERICS_RUNC) {
        ss = 0.0f;
        for (int j = 0; j < n; j++) ss += x[j] * x[j];
        ss /= (float)n;
    } else {
        double sum = 0.0;
        for (int j = 0; j < n; j++) sum += (double)(x[j] * x[j]);
        ss = (float)(sum / n);
    }
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    if (w == NULL)
        for (int j = 0; j < n; j++) o[j] = ss * x[j];
    else
        for (int j = 0; j < n; j++) o[j] = w[j] * (ss * x[j]);
}

void eng__layernorm(float *o, const float *x, const float *w, const float *b, int n, float eps) {
    double sum = 0.0;
    for (int j = 0; j < n; j++) sum += (double)x[j];
    float mean = (float)(sum / n);
    double sum2 = 0.0;
    for (int j = 0; j < n; j++) {
        float v = x[j] - mean;
        sum2 += (double)(v * v);
    }
    float scale = 1.0f / sqrtf((float)(sum2 / n) + eps);
    for (int j = 0; j < n; j++) {
        float v = (x[j] - mean) * scale * w[j];
        o[j] = b ? v + b[j] : v;
    }
}

/* ggml's ggml_gelu_f32, the float expression its table is filled from. */
static float gelu_tanh_f32(float x) {
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f, coef_a = 0.044715f;
    return 0.5f * x * (1.0f + tanhf(sqrt_2_over_pi * x * (1.0f + coef_a * x * x)));
}

static uint16_t gelu_table[1 << 16];
static pthread_once_t gelu_once = PTHREAD_ONCE_INIT;

static void gelu_table_init(void) {
    for (uint32_t h = 0; h < 1u << 16; h++)
        gelu_table[h] = eng_f32_to_f16(gelu_tanh_f32(eng_f16_to_f32((uint16_t)h)));
}

/* The table's GELU of x in (-10, 10) (gelu_once done). */
static float gelu_lookup(float x) { return eng_f16_to_f32(gelu_table[eng_f32_to_f16(x)]); }

void eng__gelu(float *x, int n) {
    pthread_once(&gelu_once, gelu_table_init);
    for (int i = 0; i < n; i++)
        if (x[i] <= -10.0f) x[i] = 0.0f;
        else if (x[i] < 10.0f) x[i] = gelu_lookup(x[i]);
}

void eng__geglu(float *g, const float *u, int n) {
    pthread_once(&gelu_once, gelu_table_init);
    for (int i = 0; i < n; i++)
        g[i] = g[i] <= -10.0f ? 0.0f : g[i] >= 10.0f ? g[i] * u[i] : gelu_lookup(g[i]) * u[i];
}

void eng__softcap(float *x, int n, float cap) {
    float inv = 1.0f / cap;
    for (int i = 0; i < n; i++) x[i] = cap * tanhf(x[i] * inv);
}

void eng__rope_angles(float *cos_out, float *sin_out, int pos, int rope_dim, float base,
                      float scale, const float *freqs, int numerics) {
    if (rope_dim <= 0) return;
    float theta = (float)pos, theta_scale = powf(base, -2.0f / (float)rope_dim);
    for (int i = 0; i < rope_dim / 2; i++) {
        float t;
        if (numerics == ENG_NUMERICS_RUNC) {
            t = (float)pos * (1.0f / powf(base, (float)(2 * i) / (float)rope_dim));
        } else {
            t = theta;
            theta *= theta_scale;
        }
        if (freqs) t /= freqs[i];
        t *= scale;
        cos_out[i] = cosf(t);
        sin_out[i] = sinf(t);
    }
}

void eng__rope(float *v, int n_heads, int head_dim, int rope_dim, int mode, const float *cos_t,
               const float *sin_t) {
    if (mode == ENG_ROPE_NONE) return;
    int half = rope_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *hv = v + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            float *a = mode == ENG_ROPE_NEOX ? hv + i : hv + 2 * i;
            float *b = mode == ENG_ROPE_NEOX ? hv + i + half : hv + 2 * i + 1;
            float v0 = *a, v1 = *b;
            *a = v0 * cos_t[i] - v1 * sin_t[i];
            *b = v0 * sin_t[i] + v1 * cos_t[i];
        }
    }
}
