#include "cli/cli.h"

int cli_cmd_search(int argc, char **argv) {
    (void)argc;
    return cli_unavailable(argv[0], 7, "architecture search");
}
