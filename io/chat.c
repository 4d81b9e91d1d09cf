#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"

/* The families follow llama.cpp's llm_chat_apply_template (src/llama-chat.cpp): the same strings,
 * the same trimming, the same quirks (Gemma folds system text into the next user turn; Mistral and
 * Llama 2 open no assistant turn of their own, their [/INST] is the cue). */

static const char *const names[IO_CHAT_COUNT] = {
    [IO_CHAT_CHATML] = "chatml",
    [IO_CHAT_LLAMA2] = "llama2",
    [IO_CHAT_LLAMA2_SYS] = "llama2-sys",
    [IO_CHAT_LLAMA3] = "llama3",
    [IO_CHAT_GEMMA] = "gemma",
    [IO_CHAT_MISTRAL_V1] = "mistral-v1",
    [IO_CHAT_MISTRAL_V3] = "mistral-v3",
    [IO_CHAT_MISTRAL_V7] = "mistral-v7",
    [IO_CHAT_PHI3] = "phi3",
    [IO_CHAT_ZEPHYR] = "zephyr",
    [IO_CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
    [IO_CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [IO_CHAT_MISTRAL_V3_TEKKEN] = "mistral-v3-tekken",
    [IO_CHAT_MISTRAL_V7_TEKKEN] = "mistral-v7-tekken",
};

int io_chat_by_name(const char *name) {
    for (int i = 0; i < IO_CHAT_COUNT; i++)
        if (name && strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *io_chat_name(int family) {
    return family >= 0 && family < IO_CHAT_COUNT ? names[family] : NULL;
}

const char *io_chat_names(void) {
    return "chatml, llama2, llama2-sys, llama2-sys-bos, llama2-sys-strip, llama3, gemma, "
           "mistral-v1, mistral-v3, mistral-v3-tekken, mistral-v7, mistral-v7-tekken, phi3, zephyr";
}

typedef struct { const char *s; size_t n; } span_t;

static int has(span_t t, const char *marker) {
    return memmem(t.s, t.n, marker, strlen(marker)) != NULL;
}

/* llama.cpp's [INST] branch: Mistral's official templates, else Llama 2 and its variants. */
static int detect_inst(span_t t) {
    if (has(t, "[SYSTEM_PROMPT]")) return IO_CHAT_MISTRAL_V7;
    if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]")) {
        if (has(t, " [INST]")) return IO_CHAT_MISTRAL_V1;
        if (has(t, "\"[INST]\"")) return IO_CHAT_MISTRAL_V3_TEKKEN;
        return IO_CHAT_MISTRAL_V3;
    }
    if (has(t, "content.strip()")) return IO_CHAT_LLAMA2_SYS_STRIP;
    if (has(t, "bos_token + '[INST]")) return IO_CHAT_LLAMA2_SYS_BOS;
    return has(t, "<<SYS>>") ? IO_CHAT_LLAMA2_SYS : IO_CHAT_LLAMA2;
}

int io_chat_detect(const char *tmpl, size_t len) {
    /* After ChatML and [INST], llama.cpp's tests in its order: both markers (b may be NULL) give
     * the family; -1 where it is one of llama.cpp's that is not built in here, since a later rule
     * must not claim a template an earlier one would have. */
    static const struct { const char *a, *b; int family; } rules[] = {
        { "<|assistant|>", "<|end|>", IO_CHAT_PHI3 },
        { "[gMASK]<sop>", NULL, -1 },                       /* chatglm4 */
        { "<|assistant|>", "<|user|>", -1 },                /* falcon3, glmedge */
        { "<|{{ item['role'] }}|>", "<|begin_of_image|>", -1 },
        { "<|user|>", "<|endoftext|>", IO_CHAT_ZEPHYR },
        { "bos_token + message['role']", NULL, -1 },        /* monarch */
        { "<start_of_turn>", NULL, IO_CHAT_GEMMA },
        { "'\\n\\nAssistant: ' + eos_token", NULL, -1 },    /* orion */
        { "GPT4 Correct ", NULL, -1 },                      /* openchat */
        { "USER: ", "ASSISTANT: ", -1 },                    /* vicuna */
        { "### Instruction:", "<|EOT|>", -1 },              /* deepseek */
        { "<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>", -1 },/* command-r */
        { "<|start_header_id|>", "<|end_header_id|>", IO_CHAT_LLAMA3 },
    };
    if (tmpl == NULL) return -1;
    span_t t = { tmpl, len };
    char name[32];
    if (len < sizeof name && memchr(tmpl, '\0', len) == NULL) {    /* a family's own name */
        memcpy(name, tmpl, len);
        name[len] = '\0';
        int f = io_chat_by_name(name);
        if (f >= 0) return f;
    }
    if (has(t, "<|im_start|>"))     /* phi4 and SmolVLM use it too */
        return has(t, "<|im_sep|>") || has(t, "<end_of_utterance>") ? -1 : IO_CHAT_CHATML;
    if ((len >= 7 && memcmp(tmpl, "mistral", 7) == 0) || has(t, "[INST]")) return detect_inst(t);
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        if (has(t, rules[i].a) && (rules[i].b == NULL || has(t, rules[i].b)))
            return rules[i].family;
    return -1;
}

static int is_space(char c) {  /* C's isspace in the C locale, as llama.cpp's trim uses */
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static span_t trim(const char *s, size_t n) {
    while (n > 0 && is_space(*s)) s++, n--;
    while (n > 0 && is_space(s[n - 1])) n--;
    return (span_t){ s, n };
}

static span_t content(const oai_msg_t *m, int strip) {
    return strip ? trim(m->content, m->content_len) : (span_t){ m->content, m->content_len };
}

static void put(FILE *f, const char *s) { fputs(s, f); }
static void put_span(FILE *f, span_t s) { fwrite(s.s, 1, s.n, f); }

static int is(const oai_msg_t *m, const char *role) { return strcmp(m->role, role) == 0; }

static void render_mistral(FILE *f, int family, const oai_msg_t *msgs, int n) {
    if (family == IO_CHAT_MISTRAL_V7 || family == IO_CHAT_MISTRAL_V7_TEKKEN) {
        const char *sp = family == IO_CHAT_MISTRAL_V7 ? " " : "";
        for (int i = 0; i < n; i++) {
            const oai_msg_t *m = &msgs[i];
            put(f, is(m, "system") ? "[SYSTEM_PROMPT]" : is(m, "user") ? "[INST]" : "");
            put(f, sp);
            put_span(f, content(m, 0));
            put(f, is(m, "system") ? "[/SYSTEM_PROMPT]" : is(m, "user") ? "[/INST]" : "</s>");
        }
        return;
    }
    const char *lead = family == IO_CHAT_MISTRAL_V1 ? " " : "";
    const char *trail = family == IO_CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
    int inside = 0;
    for (int i = 0; i < n; i++) {
        const oai_msg_t *m = &msgs[i];
        if (!inside) {
            fprintf(f, "%s[INST]%s", lead, trail);
            inside = 1;
        }
        if (is(m, "system")) {
            put_span(f, content(m, 0));
            put(f, "\n\n");
        } else if (is(m, "user")) {
            put_span(f, content(m, 0));
            fprintf(f, "%s[/INST]", lead);
        } else {
            put(f, trail);
            put_span(f, content(m, family == IO_CHAT_MISTRAL_V3));
            put(f, "</s>");
            inside = 0;
        }
    }
}

static void render_llama2(FILE *f, int family, const oai_msg_t *msgs, int n) {
    int sys = family != IO_CHAT_LLAMA2, strip = family == IO_CHAT_LLAMA2_SYS_STRIP;
    int inside = 1;     /* the first [INST] is written without the BOS the tokenizer adds */
    put(f, "[INST] ");
    for (int i = 0; i < n; i++) {
        const oai_msg_t *m = &msgs[i];
        if (!inside) {
            put(f, family == IO_CHAT_LLAMA2_SYS_BOS ? "<s>[INST] " : "[INST] ");
            inside = 1;
        }
        if (is(m, "system")) {
            put(f, sys ? "<<SYS>>\n" : "");
            put_span(f, content(m, strip));
            put(f, sys ? "\n<</SYS>>\n\n" : "\n");
        } else if (is(m, "user")) {
            put_span(f, content(m, strip));
            put(f, " [/INST]");
        } else {
            put_span(f, content(m, strip));
            put(f, "</s>");
            inside = 0;
        }
    }
}

/* Gemma has no system turn: the trimmed system texts seen so far open the next user turn. */
static void render_gemma(FILE *f, const oai_msg_t *msgs, int n) {
    int pending = 0;    /* the first system message not yet written */
    for (int i = 0; i < n; i++) {
        const oai_msg_t *m = &msgs[i];
        if (is(m, "system")) continue;
        int model = is(m, "assistant");
        fprintf(f, "<start_of_turn>%s\n", model ? "model" : m->role);
        if (!model) {
            int any = 0;
            for (int j = pending; j < i; j++) {
                if (!is(&msgs[j], "system")) continue;
                span_t s = content(&msgs[j], 1);
                put_span(f, s);
                any |= s.n > 0;
            }
            if (any) put(f, "\n\n");
            pending = i;
        }
        put_span(f, content(m, 1));
        put(f, "<end_of_turn>\n");
    }
    put(f, "<start_of_turn>model\n");
}

static void render(FILE *f, int family, const oai_msg_t *msgs, int n) {
    switch (family) {
    case IO_CHAT_CHATML:
        for (int i = 0; i < n; i++) {
            fprintf(f, "<|im_start|>%s\n", msgs[i].role);
            put_span(f, content(&msgs[i], 0));
            put(f, "<|im_end|>\n");
        }
        put(f, "<|im_start|>assistant\n");
        break;
    case IO_CHAT_LLAMA3:
        for (int i = 0; i < n; i++) {
            fprintf(f, "<|start_header_id|>%s<|end_header_id|>\n\n", msgs[i].role);
            put_span(f, content(&msgs[i], 1));
            put(f, "<|eot_id|>");
        }
        put(f, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case IO_CHAT_PHI3:
    case IO_CHAT_ZEPHYR:
        for (int i = 0; i < n; i++) {
            fprintf(f, "<|%s|>\n", msgs[i].role);
            put_span(f, content(&msgs[i], 0));
            put(f, family == IO_CHAT_PHI3 ? "<|end|>\n" : "<|endoftext|>\n");
        }
        put(f, "<|assistant|>\n");
        break;
    case IO_CHAT_GEMMA:
        render_gemma(f, msgs, n);
        break;
    case IO_CHAT_LLAMA2:
    case IO_CHAT_LLAMA2_SYS:
    case IO_CHAT_LLAMA2_SYS_BOS:
    case IO_CHAT_LLAMA2_SYS_STRIP:
        render_llama2(f, family, msgs, n);
        break;
    default:
        render_mistral(f, family, msgs, n);
    }
}

int io_chat_render(int family, const oai_msg_t *msgs, int n, char **out, size_t *len,
                   const char **why) {
    *out = NULL;
    *len = 0;
    if (family < 0 || family >= IO_CHAT_COUNT) {
        *why = "unknown chat template";
        return LANES_EINVAL;
    }
    if (n <= 0) {
        *why = "no messages";
        return LANES_EINVAL;
    }
    for (int i = 0; i < n; i++) {
        if (!is(&msgs[i], "system") && !is(&msgs[i], "user") && !is(&msgs[i], "assistant")) {
            *why = "a message role other than system, user and assistant";
            return LANES_EINVAL;
        }
    }
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL) return LANES_ENOMEM;
    render(f, family, msgs, n);
    int failed = ferror(f);
    if (fclose(f) != 0 || failed) {
        free(buf);
        return LANES_ENOMEM;
    }
    *out = buf;
    *len = size;
    return LANES_OK;
}
