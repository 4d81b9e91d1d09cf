#include "tok/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"

/* One slot. len == UINT32_MAX marks an empty slot (keys are shorter than that). */
typedef struct {
    uint64_t hash;
    size_t off;     /* of the key in the arena */
    uint32_t len;
    int32_t val;
} slot_t;

struct eng_strmap {
    slot_t *slots;  /* owned; cap entries, a power of two, at most half full */
    size_t cap, count;
    char *arena;    /* owned; every key, back to back */
    size_t arena_len, arena_cap;
};

#define EMPTY UINT32_MAX

static uint64_t fnv1a(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t hash2(const char *a, size_t alen, const char *b, size_t blen) {
    return fnv1a(fnv1a(0xcbf29ce484222325ull, a, alen), b, blen);
}

static int key_eq(const eng_strmap_t *m, const slot_t *s, const char *a, size_t alen,
                  const char *b, size_t blen) {
    const char *k = m->arena + s->off;
    return s->len == alen + blen && (alen == 0 || memcmp(k, a, alen) == 0) &&
           (blen == 0 || memcmp(k + alen, b, blen) == 0);
}

static int alloc_slots(size_t cap, slot_t **out) {
    slot_t *s = malloc(cap * sizeof *s);
    if (s == NULL) return LANES_ENOMEM;
    for (size_t i = 0; i < cap; i++) s[i].len = EMPTY;
    *out = s;
    return LANES_OK;
}

int eng__strmap_create(size_t n_hint, eng_strmap_t **out) {
    eng_strmap_t *m = calloc(1, sizeof *m);
    if (m == NULL) return LANES_ENOMEM;
    m->cap = 16;
    while (m->cap < 2 * n_hint && m->cap < ((size_t)1 << 40)) m->cap *= 2;
    m->arena_cap = 4096;
    if (alloc_slots(m->cap, &m->slots) < 0 || (m->arena = malloc(m->arena_cap)) == NULL) {
        eng__strmap_destroy(m);
        return LANES_ENOMEM;
    }
    *out = m;
    return LANES_OK;
}

void eng__strmap_destroy(eng_strmap_t *m) {
    if (m == NULL) return;
    free(m->slots);
    free(m->arena);
    free(m);
}

static slot_t *probe(const eng_strmap_t *m, uint64_t h, const char *a, size_t alen, const char *b,
                     size_t blen) {
    for (size_t i = (size_t)h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        slot_t *s = &m->slots[i];
        if (s->len == EMPTY || (s->hash == h && key_eq(m, s, a, alen, b, blen))) return s;
    }
}

static int grow(eng_strmap_t *m) {
    if (m->cap > SIZE_MAX / 2 / sizeof(slot_t)) return LANES_ENOMEM;
    size_t cap = m->cap * 2;
    slot_t *s;
    if (alloc_slots(cap, &s) < 0) return LANES_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].len == EMPTY) continue;
        size_t j = (size_t)m->slots[i].hash & (cap - 1);
        while (s[j].len != EMPTY) j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return LANES_OK;
}

int eng__strmap_put2(eng_strmap_t *m, const char *a, size_t alen, const char *b, size_t blen,
                     int32_t val, int32_t *old) {
    if (alen >= EMPTY || blen >= EMPTY - alen) return LANES_ETOOLONG;
    uint64_t h = hash2(a, alen, b, blen);
    slot_t *s = probe(m, h, a, alen, b, blen);
    if (s->len != EMPTY) {
        if (old) *old = s->val;
        return 0;
    }
    size_t len = alen + blen;
    if (m->arena_cap - m->arena_len < len) {
        size_t cap = m->arena_cap;
        while (cap - m->arena_len < len) {
            if (cap > SIZE_MAX / 2) return LANES_ENOMEM;
            cap *= 2;
        }
        char *p = realloc(m->arena, cap);
        if (p == NULL) return LANES_ENOMEM;
        m->arena = p;
        m->arena_cap = cap;
    }
    if (2 * (m->count + 1) > m->cap) {
        if (grow(m) < 0) return LANES_ENOMEM;
        s = probe(m, h, a, alen, b, blen);
    }
    if (alen) memcpy(m->arena + m->arena_len, a, alen);
    if (blen) memcpy(m->arena + m->arena_len + alen, b, blen);
    *s = (slot_t){.hash = h, .off = m->arena_len, .len = (uint32_t)len, .val = val};
    m->arena_len += len;
    m->count++;
    return 1;
}

int32_t eng__strmap_get2(const eng_strmap_t *m, const char *a, size_t alen, const char *b,
                         size_t blen) {
    if (alen >= EMPTY || blen >= EMPTY - alen) return -1;
    const slot_t *s = probe(m, hash2(a, alen, b, blen), a, alen, b, blen);
    return s->len == EMPTY ? -1 : s->val;
}

size_t eng__strmap_count(const eng_strmap_t *m) {
    return m->count;
}
