#ifndef IO_METRICS_H
#define IO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "bat_sched.h"

/* GET /metrics: the Prometheus text exposition format (version 0.0.4), vLLM's metric names where
 * vLLM has the metric (so its dashboards work), lanes_* for our own. Pure: from a stats snapshot
 * and the I/O thread's own gauges. */

typedef struct {
    int connections, connections_paused;
    uint64_t bytes_queued;          /* replies not yet taken by slow clients, all connections */
    uint64_t http_requests;         /* HTTP requests answered since start */
} io_metrics_io_t;

#define IO_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Returns malloc'd text (NUL-terminated, *len bytes), NULL on ENOMEM; borrows st and io. model
 * (NULL = "") labels every vLLM metric as vLLM does, model_name="..." (escaped, made valid UTF-8)
 * and engine="0"; lanes_* metrics have no labels. docs/PROTOCOL.md lists the metrics. Any thread. */
char *io_metrics_text(const bat_stats_t *st, const io_metrics_io_t *io, const char *model,
                      size_t *len);

#endif
