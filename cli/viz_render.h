/* Turning Graphviz DOT text into a picture file (cli/ only: it runs a program and prints). */
#ifndef CLI_VIZ_RENDER_H
#define CLI_VIZ_RENDER_H

/* The format named by the extension of `path`: "png", "svg", "pdf", or "dot" for .dot/.gv
 * (the DOT text itself); NULL for anything else. */
const char *cli_render_format(const char *path);

/* Write `dot_text` to `out_path` as the format its extension names, running Graphviz's `dot`
 * for png/svg/pdf. Returns CLI_EXIT_OK, or prints "nasdet COMMAND: error: ..." and returns
 * CLI_EXIT_USAGE (unknown extension) or CLI_EXIT_FAIL (dot missing or failing, I/O). */
int cli_render_dot(const char *command, const char *dot_text, const char *out_path);

#endif
