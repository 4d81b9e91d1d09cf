#ifndef IO_CHAT_H
#define IO_CHAT_H

#include <stddef.h>

#include "oai.h"

/* Chat templates: the message list rendered to one prompt as llama.cpp's llm_chat_apply_template
 * renders each built-in family (llama-chat.cpp), with the assistant's turn opened at the end
 * (add_generation_prompt). No Jinja: a GGUF's tokenizer.chat_template is only read to detect its
 * family, by the same marker substrings llama.cpp looks for. BOS is not rendered where llama.cpp
 * leaves it to the tokenizer (the prompt is encoded with ADD_SPECIAL | PARSE_SPECIAL). */

enum {
    IO_CHAT_CHATML = 0,     /* also Qwen 2/2.5 */
    IO_CHAT_LLAMA2,
    IO_CHAT_LLAMA2_SYS,     /* llama2 with a system message (<<SYS>>) */
    IO_CHAT_LLAMA3,
    IO_CHAT_GEMMA,
    IO_CHAT_MISTRAL_V1,
    IO_CHAT_MISTRAL_V3,
    IO_CHAT_MISTRAL_V7,
    IO_CHAT_PHI3,
    IO_CHAT_ZEPHYR,
    IO_CHAT_LLAMA2_SYS_BOS,     /* llama2-sys with <s> opening every later turn */
    IO_CHAT_LLAMA2_SYS_STRIP,   /* llama2-sys with every message trimmed (Llama 2 chat's own) */
    IO_CHAT_MISTRAL_V3_TEKKEN,
    IO_CHAT_MISTRAL_V7_TEKKEN,
    IO_CHAT_COUNT
};

/* The family of a Jinja template (or of a family's name), or -1 when llama.cpp would recognise
 * none or one not built in here (phi4, falcon3, vicuna, ...): the first marker llama.cpp tests
 * that matches decides, in llama.cpp's order. */
int io_chat_detect(const char *tmpl, size_t len);
/* A family by llama.cpp's name for it ("chatml", "llama2", "llama2-sys", "llama2-sys-bos",
 * "llama2-sys-strip", "llama3", "gemma", "mistral-v1", "mistral-v3", "mistral-v3-tekken",
 * "mistral-v7", "mistral-v7-tekken", "phi3", "zephyr"), or -1. */
int io_chat_by_name(const char *name);
const char *io_chat_name(int family);
/* "chatml, llama2, ..." for messages naming the choices. */
const char *io_chat_names(void);

/* Renders msgs with family: *out malloc'd (NUL-terminated, *len bytes). Returns 0, LANES_ENOMEM,
 * or LANES_EINVAL (with *why set to a static message) for a message list the family cannot express:
 * none, or a role other than system, user and assistant. */
int io_chat_render(int family, const oai_msg_t *msgs, int n, char **out, size_t *len,
                   const char **why);

#endif
