#ifndef ENG_TOK_H
#define ENG_TOK_H

#include <stddef.h>
#include <stdint.h>

/* llama2.c tokenizer: SentencePiece-style pieces with scores, greedy highest-score merges,
 * <0xXX> byte fallback. Read-only after load, so any thread may use it. */
typedef struct eng_tok eng_tok_t;

enum { ENG_TOK_BOS = 1, ENG_TOK_EOS = 2 };

/* Loads a llama2.c tokenizer.bin holding exactly vocab_size (>= 259) pieces, one of them " ". A bad
 * file (including trailing bytes after the last piece) logs one line naming the file and the
 * problem and returns LANES_ETOK (LANES_EIO when it cannot be opened or read). */
int eng_tok_load(const char *path, int vocab_size, eng_tok_t **out);

/* A deterministic valid tokenizer of vocab_size (>= 354) pieces: <unk>, <s>, </s>, the 256 byte
 * pieces, the 95 printable ASCII characters, then merges of them. Same bytes on every machine. */
int eng_tok_synth(int vocab_size, uint64_t seed, eng_tok_t **out);

int eng_tok_save(const eng_tok_t *t, const char *path);
void eng_tok_destroy(eng_tok_t *t);   /* NULL is fine */

int eng_tok_vocab_size(const eng_tok_t *t);

/* Encodes text[0..len) as the reference run.c does (dummy-prefix space for non-empty text); NUL is
 * an ordinary byte. Writes at most max_ids ids; returns the count, or LANES_ETOOLONG if they do not
 * fit (LANES_ENOMEM: no scratch). O(len log len), one allocation per call; any thread. */
int eng_tok_encode(const eng_tok_t *t, const char *text, size_t len, int bos, int eos, int32_t *ids,
                   int max_ids);

/* The bytes token tok stands for after prev: the leading space is dropped after BOS and <0xXX>
 * pieces become one raw byte. Borrows: the bytes live as long as t; *len gets their count. */
const char *eng_tok_decode(const eng_tok_t *t, int prev, int tok, size_t *len);

#endif
