/* libFuzzer target, also replayed over tests/corpus/io_proto by ctest (tests/fuzz_replay.c): any
 * bytes as one request line must parse or fail cleanly, and what the parser accepts must keep the
 * protocol's promises: fields inside their documented ranges as the engine gets them, JSON lines
 * valid UTF-8, the id echoed as the bytes sent, and the prompt with its real length. cJSON, laxer
 * than the parser, is the independent reading they are checked against. */
#include <assert.h>
#include <cjson/cJSON.h>
#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_utf8.h"
#include "proto.h"

static int valid_utf8(const char *s, size_t n) {
    for (size_t i = 0, k; i < n; i += k)
        if ((k = lanes_utf8_seq_len((const unsigned char *)s + i, n - i)) == 0) return 0;
    return 1;
}

/* cJSON's value of a number member, or dflt when absent or null. */
static double num_or(const cJSON *o, const char *name, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* The stop strings cJSON reads (a string, or an array of them) are the parser's, in order. */
static void check_stop(const cJSON *stop, const io_msg_t *m) {
    int n = cJSON_IsArray(stop) ? cJSON_GetArraySize(stop) : cJSON_IsString(stop) ? 1 : 0;
    assert(m->n_stop == n);
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_IsArray(stop) ? cJSON_GetArrayItem(stop, i) : stop;
        assert(cJSON_IsString(s) && strlen(s->valuestring) == m->stop_len[i]);
        assert(memcmp(s->valuestring, m->stop[i], m->stop_len[i]) == 0);
    }
}

/* An accepted JSON line read again by cJSON must give the same message. cJSON ends strings at
 * \u0000 (its keys too, so "id\u0000" would be its "id"): with one in the line only the prompt is
 * compared, up to cJSON's end. */
static void check_against_cjson(const char *line, size_t size, const io_msg_t *m) {
    cJSON *o = cJSON_ParseWithLength(line, size);
    if (o == NULL) return;  /* cJSON's own limits, e.g. numbers over 63 characters */
    int nul = memmem(line, size, "\\u0000", 6) != NULL;
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (m->op == IO_OP_GENERATE && cJSON_IsString(prompt)) {
        size_t n = strlen(prompt->valuestring);
        assert(n <= m->prompt_len && memcmp(prompt->valuestring, m->prompt, n) == 0);
        assert(n == m->prompt_len || (nul && m->prompt[n] == 0));
    }
    if (!nul) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        assert((id != NULL) == (m->id != NULL));
        if (id != NULL) {   /* the echoed bytes are JSON text for the very value sent */
            cJSON *echo = cJSON_Parse(m->id);
            assert(echo != NULL && cJSON_IsNumber(echo) == cJSON_IsNumber(id));
            if (cJSON_IsNumber(id)) assert(echo->valuedouble == id->valuedouble); /* 1e400: inf */
            else assert(cJSON_Compare(echo, id, 1));
            cJSON_Delete(echo);
        }
        if (m->op == IO_OP_GENERATE) {
            assert(cJSON_IsString(prompt));
            assert(m->max_tokens == (int)num_or(o, "max_tokens", IO_DEFAULT_TOKENS));
            assert(m->temperature == (float)num_or(o, "temperature", 0));
            assert(m->top_k == (int)num_or(o, "top_k", 0));
            float p = (float)num_or(o, "top_p", 1);
            assert(m->top_p == (p < FLT_MIN ? FLT_MIN : p));
            assert((double)m->seed == num_or(o, "seed", 0));   /* exact below 2^53, nearest above */
            assert(m->logprobs == (int)num_or(o, "logprobs", -1));
            const cJSON *eos = cJSON_GetObjectItemCaseSensitive(o, "ignore_eos");
            assert(m->ignore_eos == cJSON_IsTrue(eos));
            check_stop(cJSON_GetObjectItemCaseSensitive(o, "stop"), m);
        }
    }
    cJSON_Delete(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *line = (const char *)data;
    io_msg_t m;
    int rc = io_msg_parse(line, size, &m);
    if (rc < 0) assert(m.err_msg != NULL);
    if (rc == LANES_OK && m.op == IO_OP_GENERATE) {
        assert(m.prompt != NULL && m.prompt_len > 0);
        assert(m.max_tokens >= 1 && m.max_tokens <= IO_MAX_TOKENS);
        assert(m.temperature >= 0 && m.temperature <= 100);
        assert(m.top_p >= FLT_MIN && m.top_p <= 1);   /* a normal positive float: never "off" */
        assert(m.top_k >= 0);
        assert(m.logprobs >= -1 && m.logprobs <= IO_MAX_LOGPROBS);
        assert(m.ignore_eos == 0 || m.ignore_eos == 1);
        assert(m.n_stop >= 0 && m.n_stop <= IO_MAX_STOP);
        for (int i = 0; i < m.n_stop; i++)
            assert(m.stop[i] != NULL && m.stop_len[i] >= 1 && m.stop_len[i] <= IO_MAX_STOP_LEN);
    }
    if (rc == LANES_OK && !m.plain) {
        assert(valid_utf8(line, size));   /* JSON text is UTF-8 */
        check_against_cjson(line, size, &m);
    }
    if (m.id) {     /* echoed after {"id": in reply lines that must stay valid UTF-8 JSON */
        size_t n = strlen(m.id);
        assert(n > 0 && n <= IO_MAX_ID && memmem(line, size, m.id, n) != NULL);
        assert(valid_utf8(m.id, n));
        for (size_t i = 0; i < n; i++) assert((unsigned char)m.id[i] >= 0x20);
    }
    char out[64];
    long n = io_json_escape(out, sizeof out, 0, line, size < 8 ? size : 8);
    assert(n >= 0 && (size_t)n <= sizeof out);
    assert(valid_utf8(out, (size_t)n));     /* JSON replies are always valid UTF-8 */
    io_msg_fini(&m);
    return 0;
}
