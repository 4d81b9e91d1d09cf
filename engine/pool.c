#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "base/lanes_err.h"

/* About 50-100 us of spinning: long enough to span the gap between two phases of a step, short
 * enough that an idle engine stops burning a core almost at once. */
#define SPIN_LIMIT 20000

struct eng_pool {
    int n;
    pthread_t *threads;         /* owned: n - 1 workers */
    eng_pool_fn fn;
    void *arg;
    atomic_uint generation;     /* bumped once per run; workers wait for a change */
    atomic_int done;            /* workers (not the caller) finished with this generation */
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
        p->fn(p->arg, tid, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
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

void eng_pool_run(eng_pool_t *p, eng_pool_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    publish(p);
    fn(arg, 0, p->n);
    while (atomic_load_explicit(&p->done, memory_order_acquire) < p->n - 1) cpu_relax();
}

int eng_pool_threads(const eng_pool_t *p) { return p->n; }
