#ifndef ENG_TOK_H
#define ENG_TOK_H

#include <stddef.h>
#include <stdint.h>

/* A tokenizer: a llama2.c tokenizer.bin (run.c's merges), or the tokenizer.ggml.* metadata of a
 * GGUF file: SentencePiece ("llama", as llama.cpp's llm_tokenizer_spm) or byte-level BPE ("gpt2").
 * Read-only after load, so any thread may use it. */
typedef struct eng_tok eng_tok_t;
typedef struct eng_gguf eng_gguf_t;
typedef struct eng_gguf_writer eng_gguf_writer_t;

/* The fixed ids of llama2.c tokenizers (GGUF files name theirs: eng_tok_bos()). */
enum { ENG_TOK_BOS = 1, ENG_TOK_EOS = 2 };

/* Loads a llama2.c tokenizer.bin holding exactly vocab_size (>= 259) pieces, one of them " ". A bad
 * file (including trailing bytes after the last piece) logs one line naming the file and the
 * problem and returns LANES_ETOK (LANES_EIO when it cannot be opened or read). */
int eng_tok_load(const char *path, int vocab_size, eng_tok_t **out);

/* The tokenizer of an open GGUF file (a model or a vocab-only file); path is for the log. Copies
 * what it keeps: g may be closed afterwards. A missing, mistyped or out-of-range key, or an
 * unknown tokenizer.ggml.model, logs one line naming path and the key and returns LANES_ETOK. */
int eng_tok_from_gguf(const eng_gguf_t *g, const char *path, eng_tok_t **out);

/* A deterministic valid tokenizer of vocab_size (>= 354) pieces: <unk>, <s>, </s>, the 256 byte
 * pieces, the 95 printable ASCII characters, then merges of them. Same bytes on every machine. */
int eng_tok_synth(int vocab_size, uint64_t seed, eng_tok_t **out);

int eng_tok_save(const eng_tok_t *t, const char *path);   /* llama2.c tokenizers only */

/* Adds a llama2.c tokenizer to a GGUF writer as tokenizer.ggml.* of a SentencePiece ("llama")
 * vocabulary: pieces spelled with U+2581 for spaces, their scores, token types (<unk>, control
 * <s> and </s>, <0xXX> bytes), BOS 1, EOS 2, add_bos_token. LANES_EINVAL for other tokenizers;
 * the writer's errors. */
int eng_tok_to_gguf(const eng_tok_t *t, eng_gguf_writer_t *w);
void eng_tok_destroy(eng_tok_t *t);   /* NULL is fine */

int eng_tok_vocab_size(const eng_tok_t *t);
int32_t eng_tok_bos(const eng_tok_t *t);    /* the BOS id, -1 when the file names none */

/* End of generation: llama.cpp's set (EOS, EOT, EOM and the control tokens it knows by their
 * text, such as <|eot_id|>, <|im_end|>, <end_of_turn>); {BOS} for llama2.c, where run.c stops. */
int eng_tok_is_eog(const eng_tok_t *t, int32_t id);

/* ADD_SPECIAL: BOS and EOS as the file says (add_bos_token / add_eos_token; llama2.c: BOS).
 * PARSE_SPECIAL: control and user-defined token texts in the prompt become those tokens, longest
 * first, as llama-server's llama_tokenize(parse_special = true) (user-defined ones always do). */
enum { ENG_TOK_ADD_SPECIAL = 1, ENG_TOK_PARSE_SPECIAL = 2 };

/* Encodes text[0..len): llama2.c tokenizers as run.c (dummy-prefix space for non-empty text),
 * GGUF ones as llama.cpp's llama_tokenize; NUL is an ordinary byte. Writes at most max_ids ids;
 * returns the count, LANES_ETOOLONG if they do not fit, LANES_ENOMEM. Any thread. */
int eng_tok_encode(const eng_tok_t *t, const char *text, size_t len, int flags, int32_t *ids,
                   int max_ids);

/* The pre-tokenizer split (lanes-tokenize --words): word(arg, start, n) for each word, in order,
 * as byte ranges of text. BPE splits as its tokenizer.ggml.pre says; SentencePiece and llama2.c
 * tokenizers have no pre-tokenizer, so non-empty text is one word. Returns 0 or LANES_ENOMEM. */
int eng_tok_words(const eng_tok_t *t, const char *text, size_t len,
                  void (*word)(void *arg, const char *start, size_t n), void *arg);

/* The bytes token tok stands for after prev. llama2.c: the leading space is dropped after BOS and
 * <0xXX> pieces become one raw byte (run.c). GGUF, as llama.cpp's token_to_piece(special = false):
 * control and unknown tokens are empty, user-defined ones their text, <0xXX> one byte, U+2581 a
 * space (prev is not used). Borrows: the bytes live as long as t; *len gets their count. */
const char *eng_tok_decode(const eng_tok_t *t, int32_t prev, int32_t tok, size_t *len);

/* The most bytes of encode input one id can stand for (a piece, a special token's text), >= 1:
 * a prompt of len bytes needs at least len / this many ids. */
size_t eng_tok_max_text(const eng_tok_t *t);

#endif
