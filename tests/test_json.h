#ifndef LANES_TEST_JSON_H
#define LANES_TEST_JSON_H

/* Reading the JSON-lines references of ../shared (for the tests that link cJSON; test_util.h
 * stays free of it). A malformed reference fails the test, as any other failed check. */
#include <cjson/cJSON.h>
#include <stdint.h>

#include "test_util.h"

/* Calls fn(object, index, arg) for each non-empty line of path, index counting from 0; returns
 * how many there were. The object is freed when fn returns. */
static inline int test_json_lines(const char *path, void (*fn)(const cJSON *, int, void *),
                                  void *arg) {
    size_t size;
    char *d = test_read_file(path, &size), *line = d;
    int count = 0;
    while (line < d + size) {
        char *nl = memchr(line, '\n', (size_t)(d + size - line));
        if (nl) *nl = '\0';
        if (*line) {
            cJSON *j = cJSON_Parse(line);
            if (j == NULL) fprintf(stderr, "%s: entry %d is not JSON\n", path, count);
            ASSERT(j != NULL);
            fn(j, count++, arg);
            cJSON_Delete(j);
        }
        line = nl ? nl + 1 : d + size;
    }
    free(d);
    return count;
}

/* The numbers of the array a into ids (as int32) or vals (as float), whichever is not NULL;
 * returns the count, at most max. */
static inline int test_json_numbers(const cJSON *a, int32_t *ids, float *vals, int max) {
    ASSERT(cJSON_IsArray(a));
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        ASSERT(cJSON_IsNumber(it));
        ASSERT_LT(n, max);
        if (ids) ids[n] = (int32_t)it->valuedouble;
        if (vals) vals[n] = (float)it->valuedouble;
        n++;
    }
    return n;
}

static inline int test_json_ids(const cJSON *a, int32_t *ids, int max) {
    return test_json_numbers(a, ids, NULL, max);
}

static inline int test_json_floats(const cJSON *a, float *vals, int max) {
    return test_json_numbers(a, NULL, vals, max);
}

#endif
