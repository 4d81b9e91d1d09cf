#include "bat_stop.h"

#include <string.h>

void bat__stop_init(bat__stop_t *m, int n, char *const *s, const size_t *len) {
    m->n = n;
    m->nheld = 0;
    for (int i = 0; i < n; i++) {
        m->s[i] = s[i];
        m->len[i] = (uint16_t)len[i];
        m->q[i] = 0;
        /* The KMP failure function: b is the border of s[0..k-1], extended by s[k] if it can be. */
        uint8_t *f = m->fail[i];
        f[0] = 0;
        for (size_t k = 1, b = 0; k < len[i]; k++) {
            while (b > 0 && s[i][k] != s[i][b]) b = f[b - 1];
            if (s[i][k] == s[i][b]) b++;
            f[k] = (uint8_t)b;
        }
    }
}

/* Copies w[from..to) of the window held[0..nheld) + p[0..n) to dst (which may overlap held). */
static void window_copy(const bat__stop_t *m, const char *p, size_t from, size_t to, char *dst) {
    size_t nh = m->nheld;
    if (from < nh) {
        size_t k = (to < nh ? to : nh) - from;
        memmove(dst, m->held + from, k);
        dst += k;
        from += k;
    }
    if (to > from) memmove(dst, p + (from - nh), to - from);
}

int bat__stop_feed(bat__stop_t *m, const char *p, size_t n, char *out, size_t *nout) {
    if (m->n == 0) {
        memcpy(out, p, n);
        *nout = n;
        return -1;
    }
    size_t hold = m->nheld;
    for (size_t j = 0; j < n; j++) {
        char c = p[j];
        int best = -1;
        hold = 0;
        for (int i = 0; i < m->n; i++) {
            const char *s = m->s[i];
            size_t q = m->q[i];
            while (q > 0 && s[q] != c) q = m->fail[i][q - 1];
            if (s[q] == c) q++;
            m->q[i] = (uint16_t)q;
            if (q == m->len[i]) {
                if (best < 0 || m->len[i] > m->len[best]) best = i;
            } else if (q > hold) {
                hold = q;
            }
        }
        if (best >= 0) {
            /* Unreleased so far: the held bytes and p[0..j]; the match is their last len bytes
             * (its first len - 1 were a suffix that is a prefix of it, so they were held). */
            size_t unrel = m->nheld + j + 1;
            *nout = unrel - m->len[best];
            window_copy(m, p, 0, *nout, out);
            m->nheld = 0;
            return best;
        }
    }
    /* The held suffix only moves forward, so what precedes its final start is released. */
    size_t total = m->nheld + n;
    *nout = total - hold;
    window_copy(m, p, 0, *nout, out);
    window_copy(m, p, *nout, total, m->held);
    m->nheld = (uint16_t)hold;
    return -1;
}

size_t bat__stop_flush(bat__stop_t *m, char *out) {
    size_t n = m->nheld;
    memcpy(out, m->held, n);
    m->nheld = 0;
    for (int i = 0; i < m->n; i++) m->q[i] = 0;
    return n;
}
