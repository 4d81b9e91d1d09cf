#ifndef ENG_TOK_BPE_H
#define ENG_TOK_BPE_H

/* Byte-level BPE (tokenizer.ggml.model = "gpt2"), internal to engine/tok/: tok.c owns the
 * vocabulary-wide parts (special tokens, BOS/EOS, EOG) and calls this for plain text. */
#include <stddef.h>
#include <stdint.h>

typedef struct eng_bpe eng_bpe_t;

/* A byte string that is not NUL-terminated (a GGUF string, borrowed). */
typedef struct {
    const char *s;
    size_t len;
} eng_bpe_str_t;

/* Builds a BPE tokenizer from n_tokens token strings (in the GPT-2 byte-to-unicode form, as the
 * file stores them), n_merges merge rules ("left right", rank = index) and the pre-tokenizer name
 * (tokenizer.ggml.pre; "default", or pre NULL / pre_len 0 for an absent key, is llama.cpp's
 * default, with a warning for the absent key). Copies what it keeps: the inputs may be freed
 * afterwards. An unknown pre-tokenizer, a merge with no space after its first byte, a token with
 * no text (s NULL, len > 0) or no tokens at all logs one line naming path and the problem and
 * returns LANES_ETOK; LANES_ENOMEM. */
int eng__bpe_create(const eng_bpe_str_t *tokens, int n_tokens, const eng_bpe_str_t *merges,
                    int n_merges, const char *pre, size_t pre_len, const char *path,
                    eng_bpe_t **out);
void eng__bpe_destroy(eng_bpe_t *b);   /* NULL is fine */

/* Encodes text[0..len) (no special-token parsing: that is tok.c's) as llama.cpp's
 * llm_tokenizer_bpe does: the pre-tokenizer split, then per word the byte-to-unicode map and
 * merges by rank (with ignore_merges, which llama-bpe and tekken set, a word that is a token is
 * that token). Bytes that are not UTF-8 split as llama.cpp's U+FFFD but stay as they are, so the
 * pieces of the ids give text back byte for byte. Writes at most max_ids ids; returns the count,
 * LANES_ETOOLONG if they do not fit (or text passes 2 GiB), LANES_ENOMEM. O(len log len); any
 * thread. */
int eng__bpe_encode(const eng_bpe_t *b, const char *text, size_t len, int32_t *ids, int max_ids);

/* The pre-tokenizer split of text: calls word(arg, start, len) for each word in order, as byte
 * ranges of text (none empty; together they are text). Returns 0 or LANES_ENOMEM
 * (LANES_ETOOLONG if PCRE2 hit its match limit, which these regexes do not reach). */
int eng__bpe_words(const eng_bpe_t *b, const char *text, size_t len,
                   void (*word)(void *arg, const char *start, size_t len), void *arg);

/* The raw bytes of token id (the byte-to-unicode map undone; a string that is not in that map's
 * image, such as an added token's text, as stored; "" for an id out of range). Borrows: valid as
 * long as b. */
const char *eng__bpe_piece(const eng_bpe_t *b, int32_t id, size_t *len);

#endif
