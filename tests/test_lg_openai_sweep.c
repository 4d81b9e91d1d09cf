/* lanes-loadgen --api openai end to end against tests/lg_fake_server's OpenAI mode: tokens, TTFT
 * and finish reasons counted right over chunked, close-delimited and Content-Length responses,
 * multi-token chunks counted by the usage chunk, keep-alive reuse (the fake counts connections),
 * HTTP error statuses by code, a server without /metrics, --save-detailed records, run metadata,
 * --ignore-eos / --output-len / --input-len on both protocols, bad flag combinations, and Ctrl-C
 * (SIGINT) writing the points so far with the running one marked incomplete, exit 130. */
#include "lg_test_util.h"

static const char *bin;
static char tmp[256], out[512], json[512], detail[512], port_s[16], srv_log[512];

static void path(char *dst, size_t n, const char *name) { snprintf(dst, n, "%s/%s", tmp, name); }

/* Starts the fake with up to three extra flag/value pairs (NULL ends them). */
static void start_fake(const char *f1, const char *v1, const char *f2, const char *v2) {
    static int n_started;
    char srv[4096], name[32];
    snprintf(srv, sizeof srv, "%s/tests/lg_fake_server", bin);
    snprintf(name, sizeof name, "server%d.log", n_started++);
    path(srv_log, sizeof srv_log, name);
    char *argv[] = {srv, "--port", "0", "--step-ms", "2", (char *)f1, (char *)v1, (char *)f2, (char *)v2, NULL};
    int port = lg_test_start_server(argv, srv_log);
    ASSERT_GT(port, 0);
    snprintf(port_s, sizeof port_s, "%d", port);
}

/* Stops the fake and returns the connections it accepted. */
static long stop_fake(void) {
    lg_test_stop_server();
    char *log = lg_test_slurp(srv_log);
    const char *p = log ? strstr(log, "connections accepted: ") : NULL;
    ASSERT(p != NULL);
    long n = atol(p + 22);
    free(log);
    return n;
}

static const cJSON *point(const cJSON *j, int i) {
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "points"), i);
}

/* Every point complete, S*3 requests of `tokens` tokens each, agreeing with the server's count. */
static void check_points(const cJSON *j, double tokens, const char *reason) {
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(j, "points")) {
        ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "complete")));
        double ok = lg_test_num(p, "requests_ok");
        ASSERT_EQ(ok, lg_test_num(p, "streams") * 3);
        ASSERT_EQ(lg_test_num(p, "requests_err"), 0);
        ASSERT_EQ(lg_test_num(p, "tokens"), ok * tokens);
        ASSERT_EQ(lg_test_num(p, "tokens"), lg_test_num(p, "server_tokens"));
        ASSERT_EQ(lg_test_num(p, strcmp(reason, "stop") == 0 ? "finished_stop" : "finished_length"), ok);
        ASSERT_EQ(lg_test_num(p, "finished_other"), 0);
        ASSERT_EQ(lg_test_num(p, "short_requests"), tokens < 8 ? ok : 0);
        ASSERT(lg_test_num(p, "ttft_ms_p50") > 0);
        ASSERT(lg_test_num(p, "e2e_ms_p50") >= lg_test_num(p, "ttft_ms_p50"));
        ASSERT(lg_test_num(p, "prompt_tokens_mean") > 1);
    }
}

static int count_lines(const char *file, const char *needle) {
    char *s = lg_test_slurp(file);
    ASSERT(s != NULL);
    int n = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) n += !needle || strstr(line, needle) != NULL;
    free(s);
    return n;
}

int main(void) {
    bin = getenv("LANES_BIN");
    if (!bin) bin = ".";
    snprintf(tmp, sizeof tmp, "/tmp/lg_openai_XXXXXX");
    ASSERT(mkdtemp(tmp) != NULL);
    path(out, sizeof out, "out.txt");
    path(json, sizeof json, "out.json");
    path(detail, sizeof detail, "detail.jsonl");

    /* Bad combinations: the reason and exit 2. */
    const char *bad[][5] = {{"--api", "grpc", NULL}, {"--api", "openai", "--check", NULL},
                            {"--model", "m", NULL}, {"--input-len", "8", "--prompts", "/dev/null", NULL},
                            {"--max-tokens", "8", "--output-len", "8", NULL}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) ASSERT_EQ(lg_test_loadgen(bin, out, bad[i]), 2);
    ASSERT(lg_test_contains(out, "give --max-tokens or --output-len once"));

    /* Chunked SSE (llama-server's and vLLM's framing), keep-alive: one connection per stream
     * and one for /v1/models and /metrics, whatever the number of requests. */
    start_fake(NULL, NULL, NULL, NULL);
    const char *chunked[] = {"--api", "openai", "--port", port_s, "--streams", "1,4", "--requests", "3",
                             "--max-tokens", "8", "--json", json, "--save-detailed", detail, NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, chunked), 0);
    ASSERT(lg_test_contains(out, "--api openai, model fake-model"));
    ASSERT_EQ(stop_fake(), 1 + 1 + 4);
    cJSON *j = lg_test_json(json, 2);
    check_points(j, 8, "length");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "meta");
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(meta, "model")->valuestring, "fake-model");
    ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(meta, "server_lanes")->valuedouble, 16);
    ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(meta, "date")));
    ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(meta, "git_commit")));
    ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(meta, "cpu")));
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(meta, "command_line");
    ASSERT_EQ(cJSON_GetArraySize(cmd), 15);
    ASSERT_STR_EQ(cJSON_GetArrayItem(cmd, 2)->valuestring, "openai");
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(j, "interrupted")));
    cJSON_Delete(j);
    /* One record per request, each with its numbers. */
    ASSERT_EQ(count_lines(detail, NULL), 3 + 12);
    ASSERT_EQ(count_lines(detail, "\"completion_tokens\":8,"), 15);
    ASSERT_EQ(count_lines(detail, "\"finish_reason\":\"length\",\"error\":null}"), 15);
    ASSERT_EQ(count_lines(detail, "\"point\":1,\"streams\":4,"), 12);
    char *d = lg_test_slurp(detail);
    cJSON *rec = cJSON_Parse(strtok(d, "\n"));
    ASSERT(rec != NULL);
    ASSERT(lg_test_num(rec, "ttft_ms") > 0);
    ASSERT(lg_test_num(rec, "e2e_ms") >= lg_test_num(rec, "ttft_ms"));
    ASSERT(lg_test_num(rec, "prompt_tokens") > 1);
    cJSON_Delete(rec);
    free(d);

    /* Connection: close after every response: each request reconnects. */
    start_fake("--http-framing", "close", NULL, NULL);
    ASSERT_EQ(lg_test_loadgen(bin, out, chunked), 0);
    ASSERT_EQ(stop_fake(), 1 + 3 + 4 * 3);
    j = lg_test_json(json, 2);
    check_points(j, 8, "length");
    cJSON_Delete(j);

    /* The server closes a kept-alive connection as every 2nd request sent on one arrives: each
     * of those is sent once more on a new connection, and all succeed. Every stream's 2nd and 3rd
     * requests go out on a used connection: 10 such, 5 dropped, 5 new connections. */
    start_fake("--drop-every", "2", NULL, NULL);
    ASSERT_EQ(lg_test_loadgen(bin, out, chunked), 0);
    ASSERT_EQ(stop_fake(), 1 + 1 + 4 + 5);
    j = lg_test_json(json, 2);
    check_points(j, 8, "length");
    cJSON_Delete(j);

    /* Open loop: arrivals share the connections, waiting for a free one. */
    start_fake(NULL, NULL, NULL, NULL);
    const char *open_loop[] = {"--api", "openai", "--port", port_s, "--streams", "2", "--mode", "open", "--rate",
                               "400", "--requests", "6", "--max-tokens", "5", "--json", json, NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, open_loop), 0);
    ASSERT_EQ(stop_fake(), 1 + 2);
    j = lg_test_json(json, 1);
    ASSERT_EQ(lg_test_num(point(j, 0), "requests_ok"), 12);
    ASSERT_EQ(lg_test_num(point(j, 0), "tokens"), 60);
    ASSERT_EQ(lg_test_num(point(j, 0), "tokens"), lg_test_num(point(j, 0), "server_tokens"));
    cJSON_Delete(j);

    /* Content-Length bodies of 3-token chunks: the usage chunk's count wins over chunks. */
    start_fake("--http-framing", "length", "--chunk-tokens", "3");
    ASSERT_EQ(lg_test_loadgen(bin, out, chunked), 0);
    ASSERT_EQ(stop_fake(), 1 + 1 + 4);
    j = lg_test_json(json, 2);
    check_points(j, 8, "length");
    cJSON_Delete(j);

    /* The model ends streams at 5 tokens: finish "stop", short of max_tokens, said in the table;
     * --ignore-eos and --output-len run them to the end, on both protocols. */
    start_fake("--eos-at", "5", NULL, NULL);
    const char *api[] = {"openai", "lanes"};
    for (int a = 0; a < 2; a++) {
        const char *eos[] = {"--api", api[a], "--port", port_s, "--streams", "1,4", "--requests", "3",
                             "--max-tokens", "8", "--json", json, NULL, NULL, NULL};
        ASSERT_EQ(lg_test_loadgen(bin, out, eos), 0);
        ASSERT(lg_test_contains(out, "finish: length=0,stop=12,other=0 (12 shorter than max_tokens)"));
        j = lg_test_json(json, 2);
        check_points(j, 5, "stop");
        cJSON_Delete(j);
        eos[12] = "--ignore-eos";
        ASSERT_EQ(lg_test_loadgen(bin, out, eos), 0);
        ASSERT(!lg_test_contains(out, "finish:"));
        j = lg_test_json(json, 2);
        check_points(j, 8, "length");
        ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"),
                                                              "ignore_eos")));
        cJSON_Delete(j);
        eos[8] = "--output-len";
        eos[12] = "--input-len";                 /* the fake counts words + 1 (BOS) */
        eos[13] = "6";
        ASSERT_EQ(lg_test_loadgen(bin, out, eos), 0);
        ASSERT(!lg_test_contains(out, "splits them differently"));
        j = lg_test_json(json, 2);
        check_points(j, 8, "length");
        ASSERT_EQ(lg_test_num(point(j, 1), "prompt_tokens_mean"), 7);
        cJSON_Delete(j);
    }
    stop_fake();

    /* Every 3rd completion gets 429; no /metrics: the run goes on, srv_tok stays empty. */
    start_fake("--fail-every", "3", "--no-metrics", "1");
    const char *errs[] = {"--api", "openai", "--port", port_s, "--streams", "2", "--requests", "3",
                          "--max-tokens", "4", "--json", json, NULL};
    ASSERT_EQ(lg_test_loadgen(bin, out, errs), 0);
    ASSERT(lg_test_contains(out, "answered HTTP_429: queue full"));
    ASSERT(lg_test_contains(out, "GET /metrics is not there"));
    j = lg_test_json(json, 1);
    const cJSON *p = point(j, 0);
    ASSERT_EQ(lg_test_num(p, "requests_err"), 2);
    ASSERT_EQ(lg_test_num(p, "requests_ok"), 4);
    ASSERT_EQ(lg_test_num(p, "tokens"), 16);
    ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(p, "errors"), "HTTP_429")->valuedouble, 2);
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(p, "server_before")));
    cJSON_Delete(j);
    stop_fake();

    /* Ctrl-C in the second point: the first is written complete, the second incomplete, the
     * requests in flight recorded as unfinished, exit 130. */
    start_fake(NULL, NULL, NULL, NULL);
    char csv[512];
    path(csv, sizeof csv, "out.csv");
    const char *longrun[] = {"--api", "openai", "--port", port_s, "--streams", "1,2", "--duration", "2",
                             "--max-tokens", "400", "--json", json, "--csv", csv, "--save-detailed", detail,
                             NULL};
    pid_t pid = lg_test_loadgen_start(bin, out, longrun);
    int seen = 0;
    for (int t = 0; t < 20000 && !seen; t += 50) {
        seen = lg_test_contains(out, "point 1 of 2 done");
        lg_test_sleep_ms(50);
    }
    ASSERT(seen);
    lg_test_sleep_ms(300);
    kill(pid, SIGINT);
    ASSERT_EQ(lg_test_wait(pid, 20000), 130);
    ASSERT(lg_test_contains(out, "interrupted"));
    stop_fake();
    j = lg_test_json(json, 2);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "interrupted")));
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(point(j, 0), "complete")));
    ASSERT(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(point(j, 1), "complete")));
    cJSON_Delete(j);
    ASSERT_EQ(count_lines(csv, NULL), 3);
    ASSERT_EQ(count_lines(detail, "\"error\":\"unfinished\""), 2);

    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", tmp);
    if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return 0;
}
