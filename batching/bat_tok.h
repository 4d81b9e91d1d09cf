#ifndef BAT_TOK_H
#define BAT_TOK_H

#include <uv.h>

#include "base/lanes_q.h"
#include "bat_sched.h"

/* The scheduler's tokenizer worker: one thread that turns prompts into ids between bat_submit()
 * and the engine thread's inbox, so neither the I/O thread nor the step loop ever encodes. Its
 * queue is bounded by the scheduler's live-request bound (every generate in it counts). Messages
 * leave in the order they came, except that a request cancelled while it waits to be encoded
 * leaves at once (marked cancelled) and its cancel is dropped: a cancel never overtakes its
 * request, and it does not wait behind other prompts. */
typedef struct bat__tok bat__tok_t;

/* Borrows tok, out and out_wake until bat__tok_destroy(). Prompts longer than max_ids ids (BOS
 * included) are marked LANES_ETOOLONG, unread when their length alone shows it. */
int bat__tok_create(const eng_tok_t *tok, int max_ids, lanes_q_t *out, uv_sem_t *out_wake,
                    bat__tok_t **res);
int bat__tok_start(bat__tok_t *w);
/* Any thread, never blocks. Takes msg (generate or cancel) until it is pushed on out. */
void bat__tok_push(bat__tok_t *w, bat_req_t *msg);
/* The caller guarantees no push runs or follows. Every generate not encoded yet goes on to out
 * marked LANES_ECLOSED, then the thread is joined. */
void bat__tok_stop(bat__tok_t *w);
void bat__tok_destroy(bat__tok_t *w);   /* NULL is fine; stops first */

#endif
