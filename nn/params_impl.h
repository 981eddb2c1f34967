/* The parameter store's layout, shared by params.c, optim.c, ema.c and checkpoint.c. */
#ifndef NN_PARAMS_IMPL_H
#define NN_PARAMS_IMPL_H

#include "nn/nn_impl.h"

typedef struct nn_param {
    nn_tensor t;      /* data and (trainable) grad are malloc'ed by the store */
    uint32_t flags;   /* NN_PARAM_* */
    float *m, *v;     /* optimizer moments, NULL until the first step that needs them */
    float *ema;       /* EMA shadow, NULL until nn_params_ema_update */
} nn_param;

struct nn_params {
    nn_param **items; /* entries are allocated one by one so tensor pointers stay valid */
    int64_t n, cap;
    int64_t step;
    const nn_backend *be; /* where every array of the store lives (nn_params_to_device); CPU at first */
};

/* Find by name (NULL when absent). */
nn_param *nn__params_find(const nn_params *ps, const char *name);
/* Zeroed float array of n elements (aborts when out of memory). */
float *nn__param_array(int64_t n);
/* The same in the store's memory (device memory for a device store). */
float *nn__params_array(const nn_params *ps, int64_t n);

#endif
