#ifndef LANES_RAND_H
#define LANES_RAND_H

#include <stdint.h>

/* SplitMix64's output function (Steele, Lea, Flood 2014): a bijection of 64-bit words whose
 * output bits all depend on every input bit. The synthetic models, the synthetic tokenizer and the
 * sampler's counter-based noise all draw from it, so its bits must never change. */
static inline uint64_t lanes_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The SplitMix64 generator: advances *state by the golden-ratio step and returns the next word. */
static inline uint64_t lanes_splitmix64(uint64_t *state) {
    return lanes_mix64(*state += 0x9e3779b97f4a7c15ull);
}

#endif
