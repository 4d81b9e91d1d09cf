#include "lanes_q.h"

#include <stdlib.h>

#include "lanes_err.h"

#ifndef LANES_Q_MUTEX

/* liburcu: wait-free concurrent queue plus the memb RCU flavour (membarrier when the kernel has it). */
#define _LGPL_SOURCE   /* inline the fast paths; the library still provides synchronize_rcu */
#include <urcu/urcu-memb.h>
#include <urcu/wfcqueue.h>

struct lanes_q {
    struct __cds_wfcq_head head;    /* no dequeue lock: there is one consumer */
    struct cds_wfcq_tail tail;
};

/* lanes_q_node_t is laid out as cds_wfcq_node: one next pointer. */
_Static_assert(sizeof(lanes_q_node_t) == sizeof(struct cds_wfcq_node), "node layout");

int lanes_q_create(lanes_q_t **out) {
    lanes_q_t *q = calloc(1, sizeof *q);
    if (q == NULL) return LANES_ENOMEM;
    __cds_wfcq_init(&q->head, &q->tail);
    *out = q;
    return LANES_OK;
}

void lanes_q_destroy(lanes_q_t *q) { free(q); }

void lanes_q_push(lanes_q_t *q, lanes_q_node_t *n) {
    struct cds_wfcq_node *cn = (struct cds_wfcq_node *)(void *)n;
    cds_wfcq_node_init(cn);
    cds_wfcq_enqueue(&q->head, &q->tail, cn);
}

lanes_q_node_t *lanes_q_take_all(lanes_q_t *q) {
    struct __cds_wfcq_head h;
    struct cds_wfcq_tail t;
    __cds_wfcq_init(&h, &t);
    if (__cds_wfcq_splice_blocking(&h, &t, &q->head, &q->tail) == CDS_WFCQ_RET_SRC_EMPTY)
        return NULL;
    /* Walking with next_blocking waits out producers that swapped the tail but have not linked
     * their node yet, so afterwards every ->next is final and the last one is NULL. */
    struct cds_wfcq_node *first = __cds_wfcq_first_blocking(&h, &t), *n = first;
    while (n != NULL) n = __cds_wfcq_next_blocking(&h, &t, n);
    return (lanes_q_node_t *)(void *)first;
}

int lanes_q_empty(lanes_q_t *q) { return cds_wfcq_empty(&q->head, &q->tail); }

void lanes_rcu_register(void) { urcu_memb_register_thread(); }
void lanes_rcu_unregister(void) { urcu_memb_unregister_thread(); }
void lanes_rcu_read_lock(void) { urcu_memb_read_lock(); }
void lanes_rcu_read_unlock(void) { urcu_memb_read_unlock(); }
void *lanes_rcu_get(void **slot) { return rcu_dereference(*slot); }

void *lanes_rcu_publish(void **slot, void *p) {
    void *old = rcu_xchg_pointer(slot, p);
    urcu_memb_synchronize_rcu();
    return old;
}

#else /* LANES_Q_MUTEX: the same contract with a mutex, for TSAN builds */

#include <pthread.h>

struct lanes_q {
    pthread_mutex_t mu;
    lanes_q_node_t *head, *tail;
};

int lanes_q_create(lanes_q_t **out) {
    lanes_q_t *q = calloc(1, sizeof *q);
    if (q == NULL) return LANES_ENOMEM;
    pthread_mutex_init(&q->mu, NULL);
    *out = q;
    return LANES_OK;
}

void lanes_q_destroy(lanes_q_t *q) {
    if (q == NULL) return;
    pthread_mutex_destroy(&q->mu);
    free(q);
}

void lanes_q_push(lanes_q_t *q, lanes_q_node_t *n) {
    n->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->tail) q->tail->next = n;
    else q->head = n;
    q->tail = n;
    pthread_mutex_unlock(&q->mu);
}

lanes_q_node_t *lanes_q_take_all(lanes_q_t *q) {
    pthread_mutex_lock(&q->mu);
    lanes_q_node_t *n = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    return n;
}

int lanes_q_empty(lanes_q_t *q) {
    pthread_mutex_lock(&q->mu);
    int e = q->head == NULL;
    pthread_mutex_unlock(&q->mu);
    return e;
}

/* Readers hold a read-write lock; publishing takes it for writing, which is a grace period. */
static pthread_rwlock_t rcu_lock = PTHREAD_RWLOCK_INITIALIZER;
void lanes_rcu_register(void) {}
void lanes_rcu_unregister(void) {}
void lanes_rcu_read_lock(void) { pthread_rwlock_rdlock(&rcu_lock); }
void lanes_rcu_read_unlock(void) { pthread_rwlock_unlock(&rcu_lock); }
void *lanes_rcu_get(void **slot) { return *slot; }

void *lanes_rcu_publish(void **slot, void *p) {
    pthread_rwlock_wrlock(&rcu_lock);
    void *old = *slot;
    *slot = p;
    pthread_rwlock_unlock(&rcu_lock);
    return old;
}

#endif
