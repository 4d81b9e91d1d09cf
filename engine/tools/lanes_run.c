/* lanes-run: one-shot generation; several prompts run at once as lanes of the same steps. */
#include <cjson/cJSON.h>
#include <float.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_arg.h"
#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "base/lanes_utf8.h"
#include "bundle.h"
#include "engine.h"
#include "gen.h"
#include "score.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: lanes-run [-m MODEL -z TOKENIZER | --preset tiny|15m|110m] (-p PROMPT | --prompts FILE)\n"
            "                 [-n MAX_NEW_TOKENS] [--temperature T] [--top-p P] [--top-k K] [--seed S]\n"
            "                 [--threads N] [--gemm lanes|openblas] [--lanes N] [--chunk N]\n"
            "                 [--ctx N] [--ignore-eos] [--logprobs N] [--json]\n"
            "       lanes-run [-m MODEL ...] --teacher-force FILE.jsonl [--threads N] [--ctx N]\n"
            "Without -m the built-in synthetic model of --preset (default 15m) is used.\n"
            "--teacher-force feeds the \"tokens\" of each JSON line and prints, per line, after each\n"
            "position: the greedy argmax, its logit and the top-2 logit gap.\n"
            "--ignore-eos: end-of-generation tokens are ordinary ones (only -n or the context end\n"
            "a stream). --logprobs N (0..%d): the log-softmax of the raw logits of each generated\n"
            "token; after a prompt's text, one line per token:\n"
            "  logprob ID LP ID1:LP1 ... IDN:LPN\n"
            "(the token, then the N most probable, highest first; -inf for no probability); with\n"
            "--json, \"logprobs\": [{\"token\":ID,\"logprob\":LP,\"top\":[{\"token\":ID1,\n"
            "\"logprob\":LP1},...]},...] (null for -inf).\n",
            ENG_MAX_TOP_LOGPROBS);
}

typedef struct {
    char **v;
    int n, cap;
} lines_t;

static int read_lines(const char *path, lines_t *out) {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "lanes-run: cannot open %s\n", path);
        return LANES_EIO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 16;
            out->v = realloc(out->v, (size_t)out->cap * sizeof *out->v);
        }
        out->v[out->n++] = strdup(line);
    }
    free(line);
    fclose(f);
    return LANES_OK;
}

/* Appends the bytes of ids (following prev) to a growing buffer. */
static char *decode_all(const eng_tok_t *tok, int32_t prev, const int32_t *ids, int n) {
    size_t cap = 64, len = 0;
    char *s = malloc(cap);
    for (int i = 0; i < n; i++) {
        size_t pl;
        const char *piece = eng_tok_decode(tok, prev, ids[i], &pl);
        if (len + pl + 1 > cap) s = realloc(s, cap = (len + pl + 1) * 2);
        memcpy(s + len, piece, pl);
        len += pl;
        prev = ids[i];
    }
    s[len] = 0;
    return s;
}

/* JSON strings must be UTF-8: invalid bytes become U+FFFD (the ids beside them stay exact). */
static void add_utf8_string(cJSON *o, const char *key, const char *s) {
    char *valid = malloc(3 * strlen(s) + 1);
    lanes_utf8_sanitize(valid, s, strlen(s));
    cJSON_AddStringToObject(o, key, valid);
    free(valid);
}

/* {"token":id,"logprob":lp}; a -inf lp prints as null (JSON has no infinities). */
static cJSON *json_logprob(int32_t id, float lp) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "token", id);
    cJSON_AddNumberToObject(o, "logprob", lp);
    return o;
}

static void print_json(const char *prompt, const int32_t *pt, int np, const eng_gen_req_t *r,
                       const char *text) {
    cJSON *o = cJSON_CreateObject();
    add_utf8_string(o, "prompt", prompt);
    cJSON_AddItemToObject(o, "prompt_tokens", cJSON_CreateIntArray(pt, np));
    cJSON_AddItemToObject(o, "tokens", cJSON_CreateIntArray(r->out, r->n_out));
    add_utf8_string(o, "text", text);
    cJSON_AddStringToObject(o, "reason", eng_end_name(r->end));
    if (r->logprobs) {
        cJSON *arr = cJSON_AddArrayToObject(o, "logprobs");
        for (int i = 0; i < r->n_out; i++) {
            const eng_logprobs_t *lp = &r->logprobs[i];
            cJSON *e = json_logprob(r->out[i], lp->chosen), *top = cJSON_AddArrayToObject(e, "top");
            for (int j = 0; j < lp->n; j++)
                cJSON_AddItemToArray(top, json_logprob(lp->top_id[j], lp->top_lp[j]));
            cJSON_AddItemToArray(arr, e);
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    puts(s);
    free(s);
    cJSON_Delete(o);
}

/* A float flag; a positive value too small for a float keeps its meaning (the smallest normal
 * float: for --top-p, keep only the top token, as the protocol does) instead of becoming 0 (off). */
static int arg_float(const char *flag, const char *s, double lo, double hi, float *out) {
    double v;
    int rc = lanes_arg_num(flag, s, lo, hi, &v);
    if (rc == LANES_OK) *out = v > 0 && v < FLT_MIN ? FLT_MIN : (float)v;
    return rc;
}

/* The "tokens" array of a reference line, validated against the vocabulary; NULL when bad. */
static int32_t *line_tokens(const char *line, int vocab, int *n) {
    cJSON *o = cJSON_Parse(line);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tokens");
    int32_t *ids = NULL;
    *n = cJSON_IsArray(t) ? cJSON_GetArraySize(t) : 0;
    if (*n > 0 && (ids = malloc((size_t)*n * sizeof *ids)) != NULL) {
        int i = 0;
        for (cJSON *e = t->child; e; e = e->next, i++) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= vocab ||
                e->valuedouble != (double)(int32_t)e->valuedouble) {
                free(ids);
                ids = NULL;
                break;
            }
            ids[i] = (int32_t)e->valuedouble;
        }
    }
    cJSON_Delete(o);
    return ids;
}

/* --teacher-force: one JSON object per input line, arrays indexed by position. */
static int teacher_force(const eng_bundle_t *b, const char *path, int threads, int ctx_len) {
    lines_t in = {0};
    if (read_lines(path, &in) < 0) return 1;
    int rc = 1, seq = 0;
    eng_ctx_t *ctx = NULL;
    eng_ctx_cfg_t cc = {1, 64, threads, ENG_GEMM_LANES, ctx_len};
    eng_score_t *sc = NULL;
    if (eng_ctx_create(b->model, &cc, &ctx) < 0) goto done;
    seq = eng_ctx_seq_len(ctx);
    if ((sc = malloc((size_t)seq * sizeof *sc)) == NULL) goto done;
    for (int i = 0; i < in.n; i++) {
        int n;
        int32_t *ids = line_tokens(in.v[i], eng_model_cfg(b->model)->vocab_size, &n);
        if (ids == NULL || n > seq) {
            fprintf(stderr, "lanes-run: %s line %d: %s\n", path, i + 1,
                    ids ? "more tokens than the context" : "no \"tokens\" array of vocabulary ids");
            free(ids);
            goto done;
        }
        int err = eng_score(ctx, 0, ids, n, sc);
        free(ids);
        if (err < 0) goto done;
        printf("{\"line\":%d,\"argmax\":[", i + 1);
        for (int p = 0; p < n; p++) printf("%s%d", p ? "," : "", sc[p].argmax);
        printf("],\"top1\":[");
        for (int p = 0; p < n; p++) printf("%s%.9g", p ? "," : "", sc[p].top1);
        printf("],\"gap\":[");
        for (int p = 0; p < n; p++) printf("%s%.9g", p ? "," : "", sc[p].gap);
        printf("]}\n");
    }
    rc = 0;
done:
    free(sc);
    eng_ctx_destroy(ctx);
    for (int i = 0; i < in.n; i++) free(in.v[i]);
    free(in.v);
    return rc;
}

int main(int argc, char **argv) {
    const char *model = NULL, *tokp = NULL, *preset = NULL, *prompt = NULL, *prompts = NULL;
    const char *teacher = NULL;
    int max_new = 256, threads = 0, lanes = 0, chunk = 0, ctx_len = 0, json = 0;
    int ignore_eos = 0, top_n = -1;   /* -1: no logprobs */
    int gemm = ENG_GEMM_LANES;
    eng_sampler_t smp = {0.0f, 0, 1.0f, 0};
    static const struct option opts[] = {
        {"temperature", 1, 0, 't'}, {"temp", 1, 0, 't'},   /* loadgen's spelling and the old one */
        {"top-p", 1, 0, 'P'}, {"top-k", 1, 0, 'K'}, {"seed", 1, 0, 's'},
        {"threads", 1, 0, 'T'}, {"gemm", 1, 0, 'g'}, {"prompts", 1, 0, 'f'}, {"json", 0, 0, 'j'},
        {"preset", 1, 0, 'r'}, {"lanes", 1, 0, 'l'}, {"chunk", 1, 0, 'c'}, {"help", 0, 0, 'h'},
        {"ctx", 1, 0, 'x'}, {"teacher-force", 1, 0, 'F'}, {"ignore-eos", 0, 0, 'E'},
        {"logprobs", 1, 0, 'L'}, {0, 0, 0, 0}};
    int ch, bad = 0;
    while ((ch = getopt_long(argc, argv, "m:z:p:n:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'z': tokp = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n': bad |= lanes_arg_int("-n", optarg, 1, INT_MAX, &max_new) < 0; break;
        case 't': bad |= arg_float("--temperature", optarg, 0, 100, &smp.temperature) < 0; break;
        case 'P': bad |= arg_float("--top-p", optarg, 0, 1, &smp.top_p) < 0; break;
        case 'K': bad |= lanes_arg_int("--top-k", optarg, 0, INT_MAX, &smp.top_k) < 0; break;
        case 's': bad |= lanes_arg_u64("--seed", optarg, &smp.seed) < 0; break;
        case 'T': bad |= lanes_arg_int("--threads", optarg, 0, INT_MAX, &threads) < 0; break;
        case 'f': prompts = optarg; break;
        case 'j': json = 1; break;
        case 'E': ignore_eos = 1; break;
        case 'L':
            bad |= lanes_arg_int("--logprobs", optarg, 0, ENG_MAX_TOP_LOGPROBS, &top_n) < 0;
            break;
        case 'F': teacher = optarg; break;
        case 'r': preset = optarg; break;
        case 'l': bad |= lanes_arg_int("--lanes", optarg, 0, INT_MAX, &lanes) < 0; break;
        case 'c': bad |= lanes_arg_int("--chunk", optarg, 0, INT_MAX, &chunk) < 0; break;
        case 'x': bad |= lanes_arg_int("--ctx", optarg, 0, INT_MAX, &ctx_len) < 0; break;
        case 'g':
            if ((gemm = eng_gemm_by_name(optarg)) < 0) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (bad) {
        usage(stderr);
        return 2;
    }
    if (teacher) {
        if (prompt || prompts || optind != argc || threads < 0 || ctx_len < 0) {
            usage(stderr);
            return 2;
        }
        eng_bundle_t tb;
        if (eng_bundle_open(&tb, model, tokp, preset, 1) < 0) return 1;
        int trc = teacher_force(&tb, teacher, threads, ctx_len);
        eng_bundle_close(&tb);
        return trc;
    }
    if ((prompt == NULL) == (prompts == NULL)) {
        fprintf(stderr, prompt ? "lanes-run: -p and --prompts: give one of them\n"
                               : "lanes-run: no prompt: give -p TEXT or --prompts FILE\n");
        usage(stderr);
        return 2;
    }
    if (lanes > ENG_MAX_LANES) {
        fprintf(stderr, "lanes-run: --lanes %d: at most %d lanes\n", lanes, ENG_MAX_LANES);
        return 2;
    }
    if (optind != argc || max_new < 1 || threads < 0 || lanes < 0 || chunk < 0 || ctx_len < 0 ||
        smp.temperature < 0 || smp.top_k < 0) {
        usage(stderr);
        return 2;
    }
    lines_t in = {0};
    if (prompts && read_lines(prompts, &in) < 0) return 1;
    if (prompt) {
        in.v = malloc(sizeof *in.v);
        in.v[in.n++] = strdup(prompt);
    }
    if (in.n == 0) {
        fprintf(stderr, "lanes-run: no prompts\n");
        return 1;
    }
    int n = in.n, rc = 1;
    eng_gen_req_t *reqs = NULL;
    int32_t *ids = NULL, *out = NULL;
    eng_logprobs_t *lps = NULL;
    eng_ctx_t *ctx = NULL;
    eng_bundle_t b;
    if (eng_bundle_open(&b, model, tokp, preset, 1) < 0) goto done;
    const eng_model_cfg_t *mc = eng_model_cfg(b.model);
    if (lanes == 0) lanes = n < ENG_MAX_LANES ? n : ENG_MAX_LANES;
    int step_chunk = chunk ? chunk : mc->seq_len;
    eng_ctx_cfg_t cc = {lanes, lanes * (step_chunk < 64 ? step_chunk : 64) + lanes, threads, gemm,
                        ctx_len};
    if (eng_ctx_create(b.model, &cc, &ctx) < 0) goto done;
    int seq = eng_ctx_seq_len(ctx);
    reqs = calloc((size_t)n, sizeof *reqs);
    ids = malloc((size_t)n * (size_t)seq * sizeof *ids);
    out = malloc((size_t)n * (size_t)max_new * sizeof *out);
    if (top_n >= 0 && (lps = calloc((size_t)n * (size_t)max_new, sizeof *lps)) == NULL) {
        fprintf(stderr, "lanes-run: no memory for %d x %d logprobs\n", n, max_new);
        goto done;
    }
    for (size_t i = 0; lps && i < (size_t)n * (size_t)max_new; i++) lps[i].top_n = top_n;
    if (!reqs || !ids || !out) goto done;
    for (int i = 0; i < n; i++) {
        int32_t *pt = ids + (size_t)i * seq;
        int np = eng_tok_encode(b.tok, in.v[i], strlen(in.v[i]),
                                ENG_TOK_ADD_SPECIAL | ENG_TOK_PARSE_SPECIAL, pt, seq);
        if (np < 0) {
            fprintf(stderr, "lanes-run: prompt %d is longer than the context (%d tokens)\n", i + 1,
                    seq);
            goto done;
        }
        reqs[i] = (eng_gen_req_t){pt, np, max_new, smp, out + (size_t)i * max_new, NULL, 0, 0,
                                  lps ? lps + (size_t)i * max_new : NULL, ignore_eos};
    }
    eng_gen_opts_t go = {lanes, chunk, 0, b.tok};
    unsigned long long t0 = lanes_now_ns();
    if (eng_gen_run(ctx, reqs, n, &go) < 0) {
        fprintf(stderr, "lanes-run: generation failed\n");
        goto done;
    }
    /* As llama2.c's run.c prints it, on stderr: all lanes' new tokens over the whole run. */
    double secs = (double)(lanes_now_ns() - t0) * 1e-9, generated = 0;
    for (int i = 0; i < n; i++) generated += reqs[i].n_out;
    fprintf(stderr, "achieved tok/s: %f\n", secs > 0 ? generated / secs : 0.0);
    for (int i = 0; i < n; i++) {
        eng_gen_req_t *r = &reqs[i];
        char *text = decode_all(b.tok, r->prompt[r->n_prompt - 1], r->out, r->n_out);
        if (json) {
            print_json(in.v[i], r->prompt, r->n_prompt, r, text);
        } else {
            char *shown = decode_all(b.tok, r->prompt[0], r->prompt + 1, r->n_prompt - 1);
            printf("%s%s\n", shown, text);
            free(shown);
            for (int t = 0; r->logprobs && t < r->n_out; t++) {
                const eng_logprobs_t *lp = &r->logprobs[t];
                printf("logprob %d %.9g", r->out[t], lp->chosen);
                for (int j = 0; j < lp->n; j++) printf(" %d:%.9g", lp->top_id[j], lp->top_lp[j]);
                printf("\n");
            }
        }
        free(text);
    }
    rc = 0;
done:
    eng_ctx_destroy(ctx);
    free(reqs);
    free(ids);
    free(out);
    free(lps);
    for (int i = 0; i < in.n; i++) free(in.v[i]);
    free(in.v);
    eng_bundle_close(&b);
    return rc;
}
