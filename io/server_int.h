#ifndef IO_SERVER_INT_H
#define IO_SERVER_INT_H

/* What the server's files share: server.c lifecycle and events, conn.c connections, line.c the
 * line protocol, http.c HTTP/1.1 framing, api.c the OpenAI-compatible endpoints. I/O thread only. */
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "server.h"

typedef struct io_conn io_conn_t;
typedef struct io_http io_http_t;   /* http.c */
typedef struct io_call io_call_t;   /* api.c */

/* A live request as the I/O thread knows it: found by req_id (hash) or by its connection. */
typedef struct io_req {
    uint64_t req_id;
    io_conn_t *conn;
    char *id;                   /* owned: the client's id as compact JSON, or NULL */
    int plain;                  /* answered in plain text */
    int logprobs;               /* line protocol: its token events carry logprobs */
    io_call_t *call;            /* HTTP: the call this is choice `index` of; NULL: line protocol */
    int index;
    bat_req_t *cancel;          /* owned: its cancel message, made at submit; NULL once sent */
    struct io_req *hnext;       /* hash chain */
    struct io_req *cprev, *cnext;   /* the connection's list */
} io_req_t;

typedef struct {
    char *p;                    /* owned */
    size_t len, cap;
} io_buf_t;

enum { IO_PROTO_SNIFF = 0, IO_PROTO_LINE, IO_PROTO_HTTP };

struct io_conn {
    uv_tcp_t tcp;               /* first: handle->data is the conn too */
    io_server_t *srv;
    uint64_t id;
    io_conn_t *prev, *next;     /* the server's list */
    io_conn_t *dirty_next;
    int proto;                  /* IO_PROTO_*: decided by the first line */
    int dirty, closing, paused, plain_busy, discard, oom;
    int held;                   /* not read while HTTP requests wait behind the one answered,
                                 * or line-protocol ones while the model loads */
    int ending;                 /* not read any more; closes once its replies are written */
    int end_pending;            /* ends at the next flush (an HTTP response without keep-alive) */
    int midline;                /* the plain-text stream has sent a line's start, not its '\n' */
    int linger;                 /* ending: reads and drops what the client still sends, so that
                                 * closing with bytes unread (a TCP reset) cannot lose the reply */
    int shut;                   /* ending: the FIN is sent, after every reply */
    int linger_end;             /* lingering: the client's EOF, or IO_LINGER_BYTES dropped */
    uint64_t linger_ms;         /* loop time the lingering began */
    size_t linger_bytes;
    int ninflight;
    uint64_t active_ms;         /* loop time of the last byte read, reply taken or request ended */
    uint64_t sniff_ms;          /* loop time of the first byte of a first line still undecided */
    io_req_t *reqs;
    char *rbuf;                 /* owned: bytes of an unfinished line */
    size_t rlen, rcap;
    io_buf_t out;               /* replies not handed to uv_write yet */
    io_buf_t held_out;          /* whole reply lines waiting for the plain text to end its line */
    io_buf_t early;             /* line protocol: bytes read while the model loads */
    io_http_t *http;            /* owned: HTTP state once proto is IO_PROTO_HTTP */
    io_call_t *call;            /* owned: the API call being answered, or NULL */
};

struct io_server {
    io_server_cfg_t cfg;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_tcp_t http_listener;     /* --http-port: HTTP only; open when cfg.http_port >= 0 */
    uv_tcp_t spare;             /* takes a connection we have no memory for, to close it */
    int spare_busy, spare_pending;  /* pending: 1 the listener, 2 the HTTP one, wait for the spare */
    uv_async_t wake, stop;
    uv_signal_t sigs[4];        /* SIGINT, SIGTERM, SIGHUP, SIGQUIT: each drains and exits */
    uv_timer_t grace, idle, http_tick;
    bat_sched_t *sched;         /* NULL while the model loads */
    uv_work_t load_work;
    io_server_load_fn load;
    void *load_arg;
    bat_sched_t *loaded;        /* what load made (the worker thread writes it) */
    int load_rc;
    int port, http_port, nconns, npaused, shutting_down;
    int chat_family;            /* --chat-template's family, or -1: detected from the model */
    long long created;          /* Unix seconds at start: /v1/models' "created" */
    uint64_t next_conn_id, next_req_id, seed_state, http_requests;
    io_conn_t *conns;
    io_conn_t *dirty;
    io_req_t **buckets;         /* req_id & mask -> chain */
    size_t nbuckets, nreqs;
    char rbuf[64 * 1024];       /* libuv reads land here, then move to the conn's buffers */
    char host[64];
};

/* conn.c: the request table */
int io__table_grow(io_server_t *s);
io_req_t *io__table_find(io_server_t *s, uint64_t req_id);
void io__req_add(io_server_t *s, io_req_t *r);
void io__req_remove(io_server_t *s, io_req_t *r);   /* frees r */
/* Sends r's preallocated cancel (once): it cannot fail, so no lane outlives its client. */
void io__cancel_req(io_server_t *s, io_req_t *r);

/* conn.c: output. A failed allocation marks the connection to be closed at the flush. */
void io__out_mark(io_conn_t *c);   /* c->out has bytes for the next flush */
int io__buf_reserve(io_conn_t *c, io_buf_t *b, size_t n);
void io__buf_put(io_conn_t *c, io_buf_t *b, const char *p, size_t n);
void io__out_put(io_conn_t *c, const char *p, size_t n);   /* straight to c->out */
/* Formatted, to b (c->out, or the line protocol's held lines); at most 1023 bytes a call. */
void io__buf_printf(io_conn_t *c, io_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void io__flush_dirty(io_server_t *s);
void io__conn_flush(io_conn_t *c);   /* hands c's replies to uv_write now, limits applied */
size_t io__conn_queued(io_conn_t *c);   /* bytes of replies the client has not taken yet */

/* conn.c: connection state */
int io__rbuf_append(io_conn_t *c, const char *p, size_t n);   /* -1: closed for want of memory */
void io__conn_close(io_conn_t *c, const char *why);   /* cancels its requests, closes */
/* Lingering closes wait for the client's EOF at most this long (checked on the HTTP tick) or
 * this many bytes dropped. */
#define IO_LINGER_MS 1000
#define IO_LINGER_BYTES ((size_t)1 << 20)
void io__conn_end(io_conn_t *c);
void io__conn_stop_reading(io_conn_t *c);   /* for good (shutdown): lingering ends too */
void io__conn_linger_check(io_conn_t *c, uint64_t now);   /* closes c once its lingering is over */
void io__conn_end_after_flush(io_conn_t *c);
void io__conn_fail(io_conn_t *c, const char *what, int rc);   /* a libuv call failed: log, close */
void io__on_conn_closed(uv_handle_t *h);    /* stops reading; closes once the replies are written */
void io__conn_hold(io_conn_t *c, int on);   /* stops (1) or restarts (0) reading for HTTP */
void io__on_connection(uv_stream_t *ls, int status);
void io__on_idle(uv_timer_t *t);

/* line.c */
void io__line_bytes(io_conn_t *c, const char *p, size_t n);
void io__line_event(io_server_t *s, const bat_batch_t *b, const bat_evt_t *e, io_req_t *r);
void io__line_error(io_req_t *r, const char *code, const char *msg);   /* r's terminal error */
void io__line_idle(io_conn_t *c);   /* the idle-timeout error line */
void io__line_loaded(io_conn_t *c);   /* the model is loaded: the lines read meanwhile are run */
const char *io__engine_error_msg(int code);

/* http.c */
enum { IO_SNIFF_LINE = 0, IO_SNIFF_HTTP = 1, IO_SNIFF_MORE = 2 };
/* Whether p[0..n), a connection's first bytes, are an HTTP request line (METHOD SP target SP
 * HTTP/1.x CRLF), cannot be one, or may still become one. */
int io__http_sniff(const char *p, size_t n);
void io__http_start(io_conn_t *c, const char *p, size_t n);   /* switches c to HTTP */
void io__http_bytes(io_conn_t *c, const char *p, size_t n);
/* c's replies drained below --out-soft / 2: the pipelined requests waiting for that are read. */
void io__http_resume(io_conn_t *c);
void io__http_free(io_conn_t *c);
/* 408 for requests not read within --http-timeout, a request line still being sniffed too. */
void io__on_http_tick(uv_timer_t *t);
/* A whole response to the current request (body not sent for HEAD); the next pipelined request is
 * read after it. extra: more header lines, each ending "\r\n", or NULL. */
void io__http_respond(io_conn_t *c, int status, const char *ctype, const char *body, size_t len,
                      const char *extra);
/* An event stream: opened once, one "data: ...\n\n" per call, closed with [DONE]. */
void io__http_sse_open(io_conn_t *c);
void io__http_sse_data(io_conn_t *c, const char *payload, size_t len);
void io__http_sse_close(io_conn_t *c);

/* api.c: a whole request read (url and body borrowed until the call returns); its answer comes
 * now or, for completions, from io__api_event(). */
void io__api_request(io_conn_t *c, int method, const char *url, size_t url_len, const char *body,
                     size_t body_len);
void io__api_event(io_server_t *s, const bat_batch_t *b, const bat_evt_t *e, io_req_t *r);
/* Frees a call when its connection closed (its choices are already cancelled); NULL is fine. */
void io__api_free(io_call_t *call);
/* An error response in OpenAI's shape; param names the field at fault, or NULL. */
void io__api_error(io_conn_t *c, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
