/* Formula weights and images shared by the backbone tests and the benchmark: the same numbers
 * as tests/fixtures/bb_ref/make_fixture.py computes for the PyTorch reference, so fixtures hold
 * only logits. Header-only (static inline functions) to stay out of the library. */
#ifndef BB_FORMULA_H
#define BB_FORMULA_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nn/nn.h"

static inline uint32_t bb_fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

/* Value i of the tensor `name` (a TF-slim name; the leaf decides the scale). */
static inline float bb_formula_value(const char *name, const nn_tensor *t, int64_t i) {
    const char *leaf = strrchr(name, '/');
    leaf = leaf ? leaf + 1 : name;
    double u = sin(0.7 * (double)i + (double)(bb_fnv1a(name) % 10007u) * 0.001 + 0.3);
    if (!strcmp(leaf, "weights") || !strcmp(leaf, "depthwise_weights") || !strcmp(leaf, "pointwise_weights")) {
        int64_t fan_in = 1;
        for (int d = 1; d < t->ndim; d++) fan_in *= t->shape[d];
        return (float)(sqrt(3.0 / (double)fan_in) * u);
    }
    if (!strcmp(leaf, "gamma")) return (float)(1.0 + 0.2 * u);
    if (!strcmp(leaf, "moving_variance")) return (float)(1.0 + 0.25 * (u + 1.0));
    return (float)(0.1 * u); /* biases, beta, moving_mean */
}

/* Fill every tensor of the store (names with `skip` characters of prefix removed). */
static inline void bb_formula_fill(nn_params *ps, size_t skip) {
    for (int64_t k = 0; k < nn_params_count(ps); k++) {
        nn_tensor *t = nn_params_at(ps, k);
        for (int64_t i = 0; i < t->numel; i++) t->data[i] = bb_formula_value(t->name + skip, t, i);
    }
}

/* The fixture images, flat index i over [b, c, h, w]: 0.9 sin(12.9898 i + 0.5 sin(0.01 i)). */
static inline void bb_formula_image(float *x, int b, int c, int h, int w) {
    int64_t n = (int64_t)b * c * h * w;
    for (int64_t i = 0; i < n; i++) x[i] = (float)(0.9 * sin(12.9898 * (double)i + 0.5 * sin(0.01 * (double)i)));
}

#endif
