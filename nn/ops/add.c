/* add: y = a + b. b may have one element (broadcast). */
#include "nn/ops/binary_kernel.h"

/* dy/da = 1, dy/db = 1 */
NN_BINARY_OP(add, NN_OP_ADD, av + bv, g, g, 1)
