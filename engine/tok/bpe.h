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
 * (tokenizer.ggml.pre; "default" or an absent key behaves as llama.cpp's default). Copies what it
 * keeps: the inputs may be freed afterwards. An unknown pre-tokenizer, a malformed merge or token
 * logs one line naming path and the problem and returns LANES_ETOK. */
int eng__bpe_create(const eng_bpe_str_t *tokens, int n_tokens, const eng_bpe_str_t *merges,
                    int n_merges, const char *pre, size_t pre_len, const char *path,
                    eng_bpe_t **out);
void eng__bpe_destroy(eng_bpe_t *b);   /* NULL is fine */

/* Encodes text[0..len) (no special-token parsing: that is tok.c's) as llama.cpp's
 * llm_tokenizer_bpe does: the pre-tokenizer split, then per word the byte-to-unicode map and
 * merges by rank (a word that is a token is that token). Writes at most max_ids ids; returns the
 * count, LANES_ETOOLONG if they do not fit, LANES_ENOMEM. Any thread. */
int eng__bpe_encode(const eng_bpe_t *b, const char *text, size_t len, int32_t *ids, int max_ids);

/* The pre-tokenizer split of text: calls word(arg, start, len) for each word in order, as byte
 * ranges of text. Returns 0 or LANES_ENOMEM. */
int eng__bpe_words(const eng_bpe_t *b, const char *text, size_t len,
                   void (*word)(void *arg, const char *start, size_t len), void *arg);

/* The raw bytes of token id (the byte-to-unicode map undone; a string that is not in that map's
 * image, such as an added token's text, as stored). Borrows: valid as long as b. */
const char *eng__bpe_piece(const eng_bpe_t *b, int32_t id, size_t *len);

#endif
