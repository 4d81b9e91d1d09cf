/* The stop-string matcher (batching/bat_stop.h) against a naive reference.
 * - random: random stop sets over a 3-letter alphabet (prefixes of each other, repeats, overlaps)
 *   and random texts fed in random splits (empty pieces too): the bytes released, plus the stop
 *   string on a match, equal the text up to the first match end; the winner is the longest of the
 *   strings ending there; after every feed exactly the longest suffix that is a prefix of some stop
 *   string is held back; with no match the flush gives back the rest.
 * - cases: the documented tie rules, a match inside one piece with bytes after it, multi-byte
 *   UTF-8 split between pieces, a 256-byte stop string, no stop strings at all. */
#include "bat_stop.h"
#include "test_util.h"

enum { MAXT = 64 };

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11) % n;
}

typedef struct {
    int n;
    char *s[BAT_MAX_STOP];
    size_t len[BAT_MAX_STOP];
} stops_t;

/* The reference: the first end of an occurrence, the longest string there, then the lowest
 * index. Returns its index (and *cut, the bytes before it) or -1 (*cut = n). */
static int naive_match(const stops_t *st, const char *t, size_t n, size_t *cut) {
    for (size_t e = 1; e <= n; e++) {
        int best = -1;
        for (int i = 0; i < st->n; i++)
            if (st->len[i] <= e && memcmp(t + e - st->len[i], st->s[i], st->len[i]) == 0 &&
                (best < 0 || st->len[i] > st->len[best]))
                best = i;
        if (best >= 0) {
            *cut = e - st->len[best];
            return best;
        }
    }
    *cut = n;
    return -1;
}

/* The longest suffix of t[0..n) that is a proper prefix of some stop string. */
static size_t naive_hold(const stops_t *st, const char *t, size_t n) {
    size_t h = 0;
    for (int i = 0; i < st->n; i++)
        for (size_t k = st->len[i] - 1; k > h; k--)
            if (k <= n && memcmp(t + n - k, st->s[i], k) == 0) {
                h = k;
                break;
            }
    return h;
}

/* Feeds t[0..n) split at random and checks everything the header promises. */
static void check_split(const stops_t *st, const char *t, size_t n) {
    bat__stop_t m;
    bat__stop_init(&m, st->n, st->s, st->len);
    char out[MAXT + BAT_MAX_STOP_LEN];
    size_t nout = 0, fed = 0;
    int got = -1;
    while (fed < n || rnd(4) == 0) {   /* empty pieces now and then, also past the end */
        size_t k = rnd(6);
        if (k > n - fed) k = n - fed;
        size_t room = bat__stop_room(&m, k), w = 0;
        got = bat__stop_feed(&m, t + fed, k, out + nout, &w);
        ASSERT_LE(w, room);
        nout += w;
        fed += k;
        if (got >= 0) break;
        /* Released: everything but the longest suffix that may still begin a match. */
        ASSERT_EQ(nout, fed - naive_hold(st, t, fed));
        ASSERT_EQ(m.nheld, fed - nout);
        if (fed == n && rnd(2)) break;
    }
    if (got < 0) nout += bat__stop_flush(&m, out + nout);
    size_t cut;
    int want = naive_match(st, t, n, &cut);
    ASSERT_EQ(got, want);
    ASSERT_EQ(nout, cut);
    ASSERT(memcmp(out, t, nout) == 0);
    if (want >= 0) ASSERT(memcmp(t + cut, st->s[want], st->len[want]) == 0);
}

static void t_random(void) {
    static char buf[BAT_MAX_STOP][8];
    for (int iter = 0; iter < 300000; iter++) {
        stops_t st = {.n = (int)rnd(BAT_MAX_STOP) + 1};
        for (int i = 0; i < st.n; i++) {
            if (i > 0 && rnd(3) == 0) {   /* a prefix or an extension of an earlier one */
                int j = (int)rnd((uint32_t)i);
                st.len[i] = st.len[j] > 1 && rnd(2) ? st.len[j] - 1 : st.len[j] + 1;
                memcpy(buf[i], buf[j], st.len[j]);
                buf[i][st.len[i] - 1] = (char)('a' + rnd(3));
            } else {
                st.len[i] = rnd(5) + 1;
                for (size_t k = 0; k < st.len[i]; k++) buf[i][k] = (char)('a' + rnd(3));
            }
            st.s[i] = buf[i];
        }
        char t[MAXT];
        size_t n = rnd(MAXT);
        for (size_t k = 0; k < n; k++) t[k] = (char)('a' + rnd(3));
        check_split(&st, t, n);
    }
}

/* Feeds the pieces of text (separated by '|') and checks the released bytes and the match. */
static void check_case(int nstop, const char *const *stop, const char *pieces, const char *want,
                       int want_idx) {
    stops_t st = {.n = nstop};
    for (int i = 0; i < nstop; i++) st.s[i] = (char *)stop[i], st.len[i] = strlen(stop[i]);
    bat__stop_t m;
    bat__stop_init(&m, st.n, st.s, st.len);
    char out[1024];
    size_t nout = 0;
    int got = -1;
    for (const char *p = pieces; got < 0;) {
        const char *bar = strchr(p, '|');
        size_t k = bar ? (size_t)(bar - p) : strlen(p), w;
        got = bat__stop_feed(&m, p, k, out + nout, &w);
        nout += w;
        if (bar == NULL) break;
        p = bar + 1;
    }
    if (got < 0) nout += bat__stop_flush(&m, out + nout);
    out[nout] = 0;
    ASSERT_STR_EQ(out, want);
    ASSERT_EQ(got, want_idx);
}

static void t_cases(void) {
    /* Prefixes of each other: the one that ends first wins, so "ab" before "abc". */
    check_case(2, (const char *[]){"abc", "ab"}, "xa|bcd", "x", 1);
    /* A later, shorter string that ends first beats a longer one that started earlier. */
    check_case(2, (const char *[]){"abc", "b"}, "a|bc", "a", 1);
    /* Ending at the same byte: the longer (earlier start) wins, then the lower index. */
    check_case(2, (const char *[]){"bc", "abc"}, "xab|c", "x", 1);
    check_case(2, (const char *[]){"ab", "ab"}, "ab", "", 0);
    /* Inside one piece, with bytes after it in the same piece: none of those is released. */
    check_case(1, (const char *[]){"END"}, "hello| wENDorld|more", "hello w", 0);
    /* Across many pieces, and a false start that is released once it cannot match. */
    check_case(1, (const char *[]){"stop here"}, "a st|op|x st|o|p| |h|e|r|e|tail", "a stopx ", 0);
    /* Multi-byte UTF-8 ("é" is C3 A9) split between pieces, in the text and in the stop string. */
    check_case(1, (const char *[]){"\xc3\xa9!"}, "caf\xc3|\xa9|!|x", "caf", 0);
    check_case(1, (const char *[]){"\xc3\xa9!"}, "caf\xc3|\xa9|?", "caf\xc3\xa9?", -1);
    /* No match: the held bytes come back at the flush. */
    check_case(2, (const char *[]){"xyz", "yy"}, "axy", "axy", -1);
    /* No stop strings: everything passes at once. */
    check_case(0, NULL, "ab|c", "abc", -1);
    /* The longest stop string allowed, matched one byte at a time. */
    static char big[BAT_MAX_STOP_LEN + 1], text[4 * BAT_MAX_STOP_LEN], want[8];
    memset(big, 'a', BAT_MAX_STOP_LEN - 1);
    big[BAT_MAX_STOP_LEN - 1] = 'b';
    size_t n = 0;
    memcpy(text, "zz|", 3), n = 3;
    for (int i = 0; i < BAT_MAX_STOP_LEN + 1; i++) text[n++] = 'a', text[n++] = '|';
    memcpy(text + n, "b|c", 4);
    memcpy(want, "zzaa", 5);
    check_case(1, (const char *[]){big}, text, want, 0);
}

int main(void) {
    t_cases();
    fprintf(stderr, "cases: ok\n");
    t_random();
    fprintf(stderr, "random: ok\n");
    return 0;
}
