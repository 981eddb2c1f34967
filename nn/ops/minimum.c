/* minimum: y = min(a, b), ties send the gradient to a. b may have one element (broadcast). */
#include "nn/ops/binary_kernel.h"

/* the gradient goes to the smaller input (a on ties) */
NN_BINARY_OP(minimum, NN_OP_MINIMUM, av <= bv ? av : bv, av <= bv ? g : 0.0f, av <= bv ? 0.0f : g, 0)
