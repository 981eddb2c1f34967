/* libFuzzer target: the COCO instances JSON loader from memory (make fuzz). Any input must
 * give a dataset or a status with a message; a parsed dataset must be internally consistent. */
#include "coco/coco.h"
#include "common/log.h"
#include "common/status.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nd_log_set_level(ND_LOG_QUIET);
    coco_dataset ds;
    if (coco_dataset_parse((const char *)data, size, "fuzz.json", &ds) == 0) {
        /* The invariants the loaders rely on. */
        for (int64_t a = 0; a < ds.num_anns; a++) {
            const coco_ann *an = &ds.anns[a];
            if (an->image_index < 0 || an->image_index >= ds.num_images) abort();
            if (coco_class_to_category(&ds, an->class_index) != an->category_id) abort();
        }
        int64_t total = 0;
        for (int64_t i = 0; i < ds.num_images; i++) {
            const coco_image *im = &ds.images[i];
            if (coco_dataset_find_image(&ds, im->id) != i) abort();
            for (int64_t k = 0; k < im->ann_count; k++)
                if (ds.anns[ds.ann_index[im->ann_first + k]].image_index != i) abort();
            total += im->ann_count;
        }
        if (total != ds.num_anns) abort();
        coco_dataset_free(&ds);
    } else if (nd_last_error()[0] == '\0') {
        abort(); /* a failure must say why */
    }
    return 0;
}
