#ifndef LANES_TEST_RNG_H
#define LANES_TEST_RNG_H

/* The kernel tests' random stream: SplitMix64 from a per-test start, LANES_TEST_SEED replays a
 * run (test_rng_seed prints the seed in use). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lanes_rand.h"

static uint64_t rng_state;

static inline void test_rng_seed(uint64_t dflt) {
    const char *seed = getenv("LANES_TEST_SEED");
    rng_state = seed ? strtoull(seed, NULL, 0) : dflt;
    printf("seed 0x%llx\n", (unsigned long long)rng_state);
}
static inline uint64_t rng_next(void) { return lanes_splitmix64(&rng_state); }
static inline int rng_int(int lo, int hi) {
    return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1));
}
/* Uniform in [-1, 1) on a 2^-23 grid. */
static inline float rng_unit(void) {
    return (float)(rng_next() >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

static inline uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

#endif
