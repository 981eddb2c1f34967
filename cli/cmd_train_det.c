#include "cli/cli.h"

int cli_cmd_train_det(int argc, char **argv) {
    (void)argc;
    return cli_unavailable(argv[0], 6, "detector training");
}
