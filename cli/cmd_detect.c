#include "cli/cli.h"

int cli_cmd_detect(int argc, char **argv) {
    (void)argc;
    return cli_unavailable(argv[0], 6, "the Faster R-CNN detector");
}
