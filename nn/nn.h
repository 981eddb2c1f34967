/* nn: the engine. float32 tensors (rank <= 4, images NCHW), eager ops that record a tape,
 * reverse-mode autodiff, optimizers, schedules, EMA, initialisers and safetensors checkpoints.
 *
 * Two lifetimes of memory:
 *   nn_params  long-lived: named parameters, their gradients, optimizer moments, EMA shadows
 *              and non-trainable buffers (BN running mean/var). Everything in it is saved in
 *              checkpoints. Owned by the model; nn_params_free releases it all.
 *   nn_ctx     per step: an arena holding activations, the tape and activation gradients. It
 *              grows in chunks as needed and keeps its capacity on nn_ctx_reset (merged into one
 *              chunk of what the step used), so nobody sizes it by hand. Tensors made in a ctx
 *              are never freed one by one: they all go at the next nn_ctx_reset / nn_ctx_free.
 *              A ctx is used by one thread at a time.
 *
 * Ops compute their forward result immediately. When gradients are enabled (the default) and
 * an input requires a gradient (a trainable parameter, an op output that does, or a tensor
 * marked with nn_tensor_requires_grad), the op also records a tape node; nn_backward runs the
 * tape in reverse. Gradients accumulate (+=): fan-out needs no special case, and parameter
 * gradients accumulate in the parameter store until nn_params_zero_grad.
 *
 * A training step:
 *
 *     nn_params *ps = nn_params_new();
 *     nn_tensor *w = nn_params_add(ps, "conv.w", 4, NN_SHAPE(16, 3, 3, 3), 0);
 *     nn_tensor *fcw = nn_params_add(ps, "fc.w", 2, NN_SHAPE(10, 16), 0);
 *     nn_tensor *fcb = nn_params_add(ps, "fc.b", 1, NN_SHAPE(10), NN_PARAM_NO_DECAY);
 *     nd_rng rng; nd_rng_seed(&rng, 1);
 *     nn_init_variance_scaling(w, 2.0, NN_FAN_IN, NN_DIST_NORMAL, &rng);   // He init
 *     nn_init_variance_scaling(fcw, 1.0, NN_FAN_IN, NN_DIST_UNIFORM, &rng);
 *     nn_optim_config opt = nn_optim_sgd(0.9, 1, 5e-4);                    // Nesterov, wd
 *     nn_ctx *ctx = nn_ctx_new();
 *     for (int64_t step = 0; step < steps; step++) {
 *         nn_ctx_reset(ctx);
 *         nn_params_zero_grad(ps);
 *         nn_tensor *x = nn_tensor_from(ctx, 4, NN_SHAPE(32, 3, 32, 32), images);
 *         nn_conv2d_params cp = nn_conv2d_same(1, 1);          // stride 1, dilation 1, SAME
 *         nn_tensor *h = nn_relu(ctx, nn_conv2d(ctx, x, w, NULL, &cp));
 *         nn_tensor *logits = nn_linear(ctx, nn_global_avg_pool(ctx, h), fcw, fcb);
 *         nn_tensor *loss = nn_softmax_cross_entropy(ctx, logits, labels, 0.1f);
 *         nn_backward(ctx, loss);
 *         nn_params_clip_grad_norm(ps, 5.0);
 *         nn_optim_step(ps, &opt, nn_lr_cosine(0.025, step, steps, 0.0));
 *     }
 *     nn_checkpoint_save("model.safetensors", ps, NULL, NN_CKPT_OPTIM);
 *     nn_ctx_free(ctx); nn_params_free(ps);
 *
 * Inference: nn_ctx_set_grad(ctx, 0) (no tape, no gradient memory) and
 * nn_ctx_set_training(ctx, 0) (BN uses running statistics; dropout and drop-path are identity).
 *
 * Errors. Shape mistakes by the caller (mismatched shapes, wrong ranks, a NULL tensor) are bugs:
 * the op aborts through NN_ASSERT with file, line and a message naming the op and the shapes.
 * Bad input from outside (a malformed checkpoint, a missing tensor in it, an unknown backend)
 * returns a negative nd_status with a message readable by nd_last_error(). Running out of
 * memory aborts with a message (allocation failure is not recoverable mid-graph).
 *
 * Determinism: every random draw comes from the ctx's nd_rng (nn_ctx_seed) or the nd_rng the
 * caller passes; kernels split work so that no floating-point sum depends on thread scheduling
 * or on the thread count (tests/test_nn_train.c and tests/test_nn_conv_paths.c check 1 vs 2
 * threads bit for bit).
 *
 * Speed: dense and 1x1 convolutions run our own register-tiled direct kernels (the forward pass at
 * strides 1-4, the input gradient at stride 1, the weight gradient from 8 input channels except
 * for stride-1 1x1 layers), and so do large linear layers on AVX-512 CPUs; the rest of strided and
 * grouped convolutions, small linear layers and matmul go to OpenBLAS sgemm in fixed
 * single-threaded blocks shared by OpenMP's threads (NN_CONV_GEMM=1 sends every dense convolution
 * and linear there); depthwise convolution, pooling, BN and element-wise ops are our own vector
 * kernels. Kernels are AVX-512 where the CPU has it and AVX2 otherwise (chosen at run time;
 * NN_NO_AVX512=1 in the environment forces AVX2). A backward kernel that is the first to reach a
 * gradient stores into it instead of adding to zeros; ops that pass a gradient on unchanged (add,
 * reshape) or can compute it in place (ReLU) hand the buffer itself to an input that has none
 * yet. Tensor memory comes from arenas on transparent huge pages. Small tensors stay on one
 * thread.
 * Backends: "cpu" always; "cuda" in CUDA=1 builds (nn/cuda: cuBLAS for GEMM-shaped work, our
 * kernels for the rest), chosen per ctx with nn_ctx_set_backend and per store with
 * nn_params_to_device.
 */
#ifndef NN_NN_H
#define NN_NN_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"
#include "common/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NN_MAX_DIMS 4

/* A shape literal: NN_SHAPE(2, 3, 8, 8) is a const int64_t[4]. */
#define NN_SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* Abort with file, line and message: for caller bugs (shape mismatches), never for input. */
#define NN_ASSERT(cond, ...) ND_ASSERT(cond, __VA_ARGS__)

/* ---- tensors ------------------------------------------------------------------------------ */

enum {
    NN_TENSOR_REQUIRES_GRAD = 1u << 0, /* gradients flow into this tensor */
    NN_TENSOR_PARAM = 1u << 1,         /* lives in an nn_params store */
    NN_TENSOR_VIEW = 1u << 2,          /* data aliases another tensor's (reshape) */
    NN_TENSOR_DEVICE = 1u << 3         /* data and grad are device memory (a CUDA ctx or store) */
};

typedef struct nn_tensor {
    float *data;               /* numel floats, row-major (last dim fastest) */
    float *grad;               /* same size; NULL until a gradient reaches it (params: always) */
    int64_t shape[NN_MAX_DIMS];/* unused trailing dims are 1 */
    int64_t numel;
    int32_t ndim;              /* 0 (scalar) .. 4 */
    uint32_t flags;            /* NN_TENSOR_* */
    const char *name;          /* parameters: the name in the store; else NULL */
} nn_tensor;

typedef struct nn_ctx nn_ctx;
typedef struct nn_params nn_params;

/* Where the memory is. A tensor made in a ctx lives in the memory of the ctx's backend: host
 * memory for "cpu", device memory for "cuda" (the tensor then has NN_TENSOR_DEVICE and its data
 * and grad pointers must not be dereferenced on the host). Host code reads and writes tensors
 * through the functions below, which cost nothing on the CPU: use them wherever a tensor may
 * come from a ctx or store of another device. */

/* The values of t on the host: t->data itself for a host tensor, else a copy in ctx's host arena
 * (valid until the next nn_ctx_reset; synchronises with the device). */
const float *nn_tensor_host(nn_ctx *ctx, const nn_tensor *t);
/* As nn_tensor_host for t's gradient; NULL when t has none. */
const float *nn_tensor_host_grad(nn_ctx *ctx, const nn_tensor *t);
/* The first element of t (a loss), read on the host. */
float nn_item(nn_ctx *ctx, const nn_tensor *t);
/* Overwrite t's values with numel floats from host memory (uploads for a device tensor). */
void nn_tensor_set(nn_ctx *ctx, nn_tensor *t, const float *host);
/* t itself when it is in host memory, else a host tensor with t's shape and a copy of its values
 * (in ctx's host arena, no gradient, not on the tape): for host code that walks a tensor. */
nn_tensor *nn_tensor_to_host(nn_ctx *ctx, nn_tensor *t);
/* A zero-filled tensor in host memory whatever ctx's backend: for values that ops copy rather
 * than differentiate (the targets and weights of nn_bce_with_logits / nn_smooth_l1), filled on
 * the host through t->data. Not an op input on a device ctx. */
nn_tensor *nn_tensor_new_host(nn_ctx *ctx, int ndim, const int64_t *shape);

/* A new tensor in ctx's arena, zero-filled. shape has ndim entries, each >= 1 (0 allowed only
 * when ndim is 0). */
nn_tensor *nn_tensor_new(nn_ctx *ctx, int ndim, const int64_t *shape);
/* A new tensor in ctx's arena holding a copy of `data` (numel floats). */
nn_tensor *nn_tensor_from(nn_ctx *ctx, int ndim, const int64_t *shape, const float *data);
/* A new tensor filled with `value`. */
nn_tensor *nn_tensor_full(nn_ctx *ctx, int ndim, const int64_t *shape, float value);
/* Mark a ctx tensor (a leaf: an input) so that nn_backward computes its gradient into t->grad. */
void nn_tensor_requires_grad(nn_tensor *t);
/* 1 when both tensors have the same rank and dims. */
int nn_tensor_same_shape(const nn_tensor *a, const nn_tensor *b);
/* "[2,3,8,8]" into buf (always NUL-terminated); returns buf. For messages. */
const char *nn_tensor_shape_str(const nn_tensor *t, char *buf, size_t size);

/* ---- contexts ----------------------------------------------------------------------------- */

/* A new context: grad enabled, training mode, rng seeded with 0, CPU backend. Aborts only when
 * the first arena chunk cannot be allocated. */
nn_ctx *nn_ctx_new(void);
void nn_ctx_free(nn_ctx *ctx);                 /* NULL is fine */
/* Drop every tensor, tape node and gradient made since the last reset; keep the capacity. */
void nn_ctx_reset(nn_ctx *ctx);
/* Enable (1) or disable (0) tape recording; returns the previous setting. */
int nn_ctx_set_grad(nn_ctx *ctx, int enabled);
int nn_ctx_grad_enabled(const nn_ctx *ctx);
/* Training (1: BN batch statistics + running-average updates, dropout/drop-path active) or
 * evaluation (0). Returns the previous setting. */
int nn_ctx_set_training(nn_ctx *ctx, int training);
int nn_ctx_training(const nn_ctx *ctx);
/* The generator used by dropout and drop-path masks. Seed it per step for reproducibility;
 * its state may be copied in and out (e.g. into checkpoint metadata). */
void nn_ctx_seed(nn_ctx *ctx, uint64_t seed);
nd_rng *nn_ctx_rng(nn_ctx *ctx);
/* Backward frees the gradient of every intermediate tensor (an op's output) once the op's own
 * backward has used it, and reuses that memory for later gradients, so a training step holds
 * the activations and only the gradients still in flight (about half the memory of keeping
 * them all). Gradients of leaves (parameters, inputs made with nn_tensor_from and
 * nn_tensor_requires_grad) always stay. retain = 1 keeps every intermediate gradient readable
 * after nn_backward (for debugging and tests); returns the previous setting. */
int nn_ctx_set_retain_grads(nn_ctx *ctx, int retain);
/* recycle = 1: nn_backward also reuses, for the gradients it makes next, the memory of every
 * activation that no backward step still to run reads (a tensor of the graph whose last reader's
 * backward has run), so the backward pass adds almost nothing to the forward pass's memory
 * (NASNet-A training step: about a fifth less). The values of those tensors, the loss and the
 * logits included, are gone after nn_backward: read what you need before it, and call
 * nn_backward once per graph. Gradients are unchanged, bit for bit. Off by default; returns the
 * previous setting. */
int nn_ctx_set_recycle_activations(nn_ctx *ctx, int recycle);
/* Bytes currently used in the arena, and the most ever used (peak) since nn_ctx_new. */
size_t nn_ctx_bytes_used(const nn_ctx *ctx);
size_t nn_ctx_bytes_peak(const nn_ctx *ctx);
/* Bytes the arena holds (host and device chunks): after a reset, one chunk of what the
 * largest step so far used, so a run of equal steps keeps it constant. */
size_t nn_ctx_bytes_reserved(const nn_ctx *ctx);
/* Select the backend by name: "cpu" (always there) or "cuda" / "cuda:N" (only in CUDA=1 builds,
 * with a device present; N picks the GPU, one per process). ND_ERR_UNSUPPORTED in a CPU build,
 * ND_ERR_DEVICE when no usable GPU answers, ND_ERR_INVALID for a malformed name. Call it on a new
 * or just-reset ctx: it drops every tensor of the ctx. Ops a backend lacks run on the CPU. */
int nn_ctx_set_backend(nn_ctx *ctx, const char *name);
/* Wait until the device has finished the queued work (timing); no-op on the CPU. */
void nn_ctx_sync(nn_ctx *ctx);
/* Number of usable CUDA devices: 0 in a CPU build or when none answers. */
int nn_cuda_device_count(void);
/* The CUDA stream (a cudaStream_t) on which every kernel, copy and optimizer step of this process
 * is queued once a GPU is selected; NULL before that and in a CPU build. Device work queued outside
 * nn/ on it (dist/'s NCCL allreduce) stays in order with nn's without a device-wide wait. */
void *nn_cuda_stream(void);
const char *nn_ctx_backend(const nn_ctx *ctx);
/* A new ctx on the device that holds ps's tensors (nn_params_to_device): what a training or
 * inference loop over a model wants. Never fails once the store is on its device. */
nn_ctx *nn_ctx_new_like(const nn_params *ps);
/* Scratch memory from the arena (aligned to 64 bytes, not zeroed), freed at reset. */
void *nn_ctx_alloc(nn_ctx *ctx, size_t bytes);

/* Threads used by kernels and BLAS (OpenMP + OpenBLAS share one pool). n <= 0: all cores. */
void nn_set_threads(int n);
int nn_get_threads(void);

/* ---- backward ----------------------------------------------------------------------------- */

/* Run the tape backward from `loss`, a tensor with one element, seeding d loss = 1. Gradients
 * accumulate into every tensor that requires one. May be called more than once per reset
 * (gradients add up). Aborts if loss has more than one element. */
void nn_backward(nn_ctx *ctx, nn_tensor *loss);
/* As nn_backward but seeding the gradient of `t` with `grad` (t->numel floats). */
void nn_backward_from(nn_ctx *ctx, nn_tensor *t, const float *grad);
/* Number of tape nodes recorded since the last reset (for tests and diagnostics). */
int64_t nn_ctx_tape_len(const nn_ctx *ctx);

/* ---- ops ---------------------------------------------------------------------------------- *
 * Every op returns a new tensor in ctx (never NULL). Inputs are never modified. Tensors that
 * are not differentiated (labels, rois, targets, weights) are passed as plain arrays or as
 * ctx tensors and are copied where the tape needs them. */

/* Convolution. x [N,Cin,H,W], w [Cout,Cin/groups,KH,KW], b [Cout] or NULL -> [N,Cout,OH,OW]
 * with OH = (H + pad_t + pad_b - dil_h*(KH-1) - 1) / stride_h + 1 (likewise OW).
 * same != 0 ignores the explicit pads and uses TensorFlow's SAME padding: OH = ceil(H/stride),
 * total pad = max((OH-1)*stride + dil*(KH-1) + 1 - H, 0), the smaller half on top/left (so an
 * odd total pads one more at the bottom/right). groups == Cin == Cout is depthwise. */
typedef struct nn_conv2d_params {
    int32_t stride_h, stride_w;   /* >= 1 */
    int32_t dil_h, dil_w;         /* >= 1 */
    int32_t groups;               /* >= 1, divides Cin and Cout */
    int32_t pad_t, pad_b, pad_l, pad_r;
    int32_t same;
} nn_conv2d_params;
/* Helpers: TF SAME padding with the given stride/dilation; explicit symmetric padding. */
nn_conv2d_params nn_conv2d_same(int32_t stride, int32_t dilation);
nn_conv2d_params nn_conv2d_pad(int32_t stride, int32_t pad);
nn_tensor *nn_conv2d(nn_ctx *ctx, nn_tensor *x, nn_tensor *w, nn_tensor *b, const nn_conv2d_params *p);

/* Batch norm over x [N,C,H,W] or [N,C] per channel. gamma, beta [C] or NULL (1 / 0);
 * running_mean, running_var [C]: buffers in the parameter store (may be NULL in training only).
 * Training: normalise with the batch mean and biased variance; update
 *   running = (1 - momentum) * running + momentum * batch_stat   (unbiased variance), as PyTorch
 * (TF's decay d corresponds to momentum 1 - d). The update happens in the forward call, also
 * with grad disabled. Evaluation: normalise with the running statistics. */
typedef struct nn_bn_params {
    float eps;       /* e.g. 1e-3 (TF) or 1e-5 (PyTorch) */
    float momentum;  /* e.g. 0.1 (PyTorch) = 1 - TF decay 0.9 */
} nn_bn_params;
nn_tensor *nn_batch_norm(nn_ctx *ctx, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta,
                         nn_tensor *running_mean, nn_tensor *running_var, const nn_bn_params *p);
/* Synchronised batch norm across data-parallel replicas (dist/ installs it): while `sum` is
 * set, training-mode batch norm calls sum(buf, n, user) to replace buf[0..n) by its sum over
 * all replicas: the per-channel sums and the element count in the forward pass (so the
 * statistics are those of the global batch), the per-channel gradient sums in the backward
 * pass. Every replica must run the same batch-norm calls in the same order. NULL: off. */
typedef void (*nn_replica_sum_fn)(double *buf, int64_t n, void *user);
void nn_set_batch_norm_sync(nn_replica_sum_fn sum, void *user);
/* The ReLU-conv-BN-ReLU layer in one call:
 *   y = [relu_out] ReLU( [bn] batch_norm( conv2d( [relu_in] ReLU(x), w, no bias, p ), bn_t ) )
 * with bn_t the batch-norm tensors (gamma, beta or NULL; running mean and variance) and bn its
 * hyper-parameters (NULL: no batch norm; bn_t is then ignored and may be NULL). The values are
 * those of nn_relu, nn_conv2d, nn_batch_norm and nn_relu called one after the other, bit for
 * bit, in every mode. When no gradient is needed (grad disabled, or no input requires one), the
 * batch norm (if any) uses running statistics (evaluation mode) and the ctx runs on the CPU, the
 * whole layer is one pass (op conv2d_fused): the ReLU is applied as the input is read and the
 * normalisation and ReLU as each output is stored, with no intermediate tensors. Otherwise it is
 * recorded op by op, as the separate calls would be. In the fused pass of a strided convolution
 * with groups 1, explicit pads may be negative: the window then starts inside the input, as if
 * the input had been cropped by that many rows or columns (nn_crop) first. */
typedef struct nn_bn_tensors {
    nn_tensor *gamma, *beta, *running_mean, *running_var;
} nn_bn_tensors;
nn_tensor *nn_conv2d_fused(nn_ctx *ctx, nn_tensor *x, int relu_in, nn_tensor *w, const nn_conv2d_params *p,
                           const nn_bn_tensors *bn_t, const nn_bn_params *bn, int relu_out);
/* Layer norm: x [N,C,H,W] (or [N,C]) normalised per example over C,H,W; gamma, beta [C] or NULL. */
nn_tensor *nn_layer_norm(nn_ctx *ctx, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, float eps);
/* Instance norm: x [N,C,H,W] normalised per (example, channel) over H,W; gamma, beta [C] or NULL. */
nn_tensor *nn_instance_norm(nn_ctx *ctx, nn_tensor *x, nn_tensor *gamma, nn_tensor *beta, float eps);

/* Element-wise, any shape. */
nn_tensor *nn_relu(nn_ctx *ctx, nn_tensor *x);
nn_tensor *nn_sigmoid(nn_ctx *ctx, nn_tensor *x);
nn_tensor *nn_tanh(nn_ctx *ctx, nn_tensor *x);
nn_tensor *nn_exp(nn_ctx *ctx, nn_tensor *x);
/* min(max(x, lo), hi); the gradient passes where lo <= x <= hi. */
nn_tensor *nn_clamp(nn_ctx *ctx, nn_tensor *x, float lo, float hi);
/* a + b, a * b, min(a, b): same shapes, or b with one element (broadcast). */
nn_tensor *nn_add(nn_ctx *ctx, nn_tensor *a, nn_tensor *b);
nn_tensor *nn_sub(nn_ctx *ctx, nn_tensor *a, nn_tensor *b);
nn_tensor *nn_mul(nn_ctx *ctx, nn_tensor *a, nn_tensor *b);
nn_tensor *nn_minimum(nn_ctx *ctx, nn_tensor *a, nn_tensor *b);
/* s * x + c. */
nn_tensor *nn_scale(nn_ctx *ctx, nn_tensor *x, float s, float c);

/* Shapes. Concatenate n tensors along `axis` (all other dims equal); channels: axis 1. */
nn_tensor *nn_concat(nn_ctx *ctx, nn_tensor *const *xs, int n, int axis);
/* The sub-range [start, start+len) of `axis`. */
nn_tensor *nn_slice(nn_ctx *ctx, nn_tensor *x, int axis, int64_t start, int64_t len);
/* Split along `axis` into n pieces of sizes[i] (summing to the dim) written to outs[i]. */
void nn_split(nn_ctx *ctx, nn_tensor *x, int axis, int n, const int64_t *sizes, nn_tensor **outs);
/* x [N,C,H,W] padded with `value`: -> [N,C,H+t+b,W+l+r]. */
nn_tensor *nn_pad(nn_ctx *ctx, nn_tensor *x, int32_t t, int32_t b, int32_t l, int32_t r, float value);
/* x [N,C,H,W] -> [N,C,h,w], the window starting at (top, left), inside x. */
nn_tensor *nn_crop(nn_ctx *ctx, nn_tensor *x, int64_t top, int64_t left, int64_t h, int64_t w);
/* Reorder dims: out.shape[d] = x.shape[perm[d]] (perm has x->ndim entries), e.g. {0,2,3,1} turns
 * NCHW into NHWC. A copy. */
nn_tensor *nn_permute(nn_ctx *ctx, nn_tensor *x, const int32_t *perm);
/* Same data, new shape (same numel). Differentiable. */
nn_tensor *nn_reshape(nn_ctx *ctx, nn_tensor *x, int ndim, const int64_t *shape);

/* Pools over x [N,C,H,W]. Output size as conv2d (same: TF SAME; else explicit pads).
 * Average: count_include_pad 0 divides by the number of in-image cells (TF's SAME avg pool,
 * PyTorch count_include_pad=False); 1 divides by KH*KW. Max: padding never wins. */
typedef struct nn_pool_params {
    int32_t kh, kw, stride_h, stride_w;
    int32_t pad_t, pad_b, pad_l, pad_r;
    int32_t same;
    int32_t count_include_pad;
} nn_pool_params;
nn_pool_params nn_pool_same(int32_t k, int32_t stride);
nn_pool_params nn_pool_valid(int32_t k, int32_t stride);
nn_tensor *nn_avg_pool2d(nn_ctx *ctx, nn_tensor *x, const nn_pool_params *p);
nn_tensor *nn_max_pool2d(nn_ctx *ctx, nn_tensor *x, const nn_pool_params *p);
/* x [N,C,H,W] -> [N,C], the mean over H,W. */
nn_tensor *nn_global_avg_pool(nn_ctx *ctx, nn_tensor *x);

/* x [N,K], w [O,K] (PyTorch layout), b [O] or NULL -> x w^T + b, [N,O]. */
nn_tensor *nn_linear(nn_ctx *ctx, nn_tensor *x, nn_tensor *w, nn_tensor *b);
/* a [M,K], b [K,N] -> [M,N]. */
nn_tensor *nn_matmul(nn_ctx *ctx, nn_tensor *a, nn_tensor *b);

/* Dropout with drop probability p (training only; identity in eval or p == 0); kept values
 * scaled by 1/(1-p). Mask drawn from the ctx rng. */
nn_tensor *nn_dropout(nn_ctx *ctx, nn_tensor *x, float p);
/* Drop-path: x [N,...]; each example kept with probability keep_prob and then divided by
 * keep_prob, or zeroed. Training only; identity in eval or when keep_prob >= 1. */
nn_tensor *nn_drop_path(nn_ctx *ctx, nn_tensor *x, float keep_prob);

/* Losses (each returns a scalar tensor, ndim 0). */
/* logits [N,C], labels[N] in [0,C) or < 0 (ignored). Target distribution (1-s) one-hot + s/C.
 * Mean over the non-ignored examples (0 when all are ignored). Aborts on a label >= C. */
nn_tensor *nn_softmax_cross_entropy(nn_ctx *ctx, nn_tensor *logits, const int32_t *labels,
                                    float label_smoothing);
/* x [N,C] -> log softmax along C. */
nn_tensor *nn_log_softmax(nn_ctx *ctx, nn_tensor *x);
/* x [N,C], idx[N] in [0,C) -> [N] with out[i] = x[i, idx[i]]. */
nn_tensor *nn_gather(nn_ctx *ctx, nn_tensor *x, const int32_t *idx);
/* Sigmoid binary cross-entropy with logits: sum_i w_i * bce(x_i, t_i) / denom. target and
 * weight (NULL: all 1; 0 ignores an anchor) have x's shape and are not differentiated.
 * denom <= 0: the sum of the weights (a mean over kept elements; 0 when none). */
nn_tensor *nn_bce_with_logits(nn_ctx *ctx, nn_tensor *x, nn_tensor *target, nn_tensor *weight,
                              float denom);
/* Smooth L1 (PyTorch): d = x - t; 0.5 d^2 / beta if |d| < beta else |d| - 0.5 beta (beta 0:
 * plain L1). sum_i w_i * l_i / denom, weight and denom as in nn_bce_with_logits. */
nn_tensor *nn_smooth_l1(nn_ctx *ctx, nn_tensor *x, nn_tensor *target, nn_tensor *weight,
                        float beta, float denom);
/* Reductions over all elements -> scalar. */
nn_tensor *nn_sum(nn_ctx *ctx, nn_tensor *x);
nn_tensor *nn_mean(nn_ctx *ctx, nn_tensor *x);

/* ROIAlign, torchvision semantics. x [N,C,H,W]; rois [K,5] rows (batch_index, x1, y1, x2, y2)
 * in input-image coordinates, multiplied by spatial_scale; aligned shifts by -0.5 pixel;
 * sampling_ratio <= 0 uses ceil(roi_size / out_size) samples per bin. -> [K,C,out_h,out_w].
 * Gradient flows to x only. A batch index outside [0,N) aborts (validate first). */
nn_tensor *nn_roi_align(nn_ctx *ctx, nn_tensor *x, const float *rois, int64_t k, int32_t out_h,
                        int32_t out_w, float spatial_scale, int32_t sampling_ratio, int aligned);
/* tf.image.crop_and_resize, bilinear. x [N,C,H,W]; boxes [K,4] rows (y1, x1, y2, x2) normalised
 * (0..1 maps to 0..H-1 / 0..W-1; y1 > y2 flips); box_ind[K] in [0,N). Samples outside the image
 * take extrapolation_value. -> [K,C,crop_h,crop_w]. Gradient flows to x only. */
nn_tensor *nn_crop_and_resize(nn_ctx *ctx, nn_tensor *x, const float *boxes, const int32_t *box_ind,
                              int64_t k, int32_t crop_h, int32_t crop_w, float extrapolation_value);
/* table [V,D], idx[n] in [0,V) -> [n,D]. */
nn_tensor *nn_embedding(nn_ctx *ctx, nn_tensor *table, const int32_t *idx, int64_t n);

/* LSTM cell (a composition, not an op; PyTorch's gate order i, f, g, o):
 *   gates = x w_ih^T + h w_hh^T + b     x [N,I], h, c [N,H], w_ih [4H,I], w_hh [4H,H], b [4H]
 *   c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c')
 * b may be NULL. Writes the new state to *h_out, *c_out. */
void nn_lstm_cell(nn_ctx *ctx, nn_tensor *x, nn_tensor *h, nn_tensor *c, nn_tensor *w_ih,
                  nn_tensor *w_hh, nn_tensor *b, nn_tensor **h_out, nn_tensor **c_out);

/* ---- parameter store ---------------------------------------------------------------------- */

enum {
    NN_PARAM_BUFFER = 1u << 0,   /* not trainable, no gradient (BN running statistics) */
    NN_PARAM_NO_DECAY = 1u << 1  /* excluded from weight decay (biases, BN gamma/beta) */
};


nn_params *nn_params_new(void);
void nn_params_free(nn_params *ps);          /* NULL is fine */
/* Add a zero-filled parameter (or buffer) named `name` (copied; unique in the store; at most
 * 255 bytes). Returns a tensor owned by the store, valid until nn_params_free, usable in any
 * ctx. Aborts on a duplicate name (a caller bug). */
nn_tensor *nn_params_add(nn_params *ps, const char *name, int ndim, const int64_t *shape,
                         uint32_t flags);
/* The tensor named `name`, or NULL. */
nn_tensor *nn_params_get(const nn_params *ps, const char *name);
int64_t nn_params_count(const nn_params *ps);      /* number of tensors */
nn_tensor *nn_params_at(const nn_params *ps, int64_t i);  /* in insertion order */
uint32_t nn_params_flags(const nn_params *ps, int64_t i);
/* Total elements of the trainable parameters (what papers call "params"). */
int64_t nn_params_numel(const nn_params *ps);
/* Set every trainable parameter's gradient to 0. */
void nn_params_zero_grad(nn_params *ps);
/* Global L2 norm of all gradients; when it exceeds max_norm (> 0), scale every gradient by
 * max_norm / norm. Returns the norm before clipping. */
double nn_params_clip_grad_norm(nn_params *ps, double max_norm);
/* The optimizer step count (Adam's bias correction; saved in checkpoints). */
int64_t nn_params_step(const nn_params *ps);
/* Move every tensor of the store (values, gradients, moments, EMA shadows) to `device`: "cpu",
 * "cuda" or "cuda:N" (as nn_ctx_set_backend). Tensor pointers stay valid; their data pointers
 * change. Initialise (nn_init_*) before moving to a GPU: initialisers write on the host. Optimizer
 * steps, clipping and EMA then run on the device; checkpoints are the same files either way.
 * ND_ERR_UNSUPPORTED / ND_ERR_DEVICE / ND_ERR_INVALID as nn_ctx_set_backend; the store is then
 * unchanged. */
int nn_params_to_device(nn_params *ps, const char *device);
/* "cpu", "cuda", or "emulated" (host memory taken down the device path, for tests). */
const char *nn_params_device(const nn_params *ps);
/* Data-parallel averaging (dist/): every trainable parameter's gradient, in store order, copied
 * into (get) or out of (set) one host buffer of nn_params_numel(ps) floats, wherever the store
 * lives: one download or upload per tensor for a device store, done when the call returns. */
void nn_params_grads_get(const nn_params *ps, float *host);
void nn_params_grads_set(nn_params *ps, const float *host);

/* ---- initialisers (from a seeded nd_rng; deterministic) ----------------------------------- */

typedef enum nn_fan { NN_FAN_IN, NN_FAN_OUT, NN_FAN_AVG } nn_fan;
typedef enum nn_dist { NN_DIST_NORMAL, NN_DIST_TRUNCATED_NORMAL, NN_DIST_UNIFORM } nn_dist;
/* Variance scaling (TF): variance = scale / fan. Fans from the shape: [O,I,KH,KW] -> in I*KH*KW,
 * out O*KH*KW; [O,I] -> in I, out O; rank 1 -> both the length. Normal: N(0, var); truncated
 * normal: TF's (cut at 2 sigma, sigma corrected by 1/0.87962566); uniform: +-sqrt(3 var).
 * scale 2, FAN_IN, NORMAL is He; scale 1, FAN_AVG, UNIFORM is Glorot. */
void nn_init_variance_scaling(nn_tensor *t, double scale, nn_fan fan, nn_dist dist, nd_rng *rng);
void nn_init_uniform(nn_tensor *t, double lo, double hi, nd_rng *rng);
void nn_init_normal(nn_tensor *t, double mean, double stddev, nd_rng *rng);
void nn_init_constant(nn_tensor *t, float value);  /* zeros: 0, ones: 1 */

/* ---- optimizers and schedules ------------------------------------------------------------- */

typedef enum nn_optim_kind { NN_OPTIM_SGD, NN_OPTIM_RMSPROP, NN_OPTIM_ADAM } nn_optim_kind;

/* Weight decay adds weight_decay * w to the gradient of every trainable parameter without
 * NN_PARAM_NO_DECAY before the update (L2 regularisation, as TF-slim's regularisers and
 * PyTorch's SGD/RMSprop/Adam weight_decay).
 *   SGD:     v = momentum v + g;  w -= lr (nesterov ? g + momentum v : v)     (PyTorch)
 *   RMSProp: ms = decay ms + (1-decay) g^2;  mom = momentum mom + lr g / sqrt(ms + eps);
 *            w -= mom   (TF: eps inside the square root, ms starts at 1.0)
 *   Adam:    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *            w -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) */
typedef struct nn_optim_config {
    nn_optim_kind kind;
    double momentum;      /* SGD, RMSProp */
    int nesterov;         /* SGD */
    double weight_decay;
    double decay;         /* RMSProp: 0.9 */
    double eps;           /* RMSProp: 1.0 (the paper), Adam: 1e-8 */
    double beta1, beta2;  /* Adam: 0.9, 0.999 */
} nn_optim_config;
nn_optim_config nn_optim_sgd(double momentum, int nesterov, double weight_decay);
nn_optim_config nn_optim_rmsprop(double decay, double momentum, double eps, double weight_decay);
nn_optim_config nn_optim_adam(double beta1, double beta2, double eps, double weight_decay);
/* One update of every trainable parameter with learning rate lr; the moments live in the store
 * (allocated at the first step) and are saved by nn_checkpoint_save with NN_CKPT_OPTIM. */
void nn_optim_step(nn_params *ps, const nn_optim_config *cfg, double lr);

/* Learning-rate schedules: pure functions of the step. */
/* Single cosine period from base (step 0) to min_lr (step total); min_lr after total. */
double nn_lr_cosine(double base, int64_t step, int64_t total, double min_lr);
/* base * gamma^(floor(step / step_size)). */
double nn_lr_step(double base, int64_t step, int64_t step_size, double gamma);
/* base * rate^(step / decay_steps), the exponent floored when staircase. */
double nn_lr_exponential(double base, int64_t step, int64_t decay_steps, double rate, int staircase);
/* Linear warm-up: lr * (start + (1 - start) * step / warmup) for step < warmup, else lr. */
double nn_lr_warmup(double lr, int64_t step, int64_t warmup, double start);

/* Parameter EMA. shadow = decay * shadow + (1 - decay) * w for every trainable parameter and
 * buffer (shadows start as copies at the first call). */
void nn_params_ema_update(nn_params *ps, double decay);
/* Swap the weights and their shadows (evaluate with EMA weights, then swap back). No-op when
 * no EMA was started. It exchanges data pointers: read t->data again after a swap rather than
 * keeping an old pointer. */
void nn_params_ema_swap(nn_params *ps);
int nn_params_has_ema(const nn_params *ps);

/* ---- checkpoints (safetensors) ------------------------------------------------------------ */

/* String key/value metadata (safetensors' "__metadata__": model config, step, epoch, RNG). */
typedef struct nn_meta {
    int n, cap;
    char **keys, **values;   /* owned; freed by nn_meta_free */
} nn_meta;
void nn_meta_init(nn_meta *m);
void nn_meta_free(nn_meta *m);
void nn_meta_set(nn_meta *m, const char *key, const char *value);   /* copies; replaces */
const char *nn_meta_get(const nn_meta *m, const char *key);          /* NULL when absent */
void nn_meta_set_int(nn_meta *m, const char *key, int64_t v);
/* ND_ERR_NOT_FOUND / ND_ERR_FORMAT with a message. */
int nn_meta_get_int(const nn_meta *m, const char *key, int64_t *v);
void nn_meta_set_rng(nn_meta *m, const char *key, const nd_rng *rng);
int nn_meta_get_rng(const nn_meta *m, const char *key, nd_rng *rng);

enum {
    NN_CKPT_OPTIM = 1u << 0,          /* save: optimizer moments and EMA shadows too */
    NN_CKPT_ALLOW_MISSING = 1u << 1,  /* load: store tensors absent from the file keep values */
    NN_CKPT_ALLOW_EXTRA = 1u << 2     /* load: file tensors unknown to the store are skipped */
};
/* Write every tensor of ps (names as in the store; moments as "<name>#m", "<name>#v", EMA as
 * "<name>#ema" with NN_CKPT_OPTIM) plus `meta` (may be NULL) and "nn.step" atomically.
 * ND_ERR_IO with a message on failure (the old file, if any, is kept). */
int nn_checkpoint_save(const char *path, const nn_params *ps, const nn_meta *meta, uint32_t flags);
/* Load into an existing store, matching by name; shapes must match. Moments/EMA in the file are
 * loaded when present. meta (may be NULL) receives "__metadata__" (nn_meta_init'ed by the
 * callee; free with nn_meta_free). A truncated, foreign or inconsistent file, a shape mismatch or
 * (without the flags) a missing/extra tensor: ND_ERR_FORMAT / ND_ERR_NOT_FOUND with a message
 * naming the file and tensor; the store is then unchanged. */
int nn_checkpoint_load(const char *path, nn_params *ps, nn_meta *meta, uint32_t flags);

#ifdef __cplusplus
}
#endif

#endif
