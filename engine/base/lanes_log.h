#ifndef LANES_LOG_H
#define LANES_LOG_H

enum { LANES_LOG_DEBUG, LANES_LOG_INFO, LANES_LOG_WARN, LANES_LOG_ERROR, LANES_LOG_OFF };

/* Set once before threads start (LANES_LOG_OFF silences everything). */
extern int lanes_log_level;

/* The level is checked before the arguments are evaluated. */
#define LANES_LOG(lvl, ...)                                                                       \
    do {                                                                                          \
        if ((lvl) >= lanes_log_level) lanes_log_write((lvl), __FILE__, __LINE__, __VA_ARGS__);    \
    } while (0)

/* Writes one stderr line in a single write() so threads never interleave. */
void lanes_log_write(int lvl, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Monotonic clock in nanoseconds. */
unsigned long long lanes_now_ns(void);

#endif
