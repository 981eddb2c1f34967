/* Balanced positive/negative sampling and ground truth appended to proposals. */
#include <stdlib.h>

#include "common/status.h"
#include "detector/frcnn.h"

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Partial Fisher-Yates: the first k of `v` become a uniform draw without replacement. */
static void draw(int64_t *v, int64_t count, int64_t k, nd_rng *rng) {
    for (int64_t i = 0; i < k; i++) {
        int64_t r = i + (int64_t)nd_rng_below(rng, (uint64_t)(count - i));
        int64_t t = v[i];
        v[i] = v[r];
        v[r] = t;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_i64);
}

int det_sample_balanced(const int64_t *matches, int64_t n, int64_t batch, float pos_fraction,
                        nd_rng *rng, int64_t *pos, int64_t *n_pos, int64_t *neg,
                        int64_t *n_neg) {
    ND_ASSERT(rng && n_pos && n_neg, "NULL argument");
    *n_pos = *n_neg = 0;
    if (n < 0 || batch < 0)
        return nd_fail(ND_ERR_INVALID, "sample: %lld boxes, batch %lld", (long long)n,
                       (long long)batch);
    if (!(pos_fraction >= 0.0f && pos_fraction <= 1.0f))
        return nd_fail(ND_ERR_INVALID, "sample: positive fraction %g outside [0, 1]",
                       (double)pos_fraction);
    if (n == 0 || batch == 0) return ND_OK;
    ND_ASSERT(matches && pos && neg, "NULL array");
    int64_t *all = malloc((size_t)n * sizeof *all);
    if (!all) return nd_fail(ND_ERR_NOMEM, "sample: out of memory");
    /* positives from the front, negatives from the back of one scratch array */
    int64_t np = 0, nn = 0;
    for (int64_t i = 0; i < n; i++) {
        if (matches[i] >= 0) all[np++] = i;
        else if (matches[i] == DET_MATCH_BELOW) all[n - 1 - nn++] = i;
    }
    int64_t want_pos = (int64_t)((double)batch * (double)pos_fraction);
    int64_t kp = np < want_pos ? np : want_pos;
    int64_t kn = nn < batch - kp ? nn : batch - kp;
    int64_t *negs = all + n - nn;
    draw(all, np, kp, rng);
    draw(negs, nn, kn, rng);
    for (int64_t i = 0; i < kp; i++) pos[i] = all[i];
    for (int64_t i = 0; i < kn; i++) neg[i] = negs[i];
    *n_pos = kp;
    *n_neg = kn;
    free(all);
    return ND_OK;
}

int64_t det_proposals_append_gt(const float *proposals, int64_t n, const float *gt,
                                const uint8_t *is_crowd, int64_t m, float *out) {
    ND_ASSERT(n >= 0 && m >= 0, "negative count");
    ND_ASSERT(out && (n == 0 || proposals) && (m == 0 || gt), "NULL array");
    for (int64_t i = 0; i < 4 * n; i++) out[i] = proposals[i];
    int64_t k = n;
    for (int64_t g = 0; g < m; g++) {
        if (is_crowd && is_crowd[g]) continue;
        for (int c = 0; c < 4; c++) out[4 * k + c] = gt[4 * g + c];
        k++;
    }
    return k;
}
