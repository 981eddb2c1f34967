/* libFuzzer target: image decoding (nd_image_decode over OpenCV's codecs), then the resize the
 * detection loader applies to every decoded image (make fuzz). */
#include "common/cvshim.h"
#include "common/status.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nd_image img = {0};
    if (nd_image_decode(data, size, 3, &img) == 0) {
        if (img.width <= 0 || img.height <= 0 || img.channels != 3 || !img.data) abort();
        nd_image small = {0};
        if (nd_image_resize(&img, 1 + img.width / 4, 1 + img.height / 4, ND_INTERP_AREA, &small) == 0)
            nd_image_free(&small);
        nd_image_free(&img);
    } else if (nd_last_error()[0] == '\0') {
        abort();
    }
    return 0;
}
