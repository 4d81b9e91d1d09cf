#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/lanes_err.h"

/* About 50-100 us of spinning: long enough to span the gap between two phases of a step, short
 * enough that an idle engine stops burning a core almost at once. */
#define SPIN_LIMIT 20000

struct eng_pool {
    int n;
    pthread_t *threads;         /* owned: n - 1 workers */
    eng_pool_fn fn;             /* read only after claiming a task, while the caller waits */
    void *arg;
    /* (phase << 32) | next task, and (phase << 32) | task count. A worker claims with a CAS on the
     * whole claim word, and only while both words name its phase: one still looping in the
     * previous phase may see the new count before the new claim word, and must not pair them. */
    _Atomic uint64_t claim;
    _Atomic uint64_t ntasks;
    atomic_int finished;        /* tasks finished in this phase */
    atomic_uint generation;     /* bumped once per phase; sleeping workers wait for a change */
    atomic_int sleepers;
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

typedef struct { eng_pool_t *p; int tid; } worker_arg_t;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Claims and runs tasks of phase gen until none are left. */
static void run_tasks(eng_pool_t *p, uint32_t gen, int tid) {
    for (;;) {
        uint64_t v = atomic_load_explicit(&p->claim, memory_order_acquire);
        uint64_t count = atomic_load_explicit(&p->ntasks, memory_order_acquire);
        if ((uint32_t)(v >> 32) != gen || (uint32_t)(count >> 32) != gen) return;
        if ((uint32_t)v >= (uint32_t)count) return;
        if (!atomic_compare_exchange_weak(&p->claim, &v, v + 1)) continue;
        p->fn(p->arg, (int)(uint32_t)v, tid);
        atomic_fetch_add_explicit(&p->finished, 1, memory_order_release);
    }
}

static unsigned wait_generation(eng_pool_t *p, unsigned seen) {
    unsigned g;
    for (int i = 0; i < SPIN_LIMIT; i++) {
        if ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) != seen) return g;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *opaque) {
    worker_arg_t *wa = opaque;
    eng_pool_t *p = wa->p;
    int tid = wa->tid;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        seen = wait_generation(p, seen);
        if (atomic_load(&p->quit)) return NULL;
        run_tasks(p, seen, tid);
    }
}

static void publish(eng_pool_t *p) {
    /* seq_cst: a worker that registered as a sleeper after this increment re-reads generation
     * under the mutex and sees it; one that registered before gets the broadcast. */
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

int eng_pool_create(int threads, eng_pool_t **out) {
    if (threads < 1) return LANES_EINVAL;
    eng_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL) return LANES_ENOMEM;
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (threads > 1 && (p->threads = calloc((size_t)threads - 1, sizeof *p->threads)) == NULL)
        goto fail;
    for (int t = 1; t < threads; t++) {
        worker_arg_t *wa = malloc(sizeof *wa);
        if (wa == NULL) goto fail;
        *wa = (worker_arg_t){p, t};
        if (pthread_create(&p->threads[t - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            goto fail;
        }
        p->n = t + 1;
    }
    *out = p;
    return LANES_OK;
fail:
    eng_pool_destroy(p);
    return LANES_ENOMEM;
}

void eng_pool_destroy(eng_pool_t *p) {
    if (p == NULL) return;
    atomic_store(&p->quit, 1);
    publish(p);
    for (int t = 1; t < p->n; t++) pthread_join(p->threads[t - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

void eng_pool_run(eng_pool_t *p, int ntasks, eng_pool_fn fn, void *arg) {
    if (p->n == 1 || ntasks <= 1) {
        for (int t = 0; t < ntasks; t++) fn(arg, t, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->finished, 0, memory_order_relaxed);
    uint32_t gen = (uint32_t)atomic_load(&p->generation) + 1;
    atomic_store_explicit(&p->ntasks, (uint64_t)gen << 32 | (uint32_t)ntasks, memory_order_release);
    atomic_store_explicit(&p->claim, (uint64_t)gen << 32, memory_order_release);
    publish(p);
    run_tasks(p, gen, 0);
    while (atomic_load_explicit(&p->finished, memory_order_acquire) < ntasks) cpu_relax();
}

int eng_pool_threads(const eng_pool_t *p) { return p->n; }
