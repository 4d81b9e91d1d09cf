#include "bat_tok.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "bat_fifo.h"
#include "tok/tok.h"

/* Encoding is bulk work, the step loop is what every decoding stream waits on: when the two
 * compete for a core, the kernel should favour the step loop. (Linux nice values are per thread.) */
enum { TOK_NICE = 10 };

struct bat__tok {
    const eng_tok_t *tok;
    int max_ids;
    size_t text_max;            /* bytes of text one id stands for at most (eng_tok_max_text) */
    int32_t *ids;               /* scratch, max_ids: a prompt is encoded here, then copied to size */
    lanes_q_t *inbox;           /* bat_req_t: generates (any thread), cancels (the engine) */
    uv_sem_t wake;
    lanes_q_t *out;             /* the engine's inbox */
    uv_sem_t *out_wake;
    uv_thread_t thread;
    int started;
    atomic_int stop;
    bat__fifo_t pending;        /* worker only: taken from the inbox, not encoded yet */
};

static void forward(bat__tok_t *w, bat_req_t *r) {
    lanes_q_push(w->out, &r->node);
    uv_sem_post(w->out_wake);
}

/* Moves the inbox into the pending list. A cancel (the engine found no such request) of a pending
 * request sends that request on at once, marked cancelled; any other goes back to the engine
 * behind the requests already sent. */
static void take_inbox(bat__tok_t *w) {
    lanes_q_node_t *n = lanes_q_take_all(w->inbox);
    while (n) {
        bat_req_t *r = (bat_req_t *)n;
        n = n->next;
        bat_req_t *t;
        if (r->kind == BAT_MSG_GENERATE) {
            bat__fifo_push(&w->pending, r);
        } else if ((t = bat__fifo_remove(&w->pending, r->req_id)) != NULL) {
            t->cancelled = 1;
            forward(w, t);
            bat_req_free(r);
        } else {
            forward(w, r);
        }
    }
}

/* No id stands for more than text_max bytes of the prompt, so a prompt needing more ids than fit
 * ends ETOOLONG without being encoded: a flood of huge prompts costs next to nothing. */
static int surely_too_long(const bat__tok_t *w, size_t len) {
    return (len + w->text_max - 1) / w->text_max > (size_t)w->max_ids;
}

/* Sets r->ids and n_prompt, or r->err; the prompt bytes are not needed after this. */
static void encode(bat__tok_t *w, bat_req_t *r) {
    int np = surely_too_long(w, r->prompt_len)
                 ? LANES_ETOOLONG
                 : eng_tok_encode(w->tok, r->prompt, r->prompt_len,
                                  ENG_TOK_ADD_SPECIAL | ENG_TOK_PARSE_SPECIAL, w->ids, w->max_ids);
    if (np < 1) {
        r->err = np < 0 ? np : LANES_EINVAL;
    } else if ((r->ids = malloc((size_t)np * sizeof *r->ids)) == NULL) {
        r->err = LANES_ENOMEM;
    } else {
        memcpy(r->ids, w->ids, (size_t)np * sizeof *r->ids);
        r->n_prompt = np;
    }
    free(r->prompt);
    r->prompt = NULL;
    r->prompt_len = 0;
}

/* One prompt at a time, taking the inbox between prompts, so that a cancel waits for at most the
 * prompt being encoded. */
static void tok_main(void *arg) {
    bat__tok_t *w = arg;
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), TOK_NICE) != 0)
        LANES_LOG(LANES_LOG_WARN, "bat: tokenizer keeps the default priority: %s", strerror(errno));
    for (;;) {
        int stop = atomic_load(&w->stop);   /* before the take: it then holds every push */
        take_inbox(w);
        if (stop) break;
        bat_req_t *r = bat__fifo_pop(&w->pending);
        if (r == NULL) {
            /* As the engine thread sleeps: forget piled-up posts, wait only if still empty. */
            while (uv_sem_trywait(&w->wake) == 0) {}
            if (lanes_q_empty(w->inbox) && !atomic_load(&w->stop)) uv_sem_wait(&w->wake);
            continue;
        }
        encode(w, r);
        forward(w, r);
    }
    for (bat_req_t *r; (r = bat__fifo_pop(&w->pending)) != NULL;) {
        r->err = LANES_ECLOSED;
        forward(w, r);
    }
}

int bat__tok_create(const eng_tok_t *tok, int max_ids, lanes_q_t *out, uv_sem_t *out_wake,
                    bat__tok_t **res) {
    bat__tok_t *w = calloc(1, sizeof *w);
    if (w == NULL) return LANES_ENOMEM;
    w->tok = tok;
    w->max_ids = max_ids;
    w->text_max = eng_tok_max_text(tok);
    w->out = out;
    w->out_wake = out_wake;
    if (uv_sem_init(&w->wake, 0) != 0) {
        free(w);
        return LANES_ENOMEM;
    }
    int rc = LANES_ENOMEM;
    if ((w->ids = malloc((size_t)max_ids * sizeof *w->ids)) == NULL ||
        (rc = lanes_q_create(&w->inbox)) < 0) {
        bat__tok_destroy(w);
        return rc;
    }
    *res = w;
    return LANES_OK;
}

int bat__tok_start(bat__tok_t *w) {
    if (uv_thread_create(&w->thread, tok_main, w) != 0) return LANES_ENOMEM;
    w->started = 1;
    return LANES_OK;
}

void bat__tok_push(bat__tok_t *w, bat_req_t *msg) {
    lanes_q_push(w->inbox, &msg->node);
    uv_sem_post(&w->wake);
}

void bat__tok_stop(bat__tok_t *w) {
    if (w == NULL || !w->started) return;
    atomic_store(&w->stop, 1);
    uv_sem_post(&w->wake);
    uv_thread_join(&w->thread);
    w->started = 0;
}

void bat__tok_destroy(bat__tok_t *w) {
    if (w == NULL) return;
    bat__tok_stop(w);
    for (lanes_q_node_t *n = w->inbox ? lanes_q_take_all(w->inbox) : NULL, *next; n; n = next) {
        next = n->next;
        bat_req_free((bat_req_t *)n);
    }
    while (w->pending.head) bat_req_free(bat__fifo_pop(&w->pending));
    lanes_q_destroy(w->inbox);
    free(w->ids);
    uv_sem_destroy(&w->wake);
    free(w);
}
