#ifndef LANES_TEST_KERN_H
#define LANES_TEST_KERN_H

/* The kernel tests' tables: every table this build knows, in eng_kern_name_at's order (0 scalar,
 * 1 scalar-unfused: the references), NULL where this CPU cannot run it. */
#include <stdio.h>

#include "kern/kern.h"
#include "test_util.h"

enum { TEST_MAX_TABLES = 16 };
static const eng_kern_ops_t *tables[TEST_MAX_TABLES];
static int ntables;

/* Fills tables and says which ones run here ("NAME: testing" or "NAME: not available here"). */
static inline void test_kern_open(void) {
    const char *name;
    for (ntables = 0; (name = eng_kern_name_at(ntables)) != NULL; ntables++) {
        ASSERT(ntables < TEST_MAX_TABLES);
        tables[ntables] = eng_kern_by_name(name);
        if (tables[ntables]) ASSERT_STR_EQ(tables[ntables]->name, name);
        printf("%s: %s\n", name, tables[ntables] ? "testing" : "not available here");
    }
    ASSERT(tables[0] && tables[1] && tables[0]->fused && !tables[1]->fused);
}

/* "NAME: ok" for every table that ran (scripts/test-neon.sh looks for these lines). */
static inline void test_kern_done(void) {
    for (int t = 0; t < ntables; t++)
        if (tables[t]) printf("%s: ok\n", tables[t]->name);
}

#endif
