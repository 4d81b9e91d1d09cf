/* libFuzzer target, also replayed over tests/corpus/io_oai by ctest (tests/fuzz_replay.c): any
 * bytes as a /v1/completions and as a /v1/chat/completions body must parse or fail cleanly, an
 * accepted request must keep docs/OPENAI.md's ranges, its strings must be cJSON's own reading of
 * the body, and whatever bytes the builders get (the input itself as generated text, each chat
 * template's rendering) must come out as JSON that cJSON reads back to the same text. */
#include <assert.h>
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_utf8.h"
#include "chat.h"
#include "oai.h"

static int valid_utf8(const char *s, size_t n) {
    for (size_t i = 0, k; i < n; i += k)
        if ((k = lanes_utf8_seq_len((const unsigned char *)s + i, n - i)) == 0) return 0;
    return 1;
}

static const char *piece(void *arg, int32_t id, size_t *len) {
    const char *s = arg;
    *len = (size_t)id % (strlen(s) + 1);    /* prefixes of the input's first string */
    return s;
}

/* text[0..n) as the one choice of a chunk, read back: cJSON must see the text with every byte that
 * is not UTF-8 as U+FFFD (up to a NUL, where cJSON's strings end). */
static void check_text_roundtrip(int kind, const char *text, size_t n) {
    const oai_meta_t m = { "cmpl-1", 1, "m", NULL, NULL };
    const oai_choice_t c = { .index = 0, .text = text, .text_len = n, .role = 1 };
    size_t len;
    char *s = oai_chunk_json(kind, &m, &c, &len);
    assert(s != NULL && strlen(s) == len && valid_utf8(s, len));
    cJSON *j = cJSON_ParseWithLength(s, len);
    assert(j != NULL);
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    if (kind == OAI_CHAT) c0 = cJSON_GetObjectItemCaseSensitive(c0, "delta");
    const char *got = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(c0, kind == OAI_CHAT ? "content" : "text"));
    assert(got != NULL);
    char *want = malloc(3 * n + 1);
    assert(want != NULL);
    lanes_utf8_sanitize(want, text, n);
    assert(strcmp(got, want) == 0 || (memchr(text, 0, n) && strncmp(got, want, strlen(got)) == 0));
    free(want);
    cJSON_Delete(j);
    free(s);
}

static void check_request(const oai_req_t *r, const cJSON *o) {
    assert(r->n >= 1 && r->n <= OAI_MAX_CHOICES);
    assert(r->temperature >= 0 && r->temperature <= 2);
    assert(r->top_p > 0 && r->top_p <= 1 && r->top_k >= 0);
    assert(r->max_tokens >= (r->kind == OAI_CHAT ? 0 : 1) && r->max_tokens <= 65536);
    assert(r->n_stop >= 0 && r->n_stop <= IO_MAX_STOP);
    for (int i = 0; i < r->n_stop; i++)
        assert(r->stop_len[i] >= 1 && r->stop_len[i] <= 256 && strlen(r->stop[i]) == r->stop_len[i]);
    assert(r->logprobs >= -1 &&
           r->logprobs <= (r->kind == OAI_CHAT ? OAI_MAX_LOGPROBS_CHAT : OAI_MAX_LOGPROBS_COMPLETIONS));
    assert(!r->include_usage || r->stream);
    assert(!r->echo || (r->kind == OAI_COMPLETIONS && r->logprobs < 0));
    if (r->kind == OAI_COMPLETIONS) {
        assert(r->n_prompt >= 1 && r->n_prompt * r->n <= OAI_MAX_CHOICES && r->n_msgs == 0);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prompt");
        for (int i = 0; i < r->n_prompt; i++) {
            assert(r->prompt_len[i] > 0 && strlen(r->prompt[i]) == r->prompt_len[i]);
            const cJSON *s = cJSON_IsString(p) ? p : cJSON_GetArrayItem(p, i);
            assert(strcmp(cJSON_GetStringValue(s), r->prompt[i]) == 0);
        }
        check_text_roundtrip(OAI_COMPLETIONS, r->prompt[0], r->prompt_len[0]);
        return;
    }
    assert(r->n_msgs >= 1 && r->n_prompt == 0);
    for (int i = 0; i < r->n_msgs; i++) {
        const oai_msg_t *m = &r->msgs[i];
        assert(!strcmp(m->role, "system") || !strcmp(m->role, "user") ||
               !strcmp(m->role, "assistant"));
        assert(strlen(m->content) == m->content_len);
    }
    for (int f = 0; f < IO_CHAT_COUNT; f++) {
        char *out;
        size_t len;
        const char *why = NULL;
        assert(io_chat_render(f, r->msgs, r->n_msgs, &out, &len, &why) == LANES_OK);
        assert(strlen(out) == len);
        if (f == 0) check_text_roundtrip(OAI_CHAT, out, len);
        free(out);
    }
}

static void check_one(int kind, const char *body, size_t size) {
    oai_req_t r;
    oai_err_t e;
    memset(&e, 0, sizeof e);
    if (oai_parse(kind, body, size, &r, &e) < 0) {
        assert(e.status == 400 || e.status == 500);
        assert(e.message[0] != '\0' && e.type != NULL);
        size_t len;
        char *s = oai_error_json(&e, &len);
        assert(s != NULL && valid_utf8(s, len));
        cJSON *j = cJSON_ParseWithLength(s, len);
        assert(j != NULL);
        cJSON_Delete(j);
        free(s);
    } else {
        assert(valid_utf8(body, size));     /* JSON text is UTF-8 */
        cJSON *o = cJSON_ParseWithLength(body, size);
        assert(o != NULL && cJSON_IsObject(o));
        check_request(&r, o);
        cJSON_Delete(o);
    }
    oai_req_fini(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *body = (const char *)data;
    check_one(OAI_COMPLETIONS, body, size);
    check_one(OAI_CHAT, body, size);
    /* the raw input as generated text and as logprobs token strings */
    char *text = malloc(size + 1);
    assert(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    check_text_roundtrip(OAI_COMPLETIONS, text, size);
    const eng_logprobs_t lp = { .top_n = 1, .chosen = -1, .n = 1, .top_id = { 3 } };
    const int32_t id = (int32_t)size;
    const oai_meta_t m = { "x", 0, "m", piece, text };
    const oai_choice_t c = { .text = text, .text_len = size, .n_tok = 1, .lps = &lp, .ids = &id };
    for (int kind = 0; kind < 2; kind++) {
        size_t len;
        char *s = oai_response_json(kind, &m, &c, 1, NULL, &len);
        assert(s != NULL && valid_utf8(s, len));
        cJSON *j = cJSON_ParseWithLength(s, len);
        assert(j != NULL);
        cJSON_Delete(j);
        free(s);
    }
    free(text);
    return 0;
}
