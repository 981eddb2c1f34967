/* Group normalisation kernels for layer norm and instance norm. Groups are independent, so they
 * split across threads; the per-channel parameter gradients are summed over groups afterwards
 * in group order (deterministic). */
#include "nn/ops/norm_groups.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_impl.h"

void nn__norm_groups_forward(const float *x, float *y, const float *gamma, const float *beta, int64_t groups,
                             int64_t m, int64_t c, int64_t hw, float eps, float *mean, float *invstd) {
#pragma omp parallel for schedule(static) if (groups * m > NN_PAR_MIN)
    for (int64_t g = 0; g < groups; g++) {
        const float *xp = x + g * m;
        double s = 0.0, sq = 0.0;
        for (int64_t i = 0; i < m; i++) s += xp[i];
        double mu = s / (double)m;
        for (int64_t i = 0; i < m; i++) sq += (xp[i] - mu) * (xp[i] - mu);
        float inv = (float)(1.0 / sqrt(sq / (double)m + eps));
        mean[g] = (float)mu;
        invstd[g] = inv;
        for (int64_t i = 0; i < m; i++) {
            int64_t ch = ((g * m + i) / hw) % c;
            float v = (xp[i] - (float)mu) * inv;
            y[g * m + i] = v * (gamma ? gamma[ch] : 1.0f) + (beta ? beta[ch] : 0.0f);
        }
    }
}

void nn__norm_groups_backward(const float *x, const float *dy, const float *gamma, int64_t groups, int64_t m,
                              int64_t c, int64_t hw, const float *mean, const float *invstd, float *dx, float *dgamma,
                              float *dbeta) {
    if (dx) {
#pragma omp parallel for schedule(static) if (groups * m > NN_PAR_MIN)
        for (int64_t g = 0; g < groups; g++) {
            const float *xp = x + g * m, *gp = dy + g * m;
            float mu = mean[g], inv = invstd[g];
            double s1 = 0.0, s2 = 0.0; /* sum dxhat, sum dxhat * xhat */
            for (int64_t i = 0; i < m; i++) {
                int64_t ch = ((g * m + i) / hw) % c;
                double dxh = (double)gp[i] * (gamma ? gamma[ch] : 1.0f);
                s1 += dxh;
                s2 += dxh * (xp[i] - mu) * inv;
            }
            float k1 = (float)(s1 / (double)m), k2 = (float)(s2 / (double)m);
            for (int64_t i = 0; i < m; i++) {
                int64_t ch = ((g * m + i) / hw) % c;
                float dxh = gp[i] * (gamma ? gamma[ch] : 1.0f);
                dx[g * m + i] += inv * (dxh - k1 - (xp[i] - mu) * inv * k2);
            }
        }
    }
    if (dgamma || dbeta) {
        for (int64_t g = 0; g < groups; g++) {
            const float *xp = x + g * m, *gp = dy + g * m;
            for (int64_t i = 0; i < m; i++) {
                int64_t ch = ((g * m + i) / hw) % c;
                if (dgamma) dgamma[ch] += gp[i] * (xp[i] - mean[g]) * invstd[g];
                if (dbeta) dbeta[ch] += gp[i];
            }
        }
    }
}
