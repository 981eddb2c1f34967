/* Internal to detector/: ordering by score, shared by NMS and proposal selection. */
#ifndef DET_SCORE_SORT_H
#define DET_SCORE_SORT_H

#include <stdint.h>

/* order[0..n) = indices of `scores` by decreasing score, equal scores (-0 == +0) by increasing
 * index: torch.sort(stable=True, descending=True). Scores must not be NaN. Returns 0 or
 * ND_ERR_NOMEM. */
int det_sort_by_score(const float *scores, int32_t n, int32_t *order);

#endif
