/* The controller: an LSTM that emits the decision sequence of a cell pair, one masked softmax
 * per decision. Sampling and scoring share one step function, so the sampled distribution is
 * exactly the one whose log-probability PPO differentiates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "search/search_driver.h"

struct srch_controller {
    srch_space space;
    int hidden;
    int n_dec;
    srch_step *steps;            /* n_dec step descriptions */
    nn_params *ps;
    nn_tensor *start, *w_ih, *w_hh, *b;
    nn_tensor *emb[SRCH_DEC_COUNT];
    nn_tensor *head_w[SRCH_DEC_COUNT], *head_b[SRCH_DEC_COUNT];
};

static const char *const kind_names[SRCH_DEC_COUNT] = {"input", "op", "combiner"};

int srch_controller_new(const srch_space *space, int hidden, double init_range, uint64_t seed,
                        srch_controller **out) {
    *out = NULL;
    if (hidden < 1 || hidden > 4096) return nd_fail(ND_ERR_INVALID, "controller hidden size %d, expected 1..4096", hidden);
    if (!(init_range > 0) || !isfinite(init_range))
        return nd_fail(ND_ERR_INVALID, "controller init range %g, expected a positive number", init_range);
    srch_controller *c = calloc(1, sizeof *c);
    if (!c) return nd_fail(ND_ERR_NOMEM, "out of memory for the controller");
    c->space = *space;
    c->hidden = hidden;
    c->n_dec = srch_space_n_decisions(space);
    c->steps = calloc((size_t)c->n_dec, sizeof *c->steps);
    c->ps = nn_params_new();
    if (!c->steps || !c->ps) {
        srch_controller_free(c);
        return nd_fail(ND_ERR_NOMEM, "out of memory for the controller");
    }
    for (int t = 0; t < c->n_dec; t++) {
        int rc = srch_space_step(space, t, &c->steps[t]);
        /* The masked softmax slices the first n_valid logits: check the prefix promise once. */
        uint8_t mask[64];
        int w = c->steps[t].width;
        if (!rc && (w > 64 || srch_space_mask(space, t, mask, w) != c->steps[t].n_valid)) rc = ND_ERR_INVALID;
        for (int v = 0; !rc && v < w; v++)
            if (mask[v] != (v < c->steps[t].n_valid)) rc = ND_ERR_INVALID;
        if (rc) {
            srch_controller_free(c);
            return nd_fail(ND_ERR_INVALID, "the %s space's step %d has no prefix mask of width <= 64", space->name, t);
        }
    }
    int64_t H = hidden;
    c->start = nn_params_add(c->ps, "ctrl.start", 2, NN_SHAPE(1, H), 0);
    c->w_ih = nn_params_add(c->ps, "ctrl.lstm.w_ih", 2, NN_SHAPE(4 * H, H), 0);
    c->w_hh = nn_params_add(c->ps, "ctrl.lstm.w_hh", 2, NN_SHAPE(4 * H, H), 0);
    c->b = nn_params_add(c->ps, "ctrl.lstm.b", 1, NN_SHAPE(4 * H), NN_PARAM_NO_DECAY);
    for (int k = 0; k < SRCH_DEC_COUNT; k++) {
        int64_t W = srch_space_width(space, (srch_decision_kind)k);
        char name[64];
        snprintf(name, sizeof name, "ctrl.emb.%s", kind_names[k]);
        c->emb[k] = nn_params_add(c->ps, name, 2, NN_SHAPE(W, H), 0);
        snprintf(name, sizeof name, "ctrl.head.%s.w", kind_names[k]);
        c->head_w[k] = nn_params_add(c->ps, name, 2, NN_SHAPE(W, H), 0);
        snprintf(name, sizeof name, "ctrl.head.%s.b", kind_names[k]);
        c->head_b[k] = nn_params_add(c->ps, name, 1, NN_SHAPE(W), NN_PARAM_NO_DECAY);
    }
    nd_rng rng;
    nd_rng_seed(&rng, seed);
    for (int64_t i = 0; i < nn_params_count(c->ps); i++)
        nn_init_uniform(nn_params_at(c->ps, i), -init_range, init_range, &rng);
    *out = c;
    return ND_OK;
}

void srch_controller_free(srch_controller *c) {
    if (!c) return;
    nn_params_free(c->ps);
    free(c->steps);
    free(c);
}

nn_params *srch_controller_params(srch_controller *c) { return c->ps; }
const srch_space *srch_controller_space(const srch_controller *c) { return &c->space; }
int srch_controller_n_decisions(const srch_controller *c) { return c->n_dec; }

/* The LSTM input of step t for n rows: the start vector at t = 0, else the embedding of each
 * row's previous decision. */
static nn_tensor *step_input(srch_controller *c, nn_ctx *ctx, int t, const int *decisions, int n, int32_t *idx) {
    if (t == 0) {
        for (int i = 0; i < n; i++) idx[i] = 0;
        return nn_embedding(ctx, c->start, idx, n);
    }
    for (int i = 0; i < n; i++) idx[i] = decisions[(size_t)i * (size_t)c->n_dec + (size_t)(t - 1)];
    return nn_embedding(ctx, c->emb[c->steps[t - 1].kind], idx, n);
}

/* Advance the LSTM one step and return the masked log-softmax [n, n_valid] of step t. */
static nn_tensor *step_logp(srch_controller *c, nn_ctx *ctx, int t, nn_tensor *x, nn_tensor **h, nn_tensor **cs) {
    nn_tensor *h2, *c2;
    nn_lstm_cell(ctx, x, *h, *cs, c->w_ih, c->w_hh, c->b, &h2, &c2);
    *h = h2;
    *cs = c2;
    const srch_step *st = &c->steps[t];
    nn_tensor *logits = nn_linear(ctx, h2, c->head_w[st->kind], c->head_b[st->kind]);
    /* Invalid values are a suffix of the fixed-width head: leave them out of the softmax. */
    if (st->n_valid < st->width) logits = nn_slice(ctx, logits, 1, 0, st->n_valid);
    return nn_log_softmax(ctx, logits);
}

void srch_controller_sample(srch_controller *c, nd_rng *rng, int n, int *decisions, double *logp) {
    ND_ASSERT(n >= 1, "srch_controller_sample: n = %d", n);
    /* The controller's tensors are tiny: thread start-up and spinning would cost more than the
     * arithmetic (3x slower on a loaded 2-core machine), so it runs on one thread. */
    int threads = nn_get_threads();
    nn_set_threads(1);
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_grad(ctx, 0);
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    ND_ASSERT(idx != NULL, "out of memory sampling the controller");
    int64_t H = c->hidden;
    nn_tensor *h = nn_tensor_new(ctx, 2, NN_SHAPE(n, H));
    nn_tensor *cs = nn_tensor_new(ctx, 2, NN_SHAPE(n, H));
    if (logp)
        for (int i = 0; i < n; i++) logp[i] = 0;
    for (int t = 0; t < c->n_dec; t++) {
        nn_tensor *x = step_input(c, ctx, t, decisions, n, idx);
        nn_tensor *lp = step_logp(c, ctx, t, x, &h, &cs);
        int nv = c->steps[t].n_valid;
        for (int i = 0; i < n; i++) {
            const float *row = lp->data + (size_t)i * (size_t)nv;
            /* Inverse CDF over the valid values; the last one takes any rounding remainder. */
            double u = nd_rng_uniform(rng), acc = 0;
            int v = nv - 1;
            for (int k = 0; k < nv; k++) {
                acc += exp((double)row[k]);
                if (u < acc) {
                    v = k;
                    break;
                }
            }
            decisions[(size_t)i * (size_t)c->n_dec + (size_t)t] = v;
            if (logp) logp[i] += row[v];
        }
    }
    free(idx);
    nn_ctx_free(ctx);
    nn_set_threads(threads);
}

int srch_controller_logprob(srch_controller *c, nn_ctx *ctx, const int *decisions, int n, nn_tensor **logp,
                            nn_tensor **entropy) {
    *logp = NULL;
    if (entropy) *entropy = NULL;
    if (n < 1) return nd_fail(ND_ERR_INVALID, "controller log-probability of %d sequences", n);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < c->n_dec; t++) {
            int v = decisions[(size_t)i * (size_t)c->n_dec + (size_t)t];
            if (v < 0 || v >= c->steps[t].n_valid)
                return nd_fail(ND_ERR_INVALID, "sequence %d, step %d: value %d, expected 0..%d", i, t, v,
                               c->steps[t].n_valid - 1);
        }
    int32_t *idx = nn_ctx_alloc(ctx, (size_t)n * sizeof *idx);
    int64_t H = c->hidden;
    nn_tensor *h = nn_tensor_new(ctx, 2, NN_SHAPE(n, H));
    nn_tensor *cs = nn_tensor_new(ctx, 2, NN_SHAPE(n, H));
    nn_tensor *lp_sum = NULL, *ent_sum = NULL;
    for (int t = 0; t < c->n_dec; t++) {
        nn_tensor *x = step_input(c, ctx, t, decisions, n, idx);
        nn_tensor *lp = step_logp(c, ctx, t, x, &h, &cs);
        for (int i = 0; i < n; i++) idx[i] = decisions[(size_t)i * (size_t)c->n_dec + (size_t)t];
        nn_tensor *chosen = nn_gather(ctx, lp, idx);
        lp_sum = lp_sum ? nn_add(ctx, lp_sum, chosen) : chosen;
        if (entropy) {
            /* H_t = -sum_k p_k log p_k per row: the row sum is a product with a column of -1s. */
            int64_t nv = c->steps[t].n_valid;
            nn_tensor *plogp = nn_mul(ctx, nn_exp(ctx, lp), lp);
            nn_tensor *neg = nn_tensor_full(ctx, 2, NN_SHAPE(nv, 1), -1.0f);
            nn_tensor *ht = nn_reshape(ctx, nn_matmul(ctx, plogp, neg), 1, NN_SHAPE(n));
            ent_sum = ent_sum ? nn_add(ctx, ent_sum, ht) : ht;
        }
    }
    *logp = lp_sum;
    if (entropy) *entropy = ent_sum;
    return ND_OK;
}
