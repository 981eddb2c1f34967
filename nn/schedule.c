/* Learning-rate schedules: pure functions of the step. */
#include <math.h>

#include "nn/nn.h"

double nn_lr_cosine(double base, int64_t step, int64_t total, double min_lr) {
    if (total <= 0 || step >= total) return min_lr;
    if (step <= 0) return base;
    double pi = 3.14159265358979323846;
    return min_lr + 0.5 * (base - min_lr) * (1.0 + cos(pi * (double)step / (double)total));
}

double nn_lr_step(double base, int64_t step, int64_t step_size, double gamma) {
    if (step_size <= 0 || step <= 0) return base;
    return base * pow(gamma, (double)(step / step_size));
}

double nn_lr_exponential(double base, int64_t step, int64_t decay_steps, double rate, int staircase) {
    if (decay_steps <= 0 || step <= 0) return base;
    double e = (double)step / (double)decay_steps;
    if (staircase) e = floor(e);
    return base * pow(rate, e);
}

double nn_lr_warmup(double lr, int64_t step, int64_t warmup, double start) {
    if (warmup <= 0 || step >= warmup) return lr;
    if (step < 0) step = 0;
    return lr * (start + (1.0 - start) * (double)step / (double)warmup);
}
