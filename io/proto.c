#include "proto.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_utf8.h"

void io_msg_fini(io_msg_t *msg) {
    free(msg->id);
    cJSON_Delete(msg->json_);
    memset(msg, 0, sizeof *msg);
}

static int fail(io_msg_t *msg, int rc, const char *why) {
    msg->err_msg = why;
    return rc;
}

/* A number field that must be an integer in [lo, hi]. */
static int get_int(const cJSON *o, const char *name, double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < lo || d > hi) return -1;
    *out = d;
    return 1;
}

static int get_num(const cJSON *o, const char *name, double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!isfinite(d) || d < lo || d > hi) return -1;
    *out = d;
    return 1;
}

int io_msg_parse(const char *line, size_t len, io_msg_t *msg) {
    memset(msg, 0, sizeof *msg);
    msg->max_tokens = IO_DEFAULT_TOKENS;
    msg->top_p = 1.0f;
    if (len > IO_MAX_LINE) return fail(msg, LANES_ETOOLONG, "line too long");
    if (len == 0 || line[0] != '{') {   /* plain-text shorthand: the line is the prompt */
        msg->op = IO_OP_GENERATE;
        msg->plain = 1;
        msg->prompt = line;
        msg->prompt_len = len;
        if (len == 0) return fail(msg, LANES_EINVAL, "empty prompt");
        return LANES_OK;
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(line, len, &end, 0);
    msg->json_ = o;
    if (o == NULL) return fail(msg, LANES_EPROTO, "invalid JSON");
    for (const char *p = end; p < line + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r')
            return fail(msg, LANES_EPROTO, "trailing bytes after the JSON object");
    if (!cJSON_IsObject(o)) return fail(msg, LANES_EPROTO, "not a JSON object");

    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    if (id != NULL) {
        if (!cJSON_IsString(id) && !cJSON_IsNumber(id))
            return fail(msg, LANES_EINVAL, "id must be a string or a number");
        if (cJSON_IsNumber(id) && !isfinite(id->valuedouble))
            return fail(msg, LANES_EINVAL, "id must be a finite number");
        msg->id = cJSON_PrintUnformatted(id);
        if (msg->id == NULL) return fail(msg, LANES_ENOMEM, "out of memory");
        if (strlen(msg->id) > IO_MAX_ID) {
            free(msg->id);
            msg->id = NULL;
            return fail(msg, LANES_ETOOLONG, "id longer than 256 bytes");
        }
    }

    const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "op");
    if (op != NULL) {
        if (!cJSON_IsString(op)) return fail(msg, LANES_EINVAL, "op must be a string");
        const char *s = op->valuestring;
        if (strcmp(s, "generate") == 0) msg->op = IO_OP_GENERATE;
        else if (strcmp(s, "cancel") == 0) msg->op = IO_OP_CANCEL;
        else if (strcmp(s, "stats") == 0) msg->op = IO_OP_STATS;
        else if (strcmp(s, "health") == 0) msg->op = IO_OP_HEALTH;
        else return fail(msg, LANES_EINVAL, "unknown op");
    }
    if (msg->op == IO_OP_CANCEL && msg->id == NULL)
        return fail(msg, LANES_EINVAL, "cancel needs the id of the request");
    if (msg->op != IO_OP_GENERATE) return LANES_OK;

    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (prompt == NULL) return fail(msg, LANES_EINVAL, "prompt is required");
    if (!cJSON_IsString(prompt)) return fail(msg, LANES_EINVAL, "prompt must be a string");
    msg->prompt = prompt->valuestring;
    msg->prompt_len = strlen(prompt->valuestring);
    if (msg->prompt_len == 0) return fail(msg, LANES_EINVAL, "empty prompt");

    double d;
    int r;
    if ((r = get_int(o, "max_tokens", 1, IO_MAX_TOKENS, &d)) < 0)
        return fail(msg, LANES_EINVAL, "max_tokens must be an integer in 1..65536");
    if (r) msg->max_tokens = (int)d;
    if ((r = get_num(o, "temperature", 0, 100, &d)) < 0)
        return fail(msg, LANES_EINVAL, "temperature must be a number in 0..100");
    if (r) msg->temperature = (float)d;
    if ((r = get_int(o, "top_k", 0, 1 << 20, &d)) < 0)
        return fail(msg, LANES_EINVAL, "top_k must be an integer in 0..1048576");
    if (r) msg->top_k = (int)d;
    if ((r = get_num(o, "top_p", 0, 1, &d)) < 0 || (r && d <= 0))
        return fail(msg, LANES_EINVAL, "top_p must be a number in (0, 1]");
    if (r) msg->top_p = (float)d;
    if ((r = get_int(o, "seed", 0, 9007199254740992.0, &d)) < 0)
        return fail(msg, LANES_EINVAL, "seed must be an integer in 0..2^53");
    if (r) msg->seed = (uint64_t)d;
    return LANES_OK;
}

long io_json_escape(char *out, size_t cap, size_t len, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (len + 6 > cap) return -1;
        if (c >= 0x80) { /* JSON is UTF-8: a byte that starts no valid sequence becomes U+FFFD */
            size_t k = lanes_utf8_seq_len((const unsigned char *)s + i, n - i);
            if (k == 0) {
                memcpy(out + len, "\xef\xbf\xbd", 3);
                len += 3;
            } else {
                memcpy(out + len, s + i, k);
                len += k;
                i += k - 1;
            }
        } else if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
        } else if (c >= 0x20) {
            out[len++] = (char)c;
        } else if (c == '\n') {
            out[len++] = '\\', out[len++] = 'n';
        } else if (c == '\r') {
            out[len++] = '\\', out[len++] = 'r';
        } else if (c == '\t') {
            out[len++] = '\\', out[len++] = 't';
        } else {
            memcpy(out + len, "\\u00", 4);
            out[len + 4] = hex[c >> 4];
            out[len + 5] = hex[c & 15];
            len += 6;
        }
    }
    return (long)len;
}
