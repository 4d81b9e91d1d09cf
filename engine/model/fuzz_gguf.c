/* libFuzzer target for the GGUF reader (scripts/fuzz.sh): any bytes must open or fail cleanly,
 * and what opens must keep the header's promises: every string, array and tensor it hands out
 * lies inside the input (ASan sees a read of each one's first and last byte), lookups find what
 * iteration lists, and tensor sizes agree with their dimensions. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "model/gguf.h"

static volatile uint8_t sink;

static void touch(const uint8_t *in, size_t size, const void *p, size_t n) {
    const uint8_t *b = p;
    if (n == 0) return;
    assert(b >= in && n <= size && (size_t)(b - in) <= size - n);
    sink ^= b[0] ^ b[n - 1];
}

/* A name as a C string, when it fits and holds no NUL (else lookup by C string cannot name it). */
static int as_cstr(char *buf, size_t cap, const char *s, size_t n) {
    if (n >= cap || memchr(s, 0, n)) return 0;
    memcpy(buf, s, n);
    buf[n] = 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    eng_gguf_t *g;
    lanes_log_level = LANES_LOG_OFF;
    int rc = eng_gguf_open_mem(data, size, "fuzz", &g);
    assert(rc == LANES_OK || rc == LANES_EMODEL || rc == LANES_ENOMEM);
    if (rc < 0) return 0;
    assert(eng_gguf_version(g) == 2 || eng_gguf_version(g) == 3);
    for (size_t i = 0; i < eng_gguf_kv_count(g); i++) {
        const eng_gguf_kv_t *kv = eng_gguf_kv_at(g, i);
        touch(data, size, kv->key, kv->key_len);
        char key[256];
        if (as_cstr(key, sizeof key, kv->key, kv->key_len)) assert(eng_gguf_kv_find(g, key) == kv);
        const eng_gguf_value_t *v = &kv->val;
        if (v->type == ENG_GGUF_STRING) touch(data, size, v->str, v->len);
        if (v->type == ENG_GGUF_ARRAY && v->elem_type == ENG_GGUF_STRING) {
            for (uint64_t k = 0; k < v->count; k++) {
                size_t len;
                const char *s = eng_gguf_arr_str(v, k, &len);
                touch(data, size, s, len);
            }
        } else if (v->type == ENG_GGUF_ARRAY && v->count > 0) {
            touch(data, size, v->data, 1);
        }
    }
    size_t end = 0;
    for (size_t i = 0; i < eng_gguf_tensor_count(g); i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(g, i);
        touch(data, size, t->name, t->name_len);
        char name[256];
        if (as_cstr(name, sizeof name, t->name, t->name_len))
            assert(eng_gguf_tensor_find(g, name) == t);
        touch(data, size, t->data, t->bytes);
        assert(t->bytes > 0 && eng_gguf_type_name(t->type) != NULL);
        assert(t->n_dims >= 1 && t->n_dims <= 4);
        if (t->offset + t->bytes > end) end = t->offset + t->bytes;
    }
    assert(end == eng_gguf_data_bytes(g));
    eng_gguf_close(g);
    return 0;
}
