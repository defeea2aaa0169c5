#pragma once
// The ImageNet stem's 3x3 stride-2 max-pool for the inference engine. LibTorch's max_pool2d
// on one image took 4.6 ms of the sparse plan's 27 ms per ResNet-50 image at density 0.1074
// (one thread, measured): more than the whole dense stem convolution. Positions outside the
// input never win the max (PyTorch's implicit padding and the reference's -inf padding alike),
// so one function serves both padding rules: pad_top/pad_left say where output (0, 0)'s
// window starts, out_h/out_w how many outputs there are.
#include <ATen/ATen.h>

#include <cstdint>

namespace lth::infer {

// x: float32 NCHW, contiguous or with padded planes (conv_layer.h, has_plane_layout).
// Output [N, C, out_h, out_w]: out[y][x] = max over input rows 2y - pad_top + {0, 1, 2} and
// columns 2x - pad_left + {0, 1, 2} that lie inside the input (every window must hold at
// least one input position). With `relu`, max(out, 0): the ReLU of the convolution before
// the pool, applied to the quarter-size output instead of the input (max and ReLU commute),
// which saves a pass over the stem's largest activation.
at::Tensor max_pool_3x3_s2(const at::Tensor& x, int64_t pad_top, int64_t pad_left, int64_t out_h,
                           int64_t out_w, bool relu = false);

}  // namespace lth::infer
