/* safetensors checkpoints: round trip of weights, buffers, optimizer moments, EMA and metadata;
 * truncated, foreign and mismatched files refused with a message and the store left unchanged. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "nn/nn.h"
#include "tests/util/testutil.h"

static nn_params *make_model(int with_extra) {
    nn_params *ps = nn_params_new();
    nn_params_add(ps, "stem.conv.w", 4, NN_SHAPE(4, 3, 3, 3), 0);
    nn_params_add(ps, "stem.bn.gamma", 1, NN_SHAPE(4), NN_PARAM_NO_DECAY);
    nn_params_add(ps, "stem.bn.mean", 1, NN_SHAPE(4), NN_PARAM_BUFFER);
    nn_params_add(ps, "fc.w", 2, NN_SHAPE(10, 4), 0);
    if (with_extra) nn_params_add(ps, "extra", 1, NN_SHAPE(2), 0);
    return ps;
}

static void randomise(nn_params *ps, uint64_t seed) {
    nd_rng rng;
    nd_rng_seed(&rng, seed);
    for (int64_t i = 0; i < nn_params_count(ps); i++) {
        nn_tensor *t = nn_params_at(ps, i);
        nn_init_uniform(t, -1, 1, &rng);
        if (t->grad) nn_init_uniform(&(nn_tensor){.data = t->grad, .numel = t->numel}, -1, 1, &rng);
    }
}

Test(nn_checkpoint, round_trip_with_optimizer_state_and_metadata) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "m.safetensors");
    nn_params *a = make_model(0);
    randomise(a, 1);
    nn_optim_config cfg = nn_optim_adam(0.9, 0.999, 1e-8, 0.0);
    nn_optim_step(a, &cfg, 0.01);
    nn_optim_step(a, &cfg, 0.01);
    nn_params_ema_update(a, 0.99);
    nn_meta meta;
    nn_meta_init(&meta);
    nn_meta_set(&meta, "model", "{\"kind\":\"nasnet\",\"N\":2}");
    nn_meta_set_int(&meta, "epoch", 17);
    nd_rng rng;
    nd_rng_seed(&rng, 99);
    nd_rng_u64(&rng);
    nn_meta_set_rng(&meta, "rng", &rng);
    cr_assert_eq(nn_checkpoint_save(path, a, &meta, NN_CKPT_OPTIM), 0, "%s", nd_last_error());
    nn_meta_free(&meta);

    nn_params *b = make_model(0);
    nn_meta got;
    cr_assert_eq(nn_checkpoint_load(path, b, &got, 0), 0, "%s", nd_last_error());
    for (int64_t i = 0; i < nn_params_count(a); i++) {
        nn_tensor *ta = nn_params_at(a, i), *tb = nn_params_at(b, i);
        cr_expect(memcmp(ta->data, tb->data, (size_t)ta->numel * sizeof(float)) == 0, "%s differs", ta->name);
    }
    cr_expect_eq(nn_params_step(b), 2);
    cr_expect_str_eq(nn_meta_get(&got, "model"), "{\"kind\":\"nasnet\",\"N\":2}");
    int64_t epoch = 0;
    cr_expect_eq(nn_meta_get_int(&got, "epoch", &epoch), 0);
    cr_expect_eq(epoch, 17);
    nd_rng back;
    cr_expect_eq(nn_meta_get_rng(&got, "rng", &back), 0);
    cr_expect(nd_rng_u64(&back) == nd_rng_u64(&rng), "rng state restored");
    nn_meta_free(&got);
    /* Moments were restored: one more identical step on both keeps them identical. */
    for (int64_t i = 0; i < nn_params_count(a); i++) {
        nn_tensor *ta = nn_params_at(a, i), *tb = nn_params_at(b, i);
        if (ta->grad) memcpy(tb->grad, ta->grad, (size_t)ta->numel * sizeof(float));
    }
    nn_optim_step(a, &cfg, 0.01);
    nn_optim_step(b, &cfg, 0.01);
    nn_tensor *wa = nn_params_get(a, "fc.w"), *wb = nn_params_get(b, "fc.w");
    cr_expect(memcmp(wa->data, wb->data, (size_t)wa->numel * sizeof(float)) == 0, "optimizer state restored");
    cr_expect(nn_params_has_ema(b), "EMA shadows restored");
    nn_params_free(a);
    nn_params_free(b);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

Test(nn_checkpoint, bad_files_are_refused_and_change_nothing) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "m.safetensors"), *bad = nd_path_join(dir, "bad.safetensors");
    nn_params *a = make_model(0);
    randomise(a, 2);
    cr_assert_eq(nn_checkpoint_save(path, a, NULL, 0), 0, "%s", nd_last_error());
    char *data;
    size_t len;
    cr_assert_eq(nd_file_read_all(path, &data, &len), 0);

    nn_params *b = make_model(0);
    randomise(b, 3);
    float before = nn_params_get(b, "fc.w")->data[0];
    /* Truncated anywhere: in the length, in the header, in the data. */
    size_t cuts[] = {0, 5, 12, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        cr_assert_eq(nd_file_write_atomic(bad, data, cuts[i]), 0);
        int rc = nn_checkpoint_load(bad, b, NULL, 0);
        cr_expect_eq(rc, ND_ERR_FORMAT, "cut at %zu: rc %d (%s)", cuts[i], rc, nd_last_error());
        cr_expect(strstr(nd_last_error(), "bad.safetensors") != NULL, "message names the file: %s", nd_last_error());
    }
    /* A foreign file. */
    cr_assert_eq(nd_file_write_atomic(bad, "\x89PNG\r\n\x1a\n0000000000000000", 24), 0);
    cr_expect_eq(nn_checkpoint_load(bad, b, NULL, 0), ND_ERR_FORMAT);
    /* Corrupt JSON, same length. */
    char *copy = malloc(len);
    memcpy(copy, data, len);
    copy[9] = '#';
    cr_assert_eq(nd_file_write_atomic(bad, copy, len), 0);
    cr_expect_eq(nn_checkpoint_load(bad, b, NULL, 0), ND_ERR_FORMAT);
    free(copy);
    cr_expect_float_eq(nn_params_get(b, "fc.w")->data[0], before, 0.0f, "a refused file changed the store");

    /* A model with another shape for one tensor. */
    nn_params *c = nn_params_new();
    nn_params_add(c, "stem.conv.w", 4, NN_SHAPE(4, 3, 3, 3), 0);
    nn_params_add(c, "stem.bn.gamma", 1, NN_SHAPE(4), 0);
    nn_params_add(c, "stem.bn.mean", 1, NN_SHAPE(4), NN_PARAM_BUFFER);
    nn_tensor *fc = nn_params_add(c, "fc.w", 2, NN_SHAPE(10, 5), 0);
    fc->data[0] = 42.0f;
    cr_expect_eq(nn_checkpoint_load(path, c, NULL, 0), ND_ERR_FORMAT);
    cr_expect(strstr(nd_last_error(), "fc.w") != NULL, "message names the tensor: %s", nd_last_error());
    cr_expect_float_eq(nn_params_get(c, "stem.conv.w")->data[0], 0.0f, 0.0f, "partial load happened");
    nn_params_free(c);

    /* Missing and extra tensors. */
    nn_params *d = make_model(1);
    cr_expect_eq(nn_checkpoint_load(path, d, NULL, 0), ND_ERR_NOT_FOUND);
    cr_expect(strstr(nd_last_error(), "extra") != NULL, "%s", nd_last_error());
    cr_expect_eq(nn_checkpoint_load(path, d, NULL, NN_CKPT_ALLOW_MISSING), 0, "%s", nd_last_error());
    cr_expect_float_eq(nn_params_get(d, "fc.w")->data[3], nn_params_get(a, "fc.w")->data[3], 0.0f);
    cr_assert_eq(nn_checkpoint_save(path, d, NULL, 0), 0);
    cr_expect_eq(nn_checkpoint_load(path, b, NULL, 0), ND_ERR_NOT_FOUND);
    cr_expect_eq(nn_checkpoint_load(path, b, NULL, NN_CKPT_ALLOW_EXTRA), 0, "%s", nd_last_error());
    cr_expect_eq(nn_checkpoint_load("/nonexistent/x.safetensors", b, NULL, 0), ND_ERR_IO);
    nn_params_free(d);
    nn_params_free(b);
    nn_params_free(a);
    free(data);
    tu_rmtree(dir);
    free(path);
    free(bad);
    free(dir);
}

/* The layout as documented: 8-byte little-endian length, a JSON header padded to 8 bytes, then
 * data in header order (the same layout Python's safetensors package reads). */
Test(nn_checkpoint, file_layout) {
    char *dir = tu_tmpdir();
    char *path = nd_path_join(dir, "m.safetensors");
    nn_params *a = nn_params_new();
    nn_tensor *t = nn_params_add(a, "t", 2, NN_SHAPE(2, 3), 0);
    for (int i = 0; i < 6; i++) t->data[i] = (float)i + 0.5f;
    cr_assert_eq(nn_checkpoint_save(path, a, NULL, 0), 0);
    char *data;
    size_t len;
    cr_assert_eq(nd_file_read_all(path, &data, &len), 0);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)(unsigned char)data[i] << (8 * i);
    cr_expect_eq(hl % 8, 0);
    cr_expect_eq(len, 8 + hl + 24);
    cr_expect(strstr(data + 8, "\"t\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}") != NULL, "%.*s",
              (int)hl, data + 8);
    float v[6];
    memcpy(v, data + 8 + hl, sizeof v);
    cr_expect_float_eq(v[5], 5.5f, 0.0f);
    free(data);
    nn_params_free(a);
    tu_rmtree(dir);
    free(path);
    free(dir);
}
