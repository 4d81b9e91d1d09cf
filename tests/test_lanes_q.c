/* lanes_q: several producers, one consumer taking batches; nothing lost, per-producer FIFO order.
 * lanes_rcu: a reader never sees a freed snapshot while the writer republishes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/lanes_q.h"
#include "test_util.h"

enum { PRODUCERS = 3, PER = 100000 };

typedef struct {
    lanes_q_node_t node;
    int producer, seq;
} item_t;

static lanes_q_t *q;

static void *produce(void *arg) {
    int p = (int)(intptr_t)arg;
    for (int i = 0; i < PER; i++) {
        item_t *it = malloc(sizeof *it);
        it->producer = p;
        it->seq = i;
        lanes_q_push(q, &it->node);
    }
    return NULL;
}

static void *snap;
static atomic_int stop_readers;

static void *read_snap(void *arg) {
    (void)arg;
    lanes_rcu_register();
    long reads = 0;
    while (!atomic_load(&stop_readers)) {
        lanes_rcu_read_lock();
        const int *v = lanes_rcu_get(&snap);
        int a = v[0], b = v[1];
        lanes_rcu_read_unlock();
        ASSERT_EQ(a + 1, b);   /* written together before publishing */
        reads++;
    }
    lanes_rcu_unregister();
    return NULL;
}

int main(void) {
    ASSERT_EQ(lanes_q_create(&q), 0);
    ASSERT(lanes_q_take_all(q) == NULL);
    ASSERT(lanes_q_empty(q));
    pthread_t th[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++) pthread_create(&th[p], NULL, produce, (void *)(intptr_t)p);
    int next[PRODUCERS] = {0}, total = 0, batches = 0;
    while (total < PRODUCERS * PER) {
        lanes_q_node_t *n = lanes_q_take_all(q);
        if (n) batches++;
        while (n) {
            item_t *it = (item_t *)n;
            n = n->next;
            ASSERT_EQ(it->seq, next[it->producer]);
            next[it->producer]++;
            total++;
            free(it);
        }
    }
    for (int p = 0; p < PRODUCERS; p++) pthread_join(th[p], NULL);
    ASSERT(lanes_q_take_all(q) == NULL);
    lanes_q_destroy(q);
    fprintf(stderr, "lanes_q: %d items in %d batches\n", total, batches);

    int *cur = malloc(2 * sizeof *cur);
    cur[0] = 0, cur[1] = 1;
    snap = cur;
    pthread_t rd[2];
    for (int i = 0; i < 2; i++) pthread_create(&rd[i], NULL, read_snap, NULL);
    for (int i = 1; i < 2000; i++) {
        int *nv = malloc(2 * sizeof *nv);
        nv[0] = i, nv[1] = i + 1;
        int *old = lanes_rcu_publish(&snap, nv);
        old[0] = -100;   /* no reader can see it any more */
        free(old);
    }
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < 2; i++) pthread_join(rd[i], NULL);
    free(snap);
    return 0;
}
