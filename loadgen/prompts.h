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
void lg_prompts_fini(lg_prompts_t *p);           /* zeroed or half-built is fine */

#endif
