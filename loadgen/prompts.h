#ifndef LG_PROMPTS_H
#define LG_PROMPTS_H

#include <stddef.h>

/* Prompts, each kept JSON-escaped (without quotes) so a request is one memcpy. */
typedef struct {
    char **esc;                                  /* owned: n escaped prompts */
    size_t *len;                                 /* owned: their lengths */
    int n;
} lg_prompts_t;

/* Loads one prompt per non-empty line of path, or the built-in list when path is NULL.
 * LANES_ENOENT (logged) when the file cannot be read, LANES_EINVAL when it has no prompt. */
int lg_prompts_load(lg_prompts_t *p, const char *path);
/* Builds 16 prompts of exactly n_words common English words ("the of and to ..."), each word one
 * token in the Llama 2 SentencePiece, llama3, GPT-2 and Qwen2 vocabularies; prompt k starts at
 * word k of the cycle, so no two share a first token (prefix caches stay out of the measurement). */
int lg_prompts_words(lg_prompts_t *p, int n_words);
void lg_prompts_fini(lg_prompts_t *p);           /* zeroed or half-built is fine */

/* Returns s[0..n) JSON-escaped without quotes (malloc'd, NUL-terminated, *out_len bytes), or NULL
 * when out of memory. */
char *lg_json_escape(const char *s, size_t n, size_t *out_len);

#endif
