/* Command-line pieces shared by the detector commands. */
#include "cli/cli_det.h"

#include "cli/cli.h"
#include "common/status.h"

int cli_det_test_passes(const char *cmd, det_model_config *c, const char *sizes, double small, const char *fuse) {
    if (sizes && det_model_config_parse_test_sizes(c, sizes))
        return cli_error(cmd, CLI_EXIT_USAGE, "--test-sizes: %s", nd_last_error());
    if (fuse && det_model_config_parse_test_fuse(c, fuse))
        return cli_error(cmd, CLI_EXIT_USAGE, "--test-fuse: %s", nd_last_error());
    if (small < 0) return cli_error(cmd, CLI_EXIT_USAGE, "--test-small must be >= 0, got %g", small);
    if (small > 0) c->test_passes.small = (float)small;
    if (c->test_passes.n_sizes > 0 && !(c->test_passes.small > 0)) c->test_passes.small = (float)c->min_size / 6.0f;
    return CLI_EXIT_OK;
}

void cli_det_print_passes(FILE *fp, const char *prefix, int32_t base, const det_test_passes *tp) {
    if (tp->n_sizes == 0) {
        fprintf(fp, "%sinput %d\n", prefix, base);
    } else if (tp->fuse_max > 0) {
        fprintf(fp, "%sinput %d (objects from %g px),", prefix, base, (double)tp->fuse_min);
        for (int i = 0; i < tp->n_sizes; i++) fprintf(fp, " %d", tp->sizes[i]);
        fprintf(fp, " (objects under %g px of each); boxes fused\n", (double)tp->fuse_max);
    } else {
        fprintf(fp, "%sinput %d, and for objects under %g px also", prefix, base, (double)tp->small);
        for (int i = 0; i < tp->n_sizes; i++) fprintf(fp, " %d", tp->sizes[i]);
        fprintf(fp, "\n");
    }
}
