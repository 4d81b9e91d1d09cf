#include "sample.h"

#include <assert.h>
#include <math.h>

#include "kern/vexp.h"

/* Radix selection over the bits of a float's orderable key: bits 31..21, then 20..10, then 9..0.
 * A long level fills WAYS histograms (candidate j into way j % WAYS), so runs of one bucket do not
 * wait on each other's increments; a short one fills one, as clearing them would cost more. */
#define RADIX 2048
#define WAYS 4   /* a power of two */
static const struct {
    int shift;
    uint32_t mask;
} levels[] = {{21, 0x7ff}, {10, 0x7ff}, {0, 0x3ff}};

/* The optional first level of a mass selection: buckets of 1/LINEAR of a logit / T below the row's
 * maximum (the last bucket takes the rest), so a flat row spreads over many buckets where its bits
 * would share a few. */
#define LINEAR 64.0f

/* The top-k prefilter's block: the k-th largest block maximum bounds the k-th largest value. */
#define BLOCK 64

void eng__gumbel_bounds(float bound[1 << ENG_NOISE_BOUND_BITS]) {
    int sh = ENG_NOISE_BITS - ENG_NOISE_BOUND_BITS;
    for (uint32_t h = 0; h < 1u << ENG_NOISE_BOUND_BITS; h++)
        bound[h] = eng__gumbel_from_bits(((h + 1) << sh) - 1);   /* the group's largest draw */
}

static int blocks(int vocab) { return (vocab + BLOCK - 1) / BLOCK; }

size_t eng__sample_scratch_words(int vocab) {
    return 4 * (size_t)vocab + ((size_t)vocab + 1) / 2 + (size_t)blocks(vocab) + 2 * WAYS * RADIX;
}

/* Larger float, larger key (x is never NaN or -0 here). */
static uint32_t key_of(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b & 0x80000000u ? ~b : b | 0x80000000u;
}

/* The greedy choice: lowest id of the largest value, NaN never wins. */
static int32_t argmax_row(const float *v, int n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (v[i] > v[best] || (v[best] != v[best] && v[i] == v[i])) best = i;
    return best;
}

/* A prefix of the ranking (scaled logit descending, then id ascending): the ids whose key exceeds
 * key, and those equal to it up to id last. */
typedef struct {
    uint32_t key;
    int32_t last;
} cut_t;

static int in_cut(const float *x, int32_t i, cut_t cut) {
    uint32_t k = key_of(x[i]);
    return (k > cut.key) | ((k == cut.key) & (i <= cut.last));   /* no branches to mispredict */
}

/* ids (NULL: 0..n-1) narrowed to those in cut, in order, into out (which may be ids). */
static int filter_cut(const float *x, const int32_t *ids, int n, cut_t cut, int32_t *out) {
    int m = 0;
    for (int j = 0; j < n; j++) {
        int32_t i = ids ? ids[j] : j;
        out[m] = i, m += in_cut(x, i, cut);   /* branch-free compaction */
    }
    return m;
}

static float sum_ids(const float *p, const int32_t *ids, int n) {
    float m = 0.0f;
    for (int j = 0; j < n; j++) m += p[ids[j]];
    return m;
}

/* Samples an id of cut among all vocab ids, in proportion to p, at u: per-block sums of the kept
 * mass (they vectorise) into bsum, then the block where u * mass falls, then the id inside it. */
static int32_t sample_cut(const float *x, const float *p, int vocab, cut_t cut, float u,
                          float *bsum) {
    float xc = x[cut.last];   /* the cut's value */
    int nb = blocks(vocab);
    float mass = 0.0f;
    for (int b = 0; b < nb; b++) {
        int i0 = b * BLOCK, i1 = vocab - i0 < BLOCK ? vocab : i0 + BLOCK;
        if (i0 <= cut.last && cut.last < i1 - 1) {   /* the block where ties stop being kept */
            bsum[b] = 0.0f;
            for (int i = i0; i < i1; i++)
                if (in_cut(x, i, cut)) bsum[b] += p[i];
        } else {   /* ties at xc are all kept (ids up to last) or none: one compare */
            float t = i1 - 1 <= cut.last ? nextafterf(xc, -INFINITY) : xc;
            float acc[8] = {0};
            int i = i0;
            for (; i + 8 <= i1; i += 8)
                for (int j = 0; j < 8; j++) {
                    float v = p[i + j];   /* read unconditionally, so the select vectorises */
                    acc[j] += x[i + j] > t ? v : 0.0f;
                }
            for (; i < i1; i++) acc[0] += x[i] > t ? p[i] : 0.0f;
            bsum[b] = ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
                      ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        }
        mass += bsum[b];
    }
    float r = u * mass, cum = 0.0f;
    int b = 0, end = -1;   /* end: the last block with any kept mass */
    for (; b < nb && !(r < cum + bsum[b]); b++) {
        if (bsum[b] > 0.0f) end = b;
        cum += bsum[b];
    }
    if (b == nb) b = end;   /* r rounded up to the whole mass: the last kept id */
    int i0 = b * BLOCK, i1 = vocab - i0 < BLOCK ? vocab : i0 + BLOCK;
    int32_t last = -1;
    for (int i = i0; i < i1; i++) {
        if (!in_cut(x, i, cut) || !(p[i] > 0.0f)) continue;
        last = i;
        if (r < (cum += p[i])) return i;
    }
    return last;   /* r rounded past the block's own running sum */
}

/* x = l * invt with NaN as -inf and -0 as +0, so keys order as values; returns the maximum (in
 * eight running maxima, so no chain runs through one register). */
static float scale_max(const float *l, float invt, float *x, int n) {
    float mx[8];
    for (int j = 0; j < 8; j++) mx[j] = -INFINITY;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float v = l[i + j] * invt;
            x[i + j] = v = v == v ? v + 0.0f : -INFINITY;
            mx[j] = v > mx[j] ? v : mx[j];
        }
    for (; i < n; i++) {
        float v = l[i] * invt;
        x[i] = v = v == v ? v + 0.0f : -INFINITY;
        mx[0] = v > mx[0] ? v : mx[0];
    }
    for (int j = 1; j < 8; j++) mx[0] = mx[j] > mx[0] ? mx[j] : mx[0];
    return mx[0];
}

/* Level lv's bucket of x (lv -1: the linear one below top); larger x, larger or equal bucket. */
static uint32_t bucket_of(float x, int lv, float top) {
    if (lv >= 0) return key_of(x) >> levels[lv].shift & levels[lv].mask;
    float d = (top - x) * LINEAR;   /* x = -inf gives inf, clamped */
    return RADIX - 1 - (uint32_t)(int32_t)(d < (float)(RADIX - 1) ? d : (float)(RADIX - 1));
}

/* The candidates (src, NULL: 0..n-1) whose bucket is b, in order, into cand (which may be src).
 * Four buckets are tested at once, as a word (a boundary bucket is usually rare), and only words
 * holding b are compacted, without branches. */
static int narrow(const uint16_t *bk, const int32_t *src, int n, uint16_t b, int32_t *cand) {
    const uint64_t ones = 0x0001000100010001u, pat = b * ones;
    int m = 0, j = 0;
    for (; j + 4 <= n; j += 4) {
        uint64_t w;
        memcpy(&w, bk + j, sizeof w);
        w ^= pat;   /* a zero lane where the bucket is b */
        if (((w - ones) & ~w & 0x8000800080008000u) == 0) continue;
        for (int t = j; t < j + 4; t++) cand[m] = src ? src[t] : t, m += bk[t] == b;
    }
    for (; j < n; j++) cand[m] = src ? src[j] : j, m += bk[j] == b;
    return m;
}

/* The shortest prefix of the ranking of ids (NULL: 0..n-1; in id order) that holds k of them or,
 * with masses p, reaches mass want, whichever comes first (all of them if neither does). Each
 * level histograms the remaining candidates' buckets, keeps the buckets above the one where a
 * target is met, and narrows to that bucket (into cand, which may be ids): O(n), nothing sorted.
 * A finite top (the maximum of x) adds the linear level first. Masses are summed per bucket in a
 * fixed order, so the cut depends only on the arguments. */
static cut_t select_prefix(const float *x, const float *p, const int32_t *ids, int n, int k,
                           float want, float top, int32_t *cand, uint16_t *bk, uint32_t *count,
                           float *mass) {
    int taken = 0, first = isfinite(top) ? -1 : 0;
    float acc = 0.0f;
    for (int lv = first; lv < 3; lv++) {
        const int32_t *src = lv > first ? cand : ids;
        int ways = n >= 8 * RADIX ? WAYS : 1;
        /* Buckets first, in loops without branches (the contiguous ones vectorise), then the
         * histogram from them; only the range of buckets in use is cleared and walked. */
        if (src)
            for (int j = 0; j < n; j++) bk[j] = (uint16_t)bucket_of(x[src[j]], lv, top);
        else if (lv < 0)
            for (int j = 0; j < n; j++) bk[j] = (uint16_t)bucket_of(x[j], -1, top);
        else
            for (int j = 0; j < n; j++) bk[j] = (uint16_t)bucket_of(x[j], lv, top);
        uint16_t lo = UINT16_MAX, hi = 0;
        for (int j = 0; j < n; j++) {
            lo = bk[j] < lo ? bk[j] : lo;
            hi = bk[j] > hi ? bk[j] : hi;
        }
        int counted = p == NULL || k < taken + n;
        for (int w = 0; w < ways; w++) {
            if (counted) memset(count + w * RADIX + lo, 0, (size_t)(hi - lo + 1) * sizeof *count);
            memset(mass + w * RADIX + lo, 0, (size_t)(hi - lo + 1) * sizeof *mass);
        }
        /* With masses and k above the candidates only the mass target can be met, so the
         * counts are not kept: a bucket without mass (empty, or only -inf ids, never drawn) is
         * skipped as an empty one. Once met, this stays so at the finer levels. */
        if (p == NULL)
            for (int j = 0; j < n; j++) count[bk[j] + (uint32_t)(j & (ways - 1)) * RADIX]++;
        else if (counted)
            for (int j = 0; j < n; j++) {
                uint32_t b = bk[j] + (uint32_t)(j & (ways - 1)) * RADIX;
                count[b]++;
                mass[b] += p[src ? src[j] : j];
            }
        else if (src)
            for (int j = 0; j < n; j++) mass[bk[j] + (uint32_t)(j & (ways - 1)) * RADIX] += p[src[j]];
        else
            for (int j = 0; j < n; j++) mass[bk[j] + (uint32_t)(j & (ways - 1)) * RADIX] += p[j];
        for (int b = lo; b <= hi; b++)   /* way 0 gets the totals */
            for (int w = 1; w < ways; w++) {
                if (counted) count[b] += count[w * RADIX + b];
                mass[b] += mass[w * RADIX + b];
            }
        int bnd = -1;   /* the previous non-empty bucket lies wholly inside the prefix */
        for (int b = hi; b >= lo; b--) {
            if (counted ? count[b] == 0 : !(mass[b] > 0.0f)) continue;
            if (bnd >= 0) {
                taken += counted ? (int)count[bnd] : 0;
                acc += mass[bnd];
            }
            bnd = b;
            if ((counted && taken + (int)count[b] >= k) || acc + mass[b] >= want) break;
        }
        assert(bnd >= 0);   /* the candidates hold the top id, or mass */
        n = narrow(bk, src, n, (uint16_t)bnd, cand);
    }
    /* The candidates share one value, in id order: take them until a target is met. */
    int j = 0;
    do {
        taken++;
        if (p) acc += p[cand[j]];
        j++;
    } while (j < n && taken < k && acc < want);
    return (cut_t){key_of(x[cand[0]]), cand[j - 1]};
}

int32_t eng__sample_row(const eng_kern_ops_t *kern, const float *logits, int vocab,
                        const eng_sampler_t *s, float u, void *scratch) {
    int nb = blocks(vocab);
    float *x = scratch;                               /* (vocab,) scaled logits */
    float *p = x + vocab;                             /* (vocab,) exp(x - max), where needed */
    int32_t *cand = (int32_t *)(p + vocab);           /* (vocab,) selection scratch */
    int32_t *list = cand + vocab;                     /* (vocab,) the ids still kept */
    float *bmax = (float *)(list + vocab);            /* (blocks,) */
    uint32_t *count = (uint32_t *)(bmax + nb);        /* (WAYS, RADIX) */
    float *mass = (float *)(count + WAYS * RADIX);    /* (WAYS, RADIX) */
    uint16_t *bk = (uint16_t *)(mass + WAYS * RADIX); /* (vocab,) selection buckets */
    float invt = 1.0f / s->temperature, max = -INFINITY;
    for (int b = 0; b < nb; b++) {
        int i0 = b * BLOCK, len = vocab - i0 < BLOCK ? vocab - i0 : BLOCK;
        bmax[b] = scale_max(logits + i0, invt, x + i0, len);
        max = bmax[b] > max ? bmax[b] : max;
    }
    /* No finite maximum (a +inf, or nothing but NaN and -inf): no distribution to sample. */
    if (!(max > -INFINITY && max < INFINITY)) return argmax_row(logits, vocab);

    int k = s->top_k > 0 && s->top_k < vocab ? s->top_k : vocab, n = vocab;
    const int32_t *ids = NULL;   /* NULL: every id */
    float kept_mass;
    if (k < vocab) {
        /* Only ids at or above the k-th largest block maximum can be among the k largest. */
        float t = -INFINITY;
        if (k <= nb) t = bmax[select_prefix(bmax, NULL, NULL, nb, k, INFINITY, NAN, cand,
                                            bk, count, mass).last];
        n = 0;
        for (int32_t i = 0; i < vocab; i++) list[n] = i, n += x[i] >= t;
        cut_t cut = select_prefix(x, NULL, list, n, k, INFINITY, NAN, cand, bk, count, mass);
        n = filter_cut(x, list, n, cut, list);
        ids = list;
        for (int j = 0; j < n; j++) {
            float v = x[list[j]];
            p[list[j]] = v > -INFINITY ? eng_vexpf(v - max) : 0.0f;
        }
        kept_mass = sum_ids(p, list, n);
    } else {
        kept_mass = kern->exp_sum(p, x, max, vocab);
    }
    if (s->top_p > 0.0f && s->top_p < 1.0f) {
        cut_t cut = select_prefix(x, p, ids, n, k, s->top_p * kept_mass, max, cand, bk,
                                   count, mass);
        if (ids == NULL) return sample_cut(x, p, vocab, cut, u, bmax);
        n = filter_cut(x, ids, n, cut, list);
        kept_mass = sum_ids(p, list, n);
    }

    /* Any fixed order samples the kept ids in proportion to p: walk them by id. */
    float r = u * kept_mass, cdf = 0.0f;
    for (int j = 0; j < n; j++) {
        int32_t i = ids ? ids[j] : j;
        if (r < (cdf += p[i])) return i;
    }
    /* r rounded up to the whole mass: the last kept id with any probability (the top id has 1). */
    for (int j = n - 1;; j--) {
        int32_t i = ids ? ids[j] : j;
        if (p[i] > 0.0f) return i;
    }
}

/* ---- log-probabilities ---------------------------------------------------------------------- */

/* Values per exp_sum call: its float sums stay short enough to lose nothing measurable before
 * they join the double total, and a block's copy stays in L1. */
#define LP_BLOCK 256

/* The largest finite value of row (n values), or -inf when there is none; eight running maxima,
 * as scale_max() keeps them. v - v == 0 holds exactly for finite v, so NaN and both infinities
 * drop out. */
static float finite_max(const float *row, int n) {
    float mx[8];
    for (int j = 0; j < 8; j++) mx[j] = -INFINITY;
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float v = row[i + j];
            mx[j] = v - v == 0.0f && v > mx[j] ? v : mx[j];
        }
    for (; i < n; i++) mx[0] = row[i] - row[i] == 0.0f && row[i] > mx[0] ? row[i] : mx[0];
    for (int j = 1; j < 8; j++) mx[0] = mx[j] > mx[0] ? mx[j] : mx[0];
    return mx[0];
}

/* sum of exp(v - max) over the finite v of row (max finite), in a fixed order: kern's exp_sum
 * of each LP_BLOCK values, with +inf made -inf (exp_sum drops -inf and NaN), each block's sum
 * added to a double. */
static double exp_sum_finite(const eng_kern_ops_t *kern, const float *row, int n, float max) {
    float x[LP_BLOCK], p[LP_BLOCK];
    double total = 0.0;
    for (int b = 0; b < n; b += LP_BLOCK) {
        int len = n - b < LP_BLOCK ? n - b : LP_BLOCK;
        for (int i = 0; i < len; i++) x[i] = row[b + i] < INFINITY ? row[b + i] : -INFINITY;
        total += kern->exp_sum(p, x, max, len);
    }
    return total;
}

/* Puts id i of value v into the list of the m best (of at most k) ids in lp, highest first;
 * returns the new count. */
static int top_insert(eng_logprobs_t *lp, int m, int k, int32_t i, float v) {
    int j = m < k ? m++ : k - 1;   /* a full list drops its last */
    for (; j > 0 && lp->top_lp[j - 1] < v; j--) {
        lp->top_lp[j] = lp->top_lp[j - 1];
        lp->top_id[j] = lp->top_id[j - 1];
    }
    lp->top_lp[j] = v;
    lp->top_id[j] = i;
    return m;
}

/* The top lp->top_n finite values of row into lp (ids, raw values for now), highest first, equal
 * values by lower id: ids are walked in ascending order and a value enters only above the
 * current last, so an equal later id never displaces an earlier one. Eight values are tested
 * against the last at once (the test vectorises); only a group with a candidate is walked.
 * Returns the count. */
static int top_finite(const float *row, int n, eng_logprobs_t *lp) {
    int k = lp->top_n, m = 0;
    float thr = -INFINITY;   /* the value to beat: -inf until the list is full */
    if (k == 0) return 0;
    for (int i0 = 0; i0 < n; i0 += 8) {
        int len = n - i0 < 8 ? n - i0 : 8, hit = 0;
        for (int j = 0; j < len; j++) hit |= row[i0 + j] > thr;
        if (!hit) continue;
        for (int32_t i = i0; i < i0 + len; i++) {
            float v = row[i];
            if (!(v > thr) || !isfinite(v)) continue;
            m = top_insert(lp, m, k, i, v);
            if (m == k) thr = lp->top_lp[k - 1];
        }
    }
    return m;
}

void eng__logprobs_row(const eng_kern_ops_t *kern, const float *row, int vocab, int32_t tok,
                       eng_logprobs_t *lp) {
    float max = finite_max(row, vocab);
    lp->chosen = -INFINITY;
    lp->n = 0;
    if (max == -INFINITY) return;
    double lse = (double)max + log(exp_sum_finite(kern, row, vocab, max));   /* the sum is >= 1 */
    if (isfinite(row[tok])) lp->chosen = (float)((double)row[tok] - lse);
    lp->n = top_finite(row, vocab, lp);
    for (int j = 0; j < lp->n; j++) lp->top_lp[j] = (float)((double)lp->top_lp[j] - lse);
}
