/* mul: y = a * b. b may have one element (broadcast). */
#include "nn/ops/binary_kernel.h"

/* dy/da = b, dy/db = a */
NN_BINARY_OP(mul, NN_OP_MUL, av * bv, g * bv, g * av, 0)
