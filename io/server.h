#ifndef IO_SERVER_H
#define IO_SERVER_H

#include <stddef.h>

#include "bat_sched.h"

/* The libuv TCP server: the I/O thread. It accepts, frames and parses requests (the line protocol,
 * or HTTP/1.1 with the OpenAI-compatible endpoints: a connection's first line decides), submits
 * them to the scheduler, and writes the scheduler's event batches back to their connections.
 * It never computes: prompts are tokenized on the scheduler's tokenizer worker, tokens decoded on
 * the engine thread. */
typedef struct io_server io_server_t;

typedef struct {
    const char *host;           /* "127.0.0.1" */
    int port;                   /* 0 = any free port (see io_server_port) */
    int max_conns;              /* open connections; one more gets ECONNS and is closed */
    int max_inflight;           /* live requests per connection; more get ELIMIT */
    size_t out_soft;            /* bytes queued to a connection before we stop reading it */
    size_t out_hard;            /* bytes queued before its requests are cancelled and it is closed */
    int sndbuf;                 /* SO_SNDBUF per connection (bytes); 0 = the kernel's autotuning */
    double grace_s;             /* shutdown: how long to wait for slow clients to take replies */
    double idle_s;              /* close connections idle this long (nothing in flight); 0 = never */
    size_t max_body;            /* HTTP request body bytes; more get 413 */
    double http_timeout_s;      /* an HTTP request not read whole this long gets 408; 0 = never */
    const char *chat_template;  /* borrows: a family name (io_chat_by_name), or NULL: the model's */
    int http_port;              /* a second listener that speaks only HTTP; -1 none, 0 any free */
} io_server_cfg_t;

/* Binds and listens. The loop runs later, in io_server_run(). */
int io_server_create(const io_server_cfg_t *cfg, io_server_t **out);
int io_server_port(const io_server_t *s);
int io_server_http_port(const io_server_t *s);   /* -1 without --http-port */

/* bat_sched_cfg_t.notify for this server (arg: the server). Engine thread; only wakes the loop. */
void io_server_notify(void *arg);

/* Opens and starts the scheduler the server is to serve (its notify io_server_notify, its arg the
 * server) into *out, which the caller of io_server_run() owns: LANES_OK or an error (logged). Runs
 * on a libuv worker thread. */
typedef int (*io_server_load_fn)(void *arg, bat_sched_t **out);

/* Runs the loop on the calling thread (which becomes the I/O thread) and load(arg) beside it:
 * while it loads, HTTP requests get 503 ("loading") and line-protocol connections are not read
 * (their lines are answered once it is loaded); then it logs "listening on HOST:PORT" and serves,
 * until SIGINT, SIGTERM, SIGHUP, SIGQUIT or io_server_stop(): then stops accepting, stops the
 * scheduler (every live request gets its terminal event), flushes, closes every connection and
 * returns LANES_OK. Returns load's error once the connections are closed if it failed, LANES_EIO
 * if the loop could not start (logged). A stop while loading waits for the load to end. */
int io_server_run(io_server_t *s, io_server_load_fn load, void *arg);

/* Any thread: begins the graceful shutdown. */
void io_server_stop(io_server_t *s);
void io_server_destroy(io_server_t *s);   /* NULL is fine; after io_server_run() returned */

#endif
