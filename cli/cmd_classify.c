/* nasdet classify: top-k classes with probabilities per image, with TF-slim's evaluation
 * preprocessing (central crop 0.875, bilinear resize, [-1, 1]) or none. */
#include "backbone/nasnet_net.h"
#include "cli/cli.h"
#include "common/cvshim.h"
#include "common/datapath.h"
#include "common/fileio.h"
#include "common/status.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage =
    "usage: nasdet classify --model M.safetensors [--arch PRESET] [--topk 5] [--labels FILE] "
    "[--preprocess center-crop|none] [--json] IMAGE...";
static const char *const description =
    "Classify images with a NASNet model: a file written by `nasdet train` or `nasdet import`\n"
    "(the network config is in it), or plain weights with nasdet names plus --arch [--classes].\n"
    "center-crop: TF-slim's evaluation preprocessing (central 87.5%, bilinear resize to the input\n"
    "size, scaled to [-1, 1]); none: the image must already have the input size. 1000- and\n"
    "1001-class models get ImageNet class names (index 0 of 1001 is background); --labels FILE\n"
    "(one name a line, e.g. batches.meta.txt) names others. --json prints full-precision\n"
    "probabilities; --topk may be the number of classes.";

typedef struct labels {
    char **names;
    int n;
    int offset; /* 1 for 1001-class models: class k is names[k - 1] */
} labels;

static void labels_free(labels *l) {
    for (int i = 0; i < l->n; i++) free(l->names[i]);
    free(l->names);
}

static int labels_read(const char *path, labels *l) {
    char *text;
    size_t len;
    int rc = nd_file_read_all(path, &text, &len);
    if (rc) return rc;
    int cap = 0;
    for (char *line = strtok(text, "\r\n"); line; line = strtok(NULL, "\r\n")) {
        if (!line[0]) continue;
        if (l->n == cap) {
            cap = cap ? cap * 2 : 256;
            l->names = realloc(l->names, (size_t)cap * sizeof *l->names);
        }
        l->names[l->n++] = strdup(line);
    }
    free(text);
    return ND_OK;
}

static const char *label_of(const labels *l, int k, char *buf, size_t n) {
    int i = k - l->offset;
    if (l->offset && k == 0) return "background";
    if (i >= 0 && i < l->n) return l->names[i];
    snprintf(buf, n, "class %d", k);
    return buf;
}

/* The image as the network's input [1,3,S,S] in [-1, 1]. */
static int preprocess(const char *path, int crop, int32_t size, float *out) {
    nd_image img = {0}, cropped = {0}, resized = {0};
    int rc = nd_image_read(path, 3, &img);
    if (rc) return rc;
    const nd_image *src = &img;
    if (crop) {
        /* tf.image.central_crop(0.875): start = int((H - 0.875 H) / 2), size = H - 2 start. */
        int32_t y0 = (int32_t)((img.height - img.height * 0.875) / 2), x0 = (int32_t)((img.width - img.width * 0.875) / 2);
        rc = nd_image_crop(&img, x0, y0, img.width - 2 * x0, img.height - 2 * y0, &cropped);
        if (!rc) rc = nd_image_resize(&cropped, size, size, ND_INTERP_LINEAR, &resized);
        src = &resized;
    } else if (img.width != size || img.height != size) {
        rc = nd_fail(ND_ERR_INVALID, "%s: %dx%d, but --preprocess none needs the network's input size %dx%d", path,
                     img.width, img.height, size, size);
    }
    if (!rc)
        for (int c = 0; c < 3; c++)
            for (int32_t y = 0; y < size; y++)
                for (int32_t x = 0; x < size; x++)
                    out[((size_t)c * size + y) * size + x] = src->data[((size_t)y * size + x) * 3 + c] / 127.5f - 1.0f;
    nd_image_free(&img);
    nd_image_free(&cropped);
    nd_image_free(&resized);
    return rc;
}

static int load_model(const char *model, const char *arch, int64_t classes, nas_net **net) {
    nn_meta m;
    nn_params *empty = nn_params_new();
    int rc = nn_checkpoint_load(model, empty, &m, NN_CKPT_ALLOW_EXTRA);
    nn_params_free(empty);
    if (rc) return rc;
    int has_cfg = nn_meta_get(&m, "nas.config") != NULL;
    nn_meta_free(&m);
    if (has_cfg) return nas_net_load(model, net);
    if (!arch)
        return nd_fail(ND_ERR_INVALID, "%s holds no network config: give --arch PRESET (and --classes K)", model);
    nas_net_choice ch = {arch, NULL, NULL, 0, 0, 0, (int32_t)classes, 0};
    nas_net_config cfg;
    rc = nas_net_config_choose(&ch, &cfg);
    if (!rc) rc = nas_net_new(&cfg, NULL, NULL, 0, net);
    if (!rc) {
        rc = nn_checkpoint_load(model, nas_net_params(*net), NULL, NN_CKPT_ALLOW_EXTRA);
        if (rc) {
            nas_net_free(*net);
            *net = NULL;
        }
    }
    return rc;
}

int cli_cmd_classify(int argc, char **argv) {
    const char *cmd = argv[0];
    const char *model = NULL, *arch = NULL, *labels_path = NULL, *prep = "center-crop";
    int64_t topk = 5, classes = 0, threads = 0;
    int json = 0;
    nd_opt opts[] = {
        {"model", ND_OPT_STRING, &model, "model file (safetensors)", NULL, "M"},
        {"arch", ND_OPT_STRING, &arch, "preset, for weights without a config", NULL, "PRESET"},
        {"classes", ND_OPT_INT, &classes, "classes, with --arch (0: the preset's)", NULL, "K"},
        {"topk", ND_OPT_INT, &topk, "classes to print per image", NULL, "K"},
        {"labels", ND_OPT_STRING, &labels_path, "class names, one a line", NULL, "FILE"},
        {"preprocess", ND_OPT_CHOICE, &prep, "input preparation", "center-crop|none", NULL},
        {"json", ND_OPT_FLAG, &json, "print JSON", NULL, NULL},
        {"threads", ND_OPT_INT, &threads, "compute threads (0: all cores)", NULL, "T"},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]), code;
    nd_args args;
    if (cli_parse(argc, argv, usage, description, opts, nopts, &args, &code)) return code;
    if (!model || args.npositional < 1) {
        nd_args_free(&args);
        return cli_error(cmd, CLI_EXIT_USAGE, "--model and at least one image are required\n%s", usage);
    }
    if (topk < 1 || classes < 0 || threads < 0) {
        nd_args_free(&args);
        return cli_error(cmd, CLI_EXIT_USAGE, "--topk must be >= 1, --classes and --threads >= 0");
    }
    nn_set_threads((int)threads);
    nas_net *net = NULL;
    if (load_model(model, arch, classes, &net)) {
        nd_args_free(&args);
        return cli_fail(cmd);
    }
    const nas_net_config *cfg = nas_net_get_config(net);
    int K = cfg->num_classes, S = cfg->image_size;
    if (topk > K) topk = K;
    labels lb = {0};
    int rc = ND_OK;
    if (labels_path) {
        rc = labels_read(labels_path, &lb);
    } else if (K == 1000 || K == 1001) {
        char p[1024];
        if (nd_data_path("data/imagenet_classes.txt", p, sizeof p) == 0) rc = labels_read(p, &lb);
        lb.offset = K == 1001;
    }
    if (rc) {
        nas_net_free(net);
        nd_args_free(&args);
        return cli_fail(cmd);
    }
    float *x = malloc((size_t)3 * S * S * sizeof(float));
    double *prob = malloc((size_t)K * sizeof(double));
    int *order = malloc((size_t)K * sizeof(int));
    nn_ctx *ctx = nn_ctx_new();
    nn_ctx_set_grad(ctx, 0);
    nn_ctx_set_training(ctx, 0);
    int failed = 0;
    if (json) printf("{\"model\": \"%s\", \"results\": [", model);
    for (int i = 0; i < args.npositional; i++) {
        const char *path = args.positional[i];
        if (preprocess(path, !strcmp(prep, "center-crop"), S, x)) {
            fprintf(stderr, "nasdet %s: error: %s\n", cmd, nd_last_error());
            failed = 1;
            continue;
        }
        nn_ctx_reset(ctx);
        nas_net_output out;
        if (nas_net_forward(net, ctx, nn_tensor_from(ctx, 4, NN_SHAPE(1, 3, S, S), x), 0, &out)) {
            fprintf(stderr, "nasdet %s: error: %s: %s\n", cmd, path, nd_last_error());
            failed = 1;
            continue;
        }
        /* Softmax in double; order by probability, ties by class index. */
        double mx = -INFINITY, sum = 0;
        for (int k = 0; k < K; k++) mx = fmax(mx, out.logits->data[k]);
        for (int k = 0; k < K; k++) sum += prob[k] = exp(out.logits->data[k] - mx);
        for (int k = 0; k < K; k++) prob[k] /= sum, order[k] = k;
        for (int a = 0; a < topk; a++) {
            int best = a;
            for (int b = a + 1; b < K; b++)
                if (prob[order[b]] > prob[order[best]]) best = b;
            int t = order[a];
            order[a] = order[best];
            order[best] = t;
        }
        char buf[32];
        if (json) {
            printf("%s{\"image\": \"%s\", \"top\": [", i ? ", " : "", path);
            for (int a = 0; a < topk; a++) {
                printf("%s{\"class\": %d, \"label\": \"", a ? ", " : "", order[a]);
                for (const char *c = label_of(&lb, order[a], buf, sizeof buf); *c; c++)
                    if (*c == '"' || *c == '\\')
                        printf("\\%c", *c);
                    else if ((unsigned char)*c >= 0x20)
                        putchar(*c);
                printf("\", \"probability\": %.17g}", prob[order[a]]);
            }
            printf("]}");
        } else {
            printf("%s\n", path);
            for (int a = 0; a < topk; a++)
                printf("  %8.5f  %4d  %s\n", prob[order[a]], order[a], label_of(&lb, order[a], buf, sizeof buf));
        }
    }
    if (json) printf("]}\n");
    nn_ctx_free(ctx);
    free(x);
    free(prob);
    free(order);
    labels_free(&lb);
    nas_net_free(net);
    nd_args_free(&args);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
