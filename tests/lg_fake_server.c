/* A stand-in for lanes-server that speaks its line protocol with deterministic fake tokens, for the
 * loadgen tests. Token i of a prompt is a hash of the prompt and i; every active stream gets one
 * token per step (--step-ms). A prompt counts as its words plus one (BOS) tokens. Test hooks:
 * --corrupt N alters token 2 of the N-th generate request (0-based, counted over the server's
 * life); --die-after N exits abruptly when the N-th request arrives; --eos-at N ends a stream with
 * reason "stop" after N tokens unless the request says ignore_eos.
 * A connection whose first bytes are "GET " or "POST " speaks OpenAI's HTTP instead: GET /v1/models
 * (one model, "fake-model"), GET /metrics (vLLM's token counters; --no-metrics: 404) and streamed
 * POST /v1/completions (SSE; the last text chunk carries finish_reason, then the usage chunk when
 * stream_options.include_usage, then [DONE]), framed as --http-framing chunked (default), close
 * (Connection: close, the body ends at the close) or length (the whole stream at the end, with a
 * Content-Length); --chunk-tokens K puts K tokens in a chunk; --fail-every N answers every N-th
 * completion with 429; --drop-every N closes the connection instead of answering every N-th
 * completion that arrives on a connection that served one already (as a keep-alive timeout that
 * fires just as a request arrives). On SIGTERM it prints
 * "connections accepted: N".
 * Prints "listening on 127.0.0.1:PORT" to stderr like the real server. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
    char *buf;
    size_t len, cap;
    int alive;
    int http;                                    /* 1 HTTP, 0 lines, -1 not decided yet */
    int posts;                                   /* completions asked on it */
} conn_t;

enum { FRAME_CHUNKED, FRAME_CLOSE, FRAME_LENGTH };

typedef struct {
    conn_t *c;
    char *id;                                    /* the client's id as JSON text */
    uint32_t hash;
    int pos, max, corrupt, ptoks, ignore_eos;
    int http, usage;                             /* an SSE stream; send the usage chunk */
    char *acc;                                   /* FRAME_LENGTH: the body so far */
    size_t acc_len;
    uint64_t t0;
} stream_t;

static uv_loop_t *loop;
static stream_t *streams;
static int n_streams, cap_streams;
static long long n_generate, tokens_generated, prompt_tokens, served, steps, accepted;
static long long corrupt_at = -1, die_after = -1, eos_at = -1, fail_every = 0, drop_every = 0;
static int framing = FRAME_CHUNKED, chunk_tokens = 1, no_metrics;
static uint64_t t_start;

static void on_write(uv_write_t *w, int status) {
    (void)status;
    free(w);
}

static void send_line(conn_t *c, const char *s, size_t n) {
    if (!c->alive) return;
    uv_write_t *w = malloc(sizeof *w + n);
    char *data = (char *)(w + 1);
    memcpy(data, s, n);
    uv_buf_t b = uv_buf_init(data, (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) free(w);
}

static int token_of(const stream_t *s, int pos) { return (int)((s->hash + (uint32_t)pos * 7919u) % 32000u); }

static void on_close(uv_handle_t *h);

static void on_shutdown(uv_shutdown_t *req, int status) {
    (void)status;
    if (!uv_is_closing((uv_handle_t *)req->handle)) uv_close((uv_handle_t *)req->handle, on_close);
    free(req);
}

/* One SSE event of stream s, framed as the server is told to. */
static void sse_send(stream_t *s, const char *payload, size_t n) {
    char *ev = malloc(n + 32);
    int k = snprintf(ev, n + 32, "data: %.*s\n\n", (int)n, payload);
    if (framing == FRAME_LENGTH) {
        s->acc = realloc(s->acc, s->acc_len + (size_t)k);
        memcpy(s->acc + s->acc_len, ev, (size_t)k);
        s->acc_len += (size_t)k;
    } else if (framing == FRAME_CHUNKED) {      /* one write per chunk, as servers do */
        char *chunk = malloc((size_t)k + 32);
        int h = snprintf(chunk, 32, "%x\r\n", k);
        memcpy(chunk + h, ev, (size_t)k);
        memcpy(chunk + h + k, "\r\n", 2);
        send_line(s->c, chunk, (size_t)(h + k + 2));
        free(chunk);
    } else {
        send_line(s->c, ev, (size_t)k);
    }
    free(ev);
}

static void sse_end(stream_t *s) {
    if (framing == FRAME_LENGTH) {
        char head[160];
        int h = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                            "Content-Length: %zu\r\n\r\n", s->acc_len);
        send_line(s->c, head, (size_t)h);
        send_line(s->c, s->acc, s->acc_len);
        free(s->acc);
        s->acc = NULL;
    } else if (framing == FRAME_CHUNKED) {
        send_line(s->c, "0\r\n\r\n", 5);
    } else if (s->c->alive) {                    /* the body ends where the connection does */
        s->c->alive = 0;
        uv_shutdown_t *req = malloc(sizeof *req);
        if (uv_shutdown(req, (uv_stream_t *)&s->c->tcp, on_shutdown) < 0) free(req);
    }
}

/* A stream's next step: k tokens, and its end when it is done. 1 when it ended. */
static int step_stream(stream_t *s) {
    char line[1024];
    int stop_at = eos_at >= 0 && !s->ignore_eos && eos_at < s->max ? (int)eos_at : s->max;
    int k = s->http ? chunk_tokens : 1;
    if (k > stop_at - s->pos) k = stop_at - s->pos;
    char text[512];
    size_t tn = 0;
    int toks[64];
    for (int i = 0; i < k; i++) {
        int tok = token_of(s, s->pos);
        if (s->corrupt && s->pos == 2) tok = (tok + 1) % 32000;
        toks[i] = tok;
        tn += (size_t)snprintf(text + tn, sizeof text - tn, " t%d", tok);
        s->pos++;
        tokens_generated++;
    }
    int end = s->pos >= stop_at;
    const char *reason = s->pos >= s->max ? "length" : "stop";
    int n;
    if (s->http) {
        n = snprintf(line, sizeof line,
                     "{\"id\":\"cmpl-%s\",\"object\":\"text_completion\",\"created\":0,\"model\":\"fake-model\","
                     "\"choices\":[{\"index\":0,\"text\":\"%s\",\"logprobs\":null,\"finish_reason\":%s%s%s}]}",
                     s->id, text, end ? "\"" : "", end ? reason : "null", end ? "\"" : "");
        sse_send(s, line, (size_t)n);
        if (end && s->usage) {
            n = snprintf(line, sizeof line,
                         "{\"id\":\"cmpl-%s\",\"object\":\"text_completion\",\"created\":0,\"model\":\"fake-model\","
                         "\"choices\":[],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                         "\"total_tokens\":%d}}",
                         s->id, s->ptoks, s->pos, s->ptoks + s->pos);
            sse_send(s, line, (size_t)n);
        }
        if (end) {
            sse_send(s, "[DONE]", 6);
            sse_end(s);
        }
    } else {
        n = snprintf(line, sizeof line, "{\"id\":%s,\"event\":\"token\",\"tokens\":[%d],\"text\":\"%s\"}\n",
                     s->id, toks[0], text);
        send_line(s->c, line, (size_t)n);
        if (end) {
            double total = (double)(uv_hrtime() - s->t0) / 1e6;
            n = snprintf(line, sizeof line,
                         "{\"id\":%s,\"event\":\"done\",\"reason\":\"%s\",\"usage\":{\"prompt_tokens\":%d,"
                         "\"completion_tokens\":%d},\"timing\":{\"queue_ms\":0,\"ttft_ms\":1,\"total_ms\":%.3f}}\n",
                         s->id, reason, s->ptoks, s->pos, total);
            send_line(s->c, line, (size_t)n);
        }
    }
    return end;
}

static void on_step(uv_timer_t *t) {
    (void)t;
    if (n_streams) steps++;
    int j = 0;
    for (int i = 0; i < n_streams; i++) {
        stream_t *s = &streams[i];
        if (!s->c->alive) {
            free(s->id);
            free(s->acc);
            continue;
        }
        if (step_stream(s)) {
            served++;
            free(s->id);
            continue;
        }
        streams[j++] = *s;
    }
    n_streams = j;
}

static void reply_error(conn_t *c, const cJSON *id, const char *code, const char *msg) {
    char *ids = id ? cJSON_PrintUnformatted(id) : NULL;
    char line[512];
    int n = snprintf(line, sizeof line, "{\"id\":%s,\"event\":\"error\",\"code\":\"%s\",\"message\":\"%s\"}\n",
                     ids ? ids : "null", code, msg);
    send_line(c, line, (size_t)n);
    free(ids);
}

/* Takes id (JSON text for lines, a number for HTTP). */
static void new_stream(conn_t *c, const char *prompt, int max, int ignore_eos, char *id, int http,
                       int usage) {
    if (die_after >= 0 && n_generate >= die_after) _exit(3);   /* vanish mid-run */
    if (n_streams == cap_streams) {
        cap_streams = cap_streams ? cap_streams * 2 : 64;
        streams = realloc(streams, (size_t)cap_streams * sizeof *streams);
    }
    stream_t *st = &streams[n_streams++];
    memset(st, 0, sizeof *st);
    st->c = c;
    st->id = id;
    uint32_t h = 2166136261u;                                 /* FNV-1a */
    int words = 0;
    for (const char *q = prompt; *q; q++) {
        h = (h ^ (uint8_t)*q) * 16777619u;
        words += *q != ' ' && (q == prompt || q[-1] == ' ');
    }
    st->hash = h;
    st->max = max;
    st->ignore_eos = ignore_eos;
    st->http = http;
    st->usage = usage;
    st->ptoks = words + 1;
    st->corrupt = n_generate == corrupt_at;
    st->t0 = uv_hrtime();
    prompt_tokens += st->ptoks;
    n_generate++;
}

static void http_reply(conn_t *c, int status, const char *type, const char *body) {
    char head[256];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                     status, status == 200 ? "OK" : "Error", type, strlen(body));
    send_line(c, head, (size_t)n);
    send_line(c, body, strlen(body));
}

static void http_error(conn_t *c, int status, const char *msg) {
    char body[512];
    snprintf(body, sizeof body, "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\","
                                "\"param\":null,\"code\":null}}", msg);
    http_reply(c, status, "application/json", body);
}

static void http_request(conn_t *c, const char *method, const char *path, const char *body, size_t blen) {
    char text[1024];
    if (strcmp(method, "GET") == 0 && strcmp(path, "/v1/models") == 0) {
        http_reply(c, 200, "application/json",
                   "{\"object\":\"list\",\"data\":[{\"id\":\"fake-model\",\"object\":\"model\"}]}");
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/metrics") == 0 && !no_metrics) {
        snprintf(text, sizeof text,
                 "# TYPE vllm:generation_tokens_total counter\n"
                 "vllm:generation_tokens_total{model_name=\"fake-model\"} %lld\n"
                 "vllm:prompt_tokens_total{model_name=\"fake-model\"} %lld\n"
                 "lanes_lanes_capacity 16\nlanes_steps_total %lld\n", tokens_generated, prompt_tokens, steps);
        http_reply(c, 200, "text/plain; version=0.0.4", text);
    } else if (strcmp(method, "POST") == 0 && strcmp(path, "/v1/completions") == 0) {
        cJSON *j = cJSON_ParseWithLength(body, blen);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "max_tokens");
        const cJSON *so = cJSON_GetObjectItemCaseSensitive(j, "stream_options");
        static long long n_completions, n_reused;
        if (c->posts++ > 0 && drop_every > 0 && ++n_reused % drop_every == 0) {
            c->alive = 0;
            uv_close((uv_handle_t *)&c->tcp, on_close);
        } else if (!cJSON_IsString(p) || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stream"))) {
            http_error(c, 400, "want a prompt and stream: true");
        } else if (!cJSON_IsString(m) || strcmp(m->valuestring, "fake-model") != 0) {
            http_error(c, 404, "no such model");
        } else if (fail_every > 0 && ++n_completions % fail_every == 0) {
            http_error(c, 429, "queue full");
        } else {
            const char *head = framing == FRAME_CHUNKED ? "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                                          "Transfer-Encoding: chunked\r\n\r\n"
                             : framing == FRAME_CLOSE ? "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                                        "Connection: close\r\n\r\n"
                                                      : "";      /* FRAME_LENGTH: at the end */
            if (*head) send_line(c, head, strlen(head));
            char *id = malloc(24);
            snprintf(id, 24, "%lld", n_generate);
            new_stream(c, p->valuestring, cJSON_IsNumber(mt) ? mt->valueint : 16,
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ignore_eos")), id, 1,
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage")));
        }
        cJSON_Delete(j);
    } else {
        http_error(c, 404, "no such route");
    }
}

/* Serves every complete request in c's buffer. */
static void http_serve(conn_t *c) {
    for (;;) {
        char *end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (!end) return;
        size_t head = (size_t)(end - c->buf) + 4, blen = 0;
        for (char *q = c->buf; q < end; q++)
            if (strncasecmp(q, "\ncontent-length:", 16) == 0) blen = (size_t)atol(q + 16);
        if (c->len < head + blen) return;
        char method[8] = "", path[64] = "";
        sscanf(c->buf, "%7s %63s", method, path);
        http_request(c, method, path, c->buf + head, blen);
        if (!c->alive) return;                   /* dropped: on_close frees it */
        memmove(c->buf, c->buf + head + blen, c->len - head - blen);
        c->len -= head + blen;
    }
}

static void handle_line(conn_t *c, const char *s, size_t n) {
    cJSON *j = cJSON_ParseWithLength(s, n);
    if (!j) {
        reply_error(c, NULL, "EPROTO", "bad json");
        return;
    }
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    char line[1024];
    if (cJSON_IsString(op) && strcmp(op->valuestring, "stats") == 0) {
        int len = snprintf(line, sizeof line,
                           "{\"event\":\"stats\",\"model\":\"fake-model\",\"lanes_total\":16,\"lanes_active\":%d,\"queue_depth\":0,"
                           "\"requests_served\":%lld,\"requests_active\":%d,\"tokens_generated\":%lld,"
                           "\"prompt_tokens\":%lld,\"steps\":%lld,\"uptime_s\":%.3f,\"step_ms_avg\":1.0,"
                           "\"step_ms_last\":1.0}\n",
                           n_streams, served, n_streams, tokens_generated, prompt_tokens, steps,
                           (double)(uv_hrtime() - t_start) / 1e9);
        send_line(c, line, (size_t)len);
    } else if (cJSON_IsString(op) && strcmp(op->valuestring, "health") == 0) {
        send_line(c, "{\"event\":\"health\",\"status\":\"ok\"}\n", 34);
    } else if (cJSON_IsString(op)) {
        reply_error(c, id, "EPROTO", "unknown op");
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "max_tokens");
        if (!cJSON_IsString(p) || !id) {
            reply_error(c, id, "EPROTO", "need id and prompt");
        } else {
            const cJSON *ie = cJSON_GetObjectItemCaseSensitive(j, "ignore_eos");
            char *ids = cJSON_PrintUnformatted(id);
            new_stream(c, p->valuestring, cJSON_IsNumber(mt) ? mt->valueint : 64, cJSON_IsTrue(ie), ids, 0, 0);
        }
    }
    cJSON_Delete(j);
}

static void on_alloc(uv_handle_t *h, size_t sug, uv_buf_t *b) {
    conn_t *c = h->data;
    (void)sug;
    if (c->cap - c->len < 4096) {
        c->cap = c->cap ? c->cap * 2 : 8192;
        c->buf = realloc(c->buf, c->cap);
    }
    *b = uv_buf_init(c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void on_close(uv_handle_t *h) {
    conn_t *c = h->data;
    /* Streams of a dead connection are dropped at the next step; free once none refer to it. */
    for (int i = 0; i < n_streams; i++)
        if (streams[i].c == c) {
            free(streams[i].id);
            streams[i] = streams[--n_streams];
            i--;
        }
    free(c->buf);
    free(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    (void)b;
    conn_t *c = s->data;
    if (n < 0) {
        c->alive = 0;
        if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_close);
        return;
    }
    c->len += (size_t)n;
    if (c->http < 0 && c->len >= 4)
        c->http = memcmp(c->buf, "GET ", 4) == 0 || (c->len >= 5 && memcmp(c->buf, "POST ", 5) == 0);
    if (c->http < 0) return;
    if (c->http) {
        http_serve(c);
        return;
    }
    size_t start = 0;
    char *nl;
    while ((nl = memchr(c->buf + start, '\n', c->len - start)) != NULL) {
        handle_line(c, c->buf + start, (size_t)(nl - (c->buf + start)));
        start = (size_t)(nl - c->buf) + 1;
    }
    memmove(c->buf, c->buf + start, c->len - start);
    c->len -= start;
}

static void on_conn(uv_stream_t *srv, int status) {
    if (status < 0) return;
    conn_t *c = calloc(1, sizeof *c);
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return;
    }
    c->alive = 1;
    c->http = -1;
    accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_signal(uv_signal_t *s, int sig) {
    (void)sig;
    uv_stop(s->loop);
}

int main(int argc, char **argv) {
    int port = 0, step_ms = 1;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--port") == 0) port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--corrupt") == 0) corrupt_at = atoll(argv[++i]);
        else if (strcmp(argv[i], "--die-after") == 0) die_after = atoll(argv[++i]);
        else if (strcmp(argv[i], "--step-ms") == 0) step_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--eos-at") == 0) eos_at = atoll(argv[++i]);
        else if (strcmp(argv[i], "--fail-every") == 0) fail_every = atoll(argv[++i]);
        else if (strcmp(argv[i], "--drop-every") == 0) drop_every = atoll(argv[++i]);
        else if (strcmp(argv[i], "--chunk-tokens") == 0) chunk_tokens = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-metrics") == 0) no_metrics = atoi(argv[++i]);
        else if (strcmp(argv[i], "--http-framing") == 0) {
            i++;
            framing = strcmp(argv[i], "close") == 0 ? FRAME_CLOSE : strcmp(argv[i], "length") == 0 ? FRAME_LENGTH
                                                                                           : FRAME_CHUNKED;
        }
    }
    if (chunk_tokens < 1 || chunk_tokens > 64) chunk_tokens = 1;
    loop = uv_default_loop();
    t_start = uv_hrtime();
    uv_tcp_t srv;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &srv);
    if (uv_tcp_bind(&srv, (const struct sockaddr *)&addr, 0) < 0 || uv_listen((uv_stream_t *)&srv, 256, on_conn) < 0) {
        fprintf(stderr, "fake server: cannot listen on port %d\n", port);
        return 1;
    }
    struct sockaddr_in bound;
    int blen = sizeof bound;
    uv_tcp_getsockname(&srv, (struct sockaddr *)&bound, &blen);
    fprintf(stderr, "fake server: listening on 127.0.0.1:%d\n", ntohs(bound.sin_port));
    fflush(stderr);
    uv_timer_t step;
    uv_timer_init(loop, &step);
    uv_timer_start(&step, on_step, (uint64_t)step_ms, (uint64_t)step_ms);
    uv_signal_t sig;
    uv_signal_init(loop, &sig);
    uv_signal_start(&sig, on_signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    fprintf(stderr, "fake server: connections accepted: %lld\n", accepted);
    return 0;
}
