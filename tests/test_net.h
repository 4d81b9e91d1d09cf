#ifndef LANES_TEST_NET_H
#define LANES_TEST_NET_H

/* Test helpers for the server: start lanes-server as a child on an ephemeral loopback port, and
 * blocking line-oriented TCP clients. */
#include <arpa/inet.h>
#include <dirent.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

typedef struct {
    pid_t pid;
    int port;
    char log[256];
} test_srv_t;

static inline double test_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static pid_t test_srv_child;
static void test_srv_kill(void) {   /* a failed test must not leave its server running */
    if (test_srv_child > 0) kill(test_srv_child, SIGKILL);
}

/* Starts $LANES_BIN/lanes-server --port 0 plus args (NULL-terminated), with --preset tiny
 * --threads 1 before them when defaults is set, its stderr in s.log; s.port stays 0. */
static inline test_srv_t test_srv_spawn(const char *const *args, int defaults) {
    test_srv_t s = {0};
    const char *bin = getenv("LANES_BIN");
    char path[512];
    snprintf(path, sizeof path, "%s/lanes-server", bin ? bin : ".");
    snprintf(s.log, sizeof s.log, "/tmp/lanes-test-%d-%ld.log", (int)getpid(), (long)time(NULL));
    signal(SIGPIPE, SIG_IGN);
    const char *argv[64] = {path, "--port", "0", "--preset", "tiny", "--threads", "1"};
    int n = defaults ? 7 : 3;
    for (int i = 0; args && args[i] && n < 62; i++) argv[n++] = args[i];
    argv[n] = NULL;
    s.pid = fork();
    ASSERT(s.pid >= 0);
    if (s.pid == 0) {
        int fd = open(s.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    test_srv_child = s.pid;
    static int registered;
    if (!registered++) atexit(test_srv_kill);
    return s;
}

/* The port the server's log names after marker ("listening on "), waiting for it up to 30 s
 * (ASan); exits the test if the server exits first. */
static inline int test_srv_wait_port(const test_srv_t *s, const char *marker) {
    int port = 0;
    for (int tries = 0; tries < 3000 && port == 0; tries++) {
        FILE *f = fopen(s->log, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, marker);
            if (p && (p = strrchr(p, ':'))) port = atoi(p + 1);
        }
        if (f) fclose(f);
        int st;
        if (port == 0 && waitpid(s->pid, &st, WNOHANG) == s->pid) {
            fprintf(stderr, "server exited early, log %s\n", s->log);
            exit(1);
        }
        if (port == 0) usleep(10000);
    }
    ASSERT_GT(port, 0);
    return port;
}

/* Starts $LANES_BIN/lanes-server --preset tiny --port 0 plus args (NULL-terminated), once it is
 * listening. */
static inline test_srv_t test_srv_start(const char *const *args) {
    test_srv_t s = test_srv_spawn(args, 1);
    s.port = test_srv_wait_port(&s, "listening on ");
    return s;
}

/* SIGTERM, wait; returns the exit status (or 128 + signal). */
static inline int test_srv_stop(test_srv_t *s) {
    kill(s->pid, SIGTERM);
    int st = 0;
    waitpid(s->pid, &st, 0);
    test_srv_child = 0;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (code != 0) {
        fprintf(stderr, "server exit %d; its log:\n", code);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "tail -n 60 %s >&2", s->log);
        if (system(cmd)) {}
    } else {
        unlink(s->log);
    }
    return code;
}

typedef struct {
    int fd;
    char *buf;
    size_t len, cap;
    int eof;
} test_conn_t;

/* rcvbuf > 0: SO_RCVBUF set before connecting (a client that holds few bytes when it stops reading). */
static inline test_conn_t *test_connect_rcvbuf(int port, int rcvbuf) {
    test_conn_t *c = calloc(1, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(c->fd >= 0);
    if (rcvbuf > 0) ASSERT_EQ(setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ASSERT_EQ(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    return c;
}

static inline test_conn_t *test_connect(int port) { return test_connect_rcvbuf(port, 0); }

/* Open file descriptors of process pid (from /proc). */
static inline int test_fd_count(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    ASSERT(d != NULL);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static inline void test_close(test_conn_t *c) {
    if (c == NULL) return;
    close(c->fd);
    free(c->buf);
    free(c);
}

static inline void test_send(test_conn_t *c, const char *s) {
    size_t n = strlen(s), off = 0;
    while (off < n) {
        ssize_t w = send(c->fd, s + off, n - off, 0);
        ASSERT(w > 0);
        off += (size_t)w;
    }
}

/* Reads what is available into the buffer (one recv); -1 on EOF/error. */
static inline int test_fill(test_conn_t *c) {
    if (c->cap - c->len < 4096) c->buf = realloc(c->buf, c->cap *= 2);
    ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (r <= 0) {
        c->eof = 1;
        return -1;
    }
    if (getenv("TEST_TRACE")) {   /* debugging aid: every byte received, per process */
        FILE *f = fopen(getenv("TEST_TRACE"), "ab");
        if (f) fprintf(f, "[fd %d]", c->fd), fwrite(c->buf + c->len, 1, (size_t)r, f), fclose(f);
    }
    c->len += (size_t)r;
    return 0;
}

/* A buffered complete line (malloc'd, without '\n'), or NULL. */
static inline char *test_take_line(test_conn_t *c) {
    char *nl = memchr(c->buf, '\n', c->len);
    if (nl == NULL) return NULL;
    size_t n = (size_t)(nl - c->buf);
    char *line = malloc(n + 1);
    memcpy(line, c->buf, n);
    line[n] = 0;
    memmove(c->buf, nl + 1, c->len - n - 1);
    c->len -= n + 1;
    return line;
}

/* The next line within timeout_ms, or NULL (timeout or EOF). */
static inline char *test_line(test_conn_t *c, int timeout_ms) {
    double end = test_now_ms() + timeout_ms;
    for (;;) {
        char *l = test_take_line(c);
        if (l || c->eof) return l;
        int left = (int)(end - test_now_ms());
        if (left <= 0) return NULL;
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, left) > 0) test_fill(c);
    }
}

/* The next line parsed as JSON (fails the test on timeout or bad JSON). */
static inline cJSON *test_json(test_conn_t *c, int timeout_ms) {
    char *l = test_line(c, timeout_ms);
    if (l == NULL) {
        fprintf(stderr, "no reply within %d ms (eof %d)\n", timeout_ms, c->eof);
        exit(1);
    }
    cJSON *j = cJSON_Parse(l);
    if (j == NULL) {
        fprintf(stderr, "bad JSON line: %s\n", l);
        exit(1);
    }
    free(l);
    return j;
}

static inline const char *test_str(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static inline double test_num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Sends {"op":"stats"} and returns the reply (skipping other events, which are freed). */
static inline cJSON *test_stats(test_conn_t *c) {
    test_send(c, "{\"op\":\"stats\"}\n");
    for (;;) {
        cJSON *j = test_json(c, 10000);
        if (strcmp(test_str(j, "event"), "stats") == 0) return j;
        cJSON_Delete(j);
    }
}

#endif
