#pragma once
// lth::parallel_for: at::parallel_for's contract, on the same OpenMP threads LibTorch uses.
//
// Why not at::parallel_for: in LibTorch 1.13 it is a header template whose parallel branch
// is `#pragma omp parallel` under `#ifdef _OPENMP`. lth is not compiled with -fopenmp (clang's
// -fopenmp would bring LLVM's libomp, a second thread pool beside LibTorch's libgomp), so in
// lth's own files at::parallel_for silently ran every range on the calling thread: the sparse
// engine and the pruning selection used one core whatever --threads said (measured: the
// engine's batch-32 images all ran on thread 0 at --threads 2).
//
// This function calls libgomp's entry point (GOMP_parallel, the ABI LibTorch's own regions
// use) directly, so the work runs on LibTorch's thread pool, honours at::set_num_threads,
// and nests as LibTorch's operations do: called inside a parallel region (ours or
// LibTorch's) it runs inline on the calling thread.
//
// Contract (as at::parallel_for): f(b, e) is called on disjoint, contiguous chunks covering
// [begin, end), at most one chunk per thread, each at least `grain` long except the last;
// at::get_thread_num() inside f is the chunk's thread index. An exception thrown by any chunk
// is rethrown on the caller after every chunk has finished (the first one thrown wins).
#include <cstdint>
#include <functional>

namespace lth {

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& f);

}  // namespace lth
