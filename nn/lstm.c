/* LSTM cell composed from ops (no op of its own: its backward is the ops' backward). */
#include "nn/nn_impl.h"

void nn_lstm_cell(nn_ctx *ctx, nn_tensor *x, nn_tensor *h, nn_tensor *c, nn_tensor *w_ih, nn_tensor *w_hh,
                  nn_tensor *b, nn_tensor **h_out, nn_tensor **c_out) {
    char sh[64], sc[64];
    NN_ASSERT(h->ndim == 2 && c->ndim == 2 && nn_tensor_same_shape(h, c), "lstm_cell: h %s and c %s must be [N,H]",
              NN_SHAPE_STR(h, sh), NN_SHAPE_STR(c, sc));
    int64_t hid = h->shape[1];
    NN_ASSERT(w_ih->ndim == 2 && w_ih->shape[0] == 4 * hid && w_hh->ndim == 2 && w_hh->shape[0] == 4 * hid &&
                  w_hh->shape[1] == hid,
              "lstm_cell: w_ih must be [4H,I] and w_hh [4H,H] with H = %lld", (long long)hid);
    nn_tensor *gates = nn_add(ctx, nn_linear(ctx, x, w_ih, b), nn_linear(ctx, h, w_hh, NULL));
    nn_tensor *i = nn_sigmoid(ctx, nn_slice(ctx, gates, 1, 0, hid));
    nn_tensor *f = nn_sigmoid(ctx, nn_slice(ctx, gates, 1, hid, hid));
    nn_tensor *g = nn_tanh(ctx, nn_slice(ctx, gates, 1, 2 * hid, hid));
    nn_tensor *o = nn_sigmoid(ctx, nn_slice(ctx, gates, 1, 3 * hid, hid));
    nn_tensor *c2 = nn_add(ctx, nn_mul(ctx, f, c), nn_mul(ctx, i, g));
    *c_out = c2;
    *h_out = nn_mul(ctx, o, nn_tanh(ctx, c2));
}
