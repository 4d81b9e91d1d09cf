#ifndef LANES_Q_H
#define LANES_Q_H

/* Thread hand-off primitives, the only place liburcu is used (its headers trip -pedantic and TSAN
 * cannot see its barriers; LANES_Q_MUTEX builds a mutex version of this file for TSAN).
 *
 * lanes_q: a wait-free multi-producer queue (liburcu cds_wfcq) with one consumer that takes the
 * whole queue at once. Embed a lanes_q_node_t in each message; the queue never allocates.
 *
 * lanes_rcu: publish a read-only snapshot pointer from one writer to many readers (urcu-memb). */

typedef struct lanes_q_node {
    struct lanes_q_node *next;  /* the queue's link; read it only from lanes_q_take_all() lists */
} lanes_q_node_t;

typedef struct lanes_q lanes_q_t;

int lanes_q_create(lanes_q_t **out);
void lanes_q_destroy(lanes_q_t *q);   /* NULL is fine; nodes still queued are not touched */

/* Any thread, wait-free. Takes n until the consumer takes it out again. */
void lanes_q_push(lanes_q_t *q, lanes_q_node_t *n);

/* One consumer thread. Returns the queued nodes oldest first as a NULL-terminated list (through
 * ->next), or NULL when empty. The caller owns them. */
lanes_q_node_t *lanes_q_take_all(lanes_q_t *q);

/* Approximate emptiness check, any thread. */
int lanes_q_empty(lanes_q_t *q);

/* RCU. Every thread that reads registers once (and unregisters before exiting). */
void lanes_rcu_register(void);
void lanes_rcu_unregister(void);
void lanes_rcu_read_lock(void);
void lanes_rcu_read_unlock(void);
/* Reader, inside the read lock: the current snapshot (borrowed until the read unlock). */
void *lanes_rcu_get(void **slot);
/* The one writer: publishes p and returns the previous snapshot once no reader can still see it
 * (waits for a grace period), so the caller may free or reuse it. */
void *lanes_rcu_publish(void **slot, void *p);

#endif
