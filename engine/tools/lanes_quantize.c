/* lanes-quantize: rewrites a GGUF file with its matrices in another weight type, as llama.cpp's
 * llama-quantize does with plain absmax scaling (no importance matrix, no per-tensor type rules):
 * the metadata and the tensor order stay, each matrix is dequantized to fp32 and quantized again. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/lanes_err.h"
#include "model/gguf.h"
#include "model/model.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lanes-quantize IN.gguf OUT.gguf --type q8_0|q4_0|q4_k|q6_k|f16|bf16|f32\n"
            "Writes OUT with IN's metadata (general.file_type set, general.quantization_version 2\n"
            "added for block types) and IN's tensors in IN's order: every matrix (token_embd and\n"
            "output included) dequantized from any type lanes reads (F32, F16, BF16, Q8_0, Q4_0,\n"
            "Q4_K, Q6_K) and quantized to --type: Q8_0 and Q4_0 with llama-quantize's reference\n"
            "quantizers, Q4_K and Q6_K with lanes' plain scaling (not llama-quantize's search);\n"
            "vectors (norms, biases, rope_freqs) and position_embd unchanged. A matrix whose rows\n"
            "are not whole blocks falls back, with a note: a k-quant to Q8_0 where 32-value\n"
            "blocks fit, else F16 (llama-quantize refuses Q8_0 there). OUT appears only when\n"
            "complete.\n");
}

/* 1 when llama-quantize would convert tensor t: a matrix, but not a norm or learned positions. */
static int is_converted(const eng_gguf_tensor_t *t) {
    static const char norm[] = "_norm.weight", pos[] = "position_embd.weight";
    size_t n = t->name_len, ln = sizeof norm - 1;
    if (t->n_dims < 2) return 0;
    if (n >= ln && memcmp(t->name + n - ln, norm, ln) == 0) return 0;
    return !(n == sizeof pos - 1 && memcmp(t->name, pos, n) == 0);
}

enum { TYPE_SLOTS = 64 };

typedef struct {
    const char *in;
    eng_gguf_writer_t *w;
    void **bufs;            /* owned: converted tensors' data, which w borrows */
    size_t n_bufs;
    size_t count[TYPE_SLOTS];   /* tensors written, by ggml type (the reader knows fewer) */
} job_t;

/* Adds tensor t as type wtype, converted row by row into a buffer the job keeps. */
static int add_converted(job_t *j, const eng_gguf_tensor_t *t, const char *name, int wtype) {
    int k = (int)t->dims[0];
    size_t rows = t->bytes / eng_wtype_row_bytes((int)t->type, k);
    size_t in_rb = eng_wtype_row_bytes((int)t->type, k), out_rb = eng_wtype_row_bytes(wtype, k);
    float *x = malloc((size_t)k * sizeof *x);
    char *out = rows <= SIZE_MAX / out_rb ? malloc(rows * out_rb) : NULL;
    if (x == NULL || out == NULL) {
        free(x);
        free(out);
        fprintf(stderr, "lanes-quantize: out of memory for tensor %s\n", name);
        return LANES_ENOMEM;
    }
    j->bufs[j->n_bufs++] = out;
    for (size_t r = 0; r < rows; r++) {
        eng_wtype_row_to_f32((int)t->type, x, (const char *)t->data + r * in_rb, k);
        eng_wtype_row_from_f32(wtype, out + r * out_rb, x, k);
    }
    free(x);
    return eng_gguf_writer_add_tensor(j->w, name, (uint32_t)wtype, t->n_dims, t->dims, out,
                                      rows * out_rb);
}

/* Adds tensor t of g as it goes into the output. */
static int add_tensor(job_t *j, const eng_gguf_tensor_t *t, const char *name, int wtype) {
    int type = wtype, convert = is_converted(t);
    int cols = t->dims[0] > (uint64_t)INT32_MAX ? 0 : (int)t->dims[0];
    if (convert && cols && (type = eng_wtype_fallback(wtype, cols)) != wtype)
        fprintf(stderr, "lanes-quantize: %s: rows of %llu values are not whole %s blocks of %d: "
                "written as %s\n", name, (unsigned long long)t->dims[0], eng_wtype_name(wtype),
                eng_wtype_block(wtype), eng_wtype_name(type));
    if (!convert || t->type == (uint32_t)type) {
        if (t->type < TYPE_SLOTS) j->count[t->type]++;
        return eng_gguf_writer_add_tensor(j->w, name, t->type, t->n_dims, t->dims, t->data,
                                          t->bytes);
    }
    if (t->type > ENG_WT_BF16 || eng_wtype_name((int)t->type) == NULL ||
        t->dims[0] > (uint64_t)INT32_MAX) {
        const char *tn = eng_gguf_type_name(t->type);
        fprintf(stderr, "lanes-quantize: %s: tensor %s is %s%s, which lanes does not read\n",
                j->in, name, tn ? tn : "of an unknown type",
                t->dims[0] > (uint64_t)INT32_MAX ? " with rows too long" : "");
        return LANES_EINVAL;
    }
    j->count[type]++;
    return add_converted(j, t, name, type);
}

static int add_tensors(job_t *j, const eng_gguf_t *g, int wtype) {
    for (size_t i = 0; i < eng_gguf_tensor_count(g); i++) {
        const eng_gguf_tensor_t *t = eng_gguf_tensor_at(g, i);
        char *name = strndup(t->name, t->name_len);
        if (name == NULL) return LANES_ENOMEM;
        int rc = add_tensor(j, t, name, wtype);
        free(name);
        if (rc < 0) return rc;
    }
    return LANES_OK;
}

static int add_u32(eng_gguf_writer_t *w, const char *key, uint64_t v) {
    return eng_gguf_writer_add(w, key, &(eng_gguf_value_t){.type = ENG_GGUF_U32, .num.u = v});
}

/* Every pair of g in its order, general.file_type (and for block types
 * general.quantization_version) replaced in place, or added at the end as llama-quantize adds them
 * when absent. */
static int add_metadata(eng_gguf_writer_t *w, const eng_gguf_t *g, int wtype) {
    static const char ftype_key[] = "general.file_type", qver_key[] = "general.quantization_version";
    int quantized = eng_wtype_block(wtype) > 1, have_ftype = 0, have_qver = 0, rc = LANES_OK;
    uint64_t ftype = (uint64_t)eng_wtype_file_type(wtype);
    for (size_t i = 0; rc == LANES_OK && i < eng_gguf_kv_count(g); i++) {
        const eng_gguf_kv_t *kv = eng_gguf_kv_at(g, i);
        char *key = strndup(kv->key, kv->key_len);
        if (key == NULL) return LANES_ENOMEM;
        if (strcmp(key, ftype_key) == 0) {
            have_ftype = 1;
            rc = add_u32(w, key, ftype);
        } else if (quantized && strcmp(key, qver_key) == 0) {
            have_qver = 1;
            rc = add_u32(w, key, ENG_GGUF_QUANT_VERSION);
        } else {
            rc = eng_gguf_writer_add(w, key, &kv->val);
        }
        free(key);
    }
    if (rc == LANES_OK && quantized && !have_qver) rc = add_u32(w, qver_key, ENG_GGUF_QUANT_VERSION);
    if (rc == LANES_OK && !have_ftype) rc = add_u32(w, ftype_key, ftype);
    return rc;
}

/* 1 when a and b name the same existing file. */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (strcmp(a, b) == 0) return 1;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int quantize(const char *in, const char *out, int wtype) {
    eng_gguf_t *g = NULL;
    job_t j = {in, NULL, NULL, 0, {0}};
    int rc = eng_gguf_open(in, &g);
    if (rc < 0) return rc;
    const eng_gguf_kv_t *align = eng_gguf_kv_find(g, "general.alignment");
    uint32_t alignment = align && align->val.type == ENG_GGUF_U32 ? (uint32_t)align->val.num.u : 0;
    size_t n = eng_gguf_tensor_count(g);
    if ((j.bufs = calloc(n ? n : 1, sizeof *j.bufs)) == NULL) rc = LANES_ENOMEM;
    if (rc == LANES_OK) rc = eng_gguf_writer_create(alignment, &j.w);
    if (rc == LANES_OK) rc = add_metadata(j.w, g, wtype);
    if (rc == LANES_OK) rc = add_tensors(&j, g, wtype);
    if (rc == LANES_OK) rc = eng_gguf_writer_write(j.w, out);
    if (rc == LANES_OK) {
        printf("%s: %zu tensors:", out, n);
        for (uint32_t t = 0; t < TYPE_SLOTS; t++)
            if (j.count[t]) printf(" %zu %s", j.count[t], eng_gguf_type_name(t));
        printf("\n");
    }
    eng_gguf_writer_destroy(j.w);
    for (size_t i = 0; i < j.n_bufs; i++) free(j.bufs[i]);
    free(j.bufs);
    eng_gguf_close(g);
    return rc;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {{"type", 1, 0, 'y'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *type_name = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'y': type_name = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (type_name == NULL || argc - optind != 2) {
        usage(stderr);
        return 2;
    }
    const char *in = argv[optind], *out = argv[optind + 1];
    int wtype = eng_wtype_by_name(type_name);
    if (wtype < 0) {
        fprintf(stderr, "lanes-quantize: --type %s: q8_0, q4_0, q4_k, q6_k, f16, bf16 or f32\n",
                type_name);
        return 1;
    }
    if (same_file(in, out)) {
        fprintf(stderr, "lanes-quantize: %s is both the input and the output\n", in);
        return 1;
    }
    return quantize(in, out, wtype) < 0;
}
