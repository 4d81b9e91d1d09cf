/* The sweep driver: one libuv loop, no threads. Each point opens its stream connections, keeps them
 * busy (closed loop) or feeds them Poisson arrivals (open loop), and reads replies: lines of the
 * lanes protocol, or HTTP responses carrying SSE chunks for --api openai. The code reads as
 * sequential steps: WAIT_UNTIL() turns the loop until a condition holds, the connection fails or
 * the server goes quiet for cfg->timeout_s. */
#include "loadgen.h"
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "hist.h"
#include "http.h"
#include "openai.h"
#include "prompts.h"
#include "scan.h"

#define MAX_LINE (16u << 20)                     /* a reply line or HTTP body longer than this */
#define MAX_MISMATCH_LOGS 10
#define STATS_REQ (-2)                           /* conn_t.cur: a GET of the stats connection */

typedef struct runner runner_t;

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t creq;
    runner_t *r;
    int idx;                                     /* stream index; -1 for the stats connection */
    int connected, open;                         /* open: handle not yet closed */
    int reopen;                                  /* http: connect again once the close is done */
    char *buf;                                   /* owned: unread bytes (a partial line) */
    size_t len, cap;
    long long sent;                              /* requests sent on it in this point */
    /* --api openai: one request at a time per connection (HTTP/1.1 without pipelining). */
    lg_http_t *http;                             /* owned */
    char *body;                                  /* owned: decoded body bytes not yet used */
    size_t blen, bcap;
    int status;                                  /* of the response being read */
    long long cur;                               /* request in flight, -1 none, or STATS_REQ */
    int got_bytes, resent;                       /* of cur's response; cur sent a second time */
} conn_t;

typedef struct {
    uint64_t t_send, t_first, t_last, t_done;    /* uv_hrtime ns */
    uint64_t gap_max;                            /* ns: the longest wait between token events */
    int conn, prompt, ntok;                      /* stream index, prompt index, tokens so far */
    int prompt_tokens;                           /* the server's usage; -1 until it says */
    int completion_tokens;                       /* openai: the usage chunk's; -1 until sent */
    int done;                                    /* terminal event read */
    int reported;                                /* --check: a mismatch was logged already */
    int saw_done;                                /* openai: data: [DONE] */
    char finish[16];                             /* finish_reason / reason, "" unknown */
    char err[24];                                /* error code, "" none */
} req_t;

typedef struct {
    uv_write_t w;
    char data[];
} wbuf_t;

struct runner {
    uv_loop_t loop;
    const lg_cfg_t *cfg;
    lg_meta_t *meta;
    lg_prompts_t prompts;
    struct sockaddr_storage addr;
    uv_timer_t watchdog, progress, arrivals;
    uv_signal_t sigint;
    int handles_open;                            /* timers and the signal, until closed */

    conn_t *stats;                               /* owned */
    conn_t *conns;                               /* owned: this point's streams */
    int n_conns, n_open;                         /* n_open counts handles not yet closed */

    /* This point. Request ids are indexes into reqs. */
    req_t *reqs;                                 /* owned; grows by doubling */
    long long n_reqs, cap_reqs, inflight, target; /* target: requests to send; -1 = until deadline */
    long long *backlog;                          /* owned: openai open loop, ids waiting for a
                                                  * free connection */
    long long n_backlog, backlog_head, cap_backlog;
    int issuing;                                 /* may still send */
    int baseline;                                /* record tokens instead of checking */
    int point_idx;
    double temperature;
    int has_temperature;
    uint64_t t_start, t_end, deadline;
    double next_arrival_ns;                      /* open loop, from t_start */
    uint64_t rng;
    int rr;
    lg_hist_t *ttft, *itl, *tpot, *e2e;
    lg_point_t *pt;
    int mismatch_logs, http_err_logs;
    long long n_usage;                           /* requests whose prompt_tokens we know */
    double stream_rate_sum;
    long long n_stream_rate;

    /* --check: baseline tokens per prompt. */
    int **base_tok;                              /* owned */
    int *base_len, *base_cap;                    /* owned */

    /* --api openai */
    char *model_esc;                             /* owned: the model, JSON-escaped */
    const char *get_path;                        /* the stats connection's GET, while pending */
    int get_pending, no_metrics;

    FILE *detail;                                /* --save-detailed, owned */
    lg_srv_stats_t *stats_dst;                   /* non-NULL while a stats reply is due */
    uint64_t last_rx;                            /* last byte or connect, for the watchdog */
    int waiting;
    int fatal;                                   /* LANES_EIO/EPROTO/ECANCELED: the run stops */
};

static uint64_t now_ns(void) { return uv_hrtime(); }

static void fail(runner_t *r, int code, const char *fmt, const char *detail) {
    if (r->fatal) return;
    r->fatal = code;
    if (r->cfg->progress > 0) fputs("\r\033[K", stderr);
    LANES_LOG(LANES_LOG_ERROR, fmt, detail);
}

static void oom(runner_t *r) { fail(r, LANES_ENOMEM, "loadgen: %s", "out of memory"); }

/* Turns the loop until cond holds or the run fails. */
#define WAIT_UNTIL(r, cond)                                                                       \
    do {                                                                                          \
        (r)->waiting = 1;                                                                         \
        (r)->last_rx = now_ns();                                                                  \
        while (!(cond) && !(r)->fatal) {                                                          \
            if (uv_run(&(r)->loop, UV_RUN_ONCE) == 0 && !(cond)) {                                \
                fail((r), LANES_EIO, "loadgen: %s", "nothing left to wait for");                  \
            }                                                                                     \
        }                                                                                         \
        (r)->waiting = 0;                                                                         \
    } while (0)

static void conn_ensure(runner_t *r, conn_t *c);
static void conn_shut(conn_t *c, int reopen);

/* ---- writing ---------------------------------------------------------------------------- */

static void on_write(uv_write_t *w, int status) {
    (void)status;                                /* a broken connection shows up in on_read */
    free(w);
}

/* Copies the bytes and writes them; the connection must be connected. */
static int conn_write(conn_t *c, const char *s, size_t n) {
    wbuf_t *b = malloc(sizeof *b + n);
    if (!b) return LANES_ENOMEM;
    memcpy(b->data, s, n);
    uv_buf_t ub = uv_buf_init(b->data, (unsigned)n);
    int rc = uv_write(&b->w, (uv_stream_t *)&c->tcp, &ub, 1, on_write);
    if (rc < 0) {
        free(b);
        fail(c->r, LANES_EIO, "loadgen: write to server failed: %s", uv_strerror(rc));
        return LANES_EIO;
    }
    return LANES_OK;
}

/* The request members both protocols share: ,"max_tokens":N and the optional ones. */
static void common_fields(const runner_t *r, long long id, char *out, size_t cap) {
    const lg_cfg_t *cfg = r->cfg;
    int n = snprintf(out, cap, ",\"max_tokens\":%d", cfg->max_tokens);
    if (r->has_temperature)
        n += snprintf(out + n, cap - (size_t)n, ",\"temperature\":%.9g", r->temperature);
    if (cfg->has_seed && !r->baseline)
        n += snprintf(out + n, cap - (size_t)n, ",\"seed\":%llu", cfg->seed + (unsigned long long)id);
    if (cfg->ignore_eos) snprintf(out + n, cap - (size_t)n, ",\"ignore_eos\":true");
}

/* Returns a new request's id, or -1 when out of memory (the run fails). */
static long long new_req(runner_t *r, int conn, int prompt) {
    if (r->n_reqs == r->cap_reqs) {
        long long cap = r->cap_reqs ? r->cap_reqs * 2 : 1024;
        req_t *q = realloc(r->reqs, (size_t)cap * sizeof *q);
        if (!q) {
            oom(r);
            return -1;
        }
        r->reqs = q;
        r->cap_reqs = cap;
    }
    long long id = r->n_reqs++;
    req_t *q = &r->reqs[id];
    memset(q, 0, sizeof *q);
    q->conn = conn;
    q->prompt = prompt;
    q->prompt_tokens = q->completion_tokens = -1;
    q->t_send = now_ns();
    r->inflight++;
    r->pt->requests_sent++;
    return id;
}

static void send_lanes(runner_t *r, conn_t *c, long long id) {
    int prompt = r->reqs[id].prompt;
    size_t plen = r->prompts.len[prompt];
    char head[64], tail[224];
    int hn = snprintf(head, sizeof head, "{\"id\":%lld,\"prompt\":\"", id);
    tail[0] = '"';
    common_fields(r, id, tail + 1, sizeof tail - 3);
    size_t tn = strlen(tail);
    memcpy(tail + tn, "}\n", 3);
    tn += 2;

    size_t n = (size_t)hn + plen + tn;
    wbuf_t *b = malloc(sizeof *b + n);
    if (!b) {
        oom(r);
        return;
    }
    memcpy(b->data, head, (size_t)hn);
    memcpy(b->data + hn, r->prompts.esc[prompt], plen);
    memcpy(b->data + hn + plen, tail, tn);
    uv_buf_t ub = uv_buf_init(b->data, (unsigned)n);
    int rc = uv_write(&b->w, (uv_stream_t *)&c->tcp, &ub, 1, on_write);
    if (rc < 0) {
        free(b);
        fail(r, LANES_EIO, "loadgen: write to server failed: %s", uv_strerror(rc));
    }
}

/* Writes the request in flight on c (a completion, or the stats connection's GET). */
static void http_write_cur(runner_t *r, conn_t *c) {
    size_t n;
    char *req;
    if (c->cur == STATS_REQ) {
        req = lg_openai_get(r->cfg->host, r->cfg->port, r->get_path, &n);
    } else {
        int prompt = r->reqs[c->cur].prompt;
        char fields[224];
        common_fields(r, c->cur, fields, sizeof fields);
        req = lg_openai_completion(r->cfg->host, r->cfg->port, r->model_esc, r->prompts.esc[prompt],
                                   r->prompts.len[prompt], fields, &n);
    }
    if (!req) {
        oom(r);
        return;
    }
    c->got_bytes = 0;
    conn_write(c, req, n);
    free(req);
}

/* Puts request id (or STATS_REQ) on idle connection c: now, or once it is connected again. */
static void http_send(runner_t *r, conn_t *c, long long id) {
    c->cur = id;
    c->resent = 0;
    if (id >= 0) r->reqs[id].conn = c->idx;
    if (c->connected) http_write_cur(r, c);
    else conn_ensure(r, c);
}

/* Sends a new request for prompt on stream c. */
static void issue(runner_t *r, conn_t *c, int prompt) {
    long long id = new_req(r, c->idx, prompt);
    if (id < 0) return;
    c->sent++;
    if (r->cfg->api == LG_API_OPENAI) http_send(r, c, id);
    else send_lanes(r, c, id);
}

/* Closed loop: the stream sends its next request, if its quota and the clock allow. */
static void stream_next(runner_t *r, conn_t *c) {
    if (!r->issuing || r->fatal || r->cfg->mode == LG_MODE_OPEN) return;
    if (r->deadline && now_ns() >= r->deadline) {
        r->issuing = 0;
        return;
    }
    if (r->target >= 0 && c->sent >= r->target / r->n_conns) return;
    issue(r, c, r->baseline ? (int)r->n_reqs : (int)(r->n_reqs % r->prompts.n));
}

/* Open loop over HTTP: an arrival takes an idle connection, or waits for one in the backlog. */
static void dispatch(runner_t *r, long long id) {
    for (int i = 0; i < r->n_conns; i++) {
        conn_t *c = &r->conns[(r->rr + i) % r->n_conns];
        if (c->cur == -1) {
            r->rr = (r->rr + i + 1) % r->n_conns;
            c->sent++;
            http_send(r, c, id);
            return;
        }
    }
    if (r->backlog_head + r->n_backlog == r->cap_backlog && r->backlog_head > 0) {
        memmove(r->backlog, r->backlog + r->backlog_head, (size_t)r->n_backlog * sizeof *r->backlog);
        r->backlog_head = 0;
    }
    if (r->backlog_head + r->n_backlog == r->cap_backlog) {
        long long cap = r->cap_backlog ? r->cap_backlog * 2 : 1024;
        long long *b = realloc(r->backlog, (size_t)cap * sizeof *b);
        if (!b) {
            oom(r);
            return;
        }
        r->backlog = b;
        r->cap_backlog = cap;
    }
    r->backlog[r->backlog_head + r->n_backlog++] = id;
}

/* ---- reading ---------------------------------------------------------------------------- */

static void count_error(lg_point_t *pt, const char *code) {
    pt->requests_err++;
    int i = 0;
    while (i < pt->n_error_codes && strcmp(pt->errors[i].code, code) != 0) i++;
    if (i == pt->n_error_codes) {
        if (i == LG_MAX_ERR_CODES) {             /* table full: the last slot collects the rest */
            i = LG_MAX_ERR_CODES - 1;
            snprintf(pt->errors[i].code, sizeof pt->errors[i].code, "OTHER");
        } else {
            snprintf(pt->errors[i].code, sizeof pt->errors[i].code, "%s", code);
            pt->n_error_codes++;
        }
    }
    pt->errors[i].count++;
}

static void mismatch(runner_t *r, const req_t *q, long long id, int pos, int want, int got) {
    r->pt->check_mismatches++;
    if (r->mismatch_logs++ >= MAX_MISMATCH_LOGS) return;
    char msg[256];
    snprintf(msg, sizeof msg,
             "streams=%d stream %d request %lld prompt %d token %d: expected %d, got %d%s",
             (int)r->pt->streams, q->conn, id, q->prompt, pos, want, got,
             got < 0 ? " (stream ended)" : want < 0 ? " (baseline ended)" : "");
    if (r->cfg->progress > 0) fputs("\r\033[K", stderr);
    LANES_LOG(LANES_LOG_ERROR, "loadgen: check: mismatch at %s", msg);
}

/* Fails the run, quoting the start of the line with control bytes shown as \xNN. */
static void bad_line(runner_t *r, const char *why, const char *line, size_t n) {
    char snip[256];
    size_t o = (size_t)snprintf(snip, sizeof snip, "%s: ", why);
    for (size_t i = 0; i < n && o + 5 < sizeof snip; i++) {
        unsigned char ch = (unsigned char)line[i];
        if (ch < 0x20 || ch == 0x7f) o += (size_t)snprintf(snip + o, sizeof snip - o, "\\x%02x", ch);
        else snip[o++] = (char)ch;
    }
    snip[o] = '\0';
    fail(r, LANES_EPROTO, "loadgen: %s", snip);
}

typedef struct {
    runner_t *r;
    req_t *q;
    long long id;
} tok_ctx_t;

/* Token i of this event: recorded for the baseline or compared with it. */
static void on_token_id(void *arg, int i, long long v) {
    tok_ctx_t *t = arg;
    runner_t *r = t->r;
    req_t *q = t->q;
    int pos = q->ntok + i, p = q->prompt;
    if (r->baseline) {
        if (pos >= r->base_cap[p]) {
            int cap = r->base_cap[p] ? r->base_cap[p] * 2 : 256;
            int *nt = realloc(r->base_tok[p], (size_t)cap * sizeof *nt);
            if (!nt) {
                oom(r);
                return;
            }
            r->base_tok[p] = nt;
            r->base_cap[p] = cap;
        }
        r->base_tok[p][pos] = (int)v;
        r->base_len[p] = pos + 1;
    } else if (r->cfg->check && !q->reported) {
        int want = pos < r->base_len[p] ? r->base_tok[p][pos] : -1;
        if (want != v) {
            mismatch(r, q, t->id, pos, want, (int)v);
            q->reported = 1;                     /* one report per request */
        }
    }
}

/* An event that brought k tokens at time t: TTFT for the first, k gaps of g/k after that. */
static void record_tokens(runner_t *r, req_t *q, int k, uint64_t t) {
    if (k <= 0) return;
    if (q->ntok == 0) {
        q->t_first = t;
        lg_hist_record(r->ttft, (t - q->t_send + 500) / 1000);
    } else {
        uint64_t g = t - q->t_last;
        if (g > q->gap_max) q->gap_max = g;
        lg_hist_record_n(r->itl, g / (uint64_t)k / 1000, (uint64_t)k);
    }
    q->t_last = t;
    q->ntok += k;
    r->pt->tokens += k;
}

static void on_tokens(runner_t *r, long long id, req_t *q, lg_span_t toks, const char *line,
                      size_t n) {
    uint64_t t = now_ns();
    tok_ctx_t ctx = {r, q, id};
    int k = lg_span_ints(toks, on_token_id, &ctx);
    if (k < 0) {
        bad_line(r, "bad token list from server", line, n);
        return;
    }
    record_tokens(r, q, k, t);
}

/* usage.prompt_tokens of a done event, when there (the token events count the completion). */
static void usage_tokens(lg_span_t usage, req_t *q) {
    lg_scan_t it;
    lg_span_t k, v;
    long long n;
    if (usage.n == 0 || lg_scan_begin(&it, usage.p, usage.n) < 0) return;
    while (lg_scan_next(&it, &k, &v) == 1)
        if (lg_span_eq(k, "prompt_tokens") && lg_span_ll(v, &n) == LANES_OK) q->prompt_tokens = (int)n;
}

static void ms_or_null(FILE *f, const char *name, int known, uint64_t ns) {
    if (known) fprintf(f, ",\"%s\":%.3f", name, (double)ns / 1e6);
    else fprintf(f, ",\"%s\":null", name);
}

/* --save-detailed: one line per request of a sweep point. */
static void write_detail(runner_t *r, long long id, const req_t *q) {
    FILE *f = r->detail;
    if (!f || r->baseline) return;
    fprintf(f, "{\"point\":%d,\"streams\":%d,\"stream\":%d,\"request\":%lld,\"prompt\":%d", r->point_idx,
            (int)r->pt->streams, q->conn, id, q->prompt);
    if (q->prompt_tokens >= 0) fprintf(f, ",\"prompt_tokens\":%d", q->prompt_tokens);
    else fputs(",\"prompt_tokens\":null", f);
    fprintf(f, ",\"completion_tokens\":%d", q->ntok);
    ms_or_null(f, "ttft_ms", q->ntok > 0, q->t_first - q->t_send);
    ms_or_null(f, "tpot_ms", q->ntok > 1, q->ntok > 1 ? (q->t_last - q->t_first) / (uint64_t)(q->ntok - 1) : 0);
    ms_or_null(f, "itl_ms_max", q->ntok > 1, q->gap_max);
    ms_or_null(f, "e2e_ms", q->done, q->t_done - q->t_send);
    fputs(",\"finish_reason\":", f);
    lg_json_str_or_null(f, q->finish);
    fputs(",\"error\":", f);
    lg_json_str_or_null(f, q->done ? q->err : "unfinished");
    fputs("}\n", f);
}

/* The request's end: err_code NULL for success. Then its stream sends its next request. */
static void on_terminal(runner_t *r, long long id, req_t *q, const char *err_code) {
    uint64_t t = now_ns();
    lg_point_t *pt = r->pt;
    q->done = 1;
    q->t_done = t;
    r->inflight--;
    r->t_end = t;
    if (err_code) {
        snprintf(q->err, sizeof q->err, "%s", err_code);
        count_error(pt, err_code);
        if (r->baseline) fail(r, LANES_EIO, "loadgen: check: a baseline request failed: %s", err_code);
    } else {
        pt->requests_ok++;
        lg_hist_record(r->e2e, (t - q->t_send + 500) / 1000);
        if (q->ntok > 1) {
            uint64_t span = q->t_last - q->t_first;
            lg_hist_record(r->tpot, span / (uint64_t)(q->ntok - 1) / 1000);
            if (span > 0) {
                r->stream_rate_sum += (q->ntok - 1) / ((double)span / 1e9);
                r->n_stream_rate++;
            }
        }
        if (q->prompt_tokens >= 0) {
            pt->prompt_tokens += q->prompt_tokens;
            r->n_usage++;
        }
        if (strcmp(q->finish, "length") == 0) pt->finished_length++;
        else if (strcmp(q->finish, "stop") == 0) pt->finished_stop++;
        else pt->finished_other++;
        if (q->ntok < r->cfg->max_tokens) pt->short_requests++;
        int blen = r->cfg->check && !r->baseline ? r->base_len[q->prompt] : 0;
        if (r->cfg->check && !r->baseline && !q->reported && q->ntok != blen)
            mismatch(r, q, id, q->ntok < blen ? q->ntok : blen,
                     q->ntok < blen ? r->base_tok[q->prompt][q->ntok] : -1, -1);
    }
    write_detail(r, id, q);
    if (q->conn < 0 || q->conn >= r->n_conns) return;
    conn_t *c = &r->conns[q->conn];
    if (r->cfg->api == LG_API_OPENAI && r->cfg->mode == LG_MODE_OPEN) {
        if (r->n_backlog > 0 && c->cur == -1) {
            long long next = r->backlog[r->backlog_head++];
            if (--r->n_backlog == 0) r->backlog_head = 0;
            c->sent++;
            http_send(r, c, next);
        }
    } else {
        stream_next(r, c);
    }
}

static void copy_str(char *dst, size_t cap, const cJSON *v) {
    if (cJSON_IsString(v) && v->valuestring) snprintf(dst, cap, "%s", v->valuestring);
}

static void on_stats(runner_t *r, const cJSON *j) {
    lg_meta_t *m = r->meta;
    copy_str(m->model, sizeof m->model, cJSON_GetObjectItemCaseSensitive(j, "model"));
    copy_str(m->weight_type, sizeof m->weight_type, cJSON_GetObjectItemCaseSensitive(j, "weight_type"));
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "lanes_total");
    if (cJSON_IsNumber(v)) m->lanes_total = v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(j, "threads");
    if (cJSON_IsNumber(v)) m->threads = v->valuedouble;
    if (!r->stats_dst) return;
    lg_srv_stats_t *s = r->stats_dst;
#define LG_X_GET(name)                                                                            \
    v = cJSON_GetObjectItemCaseSensitive(j, #name);                                               \
    s->name = cJSON_IsNumber(v) ? v->valuedouble : 0.0;
    LG_STATS_MAP(LG_X_GET)
#undef LG_X_GET
    s->valid = 1;
    r->stats_dst = NULL;
}

/* The inside of a JSON string value (escapes left as they are), or an empty span. */
static lg_span_t unquote(lg_span_t v) {
    lg_span_t e = {"", 0};
    if (v.n < 2 || v.p[0] != '"') return e;
    e.p = v.p + 1;
    e.n = v.n - 2;
    return e;
}

static void span_copy(char *dst, size_t cap, lg_span_t sp) {
    size_t n = sp.n < cap - 1 ? sp.n : cap - 1;
    memcpy(dst, sp.p, n);
    dst[n] = '\0';
}

/* One reply line. Token and done events, the hot path, are read with the allocation-free scanner;
 * the rare stats reply goes through cJSON. */
static void handle_line(conn_t *c, const char *line, size_t n) {
    runner_t *r = c->r;
    if (n == 0 || r->fatal) return;
    lg_scan_t it;
    lg_span_t k, v, id = {NULL, 0}, event = {"", 0}, toks = {NULL, 0}, code = {"", 0},
                    usage = {NULL, 0}, legacy = {"", 0}, msg = {"", 0}, reason = {"", 0};
    int rc = lg_scan_begin(&it, line, n);
    while (rc >= 0 && (rc = lg_scan_next(&it, &k, &v)) == 1) {
        if (lg_span_eq(k, "id")) id = v;
        else if (lg_span_eq(k, "event")) event = unquote(v);
        else if (lg_span_eq(k, "tokens")) toks = v;
        else if (lg_span_eq(k, "usage")) usage = v;
        else if (lg_span_eq(k, "reason")) reason = unquote(v);
        else if (lg_span_eq(k, "code")) code = unquote(v);
        else if (lg_span_eq(k, "error")) legacy = unquote(v);   /* STYLE.md's {"error":"EBUSY"} */
        else if (lg_span_eq(k, "message")) msg = unquote(v);
    }
    if (rc < 0) {
        bad_line(r, "unreadable reply from server", line, n);
        return;
    }
    if (lg_span_eq(event, "stats")) {
        cJSON *j = cJSON_ParseWithLength(line, n);
        if (!j) bad_line(r, "unreadable stats from server", line, n);
        else on_stats(r, j);
        cJSON_Delete(j);
        return;
    }
    if (lg_span_eq(event, "health")) return;
    int is_err = lg_span_eq(event, "error") || (event.n == 0 && legacy.n > 0);
    long long rid = -1;
    if (id.n > 0 && lg_span_ll(id.p[0] == '"' ? unquote(id) : id, &rid) < 0) rid = -1;
    if (is_err && (id.n == 0 || lg_span_eq(id, "null"))) {   /* about no request: e.g. ECONNS */
        char s[200];
        snprintf(s, sizeof s, "%.*s: %.*s", (int)(code.n ? code.n : legacy.n),
                 code.n ? code.p : legacy.p, (int)msg.n, msg.p);
        fail(r, LANES_EIO, "loadgen: server error: %s", s);
        return;
    }
    if (rid < 0 || rid >= r->n_reqs || r->reqs[rid].done) {
        bad_line(r, "reply for no request of ours", line, n);
        return;
    }
    req_t *q = &r->reqs[rid];
    if (lg_span_eq(event, "token")) {
        on_tokens(r, rid, q, toks, line, n);
    } else if (lg_span_eq(event, "done")) {
        usage_tokens(usage, q);
        span_copy(q->finish, sizeof q->finish, reason);
        on_terminal(r, rid, q, NULL);
    } else if (is_err) {
        char cs[24];
        span_copy(cs, sizeof cs, code.n ? code : legacy.n ? legacy : (lg_span_t){"EUNKNOWN", 8});
        on_terminal(r, rid, q, cs);
    }
    /* Unknown events are skipped: the protocol may grow. */
}

/* ---- reading HTTP (--api openai) -------------------------------------------------------- */

/* One SSE line of request q's stream: "data: {chunk}" or "data: [DONE]"; others are skipped. */
static void sse_line(runner_t *r, req_t *q, const char *line, size_t n) {
    if (n > 0 && line[n - 1] == '\r') n--;
    if (n < 5 || memcmp(line, "data:", 5) != 0) return;   /* event:, id:, : comments, blank */
    line += 5;
    n -= 5;
    if (n > 0 && *line == ' ') {
        line++;
        n--;
    }
    if (n == 6 && memcmp(line, "[DONE]", 6) == 0) {
        q->saw_done = 1;
        return;
    }
    lg_openai_chunk_t ch;
    if (lg_openai_chunk(line, n, &ch) < 0) {
        bad_line(r, "unreadable SSE chunk from server", line, n);
        return;
    }
    if (ch.has_text) record_tokens(r, q, 1, now_ns());
    if (ch.finish[0]) snprintf(q->finish, sizeof q->finish, "%s", ch.finish);
    if (ch.prompt_tokens >= 0) q->prompt_tokens = (int)ch.prompt_tokens;
    if (ch.completion_tokens >= 0) q->completion_tokens = (int)ch.completion_tokens;
    if (ch.error[0]) {
        snprintf(q->err, sizeof q->err, "ESTREAM");
        if (r->http_err_logs++ == 0)
            LANES_LOG(LANES_LOG_WARN, "loadgen: error in a stream from the server: %s", ch.error);
    }
}

/* Consumes the complete lines of c's body (and the rest too at the response's end). */
static void sse_lines(runner_t *r, conn_t *c, int at_end) {
    req_t *q = &r->reqs[c->cur];
    size_t start = 0;
    char *nl;
    while (!r->fatal && (nl = memchr(c->body + start, '\n', c->blen - start)) != NULL) {
        size_t end = (size_t)(nl - c->body);
        sse_line(r, q, c->body + start, end - start);
        start = end + 1;
    }
    if (at_end && start < c->blen && !r->fatal) {
        sse_line(r, q, c->body + start, c->blen - start);
        start = c->blen;
    }
    memmove(c->body, c->body + start, c->blen - start);
    c->blen -= start;
}

static void http_on_head(void *arg, int status) {
    conn_t *c = arg;
    c->status = status;
    c->blen = 0;
}

static void http_on_body(void *arg, const char *p, size_t n) {
    conn_t *c = arg;
    runner_t *r = c->r;
    if (c->cur == -1 || r->fatal) return;        /* a body after the request ended: skip it */
    if (c->blen + n > MAX_LINE) {
        fail(r, LANES_EPROTO, "loadgen: %s", "HTTP body or SSE line too long");
        return;
    }
    if (c->blen + n + 1 > c->bcap) {
        size_t cap = c->bcap ? c->bcap : 65536;
        while (cap < c->blen + n + 1) cap *= 2;
        char *b = realloc(c->body, cap);
        if (!b) {
            oom(r);
            return;
        }
        c->body = b;
        c->bcap = cap;
    }
    memcpy(c->body + c->blen, p, n);
    c->blen += n;
    if (c->cur >= 0 && c->status == 200) sse_lines(r, c, 0);
}

/* The stats connection's GET answered: /v1/models or /metrics. */
static void http_stats_reply(runner_t *r, conn_t *c) {
    r->get_pending = 0;
    if (strcmp(r->get_path, "/v1/models") == 0) {
        lg_meta_t *m = r->meta;
        int rc = c->status == 200 ? lg_openai_first_model(c->body, c->blen, m->model, sizeof m->model)
                                  : LANES_ENOENT;
        if (rc < 0 || !m->model[0]) {
            char s[64];
            snprintf(s, sizeof s, "%d", c->status);
            fail(r, LANES_EPROTO, "loadgen: GET /v1/models (HTTP %s) named no model: give --model NAME", s);
        }
        return;
    }
    lg_srv_stats_t *dst = r->stats_dst;
    r->stats_dst = NULL;
    if (!dst) return;
    if (c->status == 200) lg_openai_metrics(c->body, c->blen, dst);
    if (!dst->valid) {
        r->no_metrics = 1;
        LANES_LOG(LANES_LOG_INFO, "loadgen: the server's GET /metrics %s: no server token counts",
                  c->status == 200 ? "has no generation token counter" : "is not there");
        return;
    }
    if (dst->lanes_total > 0) r->meta->lanes_total = dst->lanes_total;
}

/* One completion's response ended: its fate from the status, the stream and [DONE]. */
static void http_finish(runner_t *r, conn_t *c, long long id) {
    req_t *q = &r->reqs[id];
    char code[24] = "";
    if (c->status != 200) {
        snprintf(code, sizeof code, "HTTP_%d", c->status);
        if (r->http_err_logs++ == 0) {
            lg_openai_chunk_t ch;
            if (lg_openai_chunk(c->body, c->blen, &ch) < 0 || !ch.error[0])
                snprintf(ch.error, sizeof ch.error, "(no OpenAI error body)");
            char s[256];
            snprintf(s, sizeof s, "%s: %s", code, ch.error);
            LANES_LOG(LANES_LOG_WARN, "loadgen: the server answered %s", s);
        }
    } else if (q->err[0]) {
        snprintf(code, sizeof code, "%s", q->err);
    } else if (!q->saw_done && !q->finish[0]) {
        snprintf(code, sizeof code, "ETRUNCATED");
    }
    /* The usage chunk's count wins: a chunk may carry several tokens. */
    if (!code[0] && q->completion_tokens >= 0 && q->completion_tokens != q->ntok) {
        r->pt->tokens += q->completion_tokens - q->ntok;
        q->ntok = q->completion_tokens;
    }
    on_terminal(r, id, q, code[0] ? code : NULL);
}

static void http_on_end(void *arg) {
    conn_t *c = arg;
    runner_t *r = c->r;
    long long id = c->cur;
    if (!c->http->keep_alive) conn_shut(c, 0);  /* first: the next request reconnects */
    if (id == -1 || r->fatal) return;
    c->cur = -1;
    if (id == STATS_REQ) {
        http_stats_reply(r, c);
    } else {
        if (c->status == 200) sse_lines(r, c, 1);
        if (!r->fatal) http_finish(r, c, id);
    }
}

static void http_read(conn_t *c, ssize_t nread) {
    runner_t *r = c->r;
    lg_http_cb_t cb = {http_on_head, http_on_body, http_on_end, c};
    if (nread >= 0) {
        if (nread > 0) c->got_bytes = 1;
        if (lg_http_feed(c->http, c->buf, (size_t)nread, &cb) < 0)
            fail(r, LANES_EPROTO, "loadgen: bad HTTP response from server: %s", c->http->err);
        return;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->connected = 0;
    if (nread != UV_EOF) {
        fail(r, LANES_EIO, "loadgen: server closed the connection: %s", uv_strerror((int)nread));
    } else if (!lg_http_idle(c->http)) {         /* the end of a close-delimited body, or a cut */
        if (lg_http_eof(c->http, &cb) < 0)
            fail(r, LANES_EIO, "loadgen: server closed the connection: %s", c->http->err);
        else if (!uv_is_closing((uv_handle_t *)&c->tcp))
            conn_shut(c, 0);
    } else if (c->cur == -1) {                   /* an idle connection closed: reconnect on use */
        conn_shut(c, 0);
    } else if (!c->got_bytes && !c->resent) {
        c->resent = 1;                           /* closed as our request went out: once more */
        conn_shut(c, 1);
    } else {
        fail(r, LANES_EIO, "loadgen: server closed the connection: %s", "end of stream");
    }
}

/* ---- connections ------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
    (void)suggested;
    conn_t *c = h->data;
    if (c->cap - c->len < 16384) {
        size_t cap = c->cap ? c->cap * 2 : 65536;
        char *nb = realloc(c->buf, cap);
        if (!nb) {
            *b = uv_buf_init(NULL, 0);           /* libuv reports UV_ENOBUFS */
            return;
        }
        c->buf = nb;
        c->cap = cap;
    }
    *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
    (void)b;
    conn_t *c = s->data;
    runner_t *r = c->r;
    if (nread > 0) r->last_rx = now_ns();
    if (c->http) {                               /* the HTTP decoder keeps its own partial state */
        http_read(c, nread);
        return;
    }
    if (nread < 0) {
        uv_read_stop(s);
        c->connected = 0;
        fail(r, LANES_EIO, "loadgen: server closed the connection: %s",
             nread == UV_EOF ? "end of stream" : uv_strerror((int)nread));
        return;
    }
    c->len += (size_t)nread;
    size_t start = 0;
    char *nl;
    while (start < c->len && (nl = memchr(c->buf + start, '\n', c->len - start)) != NULL) {
        size_t end = (size_t)(nl - c->buf);
        handle_line(c, c->buf + start, end - start);
        start = end + 1;
    }
    if (start > 0) {
        memmove(c->buf, c->buf + start, c->len - start);
        c->len -= start;
    }
    if (c->len > MAX_LINE) fail(r, LANES_EPROTO, "loadgen: %s", "reply line too long");
}

static void on_connect(uv_connect_t *req, int status) {
    conn_t *c = req->data;
    runner_t *r = c->r;
    if (status == UV_ECANCELED || uv_is_closing((uv_handle_t *)&c->tcp)) return;
    if (status < 0) {
        char msg[300];
        char host[128];
        snprintf(host, sizeof host, "%s", r->cfg->host);
        snprintf(msg, sizeof msg, "%s:%d: %s", host, r->cfg->port, uv_strerror(status));
        fail(r, LANES_EIO, "loadgen: cannot connect to %s (is the server running?)", msg);
        return;
    }
    r->last_rx = now_ns();
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        fail(r, LANES_EIO, "loadgen: read start failed: %s", uv_strerror(rc));
        return;
    }
    c->connected = 1;
    if (c->http && c->cur != -1) http_write_cur(r, c);   /* it waited for this connection */
}

static int conn_open(runner_t *r, conn_t *c);

static void on_close(uv_handle_t *h) {
    conn_t *c = h->data;
    runner_t *r = c->r;
    c->open = 0;
    c->connected = 0;
    r->n_open--;
    if (c->reopen && !r->fatal) {
        c->reopen = 0;
        conn_open(r, c);
    }
}

/* Zeroes c for stream idx; --api openai gets its HTTP decoder. */
static int conn_init(runner_t *r, conn_t *c, int idx) {
    memset(c, 0, sizeof *c);
    c->r = r;
    c->idx = idx;
    c->cur = -1;
    if (r->cfg->api == LG_API_OPENAI && !(c->http = malloc(sizeof *c->http))) return LANES_ENOMEM;
    return LANES_OK;
}

/* Frees what conn_init and the reads allocated; the handle is closed. */
static void conn_fini(conn_t *c) {
    free(c->buf);
    free(c->body);
    free(c->http);
    c->buf = c->body = NULL;
    c->http = NULL;
}

/* Starts connecting c's handle (again). */
static int conn_open(runner_t *r, conn_t *c) {
    c->len = 0;
    c->blen = 0;
    if (c->http) lg_http_init(c->http);
    int rc = uv_tcp_init(&r->loop, &c->tcp);
    if (rc < 0) {
        fail(r, LANES_EIO, "loadgen: cannot make a socket: %s", uv_strerror(rc));
        return LANES_EIO;
    }
    c->tcp.data = c;
    c->creq.data = c;
    c->open = 1;
    r->n_open++;
    rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&r->addr, on_connect);
    if (rc < 0) {
        fail(r, LANES_EIO, "loadgen: cannot connect: %s", uv_strerror(rc));
        return LANES_EIO;
    }
    return LANES_OK;
}

/* Closes c's handle; reopen connects it again once the close is done (HTTP reconnects). */
static void conn_shut(conn_t *c, int reopen) {
    c->connected = 0;
    c->reopen = reopen;
    if (c->open && !uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void conn_close(conn_t *c) { conn_shut(c, 0); }

/* HTTP: a request waits on c, which the server closed: connect again (after the close ends). */
static void conn_ensure(runner_t *r, conn_t *c) {
    if (!c->open) conn_open(r, c);
    else if (uv_is_closing((uv_handle_t *)&c->tcp)) c->reopen = 1;
}

static int all_connected(const runner_t *r) {
    for (int i = 0; i < r->n_conns; i++)
        if (!r->conns[i].connected) return 0;
    return 1;
}

/* A connect is under way: the server owes us its accept. */
static int connecting(const runner_t *r) {
    if (r->stats->open && !r->stats->connected) return 1;
    for (int i = 0; i < r->n_conns; i++)
        if (r->conns[i].open && !r->conns[i].connected) return 1;
    return 0;
}

/* ---- timers ----------------------------------------------------------------------------- */

/* Fails the run when the server owes us something (a reply, a connect) and sends nothing for
 * cfg->timeout_s. Idle gaps between open-loop arrivals do not count. */
static void on_watchdog(uv_timer_t *t) {
    runner_t *r = t->data;
    if (!r->waiting || r->cfg->timeout_s <= 0) return;
    if (r->inflight == 0 && r->stats_dst == NULL && !r->get_pending && !connecting(r)) {
        r->last_rx = now_ns();
        return;
    }
    if ((double)(now_ns() - r->last_rx) > r->cfg->timeout_s * 1e9) {
        char s[64];
        snprintf(s, sizeof s, "%g", r->cfg->timeout_s);
        fail(r, LANES_EIO, "loadgen: no reply from the server for %s s", s);
    }
}

static void on_progress(uv_timer_t *t) {
    runner_t *r = t->data;
    if (!r->pt || !r->t_start) return;
    double el = (double)(now_ns() - r->t_start) / 1e9;
    char tgt[32] = "";
    if (r->target >= 0) snprintf(tgt, sizeof tgt, "/%lld", r->target);
    fprintf(stderr, "\r\033[K%s %d streams: %lld%s requests done, %lld in flight, %.0f tok/s, %.1f s",
            r->baseline ? "baseline," : "running", (int)r->pt->streams,
            (long long)(r->pt->requests_ok + r->pt->requests_err), tgt, r->inflight,
            el > 0 ? r->pt->tokens / el : 0.0, el);
    fflush(stderr);
}

static void on_sigint(uv_signal_t *s, int sig) {
    (void)sig;
    runner_t *r = s->data;
    uv_signal_stop(s);                           /* a second Ctrl-C gets the default: quit now */
    fail(r, LANES_ECANCELED, "loadgen: %s",
         "interrupted: writing the points so far (Ctrl-C again quits at once)");
}

static double exp_gap_ns(runner_t *r) {
    r->rng ^= r->rng >> 12;                      /* xorshift64* */
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    double u = (double)((r->rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
    return -log(1.0 - u) / r->cfg->rate * 1e9;
}

/* Open loop: sends every arrival that is due, round robin over the pool (over HTTP: to an idle
 * connection, else the backlog), then sleeps until the next one. */
static void on_arrival(uv_timer_t *t) {
    runner_t *r = t->data;
    uint64_t now = now_ns();
    while (r->issuing && !r->fatal && r->t_start + (uint64_t)r->next_arrival_ns <= now) {
        if ((r->target >= 0 && r->n_reqs >= r->target) || (r->deadline && now >= r->deadline)) {
            r->issuing = 0;
            break;
        }
        int prompt = (int)(r->n_reqs % r->prompts.n);
        if (r->cfg->api == LG_API_OPENAI) {
            long long id = new_req(r, -1, prompt);
            if (id >= 0) dispatch(r, id);
        } else {
            issue(r, &r->conns[r->rr++ % r->n_conns], prompt);
        }
        r->next_arrival_ns += exp_gap_ns(r);
    }
    if (r->issuing && !r->fatal) {
        double wait_ns = (double)r->t_start + r->next_arrival_ns - (double)now;
        uv_timer_start(t, on_arrival, wait_ns > 0 ? (uint64_t)(wait_ns / 1e6) + 1 : 0, 0);
    }
}

/* ---- points ----------------------------------------------------------------------------- */

/* GET path on the stats connection (openai), answered in http_stats_reply. */
static void http_get(runner_t *r, const char *path) {
    r->get_path = path;
    r->get_pending = 1;
    http_send(r, r->stats, STATS_REQ);
    WAIT_UNTIL(r, !r->get_pending);
}

static void ask_stats(runner_t *r, lg_srv_stats_t *dst) {
    static const char line[] = "{\"op\":\"stats\"}\n";
    memset(dst, 0, sizeof *dst);
    if (r->fatal) return;
    r->stats_dst = dst;
    if (r->cfg->api == LG_API_OPENAI) {
        if (!r->no_metrics) http_get(r, "/metrics");
    } else if (r->stats->connected && conn_write(r->stats, line, sizeof line - 1) == LANES_OK) {
        WAIT_UNTIL(r, r->stats_dst == NULL);
    }
    r->stats_dst = NULL;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double ms(double us) { return round(us) / 1000.0; }

/* Runs one point of `streams` connections; fills pt even when the run fails midway. */
static void run_point(runner_t *r, int streams, lg_point_t *pt, int baseline) {
    const lg_cfg_t *cfg = r->cfg;
    memset(pt, 0, sizeof *pt);
    pt->streams = streams;
    pt->rate = cfg->mode == LG_MODE_OPEN && !baseline ? cfg->rate : 0;
    r->pt = pt;
    r->baseline = baseline;
    r->has_temperature = cfg->check || cfg->has_temperature;
    r->temperature = cfg->check ? 0.0 : cfg->temperature;
    r->n_reqs = 0;
    r->inflight = 0;
    r->n_backlog = r->backlog_head = 0;
    r->mismatch_logs = r->http_err_logs = 0;
    r->n_usage = r->n_stream_rate = 0;
    r->stream_rate_sum = 0;
    r->rr = 0;
    r->t_start = r->t_end = r->deadline = 0;
    lg_hist_reset(r->ttft);
    lg_hist_reset(r->itl);
    lg_hist_reset(r->tpot);
    lg_hist_reset(r->e2e);

    if (!baseline) ask_stats(r, &pt->before);

    r->conns = calloc((size_t)streams, sizeof *r->conns);
    if (!r->conns) {
        oom(r);
        return;
    }
    r->n_conns = streams;
    for (int i = 0; i < streams && !r->fatal; i++) {
        if (conn_init(r, &r->conns[i], i) < 0) oom(r);
        else conn_open(r, &r->conns[i]);
    }
    WAIT_UNTIL(r, all_connected(r));

    double cpu0 = cpu_s();
    r->t_start = now_ns();
    r->issuing = 1;
    if (baseline) r->target = r->prompts.n;
    else r->target = cfg->requests > 0 ? (long long)cfg->requests * streams : -1;
    if (!baseline && cfg->duration_s > 0) r->deadline = r->t_start + (uint64_t)(cfg->duration_s * 1e9);

    if (!r->fatal) {
        if (cfg->mode == LG_MODE_OPEN && !baseline) {
            r->next_arrival_ns = 0;
            uv_timer_start(&r->arrivals, on_arrival, 0, 0);
        } else {
            for (int i = 0; i < streams; i++) stream_next(r, &r->conns[i]);
        }
        if (cfg->progress > 0) uv_timer_start(&r->progress, on_progress, 250, 250);
        WAIT_UNTIL(r, r->inflight == 0 &&
                          (!r->issuing || (r->target >= 0 && r->n_reqs >= r->target)));
        r->issuing = 0;
        uv_timer_stop(&r->arrivals);
        uv_timer_stop(&r->progress);
        if (cfg->progress > 0) fputs("\r\033[K", stderr);
    }
    double wall = (double)((r->t_end > r->t_start ? r->t_end : now_ns()) - r->t_start) / 1e9;
    pt->client_cpu_pct = wall > 0 ? round((cpu_s() - cpu0) / wall * 1000.0) / 10.0 : 0;
    pt->complete = !r->fatal && r->inflight == 0;
    for (long long i = 0; i < r->n_reqs; i++)    /* cut short: the unfinished ones too */
        if (!r->reqs[i].done) write_detail(r, i, &r->reqs[i]);

    if (!baseline) ask_stats(r, &pt->after);

    /* Closing always finishes, failure or not; the stats connection stays open. */
    for (int i = 0; i < streams; i++) conn_close(&r->conns[i]);
    while (r->n_open > (r->stats->open ? 1 : 0)) uv_run(&r->loop, UV_RUN_ONCE);
    for (int i = 0; i < streams; i++) conn_fini(&r->conns[i]);
    free(r->conns);
    r->conns = NULL;
    r->n_conns = 0;

    pt->elapsed_s = round(wall * 1e6) / 1e6;
    pt->tok_s = wall > 0 ? round(pt->tokens / wall * 100) / 100 : 0;
    pt->req_s = wall > 0 ? round(pt->requests_ok / wall * 1000) / 1000 : 0;
    pt->ttft_ms_mean = ms(lg_hist_mean(r->ttft));
    pt->ttft_ms_p50 = ms(lg_hist_percentile(r->ttft, 50));
    pt->ttft_ms_p90 = ms(lg_hist_percentile(r->ttft, 90));
    pt->ttft_ms_p99 = ms(lg_hist_percentile(r->ttft, 99));
    pt->itl_ms_mean = ms(lg_hist_mean(r->itl));
    pt->itl_ms_p50 = ms(lg_hist_percentile(r->itl, 50));
    pt->itl_ms_p90 = ms(lg_hist_percentile(r->itl, 90));
    pt->itl_ms_p99 = ms(lg_hist_percentile(r->itl, 99));
    pt->tpot_ms_mean = ms(lg_hist_mean(r->tpot));
    pt->tpot_ms_p50 = ms(lg_hist_percentile(r->tpot, 50));
    pt->tpot_ms_p99 = ms(lg_hist_percentile(r->tpot, 99));
    pt->e2e_ms_mean = ms(lg_hist_mean(r->e2e));
    pt->e2e_ms_p50 = ms(lg_hist_percentile(r->e2e, 50));
    pt->e2e_ms_p99 = ms(lg_hist_percentile(r->e2e, 99));
    pt->prompt_tokens_mean = r->n_usage ? round(pt->prompt_tokens / (double)r->n_usage * 100) / 100 : 0;
    pt->stream_tok_s = r->n_stream_rate ? round(r->stream_rate_sum / (double)r->n_stream_rate * 100) / 100 : 0;
    if (pt->before.valid && pt->after.valid) {
        pt->server_tokens = pt->after.tokens_generated - pt->before.tokens_generated;
        pt->server_steps = pt->after.steps - pt->before.steps;
    }
    int n = cfg->input_len;
    if (n > 0 && !baseline && r->n_usage > 0 && pt->prompt_tokens_mean != n && pt->prompt_tokens_mean != n + 1) {
        char s[160];
        snprintf(s, sizeof s, "%d words came out as %.2f prompt tokens per request (expected %d, or %d "
                 "with BOS)", n, pt->prompt_tokens_mean, n, n + 1);
        LANES_LOG(LANES_LOG_WARN, "loadgen: --input-len: %s: this model's tokenizer splits them differently", s);
    }
}

static int resolve(runner_t *r) {
    const lg_cfg_t *cfg = r->cfg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    uv_getaddrinfo_t gai;
    int rc = uv_getaddrinfo(&r->loop, &gai, NULL, cfg->host, port, &hints);   /* synchronous */
    if (rc < 0) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: cannot resolve %s: %s", cfg->host, uv_strerror(rc));
        return LANES_EIO;
    }
    /* Prefer IPv4: "localhost" often resolves to ::1 first while the server binds 127.0.0.1. */
    const struct addrinfo *pick = gai.addrinfo;
    for (const struct addrinfo *a = gai.addrinfo; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            pick = a;
            break;
        }
    memcpy(&r->addr, pick->ai_addr, pick->ai_addrlen);
    uv_freeaddrinfo(gai.addrinfo);
    return LANES_OK;
}

/* This machine and the run's start, for the JSON's metadata. */
static void meta_local(lg_meta_t *m) {
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        colon++;
        while (*colon == ' ' || *colon == '\t') colon++;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(m->cpu, sizeof m->cpu, "%s", colon);
        break;
    }
    if (f) fclose(f);
}

/* --api openai: the model every request names, from --model or GET /v1/models. */
static int pick_model(runner_t *r) {
    if (r->cfg->model) snprintf(r->meta->model, sizeof r->meta->model, "%s", r->cfg->model);
    else http_get(r, "/v1/models");
    if (r->fatal) return r->fatal;
    size_t n;
    if (r->cfg->model) r->model_esc = lg_json_escape(r->cfg->model, strlen(r->cfg->model), &n);
    else r->model_esc = strdup(r->meta->model);  /* as the list sent it: escaped already */
    return r->model_esc ? LANES_OK : LANES_ENOMEM;
}

static void on_handle_close(uv_handle_t *h) { ((runner_t *)h->data)->handles_open--; }

int lg_run(const lg_cfg_t *cfg, lg_point_t *points, int *n_done, lg_meta_t *meta, lg_point_cb cb,
           void *arg) {
    runner_t *r = calloc(1, sizeof *r);
    *n_done = 0;
    memset(meta, 0, sizeof *meta);
    meta->lanes_total = meta->threads = -1;
    meta_local(meta);
    if (!r) return LANES_ENOMEM;
    r->cfg = cfg;
    r->meta = meta;
    r->rng = 0x9E3779B97F4A7C15ull ^ (cfg->has_seed ? cfg->seed : 0);
    int rc = uv_loop_init(&r->loop);
    if (rc < 0) {
        free(r);
        return LANES_EIO;
    }
    uv_handle_t *handles[] = {(uv_handle_t *)&r->watchdog, (uv_handle_t *)&r->progress,
                              (uv_handle_t *)&r->arrivals, (uv_handle_t *)&r->sigint};
    uv_timer_init(&r->loop, &r->watchdog);
    uv_timer_init(&r->loop, &r->progress);
    uv_timer_init(&r->loop, &r->arrivals);
    int n_handles = 3;
    if ((rc = uv_signal_init(&r->loop, &r->sigint)) == 0) {
        n_handles = 4;
        rc = uv_signal_start(&r->sigint, on_sigint, SIGINT);
    }
    if (rc < 0)
        LANES_LOG(LANES_LOG_WARN, "loadgen: cannot catch SIGINT (%s): Ctrl-C writes nothing", uv_strerror(rc));
    for (int i = 0; i < n_handles; i++) {
        handles[i]->data = r;
        r->handles_open++;
    }
    uv_timer_start(&r->watchdog, on_watchdog, 200, 200);
    r->ttft = lg_hist_create();
    r->itl = lg_hist_create();
    r->tpot = lg_hist_create();
    r->e2e = lg_hist_create();
    r->stats = calloc(1, sizeof *r->stats);
    if (!r->ttft || !r->itl || !r->tpot || !r->e2e || !r->stats || conn_init(r, r->stats, -1) < 0) {
        rc = LANES_ENOMEM;
        goto out;
    }
    rc = cfg->input_len > 0 ? lg_prompts_words(&r->prompts, cfg->input_len)
                            : lg_prompts_load(&r->prompts, cfg->prompts_path);
    if (rc < 0) goto out;
    if ((rc = resolve(r)) < 0) goto out;
    if (cfg->detailed_path && !(r->detail = fopen(cfg->detailed_path, "w"))) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: cannot write %s: %s", cfg->detailed_path, strerror(errno));
        rc = LANES_EIO;
        goto out;
    }

    conn_open(r, r->stats);
    WAIT_UNTIL(r, r->stats->connected);
    if (cfg->api == LG_API_OPENAI && !r->fatal && (rc = pick_model(r)) < 0 && !r->fatal) goto out;

    if (cfg->check && !r->fatal) {
        int n = r->prompts.n;
        r->base_tok = calloc((size_t)n, sizeof *r->base_tok);
        r->base_len = calloc((size_t)n, sizeof *r->base_len);
        r->base_cap = calloc((size_t)n, sizeof *r->base_cap);
        if (!r->base_tok || !r->base_len || !r->base_cap) {
            rc = LANES_ENOMEM;
            goto out;
        }
        lg_point_t bp;
        run_point(r, 1, &bp, 1);
        if (!r->fatal)
            LANES_LOG(LANES_LOG_INFO, "loadgen: check: greedy baseline of %d prompts taken (%.0f tokens)",
                      n, bp.tokens);
    }

    for (int i = 0; i < cfg->n_points && !r->fatal; i++) {
        r->point_idx = i;
        run_point(r, cfg->streams[i], &points[i], 0);
        *n_done = i + 1;
        if (r->detail) fflush(r->detail);
        if (cb) cb(&points[i], arg);
    }
    rc = r->fatal ? r->fatal : LANES_OK;

out:
    if (r->stats && r->stats->open) conn_close(r->stats);
    for (int i = 0; i < n_handles; i++) uv_close(handles[i], on_handle_close);
    r->fatal = LANES_ECANCELED;                  /* no reconnects while closing */
    while (r->n_open > 0 || r->handles_open > 0) uv_run(&r->loop, UV_RUN_ONCE);
    uv_run(&r->loop, UV_RUN_NOWAIT);             /* pending write callbacks */
    if (uv_loop_close(&r->loop) != 0) LANES_LOG(LANES_LOG_WARN, "loadgen: %s", "loop not empty at exit");
    if (r->detail && (ferror(r->detail) | fclose(r->detail))) {
        LANES_LOG(LANES_LOG_ERROR, "loadgen: cannot write %s", cfg->detailed_path);
        if (rc == LANES_OK) rc = LANES_EIO;
    }
    if (r->base_tok)
        for (int i = 0; i < r->prompts.n; i++) free(r->base_tok[i]);
    free(r->base_tok);
    free(r->base_len);
    free(r->base_cap);
    free(r->reqs);
    free(r->backlog);
    free(r->model_esc);
    if (r->stats) conn_fini(r->stats);
    free(r->stats);
    lg_hist_destroy(r->ttft);
    lg_hist_destroy(r->itl);
    lg_hist_destroy(r->tpot);
    lg_hist_destroy(r->e2e);
    lg_prompts_fini(&r->prompts);
    free(r);
    return rc;
}
