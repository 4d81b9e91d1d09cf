/* lg_scan: the allocation-free reader of reply lines. */
#include "scan.h"

#include "base/lanes_err.h"
#include "test_util.h"

static long long got[16];
static void collect(void *arg, int i, long long v) {
    (void)arg;
    if (i < 16) got[i] = v;
}

static int count_members(const char *s) {
    lg_scan_t it;
    lg_span_t k, v;
    int rc = lg_scan_begin(&it, s, strlen(s));
    if (rc < 0) return rc;
    int n = 0;
    while ((rc = lg_scan_next(&it, &k, &v)) == 1) n++;
    return rc < 0 ? rc : n;
}

int main(void) {
    const char *line = " { \"id\" : 42, \"event\":\"token\", \"text\":\"a \\\"}{[\\\\\" ,"
                       "\"nested\":{\"a\":[1,{\"b\":\"]\"}],\"c\":null},\"tokens\":[ 7, 0,-3 ,31999 ] } ";
    lg_scan_t it;
    lg_span_t k, v;
    ASSERT_EQ(lg_scan_begin(&it, line, strlen(line)), LANES_OK);
    const char *keys[] = {"id", "event", "text", "nested", "tokens"};
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(lg_scan_next(&it, &k, &v), 1);
        ASSERT(lg_span_eq(k, keys[i]));
        if (i == 0) {
            long long id = 0;
            ASSERT_EQ(lg_span_ll(v, &id), LANES_OK);
            ASSERT_EQ(id, 42);
        }
        if (i == 1) ASSERT(lg_span_eq(v, "\"token\""));
        if (i == 2) ASSERT(lg_span_eq(v, "\"a \\\"}{[\\\\\""));
        if (i == 3) ASSERT(lg_span_eq(v, "{\"a\":[1,{\"b\":\"]\"}],\"c\":null}"));
        if (i == 4) {
            ASSERT_EQ(lg_span_ints(v, collect, NULL), 4);
            ASSERT_EQ(got[0], 7);
            ASSERT_EQ(got[1], 0);
            ASSERT_EQ(got[2], -3);
            ASSERT_EQ(got[3], 31999);
        }
    }
    ASSERT_EQ(lg_scan_next(&it, &k, &v), 0);

    /* Numbers, empty containers, bad input. */
    long long x;
    ASSERT_EQ(lg_span_ll((lg_span_t){"7.0", 3}, &x), LANES_OK);
    ASSERT_EQ(x, 7);
    ASSERT_EQ(lg_span_ll((lg_span_t){"\"7\"", 3}, &x), LANES_EINVAL);
    ASSERT_EQ(lg_span_ints((lg_span_t){"[]", 2}, collect, NULL), 0);
    ASSERT_EQ(lg_span_ints((lg_span_t){"[1,]", 4}, collect, NULL), LANES_EPROTO);
    ASSERT_EQ(lg_span_ints((lg_span_t){"[1 2]", 5}, collect, NULL), LANES_EPROTO);
    ASSERT_EQ(lg_span_ints((lg_span_t){"[\"a\"]", 5}, collect, NULL), LANES_EPROTO);
    ASSERT_EQ(lg_span_ints((lg_span_t){"[99999999999999999999]", 22}, collect, NULL), LANES_EPROTO);
    ASSERT_EQ(count_members("{}"), 0);
    ASSERT_EQ(count_members("{\"a\":1}"), 1);
    ASSERT_EQ(count_members("[1]"), LANES_EPROTO);
    ASSERT_EQ(count_members("{\"a\":1"), LANES_EPROTO);              /* cut short */
    ASSERT_EQ(count_members("{\"a\":\"x}"), LANES_EPROTO);           /* open string */
    ASSERT_EQ(count_members("{\"a\" 1}"), LANES_EPROTO);             /* no colon */
    ASSERT_EQ(count_members("{\"a\":1 \"b\":2}"), LANES_EPROTO);     /* no comma */
    ASSERT_EQ(count_members("{\"a\":{\"b\":[1,2}"), LANES_EPROTO);   /* unbalanced */
    ASSERT_EQ(count_members("{\"a\":}"), LANES_EPROTO);              /* no value */
    ASSERT_EQ(count_members(""), LANES_EPROTO);
    return 0;
}
