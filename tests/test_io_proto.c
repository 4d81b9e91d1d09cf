/* The request-line parser: every field, type and range rule of docs/PROTOCOL.md. */
#include "base/lanes_err.h"
#include "proto.h"
#include "test_util.h"

static int parse(const char *line, io_msg_t *m) { return io_msg_parse(line, strlen(line), m); }

int main(void) {
    io_msg_t m;
    ASSERT_EQ(parse("{\"id\":\"a1\",\"prompt\":\"Once\",\"max_tokens\":5,\"temperature\":0.5,"
                    "\"top_k\":40,\"top_p\":0.9,\"seed\":7}", &m), LANES_OK);
    ASSERT_EQ(m.op, IO_OP_GENERATE);
    ASSERT_STR_EQ(m.id, "\"a1\"");
    ASSERT_EQ(m.prompt_len, 4);
    ASSERT_EQ(m.max_tokens, 5);
    ASSERT_EQ(m.top_k, 40);
    ASSERT_EQ(m.seed, 7);
    ASSERT(m.temperature == 0.5f && m.top_p == 0.9f);
    io_msg_fini(&m);

    ASSERT_EQ(parse("{\"prompt\":\"x\"}", &m), LANES_OK);   /* defaults */
    ASSERT(m.id == NULL && m.max_tokens == IO_DEFAULT_TOKENS && m.temperature == 0 && m.top_p == 1);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"id\":12,\"op\":\"stats\"}", &m), LANES_OK);
    ASSERT_EQ(m.op, IO_OP_STATS);
    ASSERT_STR_EQ(m.id, "12");
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"op\":\"health\"}", &m), LANES_OK);
    ASSERT_EQ(m.op, IO_OP_HEALTH);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"op\":\"cancel\",\"id\":\"z\"}", &m), LANES_OK);
    ASSERT_EQ(m.op, IO_OP_CANCEL);
    io_msg_fini(&m);
    ASSERT_EQ(parse("hello there", &m), LANES_OK);   /* plain text */
    ASSERT(m.plain && m.prompt_len == 11);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"id\":\"q\\\"x\",\"prompt\":\"a\\u00e9\\n\"}", &m), LANES_OK);
    ASSERT_STR_EQ(m.id, "\"q\\\"x\"");
    ASSERT_EQ(m.prompt_len, 4);
    io_msg_fini(&m);

    static const struct { const char *line; int rc; } bad[] = {
        {"{", LANES_EPROTO}, {"{\"prompt\":\"x\"} x", LANES_EPROTO}, {"{}", LANES_EINVAL},
        {"{\"prompt\":null}", LANES_EINVAL}, {"{\"prompt\":\"\"}", LANES_EINVAL},
        {"{\"prompt\":\"x\",\"max_tokens\":65537}", LANES_EINVAL},
        {"{\"prompt\":\"x\",\"max_tokens\":-1}", LANES_EINVAL},
        {"{\"prompt\":\"x\",\"temperature\":\"hot\"}", LANES_EINVAL},
        {"{\"prompt\":\"x\",\"top_p\":1.5}", LANES_EINVAL},
        {"{\"prompt\":\"x\",\"seed\":0.5}", LANES_EINVAL},
        {"{\"prompt\":\"x\",\"id\":true}", LANES_EINVAL},
        {"{\"prompt\":\"x\",\"id\":[1]}", LANES_EINVAL},
        {"{\"op\":\"nope\"}", LANES_EINVAL},
        {"{\"op\":\"cancel\"}", LANES_EINVAL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = parse(bad[i].line, &m);
        if (rc != bad[i].rc) fprintf(stderr, "line %s\n", bad[i].line);
        ASSERT_EQ(rc, bad[i].rc);
        ASSERT(m.err_msg != NULL);
        io_msg_fini(&m);
    }
    char longid[400] = "{\"prompt\":\"x\",\"id\":\"";
    memset(longid + strlen(longid), 'i', 300);
    strcat(longid, "\"}");
    ASSERT_EQ(parse(longid, &m), LANES_ETOOLONG);
    io_msg_fini(&m);

    char out[64];
    long n = io_json_escape(out, sizeof out, 0, "a\"b\\\n\x01\xc3\xa9", 8);
    ASSERT_EQ(n, 16);
    out[n] = 0;
    ASSERT_STR_EQ(out, "a\\\"b\\\\\\n\\u0001\xc3\xa9");
    /* Invalid UTF-8 (a lone continuation byte, an overlong form, a surrogate, a truncated sequence)
     * becomes U+FFFD byte by byte; valid 3- and 4-byte sequences pass through. */
    n = io_json_escape(out, sizeof out, 0,
                       "\x87|\xc0\xaf|\xed\xa0\x80|\xe2\x82|\xe2\x82\xac\xf0\x9f\x99\x82", 19);
    ASSERT_GT(n, 0);
    out[n] = 0;
    ASSERT_STR_EQ(out, "\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                       "\xef\xbf\xbd\xef\xbf\xbd|\xe2\x82\xac\xf0\x9f\x99\x82");
    return 0;
}
