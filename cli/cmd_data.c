#include "cli/cli.h"

int cli_cmd_data(int argc, char **argv) {
    (void)argc;
    return cli_unavailable(argv[0], 2, "the data generators");
}
