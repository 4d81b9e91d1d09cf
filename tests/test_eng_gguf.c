/* The GGUF reader: a tiny file written here, read back value by value, then broken in every way
 * the format can be (each must fail with one log line naming the problem, never crash: this test
 * also runs under ASan+UBSan); then every real GGUF file in ../shared, checked against facts from
 * ../shared/models/gguf/README.md, and a real file truncated at every offset of its header. */
#include <dirent.h>
#include <stdint.h>
#include <unistd.h>

#include "base/lanes_log.h"
#include "model/gguf.h"
#include "test_util.h"

/* ---- a GGUF writer for the tiny file ---- */

typedef struct {
    uint8_t p[4096];
    size_t n;
} buf_t;

static void put(buf_t *b, const void *d, size_t n) {
    ASSERT(b->n + n <= sizeof b->p);
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_le(buf_t *b, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) b->p[b->n + i] = (uint8_t)(v >> (8 * i));
    ASSERT(b->n + n <= sizeof b->p);
    b->n += n;
}
static void put_str(buf_t *b, const char *s) {
    put_le(b, strlen(s), 8);
    put(b, s, strlen(s));
}
static void patch(uint8_t *p, size_t at, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) p[at + i] = (uint8_t)(v >> (8 * i));
}

/* Offsets of the fields the bad-file cases change. */
static struct {
    size_t kv_type, str_len, i8_key, arr_type, arr_count, arr_elem, align_type, align_val;
    size_t t0_ndims, t0_dims, t0_type, t1_name, t1_dim0, t1_type, t1_offset;
} at;

/* Every scalar type, a string, arrays of strings and of f32, general.alignment 64; tensors
 * a (F32 4 x 3, 48 bytes at 0) and b (Q8_0 32, one 34-byte block at 64), ending the file. */
static void write_tiny(buf_t *b, uint32_t version) {
    b->n = 0;
    put(b, "GGUF", 4);
    put_le(b, version, 4);
    put_le(b, 2, 8);
    put_le(b, 16, 8);
    put_str(b, "general.architecture");
    at.kv_type = b->n;
    put_le(b, ENG_GGUF_STRING, 4);
    at.str_len = b->n;
    put_str(b, "llama");
    static const struct { const char *key; uint32_t type; uint64_t v; unsigned n; } sc[] = {
        {"t.u8", ENG_GGUF_U8, 200, 1},           {"t.i8", ENG_GGUF_I8, 0xfb, 1},
        {"t.u16", ENG_GGUF_U16, 60000, 2},       {"t.i16", ENG_GGUF_I16, 0x8000, 2},
        {"t.u32", ENG_GGUF_U32, 4000000000u, 4}, {"t.i32", ENG_GGUF_I32, 0xfffffffe, 4},
        {"t.f32", ENG_GGUF_F32, 0x3fc00000, 4},  {"t.bool", ENG_GGUF_BOOL, 1, 1},
        {"t.u64", ENG_GGUF_U64, UINT64_MAX, 8},  {"t.i64", ENG_GGUF_I64, (uint64_t)-7, 8},
        {"t.f64", ENG_GGUF_F64, 0xc004000000000000ull, 8},   /* -2.5 */
    };
    for (size_t i = 0; i < sizeof sc / sizeof sc[0]; i++) {
        if (sc[i].type == ENG_GGUF_I8) at.i8_key = b->n + 8;
        put_str(b, sc[i].key);
        put_le(b, sc[i].type, 4);
        put_le(b, sc[i].v, sc[i].n);
    }
    put_str(b, "t.strs");
    at.arr_type = b->n;
    put_le(b, ENG_GGUF_ARRAY, 4);
    at.arr_elem = b->n;
    put_le(b, ENG_GGUF_STRING, 4);
    at.arr_count = b->n;
    put_le(b, 3, 8);
    put_str(b, "a");
    put_str(b, "bc\n");
    put_str(b, "");
    put_str(b, "t.f32s");
    put_le(b, ENG_GGUF_ARRAY, 4);
    put_le(b, ENG_GGUF_F32, 4);
    put_le(b, 2, 8);
    put_le(b, 0x3f800000, 4);
    put_le(b, 0x40000000, 4);
    put_str(b, "t.empty");
    put_le(b, ENG_GGUF_ARRAY, 4);
    put_le(b, ENG_GGUF_U8, 4);
    put_le(b, 0, 8);
    put_str(b, "general.alignment");
    at.align_type = b->n;
    put_le(b, ENG_GGUF_U32, 4);
    at.align_val = b->n;
    put_le(b, 64, 4);

    put_str(b, "a");
    at.t0_ndims = b->n;
    put_le(b, 2, 4);
    at.t0_dims = b->n;
    put_le(b, 4, 8);
    put_le(b, 3, 8);
    at.t0_type = b->n;
    put_le(b, ENG_GGML_F32, 4);
    put_le(b, 0, 8);
    at.t1_name = b->n + 8;
    put_str(b, "b");
    put_le(b, 1, 4);
    at.t1_dim0 = b->n;
    put_le(b, 32, 8);
    at.t1_type = b->n;
    put_le(b, ENG_GGML_Q8_0, 4);
    at.t1_offset = b->n;
    put_le(b, 64, 8);
    while (b->n % 64) put_le(b, 0, 1);
    for (int i = 0; i < 64 + 34; i++) put_le(b, (uint64_t)i, 1);
}

/* ---- running the reader with its log captured ---- */

static char logbuf[8192];
static char log_path[64];   /* stderr while the reader runs: a sanitizer's report stays there */

static void remove_log(void) { unlink(log_path); }    /* atexit: not run after a sanitizer report */

/* Opens a malloc'd copy of exactly n bytes (so ASan sees any read past them); logbuf gets what
 * was logged. */
static int open_copy(const void *d, size_t n, eng_gguf_t **g, uint8_t **copy_out) {
    uint8_t *copy = malloc(n ? n : 1);
    ASSERT(copy != NULL);
    memcpy(copy, d, n);
    if (!log_path[0]) {
        snprintf(log_path, sizeof log_path, "/tmp/test_eng_gguf.%d.log", (int)getpid());
        printf("while the reader runs, stderr goes to %s\n", log_path);
        atexit(remove_log);
        fflush(stdout);
    }
    test_capture_t cap;
    test_capture_begin(&cap, log_path);
    int rc = eng_gguf_open_mem(copy, n, "mem", g);
    test_capture_end(&cap, logbuf, sizeof logbuf);
    if (rc < 0) {
        free(copy);
        copy = NULL;
    } else {
        ASSERT(rc == LANES_OK && *g != NULL);
    }
    if (copy_out) *copy_out = copy;     /* borrowed by *g: close_copy frees it */
    return rc;
}

static void close_copy(eng_gguf_t *g, const uint8_t *copy) {
    eng_gguf_close(g);
    free((void *)copy);
}

/* A bad input: LANES_EMODEL and one log line "gguf mem: ..." containing each part of want. */
static void expect_bad(const uint8_t *d, size_t n, const char *want, const char *label) {
    eng_gguf_t *g = NULL;
    int rc = open_copy(d, n, &g, NULL);
    if (rc != LANES_EMODEL || test_count_lines(logbuf) != 1 || !strstr(logbuf, "gguf mem: ") ||
        (want && !test_has_all(logbuf, want))) {
        fprintf(stderr, "case %s (%zu bytes): rc %d, log:\n%s(wanted \"%s\")\n", label, n, rc,
                logbuf, want ? want : "");
        exit(1);
    }
    ASSERT(g == NULL);
}

static const eng_gguf_kv_t *kv(const eng_gguf_t *g, const char *key) {
    const eng_gguf_kv_t *k = eng_gguf_kv_find(g, key);
    if (!k) fprintf(stderr, "key %s missing\n", key);
    ASSERT(k != NULL);
    return k;
}

static void expect_str(const char *s, size_t len, const char *want) {
    ASSERT_EQ(len, strlen(want));
    ASSERT(memcmp(s, want, len) == 0);
}

static void test_tiny_reads(void) {
    buf_t b;
    for (uint32_t version = 2; version <= 3; version++) {
        write_tiny(&b, version);
        eng_gguf_t *g;
        uint8_t *base;
        ASSERT_EQ(open_copy(b.p, b.n, &g, &base), LANES_OK);
        ASSERT_EQ(logbuf[0], 0);
        ASSERT_EQ(eng_gguf_version(g), version);
        ASSERT_EQ(eng_gguf_kv_count(g), 16);
        ASSERT(eng_gguf_kv_at(g, 0) == kv(g, "general.architecture"));
        ASSERT(eng_gguf_kv_at(g, 16) == NULL && eng_gguf_kv_find(g, "t.nope") == NULL);
        ASSERT(eng_gguf_kv_find(g, "t.u") == NULL && eng_gguf_kv_find(g, "t.u88") == NULL);
        const eng_gguf_value_t *v = &kv(g, "general.architecture")->val;
        ASSERT_EQ(v->type, ENG_GGUF_STRING);
        expect_str(v->str, v->len, "llama");
        ASSERT_EQ(kv(g, "t.u8")->val.num.u, 200);
        ASSERT_EQ(kv(g, "t.i8")->val.num.i, -5);
        ASSERT_EQ(kv(g, "t.u16")->val.num.u, 60000);
        ASSERT_EQ(kv(g, "t.i16")->val.num.i, -32768);
        ASSERT_EQ(kv(g, "t.u32")->val.num.u, 4000000000u);
        ASSERT_EQ(kv(g, "t.i32")->val.num.i, -2);
        ASSERT(kv(g, "t.f32")->val.num.f == 1.5);
        ASSERT_EQ(kv(g, "t.bool")->val.num.u, 1);
        ASSERT(kv(g, "t.u64")->val.num.u == UINT64_MAX);
        ASSERT_EQ(kv(g, "t.i64")->val.num.i, -7);
        ASSERT(kv(g, "t.f64")->val.num.f == -2.5);
        ASSERT_EQ(kv(g, "t.f64")->val.type, ENG_GGUF_F64);
        v = &kv(g, "t.strs")->val;
        ASSERT(v->type == ENG_GGUF_ARRAY && v->elem_type == ENG_GGUF_STRING && v->count == 3);
        size_t len;
        const char *s = eng_gguf_arr_str(v, 1, &len);
        expect_str(s, len, "bc\n");
        s = eng_gguf_arr_str(v, 2, &len);
        ASSERT_EQ(len, 0);
        s = eng_gguf_arr_str(v, 0, &len);
        expect_str(s, len, "a");
        v = &kv(g, "t.f32s")->val;
        float f[2];
        ASSERT(v->elem_type == ENG_GGUF_F32 && v->count == 2);
        memcpy(f, v->data, sizeof f);
        ASSERT(f[0] == 1.0f && f[1] == 2.0f);
        ASSERT_EQ(kv(g, "t.empty")->val.count, 0);

        ASSERT_EQ(eng_gguf_tensor_count(g), 2);
        const eng_gguf_tensor_t *a = eng_gguf_tensor_find(g, "a"), *t1 = eng_gguf_tensor_at(g, 1);
        ASSERT(a == eng_gguf_tensor_at(g, 0) && t1 == eng_gguf_tensor_find(g, "b"));
        ASSERT(eng_gguf_tensor_find(g, "c") == NULL && eng_gguf_tensor_at(g, 2) == NULL);
        ASSERT(a->n_dims == 2 && a->dims[0] == 4 && a->dims[1] == 3 && a->dims[2] == 1);
        ASSERT(a->type == ENG_GGML_F32 && a->bytes == 48 && a->offset == 0);
        size_t data_start = b.n - 98;
        ASSERT_EQ(data_start % 64, 0);
        ASSERT(a->data == base + data_start);
        ASSERT(t1->data == base + data_start + 64 && t1->bytes == 34);
        ASSERT_EQ(((const uint8_t *)t1->data)[33], 64 + 33);
        ASSERT_EQ(eng_gguf_data_bytes(g), 98);
        ASSERT_STR_EQ(eng_gguf_type_name(t1->type), "Q8_0");
        close_copy(g, base);
    }
    ASSERT(eng_gguf_type_name(4) == NULL && eng_gguf_type_name(31) == NULL);
    ASSERT_STR_EQ(eng_gguf_type_name(ENG_GGML_Q4_K), "Q4_K");
    ASSERT_STR_EQ(eng_gguf_type_name(ENG_GGML_BF16), "BF16");
}

static void test_tiny_bad(void) {
    buf_t b;
    write_tiny(&b, 3);
    /* Cut short anywhere: the file ends where tensor b does, so every prefix is bad. */
    for (size_t n = 0; n < b.n; n++) expect_bad(b.p, n, n < 4 ? "truncated" : NULL, "prefix");

    static const struct {
        const char *label;
        size_t *field;      /* offset in `at`, or NULL for an absolute offset */
        size_t off;         /* added to it */
        uint64_t v;
        unsigned n;
        const char *want;
    } cases[] = {
        {"magic", NULL, 0, 'X', 1, "bad magic"},
        {"version 1", NULL, 4, 1, 4, "version 1 not supported"},
        {"version 4", NULL, 4, 4, 4, "version 4 not supported"},
        {"version big-endian", NULL, 4, 0x03000000, 4, "not supported"},
        {"tensor_count huge", NULL, 8, 1ull << 62, 8, "tensor_count"},
        {"tensor_count max", NULL, 8, UINT64_MAX, 8, "tensor_count"},
        {"tensor_count +1", NULL, 8, 3, 8, NULL},
        {"kv_count huge", NULL, 16, 1ull << 62, 8, "kv_count"},
        {"kv_count max", NULL, 16, UINT64_MAX, 8, "kv_count"},
        {"kv_count +1", NULL, 16, 17, 8, NULL},
        {"key length huge", NULL, 24, 1ull << 63, 8, "string of"},
        {"key length max", NULL, 24, UINT64_MAX, 8, "string of"},
        {"string length huge", &at.str_len, 0, UINT64_MAX - 3, 8, "(key general.architecture)"},
        {"string length +1", &at.str_len, 0, 6, 8, NULL},
        {"value type 13", &at.kv_type, 0, 13, 4, "unknown value type 13 (key general.arch"},
        {"value type huge", &at.kv_type, 0, 0xffffffff, 4, "unknown value type"},
        {"value type u64", &at.kv_type, 0, ENG_GGUF_U64, 4, NULL},
        {"array count huge", &at.arr_count, 0, 1ull << 61, 8, "array of 2305843009213693952 "
                                                              "strings"},
        {"array count max", &at.arr_count, 0, UINT64_MAX, 8, "(key t.strs)"},
        {"array of arrays", &at.arr_elem, 0, ENG_GGUF_ARRAY, 4, "array of arrays"},
        {"array type 77", &at.arr_elem, 0, 77, 4, "unknown array type 77 (key t.strs)"},
        {"array of u64", &at.arr_elem, 0, ENG_GGUF_U64, 4, NULL},
        {"duplicate key", &at.i8_key, 2, 'u', 1, "duplicate key (key t.u8)"},
        {"alignment 48", &at.align_val, 0, 48, 4, "not a power of two (key general.alignment)"},
        {"alignment 0", &at.align_val, 0, 0, 4, "not a power of two"},
        {"alignment i32", &at.align_type, 0, ENG_GGUF_I32, 4, "type 5, not u32"},
        {"n_dims 0", &at.t0_ndims, 0, 0, 4, "0 dimensions (1 to 4) (tensor a)"},
        {"n_dims 5", &at.t0_ndims, 0, 5, 4, "5 dimensions"},
        {"n_dims huge", &at.t0_ndims, 0, 0x80000000u, 4, "dimensions"},
        {"zero dim", &at.t0_dims, 8, 0, 8, "dimension 1 is zero (tensor a)"},
        {"dim product overflow", &at.t0_dims, 8, 1ull << 62, 8, "2^63 elements (tensor a)"},
        {"dim max", &at.t0_dims, 0, UINT64_MAX, 8, "2^63 elements"},
        {"byte size overflow", &at.t0_dims, 8, 1ull << 60, 8, "overflows (tensor a)"},
        {"tensor too big", &at.t0_dims, 8, 1ull << 40, 8, "past the end of the file|(tensor a)"},
        {"tensor a two rows more", &at.t0_dims, 8, 5, 8, "overlaps tensor a (tensor b)"},
        {"unknown ggml type 4", &at.t0_type, 0, 4, 4, "unknown ggml type 4 (tensor a)"},
        {"unknown ggml type huge", &at.t1_type, 0, 0xfffffff0u, 4, "unknown ggml type 4294967280"},
        {"Q8_0 row of 33", &at.t1_dim0, 0, 33, 8, "not a multiple of the Q8_0 block (32) (tensor b)"},
        {"Q4_K row of 32", &at.t1_type, 0, ENG_GGML_Q4_K, 4, "of the Q4_K block (256)"},
        {"misaligned", &at.t1_offset, 0, 65, 8, "offset 65 not a multiple of the alignment 64"},
        {"overlap", &at.t1_offset, 0, 0, 8, "overlaps tensor"},
        {"past the end", &at.t1_offset, 0, 128, 8, "past the end of the file|(tensor b)"},
        {"offset max", &at.t1_offset, 0, UINT64_MAX - 63, 8, "past the end"},
        {"duplicate tensor", &at.t1_name, 0, 'a', 1, "duplicate tensor name (tensor a)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t copy[sizeof b.p];
        memcpy(copy, b.p, b.n);
        patch(copy, (cases[i].field ? *cases[i].field : 0) + cases[i].off, cases[i].v, cases[i].n);
        expect_bad(copy, b.n, cases[i].want, cases[i].label);
    }

    /* A key full of control bytes is named in the log on the same one line. */
    uint8_t copy[sizeof b.p];
    memcpy(copy, b.p, b.n);
    memcpy(copy + 32, "\n\r\x1b", 3);
    patch(copy, at.kv_type, 99, 4);
    expect_bad(copy, b.n, "(key ???eral.architecture)", "control bytes in key");
    memcpy(copy, b.p, b.n);     /* and so is a tensor's, either one of an overlapping pair */
    copy[at.t0_ndims - 1] = '\n';
    patch(copy, at.t1_offset, 0, 8);
    expect_bad(copy, b.n, "overlaps tensor", "control byte in tensor name");
}

/* ---- the real files ---- */

static eng_gguf_t *open_real(const char *dir, const char *name) {
    char path[4096];
    eng_gguf_t *g;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = eng_gguf_open(path, &g);
    if (rc != LANES_OK) fprintf(stderr, "cannot open %s: %s\n", path, lanes_strerror(rc));
    ASSERT_EQ(rc, LANES_OK);
    return g;
}

static void expect_tensor(const eng_gguf_t *g, const char *name, uint32_t type, uint64_t d0,
                          uint64_t d1) {
    const eng_gguf_tensor_t *t = eng_gguf_tensor_find(g, name);
    if (!t) fprintf(stderr, "tensor %s missing\n", name);
    ASSERT(t != NULL && t->n_dims == 2);
    ASSERT_EQ(t->type, type);
    ASSERT_EQ(t->dims[0], d0);
    ASSERT_EQ(t->dims[1], d1);
    ASSERT_EQ(t->bytes, d0 * d1 * (type == ENG_GGML_F32 ? 4 : 2));
}

static void expect_arr_str(const eng_gguf_t *g, const char *key, uint64_t count, uint64_t i,
                           const char *want) {
    const eng_gguf_value_t *v = &kv(g, key)->val;
    ASSERT(v->type == ENG_GGUF_ARRAY && v->elem_type == ENG_GGUF_STRING);
    ASSERT_EQ(v->count, count);
    size_t len;
    const char *s = eng_gguf_arr_str(v, i, &len);
    expect_str(s, len, want);
}

/* Facts from ../shared/models/gguf/README.md (its tables and "Tokenizer origin"), and those it
 * does not state (tensor counts, token strings) from this independent reader (python3 FILE):
 *   import struct, sys; d = open(sys.argv[1], 'rb').read(); p = 4
 *   def u(f):
 *       global p; v = struct.unpack_from('<' + f, d, p)[0]; p += struct.calcsize('<' + f); return v
 *   def s():
 *       global p; n = u('Q'); p += n; return d[p - n:p]
 *   F = {0: 'B', 1: 'b', 2: 'H', 3: 'h', 4: 'I', 5: 'i', 6: 'f', 7: '?', 10: 'Q', 11: 'q', 12: 'd'}
 *   def val(t):
 *       if t == 8: return s()
 *       if t == 9: e = u('I'); return [val(e) for _ in range(u('Q'))]
 *       return u(F[t])
 *   ver, nt, nk = u('I'), u('Q'), u('Q'); kv = {s(): val(u('I')) for _ in range(nk)}
 *   for _ in range(nt):
 *       n = s(); dims = [u('Q') for _ in range(u('I'))]; print(n, dims, u('I'), u('Q'))
 *   print(ver, len(kv[b'tokenizer.ggml.tokens']), kv[b'tokenizer.ggml.tokens'][:3]) */
static void test_known_facts(const char *dir) {
    eng_gguf_t *g = open_real(dir, "llama3-style.f32.gguf");
    const eng_gguf_value_t *v = &kv(g, "general.architecture")->val;
    expect_str(v->str, v->len, "llama");
    ASSERT_EQ(kv(g, "llama.block_count")->val.num.u, 4);
    ASSERT_EQ(kv(g, "llama.context_length")->val.num.u, 512);
    ASSERT_EQ(kv(g, "llama.attention.head_count_kv")->val.num.u, 2);
    ASSERT(kv(g, "llama.rope.freq_base")->val.num.f == 500000.0);
    ASSERT_EQ(kv(g, "tokenizer.ggml.bos_token_id")->val.num.u, 50256);
    expect_arr_str(g, "tokenizer.ggml.tokens", 50257, 50256, "<|endoftext|>");
    expect_arr_str(g, "tokenizer.ggml.tokens", 50257, 0, "!");
    ASSERT_EQ(kv(g, "tokenizer.ggml.merges")->val.count, 50000);
    ASSERT_EQ(eng_gguf_tensor_count(g), 39);   /* 30 matrices and 9 norm vectors */
    expect_tensor(g, "token_embd.weight", ENG_GGML_F32, 32, 50257);
    expect_tensor(g, "output.weight", ENG_GGML_F32, 32, 50257);
    expect_tensor(g, "blk.3.ffn_down.weight", ENG_GGML_F32, 352, 32);
    eng_gguf_close(g);

    g = open_real(dir, "llama3-style.f16.gguf");
    expect_tensor(g, "token_embd.weight", ENG_GGML_F16, 32, 50257);
    ASSERT_EQ(eng_gguf_tensor_find(g, "blk.0.attn_norm.weight")->type, ENG_GGML_F32);
    ASSERT_EQ(kv(g, "general.file_type")->val.num.u, 1);
    eng_gguf_close(g);

    g = open_real(dir, "llama2-spm-style.f32.gguf");
    expect_arr_str(g, "tokenizer.ggml.tokens", 32000, 1, "<s>");
    expect_arr_str(g, "tokenizer.ggml.tokens", 32000, 2, "</s>");
    ASSERT_EQ(kv(g, "tokenizer.ggml.scores")->val.elem_type, ENG_GGUF_F32);
    ASSERT_EQ(kv(g, "tokenizer.ggml.scores")->val.count, 32000);
    ASSERT_EQ(kv(g, "tokenizer.ggml.add_bos_token")->val.type, ENG_GGUF_BOOL);
    ASSERT_EQ(kv(g, "tokenizer.ggml.add_bos_token")->val.num.u, 1);
    ASSERT_EQ(kv(g, "tokenizer.ggml.add_eos_token")->val.num.u, 0);
    expect_tensor(g, "token_embd.weight", ENG_GGML_F32, 24, 32000);
    ASSERT(eng_gguf_tensor_find(g, "output.weight") == NULL);   /* tied */
    eng_gguf_close(g);

    g = open_real(dir, "gpt2-style.f32.gguf");
    v = &kv(g, "general.architecture")->val;
    expect_str(v->str, v->len, "gpt2");
    expect_tensor(g, "position_embd.weight", ENG_GGML_F32, 12, 512);
    expect_tensor(g, "blk.0.attn_qkv.weight", ENG_GGML_F32, 12, 36);
    eng_gguf_close(g);

    g = open_real(dir, "qwen2-style.f32.gguf");
    ASSERT_EQ(kv(g, "qwen2.attention.head_count_kv")->val.num.u, 2);
    ASSERT(kv(g, "qwen2.rope.freq_base")->val.num.f == 1e6);
    expect_tensor(g, "token_embd.weight", ENG_GGML_F32, 16, 50257);
    eng_gguf_close(g);
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* Every .gguf in dir opens; a vocab file vocab-gpt2.PRE.gguf says PRE in tokenizer.ggml.pre. */
static int open_all(const char *dir, int vocab) {
    DIR *d = opendir(dir);
    int count = 0;
    ASSERT(d != NULL);
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!ends_with(e->d_name, ".gguf")) continue;
        eng_gguf_t *g = open_real(dir, e->d_name);
        ASSERT_EQ(eng_gguf_version(g), 3);
        if (vocab) {
            const eng_gguf_value_t *pre = &kv(g, "tokenizer.ggml.pre")->val;
            char want[256];
            snprintf(want, sizeof want, "%.*s", (int)(strlen(e->d_name) - 16), e->d_name + 11);
            expect_str(pre->str, pre->len, want);
            ASSERT_EQ(kv(g, "tokenizer.ggml.tokens")->val.count, 50257);
            ASSERT_EQ(eng_gguf_tensor_count(g), 0);
        } else {
            ASSERT_GT(eng_gguf_tensor_count(g), 0);
            ASSERT(eng_gguf_tensor_find(g, "token_embd.weight") != NULL);
        }
        eng_gguf_close(g);
        count++;
    }
    closedir(d);
    return count;
}

/* A real file cut short at every byte of its header and tensor infos, then at 200 later lengths:
 * every length before the end of its last tensor is an error. */
static void test_real_truncated(const char *dir) {
    char path[4200];
    size_t n;
    snprintf(path, sizeof path, "%s/stories260K.f32.gguf", dir);
    uint8_t *file = (uint8_t *)test_read_file(path, &n);
    eng_gguf_t *g;
    uint8_t *base;
    ASSERT_EQ(open_copy(file, n, &g, &base), LANES_OK);
    const eng_gguf_tensor_t *t0 = eng_gguf_tensor_at(g, 0);
    size_t data_start = (size_t)((const uint8_t *)t0->data - base) - (size_t)t0->offset;
    size_t end = data_start + eng_gguf_data_bytes(g);
    ASSERT(end <= n && data_start > 1000);
    close_copy(g, base);
    for (size_t len = 0; len < data_start; len++) expect_bad(file, len, NULL, "stories prefix");
    for (int i = 0; i < 200; i++) {
        size_t len = data_start + (end - data_start) / 200 * (size_t)i;
        expect_bad(file, len, "past the end of the file", "stories data");
    }
    expect_bad(file, end - 1, "past the end of the file", "stories data");
    free(file);
}

static void test_open_errors(void) {
    eng_gguf_t *g = (eng_gguf_t *)1;
    int level = lanes_log_level;
    lanes_log_level = LANES_LOG_OFF;
    ASSERT_EQ(eng_gguf_open("/nonexistent/x.gguf", &g), LANES_EIO);
    ASSERT(g == NULL);
    ASSERT_EQ(eng_gguf_open("/tmp", &g), LANES_EIO);
    char path[] = "/tmp/test_eng_gguf_XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    close(fd);
    ASSERT_EQ(eng_gguf_open(path, &g), LANES_EMODEL);  /* empty */
    unlink(path);
    lanes_log_level = level;
}

int main(void) {
    test_tiny_reads();
    test_tiny_bad();
    test_open_errors();
    const char *shared;
    SKIP_WITHOUT_SHARED(shared);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models/gguf", shared);
    test_known_facts(dir);
    int models = open_all(dir, 0);
    snprintf(dir, sizeof dir, "%s/models/gguf/vocab", shared);
    int vocabs = open_all(dir, 1);
    ASSERT_GE(models, 21);
    ASSERT_EQ(vocabs, 13);
    snprintf(dir, sizeof dir, "%s/models/gguf", shared);
    test_real_truncated(dir);
    printf("gguf: %d model files and %d vocab files open; tiny and truncated bad files rejected\n",
           models, vocabs);
    return 0;
}
