/* The line protocol (docs/PROTOCOL.md): newline-delimited JSON requests and the plain-text
 * shorthand in, JSON event lines or raw text out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "proto.h"
#include "server_int.h"

/* The parser bounds stop strings as the scheduler does: bat_req_add_stop() cannot refuse them. */
_Static_assert(IO_MAX_STOP == BAT_MAX_STOP && IO_MAX_STOP_LEN == BAT_MAX_STOP_LEN,
               "io/proto.h's stop limits are the scheduler's");

static io_buf_t *line_buf(io_conn_t *c) { return c->midline ? &c->held_out : &c->out; }

static void out_bytes(io_conn_t *c, const char *p, size_t n) { io__buf_put(c, line_buf(c), p, n); }

#define OUT_LIT(c, lit) out_bytes((c), (lit), sizeof(lit) - 1)

#define out_fmt(c, ...) io__buf_printf((c), line_buf(c), __VA_ARGS__)

static void out_escaped(io_conn_t *c, const char *p, size_t n) {
    io_buf_t *b = line_buf(c);
    if (n == 0 || c->closing || io__buf_reserve(c, b, n * 6) < 0) return;
    b->len = (size_t)io_json_escape(b->p, b->cap, b->len, p, n);
    if (b == &c->out) io__out_mark(c);
}

/* The plain-text stream's raw bytes; the held reply lines follow its first '\n'. */
static void out_plain(io_conn_t *c, const char *p, size_t n) {
    const char *nl = c->midline ? memchr(p, '\n', n) : NULL;
    if (nl) {
        size_t k = (size_t)(nl - p) + 1;
        io__buf_put(c, &c->out, p, k);
        io__buf_put(c, &c->out, c->held_out.p, c->held_out.len);
        c->held_out.len = 0;
        c->midline = 0;
        p += k;
        n -= k;
    }
    io__buf_put(c, &c->out, p, n);
    if (n > 0) c->midline = p[n - 1] != '\n';
}

/* `{"id":ID,` or `{` — every JSON reply starts so. */
static void out_open(io_conn_t *c, const char *id) {
    if (id) out_fmt(c, "{\"id\":%s,", id);
    else OUT_LIT(c, "{");
}

/* An error reply: JSON, or "# error CODE message" for plain-text requests. op, when set, says the
 * reply is about that rejected line, not a terminal event of a request in flight with this id. */
static void out_error(io_conn_t *c, int plain, const char *id, const char *code, const char *msg,
                      const char *op) {
    if (plain) {
        out_fmt(c, "# error %s %s\n", code, msg);
        return;
    }
    out_open(c, id);
    out_fmt(c, "\"event\":\"error\",\"code\":\"%s\",\"message\":\"", code);
    out_escaped(c, msg, strlen(msg));
    if (op) out_fmt(c, "\",\"op\":\"%s\"}\n", op);
    else OUT_LIT(c, "\"}\n");
}

/* Request r's terminal error; a plain-text one ends the text's line first, as "# done" does. */
void io__line_error(io_req_t *r, const char *code, const char *msg) {
    if (r->plain && r->conn->midline) out_plain(r->conn, "\n", 1);
    out_error(r->conn, r->plain, r->id, code, msg, NULL);
}
/* ---- events from the engine ----------------------------------------------------------------- */

void io__line_idle(io_conn_t *c) { out_error(c, 0, NULL, "ETIMEDOUT", "idle timeout", NULL); }

const char *io__engine_error_msg(int code) {
    switch (code) {
    case LANES_ETOOLONG: return "prompt is longer than the context";
    case LANES_ECLOSED: return "server shutting down";
    default: return lanes_strerror(code);
    }
}

/* "logprobs":[{"logprob":L,"top":[[id,L],...]},...]: one entry per token of the event. */
static void out_logprobs(io_conn_t *c, const eng_logprobs_t *lps, int n) {
    OUT_LIT(c, ",\"logprobs\":[");
    for (int i = 0; i < n; i++) {
        char t[IO_LP_CHARS];
        out_fmt(c, "%s{\"logprob\":%s,\"top\":[", i ? "," : "", io_lp_fmt(lps[i].chosen, t));
        for (int k = 0; k < lps[i].n; k++)
            out_fmt(c, "%s[%d,%s]", k ? "," : "", (int)lps[i].top_id[k],
                    io_lp_fmt(lps[i].top_lp[k], t));
        OUT_LIT(c, "]}");
    }
    OUT_LIT(c, "]");
}

void io__line_event(io_server_t *s, const bat_batch_t *b, const bat_evt_t *e, io_req_t *r) {
    io_conn_t *c = r->conn;
    const char *text = b->text + e->text_off;
    if (e->kind == BAT_EV_TOKEN) {
        if (r->plain) {
            out_plain(c, text, e->text_len);
            return;
        }
        out_open(c, r->id);
        OUT_LIT(c, "\"event\":\"token\",\"tokens\":[");
        for (int i = 0; i < e->n_tok; i++)
            out_fmt(c, i ? ",%d" : "%d", (int)b->toks[e->tok_off + (uint32_t)i]);
        OUT_LIT(c, "],\"text\":\"");
        out_escaped(c, text, e->text_len);
        OUT_LIT(c, "\"");
        if (r->logprobs && e->n_tok > 0) out_logprobs(c, b->lps + e->tok_off, e->n_tok);
        OUT_LIT(c, "}\n");
        return;
    }
    if (e->kind == BAT_EV_DONE) {
        char ttft[32];
        if (e->ttft_ms >= 0) snprintf(ttft, sizeof ttft, "%.3f", e->ttft_ms);
        else snprintf(ttft, sizeof ttft, "null");
        if (r->plain) {
            out_plain(c, "\n", 1);
            out_fmt(c, "# done %s prompt_tokens=%d completion_tokens=%d ttft_ms=%s total_ms=%.3f\n",
                    bat_end_name(e->code), e->prompt_tokens, e->completion_tokens, ttft, e->total_ms);
        } else {
            out_open(c, r->id);
            out_fmt(c, "\"event\":\"done\",\"reason\":\"%s\",", bat_end_name(e->code));
            if (e->code == BAT_END_STOP && e->stop_idx >= 0)
                out_fmt(c, "\"stop_index\":%d,", e->stop_idx);
            out_fmt(c,
                    "\"usage\":{\"prompt_tokens\":%d,"
                    "\"completion_tokens\":%d},\"timing\":{\"queue_ms\":%.3f,\"ttft_ms\":%s,"
                    "\"total_ms\":%.3f}}\n",
                    e->prompt_tokens, e->completion_tokens, e->queue_ms, ttft, e->total_ms);
        }
    } else {
        io__line_error(r, lanes_err_name(e->code), io__engine_error_msg(e->code));
    }
    io__req_remove(s, r);
}
static io_req_t *find_by_id(io_conn_t *c, const char *id) {
    for (io_req_t *r = c->reqs; r; r = r->cnext)
        if (!r->plain && r->id && strcmp(r->id, id) == 0) return r;
    return NULL;
}

static void reply_stats(io_conn_t *c, const char *id) {
    bat_stats_t st;
    bat_stats_get(c->srv->sched, &st);
    const char *model = bat_sched_model_name(c->srv->sched);
    out_open(c, id);
    OUT_LIT(c, "\"event\":\"stats\",\"model\":\"");
    out_escaped(c, model, strlen(model));
    out_fmt(c, "\",\"weight_type\":\"%s\",\"threads\":%d,\"kv_lane_bytes\":%llu",
            bat_sched_weight_type(c->srv->sched), st.threads,
            (unsigned long long)st.kv_lane_bytes);
    out_fmt(c,
            ",\"lanes_total\":%d,\"lanes_active\":%d,\"queue_depth\":%d,"
            "\"requests_served\":%llu,\"requests_active\":%llu,\"requests_rejected\":%llu,"
            "\"tokens_generated\":%llu,\"prompt_tokens\":%llu,\"steps\":%llu,\"uptime_s\":%.3f,"
            "\"step_ms_avg\":%.4f,\"step_ms_last\":%.4f,\"step_cols_max\":%d,\"connections\":%d,"
            "\"connections_paused\":%d}\n",
            st.lanes_total, st.lanes_active, st.queue_depth,
            (unsigned long long)st.requests_served, (unsigned long long)st.requests_active,
            (unsigned long long)st.requests_rejected, (unsigned long long)st.tokens_generated,
            (unsigned long long)st.prompt_tokens, (unsigned long long)st.steps, st.uptime_s,
            st.step_ms_avg, st.step_ms_last, st.step_cols_max, c->srv->nconns, c->srv->npaused);
}

static void generate(io_conn_t *c, io_msg_t *m) {
    io_server_t *s = c->srv;
    if (s->shutting_down) {
        out_error(c, m->plain, m->id, "ECLOSED", "server shutting down", NULL);
        return;
    }
    if (m->plain && c->plain_busy) {
        out_error(c, 1, NULL, "ELIMIT", "one plain-text request at a time per connection", NULL);
        return;
    }
    if (c->ninflight >= s->cfg.max_inflight) {
        out_error(c, m->plain, m->id, "ELIMIT", "too many requests in flight on this connection",
                  NULL);
        return;
    }
    if (m->id && find_by_id(c, m->id)) {
        out_error(c, 0, m->id, "EEXIST", "a request with this id is in flight", "generate");
        return;
    }
    if (s->nreqs + 1 > s->nbuckets && io__table_grow(s) < 0) goto oom;
    io_req_t *r = calloc(1, sizeof *r);
    bat_req_t *br = bat_req_new(++s->next_req_id, m->prompt, m->prompt_len);
    bat_req_t *cancel = bat_cancel_new(s->next_req_id);
    if (r == NULL || br == NULL || cancel == NULL) {
        free(r);
        bat_req_free(br);
        bat_req_free(cancel);
        goto oom;
    }
    br->max_tokens = m->max_tokens;
    br->temperature = m->temperature;
    br->top_k = m->top_k;
    br->top_p = m->top_p;
    br->seed = m->seed;
    br->ignore_eos = m->ignore_eos;
    br->logprobs = m->logprobs;
    br->t_arrive_ns = lanes_now_ns();
    uint64_t req_id = br->req_id;   /* br belongs to the engine thread once submitted */
    int rc = LANES_OK;
    for (int k = 0; k < m->n_stop && rc == LANES_OK; k++)   /* the parser bounds them as bat does */
        rc = bat_req_add_stop(br, m->stop[k], m->stop_len[k]);
    if (rc == LANES_OK) rc = bat_submit(s->sched, br);
    if (rc < 0) {
        bat_req_free(br);
        bat_req_free(cancel);
        free(r);
        out_error(c, m->plain, m->id, lanes_err_name(rc),
                  rc == LANES_EBUSY ? "at capacity: every lane and queue slot is taken"
                                    : io__engine_error_msg(rc), NULL);
        return;
    }
    r->req_id = req_id;
    r->cancel = cancel;
    r->conn = c;
    r->plain = m->plain;
    r->logprobs = m->logprobs >= 0;
    r->id = m->id;      /* takes it */
    m->id = NULL;
    io__req_add(s, r);
    return;
oom:
    out_error(c, m->plain, m->id, "ENOMEM", "out of memory", NULL);
}

static void handle_line(io_conn_t *c, const char *line, size_t len) {
    if (len > 0 && line[len - 1] == '\r') len--;
    if (len == 0) return;   /* blank lines are ignored */
    io_msg_t m;
    int rc = io_msg_parse(line, len, &m);
    if (rc < 0) {
        out_error(c, m.plain, m.id, lanes_err_name(rc), m.err_msg, NULL);
    } else if (m.op == IO_OP_GENERATE) {
        generate(c, &m);
    } else if (m.op == IO_OP_HEALTH) {
        out_open(c, m.id);
        out_fmt(c, "\"event\":\"health\",\"status\":\"%s\"}\n",
                c->srv->shutting_down ? "shutting_down" : "ok");
    } else if (m.op == IO_OP_STATS) {
        reply_stats(c, m.id);
    } else if (m.op == IO_OP_CANCEL) {
        io_req_t *r = find_by_id(c, m.id);
        if (r) io__cancel_req(c->srv, r);   /* its done/"cancelled" event answers */
        else out_error(c, 0, m.id, "ENOENT", "no request with this id is in flight", "cancel");
    }
    io_msg_fini(&m);
}

/* Frames lines out of the bytes read; a line past IO_MAX_LINE gets ETOOLONG and is skipped.
 * While the model loads they wait, and the connection is not read (as it waited in the listen
 * backlog before the server answered while loading). */
void io__line_bytes(io_conn_t *c, const char *p, size_t n) {
    if (c->srv->sched == NULL) {
        io__buf_put(c, &c->early, p, n);
        io__conn_hold(c, 1);
        return;
    }
    while (n > 0 && !c->closing) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (c->discard) {
            if (nl) c->discard = 0;
        } else if (c->rlen + take > IO_MAX_LINE) {
            c->rlen = 0;
            c->discard = nl == NULL;
            out_error(c, 0, NULL, "ETOOLONG", "line longer than 65536 bytes", NULL);
        } else if (nl && c->rlen == 0) {
            handle_line(c, p, take);    /* the common case: a whole line in one read */
        } else {
            if (io__rbuf_append(c, p, take) < 0) return;
            if (nl) {
                handle_line(c, c->rbuf, c->rlen);
                c->rlen = 0;
            }
        }
        if (!nl) break;
        p = nl + 1;
        n -= take + 1;
    }
}

void io__line_loaded(io_conn_t *c) {
    io_buf_t b = c->early;
    c->early = (io_buf_t){0};
    io__line_bytes(c, b.p, b.len);
    free(b.p);
    io__conn_hold(c, 0);
}
