#include "cli/cli.h"

int cli_cmd_eval(int argc, char **argv) {
    (void)argc;
    return cli_unavailable(argv[0], 3, "COCO evaluation");
}
