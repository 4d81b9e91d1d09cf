#ifndef ENG_POOL_H
#define ENG_POOL_H

/* A fixed set of compute threads woken once per phase. The calling thread is worker 0, so a pool
 * of n threads starts n - 1. Workers spin briefly between phases (a step runs dozens of them) and
 * sleep when the engine goes idle. */
typedef struct eng_pool eng_pool_t;

/* fn runs once on every worker with its index tid in 0..nthreads-1. */
typedef void (*eng_pool_fn)(void *arg, int tid, int nthreads);

int eng_pool_create(int threads, eng_pool_t **out);
void eng_pool_destroy(eng_pool_t *p);   /* NULL is fine; joins the workers */

/* Runs fn on all workers and returns when every one has finished. Caller: the owning thread only. */
void eng_pool_run(eng_pool_t *p, eng_pool_fn fn, void *arg);

int eng_pool_threads(const eng_pool_t *p);

#endif
