/* linear: y = x w^T + b with w [O,K] as PyTorch stores it. On AVX-512 CPUs, for products of
 * 2^20 multiply-adds or more, all three products run on the direct convolution's 1x1 register
 * tiles (nn__flat_corr) instead of OpenBLAS sgemm (nn__sgemm, the rest): y = x (w^T) takes x's
 * rows as the tile weights and one transposed copy of w; dx = dy w is a 1x1 "convolution" of w's
 * rows (channels O, positions K) with weights dy; dw = dy^T x one of x's rows with weights dy^T
 * (a small copy). On the detector's box head (256 x 4704 -> 256) the backward measured 195
 * against sgemm's 101 GFLOP/s on one thread: the environment pins OpenBLAS to its AVX2 kernel
 * (OPENBLAS_CORETYPE). */
#include <omp.h>

#include "nn/nn_impl.h"
#include "nn/ops/conv2d_direct.h"

/* out[r][p] += sum_c a[r][c] * b[c][p] for r < rows, p < cols: a [rows, inner] row-major, read in
 * place (its last partial register tile from `last`, nn__flat_last_size floats), b [inner, cols]
 * and out [rows, cols] row-major. Threads take spans of p: every value is one thread's, summed in
 * the order of c whatever the thread count. */
static void flat_matmul_acc(const float *a, int64_t rows, int64_t inner, const float *b, int64_t cols, float *out,
                            float *last) {
    nn__flat_last(a, rows, inner, 1, last);
    nn_flat_w fw = {a, nn__flat_last_size(rows, inner, 1) ? last : NULL, 0};
    const int64_t off[1] = {0};
    int64_t threads = rows * inner * cols > NN_PAR_MIN ? omp_get_max_threads() : 1;
    int64_t per = (cols + threads - 1) / threads;
    per = (per + 47) / 48 * 48; /* whole AVX-512 tiles of positions */
#pragma omp parallel for schedule(static) num_threads((int)threads) if (threads > 1)
    for (int64_t t = 0; t < threads; t++) {
        int64_t p0 = t * per, p1 = p0 + per < cols ? p0 + per : cols;
        if (p0 < p1) nn__flat_corr(b, cols, inner, off, 1, &fw, rows, 0, rows, out, cols, p0, p1, 1, 0, NULL);
    }
}

/* Whether linear takes flat_matmul_acc: AVX-512 (the AVX2 tiles were not measured against
 * sgemm) and a product large enough for the tiles to pay. A function of shapes and the CPU. */
static int flat_ok(int64_t n, int64_t k, int64_t o) {
    return nn__cpu_avx512() && !nn__conv_force_gemm() && n >= 8 && o >= 8 && k >= 48 && n * k * o >= ((int64_t)1 << 20);
}

/* t [cols, rows] = a [rows, cols] transposed, in 32 x 32 blocks; threads take blocks of columns. */
static void transpose(const float *a, int64_t rows, int64_t cols, float *t) {
#pragma omp parallel for schedule(static) if (rows * cols > NN_PAR_MIN)
    for (int64_t c0 = 0; c0 < cols; c0 += 32)
        for (int64_t r0 = 0; r0 < rows; r0 += 32) {
            int64_t c1 = c0 + 32 < cols ? c0 + 32 : cols, r1 = r0 + 32 < rows ? r0 + 32 : rows;
            for (int64_t c = c0; c < c1; c++)
                for (int64_t r = r0; r < r1; r++) t[c * rows + r] = a[r * cols + c];
        }
}

/* x [N,K], w [O,K], b [O] -> y [N,O]. On the tiles: y = x (w^T), rows of x as the weights,
 * positions o, one transposed copy of w. */
static void linear_forward(nn_ctx *ctx, nn_node *node) {
    const nn_tensor *x = node->ins[0], *w = node->ins[1];
    int64_t n = x->shape[0], k = x->shape[1], o = w->shape[0];
    float *y = node->out->data;
    if (node->nin > 2) {
        for (int64_t i = 0; i < n; i++) memcpy(y + i * o, node->ins[2]->data, (size_t)o * sizeof(float));
    } else {
        memset(y, 0, (size_t)(n * o) * sizeof(float));
    }
    if (flat_ok(n, k, o) && o >= 48) {
        float *wt = nn__scratch(ctx, (size_t)(k * o + nn__flat_cot() * k) * sizeof(float)), *last = wt + k * o;
        transpose(w->data, o, k, wt);
        flat_matmul_acc(x->data, n, k, wt, o, y, last);
        return;
    }
    nn__sgemm(1, 0, 1, n, o, k, x->data, k, w->data, k, 1.0f, y, o);
}

/* dy [N,O] -> dx [N,K] += dy w, dw [O,K] += dy^T x, db [O] += column sums of dy */
static void linear_backward(nn_ctx *ctx, nn_node *node) {
    nn_tensor *x = node->ins[0], *w = node->ins[1];
    int64_t n = x->shape[0], k = x->shape[1], o = w->shape[0];
    const float *dy = node->out->grad;
    float *dx = nn__grad(ctx, x), *dw = nn__grad(ctx, w);
    float *db = node->nin > 2 ? nn__grad(ctx, node->ins[2]) : NULL;
    if ((dx || dw) && flat_ok(n, k, o)) {
        int64_t most = n > o ? n : o, cot = nn__flat_cot();
        float *dyt = nn__scratch(ctx, (size_t)(o * n + cot * most) * sizeof(float)), *last = dyt + o * n;
        if (dx) flat_matmul_acc(dy, n, o, w->data, k, dx, last); /* rows n, channels o, positions k */
        if (dw) {
            transpose(dy, n, o, dyt);
            flat_matmul_acc(dyt, o, n, x->data, k, dw, last); /* rows o, channels n, positions k */
        }
    } else {
        if (dx)
            nn__sgemm(1, 0, 0, n, k, o, dy, o, w->data, k, 1.0f, dx, k);
        if (dw)
            nn__sgemm(1, 1, 0, o, k, n, dy, o, x->data, k, 1.0f, dw, k);
    }
    if (db)
        for (int64_t i = 0; i < n; i++) nn__vec_add(db, dy + i * o, o);
}

const nn_op_impl nn_op_linear_impl = {linear_forward, linear_backward};

nn_tensor *nn_linear(nn_ctx *ctx, nn_tensor *x, nn_tensor *w, nn_tensor *b) {
    char sx[64], sw[64];
    NN_ASSERT(x->ndim == 2 && w->ndim == 2 && x->shape[1] == w->shape[1], "linear: x %s and w %s do not fit [N,K] [O,K]",
              NN_SHAPE_STR(x, sx), NN_SHAPE_STR(w, sw));
    NN_ASSERT(!b || b->numel == w->shape[0], "linear: bias must have %lld elements", (long long)w->shape[0]);
    nn_tensor *ins[3] = {x, w, b};
    nn_node *node = nn__node(ctx, NN_OP_LINEAR, b ? 3 : 2, ins);
    node->out = nn__tensor(ctx, 2, NN_SHAPE(x->shape[0], w->shape[0]));
    nn__node_run(ctx, node);
    return node->out;
}
