#ifndef IO_OAI_H
#define IO_OAI_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "proto.h"

/* The OpenAI-compatible API's JSON: request bodies of /v1/completions and /v1/chat/completions in,
 * response bodies and SSE chunk payloads out, errors in OpenAI's shape. Pure (no sockets, no
 * scheduler) so unit tests and the fuzzer drive it alone; cJSON underneath. docs/OPENAI.md is the
 * reference for every field, default and limit. */

enum { OAI_COMPLETIONS = 0, OAI_CHAT = 1 };

#define OAI_MAX_CHOICES 128         /* prompts x n per request */
#define OAI_MAX_LOGPROBS_COMPLETIONS 5
#define OAI_MAX_LOGPROBS_CHAT ENG_MAX_TOP_LOGPROBS    /* top_logprobs */

typedef struct {
    char *role;                     /* owned: "system", "user" or "assistant" ("developer" is
                                     * read as "system") */
    char *content;                  /* owned, content_len bytes: a string, or the text parts of
                                     * an array of text parts joined by '\n' */
    size_t content_len;
} oai_msg_t;

/* A validated request. Strings are owned, decoded, freed by oai_req_fini; none holds a NUL byte
 * (cJSON ends strings at one, so oai_parse refuses \u0000 rather than cut a prompt short). */
typedef struct {
    int kind;                       /* OAI_COMPLETIONS or OAI_CHAT */
    char *model;                    /* as sent, or NULL */
    int n_prompt;                   /* completions: prompt strings (a string is one) */
    char **prompt;
    size_t *prompt_len;
    int n_msgs;                     /* chat */
    oai_msg_t *msgs;
    int n;                          /* choices per prompt, >= 1; n_prompt * n <= OAI_MAX_CHOICES */
    int max_tokens;                 /* completions default 16 (OpenAI's); chat: 0 = until the
                                     * context ends it (max_completion_tokens is the same) */
    float temperature;              /* default 1 */
    float top_p;                    /* default 1 */
    int top_k;                      /* default 0 (off; -1 is read as off too, as vLLM) */
    uint64_t seed;
    int has_seed;                   /* else the server picks one per choice */
    int n_stop;
    char *stop[IO_MAX_STOP];
    size_t stop_len[IO_MAX_STOP];
    int logprobs;                   /* -1 none; else the top alternatives per token (completions:
                                     * logprobs 0..5; chat: logprobs true, top_logprobs 0..20) */
    int echo;                       /* completions: the prompt is put before each choice's text */
    int stream, include_usage;      /* stream_options.include_usage */
    int ignore_eos;
} oai_req_t;

/* An error in OpenAI's shape, and the HTTP status that carries it. */
typedef struct {
    int status;                     /* 400, 404, 405, 413, 429, 500, 503 */
    const char *type;               /* "invalid_request_error", "server_error", ... (static) */
    const char *code;               /* static or NULL */
    char param[64];                 /* the field at fault, "" for none */
    char message[256];
} oai_err_t;

void oai_err_set(oai_err_t *e, int status, const char *type, const char *code, const char *param,
                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Parses and validates a body. Fields known but not supported (best_of > 1, suffix, tools,
 * response_format other than text, logit_bias with entries, presence/frequency penalties other
 * than 0, ...) are refused naming the field; unknown fields are ignored, as OpenAI's servers do.
 * Returns 0, or -1 with err filled (status 400). Always oai_req_fini() after. */
int oai_parse(int kind, const char *body, size_t len, oai_req_t *req, oai_err_t *err);
void oai_req_fini(oai_req_t *req);

/* The bytes a token id stands for on its own (for logprobs' token strings), any thread. */
typedef const char *(*oai_piece_fn)(void *arg, int32_t id, size_t *len);

/* One choice's output: the text of one SSE chunk, or a whole non-streamed choice. Text may be any
 * bytes: what is not UTF-8 becomes U+FFFD in the JSON (token strings too; chat logprobs also carry
 * the exact "bytes"). */
typedef struct {
    int index;
    const char *text;
    size_t text_len;
    int n_tok;                      /* tokens this text came with */
    const eng_logprobs_t *lps;      /* (n_tok,) when the request asked for logprobs, else NULL */
    const int32_t *ids;             /* (n_tok,) the tokens, for their strings */
    size_t text_offset;             /* completions logprobs: byte offset of this text in the
                                     * choice's whole text (echoed prompt included); each token
                                     * then advances it by its piece's length */
    const char *finish_reason;      /* "stop", "length", NULL while the choice is not finished */
    int role;                       /* chat streaming: this chunk opens the choice (role delta) */
} oai_choice_t;

typedef struct {
    int prompt_tokens, completion_tokens;
} oai_usage_t;

/* Every response's identity: "cmpl-..."/"chatcmpl-..." id, created (Unix seconds), model. */
typedef struct {
    const char *id;
    long long created;
    const char *model;
    oai_piece_fn piece;
    void *piece_arg;
} oai_meta_t;

/* The bodies, compact JSON, malloc'd (NUL-terminated, *len bytes), NULL on ENOMEM. */
/* A non-streamed response: choices in index order, usage. */
char *oai_response_json(int kind, const oai_meta_t *m, const oai_choice_t *choices, int n,
                        const oai_usage_t *usage, size_t *len);
/* One SSE chunk's payload (the caller frames it "data: ...\n\n"): one choice's delta. */
char *oai_chunk_json(int kind, const oai_meta_t *m, const oai_choice_t *choice, size_t *len);
/* The last chunk before [DONE] when stream_options.include_usage is set: choices [] and usage. */
char *oai_usage_chunk_json(int kind, const oai_meta_t *m, const oai_usage_t *usage, size_t *len);
char *oai_error_json(const oai_err_t *e, size_t *len);
/* GET /v1/models: one model. */
char *oai_models_json(const char *model, long long created, size_t *len);

#endif
