/* libFuzzer target: the CIFAR-10 / CIFAR-100 record reader from memory (make fuzz). */
#include "coco/coco.h"
#include "common/status.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int kind = COCO_CIFAR10; kind <= COCO_CIFAR100; kind++) {
        coco_cifar c = {0};
        if (coco_cifar_parse(data, size, (coco_cifar_kind)kind, "fuzz.bin", &c) == 0) {
            size_t rec = (size_t)(kind == COCO_CIFAR100 ? 2 : 1) + COCO_CIFAR_PIXELS;
            if ((size_t)c.count * rec != size) abort();
            for (int64_t i = 0; i < c.count; i++)
                if (c.labels[i] >= (kind == COCO_CIFAR100 ? 100 : 10)) abort();
            /* Appending the same records again doubles the set. */
            if (c.count && (coco_cifar_parse(data, size, (coco_cifar_kind)kind, "fuzz.bin", &c) != 0 ||
                            c.pixels[(size_t)c.count / 2 * COCO_CIFAR_PIXELS] != c.pixels[0]))
                abort();
        } else if (nd_last_error()[0] == '\0') {
            abort();
        }
        coco_cifar_free(&c);
    }
    return 0;
}
