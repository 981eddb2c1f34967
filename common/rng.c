#include "common/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void nd_rng_seed(nd_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64(&x);
}

void nd_rng_seed_stream(nd_rng *rng, uint64_t seed, uint64_t stream) {
    /* Mix the stream index through splitmix first so that neighbouring streams of
     * neighbouring seeds never coincide. */
    uint64_t x = stream ^ 0x5851F42D4C957F2Dull;
    nd_rng_seed(rng, seed ^ splitmix64(&x));
}

uint64_t nd_rng_u64(nd_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nd_rng_uniform(nd_rng *rng) { return (double)(nd_rng_u64(rng) >> 11) * 0x1.0p-53; }

double nd_rng_range(nd_rng *rng, double lo, double hi) { return lo + (hi - lo) * nd_rng_uniform(rng); }

uint64_t nd_rng_below(nd_rng *rng, uint64_t n) {
    /* Rejection sampling on the top of the range keeps every value equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = nd_rng_u64(rng);
    while (x >= limit);
    return x % n;
}

double nd_rng_normal(nd_rng *rng) {
    double u1 = nd_rng_uniform(rng), u2 = nd_rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
