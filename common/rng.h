/* A small, fast, seedable random number generator (xoshiro256**, seeded through splitmix64).
 * Every random choice in nasdet goes through one of these, so a seed fixes a run. The state is
 * four integers: checkpoints store it to resume a run bit for bit. */
#ifndef ND_RNG_H
#define ND_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nd_rng {
    uint64_t s[4];
} nd_rng;

/* Seed the generator; the same seed always gives the same sequence on every machine. */
void nd_rng_seed(nd_rng *rng, uint64_t seed);
/* An independent generator for sub-stream `stream` of `seed` (e.g. one per image or worker),
 * so that work can be split across threads without changing the numbers drawn. */
void nd_rng_seed_stream(nd_rng *rng, uint64_t seed, uint64_t stream);

uint64_t nd_rng_u64(nd_rng *rng);
/* Uniform double in [0, 1) with 53 random bits. */
double nd_rng_uniform(nd_rng *rng);
/* Uniform double in [lo, hi). */
double nd_rng_range(nd_rng *rng, double lo, double hi);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t nd_rng_below(nd_rng *rng, uint64_t n);
/* Standard normal (Box-Muller; two uniforms per call, nothing cached, so the state alone
 * describes the generator). */
double nd_rng_normal(nd_rng *rng);

#ifdef __cplusplus
}
#endif

#endif
