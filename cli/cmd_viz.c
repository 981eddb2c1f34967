/* nasdet viz: draw a genotype's cells with Graphviz. The DOT text comes from the library
 * (nas_genotype_to_dot); cli/viz_render.c turns it into a picture. */
#include "backbone/nasnet.h"
#include "cli/cli.h"
#include "cli/viz_render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage = "nasdet viz --genotype G.json|nasnet-a --out FILE.png|.svg|.pdf|.dot "
                                 "[--cell normal|reduction|both]";
static const char *const description =
    "Draw the Normal and/or Reduction cell of a genotype as a graph: cell inputs (h_i, h_{i-1}),\n"
    "one box per op (\"/2\": stride 2 in the reduction cell), one node per block's combiner and\n"
    "the output concat. The picture format follows the --out extension: .png, .svg and .pdf are\n"
    "rendered by Graphviz's `dot` (Debian package graphviz), .dot (or .gv) writes the DOT text.";

int cli_cmd_viz(int argc, char **argv) {
    const char *genotype = NULL, *out = NULL, *cell = "both";
    nd_opt opts[] = {
        {"genotype", ND_OPT_STRING, &genotype, "genotype JSON file, or a built-in name (nasnet-a)", NULL, "G"},
        {"out", ND_OPT_STRING, &out, "picture to write; the extension picks the format (.png .svg .pdf .dot)", NULL,
         "FILE"},
        {"cell", ND_OPT_CHOICE, &cell, "which cell to draw", "normal|reduction|both", NULL},
    };
    int nopts = (int)(sizeof opts / sizeof opts[0]), code;
    nd_args args;
    if (cli_parse(argc, argv, usage, description, opts, nopts, &args, &code)) return code;
    int extra = args.npositional;
    const char *first = extra ? args.positional[0] : NULL;
    if (extra) {
        code = cli_error(argv[0], CLI_EXIT_USAGE, "unexpected argument \"%s\"\nusage: %s", first, usage);
        nd_args_free(&args);
        return code;
    }
    nd_args_free(&args);
    if (!genotype) return cli_error(argv[0], CLI_EXIT_USAGE, "--genotype is required\nusage: %s", usage);
    if (!out) return cli_error(argv[0], CLI_EXIT_USAGE, "--out is required\nusage: %s", usage);
    /* The extension is checked before any work, so a typo fails fast. */
    if (!cli_render_format(out))
        return cli_error(argv[0], CLI_EXIT_USAGE, "--out %s: unknown picture format, expected a name ending in .png, "
                         ".svg, .pdf or .dot", out);
    unsigned cells = strcmp(cell, "normal") == 0      ? 1u << NAS_CELL_NORMAL
                     : strcmp(cell, "reduction") == 0 ? 1u << NAS_CELL_REDUCTION
                                                      : (1u << NAS_CELL_NORMAL) | (1u << NAS_CELL_REDUCTION);
    nas_genotype g;
    if (nas_genotype_from_spec(genotype, &g)) return cli_fail(argv[0]);
    char *dot;
    if (nas_genotype_to_dot(&g, cells, &dot)) return cli_fail(argv[0]);
    int rc = cli_render_dot(argv[0], dot, out);
    free(dot);
    if (rc == CLI_EXIT_OK)
        printf("wrote %s (%s cell%s of %s)\n", out, strcmp(cell, "both") == 0 ? "normal and reduction" : cell,
               strcmp(cell, "both") == 0 ? "s" : "", g.name[0] ? g.name : genotype);
    return rc;
}
