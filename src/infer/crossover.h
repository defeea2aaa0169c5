#pragma once
// When a layer runs sparse: the measured density crossover of the sparse kernels against
// LibTorch's dense convolution (oneDNN) on this class of machine, by layer shape. The
// figures and how they were measured are in docs/PERFORMANCE.md ("Sparse inference:
// crossovers"); bench/sparse_inference/bench_sparse_layers re-measures them.
//
// A layer runs sparse when its density is at most the crossover of its class; a layer at or
// near full density therefore always runs dense (LibTorch), so a dense network is never
// slower than LibTorch.
#include <cstdint>

namespace lth::infer {

struct LayerShape {
  bool linear = false;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride = 1;
  int64_t in_channels = 0, out_channels = 0;
  int64_t out_h = 1, out_w = 1;  // output size (1x1 for linear layers)
};

// Whole-network guard of mode auto: the plan runs a batch one image at a time, its dense
// layers included, while LibTorch's own forward runs the batch at once, which oneDNN does
// more efficiently. Rates per core from the idle ResNet-50 benchmark of 2026-12-05
// (docs/PERFORMANCE.md, "Sparse inference"): the sparse plan about 14 GMAC/s of kept weights
// at one thread, LibTorch about 63 GMAC/s for one image and 85 GMAC/s batched. LibTorch's
// forward scales with the threads (1.95x on 2); the plan does not yet (1.1-1.25x on 2, taken as
// 1 + kPlanThreadGain per extra thread). The plan is used only when its estimated time is below
// kPlanMargin of LibTorch's batched forward at the current thread count.
constexpr double kSparseMacsPerSecond = 14e9;
constexpr double kDenseSingleMacsPerSecond = 63e9;
constexpr double kDenseBatchedMacsPerSecond = 85e9;
constexpr double kPlanThreadGain = 0.15;
constexpr double kPlanMargin = 0.9;

// The density at or below which the sparse kernel beat the dense one.
double crossover_density(const LayerShape& shape);
inline bool prefer_sparse(const LayerShape& shape, double density) {
  return density <= crossover_density(shape);
}

}  // namespace lth::infer
