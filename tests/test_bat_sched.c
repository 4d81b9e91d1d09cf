/* The scheduler without the network: small prefill chunks, few lanes, more requests than lanes.
 * Every stream must equal the engine run alone (batch invariance through chunked prefill and
 * lane reuse), every request must end exactly once, and the stats must add up. */
#include <stdatomic.h>
#include <uv.h>

#include "base/lanes_err.h"
#include "bat_sched.h"
#include "bundle.h"
#include "engine.h"
#include "gen.h"
#include "test_util.h"

enum { NREQ = 12, MAXTOK = 40 };

static uv_sem_t woke;
static void notify(void *arg) {
    (void)arg;
    uv_sem_post(&woke);
}

int main(void) {
    eng_bundle_t b;
    ASSERT_EQ(eng_bundle_open(&b, NULL, NULL, "tiny", 1), 0);
    uv_sem_init(&woke, 0);
    bat_sched_cfg_t cfg = {4, NREQ - 4, 3, 1, 0, notify, NULL, 0};   /* room for NREQ exactly */
    bat_sched_t *s;
    ASSERT_EQ(bat_sched_create(&cfg, b.model, b.tok, &s), 0);
    ASSERT_EQ(bat_sched_start(s), 0);
    lanes_rcu_register();

    char prompt[NREQ][256];
    for (int i = 0; i < NREQ; i++) {
        int n = snprintf(prompt[i], sizeof prompt[i], "request %d:", i);
        for (int w = 0; w < 3 + 4 * i; w++) n += snprintf(prompt[i] + n, sizeof prompt[i] - n, " w%d", w * i);
        bat_req_t *r = bat_req_new((uint64_t)i + 1, prompt[i], strlen(prompt[i]));
        r->max_tokens = MAXTOK;
        ASSERT_EQ(bat_submit(s, r), 0);
    }
    bat_req_t *extra = bat_req_new(99, "x", 1);   /* lanes + queue are full */
    ASSERT_EQ(bat_submit(s, extra), LANES_EBUSY);
    bat_req_free(extra);

    int32_t got[NREQ][MAXTOK];
    int ngot[NREQ] = {0}, ended[NREQ] = {0}, left = NREQ;
    long tokens = 0;
    while (left > 0) {
        uv_sem_wait(&woke);
        for (bat_batch_t *bb = bat_take_batches(s), *next; bb; bb = next) {
            next = (bat_batch_t *)bb->node.next;
            for (int k = 0; k < bb->n; k++) {
                const bat_evt_t *e = &bb->ev[k];
                int i = (int)e->req_id - 1;
                ASSERT(i >= 0 && i < NREQ && !ended[i]);
                if (e->kind == BAT_EV_TOKEN) {
                    for (int t = 0; t < e->n_tok; t++) got[i][ngot[i]++] = bb->toks[e->tok_off + t];
                    tokens += e->n_tok;
                } else {
                    ASSERT_EQ(e->kind, BAT_EV_DONE);
                    ASSERT_EQ(e->completion_tokens, ngot[i]);
                    ended[i] = 1;
                    left--;
                }
            }
            bat_batch_release(s, bb);
        }
    }
    bat_stats_t st;
    bat_stats_get(s, &st);
    ASSERT_EQ(st.requests_served, NREQ);
    ASSERT_EQ(st.tokens_generated, tokens);
    ASSERT_EQ(st.lanes_active, 0);
    ASSERT_EQ(st.requests_active, 0);
    ASSERT_EQ(st.requests_rejected, 1);

    eng_ctx_t *ctx;
    eng_ctx_cfg_t cc = {1, 256, 1, ENG_GEMM_LANES, 0};
    ASSERT_EQ(eng_ctx_create(b.model, &cc, &ctx), 0);
    for (int i = 0; i < NREQ; i++) {
        int32_t pt[256], out[MAXTOK];
        int np = eng_tok_encode(b.tok, prompt[i], strlen(prompt[i]), 1, 0, pt, 256);
        ASSERT_GT(np, 3);   /* longer than one chunk: prefill really is split */
        eng_gen_req_t r = {pt, np, MAXTOK, {0, 0, 1, 0}, out, NULL, 0, 0};
        eng_gen_opts_t go = {1, 0, 0};
        ASSERT_EQ(eng_gen_run(ctx, &r, 1, &go), 0);
        ASSERT_EQ(ngot[i], r.n_out);
        for (int t = 0; t < r.n_out; t++) ASSERT_EQ(got[i][t], out[t]);
    }
    eng_ctx_destroy(ctx);
    lanes_rcu_unregister();
    bat_sched_destroy(s);
    eng_bundle_close(&b);
    uv_sem_destroy(&woke);
    return 0;
}
