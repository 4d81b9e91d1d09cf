/* The checkpoint loader: a table of crafted bad files, each rejected with a clear error and no
 * over-read (run under ASan+UBSan in CI); synthetic models save and load back bit for bit. */
#include <stdint.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "model/model.h"
#include "test_util.h"

static char dir[] = "/tmp/lanes-test-model-XXXXXX";

static const char *write_file(const char *name, const void *data, size_t len) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT(len == 0 || fwrite(data, 1, len, f) == len);
    fclose(f);
    return path;
}

/* A file holding the header h followed by n_floats zero floats. */
static const char *write_model(const char *name, const int32_t h[7], size_t n_floats) {
    size_t len = 28 + n_floats * 4;
    char *buf = calloc(1, len);
    memcpy(buf, h, 28);
    const char *p = write_file(name, buf, len);
    free(buf);
    return p;
}

static size_t floats_for(const int32_t h[7]) {
    size_t d = h[0], hid = h[1], l = h[2], heads = h[3], kvh = h[4], v = h[5] < 0 ? -h[5] : h[5];
    size_t kv = d * kvh / heads, hs = d / heads;
    return v * d + l * d + 2 * l * d * d + 2 * l * d * kv + l * d + 3 * l * hid * d + d +
           (size_t)h[6] * hs + (h[5] < 0 ? v * d : 0);
}

static void expect_reject(const char *what, const char *path, int want) {
    eng_model_t *m = NULL;
    int rc = eng_model_load(path, &m);
    if (rc != want) {
        fprintf(stderr, "%s: got %s, want %s\n", what, lanes_err_name(rc), lanes_err_name(want));
        exit(1);
    }
    ASSERT(m == NULL);
}

/* The -gemma4 presets follow Gemma 4 E2B's rules on every shape: sliding layers but the last of
 * each period (E2B's 5; tiny's 2), a shared block after a full layer whose layers read the last
 * sliding or full layer before it, FFNs twice as wide there, and a synthetic model with no K/V of
 * the shared layers' own, V = K on the full layers that keep their KV, and the flops of the
 * matrices it has. */
static void check_gemma4_presets(void) {
    static const struct { const char *name; int layers, period, shared; } want[] = {
        {"tiny-gemma4", 4, 2, 2}, {"15m-gemma4", 6, 5, 1}, {"110m-gemma4", 12, 5, 7}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        eng_model_cfg_t c;
        ASSERT_EQ(eng_model_preset(want[i].name, &c), LANES_OK);
        ASSERT_EQ(c.n_layers, want[i].layers);
        int start = c.n_layers - want[i].shared;
        ASSERT(!c.layer_swa[start - 1] && c.layer_swa[start - 2]);
        for (int l = 0; l < c.n_layers; l++) {
            ASSERT_EQ(c.layer_swa[l], l % want[i].period != want[i].period - 1);
            int src = l < start ? l : c.layer_swa[l] ? start - 2 : start - 1;
            ASSERT_EQ(l - c.layer_kv_reuse[l], src);
            ASSERT_EQ(c.layer_hidden[l], l < start ? 0 : 2 * c.hidden_dim);
        }
        ASSERT(c.head_dim == 2 * c.head_dim_swa && c.rope_dim == c.head_dim && c.ple_dim > 0);
        eng_model_t *m;
        ASSERT_EQ(eng_model_synth(&c, 1, ENG_WT_F32, &m), LANES_OK);
        const eng_weights_t *w = eng_model_weights(m);
        double flops = 2.0 * c.dim * ((double)c.vocab_size + (double)c.n_layers * c.ple_dim);
        for (int l = 0; l < c.n_layers; l++) {
            const eng_layer_t *lw = &w->layers[l];
            int hd = eng_layer_head_dim(&c, l), kv = c.n_kv_heads * hd, h = eng_layer_hidden(&c, l);
            ASSERT((lw->wk.data == NULL) == (l >= start) && (lw->k_norm == NULL) == (l >= start));
            ASSERT((lw->wv.data == lw->wk.data) == (l >= start || !c.layer_swa[l]));
            ASSERT(lw->out_scale && lw->ple_gate.data && lw->ple_proj.data && lw->ple_post_norm);
            flops += 2.0 * ((double)c.n_heads * hd * c.dim * 2 + 3.0 * h * c.dim +
                            2.0 * c.ple_dim * c.dim +
                            (l < start) * (1.0 + c.layer_swa[l]) * kv * c.dim);   /* wk, wv */
        }
        ASSERT(w->rope_freqs[0] == 1.0f && w->rope_freqs[c.rope_dim / 2 - 1] == 1e30f);
        ASSERT(eng_model_flops_per_token(m) == flops);
        eng_model_destroy(m);
    }
    printf("gemma4 presets: E2B's layer pattern, shared KV and V = K on every shape\n");
}

int main(void) {
    check_gemma4_presets();
    ASSERT(mkdtemp(dir) != NULL);
    lanes_log_level = LANES_LOG_ERROR;   /* each rejection prints its one line: part of the check */
    const int32_t good[7] = {64, 172, 2, 4, 2, 512, 32};
    size_t n = floats_for(good);

    /* The well-formed file loads, so every rejection below is about the one thing changed. */
    eng_model_t *m = NULL;
    ASSERT_EQ(eng_model_load(write_model("good.bin", good, n), &m), LANES_OK);
    ASSERT_EQ(eng_model_cfg(m)->n_kv_heads, 2);
    ASSERT_EQ(eng_model_cfg(m)->shared_cls, 1);
    eng_model_destroy(m);
    const int32_t unshared[7] = {64, 172, 2, 4, 2, -512, 32};
    ASSERT_EQ(eng_model_load(write_model("unshared.bin", unshared, floats_for(unshared)), &m),
              LANES_OK);
    ASSERT_EQ(eng_model_cfg(m)->shared_cls, 0);
    ASSERT(eng_model_weights(m)->cls.data != eng_model_weights(m)->tok_emb.data);
    eng_model_destroy(m);

    expect_reject("missing file", "/nonexistent/lanes/model.bin", LANES_EIO);
    expect_reject("directory", dir, LANES_EMODEL);
    expect_reject("empty file", write_file("empty.bin", "", 0), LANES_EMODEL);
    expect_reject("short header", write_file("short.bin", good, 20), LANES_EMODEL);
    expect_reject("truncated weights", write_model("trunc.bin", good, n - 1), LANES_EMODEL);
    expect_reject("trailing bytes", write_model("long.bin", good, n + 1), LANES_EMODEL);
    expect_reject("unshared cls missing", write_model("nocls.bin", unshared, n), LANES_EMODEL);
    struct { const char *name; int field; int32_t value; } bad[] = {
        {"zero dim", 0, 0},           {"negative dim", 0, -64},   {"zero hidden", 1, 0},
        {"zero layers", 2, 0},        {"zero heads", 3, 0},       {"zero kv heads", 4, 0},
        {"zero vocab", 5, 0},         {"zero seq_len", 6, 0},     {"huge dim", 0, 1 << 30},
        {"huge layers", 2, 1 << 20},  {"huge vocab", 5, INT32_MAX}, {"min vocab", 5, INT32_MIN},
        {"huge seq_len", 6, INT32_MAX}, {"dim % heads", 3, 5},    {"kv heads > heads", 4, 8},
        {"heads % kv", 4, 3},         {"odd head size", 3, 64},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t h[7];
        memcpy(h, good, sizeof h);
        h[bad[i].field] = bad[i].value;
        /* Sized for the good header: a loader that trusted these fields would over-read. */
        expect_reject(bad[i].name, write_model("bad.bin", h, n), LANES_EMODEL);
    }
    uint8_t garbage[4096];
    for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (uint8_t)(i * 2654435761u >> 13);
    expect_reject("garbage", write_file("garbage.bin", garbage, sizeof garbage), LANES_EMODEL);

    /* Synthetic models: deterministic, and a saved one loads back bit for bit. */
    eng_model_cfg_t cfg;
    ASSERT_EQ(eng_model_preset("tiny", &cfg), LANES_OK);
    ASSERT_EQ(eng_model_preset("nope", &cfg), LANES_EINVAL);
    eng_model_t *a, *b, *c;
    ASSERT_EQ(eng_model_synth(&cfg, 9, ENG_WT_F32, &a), LANES_OK);
    ASSERT_EQ(eng_model_synth(&cfg, 9, ENG_WT_F32, &b), LANES_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/synth.bin", dir);
    ASSERT_EQ(eng_model_save(a, path), LANES_OK);
    ASSERT_EQ(eng_model_load(path, &c), LANES_OK);
    size_t bytes = (size_t)cfg.vocab_size * cfg.dim * sizeof(float);
    const eng_weights_t *wa = eng_model_weights(a), *wc = eng_model_weights(c);
    ASSERT(memcmp(wa->tok_emb.data, eng_model_weights(b)->tok_emb.data, bytes) == 0);
    for (int l = 0; l < cfg.n_layers; l++)
        ASSERT(memcmp(wa->layers[l].w_down.data, wc->layers[l].w_down.data,
                      (size_t)cfg.dim * cfg.hidden_dim * sizeof(float)) == 0);
    ASSERT(memcmp(wa->out_norm, wc->out_norm, (size_t)cfg.dim * sizeof(float)) == 0);
    eng_model_destroy(a);
    eng_model_destroy(b);
    eng_model_destroy(c);

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
    printf("model loader: %zu bad files rejected\n", sizeof bad / sizeof *bad + 8);
    return 0;
}
