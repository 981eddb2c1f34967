/* sub: y = a - b. b may have one element (broadcast). */
#include "nn/ops/binary_kernel.h"

/* dy/da = 1, dy/db = -1 */
NN_BINARY_OP(sub, NN_OP_SUB, av - bv, g, -g, 1)
