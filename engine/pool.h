#ifndef ENG_POOL_H
#define ENG_POOL_H

/* A fixed set of compute threads woken once per phase. The calling thread is worker 0, so a pool
 * of n threads starts n - 1. A phase is a list of tasks that every worker, the caller included,
 * claims one at a time: when a worker is descheduled (a busy machine, the server's I/O thread),
 * the others take its share instead of waiting for it. Workers spin briefly between phases (a step
 * runs dozens of them) and sleep when the engine goes idle. */
typedef struct eng_pool eng_pool_t;

/* Runs task number task on worker tid (0..threads-1; for per-thread scratch). */
typedef void (*eng_pool_fn)(void *arg, int task, int tid);

int eng_pool_create(int threads, eng_pool_t **out);
void eng_pool_destroy(eng_pool_t *p);   /* NULL is fine; joins the workers */

/* Runs fn for every task in 0..ntasks-1 and returns when all have finished. Which worker runs a
 * task, and in what order, is unspecified: results must not depend on it. Owning thread only. */
void eng_pool_run(eng_pool_t *p, int ntasks, eng_pool_fn fn, void *arg);

int eng_pool_threads(const eng_pool_t *p);

#endif
