/* Stable descending sort of scores as an LSD radix sort on 64-bit keys (score bits, index):
 * linear time, and the index half makes every key distinct, so the order is total. */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "detector/score_sort.h"

/* Floats map to unsigned integers that sort in the same order; -0 is made +0 first because
 * torch's sort compares them equal. Inverting gives decreasing score. */
static uint64_t sort_key(float score, int32_t idx) {
    if (score == 0.0f) score = 0.0f;
    uint32_t u;
    memcpy(&u, &score, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return ((uint64_t)(~u) << 32) | (uint32_t)idx;
}

int det_sort_by_score(const float *scores, int32_t n, int32_t *order) {
    if (n <= 0) return ND_OK;
    uint64_t *keys = malloc(2 * (size_t)n * sizeof *keys);
    if (!keys) return nd_fail(ND_ERR_NOMEM, "sort: out of memory for %d scores", n);
    uint64_t *tmp = keys + n;
    for (int32_t i = 0; i < n; i++) keys[i] = sort_key(scores[i], i);
    /* 8 bits a pass; a pass where every key has the same digit is skipped (the index half
     * has few significant bits, many scores share their exponent byte) */
    for (int shift = 0; shift < 64; shift += 8) {
        int32_t count[257] = {0};
        for (int32_t i = 0; i < n; i++) count[((keys[i] >> shift) & 0xff) + 1]++;
        int trivial = 0;
        for (int d = 1; d <= 256; d++)
            if (count[d] == n) trivial = 1;
        if (trivial) continue;
        for (int d = 0; d < 256; d++) count[d + 1] += count[d];
        for (int32_t i = 0; i < n; i++) tmp[count[(keys[i] >> shift) & 0xff]++] = keys[i];
        memcpy(keys, tmp, (size_t)n * sizeof *keys);
    }
    for (int32_t i = 0; i < n; i++) order[i] = (int32_t)(keys[i] & 0xffffffffu);
    free(keys);
    return ND_OK;
}
