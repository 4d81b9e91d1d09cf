#ifndef LG_OPENAI_H
#define LG_OPENAI_H

#include <stddef.h>

#include "loadgen.h"

/* The OpenAI-compatible side of the loadgen, pure (no sockets): the request bytes of a streamed
 * POST /v1/completions, one SSE chunk's fields, GET /v1/models' first id, and the counters of a
 * Prometheus /metrics page. */

/* Returns the bytes of one HTTP/1.1 request (malloc'd, *n bytes, NULL when out of memory):
 * model_esc and prompt_esc are JSON-escaped without quotes; fields is ",\"max_tokens\":..."
 * (the sampling members shared with the line protocol). */
char *lg_openai_completion(const char *host, int port, const char *model_esc,
                           const char *prompt_esc, size_t plen, const char *fields, size_t *n);
/* Returns a GET request for path (malloc'd, *n bytes). */
char *lg_openai_get(const char *host, int port, const char *path, size_t *n);

/* One `data:` payload of a completions stream. Spans borrow the payload. */
typedef struct {
    int has_text;                                /* choices[0] carries non-empty text */
    char finish[16];                             /* choices[0].finish_reason, "" while null */
    long long prompt_tokens, completion_tokens;  /* usage; -1 when absent or null */
    char error[200];                             /* error.message (or the error string), "" */
} lg_openai_chunk_t;

/* LANES_OK, or LANES_EPROTO when the payload is not a JSON object. */
int lg_openai_chunk(const char *s, size_t n, lg_openai_chunk_t *out);

/* The first model id of a GET /v1/models body into out (cap bytes, escapes kept as sent).
 * LANES_OK, LANES_ENOENT when the list is empty, LANES_EPROTO when it is not one. */
int lg_openai_first_model(const char *s, size_t n, char *out, size_t cap);

/* The server stats we keep, from a Prometheus text page: vLLM's names (lanes-server serves them),
 * llama.cpp's llama-server's (--metrics) and lanes_* ones; series of one name are summed over
 * their labels. Sets st->valid when the generated-token counter is there. */
void lg_openai_metrics(const char *s, size_t n, lg_srv_stats_t *st);

#endif
