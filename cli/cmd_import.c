#include "cli/cli.h"

int cli_cmd_import(int argc, char **argv) {
    (void)argc;
    return cli_unavailable(argv[0], 5, "weight import");
}
