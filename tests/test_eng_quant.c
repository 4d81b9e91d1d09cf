/* The block-quantized weight formats (kern/quant.h): dequantization bit for bit equal to ggml's
 * (shared/models/gguf/dequant/, every dumped tensor of every quantized q4-style file), the weight
 * quantizers against their definition, and the activation quantizers' invariants. */
#include <math.h>

#include "kern/quant.h"
#include "model/gguf.h"
#include "model/model.h"
#include "test_util.h"

static int g_checked;

/* Every dumped tensor of one model: our dequantizer against ggml's, row by row. */
static void check_dequant(const char *shared, const char *model) {
    static const char *tensors[] = {"blk.0.attn_q.weight", "blk.0.ffn_down.weight", "output.weight",
                                    "token_embd.weight"};
    char path[4096];
    snprintf(path, sizeof path, "%s/models/gguf/%s.gguf", shared, model);
    eng_gguf_t *g;
    ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
    for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_find(g, tensors[i]);
        ASSERT(t != NULL && t->n_dims == 2);
        int k = (int)t->dims[0], rows = (int)t->dims[1];
        ASSERT_EQ(eng_wtype_row_bytes((int)t->type, k) * (size_t)rows, t->bytes);
        snprintf(path, sizeof path, "%s/models/gguf/dequant/%s.%s.f32", shared, model, tensors[i]);
        size_t n;
        char *want = test_read_file(path, &n);
        ASSERT_EQ(n, (size_t)rows * k * sizeof(float));
        float *got = malloc((size_t)k * sizeof *got);
        for (int r = 0; r < rows; r++) {
            eng_dequant_row((int)t->type, got,
                            (const char *)t->data + eng_wtype_row_bytes((int)t->type, k) * r, k);
            if (memcmp(got, want + (size_t)r * k * sizeof(float), (size_t)k * sizeof *got) != 0) {
                fprintf(stderr, "%s %s (%s): row %d differs from ggml's dequantization\n", model,
                        tensors[i], eng_wtype_name((int)t->type), r);
                exit(1);
            }
        }
        fprintf(stderr, "dequant %s %s (%s): %d rows equal ggml's\n", model, tensors[i],
                eng_wtype_name((int)t->type), rows);
        g_checked++;
        free(got);
        free(want);
    }
    eng_gguf_close(g);
}

/* The value of activation i of column 0 as the quantizer left it. */
static double act_value(const eng_qact_t *a, int i) {
    return (double)a->qs[i] * (double)a->d[i / eng_quant_act_block(a->type)];
}

/* gemm_q's reference against a double dot of the dequantized weights and activations (the
 * integer block dots are exact, so only fp32 rounding separates them), on the first rows of a
 * real tensor of each type: this pins the meaning of every quant, scale and min. */
static void check_dot(const char *shared, const char *model, const char *tensor, uint64_t seed) {
    char path[4096];
    snprintf(path, sizeof path, "%s/models/gguf/%s.gguf", shared, model);
    eng_gguf_t *g;
    ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
    const eng_gguf_tensor_t *t = eng_gguf_tensor_find(g, tensor);
    ASSERT(t != NULL);
    int type = (int)t->type, k = (int)t->dims[0], rows = 16, act = eng_quant_act_type(type);
    float *x = malloc((size_t)k * sizeof *x), *w = malloc((size_t)k * sizeof *w);
    for (int i = 0; i < k; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 2.0 - 1.0) * (i % 7 ? 1.0f : 5.0f);
    }
    eng_qact_t a = {act, k, malloc(eng_qact_qs_len(1, k)),
                    malloc(eng_qact_d_len(act, 1, k) * sizeof(float)),
                    malloc(eng_qact_sums_len(1, k) * sizeof(int16_t))};
    eng__quantize_act_ref(&a, 0, x);
    for (int i = 0; i < k; i++) /* the quantization error stays within half a step */
        ASSERT(fabs(act_value(&a, i) - x[i]) <= 0.5 * fabs(a.d[i / eng_quant_act_block(act)]) * 1.0001 +
                                                       fabs(x[i]) * 1e-3);
    for (int gi = 0; gi < k / 16; gi++) {
        int s = 0;
        for (int i = 0; i < 16; i++) s += a.qs[16 * gi + i];
        ASSERT_EQ(a.sums[gi], s);
    }
    float y[16];
    eng__gemm_q_ref(y, 1, 0, type, t->data, &a, rows, 1, 0);
    size_t rb = eng_wtype_row_bytes(type, k);
    for (int r = 0; r < rows; r++) {
        eng_dequant_row(type, w, (const char *)t->data + rb * r, k);
        double want = 0.0, mag = 0.0;
        for (int i = 0; i < k; i++) {
            want += (double)w[i] * act_value(&a, i);
            mag += fabs((double)w[i] * act_value(&a, i));
        }
        if (fabs(y[r] - want) > 1e-5 * mag + 1e-30) {
            fprintf(stderr, "%s %s row %d: gemm_q %.9g, dequantized dot %.9g\n", model, tensor, r,
                    y[r], want);
            exit(1);
        }
    }
    fprintf(stderr, "dot %s %s (%s x %s): %d rows agree with the dequantized dot\n", model, tensor,
            eng_wtype_name(type), act == ENG_ACT_Q8_0 ? "Q8_0" : "Q8_K", rows);
    free(a.qs), free(a.d), free(a.sums), free(x), free(w);
    eng_gguf_close(g);
}

/* Every quantizer: dequantize(quantize(x)) stays near x. Q8_0 and Q4_0 within half a step of
 * their block (Q4_0's top level is clamped: one step), the plain Q4_K/Q6_K scaling within its
 * error budget, and the relative RMS error as small as those formats allow. */
static void check_roundtrip(int wtype, double max_rel_rms) {
    int k = 512, rows = 64;
    size_t rb = eng_wtype_row_bytes(wtype, k);
    uint8_t *q = malloc(rb);
    float *x = malloc(k * sizeof *x), *y = malloc(k * sizeof *y);
    double err2 = 0.0, sum2 = 0.0;
    uint64_t seed = 77;
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < k; i++) { /* roughly normal, a few outliers, a zero block */
            double u = 0.0;
            for (int j = 0; j < 4; j++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                u += (double)(seed >> 11) / 9007199254740992.0 - 0.5;
            }
            x[i] = (float)(u * (i % 97 == 0 ? 8.0 : 1.0)) * (r == 3 && i < 256 ? 0.0f : 0.1f);
        }
        ASSERT_EQ(eng_quant_row(wtype, q, x, k), 0);
        eng_dequant_row(wtype, y, q, k);
        int block = eng_quant_block_values(wtype);
        for (int b = 0; b < k / block; b++) {
            float amax = 0.0f;
            for (int i = 0; i < block; i++) amax = fmaxf(amax, fabsf(x[b * block + i]));
            /* a step of the block's coarsest level, and the fp16 rounding of the scale (2^-11 of
             * up to 127 steps) */
            double step = amax / (wtype == ENG_WT_Q8_0 ? 127.0 : wtype == ENG_WT_Q6_K ? 31.0 : 7.5);
            for (int i = 0; i < block; i++) {
                double e = fabs((double)y[b * block + i] - x[b * block + i]);
                if (e > step * (wtype == ENG_WT_Q8_0 ? 0.5 : 1.0) + amax * 0x1p-10 + 1e-7) {
                    fprintf(stderr, "%s row %d value %d: %g became %g (step %g)\n",
                            eng_wtype_name(wtype), r, b * block + i, x[b * block + i],
                            y[b * block + i], step);
                    exit(1);
                }
                err2 += e * e;
                sum2 += (double)x[b * block + i] * x[b * block + i];
            }
        }
    }
    double rel = sqrt(err2 / sum2);
    fprintf(stderr, "roundtrip %s: relative RMS error %.4f (bound %.3f)\n", eng_wtype_name(wtype),
            rel, max_rel_rms);
    ASSERT(rel < max_rel_rms);
    free(q), free(x), free(y);
}

/* An inf or NaN weight is written as ggml's x86 build writes it (quant 0; inf makes the block's
 * scale inf), defined behaviour where a float-to-int8 conversion of NaN is not (the UBSan build
 * checks float-cast-overflow). */
static void check_nonfinite(void) {
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = (float)(i - 16) / 16.0f;
    x[3] = NAN;
    uint8_t q8[34], q4[18];
    ASSERT_EQ(eng_quant_row(ENG_WT_Q8_0, q8, x, 32), 0);
    ASSERT_EQ(q8[2 + 3], 0);
    ASSERT_EQ((int8_t)q8[2 + 0], -127);
    ASSERT_EQ(eng_quant_row(ENG_WT_Q4_0, q4, x, 32), 0);
    ASSERT_EQ(q4[2 + 3] & 0xF, 0);
    x[5] = INFINITY;
    ASSERT_EQ(eng_quant_row(ENG_WT_Q8_0, q8, x, 32), 0);
    for (int i = 0; i < 32; i++) ASSERT_EQ(q8[2 + i], 0);
    ASSERT_EQ(q8[0] | q8[1] << 8, 0x7c00);   /* d = inf */
    fprintf(stderr, "non-finite weights: quantized to 0, as ggml on x86\n");
}

int main(void) {
    check_nonfinite();
    check_roundtrip(ENG_WT_Q8_0, 0.01);
    check_roundtrip(ENG_WT_Q4_0, 0.16);
    check_roundtrip(ENG_WT_Q4_K, 0.11);
    check_roundtrip(ENG_WT_Q6_K, 0.03);
    const char *shared;
    SKIP_WITHOUT_SHARED(shared);
    static const char *models[] = {"q4-style.q4_0", "q4-style.q4_k_m", "q4-style.q6_k",
                                   "q4-style.q8_0"};
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) check_dequant(shared, models[i]);
    ASSERT_EQ(g_checked, 16);
    check_dot(shared, "q4-style.q8_0", "blk.0.ffn_down.weight", 1);
    check_dot(shared, "q4-style.q4_0", "blk.0.ffn_down.weight", 2);
    check_dot(shared, "q4-style.q4_k_m", "blk.0.ffn_down.weight", 3);
    check_dot(shared, "q4-style.q6_k", "blk.0.ffn_down.weight", 4);
    check_dot(shared, "q4-style.q4_k_m", "blk.3.ffn_down.weight", 5); /* Q6_K in a Q4_K_M file */
    return 0;
}
