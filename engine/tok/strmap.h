#ifndef ENG_TOK_STRMAP_H
#define ENG_TOK_STRMAP_H

/* A map from byte strings to int32 values (token texts to ids), internal to engine/tok/: open
 * addressing over FNV-1a hashes, keys copied into one arena. A key may be given in two parts a, b
 * and is then the concatenation a+b, never built in memory: a lookup of two adjacent or separate
 * pieces costs no copy. Read-only use (get) is safe from any number of threads. */
#include <stddef.h>
#include <stdint.h>

typedef struct eng_strmap eng_strmap_t;

/* n_hint: the expected number of keys (the table grows past it). LANES_ENOMEM. */
int eng__strmap_create(size_t n_hint, eng_strmap_t **out);
void eng__strmap_destroy(eng_strmap_t *m);   /* NULL is fine */

/* Adds the key a[0..alen) + b[0..blen) with value val when absent and returns 1; when present,
 * leaves it, stores its value in *old (if old is not NULL) and returns 0. LANES_ENOMEM, or
 * LANES_ETOOLONG for a key of 4 GiB or more. b may be NULL when blen is 0. */
int eng__strmap_put2(eng_strmap_t *m, const char *a, size_t alen, const char *b, size_t blen,
                     int32_t val, int32_t *old);

/* The value of the key a+b, or -1 when absent. */
int32_t eng__strmap_get2(const eng_strmap_t *m, const char *a, size_t alen, const char *b,
                         size_t blen);

static inline int32_t eng__strmap_get(const eng_strmap_t *m, const char *s, size_t len) {
    return eng__strmap_get2(m, s, len, NULL, 0);
}

size_t eng__strmap_count(const eng_strmap_t *m);

#endif
