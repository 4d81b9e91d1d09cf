/* The OpenAI JSON layer: every request field accepted in range and refused out of it with the
 * field named, and every response shape read back with cJSON and compared field by field. */
#include "oai.h"

#include <cjson/cJSON.h>
#include <math.h>

#include "test_util.h"

static int parse(int kind, const char *body, oai_req_t *r, oai_err_t *e) {
    memset(e, 0, sizeof *e);
    return oai_parse(kind, body, strlen(body), r, e);
}

/* body parses; the caller checks fields, then oai_req_fini. */
static void ok(int kind, const char *body, oai_req_t *r) {
    oai_err_t e;
    if (parse(kind, body, r, &e) != 0) {
        fprintf(stderr, "refused %s: %d %s (param %s)\n", body, e.status, e.message, e.param);
        exit(1);
    }
}

/* body is refused with a 400 naming param ("" for none), and the error's JSON says the same. */
static void refused(int kind, const char *body, size_t len, const char *param) {
    oai_req_t r;
    oai_err_t e;
    memset(&e, 0, sizeof e);
    if (oai_parse(kind, body, len, &r, &e) == 0) {
        fprintf(stderr, "accepted %.*s\n", (int)len, body);
        exit(1);
    }
    oai_req_fini(&r);
    if (strcmp(e.param, param) != 0) {
        fprintf(stderr, "%.*s: param \"%s\", want \"%s\" (%s)\n", (int)len, body, e.param, param,
                e.message);
        exit(1);
    }
    ASSERT_EQ(e.status, 400);
    ASSERT_STR_EQ(e.type, "invalid_request_error");
    ASSERT(e.message[0] != '\0');
    size_t n;
    char *s = oai_error_json(&e, &n);
    cJSON *j = cJSON_Parse(s);
    ASSERT(j != NULL && n == strlen(s));
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "message")),
                  e.message);
    ASSERT_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "type")),
                  "invalid_request_error");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(err, "param");
    if (param[0]) ASSERT_STR_EQ(cJSON_GetStringValue(p), param);
    else ASSERT(cJSON_IsNull(p));
    ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(err, "code")));
    cJSON_Delete(j);
    free(s);
}

static void bad(int kind, const char *body, const char *param) {
    refused(kind, body, strlen(body), param);
}

static void test_completion_defaults(void) {
    oai_req_t r;
    ok(OAI_COMPLETIONS, "{\"prompt\":\"hi\",\"user\":\"x\",\"foo\":[1]}", &r);  /* unknown: ignored */
    ASSERT_EQ(r.kind, OAI_COMPLETIONS);
    ASSERT(r.model == NULL);
    ASSERT_EQ(r.n_prompt, 1);
    ASSERT_EQ(r.prompt_len[0], 2);
    ASSERT_STR_EQ(r.prompt[0], "hi");
    ASSERT_EQ(r.max_tokens, 16);
    ASSERT(r.temperature == 1 && r.top_p == 1);
    ASSERT_EQ(r.top_k, 0);
    ASSERT_EQ(r.has_seed, 0);
    ASSERT_EQ(r.n_stop, 0);
    ASSERT_EQ(r.n, 1);
    ASSERT_EQ(r.logprobs, -1);
    ASSERT(!r.echo && !r.stream && !r.include_usage && !r.ignore_eos);
    oai_req_fini(&r);
    /* null is the default for every field, and neutral values of unsupported ones pass */
    ok(OAI_COMPLETIONS, "{\"prompt\":\"a\",\"model\":null,\"max_tokens\":null,\"temperature\":null,"
       "\"top_p\":null,\"top_k\":null,\"seed\":null,\"stop\":null,\"n\":null,\"logprobs\":null,"
       "\"echo\":null,\"stream\":null,\"stream_options\":null,\"suffix\":\"\",\"best_of\":1,"
       "\"logit_bias\":{},\"presence_penalty\":0,\"frequency_penalty\":0.0,"
       "\"repetition_penalty\":1,\"tools\":[],\"tool_choice\":\"none\",\"functions\":[],"
       "\"function_call\":\"none\",\"response_format\":{\"type\":\"text\"}}", &r);
    ASSERT_EQ(r.max_tokens, 16);
    ASSERT_EQ(r.logprobs, -1);
    ASSERT_EQ(r.n, 1);
    oai_req_fini(&r);
}

static void test_completion_fields(void) {
    oai_req_t r;
    ok(OAI_COMPLETIONS, "{\"model\":\"m1\",\"prompt\":[\"a\",\"b\\u00e9\"],\"max_tokens\":5.0,"
       "\"temperature\":0,\"top_p\":0.5,\"top_k\":-1,\"seed\":-1,\"stop\":[\"x\",\"yz\"],\"n\":2,"
       "\"logprobs\":5,\"stream\":true,\"stream_options\":{\"include_usage\":true},"
       "\"ignore_eos\":true}", &r);
    ASSERT_STR_EQ(r.model, "m1");
    ASSERT_EQ(r.n_prompt, 2);
    ASSERT_STR_EQ(r.prompt[1], "b\xc3\xa9");
    ASSERT_EQ(r.prompt_len[1], 3);
    ASSERT_EQ(r.max_tokens, 5);
    ASSERT(r.temperature == 0 && r.top_p == 0.5f);
    ASSERT_EQ(r.top_k, 0);      /* -1 is off */
    ASSERT(r.has_seed && r.seed == UINT64_MAX);
    ASSERT_EQ(r.n_stop, 2);
    ASSERT_STR_EQ(r.stop[1], "yz");
    ASSERT_EQ(r.stop_len[1], 2);
    ASSERT_EQ(r.n, 2);
    ASSERT_EQ(r.logprobs, 5);
    ASSERT(r.stream && r.include_usage && r.ignore_eos);
    oai_req_fini(&r);
    ok(OAI_COMPLETIONS, "{\"prompt\":\"a\",\"stop\":\".\",\"seed\":9007199254740991,\"top_k\":40,"
       "\"logprobs\":0,\"temperature\":2,\"top_p\":1}", &r);
    ASSERT(r.has_seed && r.seed == 9007199254740991ull);
    ASSERT_EQ(r.n_stop, 1);
    ASSERT_STR_EQ(r.stop[0], ".");
    ASSERT_EQ(r.top_k, 40);
    ASSERT_EQ(r.logprobs, 0);
    ASSERT(r.temperature == 2);
    oai_req_fini(&r);
    ok(OAI_COMPLETIONS, "{\"prompt\":\"a\",\"echo\":true,\"max_tokens\":65536}", &r);
    ASSERT(r.echo && r.logprobs == -1 && r.max_tokens == 65536);
    oai_req_fini(&r);
    /* an escaped backslash before u0000 is text, not a NUL */
    ok(OAI_COMPLETIONS, "{\"prompt\":\"a\\\\u0000\"}", &r);
    ASSERT_STR_EQ(r.prompt[0], "a\\u0000");
    oai_req_fini(&r);
    /* 128 prompts of one choice each is the most */
    char body[2048] = "{\"prompt\":[";
    for (int i = 0; i < OAI_MAX_CHOICES; i++) strcat(body, i ? ",\"p\"" : "\"p\"");
    strcat(body, "]}");
    ok(OAI_COMPLETIONS, body, &r);
    ASSERT_EQ(r.n_prompt, OAI_MAX_CHOICES);
    oai_req_fini(&r);
    strcpy(body + strlen(body) - 1, ",\"n\":2}");
    bad(OAI_COMPLETIONS, body, "n");
    char stop[600];
    snprintf(stop, sizeof stop, "{\"prompt\":\"a\",\"stop\":\"%0256d\"}", 0);
    ok(OAI_COMPLETIONS, stop, &r);
    ASSERT_EQ(r.stop_len[0], 256);
    oai_req_fini(&r);
    snprintf(stop, sizeof stop, "{\"prompt\":\"a\",\"stop\":[\"x\",\"%0257d\"]}", 0);
    bad(OAI_COMPLETIONS, stop, "stop");
}

static void test_completion_refusals(void) {
    static const struct { const char *body, *param; } cases[] = {
        { "{}", "prompt" },
        { "{\"prompt\":5}", "prompt" },
        { "{\"prompt\":[]}", "prompt" },
        { "{\"prompt\":\"\"}", "prompt" },
        { "{\"prompt\":[\"a\",\"\"]}", "prompt" },
        { "{\"prompt\":[1,2,3]}", "prompt" },
        { "{\"prompt\":[[1,2]]}", "prompt" },
        { "{\"prompt\":[\"a\",{}]}", "prompt" },
        { "{\"prompt\":\"a\",\"model\":5}", "model" },
        { "{\"prompt\":\"a\",\"max_tokens\":0}", "max_tokens" },
        { "{\"prompt\":\"a\",\"max_tokens\":65537}", "max_tokens" },
        { "{\"prompt\":\"a\",\"max_tokens\":1.5}", "max_tokens" },
        { "{\"prompt\":\"a\",\"max_tokens\":\"5\"}", "max_tokens" },
        { "{\"prompt\":\"a\",\"max_tokens\":1e400}", "max_tokens" },
        { "{\"prompt\":\"a\",\"temperature\":2.01}", "temperature" },
        { "{\"prompt\":\"a\",\"temperature\":-0.1}", "temperature" },
        { "{\"prompt\":\"a\",\"temperature\":\"1\"}", "temperature" },
        { "{\"prompt\":\"a\",\"top_p\":0}", "top_p" },
        { "{\"prompt\":\"a\",\"top_p\":1.01}", "top_p" },
        { "{\"prompt\":\"a\",\"top_k\":-2}", "top_k" },
        { "{\"prompt\":\"a\",\"top_k\":2.5}", "top_k" },
        { "{\"prompt\":\"a\",\"top_k\":true}", "top_k" },
        { "{\"prompt\":\"a\",\"seed\":9007199254740993}", "seed" },
        { "{\"prompt\":\"a\",\"seed\":-9007199254740993}", "seed" },
        { "{\"prompt\":\"a\",\"seed\":1.5}", "seed" },
        { "{\"prompt\":\"a\",\"seed\":\"1\"}", "seed" },
        { "{\"prompt\":\"a\",\"stop\":5}", "stop" },
        { "{\"prompt\":\"a\",\"stop\":\"\"}", "stop" },
        { "{\"prompt\":\"a\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop" },
        { "{\"prompt\":\"a\",\"stop\":[1]}", "stop" },
        { "{\"prompt\":\"a\",\"stop\":[\"\"]}", "stop" },
        { "{\"prompt\":\"a\",\"n\":0}", "n" },
        { "{\"prompt\":\"a\",\"n\":129}", "n" },
        { "{\"prompt\":[\"a\",\"b\"],\"n\":65}", "n" },
        { "{\"prompt\":\"a\",\"logprobs\":6}", "logprobs" },
        { "{\"prompt\":\"a\",\"logprobs\":-1}", "logprobs" },
        { "{\"prompt\":\"a\",\"logprobs\":true}", "logprobs" },
        { "{\"prompt\":\"a\",\"echo\":1}", "echo" },
        { "{\"prompt\":\"a\",\"echo\":true,\"logprobs\":1}", "echo" },
        { "{\"prompt\":\"a\",\"stream\":\"yes\"}", "stream" },
        { "{\"prompt\":\"a\",\"ignore_eos\":1}", "ignore_eos" },
        { "{\"prompt\":\"a\",\"stream_options\":{\"include_usage\":true}}", "stream_options" },
        { "{\"prompt\":\"a\",\"stream\":true,\"stream_options\":[]}", "stream_options" },
        { "{\"prompt\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":1}}",
          "stream_options.include_usage" },
        { "{\"prompt\":\"a\",\"best_of\":2}", "best_of" },
        { "{\"prompt\":\"a\",\"suffix\":\"x\"}", "suffix" },
        { "{\"prompt\":\"a\",\"logit_bias\":{\"5\":1}}", "logit_bias" },
        { "{\"prompt\":\"a\",\"presence_penalty\":0.5}", "presence_penalty" },
        { "{\"prompt\":\"a\",\"frequency_penalty\":1}", "frequency_penalty" },
        { "{\"prompt\":\"a\",\"repetition_penalty\":1.1}", "repetition_penalty" },
        { "{\"prompt\":\"a\",\"tools\":[{\"type\":\"function\"}]}", "tools" },
        { "{\"prompt\":\"a\",\"tool_choice\":\"auto\"}", "tool_choice" },
        { "{\"prompt\":\"a\",\"functions\":[{}]}", "functions" },
        { "{\"prompt\":\"a\",\"function_call\":\"auto\"}", "function_call" },
        { "{\"prompt\":\"a\",\"response_format\":{\"type\":\"json_object\"}}", "response_format" },
        /* not JSON, or not one object: no field to name */
        { "", "" },
        { "{", "" },
        { "[]", "" },
        { "\"prompt\"", "" },
        { "{\"prompt\":\"a\"} x", "" },
        { "{\"prompt\":\"a\"}{}", "" },
        { "{\"prompt\":\"\\ud800\"}", "" },
        { "{\"prompt\":\"a\\u0000b\"}", "" },
        { "{\"prompt\":\"a\",\"stop\":\"\\u0000\"}", "" },
        { "{\"prompt\":\"\xff\"}", "" },
        { "{\"prompt\":\"\xc0\xaf\"}", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad(OAI_COMPLETIONS, cases[i].body, cases[i].param);
    refused(OAI_COMPLETIONS, "{\"prompt\":\"a\0\"}", 15, "");       /* a raw NUL byte */
    refused(OAI_COMPLETIONS, "{\"prompt\":\"abc\"}", 10, "");        /* cut short by len */
    oai_req_t r;
    ok(OAI_COMPLETIONS, " {\"prompt\":\"a\"}\r\n ", &r);          /* whitespace around is fine */
    oai_req_fini(&r);
}

static void test_chat(void) {
    oai_req_t r;
    ok(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r);
    ASSERT_EQ(r.kind, OAI_CHAT);
    ASSERT_EQ(r.n_msgs, 1);
    ASSERT_STR_EQ(r.msgs[0].role, "user");
    ASSERT_STR_EQ(r.msgs[0].content, "hi");
    ASSERT_EQ(r.max_tokens, 0);     /* until the context ends it */
    ASSERT_EQ(r.logprobs, -1);
    ASSERT_EQ(r.n_prompt, 0);
    oai_req_fini(&r);
    ok(OAI_CHAT, "{\"messages\":[{\"role\":\"developer\",\"content\":\"be brief\"},"
       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\","
       "\"text\":\"b\"}],\"name\":\"x\"},{\"role\":\"assistant\",\"content\":null},"
       "{\"role\":\"user\",\"content\":\"\"}],\"max_tokens\":3,\"max_completion_tokens\":7,"
       "\"logprobs\":true,\"top_logprobs\":20,\"n\":128,\"prompt\":5,\"echo\":\"ignored\"}", &r);
    ASSERT_EQ(r.n_msgs, 4);
    ASSERT_STR_EQ(r.msgs[0].role, "system");
    ASSERT_STR_EQ(r.msgs[1].content, "a\nb");
    ASSERT_EQ(r.msgs[1].content_len, 3);
    ASSERT_STR_EQ(r.msgs[2].role, "assistant");
    ASSERT_EQ(r.msgs[2].content_len, 0);
    ASSERT_EQ(r.msgs[3].content_len, 0);
    ASSERT_EQ(r.max_tokens, 7);
    ASSERT_EQ(r.logprobs, 20);
    ASSERT_EQ(r.n, 128);
    oai_req_fini(&r);
    ok(OAI_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"logprobs\":true,"
       "\"max_tokens\":9}", &r);
    ASSERT_EQ(r.logprobs, 0);
    ASSERT_EQ(r.max_tokens, 9);
    oai_req_fini(&r);
    static const struct { const char *body, *param; } cases[] = {
        { "{}", "messages" },
        { "{\"messages\":{}}", "messages" },
        { "{\"messages\":[]}", "messages" },
        { "{\"messages\":[5]}", "messages" },
        { "{\"messages\":[{\"content\":\"a\"}]}", "messages" },
        { "{\"messages\":[{\"role\":5,\"content\":\"a\"}]}", "messages" },
        { "{\"messages\":[{\"role\":\"tool\",\"content\":\"a\"}]}", "messages" },
        { "{\"messages\":[{\"role\":\"User\",\"content\":\"a\"}]}", "messages" },
        { "{\"messages\":[{\"role\":\"user\"}]}", "messages" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
          "\"image_url\":{\"url\":\"x\"}}]}]}", "messages" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", "messages" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logprobs\":5}", "logprobs" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"top_logprobs\":2}",
          "top_logprobs" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logprobs\":true,"
          "\"top_logprobs\":21}", "top_logprobs" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_completion_tokens\":0}",
          "max_completion_tokens" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":0}",
          "max_tokens" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":129}", "n" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"tools\":[{}]}", "tools" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"response_format\":"
          "{\"type\":\"json_schema\"}}", "response_format" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000\"}]}", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad(OAI_CHAT, cases[i].body, cases[i].param);
}

/* Token pieces for the logprobs: "lo" twice (ids 1 and 3), a lone byte that is not UTF-8 (2). */
static const char *piece(void *arg, int32_t id, size_t *len) {
    static const char *const p[] = { "Hel", "lo", "\xff", "lo", "" };
    (void)arg;
    const char *s = id >= 0 && id < 5 ? p[id] : NULL;
    *len = s ? strlen(s) : 0;
    return s;
}

static const oai_meta_t meta = { "cmpl-7", 1700000000, "tiny", piece, NULL };

/* s read back (and freed); *len is what the builder stored beside it. */
static cJSON *parsed(char *s, const size_t *len) {
    ASSERT(s != NULL);
    ASSERT_EQ(strlen(s), *len);
    cJSON *j = cJSON_Parse(s);
    if (j == NULL) fprintf(stderr, "not JSON: %s\n", s);
    ASSERT(j != NULL);
    free(s);
    return j;
}

static const cJSON *get(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL) fprintf(stderr, "no member %s\n", name);
    ASSERT(v != NULL);
    return v;
}

static const char *str(const cJSON *o, const char *name) {
    const char *s = cJSON_GetStringValue(get(o, name));
    ASSERT(s != NULL);
    return s;
}

static double num(const cJSON *o, const char *name) {
    const cJSON *v = get(o, name);
    ASSERT(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void check_head(const cJSON *j, const char *object) {
    ASSERT_STR_EQ(str(j, "id"), "cmpl-7");
    ASSERT_STR_EQ(str(j, "object"), object);
    ASSERT(num(j, "created") == 1700000000);
    ASSERT_STR_EQ(str(j, "model"), "tiny");
}

static void check_usage(const cJSON *j, int prompt, int completion) {
    const cJSON *u = get(j, "usage");
    ASSERT(num(u, "prompt_tokens") == prompt);
    ASSERT(num(u, "completion_tokens") == completion);
    ASSERT(num(u, "total_tokens") == prompt + completion);
}

static eng_logprobs_t lp2(float chosen, int32_t a, float la, int32_t b, float lb) {
    eng_logprobs_t l = { .top_n = 2, .chosen = chosen, .n = 2 };
    l.top_id[0] = a, l.top_lp[0] = la, l.top_id[1] = b, l.top_lp[1] = lb;
    return l;
}

static void test_completion_responses(void) {
    const oai_usage_t usage = { 5, 3 };
    /* choice 0 has bytes that are not UTF-8 and a NUL; choice 1 carries logprobs */
    const int32_t ids[] = { 0, 2 };
    const eng_logprobs_t lps[] = { lp2(-0.25f, 1, -0.125f, 3, -0.5f), lp2(-INFINITY, 0, -1, 1, -2) };
    const oai_choice_t c[2] = {
        { .index = 0, .text = "a\xff" "b\0c", .text_len = 5, .finish_reason = "length" },
        { .index = 1, .text = "Hel\xff", .text_len = 4, .n_tok = 2, .lps = lps, .ids = ids,
          .text_offset = 10, .finish_reason = "stop" },
    };
    size_t len;
    char *s = oai_response_json(OAI_COMPLETIONS, &meta, c, 2, &usage, &len);
    ASSERT(s != NULL && strstr(s, "a\xef\xbf\xbd" "b\\u0000c") != NULL);
    cJSON *j = parsed(s, &len);
    check_head(j, "text_completion");
    check_usage(j, 5, 3);
    const cJSON *ch = get(j, "choices");
    ASSERT_EQ(cJSON_GetArraySize(ch), 2);
    const cJSON *c0 = cJSON_GetArrayItem(ch, 0), *c1 = cJSON_GetArrayItem(ch, 1);
    ASSERT(num(c0, "index") == 0 && num(c1, "index") == 1);
    ASSERT_STR_EQ(str(c0, "text"), "a\xef\xbf\xbd" "b");   /* cJSON stops at the \u0000 */
    ASSERT_STR_EQ(str(c0, "finish_reason"), "length");
    ASSERT(cJSON_IsNull(get(c0, "logprobs")));
    ASSERT_STR_EQ(str(c1, "text"), "Hel\xef\xbf\xbd");
    ASSERT_STR_EQ(str(c1, "finish_reason"), "stop");
    const cJSON *l = get(c1, "logprobs");
    const cJSON *toks = get(l, "tokens"), *tlp = get(l, "token_logprobs");
    const cJSON *top = get(l, "top_logprobs"), *off = get(l, "text_offset");
    ASSERT(cJSON_GetArraySize(toks) == 2 && cJSON_GetArraySize(tlp) == 2);
    ASSERT(cJSON_GetArraySize(top) == 2 && cJSON_GetArraySize(off) == 2);
    ASSERT_STR_EQ(cJSON_GetArrayItem(toks, 0)->valuestring, "Hel");
    ASSERT_STR_EQ(cJSON_GetArrayItem(toks, 1)->valuestring, "\xef\xbf\xbd");
    ASSERT(cJSON_GetArrayItem(tlp, 0)->valuedouble == -0.25);
    ASSERT(cJSON_GetArrayItem(tlp, 1)->valuedouble == -9999);     /* -inf has no JSON form */
    /* position 0: "lo" (ids 1 and 3) once, and the chosen "Hel" added */
    const cJSON *t0 = cJSON_GetArrayItem(top, 0), *t1 = cJSON_GetArrayItem(top, 1);
    ASSERT_EQ(cJSON_GetArraySize(t0), 2);
    ASSERT(num(t0, "lo") == -0.125 && num(t0, "Hel") == -0.25);
    ASSERT_EQ(cJSON_GetArraySize(t1), 3);
    ASSERT(num(t1, "Hel") == -1 && num(t1, "lo") == -2 && num(t1, "\xef\xbf\xbd") == -9999);
    ASSERT(cJSON_GetArrayItem(off, 0)->valuedouble == 10);
    ASSERT(cJSON_GetArrayItem(off, 1)->valuedouble == 13);
    cJSON_Delete(j);

    /* a chunk: one choice, the same object, finish_reason null until the end */
    const oai_choice_t d = { .index = 3, .text = "xy", .text_len = 2, .n_tok = 1 };
    j = parsed(oai_chunk_json(OAI_COMPLETIONS, &meta, &d, &len), &len);
    check_head(j, "text_completion");
    ch = get(j, "choices");
    ASSERT_EQ(cJSON_GetArraySize(ch), 1);
    c0 = cJSON_GetArrayItem(ch, 0);
    ASSERT(num(c0, "index") == 3);
    ASSERT_STR_EQ(str(c0, "text"), "xy");
    ASSERT(cJSON_IsNull(get(c0, "finish_reason")) && cJSON_IsNull(get(c0, "logprobs")));
    ASSERT(cJSON_GetObjectItemCaseSensitive(j, "usage") == NULL);
    cJSON_Delete(j);

    j = parsed(oai_usage_chunk_json(OAI_COMPLETIONS, &meta, &usage, &len), &len);
    check_head(j, "text_completion");
    ASSERT(cJSON_IsArray(get(j, "choices")) && cJSON_GetArraySize(get(j, "choices")) == 0);
    check_usage(j, 5, 3);
    cJSON_Delete(j);
}

static void check_bytes(const cJSON *entry, const char *want) {
    const cJSON *b = get(entry, "bytes");
    ASSERT_EQ(cJSON_GetArraySize(b), strlen(want));
    for (size_t i = 0; i < strlen(want); i++)
        ASSERT_EQ(cJSON_GetArrayItem(b, (int)i)->valuedouble, (unsigned char)want[i]);
}

static void test_chat_responses(void) {
    const oai_usage_t usage = { 2, 2 };
    const int32_t ids[] = { 2, 1 };
    const eng_logprobs_t lps[] = { lp2(-3, 0, -0.5f, 2, -3), lp2(-1, 1, -1, 3, -1) };
    const oai_choice_t c = { .index = 0, .text = "\xfflo", .text_len = 3, .n_tok = 2, .lps = lps,
                             .ids = ids, .finish_reason = "length" };
    size_t len;
    cJSON *j = parsed(oai_response_json(OAI_CHAT, &meta, &c, 1, &usage, &len), &len);
    check_head(j, "chat.completion");
    check_usage(j, 2, 2);
    const cJSON *c0 = cJSON_GetArrayItem(get(j, "choices"), 0);
    const cJSON *msg = get(c0, "message");
    ASSERT_STR_EQ(str(msg, "role"), "assistant");
    ASSERT_STR_EQ(str(msg, "content"), "\xef\xbf\xbdlo");
    ASSERT_STR_EQ(str(c0, "finish_reason"), "length");
    const cJSON *content = get(get(c0, "logprobs"), "content");
    ASSERT_EQ(cJSON_GetArraySize(content), 2);
    const cJSON *e0 = cJSON_GetArrayItem(content, 0), *e1 = cJSON_GetArrayItem(content, 1);
    ASSERT_STR_EQ(str(e0, "token"), "\xef\xbf\xbd");
    check_bytes(e0, "\xff");    /* the exact bytes behind the U+FFFD */
    ASSERT(num(e0, "logprob") == -3);
    const cJSON *top = get(e0, "top_logprobs");
    ASSERT_EQ(cJSON_GetArraySize(top), 2);
    ASSERT_STR_EQ(str(cJSON_GetArrayItem(top, 0), "token"), "Hel");
    ASSERT(num(cJSON_GetArrayItem(top, 0), "logprob") == -0.5);
    check_bytes(cJSON_GetArrayItem(top, 0), "Hel");
    check_bytes(cJSON_GetArrayItem(top, 1), "\xff");
    ASSERT_STR_EQ(str(e1, "token"), "lo");
    ASSERT_EQ(cJSON_GetArraySize(get(e1, "top_logprobs")), 2);    /* both "lo": chat lists ids */
    cJSON_Delete(j);

    /* streaming: role first (content ""), then content alone, then {} with finish_reason */
    const oai_choice_t first = { .index = 1, .text = "", .role = 1 };
    j = parsed(oai_chunk_json(OAI_CHAT, &meta, &first, &len), &len);
    check_head(j, "chat.completion.chunk");
    c0 = cJSON_GetArrayItem(get(j, "choices"), 0);
    const cJSON *delta = get(c0, "delta");
    ASSERT_EQ(cJSON_GetArraySize(delta), 2);
    ASSERT_STR_EQ(str(delta, "role"), "assistant");
    ASSERT_STR_EQ(str(delta, "content"), "");
    ASSERT(num(c0, "index") == 1 && cJSON_IsNull(get(c0, "finish_reason")));
    cJSON_Delete(j);
    const oai_choice_t mid = { .index = 1, .text = "ab", .text_len = 2, .n_tok = 1 };
    j = parsed(oai_chunk_json(OAI_CHAT, &meta, &mid, &len), &len);
    delta = get(cJSON_GetArrayItem(get(j, "choices"), 0), "delta");
    ASSERT_EQ(cJSON_GetArraySize(delta), 1);
    ASSERT_STR_EQ(str(delta, "content"), "ab");
    cJSON_Delete(j);
    const oai_choice_t last = { .index = 1, .finish_reason = "stop" };
    j = parsed(oai_chunk_json(OAI_CHAT, &meta, &last, &len), &len);
    c0 = cJSON_GetArrayItem(get(j, "choices"), 0);
    ASSERT(cJSON_IsObject(get(c0, "delta")) && cJSON_GetArraySize(get(c0, "delta")) == 0);
    ASSERT_STR_EQ(str(c0, "finish_reason"), "stop");
    cJSON_Delete(j);

    j = parsed(oai_usage_chunk_json(OAI_CHAT, &meta, &usage, &len), &len);
    check_head(j, "chat.completion.chunk");
    ASSERT_EQ(cJSON_GetArraySize(get(j, "choices")), 0);
    check_usage(j, 2, 2);
    cJSON_Delete(j);
}

static void test_other_bodies(void) {
    oai_err_t e;
    size_t len;
    oai_err_set(&e, 429, "server_error", "queue_full", NULL, "queue full (%d waiting)", 7);
    ASSERT_EQ(e.status, 429);
    cJSON *j = parsed(oai_error_json(&e, &len), &len);
    const cJSON *err = get(j, "error");
    ASSERT_STR_EQ(str(err, "message"), "queue full (7 waiting)");
    ASSERT_STR_EQ(str(err, "type"), "server_error");
    ASSERT_STR_EQ(str(err, "code"), "queue_full");
    ASSERT(cJSON_IsNull(get(err, "param")));
    cJSON_Delete(j);
    oai_err_set(&e, 400, "invalid_request_error", NULL, "a_very_long_parameter_name_that_goes_"
                "past_sixty_four_bytes_of_the_field", "%s", "bad \"quoted\" \xff");
    ASSERT_EQ(strlen(e.param), sizeof e.param - 1);
    j = parsed(oai_error_json(&e, &len), &len);
    ASSERT_STR_EQ(str(get(j, "error"), "message"), "bad \"quoted\" \xef\xbf\xbd");
    cJSON_Delete(j);

    j = parsed(oai_models_json("stories15M", 1700000001, &len), &len);
    ASSERT_STR_EQ(str(j, "object"), "list");
    const cJSON *d = get(j, "data");
    ASSERT_EQ(cJSON_GetArraySize(d), 1);
    const cJSON *m = cJSON_GetArrayItem(d, 0);
    ASSERT_STR_EQ(str(m, "id"), "stories15M");
    ASSERT_STR_EQ(str(m, "object"), "model");
    ASSERT(num(m, "created") == 1700000001);
    ASSERT_STR_EQ(str(m, "owned_by"), "lanes");
    cJSON_Delete(j);
}

int main(void) {
    test_completion_defaults();
    test_completion_fields();
    test_completion_refusals();
    test_chat();
    test_completion_responses();
    test_chat_responses();
    test_other_bodies();
    printf("io_oai: ok\n");
    return 0;
}
