#ifndef ENG_TOK_PRETOK_H
#define ENG_TOK_PRETOK_H

/* The pre-tokenizer of byte-level BPE, internal to engine/tok/: the list of regexes llama.cpp
 * picks for a tokenizer.ggml.pre name, applied one after the other (each splits every piece the
 * previous one left; text no match covers stays a piece of its own), with PCRE2. Read-only after
 * create: any thread may split. */
#include <stddef.h>

typedef struct eng_pretok eng_pretok_t;

/* Compiles the regexes of name[0..len) ("default" included). LANES_ENOENT for a name llama.cpp
 * does not know either, LANES_ENOMEM. */
int eng__pretok_create(const char *name, size_t len, eng_pretok_t **out);
void eng__pretok_destroy(eng_pretok_t *p);   /* NULL is fine */

/* Whether llama.cpp sets ignore_merges for this name: a word that is a token is that token. */
int eng__pretok_ignore_merges(const eng_pretok_t *p);

/* Splits text[0..len) into words. Returns their number and, in *ends (the caller frees it), the
 * byte offset where each ends: word i is text[ends[i-1] .. ends[i]), with ends[-1] = 0. Bytes that
 * are not UTF-8 stay in the words; they split as llama.cpp splits them (as U+FFFD). LANES_ENOMEM,
 * LANES_ETOOLONG when PCRE2 gives up on the text (its match limit). */
long eng__pretok_split(const eng_pretok_t *p, const char *text, size_t len, size_t **ends);

#endif
