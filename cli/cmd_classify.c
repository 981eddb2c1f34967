#include "cli/cli.h"

int cli_cmd_classify(int argc, char **argv) {
    (void)argc;
    return cli_unavailable(argv[0], 5, "classification");
}
