#include "infer/crossover.h"

namespace lth::infer {

// Measured with bench_sparse_layers --batches 1 --threads 1 (2026-12-05, Xeon with AVX-512,
// a shared and busy machine: see docs/PERFORMANCE.md for the table): one image on one
// thread, as the engine runs a batch (engine.cpp), against LibTorch's conv2d on the same
// image. Measured crossovers on ResNet-50's shapes: 1x1 stride 1 at 14x14 and larger 0.6-0.8
// and above; 1x1 at 7x7 0.3; 1x1 stride 2 (shortcut) 0.5; 3x3 stride 1 0.3-0.4; 3x3 stride 2
// 0.3; 7x7/2 stem 0.3. Each threshold below is about 80 % of the lowest measured crossover of
// its class, so that noise in the measurement errs towards LibTorch (never slower).
double crossover_density(const LayerShape& s) {
  // Linear layers (LeNet, Conv-n's classifier, every head): not measured; oneDNN/BLAS GEMM
  // is at its best there, so only clearly sparse layers go sparse.
  if (s.linear) return 0.2;
  const bool pointwise = s.kernel_h == 1 && s.kernel_w == 1;
  if (pointwise && s.stride == 1) return s.out_h * s.out_w >= 14 * 14 ? 0.5 : 0.25;
  if (pointwise) return 0.4;
  return 0.25;  // 3x3 (either stride), 7x7 stem and other k x k
}

}  // namespace lth::infer
