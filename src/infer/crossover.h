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
// more efficiently. Rates per core from ResNet-50 runs of bench_sparse_inference on 2026-12-05
// (docs/PERFORMANCE.md, "Sparse inference"): the sparse layers about 22 GMAC/s of kept weights
// at one thread (uniform masks at 0.2097 and 0.1074: 22.5 and 25.8), LibTorch about 63 GMAC/s
// for one image and 85 GMAC/s batched. Both scale with the threads (LibTorch 1.95x on 2, the
// plan 1.9-2.2x since lth::parallel_for; kPlanThreadGain per extra thread). The plan is used
// only when its estimated time is below kPlanMargin of LibTorch's batched forward at the
// current thread count.
constexpr double kSparseMacsPerSecond = 22e9;
constexpr double kDenseSingleMacsPerSecond = 63e9;
constexpr double kDenseBatchedMacsPerSecond = 85e9;
constexpr double kPlanThreadGain = 0.95;
constexpr double kPlanMargin = 0.9;

// The density at or below which the sparse kernel beat the dense one.
double crossover_density(const LayerShape& shape);
inline bool prefer_sparse(const LayerShape& shape, double density) {
  return density <= crossover_density(shape);
}

}  // namespace lth::infer
