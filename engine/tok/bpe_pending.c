/* Stand-in for bpe.c until the bpe branch is merged (the lead deletes this file then): every call
 * fails, so a "gpt2" tokenizer is refused with one clear line. */
#include "bpe.h"

#include "base/lanes_err.h"
#include "base/lanes_log.h"

int eng__bpe_create(const eng_bpe_str_t *tokens, int n_tokens, const eng_bpe_str_t *merges,
                    int n_merges, const char *pre, size_t pre_len, const char *path,
                    eng_bpe_t **out) {
    (void)tokens, (void)n_tokens, (void)merges, (void)n_merges, (void)pre, (void)pre_len;
    *out = NULL;
    LANES_LOG(LANES_LOG_ERROR, "tok: %s: BPE not merged yet", path);
    return LANES_ETOK;
}

void eng__bpe_destroy(eng_bpe_t *b) { (void)b; }

int eng__bpe_encode(const eng_bpe_t *b, const char *text, size_t len, int32_t *ids, int max_ids) {
    (void)b, (void)text, (void)len, (void)ids, (void)max_ids;
    LANES_LOG(LANES_LOG_ERROR, "tok: BPE not merged yet");
    return LANES_ETOK;
}

int eng__bpe_words(const eng_bpe_t *b, const char *text, size_t len,
                   void (*word)(void *arg, const char *start, size_t len), void *arg) {
    (void)b, (void)text, (void)len, (void)word, (void)arg;
    LANES_LOG(LANES_LOG_ERROR, "tok: BPE not merged yet");
    return LANES_ETOK;
}

const char *eng__bpe_piece(const eng_bpe_t *b, int32_t id, size_t *len) {
    (void)b, (void)id;
    LANES_LOG(LANES_LOG_ERROR, "tok: BPE not merged yet");
    *len = 0;
    return "";
}
