/* lg_http: the loadgen's HTTP/1.1 response decoder. Every response is fed whole and split at every
 * byte, and must decode the same: status, body bytes, the end, keep-alive. */
#include "http.h"

#include <stdio.h>

#include "base/lanes_err.h"
#include "test_util.h"

typedef struct {
    char body[4096];
    size_t len;
    int heads, ends, status[8];
} got_t;

static void on_head(void *arg, int status) {
    got_t *g = arg;
    if (g->heads < 8) g->status[g->heads] = status;
    g->heads++;
}
static void on_body(void *arg, const char *p, size_t n) {
    got_t *g = arg;
    ASSERT(g->len + n < sizeof g->body);
    memcpy(g->body + g->len, p, n);
    g->len += n;
    g->body[g->len] = '\0';
}
static void on_end(void *arg) { ((got_t *)arg)->ends++; }

/* Decodes s fed in two parts split at cut (and eof when asked); returns the feed/eof code. */
static int decode(const char *s, size_t cut, int eof, got_t *g, lg_http_t *h) {
    lg_http_cb_t cb = {on_head, on_body, on_end, g};
    memset(g, 0, sizeof *g);
    lg_http_init(h);
    size_t n = strlen(s);
    int rc = lg_http_feed(h, s, cut, &cb);
    if (rc == LANES_OK) rc = lg_http_feed(h, s + cut, n - cut, &cb);
    if (rc == LANES_OK && eof) rc = lg_http_eof(h, &cb);
    return rc;
}

/* Every split of s gives body, ends responses and the keep-alive flag. */
static void check(const char *s, int eof, const char *body, int ends, int status, int keep) {
    got_t g;
    static lg_http_t h;
    for (size_t cut = 0; cut <= strlen(s); cut++) {
        int rc = decode(s, cut, eof, &g, &h);
        if (rc != LANES_OK) fprintf(stderr, "split at %zu: %s\n", cut, h.err);
        ASSERT_EQ(rc, LANES_OK);
        ASSERT_STR_EQ(g.body, body);
        ASSERT_EQ(g.ends, ends);
        ASSERT_EQ(g.heads, ends);
        ASSERT_EQ(g.status[0], status);
        ASSERT_EQ(h.keep_alive, keep);
        ASSERT(lg_http_idle(&h));
    }
}

static void check_bad(const char *s, int eof, const char *why_part) {
    got_t g;
    static lg_http_t h;
    ASSERT_EQ(decode(s, strlen(s) / 2, eof, &g, &h), LANES_EPROTO);
    ASSERT(h.err != NULL && strstr(h.err, why_part) != NULL);
}

int main(void) {
    /* Chunked SSE as llama-server and vLLM send it, with a chunk extension and a trailer. */
    check("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
          "f;ext=1\r\ndata: {\"a\":1}\n\n\r\n"
          "E\r\ndata: [DONE]\n\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
          0, "data: {\"a\":1}\n\ndata: [DONE]\n\n", 1, 200, 1);
    /* Content-Length, bare \n line ends, header names in any case, then a pipelined 2nd response. */
    check("HTTP/1.1 404 Not Found\ncontent-length: 5\n\nhello"
          "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
          0, "helloabc", 2, 404, 0);
    /* Close-delimited: the body ends at EOF, and the connection cannot be reused. */
    check("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: x\n\n", 1, "data: x\n\n", 1,
          200, 0);
    /* 100 Continue first; HTTP/1.0 keep-alive; an empty 204. */
    check("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
          "Content-Length: 2\r\n\r\nok", 0, "ok", 1, 200, 1);
    check("HTTP/1.1 204 No Content\r\n\r\n", 0, "", 1, 204, 1);
    check("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, "", 1, 200, 0);

    check_bad("HTTP/2 200 OK\r\n\r\n", 0, "status line");
    check_bad("HTTP/1.1 2x0 OK\r\n\r\n", 0, "status code");
    check_bad("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "Content-Length");
    check_bad("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 0, "Content-Length");
    check_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, "transfer-encoding");
    check_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "chunk size");
    check_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 0, "longer than");
    check_bad("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", 0, "header line");
    check_bad("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", 1, "middle of a response");
    check_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 1, "middle of a response");
    static char big[LG_HTTP_MAX_LINE + 64];
    memset(big, 'a', sizeof big - 1);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    check_bad(big, 0, "too long");
    return 0;
}
