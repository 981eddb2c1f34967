/* Parameter initialisers, all drawn from a caller's seeded nd_rng in index order. */
#include <math.h>

#include "nn/nn_impl.h"

static void fans(const nn_tensor *t, double *fan_in, double *fan_out) {
    if (t->ndim == 4) {
        double rf = (double)(t->shape[2] * t->shape[3]);
        *fan_in = (double)t->shape[1] * rf;
        *fan_out = (double)t->shape[0] * rf;
    } else if (t->ndim == 2) {
        *fan_in = (double)t->shape[1];
        *fan_out = (double)t->shape[0];
    } else {
        *fan_in = *fan_out = (double)t->numel;
    }
}

void nn_init_variance_scaling(nn_tensor *t, double scale, nn_fan fan, nn_dist dist, nd_rng *rng) {
    double fi, fo;
    fans(t, &fi, &fo);
    double f = fan == NN_FAN_IN ? fi : (fan == NN_FAN_OUT ? fo : 0.5 * (fi + fo));
    double var = scale / (f > 1.0 ? f : 1.0);
    if (dist == NN_DIST_UNIFORM) {
        double lim = sqrt(3.0 * var);
        nn_init_uniform(t, -lim, lim, rng);
    } else if (dist == NN_DIST_NORMAL) {
        nn_init_normal(t, 0.0, sqrt(var), rng);
    } else {
        /* TF: a normal cut at two standard deviations, its sigma divided by the std of the
         * unit normal truncated to [-2, 2] so that the variance stays `var`. */
        double sd = sqrt(var) / 0.87962566103423978;
        for (int64_t i = 0; i < t->numel; i++) {
            double z;
            do z = nd_rng_normal(rng);
            while (z < -2.0 || z > 2.0);
            t->data[i] = (float)(z * sd);
        }
    }
}

void nn_init_uniform(nn_tensor *t, double lo, double hi, nd_rng *rng) {
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)nd_rng_range(rng, lo, hi);
}

void nn_init_normal(nn_tensor *t, double mean, double stddev, nd_rng *rng) {
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = (float)(mean + stddev * nd_rng_normal(rng));
}

void nn_init_constant(nn_tensor *t, float value) {
    for (int64_t i = 0; i < t->numel; i++) t->data[i] = value;
}
