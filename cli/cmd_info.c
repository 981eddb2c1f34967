#include "cli/cli.h"

int cli_cmd_info(int argc, char **argv) {
    (void)argc;
    return cli_unavailable(argv[0], 5, "the NASNet builders");
}
