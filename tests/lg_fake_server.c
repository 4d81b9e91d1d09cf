/* A stand-in for lanes-server that speaks its line protocol with deterministic fake tokens, for the
 * loadgen tests. Token i of a prompt is a hash of the prompt and i; every active stream gets one
 * token per step (--step-ms). Test hooks: --corrupt N alters token 2 of the N-th generate request
 * (0-based, counted over the server's life); --die-after N exits abruptly when the N-th request
 * arrives. Prints "listening on 127.0.0.1:PORT" to stderr like the real server. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <uv.h>

typedef struct conn {
    uv_tcp_t tcp;
    char *buf;
    size_t len, cap;
    int alive;
} conn_t;

typedef struct {
    conn_t *c;
    char *id;                                    /* the client's id as JSON text */
    uint32_t hash;
    int pos, max, corrupt;
    uint64_t t0;
} stream_t;

static uv_loop_t *loop;
static stream_t *streams;
static int n_streams, cap_streams;
static long long n_generate, tokens_generated, prompt_tokens, served, steps;
static long long corrupt_at = -1, die_after = -1;
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

static void on_step(uv_timer_t *t) {
    (void)t;
    if (n_streams) steps++;
    char line[512];
    int j = 0;
    for (int i = 0; i < n_streams; i++) {
        stream_t *s = &streams[i];
        if (!s->c->alive) {
            free(s->id);
            continue;
        }
        int tok = token_of(s, s->pos);
        if (s->corrupt && s->pos == 2) tok = (tok + 1) % 32000;
        int n = snprintf(line, sizeof line, "{\"id\":%s,\"event\":\"token\",\"tokens\":[%d],\"text\":\" t%d\"}\n",
                         s->id, tok, tok);
        send_line(s->c, line, (size_t)n);
        tokens_generated++;
        s->pos++;
        if (s->pos >= s->max) {
            double total = (double)(uv_hrtime() - s->t0) / 1e6;
            n = snprintf(line, sizeof line,
                         "{\"id\":%s,\"event\":\"done\",\"reason\":\"length\",\"usage\":{\"prompt_tokens\":4,"
                         "\"completion_tokens\":%d},\"timing\":{\"queue_ms\":0,\"ttft_ms\":1,\"total_ms\":%.3f}}\n",
                         s->id, s->max, total);
            send_line(s->c, line, (size_t)n);
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
                           "{\"event\":\"stats\",\"lanes_total\":16,\"lanes_active\":%d,\"queue_depth\":0,"
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
            if (die_after >= 0 && n_generate >= die_after) _exit(3);   /* vanish mid-run */
            if (n_streams == cap_streams) {
                cap_streams = cap_streams ? cap_streams * 2 : 64;
                streams = realloc(streams, (size_t)cap_streams * sizeof *streams);
            }
            stream_t *st = &streams[n_streams++];
            memset(st, 0, sizeof *st);
            st->c = c;
            st->id = cJSON_PrintUnformatted(id);
            uint32_t h = 2166136261u;                                 /* FNV-1a */
            for (const char *q = p->valuestring; *q; q++) h = (h ^ (uint8_t)*q) * 16777619u;
            st->hash = h;
            st->max = cJSON_IsNumber(mt) ? mt->valueint : 64;
            st->corrupt = n_generate == corrupt_at;
            st->t0 = uv_hrtime();
            prompt_tokens += 4;
            n_generate++;
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
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    c->len += (size_t)n;
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
    }
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
    return 0;
}
