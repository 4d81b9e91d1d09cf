#ifndef BAT_SCHED_H
#define BAT_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "base/lanes_q.h"
#include "model/model.h"
#include "tok/tok.h"

/* The continuous-batching scheduler. It owns two threads. The tokenizer worker encodes prompts
 * (so a huge prompt never stalls a step, nor the submitting thread) and hands them on in order.
 * The engine thread runs the steps: requests wait in a bounded FIFO, join free lanes at step
 * boundaries, are prefilled in chunks under a per-step column budget, and leave the moment they
 * end. After each step it queues one event batch (every lane's new token and every terminal event
 * together) and calls cfg->notify once. Requests and cancels take one ordered path through both
 * threads, so a cancel stays behind the submit it refers to. */
typedef struct bat_sched bat_sched_t;

/* Streams per scheduler at most: the engine's ENG_MAX_LANES. */
#define BAT_MAX_LANES 128

typedef struct {
    int max_lanes;      /* streams in the engine at once (KV slots), 1..BAT_MAX_LANES */
    int max_queue;      /* requests waiting for a lane; past it bat_submit() says LANES_EBUSY */
    int prefill_chunk;  /* prompt columns per step in all (oldest prefill first), on top of one
                         * decode column per decoding lane; >= 1 */
    int threads;        /* compute threads including the engine thread; 0 = cores */
    int stats_log_s;    /* seconds between INFO stats lines while busy; 0 = never */
    void (*notify)(void *arg);  /* engine thread, after each batch is queued: must only wake */
    void *notify_arg;
    int ctx;            /* context per lane in tokens (prompt plus output), 1..seq_len; 0 = the
                         * engine's default, min(seq_len, 4096) */
} bat_sched_cfg_t;

enum { BAT_MSG_GENERATE = 0, BAT_MSG_CANCEL = 1 };

/* io -> tokenizer -> engine. Plain data; the scheduler takes it in bat_submit() and frees it. */
typedef struct bat_req {
    lanes_q_node_t node;
    int kind;               /* BAT_MSG_GENERATE or BAT_MSG_CANCEL */
    uint64_t req_id;        /* chosen by the submitter, unique among live requests */
    char *prompt;           /* owned, prompt_len bytes (not NUL-terminated necessarily); freed
                             * once encoded */
    size_t prompt_len;
    int max_tokens;         /* >= 1 */
    float temperature;      /* 0 = greedy */
    int top_k;              /* 0 = off */
    float top_p;            /* >= 1 = off */
    uint64_t seed;
    uint64_t t_arrive_ns;   /* lanes_now_ns() when the line was read */
    /* scheduler bookkeeping */
    struct bat_req *fifo_next;
    int32_t *ids;           /* owned: the n_prompt encoded ids, at most the lane's context */
    int n_prompt;
    int err;                /* tokenizer -> engine: end with this LANES_E* code (ETOOLONG, ...) */
    int cancelled;          /* tokenizer -> engine: cancelled before it was encoded; on a cancel:
                             * the tokenizer has seen it (its request is past the worker) */
} bat_req_t;

/* Returns a generate request with defaults (max_tokens 64, greedy); NULL on ENOMEM. Copies prompt. */
bat_req_t *bat_req_new(uint64_t req_id, const char *prompt, size_t len);
void bat_req_free(bat_req_t *r);   /* NULL is fine */

/* engine -> io: one event of a batch. */
enum { BAT_EV_TOKEN = 0, BAT_EV_DONE = 1, BAT_EV_ERROR = 2 };
enum { BAT_END_LENGTH = 1, BAT_END_STOP = 2, BAT_END_CONTEXT = 3, BAT_END_CANCELLED = 4 };
typedef struct {
    uint64_t req_id;
    int kind;               /* BAT_EV_* */
    int code;               /* DONE: BAT_END_*; ERROR: a LANES_E* code */
    int n_tok;              /* TOKEN: ids at batch->toks[tok_off..] (0 when only text is flushed) */
    uint32_t tok_off;
    uint32_t text_off, text_len;    /* TOKEN: raw bytes at batch->text[text_off..] */
    int prompt_tokens, completion_tokens;   /* DONE */
    double queue_ms, ttft_ms, total_ms;     /* DONE; ttft_ms < 0 when no token was made */
} bat_evt_t;

typedef struct bat_batch {
    lanes_q_node_t node;    /* first: a node is its batch */
    bat_evt_t *ev;          /* owned arrays, reused across steps */
    int n, cap;
    int32_t *toks;
    uint32_t ntok, tokcap;
    char *text;
    uint32_t ntext, textcap;
} bat_batch_t;

const char *bat_end_name(int end);   /* "length", "stop", "context", "cancelled" */

/* Borrows m and tok until bat_sched_destroy(). Creates the engine context (KV cache, buffers). */
int bat_sched_create(const bat_sched_cfg_t *cfg, const eng_model_t *m, const eng_tok_t *tok,
                     bat_sched_t **out);
/* Opens the model and tokenizer (files, or the synthetic preset when model_path is NULL; see
 * eng_bundle_open), logs their shape, and creates a scheduler that owns them. */
int bat_sched_open(const bat_sched_cfg_t *cfg, const char *model_path, const char *tok_path,
                   const char *preset, bat_sched_t **out);
int bat_sched_start(bat_sched_t *s);            /* starts the tokenizer and engine threads */
/* Ends every request still being tokenized, queued or active with an LANES_ECLOSED error event
 * (queued as a last batch, with a notify), then joins both threads. Later submits get
 * LANES_ECLOSED. */
void bat_sched_stop(bat_sched_t *s);
void bat_sched_destroy(bat_sched_t *s);         /* NULL is fine; stops first */
/* Borrows: the model's name (general.name, a file name, or "synthetic"), valid until
 * bat_sched_destroy(); any thread. */
const char *bat_sched_model_name(const bat_sched_t *s);

/* Any thread. Takes req on LANES_OK only; LANES_EBUSY when max_lanes + max_queue requests are
 * already live (being tokenized, queued or in a lane), LANES_ECLOSED after stop. A prompt longer
 * than the lane's context (BOS included) ends with an LANES_ETOOLONG error event. */
int bat_submit(bat_sched_t *s, bat_req_t *req);
/* A cancel message for req_id, made ahead (when the request is submitted) so that cancelling later
 * never allocates and so cannot fail; NULL on ENOMEM. bat_req_free() frees an unused one. */
bat_req_t *bat_cancel_new(uint64_t req_id);
/* Any thread. Takes msg (from bat_cancel_new()) in every case and ends its request with
 * done/"cancelled" if it is still live: within one step (the cancel goes to the engine thread
 * directly), or, while the request waits for the tokenizer, once the one prompt being encoded is
 * done; else nothing. Returns LANES_OK, or
 * LANES_ECLOSED after stop (which ends every live request anyway). */
int bat_cancel(bat_sched_t *s, bat_req_t *msg);

/* The consumer of events (one thread). Returns the queued batches oldest first, linked through
 * node.next; give each back with bat_batch_release() when done with it. */
bat_batch_t *bat_take_batches(bat_sched_t *s);
void bat_batch_release(bat_sched_t *s, bat_batch_t *b);

typedef struct {
    int lanes_total, lanes_active;
    int queue_depth;            /* waiting for a lane: being tokenized or queued */
    uint64_t requests_served;   /* requests that ended on the engine (done or error) */
    uint64_t requests_active;   /* accepted by bat_submit() and not yet ended */
    uint64_t requests_rejected; /* refused by bat_submit() with LANES_EBUSY */
    uint64_t tokens_generated;  /* ids put in token events */
    uint64_t prompt_tokens;     /* ids of prompts accepted */
    uint64_t steps;
    int step_cols_max;          /* most columns in one step so far */
    double uptime_s, step_ms_avg, step_ms_last;
} bat_stats_t;

/* Copies the last published snapshot (published before each batch is queued, so it already counts
 * everything in the batches a consumer has taken). The calling thread must be an RCU reader
 * (lanes_rcu_register()). */
void bat_stats_get(bat_sched_t *s, bat_stats_t *out);

#endif
