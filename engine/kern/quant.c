#include "quant.h"

#include <math.h>
#include <string.h>

#include "base/lanes_err.h"
#include "half.h"
#include "wtype.h"

int eng_quant_act_type(int wtype) {
    switch (wtype) {
    case ENG_WT_Q8_0: case ENG_WT_Q4_0: return ENG_ACT_Q8_0;
    case ENG_WT_Q4_K: case ENG_WT_Q6_K: return ENG_ACT_Q8_K;
    default: return -1;
    }
}

int eng_quant_act_block(int act_type) { return act_type == ENG_ACT_Q8_K ? 256 : 32; }

size_t eng_qact_qs_len(int ncols, int k) { return (size_t)ncols * (size_t)k; }
size_t eng_qact_d_len(int act_type, int ncols, int k) {
    return (size_t)ncols * (size_t)(k / eng_quant_act_block(act_type));
}
size_t eng_qact_sums_len(int ncols, int k) { return (size_t)ncols * (size_t)(k / 16); }

static float f16_at(const uint8_t *p) { return eng_f16_to_f32(eng_quant_u16(p)); }

/* The 6-bit quant i (0..255) of a Q6_K block, without the -32: ggml's dequantize_row_q6_K walks two
 * halves of 128, each four runs of 32 (low nibbles of ql[0..31], of ql[32..63], high nibbles of the
 * same), with two bits of qh[l] each. */
static int q6_quant(const uint8_t *blk, int i) {
    int half = i / 128, run = i % 128 / 32, l = i % 32;
    const uint8_t *ql = blk + 64 * half, *qh = blk + ENG_Q6_K_QH + 32 * half;
    int lo = ql[l + 32 * (run & 1)];
    lo = run < 2 ? lo & 0xF : lo >> 4;
    return lo | ((qh[l] >> (2 * run)) & 3) << 4;
}

/* Sub-block (of 16) of value i of a Q6_K block, as ggml's scale index: is = l / 16, then + 2 per
 * run, + 8 per half. */
static int q6_scale_index(int i) { return 8 * (i / 128) + 2 * (i % 128 / 32) + i % 32 / 16; }

void eng_dequant_row(int wtype, float *y, const void *row, int k) {
    const uint8_t *p = row;
    int nb = k / eng_quant_block_values(wtype);
    for (int b = 0; b < nb; b++) {
        switch (wtype) {
        case ENG_WT_Q8_0: {
            const uint8_t *blk = p + (size_t)b * ENG_Q8_0_BYTES;
            float d = f16_at(blk);
            for (int i = 0; i < 32; i++) y[32 * b + i] = (float)(int8_t)blk[2 + i] * d;
            break;
        }
        case ENG_WT_Q4_0: {
            const uint8_t *blk = p + (size_t)b * ENG_Q4_0_BYTES;
            float d = f16_at(blk);
            for (int i = 0; i < 16; i++) {
                y[32 * b + i] = (float)((blk[2 + i] & 0xF) - 8) * d;
                y[32 * b + 16 + i] = (float)((blk[2 + i] >> 4) - 8) * d;
            }
            break;
        }
        case ENG_WT_Q4_K: {
            const uint8_t *blk = p + (size_t)b * ENG_Q4_K_BYTES;
            float d = f16_at(blk), dmin = f16_at(blk + 2);
            for (int s = 0; s < 8; s++) {
                int sc, m;
                eng__q4k_scale_min(s, blk + ENG_Q4_K_SCALES, &sc, &m);
                float ds = d * (float)sc, ms = dmin * (float)m;
                const uint8_t *q = blk + ENG_Q4_K_QS + 32 * (s / 2);
                for (int l = 0; l < 32; l++) {
                    int v = s % 2 ? q[l] >> 4 : q[l] & 0xF;
                    y[256 * b + 32 * s + l] = ds * (float)v - ms;
                }
            }
            break;
        }
        case ENG_WT_Q6_K: {
            const uint8_t *blk = p + (size_t)b * ENG_Q6_K_BYTES;
            float d = f16_at(blk + ENG_Q6_K_D);
            for (int i = 0; i < 256; i++) {
                float ds = d * (float)(int8_t)blk[ENG_Q6_K_SCALES + q6_scale_index(i)];
                y[256 * b + i] = ds * (float)(q6_quant(blk, i) - 32);
            }
            break;
        }
        default: return;
        }
    }
}

static void put_f16(uint8_t *p, float v) {
    uint16_t h = eng_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* ggml's nearest_int: round to nearest, ties to even, for |v| < 2^22. */
static int nearest_int(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* (int8_t)v as ggml's quantizers write it, but defined for every float: NaN (from an inf or NaN
 * weight: inf * 0 is NaN) gives 0, the low byte of what x86's conversion returns for it; values
 * outside int8's range, which finite weights never produce here, give 0 too. */
static int8_t to_i8(float v) { return v > -129.0f && v < 128.0f ? (int8_t)v : 0; }

/* One Q4_K block of x[0..256) by plain min/max scaling: each sub-block of 32 spans [min(0, lo),
 * hi] in 15 steps; the 8 steps and 8 mins are then quantized to 6 bits against the largest of
 * each (d, dmin), and every value to its nearest level of the rounded step and min. */
static void quant_q4_k_block(uint8_t *blk, const float *x) {
    float step[8], mn[8], max_step = 0.0f, max_min = 0.0f;
    for (int s = 0; s < 8; s++) {
        float lo = 0.0f, hi = x[32 * s];
        for (int l = 0; l < 32; l++) {
            float v = x[32 * s + l];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        step[s] = hi > lo ? (hi - lo) / 15.0f : 0.0f;
        mn[s] = -lo;
        max_step = step[s] > max_step ? step[s] : max_step;
        max_min = mn[s] > max_min ? mn[s] : max_min;
    }
    float d = max_step / 63.0f, dmin = max_min / 63.0f;
    put_f16(blk, d);
    put_f16(blk + 2, dmin);
    d = f16_at(blk), dmin = f16_at(blk + 2);
    uint8_t *sc = blk + ENG_Q4_K_SCALES, *qs = blk + ENG_Q4_K_QS;
    memset(sc, 0, 12);
    int scs[8], ms[8];
    for (int s = 0; s < 8; s++) {
        scs[s] = d > 0.0f ? clamp_int(nearest_int(step[s] / d), 0, 63) : 0;
        ms[s] = dmin > 0.0f ? clamp_int(nearest_int(mn[s] / dmin), 0, 63) : 0;
        if (s < 4) { /* the inverse of scale_min_k4 */
            sc[s] |= (uint8_t)scs[s];
            sc[s + 4] |= (uint8_t)ms[s];
        } else {
            sc[s + 4] = (uint8_t)((scs[s] & 0xF) | (ms[s] & 0xF) << 4);
            sc[s - 4] |= (uint8_t)(scs[s] >> 4 << 6);
            sc[s] |= (uint8_t)(ms[s] >> 4 << 6);
        }
    }
    memset(qs, 0, 128);
    for (int s = 0; s < 8; s++) {
        float ds = d * (float)scs[s], m = dmin * (float)ms[s];
        for (int l = 0; l < 32; l++) {
            int q = ds > 0.0f ? clamp_int(nearest_int((x[32 * s + l] + m) / ds), 0, 15) : 0;
            qs[32 * (s / 2) + l] |= (uint8_t)(s % 2 ? q << 4 : q);
        }
    }
}

/* One Q6_K block by plain absmax scaling: each sub-block of 16 gets the step amax / 32 (the
 * value of largest magnitude lands on -32), the 16 steps are quantized to int8 against the
 * largest, and every value to its nearest level of the rounded step. */
static void quant_q6_k_block(uint8_t *blk, const float *x) {
    float step[16], max_step = 0.0f, amax_step = 0.0f;
    for (int s = 0; s < 16; s++) {
        float amax = 0.0f, max = 0.0f;
        for (int l = 0; l < 16; l++)
            if (fabsf(x[16 * s + l]) > amax) amax = fabsf(x[16 * s + l]), max = x[16 * s + l];
        step[s] = max / -32.0f;
        if (fabsf(step[s]) > amax_step) amax_step = fabsf(step[s]), max_step = step[s];
    }
    float d = max_step / 127.0f;
    memset(blk, 0, ENG_Q6_K_BYTES);
    put_f16(blk + ENG_Q6_K_D, d);
    d = f16_at(blk + ENG_Q6_K_D);
    for (int i = 0; i < 256; i++) {
        int s = i / 16;
        int sc = d != 0.0f ? clamp_int(nearest_int(step[s] / d), -128, 127) : 0;
        blk[ENG_Q6_K_SCALES + q6_scale_index(i)] = (uint8_t)(int8_t)sc;
        float ds = d * (float)sc;
        int q = ds != 0.0f ? clamp_int(nearest_int(x[i] / ds), -32, 31) + 32 : 32;
        int half = i / 128, run = i % 128 / 32, l = i % 32; /* q6_quant's layout, written */
        uint8_t *ql = blk + 64 * half + l + 32 * (run & 1), *qh = blk + ENG_Q6_K_QH + 32 * half + l;
        *ql |= (uint8_t)(run < 2 ? q & 0xF : (q & 0xF) << 4);
        *qh |= (uint8_t)((q >> 4) << (2 * run));
    }
}

int eng_quant_row(int wtype, void *out, const float *x, int k) {
    uint8_t *p = out;
    if (wtype == ENG_WT_Q4_K || wtype == ENG_WT_Q6_K) {
        for (int b = 0; b < k / 256; b++)
            (wtype == ENG_WT_Q4_K ? quant_q4_k_block : quant_q6_k_block)(
                p + (size_t)b * eng_quant_block_bytes(wtype), x + 256 * b);
        return 0;
    }
    if (wtype != ENG_WT_Q8_0 && wtype != ENG_WT_Q4_0) return LANES_EINVAL;
    for (int b = 0; b < k / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < 32; i++)
            if (amax < fabsf(xb[i])) amax = fabsf(xb[i]), max = xb[i];
        if (wtype == ENG_WT_Q8_0) {
            uint8_t *blk = p + (size_t)b * ENG_Q8_0_BYTES;
            float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            put_f16(blk, d);
            for (int i = 0; i < 32; i++) blk[2 + i] = (uint8_t)to_i8(roundf(xb[i] * id));
        } else {
            uint8_t *blk = p + (size_t)b * ENG_Q4_0_BYTES;
            float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            put_f16(blk, d);
            for (int i = 0; i < 16; i++) {
                int lo = to_i8(xb[i] * id + 8.5f), hi = to_i8(xb[16 + i] * id + 8.5f);
                lo = lo < 15 ? lo : 15;
                hi = hi < 15 ? hi : 15;
                blk[2 + i] = (uint8_t)(lo | hi << 4);
            }
        }
    }
    return 0;
}

void eng__quantize_act_ref(const eng_qact_t *a, int col, const float *x) {
    int k = a->k, block = eng_quant_act_block(a->type);
    int8_t *qs = a->qs + (size_t)col * k;
    float *d = a->d + (size_t)col * (k / block);
    for (int b = 0; b < k / block; b++) {
        const float *xb = x + block * b;
        int8_t *q = qs + block * b;
        if (a->type == ENG_ACT_Q8_0) {
            float amax = 0.0f;
            for (int i = 0; i < 32; i++) amax = fabsf(xb[i]) > amax ? fabsf(xb[i]) : amax;
            float id = amax != 0.0f ? 127.0f / amax : 0.0f;
            d[b] = eng_f16_to_f32(eng_f32_to_f16(amax / 127.0f));
            for (int i = 0; i < 32; i++) q[i] = (int8_t)nearest_int(xb[i] * id);
        } else {
            float amax = 0.0f, max = 0.0f;
            for (int i = 0; i < 256; i++)
                if (fabsf(xb[i]) > amax) amax = fabsf(xb[i]), max = xb[i];
            if (amax == 0.0f) {
                d[b] = 0.0f;
                memset(q, 0, 256);
                continue;
            }
            float iscale = -127.0f / max;
            for (int i = 0; i < 256; i++) {
                int v = nearest_int(iscale * xb[i]);
                q[i] = (int8_t)(v < 127 ? v : 127);
            }
            d[b] = 1.0f / iscale;
        }
    }
    int16_t *sums = a->sums + (size_t)col * (k / 16);
    for (int g = 0; g < k / 16; g++) {
        int s = 0;
        for (int i = 0; i < 16; i++) s += qs[16 * g + i];
        sums[g] = (int16_t)s;
    }
}

/* One output element in the canonical order (quant.h). */
static float dot_q(int wtype, const uint8_t *w, const eng_qact_t *a, int col) {
    int k = a->k, block = eng_quant_block_values(wtype), nb = k / block;
    const int8_t *x = a->qs + (size_t)col * k;
    const float *dx = a->d + (size_t)col * nb;
    const int16_t *sums = a->sums + (size_t)col * (k / 16);
    float acc = 0.0f;
    for (int b = 0; b < nb; b++) {
        const int8_t *xb = x + block * b;
        int32_t isum = 0;
        float dw;
        switch (wtype) {
        case ENG_WT_Q8_0: {
            const uint8_t *blk = w + (size_t)b * ENG_Q8_0_BYTES;
            dw = f16_at(blk);
            for (int i = 0; i < 32; i++) isum += (int8_t)blk[2 + i] * xb[i];
            break;
        }
        case ENG_WT_Q4_0: {
            const uint8_t *blk = w + (size_t)b * ENG_Q4_0_BYTES;
            dw = f16_at(blk);
            for (int i = 0; i < 16; i++)
                isum += ((blk[2 + i] & 0xF) - 8) * xb[i] + ((blk[2 + i] >> 4) - 8) * xb[16 + i];
            break;
        }
        case ENG_WT_Q4_K: {
            const uint8_t *blk = w + (size_t)b * ENG_Q4_K_BYTES;
            dw = f16_at(blk);
            int32_t msum = 0;
            for (int s = 0; s < 8; s++) {
                int sc, m;
                eng__q4k_scale_min(s, blk + ENG_Q4_K_SCALES, &sc, &m);
                const uint8_t *q = blk + ENG_Q4_K_QS + 32 * (s / 2);
                int32_t sub = 0;
                for (int l = 0; l < 32; l++)
                    sub += (s % 2 ? q[l] >> 4 : q[l] & 0xF) * xb[32 * s + l];
                isum += sc * sub;
                msum += m * (sums[16 * b + 2 * s] + sums[16 * b + 2 * s + 1]);
            }
            acc = acc + dw * dx[b] * (float)isum;
            acc = acc - f16_at(blk + 2) * dx[b] * (float)msum;
            continue;
        }
        case ENG_WT_Q6_K: {
            const uint8_t *blk = w + (size_t)b * ENG_Q6_K_BYTES;
            dw = f16_at(blk + ENG_Q6_K_D);
            for (int s = 0; s < 16; s++) {
                int32_t sub = 0;
                for (int l = 0; l < 16; l++) {
                    int i = 16 * s + l;
                    sub += (q6_quant(blk, i) - 32) * xb[i];
                }
                isum += (int8_t)blk[ENG_Q6_K_SCALES + q6_scale_index(16 * s)] * sub;
            }
            break;
        }
        default: return 0.0f;
        }
        acc = acc + dw * dx[b] * (float)isum;
    }
    return acc;
}

void eng__gemm_q_ref(float *y, ptrdiff_t yrs, ptrdiff_t ycs, int wtype, const void *w,
                     const eng_qact_t *a, int rows, int ncols, int accumulate) {
    size_t row_bytes =
        (size_t)(a->k / eng_quant_block_values(wtype)) * eng_quant_block_bytes(wtype);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ncols; c++) {
            float *o = y + c * ycs + r * yrs;
            float v = dot_q(wtype, (const uint8_t *)w + (size_t)r * row_bytes, a, c);
            *o = accumulate ? *o + v : v;
        }
}
