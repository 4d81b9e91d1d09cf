#ifndef LANES_TEST_UTIL_H
#define LANES_TEST_UTIL_H

/* Assertions that print both sides, as libuv's ASSERT_EQ does. A failed check exits 1. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_file.h"

#define TEST_SKIP 77

#define ASSERT(cond)                                                                              \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);          \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

#define ASSERT_CMP_INT(a, op, b)                                                                  \
    do {                                                                                          \
        long long a_ = (long long)(a), b_ = (long long)(b);                                       \
        if (!(a_ op b_)) {                                                                        \
            fprintf(stderr, "%s:%d: %s %s %s failed: %lld vs %lld\n", __FILE__, __LINE__, #a, #op, \
                    #b, a_, b_);                                                                  \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)
#define ASSERT_EQ(a, b) ASSERT_CMP_INT(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP_INT(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP_INT(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP_INT(a, <=, b)
#define ASSERT_GE(a, b) ASSERT_CMP_INT(a, >=, b)
#define ASSERT_GT(a, b) ASSERT_CMP_INT(a, >, b)

#define ASSERT_STR_EQ(a, b)                                                                       \
    do {                                                                                          \
        const char *a_ = (a), *b_ = (b);                                                          \
        if (strcmp(a_, b_) != 0) {                                                                \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" vs \"%s\"\n", __FILE__, __LINE__, #a, \
                    #b, a_, b_);                                                                  \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* Returns a file's whole contents, NUL-terminated (the caller frees it), or NULL (the reason is
 * logged); *size gets its length. */
static inline char *test_try_read_file(const char *path, size_t *size) {
    char *buf = NULL;
    return lanes_read_file("test file", path, (size_t)1 << 30, &buf, size) == LANES_OK ? buf : NULL;
}

/* The same for a file the test cannot go on without. */
static inline char *test_read_file(const char *path, size_t *size) {
    char *buf = test_try_read_file(path, size);
    ASSERT(buf != NULL);
    return buf;
}

/* Writes n bytes to path (created or truncated). */
static inline void test_write_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT(fwrite(d, 1, n, f) == n);
    ASSERT(fclose(f) == 0);
}

/* got[0..n) equals want[0..nwant), or the header (printf-style) and both lists are printed and
 * the test fails. */
__attribute__((format(printf, 5, 6))) static inline void
test_expect_ids(const int32_t *got, int n, const int32_t *want, int nwant, const char *fmt, ...) {
    int same = n == nwant;
    for (int i = 0; same && i < n; i++) same = got[i] == want[i];
    if (same) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  got :");
    for (int i = 0; i < n; i++) fprintf(stderr, " %d", (int)got[i]);
    fprintf(stderr, " (n=%d)\n  want:", n);
    for (int i = 0; i < nwant; i++) fprintf(stderr, " %d", (int)want[i]);
    fprintf(stderr, "\n");
    exit(1);
}

static inline int test_count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Whether s holds every '|'-separated part of want. */
static inline int test_has_all(const char *s, const char *want) {
    char part[256];
    for (const char *p = want, *bar; *p; p = *bar ? bar + 1 : bar) {
        bar = strchr(p, '|');
        if (!bar) bar = p + strlen(p);
        snprintf(part, sizeof part, "%.*s", (int)(bar - p), p);
        if (!strstr(s, part)) return 0;
    }
    return 1;
}

/* stderr sent to a file while the code under test logs, then read back. */
typedef struct {
    FILE *f;
    int saved;      /* the real stderr */
} test_capture_t;

/* Sends stderr to path (created or truncated), or to an anonymous temporary file when path is
 * NULL. A named file keeps a sanitizer's report when the code under test dies meanwhile. */
static inline void test_capture_begin(test_capture_t *c, const char *path) {
    fflush(stderr);
    c->f = path ? fopen(path, "w+") : tmpfile();
    ASSERT(c->f != NULL);
    c->saved = dup(2);
    ASSERT(c->saved >= 0 && dup2(fileno(c->f), 2) == 2);
}

/* Puts stderr back and copies what was logged into buf (NUL-terminated, cut at cap - 1 bytes);
 * returns its line count. The file stays when it has a name (the caller removes it). */
static inline int test_capture_end(test_capture_t *c, char *buf, size_t cap) {
    fflush(stderr);
    ASSERT(dup2(c->saved, 2) == 2);
    close(c->saved);
    rewind(c->f);
    size_t got = fread(buf, 1, cap - 1, c->f);
    buf[got] = 0;
    fclose(c->f);
    return test_count_lines(buf);
}

/* The shared/ folder with real models and references, or NULL (the caller then skips). */
static inline const char *test_shared_dir(void) {
    const char *d = getenv("LANES_SHARED");
    static char buf[4096];
    if (!d || !*d) return NULL;
    snprintf(buf, sizeof buf, "%s/models/README.md", d);
    FILE *f = fopen(buf, "r");
    if (!f) return NULL;
    fclose(f);
    return d;
}

#define SKIP_WITHOUT_SHARED(dir)                                                                  \
    do {                                                                                          \
        if (((dir) = test_shared_dir()) == NULL) {                                                \
            fprintf(stderr, "SKIP: ../shared not found (set LANES_SHARED)\n");                    \
            return TEST_SKIP;                                                                     \
        }                                                                                         \
    } while (0)

#endif
