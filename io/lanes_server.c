/* lanes-server: the libuv line-protocol server over the continuous-batching scheduler. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_file.h"
#include "base/lanes_log.h"
#include "bat_sched.h"
#include "server.h"

typedef struct {
    const char *model, *tok, *preset, *host;
    int port, lanes, max_queue, max_conns, max_inflight, threads, prefill_chunk, quiet, stats_s, sndbuf;
    long long out_soft, out_hard;
    char *config_text;  /* owned: strings above may point into the parsed config */
    cJSON *config;
} opts_t;

static void usage(FILE *f) {
    fprintf(f,
            "usage: lanes-server [-m MODEL -z TOKENIZER | --preset tiny|15m|110m] [--host 127.0.0.1]\n"
            "                    [--port 7070] [--lanes 128] [--max-queue 1024] [--max-conns 1024]\n"
            "                    [--max-inflight 256] [--threads N] [--prefill-chunk 64]\n"
            "                    [--out-soft BYTES] [--out-hard BYTES] [--sndbuf BYTES]\n"
            "                    [--stats-every S]\n"
            "                    [--config FILE.json] [--quiet]\n"
            "Options apply in order: a later one overrides --config. See docs/PROTOCOL.md.\n");
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
    cJSON_Delete(o->config);
    o->config = j;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        const char *k = it->string;
        int isnum = cJSON_IsNumber(it), isstr = cJSON_IsString(it);
        int v = isnum ? (int)it->valuedouble : 0;
        if (isstr && strcmp(k, "model") == 0) o->model = it->valuestring;
        else if (isstr && strcmp(k, "tokenizer") == 0) o->tok = it->valuestring;
        else if (isstr && strcmp(k, "preset") == 0) o->preset = it->valuestring;
        else if (isstr && strcmp(k, "host") == 0) o->host = it->valuestring;
        else if (isnum && strcmp(k, "port") == 0) o->port = v;
        else if (isnum && strcmp(k, "lanes") == 0) o->lanes = v;
        else if (isnum && strcmp(k, "max_queue") == 0) o->max_queue = v;
        else if (isnum && strcmp(k, "max_conns") == 0) o->max_conns = v;
        else if (isnum && strcmp(k, "max_inflight") == 0) o->max_inflight = v;
        else if (isnum && strcmp(k, "threads") == 0) o->threads = v;
        else if (isnum && strcmp(k, "prefill_chunk") == 0) o->prefill_chunk = v;
        else if (isnum && strcmp(k, "stats_every") == 0) o->stats_s = v;
        else if (isnum && strcmp(k, "sndbuf") == 0) o->sndbuf = v;
        else if (isnum && strcmp(k, "out_soft") == 0) o->out_soft = (long long)it->valuedouble;
        else if (isnum && strcmp(k, "out_hard") == 0) o->out_hard = (long long)it->valuedouble;
        else if (cJSON_IsBool(it) && strcmp(k, "quiet") == 0) o->quiet = cJSON_IsTrue(it);
        else {
            LANES_LOG(LANES_LOG_ERROR, "config %s: unknown key or wrong type: %s", path, k);
            return LANES_EINVAL;
        }
    }
    return LANES_OK;
}

int main(int argc, char **argv) {
    opts_t o = {.host = "127.0.0.1", .port = 7070, .lanes = 128, .max_queue = 1024,
                .max_conns = 1024, .max_inflight = 256, .prefill_chunk = 64, .stats_s = 10,
                .out_soft = 1 << 20, .out_hard = 8 << 20};
    static const struct option lo[] = {
        {"preset", 1, 0, 'P'}, {"host", 1, 0, 'H'}, {"port", 1, 0, 'p'}, {"lanes", 1, 0, 'l'},
        {"max-queue", 1, 0, 'q'}, {"max-conns", 1, 0, 'c'}, {"max-inflight", 1, 0, 'i'},
        {"threads", 1, 0, 't'}, {"prefill-chunk", 1, 0, 'k'}, {"out-soft", 1, 0, 's'},
        {"out-hard", 1, 0, 'S'}, {"stats-every", 1, 0, 'e'}, {"sndbuf", 1, 0, 'b'}, {"config", 1, 0, 'C'},
        {"quiet", 0, 0, 'Q'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "m:z:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': o.model = optarg; break;
        case 'z': o.tok = optarg; break;
        case 'P': o.preset = optarg; break;
        case 'H': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'l': o.lanes = atoi(optarg); break;
        case 'q': o.max_queue = atoi(optarg); break;
        case 'c': o.max_conns = atoi(optarg); break;
        case 'i': o.max_inflight = atoi(optarg); break;
        case 't': o.threads = atoi(optarg); break;
        case 'k': o.prefill_chunk = atoi(optarg); break;
        case 's': o.out_soft = atoll(optarg); break;
        case 'S': o.out_hard = atoll(optarg); break;
        case 'e': o.stats_s = atoi(optarg); break;
        case 'b': o.sndbuf = atoi(optarg); break;
        case 'Q': o.quiet = 1; break;
        case 'C':
            if (load_config(&o, optarg) < 0) return 2;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || o.port < 0 || o.port > 65535 || o.lanes < 1 || o.lanes > 1024 ||
        o.max_queue < 0 || o.max_conns < 1 || o.max_inflight < 1 || o.threads < 0 ||
        o.prefill_chunk < 1 || o.sndbuf < 0 || o.out_soft < 1 || o.out_hard < o.out_soft) {
        usage(stderr);
        return 2;
    }
    if (o.quiet) lanes_log_level = LANES_LOG_WARN;
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    bat_sched_t *sched = NULL;
    io_server_t *srv = NULL;
    io_server_cfg_t ic = {o.host, o.port, o.max_conns, o.max_inflight, (size_t)o.out_soft,
                          (size_t)o.out_hard, o.sndbuf, 5.0};
    if (io_server_create(&ic, &srv) < 0) goto done;
    bat_sched_cfg_t sc = {o.lanes, o.max_queue, o.prefill_chunk, o.threads, o.stats_s,
                          io_server_notify, srv};
    if (bat_sched_open(&sc, o.model, o.tok, o.preset, &sched) < 0) goto done;
    if (bat_sched_start(sched) < 0) goto done;
    io_server_run(srv, sched);
    rc = 0;
done:
    io_server_destroy(srv);
    bat_sched_destroy(sched);
    cJSON_Delete(o.config);
    return rc;
}
