/* lg_openai: the request bytes, SSE chunk fields, model list and /metrics counters the loadgen's
 * OpenAI client reads, on payloads shaped as lanes-server, vLLM and llama.cpp's llama-server send. */
#include "openai.h"

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "base/lanes_err.h"
#include "test_util.h"

static lg_openai_chunk_t chunk(const char *s) {
    lg_openai_chunk_t c;
    ASSERT_EQ(lg_openai_chunk(s, strlen(s), &c), LANES_OK);
    return c;
}

int main(void) {
    /* The request: a valid HTTP head whose Content-Length is the JSON body's length. */
    size_t n;
    char *req = lg_openai_completion("127.0.0.1", 7070, "m\\\"x", "Once \\\"upon\\\"", 13,
                                     ",\"max_tokens\":16,\"ignore_eos\":true", &n);
    ASSERT(req != NULL);
    ASSERT_EQ(strlen(req), n);
    ASSERT(strncmp(req, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:7070\r\n", 53) == 0);
    const char *body = strstr(req, "\r\n\r\n") + 4;
    const char *cl = strstr(req, "Content-Length: ");
    ASSERT(cl != NULL);
    ASSERT_EQ((size_t)atoi(cl + 16), strlen(body));
    cJSON *j = cJSON_Parse(body);
    ASSERT(j != NULL);
    ASSERT_STR_EQ(cJSON_GetObjectItem(j, "model")->valuestring, "m\"x");
    ASSERT_STR_EQ(cJSON_GetObjectItem(j, "prompt")->valuestring, "Once \"upon\"");
    ASSERT_EQ(cJSON_GetObjectItem(j, "max_tokens")->valueint, 16);
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(j, "ignore_eos")));
    ASSERT(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"), "include_usage")));
    cJSON_Delete(j);
    free(req);
    req = lg_openai_get("localhost", 8080, "/metrics", &n);
    ASSERT_STR_EQ(req, "GET /metrics HTTP/1.1\r\nHost: localhost:8080\r\nAccept: */*\r\n\r\n");
    free(req);

    /* Chunks: text, empty text, the finish, the usage chunk, errors. */
    lg_openai_chunk_t c = chunk("{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,"
                                "\"text\":\" the\",\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}");
    ASSERT(c.has_text);
    ASSERT_STR_EQ(c.finish, "");
    ASSERT_EQ(c.prompt_tokens, -1);
    c = chunk("{\"choices\":[{\"text\":\"\",\"index\":0,\"finish_reason\":\"length\"}]}");
    ASSERT(!c.has_text);
    ASSERT_STR_EQ(c.finish, "length");
    c = chunk("{\"id\":\"x\",\"choices\":[ ],\"usage\":{\"prompt_tokens\":33,\"completion_tokens\":128,"
              "\"total_tokens\":161}}");
    ASSERT(!c.has_text);
    ASSERT_EQ(c.prompt_tokens, 33);
    ASSERT_EQ(c.completion_tokens, 128);
    c = chunk("{\"error\":{\"message\":\"queue full\",\"type\":\"server_error\",\"code\":429}}");
    ASSERT_STR_EQ(c.error, "queue full");
    c = chunk("{\"error\":\"boom\"}");
    ASSERT_STR_EQ(c.error, "boom");
    lg_openai_chunk_t bad;
    ASSERT_EQ(lg_openai_chunk("[1]", 3, &bad), LANES_EPROTO);
    ASSERT_EQ(lg_openai_chunk("{\"choices\":{}}", 14, &bad), LANES_EPROTO);

    /* GET /v1/models. */
    char model[64];
    const char *ml = "{\"object\":\"list\",\"data\":[{\"id\":\"stories15M\",\"object\":\"model\"},{\"id\":\"b\"}]}";
    ASSERT_EQ(lg_openai_first_model(ml, strlen(ml), model, sizeof model), LANES_OK);
    ASSERT_STR_EQ(model, "stories15M");
    ASSERT_EQ(lg_openai_first_model("{\"data\":[]}", 11, model, sizeof model), LANES_ENOENT);
    ASSERT_EQ(lg_openai_first_model("{\"x\":1}", 7, model, sizeof model), LANES_EPROTO);

    /* /metrics: series summed over labels, comments and other names skipped, step time averaged. */
    const char *prom =
        "# HELP vllm:generation_tokens_total Generated tokens.\n"
        "# TYPE vllm:generation_tokens_total counter\n"
        "vllm:generation_tokens_total{model_name=\"a } b\"} 1200\n"
        "vllm:generation_tokens_total_other 5\n"
        "vllm:prompt_tokens_total{model_name=\"x\"} 3.3e2\n"
        "vllm:request_success_total{finished_reason=\"length\",model_name=\"x\"} 7\n"
        "vllm:request_success_total{finished_reason=\"stop\",model_name=\"x\"} 2 1700000000000\n"
        "lanes_lanes_capacity 128\n"
        "lanes_steps_total 99\n"
        "lanes_step_seconds_sum 2\n"
        "lanes_step_seconds_count 100";
    lg_srv_stats_t st;
    lg_openai_metrics(prom, strlen(prom), &st);
    ASSERT(st.valid);
    ASSERT_EQ(st.tokens_generated, 1200);
    ASSERT_EQ(st.prompt_tokens, 330);
    ASSERT_EQ(st.requests_served, 9);
    ASSERT_EQ(st.lanes_total, 128);
    ASSERT_EQ(st.steps, 99);
    ASSERT(st.step_ms_avg > 19.99 && st.step_ms_avg < 20.01);
    const char *llama = "llamacpp:prompt_tokens_total 40\nllamacpp:tokens_predicted_total 512\n";
    lg_openai_metrics(llama, strlen(llama), &st);
    ASSERT(st.valid);
    ASSERT_EQ(st.tokens_generated, 512);
    ASSERT_EQ(st.prompt_tokens, 40);
    lg_openai_metrics("lanes_lanes_capacity 4\n", 20, &st);
    ASSERT(!st.valid);
    return 0;
}
