/* Random search, the paper's baseline: every decision uniform over its valid values. */
#include "search/search.h"

#include "common/status.h"

int srch_random_sample(const srch_space *space, nd_rng *rng, int *decisions, int n, nas_genotype *g) {
    int want = srch_space_n_decisions(space);
    if (n != want) return nd_fail(ND_ERR_INVALID, "%d decisions, the %s space has %d", n, space->name, want);
    for (int t = 0; t < n; t++) {
        srch_step st;
        srch_space_step(space, t, &st);
        decisions[t] = (int)nd_rng_below(rng, (uint64_t)st.n_valid);
    }
    return g ? srch_space_decode(space, decisions, n, g) : ND_OK;
}
