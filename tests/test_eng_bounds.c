/* Bounded memory and threads: the context length (--ctx) bounds KV, positions and the scheduler's
 * "context" end; the memory check refuses what cannot fit; the CPU count follows the affinity mask
 * and cgroup quotas (fake cgroup trees here); model and tokenizer files must be regular files, so a
 * FIFO fails at once instead of blocking open(); one SplitMix64 for every synthetic stream. */
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "base/lanes_err.h"
#include "base/lanes_rand.h"
#include "base/lanes_sys.h"
#include "bat_sched.h"
#include "bundle.h"
#include "engine.h"
#include "test_util.h"

static char tmp[64];

static void put(const char *rel, const char *text) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    for (char *p = path + strlen(tmp) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = 0;
        mkdir(path, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

static const char *at(const char *rel) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    return path;
}

/* The published SplitMix64 outputs for seed 1234567 (Vigna's splitmix64.c). */
static void test_mix64(void) {
    static const uint64_t want[] = {6457827717110365317ull, 3203168211198807973ull,
                                    9817491932198370423ull, 4593380528125082431ull,
                                    16408922859458223821ull};
    uint64_t s = 1234567;
    for (int i = 0; i < 5; i++) ASSERT(lanes_splitmix64(&s) == want[i]);
    ASSERT(lanes_mix64(0) == 0);
}

static void test_plan(void) {
    eng_model_cfg_t mc;
    ASSERT_EQ(eng_model_preset("110m", &mc), 0);
    eng_ctx_plan_t p;
    /* 110m at 128 lanes: 2 (k, v) x 12 layers x 1024 positions x 768 x 4 bytes per lane. */
    eng_ctx_cfg_t cfg = {128, 128 + 64, 2, ENG_GEMM_LANES, 0};
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, UINT64_MAX, &p), 0);
    ASSERT_EQ(p.ctx, 1024);
    ASSERT_EQ(p.threads, 2);
    ASSERT_EQ(p.kv_lane, 2ull * 12 * 1024 * 768 * 4);
    ASSERT_EQ(p.kv, 128 * p.kv_lane);
    ASSERT_GT(p.total, p.kv);
    /* 9.7 GB does not fit in 8 GiB: refused with ENOMEM, and fits when there is room. */
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, 8ull << 30, &p), LANES_ENOMEM);
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, p.total, &p), 0);
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, p.total - 1, &p), LANES_ENOMEM);
    /* A shorter context shrinks KV in proportion. */
    cfg.ctx = 256;
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, 8ull << 30, &p), 0);
    ASSERT_EQ(p.ctx, 256);
    ASSERT_EQ(p.kv, 128ull * 2 * 12 * 256 * 768 * 4);
    /* Longer than the model's seq_len, negative, or more lanes than the design's bound. */
    cfg.ctx = 1025;
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, UINT64_MAX, &p), LANES_EINVAL);
    cfg.ctx = -1;
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, UINT64_MAX, &p), LANES_EINVAL);
    cfg.ctx = 0;
    cfg.max_lanes = ENG_MAX_LANES + 1;
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, UINT64_MAX, &p), LANES_EINVAL);
    /* A long-context header gets the default cap, not its seq_len. */
    cfg.max_lanes = 4;
    mc.seq_len = 1 << 20;
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, UINT64_MAX, &p), 0);
    ASSERT_EQ(p.ctx, ENG_CTX_DEFAULT);
    /* threads 0 resolves to the CPUs this process may use. */
    cfg.threads = 0;
    ASSERT_EQ(eng_ctx_plan(&mc, &cfg, UINT64_MAX, &p), 0);
    ASSERT_EQ(p.threads, lanes_sys_cpus());
}

/* The engine refuses positions at or past its context; the context reports its length. */
static void test_ctx_positions(const eng_bundle_t *b) {
    eng_ctx_t *c;
    ASSERT_EQ(eng_ctx_create(b->model, &(eng_ctx_cfg_t){2, 8, 1, ENG_GEMM_LANES, 16}, &c), 0);
    ASSERT_EQ(eng_ctx_seq_len(c), 16);
    eng_ctx_set_sampler(c, 0, &(eng_sampler_t){0.0f, 0, 1.0f, 0});
    eng_col_t cols[16];
    int32_t tok[16];
    for (int p = 0; p < 8; p++) cols[p] = (eng_col_t){0, p, 5 + p, p == 7, NULL, NULL};
    ASSERT_EQ(eng_step(c, cols, 8, tok), 0);
    for (int p = 0; p < 8; p++) cols[p] = (eng_col_t){0, 8 + p, 5 + p, p == 7, NULL, NULL};
    ASSERT_EQ(eng_step(c, cols, 8, tok), 0);     /* positions 8..15: the last one that fits */
    cols[0] = (eng_col_t){0, 16, 5, 1, NULL, NULL};
    ASSERT_EQ(eng_step(c, cols, 1, tok), LANES_EINVAL);
    /* Past the filled length (lane 1 holds nothing yet; lane 0 again from position 0 holds 1). */
    cols[0] = (eng_col_t){1, 1, 5, 1, NULL, NULL};
    ASSERT_EQ(eng_step(c, cols, 1, tok), LANES_EINVAL);
    cols[0] = (eng_col_t){0, 0, 5, 1, NULL, NULL};
    ASSERT_EQ(eng_step(c, cols, 1, tok), LANES_OK);
    cols[0] = (eng_col_t){0, 2, 5, 1, NULL, NULL};
    ASSERT_EQ(eng_step(c, cols, 1, tok), LANES_EINVAL);
    cols[0] = (eng_col_t){0, 1, 5, 1, NULL, NULL};
    ASSERT_EQ(eng_step(c, cols, 1, tok), LANES_OK);
    eng_ctx_destroy(c);
}

static uv_sem_t woke;
static void notify(void *arg) {
    (void)arg;
    uv_sem_post(&woke);
}

/* One request through a scheduler with --ctx 24: the stream ends with reason "context" once
 * prompt and output fill 24 positions, far below the model's 256; a prompt longer than 24 tokens
 * is refused. */
static void test_sched_ctx(const eng_bundle_t *b) {
    enum { CTX = 24 };
    bat_sched_cfg_t cfg = {2, 4, 8, 1, 0, notify, NULL, CTX};
    bat_sched_t *s;
    cfg.max_lanes = BAT_MAX_LANES + 1;
    ASSERT_EQ(bat_sched_create(&cfg, b->model, b->tok, &s), LANES_EINVAL);
    cfg.max_lanes = 2;
    ASSERT_EQ(bat_sched_create(&cfg, b->model, b->tok, &s), 0);
    ASSERT_EQ(bat_sched_start(s), 0);
    lanes_rcu_register();
    const char *shortp = "Once upon a time";
    char longp[400] = "";
    for (int i = 0; i < 40; i++) strcat(longp, " word");
    bat_req_t *r = bat_req_new(1, shortp, strlen(shortp));
    r->max_tokens = 200;
    ASSERT_EQ(bat_submit(s, r), 0);
    r = bat_req_new(2, longp, strlen(longp));
    ASSERT_EQ(bat_submit(s, r), 0);
    int ended = 0, ntok = 0;
    while (ended < 2) {
        uv_sem_wait(&woke);
        for (bat_batch_t *bb = bat_take_batches(s), *next; bb; bb = next) {
            next = (bat_batch_t *)bb->node.next;
            for (int k = 0; k < bb->n; k++) {
                const bat_evt_t *e = &bb->ev[k];
                if (e->req_id == 1 && e->kind == BAT_EV_TOKEN) ntok += e->n_tok;
                if (e->kind == BAT_EV_TOKEN) continue;
                ended++;
                if (e->req_id == 1) {
                    ASSERT_EQ(e->kind, BAT_EV_DONE);
                    ASSERT_STR_EQ(bat_end_name(e->code), "context");
                    /* the token sampled at the last position is emitted, never fed back */
                    ASSERT_EQ(e->prompt_tokens + e->completion_tokens, CTX + 1);
                    ASSERT_EQ(e->completion_tokens, ntok);
                } else {
                    ASSERT_EQ(e->req_id, 2);
                    ASSERT_EQ(e->kind, BAT_EV_ERROR);
                    ASSERT_EQ(e->code, LANES_ETOOLONG);   /* fits the model's 256, not CTX */
                }
            }
            bat_batch_release(s, bb);
        }
    }
    bat_sched_destroy(s);
}

static void test_cgroups(void) {
    /* v2: the lowest quota over the path and its ancestors, rounded up; missing levels skipped. */
    put("v2/cpu.max", "max 100000\n");
    put("v2/a/cpu.max", "150000 100000\n");
    put("v2/a/b/cpu.max", "max 100000\n");
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("v2"), "/"), 0);
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("v2"), "/a"), 2);
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("v2"), "/a/b"), 2);
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("v2"), "/a/b/not/here"), 2);
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("v2"), "/other/ns"), 0);   /* only the mount is read */
    put("v2/a/b/cpu.max", "20000 100000\n");                       /* a fifth of a CPU: 1 */
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("v2"), "/a/b"), 1);
    put("v2/cpu.max", "300000 50000\n");                           /* 6, at the mount itself */
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("v2"), "/x"), 6);
    /* v1: quota -1 is none. */
    put("v1/cpu.cfs_quota_us", "-1\n");
    put("v1/cpu.cfs_period_us", "100000\n");
    put("v1/docker/c1/cpu.cfs_quota_us", "250000\n");
    put("v1/docker/c1/cpu.cfs_period_us", "100000\n");
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("v1"), "/"), 0);
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("v1"), "/docker/c1"), 3);
    ASSERT_EQ(lanes_sys_cgroup_cpus(at("nothing"), "/"), 0);

    /* Memory, v2: limit less usage, with inactive page cache counted as free. */
    put("v2/memory.max", "max\n");
    put("v2/a/memory.max", "1000000\n");
    put("v2/a/memory.current", "300000\n");
    put("v2/a/memory.stat", "anon 200000\nfile 100000\ninactive_file 100000\n");
    put("v2/a/b/memory.max", "max\n");
    ASSERT(lanes_sys_cgroup_mem(at("v2"), "/") == UINT64_MAX);
    ASSERT_EQ(lanes_sys_cgroup_mem(at("v2"), "/a/b"), 800000);
    put("v2/a/b/memory.max", "500000\n");
    put("v2/a/b/memory.current", "600000\n");                      /* over: nothing left */
    ASSERT_EQ(lanes_sys_cgroup_mem(at("v2"), "/a/b"), 0);
    /* v1: the page counter's maximum is no limit; total_inactive_file, not inactive_file. */
    put("v1/memory.limit_in_bytes", "9223372036854771712\n");
    put("v1/docker/c1/memory.limit_in_bytes", "2000000\n");
    put("v1/docker/c1/memory.usage_in_bytes", "500000\n");
    put("v1/docker/c1/memory.stat", "inactive_file 999999\ntotal_inactive_file 100000\n");
    ASSERT(lanes_sys_cgroup_mem(at("v1"), "/") == UINT64_MAX);
    ASSERT_EQ(lanes_sys_cgroup_mem(at("v1"), "/docker/c1"), 1600000);

    put("meminfo", "MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:   12345 kB\n");
    ASSERT_EQ(lanes_sys_meminfo_avail(at("meminfo")), 12345ull * 1024);
    put("meminfo", "MemTotal:       16000000 kB\nMemFree:  100 kB\n");
    ASSERT(lanes_sys_meminfo_avail(at("meminfo")) == UINT64_MAX);
    ASSERT_GT(lanes_sys_mem_avail(), 0);
}

/* The affinity mask bounds the thread count: pinned to one CPU, a context starts one thread. */
static void test_affinity(const eng_bundle_t *b) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    ASSERT_GE(lanes_sys_cpus(), 1);
    ASSERT_LE(lanes_sys_cpus(), online);
    cpu_set_t old, one;
    ASSERT_EQ(sched_getaffinity(0, sizeof old, &old), 0);
    CPU_ZERO(&one);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &old)) {
            CPU_SET(i, &one);
            break;
        }
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    ASSERT_EQ(lanes_sys_cpus(), 1);
    eng_ctx_t *c;
    ASSERT_EQ(eng_ctx_create(b->model, &(eng_ctx_cfg_t){1, 8, 0, ENG_GEMM_LANES, 0}, &c), 0);
    ASSERT_EQ(eng_ctx_threads(c), 1);
    eng_ctx_destroy(c);
    ASSERT_EQ(sched_setaffinity(0, sizeof old, &old), 0);
}

/* A FIFO as model or tokenizer fails at once (open() would block until a writer came). */
static void test_fifo(void) {
    const char *fifo = at("fifo");
    ASSERT_EQ(mkfifo(fifo, 0600), 0);
    alarm(20);   /* a hang fails the test instead of waiting for ctest's timeout */
    eng_model_t *m = NULL;
    ASSERT_EQ(eng_model_load(fifo, &m), LANES_EMODEL);
    eng_tok_t *t = NULL;
    ASSERT_EQ(eng_tok_load(fifo, 512, &t), LANES_EIO);
    eng_bundle_t b;
    ASSERT(eng_bundle_open(&b, fifo, fifo, NULL, 1) < 0);
    ASSERT_EQ(eng_model_load(tmp, &m), LANES_EMODEL);   /* a directory */
    alarm(0);
}

/* Whole logit rows are kept for max_lanes top-k/top-p columns only: a step asking for more without
 * logits buffers of their own is refused before anything runs; with buffers it runs, and the
 * buffers get the rows the filtered draw was made from (a greedy twin gives the same logits). */
static void test_full_rows(const eng_bundle_t *b) {
    int vocab = eng_model_cfg(b->model)->vocab_size;
    eng_ctx_t *c;
    ASSERT_EQ(eng_ctx_create(b->model, &(eng_ctx_cfg_t){2, 8, 1, ENG_GEMM_LANES, 16}, &c), 0);
    eng_ctx_set_sampler(c, 0, &(eng_sampler_t){0.8f, 5, 0.9f, 3});
    eng_ctx_set_sampler(c, 1, &(eng_sampler_t){0.0f, 0, 1.0f, 0});
    eng_col_t cols[3];
    int32_t tok[3];
    float *logits = malloc(3 * (size_t)vocab * sizeof *logits);
    float *greedy = malloc(3 * (size_t)vocab * sizeof *greedy);
    for (int p = 0; p < 3; p++) cols[p] = (eng_col_t){0, p, 5 + p, 1, NULL, NULL};
    ASSERT_EQ(eng_step(c, cols, 3, tok), LANES_EINVAL);   /* 3 rows wanted, 2 lanes */
    for (int p = 0; p < 3; p++) cols[p].logits = logits + (size_t)p * vocab;
    ASSERT_EQ(eng_step(c, cols, 3, tok), LANES_OK);
    for (int p = 0; p < 3; p++) ASSERT(tok[p] >= 0 && tok[p] < vocab);
    for (int p = 0; p < 3; p++)
        cols[p] = (eng_col_t){1, p, 5 + p, 1, greedy + (size_t)p * vocab, NULL};
    ASSERT_EQ(eng_step(c, cols, 3, tok), LANES_OK);
    ASSERT(memcmp(logits, greedy, 3 * (size_t)vocab * sizeof *logits) == 0);
    for (int p = 0; p < 2; p++) cols[p] = (eng_col_t){0, 3 + p, 9, 1, NULL, NULL};
    eng_ctx_set_sampler(c, 1, &(eng_sampler_t){0.8f, 5, 0.9f, 3});
    cols[2] = (eng_col_t){1, 3, 9, 1, NULL, NULL};
    ASSERT_EQ(eng_step(c, cols, 3, tok), LANES_EINVAL);
    cols[1] = cols[2];
    ASSERT_EQ(eng_step(c, cols, 2, tok), LANES_OK);   /* two rows: one per lane */
    free(logits);
    free(greedy);
    eng_ctx_destroy(c);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/test_eng_bounds.XXXXXX");
    ASSERT(mkdtemp(tmp) != NULL);
    uv_sem_init(&woke, 0);
    test_mix64();
    test_plan();
    test_cgroups();
    test_fifo();
    eng_bundle_t b;
    ASSERT_EQ(eng_bundle_open(&b, NULL, NULL, "tiny", 1), 0);
    test_ctx_positions(&b);
    test_full_rows(&b);
    test_sched_ctx(&b);
    test_affinity(&b);
    eng_bundle_close(&b);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    ASSERT_EQ(system(cmd), 0);
    printf("eng_bounds: ok\n");
    return 0;
}
