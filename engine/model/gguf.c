#include "model/gguf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_file.h"
#include "base/lanes_log.h"

#define GGUF_MAX_DIMS 4u

struct eng_gguf {
    const uint8_t *base;    /* borrowed, or the mapping below */
    size_t size;
    void *map;              /* owned mmap of the file, or NULL */
    uint32_t version;
    eng_gguf_kv_t *kvs;     /* file order */
    const eng_gguf_kv_t **kv_by_key;
    size_t n_kv;
    eng_gguf_tensor_t *tensors;   /* file order */
    const eng_gguf_tensor_t **tensor_by_name;
    size_t n_tensors;
    size_t data_bytes;
};

/* Block length and bytes per block of each ggml type; block 0: unknown. */
static const struct { const char *name; uint32_t block, bytes; } ggml_types[] = {
    [ENG_GGML_F32] = {"F32", 1, 4},       [ENG_GGML_F16] = {"F16", 1, 2},
    [ENG_GGML_Q4_0] = {"Q4_0", 32, 18},   [ENG_GGML_Q4_1] = {"Q4_1", 32, 20},
    [ENG_GGML_Q5_0] = {"Q5_0", 32, 22},   [ENG_GGML_Q5_1] = {"Q5_1", 32, 24},
    [ENG_GGML_Q8_0] = {"Q8_0", 32, 34},   [ENG_GGML_Q8_1] = {"Q8_1", 32, 36},
    [ENG_GGML_Q2_K] = {"Q2_K", 256, 84},  [ENG_GGML_Q3_K] = {"Q3_K", 256, 110},
    [ENG_GGML_Q4_K] = {"Q4_K", 256, 144}, [ENG_GGML_Q5_K] = {"Q5_K", 256, 176},
    [ENG_GGML_Q6_K] = {"Q6_K", 256, 210}, [ENG_GGML_Q8_K] = {"Q8_K", 256, 292},
    [ENG_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [ENG_GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [ENG_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [ENG_GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [ENG_GGML_IQ4_NL] = {"IQ4_NL", 32, 18},    [ENG_GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [ENG_GGML_IQ2_S] = {"IQ2_S", 256, 82},     [ENG_GGML_IQ4_XS] = {"IQ4_XS", 256, 136},
    [ENG_GGML_IQ1_M] = {"IQ1_M", 256, 56},     [ENG_GGML_TQ1_0] = {"TQ1_0", 256, 54},
    [ENG_GGML_TQ2_0] = {"TQ2_0", 256, 66},
    [ENG_GGML_I8] = {"I8", 1, 1},         [ENG_GGML_I16] = {"I16", 1, 2},
    [ENG_GGML_I32] = {"I32", 1, 4},       [ENG_GGML_I64] = {"I64", 1, 8},
    [ENG_GGML_F64] = {"F64", 1, 8},       [ENG_GGML_BF16] = {"BF16", 1, 2},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

/* Bytes of a scalar value type; 0 for strings, arrays and unknown types. */
static const uint8_t value_bytes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
#define N_VALUE_TYPES (sizeof value_bytes / sizeof value_bytes[0])

const char *eng_gguf_type_name(uint32_t type) {
    return type < N_GGML_TYPES && ggml_types[type].block ? ggml_types[type].name : NULL;
}

size_t eng_gguf_value_size(uint32_t type) { return type < N_VALUE_TYPES ? value_bytes[type] : 0; }

/* Overflow-checked a * b into *out. */
static int mul_ok(uint64_t a, uint64_t b, uint64_t max, uint64_t *out) {
    if (b != 0 && a > max / b) return 0;
    *out = a * b;
    return 1;
}

int eng_gguf_tensor_size(uint32_t type, uint32_t n_dims, const uint64_t *dims, size_t *bytes,
                         char *why, size_t why_len) {
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        snprintf(why, why_len, "%u dimensions (1 to %u)", n_dims, GGUF_MAX_DIMS);
        return LANES_EINVAL;
    }
    uint64_t elems = 1, size;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (dims[d] == 0) {
            snprintf(why, why_len, "dimension %u is zero", d);
            return LANES_EINVAL;
        }
        if (!mul_ok(elems, dims[d], INT64_MAX, &elems)) {
            snprintf(why, why_len, "more than 2^63 elements");
            return LANES_EINVAL;
        }
    }
    const char *tn = eng_gguf_type_name(type);
    if (!tn) {
        snprintf(why, why_len, "unknown ggml type %u", type);
        return LANES_EINVAL;
    }
    uint32_t block = ggml_types[type].block;
    if (dims[0] % block != 0) {
        snprintf(why, why_len, "row length %llu not a multiple of the %s block (%u)",
                 (unsigned long long)dims[0], tn, block);
        return LANES_EINVAL;
    }
    if (!mul_ok(elems / block, ggml_types[type].bytes, SIZE_MAX, &size)) {
        snprintf(why, why_len, "data size overflows");
        return LANES_EINVAL;
    }
    *bytes = (size_t)size;
    return LANES_OK;
}

/* The reader's cursor, and what it is reading for the one error line. */
typedef struct {
    const uint8_t *p;
    size_t size, pos;
    const char *name;       /* the path, for the log */
    const char *what;       /* "key" or "tensor", or NULL before either is known */
    const char *ctx;
    size_t ctx_len;
} rd_t;

static void set_ctx(rd_t *r, const char *what, const char *s, size_t len) {
    r->what = what;
    r->ctx = s;
    r->ctx_len = len;
}

/* A name from the file for the log: at most 64 bytes, printable ASCII only (so the error stays
 * one line), "..." when cut. dst holds 68 bytes. */
static const char *printable(char *dst, const char *s, size_t len) {
    size_t n = len < 64 ? len : 64;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    strcpy(dst + n, n < len ? "..." : "");
    return dst;
}

__attribute__((format(printf, 2, 3))) static int bad(const rd_t *r, const char *fmt, ...) {
    char problem[256], ctx[96] = "", name[68];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    if (r->what) snprintf(ctx, sizeof ctx, " (%s %s)", r->what, printable(name, r->ctx, r->ctx_len));
    LANES_LOG(LANES_LOG_ERROR, "gguf %s: %s%s", r->name, problem, ctx);
    return LANES_EMODEL;
}

static uint64_t le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static size_t left(const rd_t *r) { return r->size - r->pos; }

static int need(rd_t *r, size_t n) {
    if (n <= left(r)) return LANES_OK;
    return bad(r, "truncated: %zu bytes needed at offset %zu, %zu left", n, r->pos, left(r));
}

static int rd_uint(rd_t *r, unsigned n, uint64_t *v) {
    int rc = need(r, n);
    if (rc < 0) return rc;
    *v = le(r->p + r->pos, n);
    r->pos += n;
    return LANES_OK;
}

static int rd_u32(rd_t *r, uint32_t *v) {
    uint64_t x = 0;
    int rc = rd_uint(r, 4, &x);
    *v = (uint32_t)x;
    return rc;
}

static int rd_str(rd_t *r, const char **s, size_t *len) {
    uint64_t n;
    int rc = rd_uint(r, 8, &n);
    if (rc < 0) return rc;
    if (n > left(r))
        return bad(r, "string of %llu bytes at offset %zu, only %zu left in the file",
                   (unsigned long long)n, r->pos - 8, left(r));
    *s = (const char *)r->p + r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n;
    return LANES_OK;
}

static void set_scalar(eng_gguf_value_t *v, uint32_t type, uint64_t raw) {
    switch (type) {
    case ENG_GGUF_I8: v->num.i = (int8_t)raw; break;
    case ENG_GGUF_I16: v->num.i = (int16_t)raw; break;
    case ENG_GGUF_I32: v->num.i = (int32_t)raw; break;
    case ENG_GGUF_I64: v->num.i = (int64_t)raw; break;
    case ENG_GGUF_F32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, sizeof f);
        v->num.f = f;
        break;
    }
    case ENG_GGUF_F64: memcpy(&v->num.f, &raw, sizeof raw); break;
    default: v->num.u = raw;
    }
}

/* An array of count strings: a table of pointers to each one's length field, so element i is
 * found without walking the ones before it. The count was checked against the bytes left. */
static int rd_str_array(rd_t *r, uint64_t count, eng_gguf_value_t *v) {
    if (count > left(r) / 8)
        return bad(r, "array of %llu strings, more than the %zu bytes left could hold",
                   (unsigned long long)count, left(r));
    if (count == 0) return LANES_OK;
    const uint8_t **table = malloc((size_t)count * sizeof *table);
    if (!table) return bad(r, "no memory for an array of %llu strings", (unsigned long long)count);
    v->data = table;
    for (uint64_t i = 0; i < count; i++) {
        const char *s;
        size_t len;
        table[i] = r->p + r->pos;
        int rc = rd_str(r, &s, &len);
        if (rc < 0) return rc;
    }
    return LANES_OK;
}

static int rd_value(rd_t *r, uint32_t type, eng_gguf_value_t *v) {
    v->type = type;
    if (type == ENG_GGUF_STRING) return rd_str(r, &v->str, &v->len);
    if (type == ENG_GGUF_ARRAY) {
        uint64_t count;
        int rc = rd_u32(r, &v->elem_type);
        if (rc < 0 || (rc = rd_uint(r, 8, &count)) < 0) return rc;
        v->count = count;
        if (v->elem_type == ENG_GGUF_STRING) return rd_str_array(r, count, v);
        if (v->elem_type == ENG_GGUF_ARRAY) return bad(r, "array of arrays not supported");
        if (v->elem_type >= N_VALUE_TYPES) return bad(r, "unknown array type %u", v->elem_type);
        unsigned eb = value_bytes[v->elem_type];
        if (count > left(r) / eb)
            return bad(r, "array of %llu elements of %u bytes, only %zu bytes left",
                       (unsigned long long)count, eb, left(r));
        v->data = r->p + r->pos;
        r->pos += (size_t)count * eb;
        return LANES_OK;
    }
    if (type >= N_VALUE_TYPES) return bad(r, "unknown value type %u", type);
    uint64_t raw;
    int rc = rd_uint(r, value_bytes[type], &raw);
    if (rc == LANES_OK) set_scalar(v, type, raw);
    return rc;
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int cmp_kv(const void *a, const void *b) {
    const eng_gguf_kv_t *x = *(const eng_gguf_kv_t *const *)a, *y = *(const eng_gguf_kv_t *const *)b;
    return cmp_bytes(x->key, x->key_len, y->key, y->key_len);
}

static int cmp_tensor_name(const void *a, const void *b) {
    const eng_gguf_tensor_t *x = *(const eng_gguf_tensor_t *const *)a;
    const eng_gguf_tensor_t *y = *(const eng_gguf_tensor_t *const *)b;
    return cmp_bytes(x->name, x->name_len, y->name, y->name_len);
}

static int cmp_tensor_offset(const void *a, const void *b) {
    const eng_gguf_tensor_t *x = *(const eng_gguf_tensor_t *const *)a;
    const eng_gguf_tensor_t *y = *(const eng_gguf_tensor_t *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static int rd_kvs(rd_t *r, eng_gguf_t *g, uint64_t count) {
    /* The smallest pair: an empty key (8), its type (4) and a one-byte value. */
    if (count > left(r) / 13)
        return bad(r, "kv_count %llu: more than the %zu bytes left could hold",
                   (unsigned long long)count, left(r));
    if (count == 0) return LANES_OK;
    g->kvs = calloc((size_t)count, sizeof *g->kvs);
    g->kv_by_key = malloc((size_t)count * sizeof *g->kv_by_key);
    if (!g->kvs || !g->kv_by_key) return bad(r, "no memory for %llu keys", (unsigned long long)count);
    for (size_t i = 0; i < count; i++) {
        eng_gguf_kv_t *kv = &g->kvs[i];
        uint32_t type;
        int rc = rd_str(r, &kv->key, &kv->key_len);
        if (rc < 0) return rc;
        g->n_kv = i + 1;    /* from here on close() frees what the value holds */
        set_ctx(r, "key", kv->key, kv->key_len);
        if ((rc = rd_u32(r, &type)) < 0 || (rc = rd_value(r, type, &kv->val)) < 0) return rc;
        g->kv_by_key[i] = kv;
    }
    qsort(g->kv_by_key, g->n_kv, sizeof *g->kv_by_key, cmp_kv);
    for (size_t i = 1; i < g->n_kv; i++)
        if (cmp_kv(&g->kv_by_key[i - 1], &g->kv_by_key[i]) == 0) {
            set_ctx(r, "key", g->kv_by_key[i]->key, g->kv_by_key[i]->key_len);
            return bad(r, "duplicate key");
        }
    return LANES_OK;
}

static int rd_alignment(rd_t *r, const eng_gguf_t *g, uint32_t *align) {
    const eng_gguf_kv_t *kv = eng_gguf_kv_find(g, "general.alignment");
    *align = ENG_GGUF_ALIGNMENT;
    if (!kv) return LANES_OK;
    set_ctx(r, "key", kv->key, kv->key_len);
    if (kv->val.type != ENG_GGUF_U32) return bad(r, "type %u, not u32", kv->val.type);
    uint64_t a = kv->val.num.u;
    if (a == 0 || (a & (a - 1)) != 0) return bad(r, "alignment %llu not a power of two",
                                                 (unsigned long long)a);
    *align = (uint32_t)a;
    return LANES_OK;
}

static int rd_tensor(rd_t *r, eng_gguf_tensor_t *t) {
    int rc = rd_str(r, &t->name, &t->name_len);
    if (rc < 0) return rc;
    set_ctx(r, "tensor", t->name, t->name_len);
    char why[160];
    if ((rc = rd_u32(r, &t->n_dims)) < 0) return rc;
    /* At most 4 dimensions are read: eng_gguf_tensor_size reports a count over that. */
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->dims[d] = 1;
        if (d < t->n_dims && (rc = rd_uint(r, 8, &t->dims[d])) < 0) return rc;
    }
    if ((rc = rd_u32(r, &t->type)) < 0 || (rc = rd_uint(r, 8, &t->offset)) < 0) return rc;
    if (eng_gguf_tensor_size(t->type, t->n_dims, t->dims, &t->bytes, why, sizeof why) < 0)
        return bad(r, "%s", why);
    return LANES_OK;
}

/* Places every tensor inside the file, aligned, and no two sharing a byte. */
static int place_tensors(rd_t *r, eng_gguf_t *g, size_t data_start, uint32_t align) {
    size_t room = data_start <= r->size ? r->size - data_start : 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        eng_gguf_tensor_t *t = &g->tensors[i];
        set_ctx(r, "tensor", t->name, t->name_len);
        if (t->offset % align != 0)
            return bad(r, "offset %llu not a multiple of the alignment %u",
                       (unsigned long long)t->offset, align);
        if (t->offset > room || t->bytes > room - t->offset)
            return bad(r, "data (offset %llu, %zu bytes) past the end of the file (%zu bytes, "
                       "data section at %zu)", (unsigned long long)t->offset, t->bytes, r->size,
                       data_start);
        t->data = r->p + data_start + t->offset;
        if (t->offset + t->bytes > g->data_bytes) g->data_bytes = (size_t)t->offset + t->bytes;
    }
    const eng_gguf_tensor_t **by = g->tensor_by_name;  /* borrowed to sort by offset first */
    if (g->n_tensors == 0) return LANES_OK;
    qsort(by, g->n_tensors, sizeof *by, cmp_tensor_offset);
    for (size_t i = 1; i < g->n_tensors; i++)
        if (by[i - 1]->offset + by[i - 1]->bytes > by[i]->offset) {
            char prev[68];
            set_ctx(r, "tensor", by[i]->name, by[i]->name_len);
            return bad(r, "data overlaps tensor %s",
                       printable(prev, by[i - 1]->name, by[i - 1]->name_len));
        }
    qsort(by, g->n_tensors, sizeof *by, cmp_tensor_name);
    for (size_t i = 1; i < g->n_tensors; i++)
        if (cmp_tensor_name(&by[i - 1], &by[i]) == 0) {
            set_ctx(r, "tensor", by[i]->name, by[i]->name_len);
            return bad(r, "duplicate tensor name");
        }
    return LANES_OK;
}

static int rd_tensors(rd_t *r, eng_gguf_t *g, uint64_t count) {
    /* The smallest info: an empty name (8), one dimension (4 + 8), the type (4), the offset (8). */
    if (count > left(r) / 32)
        return bad(r, "tensor_count %llu: more than the %zu bytes left could hold",
                   (unsigned long long)count, left(r));
    if (count == 0) return LANES_OK;
    g->tensors = calloc((size_t)count, sizeof *g->tensors);
    g->tensor_by_name = malloc((size_t)count * sizeof *g->tensor_by_name);
    if (!g->tensors || !g->tensor_by_name)
        return bad(r, "no memory for %llu tensors", (unsigned long long)count);
    g->n_tensors = (size_t)count;
    for (size_t i = 0; i < count; i++) {
        int rc = rd_tensor(r, &g->tensors[i]);
        if (rc < 0) return rc;
        g->tensor_by_name[i] = &g->tensors[i];
    }
    return LANES_OK;
}

static int parse(rd_t *r, eng_gguf_t *g) {
    uint64_t n_tensors, n_kv;
    uint32_t align;
    int rc = need(r, 4);
    if (rc < 0) return rc;
    if (memcmp(r->p, "GGUF", 4) != 0) return bad(r, "not a GGUF file (bad magic)");
    r->pos = 4;
    if ((rc = rd_u32(r, &g->version)) < 0) return rc;
    if (g->version != 2 && g->version != 3)
        return bad(r, "version %u not supported (2 or 3)", g->version);
    if ((rc = rd_uint(r, 8, &n_tensors)) < 0 || (rc = rd_uint(r, 8, &n_kv)) < 0) return rc;
    if ((rc = rd_kvs(r, g, n_kv)) < 0) return rc;
    set_ctx(r, NULL, NULL, 0);
    if ((rc = rd_alignment(r, g, &align)) < 0) return rc;
    set_ctx(r, NULL, NULL, 0);
    if ((rc = rd_tensors(r, g, n_tensors)) < 0) return rc;
    /* The data section starts at the next multiple of the alignment (possibly past the end of a
     * file without tensors); r->pos <= size, so this cannot overflow. */
    size_t data_start = (r->pos + (align - 1)) / align * align;
    return place_tensors(r, g, data_start, align);
}

int eng_gguf_open_mem(const void *data, size_t size, const char *name, eng_gguf_t **out) {
    static const uint8_t empty[1];
    *out = NULL;
    eng_gguf_t *g = calloc(1, sizeof *g);
    if (!g) {
        LANES_LOG(LANES_LOG_ERROR, "gguf %s: no memory", name);
        return LANES_ENOMEM;
    }
    g->base = size ? data : empty;
    g->size = size;
    rd_t r = {.p = g->base, .size = size, .name = name};
    int rc = parse(&r, g);
    if (rc < 0) {
        eng_gguf_close(g);
        return rc;
    }
    *out = g;
    return LANES_OK;
}

int eng_gguf_open(const char *path, eng_gguf_t **out) {
    int fd;
    size_t size;
    void *map = NULL;
    *out = NULL;
    if (lanes_open_file("gguf", path, &fd, &size) < 0) return LANES_EIO;
    if (size > 0 && (map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
        LANES_LOG(LANES_LOG_ERROR, "gguf %s: mmap failed: %s", path, strerror(errno));
        close(fd);
        return LANES_EIO;
    }
    close(fd);  /* the mapping stays valid */
    int rc = eng_gguf_open_mem(map, size, path, out);
    if (rc < 0) {
        if (map) munmap(map, size);
        return rc;
    }
    (*out)->map = map;
    return LANES_OK;
}

void eng_gguf_close(eng_gguf_t *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++)
        if (g->kvs[i].val.type == ENG_GGUF_ARRAY && g->kvs[i].val.elem_type == ENG_GGUF_STRING)
            free((void *)g->kvs[i].val.data);
    free(g->kvs);
    free(g->kv_by_key);
    free(g->tensors);
    free(g->tensor_by_name);
    if (g->map) munmap(g->map, g->size);
    free(g);
}

uint32_t eng_gguf_version(const eng_gguf_t *g) { return g->version; }
size_t eng_gguf_kv_count(const eng_gguf_t *g) { return g->n_kv; }
size_t eng_gguf_tensor_count(const eng_gguf_t *g) { return g->n_tensors; }
size_t eng_gguf_data_bytes(const eng_gguf_t *g) { return g->data_bytes; }

const eng_gguf_kv_t *eng_gguf_kv_at(const eng_gguf_t *g, size_t i) {
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const eng_gguf_tensor_t *eng_gguf_tensor_at(const eng_gguf_t *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const eng_gguf_kv_t *eng_gguf_kv_find(const eng_gguf_t *g, const char *key) {
    eng_gguf_kv_t k = {.key = key, .key_len = strlen(key)};
    const eng_gguf_kv_t *kp = &k, **hit;
    if (g->n_kv == 0) return NULL;
    hit = bsearch(&kp, g->kv_by_key, g->n_kv, sizeof *g->kv_by_key, cmp_kv);
    return hit ? *hit : NULL;
}

const eng_gguf_tensor_t *eng_gguf_tensor_find(const eng_gguf_t *g, const char *name) {
    eng_gguf_tensor_t t = {.name = name, .name_len = strlen(name)};
    const eng_gguf_tensor_t *tp = &t, **hit;
    if (g->n_tensors == 0) return NULL;
    hit = bsearch(&tp, g->tensor_by_name, g->n_tensors, sizeof *g->tensor_by_name,
                  cmp_tensor_name);
    return hit ? *hit : NULL;
}

const char *eng_gguf_arr_str(const eng_gguf_value_t *v, uint64_t i, size_t *len) {
    const uint8_t *const *table = v->data;
    *len = (size_t)le(table[i], 8);
    return (const char *)table[i] + 8;
}
