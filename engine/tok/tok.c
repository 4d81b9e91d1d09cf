#include "tok.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_file.h"
#include "base/lanes_log.h"
#include "base/lanes_rand.h"
#include "tok_internal.h"

/* Limits that keep a hostile file from making us allocate or loop without bound. Real files:
 * max_token_length 7..27 (Llama-3 style vocabularies reach a few hundred), vocab 512..128k. */
#define TOK_MAX_PIECE 4096
#define TOK_MAX_VOCAB (1 << 22)
#define TOK_MIN_VOCAB 259            /* <unk>, <s>, </s> and the 256 byte-fallback ids */
#define TOK_MAX_TEXT (1u << 28)      /* encode input; keeps symbol counts inside int32 */
#define TOK_MAX_FILE ((size_t)1 << 30)
#define TOK_NO_MERGE (-1e10f)        /* run.c starts its best score here: lower never merges */

/* ---- piece index ----------------------------------------------------------------------------- */

static size_t piece_len(const eng_tok_t *t, int id) { return t->off[id + 1] - t->off[id]; }
static const char *piece(const eng_tok_t *t, int id) { return t->bytes + t->off[id]; }

/* The id of the piece equal to a[0..na) followed by b[0..nb), or -1. */
static int lookup2(const eng_tok_t *t, const char *a, size_t na, const char *b, size_t nb) {
    if (na + nb > (size_t)t->max_piece) return -1;
    return eng__strmap_get2(t->index, a, na, b, nb);
}

static void finish_index(eng_tok_t *t) {
    t->space_id = lookup2(t, " ", 1, "", 0);
    for (int b = 0; b < 256; b++) t->byte_val[b] = (unsigned char)b;
}

/* In id order, so that of duplicate pieces the lowest id stays (the map keeps the first): run.c's
 * bsearch would pick one arbitrarily. */
int eng__tok_index(eng_tok_t *t, int *dup) {
    int rc = eng__strmap_create((size_t)t->vocab_size, &t->index);
    if (rc < 0) return rc;
    if (dup) *dup = -1;
    for (int id = 0; id < t->vocab_size; id++) {
        size_t len = piece_len(t, id);
        rc = eng__strmap_put2(t->index, piece(t, id), len, NULL, 0, id, NULL);
        if (rc < 0) return rc;
        if (rc == 0 && dup && *dup < 0 && len > 0) *dup = id;
    }
    finish_index(t);
    return LANES_OK;
}

int eng__tok_find(const eng_tok_t *t, const char *p, size_t n) { return lookup2(t, p, n, "", 0); }

eng_tok_t *eng__tok_alloc(int vocab_size, size_t nbytes) {
    eng_tok_t *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->vocab_size = vocab_size;
    t->bos = t->eos = t->unk = -1;
    t->scores = malloc((size_t)vocab_size * sizeof *t->scores);
    t->off = malloc(((size_t)vocab_size + 1) * sizeof *t->off);
    t->bytes = malloc(nbytes ? nbytes : 1);
    if (t->scores == NULL || t->off == NULL || t->bytes == NULL) {
        eng_tok_destroy(t);
        return NULL;
    }
    return t;
}

void eng_tok_destroy(eng_tok_t *t) {
    if (t == NULL) return;
    free(t->scores);
    free(t->off);
    free(t->bytes);
    eng__strmap_destroy(t->index);
    free(t->type);
    free(t->doff);
    free(t->dbytes);
    free(t->special);
    free(t->eog);
    eng__bpe_destroy(t->bpe);
    free(t);
}

int eng_tok_vocab_size(const eng_tok_t *t) { return t->vocab_size; }

int32_t eng_tok_bos(const eng_tok_t *t) { return t->kind == TOK_RUNC ? ENG_TOK_BOS : t->bos; }

int eng_tok_is_eog(const eng_tok_t *t, int32_t id) {
    if (t->kind == TOK_RUNC) return id == ENG_TOK_BOS;
    int lo = 0, hi = t->n_eog;       /* a handful of ids: sorted, so any count stays cheap */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (t->eog[mid] < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < t->n_eog && t->eog[lo] == id;
}

size_t eng_tok_max_text(const eng_tok_t *t) { return t->max_text; }

/* llama2.c: an id stands for its piece's bytes (a merge may spell out "<0xXX>", six bytes). */
static void runc_max_text(eng_tok_t *t) {
    t->max_text = 1;
    for (int id = 0; id < t->vocab_size; id++)
        if (piece_len(t, id) > t->max_text) t->max_text = piece_len(t, id);
}

/* ---- load / save ----------------------------------------------------------------------------- */

/* The format is run.c's fread of native ints and floats; every machine we target is little-endian,
 * and spelling the bytes out keeps the parser free of alignment and aliasing questions. */
static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void wr32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

/* Checks the whole layout before anything is copied: returns the total piece bytes or an error. */
static int check_layout(const char *path, const unsigned char *d, size_t size, int vocab_size,
                        size_t *nbytes) {
#define BAD(...)                                                                                  \
    do {                                                                                          \
        LANES_LOG(LANES_LOG_ERROR, __VA_ARGS__);                                                  \
        return LANES_ETOK;                                                                        \
    } while (0)
    if (size == 0) BAD("tok: %s: empty file", path);
    if (size < 4) BAD("tok: %s: truncated header (%zu bytes, need 4)", path, size);
    int32_t mtl = (int32_t)rd32(d);
    if (mtl < 1 || mtl > TOK_MAX_PIECE)
        BAD("tok: %s: max_token_length %d out of range [1, %d]", path, (int)mtl, TOK_MAX_PIECE);
    if (vocab_size < TOK_MIN_VOCAB || vocab_size > TOK_MAX_VOCAB)
        BAD("tok: %s: vocab_size %d out of range [%d, %d] (byte fallback needs ids 3..258)", path,
            vocab_size, TOK_MIN_VOCAB, TOK_MAX_VOCAB);
    size_t o = 4, total = 0;
    for (int i = 0; i < vocab_size; i++) {
        if (o == size) BAD("tok: %s: only %d pieces, expected %d", path, i, vocab_size);
        if (size - o < 8)
            BAD("tok: %s: piece %d: header truncated at offset %zu (file is %zu bytes)", path, i,
                o, size);
        int32_t len = (int32_t)rd32(d + o + 4);
        if (len < 0) BAD("tok: %s: piece %d: negative length %d", path, i, (int)len);
        if (len > mtl)
            BAD("tok: %s: piece %d: length %d exceeds max_token_length %d", path, i, (int)len,
                (int)mtl);
        o += 8;
        if ((size_t)len > size - o)
            BAD("tok: %s: piece %d: %d bytes at offset %zu run past the end (file is %zu bytes)",
                path, i, (int)len, o, size);
        o += (size_t)len;
        total += (size_t)len;
    }
    /* run.c ignores extra pieces; we refuse them because they almost always mean the tokenizer of
     * another model (tokenizer.bin next to a 512-vocab model loads "fine" and emits nonsense). */
    if (o != size)
        BAD("tok: %s: %zu trailing bytes after %d pieces (tokenizer of another model?)", path,
            size - o, vocab_size);
    *nbytes = total;
    return LANES_OK;
#undef BAD
}

int eng_tok_load(const char *path, int vocab_size, eng_tok_t **out) {
    char *text = NULL;
    eng_tok_t *t = NULL;
    size_t size = 0, nbytes = 0;
    int rc = lanes_read_file("tokenizer", path, TOK_MAX_FILE, &text, &size);
    if (rc < 0) return rc == LANES_ETOOLONG ? LANES_ETOK : rc;
    const unsigned char *d = (const unsigned char *)text;
    if ((rc = check_layout(path, d, size, vocab_size, &nbytes)) < 0) goto fail;
    rc = LANES_ENOMEM;
    if ((t = eng__tok_alloc(vocab_size, nbytes)) == NULL) goto fail;
    t->max_piece = (int)rd32(d);
    size_t o = 4, b = 0;
    for (int i = 0; i < vocab_size; i++) {
        uint32_t bits = rd32(d + o);
        size_t len = rd32(d + o + 4);
        memcpy(&t->scores[i], &bits, sizeof bits);   /* NaN and inf kept: run.c accepts them */
        memcpy(t->bytes + b, d + o + 8, len);
        t->off[i] = (uint32_t)b;
        o += 8 + len;
        b += len;
    }
    t->off[vocab_size] = (uint32_t)b;
    if ((rc = eng__tok_index(t, NULL)) < 0) goto fail;
    runc_max_text(t);
    if (t->space_id < 0) {
        LANES_LOG(LANES_LOG_ERROR, "tok: %s: no \" \" piece (needed for the dummy prefix)", path);
        rc = LANES_ETOK;
        goto fail;
    }
    free(text);
    *out = t;
    return LANES_OK;
fail:
    free(text);
    eng_tok_destroy(t);
    return rc;
}

int eng_tok_save(const eng_tok_t *t, const char *path) {
    if (t->kind != TOK_RUNC) return LANES_EINVAL;
    size_t size = 4 + 8 * (size_t)t->vocab_size + t->off[t->vocab_size];
    unsigned char *d = malloc(size);
    if (d == NULL) return LANES_ENOMEM;
    wr32(d, (uint32_t)t->max_piece);
    size_t o = 4;
    for (int i = 0; i < t->vocab_size; i++) {
        uint32_t bits, len = (uint32_t)piece_len(t, i);
        memcpy(&bits, &t->scores[i], sizeof bits);
        wr32(d + o, bits);
        wr32(d + o + 4, len);
        memcpy(d + o + 8, piece(t, i), len);
        o += 8 + len;
    }
    int rc = LANES_OK;
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(d, 1, size, f) != size) rc = LANES_EIO;
    if (f != NULL && fclose(f) != 0) rc = LANES_EIO;
    if (rc < 0) LANES_LOG(LANES_LOG_ERROR, "tok: %s: cannot write: %s", path, strerror(errno));
    free(d);
    return rc;
}

/* ---- synthetic tokenizer --------------------------------------------------------------------- */

#define SYNTH_MAX_PIECE 16
#define SYNTH_NCHARS 95              /* printable ASCII, " " first */

/* Appends a piece unless one has its bytes already: returns 1 when added, 0 when not, or
 * LANES_ENOMEM. The index grows with the pieces, so that merges stay unique. */
static int synth_add(eng_tok_t *t, int id, const char *p, size_t n, float score) {
    int rc = eng__strmap_put2(t->index, p, n, NULL, 0, id, NULL);
    if (rc <= 0) return rc;
    memcpy(t->bytes + t->off[id], p, n);
    t->off[id + 1] = t->off[id] + (uint32_t)n;
    t->scores[id] = score;
    if ((int)n > t->max_piece) t->max_piece = (int)n;
    return 1;
}

int eng_tok_synth(int vocab_size, uint64_t seed, eng_tok_t **out) {
    if (vocab_size < TOK_MIN_VOCAB + SYNTH_NCHARS || vocab_size > TOK_MAX_VOCAB)
        return LANES_EINVAL;
    eng_tok_t *t = eng__tok_alloc(vocab_size, (size_t)vocab_size * SYNTH_MAX_PIECE);
    if (t == NULL || eng__strmap_create((size_t)vocab_size, &t->index) < 0) {
        eng_tok_destroy(t);
        return LANES_ENOMEM;
    }
    /* Letters weighted roughly by English frequency, so merges look like word pieces. */
    static const char common[] = " eeeettaaoinshrdlucmfwypvbgk etaoinsh";
    char buf[SYNTH_MAX_PIECE + 8];
    int id = 0, rc = 0;
    t->off[0] = 0;
    t->max_piece = 1;
    static const char *const specials[] = {"<unk>", "\n<s>\n", "\n</s>\n"};
    for (int k = 0; k < 3 && rc >= 0; k++)
        rc = synth_add(t, id++, specials[k], strlen(specials[k]), 0.0f);
    for (int b = 0; b < 256 && rc >= 0; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        rc = synth_add(t, id++, buf, 6, 0.0f);
    }
    for (int c = 0; c < SYNTH_NCHARS && rc >= 0; c++) {
        buf[0] = (char)(' ' + c);
        rc = synth_add(t, id, buf, 1, -(float)(id - TOK_MIN_VOCAB));
        id++;
    }
    /* Merges, with scores falling as the id grows so older merges win. First the prefixes of some
     * common words (" t", " th", " the"), so ordinary text really merges even at vocab 512 ... */
    static const char *words[] = {
        " the", " a", " and", " to", " was", " he", " she", " it", " in", " on", " of", " is",
        " cat", " sat", " mat", " dog", " big", " little", " day", " once", " upon", " time",
        " there", " girl", " named", " Lily", " Ben", " park", " went", " said", " happy", " play",
        " with", " her", " his", " they", " The", " One", " Once", " Hello", " world", "ing", "ed",
        "er", "ly", "es", "en", "an", "th", "ou", "at", "or", "re", "st", "ll", "nd",
    };
    for (size_t w = 0; w < sizeof words / sizeof *words && rc >= 0; w++) {
        size_t n = strlen(words[w]);
        for (size_t k = 2; k <= n && id < vocab_size && rc >= 0; k++)
            if ((rc = synth_add(t, id, words[w], k, -(float)(id - TOK_MIN_VOCAB))) > 0) id++;
    }
    /* ... then random ones: an existing piece followed by a common letter or another piece,
     * unique and at most SYNTH_MAX_PIECE bytes. */
    int first_char = TOK_MIN_VOCAB;   /* the single characters */
    uint64_t s = seed;
    while (id < vocab_size && rc >= 0) {
        uint64_t r = lanes_splitmix64(&s);
        int a = first_char + (int)(r % (uint64_t)(id - first_char));
        int b = (r >> 32) % 4 != 0
                    ? first_char + (common[(r >> 40) % (sizeof common - 1)] - ' ')
                    : first_char + (int)((r >> 48) % (uint64_t)(id - first_char));
        size_t na = piece_len(t, a), nb = piece_len(t, b);
        if (na + nb > SYNTH_MAX_PIECE) continue;
        memcpy(buf, piece(t, a), na);
        memcpy(buf + na, piece(t, b), nb);
        if ((rc = synth_add(t, id, buf, na + nb, -(float)(id - TOK_MIN_VOCAB))) > 0) id++;
    }
    if (rc < 0) {
        eng_tok_destroy(t);
        return rc;
    }
    finish_index(t);
    runc_max_text(t);
    *out = t;
    return LANES_OK;
}

/* ---- encode / decode ------------------------------------------------------------------------- */

/* run.c rescans every adjacent pair after each merge: O(n^2) lookups, far too slow for 100 KB.
 * We keep the live symbols in a linked list and candidate merges in a max-heap ordered by (score,
 * left position); stale candidates are skipped when popped. Popping the best live candidate is
 * exactly run.c's choice (highest score, leftmost on ties), so the output is identical in
 * O(n log n). */
typedef struct {
    int32_t id, prev, next;          /* id -1: absorbed by its left neighbour */
} sym_t;

typedef struct {
    float score;
    int32_t left, right;             /* symbol indices; left < right in text order */
    int32_t lid, rid, id;            /* the ids it was made from and the merged id */
} cand_t;

static int cand_better(const cand_t *a, const cand_t *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(cand_t *h, int *n, cand_t c) {
    int i = (*n)++;
    while (i > 0 && cand_better(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static cand_t heap_pop(cand_t *h, int *n) {
    cand_t top = h[0], last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_better(&h[c + 1], &h[c])) c++;
        if (!cand_better(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* Queues the merge of symbols l and r if their concatenation is a piece run.c would merge to. */
static void try_pair(const eng_tok_t *t, const sym_t *s, int l, int r, cand_t *h, int *nh) {
    if (l < 0 || r < 0) return;
    int a = s[l].id, b = s[r].id;
    int id = lookup2(t, piece(t, a), piece_len(t, a), piece(t, b), piece_len(t, b));
    /* Also drops NaN scores: run.c's `score > best` is false for them too. */
    if (id < 0 || !(t->scores[id] > TOK_NO_MERGE)) return;
    heap_push(h, nh, (cand_t){t->scores[id], l, r, a, b, id});
}

/* run.c's encode: BOS (if bos), the dummy prefix, then the merges. */
static int runc_encode(const eng_tok_t *t, const char *text, size_t len, int bos, int32_t *ids,
                       int max_ids) {
    /* At most one symbol per byte, plus BOS and the dummy prefix; merges only remove symbols. */
    int cap = (int)len + 2, ns = 0, nh = 0;
    sym_t *s = malloc((size_t)cap * sizeof *s + 3 * (size_t)cap * sizeof(cand_t));
    if (s == NULL) return LANES_ENOMEM;
    cand_t *h = (cand_t *)(s + cap);

    /* run.c merges across BOS as well, so it is an ordinary symbol here. */
    if (bos) s[ns++].id = ENG_TOK_BOS;
    if (len > 0) s[ns++].id = t->space_id;
    /* A group is a byte plus the continuation bytes after it, at most 4 in all, whether or not
     * that is valid UTF-8: run.c's loop reduces to this. NUL is an ordinary byte here (run.c
     * would stop at it). */
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && j - i < 4 && ((unsigned char)text[j] & 0xC0) == 0x80) j++;
        int id = lookup2(t, text + i, j - i, "", 0);
        if (id >= 0) {
            s[ns++].id = id;
        } else {
            for (size_t k = i; k < j; k++) s[ns++].id = (unsigned char)text[k] + 3;
        }
        i = j;
    }
    for (int i = 0; i < ns; i++) {
        s[i].prev = i - 1;
        s[i].next = i + 1 < ns ? i + 1 : -1;
    }
    for (int i = 0; i + 1 < ns; i++) try_pair(t, s, i, i + 1, h, &nh);

    int live = ns;
    while (nh > 0) {
        cand_t c = heap_pop(h, &nh);
        if (s[c.left].id != c.lid || s[c.right].id != c.rid || s[c.left].next != c.right)
            continue;                                /* a neighbour changed since it was queued */
        int l = c.left, r = c.right, rn = s[r].next;
        s[l].id = c.id;
        s[l].next = rn;
        if (rn >= 0) s[rn].prev = l;
        s[r].id = -1;
        live--;
        try_pair(t, s, s[l].prev, l, h, &nh);
        try_pair(t, s, l, rn, h, &nh);
    }

    int n = live;
    if (n > max_ids) {
        free(s);
        return LANES_ETOOLONG;
    }
    int k = 0;
    for (int i = ns > 0 ? 0 : -1; i >= 0; i = s[i].next) ids[k++] = s[i].id;
    free(s);
    return n;
}


/* ---- SentencePiece, as llama.cpp's llm_tokenizer_spm ----------------------------------------- */

/* Its symbols are spans of the escaped text, one UTF-8 character each to start (the length from
 * the lead byte alone, cut at the end), and a pair merges when the text of both is a token of any
 * type or score. Same heap as run.c's loop: llama.cpp also takes the highest score, leftmost on
 * ties. */
typedef struct {
    int32_t start, n, prev, next;    /* n 0: absorbed by its left neighbour */
} span_t;

#define SPM_SPACE "\xe2\x96\x81"     /* U+2581, which SentencePiece pieces use for a space */

static size_t utf8_len(unsigned char c) {
    static const unsigned char len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len[c >> 4];
}

/* The ids written so far; counting goes on past max so the caller learns it did not fit. */
typedef struct {
    int32_t *ids;
    int n, max;
} out_t;

static void put(out_t *o, int32_t id) {
    if (o->n < o->max) o->ids[o->n] = id;
    o->n++;
}

/* Candidates record the two spans' lengths: llama.cpp skips a pair whose sizes changed. */
static void spm_pair(const eng_tok_t *t, const char *e, const span_t *s, int l, int r, cand_t *h,
                     int *nh) {
    if (l < 0 || r < 0) return;
    int id = lookup2(t, e + s[l].start, (size_t)(s[l].n + s[r].n), "", 0);
    if (id >= 0) heap_push(h, nh, (cand_t){t->scores[id], l, r, s[l].n, s[r].n, id});
}

typedef struct {
    char *e;                         /* (3 * (len + 1),) the escaped fragment */
    span_t *s;                       /* (len + 1,) */
    cand_t *h;                       /* (3 * (len + 1),) */
} spm_scratch_t;

/* One text fragment: the prefix space if asked, spaces as U+2581, then the merges; a final span
 * that is no token becomes its bytes' fallback ids. */
static void spm_fragment(const eng_tok_t *t, const char *text, size_t len, int prefix,
                         const spm_scratch_t *w, out_t *o) {
    char *e = w->e;
    span_t *s = w->s;
    size_t m = 0;
    if (prefix) memcpy(e, SPM_SPACE, 3), m = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(e + m, SPM_SPACE, 3), m += 3;
        else e[m++] = text[i];
    }
    int ns = 0, nh = 0;
    for (size_t i = 0; i < m; ns++) {
        size_t n = utf8_len((unsigned char)e[i]);
        if (n > m - i) n = m - i;
        s[ns] = (span_t){(int32_t)i, (int32_t)n, ns - 1, i + n < m ? ns + 1 : -1};
        i += n;
    }
    for (int i = 0; i + 1 < ns; i++) spm_pair(t, e, s, i, i + 1, w->h, &nh);
    while (nh > 0) {
        cand_t c = heap_pop(w->h, &nh);
        span_t *l = &s[c.left], *r = &s[c.right];
        if (l->n == 0 || r->n == 0 || l->n != c.lid || r->n != c.rid) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = c.left;
        spm_pair(t, e, s, l->prev, c.left, w->h, &nh);
        spm_pair(t, e, s, c.left, l->next, w->h, &nh);
    }
    for (int i = ns > 0 ? 0 : -1; i >= 0; i = s[i].next) {
        int id = lookup2(t, e + s[i].start, (size_t)s[i].n, "", 0);
        if (id >= 0) {
            put(o, id);
            continue;
        }
        for (int k = 0; k < s[i].n; k++) {
            int32_t b = t->byte_tok[(unsigned char)e[s[i].start + k]];
            if (b >= 0) put(o, b);           /* no byte piece and no <unk>: llama.cpp throws */
        }
    }
}

/* ---- special tokens in the text, as llama.cpp's tokenizer_st_partition ----------------------- */

typedef struct {
    size_t start, len;
    int32_t id;                      /* >= 0: that special token; -1: text[start .. start + len) */
} frag_t;

typedef struct {
    frag_t *v;
    int n, cap;
} frags_t;

static int frag_add(frags_t *f, size_t start, size_t len, int32_t id) {
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 16;
        frag_t *v = realloc(f->v, (size_t)cap * sizeof *v);
        if (v == NULL) return LANES_ENOMEM;
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = (frag_t){start, len, id};
    return LANES_OK;
}

/* Each special token in turn, longest first, splits every text fragment at each of its
 * occurrences (leftmost first, not overlapping). Without parse, only user-defined tokens do. */
static int partition(const eng_tok_t *t, const char *text, size_t len, int parse, frags_t *out) {
    frags_t a = {0}, b = {0};
    int rc = len > 0 ? frag_add(&a, 0, len, -1) : LANES_OK;
    for (int k = 0; k < t->n_special && rc == LANES_OK; k++) {
        int32_t id = t->special[k];
        const char *p = piece(t, id);
        size_t n = piece_len(t, id);
        if ((!parse && t->type[id] != TOK_T_USER_DEFINED) || n == 0 || n > len ||
            memmem(text, len, p, n) == NULL)
            continue;                            /* the common case: no copy of the list */
        b.n = 0;
        for (int i = 0; i < a.n && rc == LANES_OK; i++) {
            frag_t f = a.v[i];
            const char *at;
            while (f.id < 0 && f.len >= n && (at = memmem(text + f.start, f.len, p, n)) != NULL) {
                size_t left = (size_t)(at - text) - f.start;
                if (left > 0 && (rc = frag_add(&b, f.start, left, -1)) < 0) break;
                if ((rc = frag_add(&b, 0, 0, id)) < 0) break;
                f.start += left + n;
                f.len -= left + n;
            }
            if (rc == LANES_OK && (f.id >= 0 || f.len > 0)) rc = frag_add(&b, f.start, f.len, f.id);
        }
        frags_t x = a;
        a = b;
        b = x;
    }
    free(b.v);
    if (rc < 0) free(a.v);
    else *out = a;
    return rc;
}

/* llama_tokenize: BOS, the fragments (SentencePiece puts a prefix space before the first text
 * and each text after a special token), EOS. */
static int gguf_encode(const eng_tok_t *t, const char *text, size_t len, int flags, int32_t *ids,
                       int max_ids) {
    frags_t f = {0};
    int rc = partition(t, text, len, flags & ENG_TOK_PARSE_SPECIAL, &f);
    if (rc < 0) return rc;
    out_t o = {ids, 0, max_ids};
    int add = flags & ENG_TOK_ADD_SPECIAL;
    if (add && t->add_bos) put(&o, t->bos);
    if (t->kind == TOK_SPM) {
        size_t cap = len + 1;
        spm_scratch_t w = {malloc(3 * cap), malloc(cap * sizeof(span_t)),
                           malloc(3 * cap * sizeof(cand_t))};
        if (w.e == NULL || w.s == NULL || w.h == NULL) rc = LANES_ENOMEM;
        int prev_special = 1;
        for (int i = 0; i < f.n && rc == LANES_OK; i++) {
            if (f.v[i].id >= 0) {
                put(&o, f.v[i].id);
            } else {
                spm_fragment(t, text + f.v[i].start, f.v[i].len,
                             t->add_space_prefix && prev_special, &w, &o);
            }
            prev_special = f.v[i].id >= 0;
        }
        free(w.e);
        free(w.s);
        free(w.h);
    } else {
        for (int i = 0; i < f.n && rc == LANES_OK; i++) {
            if (f.v[i].id >= 0) {
                put(&o, f.v[i].id);
            } else if (o.n > o.max) {
                rc = LANES_ETOOLONG;
            } else {
                int k = eng__bpe_encode(t->bpe, text + f.v[i].start, f.v[i].len, ids + o.n,
                                        o.max - o.n);
                if (k < 0) rc = k;
                else o.n += k;
            }
        }
    }
    free(f.v);
    if (rc < 0) return rc;
    if (add && t->add_eos) put(&o, t->eos);
    return o.n > max_ids ? LANES_ETOOLONG : o.n;
}

int eng_tok_encode(const eng_tok_t *t, const char *text, size_t len, int flags, int32_t *ids,
                   int max_ids) {
    if (t == NULL || (text == NULL && len > 0) || max_ids < 0) return LANES_EINVAL;
    if (len > TOK_MAX_TEXT) return LANES_ETOOLONG;
    if (t->kind == TOK_RUNC)
        return runc_encode(t, text, len, flags & ENG_TOK_ADD_SPECIAL, ids, max_ids);
    return gguf_encode(t, text, len, flags, ids, max_ids);
}

int eng_tok_words(const eng_tok_t *t, const char *text, size_t len,
                  void (*word)(void *arg, const char *start, size_t n), void *arg) {
    if (t->kind == TOK_BPE) return eng__bpe_words(t->bpe, text, len, word, arg);
    if (len > 0) word(arg, text, len);
    return LANES_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* run.c uses sscanf("<0x%02hhX>"), which also takes oddities like "<0x4>" or "<0x41>junk"; only
 * the exact six-byte form is a byte piece here (real vocabularies have no others). */
int eng__tok_byte_piece(const char *p, size_t n) {
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return -1;
    int hi = hexval(p[3]), lo = hexval(p[4]);
    return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

const char *eng_tok_decode(const eng_tok_t *t, int32_t prev, int32_t tok, size_t *len) {
    if (t == NULL || tok < 0 || tok >= t->vocab_size) {
        *len = 0;
        return "";
    }
    if (t->kind != TOK_RUNC) {                   /* decoded once, at load */
        *len = t->doff[tok + 1] - t->doff[tok];
        return t->dbytes + t->doff[tok];
    }
    const char *p = piece(t, tok);
    size_t n = piece_len(t, tok);
    if (prev == ENG_TOK_BOS && n > 0 && p[0] == ' ') p++, n--;
    int b = eng__tok_byte_piece(p, n);
    if (b >= 0) {
        *len = 1;
        return (const char *)&t->byte_val[b];
    }
    *len = n;
    return p;
}
