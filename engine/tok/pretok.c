#include "tok/pretok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <limits.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_utf8.h"

/* The regexes below are llama.cpp's (src/llama-vocab.cpp, llm_tokenizer_bpe; quoted with line
 * numbers in shared/models/gguf/vocab/README.md), rewritten so that PCRE2 (UTF + UCP) finds the
 * words llama.cpp finds. llama.cpp runs them three ways: hand-written splitters for the gpt2,
 * llama3, qwen2 and qwen35 lists, std::regex on a text whose non-ASCII code points are collapsed
 * to one byte per category for any other regex with \p{..}, and std::wregex for the rest. The
 * rewrites keep each one's meaning:
 * - \s is llama.cpp's whitespace set, Unicode White_Space (WS below), not PCRE2's \s, which also
 *   takes U+180E;
 * - (?=[\p{L}])([^a-z]) (a letter other than a-z) is the class [^\P{L}a-z]: no group to repeat;
 * - in the collapsed text "~" is neither \p{P} nor \p{S} (llama.cpp's ASCII lists leave it out);
 * - std::wregex sees every non-ASCII whitespace as U+000B, so no class of literal ranges takes one;
 * - ECMAScript's $ is the end of the piece only (PCRE2_DOLLAR_ENDONLY).
 * Groups repeated over long runs are possessive, so matching needs no stack per character. */
#define WS "\\t\\n\\x0b\\f\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}" \
           "\\x{205f}\\x{3000}"
#define S "[" WS "]"
#define NOT_S "[^" WS "]"
#define CONTRACTIONS_CI "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define SPACE_RUNS S "*[\\r\\n]+|" S "+(?!" NOT_S ")|" S "+"

/* llama.cpp's custom gpt2 splitter also takes a lone \s (its regex leaves that as an unmatched
 * piece, which is the same word). */
#define RE_GPT2 \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" S "+(?!" NOT_S ")|" S "+"
#define RE_LLAMA3_LIKE(digits) \
    CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" digits "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|" \
    SPACE_RUNS
#define RE_QWEN35 \
    CONTRACTIONS_CI "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^" WS \
    "\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|" SPACE_RUNS
/* A run of upper case letters then lower case ones, or the reverse (a non-ASCII letter is both). */
#define CASED_WORD(tail)                                                                          \
    "[^\\r\\n\\p{L}\\p{N}]?[^\\P{L}a-z]*[^\\P{L}A-Z]+" tail                                        \
    "|[^\\r\\n\\p{L}\\p{N}]?[^\\P{L}a-z]+[^\\P{L}A-Z]*" tail
#define RE_TEKKEN \
    CASED_WORD("") "|\\p{N}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|" SPACE_RUNS
#define RE_GPT4O \
    CASED_WORD(CONTRACTIONS_CI "?") "|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n/]*|" SPACE_RUNS
/* deepseek's CJK classes: the literal ranges less the whitespace inside them. */
#define CJK_DEEPSEEK "(?:(?!" S ")[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}])++"
#define LETTERS_DEEPSEEK_LLM                                                                      \
    "[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}\\x{1c4}-\\x{293}"   \
    "\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}\\x{37f}\\x{386}"              \
    "\\x{388}-\\x{38a}\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}\\x{3f7}-\\x{481}\\x{48a}-\\x{52f}"    \
    "\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}\\x{13a0}-\\x{13f5}\\x{13f8}-\\x{13fd}\\x{1c90}-\\x{1cba}"    \
    "\\x{1cbd}-\\x{1cbf}\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}"  \
    "\\x{1f18}-\\x{1f1d}\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-\\x{1f57}\\x{1f59}\\x{1f5b}"  \
    "\\x{1f5d}\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-\\x{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}"  \
    "\\x{1fc6}-\\x{1fcc}\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1fdb}\\x{1fe0}-\\x{1fec}\\x{1ff2}-\\x{1ff4}"  \
    "\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}\\x{210a}-\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}"    \
    "\\x{2126}\\x{2128}\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}\\x{2139}\\x{213c}-\\x{213f}"             \
    "\\x{2145}-\\x{2149}\\x{214e}\\x{2183}\\x{2184}\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}"             \
    "\\x{2ceb}-\\x{2cee}\\x{2cf2}\\x{2cf3}\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}"   \
    "\\x{a771}-\\x{a787}\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}\\x{fb13}-\\x{fb17}"  \
    "\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}\\x{104b0}-\\x{104d3}"                \
    "\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}\\x{118a0}-\\x{118df}"            \
    "\\x{1e900}-\\x{1e943}]"
/* \p{P} and \p{S} as the collapsed text has them: "~" in neither. */
#define PUNCT_SYM_NO_TILDE "(?:(?!~)[\\p{P}\\p{S}])"

#define MAX_RE 6

static const char *const GPT2[] = {RE_GPT2, NULL};
static const char *const LLAMA3[] = {RE_LLAMA3_LIKE("\\p{N}{1,3}"), NULL};
static const char *const QWEN2[] = {RE_LLAMA3_LIKE("\\p{N}"), NULL};
static const char *const QWEN35[] = {RE_QWEN35, NULL};
static const char *const TEKKEN[] = {RE_TEKKEN, NULL};
static const char *const GPT4O[] = {RE_GPT4O, NULL};
static const char *const STARCODER[] = {"\\p{N}", RE_GPT2, NULL};
static const char *const FALCON[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]", NULL};
static const char *const DEEPSEEK_LLM[] = {
    "[\\r\\n]",
    S "?" LETTERS_DEEPSEEK_LLM "+",
    S "?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}\\x{3001}-\\x{3002}]+",
    S "+$",
    CJK_DEEPSEEK,
    "\\p{N}+",
    NULL};
static const char *const DEEPSEEK_CODER[] = {
    "[\\r\\n]", S "?\\p{L}+", S "?\\p{P}+", CJK_DEEPSEEK, "\\p{N}", NULL};
static const char *const DEEPSEEK_V3[] = {
    "\\p{N}{1,3}",
    "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|(?:~|[^\\r\\n\\p{L}\\p{P}\\p{S}])?"
    "[\\p{L}\\p{M}]+| ?" PUNCT_SYM_NO_TILDE "++[\\r\\n]*|" SPACE_RUNS,
    NULL};
static const char *const DEFAULT[] = {
    "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL};

/* tokenizer.ggml.pre names as llama.cpp matches them (llama_vocab::impl::load). */
static const struct {
    const char *name;
    const char *const *re;
    int ignore_merges;
} PRES[] = {
    {"default", DEFAULT, 0},          {"gpt-2", GPT2, 0},
    {"olmo", GPT2, 0},                {"llama-bpe", LLAMA3, 1},
    {"llama3", LLAMA3, 1},            {"llama-v3", LLAMA3, 1},
    {"falcon3", LLAMA3, 1},           {"falcon-h1", LLAMA3, 1},
    {"pixtral", LLAMA3, 1},           {"midm-2.0", LLAMA3, 1},
    {"lfm2", LLAMA3, 1},              {"qwen2", QWEN2, 0},
    {"qwen35", QWEN35, 0},            {"tekken", TEKKEN, 1},
    {"gpt-4o", GPT4O, 0},             {"smollm", STARCODER, 0},
    {"starcoder", STARCODER, 0},      {"falcon", FALCON, 0},
    {"deepseek-llm", DEEPSEEK_LLM, 0}, {"deepseek-coder", DEEPSEEK_CODER, 0},
    {"deepseek-v3", DEEPSEEK_V3, 0},
};

struct eng_pretok {
    pcre2_code *re[MAX_RE];   /* owned; n of them, applied in order */
    int n;
    int ignore_merges;
};

int eng__pretok_create(const char *name, size_t len, eng_pretok_t **out) {
    size_t k = 0;
    while (k < sizeof PRES / sizeof PRES[0] &&
           !(strlen(PRES[k].name) == len && memcmp(PRES[k].name, name, len) == 0))
        k++;
    if (k == sizeof PRES / sizeof PRES[0]) return LANES_ENOENT;
    eng_pretok_t *p = calloc(1, sizeof *p);
    if (p == NULL) return LANES_ENOMEM;
    p->ignore_merges = PRES[k].ignore_merges;
    for (const char *const *re = PRES[k].re; *re; re++) {
        int err;
        PCRE2_SIZE at;
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)*re, PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &at, NULL);
        /* The patterns are constants: only memory can make one fail to compile. */
        if (c == NULL) {
            eng__pretok_destroy(p);
            return LANES_ENOMEM;
        }
        p->re[p->n++] = c;
        (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);   /* without JIT: the interpreter */
    }
    *out = p;
    return LANES_OK;
}

void eng__pretok_destroy(eng_pretok_t *p) {
    if (p == NULL) return;
    for (int i = 0; i < p->n; i++) pcre2_code_free(p->re[i]);
    free(p);
}

int eng__pretok_ignore_merges(const eng_pretok_t *p) {
    return p->ignore_merges;
}

/* One code point as llama.cpp's unicode_cpts_from_utf8 reads it: a lead byte and the continuation
 * bytes it announces, with no check for overlong forms, surrogates or the U+10FFFF limit; any other
 * byte alone is U+FFFD. Returns the bytes taken and *cp. */
static size_t lenient_cpt(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned b = s[0];
    size_t len = b < 0x80 ? 1 : b < 0xc0 ? 0 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : b < 0xf8 ? 4 : 0;
    if (len == 0 || len > n) goto bad;
    uint32_t c = len == 1 ? b : b & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) goto bad;
        c = c << 6 | (s[i] & 0x3f);
    }
    *cp = c;
    return len;
bad:
    *cp = 0xfffd;
    return 1;
}

/* The well-formed UTF-8 PCRE2 gets for that code point: itself, or U+E000 (private use: neither
 * letter, number, mark, punctuation, symbol nor space, as llama.cpp's flags for a surrogate or a
 * value past U+10FFFF) when it has no UTF-8 form. Returns its length (1-4). */
static size_t clean_utf8(uint32_t c, unsigned char *o) {
    if (c > 0x10ffff || (c >= 0xd800 && c < 0xe000)) c = 0xe000;
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xc0 | c >> 6);
        o[1] = (unsigned char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xe0 | c >> 12);
        o[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | c >> 18);
    o[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (c & 0x3f));
    return 4;
}

static int is_utf8(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        size_t k = s[i] < 0x80 ? 1 : lanes_utf8_seq_len(s + i, n - i);
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

/* A growing array of word ends. */
typedef struct {
    size_t *v;
    size_t n, cap;
} ends_t;

static int push(ends_t *e, size_t end) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        if (cap > SIZE_MAX / sizeof *e->v) return LANES_ENOMEM;
        size_t *v = realloc(e->v, cap * sizeof *v);
        if (v == NULL) return LANES_ENOMEM;
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = end;
    return LANES_OK;
}

/* Splits each piece of in (ends into t[0..len)) by re into out, as std::regex_iterator over the
 * piece: each match is a word and so is each stretch between matches. */
static int split_by(const pcre2_code *re, pcre2_match_data *md, const unsigned char *t,
                    const ends_t *in, ends_t *out) {
    out->n = 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t start = 0;
    for (size_t w = 0; w < in->n; start = in->v[w++]) {
        size_t plen = in->v[w] - start, done = 0;
        const unsigned char *piece = t + start;
        while (done < plen) {
            int rc = pcre2_match(re, piece, plen, done, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc == PCRE2_ERROR_NOMEMORY) return LANES_ENOMEM;
            if (rc < 0) return LANES_ETOOLONG;   /* a match, depth or heap limit */
            size_t ms = ov[0], me = ov[1];
            if (me == ms) break;   /* none of the patterns matches empty text */
            if (ms > done && push(out, start + ms) < 0) return LANES_ENOMEM;
            if (push(out, start + me) < 0) return LANES_ENOMEM;
            done = me;
        }
        if (done < plen && push(out, start + plen) < 0) return LANES_ENOMEM;
    }
    return LANES_OK;
}

long eng__pretok_split(const eng_pretok_t *p, const char *text, size_t len, size_t **ends) {
    const unsigned char *src = (const unsigned char *)text;
    unsigned char *clean = NULL;
    size_t clen = len;
    ends_t a = {0}, b = {0};
    pcre2_match_data *md = NULL;
    long rc = LANES_ENOMEM;
    if (len > (size_t)LONG_MAX / 4) return LANES_ETOOLONG;
    /* PCRE2 matches only well-formed UTF-8, so other text goes through a copy in which every code
     * point is as llama.cpp decodes it; the ends found there are mapped back below. */
    if (!is_utf8(src, len)) {
        if ((clean = malloc(3 * len)) == NULL) goto out;
        clen = 0;
        for (size_t i = 0; i < len;) {
            uint32_t c;
            i += lenient_cpt(src + i, len - i, &c);
            clen += clean_utf8(c, clean + clen);
        }
    }
    const unsigned char *t = clean ? clean : src;
    if ((md = pcre2_match_data_create(1, NULL)) == NULL) goto out;
    if (clen > 0 && push(&a, clen) < 0) goto out;
    for (int r = 0; r < p->n; r++) {
        int e = split_by(p->re[r], md, t, &a, &b);
        if (e < 0) {
            rc = e;
            goto out;
        }
        ends_t tmp = a;
        a = b;
        b = tmp;
    }
    if (clean) {
        /* Walk both texts a code point at a time to turn each end in clean into one in text. */
        size_t i = 0, j = 0;
        unsigned char scratch[4];
        for (size_t w = 0; w < a.n; w++) {
            while (j < a.v[w]) {
                uint32_t c;
                i += lenient_cpt(src + i, len - i, &c);
                j += clean_utf8(c, scratch);
            }
            a.v[w] = i;
        }
    }
    *ends = a.v;
    a.v = NULL;
    rc = (long)a.n;
out:
    pcre2_match_data_free(md);
    free(clean);
    free(a.v);
    free(b.v);
    return rc;
}
