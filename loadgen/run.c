/* The sweep driver: one libuv loop, no threads. Each point opens its stream connections, keeps them
 * busy (closed loop) or feeds them Poisson arrivals (open loop), and reads replies line by line.
 * The code reads as sequential steps: WAIT_UNTIL() turns the loop until a condition holds, the
 * connection fails or the server goes quiet for cfg->timeout_s. */
#include "loadgen.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "hist.h"
#include "prompts.h"
#include "scan.h"

#define MAX_LINE (16u << 20)                     /* a reply line longer than this is an error */
#define MAX_MISMATCH_LOGS 10

typedef struct runner runner_t;

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t creq;
    runner_t *r;
    int idx;                                     /* stream index; -1 for the stats connection */
    int connected, open;                         /* open: handle not yet closed */
    char *buf;                                   /* owned: unread bytes (a partial line) */
    size_t len, cap;
    long long sent;                              /* requests sent on it in this point */
} conn_t;

typedef struct {
    uint64_t t_send, t_first, t_last;            /* uv_hrtime ns */
    int conn, prompt, ntok;                      /* stream index, prompt index, tokens so far */
    int done;                                    /* terminal event read */
    int reported;                                /* --check: a mismatch was logged already */
} req_t;

typedef struct {
    uv_write_t w;
    char data[];
} wbuf_t;

struct runner {
    uv_loop_t loop;
    const lg_cfg_t *cfg;
    lg_prompts_t prompts;
    struct sockaddr_storage addr;
    uv_timer_t watchdog, progress, arrivals;
    int timers_open;

    conn_t *stats;                               /* owned */
    conn_t *conns;                               /* owned: this point's streams */
    int n_conns, n_open;                         /* n_open counts handles not yet closed */

    /* This point. Request ids are indexes into reqs. */
    req_t *reqs;                                 /* owned; grows by doubling */
    long long n_reqs, cap_reqs, inflight, target; /* target: requests to send; -1 = until deadline */
    int issuing;                                 /* may still send */
    int baseline;                                /* record tokens instead of checking */
    double temperature;
    int has_temperature;
    uint64_t t_start, t_end, deadline;
    double next_arrival_ns;                      /* open loop, from t_start */
    uint64_t rng;
    int rr;
    lg_hist_t *ttft, *itl, *tpot, *e2e;
    lg_point_t *pt;
    int mismatch_logs;

    /* --check: baseline tokens per prompt. */
    int **base_tok;                              /* owned */
    int *base_len, *base_cap;                    /* owned */

    lg_srv_stats_t *stats_dst;                   /* non-NULL while a stats reply is due */
    uint64_t last_rx;                            /* last byte or connect, for the watchdog */
    int waiting;
    int fatal;                                   /* LANES_EIO/EPROTO once the run must stop */
};

static uint64_t now_ns(void) { return uv_hrtime(); }

static void fail(runner_t *r, int code, const char *fmt, const char *detail) {
    if (r->fatal) return;
    r->fatal = code;
    if (r->cfg->progress) fputs("\r\033[K", stderr);
    LANES_LOG(LANES_LOG_ERROR, fmt, detail);
}

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

static int send_generate(runner_t *r, conn_t *c, int prompt) {
    if (r->n_reqs == r->cap_reqs) {
        long long cap = r->cap_reqs ? r->cap_reqs * 2 : 1024;
        req_t *q = realloc(r->reqs, (size_t)cap * sizeof *q);
        if (!q) return LANES_ENOMEM;
        r->reqs = q;
        r->cap_reqs = cap;
    }
    long long id = r->n_reqs++;
    req_t *q = &r->reqs[id];
    memset(q, 0, sizeof *q);
    q->conn = c->idx;
    q->prompt = prompt;
    q->t_send = now_ns();

    const lg_cfg_t *cfg = r->cfg;
    size_t plen = r->prompts.len[prompt];
    char head[64], tail[192];
    int hn = snprintf(head, sizeof head, "{\"id\":%lld,\"prompt\":\"", id);
    int tn = snprintf(tail, sizeof tail, "\",\"max_tokens\":%d", cfg->max_tokens);
    if (r->has_temperature)
        tn += snprintf(tail + tn, sizeof tail - (size_t)tn, ",\"temperature\":%.9g", r->temperature);
    if (cfg->has_seed && !r->baseline)
        tn += snprintf(tail + tn, sizeof tail - (size_t)tn, ",\"seed\":%llu",
                       cfg->seed + (unsigned long long)id);
    tn += snprintf(tail + tn, sizeof tail - (size_t)tn, "}\n");

    size_t n = (size_t)hn + plen + (size_t)tn;
    wbuf_t *b = malloc(sizeof *b + n);
    if (!b) return LANES_ENOMEM;
    memcpy(b->data, head, (size_t)hn);
    memcpy(b->data + hn, r->prompts.esc[prompt], plen);
    memcpy(b->data + hn + plen, tail, (size_t)tn);
    uv_buf_t ub = uv_buf_init(b->data, (unsigned)n);
    int rc = uv_write(&b->w, (uv_stream_t *)&c->tcp, &ub, 1, on_write);
    if (rc < 0) {
        free(b);
        fail(r, LANES_EIO, "loadgen: write to server failed: %s", uv_strerror(rc));
        return LANES_EIO;
    }
    c->sent++;
    r->inflight++;
    r->pt->requests_sent++;
    return LANES_OK;
}

/* Closed loop: the stream sends its next request, if its quota and the clock allow. */
static void stream_next(runner_t *r, conn_t *c) {
    if (!r->issuing || r->fatal || r->cfg->mode == LG_MODE_OPEN) return;
    if (r->deadline && now_ns() >= r->deadline) {
        r->issuing = 0;
        return;
    }
    if (r->target >= 0 && c->sent >= r->target / r->n_conns) return;
    int prompt = r->baseline ? (int)r->n_reqs : (int)(r->n_reqs % r->prompts.n);
    if (send_generate(r, c, prompt) < 0 && !r->fatal) fail(r, LANES_ENOMEM, "loadgen: %s", "out of memory");
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
    if (r->cfg->progress) fputs("\r\033[K", stderr);
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
                fail(r, LANES_ENOMEM, "loadgen: %s", "out of memory");
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

static void on_tokens(runner_t *r, long long id, req_t *q, lg_span_t toks, const char *line,
                      size_t n) {
    uint64_t t = now_ns();
    tok_ctx_t ctx = {r, q, id};
    int k = lg_span_ints(toks, on_token_id, &ctx);
    if (k < 0) {
        bad_line(r, "bad token list from server", line, n);
        return;
    }
    if (k == 0) return;
    if (q->ntok == 0) {
        q->t_first = t;
        lg_hist_record(r->ttft, (t - q->t_send + 500) / 1000);
    } else {
        lg_hist_record_n(r->itl, (t - q->t_last) / (uint64_t)k / 1000, (uint64_t)k);
    }
    q->t_last = t;
    q->ntok += k;
    r->pt->tokens += k;
}

/* usage.prompt_tokens of a done event, or 0. */
static long long usage_prompt_tokens(lg_span_t usage) {
    lg_scan_t it;
    lg_span_t k, v;
    long long n = 0;
    if (usage.n == 0 || lg_scan_begin(&it, usage.p, usage.n) < 0) return 0;
    while (lg_scan_next(&it, &k, &v) == 1)
        if (lg_span_eq(k, "prompt_tokens") && lg_span_ll(v, &n) == LANES_OK) return n;
    return 0;
}

static void on_terminal(runner_t *r, long long id, req_t *q, const char *err_code,
                        lg_span_t usage) {
    uint64_t t = now_ns();
    q->done = 1;
    r->inflight--;
    r->t_end = t;
    if (err_code) {
        count_error(r->pt, err_code);
        if (r->baseline) fail(r, LANES_EIO, "loadgen: check: a baseline request failed: %s", err_code);
    } else {
        r->pt->requests_ok++;
        lg_hist_record(r->e2e, (t - q->t_send + 500) / 1000);
        if (q->ntok > 1)
            lg_hist_record(r->tpot, (q->t_last - q->t_first) / (uint64_t)(q->ntok - 1) / 1000);
        r->pt->prompt_tokens += (double)usage_prompt_tokens(usage);
        int blen = r->cfg->check && !r->baseline ? r->base_len[q->prompt] : 0;
        if (r->cfg->check && !r->baseline && !q->reported && q->ntok != blen)
            mismatch(r, q, id, q->ntok < blen ? q->ntok : blen,
                     q->ntok < blen ? r->base_tok[q->prompt][q->ntok] : -1, -1);
    }
    if (q->conn >= 0 && q->conn < r->n_conns) stream_next(r, &r->conns[q->conn]);
}

static void on_stats(runner_t *r, const cJSON *j) {
    if (!r->stats_dst) return;
    lg_srv_stats_t *s = r->stats_dst;
    const cJSON *v;
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
                    usage = {NULL, 0}, legacy = {"", 0}, msg = {"", 0};
    int rc = lg_scan_begin(&it, line, n);
    while (rc >= 0 && (rc = lg_scan_next(&it, &k, &v)) == 1) {
        if (lg_span_eq(k, "id")) id = v;
        else if (lg_span_eq(k, "event")) event = unquote(v);
        else if (lg_span_eq(k, "tokens")) toks = v;
        else if (lg_span_eq(k, "usage")) usage = v;
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
        on_terminal(r, rid, q, NULL, usage);
    } else if (is_err) {
        char cs[24];
        span_copy(cs, sizeof cs, code.n ? code : legacy.n ? legacy : (lg_span_t){"EUNKNOWN", 8});
        on_terminal(r, rid, q, cs, usage);
    }
    /* Unknown events are skipped: the protocol may grow. */
}

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
    if (nread < 0) {
        uv_read_stop(s);
        c->connected = 0;
        fail(r, LANES_EIO, "loadgen: server closed the connection: %s",
             nread == UV_EOF ? "end of stream" : uv_strerror((int)nread));
        return;
    }
    r->last_rx = now_ns();
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

/* ---- connections ------------------------------------------------------------------------ */

static void on_connect(uv_connect_t *req, int status) {
    conn_t *c = req->data;
    runner_t *r = c->r;
    if (status == UV_ECANCELED || uv_is_closing((uv_handle_t *)&c->tcp)) return;
    if (status < 0) {
        char msg[300];
        char host[128];
        snprintf(host, sizeof host, "%s", r->cfg->host);
        snprintf(msg, sizeof msg, "%s:%d: %s", host, r->cfg->port, uv_strerror(status));
        fail(r, LANES_EIO, "loadgen: cannot connect to %s (is lanes-server running?)", msg);
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
}

static void on_close(uv_handle_t *h) {
    conn_t *c = h->data;
    free(c->buf);
    c->buf = NULL;
    c->open = 0;
    c->r->n_open--;
}

static int conn_open(runner_t *r, conn_t *c, int idx) {
    memset(c, 0, sizeof *c);
    c->r = r;
    c->idx = idx;
    int rc = uv_tcp_init(&r->loop, &c->tcp);
    if (rc < 0) return LANES_EIO;
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

static void conn_close(conn_t *c) {
    if (c->open && !uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_close);
}

static int all_connected(const runner_t *r) {
    for (int i = 0; i < r->n_conns; i++)
        if (!r->conns[i].connected) return 0;
    return 1;
}

/* ---- timers ----------------------------------------------------------------------------- */

/* Fails the run when the server owes us something (a reply, a connect) and sends nothing for
 * cfg->timeout_s. Idle gaps between open-loop arrivals do not count. */
static void on_watchdog(uv_timer_t *t) {
    runner_t *r = t->data;
    if (!r->waiting || r->cfg->timeout_s <= 0) return;
    if (r->inflight == 0 && r->stats_dst == NULL && r->stats->connected && all_connected(r)) {
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

static double exp_gap_ns(runner_t *r) {
    r->rng ^= r->rng >> 12;                      /* xorshift64* */
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    double u = (double)((r->rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
    return -log(1.0 - u) / r->cfg->rate * 1e9;
}

/* Open loop: sends every arrival that is due, round robin over the pool, then sleeps until the
 * next one. */
static void on_arrival(uv_timer_t *t) {
    runner_t *r = t->data;
    uint64_t now = now_ns();
    while (r->issuing && !r->fatal && r->t_start + (uint64_t)r->next_arrival_ns <= now) {
        if ((r->target >= 0 && r->n_reqs >= r->target) || (r->deadline && now >= r->deadline)) {
            r->issuing = 0;
            break;
        }
        conn_t *c = &r->conns[r->rr++ % r->n_conns];
        if (send_generate(r, c, (int)(r->n_reqs % r->prompts.n)) < 0) {
            fail(r, LANES_ENOMEM, "loadgen: %s", "out of memory");
            return;
        }
        r->next_arrival_ns += exp_gap_ns(r);
    }
    if (r->issuing && !r->fatal) {
        double wait_ns = (double)r->t_start + r->next_arrival_ns - (double)now;
        uv_timer_start(t, on_arrival, wait_ns > 0 ? (uint64_t)(wait_ns / 1e6) + 1 : 0, 0);
    }
}

/* ---- points ----------------------------------------------------------------------------- */

static void ask_stats(runner_t *r, lg_srv_stats_t *dst) {
    static const char line[] = "{\"op\":\"stats\"}\n";
    memset(dst, 0, sizeof *dst);
    if (r->fatal || !r->stats->connected) return;
    r->stats_dst = dst;
    if (conn_write(r->stats, line, sizeof line - 1) < 0) return;
    WAIT_UNTIL(r, r->stats_dst == NULL);
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
    r->mismatch_logs = 0;
    r->rr = 0;
    r->t_start = r->t_end = r->deadline = 0;
    lg_hist_reset(r->ttft);
    lg_hist_reset(r->itl);
    lg_hist_reset(r->tpot);
    lg_hist_reset(r->e2e);

    if (!baseline) ask_stats(r, &pt->before);

    r->conns = calloc((size_t)streams, sizeof *r->conns);
    if (!r->conns) {
        fail(r, LANES_ENOMEM, "loadgen: %s", "out of memory");
        return;
    }
    r->n_conns = streams;
    for (int i = 0; i < streams && !r->fatal; i++) conn_open(r, &r->conns[i], i);
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
        if (cfg->progress) uv_timer_start(&r->progress, on_progress, 250, 250);
        WAIT_UNTIL(r, r->inflight == 0 &&
                          (!r->issuing || (r->target >= 0 && r->n_reqs >= r->target)));
        r->issuing = 0;
        uv_timer_stop(&r->arrivals);
        uv_timer_stop(&r->progress);
        if (cfg->progress) fputs("\r\033[K", stderr);
    }
    double wall = (double)((r->t_end > r->t_start ? r->t_end : now_ns()) - r->t_start) / 1e9;
    pt->client_cpu_pct = wall > 0 ? round((cpu_s() - cpu0) / wall * 1000.0) / 10.0 : 0;
    pt->complete = !r->fatal && r->inflight == 0;

    if (!baseline) ask_stats(r, &pt->after);

    /* Closing always finishes, failure or not; the stats connection stays open. */
    for (int i = 0; i < streams; i++) conn_close(&r->conns[i]);
    while (r->n_open > (r->stats->open ? 1 : 0)) uv_run(&r->loop, UV_RUN_ONCE);
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
    if (pt->before.valid && pt->after.valid) {
        pt->server_tokens = pt->after.tokens_generated - pt->before.tokens_generated;
        pt->server_steps = pt->after.steps - pt->before.steps;
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

static void on_timer_close(uv_handle_t *h) { ((runner_t *)h->data)->timers_open--; }

int lg_run(const lg_cfg_t *cfg, lg_point_t *points, int *n_done, lg_point_cb cb, void *arg) {
    runner_t *r = calloc(1, sizeof *r);
    *n_done = 0;
    if (!r) return LANES_ENOMEM;
    r->cfg = cfg;
    r->rng = 0x9E3779B97F4A7C15ull ^ (cfg->has_seed ? cfg->seed : 0);
    int rc = uv_loop_init(&r->loop);
    if (rc < 0) {
        free(r);
        return LANES_EIO;
    }
    uv_timer_t *timers[] = {&r->watchdog, &r->progress, &r->arrivals};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(&r->loop, timers[i]);
        timers[i]->data = r;
        r->timers_open++;
    }
    uv_timer_start(&r->watchdog, on_watchdog, 200, 200);
    r->ttft = lg_hist_create();
    r->itl = lg_hist_create();
    r->tpot = lg_hist_create();
    r->e2e = lg_hist_create();
    r->stats = calloc(1, sizeof *r->stats);
    if (!r->ttft || !r->itl || !r->tpot || !r->e2e || !r->stats) {
        rc = LANES_ENOMEM;
        goto out;
    }
    if ((rc = lg_prompts_load(&r->prompts, cfg->prompts_path)) < 0) goto out;
    if ((rc = resolve(r)) < 0) goto out;

    conn_open(r, r->stats, -1);
    WAIT_UNTIL(r, r->stats->connected);

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
        run_point(r, cfg->streams[i], &points[i], 0);
        *n_done = i + 1;
        if (cb) cb(&points[i], arg);
    }
    rc = r->fatal ? r->fatal : LANES_OK;

out:
    if (r->stats && r->stats->open) conn_close(r->stats);
    for (int i = 0; i < 3; i++) uv_close((uv_handle_t *)timers[i], on_timer_close);
    r->fatal = 0;
    while (r->n_open > 0 || r->timers_open > 0) uv_run(&r->loop, UV_RUN_ONCE);
    uv_run(&r->loop, UV_RUN_NOWAIT);             /* pending write callbacks */
    if (uv_loop_close(&r->loop) != 0) LANES_LOG(LANES_LOG_WARN, "loadgen: %s", "loop not empty at exit");
    if (r->base_tok)
        for (int i = 0; i < r->prompts.n; i++) free(r->base_tok[i]);
    free(r->base_tok);
    free(r->base_len);
    free(r->base_cap);
    free(r->reqs);
    free(r->stats);
    lg_hist_destroy(r->ttft);
    lg_hist_destroy(r->itl);
    lg_hist_destroy(r->tpot);
    lg_hist_destroy(r->e2e);
    lg_prompts_fini(&r->prompts);
    free(r);
    return rc;
}
