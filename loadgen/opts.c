/* Command-line flags for lanes-loadgen. */
#include "loadgen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_arg.h"
#include "base/lanes_err.h"
#include "base/lanes_log.h"

void lg_cfg_init(lg_cfg_t *cfg) {
    static const int sweep[] = {1, 2, 4, 8, 16, 32, 64, 128};
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "127.0.0.1";
    cfg->port = 7070;
    memcpy(cfg->streams, sweep, sizeof sweep);
    cfg->n_points = (int)(sizeof sweep / sizeof sweep[0]);
    cfg->requests = 4;
    cfg->max_tokens = 128;
    cfg->mode = LG_MODE_CLOSED;
    cfg->timeout_s = 60;
}

void lg_usage(const char *prog) {
    fprintf(stderr,
            "usage: %s [--host 127.0.0.1] [--port 7070] [--api lanes|openai] [--model NAME]\n"
            "          [--streams 1,2,4,8,16,32,64,128] [--requests N | --duration SECONDS]\n"
            "          [--max-tokens 128 | --output-len N] [--ignore-eos]\n"
            "          [--prompts FILE | --input-len N] [--temperature T] [--seed S]\n"
            "          [--mode closed|open --rate R] [--json FILE] [--csv FILE]\n"
            "          [--plot FILE.png|FILE.svg] [--save-detailed FILE.jsonl] [--check]\n"
            "          [--timeout SECONDS] [--no-progress] [--quiet]\n"
            "  --api openai streamed POST /v1/completions over HTTP/1.1 keep-alive (any OpenAI-\n"
            "               compatible server); --model defaults to GET /v1/models' first id\n"
            "  --output-len exactly N tokens per request: --max-tokens N --ignore-eos\n"
            "  --input-len  prompts of N common words, one token each for most tokenizers\n"
            "  --streams    sweep points: concurrent streams (closed) or connections (open)\n"
            "  --requests   requests per stream per point (default 4)\n"
            "  --duration   run each point this long instead, then let in-flight requests end\n"
            "  --mode open  Poisson arrivals at --rate requests/s spread over the connections\n"
            "  --check      greedy baseline per prompt first, then every stream must match it\n"
            "  --timeout    fail when the server sends nothing for this long (default 60)\n",
            prog);
}

static int bad(const char *flag, const char *val, const char *why) {
    LANES_LOG(LANES_LOG_ERROR, "loadgen: bad %s '%s': %s", flag, val ? val : "", why);
    return LANES_EINVAL;
}

static int parse_streams(lg_cfg_t *cfg, const char *s) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 1 || v > 4096) return bad("--streams", s, "want counts 1..4096");
        if (n == LG_MAX_POINTS) return bad("--streams", s, "too many points");
        cfg->streams[n++] = (int)v;
        if (*end == ',') end++;
        else if (*end) return bad("--streams", s, "want a comma-separated list");
        p = end;
    }
    if (n == 0) return bad("--streams", s, "empty list");
    cfg->n_points = n;
    return LANES_OK;
}

int lg_cfg_parse(lg_cfg_t *cfg, int argc, char **argv) {
    lg_cfg_init(cfg);
    int have_requests = 0, have_rate = 0, have_max_tokens = 0;
    cfg->argc = argc;
    cfg->argv = argv;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "-h") == 0 || strcmp(f, "--help") == 0) return 1;
        if (strcmp(f, "--check") == 0) {
            cfg->check = 1;
            continue;
        }
        if (strcmp(f, "--no-progress") == 0) {
            cfg->progress = -1;
            continue;
        }
        if (strcmp(f, "--quiet") == 0) {
            lanes_log_level = LANES_LOG_WARN;
            continue;
        }
        if (strcmp(f, "--ignore-eos") == 0) {
            cfg->ignore_eos = 1;
            continue;
        }
        if (i + 1 >= argc) return bad(f, NULL, "unknown flag or missing value");
        const char *v = argv[++i];
        int rc = LANES_OK;
        if (strcmp(f, "--host") == 0) {
            cfg->host = v;
        } else if (strcmp(f, "--port") == 0) {
            rc = lanes_arg_int(f, v, 1, 65535, &cfg->port);
        } else if (strcmp(f, "--streams") == 0) {
            rc = parse_streams(cfg, v);
        } else if (strcmp(f, "--requests") == 0) {
            rc = lanes_arg_int(f, v, 1, 100000000, &cfg->requests);
            have_requests = 1;
        } else if (strcmp(f, "--duration") == 0) {
            rc = lanes_arg_num(f, v, 0.001, 1e7, &cfg->duration_s);
        } else if (strcmp(f, "--max-tokens") == 0) {
            if (have_max_tokens++) return bad(f, v, "give --max-tokens or --output-len once");
            rc = lanes_arg_int(f, v, 1, 1000000, &cfg->max_tokens);
        } else if (strcmp(f, "--output-len") == 0) {
            if (have_max_tokens++) return bad(f, v, "give --max-tokens or --output-len once");
            rc = lanes_arg_int(f, v, 1, 1000000, &cfg->max_tokens);
            cfg->ignore_eos = 1;
        } else if (strcmp(f, "--input-len") == 0) {
            rc = lanes_arg_int(f, v, 1, 1000000, &cfg->input_len);
        } else if (strcmp(f, "--api") == 0) {
            if (strcmp(v, "lanes") == 0) cfg->api = LG_API_LANES;
            else if (strcmp(v, "openai") == 0) cfg->api = LG_API_OPENAI;
            else rc = bad(f, v, "want lanes or openai");
        } else if (strcmp(f, "--model") == 0) {
            if (!*v) rc = bad(f, v, "want a model name");
            cfg->model = v;
        } else if (strcmp(f, "--save-detailed") == 0) {
            cfg->detailed_path = v;
        } else if (strcmp(f, "--prompts") == 0) {
            cfg->prompts_path = v;
        } else if (strcmp(f, "--temperature") == 0 || strcmp(f, "--temp") == 0) {   /* lanes-run */
            rc = lanes_arg_num(f, v, 0, 100, &cfg->temperature);
            cfg->has_temperature = 1;
        } else if (strcmp(f, "--seed") == 0) {
            uint64_t seed;
            if ((rc = lanes_arg_u64(f, v, &seed)) == LANES_OK) cfg->seed = seed;
            cfg->has_seed = 1;
        } else if (strcmp(f, "--mode") == 0) {
            if (strcmp(v, "closed") == 0) cfg->mode = LG_MODE_CLOSED;
            else if (strcmp(v, "open") == 0) cfg->mode = LG_MODE_OPEN;
            else rc = bad(f, v, "want closed or open");
        } else if (strcmp(f, "--rate") == 0) {
            rc = lanes_arg_num(f, v, 1e-6, 1e7, &cfg->rate);
            have_rate = 1;
        } else if (strcmp(f, "--json") == 0) {
            cfg->json_path = v;
        } else if (strcmp(f, "--csv") == 0) {
            cfg->csv_path = v;
        } else if (strcmp(f, "--plot") == 0) {
            const char *dot = strrchr(v, '.');
            if (!dot || (strcmp(dot, ".png") != 0 && strcmp(dot, ".svg") != 0))
                rc = bad(f, v, "want a .png or .svg file name");
            cfg->plot_path = v;
        } else if (strcmp(f, "--timeout") == 0) {
            rc = lanes_arg_num(f, v, 0, 1e7, &cfg->timeout_s);
        } else {
            return bad(f, NULL, "unknown flag");
        }
        if (rc < 0) return rc;
    }
    if (cfg->duration_s > 0 && have_requests) return bad("--duration", NULL, "give --requests or --duration, not both");
    if (cfg->duration_s > 0) cfg->requests = 0;
    if (cfg->mode == LG_MODE_OPEN && !have_rate) return bad("--mode open", NULL, "needs --rate R");
    if (cfg->mode == LG_MODE_CLOSED && have_rate) return bad("--rate", NULL, "needs --mode open");
    if (cfg->input_len > 0 && cfg->prompts_path)
        return bad("--input-len", NULL, "give --prompts or --input-len, not both");
    if (cfg->model && cfg->api != LG_API_OPENAI) return bad("--model", cfg->model, "needs --api openai");
    if (cfg->check && cfg->api == LG_API_OPENAI)
        return bad("--check", NULL, "compares token ids, which only --api lanes receives");
    if (cfg->check && cfg->has_temperature && cfg->temperature != 0)
        return bad("--check", NULL, "compares greedy tokens: drop --temperature or set it to 0");
    return LANES_OK;
}
