/* The OpenAI-compatible endpoints over io/http.c: routing, /health, /v1/models, /metrics, and
 * /v1/completions and /v1/chat/completions. Every choice (prompt x n) is a bat request of its own,
 * answered in one JSON body once all have ended, or as an event stream of one chunk per engine
 * step per choice. JSON is io/oai.c's; docs/OPENAI.md is the reference. */
#include <http_parser.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "base/lanes_rand.h"
#include "chat.h"
#include "metrics.h"
#include "oai.h"
#include "proto.h"
#include "server_int.h"

typedef struct {
    io_buf_t text;              /* not streamed: the choice's whole text, echoed prompt first */
    int32_t *ids;               /* not streamed, with logprobs: every token and its logprobs */
    eng_logprobs_t *lps;
    int ntok, tokcap;
    size_t tok_off;             /* streamed: the echoed prompt's and the tokens' bytes so far
                                 * (their pieces: text may lag them, held back): the next token's
                                 * text_offset, as the whole response counts it */
    const char *finish;         /* "stop", "length" once ended */
    int opened;                 /* streamed: its first chunk is out */
} io_choice_t;

struct io_call {
    io_conn_t *conn;
    oai_req_t rq;               /* owned */
    char *prompt;               /* owned: chat: the rendered messages */
    size_t prompt_len;
    char id[48];
    long long created;
    int nch, nlive;
    int streaming;              /* the event stream's head is out */
    oai_usage_t usage;
    io_choice_t ch[];
};

/* ---- errors and plain responses ------------------------------------------------------------- */

/* OpenAI's type and code for a status. */
static void err_fill(oai_err_t *e, int status, const char *param, const char *msg) {
    const char *type = status >= 500 ? "server_error" : "invalid_request_error", *code = NULL;
    if (status == 429) type = "rate_limit_error", code = "rate_limit_exceeded";
    if (status == 503) code = "service_unavailable";
    oai_err_set(e, status, type, code, param ? param : "", "%s", msg);
}

/* extra: header lines (405's Allow, 503's Retry-After), or NULL. */
static void respond_err(io_conn_t *c, const oai_err_t *e, const char *extra) {
    size_t len;
    char *json = oai_error_json(e, &len);
    if (json) io__http_respond(c, e->status, "application/json", json, len, extra);
    else io__conn_close(c, "out of memory");
    free(json);
}

static void error_v(io_conn_t *c, int status, const char *param, const char *extra,
                    const char *fmt, va_list ap) {
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, ap);
    oai_err_t e;
    err_fill(&e, status, param, msg);
    respond_err(c, &e, status == 503 ? "Retry-After: 1\r\n" : extra);
}

void io__api_error(io_conn_t *c, int status, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    error_v(c, status, param, NULL, fmt, ap);
    va_end(ap);
}

static void not_allowed(io_conn_t *c, const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void not_allowed(io_conn_t *c, const char *allow, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    error_v(c, 405, NULL, allow, fmt, ap);
    va_end(ap);
}

/* Takes body (malloc'd by oai.c or metrics.c; NULL: out of memory). */
static void respond_owned(io_conn_t *c, const char *ctype, char *body, size_t len) {
    if (body) io__http_respond(c, 200, ctype, body, len, NULL);
    else io__api_error(c, 500, NULL, "out of memory");
    free(body);
}

static void api_health(io_conn_t *c) {
    static const char ok[] = "{\"status\":\"ok\"}", down[] = "{\"status\":\"shutting_down\"}",
                      loading[] = "{\"status\":\"loading\"}";
    if (c->srv->shutting_down)
        io__http_respond(c, 503, "application/json", down, sizeof down - 1, NULL);
    else if (c->srv->sched == NULL)
        io__http_respond(c, 503, "application/json", loading, sizeof loading - 1,
                         "Retry-After: 1\r\n");
    else
        io__http_respond(c, 200, "application/json", ok, sizeof ok - 1, NULL);
}

static void api_models(io_conn_t *c) {
    size_t len = 0;
    char *json = oai_models_json(bat_sched_model_name(c->srv->sched), c->srv->created, &len);
    respond_owned(c, "application/json", json, len);
}

static void api_metrics(io_conn_t *c) {
    io_server_t *s = c->srv;
    bat_stats_t st;
    bat_stats_get(s->sched, &st);
    io_metrics_io_t io = {s->nconns, s->npaused, 0, s->http_requests};
    for (io_conn_t *k = s->conns; k; k = k->next)
        if (!k->closing) io.bytes_queued += io__conn_queued(k);
    size_t len = 0;
    char *text = io_metrics_text(&st, &io, bat_sched_model_name(s->sched), &len);
    respond_owned(c, IO_METRICS_CONTENT_TYPE, text, len);
}

/* ---- calls ---------------------------------------------------------------------------------- */

void io__api_free(io_call_t *call) {
    if (call == NULL) return;
    for (int i = 0; i < call->nch; i++) {
        free(call->ch[i].text.p);
        free(call->ch[i].ids);
        free(call->ch[i].lps);
    }
    oai_req_fini(&call->rq);
    free(call->prompt);
    free(call);
}

/* Cancels the call's choices still in flight (their lanes free within a step) and frees it. */
static void call_drop(io_call_t *call) {
    io_conn_t *c = call->conn;
    for (io_req_t *r = c->reqs, *next; r; r = next) {
        next = r->cnext;
        if (r->call != call) continue;
        io__cancel_req(c->srv, r);
        io__req_remove(c->srv, r);
    }
    c->call = NULL;
    io__api_free(call);
}

static const char *piece(void *arg, int32_t id, size_t *len) {
    return bat_sched_token_piece(arg, id, len);
}

static oai_meta_t call_meta(const io_call_t *call) {
    io_server_t *s = call->conn->srv;
    return (oai_meta_t){call->id, call->created, bat_sched_model_name(s->sched), piece, s->sched};
}

static const char *choice_prompt(const io_call_t *call, int i, size_t *len) {
    if (call->rq.kind == OAI_CHAT) {
        *len = call->prompt_len;
        return call->prompt;
    }
    int p = i / call->rq.n;
    *len = call->rq.prompt_len[p];
    return call->rq.prompt[p];
}

/* Submits choice i: LANES_OK, or bat_submit()'s or an allocation's error. */
static int submit_choice(io_call_t *call, int i) {
    io_conn_t *c = call->conn;
    io_server_t *s = c->srv;
    const oai_req_t *q = &call->rq;
    size_t len;
    const char *prompt = choice_prompt(call, i, &len);
    io_req_t *r = calloc(1, sizeof *r);
    bat_req_t *br = bat_req_new(++s->next_req_id, prompt, len);
    bat_req_t *cancel = bat_cancel_new(s->next_req_id);
    int rc = r && br && cancel ? LANES_OK : LANES_ENOMEM;
    if (rc == LANES_OK) {
        br->max_tokens = q->max_tokens > 0 ? q->max_tokens : IO_MAX_TOKENS;   /* 0: the context */
        br->temperature = q->temperature;
        br->top_k = q->top_k > 0 ? q->top_k : 0;
        br->top_p = q->top_p;
        br->seed = q->has_seed ? q->seed + (uint64_t)i : lanes_splitmix64(&s->seed_state);
        br->ignore_eos = q->ignore_eos;
        br->logprobs = q->logprobs;
        br->t_arrive_ns = lanes_now_ns();
        for (int k = 0; k < q->n_stop && rc == LANES_OK; k++)
            rc = bat_req_add_stop(br, q->stop[k], q->stop_len[k]);
    }
    uint64_t req_id = br ? br->req_id : 0;   /* br belongs to the engine thread once submitted */
    if (rc == LANES_OK) rc = bat_submit(s->sched, br);
    if (rc < 0) {
        free(r);
        bat_req_free(br);
        bat_req_free(cancel);
        return rc;
    }
    r->req_id = req_id;
    r->cancel = cancel;
    r->conn = c;
    r->call = call;
    r->index = i;
    io__req_add(s, r);
    call->nlive++;
    return LANES_OK;
}

static void api_generate(io_conn_t *c, int kind, const char *body, size_t len) {
    io_server_t *s = c->srv;
    if (s->shutting_down) {
        io__api_error(c, 503, NULL, "server shutting down");
        return;
    }
    oai_req_t rq;
    oai_err_t err;
    if (oai_parse(kind, body, len, &rq, &err) < 0) {
        oai_req_fini(&rq);
        respond_err(c, &err, NULL);
        return;
    }
    int nch = (kind == OAI_CHAT ? 1 : rq.n_prompt) * rq.n;
    io_call_t *call = calloc(1, sizeof *call + (size_t)nch * sizeof call->ch[0]);
    if (call == NULL) {
        oai_req_fini(&rq);
        io__api_error(c, 500, NULL, "out of memory");
        return;
    }
    call->conn = c;
    call->rq = rq;   /* takes its strings */
    call->nch = nch;
    call->created = (long long)time(NULL);
    snprintf(call->id, sizeof call->id, "%s-%llx-%llx", kind == OAI_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)c->id, (unsigned long long)s->next_req_id + 1);
    if (kind == OAI_CHAT) {
        int family = s->chat_family;
        size_t tlen = 0;
        const char *tmpl = family < 0 ? bat_sched_chat_template(s->sched, &tlen) : NULL;
        if (tmpl) family = io_chat_detect(tmpl, tlen);
        if (family < 0) {
            io__api_free(call);
            io__api_error(c, 400, "messages",
                          "the model has %s chat template: start lanes-server with "
                          "--chat-template NAME (one of: %s)",
                          tmpl ? "no known" : "no", io_chat_names());
            return;
        }
        const char *why = "";
        int rc = io_chat_render(family, rq.msgs, rq.n_msgs, &call->prompt, &call->prompt_len, &why);
        if (rc < 0) {
            io__api_free(call);
            if (rc == LANES_EINVAL) io__api_error(c, 400, "messages", "%s", why);
            else io__api_error(c, 500, NULL, "out of memory");
            return;
        }
    }
    if (c->ninflight + nch > s->cfg.max_inflight) {
        io__api_free(call);
        io__api_error(c, 429, NULL, "too many requests in flight on this connection");
        return;
    }
    while (s->nreqs + (size_t)nch > s->nbuckets)
        if (io__table_grow(s) < 0) {
            io__api_free(call);
            io__api_error(c, 500, NULL, "out of memory");
            return;
        }
    if (rq.echo && !rq.stream)
        for (int i = 0; i < nch; i++) {
            size_t plen;
            const char *p = choice_prompt(call, i, &plen);
            io__buf_put(c, &call->ch[i].text, p, plen);
        }
    c->call = call;
    for (int i = 0; i < nch; i++) {
        int rc = submit_choice(call, i);
        if (rc == LANES_OK) continue;
        call_drop(call);
        if (rc == LANES_EBUSY)
            io__api_error(c, 429, NULL, "at capacity: every lane and queue slot is taken");
        else if (rc == LANES_ECLOSED) io__api_error(c, 503, NULL, "server shutting down");
        else io__api_error(c, 500, NULL, "%s", lanes_strerror(rc));
        return;
    }
}

/* ---- events --------------------------------------------------------------------------------- */

static void send_chunk(io_call_t *call, const oai_choice_t *oc) {
    oai_meta_t m = call_meta(call);
    size_t len;
    char *json = oai_chunk_json(call->rq.kind, &m, oc, &len);
    if (json) io__http_sse_data(call->conn, json, len);
    else io__conn_close(call->conn, "out of memory");
    free(json);
}

/* Opens the stream, and choice i in it with a chunk of its own, as OpenAI sends them: chat's
 * role delta (with "content":""), or a completion's echoed prompt. */
static void stream_choice(io_call_t *call, int i) {
    if (!call->streaming) {
        io__http_sse_open(call->conn);
        call->streaming = 1;
    }
    io_choice_t *ch = &call->ch[i];
    if (ch->opened) return;
    ch->opened = 1;
    oai_choice_t oc = {.index = i, .text = "", .role = call->rq.kind == OAI_CHAT};
    if (call->rq.echo) oc.text = choice_prompt(call, i, &oc.text_len);
    if (oc.role || oc.text_len > 0) send_chunk(call, &oc);
    ch->tok_off = oc.text_len;
}

static int keep_tokens(io_conn_t *c, io_choice_t *ch, const int32_t *ids, const eng_logprobs_t *lps,
                       int n) {
    if (ch->ntok + n > ch->tokcap) {
        int cap = ch->tokcap ? ch->tokcap * 2 : 64;
        while (cap < ch->ntok + n) cap *= 2;
        int32_t *i2 = realloc(ch->ids, (size_t)cap * sizeof *i2);
        if (i2) ch->ids = i2;
        eng_logprobs_t *l2 = i2 ? realloc(ch->lps, (size_t)cap * sizeof *l2) : NULL;
        if (l2 == NULL) {
            io__conn_close(c, "out of memory");
            return -1;
        }
        ch->lps = l2;
        ch->tokcap = cap;
    }
    memcpy(ch->ids + ch->ntok, ids, (size_t)n * sizeof *ids);
    memcpy(ch->lps + ch->ntok, lps, (size_t)n * sizeof *lps);
    ch->ntok += n;
    return 0;
}

static void on_token(io_call_t *call, int i, const bat_batch_t *b, const bat_evt_t *e) {
    io_choice_t *ch = &call->ch[i];
    const char *text = b->text + e->text_off;
    const int32_t *ids = b->toks + e->tok_off;
    const eng_logprobs_t *lps = call->rq.logprobs >= 0 && e->n_tok > 0 ? b->lps + e->tok_off : NULL;
    if (call->rq.stream) {
        stream_choice(call, i);
        if (e->text_len == 0 && lps == NULL) return;   /* all held back: nothing to say yet */
        oai_choice_t oc = {.index = i, .text = text, .text_len = e->text_len, .n_tok = e->n_tok,
                           .lps = lps, .ids = ids, .text_offset = ch->tok_off};
        send_chunk(call, &oc);
        for (int k = 0; lps && k < e->n_tok; k++) {   /* only logprobs carry offsets */
            size_t n = 0;
            piece(call->conn->srv->sched, ids[k], &n);
            ch->tok_off += n;
        }
        return;
    }
    io__buf_put(call->conn, &ch->text, text, e->text_len);
    if (lps) keep_tokens(call->conn, ch, ids, lps, e->n_tok);
}

static void call_finish(io_call_t *call) {
    io_conn_t *c = call->conn;
    oai_meta_t m = call_meta(call);
    size_t len = 0;
    if (call->rq.stream) {
        char *json = call->rq.include_usage
                         ? oai_usage_chunk_json(call->rq.kind, &m, &call->usage, &len) : NULL;
        if (json) io__http_sse_data(c, json, len);
        free(json);
        c->call = NULL;   /* the next pipelined request may start a call as the stream closes */
        io__api_free(call);
        io__http_sse_close(c);
        return;
    }
    oai_choice_t *oc = calloc((size_t)call->nch, sizeof *oc);
    char *json = NULL;
    static const eng_logprobs_t no_lps;   /* asked for, none made: an empty list, not null */
    static const int32_t no_ids;
    int want = call->rq.logprobs >= 0;
    if (oc) {
        for (int i = 0; i < call->nch; i++) {
            io_choice_t *ch = &call->ch[i];
            size_t echo = 0;
            if (call->rq.echo) choice_prompt(call, i, &echo);   /* the tokens follow it */
            oc[i] = (oai_choice_t){.index = i, .text = ch->text.p ? ch->text.p : "",
                                   .text_len = ch->text.len, .n_tok = ch->ntok,
                                   .lps = want ? (ch->lps ? ch->lps : &no_lps) : NULL,
                                   .ids = want ? (ch->ids ? ch->ids : &no_ids) : NULL,
                                   .text_offset = echo, .finish_reason = ch->finish};
        }
        json = oai_response_json(call->rq.kind, &m, oc, call->nch, &call->usage, &len);
    }
    free(oc);
    c->call = NULL;
    io__api_free(call);
    respond_owned(c, "application/json", json, len);
}

/* A choice ended with an engine error: the whole call ends with it; the other choices go. */
static void on_error(io_call_t *call, int code) {
    io_conn_t *c = call->conn;
    int status = code == LANES_ETOOLONG ? 400 : code == LANES_ECLOSED ? 503 : 500;
    const char *msg = io__engine_error_msg(code);
    int streaming = call->streaming;
    call_drop(call);
    if (!streaming) {
        io__api_error(c, status, code == LANES_ETOOLONG ? "prompt" : NULL, "%s", msg);
        return;
    }
    oai_err_t e;   /* the status line is gone: the error is an event of the stream */
    err_fill(&e, status, NULL, msg);
    size_t len;
    char *json = oai_error_json(&e, &len);
    if (json) io__http_sse_data(c, json, len);
    free(json);
    io__http_sse_close(c);
}

static const char *finish_name(int end) {
    if (end == BAT_END_STOP) return "stop";
    if (end == BAT_END_CANCELLED) return "abort";   /* vLLM's word */
    return "length";   /* max_tokens, or the context */
}

void io__api_event(io_server_t *s, const bat_batch_t *b, const bat_evt_t *e, io_req_t *r) {
    io_call_t *call = r->call;
    int i = r->index;
    if (e->kind == BAT_EV_TOKEN) {
        on_token(call, i, b, e);
        return;
    }
    io__req_remove(s, r);
    if (e->kind == BAT_EV_ERROR) {
        on_error(call, e->code);
        return;
    }
    io_choice_t *ch = &call->ch[i];
    ch->finish = finish_name(e->code);
    call->usage.completion_tokens += e->completion_tokens;
    if (i % call->rq.n == 0) call->usage.prompt_tokens += e->prompt_tokens;   /* once per prompt */
    call->nlive--;
    if (call->rq.stream) {
        stream_choice(call, i);
        oai_choice_t oc = {.index = i, .text = "", .finish_reason = ch->finish};
        send_chunk(call, &oc);
    }
    if (call->nlive == 0) call_finish(call);
}

/* ---- routing -------------------------------------------------------------------------------- */

static void api_completions(io_conn_t *c, const char *body, size_t len) {
    api_generate(c, OAI_COMPLETIONS, body, len);
}

static void api_chat(io_conn_t *c, const char *body, size_t len) {
    api_generate(c, OAI_CHAT, body, len);
}

void io__api_request(io_conn_t *c, int method, const char *url, size_t url_len, const char *body,
                     size_t body_len) {
    const char *q = memchr(url, '?', url_len);
    size_t n = q ? (size_t)(q - url) : url_len;
    static const struct {
        const char *path;
        int post;
        void (*post_fn)(io_conn_t *, const char *, size_t);
        void (*get_fn)(io_conn_t *);
    } routes[] = {
        {"/health", 0, NULL, api_health},
        {"/v1/models", 0, NULL, api_models},
        {"/metrics", 0, NULL, api_metrics},
        {"/v1/completions", 1, api_completions, NULL},
        {"/v1/chat/completions", 1, api_chat, NULL},
    };
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        if (strlen(routes[i].path) != n || memcmp(routes[i].path, url, n) != 0) continue;
        int allowed = routes[i].post ? method == HTTP_POST
                                     : method == HTTP_GET || method == HTTP_HEAD;
        if (!allowed)
            not_allowed(c, routes[i].post ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n",
                        "%s %s: method not allowed", http_method_str((enum http_method)method),
                        routes[i].path);
        else if (c->srv->sched == NULL && routes[i].get_fn != api_health)
            io__api_error(c, 503, NULL, "the model is loading");   /* with Retry-After */
        else if (routes[i].post)
            routes[i].post_fn(c, body, body_len);
        else
            routes[i].get_fn(c);
        return;
    }
    io__api_error(c, 404, NULL, "no such endpoint: %.*s", (int)(n > 200 ? 200 : n), url);
}
