/* The compute pool: every task of every phase runs exactly once, and eng_pool_run() returns only
 * after all of them finished. Phases alternate between few and many tasks, up to more threads
 * than cores, so workers still looping in a finished phase meet the next one's larger task count.
 * (A stale worker pairing the old claim word with the new count once ran a task twice and ended
 * a phase early; that needed the caller preempted between two stores, which this test makes
 * possible but cannot force.) */
#include <stdatomic.h>

#include "base/lanes_err.h"
#include "pool.h"
#include "test_util.h"

#define MAX_TASKS 256

typedef struct {
    atomic_int runs[MAX_TASKS];
    int ntasks;
} phase_t;

static void count_task(void *arg, int task, int tid) {
    phase_t *ph = arg;
    ASSERT(tid >= 0);
    ASSERT_LT(task, ph->ntasks);
    atomic_fetch_add_explicit(&ph->runs[task], 1, memory_order_relaxed);
}

int main(void) {
    static phase_t ph;
    for (int threads = 1; threads <= 4; threads++) {
        eng_pool_t *p;
        ASSERT_EQ(eng_pool_create(threads, &p), LANES_OK);
        ASSERT_EQ(eng_pool_threads(p), threads);
        for (int phase = 0; phase < 20000; phase++) {
            int n = phase % 2 ? 1 + phase % 3 : 64 + phase % 192;
            ph.ntasks = n;
            for (int t = 0; t < MAX_TASKS; t++) atomic_store(&ph.runs[t], 0);
            eng_pool_run(p, n, count_task, &ph);
            for (int t = 0; t < MAX_TASKS; t++) {
                int runs = atomic_load(&ph.runs[t]);
                if (runs != (t < n)) {
                    fprintf(stderr, "%d threads, phase %d of %d tasks: task %d ran %d times\n",
                            threads, phase, n, t, runs);
                    return 1;
                }
            }
        }
        eng_pool_destroy(p);
    }
    printf("pool: 4 x 20000 phases, every task exactly once\n");
    return 0;
}
