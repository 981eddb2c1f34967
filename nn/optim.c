/* Optimizers (SGD/momentum/Nesterov, RMSProp with TF semantics, Adam) and EMA. Moments live in
 * the parameter store so that checkpoints carry them. Each parameter is updated element by
 * element, independently: results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "nn/params_impl.h"

nn_optim_config nn_optim_sgd(double momentum, int nesterov, double weight_decay) {
    nn_optim_config c = {NN_OPTIM_SGD, momentum, nesterov, weight_decay, 0.0, 0.0, 0.0, 0.0};
    return c;
}

nn_optim_config nn_optim_rmsprop(double decay, double momentum, double eps, double weight_decay) {
    nn_optim_config c = {NN_OPTIM_RMSPROP, momentum, 0, weight_decay, decay, eps, 0.0, 0.0};
    return c;
}

nn_optim_config nn_optim_adam(double beta1, double beta2, double eps, double weight_decay) {
    nn_optim_config c = {NN_OPTIM_ADAM, 0.0, 0, weight_decay, 0.0, eps, beta1, beta2};
    return c;
}

#ifdef NN_USE_CUDA
/* A device store: the same updates, element by element, in nn/cuda/optim.cu. */
static void step_param_device(const nn_params *ps, nn_param *p, const nn_optim_config *c, double lr, int64_t t) {
    int64_t n = p->t.numel;
    float wd = (p->flags & NN_PARAM_NO_DECAY) ? 0.0f : (float)c->weight_decay;
    switch (c->kind) {
    case NN_OPTIM_SGD:
        if (c->momentum != 0.0 && !p->m) p->m = nn__params_array(ps, n);
        nn__cuda_sgd(p->t.data, p->t.grad, p->m, n, (float)lr, wd, (float)c->momentum, c->nesterov);
        break;
    case NN_OPTIM_RMSPROP:
        if (!p->v) { /* TF starts the mean square at 1 */
            p->v = nn__params_array(ps, n);
            nn__cuda_fill(p->v, 1.0f, n);
        }
        if (!p->m) p->m = nn__params_array(ps, n);
        nn__cuda_rmsprop(p->t.data, p->t.grad, p->v, p->m, n, (float)lr, wd, (float)c->decay, (float)c->momentum,
                         (float)c->eps);
        break;
    case NN_OPTIM_ADAM:
        if (!p->m) p->m = nn__params_array(ps, n);
        if (!p->v) p->v = nn__params_array(ps, n);
        nn__cuda_adam(p->t.data, p->t.grad, p->m, p->v, n, (float)lr, wd, (float)c->beta1, (float)c->beta2,
                      (float)c->eps, (float)(1.0 - pow(c->beta1, (double)t)), (float)(1.0 - pow(c->beta2, (double)t)));
        break;
    }
}
#endif

static void step_param(nn_param *p, const nn_optim_config *c, double lr, int64_t t) {
    int64_t n = p->t.numel;
    float *w = p->t.data;
    const float *g0 = p->t.grad;
    float wd = (p->flags & NN_PARAM_NO_DECAY) ? 0.0f : (float)c->weight_decay;
    switch (c->kind) {
    case NN_OPTIM_SGD: {
        float mom = (float)c->momentum, flr = (float)lr;
        if (mom != 0.0f && !p->m) p->m = nn__param_array(n);
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            float g = g0[i] + wd * w[i];
            if (mom != 0.0f) {
                p->m[i] = mom * p->m[i] + g;
                g = c->nesterov ? g + mom * p->m[i] : p->m[i];
            }
            w[i] -= flr * g;
        }
        break;
    }
    case NN_OPTIM_RMSPROP: {
        if (!p->v) { /* TF starts the mean square at 1 */
            p->v = nn__param_array(n);
            for (int64_t i = 0; i < n; i++) p->v[i] = 1.0f;
        }
        if (!p->m) p->m = nn__param_array(n);
        float d = (float)c->decay, mom = (float)c->momentum, eps = (float)c->eps, flr = (float)lr;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            float g = g0[i] + wd * w[i];
            p->v[i] = d * p->v[i] + (1.0f - d) * g * g;
            p->m[i] = mom * p->m[i] + flr * g / sqrtf(p->v[i] + eps);
            w[i] -= p->m[i];
        }
        break;
    }
    case NN_OPTIM_ADAM: {
        if (!p->m) p->m = nn__param_array(n);
        if (!p->v) p->v = nn__param_array(n);
        float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
        float c1 = (float)(1.0 - pow(c->beta1, (double)t)), c2 = (float)(1.0 - pow(c->beta2, (double)t));
        float flr = (float)lr;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) {
            float g = g0[i] + wd * w[i];
            p->m[i] = b1 * p->m[i] + (1.0f - b1) * g;
            p->v[i] = b2 * p->v[i] + (1.0f - b2) * g * g;
            w[i] -= flr * (p->m[i] / c1) / (sqrtf(p->v[i] / c2) + eps);
        }
        break;
    }
    }
}

void nn_optim_step(nn_params *ps, const nn_optim_config *cfg, double lr) {
    ps->step++;
    for (int64_t i = 0; i < ps->n; i++) {
        nn_param *p = ps->items[i];
        if (p->flags & NN_PARAM_BUFFER) continue;
#ifdef NN_USE_CUDA
        if (ps->be == &nn_backend_cuda) {
            step_param_device(ps, p, cfg, lr, ps->step);
            continue;
        }
#endif
        step_param(p, cfg, lr, ps->step);
    }
}

void nn_params_ema_update(nn_params *ps, double decay) {
    float d = (float)decay;
    for (int64_t i = 0; i < ps->n; i++) {
        nn_param *p = ps->items[i];
        if (!p->ema) {
            p->ema = nn__params_array(ps, p->t.numel);
            ps->be->copy(p->ema, p->t.data, (size_t)p->t.numel * sizeof(float));
            continue;
        }
#ifdef NN_USE_CUDA
        if (ps->be == &nn_backend_cuda) {
            nn__cuda_ema(p->ema, p->t.data, p->t.numel, d);
            continue;
        }
#endif
        for (int64_t j = 0; j < p->t.numel; j++) p->ema[j] = d * p->ema[j] + (1.0f - d) * p->t.data[j];
    }
}

void nn_params_ema_swap(nn_params *ps) {
    for (int64_t i = 0; i < ps->n; i++) {
        nn_param *p = ps->items[i];
        if (!p->ema) continue;
        float *tmp = p->t.data;
        p->t.data = p->ema;
        p->ema = tmp;
    }
}

int nn_params_has_ema(const nn_params *ps) {
    for (int64_t i = 0; i < ps->n; i++)
        if (ps->items[i]->ema) return 1;
    return 0;
}
