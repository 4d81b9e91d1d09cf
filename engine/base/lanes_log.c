#include "lanes_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int lanes_log_level = LANES_LOG_INFO;

void lanes_log_write(int lvl, const char *file, int line, const char *fmt, ...) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    char buf[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03ld %s ", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[lvl < 0 ? 0 : lvl > 3 ? 3 : lvl]);
    if (lvl <= LANES_LOG_DEBUG) {
        const char *base = strrchr(file, '/');
        n += snprintf(buf + n, sizeof buf - n, "%s:%d ", base ? base + 1 : file, line);
    }
    va_list ap;
    va_start(ap, fmt);
    if (n < (int)sizeof buf) n += vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t wr = write(STDERR_FILENO, buf, (size_t)n);
    (void)wr;
}

unsigned long long lanes_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}
