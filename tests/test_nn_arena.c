/* The ctx arena over many steps: a step that spills into further chunks leaves one chunk of
 * what it used, so equal steps keep the reserve and the resident memory constant, a larger step
 * grows it once, and memory handed out stays valid until the reset. The same for the device
 * arena, through the emulated device (host memory behind the device path). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn.h"

#define MIB ((size_t)1 << 20)

/* The arena's sizes: 64 MiB first chunk; a consolidated chunk is a multiple of 2 MiB. */
enum { STEP_ALLOCS = 48 };

/* One "step": 48 allocations of 1..5 MiB (141 MiB, more than the 64 MiB first chunk), each
 * filled with its index when `touch`; returns the bytes the step used. */
static size_t host_step(nn_ctx *ctx, int touch, size_t scale) {
    nn_ctx_reset(ctx);
    unsigned char *p[STEP_ALLOCS];
    size_t bytes[STEP_ALLOCS];
    for (int i = 0; i < STEP_ALLOCS; i++) {
        bytes[i] = (size_t)(i % 5 + 1) * MIB * scale;
        p[i] = nn_ctx_alloc(ctx, bytes[i]);
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % 64, 0, "arena memory is 64-byte aligned");
        if (touch) memset(p[i], i, bytes[i]);
    }
    /* Nothing handed out in the step overlaps anything else. */
    for (int i = 0; touch && i < STEP_ALLOCS; i++)
        cr_assert(p[i][0] == (unsigned char)i && p[i][bytes[i] - 1] == (unsigned char)i, "allocation %d overwritten", i);
    return nn_ctx_bytes_used(ctx);
}

static long vm_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    if (f) fclose(f);
    return kb;
}

Test(nn_arena, equal_steps_keep_one_chunk_of_the_step) {
    nn_ctx *ctx = nn_ctx_new();
    size_t first_reserve = nn_ctx_bytes_reserved(ctx);
    cr_expect_eq(first_reserve, 64 * MIB, "a new ctx holds one 64 MiB chunk, got %zu", first_reserve);
    size_t used = host_step(ctx, 0, 1);
    cr_expect_eq(used, 141 * MIB);
    /* During the spilling step: 64 + 128 MiB. */
    cr_expect_eq(nn_ctx_bytes_reserved(ctx), 192 * MIB, "got %zu", nn_ctx_bytes_reserved(ctx));
    for (int s = 0; s < 30; s++) {
        cr_assert_eq(host_step(ctx, 0, 1), used);
        /* One chunk of the step, rounded to 2 MiB; not the doubled 192 MiB. */
        cr_assert_eq(nn_ctx_bytes_reserved(ctx), 142 * MIB, "step %d: reserve %zu", s, nn_ctx_bytes_reserved(ctx));
    }
    cr_expect_eq(nn_ctx_bytes_peak(ctx), used);
    nn_ctx_free(ctx);
}

Test(nn_arena, a_larger_step_grows_the_chunk_once_and_smaller_steps_keep_it) {
    nn_ctx *ctx = nn_ctx_new();
    host_step(ctx, 0, 1);
    host_step(ctx, 0, 1);
    cr_expect_eq(nn_ctx_bytes_reserved(ctx), 142 * MIB);
    size_t big = host_step(ctx, 0, 2); /* 282 MiB: spills past the 142 MiB chunk */
    cr_expect_eq(big, 282 * MIB);
    host_step(ctx, 0, 1);
    cr_expect_eq(nn_ctx_bytes_reserved(ctx), 282 * MIB, "merged to the larger step, got %zu", nn_ctx_bytes_reserved(ctx));
    for (int s = 0; s < 5; s++) host_step(ctx, 0, s % 2 ? 2 : 1);
    cr_expect_eq(nn_ctx_bytes_reserved(ctx), 282 * MIB, "alternating steps fit, got %zu", nn_ctx_bytes_reserved(ctx));
    nn_ctx_free(ctx);
}

/* The resident memory of a run of equal steps stays at its first steps' (each step writes all
 * of its 141 MiB): no chunk is kept beside the merged one. */
Test(nn_arena, resident_memory_does_not_grow_over_steps, .timeout = 120) {
    nn_ctx *ctx = nn_ctx_new();
    host_step(ctx, 1, 1);
    host_step(ctx, 1, 1);
    long rss2 = vm_rss_kb();
    cr_assert_gt(rss2, 0, "no /proc/self/status");
    for (int s = 0; s < 20; s++) host_step(ctx, 1, 1);
    long rss = vm_rss_kb();
    cr_expect_lt(rss - rss2, 4 * 1024, "resident memory grew by %ld kB over 20 equal steps", rss - rss2);
    cr_log_info("resident %ld kB after 2 steps, %ld kB after 22 (arena 141 MiB per step)", rss2, rss);
    nn_ctx_free(ctx);
}

/* Tensors (data in the device arena) on the emulated device: the same merging, and a tensor's
 * values survive the other allocations of its step. */
Test(nn_arena, the_device_arena_merges_as_the_host_one) {
    nn_ctx *ctx = nn_ctx_new();
    cr_assert_eq(nn_ctx_set_backend(ctx, "emulated"), 0);
    size_t reserve = 0;
    for (int s = 0; s < 6; s++) {
        nn_ctx_reset(ctx);
        nn_tensor *keep = nn_tensor_full(ctx, 1, NN_SHAPE(1024), (float)s);
        for (int i = 0; i < 20; i++) nn_tensor_new(ctx, 1, NN_SHAPE((int64_t)(i % 4 + 1) * (1 << 20))); /* 4..16 MiB */
        const float *h = nn_tensor_host(ctx, keep);
        cr_assert(h[0] == (float)s && h[1023] == (float)s, "step %d: a tensor was overwritten", s);
        if (s == 2) reserve = nn_ctx_bytes_reserved(ctx);
        if (s > 2) cr_expect_eq(nn_ctx_bytes_reserved(ctx), reserve, "step %d: reserve %zu, was %zu", s,
                                nn_ctx_bytes_reserved(ctx), reserve);
    }
    /* Host 64 MiB (headers and host copies) + one device chunk: 200 MiB of tensors, 2 MiB steps. */
    cr_expect_eq(reserve, 64 * MIB + 202 * MIB, "reserve %zu", reserve);
    nn_ctx_free(ctx);
}
