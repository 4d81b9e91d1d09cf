#include "server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "proto.h"

typedef struct io_conn io_conn_t;

/* A live request as the I/O thread knows it: found by req_id (hash) or by its connection. */
typedef struct io_req {
    uint64_t req_id;
    io_conn_t *conn;
    char *id;                   /* owned: the client's id as compact JSON, or NULL */
    int plain;                  /* answered in plain text */
    bat_req_t *cancel;          /* owned: its cancel message, made at submit; NULL once sent */
    struct io_req *hnext;       /* hash chain */
    struct io_req *cprev, *cnext;   /* the connection's list */
} io_req_t;

typedef struct {
    char *p;                    /* owned */
    size_t len, cap;
} io_buf_t;

struct io_conn {
    uv_tcp_t tcp;               /* first: handle->data is the conn too */
    io_server_t *srv;
    uint64_t id;
    io_conn_t *prev, *next;     /* the server's list */
    io_conn_t *dirty_next;
    int dirty, closing, paused, plain_busy, discard, oom;
    int ending;                 /* not read any more; closes once its replies are written */
    int midline;                /* the plain-text stream has sent a line's start, not its '\n' */
    int ninflight;
    uint64_t active_ms;         /* loop time of the last byte read, reply taken or request ended */
    io_req_t *reqs;
    char *rbuf;                 /* owned: bytes of an unfinished line */
    size_t rlen, rcap;
    io_buf_t out;               /* replies not handed to uv_write yet */
    io_buf_t held;              /* whole reply lines waiting for the plain text to end its line */
};

typedef struct {
    uv_write_t req;
    char *buf;                  /* owned */
} io_write_t;

struct io_server {
    io_server_cfg_t cfg;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_tcp_t spare;             /* takes a connection we have no memory for, to close it */
    int spare_busy, spare_pending;
    uv_async_t wake, stop;
    uv_signal_t sigs[4];        /* SIGINT, SIGTERM, SIGHUP, SIGQUIT: each drains and exits */
    uv_timer_t grace, idle;
    bat_sched_t *sched;
    int port, nconns, npaused, shutting_down;
    uint64_t next_conn_id, next_req_id;
    io_conn_t *conns;
    io_conn_t *dirty;
    io_req_t **buckets;         /* req_id & mask -> chain */
    size_t nbuckets, nreqs;
    char rbuf[64 * 1024];       /* libuv reads land here, then move to the conn's line buffer */
    char host[64];
};

/* ---- request table -------------------------------------------------------------------------- */

static int table_grow(io_server_t *s) {
    size_t nb = s->nbuckets ? s->nbuckets * 2 : 1024;
    io_req_t **b = calloc(nb, sizeof *b);
    if (b == NULL) return LANES_ENOMEM;
    for (size_t i = 0; i < s->nbuckets; i++)
        for (io_req_t *r = s->buckets[i], *next; r; r = next) {
            next = r->hnext;
            r->hnext = b[r->req_id & (nb - 1)];
            b[r->req_id & (nb - 1)] = r;
        }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = nb;
    return LANES_OK;
}

static io_req_t *table_find(io_server_t *s, uint64_t req_id) {
    for (io_req_t *r = s->buckets[req_id & (s->nbuckets - 1)]; r; r = r->hnext)
        if (r->req_id == req_id) return r;
    return NULL;
}

static void req_add(io_server_t *s, io_req_t *r) {
    io_req_t **b = &s->buckets[r->req_id & (s->nbuckets - 1)];
    r->hnext = *b;
    *b = r;
    s->nreqs++;
    io_conn_t *c = r->conn;
    r->cprev = NULL;
    r->cnext = c->reqs;
    if (c->reqs) c->reqs->cprev = r;
    c->reqs = r;
    c->ninflight++;
    if (r->plain) c->plain_busy = 1;
}

static void req_remove(io_server_t *s, io_req_t *r) {
    for (io_req_t **p = &s->buckets[r->req_id & (s->nbuckets - 1)]; *p; p = &(*p)->hnext)
        if (*p == r) {
            *p = r->hnext;
            break;
        }
    s->nreqs--;
    io_conn_t *c = r->conn;
    if (r->cprev) r->cprev->cnext = r->cnext;
    else c->reqs = r->cnext;
    if (r->cnext) r->cnext->cprev = r->cprev;
    if (--c->ninflight == 0) c->active_ms = uv_now(&s->loop);   /* idle from now on */
    if (r->plain) c->plain_busy = 0;
    bat_req_free(r->cancel);
    free(r->id);
    free(r);
}

/* ---- output --------------------------------------------------------------------------------- */

static void out_mark(io_conn_t *c) {
    if (c->dirty) return;
    c->dirty = 1;
    c->dirty_next = c->srv->dirty;
    c->srv->dirty = c;
}

/* Room for n more bytes in b; 0, or -1 when out of memory: the reply is lost, so the connection
 * is closed at the flush rather than left with a hole in its stream. */
static int buf_reserve(io_conn_t *c, io_buf_t *b, size_t n) {
    if (b->len + n <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        c->oom = 1;
        out_mark(c);
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void buf_put(io_conn_t *c, io_buf_t *b, const char *p, size_t n) {
    if (n == 0 || c->closing || buf_reserve(c, b, n) < 0) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    if (b == &c->out) out_mark(c);
}

/* Where reply lines go: held while the plain-text stream is inside a line, so none starts there. */
static io_buf_t *line_buf(io_conn_t *c) { return c->midline ? &c->held : &c->out; }

static void out_bytes(io_conn_t *c, const char *p, size_t n) { buf_put(c, line_buf(c), p, n); }

#define OUT_LIT(c, lit) out_bytes((c), (lit), sizeof(lit) - 1)

static void out_fmt(io_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(io_conn_t *c, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    out_bytes(c, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void out_escaped(io_conn_t *c, const char *p, size_t n) {
    io_buf_t *b = line_buf(c);
    if (n == 0 || c->closing || buf_reserve(c, b, n * 6) < 0) return;
    b->len = (size_t)io_json_escape(b->p, b->cap, b->len, p, n);
    if (b == &c->out) out_mark(c);
}

/* The plain-text stream's raw bytes; the held reply lines follow its first '\n'. */
static void out_plain(io_conn_t *c, const char *p, size_t n) {
    const char *nl = c->midline ? memchr(p, '\n', n) : NULL;
    if (nl) {
        size_t k = (size_t)(nl - p) + 1;
        buf_put(c, &c->out, p, k);
        buf_put(c, &c->out, c->held.p, c->held.len);
        c->held.len = 0;
        c->midline = 0;
        p += k;
        n -= k;
    }
    buf_put(c, &c->out, p, n);
    if (n > 0) c->midline = p[n - 1] != '\n';
}

/* `{"id":ID,` or `{` — every JSON reply starts so. */
static void out_open(io_conn_t *c, const char *id) {
    if (id) out_fmt(c, "{\"id\":%s,", id);
    else OUT_LIT(c, "{");
}

/* An error reply: JSON, or "# error CODE message" for plain-text requests. op, when set, says the
 * reply is about that rejected line, not a terminal event of a request in flight with this id. */
static void out_error(io_conn_t *c, int plain, const char *id, const char *code, const char *msg,
                      const char *op) {
    if (plain) {
        out_fmt(c, "# error %s %s\n", code, msg);
        return;
    }
    out_open(c, id);
    out_fmt(c, "\"event\":\"error\",\"code\":\"%s\",\"message\":\"", code);
    out_escaped(c, msg, strlen(msg));
    if (op) out_fmt(c, "\",\"op\":\"%s\"}\n", op);
    else OUT_LIT(c, "\"}\n");
}

/* Request r's terminal error; a plain-text one ends the text's line first, as "# done" does. */
static void out_req_error(io_req_t *r, const char *code, const char *msg) {
    if (r->plain && r->conn->midline) out_plain(r->conn, "\n", 1);
    out_error(r->conn, r->plain, r->id, code, msg, NULL);
}

static void conn_close(io_conn_t *c, const char *why);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* A libuv call on c failed: log it and close c. */
static void conn_fail(io_conn_t *c, const char *what, int rc) {
    LANES_LOG(LANES_LOG_WARN, "io: conn %llu: %s: %s, closing", (unsigned long long)c->id, what,
              uv_strerror(rc));
    conn_close(c, NULL);
}

static void conn_pause(io_conn_t *c) {
    int rc = uv_read_stop((uv_stream_t *)&c->tcp);
    if (rc < 0) {
        conn_fail(c, "uv_read_stop", rc);
        return;
    }
    c->paused = 1;
    c->srv->npaused++;
}

static void conn_resume(io_conn_t *c) {
    c->paused = 0;
    c->srv->npaused--;
    if (c->srv->shutting_down || c->ending) return;   /* they stopped reading for good */
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) conn_fail(c, "uv_read_start", rc);
}

static void on_write(uv_write_t *w, int status) {
    io_write_t *wr = (io_write_t *)w;
    io_conn_t *c = w->handle->data;
    free(wr->buf);
    free(wr);
    if (c->closing) return;
    if (status < 0) {
        conn_close(c, uv_strerror(status));
        return;
    }
    c->active_ms = uv_now(&c->srv->loop);   /* the client is taking replies */
    if (c->paused && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < c->srv->cfg.out_soft / 2)
        conn_resume(c);
}

/* Hands every dirty connection's buffer to uv_write, then applies the output limits. */
static void flush_dirty(io_server_t *s) {
    while (s->dirty) {
        io_conn_t *c = s->dirty;
        s->dirty = c->dirty_next;
        c->dirty = 0;
        if (c->closing) continue;
        if (c->oom) {
            LANES_LOG(LANES_LOG_ERROR, "io: conn %llu: out of memory for replies, closing",
                      (unsigned long long)c->id);
            conn_close(c, NULL);
            continue;
        }
        if (c->out.len == 0) continue;
        io_write_t *wr = malloc(sizeof *wr);
        if (wr == NULL) {
            conn_close(c, "out of memory");
            continue;
        }
        wr->buf = c->out.p;
        uv_buf_t b = uv_buf_init(c->out.p, (unsigned)c->out.len);
        c->out = (io_buf_t){0};
        int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc < 0) {
            free(wr->buf);
            free(wr);
            conn_fail(c, "uv_write", rc);
            continue;
        }
        size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + c->held.len;
        if (q > s->cfg.out_hard) {
            LANES_LOG(LANES_LOG_WARN, "io: conn %llu: %zu bytes unread by the client, closing",
                      (unsigned long long)c->id, q);
            conn_close(c, NULL);
        } else if (q > s->cfg.out_soft && !c->paused && !c->ending) {
            conn_pause(c);
        }
    }
}

/* ---- events from the engine ----------------------------------------------------------------- */

static const char *engine_error_msg(int code) {
    switch (code) {
    case LANES_ETOOLONG: return "prompt is longer than the context";
    case LANES_ECLOSED: return "server shutting down";
    default: return lanes_strerror(code);
    }
}

static void on_event(io_server_t *s, const bat_batch_t *b, const bat_evt_t *e) {
    io_req_t *r = table_find(s, e->req_id);
    if (r == NULL) return;  /* its connection is gone */
    io_conn_t *c = r->conn;
    const char *text = b->text + e->text_off;
    if (e->kind == BAT_EV_TOKEN) {
        if (r->plain) {
            out_plain(c, text, e->text_len);
            return;
        }
        out_open(c, r->id);
        OUT_LIT(c, "\"event\":\"token\",\"tokens\":[");
        for (int i = 0; i < e->n_tok; i++)
            out_fmt(c, i ? ",%d" : "%d", (int)b->toks[e->tok_off + (uint32_t)i]);
        OUT_LIT(c, "],\"text\":\"");
        out_escaped(c, text, e->text_len);
        OUT_LIT(c, "\"}\n");
        return;
    }
    if (e->kind == BAT_EV_DONE) {
        char ttft[32];
        if (e->ttft_ms >= 0) snprintf(ttft, sizeof ttft, "%.3f", e->ttft_ms);
        else snprintf(ttft, sizeof ttft, "null");
        if (r->plain) {
            out_plain(c, "\n", 1);
            out_fmt(c, "# done %s prompt_tokens=%d completion_tokens=%d ttft_ms=%s total_ms=%.3f\n",
                    bat_end_name(e->code), e->prompt_tokens, e->completion_tokens, ttft, e->total_ms);
        } else {
            out_open(c, r->id);
            out_fmt(c,
                    "\"event\":\"done\",\"reason\":\"%s\",\"usage\":{\"prompt_tokens\":%d,"
                    "\"completion_tokens\":%d},\"timing\":{\"queue_ms\":%.3f,\"ttft_ms\":%s,"
                    "\"total_ms\":%.3f}}\n",
                    bat_end_name(e->code), e->prompt_tokens, e->completion_tokens, e->queue_ms,
                    ttft, e->total_ms);
        }
    } else {
        out_req_error(r, lanes_err_name(e->code), engine_error_msg(e->code));
    }
    req_remove(s, r);
}

static void take_batches(io_server_t *s) {
    bat_batch_t *b = bat_take_batches(s->sched);
    while (b) {
        bat_batch_t *next = (bat_batch_t *)b->node.next;
        for (int i = 0; i < b->n; i++) on_event(s, b, &b->ev[i]);
        bat_batch_release(s->sched, b);
        b = next;
    }
    flush_dirty(s);
}

static void on_wake(uv_async_t *a) { take_batches(a->data); }

void io_server_notify(void *arg) {
    io_server_t *s = arg;
    int rc = uv_async_send(&s->wake);   /* fails only on a closed handle: after the engine joined */
    if (rc < 0) LANES_LOG(LANES_LOG_ERROR, "io: uv_async_send: %s", uv_strerror(rc));
}

/* ---- requests from the client --------------------------------------------------------------- */

/* Sends r's preallocated cancel (once): it cannot fail, so no lane outlives its client. */
static void cancel_req(io_server_t *s, io_req_t *r) {
    if (r->cancel == NULL) return;
    bat_cancel(s->sched, r->cancel);   /* ECLOSED: stop is ending every request anyway */
    r->cancel = NULL;
}

static io_req_t *find_by_id(io_conn_t *c, const char *id) {
    for (io_req_t *r = c->reqs; r; r = r->cnext)
        if (!r->plain && r->id && strcmp(r->id, id) == 0) return r;
    return NULL;
}

static void reply_stats(io_conn_t *c, const char *id) {
    bat_stats_t st;
    bat_stats_get(c->srv->sched, &st);
    const char *model = bat_sched_model_name(c->srv->sched);
    out_open(c, id);
    OUT_LIT(c, "\"event\":\"stats\",\"model\":\"");
    out_escaped(c, model, strlen(model));
    out_fmt(c,
            "\",\"lanes_total\":%d,\"lanes_active\":%d,\"queue_depth\":%d,"
            "\"requests_served\":%llu,\"requests_active\":%llu,\"requests_rejected\":%llu,"
            "\"tokens_generated\":%llu,\"prompt_tokens\":%llu,\"steps\":%llu,\"uptime_s\":%.3f,"
            "\"step_ms_avg\":%.4f,\"step_ms_last\":%.4f,\"step_cols_max\":%d,\"connections\":%d,"
            "\"connections_paused\":%d}\n",
            st.lanes_total, st.lanes_active, st.queue_depth,
            (unsigned long long)st.requests_served, (unsigned long long)st.requests_active,
            (unsigned long long)st.requests_rejected, (unsigned long long)st.tokens_generated,
            (unsigned long long)st.prompt_tokens, (unsigned long long)st.steps, st.uptime_s,
            st.step_ms_avg, st.step_ms_last, st.step_cols_max, c->srv->nconns, c->srv->npaused);
}

static void generate(io_conn_t *c, io_msg_t *m) {
    io_server_t *s = c->srv;
    if (s->shutting_down) {
        out_error(c, m->plain, m->id, "ECLOSED", "server shutting down", NULL);
        return;
    }
    if (m->plain && c->plain_busy) {
        out_error(c, 1, NULL, "ELIMIT", "one plain-text request at a time per connection", NULL);
        return;
    }
    if (c->ninflight >= s->cfg.max_inflight) {
        out_error(c, m->plain, m->id, "ELIMIT", "too many requests in flight on this connection",
                  NULL);
        return;
    }
    if (m->id && find_by_id(c, m->id)) {
        out_error(c, 0, m->id, "EEXIST", "a request with this id is in flight", "generate");
        return;
    }
    if (s->nreqs + 1 > s->nbuckets && table_grow(s) < 0) goto oom;
    io_req_t *r = calloc(1, sizeof *r);
    bat_req_t *br = bat_req_new(++s->next_req_id, m->prompt, m->prompt_len);
    bat_req_t *cancel = bat_cancel_new(s->next_req_id);
    if (r == NULL || br == NULL || cancel == NULL) {
        free(r);
        bat_req_free(br);
        bat_req_free(cancel);
        goto oom;
    }
    br->max_tokens = m->max_tokens;
    br->temperature = m->temperature;
    br->top_k = m->top_k;
    br->top_p = m->top_p;
    br->seed = m->seed;
    br->t_arrive_ns = lanes_now_ns();
    uint64_t req_id = br->req_id;   /* br belongs to the engine thread once submitted */
    int rc = bat_submit(s->sched, br);
    if (rc < 0) {
        bat_req_free(br);
        bat_req_free(cancel);
        free(r);
        out_error(c, m->plain, m->id, lanes_err_name(rc),
                  rc == LANES_EBUSY ? "at capacity: every lane and queue slot is taken"
                                    : engine_error_msg(rc), NULL);
        return;
    }
    r->req_id = req_id;
    r->cancel = cancel;
    r->conn = c;
    r->plain = m->plain;
    r->id = m->id;      /* takes it */
    m->id = NULL;
    req_add(s, r);
    return;
oom:
    out_error(c, m->plain, m->id, "ENOMEM", "out of memory", NULL);
}

static void handle_line(io_conn_t *c, const char *line, size_t len) {
    if (len > 0 && line[len - 1] == '\r') len--;
    if (len == 0) return;   /* blank lines are ignored */
    io_msg_t m;
    int rc = io_msg_parse(line, len, &m);
    if (rc < 0) {
        out_error(c, m.plain, m.id, lanes_err_name(rc), m.err_msg, NULL);
    } else if (m.op == IO_OP_GENERATE) {
        generate(c, &m);
    } else if (m.op == IO_OP_HEALTH) {
        out_open(c, m.id);
        out_fmt(c, "\"event\":\"health\",\"status\":\"%s\"}\n",
                c->srv->shutting_down ? "shutting_down" : "ok");
    } else if (m.op == IO_OP_STATS) {
        reply_stats(c, m.id);
    } else if (m.op == IO_OP_CANCEL) {
        io_req_t *r = find_by_id(c, m.id);
        if (r) cancel_req(c->srv, r);   /* its done/"cancelled" event answers */
        else out_error(c, 0, m.id, "ENOENT", "no request with this id is in flight", "cancel");
    }
    io_msg_fini(&m);
}

/* Frames lines out of the bytes read; a line past IO_MAX_LINE gets ETOOLONG and is skipped. */
static void on_bytes(io_conn_t *c, const char *p, size_t n) {
    while (n > 0 && !c->closing) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (c->discard) {
            if (nl) c->discard = 0;
        } else if (c->rlen + take > IO_MAX_LINE) {
            c->rlen = 0;
            c->discard = nl == NULL;
            out_error(c, 0, NULL, "ETOOLONG", "line longer than 65536 bytes", NULL);
        } else if (nl && c->rlen == 0) {
            handle_line(c, p, take);    /* the common case: a whole line in one read */
        } else {
            if (c->rlen + take > c->rcap) {
                size_t cap = c->rcap ? c->rcap : 1024;
                while (cap < c->rlen + take) cap *= 2;
                char *q = realloc(c->rbuf, cap);
                if (q == NULL) {
                    conn_close(c, "out of memory");
                    return;
                }
                c->rbuf = q;
                c->rcap = cap;
            }
            memcpy(c->rbuf + c->rlen, p, take);
            c->rlen += take;
            if (nl) {
                handle_line(c, c->rbuf, c->rlen);
                c->rlen = 0;
            }
        }
        if (!nl) break;
        p = nl + 1;
        n -= take + 1;
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)hint;
    io_conn_t *c = h->data;
    *buf = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    io_conn_t *c = st->data;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? NULL : uv_strerror((int)nread));
    } else if (nread > 0) {
        c->active_ms = uv_now(&c->srv->loop);
        on_bytes(c, buf->base, (size_t)nread);
    }
    flush_dirty(c->srv);
}

/* ---- connections ---------------------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h) {
    io_conn_t *c = h->data;
    io_server_t *s = c->srv;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    free(c->rbuf);
    free(c->out.p);
    free(c->held.p);
    free(c);
}

/* Cancels the connection's live requests (their lanes free within one step) and closes it. */
static void conn_close(io_conn_t *c, const char *why) {
    if (c->closing) return;
    c->closing = 1;
    if (why) LANES_LOG(LANES_LOG_DEBUG, "io: conn %llu closed: %s", (unsigned long long)c->id, why);
    if (c->paused) c->srv->npaused--;
    c->paused = 0;
    while (c->reqs) {
        if (!c->srv->shutting_down) cancel_req(c->srv, c->reqs);
        req_remove(c->srv, c->reqs);
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_conn_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    io_conn_t *c = req->handle->data;
    free(req);
    conn_close(c, NULL);
}

/* Stops reading c and closes it once the replies queued so far are written (uv_shutdown sends
 * the FIN after them). Whoever calls it also bounds the wait: the grace or idle timer. */
static void conn_end(io_conn_t *c) {
    if (c->closing || c->ending) return;
    c->ending = 1;
    int rc = uv_read_stop((uv_stream_t *)&c->tcp);
    if (rc < 0) {
        conn_fail(c, "uv_read_stop", rc);
        return;
    }
    uv_shutdown_t *sr = malloc(sizeof *sr);
    rc = sr ? uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_conn_shutdown) : UV_ENOMEM;
    if (rc < 0) {
        free(sr);
        conn_fail(c, "uv_shutdown", rc);
    }
}

/* Every period: a connection with nothing in flight that read nothing and had no reply taken for
 * --idle-timeout gets ETIMEDOUT and is ended; if it takes no reply for another period, it is cut. */
static void on_idle(uv_timer_t *t) {
    io_server_t *s = t->data;
    uint64_t now = uv_now(&s->loop), limit = (uint64_t)(s->cfg.idle_s * 1000);
    for (io_conn_t *c = s->conns; c; c = c->next) {
        if (c->closing || c->ninflight > 0 || now - c->active_ms < limit) continue;
        if (c->ending) {
            conn_close(c, "idle: the timeout reply was not taken");
            continue;
        }
        LANES_LOG(LANES_LOG_DEBUG, "io: conn %llu idle, closing", (unsigned long long)c->id);
        out_error(c, 0, NULL, "ETIMEDOUT", "idle timeout", NULL);
        flush_dirty(s);
        c->active_ms = now;
        conn_end(c);
    }
}

static void on_spare_closed(uv_handle_t *h);

/* Takes a pending connection we have no memory for: libuv listens again only once it is accepted,
 * so it is accepted into the server's spare handle and closed at once. */
static void conn_refuse(io_server_t *s) {
    if (s->spare_busy) {   /* the spare is still closing: the next one waits for it */
        s->spare_pending = 1;
        return;
    }
    int rc = uv_tcp_init(&s->loop, &s->spare);
    if (rc < 0) {
        LANES_LOG(LANES_LOG_ERROR, "io: uv_tcp_init: %s: no longer accepting", uv_strerror(rc));
        return;
    }
    s->spare.data = s;
    s->spare_busy = 1;
    rc = uv_accept((uv_stream_t *)&s->listener, (uv_stream_t *)&s->spare);
    if (rc < 0) LANES_LOG(LANES_LOG_WARN, "io: uv_accept: %s", uv_strerror(rc));
    uv_close((uv_handle_t *)&s->spare, on_spare_closed);
}

static void on_spare_closed(uv_handle_t *h) {
    io_server_t *s = h->data;
    s->spare_busy = 0;
    if (s->spare_pending && !s->shutting_down) {
        s->spare_pending = 0;
        conn_refuse(s);
    }
}

static void on_connection(uv_stream_t *ls, int status) {
    io_server_t *s = ls->data;
    if (status < 0) {
        LANES_LOG(LANES_LOG_WARN, "io: accept: %s", uv_strerror(status));
        return;
    }
    io_conn_t *c = calloc(1, sizeof *c);
    int rc = c ? uv_tcp_init(&s->loop, &c->tcp) : UV_ENOMEM;
    if (rc < 0) {
        LANES_LOG(LANES_LOG_ERROR, "io: cannot take a connection: %s", uv_strerror(rc));
        free(c);
        conn_refuse(s);
        return;
    }
    c->srv = s;
    c->id = ++s->next_conn_id;
    c->active_ms = uv_now(&s->loop);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if ((rc = uv_accept(ls, (uv_stream_t *)&c->tcp)) < 0) {
        conn_fail(c, "uv_accept", rc);
        return;
    }
    if (s->nconns > s->cfg.max_conns) {
        static const char msg[] =
            "{\"event\":\"error\",\"code\":\"ECONNS\",\"message\":\"too many connections\"}\n";
        uv_buf_t b = uv_buf_init((char *)msg, sizeof msg - 1);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);   /* best effort: it closes anyway */
        conn_close(c, "too many connections");
        return;
    }
    if ((rc = uv_tcp_nodelay(&c->tcp, 1)) < 0) {
        conn_fail(c, "uv_tcp_nodelay", rc);
        return;
    }
    if (s->cfg.sndbuf > 0) {   /* bounds what the kernel holds on top of out_hard */
        int v = s->cfg.sndbuf;
        if ((rc = uv_send_buffer_size((uv_handle_t *)&c->tcp, &v)) < 0) {
            conn_fail(c, "uv_send_buffer_size", rc);
            return;
        }
    }
    if ((rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) < 0)
        conn_fail(c, "uv_read_start", rc);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* Each of these drains like SIGTERM: none of them may end the server without terminal events. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static void on_grace(uv_timer_t *t) {
    io_server_t *s = t->data;
    for (io_conn_t *c = s->conns; c; c = c->next) conn_close(c, "shutdown grace period over");
}

static void begin_shutdown(io_server_t *s) {
    if (s->shutting_down) return;
    s->shutting_down = 1;
    LANES_LOG(LANES_LOG_INFO, "shutting down: %d connections, %zu requests in flight", s->nconns,
              s->nreqs);
    uv_close((uv_handle_t *)&s->listener, on_handle_closed);
    for (io_conn_t *c = s->conns; c; c = c->next) {
        int rc = c->closing ? 0 : uv_read_stop((uv_stream_t *)&c->tcp);
        if (rc < 0) conn_fail(c, "uv_read_stop", rc);
    }
    bat_sched_stop(s->sched);   /* joins; the last batch holds every remaining terminal event */
    take_batches(s);
    for (size_t i = 0; i < s->nbuckets; i++)   /* nothing should be left; never leave one hanging */
        while (s->buckets[i]) {
            io_req_t *r = s->buckets[i];
            LANES_LOG(LANES_LOG_WARN, "io: request %llu had no terminal event", (unsigned long long)r->req_id);
            out_req_error(r, "ECLOSED", "server shutting down");
            req_remove(s, r);
        }
    flush_dirty(s);
    for (io_conn_t *c = s->conns; c; c = c->next) conn_end(c);
    uv_close((uv_handle_t *)&s->wake, on_handle_closed);
    uv_close((uv_handle_t *)&s->stop, on_handle_closed);
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++)
        uv_close((uv_handle_t *)&s->sigs[i], on_handle_closed);   /* a second signal kills */
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
    int rc = uv_timer_start(&s->grace, on_grace, (uint64_t)(s->cfg.grace_s * 1000), 0);
    if (rc < 0) {
        LANES_LOG(LANES_LOG_ERROR, "io: uv_timer_start: %s: closing every connection now",
                  uv_strerror(rc));
        on_grace(&s->grace);
    }
    uv_unref((uv_handle_t *)&s->grace);
}

static void on_signal(uv_signal_t *h, int signum) {
    LANES_LOG(LANES_LOG_INFO, "signal %d", signum);
    begin_shutdown(h->data);
}

static void on_stop(uv_async_t *a) { begin_shutdown(a->data); }

void io_server_stop(io_server_t *s) {
    int rc = uv_async_send(&s->stop);
    if (rc < 0) LANES_LOG(LANES_LOG_ERROR, "io: uv_async_send: %s", uv_strerror(rc));
}

/* rc of a libuv call at start-up, logged when it failed. */
static int start_check(int rc, const char *what) {
    if (rc < 0) LANES_LOG(LANES_LOG_ERROR, "io: %s: %s", what, uv_strerror(rc));
    return rc;
}

int io_server_create(const io_server_cfg_t *cfg, io_server_t **out) {
    io_server_t *s = calloc(1, sizeof *s);
    if (s == NULL || table_grow(s) < 0) {
        free(s);
        return LANES_ENOMEM;
    }
    s->cfg = *cfg;
    snprintf(s->host, sizeof s->host, "%s", cfg->host ? cfg->host : "127.0.0.1");
    if (start_check(uv_loop_init(&s->loop), "uv_loop_init") < 0) {
        free(s->buckets);
        free(s);
        return LANES_EIO;
    }
    if (start_check(uv_tcp_init(&s->loop, &s->listener), "uv_tcp_init") < 0 ||
        start_check(uv_async_init(&s->loop, &s->wake, on_wake), "uv_async_init") < 0 ||
        start_check(uv_async_init(&s->loop, &s->stop, on_stop), "uv_async_init") < 0 ||
        start_check(uv_timer_init(&s->loop, &s->grace), "uv_timer_init") < 0 ||
        start_check(uv_timer_init(&s->loop, &s->idle), "uv_timer_init") < 0)
        goto fail;
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++) {
        if (start_check(uv_signal_init(&s->loop, &s->sigs[i]), "uv_signal_init") < 0) goto fail;
        s->sigs[i].data = s;
    }
    s->listener.data = s->wake.data = s->stop.data = s;
    s->grace.data = s->idle.data = s;

    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(s->host, cfg->port, (struct sockaddr_in *)&addr);
    if (rc != 0) rc = uv_ip6_addr(s->host, cfg->port, (struct sockaddr_in6 *)&addr);
    if (rc == 0) rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc != 0) {
        LANES_LOG(LANES_LOG_ERROR, "io: cannot listen on %s:%d: %s", s->host, cfg->port,
                  uv_strerror(rc));
        goto fail;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if (start_check(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen),
                    "uv_tcp_getsockname") < 0)
        goto fail;
    s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);   /* same offset for v6 */
    *out = s;
    return LANES_OK;
fail:
    s->shutting_down = 1;
    io_server_destroy(s);
    return LANES_EIO;
}

int io_server_port(const io_server_t *s) { return s->port; }

int io_server_run(io_server_t *s, bat_sched_t *sched) {
    s->sched = sched;
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++)
        if (start_check(uv_signal_start(&s->sigs[i], on_signal, stop_signals[i]),
                        "uv_signal_start") < 0)
            return LANES_EIO;
    uint64_t idle_ms = (uint64_t)(s->cfg.idle_s * 1000);
    if (idle_ms > 0) {   /* checked 8 times a period: a connection goes at most 1/8 late */
        uint64_t every = idle_ms / 8 ? idle_ms / 8 : 1;
        if (start_check(uv_timer_start(&s->idle, on_idle, every, every), "uv_timer_start") < 0)
            return LANES_EIO;
    }
    lanes_rcu_register();
    lanes_log_write(LANES_LOG_INFO, __FILE__, __LINE__, "listening on %s:%d", s->host, s->port);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    lanes_rcu_unregister();
    LANES_LOG(LANES_LOG_INFO, "stopped");
    return LANES_OK;
}

static void close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, h->type == UV_TCP && h->data && h->data != arg
                                           ? on_conn_closed : on_handle_closed);
}

void io_server_destroy(io_server_t *s) {
    if (s == NULL) return;
    uv_walk(&s->loop, close_any, s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&s->loop);
    if (rc < 0) LANES_LOG(LANES_LOG_ERROR, "io: uv_loop_close: %s", uv_strerror(rc));
    free(s->buckets);
    free(s);
}
