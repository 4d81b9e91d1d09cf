#ifndef LG_TEST_UTIL_H
#define LG_TEST_UTIL_H

/* Helpers for the loadgen tests: start a server process and learn its port, run lanes-loadgen with
 * a time limit, and check its JSON. A server started here is always killed at exit. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "loadgen.h"
#include "test_util.h"

static pid_t lg_test_server_pid;

static inline void lg_test_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Returns the whole file as a string (caller frees), or NULL. */
static char *lg_test_slurp(const char *path) { return test_try_read_file(path, NULL); }

/* Waits up to timeout_ms for pid; kills it (SIGKILL) past that. Returns the exit code, 128+signal,
 * or -1 on timeout. */
static inline int lg_test_wait(pid_t pid, int timeout_ms) {
    int st;
    for (int t = 0; t < timeout_ms; t += 10) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        lg_test_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static inline void lg_test_stop_server(void) {
    if (lg_test_server_pid <= 0) return;
    kill(lg_test_server_pid, SIGTERM);
    if (lg_test_wait(lg_test_server_pid, 3000) < 0) fprintf(stderr, "server ignored SIGTERM: killed\n");
    lg_test_server_pid = 0;
}

static inline pid_t lg_test_spawn(char *const argv[], const char *out_path) {
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s failed\n", argv[0]);
        _exit(127);
    }
    return pid;
}

/* Starts a server whose output goes to log_path and returns its port once it logs
 * "listening on HOST:PORT"; -1 when it exits or stays silent for 15 s. */
static inline int lg_test_start_server(char *const argv[], const char *log_path) {
    static int registered;
    if (!registered) {
        atexit(lg_test_stop_server);
        registered = 1;
    }
    lg_test_server_pid = lg_test_spawn(argv, log_path);
    for (int t = 0; t < 15000; t += 20) {
        char *log = lg_test_slurp(log_path);
        const char *p = log ? strstr(log, "listening on ") : NULL;
        const char *colon = p ? strchr(p, '\n') : NULL;
        if (p && colon) {
            const char *q = colon;
            while (q > p && q[-1] != ':') q--;
            int port = atoi(q);
            free(log);
            if (port > 0) return port;
        }
        free(log);
        int st;
        if (waitpid(lg_test_server_pid, &st, WNOHANG) == lg_test_server_pid) {
            lg_test_server_pid = 0;
            return -1;
        }
        lg_test_sleep_ms(20);
    }
    lg_test_stop_server();
    return -1;
}

/* Spawns lanes-loadgen with args (NULL-terminated), output in out_path; returns its pid. */
static inline pid_t lg_test_loadgen_start(const char *bin_dir, const char *out_path, const char *const *args) {
    static char bin[4096];
    snprintf(bin, sizeof bin, "%s/lanes-loadgen", bin_dir);
    char *argv[64];
    int n = 0;
    argv[n++] = bin;
    for (; *args && n < 63; args++) argv[n++] = (char *)*args;
    argv[n] = NULL;
    return lg_test_spawn(argv, out_path);
}

/* Runs lanes-loadgen with args (NULL-terminated), output in out_path; returns its exit code. */
static inline int lg_test_loadgen(const char *bin_dir, const char *out_path, const char *const *args) {
    int rc = lg_test_wait(lg_test_loadgen_start(bin_dir, out_path, args), 40000);
    char *out = lg_test_slurp(out_path);
    fprintf(stderr, "---- lanes-loadgen exited %d; output:\n%s----\n", rc, out ? out : "");
    free(out);
    return rc;
}

static inline int lg_test_contains(const char *path, const char *needle) {
    char *s = lg_test_slurp(path);
    int yes = s && strstr(s, needle) != NULL;
    free(s);
    return yes;
}

/* Checks every figure of every point is in the JSON (server stats may be null only for an
 * incomplete point, or with --api openai against a server without /metrics); returns the parsed
 * document (caller frees). */
static cJSON *lg_test_json(const char *path, int n_points) {
    char *s = lg_test_slurp(path);
    ASSERT(s != NULL);
    cJSON *j = cJSON_Parse(s);
    free(s);
    ASSERT(j != NULL);
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(j, "points");
    ASSERT_EQ(cJSON_GetArraySize(pts), n_points);
    const cJSON *api = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "config"), "api");
    ASSERT(cJSON_IsString(api));
    int openai = strcmp(api->valuestring, "openai") == 0;
    ASSERT(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "interrupted")));
    const cJSON *p;
    cJSON_ArrayForEach(p, pts) {
        const char *names[] = {
#define LG_X_NAME(name) #name,
            LG_POINT_MAP(LG_X_NAME)
#undef LG_X_NAME
        };
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(p, names[i]))) {
                fprintf(stderr, "point lacks %s\n", names[i]);
                exit(1);
            }
        }
        ASSERT(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(p, "complete")));
        ASSERT(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(p, "errors")));
        const char *sides[] = {"server_before", "server_after"};
        for (int k = 0; k < 2; k++) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(p, sides[k]);
            if (cJSON_IsNull(st) && (openai || cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(p, "complete"))))
                continue;                        /* the server vanished, or has no /metrics */
            ASSERT(cJSON_IsObject(st));
            const char *snames[] = {
#define LG_X_NAME(name) #name,
                LG_STATS_MAP(LG_X_NAME)
#undef LG_X_NAME
            };
            for (size_t i = 0; i < sizeof snames / sizeof snames[0]; i++)
                ASSERT(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(st, snames[i])));
        }
    }
    return j;
}

/* 1 when the server at port answers an HTTP request with an HTTP response (GET /v1/models). */
static inline int lg_test_speaks_http(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[16] = "";
    static const char req[] = "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, req, sizeof req - 1) > 0) {
        size_t got = 0;
        ssize_t k;
        while (got < 8 && (k = read(fd, buf + got, 8 - got)) > 0) got += (size_t)k;
    }
    close(fd);
    return strncmp(buf, "HTTP/1.", 7) == 0;
}

static inline double lg_test_num(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ASSERT(cJSON_IsNumber(v));
    return v->valuedouble;
}

#endif
