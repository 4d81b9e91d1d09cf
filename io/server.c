/* The server's lifecycle (listen, run, drain, stop) and the engine's event batches, each event
 * handed to its request's protocol. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "chat.h"
#include "server_int.h"

/* ---- events from the engine ----------------------------------------------------------------- */

static void take_batches(io_server_t *s) {
    bat_batch_t *b = bat_take_batches(s->sched);
    while (b) {
        bat_batch_t *next = (bat_batch_t *)b->node.next;
        for (int i = 0; i < b->n; i++) {
            io_req_t *r = io__table_find(s, b->ev[i].req_id);
            if (r == NULL) continue;    /* its connection is gone */
            if (r->call) io__api_event(s, b, &b->ev[i], r);
            else io__line_event(s, b, &b->ev[i], r);
        }
        bat_batch_release(s->sched, b);
        b = next;
    }
    io__flush_dirty(s);
}

static void on_wake(uv_async_t *a) { take_batches(a->data); }

void io_server_notify(void *arg) {
    io_server_t *s = arg;
    int rc = uv_async_send(&s->wake);   /* fails only on a closed handle: after the engine joined */
    if (rc < 0) LANES_LOG(LANES_LOG_ERROR, "io: uv_async_send: %s", uv_strerror(rc));
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* Each of these drains like SIGTERM: none of them may end the server without terminal events. */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static void on_grace(uv_timer_t *t) {
    io_server_t *s = t->data;
    for (io_conn_t *c = s->conns; c; c = c->next) io__conn_close(c, "shutdown grace period over");
}

static void begin_shutdown(io_server_t *s) {
    if (s->shutting_down) return;
    s->shutting_down = 1;
    if (s->load_rc == LANES_OK)   /* a failed load said why: its line is the one */
        LANES_LOG(LANES_LOG_INFO, "shutting down: %d connections, %zu requests in flight",
                  s->nconns, s->nreqs);
    uv_close((uv_handle_t *)&s->listener, on_handle_closed);
    if (s->http_port >= 0) uv_close((uv_handle_t *)&s->http_listener, on_handle_closed);
    for (io_conn_t *c = s->conns; c; c = c->next) io__conn_stop_reading(c);
    if (s->sched) {   /* (none while the model loads: nothing is in flight) */
        bat_sched_stop(s->sched);   /* joins; the last batch holds every remaining terminal event */
        take_batches(s);
    }
    for (size_t i = 0; i < s->nbuckets; i++)   /* nothing should be left; never leave one hanging */
        while (s->buckets[i]) {
            io_req_t *r = s->buckets[i];
            LANES_LOG(LANES_LOG_WARN, "io: request %llu had no terminal event",
                      (unsigned long long)r->req_id);
            if (r->call) {   /* its whole call goes: the client sees the connection close */
                io__conn_close(r->conn, "a request had no terminal event");
            } else {
                io__line_error(r, "ECLOSED", "server shutting down");
                io__req_remove(s, r);
            }
        }
    io__flush_dirty(s);
    for (io_conn_t *c = s->conns; c; c = c->next) io__conn_end(c);
    uv_close((uv_handle_t *)&s->wake, on_handle_closed);
    uv_close((uv_handle_t *)&s->stop, on_handle_closed);
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++)
        uv_close((uv_handle_t *)&s->sigs[i], on_handle_closed);   /* a second signal kills */
    uv_close((uv_handle_t *)&s->idle, on_handle_closed);
    uv_close((uv_handle_t *)&s->http_tick, on_handle_closed);
    int rc = uv_timer_start(&s->grace, on_grace, (uint64_t)(s->cfg.grace_s * 1000), 0);
    if (rc < 0) {
        LANES_LOG(LANES_LOG_ERROR, "io: uv_timer_start: %s: closing every connection now",
                  uv_strerror(rc));
        on_grace(&s->grace);
    }
    uv_unref((uv_handle_t *)&s->grace);
}

static void on_signal(uv_signal_t *h, int signum) {
    LANES_LOG(LANES_LOG_INFO, "signal %d", signum);
    begin_shutdown(h->data);
}

static void on_stop(uv_async_t *a) { begin_shutdown(a->data); }

void io_server_stop(io_server_t *s) {
    int rc = uv_async_send(&s->stop);
    if (rc < 0) LANES_LOG(LANES_LOG_ERROR, "io: uv_async_send: %s", uv_strerror(rc));
}

/* rc of a libuv call at start-up, logged when it failed. */
static int start_check(int rc, const char *what) {
    if (rc < 0) LANES_LOG(LANES_LOG_ERROR, "io: %s: %s", what, uv_strerror(rc));
    return rc;
}

/* Binds h to the server's host and port and listens: the port bound, or -1 (logged). */
static int listen_on(io_server_t *s, uv_tcp_t *h, int port) {
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(s->host, port, (struct sockaddr_in *)&addr);
    if (rc != 0) rc = uv_ip6_addr(s->host, port, (struct sockaddr_in6 *)&addr);
    if (rc == 0) rc = uv_tcp_bind(h, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)h, 511, io__on_connection);
    if (rc != 0) {
        LANES_LOG(LANES_LOG_ERROR, "io: cannot listen on %s:%d: %s", s->host, port,
                  uv_strerror(rc));
        return -1;
    }
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if (start_check(uv_tcp_getsockname(h, (struct sockaddr *)&bound, &blen),
                    "uv_tcp_getsockname") < 0)
        return -1;
    return ntohs(((struct sockaddr_in *)&bound)->sin_port);   /* same offset for v6 */
}

int io_server_create(const io_server_cfg_t *cfg, io_server_t **out) {
    io_server_t *s = calloc(1, sizeof *s);
    if (s == NULL || io__table_grow(s) < 0) {
        free(s);
        return LANES_ENOMEM;
    }
    s->cfg = *cfg;
    snprintf(s->host, sizeof s->host, "%s", cfg->host ? cfg->host : "127.0.0.1");
    s->chat_family = -1;
    if (cfg->chat_template && (s->chat_family = io_chat_by_name(cfg->chat_template)) < 0) {
        LANES_LOG(LANES_LOG_ERROR, "--chat-template %s: not a template name; one of: %s",
                  cfg->chat_template, io_chat_names());
        free(s->buckets);
        free(s);
        return LANES_EINVAL;
    }
    s->created = (long long)time(NULL);
    s->seed_state = lanes_now_ns();     /* seeds of choices sent without one */
    if (start_check(uv_loop_init(&s->loop), "uv_loop_init") < 0) {
        free(s->buckets);
        free(s);
        return LANES_EIO;
    }
    if (start_check(uv_tcp_init(&s->loop, &s->listener), "uv_tcp_init") < 0 ||
        start_check(uv_async_init(&s->loop, &s->wake, on_wake), "uv_async_init") < 0 ||
        start_check(uv_async_init(&s->loop, &s->stop, on_stop), "uv_async_init") < 0 ||
        start_check(uv_timer_init(&s->loop, &s->grace), "uv_timer_init") < 0 ||
        start_check(uv_timer_init(&s->loop, &s->idle), "uv_timer_init") < 0 ||
        start_check(uv_timer_init(&s->loop, &s->http_tick), "uv_timer_init") < 0)
        goto fail;
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++) {
        if (start_check(uv_signal_init(&s->loop, &s->sigs[i]), "uv_signal_init") < 0) goto fail;
        s->sigs[i].data = s;
    }
    s->listener.data = s->wake.data = s->stop.data = s;
    s->grace.data = s->idle.data = s->http_tick.data = s;

    s->http_port = -1;
    if ((s->port = listen_on(s, &s->listener, cfg->port)) < 0) goto fail;
    if (cfg->http_port >= 0) {
        if (start_check(uv_tcp_init(&s->loop, &s->http_listener), "uv_tcp_init") < 0) goto fail;
        s->http_listener.data = s;
        if ((s->http_port = listen_on(s, &s->http_listener, cfg->http_port)) < 0) goto fail;
    }
    *out = s;
    return LANES_OK;
fail:
    s->shutting_down = 1;
    io_server_destroy(s);
    return LANES_EIO;
}

int io_server_port(const io_server_t *s) { return s->port; }
int io_server_http_port(const io_server_t *s) { return s->http_port; }

static void on_load(uv_work_t *w) {
    io_server_t *s = w->data;
    s->load_rc = s->load(s->load_arg, &s->loaded);
}

static void log_listening(io_server_t *s) {
    lanes_log_write(LANES_LOG_INFO, __FILE__, __LINE__, "listening on %s:%d", s->host, s->port);
    if (s->http_port >= 0)   /* not "listening on": scripts take that line's port */
        lanes_log_write(LANES_LOG_INFO, __FILE__, __LINE__, "HTTP only on %s:%d", s->host,
                        s->http_port);
}

/* The model is loaded (or failed to): serve, and answer the lines that waited for it. */
static void after_load(uv_work_t *w, int status) {
    io_server_t *s = w->data;
    if (status < 0 && s->load_rc == LANES_OK) s->load_rc = LANES_EIO;   /* (never cancelled) */
    if (s->load_rc < 0) {   /* load logged why; main exits 1 */
        begin_shutdown(s);
        return;
    }
    if (s->shutting_down) return;   /* the caller stops and destroys what was loaded */
    s->sched = s->loaded;
    log_listening(s);
    for (io_conn_t *c = s->conns; c; c = c->next)
        if (c->proto == IO_PROTO_LINE && !c->closing) io__line_loaded(c);
    io__flush_dirty(s);
}

int io_server_run(io_server_t *s, io_server_load_fn load, void *arg) {
    s->load = load;
    s->load_arg = arg;
    s->load_work.data = s;
    for (size_t i = 0; i < sizeof stop_signals / sizeof *stop_signals; i++)
        if (start_check(uv_signal_start(&s->sigs[i], on_signal, stop_signals[i]),
                        "uv_signal_start") < 0)
            return LANES_EIO;
    uint64_t idle_ms = (uint64_t)(s->cfg.idle_s * 1000);
    if (idle_ms > 0) {   /* checked 8 times a period: a connection goes at most 1/8 late */
        uint64_t every = idle_ms / 8 ? idle_ms / 8 : 1;
        if (start_check(uv_timer_start(&s->idle, io__on_idle, every, every), "uv_timer_start") < 0)
            return LANES_EIO;
    }
    uint64_t http_ms = (uint64_t)(s->cfg.http_timeout_s * 1000);
    if (http_ms > 0) {   /* as the idle check: a slow request goes at most 1/8 late */
        uint64_t every = http_ms / 8 ? http_ms / 8 : 1;
        if (start_check(uv_timer_start(&s->http_tick, io__on_http_tick, every, every),
                        "uv_timer_start") < 0)
            return LANES_EIO;
    }
    if (start_check(uv_queue_work(&s->loop, &s->load_work, on_load, after_load),
                    "uv_queue_work") < 0)
        return LANES_EIO;
    lanes_rcu_register();
    /* Its own words: "listening on" (the port scripts wait for) means ready to serve. */
    lanes_log_write(LANES_LOG_INFO, __FILE__, __LINE__,
                    "loading the model; meanwhile %s:%d answers /health with 503", s->host, s->port);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    lanes_rcu_unregister();
    if (s->load_rc < 0) return s->load_rc;
    LANES_LOG(LANES_LOG_INFO, "stopped");
    return LANES_OK;
}

static void close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, h->type == UV_TCP && h->data && h->data != arg
                                           ? io__on_conn_closed : on_handle_closed);
}

void io_server_destroy(io_server_t *s) {
    if (s == NULL) return;
    uv_walk(&s->loop, close_any, s);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&s->loop);
    if (rc < 0) LANES_LOG(LANES_LOG_ERROR, "io: uv_loop_close: %s", uv_strerror(rc));
    free(s->buckets);
    free(s);
}
