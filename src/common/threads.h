#pragma once
// Intra-op thread count. LibTorch on this class of machine defaults to 1 thread when
// OMP_NUM_THREADS is unset, so lth always sets it explicitly (flag --threads, 0 = all cores).
namespace lth {

// Number of online CPU cores (at least 1).
int hardware_threads();
// Sets LibTorch's intra-op threads to `requested` (0 = hardware_threads()); returns the count set.
int configure_threads(int requested);

}  // namespace lth
