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

int main(void) {
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
