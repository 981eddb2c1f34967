/* nasdet det-settings: show or change a detector model's test-time settings (input sizes and
 * how they merge, thresholds, proposal counts), which do not change what its weights mean: so
 * settings chosen on a dev set can be stored in the model that `nasdet detect` then uses. */
#include "cli/cli.h"
#include "cli/cli_det.h"

#include <stdio.h>

#include "common/status.h"
#include "detector/frcnn_model.h"
#include "nn/nn.h"

static const char *const usage =
    "usage: nasdet det-settings MODEL [--test-sizes LIST|none] [--test-small PX] [--test-fuse MIN,MAX|none]\n"
    "            [--det-score S] [--det-nms T] [--max-dets N] [--pre-nms-test N] [--post-nms-test N]\n"
    "            [--out NEW.safetensors]";
static const char *const description =
    "Print a detector model's test-time settings, changed by the options given; with --out, write\n"
    "the model with them (weights and the rest of its metadata as they are) to a new file.";

static void print_settings(const det_model_config *c) {
    cli_det_print_passes(stdout, "passes: ", c->min_size, &c->test_passes);
    printf("detect: score > %g, per-class NMS %g, at most %lld per image\n", (double)c->detect.score_thresh,
           (double)c->detect.nms_thresh, (long long)c->detect.max_dets);
    printf("proposals: %lld before NMS, %lld after (NMS %g)\n", (long long)c->prop_test.pre_nms_top_n,
           (long long)c->prop_test.post_nms_top_n, (double)c->prop_test.nms_thresh);
}

int cli_cmd_det_settings(int argc, char **argv) {
    const char *cmd = argv[0];
    const char *out = NULL, *test_sizes = NULL, *test_fuse = NULL;
    double test_small = 0, det_score = -1, det_nms = -1;
    int64_t max_dets = -1, pre_test = -1, post_test = -1;
    nd_opt opts[] = {
        {"test-sizes", ND_OPT_STRING, &test_sizes, "extra input sizes (short side), or none", NULL, "LIST"},
        {"test-small", ND_OPT_DOUBLE, &test_small, "NMS merge: extra sizes keep objects under this, in base-input pixels",
         NULL, "PX"},
        {"test-fuse", ND_OPT_STRING, &test_fuse,
         "fuse the sizes' boxes: the base input sees objects of at least MIN px, each extra size those under MAX px "
         "of its own input; none: NMS merge",
         NULL, "MIN,MAX"},
        {"det-score", ND_OPT_DOUBLE, &det_score, "score threshold of the model's detections", NULL, "S"},
        {"det-nms", ND_OPT_DOUBLE, &det_nms, "per-class NMS IoU threshold", NULL, "T"},
        {"max-dets", ND_OPT_INT, &max_dets, "detections per image", NULL, "N"},
        {"pre-nms-test", ND_OPT_INT, &pre_test, "proposals before NMS", NULL, "N"},
        {"post-nms-test", ND_OPT_INT, &post_test, "proposals after NMS", NULL, "N"},
        {"out", ND_OPT_STRING, &out, "write the model with these settings here", NULL, "FILE"},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]), code;
    nd_args args;
    if (cli_parse(argc, argv, usage, description, opts, nopts, &args, &code)) return code;
    if (args.npositional != 1) {
        nd_args_free(&args);
        return cli_error(cmd, CLI_EXIT_USAGE, "give one MODEL file\n%s", usage);
    }
    det_model *m = NULL;
    nn_meta meta;
    int exit_code = CLI_EXIT_OK;
    int rc = det_model_load(args.positional[0], &m, &meta);
    if (rc) {
        nd_args_free(&args);
        return cli_fail(cmd);
    }
    det_model_config c = *det_model_cfg(m); /* shallow: only the test fields change */
    if ((exit_code = cli_det_test_passes(cmd, &c, test_sizes, test_small, test_fuse))) goto done;
    if (det_score >= 0) c.detect.score_thresh = (float)det_score;
    if (det_nms >= 0) c.detect.nms_thresh = (float)det_nms;
    if (max_dets >= 0) c.detect.max_dets = max_dets;
    if (pre_test >= 0) c.prop_test.pre_nms_top_n = pre_test;
    if (post_test >= 0) c.prop_test.post_nms_top_n = post_test;
    if ((rc = det_model_set_test_settings(m, &c))) {
        exit_code = cli_error(cmd, CLI_EXIT_USAGE, "%s", nd_last_error());
        goto done;
    }
    print_settings(det_model_cfg(m));
    if (out && (rc = det_model_save(m, out, &meta, 0))) exit_code = cli_fail(cmd);
    else if (out) printf("wrote %s\n", out);
done:
    nn_meta_free(&meta);
    det_model_free(m);
    nd_args_free(&args);
    return exit_code;
}
