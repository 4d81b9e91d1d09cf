/* The request-line parser: every field, type and range rule of docs/PROTOCOL.md. */
#include <float.h>

#include "base/lanes_err.h"
#include "proto.h"
#include "test_util.h"

static int parse(const char *line, io_msg_t *m) { return io_msg_parse(line, strlen(line), m); }

/* Ids are echoed as the exact bytes sent and compared by them: no number is re-printed (cJSON's
 * %1.15g turned 9007199254740991 into 9.00719925474099e+15 and made ...993 and ...992 one id). */
static void test_ids(void) {
    static const struct { const char *line, *id; } ok[] = {
        {"{\"id\":9007199254740991,\"op\":\"stats\"}", "9007199254740991"},
        {"{\"id\":9007199254740993,\"op\":\"stats\"}", "9007199254740993"},
        {"{\"id\":9007199254740992,\"op\":\"stats\"}", "9007199254740992"},
        {"{\"id\":1.10,\"op\":\"stats\"}", "1.10"},
        {"{\"id\":1.0,\"op\":\"stats\"}", "1.0"},
        {"{\"id\":-0,\"op\":\"stats\"}", "-0"},
        {"{\"id\":1E+2,\"op\":\"stats\"}", "1E+2"},
        {"{\"id\":1e400,\"op\":\"stats\"}", "1e400"},   /* never converted, so no overflow */
        {"{\"id\":\"a\\u0041\\/\",\"op\":\"stats\"}", "\"a\\u0041\\/\""},
        {"{ \"id\" :\t\"sp\" , \"op\":\"stats\"}", "\"sp\""},   /* spaces around are not the id */
        {"{\"id\":\"first\",\"id\":\"second\",\"op\":\"stats\"}", "\"first\""},
        {"{\"\\u0069d\":\"esc\",\"op\":\"stats\"}", "\"esc\""},  /* the key is decoded */
        {"{\"id\\u0000\":\"nul\",\"op\":\"stats\"}", NULL},        /* "id\0" is another key */
    };
    io_msg_t m;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ASSERT_EQ(parse(ok[i].line, &m), LANES_OK);
        if (ok[i].id) ASSERT_STR_EQ(m.id, ok[i].id);
        else ASSERT(m.id == NULL);
        io_msg_fini(&m);
    }
    /* 256 bytes as sent is the limit: an escaped id counts its escapes. */
    char line[1024], *p = line;
    p += sprintf(p, "{\"op\":\"stats\",\"id\":\"");
    for (int i = 0; i < 254; i++) *p++ = 'i';
    strcpy(p, "\"}");
    ASSERT_EQ(parse(line, &m), LANES_OK);
    ASSERT_EQ(strlen(m.id), IO_MAX_ID);
    io_msg_fini(&m);
    p = line + sprintf(line, "{\"op\":\"stats\",\"id\":\"");
    for (int i = 0; i < 50; i++) p += sprintf(p, "\\u0041");   /* 300 bytes sent, 50 characters */
    strcpy(p, "\"}");
    ASSERT_EQ(parse(line, &m), LANES_ETOOLONG);
    ASSERT(m.id == NULL && m.err_msg != NULL);
    io_msg_fini(&m);
}

/* JSON text must be UTF-8 (RFC 8259 8.1) and strictly JSON: what the parser accepts is echoed. */
static void test_strict_json(void) {
    static const char *const bad[] = {
        "{\"id\":\"\xff\xfe\",\"prompt\":\"x\"}",            /* not UTF-8 */
        "{\"id\":\"a\",\"prompt\":\"\xc0\xaf\"}",            /* overlong '/' */
        "{\"prompt\":\"\xed\xa0\x80\"}",                      /* a surrogate in UTF-8 */
        "{\"prompt\":\"\xe2\x82\"}",                           /* truncated sequence */
        "{\"prompt\":\"x\",\"other\":\"\x80\"}",              /* even in an ignored field */
        "{\"id\":\"a\x01\",\"prompt\":\"x\"}",                /* raw control characters */
        "{\"prompt\":\"tab\there\"}",
        "{\"id\":01,\"prompt\":\"x\"}",                         /* not JSON numbers */
        "{\"id\":1.,\"prompt\":\"x\"}",
        "{\"id\":-,\"prompt\":\"x\"}",
        "{\"prompt\":\"\\ud800\"}",                            /* unpaired surrogate escapes */
        "{\"prompt\":\"\\udc00x\"}",
        "{\"prompt\":\"\\x\"}",                                /* unknown escape */
        "{\"prompt\":\"x\",}", "{\"prompt\":\"x\"", "{\"prompt\":\"x}",
        "{\"a\":[1,],\"prompt\":\"x\"}",
        "{\"prompt\":\"x\",\"a\":tru}",
    };
    io_msg_t m;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = parse(bad[i], &m);
        if (rc != LANES_EPROTO) fprintf(stderr, "line %s\n", bad[i]);
        ASSERT_EQ(rc, LANES_EPROTO);
        ASSERT(m.err_msg != NULL && m.id == NULL);
        io_msg_fini(&m);
    }
    ASSERT_EQ(parse("{\"id\":\"\xff\",\"prompt\":\"x\"}", &m), LANES_EPROTO);
    ASSERT(strstr(m.err_msg, "UTF-8") != NULL);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"a\x01\"}", &m), LANES_EPROTO);
    ASSERT(strstr(m.err_msg, "control") != NULL);
    io_msg_fini(&m);
    ASSERT_EQ(parse("\xff\xfe plain text \x01", &m), LANES_OK);   /* plain text carries any bytes */
    ASSERT(m.plain && m.prompt_len == 15);
    io_msg_fini(&m);
    /* Nesting: cJSON's 1000 levels stay the limit. */
    static char deep[2200];
    for (int levels = 1000; levels <= 1001; levels++) {
        char *p = deep + sprintf(deep, "{\"prompt\":\"x\",\"a\":");
        for (int i = 1; i < levels; i++) *p++ = '[';
        for (int i = 1; i < levels; i++) *p++ = ']';
        strcpy(p, "}");
        ASSERT_EQ(parse(deep, &m), levels <= 1000 ? LANES_OK : LANES_EPROTO);
        io_msg_fini(&m);
    }
}

/* The prompt is decoded with its real length: "\u0000" no longer ends it. */
static void test_prompt_bytes(void) {
    io_msg_t m;
    ASSERT_EQ(parse("{\"prompt\":\"a\\u0000b\\u0000\"}", &m), LANES_OK);
    ASSERT_EQ(m.prompt_len, 4);
    ASSERT(memcmp(m.prompt, "a\0b\0", 4) == 0);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"\\u0000\"}", &m), LANES_OK);
    ASSERT(m.prompt_len == 1 && m.prompt[0] == 0);
    io_msg_fini(&m);
    static const char want[] = "\"\\/\b\f\n\r\t \xc3\xa9\xe2\x82\xac\xf0\x9f\x99\x82\xc3\xa9 \x7f";
    ASSERT_EQ(parse("{\"prompt\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t "
                    "\\u00e9\\u20AC\\ud83d\\ude42\xc3\xa9 \x7f\"}", &m), LANES_OK);
    ASSERT_EQ(m.prompt_len, sizeof want - 1);
    ASSERT(memcmp(m.prompt, want, sizeof want - 1) == 0);
    io_msg_fini(&m);
}

/* Sampler numbers are checked as the float the engine gets: a positive top_p never becomes 0
 * ("off"); it keeps only the top token. Tiny temperatures stay in range (the engine samples
 * greedily below 1e-5). */
static void test_sampler_numbers(void) {
    io_msg_t m;
    static const char *const tiny_p[] = {"5E-57", "1e-40", "1e-300", "4.9e-324", "1e-400"};
    char line[128];
    for (size_t i = 0; i < sizeof tiny_p / sizeof *tiny_p; i++) {
        snprintf(line, sizeof line, "{\"prompt\":\"i\",\"top_p\":%s}", tiny_p[i]);
        ASSERT_EQ(parse(line, &m), LANES_OK);
        ASSERT(m.top_p == FLT_MIN);
        io_msg_fini(&m);
    }
    ASSERT_EQ(parse("{\"prompt\":\"i\",\"top_p\":1e-30}", &m), LANES_OK);
    ASSERT(m.top_p == 1e-30f);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"i\",\"top_p\":0.9999999999}", &m), LANES_OK);
    ASSERT(m.top_p == 1.0f);
    io_msg_fini(&m);
    /* Zero as written is out of range; a nonzero number that underflows a double is not zero. */
    static const char *const zero[] = {"\"top_p\":0", "\"top_p\":-0", "\"top_p\":0e-400",
                                       "\"top_p\":-1e-400", "\"seed\":1e-400",
                                       "\"max_tokens\":1e-400"};
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++) {
        snprintf(line, sizeof line, "{\"prompt\":\"i\",%s}", zero[i]);
        ASSERT_EQ(parse(line, &m), LANES_EINVAL);
        io_msg_fini(&m);
    }
    ASSERT_EQ(parse("{\"prompt\":\"i\",\"temperature\":1e-50}", &m), LANES_OK);
    ASSERT(m.temperature == 0.0f);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"i\",\"temperature\":1e-38}", &m), LANES_OK);
    ASSERT(m.temperature > 0.0f && m.temperature < 1e-5f);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"i\",\"temperature\":1e400}", &m), LANES_EINVAL);
    io_msg_fini(&m);
}

/* stop, ignore_eos and logprobs: the stop strings are decoded with their real length, as the
 * prompt is, and every wrong type or size is an EINVAL naming the field. */
static void test_stop_eos_logprobs(void) {
    io_msg_t m;
    ASSERT_EQ(parse("{\"prompt\":\"x\"}", &m), LANES_OK);   /* defaults */
    ASSERT(m.n_stop == 0 && m.ignore_eos == 0 && m.logprobs == -1);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"x\",\"stop\":\".\\n\",\"ignore_eos\":true,\"logprobs\":0}", &m),
              LANES_OK);
    ASSERT(m.n_stop == 1 && m.stop_len[0] == 2 && memcmp(m.stop[0], ".\n", 2) == 0);
    ASSERT(m.ignore_eos == 1 && m.logprobs == 0);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"x\",\"stop\":[ \"a\" , \"a\\u0000b\",\"\\ud83d\\ude42\","
                    "\"\\\"\"],\"ignore_eos\":false,\"logprobs\":20}", &m), LANES_OK);
    ASSERT_EQ(m.n_stop, 4);
    ASSERT(m.stop_len[0] == 1 && m.stop[0][0] == 'a');
    ASSERT(m.stop_len[1] == 3 && memcmp(m.stop[1], "a\0b", 3) == 0);
    ASSERT(m.stop_len[2] == 4 && memcmp(m.stop[2], "\xf0\x9f\x99\x82", 4) == 0);
    ASSERT(m.stop_len[3] == 1 && m.stop[3][0] == '"');
    ASSERT(m.ignore_eos == 0 && m.logprobs == 20);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"x\",\"stop\":null,\"ignore_eos\":null,\"logprobs\":null}", &m),
              LANES_OK);
    ASSERT(m.n_stop == 0 && m.ignore_eos == 0 && m.logprobs == -1);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"x\",\"stop\":\"one\",\"stop\":[\"two\"]}", &m), LANES_OK);
    ASSERT(m.n_stop == 1 && m.stop_len[0] == 3);    /* the first occurrence counts */
    io_msg_fini(&m);

    /* 256 bytes decoded is the limit, whatever the escapes took to send: 128 "\u00e9" are 768
     * bytes sent and 256 decoded. */
    char line[2048];
    for (int extra = 0; extra <= 1; extra++) {
        char *p = line + sprintf(line, "{\"prompt\":\"x\",\"stop\":[\"s\",\"");
        for (int i = 0; i < 128; i++) p += sprintf(p, "\\u00e9");
        if (extra) *p++ = '!';
        strcpy(p, "\"]}");
        int rc = parse(line, &m);
        ASSERT_EQ(rc, extra ? LANES_EINVAL : LANES_OK);
        if (rc == LANES_OK) ASSERT(m.n_stop == 2 && m.stop_len[1] == IO_MAX_STOP_LEN);
        else ASSERT(strstr(m.err_msg, "stop") != NULL);
        io_msg_fini(&m);
    }

    static const char *const bad[] = {
        "\"stop\":[]", "\"stop\":\"\"", "\"stop\":[\"a\",\"\"]",
        "\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]", "\"stop\":1", "\"stop\":[\"a\",1]",
        "\"stop\":[[\"a\"]]", "\"stop\":{\"a\":\"b\"}", "\"stop\":true", "\"stop\":[null]",
        "\"ignore_eos\":1", "\"ignore_eos\":\"true\"", "\"ignore_eos\":[]",
        "\"logprobs\":-1", "\"logprobs\":21", "\"logprobs\":1.5", "\"logprobs\":true",
        "\"logprobs\":\"5\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(line, sizeof line, "{\"id\":\"b\",\"prompt\":\"x\",%s}", bad[i]);
        int rc = parse(line, &m);
        if (rc != LANES_EINVAL) fprintf(stderr, "line %s\n", line);
        ASSERT_EQ(rc, LANES_EINVAL);
        /* the message names the field, and the id is still there to answer with */
        char field[16];
        sscanf(bad[i], "\"%15[a-z_]", field);
        if (strstr(m.err_msg, field) == NULL) fprintf(stderr, "%s: %s\n", line, m.err_msg);
        ASSERT(strstr(m.err_msg, field) != NULL);
        ASSERT_STR_EQ(m.id, "\"b\"");
        io_msg_fini(&m);
    }
    /* The fields belong to generate: other ops never look at them. */
    ASSERT_EQ(parse("{\"op\":\"stats\",\"stop\":5,\"logprobs\":99}", &m), LANES_OK);
    io_msg_fini(&m);
}

int main(void) {
    test_ids();
    test_strict_json();
    test_prompt_bytes();
    test_sampler_numbers();
    test_stop_eos_logprobs();
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

    /* Seeds are exact 64-bit integers: 2^53 + 1 is not 2^53 (a double would merge them). */
    ASSERT_EQ(parse("{\"prompt\":\"x\",\"seed\":9007199254740993}", &m), LANES_OK);
    ASSERT(m.seed == 9007199254740993ull);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"x\",\"seed\":18446744073709551615}", &m), LANES_OK);
    ASSERT(m.seed == UINT64_MAX);
    io_msg_fini(&m);
    ASSERT_EQ(parse("{\"prompt\":\"x\",\"seed\":18446744073709551616}", &m), LANES_EINVAL);
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
