#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

/* A log-bucketed latency histogram in microseconds, in the spirit of HdrHistogram.
 * Values below LG_HIST_EXACT_US are kept exactly (1 us buckets); above, each power of two is split
 * into 64 buckets, so a reported percentile is within LG_HIST_REL_ERR of a recorded value of that
 * rank. Values above LG_HIST_MAX_US (about 19 hours) are clamped. Fixed size: recording never
 * allocates. */
#define LG_HIST_EXACT_US 128u
#define LG_HIST_REL_ERR (1.0 / 128.0)
#define LG_HIST_MAX_US ((uint64_t)1 << 36)

typedef struct lg_hist lg_hist_t;                /* opaque */

/* Returns a new, empty histogram (NULL when out of memory); the caller frees it with destroy. */
lg_hist_t *lg_hist_create(void);
void lg_hist_destroy(lg_hist_t *h);              /* NULL is fine */
void lg_hist_reset(lg_hist_t *h);

/* Records one value of us microseconds (count times for record_n). */
void lg_hist_record(lg_hist_t *h, uint64_t us);
void lg_hist_record_n(lg_hist_t *h, uint64_t us, uint64_t count);
/* Adds every value of src into dst. */
void lg_hist_merge(lg_hist_t *dst, const lg_hist_t *src);

uint64_t lg_hist_count(const lg_hist_t *h);
uint64_t lg_hist_min(const lg_hist_t *h);        /* exact; 0 when empty */
uint64_t lg_hist_max(const lg_hist_t *h);        /* exact (after clamping); 0 when empty */
double lg_hist_mean(const lg_hist_t *h);         /* exact; 0 when empty */
/* The nearest-rank percentile p in [0, 100]: the value of rank ceil(p/100 * count) (rank 1 for
 * p = 0), as the middle of its bucket clamped to [min, max]. 0 when empty. */
double lg_hist_percentile(const lg_hist_t *h, double p);

#endif
