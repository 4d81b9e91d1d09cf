#include "bat_sched.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>
#include <uv.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "bat_fifo.h"
#include "bat_stop.h"
#include "bat_tok.h"
#include "bundle.h"
#include "engine.h"
#include "gen.h"
#include "model/gguf.h"

/* One KV slot and the stream in it. */
typedef struct {
    bat_req_t *req;         /* owned while the lane is busy; NULL when free */
    eng_stream_t st;
    uint64_t admit_seq;     /* admission order: older prefills get the budget first */
    uint64_t t_admit, t_first, t_last;  /* t_last: its latest token, for the ITL histogram */
    int col0, ncols;        /* this step's columns */
    bat__stop_t stop;       /* the request's stop strings; its bytes go through it first */
    char utf8[4];           /* an incomplete UTF-8 sequence (of what the matcher released) held
                             * back for the next event */
    int nutf8;
    eng_logprobs_t lp;      /* this step's sampled column's, when the request asked */
} lane_t;

struct bat_sched {
    bat_sched_cfg_t cfg;
    eng_bundle_t owned;     /* the model and tokenizer when bat_sched_open() opened them */
    const eng_tok_t *tok;
    eng_ctx_t *ctx;
    int seq_len, vocab, max_cols;
    const char *model_name; /* borrowed from the model */
    char wtype[16];         /* the weight type's name, lower case */
    char *chat_template;    /* owned copy of tokenizer.chat_template, or NULL */
    size_t chat_template_len;
    bat__tok_t *tokw;       /* bat_submit() -> tokenizer worker -> inbox */
    lanes_q_t *inbox;       /* bat_req_t: generates (encoded) from the worker; cancels, straight
                             * from bat_cancel() or back from the worker */
    lanes_q_t *outbox;      /* bat_batch_t: engine -> consumer */
    lanes_q_t *spare;       /* bat_batch_t: consumer -> engine, for reuse */
    uv_sem_t wake;
    uv_thread_t thread;
    int started;
    atomic_int stopping, closing, stopped;
    atomic_int submitting;  /* submits and cancels between their stopping check and their push */
    atomic_long live;       /* accepted by bat_submit() and not ended */
    atomic_ulong rejected;

    /* engine thread only */
    lane_t *lanes;
    int nactive;
    bat__fifo_t fifo;       /* encoded, waiting for a lane */
    uint64_t admit_seq;
    eng_col_t *cols;
    int32_t *out_tok;
    int *order;             /* lane indices sorted for prefill */
    bat_batch_t *batch;     /* being filled */
    bat_stats_t st;         /* running counters */
    double step_ms_sum;
    uint64_t t_start, t_log;

    /* RCU-published stats: the engine writes snap_spare, publishes it, gets the old one back */
    void *snap;
    bat_stats_t *snap_spare;
};

const char *bat_end_name(int end) {
    switch (end) {
    case BAT_END_LENGTH: return "length";
    case BAT_END_STOP: return "stop";
    case BAT_END_CONTEXT: return "context";
    case BAT_END_CANCELLED: return "cancelled";
    default: return "none";
    }
}

bat_req_t *bat_req_new(uint64_t req_id, const char *prompt, size_t len) {
    bat_req_t *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->prompt = malloc(len + 1);
    if (r->prompt == NULL) {
        bat_req_free(r);
        return NULL;
    }
    memcpy(r->prompt, prompt, len);
    r->prompt[len] = 0;
    r->prompt_len = len;
    r->kind = BAT_MSG_GENERATE;
    r->req_id = req_id;
    r->max_tokens = 64;
    r->top_p = 1.0f;
    r->logprobs = -1;
    r->t_arrive_ns = lanes_now_ns();
    return r;
}

int bat_req_add_stop(bat_req_t *r, const char *s, size_t len) {
    if (len < 1 || len > BAT_MAX_STOP_LEN || r->n_stop >= BAT_MAX_STOP) return LANES_EINVAL;
    char *c = malloc(len + 1);
    if (c == NULL) return LANES_ENOMEM;
    memcpy(c, s, len);
    c[len] = 0;
    r->stop[r->n_stop] = c;
    r->stop_len[r->n_stop++] = len;
    return LANES_OK;
}

void bat_req_free(bat_req_t *r) {
    if (r == NULL) return;
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r->prompt);
    free(r->ids);
    free(r);
}

/* ---- event batches -------------------------------------------------------------------------- */

static void batch_free(bat_batch_t *b) {
    if (b == NULL) return;
    free(b->ev);
    free(b->toks);
    free(b->lps);
    free(b->text);
    free(b);
}

/* A cleared batch: a recycled one when the consumer gave any back. */
static bat_batch_t *batch_get(bat_sched_t *s) {
    lanes_q_node_t *n = lanes_q_take_all(s->spare);
    bat_batch_t *b = NULL;
    while (n) {
        lanes_q_node_t *next = n->next;
        if (b == NULL) b = (bat_batch_t *)n;
        else lanes_q_push(s->spare, n);   /* keep the rest for later steps */
        n = next;
    }
    if (b == NULL) b = calloc(1, sizeof *b);
    if (b) b->n = 0, b->ntok = 0, b->ntext = 0;
    return b;
}

static int grow(void **p, uint32_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (q == NULL) return -1;
    *p = q;
    *cap = (uint32_t)c;
    return 0;
}

/* Room for need ids in toks and, at the same indices, their log-probabilities in lps. */
static int grow_toks(bat_batch_t *b, size_t need) {
    if (need <= b->tokcap) return 0;
    size_t c = b->tokcap ? b->tokcap : 64;
    while (c < need) c *= 2;
    int32_t *t = realloc(b->toks, c * sizeof *t);
    if (t == NULL) return -1;
    b->toks = t;
    eng_logprobs_t *lp = realloc(b->lps, c * sizeof *lp);
    if (lp == NULL) return -1;
    b->lps = lp;
    b->tokcap = (uint32_t)c;
    return 0;
}

/* Appends an event; returns NULL only when memory runs out (the event is then lost and logged). */
static bat_evt_t *batch_add(bat_sched_t *s, uint64_t req_id, int kind, int code) {
    bat_batch_t *b = s->batch;
    if (b == NULL && (b = s->batch = batch_get(s)) == NULL) goto oom;
    uint32_t cap = (uint32_t)b->cap;
    if (grow((void **)&b->ev, &cap, (size_t)b->n + 1, sizeof *b->ev) < 0) goto oom;
    b->cap = (int)cap;
    bat_evt_t *e = &b->ev[b->n++];
    memset(e, 0, sizeof *e);
    e->req_id = req_id;
    e->kind = kind;
    e->code = code;
    e->stop_idx = -1;
    e->ttft_ms = -1;
    return e;
oom:
    LANES_LOG(LANES_LOG_ERROR, "bat: out of memory for an event of request %llu",
              (unsigned long long)req_id);
    return NULL;
}

/* Requests waiting for a lane: being tokenized or queued. */
static int waiting(bat_sched_t *s) { return (int)(atomic_load(&s->live) - s->nactive); }

/* Publishes the stats, queues the batch (if any) and wakes the consumer. */
static void batch_flush(bat_sched_t *s) {
    bat_stats_t *sp = s->snap_spare;
    *sp = s->st;
    sp->lanes_active = s->nactive;
    sp->queue_depth = waiting(s);
    sp->requests_active = (uint64_t)atomic_load(&s->live);
    sp->uptime_s = (double)(lanes_now_ns() - s->t_start) / 1e9;
    sp->step_ms_avg = s->st.steps ? s->step_ms_sum / (double)s->st.steps : 0.0;
    long filled = 0;
    for (int i = 0; i < s->cfg.max_lanes; i++)
        if (s->lanes[i].req) filled += s->lanes[i].st.pos;
    sp->kv_usage = (double)filled / ((double)s->cfg.max_lanes * s->seq_len);
    s->snap_spare = lanes_rcu_publish(&s->snap, sp);
    if (s->batch && s->batch->n > 0) {
        lanes_q_push(s->outbox, &s->batch->node);
        s->batch = NULL;
        if (s->cfg.notify) s->cfg.notify(s->cfg.notify_arg);
    }
}

bat_batch_t *bat_take_batches(bat_sched_t *s) { return (bat_batch_t *)lanes_q_take_all(s->outbox); }

void bat_batch_release(bat_sched_t *s, bat_batch_t *b) {
    if (atomic_load(&s->stopped)) batch_free(b);
    else lanes_q_push(s->spare, &b->node);
}

/* ---- text ----------------------------------------------------------------------------------- */

/* Bytes at the end of p[0..n) that start a UTF-8 sequence not complete yet (0..3). */
static int utf8_tail(const char *p, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)p[n - back];
        if ((c & 0xC0) == 0x80) continue;       /* continuation byte: look further back */
        size_t need = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back ? (int)back : 0;
    }
    return 0;
}

/* Appends a token event for lane l: the token (if tok >= 0, with its log-probabilities when the
 * request asked) and its bytes after prev, through the stop matcher and then the UTF-8 hold-back.
 * flush (the stream ends) releases everything held. Concatenated texts equal the decoded bytes
 * up to the first stop match. Returns the index of the stop string this token completed, else -1;
 * a match flushes as well. */
__attribute__((noinline)) static int emit_token(bat_sched_t *s, lane_t *l, int prev, int tok,
                                                int flush) {
    bat_evt_t *e = batch_add(s, l->req->req_id, BAT_EV_TOKEN, 0);
    if (e == NULL) return -1;
    bat_batch_t *b = s->batch;
    size_t pl = 0;
    const char *piece = tok >= 0 ? eng_tok_decode(s->tok, prev, tok, &pl) : "";
    /* Room for the UTF-8 tail and all the matcher can release: what it holds and the piece. */
    size_t room = (size_t)l->nutf8 + bat__stop_room(&l->stop, pl);
    if (grow_toks(b, b->ntok + 1) < 0 ||
        grow((void **)&b->text, &b->textcap, b->ntext + room, 1) < 0) {
        b->n--;
        LANES_LOG(LANES_LOG_ERROR, "bat: out of memory for a token event");
        return -1;
    }
    e->tok_off = b->ntok;
    if (tok >= 0) {
        if (l->req->logprobs >= 0) b->lps[b->ntok] = l->lp;
        b->toks[b->ntok++] = tok;
        e->n_tok = 1;
    }
    char *t = b->text + b->ntext;
    memcpy(t, l->utf8, (size_t)l->nutf8);
    size_t n = (size_t)l->nutf8, k;
    int match = bat__stop_feed(&l->stop, piece, pl, t + n, &k);
    n += k;
    if (match >= 0) flush = 1;
    else if (flush) n += bat__stop_flush(&l->stop, t + n);
    int hold = flush ? 0 : utf8_tail(t, n);
    memcpy(l->utf8, t + n - hold, (size_t)hold);
    l->nutf8 = hold;
    e->text_off = b->ntext;
    e->text_len = (uint32_t)(n - hold);
    b->ntext += (uint32_t)(n - hold);
    if (tok >= 0) {
        s->st.tokens_generated++;
        DTRACE_PROBE2(lanes, token_emit, l->req->req_id, l->st.n_gen);
    }
    return match;
}

/* ---- statistics ----------------------------------------------------------------------------- */

/* Bucket bounds: vLLM's for the metrics it has (TTFT, ITL, request latency), so that dashboards
 * made for it read ours; seconds except COLS. */
static const double le_ttft[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                                 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560};
static const double le_itl[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                                0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80};
static const double le_req[] = {0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120,
                                240, 480, 960, 1920, 7680};
static const double le_step[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                 1, 2.5};
static const double le_cols[] = {1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 512, 1024};

#define HIST_INIT(h, bounds)                                                                      \
    do {                                                                                          \
        _Static_assert(sizeof(bounds) / sizeof *(bounds) <= BAT_HIST_MAX, "raise BAT_HIST_MAX");  \
        (h)->le = (bounds);                                                                       \
        (h)->n = (int)(sizeof(bounds) / sizeof *(bounds));                                        \
    } while (0)

static void hist_init(bat_hist_t *h) {
    HIST_INIT(&h[BAT_H_TTFT], le_ttft);
    HIST_INIT(&h[BAT_H_ITL], le_itl);
    HIST_INIT(&h[BAT_H_E2E], le_req);
    HIST_INIT(&h[BAT_H_QUEUE], le_req);
    HIST_INIT(&h[BAT_H_STEP], le_step);
    HIST_INIT(&h[BAT_H_COLS], le_cols);
}

/* Counts v in the first bucket whose bound is >= v (a binary search), or in +Inf. */
static void hist_add(bat_hist_t *h, double v) {
    int lo = 0, hi = h->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (h->le[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    h->count[lo]++;
    h->total++;
    h->sum += v;
}

static double s_between(uint64_t a, uint64_t b) { return b > a ? (double)(b - a) / 1e9 : 0.0; }

/* ---- requests and lanes --------------------------------------------------------------------- */

static double ms_between(uint64_t a, uint64_t b) { return b > a ? (double)(b - a) / 1e6 : 0.0; }

/* One probe site per name (perf probe adds each SDT name once). */
__attribute__((noinline)) static void probe_done(uint64_t req_id, int code, int n_gen) {
    DTRACE_PROBE3(lanes, request_done, req_id, code, n_gen);
}

static void count_end(bat_sched_t *s, int kind, int code) {
    s->st.requests_served++;
    if (kind == BAT_EV_DONE) s->st.ended[code]++;
    else s->st.errors++;
}

/* Ends a request that never got a lane (error or cancel while queued). */
static void end_queued(bat_sched_t *s, bat_req_t *r, int kind, int code) {
    bat_evt_t *e = batch_add(s, r->req_id, kind, code);
    if (e && kind == BAT_EV_DONE) {
        e->prompt_tokens = r->n_prompt;
        e->total_ms = e->queue_ms = ms_between(r->t_arrive_ns, lanes_now_ns());
    }
    probe_done(r->req_id, code, 0);
    count_end(s, kind, code);
    atomic_fetch_sub(&s->live, 1);
    bat_req_free(r);
}

/* Ends the stream in lane l: flushes held-back bytes (unless this step's token event did),
 * queues the terminal event (stop_idx: BAT_END_STOP's), frees the lane. */
static void end_lane(bat_sched_t *s, lane_t *l, int kind, int code, int flushed, int stop_idx) {
    bat_req_t *r = l->req;
    if ((l->nutf8 > 0 || l->stop.nheld > 0) && !flushed) emit_token(s, l, 0, -1, 1);
    uint64_t now = lanes_now_ns();
    hist_add(&s->st.hist[BAT_H_E2E], s_between(r->t_arrive_ns, now));
    hist_add(&s->st.hist[BAT_H_QUEUE], s_between(r->t_arrive_ns, l->t_admit));
    bat_evt_t *e = batch_add(s, r->req_id, kind, code);
    if (e) {
        e->stop_idx = stop_idx;
        e->prompt_tokens = r->n_prompt;
        e->completion_tokens = l->st.n_gen;
        e->queue_ms = ms_between(r->t_arrive_ns, l->t_admit);
        e->ttft_ms = l->t_first ? ms_between(r->t_arrive_ns, l->t_first) : -1.0;
        e->total_ms = ms_between(r->t_arrive_ns, now);
    }
    probe_done(r->req_id, code, l->st.n_gen);
    count_end(s, kind, code);
    atomic_fetch_sub(&s->live, 1);
    bat_req_free(r);
    l->req = NULL;
    l->nutf8 = 0;
    s->nactive--;
}

/* Ends req_id if it is in a lane or the FIFO; returns 0 if it is neither. */
static int cancel(bat_sched_t *s, uint64_t req_id) {
    for (int i = 0; i < s->cfg.max_lanes; i++) {
        lane_t *l = &s->lanes[i];
        if (l->req && l->req->req_id == req_id) {
            end_lane(s, l, BAT_EV_DONE, BAT_END_CANCELLED, 0, -1);
            return 1;
        }
    }
    bat_req_t *r = bat__fifo_remove(&s->fifo, req_id);
    if (r) end_queued(s, r, BAT_EV_DONE, BAT_END_CANCELLED);
    return r != NULL;
}

/* Takes everything the inbox holds: encoded prompts join the FIFO, the tokenizer's verdicts
 * (too long, cancelled, closed) end their requests, cancels apply. */
static void drain_inbox(bat_sched_t *s) {
    lanes_q_node_t *n = lanes_q_take_all(s->inbox);
    while (n) {
        bat_req_t *r = (bat_req_t *)n;
        n = n->next;
        if (r->kind == BAT_MSG_CANCEL) {
            /* Cancels come here first, so a lane never waits for the tokenizer to be freed. Not
             * found: the request may still be in the worker, which ends it there or sends the
             * cancel back behind it (marked), and then it is here or already over. */
            if (!cancel(s, r->req_id) && !r->cancelled) {
                r->cancelled = 1;
                bat__tok_push(s->tokw, r);
            } else {
                bat_req_free(r);
            }
        } else if (r->err) {
            end_queued(s, r, BAT_EV_ERROR, r->err);
        } else if (r->cancelled) {
            end_queued(s, r, BAT_EV_DONE, BAT_END_CANCELLED);
        } else {
            s->st.prompt_tokens += (uint64_t)r->n_prompt;
            /* The third argument, microseconds since the line was read, lets a trace measure TTFT
             * from arrival as a client does: requests wait for the tokenizer and up to a step
             * before this drain. */
            DTRACE_PROBE3(lanes, request_admit, r->req_id, r->n_prompt,
                          r->t_arrive_ns ? (lanes_now_ns() - r->t_arrive_ns) / 1000 : 0);
            bat__fifo_push(&s->fifo, r);
        }
    }
}

/* Moves queued requests into free lanes. */
static void admit(bat_sched_t *s) {
    for (int i = 0; i < s->cfg.max_lanes && s->fifo.head; i++) {
        lane_t *l = &s->lanes[i];
        if (l->req) continue;
        bat_req_t *r = bat__fifo_pop(&s->fifo);
        l->req = r;
        l->admit_seq = s->admit_seq++;
        l->t_admit = lanes_now_ns();
        l->t_first = 0;
        l->nutf8 = 0;
        bat__stop_init(&l->stop, r->n_stop, r->stop, r->stop_len);
        eng_stream_init(&l->st, i, r->ids, r->n_prompt, r->max_tokens, s->tok);
        l->st.ignore_eos = r->ignore_eos;
        int top_k = r->top_k > s->vocab ? s->vocab : r->top_k;
        eng_ctx_set_sampler(s->ctx, i, &(eng_sampler_t){r->temperature, top_k, r->top_p, r->seed});
        s->nactive++;
        DTRACE_PROBE2(lanes, lane_assign, r->req_id, i);
    }
}

static int by_admit_seq(const void *a, const void *b, void *arg) {
    const lane_t *lanes = arg;
    uint64_t x = lanes[*(const int *)a].admit_seq, y = lanes[*(const int *)b].admit_seq;
    return x < y ? -1 : x > y;
}

/* A lane whose request asked gets the log-probabilities of its sampled column (the last of a
 * prompt, or a decode column): the engine fills them on the compute pool. */
static void ask_logprobs(bat_sched_t *s, lane_t *l) {
    if (l->ncols == 0 || l->req->logprobs < 0) return;
    eng_col_t *last = &s->cols[l->col0 + l->ncols - 1];
    if (!last->sample) return;
    l->lp.top_n = l->req->logprobs;
    last->logprobs = &l->lp;
}

/* One step over every active lane: decode columns first, then prefill chunks oldest first. */
static void step(bat_sched_t *s) {
    int ncols = 0, nprefill = 0;
    for (int i = 0; i < s->cfg.max_lanes; i++) {
        lane_t *l = &s->lanes[i];
        l->ncols = 0;
        if (l->req == NULL) continue;
        if (l->st.pos >= l->st.n_prompt) {
            l->col0 = ncols;
            l->ncols = eng_stream_cols(&l->st, 1, s->cols + ncols);
            ncols += l->ncols;
            ask_logprobs(s, l);
        } else {
            s->order[nprefill++] = i;
        }
    }
    if (nprefill > 1) qsort_r(s->order, (size_t)nprefill, sizeof *s->order, by_admit_seq, s->lanes);
    /* prefill_chunk prompt columns in all, however many lanes decode: that bounds the step. */
    for (int k = 0, budget = s->cfg.prefill_chunk; k < nprefill && budget > 0; k++) {
        lane_t *l = &s->lanes[s->order[k]];
        l->col0 = ncols;
        l->ncols = eng_stream_cols(&l->st, budget, s->cols + ncols);
        ncols += l->ncols;
        budget -= l->ncols;
        ask_logprobs(s, l);
    }
    if (ncols > s->st.step_cols_max) s->st.step_cols_max = ncols;
    DTRACE_PROBE2(lanes, step_begin, s->st.steps, ncols);
    uint64_t t0 = lanes_now_ns();
    int rc = eng_step(s->ctx, s->cols, ncols, s->out_tok);
    uint64_t t1 = lanes_now_ns();
    DTRACE_PROBE2(lanes, step_end, s->st.steps, ncols);
    s->st.steps++;
    s->st.step_ms_last = (double)(t1 - t0) / 1e6;
    s->step_ms_sum += s->st.step_ms_last;
    hist_add(&s->st.hist[BAT_H_STEP], s_between(t0, t1));
    hist_add(&s->st.hist[BAT_H_COLS], ncols);
    if (rc < 0) {   /* a scheduler bug: end the lanes of this step rather than loop forever */
        LANES_LOG(LANES_LOG_ERROR, "bat: step of %d columns failed: %s", ncols, lanes_strerror(rc));
        for (int i = 0; i < s->cfg.max_lanes; i++)
            if (s->lanes[i].ncols > 0) end_lane(s, &s->lanes[i], BAT_EV_ERROR, rc, 0, -1);
        return;
    }
    for (int i = 0; i < s->cfg.max_lanes; i++) {
        lane_t *l = &s->lanes[i];
        if (l->ncols == 0) continue;
        const eng_col_t *last = &s->cols[l->col0 + l->ncols - 1];
        int32_t tok = s->out_tok[l->col0 + l->ncols - 1];
        int emitted = eng_stream_advance(&l->st, l->ncols, last->sample ? tok : -1, s->seq_len);
        int match = -1;
        if (emitted) {
            if (l->t_first == 0) {
                l->t_first = t1;
                hist_add(&s->st.hist[BAT_H_TTFT], s_between(l->req->t_arrive_ns, t1));
                DTRACE_PROBE1(lanes, first_token, l->req->req_id);
            } else {
                hist_add(&s->st.hist[BAT_H_ITL], s_between(l->t_last, t1));
            }
            l->t_last = t1;
            match = emit_token(s, l, last->token, tok, l->st.end != ENG_END_NONE);
        }
        if (match >= 0) {   /* the lane is free for the next step */
            end_lane(s, l, BAT_EV_DONE, BAT_END_STOP, 1, match);
        } else if (l->st.end != ENG_END_NONE) {
            int why = l->st.end == ENG_END_STOP ? BAT_END_STOP
                    : l->st.end == ENG_END_CONTEXT ? BAT_END_CONTEXT : BAT_END_LENGTH;
            end_lane(s, l, BAT_EV_DONE, why, emitted, -1);
        }
    }
}

static void log_stats(bat_sched_t *s) {
    uint64_t now = lanes_now_ns();
    if (s->cfg.stats_log_s <= 0 || now - s->t_log < (uint64_t)s->cfg.stats_log_s * 1000000000ull)
        return;
    s->t_log = now;
    LANES_LOG(LANES_LOG_INFO,
              "bat: lanes %d/%d, queue %d, served %llu, tokens %llu, steps %llu, step %.2f ms avg",
              s->nactive, s->cfg.max_lanes, waiting(s), (unsigned long long)s->st.requests_served,
              (unsigned long long)s->st.tokens_generated, (unsigned long long)s->st.steps,
              s->st.steps ? s->step_ms_sum / (double)s->st.steps : 0.0);
}

static void engine_main(void *arg) {
    bat_sched_t *s = arg;
    lanes_rcu_register();
    for (;;) {
        int closing = atomic_load(&s->closing);   /* before the drain: it then holds every push */
        drain_inbox(s);
        if (closing) break;
        admit(s);
        if (s->nactive == 0) {
            batch_flush(s);
            /* Each push posted once; while busy those posts piled up. Forget them, then sleep
             * only if the inbox is still empty (a push after this check posts again). */
            while (uv_sem_trywait(&s->wake) == 0) {}
            if (lanes_q_empty(s->inbox) && !atomic_load(&s->closing)) uv_sem_wait(&s->wake);
            continue;
        }
        step(s);
        batch_flush(s);
        log_stats(s);
    }
    /* Shutdown: whatever is still live ends with ECLOSED, in one last batch. */
    for (int i = 0; i < s->cfg.max_lanes; i++)
        if (s->lanes[i].req) end_lane(s, &s->lanes[i], BAT_EV_ERROR, LANES_ECLOSED, 0, -1);
    for (bat_req_t *r; (r = bat__fifo_pop(&s->fifo)) != NULL;)
        end_queued(s, r, BAT_EV_ERROR, LANES_ECLOSED);
    atomic_store(&s->stopped, 1);
    batch_flush(s);
    lanes_rcu_unregister();
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* A NUL-terminated copy (GGUF strings are not), so that io can hand it to a C string API. */
static int copy_chat_template(bat_sched_t *s, const eng_model_t *m) {
    const eng_gguf_t *g = eng_model_gguf(m);
    const eng_gguf_kv_t *kv = g ? eng_gguf_kv_find(g, "tokenizer.chat_template") : NULL;
    if (kv == NULL || kv->val.type != ENG_GGUF_STRING) return LANES_OK;
    if ((s->chat_template = malloc(kv->val.len + 1)) == NULL) return LANES_ENOMEM;
    memcpy(s->chat_template, kv->val.str, kv->val.len);
    s->chat_template[kv->val.len] = 0;
    s->chat_template_len = kv->val.len;
    return LANES_OK;
}

_Static_assert(BAT_MAX_LANES == ENG_MAX_LANES, "the scheduler's lane bound is the engine's");

int bat_sched_create(const bat_sched_cfg_t *cfg, const eng_model_t *m, const eng_tok_t *tok,
                     bat_sched_t **out) {
    if (cfg->max_lanes < 1 || cfg->max_lanes > BAT_MAX_LANES || cfg->max_queue < 0 ||
        cfg->prefill_chunk < 1 || cfg->threads < 0)
        return LANES_EINVAL;
    int rc = LANES_ENOMEM;
    bat_sched_t *s = calloc(1, sizeof *s);
    if (s == NULL) return rc;
    s->cfg = *cfg;
    s->tok = tok;
    s->vocab = eng_model_cfg(m)->vocab_size;
    s->model_name = eng_model_name(m);
    s->max_cols = cfg->max_lanes + cfg->prefill_chunk;
    s->t_start = s->t_log = lanes_now_ns();
    s->st.lanes_total = cfg->max_lanes;
    hist_init(s->st.hist);
    const char *wt = eng_wtype_name(eng_model_wtype(m));
    for (size_t i = 0; wt && wt[i] && i + 1 < sizeof s->wtype; i++)
        s->wtype[i] = (char)tolower((unsigned char)wt[i]);
    if (uv_sem_init(&s->wake, 0) != 0) {
        free(s);
        return rc;
    }
    s->lanes = calloc((size_t)cfg->max_lanes, sizeof *s->lanes);
    s->order = calloc((size_t)cfg->max_lanes, sizeof *s->order);
    s->cols = calloc((size_t)s->max_cols, sizeof *s->cols);
    s->out_tok = calloc((size_t)s->max_cols, sizeof *s->out_tok);
    s->snap = calloc(1, sizeof(bat_stats_t));
    s->snap_spare = calloc(1, sizeof(bat_stats_t));
    if (!s->lanes || !s->order || !s->cols || !s->out_tok || !s->snap || !s->snap_spare) goto fail;
    *(bat_stats_t *)s->snap = s->st;
    if ((rc = copy_chat_template(s, m)) < 0) goto fail;
    if ((rc = lanes_q_create(&s->inbox)) < 0 || (rc = lanes_q_create(&s->outbox)) < 0 ||
        (rc = lanes_q_create(&s->spare)) < 0)
        goto fail;
    eng_ctx_cfg_t cc = {cfg->max_lanes, s->max_cols, cfg->threads, ENG_GEMM_LANES, cfg->ctx};
    if ((rc = eng_ctx_create(m, &cc, &s->ctx)) < 0) goto fail;
    eng_ctx_plan_t plan;   /* the context just made fit this plan: it cannot fail now */
    eng_ctx_plan(eng_model_cfg(m), &cc, UINT64_MAX, &plan);
    s->st.threads = ((bat_stats_t *)s->snap)->threads = eng_ctx_threads(s->ctx);
    s->st.kv_lane_bytes = ((bat_stats_t *)s->snap)->kv_lane_bytes = plan.kv_lane;
    s->seq_len = eng_ctx_seq_len(s->ctx);   /* prompts and the "context" end use the lane's room */
    if ((rc = bat__tok_create(tok, s->seq_len, s->inbox, &s->wake, &s->tokw)) < 0) goto fail;
    *out = s;
    return LANES_OK;
fail:
    bat_sched_destroy(s);
    return rc;
}

int bat_sched_start(bat_sched_t *s) {
    int rc = bat__tok_start(s->tokw);
    if (rc < 0) return rc;
    if (uv_thread_create(&s->thread, engine_main, s) != 0) {
        bat__tok_stop(s->tokw);
        return LANES_ENOMEM;
    }
    s->started = 1;
    return LANES_OK;
}

/* In pipeline order, so that each stage has had everything its producers will ever send. */
void bat_sched_stop(bat_sched_t *s) {
    if (s == NULL || !s->started) return;
    atomic_store(&s->stopping, 1);
    /* Pushes registered before the stopping check (both seq_cst) finish; later ones see it set. */
    while (atomic_load(&s->submitting) > 0) uv_sleep(0);
    bat__tok_stop(s->tokw);   /* joins: what it held is in the inbox, unencoded ones marked ECLOSED */
    atomic_store(&s->closing, 1);
    uv_sem_post(&s->wake);
    uv_thread_join(&s->thread);
    s->started = 0;
}

int bat_sched_open(const bat_sched_cfg_t *cfg, const char *model_path, const char *tok_path,
                   const char *preset, bat_sched_t **out) {
    eng_bundle_t b;
    int rc = eng_bundle_open(&b, model_path, tok_path, preset, 1);
    if (rc < 0) return rc;
    if ((rc = bat_sched_create(cfg, b.model, b.tok, out)) < 0) {
        LANES_LOG(LANES_LOG_ERROR, "cannot create the scheduler: %s", lanes_strerror(rc));
        eng_bundle_close(&b);
        return rc;
    }
    (*out)->owned = b;
    /* What is being served, in one line; the KV bytes per lane are the stats' (the rings of
     * sliding layers hold a step's columns beyond the window, so they depend on the lanes and
     * the prefill chunk). */
    const eng_model_cfg_t *mc = eng_model_cfg(b.model);
    LANES_LOG(LANES_LOG_INFO, "model \"%s\" (%s, %s, from %s): dim %d, layers %d, vocab %d, context "
              "%d of %d, KV %.2f MiB per lane; %d lanes, queue %d", eng_model_name(b.model),
              mc->arch.name, eng_wtype_name(eng_model_wtype(b.model)),
              model_path ? model_path : preset ? preset : "15m (synthetic)", mc->dim, mc->n_layers,
              mc->vocab_size, (*out)->seq_len, mc->seq_len,
              (double)(*out)->st.kv_lane_bytes / (1 << 20),
              cfg->max_lanes, cfg->max_queue);
    return LANES_OK;
}

const char *bat_sched_model_name(const bat_sched_t *s) { return s->model_name; }

const char *bat_sched_weight_type(const bat_sched_t *s) { return s->wtype; }

const char *bat_sched_chat_template(const bat_sched_t *s, size_t *len) {
    *len = s->chat_template_len;
    return s->chat_template;
}

/* prev -1 is no BOS: a llama2.c piece keeps its leading space, as it has mid-text. */
const char *bat_sched_token_piece(const bat_sched_t *s, int32_t id, size_t *len) {
    return eng_tok_decode(s->tok, -1, id, len);
}

void bat_sched_destroy(bat_sched_t *s) {
    if (s == NULL) return;
    bat_sched_stop(s);
    bat__tok_destroy(s->tokw);   /* before the inbox it pushes to */
    eng_ctx_destroy(s->ctx);
    for (lanes_q_node_t *q[3] = {s->inbox ? lanes_q_take_all(s->inbox) : NULL,
                                 s->outbox ? lanes_q_take_all(s->outbox) : NULL,
                                 s->spare ? lanes_q_take_all(s->spare) : NULL},
                       **p = q; p < q + 3; p++)
        while (*p) {
            lanes_q_node_t *n = *p;
            *p = n->next;
            if (p == q) bat_req_free((bat_req_t *)n);
            else batch_free((bat_batch_t *)n);
        }
    batch_free(s->batch);
    for (int i = 0; s->lanes && i < s->cfg.max_lanes; i++) bat_req_free(s->lanes[i].req);
    while (s->fifo.head) bat_req_free(bat__fifo_pop(&s->fifo));
    lanes_q_destroy(s->inbox);
    lanes_q_destroy(s->outbox);
    lanes_q_destroy(s->spare);
    free(s->lanes);
    free(s->order);
    free(s->cols);
    free(s->out_tok);
    free(s->snap);
    free(s->snap_spare);
    free(s->chat_template);
    eng_bundle_close(&s->owned);
    uv_sem_destroy(&s->wake);
    free(s);
}

/* Generates and cancels alike: registered in submitting so that bat_sched_stop() waits for the
 * push; only a generate counts against the live bound. */
int bat_submit(bat_sched_t *s, bat_req_t *msg) {
    atomic_fetch_add(&s->submitting, 1);
    int rc = LANES_OK;
    if (atomic_load(&s->stopping)) {
        rc = LANES_ECLOSED;
        goto out;
    }
    if (msg->kind == BAT_MSG_GENERATE) {
        long cap = (long)s->cfg.max_lanes + s->cfg.max_queue;
        long cur = atomic_load(&s->live);
        do {
            if (cur >= cap) {
                atomic_fetch_add(&s->rejected, 1);
                rc = LANES_EBUSY;
                goto out;
            }
        } while (!atomic_compare_exchange_weak(&s->live, &cur, cur + 1));
        if (msg->max_tokens < 1) msg->max_tokens = 1;
        if (msg->logprobs > BAT_MAX_LOGPROBS) msg->logprobs = BAT_MAX_LOGPROBS;
    }
    if (msg->kind == BAT_MSG_CANCEL) {
        lanes_q_push(s->inbox, &msg->node);
        uv_sem_post(&s->wake);
    } else {
        bat__tok_push(s->tokw, msg);
    }
out:
    atomic_fetch_sub(&s->submitting, 1);
    return rc;
}

bat_req_t *bat_cancel_new(uint64_t req_id) {
    bat_req_t *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    r->kind = BAT_MSG_CANCEL;
    r->req_id = req_id;
    return r;
}

int bat_cancel(bat_sched_t *s, bat_req_t *msg) {
    int rc = bat_submit(s, msg);   /* a cancel is never refused as EBUSY */
    if (rc < 0) bat_req_free(msg);
    return rc;
}

void bat_stats_get(bat_sched_t *s, bat_stats_t *out) {
    lanes_rcu_read_lock();
    const bat_stats_t *p = lanes_rcu_get(&s->snap);
    *out = *p;
    lanes_rcu_read_unlock();
    out->requests_active = (uint64_t)atomic_load(&s->live);
    out->uptime_s = (double)(lanes_now_ns() - s->t_start) / 1e9;
    out->requests_rejected = atomic_load(&s->rejected);
}
