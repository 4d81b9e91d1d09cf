#include "tok/bpe.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "tok/pretok.h"
#include "tok/strmap.h"

/* Every string that takes part in BPE (each token, each half and each result of a merge) is
 * interned once in syms: a token's symbol is its id (the last one, when two tokens share a text,
 * as llama.cpp's token_to_id), any other string gets an id from n_tokens up. A merge is then a
 * pair of symbol ids, so the merge loop never hashes or compares text. */
typedef struct {
    uint64_t key;      /* left symbol << 32 | right symbol; UINT64_MAX when the slot is empty */
    int32_t rank;      /* the merge's index in the file: lower merges first */
    int32_t result;    /* the symbol of left + right */
} pair_t;

struct eng_bpe {
    int n_tokens;
    eng_strmap_t *syms;     /* owned: byte-to-unicode text -> symbol id */
    pair_t *pairs;          /* owned: pair_cap slots, a power of two, at most half full */
    size_t pair_cap;
    int32_t byte_sym[256];  /* the symbol of each byte's one-character text, or -1 */
    char byte_enc[256][2];  /* GPT-2's bytes_to_unicode, as UTF-8 */
    uint8_t byte_enc_len[256];
    char *pieces;           /* owned: every token's raw bytes, back to back */
    size_t *piece_off;      /* owned: n_tokens + 1 offsets into pieces */
    eng_pretok_t *pre;      /* owned */
};

#define PAIR_EMPTY UINT64_MAX

static uint64_t pair_key(int32_t l, int32_t r) {
    return (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
}

static size_t pair_slot(const eng_bpe_t *b, uint64_t key) {
    size_t i = (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (b->pair_cap - 1);
    while (b->pairs[i].key != PAIR_EMPTY && b->pairs[i].key != key) i = (i + 1) & (b->pair_cap - 1);
    return i;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 for
 * U+0100.. in byte order. Fills byte_enc and returns the inverse for code points below 0x144. */
static void byte_map(eng_bpe_t *b, int16_t *inv) {
    int next = 256;
    for (int i = 0; i < 0x144; i++) inv[i] = -1;
    for (int c = 0; c < 256; c++) {
        int printable = (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae;
        int u = printable ? c : next++;
        inv[u] = (int16_t)c;
        if (u < 0x80) {
            b->byte_enc[c][0] = (char)u;
            b->byte_enc_len[c] = 1;
        } else {
            b->byte_enc[c][0] = (char)(0xc0 | u >> 6);
            b->byte_enc[c][1] = (char)(0x80 | (u & 0x3f));
            b->byte_enc_len[c] = 2;
        }
    }
}

/* The raw bytes of token text s: each character mapped back through bytes_to_unicode, or s as
 * it is when some character is not in that map's image (an added token such as "<|im_start|>" is,
 * a token with a raw space or past U+0143 is not). Writes at most len bytes to out. */
static size_t unmap_piece(const int16_t *inv, const char *s, size_t len, char *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        int c = -1;
        if (u[i] < 0x80) {
            c = inv[u[i]];
            i += 1;
        } else if (u[i] >= 0xc2 && u[i] <= 0xc5 && i + 1 < len && (u[i + 1] & 0xc0) == 0x80) {
            int cp = (u[i] & 0x1f) << 6 | (u[i + 1] & 0x3f);
            c = cp < 0x144 ? inv[cp] : -1;
            i += 2;
        }
        if (c < 0) {
            memcpy(out, s, len);
            return len;
        }
        out[n] = (char)c;
    }
    return n;
}

/* Printable ASCII of s for a log line, at most 60 characters. */
static const char *printable(const char *s, size_t len, char *buf) {
    size_t n = len < 60 ? len : 60;
    for (size_t i = 0; i < n; i++) buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    strcpy(buf + n, len > n ? "..." : "");
    return buf;
}

static int intern(eng_bpe_t *b, const char *s, size_t len, const char *s2, size_t len2,
                  int32_t *next, int32_t *id) {
    int rc = eng__strmap_put2(b->syms, s, len, s2, len2, *next, id);
    if (rc < 0) return rc;
    if (rc == 1) *id = (*next)++;
    return LANES_OK;
}

static int build_merges(eng_bpe_t *b, const eng_bpe_str_t *merges, int n_merges, const char *path) {
    b->pair_cap = 16;
    while (b->pair_cap < 2 * (size_t)n_merges) b->pair_cap *= 2;
    if ((b->pairs = malloc(b->pair_cap * sizeof *b->pairs)) == NULL) return LANES_ENOMEM;
    for (size_t i = 0; i < b->pair_cap; i++) b->pairs[i].key = PAIR_EMPTY;
    int32_t next = b->n_tokens;
    for (int i = 0; i < n_merges; i++) {
        const char *s = merges[i].s;
        size_t len = merges[i].len;
        /* As llama.cpp: the halves are split at the first space after the first byte. */
        const char *sp = len > 1 && s ? memchr(s + 1, ' ', len - 1) : NULL;
        if (sp == NULL) {
            char buf[64];
            LANES_LOG(LANES_LOG_ERROR, "bpe %s: merge %d \"%s\" is not two strings and a space "
                      "(tokenizer.ggml.merges)", path, i, s ? printable(s, len, buf) : "");
            return LANES_ETOK;
        }
        size_t ll = (size_t)(sp - s), rl = len - ll - 1;
        int32_t l, r, m;
        int rc;
        if ((rc = intern(b, s, ll, NULL, 0, &next, &l)) < 0 ||
            (rc = intern(b, sp + 1, rl, NULL, 0, &next, &r)) < 0 ||
            (rc = intern(b, s, ll, sp + 1, rl, &next, &m)) < 0)
            return rc == LANES_ETOOLONG ? LANES_ETOK : rc;
        size_t k = pair_slot(b, pair_key(l, r));
        if (b->pairs[k].key == PAIR_EMPTY)   /* a repeated pair keeps its first rank */
            b->pairs[k] = (pair_t){.key = pair_key(l, r), .rank = i, .result = m};
    }
    return LANES_OK;
}

int eng__bpe_create(const eng_bpe_str_t *tokens, int n_tokens, const eng_bpe_str_t *merges,
                    int n_merges, const char *pre, size_t pre_len, const char *path,
                    eng_bpe_t **out) {
    char buf[64];
    if (n_tokens <= 0 || n_merges < 0 || (int64_t)n_tokens + 3 * (int64_t)n_merges > INT32_MAX) {
        LANES_LOG(LANES_LOG_ERROR, "bpe %s: %d tokens and %d merges (tokenizer.ggml.tokens, "
                  "merges)", path, n_tokens, n_merges);
        return LANES_ETOK;
    }
    if (pre == NULL || pre_len == 0) {
        LANES_LOG(LANES_LOG_WARN, "bpe %s: no tokenizer.ggml.pre, so llama.cpp's default "
                  "pre-tokenizer", path);
        pre = "default";
        pre_len = strlen(pre);
    }
    eng_bpe_t *b = calloc(1, sizeof *b);
    if (b == NULL) return LANES_ENOMEM;
    b->n_tokens = n_tokens;
    int rc = eng__pretok_create(pre, pre_len, &b->pre);
    if (rc == LANES_ENOENT) {
        LANES_LOG(LANES_LOG_ERROR, "bpe %s: unknown pre-tokenizer \"%s\" (tokenizer.ggml.pre)",
                  path, printable(pre, pre_len, buf));
        rc = LANES_ETOK;
    }
    if (rc < 0) goto fail;
    rc = LANES_ENOMEM;
    if (eng__strmap_create((size_t)n_tokens + (size_t)n_merges / 8, &b->syms) < 0) goto fail;
    size_t total = 0;
    for (int i = 0; i < n_tokens; i++) {
        if (tokens[i].s == NULL && tokens[i].len > 0) {
            LANES_LOG(LANES_LOG_ERROR, "bpe %s: token %d has no text (tokenizer.ggml.tokens)",
                      path, i);
            rc = LANES_ETOK;
            goto fail;
        }
        total += tokens[i].len;
    }
    /* Backwards, so that of tokens with one text the last id stays. */
    for (int i = n_tokens - 1; i >= 0; i--) {
        int e = eng__strmap_put2(b->syms, tokens[i].s, tokens[i].len, NULL, 0, i, NULL);
        if (e < 0) {
            rc = e == LANES_ETOOLONG ? LANES_ETOK : e;
            goto fail;
        }
    }
    int16_t inv[0x144];
    byte_map(b, inv);
    for (int c = 0; c < 256; c++)
        b->byte_sym[c] = eng__strmap_get(b->syms, b->byte_enc[c], b->byte_enc_len[c]);
    b->pieces = malloc(total ? total : 1);
    b->piece_off = malloc(((size_t)n_tokens + 1) * sizeof *b->piece_off);
    if (b->pieces == NULL || b->piece_off == NULL) goto fail;
    b->piece_off[0] = 0;
    for (int i = 0; i < n_tokens; i++)
        b->piece_off[i + 1] = b->piece_off[i] + unmap_piece(inv, tokens[i].s, tokens[i].len,
                                                            b->pieces + b->piece_off[i]);
    if ((rc = build_merges(b, merges, n_merges, path)) < 0) goto fail;
    *out = b;
    return LANES_OK;
fail:
    eng__bpe_destroy(b);
    return rc;
}

void eng__bpe_destroy(eng_bpe_t *b) {
    if (b == NULL) return;
    eng__pretok_destroy(b->pre);
    eng__strmap_destroy(b->syms);
    free(b->pairs);
    free(b->pieces);
    free(b->piece_off);
    free(b);
}

const char *eng__bpe_piece(const eng_bpe_t *b, int32_t id, size_t *len) {
    if (id < 0 || id >= b->n_tokens) {
        *len = 0;
        return "";
    }
    *len = b->piece_off[id + 1] - b->piece_off[id];
    return b->pieces + b->piece_off[id];
}

int eng__bpe_words(const eng_bpe_t *b, const char *text, size_t len,
                   void (*word)(void *arg, const char *start, size_t len), void *arg) {
    size_t *ends = NULL;
    long n = eng__pretok_split(b->pre, text, len, &ends);
    if (n < 0) return (int)n;
    for (long i = 0, at = 0; i < n; at = (long)ends[i++]) word(arg, text + at, ends[i] - (size_t)at);
    free(ends);
    return LANES_OK;
}

/* The merge loop's state for one word of n bytes: symbols in a linked list and a binary heap of
 * candidate merges, lowest (rank, left position) on top, as llama.cpp's llm_bigram_bpe queue. */
typedef struct {
    int32_t sym, prev, next;
    uint32_t start, len;   /* the bytes of the word it covers; len 0 once merged away */
} symbol_t;

typedef struct {
    int32_t rank, left, right;
    int32_t lsym, rsym;    /* the symbols when queued: a merge whose sides changed is stale */
} cand_t;

typedef struct {
    symbol_t *syms;
    cand_t *heap;
    char *enc;             /* the word in byte-to-unicode text, for the ignore_merges lookup */
    size_t n_heap;
} scratch_t;

static int cand_less(const cand_t *a, const cand_t *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(scratch_t *w, cand_t c) {
    size_t i = w->n_heap++;
    while (i > 0 && cand_less(&c, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = c;
}

static cand_t heap_pop(scratch_t *w) {
    cand_t top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->n_heap) break;
        if (c + 1 < w->n_heap && cand_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->n_heap > 0) w->heap[i] = last;
    return top;
}

static void queue_pair(const eng_bpe_t *b, scratch_t *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0 || w->syms[l].sym < 0 || w->syms[r].sym < 0) return;
    const pair_t *p = &b->pairs[pair_slot(b, pair_key(w->syms[l].sym, w->syms[r].sym))];
    if (p->key == PAIR_EMPTY) return;
    heap_push(w, (cand_t){p->rank, l, r, w->syms[l].sym, w->syms[r].sym});
}

static int emit(int32_t id, int32_t *ids, int max_ids, int *n) {
    if (*n >= max_ids) return LANES_ETOOLONG;
    ids[(*n)++] = id;
    return LANES_OK;
}

/* Appends the tokens of word w[0..n) at ids[*count..]. */
static int encode_word(const eng_bpe_t *b, scratch_t *w, const unsigned char *s, size_t n,
                       int32_t *ids, int max_ids, int *count) {
    if (n == 0) return LANES_OK;
    if (eng__pretok_ignore_merges(b->pre)) {
        size_t el = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(w->enc + el, b->byte_enc[s[i]], b->byte_enc_len[s[i]]);
            el += b->byte_enc_len[s[i]];
        }
        int32_t id = eng__strmap_get(b->syms, w->enc, el);
        if (id >= 0 && id < b->n_tokens) return emit(id, ids, max_ids, count);
    }
    for (size_t i = 0; i < n; i++)
        w->syms[i] = (symbol_t){b->byte_sym[s[i]], (int32_t)i - 1,
                                i + 1 < n ? (int32_t)i + 1 : -1, (uint32_t)i, 1};
    w->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) queue_pair(b, w, (int32_t)i, (int32_t)i + 1);
    while (w->n_heap > 0) {
        cand_t c = heap_pop(w);
        symbol_t *l = &w->syms[c.left], *r = &w->syms[c.right];
        if (l->len == 0 || r->len == 0 || l->sym != c.lsym || r->sym != c.rsym) continue;
        l->sym = b->pairs[pair_slot(b, pair_key(c.lsym, c.rsym))].result;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) w->syms[r->next].prev = c.left;
        queue_pair(b, w, l->prev, c.left);
        queue_pair(b, w, c.left, l->next);
    }
    for (int32_t i = 0; i >= 0; i = w->syms[i].next) {
        const symbol_t *y = &w->syms[i];
        int rc;
        if (y->sym >= 0 && y->sym < b->n_tokens) {
            if ((rc = emit(y->sym, ids, max_ids, count)) < 0) return rc;
            continue;
        }
        /* Not a token: llama.cpp looks up each byte of the symbol's text as a one-byte token and
         * drops the bytes it does not find (with a vocabulary holding all 256 byte characters,
         * as every byte-level one does, this never happens). */
        for (uint32_t k = y->start; k < y->start + y->len; k++)
            for (int e = 0; e < b->byte_enc_len[s[k]]; e++) {
                int32_t id = eng__strmap_get(b->syms, &b->byte_enc[s[k]][e], 1);
                if (id >= 0 && id < b->n_tokens && (rc = emit(id, ids, max_ids, count)) < 0)
                    return rc;
            }
    }
    return LANES_OK;
}

int eng__bpe_encode(const eng_bpe_t *b, const char *text, size_t len, int32_t *ids, int max_ids) {
    size_t *ends = NULL;
    scratch_t w = {0};
    int count = 0;
    if (len > INT32_MAX) return LANES_ETOOLONG;
    long n = eng__pretok_split(b->pre, text, len, &ends);
    if (n < 0) return (int)n;
    size_t longest = 0;
    for (long i = 0; i < n; i++) {
        size_t l = ends[i] - (i ? ends[i - 1] : 0);
        if (l > longest) longest = l;
    }
    int rc = LANES_ENOMEM;
    /* Each merge queues at most two candidates: 3 n bounds the heap. */
    w.syms = malloc((longest ? longest : 1) * sizeof *w.syms);
    w.heap = malloc((3 * longest + 1) * sizeof *w.heap);
    w.enc = malloc(2 * longest + 1);
    if (w.syms == NULL || w.heap == NULL || w.enc == NULL) goto out;
    rc = LANES_OK;
    for (long i = 0; i < n && rc == LANES_OK; i++) {
        size_t at = i ? ends[i - 1] : 0;
        rc = encode_word(b, &w, (const unsigned char *)text + at, ends[i] - at, ids,
                         max_ids < 0 ? 0 : max_ids, &count);
    }
out:
    free(ends);
    free(w.syms);
    free(w.heap);
    free(w.enc);
    return rc < 0 ? rc : count;
}
