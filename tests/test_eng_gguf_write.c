/* The GGUF writer and the fp32 to F16/BF16 conversions it is fed through. The conversions:
 * every 16-bit value through the exact widening of half.h and back; fp32 values of every
 * exponent, exact ties and subnormals against midpoints of neighbouring 16-bit values; inf and
 * NaN; and, on an x86 with F16C, against vcvtps2ph itself. The writer: files with every value
 * type and tensors of several types, at alignments 32, 64 and 256, read back with eng_gguf_open
 * field by field; a file copied through it pair by pair equal byte for byte to the original
 * (written again, and ../shared's stories260K.f32.gguf), and llama3-style.f32.gguf converted to
 * F16 equal to gguf-py's llama3-style.f16.gguf; every refused input (one log line, the writer
 * still usable); failed writes that leave no file under the final name. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/lanes_log.h"
#include "kern/half.h"
#include "kern/kern.h"
#include "model/gguf.h"
#include "test_util.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* ---- conversions ---- */

/* The value of 16-bit magnitude h (no sign) as a double, with the first pattern past the largest
 * finite one (inf) counted as the next power of two, which is where rounding to inf starts. */
static double f16_mag(uint32_t h) { return h == 0x7c00 ? 65536.0 : eng_f16_to_f32((uint16_t)h); }
static double bf16_mag(uint32_t h) { return h == 0x7f80 ? 0x1p128 : eng_bf16_to_f32((uint16_t)h); }

/* That r, the 16-bit result for finite f, is f rounded to nearest even: |f| lies between the
 * midpoints to r's neighbours (each exact in a double), on one only if r is even. */
static void expect_nearest(float f, uint16_t r, double (*mag)(uint32_t), uint32_t inf,
                           const char *what) {
    double a = fabs((double)f);
    uint32_t h = r & 0x7fffu;
    int ok = (r >> 15) == (signbit(f) != 0) && h <= inf;
    if (ok) {
        double lo = h ? (mag(h - 1) + mag(h)) / 2 : 0;
        double hi = h < inf ? (mag(h) + mag(h + 1)) / 2 : INFINITY;
        int tie = (a == lo && h > 0) || a == hi;
        ok = lo <= a && a <= hi && (!tie || (h & 1) == 0);
    }
    if (!ok) {
        fprintf(stderr, "%s of %a (bits %08x) gave %04x, not the nearest even\n", what, (double)f,
                eng_f32_bits(f), r);
        exit(1);
    }
}

static int is_nan16(uint16_t h, uint16_t exp_mask) {
    return (h & exp_mask) == exp_mask && (h & 0x7fffu & ~exp_mask);
}

static void check_f32(float f) {
    uint32_t x = eng_f32_bits(f);
    uint16_t h = eng_f32_to_f16(f), b = eng_f32_to_bf16(f);
    if (isnan(f)) {
        /* Quiet, the sign kept, the top payload bits kept. */
        ASSERT_EQ(h, (x >> 16 & 0x8000u) | 0x7e00u | (x >> 13 & 0x3ffu));
        ASSERT_EQ(b, x >> 16 | 0x40u);
        ASSERT(is_nan16(h, 0x7c00) && is_nan16(b, 0x7f80));
        return;
    }
    expect_nearest(f, h, f16_mag, 0x7c00, "f16");
    expect_nearest(f, b, bf16_mag, 0x7f80, "bf16");
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* vcvtps2ph with round to nearest on 8 values (the caller checks the CPU has F16C and AVX). */
__attribute__((target("avx,f16c"))) static void f16c_8(const float *f, uint16_t *h) {
    __m128i r = _mm256_cvtps_ph(_mm256_loadu_ps(f), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128((__m128i *)h, r);
}

/* Every 8 patterns of 2^32 starting at a random one in each block of 2048 (2^21 blocks): all
 * exponents, signs and NaN payloads. The whole 2^32 was checked once this way (0 mismatches). */
static int test_f16c(void) {
    if (!eng_kern_by_name("avx2")) return 0;     /* the table that needs F16C is usable */
    for (uint64_t blk = 0; blk < (1u << 21); blk++) {
        float f[8];
        uint16_t h[8];
        uint32_t start = (uint32_t)(blk << 11 | (rnd() & 0x7f8u));
        for (int k = 0; k < 8; k++) f[k] = eng_f32_from_bits(start + (uint32_t)k);
        f16c_8(f, h);
        for (int k = 0; k < 8; k++)
            if (h[k] != eng_f32_to_f16(f[k])) {
                fprintf(stderr, "f16 of bits %08x: F16C %04x, half.h %04x\n", start + k, h[k],
                        eng_f32_to_f16(f[k]));
                exit(1);
            }
    }
    return 1;
}
#else
static int test_f16c(void) { return 0; }
#endif

static void test_conversions(void) {
    /* Every F16 and BF16 value widens exactly, so it comes back unchanged; a NaN comes back
     * quiet (a quiet one unchanged). */
    for (uint32_t i = 0; i < 0x10000; i++) {
        uint16_t h = (uint16_t)i;
        uint16_t f16 = eng_f32_to_f16(eng_f16_to_f32(h)), bf = eng_f32_to_bf16(eng_bf16_to_f32(h));
        ASSERT_EQ(f16, is_nan16(h, 0x7c00) ? h | 0x200u : h);
        ASSERT_EQ(bf, is_nan16(h, 0x7f80) ? h | 0x40u : h);
        check_f32(eng_f16_to_f32(h));
        check_f32(eng_bf16_to_f32(h));
    }
    /* Exact ties: halfway between neighbours (both signs), and a hair either side of them. */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float mid = (float)((f16_mag(h) + f16_mag(h + 1)) / 2);
        uint16_t want = (uint16_t)(h & 1 ? h + 1 : h);
        ASSERT_EQ(eng_f32_to_f16(mid), want);
        ASSERT_EQ(eng_f32_to_f16(-mid), want | 0x8000u);
        ASSERT_EQ(eng_f32_to_f16(nextafterf(mid, 0)), h);
        ASSERT_EQ(eng_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
        check_f32(mid);
    }
    for (uint32_t h = 0; h < 0x7f80; h++) {
        float mid = (float)((bf16_mag(h) + bf16_mag(h + 1)) / 2);   /* inf for the last one */
        if (isinf(mid)) mid = eng_f32_from_bits(0x7f7f8000u);
        ASSERT_EQ(eng_f32_to_bf16(mid), h & 1 ? h + 1 : h);
        ASSERT_EQ(eng_f32_to_bf16(nextafterf(mid, 0)), h);
        ASSERT_EQ(eng_f32_to_bf16(-nextafterf(mid, INFINITY)), (h + 1) | 0x8000u);
    }
    /* Random fp32 with every exponent equally likely (so F16 subnormals, underflow to zero,
     * overflow to inf, fp32 subnormals and NaNs all come up often). */
    for (int i = 0; i < 4000000; i++) check_f32(eng_f32_from_bits(rnd() << 16 ^ rnd()));
    /* Named edge cases. */
    ASSERT_EQ(eng_f32_to_f16(65504.0f), 0x7bff);
    ASSERT_EQ(eng_f32_to_f16(nextafterf(65520.0f, 0)), 0x7bff);
    ASSERT_EQ(eng_f32_to_f16(65520.0f), 0x7c00);
    ASSERT_EQ(eng_f32_to_f16(-INFINITY), 0xfc00);
    ASSERT_EQ(eng_f32_to_f16(0x1p-24f), 0x0001);
    ASSERT_EQ(eng_f32_to_f16(0x1p-25f), 0x0000);                   /* tie to even: zero */
    ASSERT_EQ(eng_f32_to_f16(nextafterf(0x1p-25f, 1)), 0x0001);
    ASSERT_EQ(eng_f32_to_f16(0x3p-25f), 0x0002);                   /* tie 1.5 ulp: to 2 */
    ASSERT_EQ(eng_f32_to_f16(-0x1p-149f), 0x8000);
    ASSERT_EQ(eng_f32_to_f16(nextafterf(0x1p-14f, 0)), 0x0400);    /* rounds up to normal */
    ASSERT_EQ(eng_f32_to_f16(eng_f32_from_bits(0x7f800001u)), 0x7e00);      /* sNaN quieted */
    ASSERT_EQ(eng_f32_to_f16(eng_f32_from_bits(0xffc02000u)), 0xfe01);
    ASSERT_EQ(eng_f32_to_bf16(eng_f32_from_bits(0x7f800001u)), 0x7fc0);
    ASSERT_EQ(eng_f32_to_bf16(eng_f32_from_bits(0x7f7fffffu)), 0x7f80);     /* FLT_MAX: inf */
    ASSERT_EQ(eng_f32_to_bf16(eng_f32_from_bits(0x00018000u)), 0x0002);     /* subnormal tie */
    ASSERT_EQ(eng_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    ASSERT_EQ(eng_f32_to_bf16(1.0f + 0x3p-8f), 0x3f82);
    /* The array versions the writer's callers use. */
    float src[300];
    uint16_t h[300], b[300];
    for (int i = 0; i < 300; i++) src[i] = eng_f32_from_bits(rnd() << 16 ^ rnd());
    eng_gguf_f32_to_f16(h, src, 300);
    eng_gguf_f32_to_bf16(b, src, 300);
    for (int i = 0; i < 300; i++) {
        ASSERT_EQ(h[i], eng_f32_to_f16(src[i]));
        ASSERT_EQ(b[i], eng_f32_to_bf16(src[i]));
    }
    printf("conversions: ok%s\n", test_f16c() ? ", F16C equal on 2^24 patterns" : " (no F16C)");
}

/* ---- log capture ---- */

static char logbuf[8192];
static test_capture_t cap;

/* rc is want and the log is one line holding text; the check names the case. */
static void expect_err(int rc, int want, const char *text, const char *label) {
    int lines = test_capture_end(&cap, logbuf, sizeof logbuf);
    if (rc != want || lines != 1 || !strstr(logbuf, text)) {
        fprintf(stderr, "case %s: rc %d (wanted %d), log:\n%s(wanted one line with \"%s\")\n",
                label, rc, want, logbuf, text);
        exit(1);
    }
}

/* ---- files with everything ---- */

static char dir[64];

static const char *tmp_path(const char *name) {
    static char path[4][320];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* The pairs written: each value type at its edges, a string with a NUL and a newline, the empty
 * string, arrays of every numeric type (an empty one too) and of strings. */
static const uint8_t a_u8[] = {0, 1, 255};
static const int16_t a_i16[] = {-32768, 0, 32767};
static const uint32_t a_u32[] = {0, 4000000000u};
static const int32_t a_i32[] = {INT32_MIN, -1, INT32_MAX};
static const float a_f32[] = {1.5f, -0.0f, INFINITY, 0x1p-149f};
static const uint64_t a_u64[] = {UINT64_MAX, 0};
static const int64_t a_i64[] = {INT64_MIN, 7};
static const double a_f64[] = {-2.5, 1e300};
static const int8_t a_i8[] = {-128, 127};
static const uint16_t a_u16[] = {65535};
static const uint8_t a_bool[] = {1, 0, 1};
static const char *const strs[] = {"a", "", "bc\n", "<0x0A>"};

#define ARR(key, t, a)                                                                            \
    {key, {.type = ENG_GGUF_ARRAY, .elem_type = t, .count = sizeof a / sizeof a[0], .data = a}}
static const struct { const char *key; eng_gguf_value_t v; } pairs[] = {
    {"general.architecture", {.type = ENG_GGUF_STRING, .str = "llama", .len = 5}},
    {"t.u8", {.type = ENG_GGUF_U8, .num.u = 255}},
    {"t.i8", {.type = ENG_GGUF_I8, .num.i = -128}},
    {"t.u16", {.type = ENG_GGUF_U16, .num.u = 65535}},
    {"t.i16", {.type = ENG_GGUF_I16, .num.i = 32767}},
    {"t.u32", {.type = ENG_GGUF_U32, .num.u = UINT32_MAX}},
    {"t.i32", {.type = ENG_GGUF_I32, .num.i = INT32_MIN}},
    {"t.f32", {.type = ENG_GGUF_F32, .num.f = 1e-5f}},
    {"t.f32inf", {.type = ENG_GGUF_F32, .num.f = -INFINITY}},
    {"t.bool", {.type = ENG_GGUF_BOOL, .num.u = 1}},
    {"t.false", {.type = ENG_GGUF_BOOL, .num.u = 0}},
    {"t.u64", {.type = ENG_GGUF_U64, .num.u = UINT64_MAX}},
    {"t.i64", {.type = ENG_GGUF_I64, .num.i = INT64_MIN}},
    {"t.f64", {.type = ENG_GGUF_F64, .num.f = -2.5e-300}},
    {"t.str", {.type = ENG_GGUF_STRING, .str = "x\0y\n", .len = 4}},
    {"t.empty_str", {.type = ENG_GGUF_STRING, .str = NULL, .len = 0}},
    ARR("t.a_u8", ENG_GGUF_U8, a_u8),      ARR("t.a_i8", ENG_GGUF_I8, a_i8),
    ARR("t.a_u16", ENG_GGUF_U16, a_u16),   ARR("t.a_i16", ENG_GGUF_I16, a_i16),
    ARR("t.a_u32", ENG_GGUF_U32, a_u32),   ARR("t.a_i32", ENG_GGUF_I32, a_i32),
    ARR("t.a_f32", ENG_GGUF_F32, a_f32),   ARR("t.a_bool", ENG_GGUF_BOOL, a_bool),
    ARR("t.a_u64", ENG_GGUF_U64, a_u64),   ARR("t.a_i64", ENG_GGUF_I64, a_i64),
    ARR("t.a_f64", ENG_GGUF_F64, a_f64),
    {"t.a_empty", {.type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_I32, .count = 0}},
};
#define N_PAIRS (sizeof pairs / sizeof pairs[0])

/* Tensors: F32 (5 x 3), F16 of 7 values (14 bytes, so padding follows), BF16 (3 x 2 x 2),
 * Q8_0 (64 x 2: four 34-byte blocks), and a 4-dimensional F32 one. */
static const struct {
    const char *name;
    uint32_t type, n_dims;
    uint64_t dims[4];
    size_t bytes;
} tensors[] = {
    {"token_embd.weight", ENG_GGML_F32, 2, {5, 3}, 60},
    {"blk.0.attn_norm.weight", ENG_GGML_F16, 1, {7}, 14},
    {"blk.0.ffn_up.weight", ENG_GGML_BF16, 3, {3, 2, 2}, 24},
    {"blk.0.ffn_down.weight", ENG_GGML_Q8_0, 2, {64, 2}, 136},
    {"x4", ENG_GGML_F32, 4, {1, 2, 1, 3}, 24},
};
#define N_TENSORS (sizeof tensors / sizeof tensors[0])
static uint8_t tdata[N_TENSORS][256];

static eng_gguf_writer_t *new_writer(uint32_t align) {
    eng_gguf_writer_t *w = NULL;
    ASSERT_EQ(eng_gguf_writer_create(align, &w), LANES_OK);
    ASSERT(w != NULL);
    return w;
}

static void add_everything(eng_gguf_writer_t *w) {
    for (size_t i = 0; i < N_PAIRS; i++)
        ASSERT_EQ(eng_gguf_writer_add(w, pairs[i].key, &pairs[i].v), LANES_OK);
    static const size_t lens[] = {1, 0, 3, 6};
    ASSERT_EQ(eng_gguf_writer_add_strs(w, "t.strs", strs, lens, 4), LANES_OK);
    ASSERT_EQ(eng_gguf_writer_add_strs(w, "t.strs_nul", strs, NULL, 4), LANES_OK);
    ASSERT_EQ(eng_gguf_writer_add_strs(w, "t.strs_none", NULL, NULL, 0), LANES_OK);
    for (size_t i = 0; i < N_TENSORS; i++) {
        for (size_t k = 0; k < tensors[i].bytes; k++) tdata[i][k] = (uint8_t)(rnd() | 1);
        ASSERT_EQ(eng_gguf_writer_add_tensor(w, tensors[i].name, tensors[i].type, tensors[i].n_dims,
                                             tensors[i].dims, tdata[i], tensors[i].bytes), 0);
    }
}

static const eng_gguf_kv_t *kv(const eng_gguf_t *g, size_t i, const char *key) {
    const eng_gguf_kv_t *k = eng_gguf_kv_at(g, i);
    ASSERT(k != NULL);
    if (k->key_len != strlen(key) || memcmp(k->key, key, k->key_len) != 0) {
        fprintf(stderr, "pair %zu: key %.*s, wanted %s\n", i, (int)k->key_len, k->key, key);
        exit(1);
    }
    ASSERT(eng_gguf_kv_find(g, key) == k);
    return k;
}

static void expect_strs(const eng_gguf_value_t *v) {
    ASSERT(v->type == ENG_GGUF_ARRAY && v->elem_type == ENG_GGUF_STRING && v->count == 4);
    for (uint64_t j = 0; j < 4; j++) {
        size_t len;
        const char *s = eng_gguf_arr_str(v, j, &len);
        ASSERT_EQ(len, strlen(strs[j]));
        ASSERT(memcmp(s, strs[j], len) == 0);
    }
}

/* Reads back what add_everything wrote with alignment align, field by field. */
static void check_everything(const char *path, uint32_t align) {
    eng_gguf_t *g;
    ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
    ASSERT_EQ(eng_gguf_version(g), 3);
    ASSERT_EQ(eng_gguf_kv_count(g), N_PAIRS + 3 + (align != 32));
    for (size_t i = 0; i < N_PAIRS; i++) {
        const eng_gguf_value_t *want = &pairs[i].v, *got = &kv(g, i, pairs[i].key)->val;
        ASSERT_EQ(got->type, want->type);
        if (want->type == ENG_GGUF_STRING) {
            ASSERT_EQ(got->len, want->len);
            ASSERT(want->len == 0 || memcmp(got->str, want->str, want->len) == 0);
        } else if (want->type == ENG_GGUF_ARRAY) {
            ASSERT_EQ(got->elem_type, want->elem_type);
            ASSERT_EQ(got->count, want->count);
            size_t n = (size_t)want->count * eng_gguf_value_size(want->elem_type);
            ASSERT(n == 0 || memcmp(got->data, want->data, n) == 0);
        } else if (want->type == ENG_GGUF_F32 || want->type == ENG_GGUF_F64) {
            ASSERT(memcmp(&got->num.f, &want->num.f, sizeof got->num.f) == 0);  /* bits */
        } else {
            ASSERT(got->num.u == want->num.u);  /* i or u: the same bits either way */
        }
    }
    expect_strs(&kv(g, N_PAIRS, "t.strs")->val);
    expect_strs(&kv(g, N_PAIRS + 1, "t.strs_nul")->val);
    ASSERT_EQ(kv(g, N_PAIRS + 2, "t.strs_none")->val.count, 0);
    const eng_gguf_kv_t *al = eng_gguf_kv_find(g, "general.alignment");
    if (align == 32) {
        ASSERT(al == NULL);
    } else {
        ASSERT(al == kv(g, N_PAIRS + 3, "general.alignment"));
        ASSERT(al->val.type == ENG_GGUF_U32 && al->val.num.u == align);
    }

    size_t n;
    char *file = test_read_file(path, &n);
    ASSERT_EQ(eng_gguf_tensor_count(g), N_TENSORS);
    uint64_t off = 0;
    const uint8_t *base = eng_gguf_tensor_at(g, 0)->data;
    for (size_t i = 0; i < N_TENSORS; i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(g, i);
        ASSERT(t == eng_gguf_tensor_find(g, tensors[i].name));
        ASSERT_EQ(t->name_len, strlen(tensors[i].name));
        ASSERT(memcmp(t->name, tensors[i].name, t->name_len) == 0);
        ASSERT_EQ(t->type, tensors[i].type);
        ASSERT_EQ(t->n_dims, tensors[i].n_dims);
        for (uint32_t d = 0; d < 4; d++)
            ASSERT_EQ(t->dims[d], d < t->n_dims ? tensors[i].dims[d] : 1);
        ASSERT_EQ(t->bytes, tensors[i].bytes);
        ASSERT_EQ(t->offset, off);              /* packed in order, each at the next multiple */
        ASSERT_EQ(t->offset % align, 0);
        ASSERT((const uint8_t *)t->data == base + t->offset);
        ASSERT(memcmp(t->data, tdata[i], t->bytes) == 0);
        off = (off + t->bytes + align - 1) / align * align;
    }
    /* The file ends with the last tensor's padding, so the data section is its last off bytes:
     * it starts aligned, holds each tensor's bytes at its offset and zeros between them. */
    ASSERT_GE(n, off);
    size_t start = n - (size_t)off;
    ASSERT_EQ(start % align, 0);
    for (size_t i = 0; i < N_TENSORS; i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(g, i);
        ASSERT(memcmp(file + start + t->offset, tdata[i], t->bytes) == 0);
        uint64_t end = i + 1 < N_TENSORS ? eng_gguf_tensor_at(g, i + 1)->offset : off;
        for (uint64_t k = t->offset + t->bytes; k < end; k++) ASSERT_EQ(file[start + k], 0);
    }
    free(file);
    eng_gguf_close(g);
}

/* Writes a copy of g through a new writer: every pair as the reader gives it, every tensor with
 * the reader's data. */
static void copy_through(const eng_gguf_t *g, uint32_t align, const char *path) {
    eng_gguf_writer_t *w = new_writer(align);
    for (size_t i = 0; i < eng_gguf_kv_count(g); i++) {
        const eng_gguf_kv_t *k = eng_gguf_kv_at(g, i);
        char key[256];
        ASSERT_LT(k->key_len, sizeof key);
        snprintf(key, sizeof key, "%.*s", (int)k->key_len, k->key);
        ASSERT_EQ(eng_gguf_writer_add(w, key, &k->val), LANES_OK);
    }
    for (size_t i = 0; i < eng_gguf_tensor_count(g); i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(g, i);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)t->name_len, t->name);
        ASSERT_EQ(eng_gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->dims, t->data,
                                             t->bytes), LANES_OK);
    }
    ASSERT_EQ(eng_gguf_writer_write(w, path), LANES_OK);
    eng_gguf_writer_destroy(w);
}

static void expect_same_file(const char *a, const char *b) {
    size_t na, nb;
    char *fa = test_read_file(a, &na), *fb = test_read_file(b, &nb);
    ASSERT_EQ(na, nb);
    for (size_t i = 0; i < na; i++)
        if (fa[i] != fb[i]) {
            fprintf(stderr, "%s and %s differ first at byte %zu\n", a, b, i);
            exit(1);
        }
    free(fa);
    free(fb);
}

static void test_round_trip(void) {
    static const uint32_t aligns[] = {32, 64, 256};
    for (size_t a = 0; a < 3; a++) {
        eng_gguf_writer_t *w = new_writer(aligns[a]);
        add_everything(w);
        const char *path = tmp_path("all.gguf");
        ASSERT_EQ(eng_gguf_writer_write(w, path), LANES_OK);
        ASSERT(!exists(tmp_path("all.gguf.tmp")));
        check_everything(path, aligns[a]);
        /* Written again (the writer is unchanged by a write), over the old file. */
        ASSERT_EQ(eng_gguf_writer_write(w, path), LANES_OK);
        check_everything(path, aligns[a]);
        eng_gguf_writer_destroy(w);
        /* Copied pair by pair (general.alignment among them) and written again: the same bytes. */
        eng_gguf_t *g;
        ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
        copy_through(g, aligns[a], tmp_path("copy.gguf"));
        eng_gguf_close(g);
        expect_same_file(path, tmp_path("copy.gguf"));
    }
    /* 0 is the default 32. */
    eng_gguf_writer_t *w = new_writer(0);
    add_everything(w);
    ASSERT_EQ(eng_gguf_writer_write(w, tmp_path("all.gguf")), LANES_OK);
    check_everything(tmp_path("all.gguf"), 32);
    eng_gguf_writer_destroy(w);
    /* An empty file: the header alone. */
    w = new_writer(32);
    ASSERT_EQ(eng_gguf_writer_write(w, tmp_path("empty.gguf")), LANES_OK);
    eng_gguf_writer_destroy(w);
    size_t n;
    char *file = test_read_file(tmp_path("empty.gguf"), &n);
    ASSERT_EQ(n, 32);   /* magic, version, two counts: 24 bytes, padded to 32 */
    ASSERT(memcmp(file, "GGUF\3\0\0\0", 8) == 0);
    free(file);
    printf("round trip: ok\n");
}

/* ---- refused input ---- */

static void test_refused(void) {
    eng_gguf_writer_t *w = (eng_gguf_writer_t *)1;
    test_capture_begin(&cap, NULL);
    expect_err(eng_gguf_writer_create(48, &w), LANES_EINVAL, "alignment 48 not a power of two",
               "alignment 48");
    ASSERT(w == NULL);
    w = new_writer(64);
    uint8_t data[4096] = {0};
    const struct { const char *key; eng_gguf_value_t v; const char *want; } bad[] = {
        {"general.architecture", {.type = ENG_GGUF_STRING, .str = "x", .len = 1},
         "duplicate key general.architecture"},
        {"t.u8", {.type = ENG_GGUF_U8, .num.u = 256}, "key t.u8: value does not fit u8"},
        {"t.u16", {.type = ENG_GGUF_U16, .num.u = 65536}, "does not fit u16"},
        {"t.u32", {.type = ENG_GGUF_U32, .num.u = 1ull << 32}, "does not fit u32"},
        {"t.i8", {.type = ENG_GGUF_I8, .num.i = 128}, "does not fit i8"},
        {"t.i8", {.type = ENG_GGUF_I8, .num.i = -129}, "does not fit i8"},
        {"t.i16", {.type = ENG_GGUF_I16, .num.i = -32769}, "does not fit i16"},
        {"t.i32", {.type = ENG_GGUF_I32, .num.i = INT64_C(1) << 31}, "does not fit i32"},
        {"t.bool", {.type = ENG_GGUF_BOOL, .num.u = 2}, "does not fit bool"},
        {"t.f32", {.type = ENG_GGUF_F32, .num.f = 1e39}, "does not fit f32"},
        {"t.type", {.type = 13}, "key t.type: no such value type as (unknown type)"},
        {"t.arr", {.type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_ARRAY}, "no arrays of array"},
        {"t.arr", {.type = ENG_GGUF_ARRAY, .elem_type = 99}, "no arrays of (unknown type)"},
        {"t.arr", {.type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_U64, .count = 1ull << 62,
                   .data = data}, "too many elements for an array of u64"},
        {"t.arr", {.type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_U8, .count = 1},
         "no data for an array of u8"},
        {"t.arr", {.type = ENG_GGUF_ARRAY, .elem_type = ENG_GGUF_STRING, .count = 2},
         "no data for an array of string"},
        {"t.str", {.type = ENG_GGUF_STRING, .len = 3}, "no bytes for a string"},
        {"general.alignment", {.type = ENG_GGUF_U32, .num.u = 32}, "not the u32 64"},
        {"general.alignment", {.type = ENG_GGUF_I32, .num.i = 64}, "not the u32 64"},
    };
    eng_gguf_value_t arch = {.type = ENG_GGUF_STRING, .str = "llama", .len = 5};
    ASSERT_EQ(eng_gguf_writer_add(w, "general.architecture", &arch), LANES_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_capture_begin(&cap, NULL);
        expect_err(eng_gguf_writer_add(w, bad[i].key, &bad[i].v), LANES_EINVAL, bad[i].want,
                   bad[i].want);
    }
    const char *s[] = {"a"};
    test_capture_begin(&cap, NULL);
    expect_err(eng_gguf_writer_add_strs(w, "general.architecture", s, NULL, 1), LANES_EINVAL,
               "duplicate key general.architecture", "duplicate string array");
    test_capture_begin(&cap, NULL);
    expect_err(eng_gguf_writer_add_strs(w, "general.alignment", s, NULL, 1), LANES_EINVAL,
               "key general.alignment", "string array general.alignment");
    eng_gguf_value_t al = {.type = ENG_GGUF_U32, .num.u = 64};
    ASSERT_EQ(eng_gguf_writer_add(w, "general.alignment", &al), LANES_OK);   /* then not again */
    ASSERT_EQ(eng_gguf_writer_add_strs(w, "t.s", s, NULL, 1), LANES_OK);

    static const uint64_t d4[] = {4, 1, 1, 1}, d33[] = {33}, d0[] = {4, 0}, d64[] = {64};
    static const uint64_t dbig[] = {1ull << 62, 4};
    static const struct {
        const char *name;
        uint32_t type, n_dims;
        const uint64_t *dims;
        size_t bytes;
        int null_data;
        const char *want;
    } tbad[] = {
        {"t", ENG_GGML_F32, 0, d4, 16, 0, "tensor t: 0 dimensions (1 to 4)"},
        {"t", ENG_GGML_F32, 5, d4, 16, 0, "tensor t: 5 dimensions"},
        {"t", ENG_GGML_F32, 2, d0, 0, 0, "tensor t: dimension 1 is zero"},
        {"t", ENG_GGML_F32, 2, dbig, 0, 0, "tensor t: more than 2^63 elements"},
        {"t", 4, 1, d4, 16, 0, "tensor t: unknown ggml type 4"},
        {"t", ENG_GGML_Q8_0, 1, d33, 34, 0, "row length 33 not a multiple of the Q8_0 block (32)"},
        {"t", ENG_GGML_Q8_0, 1, d64, 64, 0, "tensor t: 64 bytes of data, its Q8_0 shape takes 68"},
        {"t", ENG_GGML_Q8_0, 1, d64, 256, 0, "256 bytes of data, its Q8_0 shape takes 68"},
        {"t", ENG_GGML_F16, 1, d4, 16, 0, "16 bytes of data, its F16 shape takes 8"},
        {"t", ENG_GGML_BF16, 1, d4, 8, 1, "8 bytes of data at NULL"},
        {"a", ENG_GGML_F32, 1, d4, 16, 0, "duplicate tensor name a"},
        {"0123456789012345678901234567890123456789012345678901234567890123", ENG_GGML_F32, 1,
         d4, 16, 0, "name longer than 63 bytes"},
    };
    ASSERT_EQ(eng_gguf_writer_add_tensor(w, "a", ENG_GGML_F32, 1, d4, data, 16), LANES_OK);
    for (size_t i = 0; i < sizeof tbad / sizeof tbad[0]; i++) {
        test_capture_begin(&cap, NULL);
        expect_err(eng_gguf_writer_add_tensor(w, tbad[i].name, tbad[i].type, tbad[i].n_dims,
                                              tbad[i].dims, tbad[i].null_data ? NULL : data,
                                              tbad[i].bytes),
                   LANES_EINVAL, tbad[i].want, tbad[i].want);
    }
    ASSERT_EQ(eng_gguf_writer_add_tensor(w, "012345678901234567890123456789012345678901234567890"
                                         "123456789012", ENG_GGML_Q8_0, 1, d64, data, 68), 0);

    /* Nothing refused got in: three pairs (general.alignment once), two tensors. */
    ASSERT_EQ(eng_gguf_writer_write(w, tmp_path("refused.gguf")), LANES_OK);
    eng_gguf_writer_destroy(w);
    eng_gguf_t *g;
    ASSERT_EQ(eng_gguf_open(tmp_path("refused.gguf"), &g), LANES_OK);
    ASSERT_EQ(eng_gguf_kv_count(g), 3);
    ASSERT(kv(g, 1, "general.alignment")->val.num.u == 64);
    ASSERT_EQ(eng_gguf_tensor_count(g), 2);
    ASSERT_EQ(eng_gguf_tensor_at(g, 1)->offset, 64);
    ASSERT_EQ(eng_gguf_tensor_at(g, 1)->bytes, 68);
    eng_gguf_close(g);
    eng_gguf_writer_destroy(NULL);
    printf("refused input: ok\n");
}

/* ---- failed writes ---- */

static void test_io_errors(void) {
    eng_gguf_writer_t *w = new_writer(32);
    add_everything(w);
    test_capture_begin(&cap, NULL);
    expect_err(eng_gguf_writer_write(w, "/nonexistent/x.gguf"), LANES_EIO,
               "gguf writer /nonexistent/x.gguf: create of /nonexistent/x.gguf.tmp failed: No such "
               "file or directory", "no such directory");

    /* A directory in the way: the rename fails, the temporary file goes, the directory stays. */
    const char *d = tmp_path("adir");
    ASSERT_EQ(mkdir(d, 0755), 0);
    test_capture_begin(&cap, NULL);
    expect_err(eng_gguf_writer_write(w, d), LANES_EIO, "rename of", "directory in the way");
    ASSERT(!exists(tmp_path("adir.tmp")));
    ASSERT_EQ(rmdir(d), 0);

    /* A short write (the file size limit stands in for a full disk: fwrite fails the same way):
     * the file already there is left as it was, and no temporary file stays. */
    const char *path = tmp_path("old.gguf");
    test_write_file(path, "old", 3);
    size_t full;
    free(test_read_file(tmp_path("all.gguf"), &full));  /* from test_round_trip, alignment 32 */
    struct rlimit old, lim;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = full - 1;    /* the last byte does not fit (nor more of the log than that) */
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    test_capture_begin(&cap, NULL);
    int rc = eng_gguf_writer_write(w, path);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    expect_err(rc, LANES_EIO, "write of", "short write");
    ASSERT(strstr(logbuf, "File too large") && strstr(logbuf, path));
    ASSERT(!exists(tmp_path("old.gguf.tmp")));
    size_t n;
    char *file = test_read_file(path, &n);
    ASSERT(n == 3 && memcmp(file, "old", 3) == 0);
    free(file);
    /* The writer is still whole: it writes over the old file now. */
    ASSERT_EQ(eng_gguf_writer_write(w, path), LANES_OK);
    check_everything(path, 32);
    eng_gguf_writer_destroy(w);

    /* The same with a tensor bigger than stdio's buffer, so fwrite itself fails, not the flush. */
    static float big[1 << 15];
    static const uint64_t dims[] = {1 << 15};
    w = new_writer(32);
    ASSERT_EQ(eng_gguf_writer_add_tensor(w, "big", ENG_GGML_F32, 1, dims, big, sizeof big), 0);
    lim.rlim_cur = sizeof big / 2;
    signal(SIGXFSZ, SIG_IGN);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    test_capture_begin(&cap, NULL);
    rc = eng_gguf_writer_write(w, path);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    expect_err(rc, LANES_EIO, "write of", "short write of a big tensor");
    ASSERT(!exists(tmp_path("old.gguf.tmp")));
    check_everything(path, 32);     /* the last good file is still there */
    eng_gguf_writer_destroy(w);
    printf("failed writes: ok\n");
}

/* ---- a real file ---- */

/* stories260K.f32.gguf was written by gguf-py with the same layout (pairs and infos in file
 * order, alignment 32, each tensor at the next multiple of 32, zero padding), so its copy through
 * the writer must be the same bytes. */
static int test_real(void) {
    const char *shared = test_shared_dir();
    if (!shared) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/models/gguf/stories260K.f32.gguf", shared);
    eng_gguf_t *g;
    ASSERT_EQ(eng_gguf_open(path, &g), LANES_OK);
    ASSERT(eng_gguf_kv_find(g, "general.alignment") == NULL);
    copy_through(g, 0, tmp_path("stories.gguf"));
    eng_gguf_close(g);
    expect_same_file(path, tmp_path("stories.gguf"));
    printf("stories260K.f32.gguf copied through the writer: the same bytes\n");

    /* What lanes-mkmodel --type f16 does, checked against gguf-py: llama3-style.f16.gguf's pairs
     * with llama3-style.f32.gguf's tensors, the matrices converted by eng_gguf_f32_to_f16, give
     * that file byte for byte. */
    eng_gguf_t *f32, *f16;
    snprintf(path, sizeof path, "%s/models/gguf/llama3-style.f32.gguf", shared);
    ASSERT_EQ(eng_gguf_open(path, &f32), LANES_OK);
    snprintf(path, sizeof path, "%s/models/gguf/llama3-style.f16.gguf", shared);
    ASSERT_EQ(eng_gguf_open(path, &f16), LANES_OK);
    eng_gguf_writer_t *w = new_writer(0);
    for (size_t i = 0; i < eng_gguf_kv_count(f16); i++) {
        const eng_gguf_kv_t *k = eng_gguf_kv_at(f16, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)k->key_len, k->key);
        ASSERT_EQ(eng_gguf_writer_add(w, key, &k->val), LANES_OK);
    }
    size_t n_f16 = 0, n = eng_gguf_tensor_count(f32);
    uint16_t **conv = calloc(n, sizeof *conv);
    ASSERT(conv != NULL && eng_gguf_tensor_count(f16) == n);
    for (size_t i = 0; i < n; i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(f32, i), *want = eng_gguf_tensor_at(f16, i);
        ASSERT(t->name_len == want->name_len && memcmp(t->name, want->name, t->name_len) == 0);
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)t->name_len, t->name);
        const void *data = t->data;
        size_t bytes = t->bytes, elems = t->bytes / 4;
        ASSERT_EQ(t->type, ENG_GGML_F32);
        if (want->type == ENG_GGML_F16) {
            ASSERT((conv[i] = malloc(elems * 2)) != NULL);
            eng_gguf_f32_to_f16(conv[i], t->data, elems);   /* mapped, at a multiple of 32 */
            data = conv[i];
            bytes = elems * 2;
            n_f16++;
        }
        ASSERT_EQ(eng_gguf_writer_add_tensor(w, name, want->type, t->n_dims, t->dims, data,
                                             bytes), LANES_OK);
    }
    ASSERT_EQ(eng_gguf_writer_write(w, tmp_path("llama3.f16.gguf")), LANES_OK);
    eng_gguf_writer_destroy(w);
    for (size_t i = 0; i < n; i++) free(conv[i]);
    free(conv);
    eng_gguf_close(f32);
    eng_gguf_close(f16);
    ASSERT_EQ(n_f16, 30);
    expect_same_file(path, tmp_path("llama3.f16.gguf"));
    printf("llama3-style.f32.gguf converted to F16 through the writer: llama3-style.f16.gguf\n");
    return 1;
}

static void remove_dir(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') unlink(tmp_path(e->d_name));
    closedir(d);
    rmdir(dir);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/test_eng_gguf_write.XXXXXX");
    ASSERT(mkdtemp(dir) != NULL);
    atexit(remove_dir);
    test_conversions();
    test_round_trip();
    test_refused();
    test_io_errors();
    if (!test_real()) {
        fprintf(stderr, "SKIP (the rest passed): ../shared not found (set LANES_SHARED)\n");
        return TEST_SKIP;
    }
    return 0;
}
