#include "model/gguf.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "kern/half.h"

#define GGUF_VERSION 3u
#define GGUF_MAX_NAME 63u   /* llama.cpp refuses a tensor name of GGML_MAX_NAME (64) bytes */

typedef struct {
    uint8_t *p;             /* owned */
    size_t n, cap;
} bytes_t;

typedef struct {
    char *name;             /* owned */
    uint32_t type, n_dims;
    uint64_t dims[4];
    const void *data;       /* borrowed until eng_gguf_writer_write returns */
    size_t bytes;
} wtensor_t;

struct eng_gguf_writer {
    uint32_t align;
    int align_added;        /* general.alignment is among the pairs */
    bytes_t kvs;            /* the pairs, encoded as in the file */
    char **keys;            /* owned, in the order added (for duplicates) */
    size_t n_kv, cap_kv;
    wtensor_t *tensors;
    size_t n_tensors, cap_tensors;
};

static const char *const value_names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                          "string", "array", "u64", "i64", "f64"};
#define N_VALUE_NAMES (sizeof value_names / sizeof value_names[0])

static int no_memory(void) {
    LANES_LOG(LANES_LOG_ERROR, "gguf writer: out of memory");
    return LANES_ENOMEM;
}

/* Grows an array of *cap elements of size bytes to hold one more. */
static int grow(void **arr, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return LANES_OK;
    size_t c = *cap ? *cap * 2 : 16;
    if (c > SIZE_MAX / size) return no_memory();
    void *p = realloc(*arr, c * size);
    if (!p) return no_memory();
    *arr = p;
    *cap = c;
    return LANES_OK;
}

static int put(bytes_t *b, const void *d, size_t n) {
    if (n > b->cap - b->n) {
        size_t c = b->cap ? b->cap : 4096;
        while (c - b->n < n) {
            if (c > SIZE_MAX / 2) return no_memory();
            c *= 2;
        }
        uint8_t *p = realloc(b->p, c);
        if (!p) return no_memory();
        b->p = p;
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
    return LANES_OK;
}

static int put_le(bytes_t *b, uint64_t v, unsigned n) {
    uint8_t le[8];
    for (unsigned i = 0; i < n; i++) le[i] = (uint8_t)(v >> (8 * i));
    return put(b, le, n);
}

static int put_str(bytes_t *b, const char *s, size_t len) {
    int rc = put_le(b, len, 8);
    return rc < 0 ? rc : put(b, s, len);
}

int eng_gguf_writer_create(uint32_t alignment, eng_gguf_writer_t **out) {
    *out = NULL;
    if (alignment == 0) alignment = ENG_GGUF_ALIGNMENT;
    if ((alignment & (alignment - 1)) != 0) {
        LANES_LOG(LANES_LOG_ERROR, "gguf writer: alignment %u not a power of two", alignment);
        return LANES_EINVAL;
    }
    eng_gguf_writer_t *w = calloc(1, sizeof *w);
    if (!w) return no_memory();
    w->align = alignment;
    *out = w;
    return LANES_OK;
}

void eng_gguf_writer_destroy(eng_gguf_writer_t *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->keys);
    free(w->tensors);
    free(w->kvs.p);
    free(w);
}

/* The checks every pair passes, and its key and type encoded; v is NULL for a string array. */
static int begin_pair(eng_gguf_writer_t *w, const char *key, uint32_t type,
                      const eng_gguf_value_t *v) {
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) {
            LANES_LOG(LANES_LOG_ERROR, "gguf writer: duplicate key %s", key);
            return LANES_EINVAL;
        }
    if (strcmp(key, "general.alignment") == 0 &&
        (!v || v->type != ENG_GGUF_U32 || v->num.u != w->align)) {
        LANES_LOG(LANES_LOG_ERROR, "gguf writer: key general.alignment: not the u32 %u the writer "
                  "aligns to", w->align);
        return LANES_EINVAL;
    }
    int rc = grow((void **)&w->keys, &w->cap_kv, w->n_kv, sizeof *w->keys);
    if (rc < 0 || (rc = put_str(&w->kvs, key, strlen(key))) < 0) return rc;
    return put_le(&w->kvs, type, 4);
}

/* Keeps the pair begun at mark if rc is LANES_OK, else drops what was encoded of it. */
static int end_pair(eng_gguf_writer_t *w, const char *key, size_t mark, int rc) {
    char *k = rc < 0 ? NULL : strdup(key);
    if (rc == LANES_OK && !k) rc = no_memory();
    if (rc < 0) {
        w->kvs.n = mark;
        return rc;
    }
    w->keys[w->n_kv++] = k;
    if (strcmp(key, "general.alignment") == 0) w->align_added = 1;
    return LANES_OK;
}

static int bad_value(const char *key, const char *problem, uint32_t type) {
    LANES_LOG(LANES_LOG_ERROR, "gguf writer: key %s: %s %s", key, problem,
              type < N_VALUE_NAMES ? value_names[type] : "(unknown type)");
    return LANES_EINVAL;
}

/* A scalar: in range for its type, then its little-endian bytes. */
static int put_scalar(bytes_t *b, const char *key, uint32_t type, const eng_gguf_value_t *v) {
    unsigned n = (unsigned)eng_gguf_value_size(type);
    uint64_t raw;
    switch (type) {
    case ENG_GGUF_U8: case ENG_GGUF_U16: case ENG_GGUF_U32: case ENG_GGUF_U64: case ENG_GGUF_BOOL:
        if (n < 8 && v->num.u >> (type == ENG_GGUF_BOOL ? 1 : 8 * n))
            return bad_value(key, "value does not fit", type);
        raw = v->num.u;
        break;
    case ENG_GGUF_I8: case ENG_GGUF_I16: case ENG_GGUF_I32: case ENG_GGUF_I64: {
        int64_t lim = n < 8 ? INT64_C(1) << (8 * n - 1) : 0;
        if (n < 8 && (v->num.i < -lim || v->num.i >= lim))
            return bad_value(key, "value does not fit", type);
        raw = (uint64_t)v->num.i;
        break;
    }
    case ENG_GGUF_F32: {
        if (isfinite(v->num.f) && fabs(v->num.f) > FLT_MAX)
            return bad_value(key, "value does not fit", type);
        float f = (float)v->num.f;
        raw = eng_f32_bits(f);
        break;
    }
    case ENG_GGUF_F64: memcpy(&raw, &v->num.f, sizeof raw); break;
    default: return bad_value(key, "no such value type as", type);
    }
    return put_le(b, raw, n);
}

static int put_array(bytes_t *b, const char *key, const eng_gguf_value_t *v) {
    int rc = put_le(b, v->elem_type, 4);
    if (rc < 0 || (rc = put_le(b, v->count, 8)) < 0) return rc;
    if (v->count && !v->data) return bad_value(key, "no data for an array of", v->elem_type);
    if (v->elem_type == ENG_GGUF_STRING) {
        for (uint64_t i = 0; i < v->count && rc == LANES_OK; i++) {
            size_t len;
            const char *s = eng_gguf_arr_str(v, i, &len);
            rc = put_str(b, s, len);
        }
        return rc;
    }
    size_t eb = eng_gguf_value_size(v->elem_type);
    if (eb == 0) return bad_value(key, "no arrays of", v->elem_type);
    if (v->count > SIZE_MAX / eb) return bad_value(key, "too many elements for an array of",
                                                   v->elem_type);
    return put(b, v->data, (size_t)v->count * eb);
}

int eng_gguf_writer_add(eng_gguf_writer_t *w, const char *key, const eng_gguf_value_t *v) {
    size_t mark = w->kvs.n;
    int rc = begin_pair(w, key, v->type, v);
    if (rc < 0) return end_pair(w, key, mark, rc);
    if (v->type == ENG_GGUF_STRING) {
        if (v->len && !v->str) rc = bad_value(key, "no bytes for a", v->type);
        else rc = put_str(&w->kvs, v->str, v->len);
    } else if (v->type == ENG_GGUF_ARRAY) {
        rc = put_array(&w->kvs, key, v);
    } else {
        rc = put_scalar(&w->kvs, key, v->type, v);
    }
    return end_pair(w, key, mark, rc);
}

int eng_gguf_writer_add_strs(eng_gguf_writer_t *w, const char *key, const char *const *str,
                             const size_t *len, uint64_t count) {
    size_t mark = w->kvs.n;
    int rc = begin_pair(w, key, ENG_GGUF_ARRAY, NULL);
    if (rc == LANES_OK && (rc = put_le(&w->kvs, ENG_GGUF_STRING, 4)) == LANES_OK)
        rc = put_le(&w->kvs, count, 8);
    for (uint64_t i = 0; i < count && rc == LANES_OK; i++)
        rc = put_str(&w->kvs, str[i], len ? len[i] : strlen(str[i]));
    return end_pair(w, key, mark, rc);
}

int eng_gguf_writer_add_tensor(eng_gguf_writer_t *w, const char *name, uint32_t type,
                               uint32_t n_dims, const uint64_t *dims, const void *data,
                               size_t bytes) {
    char why[160];
    size_t want;
    if (strlen(name) > GGUF_MAX_NAME) {
        LANES_LOG(LANES_LOG_ERROR, "gguf writer: tensor %.*s...: name longer than %u bytes",
                  (int)GGUF_MAX_NAME, name, GGUF_MAX_NAME);
        return LANES_EINVAL;
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) {
            LANES_LOG(LANES_LOG_ERROR, "gguf writer: duplicate tensor name %s", name);
            return LANES_EINVAL;
        }
    if (eng_gguf_tensor_size(type, n_dims, dims, &want, why, sizeof why) < 0) {
        LANES_LOG(LANES_LOG_ERROR, "gguf writer: tensor %s: %s", name, why);
        return LANES_EINVAL;
    }
    if (bytes != want || !data) {
        LANES_LOG(LANES_LOG_ERROR, "gguf writer: tensor %s: %zu bytes of data%s, its %s shape "
                  "takes %zu", name, bytes, data ? "" : " at NULL", eng_gguf_type_name(type),
                  want);
        return LANES_EINVAL;
    }
    int rc = grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors);
    if (rc < 0) return rc;
    wtensor_t *t = &w->tensors[w->n_tensors];
    *t = (wtensor_t){.name = strdup(name), .type = type, .n_dims = n_dims, .data = data,
                     .bytes = bytes};
    if (!t->name) return no_memory();
    memcpy(t->dims, dims, n_dims * sizeof *dims);
    w->n_tensors++;
    return LANES_OK;
}

/* ---- the file ---- */

/* The output file with a sticky error: after a failed write the others do nothing. */
typedef struct {
    FILE *f;
    int err;                /* errno of the first failure, or 0 */
    const char *op;         /* what failed, for the log */
} out_t;

static void out(out_t *o, const void *d, size_t n) {
    if (o->err || n == 0) return;
    errno = 0;
    if (fwrite(d, 1, n, o->f) != n) {
        o->err = errno ? errno : EIO;
        o->op = "write";
    }
}

static void out_zeros(out_t *o, size_t n) {
    static const uint8_t zeros[4096];
    for (size_t k; n > 0; n -= k) {
        k = n < sizeof zeros ? n : sizeof zeros;
        out(o, zeros, k);
    }
}

static uint64_t pad(uint64_t n, uint32_t align) { return (align - n % align) % align; }

/* The header after the pairs: the tensor infos, data offsets aligned, in the order added. */
static int tensor_infos(const eng_gguf_writer_t *w, bytes_t *b) {
    uint64_t off = 0;
    int rc = LANES_OK;
    for (size_t i = 0; i < w->n_tensors && rc == LANES_OK; i++) {
        const wtensor_t *t = &w->tensors[i];
        rc = put_str(b, t->name, strlen(t->name));
        if (rc == LANES_OK) rc = put_le(b, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims && rc == LANES_OK; d++) rc = put_le(b, t->dims[d], 8);
        if (rc == LANES_OK) rc = put_le(b, t->type, 4);
        if (rc == LANES_OK) rc = put_le(b, off, 8);
        if (t->bytes + pad(t->bytes, w->align) > UINT64_MAX - off) {
            LANES_LOG(LANES_LOG_ERROR, "gguf writer: tensor data past 2^64 bytes");
            return LANES_EINVAL;
        }
        off += t->bytes + pad(t->bytes, w->align);
    }
    return rc;
}

int eng_gguf_writer_write(eng_gguf_writer_t *w, const char *path) {
    bytes_t head = {0}, tail = {0};     /* before and after the pairs added */
    size_t n_kv = w->n_kv + (w->align != ENG_GGUF_ALIGNMENT && !w->align_added);
    size_t tmp_size = strlen(path) + sizeof ".tmp";
    char *tmp = malloc(tmp_size);
    out_t o = {0};
    int rc = tmp ? LANES_OK : no_memory();
    if (rc == LANES_OK) rc = put(&head, "GGUF", 4);
    if (rc == LANES_OK) rc = put_le(&head, GGUF_VERSION, 4);
    if (rc == LANES_OK) rc = put_le(&head, w->n_tensors, 8);
    if (rc == LANES_OK) rc = put_le(&head, n_kv, 8);
    if (rc == LANES_OK && n_kv > w->n_kv) {
        static const char key[] = "general.alignment";
        rc = put_str(&tail, key, sizeof key - 1);
        if (rc == LANES_OK) rc = put_le(&tail, ENG_GGUF_U32, 4);
        if (rc == LANES_OK) rc = put_le(&tail, w->align, 4);
    }
    if (rc == LANES_OK) rc = tensor_infos(w, &tail);
    if (rc < 0) goto done;

    snprintf(tmp, tmp_size, "%s.tmp", path);
    if (!(o.f = fopen(tmp, "wb"))) {
        o.err = errno;
        o.op = "create";
    }
    out(&o, head.p, head.n);
    out(&o, w->kvs.p, w->kvs.n);
    out(&o, tail.p, tail.n);
    out_zeros(&o, pad(head.n + w->kvs.n + tail.n, w->align));
    for (size_t i = 0; i < w->n_tensors; i++) {
        out(&o, w->tensors[i].data, w->tensors[i].bytes);
        out_zeros(&o, pad(w->tensors[i].bytes, w->align));
    }
    /* Flushed and synced before the rename, so a crash leaves the old file or the whole new one. */
    if (o.f && !o.err && fflush(o.f) != 0) o.err = errno, o.op = "write";
    if (o.f && !o.err && fsync(fileno(o.f)) != 0) o.err = errno, o.op = "sync";
    if (o.f && fclose(o.f) != 0 && !o.err) o.err = errno, o.op = "close";
    if (!o.err && rename(tmp, path) != 0) o.err = errno, o.op = "rename";
    if (o.err) {
        LANES_LOG(LANES_LOG_ERROR, "gguf writer %s: %s of %s failed: %s", path, o.op, tmp,
                  strerror(o.err));
        if (strcmp(o.op, "create") != 0) unlink(tmp);
        rc = LANES_EIO;
    }
done:
    free(head.p);
    free(tail.p);
    free(tmp);
    return rc;
}

void eng_gguf_f32_to_f16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = eng_f32_to_f16(src[i]);
}

void eng_gguf_f32_to_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = eng_f32_to_bf16(src[i]);
}
