/* The HTTP/1.1 front of lanes-server over raw loopback sockets: first-line sniffing both ways,
 * keep-alive, pipelining, chunked bodies, Expect: 100-continue, every error status, the endpoints
 * (results equal to the line protocol's for the same greedy request), SSE framing, cancellation
 * on close and a paused SSE reader. One ctest per scenario: test_io_http NAME. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "test_net.h"

typedef struct {
    int status;
    char head[16384];           /* status line and headers */
    char *body;                 /* malloc'd, NUL-terminated; chunked bodies decoded */
    size_t len;
    int chunks;                 /* chunked: how many */
} resp_t;

static void fill_or_die(test_conn_t *c, double end) {
    int left = (int)(end - test_now_ms());
    struct pollfd p = {c->fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, left) <= 0) {
        fprintf(stderr, "no reply in time; have %zu bytes: %.*s\n", c->len, (int)c->len, c->buf);
        exit(1);
    }
    if (test_fill(c) < 0) {
        fprintf(stderr, "connection closed; have %zu bytes: %.*s\n", c->len, (int)c->len, c->buf);
        exit(1);
    }
}

/* Reads until EOF (bytes are kept), failing after end. */
static void fill_or_die_eof(test_conn_t *c, double end) {
    int left = (int)(end - test_now_ms());
    struct pollfd p = {c->fd, POLLIN, 0};
    ASSERT(left > 0 && poll(&p, 1, left) > 0);
    test_fill(c);
}

/* Offset just past the first s in the buffer, waiting for it. */
static size_t wait_for(test_conn_t *c, const char *s, double end) {
    for (;;) {
        char *p = memmem(c->buf, c->len, s, strlen(s));
        if (p) return (size_t)(p - c->buf) + strlen(s);
        fill_or_die(c, end);
    }
}

static void consume(test_conn_t *c, size_t n) {
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* A header's value (static buffer), or NULL. */
static const char *hdr(const resp_t *r, const char *name) {
    static char v[512];
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        size_t n = strlen(name);
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *s = p + 3 + n, *e = strstr(s, "\r\n");
            while (*s == ' ') s++;
            snprintf(v, sizeof v, "%.*s", (int)(e - s), s);
            return v;
        }
    }
    return NULL;
}

/* The next whole response (100 Continue skipped), within timeout_ms. */
static resp_t *read_resp(test_conn_t *c, int timeout_ms) {
    double end = test_now_ms() + timeout_ms;
    resp_t *r = calloc(1, sizeof *r);
    for (;;) {
        size_t h = wait_for(c, "\r\n\r\n", end);
        ASSERT(h < sizeof r->head);
        memcpy(r->head, c->buf, h);
        r->head[h] = 0;
        consume(c, h);
        ASSERT_EQ(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
        if (r->status != 100) break;
    }
    const char *te = hdr(r, "transfer-encoding"), *cl = hdr(r, "content-length");
    if (te && strcmp(te, "chunked") == 0) {
        size_t cap = 1 << 16;
        r->body = malloc(cap);
        for (;;) {
            size_t k = wait_for(c, "\r\n", end);
            size_t n = strtoul(c->buf, NULL, 16);
            consume(c, k);
            while (c->len < n + 2) fill_or_die(c, end);
            ASSERT(c->buf[n] == '\r' && c->buf[n + 1] == '\n');
            if (r->len + n + 1 > cap) r->body = realloc(r->body, cap = 2 * (r->len + n + 1));
            memcpy(r->body + r->len, c->buf, n);
            r->len += n;
            consume(c, n + 2);
            if (n == 0) break;
            r->chunks++;
        }
    } else {
        ASSERT(cl != NULL);
        r->len = strtoul(cl, NULL, 10);
        while (c->len < r->len) fill_or_die(c, end);
        r->body = malloc(r->len + 1);
        memcpy(r->body, c->buf, r->len);
        consume(c, r->len);
    }
    r->body[r->len] = 0;
    return r;
}

static void resp_free(resp_t *r) {
    if (r) free(r->body);
    free(r);
}

static cJSON *resp_json(const resp_t *r) {
    cJSON *j = cJSON_Parse(r->body);
    if (j == NULL) {
        fprintf(stderr, "bad JSON body: %s\n", r->body);
        exit(1);
    }
    return j;
}

/* POST path with a JSON body, Content-Length framed. */
static void post(test_conn_t *c, const char *path, const char *body) {
    char head[512];
    snprintf(head, sizeof head,
             "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             path, strlen(body));
    test_send(c, head);
    test_send(c, body);
}

static resp_t *request(int port, const char *method, const char *path, const char *body) {
    test_conn_t *c = test_connect(port);
    if (body) {
        post(c, path, body);
    } else {
        char head[512];
        snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", method, path);
        test_send(c, head);
    }
    resp_t *r = read_resp(c, 20000);
    test_close(c);
    return r;
}

/* The error object of an OpenAI-shaped error body; checks its shape. */
static void check_error(const resp_t *r, int status, const char *needle) {
    if (r->status != status) fprintf(stderr, "want %d, got: %s%s\n", status, r->head, r->body);
    ASSERT_EQ(r->status, status);
    cJSON *j = resp_json(r);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    ASSERT(cJSON_IsObject(e));
    ASSERT(cJSON_IsString(cJSON_GetObjectItem(e, "message")));
    ASSERT(cJSON_IsString(cJSON_GetObjectItem(e, "type")));
    ASSERT(cJSON_HasObjectItem(e, "param") && cJSON_HasObjectItem(e, "code"));
    if (needle && strstr(test_str(e, "message"), needle) == NULL) {
        fprintf(stderr, "message lacks \"%s\": %s\n", needle, r->body);
        exit(1);
    }
    cJSON_Delete(j);
}

/* The line protocol's answer to one JSON request line: its text and ids. */
typedef struct {
    char text[65536];
    size_t tlen;
    int ids[4096], n;
    double lp[4096];
    char reason[32];
    int stop_index;             /* -1: none in the done event */
} line_out_t;

static void line_gen(int port, const char *line, line_out_t *o) {
    memset(o, 0, sizeof *o);
    test_conn_t *c = test_connect(port);
    test_send(c, line);
    for (;;) {
        cJSON *j = test_json(c, 20000);
        const char *ev = test_str(j, "event");
        if (strcmp(ev, "token") == 0) {
            const char *t = test_str(j, "text");
            memcpy(o->text + o->tlen, t, strlen(t));
            o->tlen += strlen(t);
            const cJSON *it, *lps = cJSON_GetObjectItem(j, "logprobs");
            int k = o->n;
            cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "tokens")) o->ids[o->n++] = it->valueint;
            cJSON_ArrayForEach(it, lps) o->lp[k++] = test_num(it, "logprob");
        } else {
            ASSERT_STR_EQ(ev, "done");
            snprintf(o->reason, sizeof o->reason, "%s", test_str(j, "reason"));
            o->stop_index = (int)test_num(j, "stop_index");
            cJSON_Delete(j);
            break;
        }
        cJSON_Delete(j);
    }
    test_close(c);
}

/* SSE payloads of an event-stream body (each "data: X\n\n"); checks the framing and [DONE]. */
static int sse_split(char *body, char **out, int max) {
    int n = 0;
    char *p = body;
    while (*p) {
        ASSERT(strncmp(p, "data: ", 6) == 0);
        char *e = strstr(p, "\n\n");
        ASSERT(e != NULL);
        *e = 0;
        ASSERT_LT(n, max);
        out[n++] = p + 6;
        p = e + 2;
    }
    ASSERT_GT(n, 0);
    ASSERT_STR_EQ(out[n - 1], "[DONE]");
    return n - 1;
}

static const cJSON *choice(const cJSON *j, int i) {
    return cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), i);
}

/* Waits until stats (on a line-protocol connection) show n lanes busy. */
static void wait_lanes(test_conn_t *mon, int n) {
    for (double t0 = test_now_ms();; usleep(2000)) {
        cJSON *st = test_stats(mon);
        int active = (int)test_num(st, "lanes_active");
        cJSON_Delete(st);
        if (active == n) return;
        ASSERT_LT(test_now_ms() - t0, 10000);
    }
}

/* ---- scenarios ------------------------------------------------------------------------------ */

/* The first line decides: a plain-text prompt that starts "GET " stays the line protocol. */
static int t_sniff(void) {
    test_srv_t s = test_srv_start(NULL);
    test_conn_t *c = test_connect(s.port);
    test_send(c, "GET the weather\n");
    for (;;) {   /* the plain-text answer: raw text, then "# done" */
        char *l = test_line(c, 10000);
        ASSERT(l != NULL);
        ASSERT(strncmp(l, "HTTP/", 5) != 0);
        int done = strncmp(l, "# done ", 7) == 0;
        free(l);
        if (done) break;
    }
    test_close(c);
    c = test_connect(s.port);   /* a JSON line, sent in pieces */
    test_send(c, "{\"id\":7,\"prompt\":\"GET / HTTP/1.1\",");
    usleep(20000);
    test_send(c, "\"max_tokens\":2}\n");
    cJSON *j = test_json(c, 10000);
    ASSERT_EQ(test_num(j, "id"), 7);
    cJSON_Delete(j);
    test_close(c);
    c = test_connect(s.port);   /* a request line byte by byte is still HTTP */
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    for (const char *p = req; *p; p++) {
        char one[2] = {*p, 0};
        test_send(c, one);
        if (p - req < 20) usleep(2000);
    }
    resp_t *r = read_resp(c, 10000);
    ASSERT_EQ(r->status, 200);
    resp_free(r);
    test_close(c);
    c = test_connect(s.port);   /* a line that looks like a method but is not a request line */
    test_send(c, "GET /health HTTP/2\n");
    char *l = test_line(c, 10000);
    ASSERT(l != NULL && strncmp(l, "HTTP/", 5) != 0);
    free(l);
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* Several requests on one connection, sequentially and pipelined, answered in order. */
static int t_keepalive(void) {
    test_srv_t s = test_srv_start(NULL);
    line_out_t ref;
    line_gen(s.port, "{\"prompt\":\"pipe one\",\"max_tokens\":12}\n", &ref);
    test_conn_t *c = test_connect(s.port);
    for (int i = 0; i < 3; i++) {
        test_send(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        resp_t *r = read_resp(c, 10000);
        ASSERT_EQ(r->status, 200);
        ASSERT_STR_EQ(hdr(r, "connection"), "keep-alive");
        resp_free(r);
        post(c, "/v1/completions", "{\"prompt\":\"pipe one\",\"max_tokens\":12,\"temperature\":0}");
        r = read_resp(c, 10000);
        ASSERT_EQ(r->status, 200);
        cJSON *j = resp_json(r);
        ASSERT_STR_EQ(test_str(choice(j, 0), "text"), ref.text);
        cJSON_Delete(j);
        resp_free(r);
    }
    /* An Upgrade (curl --http2 asks h2c) is ignored; a request split after it is read whole. */
    test_send(c, "GET /health HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                 "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\nGET /hea");
    resp_t *up = read_resp(c, 10000);
    ASSERT_EQ(up->status, 200);
    resp_free(up);
    usleep(20000);
    test_send(c, "lth HTTP/1.1\r\n\r\n");
    up = read_resp(c, 10000);
    ASSERT_EQ(up->status, 200);
    resp_free(up);
    /* Pipelined: a long completion first, then /health and another completion. */
    char all[2048];
    const char *b1 = "{\"prompt\":\"pipe one\",\"max_tokens\":12,\"temperature\":0}";
    const char *b2 = "{\"prompt\":\"pipe two\",\"max_tokens\":3,\"temperature\":0}";
    snprintf(all, sizeof all,
             "POST /v1/completions HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s"
             "GET /health HTTP/1.1\r\n\r\n"
             "POST /v1/completions HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%s"
             "GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n",
             strlen(b1), b1, strlen(b2), b2);
    test_send(c, all);
    resp_t *r = read_resp(c, 10000);
    cJSON *j = resp_json(r);
    ASSERT_STR_EQ(test_str(choice(j, 0), "text"), ref.text);
    ASSERT_EQ(test_num(cJSON_GetObjectItem(j, "usage"), "completion_tokens"), ref.n);
    cJSON_Delete(j);
    resp_free(r);
    r = read_resp(c, 10000);
    ASSERT_STR_EQ(r->body, "{\"status\":\"ok\"}");
    resp_free(r);
    r = read_resp(c, 10000);
    j = resp_json(r);
    ASSERT_EQ(test_num(cJSON_GetObjectItem(j, "usage"), "completion_tokens"), 3);
    cJSON_Delete(j);
    resp_free(r);
    r = read_resp(c, 10000);
    ASSERT(strstr(r->body, "\"object\":\"list\"") != NULL);
    ASSERT_STR_EQ(hdr(r, "connection"), "close");
    resp_free(r);
    while (!c->eof) test_fill(c);   /* Connection: close is kept */
    ASSERT_EQ(c->len, 0);
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* A chunked body and Expect: 100-continue. */
static int t_chunked(void) {
    const char *args[] = {"--max-body", "4096", NULL};
    test_srv_t s = test_srv_start(args);
    line_out_t ref;
    line_gen(s.port, "{\"prompt\":\"chunk me\",\"max_tokens\":6}\n", &ref);
    test_conn_t *c = test_connect(s.port);
    test_send(c, "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "7\r\n{\"promp\r\n");
    usleep(20000);
    test_send(c, "2d\r\nt\":\"chunk me\",\"max_tokens\":6,\"temperature\":0}\r\n0\r\n\r\n");
    resp_t *r = read_resp(c, 10000);
    ASSERT_EQ(r->status, 200);
    cJSON *j = resp_json(r);
    ASSERT_STR_EQ(test_str(choice(j, 0), "text"), ref.text);
    cJSON_Delete(j);
    resp_free(r);
    /* Expect: the 100 comes before the body is sent, the answer after it. */
    const char *body = "{\"prompt\":\"chunk me\",\"max_tokens\":6,\"temperature\":0}";
    char head[256];
    snprintf(head, sizeof head,
             "POST /v1/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    test_send(c, head);
    size_t k = wait_for(c, "\r\n\r\n", test_now_ms() + 10000);
    ASSERT(strncmp(c->buf, "HTTP/1.1 100 Continue\r\n", 23) == 0);
    consume(c, k);
    test_send(c, body);
    r = read_resp(c, 10000);
    ASSERT_EQ(r->status, 200);
    j = resp_json(r);
    ASSERT_STR_EQ(test_str(choice(j, 0), "text"), ref.text);
    cJSON_Delete(j);
    resp_free(r);
    /* Too large for --max-body: 413 at the headers, no 100, and the connection ends. */
    test_send(c, "POST /v1/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
    r = read_resp(c, 10000);
    check_error(r, 413, "--max-body");
    ASSERT_STR_EQ(hdr(r, "connection"), "close");
    resp_free(r);
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* 400, 404, 405 with Allow, 413 for a chunked body, 431, 417. */
static int t_errors(void) {
    const char *args[] = {"--max-body", "1024", NULL};
    test_srv_t s = test_srv_start(args);
    resp_t *r = request(s.port, "GET", "/nowhere", NULL);
    check_error(r, 404, "/nowhere");
    resp_free(r);
    r = request(s.port, "GET", "/v1/completions", NULL);
    check_error(r, 405, NULL);
    ASSERT_STR_EQ(hdr(r, "allow"), "POST");
    resp_free(r);
    r = request(s.port, "DELETE", "/health", NULL);
    check_error(r, 405, NULL);
    ASSERT_STR_EQ(hdr(r, "allow"), "GET, HEAD");
    resp_free(r);
    r = request(s.port, "POST", "/v1/completions", "{\"prompt\":");
    check_error(r, 400, NULL);
    resp_free(r);
    r = request(s.port, "POST", "/v1/completions", "{\"prompt\":\"x\",\"best_of\":3}");
    check_error(r, 400, "best_of");
    resp_free(r);
    r = request(s.port, "POST", "/v1/chat/completions",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    check_error(r, 400, "--chat-template");   /* the synthetic model has no template */
    resp_free(r);
    test_conn_t *c = test_connect(s.port);   /* chunked past --max-body */
    test_send(c, "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[5 + 700 + 3] = "2bc\r\n";   /* 700 bytes a chunk: the second passes 1024 */
    memset(chunk + 5, 'a', 700);
    memcpy(chunk + 705, "\r\n", 3);
    test_send(c, chunk);
    test_send(c, chunk);
    r = read_resp(c, 10000);
    check_error(r, 413, NULL);
    resp_free(r);
    test_close(c);
    c = test_connect(s.port);   /* headers past 16 KiB */
    test_send(c, "GET /health HTTP/1.1\r\n");
    char big[1100];
    memset(big, 'b', sizeof big);
    memcpy(big, "X-Pad: ", 7);
    memcpy(big + sizeof big - 3, "\r\n", 3);
    for (int i = 0; i < 16; i++) test_send(c, big);
    r = read_resp(c, 10000);
    check_error(r, 431, NULL);
    resp_free(r);
    test_close(c);
    c = test_connect(s.port);
    test_send(c, "GET /health HTTP/1.1\r\nExpect: teapot\r\n\r\n");
    r = read_resp(c, 10000);
    check_error(r, 417, NULL);
    resp_free(r);
    test_close(c);
    c = test_connect(s.port);   /* not HTTP after a valid request line */
    test_send(c, "GET /health HTTP/1.1\r\nno colon here\r\n\r\n");
    r = read_resp(c, 10000);
    check_error(r, 400, NULL);
    resp_free(r);
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* A request not read whole within --http-timeout gets 408 and the connection ends. */
static int t_timeout(void) {
    const char *args[] = {"--http-timeout", "1", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *c = test_connect(s.port);
    test_send(c, "POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"prompt\"");
    double t0 = test_now_ms();
    resp_t *r = read_resp(c, 10000);
    double dt = test_now_ms() - t0;
    check_error(r, 408, "--http-timeout");
    ASSERT_GT(dt, 900);
    resp_free(r);
    while (!c->eof) test_fill(c);
    test_close(c);
    c = test_connect(s.port);   /* a request line that never ends, while it could be HTTP */
    test_send(c, "GET /health HTT");
    t0 = test_now_ms();
    r = read_resp(c, 10000);
    dt = test_now_ms() - t0;
    check_error(r, 408, "--http-timeout");
    ASSERT_GT(dt, 900);
    resp_free(r);
    while (!c->eof) test_fill(c);
    test_close(c);
    c = test_connect(s.port);   /* an unfinished line of the line protocol is not timed out */
    test_send(c, "{\"op\":");
    usleep(1500000);
    test_send(c, "\"health\"}\n");
    cJSON *j = test_json(c, 10000);
    ASSERT_STR_EQ(test_str(j, "event"), "health");
    cJSON_Delete(j);
    test_close(c);
    c = test_connect(s.port);   /* a keep-alive connection between requests is not timed out */
    test_send(c, "GET /health HTTP/1.1\r\n\r\n");
    resp_free(read_resp(c, 10000));
    usleep(1500000);
    test_send(c, "GET /health HTTP/1.1\r\n\r\n");
    r = read_resp(c, 10000);
    ASSERT_EQ(r->status, 200);
    resp_free(r);
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* 429 when every lane and queue slot is taken; 503 for requests in flight at shutdown. */
static int t_busy(void) {
    const char *args[] = {"--lanes", "1", "--max-queue", "0", "--preset", "15m", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *a = test_connect(s.port), *b = test_connect(s.port);
    post(a, "/v1/completions", "{\"prompt\":\"hold the lane\",\"max_tokens\":200,\"stream\":true}");
    ASSERT(wait_for(a, "data: ", test_now_ms() + 20000) > 0);   /* it has the lane */
    post(b, "/v1/completions", "{\"prompt\":\"no room\",\"max_tokens\":2}");
    resp_t *r = read_resp(b, 10000);
    check_error(r, 429, "capacity");
    resp_free(r);
    /* n=2 needs two lanes: refused whole, nothing left running from it */
    post(b, "/v1/completions", "{\"prompt\":\"two\",\"max_tokens\":2,\"n\":2}");
    r = read_resp(b, 10000);
    check_error(r, 429, NULL);
    resp_free(r);
    test_close(a);
    test_close(b);
    /* Shutdown: a non-streamed request in flight is answered 503. */
    test_conn_t *c = test_connect(s.port), *mon = test_connect(s.port);
    wait_lanes(mon, 0);   /* the closed stream's lane is free */
    post(c, "/v1/completions", "{\"prompt\":\"cut short\",\"max_tokens\":250}");
    wait_lanes(mon, 1);
    kill(s.pid, SIGTERM);
    r = read_resp(c, 10000);
    check_error(r, 503, NULL);
    ASSERT_STR_EQ(hdr(r, "connection"), "close");
    resp_free(r);
    test_close(c);
    test_close(mon);
    int st = 0;
    waitpid(s.pid, &st, 0);
    test_srv_child = 0;
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    unlink(s.log);
    return 0;
}

/* /health, /v1/models, /metrics and HEAD. */
static int t_endpoints(void) {
    test_srv_t s = test_srv_start(NULL);
    resp_t *r = request(s.port, "GET", "/health", NULL);
    ASSERT_EQ(r->status, 200);
    ASSERT_STR_EQ(r->body, "{\"status\":\"ok\"}");
    resp_free(r);
    r = request(s.port, "GET", "/v1/models?x=1", NULL);
    ASSERT_EQ(r->status, 200);
    cJSON *j = resp_json(r);
    ASSERT_STR_EQ(test_str(j, "object"), "list");
    ASSERT_STR_EQ(test_str(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "data"), 0), "id"), "synthetic");
    cJSON_Delete(j);
    resp_free(r);
    resp_free(request(s.port, "POST", "/v1/completions", "{\"prompt\":\"count me\",\"max_tokens\":5}"));
    r = request(s.port, "GET", "/metrics", NULL);
    ASSERT_EQ(r->status, 200);
    ASSERT(strncmp(hdr(r, "content-type"), "text/plain; version=0.0.4", 25) == 0);
    ASSERT(strstr(r->body, "vllm:num_requests_running") != NULL);
    resp_free(r);
    test_conn_t *c = test_connect(s.port);   /* HEAD: the headers of GET, no body */
    test_send(c, "HEAD /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n");
    size_t k = wait_for(c, "\r\n\r\n", test_now_ms() + 10000);
    ASSERT(strstr(c->buf, "Content-Length: 15\r\n") != NULL);
    consume(c, k);
    r = read_resp(c, 10000);   /* the next response follows at once: HEAD sent no body */
    ASSERT_STR_EQ(r->body, "{\"status\":\"ok\"}");
    resp_free(r);
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* /v1/completions against the line protocol: whole and streamed, n=2, logprobs, stop, echo. */
static int t_completions(void) {
    test_srv_t s = test_srv_start(NULL);
    line_out_t ref;
    line_gen(s.port, "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"logprobs\":3}\n", &ref);
    ASSERT_EQ(ref.n, 24);
    resp_t *r = request(s.port, "POST", "/v1/completions",
                        "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0,"
                        "\"logprobs\":3}");
    ASSERT_EQ(r->status, 200);
    cJSON *j = resp_json(r);
    const cJSON *ch = choice(j, 0);
    ASSERT_STR_EQ(test_str(ch, "text"), ref.text);
    ASSERT_STR_EQ(test_str(ch, "finish_reason"), "length");
    ASSERT_EQ(test_num(cJSON_GetObjectItem(j, "usage"), "completion_tokens"), 24);
    const cJSON *lp = cJSON_GetObjectItem(ch, "logprobs");
    const cJSON *tlp = cJSON_GetObjectItem(lp, "token_logprobs");
    ASSERT_EQ(cJSON_GetArraySize(tlp), 24);
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(lp, "top_logprobs")), 24);
    for (int i = 0; i < 24; i++) {   /* greedy: the chosen token is the most probable one */
        double v = cJSON_GetArrayItem(tlp, i)->valuedouble, best = -1e30;
        const cJSON *alt;
        cJSON_ArrayForEach(alt, cJSON_GetArrayItem(cJSON_GetObjectItem(lp, "top_logprobs"), i))
            if (alt->valuedouble > best) best = alt->valuedouble;
        ASSERT(v <= 0 && v > -1e4 && v == best);
        ASSERT(fabs(v - ref.lp[i]) < 1e-6);   /* the line protocol's value, to the float */
    }
    cJSON_Delete(j);
    resp_free(r);

    /* Streamed: the same text, one chunk per step, [DONE], usage when asked. */
    r = request(s.port, "POST", "/v1/completions",
                "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0,"
                "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    ASSERT_EQ(r->status, 200);
    ASSERT_STR_EQ(hdr(r, "content-type"), "text/event-stream");
    char *ev[256];
    int n = sse_split(r->body, ev, 256);
    ASSERT_GE(r->chunks, n);   /* every event its own chunk: flushed as made */
    char text[4096] = "";
    int finished = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_Parse(ev[i]);
        ASSERT(e != NULL);
        const cJSON *cs = cJSON_GetObjectItem(e, "choices");
        if (i == n - 1) {   /* include_usage: choices [] and the usage */
            ASSERT_EQ(cJSON_GetArraySize(cs), 0);
            ASSERT_EQ(test_num(cJSON_GetObjectItem(e, "usage"), "completion_tokens"), 24);
        } else {
            ASSERT(!finished);
            strcat(text, test_str(cJSON_GetArrayItem(cs, 0), "text"));
            finished = cJSON_IsString(cJSON_GetObjectItem(cJSON_GetArrayItem(cs, 0), "finish_reason"));
        }
        cJSON_Delete(e);
    }
    ASSERT(finished);
    ASSERT_STR_EQ(text, ref.text);
    resp_free(r);

    /* n=2 with a seed: two streams of their own, reproducible. */
    const char *nb = "{\"prompt\":[\"Once upon a time\",\"x\"],\"max_tokens\":8,\"n\":2,"
                     "\"temperature\":1,\"seed\":5}";
    r = request(s.port, "POST", "/v1/completions", nb);
    j = resp_json(r);
    ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(j, "choices")), 4);
    for (int i = 0; i < 4; i++) ASSERT_EQ(test_num(choice(j, i), "index"), i);
    ASSERT_EQ(test_num(cJSON_GetObjectItem(j, "usage"), "completion_tokens"), 32);
    resp_t *r2 = request(s.port, "POST", "/v1/completions", nb);
    cJSON *j2 = resp_json(r2);
    for (int i = 0; i < 4; i++)
        ASSERT_STR_EQ(test_str(choice(j, i), "text"), test_str(choice(j2, i), "text"));
    cJSON_Delete(j);
    cJSON_Delete(j2);
    resp_free(r);
    resp_free(r2);

    /* stop: the text ends before the stop string, finish_reason "stop". */
    char stop[8] = {0};
    size_t at = ref.tlen / 2;
    memcpy(stop, ref.text + at, 2);
    char body[512];
    snprintf(body, sizeof body,
             "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0,\"stop\":[\"%s\"]}",
             stop);
    if (strchr(stop, '"') == NULL && strchr(stop, '\\') == NULL && (unsigned char)stop[0] >= ' ' &&
        (unsigned char)stop[1] >= ' ' && (unsigned char)stop[0] < 0x80 && (unsigned char)stop[1] < 0x80) {
        r = request(s.port, "POST", "/v1/completions", body);
        j = resp_json(r);
        const char *t = test_str(choice(j, 0), "text");
        const char *first = strstr(ref.text, stop);
        ASSERT_EQ(strlen(t), (size_t)(first - ref.text));
        ASSERT(strncmp(t, ref.text, strlen(t)) == 0);
        ASSERT_STR_EQ(test_str(choice(j, 0), "finish_reason"), "stop");
        /* the line protocol: the same cut, and which string matched */
        line_out_t cut;
        snprintf(body, sizeof body,
                 "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"stop\":[\"\\u0001\",\"%s\"]}\n",
                 stop);
        line_gen(s.port, body, &cut);
        ASSERT_STR_EQ(cut.text, t);
        ASSERT_STR_EQ(cut.reason, "stop");
        ASSERT_EQ(cut.stop_index, 1);
        ASSERT_LT(cut.n, 24);
        cJSON_Delete(j);
        resp_free(r);
    } else {
        fprintf(stderr, "stop: the reference text has no plain two bytes at %zu, skipped\n", at);
    }

    /* echo: the prompt before the text. */
    r = request(s.port, "POST", "/v1/completions",
                "{\"prompt\":\"Once upon a time\",\"max_tokens\":24,\"temperature\":0,\"echo\":true}");
    j = resp_json(r);
    char want[sizeof ref.text + 32];
    snprintf(want, sizeof want, "Once upon a time%s", ref.text);
    ASSERT_STR_EQ(test_str(choice(j, 0), "text"), want);
    cJSON_Delete(j);
    resp_free(r);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* Starts lanes-server with args, but returns its port as soon as the loop answers, while the
 * model is still loading (before "listening on"). */
static test_srv_t srv_start_loading(const char *const *args) {
    test_srv_t s = test_srv_spawn(args, 0);
    s.port = test_srv_wait_port(&s, "meanwhile ");
    return s;
}

/* While the model loads (--preset 110m builds its weights for a second or more): /health is 503
 * "loading", the other endpoints 503 with Retry-After; line-protocol lines wait and are answered
 * once it is loaded; then /health is 200. */
static int t_loading(void) {
    const char *args[] = {"--preset", "110m", "--threads", "1", "--lanes", "2", NULL};
    test_srv_t s = srv_start_loading(args);
    resp_t *r = request(s.port, "GET", "/health", NULL);
    ASSERT_EQ(r->status, 503);
    ASSERT_STR_EQ(r->body, "{\"status\":\"loading\"}");
    resp_free(r);
    r = request(s.port, "POST", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1}");
    check_error(r, 503, "loading");
    ASSERT_STR_EQ(hdr(r, "retry-after"), "1");
    resp_free(r);
    r = request(s.port, "GET", "/v1/completions", NULL);   /* the method is still checked first */
    check_error(r, 405, NULL);
    resp_free(r);
    test_conn_t *line = test_connect(s.port);
    test_send(line, "{\"id\":1,\"op\":\"health\"}\n{\"id\":2,\"prompt\":\"wait\",\"max_tokens\":2}\n");
    int loading = 0;
    for (double t0 = test_now_ms();; usleep(20000)) {
        ASSERT_LT(test_now_ms() - t0, 60000);
        r = request(s.port, "GET", "/health", NULL);
        int st = r->status;
        resp_free(r);
        if (st == 200) break;
        ASSERT_EQ(st, 503);
        loading++;
        struct pollfd p = {line->fd, POLLIN, 0};
        ASSERT_EQ(poll(&p, 1, 0), 0);   /* the lines are not answered while it loads */
    }
    fprintf(stderr, "/health said loading %d times\n", loading);
    ASSERT_GT(loading, 0);
    cJSON *j = test_json(line, 20000);
    ASSERT_EQ(test_num(j, "id"), 1);
    ASSERT_STR_EQ(test_str(j, "status"), "ok");
    cJSON_Delete(j);
    for (;;) {
        j = test_json(line, 20000);
        ASSERT_EQ(test_num(j, "id"), 2);
        int done = strcmp(test_str(j, "event"), "done") == 0;
        if (done) ASSERT_EQ(test_num(cJSON_GetObjectItem(j, "usage"), "completion_tokens"), 2);
        else ASSERT_STR_EQ(test_str(j, "event"), "token");
        cJSON_Delete(j);
        if (done) break;
    }
    test_close(line);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* Sends up to n bytes of p within ms: what was sent (stops early at a send error, say a reset). */
static size_t send_for(test_conn_t *c, const char *p, size_t n, int ms) {
    size_t off = 0;
    for (double end = test_now_ms() + ms; off < n && test_now_ms() < end;) {
        struct pollfd pf = {c->fd, POLLOUT, 0};
        if (poll(&pf, 1, 100) <= 0) continue;
        ssize_t w = send(c->fd, p + off, n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    return off;
}

/* An error answered while the client is still sending its request (a 413 at the headers, no
 * Expect) reaches the client: the server reads on and drops the rest before it closes, as a reset
 * would lose the reply. */
static int t_linger(void) {
    test_srv_t s = test_srv_start(NULL);
    for (int round = 0; round < 2; round++) {   /* 413, then 400 on a request line gone bad */
        test_conn_t *c = test_connect(s.port);
        test_send(c, round == 0 ? "POST /v1/completions HTTP/1.1\r\nContent-Length: 5000000\r\n\r\n"
                                : "GET /health HTTP/1.1\r\n\x01");
        size_t n = 1000000;
        char *body = malloc(n);
        memset(body, round == 0 ? 'a' : '\x01', n);
        size_t sent = send_for(c, body, n, 10000);
        free(body);
        fprintf(stderr, "round %d: sent %zu of %zu bytes\n", round, sent, n);
        ASSERT_EQ(sent, n);   /* not cut off by a reset */
        resp_t *r = read_resp(c, 10000);
        check_error(r, round == 0 ? 413 : 400, round == 0 ? "--max-body" : NULL);
        ASSERT_STR_EQ(hdr(r, "connection"), "close");
        resp_free(r);
        shutdown(c->fd, SHUT_WR);   /* the server closes at our EOF */
        double t0 = test_now_ms();
        while (!c->eof) fill_or_die_eof(c, t0 + 10000);
        test_close(c);
    }
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* A value of the server's /metrics, read on a connection of its own. */
static double metric(int port, const char *name) {
    resp_t *r = request(port, "GET", "/metrics", NULL);
    ASSERT_EQ(r->status, 200);
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(r->body, key);
    ASSERT(p != NULL);
    double v = strtod(p + strlen(key), NULL);
    resp_free(r);
    return v;
}

/* Pipelined cheap requests not read: the replies stop near --out-soft (the requests wait, not
 * answered ahead of the client), other connections are answered at once, and once the client
 * reads it gets every response in order. */
static int t_pipeflood(void) {
    const char *args[] = {"--out-soft", "32768", "--sndbuf", "8192", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *a = test_connect_rcvbuf(s.port, 8192);
    enum { N = 2700 };   /* about 64 KiB of requests; a /metrics answer is kilobytes */
    size_t cap = (size_t)N * 40, len = 0;
    char *all = malloc(cap);
    for (int i = 0; i < N; i++)   /* odd ones: a 404 that names its path, to check the order */
        len += (size_t)snprintf(all + len, cap - len, i % 2 ? "GET /n%d HTTP/1.1\r\n\r\n"
                                                            : "GET /metrics HTTP/1.1\r\n\r\n", i);
    ASSERT_GT(len, 60000);
    test_send(a, all);
    free(all);
    double most = 0;
    for (int k = 0; k < 10; k++) {   /* a second of not reading */
        usleep(100000);
        double t0 = test_now_ms();
        double q = metric(s.port, "lanes_bytes_queued");
        double dt = test_now_ms() - t0;
        ASSERT_LT(dt, 2000);   /* the I/O thread is not busy with the flood */
        if (q > most) most = q;
    }
    fprintf(stderr, "queued at most %.0f bytes (--out-soft 32768)\n", most);
    ASSERT_GT(most, 0);
    ASSERT_LT(most, 32768 + 65536);   /* --out-soft and the one answer that crossed it */
    for (int i = 0; i < N; i++) {
        resp_t *r = read_resp(a, 20000);
        if (i % 2 == 0) {
            ASSERT_EQ(r->status, 200);
            ASSERT(strstr(r->body, "vllm:num_requests_running") != NULL);
        } else {
            char path[32];
            snprintf(path, sizeof path, "/n%d", i);
            check_error(r, 404, path);
        }
        resp_free(r);
    }
    test_close(a);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* A stop string's prefix holds text back: every streamed chunk still carries its tokens' own
 * text_offset (as the whole response counts them), and no chunk is empty. */
static cJSON *body_with(const char *json, const char *stop) {
    cJSON *b = cJSON_Parse(json);
    ASSERT(b != NULL);
    if (stop) cJSON_AddItemToObject(b, "stop", cJSON_CreateString(stop));
    return b;
}

static resp_t *post_json(int port, const char *path, cJSON *body) {
    char *txt = cJSON_PrintUnformatted(body);
    resp_t *r = request(port, "POST", path, txt);
    ASSERT_EQ(r->status, 200);
    free(txt);
    cJSON_Delete(body);
    return r;
}

/* Streams body; appends every chunk's text and text_offset list; fails on an empty chunk. */
static void stream_collect(int port, const char *path, cJSON *body, char *text, cJSON *offs) {
    cJSON_AddItemToObject(body, "stream", cJSON_CreateTrue());
    resp_t *r = post_json(port, path, body);
    char *ev[512];
    int n = sse_split(r->body, ev, 512);
    int chat = strstr(path, "chat") != NULL;
    for (int i = 0; i < n; i++) {
        cJSON *j = cJSON_Parse(ev[i]);
        const cJSON *c0 = choice(j, 0), *lp = cJSON_GetObjectItem(c0, "logprobs");
        const cJSON *d = chat ? cJSON_GetObjectItem(c0, "delta") : c0;
        const char *t = chat ? test_str(d, "content") : test_str(c0, "text");
        int finished = cJSON_IsString(cJSON_GetObjectItem(c0, "finish_reason"));
        int says = *t || cJSON_HasObjectItem(d, "role") || finished || cJSON_IsObject(lp);
        if (!says) fprintf(stderr, "an empty chunk: %s\n", ev[i]);
        ASSERT(says);
        strcat(text, t);
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItem(lp, "text_offset"))
            cJSON_AddItemToArray(offs, cJSON_Duplicate(o, 0));
        cJSON_Delete(j);
    }
    resp_free(r);
}

static int t_holdback(void) {
    const char *args[] = {"--chat-template", "chatml", NULL};
    test_srv_t s = test_srv_start(args);
    const char *base = "{\"prompt\":\"Once upon a time\",\"max_tokens\":12,\"temperature\":0,"
                       "\"logprobs\":1}";
    resp_t *r = post_json(s.port, "/v1/completions", body_with(base, NULL));
    cJSON *j = resp_json(r);
    const cJSON *toks = cJSON_GetObjectItem(cJSON_GetObjectItem(choice(j, 0), "logprobs"), "tokens");
    ASSERT_GE(cJSON_GetArraySize(toks), 8);
    char stop[64];   /* a token and a byte that never follows: its text waits one token */
    snprintf(stop, sizeof stop, "%s\x01", cJSON_GetArrayItem(toks, 3)->valuestring);
    ASSERT_GT(strlen(stop), 1);
    cJSON_Delete(j);
    resp_free(r);
    cJSON *b = body_with(base, stop);   /* (echo with logprobs is refused: no prompt logprobs) */
    cJSON *b2 = cJSON_Duplicate(b, 1);
    r = post_json(s.port, "/v1/completions", b);
    j = resp_json(r);
    const cJSON *want_offs = cJSON_GetObjectItem(cJSON_GetObjectItem(choice(j, 0), "logprobs"),
                                                 "text_offset");
    char text[4096] = "";
    cJSON *offs = cJSON_CreateArray();
    stream_collect(s.port, "/v1/completions", b2, text, offs);
    char *ws = cJSON_PrintUnformatted(want_offs), *gs = cJSON_PrintUnformatted(offs);
    if (strcmp(gs, ws) != 0) fprintf(stderr, "text_offset %s, streamed %s\n", ws, gs);
    ASSERT_STR_EQ(gs, ws);
    ASSERT_STR_EQ(text, test_str(choice(j, 0), "text"));
    free(ws);
    free(gs);
    cJSON_Delete(offs);
    cJSON_Delete(j);
    resp_free(r);
    /* Without logprobs, a token whose text is all held back sends nothing. */
    b = body_with(base, stop);
    cJSON_DeleteItemFromObject(b, "logprobs");
    text[0] = 0;
    offs = cJSON_CreateArray();
    stream_collect(s.port, "/v1/completions", b, text, offs);
    ASSERT_EQ(cJSON_GetArraySize(offs), 0);
    cJSON_Delete(offs);
    /* Chat: no "delta":{} before the end either. */
    const char *cbase = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":12,"
                        "\"temperature\":0,\"logprobs\":true}";
    r = post_json(s.port, "/v1/chat/completions", body_with(cbase, NULL));
    j = resp_json(r);
    const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(choice(j, 0), "logprobs"),
                                               "content");
    ASSERT_GE(cJSON_GetArraySize(content), 8);
    snprintf(stop, sizeof stop, "%s\x01", test_str(cJSON_GetArrayItem(content, 3), "token"));
    char want[4096];
    snprintf(want, sizeof want, "%s", test_str(cJSON_GetObjectItem(choice(j, 0), "message"), "content"));
    cJSON_Delete(j);
    resp_free(r);
    b = body_with(cbase, stop);
    cJSON_DeleteItemFromObject(b, "logprobs");
    text[0] = 0;
    offs = cJSON_CreateArray();
    stream_collect(s.port, "/v1/chat/completions", b, text, offs);
    cJSON_Delete(offs);
    ASSERT_STR_EQ(text, want);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* /v1/chat/completions with --chat-template chatml: the role first, then content, then the end. */
static int t_chat(void) {
    const char *args[] = {"--chat-template", "chatml", NULL};
    test_srv_t s = test_srv_start(args);
    line_out_t ref;
    line_gen(s.port,
             "{\"prompt\":\"<|im_start|>user\\nhi<|im_end|>\\n<|im_start|>assistant\\n\","
             "\"max_tokens\":10}\n", &ref);
    const char *msgs = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":10,"
                       "\"temperature\":0";
    char body[512];
    snprintf(body, sizeof body, "{%s}", msgs);
    resp_t *r = request(s.port, "POST", "/v1/chat/completions", body);
    ASSERT_EQ(r->status, 200);
    cJSON *j = resp_json(r);
    ASSERT_STR_EQ(test_str(j, "object"), "chat.completion");
    const cJSON *m = cJSON_GetObjectItem(choice(j, 0), "message");
    ASSERT_STR_EQ(test_str(m, "role"), "assistant");
    ASSERT_STR_EQ(test_str(m, "content"), ref.text);
    cJSON_Delete(j);
    resp_free(r);
    snprintf(body, sizeof body, "{%s,\"stream\":true,\"n\":2}", msgs);
    r = request(s.port, "POST", "/v1/chat/completions", body);
    char *ev[256];
    int n = sse_split(r->body, ev, 256);
    char text[2][4096] = {"", ""};
    int roles[2] = {0, 0}, ends[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_Parse(ev[i]);
        ASSERT_STR_EQ(test_str(e, "object"), "chat.completion.chunk");
        const cJSON *c0 = choice(e, 0);
        int k = (int)test_num(c0, "index");
        ASSERT(k == 0 || k == 1);
        const cJSON *d = cJSON_GetObjectItem(c0, "delta");
        ASSERT(!ends[k]);
        if (cJSON_HasObjectItem(d, "role")) {
            ASSERT_EQ(roles[k], 0);   /* the first chunk of the choice, and only it, as OpenAI: */
            ASSERT(text[k][0] == 0);   /* {"role":"assistant","content":""} */
            ASSERT(cJSON_IsString(cJSON_GetObjectItem(d, "content")));
            ASSERT_STR_EQ(test_str(d, "content"), "");
            roles[k] = 1;
        }
        ASSERT(roles[k]);
        strcat(text[k], test_str(d, "content"));
        ends[k] = cJSON_IsString(cJSON_GetObjectItem(c0, "finish_reason"));
        cJSON_Delete(e);
    }
    ASSERT(ends[0] && ends[1]);
    ASSERT_STR_EQ(text[0], ref.text);
    ASSERT_STR_EQ(text[1], ref.text);
    resp_free(r);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* A client closing mid-stream frees its lane within a step or two. */
static int t_sseclose(void) {
    const char *args[] = {"--lanes", "4", "--preset", "15m", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *a = test_connect(s.port), *mon = test_connect(s.port);
    post(a, "/v1/completions", "{\"prompt\":\"walk away\",\"max_tokens\":250,\"stream\":true}");
    size_t k = wait_for(a, "data: ", test_now_ms() + 20000);
    (void)k;
    cJSON *st = test_stats(mon);
    ASSERT_EQ(test_num(st, "lanes_active"), 1);
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(st, "weight_type")), "f32");
    ASSERT(test_num(st, "threads") >= 1);
    cJSON_Delete(st);
    test_close(a);
    double t0 = test_now_ms(), steps0 = -1, busy_last = -1, active = 1;
    while (active > 0) {
        ASSERT_LT(test_now_ms() - t0, 5000);
        st = test_stats(mon);
        active = test_num(st, "lanes_active");
        double steps = test_num(st, "steps");
        if (steps0 < 0 && (test_num(st, "connections") == 1 || active == 0)) steps0 = steps;
        if (steps0 >= 0 && active > 0) busy_last = steps;
        cJSON_Delete(st);
    }
    ASSERT_LE(busy_last - steps0, 1);   /* as the line protocol's disconnect (test_io_server) */
    st = test_stats(mon);
    ASSERT_EQ(test_num(st, "requests_active"), 0);
    ASSERT_LT(test_num(st, "tokens_generated"), 250);
    cJSON_Delete(st);
    test_close(mon);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* A slow SSE reader is paused, not cut, and gets its whole stream once it reads. */
static int t_slowsse(void) {
    const char *args[] = {"--out-soft", "8192", "--out-hard", "4194304", "--sndbuf", "4096",
                          "--lanes", "4", NULL};
    test_srv_t s = test_srv_start(args);
    line_out_t ref;
    line_gen(s.port, "{\"prompt\":\"slow\",\"max_tokens\":200}\n", &ref);
    test_conn_t *a = test_connect_rcvbuf(s.port, 4096), *mon = test_connect(s.port);
    /* many pipelined streams, not read: their chunks pile up past --out-soft */
    char body[256];
    snprintf(body, sizeof body, "{\"prompt\":\"slow\",\"max_tokens\":200,\"temperature\":0,\"stream\":true}");
    for (int i = 0; i < 6; i++) post(a, "/v1/completions", body);
    int paused = 0;
    for (double t0 = test_now_ms(); !paused && test_now_ms() - t0 < 10000;) {
        cJSON *st = test_stats(mon);
        paused = test_num(st, "connections_paused") >= 1;
        cJSON_Delete(st);
        if (!paused) usleep(10000);
    }
    ASSERT(paused);
    for (int i = 0; i < 6; i++) {   /* now read: every stream whole, in order */
        resp_t *r = read_resp(a, 30000);
        ASSERT_EQ(r->status, 200);
        char *ev[1024], text[65536] = "";
        int n = sse_split(r->body, ev, 1024);
        for (int e = 0; e < n; e++) {
            cJSON *j = cJSON_Parse(ev[e]);
            strcat(text, test_str(choice(j, 0), "text"));
            cJSON_Delete(j);
        }
        ASSERT_STR_EQ(text, ref.text);
        resp_free(r);
    }
    cJSON *st = test_stats(mon);
    ASSERT_EQ(test_num(st, "connections_paused"), 0);
    cJSON_Delete(st);
    test_close(a);
    test_close(mon);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* --http-port: HTTP without sniffing ("GET the weather" is a bad request there); the line
 * protocol's port is unchanged; a connection past --max-conns gets a 503 there. */
static int t_httpport(void) {
    const char *args[] = {"--http-port", "0", "--max-conns", "2", NULL};
    test_srv_t s = test_srv_start(args);
    int hp = test_srv_wait_port(&s, "HTTP only on ");   /* logged beside "listening on" */
    ASSERT_NE(hp, s.port);
    resp_t *r = request(hp, "GET", "/health", NULL);
    ASSERT_EQ(r->status, 200);
    resp_free(r);
    test_conn_t *c = test_connect(hp);
    test_send(c, "GET the weather\n\n");
    r = read_resp(c, 10000);
    check_error(r, 400, NULL);
    resp_free(r);
    test_close(c);
    c = test_connect(s.port);   /* the shared port still sniffs */
    test_send(c, "{\"op\":\"health\"}\n");
    cJSON *j = test_json(c, 10000);
    ASSERT_STR_EQ(test_str(j, "event"), "health");
    cJSON_Delete(j);
    for (double t0 = test_now_ms();; usleep(2000)) {   /* the closed ones are gone: c is alone */
        cJSON *st = test_stats(c);
        int n = (int)test_num(st, "connections");
        cJSON_Delete(st);
        if (n == 1) break;
        ASSERT_LT(test_now_ms() - t0, 10000);
    }
    test_conn_t *d = test_connect(hp), *e = test_connect(hp);   /* the third connection */
    r = read_resp(e, 10000);
    ASSERT_EQ(r->status, 503);
    resp_free(r);
    test_close(e);
    test_close(d);
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

int main(int argc, char **argv) {
    static const struct { const char *name; int (*fn)(void); } tests[] = {
        {"sniff", t_sniff}, {"keepalive", t_keepalive}, {"chunked", t_chunked},
        {"errors", t_errors}, {"timeout", t_timeout}, {"busy", t_busy},
        {"endpoints", t_endpoints}, {"completions", t_completions}, {"chat", t_chat},
        {"holdback", t_holdback}, {"pipeflood", t_pipeflood}, {"linger", t_linger},
        {"loading", t_loading}, {"sseclose", t_sseclose}, {"slowsse", t_slowsse}, {"httpport", t_httpport},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) continue;
        double t = test_now_ms();
        rc |= tests[i].fn();
        fprintf(stderr, "%s: ok (%.0f ms)\n", tests[i].name, test_now_ms() - t);
    }
    return rc;
}
