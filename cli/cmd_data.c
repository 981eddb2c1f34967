/* nasdet data: the demo data generators (real digits over real photographs). */
#include "cli/cli.h"
#include "coco/coco.h"
#include "common/status.h"

#include <stdio.h>
#include <string.h>

static const char *const usage = "nasdet data digits-cls|digits-det --out DIR [options]";
static const char *const description =
    "Make proxy data sets from the 5000 real handwritten digits and the photographs shipped in\n"
    "demos/data.\n"
    "  digits-cls  CIFAR-10 binary format (data_batch_1..5.bin, test_batch.bin,\n"
    "              batches.meta.txt): one digit per 32x32 image; --train/--test images.\n"
    "  digits-det  COCO format: DIR/train/*.jpg, DIR/val/*.jpg and\n"
    "              DIR/annotations/instances_{train,val}.json, 1-8 digits per image;\n"
    "              --train/--val images of --size pixels square.\n"
    "Train and test/val use disjoint digit instances; the same seed gives the same bytes.";

int cli_cmd_data(int argc, char **argv) {
    const char *out = NULL;
    int64_t seed = 1, train = -1, test = -1, val = -1, size = 320;
    nd_opt opts[] = {
        {"out", ND_OPT_STRING, &out, "output folder (created)", NULL, "DIR"},
        {"seed", ND_OPT_INT, &seed, "random seed", NULL, "S"},
        {"train", ND_OPT_INT, &train, "training images; -1: 50000 (digits-cls) or 5000 (digits-det)", NULL,
         "N"},
        {"test", ND_OPT_INT, &test, "digits-cls: test images; -1: 10000", NULL, "M"},
        {"val", ND_OPT_INT, &val, "digits-det: validation images; -1: 500", NULL, "M"},
        {"size", ND_OPT_INT, &size, "digits-det: image side in pixels", NULL, "PX"},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]), code;
    nd_args args;
    if (cli_parse(argc, argv, usage, description, opts, nopts, &args, &code)) return code;
    const char *kind = args.npositional == 1 ? args.positional[0] : NULL;
    int is_cls = kind && !strcmp(kind, "digits-cls"), is_det = kind && !strcmp(kind, "digits-det");
    if (!is_cls && !is_det) {
        nd_args_free(&args);
        return cli_error(argv[0], CLI_EXIT_USAGE, "expected one generator, digits-cls or digits-det%s%s\nusage: %s",
                         kind ? ", got " : "", kind ? kind : "", usage);
    }
    nd_args_free(&args);
    if (!out) return cli_error(argv[0], CLI_EXIT_USAGE, "--out DIR is required\nusage: %s", usage);
    if (is_cls && val >= 0) return cli_error(argv[0], CLI_EXIT_USAGE, "digits-cls takes --test, not --val");
    if (is_det && test >= 0) return cli_error(argv[0], CLI_EXIT_USAGE, "digits-det takes --val, not --test");
    if (seed < 0) return cli_error(argv[0], CLI_EXIT_USAGE, "--seed must be >= 0, got %lld", (long long)seed);

    coco_gen_opts g = {.seed = (uint64_t)seed, .size = (int32_t)size, .progress = stderr};
    int rc;
    if (is_cls) {
        g.train = train >= 0 ? train : 50000;
        g.test = test >= 0 ? test : 10000;
        rc = coco_gen_digits_cls(out, &g);
    } else {
        if (size < 64 || size > 4096)
            return cli_error(argv[0], CLI_EXIT_USAGE, "--size must be between 64 and 4096, got %lld", (long long)size);
        g.train = train >= 0 ? train : 5000;
        g.test = val >= 0 ? val : 500;
        rc = coco_gen_digits_det(out, &g);
    }
    if (rc) return cli_fail(argv[0]);
    printf("wrote %s: %lld %s and %lld %s images\n", out, (long long)g.train, "train", (long long)g.test,
           is_cls ? "test" : "val");
    return CLI_EXIT_OK;
}
