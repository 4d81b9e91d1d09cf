#ifndef LG_LOADGEN_H
#define LG_LOADGEN_H

/* lanes-loadgen: a single-threaded libuv client that sweeps a server over stream counts and
 * measures throughput and latency percentiles, over lanes' line protocol or OpenAI's streamed
 * /v1/completions (any OpenAI-compatible server). Links lanes_base only, never the engine. */

#define LG_MAX_POINTS 32
#define LG_MAX_ERR_CODES 8

/* The numeric fields of the server's {"op":"stats"} reply that we keep. */
#define LG_STATS_MAP(X)                                                                           \
    X(lanes_total) X(lanes_active) X(queue_depth) X(requests_served) X(requests_active)          \
    X(tokens_generated) X(prompt_tokens) X(steps) X(uptime_s) X(step_ms_avg) X(step_ms_last)

typedef struct {
#define LG_X_STAT(name) double name;
    LG_STATS_MAP(LG_X_STAT)
#undef LG_X_STAT
    int valid;                                   /* a stats reply arrived */
} lg_srv_stats_t;

typedef enum { LG_MODE_CLOSED, LG_MODE_OPEN } lg_mode_t;
typedef enum { LG_API_LANES, LG_API_OPENAI } lg_api_t;

typedef struct {
    const char *host;                            /* borrows argv; "127.0.0.1" */
    int port;                                    /* 7070 */
    int streams[LG_MAX_POINTS];                  /* sweep points, e.g. 1,2,4,...,128 */
    int n_points;
    int requests;                                /* per stream per point; 0 when --duration */
    double duration_s;                           /* per point; 0 when --requests */
    int max_tokens;                              /* per request */
    int ignore_eos;                              /* sent as "ignore_eos": true */
    int input_len;                               /* > 0: prompts of this many words (tokens) */
    const char *prompts_path;                    /* NULL: the built-in list */
    lg_api_t api;
    const char *model;                           /* openai: NULL asks GET /v1/models */
    double temperature;                          /* sent only when has_temperature */
    int has_temperature;
    unsigned long long seed;                     /* request k of a point gets seed + k */
    int has_seed;
    lg_mode_t mode;
    double rate;                                 /* open loop: arrivals per second */
    const char *json_path, *csv_path, *plot_path;
    int check;                                   /* greedy baseline, then compare every stream */
    double timeout_s;                            /* no byte from the server for this long: fail */
    const char *detailed_path;                   /* one JSON line per request */
    int progress;                                /* 1: a live line on stderr; 0: a log line per
                                                  * point; -1: neither (--no-progress) */
    int argc;                                    /* the command line, for the JSON's metadata */
    char **argv;
} lg_cfg_t;

/* What the run learnt about the server and this machine, for the JSON. "" or -1 when unknown. */
typedef struct {
    char model[160];                             /* stats "model", or the OpenAI model id */
    char weight_type[32];                        /* stats "weight_type" */
    double lanes_total, threads;                 /* stats lanes_total / threads, or /metrics */
    char date[32];                               /* the run's start, ISO 8601 UTC */
    char cpu[128];                               /* /proc/cpuinfo "model name" */
} lg_meta_t;

typedef struct {
    char code[24];                               /* "EBUSY" */
    long long count;
} lg_err_count_t;

/* Every figure of one sweep point; the X-macro lets --json and --csv write all of them. Latencies
 * are milliseconds from log-bucketed histograms (within 1% above 0.128 ms). ITL is per token: an
 * event carrying k tokens after a gap g counts k gaps of g/k (an SSE chunk counts as one token).
 * TPOT is per request: (last token - first token) / (tokens - 1); stream_tok_s is the mean over
 * requests of its inverse. finished_* count the ok requests by finish reason; short_requests
 * those with fewer tokens than max_tokens. */
#define LG_POINT_MAP(X)                                                                           \
    X(streams) X(rate) X(requests_sent) X(requests_ok) X(requests_err) X(tokens) X(prompt_tokens) \
    X(elapsed_s) X(tok_s) X(req_s) X(ttft_ms_mean) X(ttft_ms_p50) X(ttft_ms_p90) X(ttft_ms_p99)   \
    X(itl_ms_mean) X(itl_ms_p50) X(itl_ms_p90) X(itl_ms_p99) X(tpot_ms_mean) X(tpot_ms_p50)       \
    X(tpot_ms_p99) X(e2e_ms_mean) X(e2e_ms_p50) X(e2e_ms_p99) X(server_tokens) X(server_steps)    \
    X(check_mismatches) X(client_cpu_pct) X(prompt_tokens_mean) X(finished_length)               \
    X(finished_stop) X(finished_other) X(short_requests) X(stream_tok_s)

typedef struct {
#define LG_X_FIG(name) double name;
    LG_POINT_MAP(LG_X_FIG)
#undef LG_X_FIG
    int complete;                                /* every request sent got its terminal event */
    lg_err_count_t errors[LG_MAX_ERR_CODES];     /* error replies by code */
    int n_error_codes;
    lg_srv_stats_t before, after;                /* server stats around the point */
} lg_point_t;

/* Fills cfg with defaults (host, port, 1..128 streams, 4 requests, 128 max tokens, closed). */
void lg_cfg_init(lg_cfg_t *cfg);

/* Parses argv into cfg (initialised first). LANES_EINVAL after logging the bad flag; returns 1
 * for --help (the caller prints lg_usage and exits 0). cfg borrows argv strings. */
int lg_cfg_parse(lg_cfg_t *cfg, int argc, char **argv);
void lg_usage(const char *prog);

/* Called as each point finishes (complete or not), before the next one starts. */
typedef void (*lg_point_cb)(const lg_point_t *pt, void *arg);

/* Runs the sweep. points has room for cfg->n_points; *n_done counts the points that ran (the last
 * may be incomplete); meta is filled as the server tells. LANES_OK when every point completed;
 * LANES_EIO when the server refused the connection, vanished or stopped answering (already
 * logged); LANES_ENOENT for a bad prompts file; LANES_EPROTO for a reply we cannot read;
 * LANES_ECANCELED after SIGINT (the point running then is incomplete). Check mismatches are
 * counted in the points, not here. */
int lg_run(const lg_cfg_t *cfg, lg_point_t *points, int *n_done, lg_meta_t *meta, lg_point_cb cb,
           void *arg);

#endif
