/* Batch invariance (DESIGN.md invariant 2): a stream's tokens and logits are bitwise the same run
 * alone or packed among 191 other streams of mixed lengths (some prefilling while others decode,
 * at shifted lane indexes), for prefill chunks of 1, 7 and whole prompts, on 1 or 2 threads; for
 * greedy and for seeded temperature / top-k / top-p sampling. The OpenBLAS backend agrees within
 * fp32 tolerance. Runs on the synthetic tiny model, on a synthetic model of every architecture
 * (llama, qwen2, qwen3, gpt2, gemma3, gemma4, qwen35) in every weight type (F32, F16, BF16) with
 * greedy sampling, and on stories260K when ../shared is present. The gemma3-like and gemma4-like
 * models slide a window of 5 over streams of up to 108 positions with prefill chunks longer than
 * it; alone, their context has room for 9 columns a step, so their sliding layers' rings (13
 * positions) wrap every few tokens, while packed (136 columns) they never do: equal bits show a
 * window is read the same wherever the ring wrapped. The gemma4-like model's shared-KV layers
 * read those rings too, and its per-layer embeddings and softcapped logits are per column. */
#include <math.h>
#include <stdint.h>

#include "base/lanes_err.h"
#include "bundle.h"
#include "engine.h"
#include "gen.h"
#include "test_families.h"
#include "test_util.h"

#define N_REQS 192
#define LANES 128
#define MAX_NEW 48
#define N_TARGETS 5
#define N_KINDS 5   /* samplers: greedy, temperature, top-k + top-p, top-k, top-p */

static const char *prompts[N_TARGETS] = {"", "Once upon a time", "The little dog",
                                         "Lily and Ben went to the park", "One day, a big red ball"};
static const int target_at[N_TARGETS] = {0, 37, 100, 150, 191};   /* late ones join mid-flight */

/* Columns per step beyond the lanes of a run's context. */
static int extra_cols = 256;

typedef struct {
    int32_t ids[64], out[MAX_NEW];
    float *logits;
    int n_prompt, n_out, end;
} result_t;

static uint32_t rng_next(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static eng_sampler_t sampler_for(int kind) {
    switch (kind) {
    case 1: return (eng_sampler_t){0.9f, 0, 1.0f, 1234};
    case 2: return (eng_sampler_t){1.1f, 40, 0.9f, 77};
    case 3: return (eng_sampler_t){0.8f, 5, 1.0f, 9};     /* top-k alone */
    case 4: return (eng_sampler_t){1.0f, 0, 0.7f, 31};    /* top-p alone */
    default: return (eng_sampler_t){0.0f, 0, 1.0f, 0};
    }
}

/* Runs the targets (all alone, or packed among fillers) and stores their results in res. */
static void run(const eng_bundle_t *b, int packed, int chunk, int threads, int gemm, int kind,
                result_t *res) {
    const eng_model_cfg_t *mc = eng_model_cfg(b->model);
    int vocab = mc->vocab_size;
    static eng_gen_req_t reqs[N_REQS];
    static int32_t filler_ids[N_REQS][64], filler_out[N_REQS][MAX_NEW];
    uint32_t rng = 42;
    int lanes = packed ? LANES : 1;
    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {lanes, lanes + extra_cols, threads, gemm, 0};
    ASSERT_EQ(eng_ctx_create(b->model, &cc, &ctx), LANES_OK);
    if (!packed) {
        for (int t = 0; t < N_TARGETS; t++) {
            result_t *r = &res[t];
            reqs[0] = (eng_gen_req_t){r->ids, r->n_prompt, MAX_NEW, sampler_for(kind), r->out,
                                      r->logits, 0, 0, NULL, 0};
            ASSERT_EQ(eng_gen_run(ctx, reqs, 1, &(eng_gen_opts_t){1, chunk, 0, b->tok}), LANES_OK);
            r->n_out = reqs[0].n_out;
            r->end = reqs[0].end;
        }
        eng_ctx_destroy(ctx);
        return;
    }
    for (int i = 0, next_target = 0; i < N_REQS; i++) {
        if (next_target < N_TARGETS && i == target_at[next_target]) {
            result_t *tr = &res[next_target++];
            reqs[i] = (eng_gen_req_t){tr->ids, tr->n_prompt, MAX_NEW, sampler_for(kind), tr->out,
                                      tr->logits, 0, 0, NULL, 0};
            continue;
        }
        int np = 1 + (int)(rng_next(&rng) % 60);
        filler_ids[i][0] = 1;
        for (int j = 1; j < np; j++) filler_ids[i][j] = 3 + (int32_t)(rng_next(&rng) % (vocab - 3));
        reqs[i] = (eng_gen_req_t){filler_ids[i], np, 1 + (int)(rng_next(&rng) % MAX_NEW),
                                  sampler_for((int)(rng_next(&rng) % N_KINDS)), filler_out[i],
                                  NULL, 0, 0, NULL, 0};
        reqs[i].sampler.seed = rng_next(&rng);
    }
    eng_gen_opts_t go = {LANES, chunk, 13 * chunk + 5, b->tok};
    ASSERT_EQ(eng_gen_run(ctx, reqs, N_REQS, &go), LANES_OK);
    for (int k = 0; k < N_TARGETS; k++) {
        res[k].n_out = reqs[target_at[k]].n_out;
        res[k].end = reqs[target_at[k]].end;
    }
    eng_ctx_destroy(ctx);
}

/* kinds: the samplers to check, 0..kinds - 1 (greedy first). */
static void check_model(const char *name, const eng_bundle_t *b, int kinds) {
    int vocab = eng_model_cfg(b->model)->vocab_size;
    static result_t base[N_TARGETS], got[N_TARGETS];
    for (int t = 0; t < N_TARGETS; t++) {
        base[t].n_prompt = eng_tok_encode(b->tok, prompts[t], strlen(prompts[t]),
                                          ENG_TOK_ADD_SPECIAL, base[t].ids, 64);
        ASSERT_GT(base[t].n_prompt, 0);
        got[t] = base[t];
        base[t].logits = calloc((size_t)MAX_NEW * vocab, sizeof(float));
        got[t].logits = calloc((size_t)MAX_NEW * vocab, sizeof(float));
    }
    const int chunks[] = {0, 1, 7};
    for (int kind = 0; kind < kinds; kind++) {
        run(b, 0, 0, 1, ENG_GEMM_LANES, kind, base);
        /* Greedy gets every combination; the samplers share its code path up to the logits, so
         * one packed configuration each, and 2 threads alone, show their noise and whole-row
         * sampling are the stream's own. */
        for (int packed = 0; packed <= 1; packed++)
            for (int c = 0; c < 3; c++)
                for (int threads = 1; threads <= 2; threads++) {
                    if (kind > 0 && (packed ? chunks[c] != 7 || threads != 2 : c != 1))
                        continue;
                    run(b, packed, chunks[c], threads, ENG_GEMM_LANES, kind, got);
                    for (int t = 0; t < N_TARGETS; t++) {
                        if (got[t].n_out != base[t].n_out || got[t].end != base[t].end ||
                            memcmp(got[t].out, base[t].out, sizeof(int32_t) * base[t].n_out) != 0 ||
                            memcmp(got[t].logits, base[t].logits,
                                   sizeof(float) * (size_t)base[t].n_out * vocab) != 0) {
                            fprintf(stderr, "%s: \"%s\" differs %s with chunk %d, %d threads, "
                                    "sampler %d (%d vs %d tokens)\n", name, prompts[t],
                                    packed ? "packed" : "alone", chunks[c], threads, kind,
                                    got[t].n_out, base[t].n_out);
                            exit(1);
                        }
                    }
                }
        printf("%s: sampler %d: %d target streams bitwise identical alone and among %d%s\n", name,
               kind, N_TARGETS, N_REQS - 1,
               kind ? ", 1-2 threads alone" : ", chunks whole/1/7, 1-2 threads");
    }
    /* A seeded sampler actually samples: its tokens differ from greedy somewhere. */
    run(b, 0, 0, 1, ENG_GEMM_LANES, 0, base);
    if (kinds > 1) {
        run(b, 0, 0, 1, ENG_GEMM_LANES, 1, got);
        int differ = 0;
        for (int t = 0; t < N_TARGETS; t++)
            differ |= got[t].n_out != base[t].n_out ||
                      memcmp(got[t].out, base[t].out, sizeof(int32_t) * base[t].n_out) != 0;
        ASSERT(differ);
    }

    /* OpenBLAS cross-check on the first sampled logits (later tokens may legitimately diverge). */
    run(b, 0, 0, 2, ENG_GEMM_OPENBLAS, 0, got);
    for (int t = 0; t < N_TARGETS; t++) {
        float scale = 0.0f, worst = 0.0f;
        for (int i = 0; i < vocab; i++) {
            scale = fmaxf(scale, fabsf(base[t].logits[i]));
            worst = fmaxf(worst, fabsf(base[t].logits[i] - got[t].logits[i]));
        }
        if (worst > 1e-4f * scale + 1e-5f) {
            fprintf(stderr, "%s: openblas logits differ by %g (scale %g)\n", name, worst, scale);
            exit(1);
        }
    }
    printf("%s: openblas backend agrees within 1e-4 relative on first logits\n", name);
    for (int t = 0; t < N_TARGETS; t++) {
        free(base[t].logits);
        free(got[t].logits);
    }
}

/* Sanitizer builds look for memory and thread errors, not numerics: there each architecture runs
 * in one weight type (every type still runs once); the other builds run the whole grid. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FULL_GRID 0
#else
#define FULL_GRID 1
#endif

/* tiny-qwen35 (delta nets of 2 key heads and 4 value heads of 16, a 4-tap convolution; gated
 * attention, NEOX RoPE on a quarter of each head) with qwen35-style.f32.gguf's 4 layers: 0-2 delta
 * nets, 3 attention. Lanes reused by later streams must start those from a zero state. */
static void qwen35_cfg(eng_model_cfg_t *cfg) {
    ASSERT_EQ(eng_model_preset("tiny-qwen35", cfg), LANES_OK);
    cfg->n_layers = 4;
    cfg->seq_len = 256;
    for (int l = 0; l < 4; l++) cfg->layer_kind[l] = (l + 1) % 4 ? ENG_LAYER_DNET : ENG_LAYER_ATTN;
    ASSERT(cfg->arch.attn_gate && cfg->rope_dim < cfg->head_dim);
}

/* Runs ids (n) in lane from position pos0 on as one step, every column sampled greedily with its
 * raw logits at logits + i vocab (logits NULL: none kept). Returns eng_step's result. */
static int feed(eng_ctx_t *ctx, int lane, const int32_t *ids, int n, int pos0, float *logits) {
    static eng_col_t cols[256];
    static int32_t out[256];
    int vocab = eng_ctx_model_cfg(ctx)->vocab_size;
    ASSERT_LE(n, 256);
    for (int i = 0; i < n; i++)
        cols[i] = (eng_col_t){lane, pos0 + i, ids[i], logits != NULL,
                              logits ? logits + (size_t)i * vocab : NULL, NULL};
    return eng_step(ctx, cols, n, out);
}

/* The hybrid's delta-net state on lane reuse, its refused rewind, and its memory per lane. */
static void check_hybrid_lanes(const eng_model_t *m) {
    const eng_model_cfg_t *mc = eng_model_cfg(m);
    int vocab = mc->vocab_size, n_long = 200, n = 24;
    int32_t ids[256];
    uint32_t rng = 7;
    for (int i = 0; i < n_long; i++) ids[i] = (int32_t)(rng_next(&rng) % vocab);
    float *fresh = malloc((size_t)n * vocab * sizeof *fresh);
    float *reused = malloc((size_t)n * vocab * sizeof *reused);
    ASSERT(fresh && reused);
    eng_ctx_cfg_t cc = {2, 256, 1, ENG_GEMM_LANES, 0};
    eng_ctx_t *ctx;
    /* A fresh lane 1 next to a busy lane 0; then lane 1 after a long stream of its own, whose
     * state is nothing like zero. The new stream is the long one's tail, so no prefix of the
     * two streams' positions share tokens. */
    const int32_t *tail = ids + n_long - n;
    ASSERT_EQ(eng_ctx_create(m, &cc, &ctx), LANES_OK);
    ASSERT_EQ(feed(ctx, 0, ids, 50, 0, NULL), LANES_OK);
    ASSERT_EQ(feed(ctx, 1, tail, n, 0, fresh), LANES_OK);
    eng_ctx_destroy(ctx);
    ASSERT_EQ(eng_ctx_create(m, &cc, &ctx), LANES_OK);
    ASSERT_EQ(feed(ctx, 1, ids, n_long, 0, NULL), LANES_OK);
    ASSERT_EQ(feed(ctx, 1, tail, n, 0, reused), LANES_OK);
    ASSERT(memcmp(fresh, reused, (size_t)n * vocab * sizeof *fresh) == 0);
    /* A recurrent state cannot rewind: lane 1 (filled to n) may continue at n or restart at 0,
     * nothing between; refused steps run nothing, so the lane continues as if never asked. */
    ASSERT_EQ(feed(ctx, 1, ids, 1, n - 1, NULL), LANES_EINVAL);
    ASSERT_EQ(feed(ctx, 1, ids, 1, 1, NULL), LANES_EINVAL);
    ASSERT_EQ(feed(ctx, 1, ids + n, 1, n, NULL), LANES_OK);
    eng_ctx_destroy(ctx);
    printf("qwen35-like: a reused lane equals a fresh one bitwise (after a %d-token stream); "
           "rewinds refused\n", n_long);

    /* Only the attention layers' KV grows with the context; a delta-net layer's state is
     * eng__dnet_state_floats whatever it is. */
    eng_ctx_plan_t p128, p256;
    eng_ctx_cfg_t c128 = {1, 1, 1, ENG_GEMM_LANES, 128}, c256 = {1, 1, 1, ENG_GEMM_LANES, 256};
    ASSERT_EQ(eng_ctx_plan(mc, &c128, UINT64_MAX, &p128), LANES_OK);
    ASSERT_EQ(eng_ctx_plan(mc, &c256, UINT64_MAX, &p256), LANES_OK);
    uint64_t kv_pos = 2 * (uint64_t)mc->n_kv_heads * mc->head_dim * sizeof(float), n_attn = 0;
    uint64_t state = ((uint64_t)(mc->ssm_conv_kernel - 1) *
                          (2 * mc->ssm_k_heads + mc->ssm_v_heads) * mc->ssm_head_dim +
                      (uint64_t)mc->ssm_v_heads * mc->ssm_head_dim * mc->ssm_head_dim) *
                     sizeof(float);
    for (int l = 0; l < mc->n_layers; l++) n_attn += mc->layer_kind[l] == ENG_LAYER_ATTN;
    ASSERT(n_attn > 0 && n_attn < (uint64_t)mc->n_layers);
    ASSERT(p128.kv_lane == n_attn * 128 * kv_pos + (mc->n_layers - n_attn) * state);
    ASSERT(p256.kv_lane == n_attn * 256 * kv_pos + (mc->n_layers - n_attn) * state);
    free(fresh);
    free(reused);
}

int main(void) {
    eng_bundle_t b;
    ASSERT_EQ(eng_bundle_open(&b, NULL, NULL, "tiny", 3), LANES_OK);
    check_model("synthetic tiny", &b, N_KINDS);
    eng_bundle_close(&b);
    static const char *archs[] = {"tiny",      "tiny-llama", "tiny-qwen2",
                                  "tiny-qwen3", "tiny-gpt2", "gemma3-like", "gemma4-like",
                                  "qwen35-like"};
    static const int wtypes[] = {ENG_WT_F32, ENG_WT_F16, ENG_WT_BF16};
    for (size_t a = 0; a < sizeof archs / sizeof *archs; a++)
        for (size_t w = a == 0; w < sizeof wtypes / sizeof *wtypes; w++) {
            if (!FULL_GRID && w != (a + 1) % 3) continue;
            eng_model_cfg_t cfg;
            char name[64];
            int gemma3 = strcmp(archs[a], "gemma3-like") == 0;
            int gemma4 = strcmp(archs[a], "gemma4-like") == 0;
            if (gemma3) test_gemma3_cfg(&cfg);
            else if (gemma4) test_gemma4_cfg(&cfg);
            else if (strcmp(archs[a], "qwen35-like") == 0) qwen35_cfg(&cfg);
            else ASSERT_EQ(eng_model_preset(archs[a], &cfg), LANES_OK);
            extra_cols = gemma3 || gemma4 ? 8 : 256;
            ASSERT_EQ(eng_model_synth(&cfg, 5, wtypes[w], &b.model), LANES_OK);
            ASSERT_EQ(eng_tok_synth(cfg.vocab_size, 5, &b.tok), LANES_OK);
            snprintf(name, sizeof name, "synthetic %s %s", archs[a], eng_wtype_name(wtypes[w]));
            /* Every sampler reads softcapped logits: gemma4-like F32 runs them all. */
            check_model(name, &b, gemma4 && wtypes[w] == ENG_WT_F32 ? N_KINDS : 1);
            eng_bundle_close(&b);
        }
    eng_model_cfg_t qc;
    eng_model_t *qm;
    qwen35_cfg(&qc);
    ASSERT_EQ(eng_model_synth(&qc, 5, ENG_WT_F32, &qm), LANES_OK);
    check_hybrid_lanes(qm);
    eng_model_destroy(qm);
    const char *shared = test_shared_dir();
    if (shared == NULL) {
        printf("stories260K part not run: ../shared not found\n");
        return 0;
    }
    char m[1024], t[1024];
    snprintf(m, sizeof m, "%s/models/stories260K.bin", shared);
    snprintf(t, sizeof t, "%s/models/tok512.bin", shared);
    ASSERT_EQ(eng_bundle_open(&b, m, t, NULL, 0), LANES_OK);
    check_model("stories260K", &b, N_KINDS);
    eng_bundle_close(&b);
    return 0;
}
