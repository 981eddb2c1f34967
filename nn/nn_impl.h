/* nn internals shared by the nn/ sources and the nn/ops/ sources: the ctx, tape nodes, the op table, the backend
 * seam and helpers for kernels. Never included from outside nn/. */
#ifndef NN_IMPL_H
#define NN_IMPL_H

#include <stdint.h>
#include <string.h>

#include "nn/nn.h"

#ifdef __cplusplus
extern "C" {
#define NN_ALIGNAS16 alignas(16)
#else
#define NN_ALIGNAS16 _Alignas(16)
#endif

typedef enum nn_op {
#define X(E, n) NN_OP_##E,
#include "nn/ops/ops.def"
#undef X
    NN_OP_COUNT
} nn_op;

#define NN_NODE_MAX_IN 4
#define NN_NODE_PARAM_BYTES 192

/* One recorded op. Inputs beyond NN_NODE_MAX_IN (concat) go through `ins`. Hyper-parameters
 * live inline in `p` (each op casts it to its own struct); `saved` points at arena memory the
 * forward pass kept for backward (BN statistics, max-pool arg-max, masks, labels). */
typedef struct nn_node {
    nn_op op;
    int32_t nin;
    nn_tensor **ins;          /* nin inputs; points at `in` unless nin > NN_NODE_MAX_IN */
    nn_tensor *in[NN_NODE_MAX_IN];
    nn_tensor *out;
    void *saved;
    NN_ALIGNAS16 unsigned char p[NN_NODE_PARAM_BYTES];
} nn_node;

/* The node's inline hyper-parameters as the op's own struct; each op file static-asserts that
 * its struct fits (NN_NODE_PARAMS_FIT). */
#define NN_NODE_P(node, type) ((type *)(void *)(node)->p)
#define NN_NODE_PARAMS_FIT(type) _Static_assert(sizeof(type) <= NN_NODE_PARAM_BYTES, #type " too large")

/* The replica sum of synchronised batch norm (nn_set_batch_norm_sync) and its user pointer, or NULL
 * when off: a device backend's batch-norm kernels stage their per-channel sums through it. */
nn_replica_sum_fn nn__batch_norm_sync(void **user);

/* An op's CPU implementation: forward fills node->out (already allocated by the constructor);
 * backward reads node->out->grad and accumulates into its inputs' gradients via nn__grad (or
 * stores into a fresh one via nn__grad_first). */
typedef struct nn_op_impl {
    void (*forward)(nn_ctx *ctx, nn_node *node);
    void (*backward)(nn_ctx *ctx, nn_node *node);
} nn_op_impl;

#define X(E, n) extern const nn_op_impl nn_op_##n##_impl;
#include "nn/ops/ops.def"
#undef X

extern const char *const nn_op_names[NN_OP_COUNT];

/* NN_PROFILE=1 in the environment: per-op wall times, reported at exit (nn/profile.c). */
int nn__profile_on(void);
void nn__profile_add(const struct nn_node *node, int backward, double seconds);

/* The backend seam: a table of functions. The CPU backend runs every op; another backend
 * (nn/cuda, with NN_USE_CUDA) answers supports_op and the tape runs the rest on the CPU over host
 * copies of the inputs (one warning per op, nn/tape.c). A ctx's tensors live in its backend's
 * memory: host memory for the CPU, device memory for CUDA (tensors then carry NN_TENSOR_DEVICE).
 * Copies never fail silently: a failing device call aborts with the call, file and line (as
 * running out of host memory does mid-graph); entry points that can fail return a status. */
typedef struct nn_backend {
    const char *name;
    int host;                                                    /* memory is host memory */
    void *(*alloc)(size_t bytes);                                /* NULL when out of memory */
    void (*free)(void *p);
    void (*zero)(void *p, size_t bytes);
    void (*upload)(void *dst, const void *host_src, size_t bytes);   /* host -> backend */
    void (*download)(void *host_dst, const void *src, size_t bytes); /* backend -> host, synchronous */
    void (*copy)(void *dst, const void *src, size_t bytes);          /* backend -> backend */
    int (*supports_op)(nn_op op);
    void (*run)(nn_ctx *ctx, nn_node *node, int backward);
} nn_backend;
extern const nn_backend nn_backend_cpu;
/* Host memory behind the device path, for testing the seam without a GPU (nn/backend_cpu.c). */
extern const nn_backend nn_backend_emulated;
/* The backend named "cpu", "emulated", "cuda" or "cuda:N" (selecting the GPU), or a status. */
int nn__backend_by_name(const char *name, const nn_backend **out);

typedef struct nn_grad_buf {
    void *p;
    size_t bytes;
} nn_grad_buf;

typedef struct nn_chunk {
    struct nn_chunk *next;
    size_t size, used;
    unsigned char *base;
} nn_chunk;

/* A chunked bump allocator in one backend's memory (nn/ctx.c). */
typedef struct nn_arena {
    nn_chunk *chunks, *cur; /* list; `cur` is where allocation happens */
    size_t used, peak;      /* bytes handed out since the last reset; the most ever */
} nn_arena;

struct nn_ctx {
    nn_arena host;        /* host memory: tape nodes, tensor headers, saved buffers, copies */
    /* Host memory for tensor data and gradients (the CPU backend's tensors; host tensors of any
     * ctx), apart from the small objects above: the blocks backward frees then lie side by side
     * and merge into blocks that hold larger gradients (nn__grad_free_push). */
    nn_arena data;
    size_t peak;          /* the most host memory (host + data) in use at once */
    nn_node **tape;
    int64_t tape_len, tape_cap;
    int grad_enabled, training;
    nd_rng rng;
    const nn_backend *backend;
    uint64_t warned[(NN_OP_COUNT + 63) / 64];
    void *scratch;        /* reusable kernel workspace (nn__scratch), freed with the ctx */
    size_t scratch_size;
    /* Tensor memory of a backend whose memory is not host memory (CUDA): a second arena in
     * that memory, reset with the host one, and a device workspace (nn__dscratch). */
    nn_arena dev;
    void *dscratch;
    size_t dscratch_size;
    /* Free blocks of tensor memory until the reset: gradient buffers of intermediate tensors
     * whose backward has run (nn__grad_release; retain_grads turns that off), merged with their
     * free neighbours; later gradients are cut from the smallest block that holds them. */
    nn_grad_buf *grad_free;
    int64_t grad_free_len, grad_free_cap;
    int retain_grads;
    /* nn_ctx_set_recycle_activations: backward also hands the arena memory of activations that
     * no later backward step reads to that list. */
    int recycle_activations;
    /* The caller's seed of nn_backward_from, read in place as its tensor's gradient while the
     * tape runs (never written, never recycled); NULL otherwise. */
    const float *borrowed_grad;
};

/* Allocation in the arena: 64-byte aligned; aborts when memory is exhausted. */
void *nn__alloc(nn_ctx *ctx, size_t bytes);
void *nn__zalloc(nn_ctx *ctx, size_t bytes);
/* Workspace of at least `bytes`, valid until the next nn__scratch call on this ctx (kernels use
 * it for im2col columns and the like; ops never nest, so one buffer serves all). */
void *nn__scratch(nn_ctx *ctx, size_t bytes);
/* Tensor memory (data, gradients, saved device buffers) in the ctx backend's memory: the host
 * arena for the CPU, the device arena otherwise. 64-byte aligned; aborts when memory is exhausted.
 * nn__dzalloc zero-fills. */
void *nn__dalloc(nn_ctx *ctx, size_t bytes);
void *nn__dzalloc(nn_ctx *ctx, size_t bytes);
/* Device workspace of at least `bytes` in the ctx backend's memory, valid until the next call
 * (ops run in stream order, so one buffer serves every op). */
void *nn__dscratch(nn_ctx *ctx, size_t bytes);
/* The backend that owns tensor t's memory: the ctx's for device tensors, else the CPU. */
const nn_backend *nn__tensor_backend(const nn_ctx *ctx, const nn_tensor *t);
/* A tensor header + uninitialised data in the arena. */
nn_tensor *nn__tensor(nn_ctx *ctx, int ndim, const int64_t *shape);
/* A tensor with x's shape (uninitialised). */
nn_tensor *nn__tensor_like(nn_ctx *ctx, const nn_tensor *x);
/* Build, run and (when needed) record a one-input op whose output has x's shape; `params`
 * (psize bytes, may be NULL) are copied into the node. */
nn_tensor *nn__unary(nn_ctx *ctx, nn_op op, nn_tensor *x, const void *params, size_t psize);
/* Build, run and record a two-input element-wise op: a and b of one shape, or b with one element
 * (broadcast). The output has a's shape. */
nn_tensor *nn__binary(nn_ctx *ctx, nn_op op, nn_tensor *a, nn_tensor *b);
/* The gradient buffer of t, allocated (zeroed) on first use; NULL when t takes no gradient. */
float *nn__grad(nn_ctx *ctx, nn_tensor *t);
/* After the backward of the node that made t: t's gradient has reached every input, so its
 * buffer goes back to the ctx for later gradients (unless retain_grads) and
 * t->grad becomes NULL. */
void nn__grad_release(nn_ctx *ctx, nn_tensor *t);
/* Host memory for a CPU kernel's temporary during backward: on a host backend cut from those
 * free blocks (or new tensor memory), to be given back with nn__host_temp_release right after
 * use; on a device ctx (the kernel runs on host copies) from the host arena until the reset. */
float *nn__host_temp(nn_ctx *ctx, size_t bytes);
void nn__host_temp_release(nn_ctx *ctx, float *p, size_t bytes);
/* Put `bytes` of the ctx's tensor memory (nn__dalloc) on that list until the reset. Blocks are
 * merged by address, so what goes there must be a whole arena allocation (its 64-byte span). */
void nn__grad_free_push(nn_ctx *ctx, void *p, size_t bytes);
/* Whether p lies in the ctx's tensor memory (the arena nn__dalloc takes from), not in a
 * parameter store or the caller's memory. */
int nn__ctx_owns_data(const nn_ctx *ctx, const void *p);
/* As nn__grad for a backward kernel that writes every element of t's gradient: when t has no
 * gradient yet, the buffer is allocated without zero-filling and *fresh is set to 1, and the
 * kernel must store (=) its values; otherwise *fresh is 0 and it adds (+=) as usual. This saves
 * the memset and the read of zeros on the first (often only) gradient a tensor receives, and
 * gives the same values as zero-then-add. Fan-out stays correct: the first op to reach a tensor
 * stores, every later one finds the buffer and adds. Call it only right before writing, never
 * for two inputs of one op up front unless the first is written before the second is read
 * (the same tensor may be both). */
float *nn__grad_first(nn_ctx *ctx, nn_tensor *t, int *fresh);
/* For a backward whose input gradient equals its output gradient (add, reshape) or can be
 * computed in its place (relu): when `to` takes a gradient and has none yet, and `from`'s is the
 * ctx's own memory (not the caller's seed, not kept by retain_grads), the buffer changes hands:
 * to->grad = from->grad, from->grad = NULL (nn__grad_release then has nothing to give back; the
 * buffer returns when `to`'s gradient is released). Returns 1 when it did, else 0 and nothing
 * changed. Saves a copy and a buffer. The caller must be done reading from's gradient, or read
 * it only as `to`'s from then on. */
int nn__grad_pass(nn_ctx *ctx, nn_tensor *from, nn_tensor *to);

/* Constructor side of an op: a node with its inputs. nn__node_begin decides whether a tape
 * node is needed (grad enabled and an input requires grad) and marks the output accordingly.
 * nn__node_run runs forward (through the backend) and appends the node to the tape if needed.
 * A node that is not recorded lives in the arena too (cheap, freed at reset). */
nn_node *nn__node(nn_ctx *ctx, nn_op op, int nin, nn_tensor **ins);
void nn__node_run(nn_ctx *ctx, nn_node *node);

/* Shape helpers for assertions. */
#define NN_SHAPE_STR(t, buf) nn_tensor_shape_str((t), (buf), sizeof(buf))

/* Dims of an NCHW tensor (rank 4 asserted by the caller). */
#define NN_N(t) ((t)->shape[0])
#define NN_C(t) ((t)->shape[1])
#define NN_H(t) ((t)->shape[2])
#define NN_W(t) ((t)->shape[3])

/* TF SAME padding along one dim: output size and the (before, after) pads. */
void nn__same_pad(int64_t in, int32_t k, int32_t stride, int32_t dil, int64_t *out, int32_t *before,
                  int32_t *after);

/* Work (in elements or multiply-adds) below which a kernel stays on one thread: waking the
 * OpenMP team costs more than it saves on small tensors, and far more on a busy machine. */
#define NN_PAR_MIN 32768

/* Hot loops are compiled twice, for AVX-512 and for the AVX2 baseline, and the loader picks one
 * by CPU (GCC function multi-versioning through an ifunc): the same binary runs everywhere and
 * uses AVX-512 where it exists. Put it on small leaf kernels (no OpenMP inside). */
#define NN_SIMD_CLONES __attribute__((target_clones("avx512f", "default")))

/* Row-major C [m, n] = op(A) op(B) + beta C (op: transposed when trans_*), in fixed blocks of
 * NN_GEMM_COLS columns of C, each a single-threaded OpenBLAS sgemm. OpenBLAS's own threading
 * changes the sums of some shapes with the thread count (9 x 200 x 476 with B transposed, for
 * one), so BLAS never threads: with `par` (the caller is outside any parallel region) a thread
 * team shares the blocks, inside which OpenBLAS runs one thread; without, the calling thread does
 * them in order. The blocks depend on the shape only, so results depend on neither threads nor
 * path. */
#define NN_GEMM_COLS 512
/* ... and, where n fits one column block and m >= 2 * NN_GEMM_ROWS, in blocks of this many rows. */
#define NN_GEMM_ROWS 128
void nn__sgemm(int par, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
               const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* CPU features, detected once (NN_NO_AVX512=1 in the environment turns AVX-512 off). */
int nn__cpu_avx512(void);
/* Whether the CPU has AVX2 and FMA (the x86-64-v3 kernels' baseline). */
int nn__cpu_fma(void);

/* Vector helpers with run-time dispatch (nn/vec.c). y and x may alias where noted. */
void nn__vec_add(float *y, const float *x, int64_t n);         /* y += x */
void nn__vec_axpy(float *y, float a, const float *x, int64_t n); /* y += a x */
/* y = x (fresh) or y += x: the store-or-add of a gradient slab (nn__grad_first). */
void nn__vec_put(float *y, const float *x, int64_t n, int fresh);
/* y = x with non-temporal (streaming) stores past y's first 32-byte boundary: for outputs far
 * larger than the caches, whose lines would only be fetched to be overwritten. The caller
 * issues nn__stream_fence() before other threads read y. */
void nn__stream_copy(float *y, const float *x, int64_t n);
void nn__stream_fence(void);

#ifdef NN_USE_CUDA
/* nn/cuda: the backend table, device selection ("cuda" or "cuda:N"; a status on failure) and the
 * device side of the parameter store (nn/params.c, nn/optim.c call these for device stores). */
extern const nn_backend nn_backend_cuda;
int nn__cuda_select(const char *spec);
int nn__cuda_device_count(void);
void nn__cuda_sync(void);
/* The process's stream as a cudaStream_t, NULL before nn__cuda_select (nn_cuda_stream). */
void *nn__cuda_stream_handle(void);
/* Global sum of squares: begin, add each tensor, end reads the total (one synchronisation). */
void nn__cuda_sumsq_begin(void);
void nn__cuda_sumsq_add(const float *x, int64_t n);
double nn__cuda_sumsq_end(void);
void nn__cuda_scale(float *x, float s, int64_t n);
void nn__cuda_fill(float *x, float v, int64_t n);
void nn__cuda_sgd(float *w, const float *g, float *m, int64_t n, float lr, float wd, float mom, int nesterov);
void nn__cuda_rmsprop(float *w, const float *g, float *ms, float *mom, int64_t n, float lr, float wd, float decay,
                      float momentum, float eps);
void nn__cuda_adam(float *w, const float *g, float *m, float *v, int64_t n, float lr, float wd, float b1, float b2,
                   float eps, float c1, float c2);
void nn__cuda_ema(float *shadow, const float *w, int64_t n, float decay);
#endif

#ifdef __cplusplus
}
#endif

#endif
