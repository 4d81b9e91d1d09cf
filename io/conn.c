/* The connection core both protocols share: the request table, reply buffers with the output
 * limits (pause, resume, cut), the first line's protocol sniffing, idleness, accept and close. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "proto.h"
#include "server_int.h"

typedef struct {
    uv_write_t req;
    char *buf;                  /* owned */
} io_write_t;

/* ---- request table -------------------------------------------------------------------------- */

int io__table_grow(io_server_t *s) {
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

io_req_t *io__table_find(io_server_t *s, uint64_t req_id) {
    for (io_req_t *r = s->buckets[req_id & (s->nbuckets - 1)]; r; r = r->hnext)
        if (r->req_id == req_id) return r;
    return NULL;
}

void io__req_add(io_server_t *s, io_req_t *r) {
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

void io__req_remove(io_server_t *s, io_req_t *r) {
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

void io__out_mark(io_conn_t *c) {
    if (c->dirty) return;
    c->dirty = 1;
    c->dirty_next = c->srv->dirty;
    c->srv->dirty = c;
}

/* Room for n more bytes in b; 0, or -1 when out of memory: the reply is lost, so the connection
 * is closed at the flush rather than left with a hole in its stream. */
int io__buf_reserve(io_conn_t *c, io_buf_t *b, size_t n) {
    if (b->len + n <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        c->oom = 1;
        io__out_mark(c);
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void io__buf_put(io_conn_t *c, io_buf_t *b, const char *p, size_t n) {
    if (n == 0 || c->closing || io__buf_reserve(c, b, n) < 0) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    if (b == &c->out) io__out_mark(c);
}

void io__out_put(io_conn_t *c, const char *p, size_t n) { io__buf_put(c, &c->out, p, n); }

void io__buf_printf(io_conn_t *c, io_buf_t *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    io__buf_put(c, b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

size_t io__conn_queued(io_conn_t *c) {
    return uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + c->out.len + c->held_out.len;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* A libuv call on c failed: log it and close c. */
void io__conn_fail(io_conn_t *c, const char *what, int rc) {
    LANES_LOG(LANES_LOG_WARN, "io: conn %llu: %s: %s, closing", (unsigned long long)c->id, what,
              uv_strerror(rc));
    io__conn_close(c, NULL);
}

static void conn_pause(io_conn_t *c) {
    int rc = uv_read_stop((uv_stream_t *)&c->tcp);
    if (rc < 0) {
        io__conn_fail(c, "uv_read_stop", rc);
        return;
    }
    c->paused = 1;
    c->srv->npaused++;
}

static void conn_resume(io_conn_t *c) {
    c->paused = 0;
    c->srv->npaused--;
    if (c->srv->shutting_down || c->ending) return;   /* they stopped reading for good */
    if (!c->held) {   /* held: HTTP reads on once the pipelined requests are answered */
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rc < 0) {
            io__conn_fail(c, "uv_read_start", rc);
            return;
        }
    }
    if (c->http) io__http_resume(c);   /* the requests that waited for the replies to drain */
}

void io__conn_hold(io_conn_t *c, int on) {
    if (c->closing || c->held == on) return;
    c->held = on;
    if (c->paused || c->ending || c->srv->shutting_down) return;   /* not reading anyway */
    int rc = on ? uv_read_stop((uv_stream_t *)&c->tcp)
                : uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) io__conn_fail(c, on ? "uv_read_stop" : "uv_read_start", rc);
}

static void on_write(uv_write_t *w, int status) {
    io_write_t *wr = (io_write_t *)w;
    io_conn_t *c = w->handle->data;
    free(wr->buf);
    free(wr);
    if (c->closing) return;
    if (status < 0) {
        io__conn_close(c, uv_strerror(status));
        return;
    }
    c->active_ms = uv_now(&c->srv->loop);   /* the client is taking replies */
    if (c->paused && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < c->srv->cfg.out_soft / 2) {
        conn_resume(c);
        io__flush_dirty(c->srv);
    }
}

/* Hands c's buffer to uv_write, then applies the output limits. */
static void conn_write(io_server_t *s, io_conn_t *c) {
    if (c->oom) {
        LANES_LOG(LANES_LOG_ERROR, "io: conn %llu: out of memory for replies, closing",
                  (unsigned long long)c->id);
        io__conn_close(c, NULL);
        return;
    }
    if (c->out.len == 0) return;
    io_write_t *wr = malloc(sizeof *wr);
    if (wr == NULL) {
        io__conn_close(c, "out of memory");
        return;
    }
    wr->buf = c->out.p;
    uv_buf_t b = uv_buf_init(c->out.p, (unsigned)c->out.len);
    c->out = (io_buf_t){0};
    int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(wr->buf);
        free(wr);
        io__conn_fail(c, "uv_write", rc);
        return;
    }
    size_t q = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + c->held_out.len;
    if (q > s->cfg.out_hard) {
        LANES_LOG(LANES_LOG_WARN, "io: conn %llu: %zu bytes unread by the client, closing",
                  (unsigned long long)c->id, q);
        io__conn_close(c, NULL);
    } else if (q > s->cfg.out_soft && !c->paused && !c->ending) {
        conn_pause(c);
    }
}

void io__conn_flush(io_conn_t *c) {
    if (!c->closing) conn_write(c->srv, c);
}

/* Writes every dirty connection's replies; those due to end do so behind them. */
void io__flush_dirty(io_server_t *s) {
    while (s->dirty) {
        io_conn_t *c = s->dirty;
        s->dirty = c->dirty_next;
        c->dirty = 0;
        if (c->closing) continue;
        conn_write(s, c);
        if (c->end_pending && !c->closing) {
            c->end_pending = 0;
            io__conn_end(c);
        }
    }
}

void io__conn_end_after_flush(io_conn_t *c) {
    c->end_pending = 1;
    io__out_mark(c);
}
/* ---- requests from the client --------------------------------------------------------------- */

/* Sends r's preallocated cancel (once): it cannot fail, so no lane outlives its client. */
void io__cancel_req(io_server_t *s, io_req_t *r) {
    if (r->cancel == NULL) return;
    bat_cancel(s->sched, r->cancel);   /* ECLOSED: stop is ending every request anyway */
    r->cancel = NULL;
}

/* ---- input ---------------------------------------------------------------------------------- */

int io__rbuf_append(io_conn_t *c, const char *p, size_t n) {
    if (c->rlen + n > c->rcap) {
        size_t cap = c->rcap ? c->rcap : 1024;
        while (cap < c->rlen + n) cap *= 2;
        char *q = realloc(c->rbuf, cap);
        if (q == NULL) {
            io__conn_close(c, "out of memory");
            return -1;
        }
        c->rbuf = q;
        c->rcap = cap;
    }
    memcpy(c->rbuf + c->rlen, p, n);
    c->rlen += n;
    return 0;
}

static void switch_proto(io_conn_t *c, int sniffed, const char *p, size_t n) {
    if (sniffed == IO_SNIFF_HTTP) {
        io__http_start(c, p, n);
    } else {
        c->proto = IO_PROTO_LINE;
        io__line_bytes(c, p, n);
    }
}

/* A connection's first line decides its protocol: bytes are buffered until they are an HTTP
 * request line or can no longer become one (a line longer than IO_MAX_LINE is the line protocol's
 * ETOOLONG). Blank lines before it are skipped, as both protocols ignore them. */
static void sniff_bytes(io_conn_t *c, const char *p, size_t n) {
    if (c->rlen == 0) {
        while (n > 0 && (p[0] == '\n' || (n > 1 && p[0] == '\r' && p[1] == '\n'))) {
            size_t k = p[0] == '\n' ? 1 : 2;
            p += k;
            n -= k;
        }
        if (n == 0) return;
        int v = io__http_sniff(p, n);
        if (v != IO_SNIFF_MORE) {   /* the common case: the whole first line in one read */
            switch_proto(c, v, p, n);
            return;
        }
    }
    if (c->rlen == 0) c->sniff_ms = uv_now(&c->srv->loop);   /* --http-timeout counts from it */
    if (io__rbuf_append(c, p, n) < 0) return;
    int v = io__http_sniff(c->rbuf, c->rlen);
    if (v == IO_SNIFF_MORE && c->rlen <= IO_MAX_LINE) return;
    char *buf = c->rbuf;    /* the chosen protocol frames these bytes in its own buffers */
    size_t len = c->rlen;
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    switch_proto(c, v == IO_SNIFF_HTTP ? v : IO_SNIFF_LINE, buf, len);
    free(buf);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
    (void)hint;
    io_conn_t *c = h->data;
    *buf = uv_buf_init(c->srv->rbuf, sizeof c->srv->rbuf);
}

/* An ending connection that lingers: what it reads is dropped; its EOF, or too many bytes, ends
 * the lingering (the close waits for the FIN to be sent behind the replies). */
static void linger_read(io_conn_t *c, ssize_t nread) {
    if (nread > 0) c->linger_bytes += (size_t)nread;
    if (nread >= 0 && c->linger_bytes <= IO_LINGER_BYTES) return;
    if (nread != UV_EOF && nread < 0) {
        io__conn_close(c, uv_strerror((int)nread));
        return;
    }
    c->linger_end = 1;
    int rc = uv_read_stop((uv_stream_t *)&c->tcp);
    if (rc < 0) io__conn_fail(c, "uv_read_stop", rc);
    else if (c->shut) io__conn_close(c, NULL);
}

void io__conn_linger_check(io_conn_t *c, uint64_t now) {
    if (c->ending && c->linger && c->shut && !c->closing && now - c->linger_ms >= IO_LINGER_MS)
        io__conn_close(c, "lingering close: done");
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    io_conn_t *c = st->data;
    if (c->ending) {   /* reading on after the end: only to linger */
        linger_read(c, nread);
        return;
    }
    if (nread < 0) {
        io__conn_close(c, nread == UV_EOF ? NULL : uv_strerror((int)nread));
    } else if (nread > 0) {
        c->active_ms = uv_now(&c->srv->loop);
        const char *p = buf->base;
        size_t n = (size_t)nread;
        if (c->proto == IO_PROTO_LINE) io__line_bytes(c, p, n);
        else if (c->proto == IO_PROTO_HTTP) io__http_bytes(c, p, n);
        else sniff_bytes(c, p, n);
    }
    io__flush_dirty(c->srv);
}

/* ---- connections ---------------------------------------------------------------------------- */

void io__on_conn_closed(uv_handle_t *h) {
    io_conn_t *c = h->data;
    io_server_t *s = c->srv;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    free(c->rbuf);
    free(c->out.p);
    free(c->held_out.p);
    free(c->early.p);
    io__api_free(c->call);
    io__http_free(c);
    free(c);
}

/* Cancels the connection's live requests (their lanes free within one step) and closes it. */
void io__conn_close(io_conn_t *c, const char *why) {
    if (c->closing) return;
    c->closing = 1;
    if (why) LANES_LOG(LANES_LOG_DEBUG, "io: conn %llu closed: %s", (unsigned long long)c->id, why);
    if (c->paused) c->srv->npaused--;
    c->paused = 0;
    while (c->reqs) {
        if (!c->srv->shutting_down) io__cancel_req(c->srv, c->reqs);
        io__req_remove(c->srv, c->reqs);
    }
    uv_close((uv_handle_t *)&c->tcp, io__on_conn_closed);
}

void io__conn_stop_reading(io_conn_t *c) {
    if (c->closing) return;
    int rc = uv_read_stop((uv_stream_t *)&c->tcp);
    if (rc < 0) {
        io__conn_fail(c, "uv_read_stop", rc);
    } else if (c->ending && c->linger) {
        c->linger_end = 1;
        if (c->shut) io__conn_close(c, NULL);
    }
}

static void on_conn_shutdown(uv_shutdown_t *req, int status) {
    io_conn_t *c = req->handle->data;
    free(req);
    c->shut = 1;
    if (status == 0 && c->linger && !c->linger_end && !c->closing) return;   /* reads on a while */
    io__conn_close(c, NULL);
}

/* Stops reading c and closes it once the replies queued so far are written (uv_shutdown sends
 * the FIN after them). Whoever calls it also bounds the wait: the grace or idle timer. A
 * lingering one (c->linger) reads on, dropping what it reads, until the client's EOF,
 * IO_LINGER_BYTES or IO_LINGER_MS after the FIN. */
void io__conn_end(io_conn_t *c) {
    if (c->closing || c->ending) return;
    c->ending = 1;
    c->linger &= !c->srv->shutting_down;   /* shutdown reads no more */
    c->linger_ms = uv_now(&c->srv->loop);
    int rc = !c->linger ? uv_read_stop((uv_stream_t *)&c->tcp)
             : c->paused || c->held ? uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)
                                    : 0;   /* reading already */
    if (rc < 0) {
        io__conn_fail(c, c->linger ? "uv_read_start" : "uv_read_stop", rc);
        return;
    }
    uv_shutdown_t *sr = malloc(sizeof *sr);
    rc = sr ? uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_conn_shutdown) : UV_ENOMEM;
    if (rc < 0) {
        free(sr);
        io__conn_fail(c, "uv_shutdown", rc);
    }
}

/* Every period: a connection with nothing in flight that read nothing and had no reply taken for
 * --idle-timeout gets ETIMEDOUT (HTTP: nothing, as keep-alive ends) and is ended; if it takes no
 * reply for another period, it is cut. */
void io__on_idle(uv_timer_t *t) {
    io_server_t *s = t->data;
    uint64_t now = uv_now(&s->loop), limit = (uint64_t)(s->cfg.idle_s * 1000);
    for (io_conn_t *c = s->conns; c; c = c->next) {
        if (c->closing || c->ninflight > 0 || c->early.len > 0 || now - c->active_ms < limit)
            continue;   /* (early: lines waiting for the model are in flight too) */
        if (c->ending) {
            io__conn_close(c, "idle: the timeout reply was not taken");
            continue;
        }
        LANES_LOG(LANES_LOG_DEBUG, "io: conn %llu idle, closing", (unsigned long long)c->id);
        if (c->proto != IO_PROTO_HTTP) io__line_idle(c);
        io__flush_dirty(s);
        c->active_ms = now;
        io__conn_end(c);
    }
}

static void on_spare_closed(uv_handle_t *h);

/* Takes a pending connection of listener ls we have no memory for: libuv listens again only once
 * it is accepted, so it is accepted into the server's spare handle and closed at once. */
static void conn_refuse(io_server_t *s, uv_stream_t *ls) {
    int bit = ls == (uv_stream_t *)&s->listener ? 1 : 2;
    if (s->spare_busy) {   /* the spare is still closing: the next one waits for it */
        s->spare_pending |= bit;
        return;
    }
    int rc = uv_tcp_init(&s->loop, &s->spare);
    if (rc < 0) {
        LANES_LOG(LANES_LOG_ERROR, "io: uv_tcp_init: %s: no longer accepting", uv_strerror(rc));
        return;
    }
    s->spare.data = s;
    s->spare_busy = 1;
    rc = uv_accept(ls, (uv_stream_t *)&s->spare);
    if (rc < 0) LANES_LOG(LANES_LOG_WARN, "io: uv_accept: %s", uv_strerror(rc));
    uv_close((uv_handle_t *)&s->spare, on_spare_closed);
}

static void on_spare_closed(uv_handle_t *h) {
    io_server_t *s = h->data;
    s->spare_busy = 0;
    if (s->spare_pending && !s->shutting_down) {
        int bit = s->spare_pending & 1 ? 1 : 2;
        s->spare_pending &= ~bit;
        conn_refuse(s, bit == 1 ? (uv_stream_t *)&s->listener : (uv_stream_t *)&s->http_listener);
    }
}

void io__on_connection(uv_stream_t *ls, int status) {
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
        conn_refuse(s, ls);
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
        io__conn_fail(c, "uv_accept", rc);
        return;
    }
    int http = ls == (uv_stream_t *)&s->http_listener;
    if (s->nconns > s->cfg.max_conns) {
        static const char msg[] =
            "{\"event\":\"error\",\"code\":\"ECONNS\",\"message\":\"too many connections\"}\n";
        static const char http_msg[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                       "Connection: close\r\n\r\n";
        uv_buf_t b = http ? uv_buf_init((char *)http_msg, sizeof http_msg - 1)
                          : uv_buf_init((char *)msg, sizeof msg - 1);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);   /* best effort: it closes anyway */
        io__conn_close(c, "too many connections");
        return;
    }
    if ((rc = uv_tcp_nodelay(&c->tcp, 1)) < 0) {
        io__conn_fail(c, "uv_tcp_nodelay", rc);
        return;
    }
    if (s->cfg.sndbuf > 0) {   /* bounds what the kernel holds on top of out_hard */
        int v = s->cfg.sndbuf;
        if ((rc = uv_send_buffer_size((uv_handle_t *)&c->tcp, &v)) < 0) {
            io__conn_fail(c, "uv_send_buffer_size", rc);
            return;
        }
    }
    if (http) {   /* --http-port: no sniffing */
        io__http_start(c, "", 0);
        if (c->closing) return;
    }
    if ((rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) < 0)
        io__conn_fail(c, "uv_read_start", rc);
}
