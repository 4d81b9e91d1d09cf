#ifndef ENG_TOK_INTERNAL_H
#define ENG_TOK_INTERNAL_H

/* Shared by tok.c (llama2.c files, encode, decode) and tok_gguf.c (the GGUF loader) only. */
#include <stddef.h>
#include <stdint.h>

#include "bpe.h"
#include "strmap.h"
#include "tok.h"

enum { TOK_RUNC, TOK_SPM, TOK_BPE };   /* eng_tok.kind */

/* tokenizer.ggml.token_type values, as llama.cpp numbers them. */
enum {
    TOK_T_UNDEFINED = 0, TOK_T_NORMAL = 1, TOK_T_UNKNOWN = 2, TOK_T_CONTROL = 3,
    TOK_T_USER_DEFINED = 4, TOK_T_UNUSED = 5, TOK_T_BYTE = 6
};

struct eng_tok {
    int kind;
    int vocab_size;
    int max_piece;                   /* no piece is longer (llama2.c: max_token_length) */
    int space_id;                    /* llama2.c: the " " piece, run.c's dummy prefix */
    float *scores;                   /* (vocab_size,) merge priority, higher first */
    uint32_t *off;                   /* (vocab_size + 1,) piece i is bytes[off[i] .. off[i + 1]) */
    char *bytes;                     /* all pieces back to back (GGUF: the token texts), owned */
    eng_strmap_t *index;             /* piece bytes -> lowest id, owned */
    unsigned char byte_val[256];     /* byte_val[b] == b: what "<0xXX>" pieces decode to */
    size_t max_text;                 /* eng_tok_max_text() */

    /* GGUF only (kind != TOK_RUNC). */
    uint8_t *type;                   /* (vocab_size,) TOK_T_*, owned */
    uint32_t *doff;                  /* (vocab_size + 1,) decoded piece i: dbytes[doff[i] ..) */
    char *dbytes;                    /* what eng_tok_decode returns, owned */
    int32_t *special;                /* control, user-defined and unknown ids, longest first */
    int n_special;
    int32_t *eog;                    /* (n_eog,) ascending */
    int n_eog;
    int32_t bos, eos, unk;           /* -1: none */
    int add_bos, add_eos, add_space_prefix;
    int32_t byte_tok[256];           /* SPM byte fallback: <0xXX>, else the 1-byte piece, unk */
    eng_bpe_t *bpe;                  /* TOK_BPE, owned */
};

/* A tokenizer with room for vocab_size pieces of nbytes in all (scores, off, bytes). */
eng_tok_t *eng__tok_alloc(int vocab_size, size_t nbytes);

/* Indexes pieces 0..vocab_size-1 for lookup; a duplicate keeps the lowest id and, if dup is not
 * NULL, *dup gets the first duplicate id of a non-empty piece (-1: none). Returns 0 or
 * LANES_ENOMEM (LANES_ETOOLONG for a piece of 4 GiB or more). */
int eng__tok_index(eng_tok_t *t, int *dup);

/* The id of the piece equal to p[0..n), or -1. */
int eng__tok_find(const eng_tok_t *t, const char *p, size_t n);

/* The byte b of a piece spelled exactly "<0xXX>" (either case), or -1. */
int eng__tok_byte_piece(const char *p, size_t n);

#endif
