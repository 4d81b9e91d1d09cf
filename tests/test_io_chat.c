/* Chat templates: each family renders system + user + assistant + user as llama.cpp's
 * llm_chat_apply_template does (expected strings written out by hand from its rules), and
 * detection keys on the markers llama.cpp looks for, in its order. */
#include "chat.h"

#include "test_util.h"

static oai_msg_t msg(const char *role, const char *content) {
    return (oai_msg_t){ (char *)role, (char *)content, strlen(content) };
}

static void expect_render(int family, const oai_msg_t *msgs, int n, const char *want) {
    char *out = NULL;
    size_t len = 0;
    const char *why = NULL;
    ASSERT_EQ(io_chat_render(family, msgs, n, &out, &len, &why), LANES_OK);
    if (len != strlen(want) || memcmp(out, want, len) != 0) {
        fprintf(stderr, "%s renders\n[%.*s]\nwant\n[%s]\n", io_chat_name(family), (int)len, out,
                want);
        exit(1);
    }
    ASSERT_EQ(out[len], '\0');
    free(out);
}

static void test_families(void) {
    /* The assistant text has spaces around it: the families that trim show it. */
    const oai_msg_t c[] = { msg("system", "You are kind."), msg("user", "Hi"),
                            msg("assistant", " Hello! "), msg("user", "Bye") };
    static const struct { int family; const char *want; } cases[] = {
        { IO_CHAT_CHATML, "<|im_start|>system\nYou are kind.<|im_end|>\n<|im_start|>user\nHi"
                          "<|im_end|>\n<|im_start|>assistant\n Hello! <|im_end|>\n<|im_start|>"
                          "user\nBye<|im_end|>\n<|im_start|>assistant\n" },
        { IO_CHAT_LLAMA2, "[INST] You are kind.\nHi [/INST] Hello! </s>[INST] Bye [/INST]" },
        { IO_CHAT_LLAMA2_SYS, "[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nHi [/INST] Hello! </s>"
                              "[INST] Bye [/INST]" },
        { IO_CHAT_LLAMA2_SYS_BOS, "[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nHi [/INST] Hello! "
                                  "</s><s>[INST] Bye [/INST]" },
        { IO_CHAT_LLAMA2_SYS_STRIP, "[INST] <<SYS>>\nYou are kind.\n<</SYS>>\n\nHi [/INST]Hello!"
                                    "</s>[INST] Bye [/INST]" },
        { IO_CHAT_LLAMA3, "<|start_header_id|>system<|end_header_id|>\n\nYou are kind.<|eot_id|>"
                          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                          "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                          "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                          "<|start_header_id|>assistant<|end_header_id|>\n\n" },
        { IO_CHAT_GEMMA, "<start_of_turn>user\nYou are kind.\n\nHi<end_of_turn>\n<start_of_turn>"
                         "model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n"
                         "<start_of_turn>model\n" },
        { IO_CHAT_MISTRAL_V1, " [INST] You are kind.\n\nHi [/INST]  Hello! </s> [INST] Bye [/INST]" },
        { IO_CHAT_MISTRAL_V3, "[INST] You are kind.\n\nHi[/INST] Hello!</s>[INST] Bye[/INST]" },
        { IO_CHAT_MISTRAL_V3_TEKKEN, "[INST]You are kind.\n\nHi[/INST] Hello! </s>[INST]Bye[/INST]" },
        { IO_CHAT_MISTRAL_V7, "[SYSTEM_PROMPT] You are kind.[/SYSTEM_PROMPT][INST] Hi[/INST]  "
                              "Hello! </s>[INST] Bye[/INST]" },
        { IO_CHAT_MISTRAL_V7_TEKKEN, "[SYSTEM_PROMPT]You are kind.[/SYSTEM_PROMPT][INST]Hi[/INST]"
                                     " Hello! </s>[INST]Bye[/INST]" },
        { IO_CHAT_PHI3, "<|system|>\nYou are kind.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n"
                        " Hello! <|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n" },
        { IO_CHAT_ZEPHYR, "<|system|>\nYou are kind.<|endoftext|>\n<|user|>\nHi<|endoftext|>\n"
                          "<|assistant|>\n Hello! <|endoftext|>\n<|user|>\nBye<|endoftext|>\n"
                          "<|assistant|>\n" },
    };
    ASSERT_EQ(sizeof cases / sizeof cases[0], IO_CHAT_COUNT);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_render(cases[i].family, c, 4, cases[i].want);
}

/* Gemma folds every system text seen so far into the next user turn, trimmed; a system message
 * after the last user turn is dropped, as llama.cpp drops it. */
static void test_gemma_system(void) {
    const oai_msg_t c[] = { msg("system", " A "), msg("assistant", "x"), msg("system", "\tB\n"),
                            msg("user", "u"), msg("system", "lost") };
    expect_render(IO_CHAT_GEMMA, c, 5, "<start_of_turn>model\nx<end_of_turn>\n<start_of_turn>user\n"
                  "AB\n\nu<end_of_turn>\n<start_of_turn>model\n");
    const oai_msg_t blank[] = { msg("system", "  "), msg("user", "u") };
    expect_render(IO_CHAT_GEMMA, blank, 2, "<start_of_turn>user\nu<end_of_turn>\n"
                  "<start_of_turn>model\n");
}

static void test_errors(void) {
    char *out = (char *)"untouched";
    size_t len = 1;
    const char *why = NULL;
    const oai_msg_t tool[] = { msg("user", "a"), msg("tool", "b") };
    ASSERT_EQ(io_chat_render(IO_CHAT_CHATML, tool, 2, &out, &len, &why), LANES_EINVAL);
    ASSERT(why != NULL && strstr(why, "role") != NULL);
    ASSERT(out == NULL && len == 0);
    why = NULL;
    ASSERT_EQ(io_chat_render(IO_CHAT_CHATML, tool, 0, &out, &len, &why), LANES_EINVAL);
    ASSERT(why != NULL);
    why = NULL;
    ASSERT_EQ(io_chat_render(IO_CHAT_COUNT, tool, 1, &out, &len, &why), LANES_EINVAL);
    ASSERT(why != NULL);
}

static void expect_detect(const char *tmpl, int want) {
    int got = io_chat_detect(tmpl, strlen(tmpl));
    if (got != want) {
        fprintf(stderr, "detect(%s) = %s, want %s\n", tmpl, got < 0 ? "-1" : io_chat_name(got),
                want < 0 ? "-1" : io_chat_name(want));
        exit(1);
    }
}

static void test_detect(void) {
    expect_detect("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                  "<|im_end|>\n{% endfor %}", IO_CHAT_CHATML);
    expect_detect("<|im_start|>{{ m['role'] }}<|im_sep|>", -1);                 /* phi4 */
    expect_detect("<|im_start|>User:<end_of_utterance>", -1);                   /* smolvlm */
    expect_detect("{{ bos_token }}{{ '[INST] ' + m['content'] + ' [/INST]' }}", IO_CHAT_LLAMA2);
    expect_detect("[INST] <<SYS>>\n{{ system }}\n<</SYS>>", IO_CHAT_LLAMA2_SYS);
    expect_detect("{{ bos_token + '[INST] ' + m['content'] }}<<SYS>>", IO_CHAT_LLAMA2_SYS_BOS);
    expect_detect("{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}<<SYS>>",
                  IO_CHAT_LLAMA2_SYS_STRIP);
    expect_detect("mistral: no markers at all", IO_CHAT_LLAMA2);    /* llama.cpp's prefix rule */
    expect_detect("[SYSTEM_PROMPT]{{ s }}[/SYSTEM_PROMPT][INST]", IO_CHAT_MISTRAL_V7);
    expect_detect("{{ ' [INST] ' + system_message }}", IO_CHAT_MISTRAL_V1);
    expect_detect("[AVAILABLE_TOOLS]{{- \"[INST]\" + m[\"content\"] }}", IO_CHAT_MISTRAL_V3_TEKKEN);
    expect_detect("[AVAILABLE_TOOLS]{{ '[INST]' + m['content'] + '[/INST]' }}", IO_CHAT_MISTRAL_V3);
    expect_detect("<|user|>\n{{ c }}<|end|>\n<|assistant|>\n", IO_CHAT_PHI3);
    expect_detect("<|user|>\n{{ c }}<|endoftext|>\n", IO_CHAT_ZEPHYR);
    expect_detect("<|user|>\n{{ c }}<|endoftext|><|assistant|>", -1);          /* falcon3/glmedge */
    expect_detect("<start_of_turn>user\n{{ c }}<end_of_turn>", IO_CHAT_GEMMA);
    expect_detect("<|start_header_id|>{{ r }}<|end_header_id|>\n\n{{ c }}<|eot_id|>",
                  IO_CHAT_LLAMA3);
    expect_detect("<|START_OF_TURN_TOKEN|><|USER_TOKEN|><|start_header_id|><|end_header_id|>", -1);
    expect_detect("USER: {{ c }} ASSISTANT: <start_of_turn>", IO_CHAT_GEMMA);  /* gemma is first */
    expect_detect("USER: {{ c }} ASSISTANT: <|start_header_id|><|end_header_id|>", -1);
    expect_detect("{{ c }}", -1);
    ASSERT_EQ(io_chat_detect("", 0), -1);
    ASSERT_EQ(io_chat_detect(NULL, 0), -1);
    ASSERT_EQ(io_chat_detect("<|im_start|>xx", 5), -1);    /* only len bytes count */
    for (int f = 0; f < IO_CHAT_COUNT; f++) {
        const char *name = io_chat_name(f);
        ASSERT(name != NULL && strstr(io_chat_names(), name) != NULL);
        ASSERT_EQ(io_chat_by_name(name), f);
        ASSERT_EQ(io_chat_detect(name, strlen(name)), f);
    }
    ASSERT_EQ(io_chat_by_name("phi4"), -1);
    ASSERT_EQ(io_chat_by_name(NULL), -1);
    ASSERT(io_chat_name(-1) == NULL && io_chat_name(IO_CHAT_COUNT) == NULL);
}

int main(void) {
    test_families();
    test_gemma_system();
    test_errors();
    test_detect();
    printf("io_chat: ok\n");
    return 0;
}
