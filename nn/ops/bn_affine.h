/* Evaluation-mode batch norm as a per-channel affine map, y = x * scale + shift: one definition
 * for nn/ops/batch_norm.c and the fused convolution (nn/ops/conv2d_fused.c), so both compute the
 * same scale and shift bit for bit. */
#ifndef NN_OPS_BN_AFFINE_H
#define NN_OPS_BN_AFFINE_H

#include <math.h>

/* inv = 1/sqrt(var + eps), scale = inv * gamma (gamma NULL: 1), shift = beta - mean * scale
 * (beta NULL: 0); mean and var in double (training statistics) or widened from float. */
static inline void nn__bn_affine(double mean, double var, float eps, const float *gamma, const float *beta, int64_t ch,
                                 float *inv, float *scale, float *shift) {
    *inv = (float)(1.0 / sqrt(var + eps));
    *scale = *inv * (gamma ? gamma[ch] : 1.0f);
    *shift = (beta ? beta[ch] : 0.0f) - (float)mean * *scale;
}

#endif
