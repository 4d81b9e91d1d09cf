#ifndef BAT_FIFO_H
#define BAT_FIFO_H

#include <stddef.h>

#include "bat_sched.h"

/* Requests in arrival order, linked through fifo_next: the tokenizer's pending prompts and the
 * engine's queue for lanes. One thread's; it owns the requests in it. */
typedef struct {
    bat_req_t *head, *tail;
    int len;
} bat__fifo_t;

static inline void bat__fifo_push(bat__fifo_t *f, bat_req_t *r) {
    r->fifo_next = NULL;
    if (f->tail) f->tail->fifo_next = r;
    else f->head = r;
    f->tail = r;
    f->len++;
}

/* Returns the oldest request, or NULL when empty. */
static inline bat_req_t *bat__fifo_pop(bat__fifo_t *f) {
    bat_req_t *r = f->head;
    if (r == NULL) return NULL;
    if ((f->head = r->fifo_next) == NULL) f->tail = NULL;
    f->len--;
    return r;
}

/* Returns the request with this id, taken out of the FIFO, or NULL if it holds none. */
static inline bat_req_t *bat__fifo_remove(bat__fifo_t *f, uint64_t req_id) {
    for (bat_req_t **pp = &f->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->fifo_next) {
        bat_req_t *r = *pp;
        if (r->req_id != req_id) continue;
        *pp = r->fifo_next;
        if (f->tail == r) f->tail = prev;
        f->len--;
        return r;
    }
    return NULL;
}

#endif
