#include "lanes_utf8.h"

#include <string.h>

size_t lanes_utf8_seq_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len = c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    unsigned char lo = 0x80, hi = 0xbf;   /* the second byte's range */
    if (c == 0xe0) lo = 0xa0;
    else if (c == 0xed) hi = 0x9f;
    else if (c == 0xf0) lo = 0x90;
    else if (c == 0xf4) hi = 0x8f;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return len;
}

size_t lanes_utf8_sanitize(char *out, const char *s, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        size_t k = lanes_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k == 0) {
            memcpy(out + len, "\xef\xbf\xbd", 3);
            len += 3;
            i++;
        } else {
            memcpy(out + len, s + i, k);
            len += k;
            i += k;
        }
    }
    out[len] = 0;
    return len;
}
