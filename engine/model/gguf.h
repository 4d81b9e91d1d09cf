#ifndef ENG_GGUF_H
#define ENG_GGUF_H

/* A read-only view of a GGUF file (versions 2 and 3): typed metadata and tensor infos, validated
 * in full when the file is opened, so nothing read through this header can point past the file.
 * Strings are pointer + length into the file, not NUL-terminated. Multi-byte numbers inside array
 * and tensor data are little-endian, as the file stores them. */
#include <stddef.h>
#include <stdint.h>

typedef struct eng_gguf eng_gguf_t;

#define ENG_GGUF_ALIGNMENT 32u    /* of tensor data, when general.alignment is absent */

/* Metadata value types, numbered as in the file. */
enum {
    ENG_GGUF_U8, ENG_GGUF_I8, ENG_GGUF_U16, ENG_GGUF_I16, ENG_GGUF_U32, ENG_GGUF_I32,
    ENG_GGUF_F32, ENG_GGUF_BOOL, ENG_GGUF_STRING, ENG_GGUF_ARRAY, ENG_GGUF_U64, ENG_GGUF_I64,
    ENG_GGUF_F64
};

/* Tensor (ggml) types this reader knows the size of, numbered as in the file. */
enum {
    ENG_GGML_F32 = 0, ENG_GGML_F16 = 1, ENG_GGML_Q4_0 = 2, ENG_GGML_Q4_1 = 3, ENG_GGML_Q5_0 = 6,
    ENG_GGML_Q5_1 = 7, ENG_GGML_Q8_0 = 8, ENG_GGML_Q8_1 = 9, ENG_GGML_Q2_K = 10, ENG_GGML_Q3_K = 11,
    ENG_GGML_Q4_K = 12, ENG_GGML_Q5_K = 13, ENG_GGML_Q6_K = 14, ENG_GGML_Q8_K = 15,
    ENG_GGML_IQ2_XXS = 16, ENG_GGML_IQ2_XS = 17, ENG_GGML_IQ3_XXS = 18, ENG_GGML_IQ1_S = 19,
    ENG_GGML_IQ4_NL = 20, ENG_GGML_IQ3_S = 21, ENG_GGML_IQ2_S = 22, ENG_GGML_IQ4_XS = 23,
    ENG_GGML_I8 = 24, ENG_GGML_I16 = 25, ENG_GGML_I32 = 26, ENG_GGML_I64 = 27, ENG_GGML_F64 = 28,
    ENG_GGML_IQ1_M = 29, ENG_GGML_BF16 = 30, ENG_GGML_TQ1_0 = 34, ENG_GGML_TQ2_0 = 35
};

/* One metadata value. Scalars: integers and bools in u (unsigned types, bool 0/1) or i (signed
 * types, sign-extended), floats in f. Strings: str, len. Arrays: elem_type and count; for numeric
 * elements data points at them in the file, for strings use eng_gguf_arr_str. */
typedef struct {
    uint32_t type;
    union { uint64_t u; int64_t i; double f; } num;
    const char *str;
    size_t len;
    uint32_t elem_type;
    uint64_t count;
    const void *data;
} eng_gguf_value_t;

typedef struct {
    const char *key;
    size_t key_len;
    eng_gguf_value_t val;
} eng_gguf_kv_t;

/* dims in ggml order: dims[0] is the row length (contiguous). data (in the file) holds bytes. */
typedef struct {
    const char *name;
    size_t name_len;
    uint32_t n_dims;
    uint64_t dims[4];
    uint32_t type;
    uint64_t offset;    /* from the start of the data section */
    const void *data;
    size_t bytes;
} eng_gguf_tensor_t;

/* Maps path read-only and validates it. A bad file logs one line "gguf PATH: problem (key K /
 * tensor T)" and returns LANES_EMODEL; LANES_EIO when it cannot be opened or mapped. */
int eng_gguf_open(const char *path, eng_gguf_t **out);

/* The same over bytes in memory, which it borrows until eng_gguf_close; name is for the log. */
int eng_gguf_open_mem(const void *data, size_t size, const char *name, eng_gguf_t **out);

void eng_gguf_close(eng_gguf_t *g);   /* NULL is fine; unmaps what eng_gguf_open mapped */

uint32_t eng_gguf_version(const eng_gguf_t *g);
size_t eng_gguf_kv_count(const eng_gguf_t *g);
const eng_gguf_kv_t *eng_gguf_kv_at(const eng_gguf_t *g, size_t i);      /* in file order */
const eng_gguf_kv_t *eng_gguf_kv_find(const eng_gguf_t *g, const char *key);   /* or NULL */

/* Element i (< count) of a string array: returns its bytes, *len their number. */
const char *eng_gguf_arr_str(const eng_gguf_value_t *v, uint64_t i, size_t *len);

size_t eng_gguf_tensor_count(const eng_gguf_t *g);
const eng_gguf_tensor_t *eng_gguf_tensor_at(const eng_gguf_t *g, size_t i);   /* file order */
const eng_gguf_tensor_t *eng_gguf_tensor_find(const eng_gguf_t *g, const char *name);

/* Bytes of the data section the tensors span (from its start to the end of the last tensor). */
size_t eng_gguf_data_bytes(const eng_gguf_t *g);

/* "Q8_0" for a ggml type number, NULL for one this reader does not know. */
const char *eng_gguf_type_name(uint32_t type);

/* Bytes of one value of a scalar metadata type (an array element); 0 for strings, arrays and
 * unknown types. */
size_t eng_gguf_value_size(uint32_t type);

/* Bytes of the data of a tensor of ggml type shaped dims[0..n_dims), by the rules the reader
 * holds every tensor to: 1 to 4 dimensions, none zero, under 2^63 elements, a known type whose
 * block divides dims[0], a size that fits size_t. Returns LANES_OK and sets *bytes, or
 * LANES_EINVAL and writes the rule broken (one line, no newline) to why[why_len]. */
int eng_gguf_tensor_size(uint32_t type, uint32_t n_dims, const uint64_t *dims, size_t *bytes,
                         char *why, size_t why_len);

/* ---- writing a GGUF file (gguf_write.c) ---- */

/* Collects metadata and tensors, then writes them as a version 3 file laid out as ggml and
 * gguf-py lay theirs out: the pairs and tensor infos in the order added, each tensor's data at
 * the next multiple of the alignment after the one before, zero padding after every tensor. */
typedef struct eng_gguf_writer eng_gguf_writer_t;

/* Returns a new empty writer aligning tensor data to alignment bytes: a power of two, or 0 for
 * ENG_GGUF_ALIGNMENT. Any other than that is written as general.alignment (the last pair) unless
 * added. LANES_EINVAL for a bad alignment, LANES_ENOMEM; each logged. */
int eng_gguf_writer_create(uint32_t alignment, eng_gguf_writer_t **out);

void eng_gguf_writer_destroy(eng_gguf_writer_t *w);   /* NULL is fine */

/* Adds the pair key (NUL-terminated) = v, copied. v as the reader fills it: type, then num.u
 * (unsigned types, bool 0 or 1), num.i (signed) or num.f (floats), or str and len; arrays:
 * elem_type, count and data (count little-endian elements; a string array only as the reader
 * gives it, see eng_gguf_writer_add_strs otherwise). So a reader's pairs copy over unchanged.
 * LANES_EINVAL, logged with the key: a duplicate key, an unknown type, an array of arrays, a
 * number its type cannot hold, general.alignment other than the writer's (u32); LANES_ENOMEM. */
int eng_gguf_writer_add(eng_gguf_writer_t *w, const char *key, const eng_gguf_value_t *v);

/* Adds key = an array of count strings: str[i], len[i] bytes each (len NULL: NUL-terminated),
 * copied. Errors as eng_gguf_writer_add. */
int eng_gguf_writer_add_strs(eng_gguf_writer_t *w, const char *key, const char *const *str,
                             const size_t *len, uint64_t count);

/* Adds a tensor: its name (NUL-terminated, at most 63 bytes, as llama.cpp requires), ggml type,
 * n_dims dims in ggml order (dims[0] is the row length), and bytes of data, which it borrows for
 * every eng_gguf_writer_write after this call. LANES_EINVAL, logged with the name: a duplicate or too long name,
 * a shape eng_gguf_tensor_size refuses, bytes other than that size; LANES_ENOMEM. */
int eng_gguf_writer_add_tensor(eng_gguf_writer_t *w, const char *name, uint32_t type,
                               uint32_t n_dims, const uint64_t *dims, const void *data,
                               size_t bytes);

/* Writes everything added to path (created as fopen does), through PATH.tmp renamed over path
 * when complete and synced, so path never holds a partial file. LANES_EIO, logged naming the
 * file, on any failed create, write (a short write: ENOSPC, EFBIG), sync, close or rename
 * (PATH.tmp is then removed); LANES_EINVAL for tensors past 2^64 bytes; LANES_ENOMEM. The writer
 * stays as it was: it can be written again. */
int eng_gguf_writer_write(eng_gguf_writer_t *w, const char *path);

/* n fp32 values to F16 / BF16 bits for a tensor's data, rounding to nearest even (half.h's
 * eng_f32_to_f16 and eng_f32_to_bf16). */
void eng_gguf_f32_to_f16(uint16_t *dst, const float *src, size_t n);
void eng_gguf_f32_to_bf16(uint16_t *dst, const float *src, size_t n);

#endif
