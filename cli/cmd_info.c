/* nasdet info: trainable parameters and multiply-adds of a NASNet (TF-slim exact), its cells,
 * and per layer with --verbose. Nothing is allocated but the layer list: Large is instant. */
#include "backbone/nasnet_net.h"
#include "cli/cli.h"
#include "common/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage =
    "usage: nasdet info --arch PRESET | --genotype G.json [--N n --F f --stem cifar|imagenet --input S "
    "--classes K] [--aux] [--json] [--verbose]";
static const char *const description =
    "Print a NASNet's trainable parameters and multiply-adds (conv and FC, one image), without the\n"
    "aux head unless --aux, exactly as TF-slim builds it (NASNet-A Mobile 224/1000: 5,289,978 and\n"
    "563,638,816). Presets: nasnet-a-cifar (6 @ 768), nasnet-a-cifar-large (7 @ 2304),\n"
    "nasnet-a-mobile (4 @ 1056), nasnet-a-large (6 @ 4032). --verbose lists every layer.";

/* 1234567 -> "1,234,567" */
static const char *grouped(int64_t v, char *buf, size_t n) {
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)(v < 0 ? -v : v));
    size_t len = strlen(raw), k = 0;
    if (v < 0 && k < n - 1) buf[k++] = '-';
    for (size_t i = 0; i < len && k < n - 1; i++) {
        if (i && (len - i) % 3 == 0 && k < n - 1) buf[k++] = ',';
        buf[k++] = raw[i];
    }
    buf[k] = '\0';
    return buf;
}

int cli_cmd_info(int argc, char **argv) {
    const char *cmd = argv[0];
    const char *arch = NULL, *genotype = NULL, *stem = NULL;
    int64_t N = 0, F = 0, input = 0, classes = 0;
    int aux = 0, json = 0, verbose = 0;
    nd_opt opts[] = {
        {"arch", ND_OPT_STRING, &arch, "preset (nasnet-a-cifar, nasnet-a-cifar-large, nasnet-a-mobile, nasnet-a-large)",
         NULL, "PRESET"},
        {"genotype", ND_OPT_STRING, &genotype, "cells: a built-in name or a genotype JSON file", NULL, "G"},
        {"N", ND_OPT_INT, &N, "normal cells per stack (0: the preset's)", NULL, "n"},
        {"F", ND_OPT_INT, &F, "num_conv_filters (0: the preset's)", NULL, "f"},
        {"stem", ND_OPT_CHOICE, &stem, "stem kind (default: the preset's)", "cifar|imagenet", NULL},
        {"input", ND_OPT_INT, &input, "input size (0: the preset's)", NULL, "S"},
        {"classes", ND_OPT_INT, &classes, "classes (0: the preset's)", NULL, "K"},
        {"aux", ND_OPT_FLAG, &aux, "count the aux head too", NULL, NULL},
        {"json", ND_OPT_FLAG, &json, "print JSON", NULL, NULL},
        {"verbose", ND_OPT_FLAG, &verbose, "per-layer parameters and multiply-adds", NULL, NULL},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]), code;
    nd_args args;
    if (cli_parse(argc, argv, usage, description, opts, nopts, &args, &code)) return code;
    int npos = args.npositional;
    nd_args_free(&args);
    if (npos) return cli_error(cmd, CLI_EXIT_USAGE, "unexpected argument\n%s", usage);
    if (!arch && !genotype) return cli_error(cmd, CLI_EXIT_USAGE, "give --arch PRESET or --genotype G\n%s", usage);
    if (N < 0 || F < 0 || input < 0 || classes < 0)
        return cli_error(cmd, CLI_EXIT_USAGE, "--N, --F, --input and --classes must be positive");
    nas_net_config cfg;
    nas_net_choice ch = {arch, genotype, stem, (int32_t)N, (int32_t)F, (int32_t)input, (int32_t)classes, aux ? 1 : -1};
    /* Without --aux the aux head is only reported; a network too small for it (a small --input)
     * is still counted, built as training would build it (--no-aux). */
    if (nas_net_config_choose(&ch, &cfg)) {
        if (aux) return cli_fail(cmd);
        ch.aux = 0;
        if (nas_net_config_choose(&ch, &cfg)) return cli_fail(cmd);
    }
    nas_cost c;
    if (nas_net_cost(&cfg, aux, &c)) return cli_fail(cmd);
    nas_cell_info cells[160];
    int nc = nas_net_config_cells(&cfg, cells, 160);
    if (nc < 0) {
        nas_cost_free(&c);
        return cli_fail(cmd);
    }
    if (nc > 160) nc = 160;
    char label[64], a[32], b[32];
    nas_net_config_label(&cfg, label, sizeof label);
    const char *name = arch ? arch : genotype;
    if (json) {
        printf("{\"arch\": \"%s\", \"genotype\": \"%s\", \"params\": %lld, \"macs\": %lld, \"aux\": %s, "
               "\"aux_params\": %lld, \"aux_macs\": %lld, \"N\": %d, \"F\": %d, \"label\": \"%s\", \"stem\": \"%s\", "
               "\"input\": %d, \"classes\": %d, \"cells\": [",
               name, cfg.genotype.name, (long long)c.params, (long long)c.macs, aux ? "true" : "false",
               (long long)c.aux_params, (long long)c.aux_macs, cfg.num_cells, cfg.num_conv_filters, label,
               cfg.stem == NAS_STEM_IMAGENET ? "imagenet" : "cifar", cfg.image_size, cfg.num_classes);
        for (int i = 0; i < nc; i++)
            printf("%s{\"name\": \"%s\", \"kind\": \"%s\", \"filters\": %d, \"channels\": %d, \"stride\": %d, "
                   "\"height\": %d, \"width\": %d}",
                   i ? ", " : "", cells[i].name, nas_cell_kind_name(cells[i].kind), cells[i].filters, cells[i].channels,
                   cells[i].stride, cells[i].height, cells[i].width);
        printf("]");
        if (verbose) {
            printf(", \"layers\": [");
            int first = 1;
            for (int64_t i = 0; i < c.n_layers; i++) {
                if (c.layers[i].aux && !aux) continue;
                printf("%s{\"name\": \"%s\", \"params\": %lld, \"macs\": %lld}", first ? "" : ", ", c.layers[i].name,
                       (long long)c.layers[i].params, (long long)c.layers[i].macs);
                first = 0;
            }
            printf("]");
        }
        printf("}\n");
    } else {
        printf("%s: NASNet %s (genotype %s), F=%d, %s stem, %dx%d input, %d classes\n", name, label,
               cfg.genotype.name[0] ? cfg.genotype.name : "unnamed", cfg.num_conv_filters,
               cfg.stem == NAS_STEM_IMAGENET ? "ImageNet" : "CIFAR", cfg.image_size, cfg.image_size, cfg.num_classes);
        printf("params     %15s%s\n", grouped(c.params, a, sizeof a), aux ? " (aux head included)" : "");
        printf("mult-adds  %15s%s\n", grouped(c.macs, b, sizeof b), aux ? " (aux head included)" : "");
        if (!aux && cfg.use_aux_head)
            printf("aux head   %15s params, %s mult-adds (training only; --aux counts it)\n",
                   grouped(c.aux_params, a, sizeof a), grouped(c.aux_macs, b, sizeof b));
        printf("cells:\n");
        for (int i = 0; i < nc; i++)
            printf("  %3d %-18s %-9s filters %4d  out %5d x %3d x %3d  stride %2d\n", i, cells[i].name,
                   nas_cell_kind_name(cells[i].kind), cells[i].filters, cells[i].channels, cells[i].height,
                   cells[i].width, cells[i].stride);
        if (verbose) {
            printf("layers (params, mult-adds):\n");
            for (int64_t i = 0; i < c.n_layers; i++) {
                if (c.layers[i].aux && !aux) continue;
                printf("  %-64s %12s %15s\n", c.layers[i].name, grouped(c.layers[i].params, a, sizeof a),
                       grouped(c.layers[i].macs, b, sizeof b));
            }
        }
    }
    nas_cost_free(&c);
    return CLI_EXIT_OK;
}
