/* HTTP/1.1 framing with http_parser (libhttp-parser): keep-alive, Content-Length and chunked
 * bodies, Expect: 100-continue, size limits and the slow-request timeout. One request at a time per
 * connection: the parser pauses at each request's end and the bytes of pipelined ones wait,
 * unparsed, until the response ends, so responses go out in request order. */
#include <ctype.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/lanes_log.h"
#include "server_int.h"

#define HTTP_MAX_HEAD (16 * 1024)   /* request line and headers; more get 431 */
#define HTTP_HOLD_IN (64 * 1024)    /* unparsed bytes waiting behind a request: past it, no reads */

struct io_http {
    http_parser p;              /* p.data: the connection */
    io_buf_t in;                /* bytes read and not parsed yet */
    size_t in_off;              /* parsed up to here */
    io_buf_t url, body;         /* the request being read */
    size_t head_bytes;
    char field[8];              /* the header name being read, lower case ("expect": all we read) */
    size_t field_len;           /* > sizeof field: longer than any we read */
    int in_value, is_expect;
    char expect[16];
    size_t expect_len;
    int status;                 /* an error a callback found: 413, 417, 431 */
    int reading;                /* a request's first byte is in, its last is not */
    uint64_t since_ms;          /* loop time of that first byte */
    int busy;                   /* a request is being answered: parsing waits */
    int running;                /* inside run(): a response must not parse on from within it */
    int method, minor, keep_alive, head;
    int chunked;                /* the event stream's framing */
};

/* ---- sniffing ------------------------------------------------------------------------------- */

int io__http_sniff(const char *p, size_t n) {
    size_t i = 0;
    while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z') i++;   /* the method */
    if (i == n) return IO_SNIFF_MORE;
    if (i == 0 || p[i] != ' ') return IO_SNIFF_LINE;
    size_t t = ++i;
    while (i < n && (unsigned char)p[i] > ' ' && (unsigned char)p[i] < 0x7f) i++;   /* target */
    if (i == n) return IO_SNIFF_MORE;
    if (i == t || p[i] != ' ') return IO_SNIFF_LINE;
    static const char ver[] = "HTTP/1.";
    i++;
    for (size_t k = 0; k < sizeof ver - 1; k++, i++) {
        if (i == n) return IO_SNIFF_MORE;
        if (p[i] != ver[k]) return IO_SNIFF_LINE;
    }
    if (i == n) return IO_SNIFF_MORE;
    if (p[i] < '0' || p[i] > '9') return IO_SNIFF_LINE;
    if (++i < n && p[i] == '\r') i++;
    if (i == n) return IO_SNIFF_MORE;
    return p[i] == '\n' ? IO_SNIFF_HTTP : IO_SNIFF_LINE;
}

/* ---- parser callbacks ----------------------------------------------------------------------- */

static int buf_add(io_conn_t *c, io_buf_t *b, const char *p, size_t n) {
    if (n == 0) return 0;   /* b->p may still be NULL */
    if (io__buf_reserve(c, b, n) < 0) return -1;   /* closes c at the flush */
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int head_add(io_http_t *h, size_t n) {
    h->head_bytes += n;
    if (h->head_bytes <= HTTP_MAX_HEAD) return 0;
    h->status = 431;
    return -1;
}

static int on_begin(http_parser *p) {
    io_conn_t *c = p->data;
    io_http_t *h = c->http;
    h->url.len = h->body.len = h->head_bytes = h->field_len = h->expect_len = 0;
    h->in_value = h->is_expect = h->status = 0;
    h->reading = 1;
    h->since_ms = uv_now(&c->srv->loop);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
    io_conn_t *c = p->data;
    return head_add(c->http, n) < 0 || buf_add(c, &c->http->url, at, n) < 0 ? -1 : 0;
}

static int on_field(http_parser *p, const char *at, size_t n) {
    io_http_t *h = ((io_conn_t *)p->data)->http;
    if (head_add(h, n) < 0) return -1;
    if (h->in_value) h->field_len = h->in_value = 0;
    for (size_t i = 0; i < n && h->field_len <= sizeof h->field; i++, h->field_len++)
        if (h->field_len < sizeof h->field)
            h->field[h->field_len] = (char)tolower((unsigned char)at[i]);
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t n) {
    io_http_t *h = ((io_conn_t *)p->data)->http;
    if (head_add(h, n) < 0) return -1;
    if (!h->in_value) {
        h->in_value = 1;
        h->is_expect = h->field_len == 6 && memcmp(h->field, "expect", 6) == 0;
        if (h->is_expect) h->expect_len = 0;
    }
    for (size_t i = 0; h->is_expect && i < n && h->expect_len <= sizeof h->expect; i++)
        if (h->expect_len++ < sizeof h->expect) h->expect[h->expect_len - 1] = at[i];
    return 0;
}

static int on_headers_done(http_parser *p) {
    io_conn_t *c = p->data;
    io_http_t *h = c->http;
    int cont = 0;
    if (h->expect_len > 0) {
        if (h->expect_len != 12 || strncasecmp(h->expect, "100-continue", 12) != 0) {
            h->status = 417;
            return -1;
        }
        cont = 1;
    }
    if (p->content_length != ULLONG_MAX && p->content_length > c->srv->cfg.max_body) {
        h->status = 413;   /* before the body is sent, when the client waits for 100 Continue */
        return -1;
    }
    if (cont && p->http_minor >= 1) {
        static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
        io__out_put(c, msg, sizeof msg - 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
    io_conn_t *c = p->data;
    io_http_t *h = c->http;
    if (h->body.len + n > c->srv->cfg.max_body) {   /* a chunked body tells its size as it goes */
        h->status = 413;
        return -1;
    }
    return buf_add(c, &h->body, at, n);
}

static int on_done(http_parser *p) {
    io_http_t *h = ((io_conn_t *)p->data)->http;
    h->reading = 0;
    h->method = (int)p->method;
    h->minor = p->http_minor;
    h->keep_alive = http_should_keep_alive(p);
    h->head = p->method == HTTP_HEAD;
    http_parser_pause(p, 1);   /* the next request is parsed once this one is answered */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_done,
    .on_body = on_body,
    .on_message_complete = on_done,
};

/* ---- the request loop ----------------------------------------------------------------------- */

/* A request the parser refused: its error, and the connection ends (its framing is lost). */
static void refuse(io_conn_t *c, enum http_errno err) {
    io_http_t *h = c->http;
    int status = h->status ? h->status : 400;
    h->busy = 1;
    c->linger = 1;   /* the client may still be sending the request: the reply must reach it */
    h->reading = h->head = 0;
    h->keep_alive = 0;
    h->minor = 1;
    if (status == 413)
        io__api_error(c, 413, NULL, "request body larger than --max-body (%zu bytes)",
                      c->srv->cfg.max_body);
    else if (status == 431)
        io__api_error(c, 431, NULL, "request line and headers larger than %d bytes", HTTP_MAX_HEAD);
    else if (status == 417)
        io__api_error(c, 417, NULL, "only \"Expect: 100-continue\" is understood");
    else
        io__api_error(c, 400, NULL, "bad HTTP request: %s", http_errno_description(err));
}

/* Whether c's client is taking its replies: past --out-soft queued, the next pipelined request
 * waits until they drain (io__http_resume), so a pipeline of cheap requests cannot make replies
 * faster than they are read. What the kernel takes at once does not count. */
static int out_room(io_conn_t *c) {
    if (io__conn_queued(c) <= c->srv->cfg.out_soft) return 1;
    io__conn_flush(c);   /* past --out-soft it pauses c: its drain calls io__http_resume */
    return !c->closing && io__conn_queued(c) <= c->srv->cfg.out_soft;
}

/* Parses the buffered bytes up to the end of the next request and answers it; on while answers
 * come at once (a pipeline of /health requests, say), stops at a request left in flight or when
 * the client does not take the answers. */
static void run(io_conn_t *c) {
    io_http_t *h = c->http;
    h->running = 1;
    while (!h->busy && !c->closing && !c->ending && !c->end_pending &&
           h->in_off < h->in.len && out_room(c)) {
        size_t n = h->in.len - h->in_off;
        size_t k = http_parser_execute(&h->p, &settings, h->in.p + h->in_off, n);
        h->in_off += k;
        enum http_errno err = HTTP_PARSER_ERRNO(&h->p);
        if (err == HPE_PAUSED) {
            http_parser_pause(&h->p, 0);
            h->busy = 1;
            io__api_request(c, h->method, h->url.p ? h->url.p : "", h->url.len,
                            h->body.p ? h->body.p : "", h->body.len);
        } else if (err != HPE_OK || k < n) {   /* (Upgrade is ignored: on_done pauses first) */
            refuse(c, err != HPE_OK ? err : HPE_UNKNOWN);
        }
    }
    h->running = 0;
    if (h->in_off == h->in.len) h->in.len = h->in_off = 0;
    io__conn_hold(c, h->in.len - h->in_off > HTTP_HOLD_IN);
}

void io__http_start(io_conn_t *c, const char *p, size_t n) {
    io_http_t *h = calloc(1, sizeof *h);
    if (h == NULL) {
        io__conn_close(c, "out of memory");
        return;
    }
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = c;
    c->http = h;
    c->proto = IO_PROTO_HTTP;
    io__http_bytes(c, p, n);
}

void io__http_bytes(io_conn_t *c, const char *p, size_t n) {
    io_http_t *h = c->http;
    if (c->end_pending) return;   /* it ends after the response being written */
    if (h->in_off > 0) {
        memmove(h->in.p, h->in.p + h->in_off, h->in.len - h->in_off);
        h->in.len -= h->in_off;
        h->in_off = 0;
    }
    if (buf_add(c, &h->in, p, n) < 0) return;
    if (!h->busy && !h->running) run(c);
    else io__conn_hold(c, h->in.len - h->in_off > HTTP_HOLD_IN);
}

void io__http_resume(io_conn_t *c) {
    if (!c->http->busy && !c->http->running) run(c);
}

void io__http_free(io_conn_t *c) {
    io_http_t *h = c->http;
    if (h == NULL) return;
    free(h->in.p);
    free(h->url.p);
    free(h->body.p);
    free(h);
    c->http = NULL;
}

void io__on_http_tick(uv_timer_t *t) {
    io_server_t *s = t->data;
    uint64_t now = uv_now(&s->loop), limit = (uint64_t)(s->cfg.http_timeout_s * 1000);
    for (io_conn_t *c = s->conns; c; c = c->next) {
        io__conn_linger_check(c, now);
        if (c->proto == IO_PROTO_SNIFF && !c->closing && c->rlen > 0 && now - c->sniff_ms >= limit) {
            free(c->rbuf);   /* a request line that does not end: it gets HTTP's 408 */
            c->rbuf = NULL;
            c->rlen = c->rcap = 0;
            io__http_start(c, "", 0);
            if (c->closing) continue;
            c->http->reading = 1;
            c->http->since_ms = c->sniff_ms;
        }
        io_http_t *h = c->http;
        if (h == NULL || c->closing || c->ending || c->end_pending || !h->reading || h->busy ||
            now - h->since_ms < limit)
            continue;
        h->busy = 1;
        h->reading = h->head = h->keep_alive = 0;
        c->linger = 1;
        io__api_error(c, 408, NULL, "request not received within --http-timeout (%g s)",
                      s->cfg.http_timeout_s);
    }
    io__flush_dirty(s);
}

/* ---- responses ------------------------------------------------------------------------------ */

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* The response is written: the connection ends after it, or reads the next request. */
static void done(io_conn_t *c) {
    io_http_t *h = c->http;
    h->busy = 0;
    c->srv->http_requests++;
    if (!h->keep_alive || c->srv->shutting_down) io__conn_end_after_flush(c);
    else if (!h->running) run(c);
}

void io__http_respond(io_conn_t *c, int status, const char *ctype, const char *body, size_t len,
                      const char *extra) {
    io_http_t *h = c->http;
    if (c->srv->shutting_down) h->keep_alive = 0;
    io__buf_printf(c, &c->out,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: %s"
                   "\r\n\r\n",
                   status, reason(status), ctype, len, extra ? extra : "",
                   h->keep_alive ? "keep-alive" : "close");
    if (!h->head) io__out_put(c, body, len);
    done(c);
}

void io__http_sse_open(io_conn_t *c) {
    io_http_t *h = c->http;
    h->chunked = h->minor >= 1;   /* HTTP/1.0 has no chunks: the close ends the stream */
    if (!h->chunked) h->keep_alive = 0;
    io__buf_printf(c, &c->out,
                   "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                   "Cache-Control: no-cache\r\n%sConnection: %s\r\n\r\n",
                   h->chunked ? "Transfer-Encoding: chunked\r\n" : "",
                   h->keep_alive ? "keep-alive" : "close");
}

void io__http_sse_data(io_conn_t *c, const char *payload, size_t len) {
    if (c->http->chunked) io__buf_printf(c, &c->out, "%zx\r\n", len + 8);   /* "data: " ... "\n\n" */
    io__out_put(c, "data: ", 6);
    io__out_put(c, payload, len);
    io__out_put(c, c->http->chunked ? "\n\n\r\n" : "\n\n", c->http->chunked ? 4 : 2);
}

void io__http_sse_close(io_conn_t *c) {
    io__http_sse_data(c, "[DONE]", 6);
    if (c->http->chunked) io__out_put(c, "0\r\n\r\n", 5);
    done(c);
}
