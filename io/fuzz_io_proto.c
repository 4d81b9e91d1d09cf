/* libFuzzer target: any bytes as one request line must parse or fail cleanly, and every accepted
 * generate must have a non-empty prompt and fields inside their documented ranges. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/lanes_err.h"
#include "base/lanes_utf8.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    io_msg_t m;
    int rc = io_msg_parse((const char *)data, size, &m);
    if (rc == LANES_OK && m.op == IO_OP_GENERATE) {
        assert(m.prompt_len > 0);
        assert(m.max_tokens >= 1 && m.max_tokens <= IO_MAX_TOKENS);
        assert(m.temperature >= 0 && m.top_p > 0 && m.top_p <= 1 && m.top_k >= 0);
    }
    if (rc < 0) assert(m.err_msg != NULL);
    if (m.id) assert(strlen(m.id) <= IO_MAX_ID);
    char out[64];
    long n = io_json_escape(out, sizeof out, 0, (const char *)data, size < 8 ? size : 8);
    assert(n >= 0 && (size_t)n <= sizeof out);
    for (long i = 0, k; i < n; i += k) /* JSON replies are always valid UTF-8 */
        assert((k = (long)lanes_utf8_seq_len((const unsigned char *)out + i, (size_t)(n - i))) > 0);
    io_msg_fini(&m);
    return 0;
}
