/* Batch invariance with block-quantized weights (DESIGN.md invariant 2, issue 9): on the shared
 * q4-style files (every matrix Q8_0, Q4_0, Q6_K, or Q4_K_M's mix of Q4_K and Q6_K), a greedy
 * stream's tokens and logits are bitwise the same run alone or among 127 others of mixed lengths
 * (more requests than lanes, so some join mid-flight at shifted lanes), for prefill chunks of 1, 7
 * and whole prompts, on 1 or 2 threads, and on the OpenBLAS backend (which has no quantized GEMM
 * and runs the lane kernel). Activations are quantized per column, so none of that may change a
 * bit. Last, a model whose inputs feed matrices of both activation types. CMake runs it once per
 * kernel table (LANES_SIMD). Sanitizer builds run a reduced grid. */
#include <stdint.h>

#include "base/lanes_err.h"
#include "bundle.h"
#include "engine.h"
#include "gen.h"
#include "kern/kern.h"
#include "test_util.h"

#define LANES 128
#define N_REQS 136
#define MAX_NEW 6
#define N_TARGETS 3
#define GREEDY ((eng_sampler_t){0.0f, 0, 1.0f, 0})

static const char *prompts[N_TARGETS] = {"Once upon a time", "", "The little dog ran"};
/* Slots 0 and 127 (the first and last column of a full step), and one that joins late. */
static const int target_at[N_TARGETS] = {0, 127, 133};

typedef struct {
    int32_t ids[64], out[MAX_NEW];
    float *logits;
    int n_prompt, n_out;
} result_t;

static uint32_t rng_next(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* The targets, each alone on one lane, or together among fillers; results into res. */
static void run(const eng_bundle_t *b, int packed, int chunk, int threads, int gemm,
                result_t *res) {
    int vocab = eng_model_cfg(b->model)->vocab_size, lanes = packed ? LANES : 1;
    static eng_gen_req_t reqs[N_REQS];
    static int32_t filler_ids[N_REQS][8], filler_out[N_REQS][MAX_NEW];
    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {lanes, lanes + 64, threads, gemm, 128};
    ASSERT_EQ(eng_ctx_create(b->model, &cc, &ctx), LANES_OK);
    eng_gen_opts_t go = {lanes, chunk, packed ? 7 * chunk + 3 : 0, b->tok};
    if (!packed) {
        for (int t = 0; t < N_TARGETS; t++) {
            reqs[0] = (eng_gen_req_t){res[t].ids, res[t].n_prompt, MAX_NEW, GREEDY, res[t].out,
                                      res[t].logits, 0, 0, NULL, 0};
            ASSERT_EQ(eng_gen_run(ctx, reqs, 1, &go), LANES_OK);
            res[t].n_out = reqs[0].n_out;
        }
        eng_ctx_destroy(ctx);
        return;
    }
    uint32_t rng = 7;
    for (int i = 0, next = 0; i < N_REQS; i++) {
        if (next < N_TARGETS && i == target_at[next]) {
            result_t *r = &res[next++];
            reqs[i] = (eng_gen_req_t){r->ids, r->n_prompt, MAX_NEW, GREEDY, r->out, r->logits,
                                      0, 0, NULL, 0};
            continue;
        }
        int np = 1 + (int)(rng_next(&rng) % 8);
        filler_ids[i][0] = 1;
        for (int j = 1; j < np; j++) filler_ids[i][j] = 3 + (int32_t)(rng_next(&rng) % (vocab - 3));
        reqs[i] = (eng_gen_req_t){filler_ids[i], np, 1 + (int)(rng_next(&rng) % 4), GREEDY,
                                  filler_out[i], NULL, 0, 0, NULL, 0};
    }
    ASSERT_EQ(eng_gen_run(ctx, reqs, N_REQS, &go), LANES_OK);
    for (int t = 0; t < N_TARGETS; t++) res[t].n_out = reqs[target_at[t]].n_out;
    eng_ctx_destroy(ctx);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FULL_GRID 0
#else
#define FULL_GRID 1
#endif

static void open_file(eng_bundle_t *b, const char *dir, const char *stem) {
    char path[4200];
    snprintf(path, sizeof path, "%s/models/gguf/%s.gguf", dir, stem);
    ASSERT_EQ(eng_bundle_open(b, path, NULL, NULL, 0), LANES_OK);
}

static void check_model(const char *stem, const eng_bundle_t *pb) {
    eng_bundle_t b = *pb;
    int vocab = eng_model_cfg(b.model)->vocab_size;
    static result_t base[N_TARGETS], got[N_TARGETS];
    for (int t = 0; t < N_TARGETS; t++) {
        base[t].n_prompt = eng_tok_encode(b.tok, prompts[t], strlen(prompts[t]),
                                          ENG_TOK_ADD_SPECIAL, base[t].ids, 64);
        ASSERT_GT(base[t].n_prompt, 0);
        got[t] = base[t];
        ASSERT((base[t].logits = calloc((size_t)MAX_NEW * vocab, sizeof(float))) != NULL);
        ASSERT((got[t].logits = calloc((size_t)MAX_NEW * vocab, sizeof(float))) != NULL);
    }
    /* packed, chunk (0: whole prompt), threads, backend: every factor varies against the base. */
    static const int grid[][4] = {
        {1, 0, 2, ENG_GEMM_LANES}, {1, 7, 1, ENG_GEMM_LANES}, {1, 1, 2, ENG_GEMM_LANES},
        {0, 7, 2, ENG_GEMM_LANES}, {0, 0, 2, ENG_GEMM_OPENBLAS},
    };
    run(&b, 0, 0, 1, ENG_GEMM_LANES, base);
    for (int t = 0; t < N_TARGETS; t++) ASSERT_GT(base[t].n_out, 0);
    size_t n = FULL_GRID ? sizeof grid / sizeof *grid : 1;
    for (size_t g = 0; g < n; g++) {
        run(&b, grid[g][0], grid[g][1], grid[g][2], grid[g][3], got);
        for (int t = 0; t < N_TARGETS; t++)
            if (got[t].n_out != base[t].n_out ||
                memcmp(got[t].out, base[t].out, sizeof(int32_t) * base[t].n_out) != 0 ||
                memcmp(got[t].logits, base[t].logits,
                       sizeof(float) * (size_t)base[t].n_out * vocab) != 0) {
                fprintf(stderr, "%s: \"%s\" differs %s, chunk %d, %d threads, %s\n", stem,
                        prompts[t], grid[g][0] ? "packed" : "alone", grid[g][1], grid[g][2],
                        grid[g][3] == ENG_GEMM_OPENBLAS ? "openblas" : "lanes");
                exit(1);
            }
    }
    printf("%s (%s): %d streams bitwise identical alone and among %d (%zu configurations)\n",
           stem, eng_kern_best()->name, N_TARGETS, LANES - 1, n);
    for (int t = 0; t < N_TARGETS; t++) {
        free(base[t].logits);
        free(got[t].logits);
    }
}

int main(void) {
    const char *shared;
    SKIP_WITHOUT_SHARED(shared);
    static const char *files[] = {"q4-style.q8_0", "q4-style.q4_k_m", "q4-style.q4_0",
                                  "q4-style.q6_k"};
    eng_bundle_t b[4];
    for (int i = 0; i < 4; i++) open_file(&b[i], shared, files[i]);
    for (int i = 0; i < (FULL_GRID ? 4 : 2); i++) check_model(files[i], &b[i]);
    /* One input feeding matrices of both activation types (Q8_0 and Q8_K), as a file mixing
     * Q4_0 or Q8_0 with k-quants has: Q4_0's model with matrices of the same shape from the
     * others swapped in (the layers are the model's own memory). */
    eng_layer_t *l = (eng_layer_t *)eng_model_weights(b[2].model)->layers;
    const eng_layer_t *q8 = eng_model_weights(b[0].model)->layers;
    const eng_layer_t *q4k = eng_model_weights(b[1].model)->layers;
    const eng_layer_t *q6k = eng_model_weights(b[3].model)->layers;
    l[0].wk = q6k[0].wk;        /* xb: Q8_0 for q and v, Q8_K for k */
    l[1].w_up = q4k[1].w_up;    /* gate Q4_0, up Q4_K */
    l[2].wo = q8[2].wo;
    l[2].w_down = q6k[2].w_down;
    l[3].wv = q8[3].wv;
    check_model("q4-style mixed Q4_0/Q8_0/Q4_K/Q6_K", &b[2]);
    for (int i = 0; i < 4; i++) eng_bundle_close(&b[i]);
    return 0;
}
