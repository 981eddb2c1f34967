#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "tests/util/testutil.h"

Test(cli, help_lists_every_command) {
    char *out;
    cr_assert_eq(tu_run_cli("--help", &out), 0);
    const char *names[] = {"detect", "eval", "train", "train-det", "search", "info", "data", "viz"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        cr_expect(strstr(out, names[i]) != NULL, "missing %s in:\n%s", names[i], out);
    free(out);
}

Test(cli, version) {
    char *out;
    cr_assert_eq(tu_run_cli("--version", &out), 0);
    cr_expect(strncmp(out, "nasdet ", 7) == 0, "%s", out);
    free(out);
}

Test(cli, unknown_command_and_option_exit_2) {
    char *out;
    cr_expect_eq(tu_run_cli("frobnicate", &out), 2);
    cr_expect(strstr(out, "unknown command 'frobnicate'") != NULL, "%s", out);
    free(out);
    cr_expect_eq(tu_run_cli("--frob", &out), 2);
    free(out);
    cr_expect_eq(tu_run_cli("", &out), 2);
    free(out);
}
