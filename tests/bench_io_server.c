/* End-to-end throughput: CONNS clients each keep one request of TOKENS tokens in flight against a
 * lanes-server child (15m synthetic model unless args say otherwise) for SECONDS, then report
 * aggregate tok/s, the server's step stats and the I/O thread's CPU share.
 *   bench_io_server [CONNS=128] [TOKENS=64] [SECONDS=10] [server args...] */
#include "test_net.h"

static double thread_cpu_s(pid_t pid, pid_t tid) {
    char path[128], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int main(int argc, char **argv) {
    int conns = argc > 1 ? atoi(argv[1]) : 128, tokens = argc > 2 ? atoi(argv[2]) : 64;
    double secs = argc > 3 ? atof(argv[3]) : 10;
    const char *args[32] = {"--preset", "15m", "--threads", "0", "--lanes", "128"};
    int na = 6;
    for (int i = 4; i < argc && na < 30; i++) args[na++] = argv[i];
    args[na] = NULL;
    test_srv_t s = test_srv_start(args);
    test_conn_t **cs = calloc((size_t)conns, sizeof *cs);
    struct pollfd *pf = calloc((size_t)conns, sizeof *pf);
    char line[256];
    long toks = 0, reqs = 0, warm_toks = 0;
    double t0 = test_now_ms(), tw = 0, io0 = 0, end = t0 + secs * 1000;
    int warm = 0;
    for (int i = 0; i < conns; i++) {
        cs[i] = test_connect(s.port);
        snprintf(line, sizeof line, "{\"id\":%d,\"prompt\":\"Once upon a time %d\",\"max_tokens\":%d}\n",
                 i, i, tokens);
        test_send(cs[i], line);
    }
    while (test_now_ms() < end) {
        if (!warm && test_now_ms() - t0 > 1000 * secs / 5) {   /* skip the start-up fifth */
            warm = 1;
            tw = test_now_ms();
            warm_toks = toks;
            io0 = thread_cpu_s(s.pid, s.pid);
        }
        for (int i = 0; i < conns; i++) pf[i] = (struct pollfd){cs[i]->fd, POLLIN, 0};
        poll(pf, (nfds_t)conns, 100);
        for (int i = 0; i < conns; i++) {
            if (!(pf[i].revents & POLLIN)) continue;
            if (test_fill(cs[i]) < 0) exit(1);
            char *l;
            while ((l = test_take_line(cs[i])) != NULL) {
                if (strstr(l, "\"event\":\"token\"")) toks++;
                else if (strstr(l, "\"event\":\"done\"") || strstr(l, "\"event\":\"error\"")) {
                    reqs++;
                    snprintf(line, sizeof line,
                             "{\"id\":%d,\"prompt\":\"Once upon a time %ld\",\"max_tokens\":%d}\n", i,
                             reqs, tokens);
                    test_send(cs[i], line);
                }
                free(l);
            }
        }
    }
    double dt = (test_now_ms() - tw) / 1000, io = thread_cpu_s(s.pid, s.pid) - io0;
    cJSON *st = test_stats(cs[0]);
    printf("conns %d, max_tokens %d: %.1f tok/s end to end (%ld requests), I/O thread %.1f%% of a "
           "core, step %.2f ms avg\n",
           conns, tokens, (double)(toks - warm_toks) / dt, reqs, 100 * io / dt,
           test_num(st, "step_ms_avg"));
    cJSON_Delete(st);
    for (int i = 0; i < conns; i++) test_close(cs[i]);
    return test_srv_stop(&s);
}
