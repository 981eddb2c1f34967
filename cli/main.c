/* nasdet: NASNet architecture search, backbones, a Faster R-CNN detector and COCO evaluation. */
#include "cli/cli.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

#ifndef NASDET_VERSION
#define NASDET_VERSION "unknown"
#endif

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} cli_command;

static const cli_command commands[] = {
    {"detect", cli_cmd_detect, "find objects in images; write COCO results JSON and drawn pictures"},
    {"eval", cli_cmd_eval, "COCO evaluation (bbox, segm, keypoints) of a results file, as pycocotools"},
    {"train", cli_cmd_train, "train a NASNet classifier (preset or searched genotype)"},
    {"train-det", cli_cmd_train_det, "train a Faster R-CNN detector on NASNet features"},
    {"det-settings", cli_cmd_det_settings, "show or change a detector model's stored test-time settings"},
    {"search", cli_cmd_search, "search a NASNet cell (PPO, REINFORCE or random search)"},
    {"info", cli_cmd_info, "parameters and multiply-adds of a NASNet"},
    {"data", cli_cmd_data, "make the proxy data sets (digits-cls, digits-det) from real digits and photos"},
    {"viz", cli_cmd_viz, "draw the cells of a genotype as graphs"},
    {"import", cli_cmd_import, "convert pretrained NASNet weights (timm/Cadene names) to nasdet's"},
    {"classify", cli_cmd_classify, "classify images with a NASNet model"},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *fp) {
    fprintf(fp, "usage: nasdet [--quiet | --verbose] COMMAND [options]\n\ncommands:\n");
    for (int i = 0; i < NCOMMANDS; i++) fprintf(fp, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(fp, "\n'nasdet COMMAND --help' shows the options of a command.\n"
                "  --version  print the version\n  --quiet    only errors\n  --verbose  debug messages too\n");
}

int main(int argc, char **argv) {
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        const char *a = argv[first];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("nasdet %s\n", NASDET_VERSION);
            return CLI_EXIT_OK;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            nd_log_set_level(ND_LOG_ERROR);
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            nd_log_set_level(ND_LOG_DEBUG);
        } else {
            fprintf(stderr, "nasdet: unknown option '%s' (see 'nasdet --help')\n", a);
            return CLI_EXIT_USAGE;
        }
    }
    if (first >= argc) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[first], commands[i].name)) return commands[i].run(argc - first, argv + first);
    fprintf(stderr, "nasdet: unknown command '%s' (see 'nasdet --help')\n", argv[first]);
    return CLI_EXIT_USAGE;
}
