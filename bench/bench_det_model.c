/* Detector model speed: one training step (forward + backward) and inference per image for a
 * configuration, or for the shipped default model.
 *
 *   bench_det_model                         the shipped model (models/default.safetensors)
 *   bench_det_model MODEL.safetensors       that model
 *   bench_det_model --cfg convnet|nasnet N F SIZE   a fresh c4 model of that backbone
 * Figures are printed, never asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/datapath.h"
#include "common/fileio.h"
#include "common/rng.h"
#include "common/status.h"
#include "detector/frcnn_model.h"

static det_model *fresh(const char *kind, int n, int f, int size) {
    det_model_config c;
    det_model_config_default(&c);
    if (strcmp(kind, "convnet") == 0) c.backbone = DET_BACKBONE_CONVNET, c.conv_width = f;
    else c.nas_n = n, c.nas_f = f, c.stem_filters = 32;
    c.min_size = c.max_size = size;
    c.anchors.n_scales = 4;
    float sc[4] = {0.0625f, 0.125f, 0.25f, 0.5f};
    memcpy(c.anchors.scales, sc, sizeof sc);
    c.rpn_channels = 128, c.head_dim = 256, c.roi_batch = 128;
    int64_t ids[10];
    for (int i = 0; i < 10; i++) ids[i] = i + 1;
    det_model_config_set_classes(&c, 10, ids, NULL);
    det_model *m = NULL;
    if (det_model_new(&c, 1, &m)) fprintf(stderr, "bench_det_model: %s\n", nd_last_error());
    det_model_config_free(&c);
    return m;
}

int main(int argc, char **argv) {
    det_model *m = NULL;
    char path[4096];
    if (argc >= 6 && strcmp(argv[1], "--cfg") == 0) {
        m = fresh(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    } else {
        const char *p = argc > 1 ? argv[1] : NULL;
        if (!p && nd_data_path("models/default.safetensors", path, sizeof path) == 0) p = path;
        if (!p || det_model_load(p, &m, NULL)) {
            fprintf(stderr, "bench_det_model: %s\n", nd_last_error());
            return 1;
        }
    }
    if (!m) return 1;
    const det_model_config *c = det_model_cfg(m);
    int32_t H = (c->max_size + c->size_divisor - 1) / c->size_divisor * c->size_divisor, W = H, B = 2;
    float *img = malloc(sizeof(float) * 3 * (size_t)H * (size_t)W * (size_t)B);
    nd_rng rng;
    nd_rng_seed(&rng, 3);
    for (size_t i = 0; i < 3 * (size_t)H * (size_t)W * (size_t)B; i++) img[i] = (float)nd_rng_range(&rng, -1, 1);
    int32_t vh[2] = {H, H}, vw[2] = {W, W};
    int64_t first[3] = {0, 3, 6};
    float boxes[24];
    int32_t cls[6];
    for (int j = 0; j < 6; j++) {
        float x = (float)nd_rng_range(&rng, 0, W - 100), y = (float)nd_rng_range(&rng, 0, H - 100);
        float s = (float)nd_rng_range(&rng, 12, 96);
        boxes[4 * j] = x, boxes[4 * j + 1] = y, boxes[4 * j + 2] = x + s * 0.7f, boxes[4 * j + 3] = y + s;
        cls[j] = j % c->num_classes;
    }
    det_batch b = {B, H, W, img, vh, vw, first, boxes, cls, NULL};
    nn_ctx *ctx = nn_ctx_new();
    printf("model: %s backbone, layout %s, %lld parameters, input %dx%d, %d threads\n", det_backbone_name(c->backbone),
           det_layout_name(c->layout), (long long)det_model_num_params(m), W, H, nn_get_threads());
    det_losses l;
    double t_train = 0;
    for (int it = 0; it < 3; it++) {
        nn_ctx_reset(ctx);
        nn_params_zero_grad(det_model_params(m));
        double t0 = nd_time_now();
        if (det_model_train_step(m, ctx, &b, &rng, &l)) fprintf(stderr, "%s\n", nd_last_error());
        if (it) t_train += nd_time_now() - t0;
    }
    printf("train step, batch %d: %.1f ms (%.1f ms/image), arena peak %.1f MB\n", B, t_train / 2 * 1000,
           t_train / 2 * 1000 / B, nn_ctx_bytes_peak(ctx) / 1e6);
    b.n = 1;
    det_detections d;
    double t_inf = 0;
    for (int it = 0; it < 4; it++) {
        double t0 = nd_time_now();
        if (det_model_detect(m, ctx, &b, &d)) fprintf(stderr, "%s\n", nd_last_error());
        det_detections_free(&d);
        if (it) t_inf += nd_time_now() - t0;
    }
    printf("inference: %.1f ms/image\n", t_inf / 3 * 1000);
    if (c->test_passes.n_sizes > 0) { /* what `nasdet detect` runs: every test size, merged */
        uint8_t *rgb = malloc((size_t)c->min_size * (size_t)c->min_size * 3);
        for (size_t i = 0; i < (size_t)c->min_size * (size_t)c->min_size * 3; i++) rgb[i] = (uint8_t)nd_rng_below(&rng, 256);
        /* the step arena grows over the first two images (each size adds its own
         * activations), so two warm-up runs, then the median of five */
        enum { WARM = 2, RUNS = 5 };
        double t[RUNS];
        for (int it = 0; it < WARM + RUNS; it++) {
            double t0 = nd_time_now();
            if (det_model_detect_image(m, ctx, NULL, rgb, c->min_size, c->min_size, 3, &d))
                fprintf(stderr, "%s\n", nd_last_error());
            det_detections_free(&d);
            if (it >= WARM) t[it - WARM] = nd_time_now() - t0;
        }
        for (int i = 1; i < RUNS; i++) /* insertion sort: five values */
            for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
                double x = t[j];
                t[j] = t[j - 1], t[j - 1] = x;
            }
        printf("inference with the test sizes (%d", c->min_size);
        for (int i = 0; i < c->test_passes.n_sizes; i++) printf(" + %d", c->test_passes.sizes[i]);
        printf(", %s, as nasdet detect): %.1f ms/image (median of %d)\n",
               c->test_passes.fuse_max > 0 ? "fused" : "NMS", t[RUNS / 2] * 1000, RUNS);
        free(rgb);
    }
    nn_ctx_free(ctx);
    det_model_free(m);
    free(img);
    return 0;
}
