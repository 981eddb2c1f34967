/* nasdet import: convert pretrained NASNet-A weights (timm / Cadene names, or TF-slim names in
 * TF layouts) saved as safetensors into nasdet's names, with the network config in the
 * metadata so that `nasdet classify --model OUT` needs nothing else. */
#include "backbone/nasnet_net.h"
#include "cli/cli.h"
#include "common/status.h"

#include <stdio.h>
#include <string.h>

static const char *const usage =
    "usage: nasdet import --from timm|tf-slim-names IN.safetensors --arch PRESET --out OUT.safetensors "
    "[--classes K] [--N n --F f --input S --stem-multiplier M]";
static const char *const description =
    "Convert a NASNet-A state dict saved as safetensors into nasdet's parameter names.\n"
    "  timm           timm's / Cadene's pretrainedmodels names (nasnetalarge, nasnetamobile),\n"
    "                 PyTorch layouts; BN num_batches_tracked is ignored.\n"
    "  tf-slim-names  TF-slim variable names (e.g. cell_0/comb_iter_0/left/separable_5x5_1/\n"
    "                 depthwise_weights) in TF layouts (HWIO, [in,out] FC), any scope in front.\n"
    "Every tensor of the file must be used and every parameter found (the aux head may be\n"
    "missing); shapes are checked; errors name the tensor. 1001-class (TF) files need --classes 1001.";

int cli_cmd_import(int argc, char **argv) {
    const char *cmd = argv[0];
    const char *from = NULL, *arch = NULL, *out = NULL;
    int64_t classes = 0, N = 0, F = 0, input = 0;
    double stem_mult = 0;
    nd_opt opts[] = {
        {"from", ND_OPT_CHOICE, &from, "naming of the input file", "timm|tf-slim-names", NULL},
        {"arch", ND_OPT_STRING, &arch, "preset the weights belong to (nasnet-a-mobile, nasnet-a-large, ...)", NULL,
         "PRESET"},
        {"out", ND_OPT_STRING, &out, "output safetensors file", NULL, "OUT"},
        {"classes", ND_OPT_INT, &classes, "classes of the file's classifier (0: the preset's)", NULL, "K"},
        {"N", ND_OPT_INT, &N, "normal cells per stack (0: the preset's)", NULL, "n"},
        {"F", ND_OPT_INT, &F, "num_conv_filters (0: the preset's)", NULL, "f"},
        {"input", ND_OPT_INT, &input, "input size (0: the preset's)", NULL, "S"},
        {"stem-multiplier", ND_OPT_DOUBLE, &stem_mult, "stem multiplier (0: the preset's)", NULL, "M"},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]), code;
    nd_args args;
    if (cli_parse(argc, argv, usage, description, opts, nopts, &args, &code)) return code;
    const char *in = args.npositional == 1 ? args.positional[0] : NULL;
    int npos = args.npositional;
    nd_args_free(&args);
    if (npos != 1) return cli_error(cmd, CLI_EXIT_USAGE, "expected one input file\n%s", usage);
    if (!from || !arch || !out) return cli_error(cmd, CLI_EXIT_USAGE, "--from, --arch and --out are required\n%s", usage);
    if (classes < 0 || N < 0 || F < 0 || input < 0)
        return cli_error(cmd, CLI_EXIT_USAGE, "--classes, --N, --F and --input must be positive");
    nas_net_choice ch = {arch, NULL, NULL, (int32_t)N, (int32_t)F, (int32_t)input, (int32_t)classes, -1};
    nas_net_config cfg;
    if (nas_net_config_choose(&ch, &cfg)) return cli_fail(cmd);
    if (stem_mult > 0) cfg.stem_multiplier = stem_mult;
    nas_net *net;
    if (nas_net_new(&cfg, NULL, NULL, 0, &net)) return cli_fail(cmd);
    int rc = nas_import(net, in, !strcmp(from, "timm") ? NAS_IMPORT_TIMM : NAS_IMPORT_TF_SLIM);
    if (!rc) rc = nas_net_save(net, out);
    if (!rc)
        printf("imported %s (%s names) into %s: %s, %lld parameters\n", in, from, out, arch,
               (long long)nas_net_num_params(net, 0));
    nas_net_free(net);
    return rc ? cli_fail(cmd) : CLI_EXIT_OK;
}
