#include "hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bucket layout: index v for v < 128; above, v with its top bit at position m (m >= 7) falls in
 * index e*64 + (v >> e) with e = m - 6, so (v >> e) is in [64, 128) and a bucket is 2^e wide at a
 * value of at least 64 * 2^e: the middle of the bucket is within 1/128 of any value in it. */
#define SUB_BITS 7
#define HALF (1u << (SUB_BITS - 1))
#define NBUCKETS (((36 - (SUB_BITS - 1)) + 1) * HALF + HALF)

struct lg_hist {
    uint64_t count;
    uint64_t min, max;
    double sum;                                  /* us, for the mean */
    uint64_t b[NBUCKETS];
};

static unsigned bucket_of(uint64_t v) {
    if (v < LG_HIST_EXACT_US) return (unsigned)v;
    unsigned m = 63u - (unsigned)__builtin_clzll(v);
    unsigned e = m - (SUB_BITS - 1);
    return e * HALF + (unsigned)(v >> e);
}

/* The lowest value and the width of bucket i. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *width) {
    if (i < LG_HIST_EXACT_US) {
        *lo = i;
        *width = 1;
        return;
    }
    unsigned e = i / HALF - 1;
    uint64_t sub = (uint64_t)(i - e * HALF);    /* in [64, 128) */
    *lo = sub << e;
    *width = (uint64_t)1 << e;
}

lg_hist_t *lg_hist_create(void) {
    lg_hist_t *h = malloc(sizeof *h);
    if (h) lg_hist_reset(h);
    return h;
}

void lg_hist_destroy(lg_hist_t *h) { free(h); }

void lg_hist_reset(lg_hist_t *h) {
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void lg_hist_record_n(lg_hist_t *h, uint64_t us, uint64_t count) {
    if (count == 0) return;
    if (us > LG_HIST_MAX_US) us = LG_HIST_MAX_US;
    h->b[bucket_of(us)] += count;
    h->count += count;
    h->sum += (double)us * (double)count;
    if (us < h->min) h->min = us;
    if (us > h->max) h->max = us;
}

void lg_hist_record(lg_hist_t *h, uint64_t us) { lg_hist_record_n(h, us, 1); }

void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src) {
    if (src->count == 0) return;
    for (unsigned i = 0; i < NBUCKETS; i++) dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t lg_hist_count(const lg_hist_t *h) { return h->count; }
uint64_t lg_hist_min(const lg_hist_t *h) { return h->count ? h->min : 0; }
uint64_t lg_hist_max(const lg_hist_t *h) { return h->max; }
double lg_hist_mean(const lg_hist_t *h) { return h->count ? h->sum / (double)h->count : 0.0; }

double lg_hist_percentile(const lg_hist_t *h, double p) {
    if (h->count == 0) return 0.0;
    if (p < 0) p = 0;
    if (p > 100) p = 100;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo, w;
            bucket_range(i, &lo, &w);
            double v = (double)lo + (double)(w - 1) / 2.0;
            if (v < (double)h->min) v = (double)h->min;
            if (v > (double)h->max) v = (double)h->max;
            return v;
        }
    }
    return (double)h->max;
}
