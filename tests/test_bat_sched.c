/* The scheduler without the network.
 * - parity: small prefill chunks, few lanes, more requests than lanes: every stream equals the
 *   engine run alone (batch invariance through chunked prefill and lane reuse), every request
 *   ends exactly once, and the stats add up.
 * - budget: --prefill-chunk bounds the whole step: a prompt of P tokens takes ceil(P / chunk)
 *   steps, and beside a decoding lane no step has more than 1 + chunk columns.
 * - cancel: a cancel ends a request waiting for the tokenizer (without waiting for the prompts
 *   queued before it), one waiting for a lane, and one in a lane, each with exactly one event.
 * - toolong: a prompt of seq_len ids runs, and so does the densest one that fits (longest pieces
 *   back to back); one of seq_len + 1 ids, or 62 KB, ends ETOOLONG.
 * - stop: requests being tokenized, queued or in a lane, and submits racing with the stop, all
 *   end exactly once, those still live with ECLOSED.
 * - stopstr: a stop string spanning two tokens of a greedy output ends the stream at the token
 *   that completes it, with the text before it, reason stop and its index; one found only in the
 *   prompt never matches; the lane is free in the same step (a queued request wastes no step);
 *   held-back bytes come out when a stream ends otherwise.
 * - ignore_eos: a prompt whose greedy output ends in an end-of-generation token runs to max_tokens
 *   with ignore_eos, through the same tokens first.
 * - logprobs: a request that asks gets, per token, the log-softmax of the logits eng_gen_run
 *   reports for it (chosen and top N), bit for bit eng_gen_run's own logprobs; top 0 gives the
 *   chosen one only; one beside them that does not ask is unchanged.
 * - metrics: histogram counts and sums agree with the requests, tokens and columns served, every
 *   observation lands in the bucket its bounds say, ended[] and errors add up, KV usage is above
 *   0 while a lane decodes and 0 when idle.
 * - info: the weight type's name, the GGUF chat template (none without one), token pieces. */
#include <math.h>
#include <stdatomic.h>
#include <uv.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "bat_sched.h"
#include "bundle.h"
#include "engine.h"
#include "gen.h"
#include "model/gguf.h"
#include "test_util.h"

enum { MAXREQ = 1024, MAXTOK = 256, MAXTEXT = 4096, MAXLP = 16 };

static uv_sem_t woke;
static void notify(void *arg) {
    (void)arg;
    uv_sem_post(&woke);
}

/* What each request (by req_id) got; order is the rank of its terminal event among all. */
typedef struct {
    int ntok, ended, kind, code, order, completion, stop_idx, ntext;
    int32_t toks[MAXTOK];
    char text[MAXTEXT];
} rec_t;
static rec_t rec[MAXREQ];
static eng_logprobs_t lps[MAXLP][MAXTOK];   /* of requests 0..MAXLP - 1, per token */
static int nended;

static void take_events(bat_sched_t *s) {
    for (bat_batch_t *bb = bat_take_batches(s), *next; bb; bb = next) {
        next = (bat_batch_t *)bb->node.next;
        for (int k = 0; k < bb->n; k++) {
            const bat_evt_t *e = &bb->ev[k];
            ASSERT(e->req_id < MAXREQ);
            rec_t *r = &rec[e->req_id];
            ASSERT(!r->ended);   /* nothing after a terminal event */
            if (e->kind == BAT_EV_TOKEN) {
                for (int t = 0; t < e->n_tok; t++) {
                    ASSERT_LT(r->ntok, MAXTOK);
                    if (e->req_id < MAXLP) lps[e->req_id][r->ntok] = bb->lps[e->tok_off + t];
                    r->toks[r->ntok++] = bb->toks[e->tok_off + t];
                }
                ASSERT_LE(r->ntext + (int)e->text_len, MAXTEXT);
                memcpy(r->text + r->ntext, bb->text + e->text_off, e->text_len);
                r->ntext += (int)e->text_len;
                continue;
            }
            r->ended = 1;
            r->kind = e->kind;
            r->code = e->code;
            r->order = nended++;
            r->completion = e->completion_tokens;
            r->stop_idx = e->stop_idx;
            if (e->kind == BAT_EV_DONE) ASSERT_EQ(e->completion_tokens, r->ntok);
        }
        bat_batch_release(s, bb);
    }
}

#define WAIT_UNTIL(s, cond)                                                                       \
    do {                                                                                          \
        take_events(s);                                                                           \
        while (!(cond)) {                                                                         \
            uv_sem_wait(&woke);                                                                   \
            take_events(s);                                                                       \
        }                                                                                         \
    } while (0)

/* Started unless the test submits first (requests then wait for the start). */
static bat_sched_t *sched_new(const eng_bundle_t *b, int lanes, int queue, int chunk, int start) {
    memset(rec, 0, sizeof rec);
    nended = 0;
    bat_sched_cfg_t cfg = {lanes, queue, chunk, 1, 0, notify, NULL, 0};
    bat_sched_t *s;
    ASSERT_EQ(bat_sched_create(&cfg, b->model, b->tok, &s), 0);
    if (start) ASSERT_EQ(bat_sched_start(s), 0);
    return s;
}

static bat_req_t *req(uint64_t id, const char *text, int max_tokens) {
    bat_req_t *r = bat_req_new(id, text, strlen(text));
    ASSERT(r != NULL);
    r->max_tokens = max_tokens;
    return r;
}

static void submit(bat_sched_t *s, uint64_t id, const char *text, int max_tokens) {
    ASSERT_EQ(bat_submit(s, req(id, text, max_tokens)), 0);
}

static void cancel(bat_sched_t *s, uint64_t id) {
    ASSERT_EQ(bat_cancel(s, bat_cancel_new(id)), 0);
}

/* The request's tokens equal greedy generation by the engine alone. */
static void check_alone(const eng_bundle_t *b, const char *text, int max_tokens, const rec_t *r) {
    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {1, 256, 1, ENG_GEMM_LANES, 0};
    ASSERT_EQ(eng_ctx_create(b->model, &cc, &ctx), 0);
    int32_t pt[MAXTOK + 1], out[MAXTOK];
    int np = eng_tok_encode(b->tok, text, strlen(text), ENG_TOK_ADD_SPECIAL, pt, MAXTOK);
    ASSERT_GT(np, 0);
    eng_gen_req_t g = {pt, np, max_tokens, {0, 0, 1, 0}, out, NULL, 0, 0, NULL, 0};
    eng_gen_opts_t go = {1, 0, 0, b->tok};
    ASSERT_EQ(eng_gen_run(ctx, &g, 1, &go), 0);
    ASSERT_EQ(r->ntok, g.n_out);
    for (int t = 0; t < g.n_out; t++) ASSERT_EQ(r->toks[t], out[t]);
    eng_ctx_destroy(ctx);
}

static int ntok(const eng_bundle_t *b, const char *text) {
    static int32_t ids[1 << 17];
    return eng_tok_encode(b->tok, text, strlen(text), ENG_TOK_ADD_SPECIAL, ids, 1 << 17);
}

/* Writes into buf a text of exactly n ids (BOS included): printable characters added one by one
 * until the count is n (a merge can skip a count; then another sequence is tried). */
static void text_of(const eng_bundle_t *b, int n, char *buf, size_t cap) {
    for (uint64_t seed = 1; seed < 100; seed++) {
        uint64_t x = seed * 0x9E3779B97F4A7C15ull;
        for (size_t len = 0; len + 1 < cap;) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[len++] = (char)(x % 4 == 0 ? ' ' : 'a' + (int)((x >> 8) % 26));
            buf[len] = 0;
            int k = ntok(b, buf);
            if (k == n) return;
            if (k > n) break;
        }
    }
    ASSERT(!"no text of the wanted length");
}

/* A prompt of len bytes of random words: about one id per byte, far more than the context. */
static char *big_text(uint64_t seed, size_t len) {
    char *t = malloc(len + 1);
    ASSERT(t != NULL);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t[i] = (char)(x % 5 == 0 ? ' ' : 'a' + (int)((x >> 8) % 26));
    }
    t[len] = 0;
    return t;
}

/* The bytes of the vocabulary's longest piece; *len gets their count. */
static const char *longest_piece(const eng_bundle_t *b, size_t *len) {
    const char *best = "";
    *len = 0;
    for (int i = 0; i < eng_tok_vocab_size(b->tok); i++) {
        size_t n;
        const char *p = eng_tok_decode(b->tok, ENG_TOK_EOS, i, &n);
        if (n > *len) *len = n, best = p;
    }
    return best;
}

/* The longest prompt that could still fit the context, as far as its length tells: the
 * tokenizer must encode it to know (each id but BOS stands for at most the longest piece's bytes,
 * and the dummy-prefix space takes one). Random words that long cost the most to refuse. */
static size_t dense_len(const eng_bundle_t *b) {
    size_t most;
    longest_piece(b, &most);
    ASSERT_GE(most, 6);   /* else a <0xXX> piece's own six bytes would set the bound */
    return (size_t)(eng_model_cfg(b->model)->seq_len - 1) * most - 1;
}

static void t_parity(const eng_bundle_t *b) {
    enum { NREQ = 12, NTOK = 40 };
    bat_sched_t *s = sched_new(b, 4, NREQ - 4, 3, 0);   /* room for NREQ exactly */
    char prompt[NREQ][256];
    for (int i = 0; i < NREQ; i++) {
        int n = snprintf(prompt[i], sizeof prompt[i], "request %d:", i);
        for (int w = 0; w < 3 + 4 * i; w++) n += snprintf(prompt[i] + n, sizeof prompt[i] - n, " w%d", w * i);
        ASSERT_GT(ntok(b, prompt[i]), 3);   /* longer than one chunk: prefill really is split */
        submit(s, (uint64_t)i + 1, prompt[i], NTOK);
    }
    bat_req_t *extra = req(99, "x", 1);   /* lanes + queue are full */
    ASSERT_EQ(bat_submit(s, extra), LANES_EBUSY);
    bat_req_free(extra);
    ASSERT_EQ(bat_sched_start(s), 0);
    WAIT_UNTIL(s, nended == NREQ);
    long tokens = 0;
    for (int i = 0; i < NREQ; i++) {
        ASSERT_EQ(rec[i + 1].kind, BAT_EV_DONE);
        tokens += rec[i + 1].ntok;
    }
    bat_stats_t st;
    bat_stats_get(s, &st);
    ASSERT_EQ(st.requests_served, NREQ);
    ASSERT_EQ(st.tokens_generated, tokens);
    ASSERT_EQ(st.lanes_active, 0);
    ASSERT_EQ(st.requests_active, 0);
    ASSERT_EQ(st.requests_rejected, 1);
    for (int i = 0; i < NREQ; i++) check_alone(b, prompt[i], NTOK, &rec[i + 1]);
    bat_sched_destroy(s);
}

static void t_budget(const eng_bundle_t *b) {
    enum { LANES = 4, CHUNK = 3, P = 40 };
    bat_sched_t *s = sched_new(b, LANES, 4, CHUNK, 1);
    char p40[1024];
    text_of(b, P, p40, sizeof p40);
    bat_stats_t st;
    /* Alone: every step but the last takes exactly CHUNK prompt columns. */
    submit(s, 1, p40, 1);
    WAIT_UNTIL(s, rec[1].ended);
    bat_stats_get(s, &st);
    ASSERT_EQ(st.steps, (P + CHUNK - 1) / CHUNK);
    ASSERT_EQ(st.step_cols_max, CHUNK);
    /* Beside a decoding lane: the prompt still gets CHUNK columns a step, not the free lanes'. */
    submit(s, 2, "a", 200);
    WAIT_UNTIL(s, rec[2].ntok > 0);
    submit(s, 3, p40, 5);
    WAIT_UNTIL(s, rec[2].ended && rec[3].ended);
    ASSERT_LT(rec[3].order, rec[2].order);   /* request 3 was prefilled while 2 decoded */
    bat_stats_get(s, &st);
    ASSERT_EQ(st.step_cols_max, 1 + CHUNK);
    check_alone(b, p40, 1, &rec[1]);
    check_alone(b, "a", 200, &rec[2]);
    check_alone(b, p40, 5, &rec[3]);
    bat_sched_destroy(s);
}

static void t_cancel(const eng_bundle_t *b) {
    enum { NBIG = 64, T = 50, Q = 60 };
    bat_sched_t *s = sched_new(b, 2, NBIG + 8, 8, 1);
    /* In a lane: 1 and 2 fill both lanes. */
    submit(s, 1, "one", 240);
    submit(s, 2, "two", 240);
    WAIT_UNTIL(s, rec[1].ntok > 0 && rec[2].ntok > 0);
    /* Waiting for a lane: Q is in the FIFO once its ids are counted. */
    bat_stats_t st;
    bat_stats_get(s, &st);
    uint64_t before = st.prompt_tokens;
    submit(s, Q, "queued", 5);
    for (uint64_t want = before + (uint64_t)ntok(b, "queued"); st.prompt_tokens < want;) {
        uv_sem_wait(&woke);   /* lanes 1 and 2 make a batch, and a fresh snapshot, every step */
        take_events(s);
        bat_stats_get(s, &st);
    }
    ASSERT(!rec[1].ended && !rec[2].ended && !rec[Q].ended);
    cancel(s, Q);
    WAIT_UNTIL(s, rec[Q].ended);
    ASSERT_EQ(rec[Q].kind, BAT_EV_DONE);
    ASSERT_EQ(rec[Q].code, BAT_END_CANCELLED);
    ASSERT_EQ(rec[Q].ntok, 0);
    /* Waiting for the tokenizer, behind NBIG prompts it must encode: its cancel does not wait for
     * them. */
    bat_req_t *big[NBIG];
    char *bigtext[NBIG];
    for (int i = 0, dl = (int)dense_len(b); i < NBIG; i++) {
        bigtext[i] = big_text((uint64_t)i + 7, (size_t)dl);
        big[i] = req(100 + (uint64_t)i, bigtext[i], 5);
    }
    bat_req_t *t = req(T, "tokenizing", 5), *tc = bat_cancel_new(T);
    for (int i = 0; i < NBIG; i++) ASSERT_EQ(bat_submit(s, big[i]), 0);
    ASSERT_EQ(bat_submit(s, t), 0);
    ASSERT_EQ(bat_cancel(s, tc), 0);
    /* Those the worker holds count as waiting for a lane, in a snapshot published after the
     * submits (a later step's); the events taken after it end no fewer of them. */
    bat_stats_get(s, &st);
    for (uint64_t steps = st.steps; st.steps <= steps;) {
        uv_sem_wait(&woke);
        bat_stats_get(s, &st);
    }
    take_events(s);
    int unended = 0;
    for (int i = 0; i < NBIG; i++) unended += !rec[100 + i].ended;
    ASSERT_GE(st.queue_depth, unended);
    ASSERT_GT(unended, 0);
    WAIT_UNTIL(s, rec[T].ended && rec[100 + NBIG - 1].ended);
    ASSERT_EQ(rec[T].kind, BAT_EV_DONE);
    ASSERT_EQ(rec[T].code, BAT_END_CANCELLED);
    ASSERT_EQ(rec[T].ntok, 0);
    for (int i = 0; i < NBIG; i++) {
        ASSERT_EQ(rec[100 + i].kind, BAT_EV_ERROR);
        ASSERT_EQ(rec[100 + i].code, LANES_ETOOLONG);
        free(bigtext[i]);
    }
    ASSERT_LT(rec[T].order, rec[100 + NBIG - 1].order);
    /* In a lane, mid-stream. */
    ASSERT(!rec[1].ended);
    cancel(s, 1);
    WAIT_UNTIL(s, rec[1].ended && rec[2].ended);
    ASSERT_EQ(rec[1].kind, BAT_EV_DONE);
    ASSERT_EQ(rec[1].code, BAT_END_CANCELLED);
    ASSERT_LT(rec[1].ntok, 240);
    ASSERT_EQ(rec[2].code, BAT_END_LENGTH);
    check_alone(b, "two", 240, &rec[2]);
    /* A cancel of a request that has ended, or never was, is nothing. */
    cancel(s, 2);
    cancel(s, 999);
    submit(s, 3, "after", 3);
    WAIT_UNTIL(s, rec[3].ended);
    ASSERT_EQ(rec[3].code, BAT_END_LENGTH);
    ASSERT_EQ(nended, 3 + NBIG + 2);
    bat_stats_get(s, &st);
    ASSERT_EQ(st.requests_active, 0);
    bat_sched_destroy(s);
}

static void t_toolong(const eng_bundle_t *b) {
    int seq_len = eng_model_cfg(b->model)->seq_len;
    bat_sched_t *s = sched_new(b, 2, 4, 64, 1);
    char fits[8192], over[8192];
    text_of(b, seq_len, fits, sizeof fits);
    text_of(b, seq_len + 1, over, sizeof over);
    char *big = big_text(3, 62 * 1024), *dense = big_text(4, dense_len(b));
    /* Longest pieces back to back, as long as a prompt that may still fit can be: the verdict must
     * be the encoder's, not a guess from the length. */
    size_t dl = dense_len(b), most, n = 0;
    const char *longest = longest_piece(b, &most);
    char *packed = malloc(dl + 1);
    for (; n + most <= dl; n += most) memcpy(packed + n, longest, most);
    packed[n] = 0;
    ASSERT_LE(ntok(b, packed), seq_len);   /* it does fit: the densest prompt that runs */
    submit(s, 1, fits, 4);
    submit(s, 2, over, 4);
    submit(s, 3, big, 4);
    submit(s, 4, dense, 4);
    submit(s, 5, packed, 4);
    WAIT_UNTIL(s, nended == 5);
    ASSERT_EQ(rec[1].kind, BAT_EV_DONE);
    ASSERT_EQ(rec[1].code, BAT_END_CONTEXT);   /* the token at seq_len - 1 ends the context */
    ASSERT_EQ(rec[1].ntok, 1);
    for (int i = 2; i <= 4; i++) {
        ASSERT_EQ(rec[i].kind, BAT_EV_ERROR);
        ASSERT_EQ(rec[i].code, LANES_ETOOLONG);
    }
    ASSERT_EQ(rec[5].kind, BAT_EV_DONE);
    free(big);
    free(dense);
    free(packed);
    bat_sched_destroy(s);
}

typedef struct {
    bat_sched_t *s;
    atomic_int go;
    int accepted[MAXREQ];
    int n;
} racer_t;

/* Submits until the scheduler says ECLOSED, as an I/O thread would while the server stops. */
static void racer_main(void *arg) {
    racer_t *r = arg;
    while (!atomic_load(&r->go)) uv_sleep(0);
    for (uint64_t id = 500; id < MAXREQ; id++) {
        bat_req_t *q = req(id, "race", 50);
        int rc = bat_submit(r->s, q);
        if (rc == LANES_ECLOSED) {
            bat_req_free(q);
            return;
        }
        if (rc == LANES_EBUSY) {
            bat_req_free(q);
            uv_sleep(1);
            continue;
        }
        ASSERT_EQ(rc, 0);
        r->accepted[r->n++] = (int)id;
        uv_sleep(1);
    }
    ASSERT(!"the stop never came");
}

static void t_stop(const eng_bundle_t *b) {
    enum { NBIG = 64, NQ = 4 };
    bat_sched_t *s = sched_new(b, 2, NBIG + 100, 8, 1);
    submit(s, 1, "one", 240);
    submit(s, 2, "two", 240);
    for (int i = 0; i < NQ; i++) submit(s, 10 + (uint64_t)i, "queued", 20);
    WAIT_UNTIL(s, rec[1].ntok > 0 && rec[2].ntok > 0);
    bat_req_t *big[NBIG];   /* made first, so that they go in back to back */
    for (int i = 0, dl = (int)dense_len(b); i < NBIG; i++) {
        char *t = big_text((uint64_t)i + 11, (size_t)dl);
        big[i] = req(20 + (uint64_t)i, t, 5);
        free(t);
    }
    static racer_t r;
    r.s = s;
    uv_thread_t th;
    ASSERT_EQ(uv_thread_create(&th, racer_main, &r), 0);
    atomic_store(&r.go, 1);
    for (int i = 0; i < NBIG; i++) ASSERT_EQ(bat_submit(s, big[i]), 0);
    uv_sleep(1);
    bat_sched_stop(s);
    uv_thread_join(&th);
    take_events(s);
    int closed = 0;
    for (int i = 1; i <= 2; i++) ASSERT(rec[i].ended && rec[i].code == LANES_ECLOSED);
    for (int i = 0; i < NQ; i++) ASSERT(rec[10 + i].ended && rec[10 + i].code == LANES_ECLOSED);
    for (int i = 0; i < NBIG; i++) {
        ASSERT(rec[20 + i].ended && rec[20 + i].kind == BAT_EV_ERROR);
        ASSERT(rec[20 + i].code == LANES_ETOOLONG || rec[20 + i].code == LANES_ECLOSED);
        closed += rec[20 + i].code == LANES_ECLOSED;
    }
    ASSERT_GT(closed, 0);   /* some were still waiting for the tokenizer */
    for (int i = 0; i < r.n; i++) ASSERT(rec[r.accepted[i]].ended);
    ASSERT_EQ(nended, 2 + NQ + NBIG + r.n);
    bat_req_t *late = req(900, "late", 1);
    ASSERT_EQ(bat_submit(s, late), LANES_ECLOSED);
    bat_req_free(late);
    ASSERT_EQ(bat_cancel(s, bat_cancel_new(1)), LANES_ECLOSED);
    bat_sched_destroy(s);
}

/* The bytes the request's tokens decode to, after its prompt's last id (as the scheduler decodes
 * them); off[i] is where token i's begin, off[ntok] the end. */
static size_t decode_out(const eng_bundle_t *b, const char *prompt, const rec_t *r, char *out,
                         size_t *off) {
    int32_t ids[MAXTOK];
    int np = eng_tok_encode(b->tok, prompt, strlen(prompt), ENG_TOK_ADD_SPECIAL, ids, MAXTOK);
    ASSERT_GT(np, 0);
    int32_t prev = ids[np - 1];
    size_t n = 0;
    for (int i = 0; i < r->ntok; i++) {
        size_t pl;
        const char *p = eng_tok_decode(b->tok, prev, r->toks[i], &pl);
        ASSERT_LE(n + pl, MAXTEXT);
        off[i] = n;
        memcpy(out + n, p, pl);
        n += pl;
        prev = r->toks[i];
    }
    off[r->ntok] = n;
    return n;
}

static bat_req_t *req_stops(uint64_t id, const char *text, int max_tokens, int n,
                            const char *const *stop, const size_t *len) {
    bat_req_t *r = req(id, text, max_tokens);
    for (int i = 0; i < n; i++) ASSERT_EQ(bat_req_add_stop(r, stop[i], len[i]), 0);
    return r;
}

static void t_stopstr(const eng_bundle_t *b) {
    enum { N = 40 };
    const char *prompt = "Once upon a time QZJ lived", *after = "and then";
    bat_sched_t *s = sched_new(b, 1, 4, 64, 1);
    submit(s, 1, prompt, N);
    WAIT_UNTIL(s, rec[1].ended);
    static char t[MAXTEXT];
    size_t off[MAXTOK + 1], n = decode_out(b, prompt, &rec[1], t, off);
    ASSERT_EQ(rec[1].ntext, n);   /* without stop strings the text is every decoded byte */
    ASSERT(memcmp(rec[1].text, t, n) == 0);
    ASSERT(memmem(t, n, "QZJ", 3) == NULL);   /* in the prompt only */
    /* Up to 3 bytes either side of the boundary before token i: its first occurrence. */
    int i = 0;
    size_t a = 0, z = 0;
    for (int k = rec[1].ntok / 3; k + 1 < rec[1].ntok && i == 0; k++) {
        a = off[k] - off[k - 1] < 3 ? off[k] - off[k - 1] : 3;
        z = off[k + 1] - off[k] < 3 ? off[k + 1] - off[k] : 3;
        const char *hit = a && z ? memmem(t, n, t + off[k] - a, a + z) : NULL;
        if (hit == t + off[k] - a) i = k;
    }
    ASSERT_GT(i, 0);
    const char *stop[3] = {"QZJ", t + off[i] - a, NULL};
    size_t len[3] = {3, a + z, 0};
    /* The match ends the stream in the step of token i; the queued request 3 then runs in the
     * next step, so the steps are exactly both streams' tokens (each prompt is one step). */
    bat_stats_t st0, st;
    bat_stats_get(s, &st0);
    ASSERT_EQ(bat_submit(s, req_stops(2, prompt, N, 2, stop, len)), 0);
    submit(s, 3, after, 5);
    WAIT_UNTIL(s, rec[2].ended && rec[3].ended);
    ASSERT_EQ(rec[2].kind, BAT_EV_DONE);
    ASSERT_EQ(rec[2].code, BAT_END_STOP);
    ASSERT_EQ(rec[2].stop_idx, 1);
    ASSERT_EQ(rec[2].ntok, i + 1);
    ASSERT_EQ(rec[2].completion, i + 1);
    for (int k = 0; k <= i; k++) ASSERT_EQ(rec[2].toks[k], rec[1].toks[k]);
    ASSERT_EQ(rec[2].ntext, off[i] - a);
    ASSERT(memcmp(rec[2].text, t, off[i] - a) == 0);
    ASSERT_LT(rec[2].order, rec[3].order);
    ASSERT_EQ(rec[3].code, BAT_END_LENGTH);
    bat_stats_get(s, &st);
    ASSERT_EQ(st.steps - st0.steps, rec[2].ntok + rec[3].ntok);
    ASSERT_EQ(st.ended[BAT_END_STOP] - st0.ended[BAT_END_STOP], 1);
    check_alone(b, after, 5, &rec[3]);
    /* A stop string that never completes holds its first byte back whenever it appears; at the
     * end of the stream those bytes come out: the text is all of it again. */
    char last2[2] = {t[n - 1], '\x01'};
    const char *hold[1] = {last2};
    size_t hold_len[1] = {2};
    ASSERT_EQ(bat_submit(s, req_stops(4, prompt, N, 1, hold, hold_len)), 0);
    WAIT_UNTIL(s, rec[4].ended);
    ASSERT_EQ(rec[4].code, rec[1].code);
    ASSERT_EQ(rec[4].ntok, rec[1].ntok);
    ASSERT_EQ(rec[4].ntext, n);
    ASSERT(memcmp(rec[4].text, t, n) == 0);
    /* Bad stop strings are refused. */
    bat_req_t *r = req(5, "x", 1);
    ASSERT_EQ(bat_req_add_stop(r, "", 0), LANES_EINVAL);
    static char huge[BAT_MAX_STOP_LEN + 1];
    memset(huge, 'h', sizeof huge);
    ASSERT_EQ(bat_req_add_stop(r, huge, BAT_MAX_STOP_LEN + 1), LANES_EINVAL);
    for (int k = 0; k < BAT_MAX_STOP; k++)
        ASSERT_EQ(bat_req_add_stop(r, huge, BAT_MAX_STOP_LEN), 0);
    ASSERT_EQ(bat_req_add_stop(r, "x", 1), LANES_EINVAL);
    bat_req_free(r);
    bat_sched_destroy(s);
}

/* On stories260K (../shared), whose greedy story for this prompt ends with BOS after 217 tokens
 * (refs/stories260K.greedy.jsonl): the synthetic presets' random weights never pick it. */
static void t_ignore_eos(const eng_bundle_t *unused) {
    (void)unused;
    enum { MORE = 8 };
    const char *shared = getenv("LANES_SHARED"), *prompt = "The little dog";
    char mpath[4096], tpath[4096];
    snprintf(mpath, sizeof mpath, "%s/models/stories260K.bin", shared ? shared : "");
    snprintf(tpath, sizeof tpath, "%s/models/tok512.bin", shared ? shared : "");
    eng_bundle_t b;
    if (shared == NULL || access(mpath, R_OK) != 0 || access(tpath, R_OK) != 0) {
        fprintf(stderr, "ignore_eos: skipped (no %s)\n", mpath);
        return;
    }
    ASSERT_EQ(eng_bundle_open(&b, mpath, tpath, NULL, 1), 0);
    bat_sched_t *s = sched_new(&b, 2, 2, 64, 1);
    submit(s, 1, prompt, MAXTOK - MORE);
    WAIT_UNTIL(s, rec[1].ended);
    ASSERT_EQ(rec[1].code, BAT_END_STOP);   /* the end-of-generation token */
    ASSERT_EQ(rec[1].stop_idx, -1);
    ASSERT_LT(rec[1].ntok, MAXTOK - MORE);
    bat_req_t *r = req(2, prompt, rec[1].ntok + MORE);
    r->ignore_eos = 1;
    ASSERT_EQ(bat_submit(s, r), 0);
    WAIT_UNTIL(s, rec[2].ended);
    ASSERT_EQ(rec[2].code, BAT_END_LENGTH);
    ASSERT_EQ(rec[2].ntok, rec[1].ntok + MORE);
    for (int k = 0; k < rec[1].ntok; k++) ASSERT_EQ(rec[2].toks[k], rec[1].toks[k]);
    ASSERT(eng_tok_is_eog(b.tok, rec[2].toks[rec[1].ntok]));
    bat_sched_destroy(s);
    eng_bundle_close(&b);
}

/* The log-softmax of logits[0..n) at j, in double. */
static double log_softmax(const float *l, int n, int j) {
    double mx = -INFINITY, sum = 0;
    for (int k = 0; k < n; k++) mx = l[k] > mx ? l[k] : mx;
    for (int k = 0; k < n; k++) sum += exp((double)l[k] - mx);
    return (double)l[j] - mx - log(sum);
}

static void t_logprobs(const eng_bundle_t *b) {
    enum { N = 12, TOP = 3 };
    const char *prompt = "The little robot";
    bat_sched_t *s = sched_new(b, 4, 4, 64, 1);
    bat_req_t *r1 = req(1, prompt, N), *r3 = req(3, prompt, N);
    r1->logprobs = TOP;
    r3->logprobs = 0;
    ASSERT_EQ(bat_submit(s, r1), 0);
    submit(s, 2, prompt, N);
    ASSERT_EQ(bat_submit(s, r3), 0);
    WAIT_UNTIL(s, nended == 3);
    for (int i = 1; i <= 3; i++) check_alone(b, prompt, N, &rec[i]);
    /* The logits and log-probabilities behind each sampled id, from the engine alone (batch
     * invariant: the same bits). */
    int vocab = eng_model_cfg(b->model)->vocab_size;
    float *logits = malloc((size_t)N * vocab * sizeof *logits);
    ASSERT(logits != NULL);
    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {1, 256, 1, ENG_GEMM_LANES, 0};
    ASSERT_EQ(eng_ctx_create(b->model, &cc, &ctx), 0);
    int32_t pt[MAXTOK], out[N];
    eng_logprobs_t alone[N];
    for (int t = 0; t < N; t++) alone[t].top_n = TOP;
    int np = eng_tok_encode(b->tok, prompt, strlen(prompt), ENG_TOK_ADD_SPECIAL, pt, MAXTOK);
    eng_gen_req_t g = {.prompt = pt, .n_prompt = np, .max_new = N, .sampler = {0, 0, 1, 0},
                       .out = out, .logits = logits, .logprobs = alone};
    eng_gen_opts_t go = {1, 0, 0, b->tok};
    ASSERT_EQ(eng_gen_run(ctx, &g, 1, &go), 0);
    eng_ctx_destroy(ctx);
    ASSERT_EQ(g.n_out, rec[1].ntok);
    for (int t = 0; t < g.n_out; t++) {
        const float *l = logits + (size_t)t * vocab;
        for (int id = 1; id <= 3; id += 2) {
            const eng_logprobs_t *lp = &lps[id][t];
            double want = log_softmax(l, vocab, out[t]);
            if (fabs(lp->chosen - want) > 1e-4) {
                fprintf(stderr, "request %d token %d: logprob %g, want %g\n", id, t, lp->chosen,
                        want);
                ASSERT(0);
            }
            ASSERT_EQ(lp->n, id == 1 ? TOP : 0);
        }
        /* The top ids: by value, then lower id (the greedy token is the first). */
        const eng_logprobs_t *lp = &lps[1][t];
        ASSERT_EQ(lp->top_id[0], out[t]);
        ASSERT(memcmp(&lp->chosen, &alone[t].chosen, sizeof lp->chosen) == 0);
        ASSERT(memcmp(&lps[3][t].chosen, &alone[t].chosen, sizeof lp->chosen) == 0);
        ASSERT_EQ(alone[t].n, TOP);
        for (int k = 0; k < TOP; k++) {
            int32_t id = lp->top_id[k];
            ASSERT(id >= 0 && id < vocab);
            ASSERT(fabs(lp->top_lp[k] - log_softmax(l, vocab, id)) <= 1e-4);
            ASSERT_EQ(id, alone[t].top_id[k]);
            ASSERT(memcmp(&lp->top_lp[k], &alone[t].top_lp[k], sizeof lp->top_lp[k]) == 0);
            int above = 0;   /* ids ranked before it */
            for (int j = 0; j < vocab; j++) above += l[j] > l[id] || (l[j] == l[id] && j < id);
            ASSERT_EQ(above, k);
        }
    }
    free(logits);
    bat_sched_destroy(s);
}

static void check_hist_sums(const bat_stats_t *st) {
    for (int h = 0; h < BAT_H_COUNT; h++) {
        const bat_hist_t *x = &st->hist[h];
        ASSERT(x->n > 0 && x->n <= BAT_HIST_MAX && x->le != NULL);
        uint64_t sum = 0;
        for (int i = 0; i <= x->n; i++) sum += x->count[i];
        ASSERT_EQ(sum, x->total);
        for (int i = 1; i < x->n; i++) ASSERT(x->le[i - 1] < x->le[i]);
    }
}

static void t_metrics(const eng_bundle_t *b) {
    enum { CHUNK = 3, P = 40, N = 5 };
    bat_sched_t *s = sched_new(b, 2, 8, CHUNK, 1);
    bat_stats_t st;
    bat_stats_get(s, &st);
    check_hist_sums(&st);
    ASSERT_EQ(st.hist[BAT_H_STEP].total, 0);
    ASSERT(st.kv_usage == 0);
    /* One prompt of P ids alone: ceil(P / CHUNK) prefill steps, the last of P % CHUNK columns
     * (1 here), then N - 1 decode steps of one column. */
    char p40[1024];
    text_of(b, P, p40, sizeof p40);
    submit(s, 1, p40, N);
    WAIT_UNTIL(s, rec[1].ended);
    ASSERT_EQ(rec[1].code, BAT_END_LENGTH);
    bat_stats_get(s, &st);
    check_hist_sums(&st);
    const bat_hist_t *cols = &st.hist[BAT_H_COLS];
    ASSERT_EQ(P % CHUNK, 1);
    ASSERT(cols->le[0] == 1 && cols->le[1] == 2 && cols->le[2] == 4);
    ASSERT_EQ(cols->count[0], 1 + (N - 1));   /* 1 <= le 1: the bound is inclusive */
    ASSERT_EQ(cols->count[1], 0);
    ASSERT_EQ(cols->count[2], P / CHUNK);     /* 3 in (2, 4] */
    ASSERT_EQ(cols->total, st.steps);
    ASSERT(cols->sum == P + N - 1);
    ASSERT_EQ(st.hist[BAT_H_STEP].total, st.steps);
    ASSERT_EQ(st.hist[BAT_H_TTFT].total, 1);
    ASSERT_EQ(st.hist[BAT_H_ITL].total, N - 1);
    ASSERT_EQ(st.hist[BAT_H_E2E].total, 1);
    ASSERT_EQ(st.hist[BAT_H_QUEUE].total, 1);
    /* Arrival -> admission -> first token -> each next one -> the end, in that order. */
    double q = st.hist[BAT_H_QUEUE].sum, ttft = st.hist[BAT_H_TTFT].sum;
    ASSERT(q <= ttft && ttft + st.hist[BAT_H_ITL].sum <= st.hist[BAT_H_E2E].sum);
    ASSERT(st.hist[BAT_H_STEP].sum <= st.hist[BAT_H_E2E].sum);
    ASSERT_EQ(st.ended[BAT_END_LENGTH], 1);
    ASSERT(st.kv_usage == 0);
    /* While a lane decodes, its positions fill the cache (a snapshot showing it active); then it
     * is cancelled (retried should it end first). */
    int cancelled = 0;
    for (uint64_t id = 10; !cancelled && id < 20; id++) {
        submit(s, id, "busy", 200);
        take_events(s);
        for (int asked = 0; !rec[id].ended;) {
            bat_stats_get(s, &st);
            if (!asked && st.lanes_active == 1) {
                int ctx = eng_model_cfg(b->model)->seq_len;
                ASSERT(st.kv_usage > 0 && st.kv_usage <= (double)(200 + 8) / (2.0 * ctx));
                cancel(s, id);
                asked = 1;
            }
            uv_sem_wait(&woke);
            take_events(s);
        }
        cancelled = rec[id].code == BAT_END_CANCELLED;
    }
    ASSERT(cancelled);
    char *big = big_text(5, 62 * 1024);
    submit(s, 30, big, 4);   /* ETOOLONG: an error, never in a lane */
    free(big);
    WAIT_UNTIL(s, rec[30].ended);
    bat_stats_get(s, &st);
    check_hist_sums(&st);
    ASSERT(st.kv_usage == 0);
    ASSERT_EQ(st.lanes_active, 0);
    uint64_t done[BAT_END_CANCELLED + 1] = {0}, errors = 0, lane = 0, first = 0, tokens = 0;
    for (int i = 0; i < MAXREQ; i++) {
        if (!rec[i].ended) continue;
        if (rec[i].kind == BAT_EV_DONE) done[rec[i].code]++;
        else errors++;
        lane += rec[i].kind == BAT_EV_DONE;   /* here every done request had a lane */
        first += rec[i].ntok > 0;
        tokens += (uint64_t)rec[i].ntok;
    }
    for (int c = 0; c <= BAT_END_CANCELLED; c++) ASSERT_EQ(st.ended[c], done[c]);
    ASSERT_GE(st.ended[BAT_END_CANCELLED], 1);
    ASSERT_EQ(st.errors, errors);
    ASSERT_EQ(errors, 1);
    ASSERT_EQ(st.requests_served, (uint64_t)nended);
    ASSERT_EQ(st.hist[BAT_H_E2E].total, lane);
    ASSERT_EQ(st.hist[BAT_H_QUEUE].total, lane);
    ASSERT_EQ(st.hist[BAT_H_TTFT].total, first);
    ASSERT_EQ(st.hist[BAT_H_ITL].total, tokens - first);
    ASSERT_EQ(st.tokens_generated, tokens);
    bat_sched_destroy(s);
}

static void t_info(const eng_bundle_t *b) {
    bat_sched_t *s = sched_new(b, 1, 1, 8, 0);
    ASSERT_STR_EQ(bat_sched_weight_type(s), "f32");
    size_t len = 1;
    ASSERT(bat_sched_chat_template(s, &len) == NULL);   /* not a GGUF file */
    ASSERT_EQ(len, 0);
    /* A token's own bytes: a llama2.c piece keeps its leading space (it loses it after BOS). */
    int spaced = 0;
    for (int32_t id = 0; id < eng_tok_vocab_size(b->tok); id++) {
        size_t n, m;
        const char *p = bat_sched_token_piece(s, id, &n), *q = eng_tok_decode(b->tok, 300, id, &m);
        ASSERT(n == m && memcmp(p, q, n) == 0);
        if (n > 1 && p[0] == ' ') {
            eng_tok_decode(b->tok, ENG_TOK_BOS, id, &m);
            ASSERT_EQ(m, n - 1);
            spaced++;
        }
    }
    ASSERT_GT(spaced, 0);
    bat_sched_token_piece(s, -1, &len);
    ASSERT_EQ(len, 0);
    bat_sched_token_piece(s, eng_tok_vocab_size(b->tok), &len);
    ASSERT_EQ(len, 0);
    bat_sched_destroy(s);
    /* The same model as a GGUF file with a chat template. */
    static const char tmpl[] = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
                               "<|im_end|>\n{% endfor %}";
    char path[64];
    snprintf(path, sizeof path, "/tmp/test_bat_sched_%d.gguf", (int)getpid());
    eng_gguf_writer_t *w;
    ASSERT_EQ(eng_gguf_writer_create(0, &w), 0);
    ASSERT_EQ(eng_model_to_gguf(b->model, w), 0);
    ASSERT_EQ(eng_tok_to_gguf(b->tok, w), 0);
    eng_gguf_value_t v = {.type = ENG_GGUF_STRING, .str = tmpl, .len = sizeof tmpl - 1};
    ASSERT_EQ(eng_gguf_writer_add(w, "tokenizer.chat_template", &v), 0);
    ASSERT_EQ(eng_gguf_writer_write(w, path), 0);
    eng_gguf_writer_destroy(w);
    bat_sched_cfg_t cfg = {1, 1, 8, 1, 0, notify, NULL, 0};
    ASSERT_EQ(bat_sched_open(&cfg, path, NULL, NULL, &s), 0);
    unlink(path);
    const char *t = bat_sched_chat_template(s, &len);
    ASSERT(t != NULL);
    ASSERT_EQ(len, sizeof tmpl - 1);
    ASSERT_STR_EQ(t, tmpl);
    ASSERT_STR_EQ(bat_sched_weight_type(s), "f32");
    bat_sched_destroy(s);
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    uv_sem_init(&woke, 0);
    lanes_rcu_register();
    lanes_log_level = LANES_LOG_WARN;   /* no line per engine context */
    eng_bundle_t tiny, m15;
    ASSERT_EQ(eng_bundle_open(&tiny, NULL, NULL, "tiny", 1), 0);
    /* Streams that must outlast a few hops between threads decode on the slower 15m model. */
    ASSERT_EQ(eng_bundle_open(&m15, NULL, NULL, "15m", 1), 0);
    static const struct { const char *name; void (*fn)(const eng_bundle_t *); int big; } tests[] = {
        {"parity", t_parity, 0}, {"budget", t_budget, 1}, {"cancel", t_cancel, 1},
        {"toolong", t_toolong, 0}, {"stop", t_stop, 1}, {"stopstr", t_stopstr, 0},
        {"ignore_eos", t_ignore_eos, 0}, {"logprobs", t_logprobs, 0}, {"metrics", t_metrics, 1},
        {"info", t_info, 0},
    };
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        if (only && strcmp(only, tests[i].name) != 0) continue;
        double t0 = (double)lanes_now_ns();
        tests[i].fn(tests[i].big ? &m15 : &tiny);
        fprintf(stderr, "%s: ok (%.0f ms)\n", tests[i].name, ((double)lanes_now_ns() - t0) / 1e6);
    }
    eng_bundle_close(&tiny);
    eng_bundle_close(&m15);
    lanes_rcu_unregister();
    uv_sem_destroy(&woke);
    return 0;
}
