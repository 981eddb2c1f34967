/* Normalisation over contiguous groups with a per-channel affine, shared by layer_norm.c (one
 * group per example) and instance_norm.c (one group per example and channel). */
#ifndef NN_OPS_NORM_GROUPS_H
#define NN_OPS_NORM_GROUPS_H

#include <stdint.h>

/* x [G, M] viewed as groups of M elements; element i of group g has channel
 * ((g * M + i) / hw) % c. Saves mean/invstd [G]. y = xhat * gamma[ch] + beta[ch]. */
void nn__norm_groups_forward(const float *x, float *y, const float *gamma, const float *beta, int64_t groups,
                             int64_t m, int64_t c, int64_t hw, float eps, float *mean, float *invstd);
/* dy -> dx (+=, may be NULL), dgamma/dbeta (+=, may be NULL). */
void nn__norm_groups_backward(const float *x, const float *dy, const float *gamma, int64_t groups, int64_t m,
                              int64_t c, int64_t hw, const float *mean, const float *invstd, float *dx, float *dgamma,
                              float *dbeta);

#endif
