#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/lanes_err.h"

enum { ST_STATUS, ST_HEADER, ST_BODY_LEN, ST_BODY_CLOSE, ST_CHUNK_SIZE, ST_CHUNK_DATA,
       ST_CHUNK_CRLF, ST_TRAILER, ST_BROKEN };

void lg_http_init(lg_http_t *h) {
    h->state = ST_STATUS;
    h->status = 0;
    h->chunked = 0;
    h->length = -1;
    h->keep_alive = 1;
    h->remain = 0;
    h->err = NULL;
    h->line_len = 0;
}

int lg_http_idle(const lg_http_t *h) { return h->state == ST_STATUS && h->line_len == 0; }

static int broken(lg_http_t *h, const char *why) {
    h->state = ST_BROKEN;
    h->err = why;
    return LANES_EPROTO;
}

static void next_response(lg_http_t *h, const lg_http_cb_t *cb) {
    int keep = h->keep_alive;
    lg_http_init(h);
    h->keep_alive = keep;                        /* the caller reads it after on_end */
    cb->on_end(cb->arg);
}

/* A comma-separated header value contains token (case-insensitive). */
static int has_token(const char *v, const char *token) {
    size_t n = strlen(token);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',') v++;
        size_t k = strcspn(v, ",");
        size_t e = k;
        while (e > 0 && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e == n && strncasecmp(v, token, n) == 0) return 1;
        v += k;
    }
    return 0;
}

static int status_line(lg_http_t *h, const char *s) {
    if (strncmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return broken(h, "not an HTTP/1.x status line");
    if (s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
        (s[12] != ' ' && s[12] != '\0'))
        return broken(h, "bad status code");
    h->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    h->keep_alive = s[7] == '1';                 /* HTTP/1.0 closes unless it says keep-alive */
    h->state = ST_HEADER;
    return LANES_OK;
}

static int header_line(lg_http_t *h, char *s) {
    char *colon = strchr(s, ':');
    if (!colon || colon == s) return broken(h, "bad header line");
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t vn = strlen(v);
    while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t')) v[--vn] = '\0';
    if (strcasecmp(s, "Content-Length") == 0) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (end == v || *end || n < 0 || (h->length >= 0 && h->length != n))
            return broken(h, "bad Content-Length");
        h->length = n;
    } else if (strcasecmp(s, "Transfer-Encoding") == 0) {
        if (!has_token(v, "chunked")) return broken(h, "a transfer-encoding other than chunked");
        h->chunked = 1;
    } else if (strcasecmp(s, "Connection") == 0) {
        if (has_token(v, "close")) h->keep_alive = 0;
        else if (has_token(v, "keep-alive")) h->keep_alive = 1;
    }
    return LANES_OK;
}

/* The blank line after the headers: picks the body's framing (RFC 9112 section 6.3). */
static int end_of_head(lg_http_t *h, const lg_http_cb_t *cb) {
    if (h->status < 200) {                       /* interim: its final response follows */
        int keep = h->keep_alive;
        lg_http_init(h);
        h->keep_alive = keep;
        return LANES_OK;
    }
    cb->on_head(cb->arg, h->status);
    if (h->status == 204 || h->status == 304) {
        next_response(h, cb);
    } else if (h->chunked) {
        h->state = ST_CHUNK_SIZE;
    } else if (h->length >= 0) {
        h->remain = h->length;
        h->state = ST_BODY_LEN;
        if (h->remain == 0) next_response(h, cb);
    } else {
        h->keep_alive = 0;                       /* the body ends where the connection does */
        h->state = ST_BODY_CLOSE;
    }
    return LANES_OK;
}

static int chunk_size_line(lg_http_t *h, const char *s) {
    char *end;
    if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
        return broken(h, "bad chunk size");
    long long n = strtoll(s, &end, 16);
    while (*end == ' ' || *end == '\t') end++;
    if ((*end && *end != ';') || n < 0 || n > (1ll << 40)) return broken(h, "bad chunk size");
    h->remain = n;
    h->state = n == 0 ? ST_TRAILER : ST_CHUNK_DATA;
    return LANES_OK;
}

/* One complete line of the head, a chunk size, a chunk's CRLF or a trailer. */
static int on_line(lg_http_t *h, char *s, const lg_http_cb_t *cb) {
    switch (h->state) {
    case ST_STATUS:
        return *s ? status_line(h, s) : LANES_OK;   /* a stray CRLF between responses */
    case ST_HEADER:
        return *s ? header_line(h, s) : end_of_head(h, cb);
    case ST_CHUNK_SIZE:
        return chunk_size_line(h, s);
    case ST_CHUNK_CRLF:
        if (*s) return broken(h, "chunk data longer than its size");
        h->state = ST_CHUNK_SIZE;
        return LANES_OK;
    case ST_TRAILER:
        if (!*s) next_response(h, cb);
        return LANES_OK;
    default:
        return broken(h, "decoder state");
    }
}

int lg_http_feed(lg_http_t *h, const char *p, size_t n, const lg_http_cb_t *cb) {
    const char *end = p + n;
    while (p < end) {
        if (h->state == ST_BROKEN) return LANES_EPROTO;
        if (h->state == ST_BODY_CLOSE) {
            cb->on_body(cb->arg, p, (size_t)(end - p));
            return LANES_OK;
        }
        if (h->state == ST_BODY_LEN || h->state == ST_CHUNK_DATA) {
            size_t k = (size_t)(end - p);
            if ((long long)k > h->remain) k = (size_t)h->remain;
            cb->on_body(cb->arg, p, k);
            p += k;
            h->remain -= (long long)k;
            if (h->remain == 0) {
                if (h->state == ST_CHUNK_DATA) h->state = ST_CHUNK_CRLF;
                else next_response(h, cb);
            }
            continue;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t k = (size_t)((nl ? nl : end) - p);
        if (h->line_len + k >= sizeof h->line) return broken(h, "a header or chunk line too long");
        memcpy(h->line + h->line_len, p, k);
        h->line_len += k;
        p += k;
        if (!nl) break;
        p++;                                     /* the '\n' */
        size_t len = h->line_len;
        if (len > 0 && h->line[len - 1] == '\r') len--;
        h->line[len] = '\0';
        h->line_len = 0;
        if (memchr(h->line, '\0', len)) return broken(h, "a NUL byte in the head");
        int rc = on_line(h, h->line, cb);
        if (rc < 0) return rc;
    }
    return h->state == ST_BROKEN ? LANES_EPROTO : LANES_OK;
}

int lg_http_eof(lg_http_t *h, const lg_http_cb_t *cb) {
    if (h->state == ST_BODY_CLOSE) {
        next_response(h, cb);
        h->keep_alive = 0;
        return LANES_OK;
    }
    if (h->state == ST_BROKEN) return LANES_EPROTO;
    if (lg_http_idle(h)) return LANES_OK;
    return broken(h, "the server closed the connection in the middle of a response");
}
