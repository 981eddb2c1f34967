#include "cli/cli.h"

int cli_cmd_viz(int argc, char **argv) {
    (void)argc;
    return cli_unavailable(argv[0], 7, "cell drawing");
}
