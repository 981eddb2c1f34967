/* Where the program's run-time data lives (class names, shipped models, the real digits and
 * photographs the data generators use). Looked up, in order, under:
 *   $NASDET_DATA_DIR, <folder of the executable>/../demos (a source tree),
 *   <folder of the executable>/../share/nasdet (an installed tree), and the compiled-in
 *   NASDET_DATADIR (PREFIX/share/nasdet).
 * so that the same binary works from the source tree and after `make install`. */
#ifndef ND_DATAPATH_H
#define ND_DATAPATH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Find `relative` (e.g. "data/coco_classes.txt", "models/default.safetensors"); writes the full
 * path to out and returns 0, or ND_ERR_NOT_FOUND with a message listing the places tried. */
int nd_data_path(const char *relative, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif
