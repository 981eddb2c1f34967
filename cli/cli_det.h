/* Command-line pieces shared by the detector commands (detect, train-det, det-settings). */
#ifndef CLI_DET_H
#define CLI_DET_H

#include <stdio.h>

#include "detector/frcnn_model.h"

/* Apply --test-sizes LIST|none, --test-small PX and --test-fuse MIN,MAX|none to c (NULL or 0:
 * keep c's; extra sizes merged by NMS without a size limit get min_size / 6). On a bad value
 * prints "nasdet CMD: error: --option: ..." and returns CLI_EXIT_USAGE; else CLI_EXIT_OK. The
 * combination is validated by det_model_config_validate, not here. */
int cli_det_test_passes(const char *cmd, det_model_config *c, const char *sizes, double small, const char *fuse);

/* One line saying which input sizes run and how they merge, e.g. "input 320 (objects from 40 px),
 * 384 512 (objects under 128 px of each); boxes fused". */
void cli_det_print_passes(FILE *fp, const char *prefix, int32_t base, const det_test_passes *tp);

#endif
