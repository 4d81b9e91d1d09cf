#ifndef LG_HTTP_H
#define LG_HTTP_H

#include <stddef.h>

/* An incremental HTTP/1.1 response decoder for the loadgen's OpenAI client: status line, headers,
 * then a body framed by Content-Length, chunked transfer-encoding or the server closing the
 * connection. Pure (bytes in, callbacks out), so any split of the bytes decodes the same; 1xx
 * interim responses (100 Continue) are skipped; several responses may follow each other. */

#define LG_HTTP_MAX_LINE 16384                   /* a status, header or chunk-size line */

typedef struct {
    void (*on_head)(void *arg, int status);      /* headers read; framing fields are set */
    void (*on_body)(void *arg, const char *p, size_t n);   /* decoded body bytes, borrowed */
    void (*on_end)(void *arg);                   /* the response is complete */
    void *arg;
} lg_http_cb_t;

typedef struct {
    int state;
    int status;                                  /* of the response being read */
    int chunked;                                 /* Transfer-Encoding: chunked */
    long long length;                            /* Content-Length, -1 when absent */
    int keep_alive;                              /* the connection may carry the next request */
    long long remain;                            /* body or chunk bytes still due */
    const char *err;                             /* static: why feed or eof failed */
    size_t line_len;
    char line[LG_HTTP_MAX_LINE];
} lg_http_t;

/* Expects a response (again). */
void lg_http_init(lg_http_t *h);

/* Decodes n bytes; callbacks run as parts complete. LANES_OK, or LANES_EPROTO with h->err set
 * (the decoder is then unusable until lg_http_init). */
int lg_http_feed(lg_http_t *h, const char *p, size_t n, const lg_http_cb_t *cb);

/* The server closed the connection: ends a close-delimited body (on_end runs). LANES_OK when that
 * or nothing was pending; LANES_EPROTO (h->err) when a response was cut short. */
int lg_http_eof(lg_http_t *h, const lg_http_cb_t *cb);

/* 1 when no byte of a response is pending (between responses). */
int lg_http_idle(const lg_http_t *h);

#endif
