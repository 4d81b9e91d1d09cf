/* lanes-server: the libuv line-protocol server over the continuous-batching scheduler. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_arg.h"
#include "base/lanes_err.h"
#include "base/lanes_file.h"
#include "base/lanes_log.h"
#include "bat_sched.h"
#include "server.h"

typedef struct {
    const char *model, *tok, *preset, *host, *chat_template;
    int port, http_port, lanes, max_queue, max_conns, max_inflight, threads, prefill_chunk, quiet, stats_s, sndbuf;
    int ctx;            /* context per lane; 0 = the engine's default */
    long long out_soft, out_hard, max_body;
    double idle_s, http_timeout_s;
    cJSON *configs;     /* owned: every --config file parsed; the strings above point into them */
} opts_t;

static void usage(FILE *f) {
    fprintf(f,
            "usage: lanes-server [-m MODEL -z TOKENIZER | --preset tiny|15m|110m] [--host 127.0.0.1]\n"
            "                    [--port 7070] [--lanes 128] [--max-queue 1024] [--max-conns 1024]\n"
            "                    [--max-inflight 256] [--threads N] [--prefill-chunk 64]\n"
            "                    [--out-soft BYTES] [--out-hard BYTES] [--sndbuf BYTES]\n"
            "                    [--stats-every S] [--ctx TOKENS] [--idle-timeout SECONDS]\n"
            "                    [--max-body BYTES] [--http-timeout SECONDS] [--chat-template NAME]\n"
            "                    [--http-port PORT]\n"
            "                    [--config FILE.json] [--quiet]\n"
            "One port serves both protocols: the line protocol (docs/PROTOCOL.md) and HTTP/1.1 with\n"
            "OpenAI-compatible endpoints (docs/OPENAI.md); a connection's first line decides.\n"
            "--max-body: HTTP request body limit (1 MiB; more gets 413). --http-timeout: an HTTP\n"
            "request not read whole in time gets 408 (30 s; 0 never). --chat-template: the chat\n"
            "template family for /v1/chat/completions (chatml, llama2, llama3, ...) instead of the\n"
            "one detected from the model's tokenizer.chat_template. --http-port: a second port\n"
            "that speaks only HTTP (no first-line sniffing).\n"
            "Options apply in order: a later one overrides --config.\n");
}

/* Config file keys are the long option names with '_' for '-': {"lanes": 64, "port": 0}. */
static int load_config(opts_t *o, const char *path) {
    char *text = NULL;
    int rc = lanes_read_file("config", path, (size_t)1 << 20, &text, NULL);
    if (rc < 0) return rc;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsObject(j)) {
        LANES_LOG(LANES_LOG_ERROR, "config %s: not a JSON object", path);
        cJSON_Delete(j);
        return LANES_EINVAL;
    }
    if (o->configs == NULL) o->configs = cJSON_CreateArray();
    if (o->configs == NULL) {
        cJSON_Delete(j);
        return LANES_ENOMEM;
    }
    cJSON_AddItemToArray(o->configs, j);   /* kept to the end: a later file must not free these */
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        const char *k = it->string;
        double d = cJSON_IsNumber(it) ? it->valuedouble : 0.5;
        int isnum = d >= INT_MIN && d <= INT_MAX && d == (int)d;   /* an int: no UB casting it */
        int isstr = cJSON_IsString(it), v = isnum ? (int)d : 0;
        if (isstr && strcmp(k, "model") == 0) o->model = it->valuestring;
        else if (isstr && strcmp(k, "tokenizer") == 0) o->tok = it->valuestring;
        else if (isstr && strcmp(k, "preset") == 0) o->preset = it->valuestring;
        else if (isstr && strcmp(k, "host") == 0) o->host = it->valuestring;
        else if (isstr && strcmp(k, "chat_template") == 0) o->chat_template = it->valuestring;
        else if (isnum && strcmp(k, "port") == 0) o->port = v;
        else if (isnum && strcmp(k, "http_port") == 0) o->http_port = v;
        else if (isnum && strcmp(k, "lanes") == 0) o->lanes = v;
        else if (isnum && strcmp(k, "ctx") == 0) o->ctx = v;
        else if (isnum && strcmp(k, "max_queue") == 0) o->max_queue = v;
        else if (isnum && strcmp(k, "max_conns") == 0) o->max_conns = v;
        else if (isnum && strcmp(k, "max_inflight") == 0) o->max_inflight = v;
        else if (isnum && strcmp(k, "threads") == 0) o->threads = v;
        else if (isnum && strcmp(k, "prefill_chunk") == 0) o->prefill_chunk = v;
        else if (isnum && strcmp(k, "stats_every") == 0) o->stats_s = v;
        else if (isnum && strcmp(k, "sndbuf") == 0) o->sndbuf = v;
        else if (isnum && strcmp(k, "out_soft") == 0) o->out_soft = v;
        else if (isnum && strcmp(k, "out_hard") == 0) o->out_hard = v;
        else if (isnum && strcmp(k, "max_body") == 0) o->max_body = v;
        else if (cJSON_IsNumber(it) && strcmp(k, "http_timeout") == 0) o->http_timeout_s = d;
        else if (cJSON_IsNumber(it) && strcmp(k, "idle_timeout") == 0) o->idle_s = d;
        else if (cJSON_IsBool(it) && strcmp(k, "quiet") == 0) o->quiet = cJSON_IsTrue(it);
        else {
            LANES_LOG(LANES_LOG_ERROR, "config %s: unknown key or wrong type (numbers are integers): %s",
                      path, k);
            return LANES_EINVAL;
        }
    }
    return LANES_OK;
}

typedef struct {
    const opts_t *o;
    bat_sched_cfg_t sc;
    bat_sched_t *sched;     /* owned by main once io_server_run returned */
} loader_t;

/* io_server_load_fn: on a worker thread while the server answers "loading". */
static int load(void *arg, bat_sched_t **out) {
    loader_t *l = arg;
    int rc = bat_sched_open(&l->sc, l->o->model, l->o->tok, l->o->preset, &l->sched);
    if (rc < 0) return rc;   /* it freed what it made */
    *out = l->sched;
    return bat_sched_start(l->sched);
}

int main(int argc, char **argv) {
    opts_t o = {.host = "127.0.0.1", .port = 7070, .lanes = 128, .max_queue = 1024,
                .max_conns = 1024, .max_inflight = 256, .prefill_chunk = 64, .stats_s = 10,
                .out_soft = 1 << 20, .out_hard = 8 << 20, .idle_s = 60, .max_body = 1 << 20,
                .http_timeout_s = 30, .http_port = -1};
    static const struct option lo[] = {
        {"preset", 1, 0, 'P'}, {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"lanes", 1, 0, 'l'},
        {"ctx", 1, 0, 'x'},
        {"max-queue", 1, 0, 'q'}, {"max-conns", 1, 0, 'c'}, {"max-inflight", 1, 0, 'i'},
        {"threads", 1, 0, 't'}, {"prefill-chunk", 1, 0, 'k'}, {"out-soft", 1, 0, 's'},
        {"out-hard", 1, 0, 'S'}, {"stats-every", 1, 0, 'e'}, {"sndbuf", 1, 0, 'b'}, {"config", 1, 0, 'C'},
        {"idle-timeout", 1, 0, 'I'}, {"max-body", 1, 0, 'B'}, {"http-timeout", 1, 0, 'T'},
        {"chat-template", 1, 0, 'M'}, {"http-port", 1, 0, 'W'},
        {"quiet", 0, 0, 'Q'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch, bad = 0, rc = 2;   /* bad options until they are all read */
    bat_sched_t *sched = NULL;
    io_server_t *srv = NULL;
    while ((ch = getopt_long(argc, argv, "m:z:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 'z': o.tok = optarg; break;
        case 'P': o.preset = optarg; break;
        case 'H': o.host = optarg; break;
        case 'p': bad |= lanes_arg_int("--port", optarg, 0, 65535, &o.port) < 0; break;
        case 'l': bad |= lanes_arg_int("--lanes", optarg, 1, INT_MAX, &o.lanes) < 0; break;
        case 'x': bad |= lanes_arg_int("--ctx", optarg, 0, INT_MAX, &o.ctx) < 0; break;
        case 'q': bad |= lanes_arg_int("--max-queue", optarg, 0, INT_MAX, &o.max_queue) < 0; break;
        case 'c': bad |= lanes_arg_int("--max-conns", optarg, 1, INT_MAX, &o.max_conns) < 0; break;
        case 'i': bad |= lanes_arg_int("--max-inflight", optarg, 1, INT_MAX, &o.max_inflight) < 0; break;
        case 't': bad |= lanes_arg_int("--threads", optarg, 0, INT_MAX, &o.threads) < 0; break;
        case 'k': bad |= lanes_arg_int("--prefill-chunk", optarg, 1, INT_MAX, &o.prefill_chunk) < 0; break;
        case 's': bad |= lanes_arg_i64("--out-soft", optarg, 1, LLONG_MAX, &o.out_soft) < 0; break;
        case 'S': bad |= lanes_arg_i64("--out-hard", optarg, 1, LLONG_MAX, &o.out_hard) < 0; break;
        case 'e': bad |= lanes_arg_int("--stats-every", optarg, 0, INT_MAX, &o.stats_s) < 0; break;
        case 'b': bad |= lanes_arg_int("--sndbuf", optarg, 0, INT_MAX, &o.sndbuf) < 0; break;
        case 'I': bad |= lanes_arg_num("--idle-timeout", optarg, 0, 1e9, &o.idle_s) < 0; break;
        case 'B': bad |= lanes_arg_i64("--max-body", optarg, 1, 1LL << 40, &o.max_body) < 0; break;
        case 'T': bad |= lanes_arg_num("--http-timeout", optarg, 0, 1e9, &o.http_timeout_s) < 0; break;
        case 'M': o.chat_template = optarg; break;
        case 'W': bad |= lanes_arg_int("--http-port", optarg, 0, 65535, &o.http_port) < 0; break;
        case 'Q': o.quiet = 1; break;
        case 'C':
            if (load_config(&o, optarg) < 0) goto done;
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto done;
        default: usage(stderr); goto done;
        }
    }
    if (bad) {
        usage(stderr);
        goto done;
    }
    if (o.lanes > BAT_MAX_LANES) {
        fprintf(stderr, "lanes-server: --lanes %d: at most %d lanes (streams at once)\n", o.lanes,
                BAT_MAX_LANES);
        goto done;
    }
    if (optind != argc || o.port < 0 || o.port > 65535 || o.lanes < 1 || o.ctx < 0 ||
        o.http_port < -1 || o.http_port > 65535 || o.max_queue < 0 || o.max_conns < 1 ||
        o.max_inflight < 1 || o.threads < 0 ||
        o.prefill_chunk < 1 || o.sndbuf < 0 || o.out_soft < 1 || o.out_hard < o.out_soft ||
        !(o.idle_s >= 0 && o.idle_s <= 1e9) || o.max_body < 1 ||
        !(o.http_timeout_s >= 0 && o.http_timeout_s <= 1e9)) {
        usage(stderr);
        goto done;
    }
    if (o.quiet) lanes_log_level = LANES_LOG_WARN;
    signal(SIGPIPE, SIG_IGN);

    rc = 1;
    io_server_cfg_t ic = {o.host, o.port, o.max_conns, o.max_inflight, (size_t)o.out_soft,
                          (size_t)o.out_hard, o.sndbuf, 5.0, o.idle_s, (size_t)o.max_body,
                          o.http_timeout_s, o.chat_template, o.http_port};
    if (io_server_create(&ic, &srv) < 0) goto done;
    loader_t ld = {&o, {o.lanes, o.max_queue, o.prefill_chunk, o.threads, o.stats_s,
                        io_server_notify, srv, o.ctx}, NULL};
    rc = io_server_run(srv, load, &ld) < 0;   /* serves while it loads */
    sched = ld.sched;
done:
    bat_sched_destroy(sched);   /* first: its threads may notify the server until joined */
    io_server_destroy(srv);
    cJSON_Delete(o.configs);
    return rc;
}
