/* Policy updates of the controller: PPO's clipped surrogate and REINFORCE, both against an
 * exponential-moving-average reward baseline, optimised with Adam. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "search/search_driver.h"

static const char *const strategy_names[SRCH_STRATEGY_COUNT] = {"ppo", "reinforce", "random"};

const char *srch_strategy_name(srch_strategy s) {
    return (s >= 0 && s < SRCH_STRATEGY_COUNT) ? strategy_names[s] : "?";
}

int srch_strategy_from_name(const char *name, srch_strategy *s) {
    for (int i = 0; i < SRCH_STRATEGY_COUNT; i++)
        if (name && strcmp(name, strategy_names[i]) == 0) {
            *s = (srch_strategy)i;
            return ND_OK;
        }
    return nd_fail(ND_ERR_NOT_FOUND, "unknown search strategy \"%s\", expected ppo, reinforce or random",
                   name ? name : "");
}

srch_policy_config srch_policy_config_default(void) {
    srch_policy_config c;
    c.lr = 0.00035;
    c.entropy_weight = 1e-5;
    c.baseline_decay = 0.95;
    c.clip_eps = 0.2;
    c.epochs = 4;
    return c;
}

/* nn/ has no undo for an optimizer step, so a non-finite loss or gradient is caught before the
 * step it would poison. */
static int grads_finite(nn_params *ps) {
    for (int64_t i = 0; i < nn_params_count(ps); i++) {
        nn_tensor *t = nn_params_at(ps, i);
        if (!t->grad) continue;
        for (int64_t k = 0; k < t->numel; k++)
            if (!isfinite(t->grad[k])) return 0;
    }
    return 1;
}

/* The batch's log-probabilities and entropies under the current parameters, without a tape. */
static int score(srch_controller *c, nn_ctx *ctx, const int *decisions, int n, double *logp, double *ent) {
    nn_ctx_reset(ctx);
    int prev = nn_ctx_set_grad(ctx, 0);
    nn_tensor *lp, *en;
    int rc = srch_controller_logprob(c, ctx, decisions, n, &lp, &en);
    for (int i = 0; !rc && i < n; i++) {
        logp[i] = lp->data[i];
        if (ent) ent[i] = en->data[i];
    }
    nn_ctx_set_grad(ctx, prev);
    return rc;
}

int srch_policy_update(srch_controller *c, nn_ctx *ctx, srch_strategy strategy, const srch_policy_config *cfg,
                       srch_policy_state *st, const int *decisions, const double *rewards, int n,
                       srch_update_stats *stats) {
    if (strategy < 0 || strategy >= SRCH_STRATEGY_COUNT)
        return nd_fail(ND_ERR_INVALID, "policy update: unknown strategy %d", (int)strategy);
    if (n < 1) return nd_fail(ND_ERR_INVALID, "policy update over %d sequences", n);
    if (!(cfg->baseline_decay >= 0 && cfg->baseline_decay < 1))
        return nd_fail(ND_ERR_INVALID, "baseline decay %g, expected 0 <= d < 1", cfg->baseline_decay);
    double mean = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(rewards[i])) return nd_fail(ND_ERR_NUMERIC, "policy update: reward %d is %g", i, rewards[i]);
        mean += rewards[i];
    }
    mean /= n;
    srch_update_stats s;
    memset(&s, 0, sizeof s);
    s.mean_reward = mean;
    double baseline = st->baseline_set ? st->baseline : mean;
    s.baseline_before = baseline;

    int rc = ND_OK;
    if (strategy != SRCH_STRATEGY_RANDOM) {
        if (!(cfg->lr > 0) || (strategy == SRCH_STRATEGY_PPO && (cfg->epochs < 1 || !(cfg->clip_eps > 0))))
            return nd_fail(ND_ERR_INVALID, "policy update: lr %g, epochs %d, clip %g", cfg->lr, cfg->epochs,
                           cfg->clip_eps);
        double *old = malloc((size_t)n * 3 * sizeof *old);
        float *adv = malloc((size_t)n * sizeof *adv);
        if (!old || !adv) {
            free(old);
            free(adv);
            return nd_fail(ND_ERR_NOMEM, "out of memory in the policy update");
        }
        double *ent = old + n, *now = old + 2 * n;
        int threads = nn_get_threads(); /* one thread: see srch_controller_sample */
        nn_set_threads(1);
        rc = score(c, ctx, decisions, n, old, ent);
        for (int i = 0; !rc && i < n; i++) {
            adv[i] = (float)(rewards[i] - baseline);
            s.entropy += ent[i] / n;
        }
        nn_params *ps = srch_controller_params(c);
        nn_optim_config adam = nn_optim_adam(0.9, 0.999, 1e-8, 0.0);
        int epochs = strategy == SRCH_STRATEGY_PPO ? cfg->epochs : 1;
        float eps = (float)cfg->clip_eps;
        for (int e = 0; !rc && e < epochs; e++) {
            nn_ctx_reset(ctx);
            nn_params_zero_grad(ps);
            nn_tensor *lp, *en;
            rc = srch_controller_logprob(c, ctx, decisions, n, &lp, &en);
            if (rc) break;
            nn_tensor *a = nn_tensor_from(ctx, 1, NN_SHAPE(n), adv);
            nn_tensor *objective;
            if (strategy == SRCH_STRATEGY_PPO) {
                float *oldf = nn_ctx_alloc(ctx, (size_t)n * sizeof *oldf);
                for (int i = 0; i < n; i++) oldf[i] = (float)old[i];
                nn_tensor *ratio = nn_exp(ctx, nn_sub(ctx, lp, nn_tensor_from(ctx, 1, NN_SHAPE(n), oldf)));
                nn_tensor *unclipped = nn_mul(ctx, ratio, a);
                nn_tensor *clipped = nn_mul(ctx, nn_clamp(ctx, ratio, 1.0f - eps, 1.0f + eps), a);
                objective = nn_minimum(ctx, unclipped, clipped);
                int outside = 0;
                for (int i = 0; i < n; i++) outside += fabsf(ratio->data[i] - 1.0f) > eps;
                s.clip_fraction = (double)outside / n;
            } else {
                objective = nn_mul(ctx, lp, a);
            }
            /* loss = -(mean objective) - w_ent (mean entropy) */
            nn_tensor *loss = nn_add(ctx, nn_scale(ctx, nn_mean(ctx, objective), -1.0f, 0.0f),
                                     nn_scale(ctx, nn_mean(ctx, en), (float)-cfg->entropy_weight, 0.0f));
            s.loss = loss->data[0];
            if (!isfinite(s.loss)) {
                rc = nd_fail(ND_ERR_NUMERIC, "policy update: loss is %g", s.loss);
                break;
            }
            nn_backward(ctx, loss);
            if (!grads_finite(ps)) {
                rc = nd_fail(ND_ERR_NUMERIC, "policy update: non-finite gradient");
                break;
            }
            nn_optim_step(ps, &adam, cfg->lr);
        }
        if (!rc && stats) {
            rc = score(c, ctx, decisions, n, now, NULL);
            for (int i = 0; !rc && i < n; i++) s.approx_kl += (old[i] - now[i]) / n;
        }
        nn_params_zero_grad(ps);
        nn_ctx_reset(ctx);
        nn_set_threads(threads);
        free(old);
        free(adv);
        if (rc) return rc;
        st->updates++;
    }
    /* The baseline moves after the batch's advantages are taken, in job order. */
    for (int i = 0; i < n; i++) baseline = cfg->baseline_decay * baseline + (1 - cfg->baseline_decay) * rewards[i];
    st->baseline = baseline;
    st->baseline_set = 1;
    s.baseline_after = baseline;
    if (stats) *stats = s;
    return ND_OK;
}
