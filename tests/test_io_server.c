/* End to end over real TCP: lanes-server (tiny synthetic model) as a child process on an ephemeral
 * loopback port. `test_io_server NAME` runs one scenario; ctest registers each. */
#include "base/lanes_utf8.h"
#include "test_net.h"

#include <pthread.h>

#include "bundle.h"
#include "engine.h"
#include "gen.h"

#define MAX_GEN 256

/* What the engine alone gives for one prompt (greedy, one lane): ids and text. */
typedef struct {
    int32_t ids[MAX_GEN];
    int n, end;
    char text[MAX_GEN * 64];
} ref_t;

static eng_bundle_t bundle;
static eng_ctx_t *ref_ctx;
static const char *ref_preset = "tiny";   /* the server's model: set before the first reference */

static void reference(const char *prompt, int max_new, ref_t *out) {
    if (ref_ctx == NULL) {
        ASSERT_EQ(eng_bundle_open(&bundle, NULL, NULL, ref_preset, 1), 0);
        eng_ctx_cfg_t cc = {1, 256, 1, ENG_GEMM_LANES, 0};
        ASSERT_EQ(eng_ctx_create(bundle.model, &cc, &ref_ctx), 0);
    }
    int32_t pt[256];
    int np = eng_tok_encode(bundle.tok, prompt, strlen(prompt), ENG_TOK_ADD_SPECIAL, pt, 256);
    ASSERT_GT(np, 0);
    eng_gen_req_t r = {pt, np, max_new, {0, 0, 1, 0}, out->ids, NULL, 0, 0, NULL, 0};
    eng_gen_opts_t go = {1, 0, 0, bundle.tok};
    ASSERT_EQ(eng_gen_run(ref_ctx, &r, 1, &go), 0);
    out->n = r.n_out;
    out->end = r.end;
    size_t len = 0;
    int32_t prev = pt[np - 1];
    for (int i = 0; i < r.n_out; i++) {
        size_t pl;
        const char *p = eng_tok_decode(bundle.tok, prev, out->ids[i], &pl);
        memcpy(out->text + len, p, pl);
        len += pl;
        prev = out->ids[i];
    }
    out->text[len] = 0;
}

/* One client stream's replies, gathered. */
typedef struct {
    int32_t ids[4096];
    int n, done, first_seen;
    char text[MAX_GEN * 64 * 4];
    size_t tlen;
    char reason[32], code[32];
    int completion_tokens;
} got_t;

/* Folds one event line into g; returns 1 when it was terminal. */
static int fold(got_t *g, const cJSON *j) {
    const char *ev = test_str(j, "event");
    if (strcmp(ev, "token") == 0) {
        ASSERT(!g->done);
        const cJSON *t, *toks = cJSON_GetObjectItemCaseSensitive(j, "tokens");
        cJSON_ArrayForEach(t, toks) if (g->n < 4096) g->ids[g->n++] = (int32_t)t->valuedouble;
        const char *txt = test_str(j, "text");
        size_t l = strlen(txt);
        if (g->tlen + l < sizeof g->text) memcpy(g->text + g->tlen, txt, l), g->tlen += l;
        g->text[g->tlen] = 0;
        return 0;
    }
    ASSERT(!g->done);
    g->done = 1;
    if (strcmp(ev, "done") == 0) {
        snprintf(g->reason, sizeof g->reason, "%s", test_str(j, "reason"));
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
        g->completion_tokens = (int)test_num(u, "completion_tokens");
        ASSERT_EQ(g->completion_tokens, g->n);
    } else {
        ASSERT_STR_EQ(ev, "error");
        snprintf(g->code, sizeof g->code, "%s", test_str(j, "code"));
    }
    return 1;
}

/* Sends a generate with id and waits for its terminal event on c (other ids are not expected). */
static void run_one(test_conn_t *c, const char *id, const char *prompt, int max_tokens, got_t *g) {
    char line[1024];
    snprintf(line, sizeof line, "{\"id\":\"%s\",\"prompt\":\"%s\",\"max_tokens\":%d}\n", id, prompt,
             max_tokens);
    test_send(c, line);
    memset(g, 0, sizeof *g);
    for (;;) {
        cJSON *j = test_json(c, 20000);
        ASSERT_STR_EQ(test_str(j, "id"), id);
        int fin = fold(g, j);
        cJSON_Delete(j);
        if (fin) break;
    }
}

static void check_ref(const got_t *g, const char *prompt, int max_tokens) {
    ref_t r;
    reference(prompt, max_tokens, &r);
    ASSERT_EQ(g->n, r.n);
    for (int i = 0; i < r.n; i++) ASSERT_EQ(g->ids[i], r.ids[i]);
    char valid[sizeof r.text * 3];   /* JSON text: invalid UTF-8 bytes arrive as U+FFFD */
    lanes_utf8_sanitize(valid, r.text, strlen(r.text));
    ASSERT_STR_EQ(g->text, valid);
    ASSERT_STR_EQ(g->reason, eng_end_name(r.end));
}

/* Reads every connection until each has one terminal event per request it sent. */
static void gather(test_conn_t **cs, int n, got_t *got, int per_conn, int timeout_ms) {
    double end = test_now_ms() + timeout_ms;
    int left = n * per_conn;
    int *mine = calloc((size_t)n, sizeof *mine);   /* terminal events still due per connection */
    for (int i = 0; i < n; i++) mine[i] = per_conn;
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    while (left > 0) {
        ASSERT_LT(test_now_ms(), end);
        for (int i = 0; i < n; i++) p[i] = (struct pollfd){cs[i]->eof ? -1 : cs[i]->fd, POLLIN, 0};
        poll(p, (nfds_t)n, 100);
        for (int i = 0; i < n; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (test_fill(cs[i]) < 0) {   /* the server may close once it said everything */
                if (mine[i] == 0) continue;
                fprintf(stderr, "conn %d closed with %d terminal events missing\n", i, mine[i]);
                exit(1);
            }
            char *l;
            while ((l = test_take_line(cs[i])) != NULL) {
                cJSON *j = cJSON_Parse(l);
                if (j == NULL) fprintf(stderr, "bad JSON line: %s\n", l);
                ASSERT(j != NULL);
                const char *id = test_str(j, "id");
                int k = per_conn == 1 ? 0 : atoi(id + 1);   /* ids "rK" */
                ASSERT_LT(k, per_conn);
                int fin = fold(&got[i * per_conn + k], j);
                left -= fin;
                mine[i] -= fin;
                cJSON_Delete(j);
                free(l);
            }
        }
    }
    free(p);
    free(mine);
}

/* 128 connections, a different prompt each, greedy: each equals the engine run alone. */
static int t_parity(void) {
    enum { N = 128, TOK = 24 };
    test_srv_t s = test_srv_start(NULL);
    test_conn_t *cs[N];
    got_t *got = calloc(N, sizeof *got);
    char prompt[N][96];
    for (int i = 0; i < N; i++) {
        snprintf(prompt[i], sizeof prompt[i], "Story %d: once upon a time %s", i * 7919 % 1000,
                 i % 3 ? "there was a cat" : "a dog");
        cs[i] = test_connect(s.port);
    }
    for (int i = 0; i < N; i++) {
        char line[256];
        const char *pr = prompt[i];
        snprintf(line, sizeof line, "{\"id\":%d,\"prompt\":\"%.200s\",\"max_tokens\":%d}\n", i, pr,
                 TOK);
        test_send(cs[i], line);
    }
    gather(cs, N, got, 1, 60000);
    /* 128 prompts arrived at once: no step took more than a column per lane plus the default
     * --prefill-chunk of 64 prompt columns. */
    cJSON *st = test_stats(cs[0]);
    ASSERT_LE(test_num(st, "step_cols_max"), 128 + 64);
    ASSERT_GE(test_num(st, "step_cols_max"), 1);
    ASSERT_STR_EQ(test_str(st, "model"), "synthetic");   /* the model's name: --preset */
    cJSON_Delete(st);
    for (int i = 0; i < N; i++) {
        check_ref(&got[i], prompt[i], TOK);
        test_close(cs[i]);
    }
    /* And, for a few of them, the lanes-run program itself. */
    for (int i = 0; i < N; i += 41) {
        char cmd[1024];
        const char *pr = prompt[i];
        snprintf(cmd, sizeof cmd, "%.500s/lanes-run --preset tiny --threads 1 -n %d --json -p '%.200s'",
                 getenv("LANES_BIN"), TOK, pr);
        FILE *f = popen(cmd, "r");
        ASSERT(f != NULL);
        char out[16384];
        size_t n = fread(out, 1, sizeof out - 1, f);
        out[n] = 0;
        ASSERT_EQ(pclose(f), 0);
        cJSON *j = cJSON_Parse(out), *t;
        ASSERT(j != NULL);
        int k = 0;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(j, "tokens")) {
            ASSERT_LT(k, got[i].n);
            ASSERT_EQ((int32_t)t->valuedouble, got[i].ids[k]);
            k++;
        }
        ASSERT_EQ(k, got[i].n);
        ASSERT_STR_EQ(test_str(j, "text"), got[i].text);
        cJSON_Delete(j);
    }
    free(got);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* Each bad input gets its code; the same connection and server then serve a normal request. */
static int t_badinput(void) {
    /* 15m, not tiny: its 200-token streams take long enough that the cancels below always find
     * them running (tiny could finish one first, through the tokenizer worker's queue). */
    const char *args[] = {"--max-inflight", "3", "--max-conns", "4", "--preset", "15m", NULL};
    ref_preset = "15m";
    test_srv_t s = test_srv_start(args);
    test_conn_t *c = test_connect(s.port);
    static const struct { const char *line, *code; } bad[] = {
        {"{\"id\":1,\"prompt\":\"x\"", "EPROTO"},
        {"{\"id\":1,,}", "EPROTO"},
        {"{\"id\":1} trailing", "EPROTO"},
        {"{\"id\":2,\"prompt\":5}", "EINVAL"},
        {"{\"id\":3}", "EINVAL"},
        {"{\"id\":4,\"prompt\":\"\"}", "EINVAL"},
        {"{\"id\":5,\"op\":\"frobnicate\"}", "EINVAL"},
        {"{\"id\":6,\"op\":7}", "EINVAL"},
        {"{\"id\":{\"a\":1},\"prompt\":\"x\"}", "EINVAL"},
        {"{\"id\":8,\"prompt\":\"x\",\"max_tokens\":0}", "EINVAL"},
        {"{\"id\":9,\"prompt\":\"x\",\"max_tokens\":1.5}", "EINVAL"},
        {"{\"id\":10,\"prompt\":\"x\",\"max_tokens\":\"5\"}", "EINVAL"},
        {"{\"id\":11,\"prompt\":\"x\",\"temperature\":-1}", "EINVAL"},
        {"{\"id\":12,\"prompt\":\"x\",\"top_p\":0}", "EINVAL"},
        {"{\"id\":13,\"prompt\":\"x\",\"top_k\":-3}", "EINVAL"},
        {"{\"id\":14,\"prompt\":\"x\",\"seed\":-1}", "EINVAL"},
        {"{\"op\":\"cancel\"}", "EINVAL"},
        {"{\"id\":\"nope\",\"op\":\"cancel\"}", "ENOENT"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        test_send(c, bad[i].line);
        test_send(c, "\n");
        cJSON *j = test_json(c, 5000);
        if (strcmp(test_str(j, "code"), bad[i].code) != 0)
            fprintf(stderr, "input %s\n", bad[i].line);
        ASSERT_STR_EQ(test_str(j, "event"), "error");
        ASSERT_STR_EQ(test_str(j, "code"), bad[i].code);
        ASSERT(strlen(test_str(j, "message")) > 0);
        cJSON_Delete(j);
    }
    /* A prompt longer than the context (256 tokens). */
    char *big = malloc(20000), *p = big;
    p += sprintf(p, "{\"id\":\"long\",\"prompt\":\"");
    for (int i = 0; i < 600; i++) p += sprintf(p, "w%d ", i);
    sprintf(p, "\"}\n");
    test_send(c, big);
    cJSON *j = test_json(c, 5000);
    ASSERT_STR_EQ(test_str(j, "id"), "long");
    ASSERT_STR_EQ(test_str(j, "code"), "ETOOLONG");
    cJSON_Delete(j);
    /* A line over 64 KiB, sent in pieces: ETOOLONG, then the connection goes on. */
    char *huge = malloc(100001);
    memset(huge, 'a', 100000);
    huge[0] = '{';
    huge[100000] = 0;
    test_send(c, huge);
    test_send(c, "\n");
    j = test_json(c, 5000);
    ASSERT_STR_EQ(test_str(j, "code"), "ETOOLONG");
    cJSON_Delete(j);
    /* Duplicate in-flight id, then too many in flight (limit 3). */
    test_send(c, "{\"id\":\"d\",\"prompt\":\"slow one\",\"max_tokens\":200}\n");
    test_send(c, "{\"id\":\"d\",\"prompt\":\"again\"}\n");
    test_send(c, "{\"id\":\"e\",\"prompt\":\"slow two\",\"max_tokens\":200}\n");
    test_send(c, "{\"id\":\"f\",\"prompt\":\"slow three\",\"max_tokens\":200}\n");
    test_send(c, "{\"id\":\"g\",\"prompt\":\"one too many\"}\n");
    int seen_exist = 0, seen_limit = 0, ended = 0;
    test_send(c, "{\"op\":\"cancel\",\"id\":\"d\"}\n{\"op\":\"cancel\",\"id\":\"e\"}\n"
                 "{\"op\":\"cancel\",\"id\":\"f\"}\n");
    while (ended < 3) {
        j = test_json(c, 10000);
        const char *ev = test_str(j, "event"), *id = test_str(j, "id");
        if (strcmp(ev, "error") == 0 && strcmp(id, "d") == 0) {
            ASSERT_STR_EQ(test_str(j, "code"), "EEXIST");
            seen_exist++;
        } else if (strcmp(ev, "error") == 0 && strcmp(id, "g") == 0) {
            ASSERT_STR_EQ(test_str(j, "code"), "ELIMIT");
            seen_limit++;
        } else if (strcmp(ev, "done") == 0) {
            ASSERT_STR_EQ(test_str(j, "reason"), "cancelled");
            ended++;
        } else {
            ASSERT_STR_EQ(ev, "token");
        }
        cJSON_Delete(j);
    }
    ASSERT_EQ(seen_exist, 1);
    ASSERT_EQ(seen_limit, 1);
    /* Too many connections: the 5th gets ECONNS and is closed; the others keep working. */
    test_conn_t *more[4];
    for (int i = 0; i < 3; i++) more[i] = test_connect(s.port);
    more[3] = test_connect(s.port);
    j = test_json(more[3], 5000);
    ASSERT_STR_EQ(test_str(j, "code"), "ECONNS");
    cJSON_Delete(j);
    ASSERT(test_line(more[3], 5000) == NULL && more[3]->eof);
    for (int i = 0; i < 4; i++) test_close(more[i]);
    /* The plain-text shorthand. */
    test_send(c, "Once upon a time\n");
    ref_t r;
    reference("Once upon a time", 64, &r);
    char want[sizeof r.text + 64];
    snprintf(want, sizeof want, "%s\n# done %s prompt_tokens=", r.text, eng_end_name(r.end));
    double end = test_now_ms() + 10000;
    char *term = NULL, *eol = NULL;
    while (eol == NULL) {   /* the text, then one "# done ..." line */
        ASSERT_LT(test_now_ms(), end);
        term = memmem(c->buf, c->len, "\n# done ", 8);
        if (term) eol = memchr(term + 1, '\n', c->len - (size_t)(term + 1 - c->buf));
        if (eol == NULL) {
            struct pollfd pf = {c->fd, POLLIN, 0};
            if (poll(&pf, 1, 100) > 0) test_fill(c);
        }
    }
    ASSERT(memcmp(c->buf, want, strlen(want)) == 0);
    size_t used = (size_t)(eol + 1 - c->buf);
    memmove(c->buf, eol + 1, c->len - used);
    c->len -= used;
    /* After all that, a normal request on the same connection is served correctly. */
    got_t g;
    run_one(c, "ok", "Once upon a time", 32, &g);
    check_ref(&g, "Once upon a time", 32);
    cJSON *st = test_stats(c);
    ASSERT_EQ(test_num(st, "lanes_active"), 0);
    cJSON_Delete(st);
    test_close(c);
    free(big);
    free(huge);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* Cancel and disconnect free the lane within a step; another stream is not disturbed. */
static int t_cancel(void) {
    /* The 15m shape makes a step (~ms) long next to the time the I/O thread takes to see a close. */
    const char *args[] = {"--lanes", "4", "--preset", "15m", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *a = test_connect(s.port), *b = test_connect(s.port), *mon = test_connect(s.port);
    /* Cancel: the done/"cancelled" reply comes after the lane is already free in stats. */
    test_send(a, "{\"id\":\"c\",\"prompt\":\"cancel me\",\"max_tokens\":250}\n");
    got_t g = {0};
    for (int i = 0; i < 3; i++) {
        cJSON *j = test_json(a, 5000);
        ASSERT_EQ(fold(&g, j), 0);
        cJSON_Delete(j);
    }
    test_send(a, "{\"op\":\"cancel\",\"id\":\"c\"}\n");
    for (;;) {
        cJSON *j = test_json(a, 5000);
        int fin = fold(&g, j);
        cJSON_Delete(j);
        if (fin) break;
    }
    ASSERT_STR_EQ(g.reason, "cancelled");
    cJSON *st = test_stats(mon);
    ASSERT_EQ(test_num(st, "lanes_active"), 0);
    cJSON_Delete(st);

    /* Disconnect mid-stream while b runs a normal request. */
    test_send(b, "{\"id\":\"b\",\"prompt\":\"keep going\",\"max_tokens\":250}\n");
    test_send(a, "{\"id\":\"x\",\"prompt\":\"walk away\",\"max_tokens\":250}\n");
    for (int i = 0; i < 3; i++) cJSON_Delete(test_json(a, 5000));
    st = test_stats(mon);
    ASSERT_EQ(test_num(st, "lanes_active"), 2);
    cJSON_Delete(st);
    test_close(a);
    /* Steps are counted from the stats reply that first shows the connection gone (the I/O
     * thread has then queued the cancels). That snapshot is from the end of step N while step
     * N+1 runs; the cancel is applied at the N+1/N+2 boundary, so step N+2 runs without the lane
     * and the first snapshot showing it free says N+2. */
    double t0 = test_now_ms(), steps0 = -1, active = 2, steps = 0, busy_last = -1;
    while (active > 1) {   /* b may finish too: wait for the disconnected lane only */
        ASSERT_LT(test_now_ms() - t0, 5000);
        st = test_stats(mon);
        active = test_num(st, "lanes_active");
        steps = test_num(st, "steps");
        if (steps0 < 0 && (test_num(st, "connections") == 2 || active <= 1)) steps0 = steps;
        if (steps0 >= 0 && active > 1) busy_last = steps;
        cJSON_Delete(st);
    }
    /* Independent of how often we poll: no snapshot from step N+2 on may show the lane busy. */
    fprintf(stderr, "disconnect: lane busy at most %.0f steps after the close was seen\n",
            busy_last < 0 ? 0 : busy_last - steps0);
    ASSERT_LE(busy_last - steps0, 1);
    got_t gb = {0};
    for (;;) {
        cJSON *j = test_json(b, 10000);
        int fin = fold(&gb, j);
        cJSON_Delete(j);
        if (fin) break;
    }
    ASSERT_EQ(gb.n, 250);
    ASSERT_STR_EQ(gb.reason, "length");
    st = test_stats(mon);
    ASSERT_EQ(test_num(st, "lanes_active"), 0);
    ASSERT_EQ(test_num(st, "requests_active"), 0);
    cJSON_Delete(st);
    test_close(b);
    test_close(mon);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* Queue full -> EBUSY at once; the queued requests all complete, in order. */
static int t_queue(void) {
    /* r0 and r1 hold both lanes for 240 steps, so r5 meets a full queue even when the I/O thread
     * lags the (fast, tiny) engine by a few milliseconds; one compute thread leaves the I/O thread
     * a core of its own. */
    const char *args[] = {"--lanes", "2", "--max-queue", "3", "--threads", "1", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *c = test_connect(s.port);
    test_send(c, "{\"id\":\"r0\",\"prompt\":\"long one\",\"max_tokens\":240}\n"
                 "{\"id\":\"r1\",\"prompt\":\"long two\",\"max_tokens\":240}\n"
                 "{\"id\":\"r2\",\"prompt\":\"queued a\",\"max_tokens\":8}\n"
                 "{\"id\":\"r3\",\"prompt\":\"queued b\",\"max_tokens\":8}\n"
                 "{\"id\":\"r4\",\"prompt\":\"queued c\",\"max_tokens\":8}\n"
                 "{\"id\":\"r5\",\"prompt\":\"refused\",\"max_tokens\":8}\n");
    got_t *got = calloc(6, sizeof *got);
    int left = 6, order = 0, busy_at = -1;
    while (left > 0) {
        cJSON *j = test_json(c, 20000);
        int k = atoi(test_str(j, "id") + 1);
        if (!got[k].first_seen) got[k].first_seen = ++order;
        if (k == 5) busy_at = order;
        left -= fold(&got[k], j);
        cJSON_Delete(j);
    }
    ASSERT_STR_EQ(got[5].code, "EBUSY");
    ASSERT_EQ(busy_at, 1);   /* refused at once, before any token */
    for (int k = 0; k < 5; k++) ASSERT_STR_EQ(got[k].reason, "length");
    ASSERT_LT(got[2].first_seen, got[3].first_seen);
    ASSERT_LT(got[3].first_seen, got[4].first_seen);
    check_ref(&got[4], "queued c", 8);
    cJSON *st = test_stats(c);
    ASSERT_EQ(test_num(st, "requests_rejected"), 1);
    ASSERT_EQ(test_num(st, "queue_depth"), 0);
    cJSON_Delete(st);
    free(got);
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* Time for one request of max_tokens on its own connection, in ms. */
static double timed_request(test_conn_t *c, const char *id, int max_tokens) {
    got_t g;
    double t = test_now_ms();
    run_one(c, id, "the fast reader", max_tokens, &g);
    ASSERT_STR_EQ(g.reason, "length");
    return test_now_ms() - t;
}

/* Sends n requests of max_tokens on c (ids 0..n-1). */
static void send_many(test_conn_t *c, int n, int max_tokens, const char *tag) {
    char line[256];
    for (int i = 0; i < n; i++) {
        snprintf(line, sizeof line, "{\"id\":%d,\"prompt\":\"%s %d\",\"max_tokens\":%d}\n", i, tag, i,
                 max_tokens);
        test_send(c, line);
    }
}

/* Reads a connection until n terminal events came (on its own thread). */
typedef struct {
    test_conn_t *c;
    int n;
} drain_t;

static void *drain(void *arg) {
    drain_t *d = arg;
    for (int left = d->n; left > 0;) {
        cJSON *j = test_json(d->c, 30000);
        const char *ev = test_str(j, "event");
        left -= strcmp(ev, "done") == 0 || strcmp(ev, "error") == 0;
        cJSON_Delete(j);
    }
    return NULL;
}

/* A client that stops reading is paused, then cut off; the others keep their pace. */
static int t_slowreader(void) {
    enum { N = 100, TOK = 150 };
    const char *args[] = {"--out-soft", "8192", "--out-hard", "32768", "--sndbuf", "16384", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *fast = test_connect(s.port), *mon = test_connect(s.port);
    /* Baseline: the same load from a client that reads. */
    test_conn_t *busy = test_connect(s.port);
    drain_t d = {busy, N};
    pthread_t th;
    send_many(busy, N, TOK, "read by a client");
    pthread_create(&th, NULL, drain, &d);
    double base = 0;
    for (int i = 0; i < 3; i++) base += timed_request(fast, "base", 100);
    pthread_join(th, NULL);
    test_close(busy);
    /* Now from a client that never reads, with a small receive buffer. */
    test_conn_t *slow = calloc(1, sizeof *slow);
    slow->fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(slow->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(slow->fd, (struct sockaddr *)&a, sizeof a), 0);
    send_many(slow, N, TOK, "never read");
    double with = 0;
    for (int i = 0; i < 3; i++) with += timed_request(fast, "with", 100);
    fprintf(stderr, "fast reader: %.1f ms per request next to a reading load, %.1f ms next to a "
            "stalled one\n", base / 3, with / 3);
    ASSERT_LT(with, 2 * base + 300);
    /* The stalled connection passes the hard cap: it is closed and its lanes are freed. */
    double t0 = test_now_ms(), conns = 0, active = 0;
    for (;;) {
        cJSON *st = test_stats(mon);
        conns = test_num(st, "connections"), active = test_num(st, "lanes_active");
        cJSON_Delete(st);
        if (conns == 2 && active == 0) break;
        if (test_now_ms() - t0 > 20000) {
            fprintf(stderr, "connections %.0f, lanes_active %.0f\n", conns, active);
            exit(1);
        }
        usleep(20000);
    }
    close(slow->fd);
    free(slow);
    test_close(fast);
    test_close(mon);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* 10,000 short requests over short-lived connections: all complete and the stats add up. */
static int t_churn(void) {
    enum { CONNS = 32, PER = 10, ROUNDS = 10000 / (CONNS * PER) + 1 };
    test_srv_t s = test_srv_start(NULL);
    test_conn_t *mon = test_connect(s.port);
    cJSON *st = test_stats(mon);
    double served0 = test_num(st, "requests_served"), tok0 = test_num(st, "tokens_generated");
    cJSON_Delete(st);
    long requests = 0, tokens = 0;
    got_t *got = calloc(CONNS * PER, sizeof *got);
    for (int round = 0; round < ROUNDS && requests < 10000; round++) {
        test_conn_t *cs[CONNS];
        for (int i = 0; i < CONNS; i++) {
            cs[i] = test_connect(s.port);
            char buf[PER * 128], *p = buf;
            for (int k = 0; k < PER; k++)
                p += sprintf(p, "{\"id\":\"r%d\",\"prompt\":\"req %d %d\",\"max_tokens\":%d}\n", k,
                             round, i, 1 + (k + i) % 4);
            test_send(cs[i], buf);
        }
        memset(got, 0, CONNS * PER * sizeof *got);
        gather(cs, CONNS, got, PER, 30000);
        for (int i = 0; i < CONNS * PER; i++) {
            ASSERT(got[i].reason[0] != 0);
            tokens += got[i].n;
        }
        requests += CONNS * PER;
        for (int i = 0; i < CONNS; i++) test_close(cs[i]);
    }
    st = test_stats(mon);
    ASSERT_EQ(test_num(st, "requests_served") - served0, requests);
    ASSERT_EQ(test_num(st, "tokens_generated") - tok0, tokens);
    ASSERT_EQ(test_num(st, "lanes_active"), 0);
    ASSERT_EQ(test_num(st, "requests_active"), 0);
    fprintf(stderr, "%ld requests, %ld tokens, %.0f steps\n", requests, tokens,
            test_num(st, "steps"));
    cJSON_Delete(st);
    free(got);
    test_close(mon);
    ASSERT_EQ(test_srv_stop(&s), 0);   /* an ASan build fails here on any leak */
    return 0;
}

/* SIGTERM under load: every request gets its terminal event, and the server exits 0. */
static int t_sigterm(void) {
    enum { CONNS = 24, PER = 4 };
    const char *args[] = {"--lanes", "32", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *cs[CONNS];
    for (int i = 0; i < CONNS; i++) {
        cs[i] = test_connect(s.port);
        char buf[PER * 128], *p = buf;
        for (int k = 0; k < PER; k++)
            p += sprintf(p, "{\"id\":\"r%d\",\"prompt\":\"term %d\",\"max_tokens\":250}\n", k, i);
        test_send(cs[i], buf);
    }
    /* Every request accepted (a line not read yet when the signal comes gets no reply). */
    test_conn_t *mon = test_connect(s.port);
    for (double t0 = test_now_ms();;) {
        cJSON *st = test_stats(mon);
        double active = test_num(st, "requests_active");
        cJSON_Delete(st);
        if (active == CONNS * PER) break;
        ASSERT_LT(test_now_ms() - t0, 10000);
    }
    kill(s.pid, SIGTERM);
    got_t *got = calloc(CONNS * PER, sizeof *got);
    gather(cs, CONNS, got, PER, 20000);
    int closed = 0, done = 0;
    for (int i = 0; i < CONNS * PER; i++) {
        if (strcmp(got[i].code, "ECLOSED") == 0) closed++;
        else if (got[i].reason[0]) done++;
        else ASSERT(0);
    }
    fprintf(stderr, "%d ended ECLOSED, %d done before\n", closed, done);
    ASSERT_GT(closed, 0);
    for (int i = 0; i < CONNS; i++) {   /* then the server closes each connection */
        ASSERT(test_line(cs[i], 5000) == NULL);
        ASSERT(cs[i]->eof);
        test_close(cs[i]);
    }
    test_close(mon);
    int st = 0;
    waitpid(s.pid, &st, 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 0);
    unlink(s.log);
    free(got);
    return 0;
}

/* Polls stats on mon until field a is va and field b is vb (fails after 20 s). */
static void wait_stats(test_conn_t *mon, const char *a, double va, const char *b, double vb) {
    double t0 = test_now_ms(), ga = -1, gb = -1;
    while (ga != va || gb != vb) {
        if (test_now_ms() - t0 > 20000) {
            fprintf(stderr, "%s %.0f (want %.0f), %s %.0f (want %.0f)\n", a, ga, va, b, gb, vb);
            exit(1);
        }
        usleep(20000);
        cJSON *st = test_stats(mon);
        ga = test_num(st, a), gb = test_num(st, b);
        cJSON_Delete(st);
    }
}

enum { RESUME_N = 20 };

/* The slow reader: 20 long requests from a client with a 4 KiB receive buffer. */
static test_conn_t *stalled_client(int port) {
    test_conn_t *c = test_connect_rcvbuf(port, 4096);
    char line[128];
    for (int i = 0; i < RESUME_N; i++) {
        snprintf(line, sizeof line, "{\"id\":%d,\"prompt\":\"Once upon a time\",\"max_tokens\":400}\n", i);
        test_send(c, line);
    }
    return c;
}

/* Reads c until each of its RESUME_N requests had its one terminal event. */
static void drain_stalled(test_conn_t *c) {
    int seen[RESUME_N] = {0};
    for (int left = RESUME_N; left > 0;) {
        cJSON *j = test_json(c, 20000);
        const char *ev = test_str(j, "event");
        if (strcmp(ev, "token") != 0) {
            ASSERT_STR_EQ(ev, "done");
            int k = (int)test_num(j, "id");
            ASSERT(k >= 0 && k < RESUME_N && !seen[k]);
            seen[k] = 1;
            left--;
        }
        cJSON_Delete(j);
    }
}

/* A paused reader is read again once it drains: its next request is answered. */
static int t_resume(void) {
    const char *args[] = {"--out-soft", "32768", "--sndbuf", "8192", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *mon = test_connect(s.port), *slow = stalled_client(s.port);
    /* Paused, and every request ended on the engine while the client read nothing. */
    wait_stats(mon, "connections_paused", 1, "requests_active", 0);
    usleep(500000);
    cJSON *st = test_stats(mon);
    ASSERT_EQ(test_num(st, "connections_paused"), 1);
    cJSON_Delete(st);
    drain_stalled(slow);
    test_send(slow, "{\"op\":\"health\",\"id\":\"h\"}\n");
    cJSON *j = test_json(slow, 10000);
    ASSERT_STR_EQ(test_str(j, "event"), "health");
    ASSERT_STR_EQ(test_str(j, "id"), "h");
    cJSON_Delete(j);
    st = test_stats(mon);
    ASSERT_EQ(test_num(st, "connections_paused"), 0);
    cJSON_Delete(st);
    test_close(slow);
    test_close(mon);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* Paused readers that close (after draining, or without) are freed: fds, connections, slots. */
static int t_pausedclose(void) {
    const char *args[] = {"--out-soft", "32768", "--sndbuf", "8192", "--max-conns", "3",
                          "--idle-timeout", "0", NULL};
    test_srv_t s = test_srv_start(args);
    test_conn_t *mon = test_connect(s.port);
    cJSON_Delete(test_stats(mon));
    int fds0 = test_fd_count(s.pid);
    for (int round = 0; round < 3; round++) {   /* each round takes every free slot */
        test_conn_t *a = stalled_client(s.port), *b = stalled_client(s.port);
        wait_stats(mon, "connections_paused", 2, "requests_active", 0);
        drain_stalled(a);   /* the server resumes a, then must see its FIN */
        test_close(a);
        test_close(b);      /* closed with replies unread */
        wait_stats(mon, "connections", 1, "lanes_active", 0);
        ASSERT_EQ(test_fd_count(s.pid), fds0);
    }
    test_conn_t *c[2] = {test_connect(s.port), test_connect(s.port)};
    for (int i = 0; i < 2; i++) {
        test_send(c[i], "{\"op\":\"health\"}\n");
        cJSON *j = test_json(c[i], 10000);
        ASSERT_STR_EQ(test_str(j, "event"), "health");
        cJSON_Delete(j);
        test_close(c[i]);
    }
    test_close(mon);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* EEXIST says it is about the rejected line; the first request's own terminal event is unmarked. */
static int t_eexist(void) {
    test_srv_t s = test_srv_start(NULL);
    test_conn_t *c = test_connect(s.port);
    test_send(c, "{\"id\":\"d\",\"prompt\":\"first one\",\"max_tokens\":100}\n"
                 "{\"id\":\"d\",\"prompt\":\"second one\",\"max_tokens\":5}\n");
    got_t g = {0};
    int eexist = 0;
    while (!g.done) {
        cJSON *j = test_json(c, 10000);
        ASSERT_STR_EQ(test_str(j, "id"), "d");
        if (strcmp(test_str(j, "code"), "EEXIST") == 0) {
            ASSERT_STR_EQ(test_str(j, "op"), "generate");
            eexist++;
        } else {
            ASSERT(cJSON_GetObjectItemCaseSensitive(j, "op") == NULL);
            fold(&g, j);
        }
        cJSON_Delete(j);
    }
    ASSERT_EQ(eexist, 1);
    check_ref(&g, "first one", 100);
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* A plain-text request and JSON requests on one connection: no JSON line starts inside the text,
 * and the plain text is the engine's, byte for byte. */
static int t_mixed(void) {
    test_srv_t s = test_srv_start(NULL);
    ref_t plain;
    reference("Once upon a time", 64 /* the plain-text default */, &plain);
    ASSERT(strstr(plain.text, "\n{") == NULL && plain.text[0] != '{');   /* else the check is blind */
    for (int round = 0; round < 20; round++) {
        test_conn_t *c = test_connect(s.port);
        test_send(c, "Once upon a time\n"
                     "{\"id\":\"j\",\"prompt\":\"Hello\",\"max_tokens\":40}\n"
                     "{\"id\":\"k\",\"prompt\":\"Bye\",\"max_tokens\":40}\n");
        got_t g[2];
        memset(g, 0, sizeof g);
        char text[sizeof plain.text + 4096];
        size_t tlen = 0;
        int plain_done = 0;
        while (!plain_done || !g[0].done || !g[1].done) {
            char *l = test_line(c, 10000);
            ASSERT(l != NULL);
            if (l[0] == '{') {
                cJSON *j = cJSON_Parse(l);
                if (j == NULL) fprintf(stderr, "round %d: a JSON line glued to the text: %s\n", round, l);
                ASSERT(j != NULL);
                fold(&g[strcmp(test_str(j, "id"), "k") == 0], j);
                cJSON_Delete(j);
            } else if (strncmp(l, "# done ", 7) == 0) {
                ASSERT(!plain_done);
                plain_done = 1;
            } else {
                ASSERT(!plain_done);
                size_t n = strlen(l);
                ASSERT_LT(tlen + n + 1, sizeof text);
                memcpy(text + tlen, l, n);
                tlen += n;
                text[tlen++] = '\n';   /* the line's own '\n' (the last is the one before "# done") */
            }
            free(l);
        }
        ASSERT_GT(tlen, 0);
        text[tlen - 1] = 0;
        ASSERT_STR_EQ(text, plain.text);
        check_ref(&g[0], "Hello", 40);
        check_ref(&g[1], "Bye", 40);
        test_close(c);
    }
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    ASSERT_EQ(fclose(f), 0);
}

/* --config twice: the first file's strings stay valid and in effect. */
static int t_config(void) {
    char a[64], b[64];
    snprintf(a, sizeof a, "/tmp/lanes-cfg-a-%d.json", (int)getpid());
    snprintf(b, sizeof b, "/tmp/lanes-cfg-b-%d.json", (int)getpid());
    write_file(a, "{\"host\":\"0.0.0.0\",\"preset\":\"15m\",\"lanes\":3}");
    write_file(b, "{\"max_queue\":5,\"idle_timeout\":30}");
    const char *args[] = {"--config", a, "--config", b, NULL};
    test_srv_t s = test_srv_start(args);
    unlink(a);   /* read at start only */
    unlink(b);
    FILE *f = fopen(s.log, "r");
    ASSERT(f != NULL);
    char line[512];
    int host = 0, model = 0;
    while (fgets(line, sizeof line, f)) {
        host |= strstr(line, "listening on 0.0.0.0:") != NULL;
        model |= strstr(line, "from 15m)") != NULL && strstr(line, "3 lanes, queue 5") != NULL;
    }
    fclose(f);
    ASSERT(host);
    ASSERT(model);
    test_conn_t *c = test_connect(s.port);
    got_t g;
    run_one(c, "x", "hi", 4, &g);
    ASSERT_STR_EQ(g.reason, "length");
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* SIGHUP and SIGQUIT drain like SIGTERM: the request in flight ends ECLOSED, exit 0. */
static int t_sighup(void) {
    static const int sigs[] = {SIGHUP, SIGQUIT};
    for (int i = 0; i < 2; i++) {
        const char *args[] = {"--preset", "15m", "--lanes", "1", NULL};
        test_srv_t s = test_srv_start(args);
        test_conn_t *c = test_connect(s.port);
        test_send(c, "{\"id\":\"r0\",\"prompt\":\"Once upon a time\",\"max_tokens\":250}\n"
                     "{\"id\":\"r1\",\"prompt\":\"queued behind\",\"max_tokens\":250}\n");
        got_t got[2];
        memset(got, 0, sizeof got);
        cJSON *j = test_json(c, 20000);   /* r0 streams; r1 waits for the lane */
        ASSERT_STR_EQ(test_str(j, "id"), "r0");
        fold(&got[0], j);
        cJSON_Delete(j);
        kill(s.pid, sigs[i]);
        gather(&c, 1, got, 2, 20000);
        ASSERT_STR_EQ(got[1].code, "ECLOSED");
        ASSERT(test_line(c, 5000) == NULL);
        ASSERT(c->eof);
        test_close(c);
        int st = 0;
        waitpid(s.pid, &st, 0);
        test_srv_child = 0;
        ASSERT(WIFEXITED(st));
        ASSERT_EQ(WEXITSTATUS(st), 0);
        unlink(s.log);
    }
    return 0;
}

/* Reads c until its ETIMEDOUT line and EOF; returns when that line came (ms). */
static double idle_closed(test_conn_t *c, int timeout_ms) {
    cJSON *j = test_json(c, timeout_ms);
    double t = test_now_ms();
    ASSERT_STR_EQ(test_str(j, "event"), "error");
    ASSERT_STR_EQ(test_str(j, "code"), "ETIMEDOUT");
    ASSERT_STR_EQ(test_str(j, "message"), "idle timeout");
    cJSON_Delete(j);
    ASSERT(test_line(c, 5000) == NULL);
    ASSERT(c->eof);
    return t;
}

/* --idle-timeout: idle connections go after it (1 s here), busy ones never; idle ones no longer
 * lock everyone out. */
static int t_idle(void) {
    enum { MAXC = 1024 };
    const char *args[] = {"--idle-timeout", "1", "--preset", "15m", "--lanes", "1", NULL};
    test_srv_t s = test_srv_start(args);
    /* An idle connection, and one whose request 600 ms later restarts its idle time. */
    double t0 = test_now_ms();
    test_conn_t *idle = test_connect(s.port), *late = test_connect(s.port);
    usleep(600000);
    test_send(late, "{\"op\":\"health\"}\n");
    cJSON_Delete(test_json(late, 5000));
    double t_late = test_now_ms();
    double t_idle = idle_closed(idle, 5000) - t0;
    double t_more = idle_closed(late, 5000) - t_late;
    fprintf(stderr, "idle closed after %.0f ms; %.0f ms after its last request\n", t_idle, t_more);
    ASSERT(t_idle >= 500 && t_idle < 4000);
    ASSERT(t_more >= 500 && t_more < 4000);
    test_close(idle);
    test_close(late);

    /* Requests in flight for several timeouts: a connection that streams, and one whose request
     * waits behind them for the one lane, so that nothing moves either way on it. */
    test_conn_t *busy = test_connect(s.port);
    got_t g;
    double t1 = test_now_ms();
    run_one(busy, "cal", "Once upon a time", 200, &g);
    double one = test_now_ms() - t1;
    int n = (int)(4000 / one) + 1;
    ASSERT_LT(n, 256);   /* --max-inflight */
    char *burst = malloc((size_t)n * 96), *p = burst;
    for (int i = 0; i < n; i++)
        p += sprintf(p, "{\"id\":\"r%d\",\"prompt\":\"busy %d\",\"max_tokens\":200}\n", i, i);
    test_conn_t *queued = test_connect(s.port);
    t1 = test_now_ms();
    test_send(busy, burst);
    free(burst);
    for (double active = 0; active < n;) {
        cJSON *st = test_stats(queued);
        active = test_num(st, "requests_active");
        cJSON_Delete(st);
    }
    test_send(queued, "{\"id\":\"q\",\"prompt\":\"queued\",\"max_tokens\":4}\n");
    double tq = test_now_ms();
    got_t *got = calloc((size_t)n, sizeof *got);
    gather(&busy, 1, got, n, 60000);   /* an ETIMEDOUT line among them fails here (no id) */
    double t_busy = test_now_ms() - t1;
    for (int i = 0; i < n; i++) ASSERT_STR_EQ(got[i].reason, "length");
    free(got);
    cJSON *j = test_json(queued, 60000);
    double t_queued = test_now_ms() - tq;
    ASSERT_STR_EQ(test_str(j, "id"), "q");   /* not ETIMEDOUT */
    cJSON_Delete(j);
    fprintf(stderr, "%d requests in flight for %.0f ms, one queued for %.0f ms: not closed\n", n,
            t_busy, t_queued);
    ASSERT_GT(t_queued, 1500);   /* longer than the timeout, else this proved nothing */
    ASSERT_GT(idle_closed(busy, 5000) - t1 - t_busy, 500);   /* then idle from its last event */
    test_close(busy);
    test_close(queued);
    ASSERT_EQ(test_srv_stop(&s), 0);

    /* 1024 (--max-conns) idle connections lock out a newcomer only until they time out. A longer
     * timeout leaves time to open them all. */
    const char *args3[] = {"--idle-timeout", "3", NULL};
    s = test_srv_start(args3);
    test_conn_t **cs = calloc(MAXC, sizeof *cs);
    double t2 = test_now_ms();
    for (int i = 0; i < MAXC; i++) {
        cs[i] = test_connect(s.port);
        if (i % 128 == 127) {   /* the server took them all: none waits out a SYN retry */
            test_send(cs[i], "{\"op\":\"health\"}\n");
            cJSON_Delete(test_json(cs[i], 5000));
        }
    }
    test_conn_t *extra = test_connect(s.port);
    j = test_json(extra, 5000);
    fprintf(stderr, "%d idle connections opened in %.0f ms\n", MAXC, test_now_ms() - t2);
    ASSERT_STR_EQ(test_str(j, "code"), "ECONNS");
    cJSON_Delete(j);
    test_close(extra);
    for (int i = 0; i < MAXC; i++) {
        idle_closed(cs[i], 10000);
        test_close(cs[i]);
    }
    free(cs);
    test_conn_t *c = test_connect(s.port);
    run_one(c, "after", "hi", 4, &g);
    ASSERT_STR_EQ(g.reason, "length");
    test_close(c);
    ASSERT_EQ(test_srv_stop(&s), 0);
    return 0;
}

/* A lane's memory in stats: kv_lane_bytes is what the engine plans for the server's context (its
 * lanes, a step's columns = lanes + --prefill-chunk, the default context) for a sliding-window
 * and a delta-net model, less than their all-global twins', and the start line says it in MiB. */
static int t_kvlane(void) {
    static const char *const presets[] = {"tiny-gemma3", "tiny-qwen35"};
    for (int i = 0; i < 2; i++) {
        const char *args[] = {"--preset", presets[i], "--lanes", "4", "--prefill-chunk", "8", NULL};
        test_srv_t s = test_srv_start(args);
        eng_model_cfg_t mc, glob;
        ASSERT_EQ(eng_model_preset(presets[i], &mc), 0);
        glob = mc;
        glob.window = 0;
        memset(glob.layer_swa, 0, sizeof glob.layer_swa);
        memset(glob.layer_kind, ENG_LAYER_ATTN, sizeof glob.layer_kind);
        eng_ctx_cfg_t cc = {4, 4 + 8, 1, ENG_GEMM_LANES, 0};
        eng_ctx_plan_t plan, gplan;
        ASSERT_EQ(eng_ctx_plan(&mc, &cc, UINT64_MAX, &plan), 0);
        ASSERT_EQ(eng_ctx_plan(&glob, &cc, UINT64_MAX, &gplan), 0);
        ASSERT_LT(plan.kv_lane, gplan.kv_lane);
        test_conn_t *c = test_connect(s.port);
        cJSON *st = test_stats(c);
        ASSERT_EQ((uint64_t)test_num(st, "kv_lane_bytes"), plan.kv_lane);
        cJSON_Delete(st);
        test_close(c);
        char want[64], line[512];
        snprintf(want, sizeof want, "KV %.2f MiB per lane", (double)plan.kv_lane / (1 << 20));
        int said = 0;
        FILE *f = fopen(s.log, "r");
        while (f && fgets(line, sizeof line, f)) said |= strstr(line, want) != NULL;
        if (f) fclose(f);
        ASSERT(said);
        ASSERT_EQ(test_srv_stop(&s), 0);
    }
    return 0;
}

int main(int argc, char **argv) {
    static const struct { const char *name; int (*fn)(void); } tests[] = {
        {"parity", t_parity}, {"badinput", t_badinput}, {"cancel", t_cancel},
        {"queue", t_queue}, {"slowreader", t_slowreader}, {"churn", t_churn},
        {"sigterm", t_sigterm}, {"resume", t_resume}, {"pausedclose", t_pausedclose},
        {"eexist", t_eexist}, {"mixed", t_mixed}, {"config", t_config}, {"sighup", t_sighup},
        {"idle", t_idle}, {"kvlane", t_kvlane},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) continue;
        double t = test_now_ms();
        rc |= tests[i].fn();
        fprintf(stderr, "%s: ok (%.0f ms)\n", tests[i].name, test_now_ms() - t);
    }
    eng_ctx_destroy(ref_ctx);
    eng_bundle_close(&bundle);
    return rc;
}
