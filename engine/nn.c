#include "nn.h"

#include <math.h>

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

void eng__gelu(float *x, int n) {
    const float sqrt_2_over_pi = 0.79788456080286535587989211986876f, coef_a = 0.044715f;
    for (int i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(sqrt_2_over_pi * v * (1.0f + coef_a * v * v)));
    }
}

void eng__rope_angles(float *cos_out, float *sin_out, int pos, int rope_dim, float base,
                      const float *freqs, int numerics) {
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
