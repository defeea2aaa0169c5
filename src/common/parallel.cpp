#include "common/parallel.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <exception>

// libgomp's ABI (the library LibTorch 1.13 links): GOMP_parallel runs fn(data) on a team of
// num_threads threads (the caller is thread 0) and returns when all have finished; flags 0
// means no proc_bind request. Declared here rather than through <omp.h>, which clang only
// provides with its own runtime.
extern "C" {
void GOMP_parallel(void (*fn)(void*), void* data, unsigned num_threads, unsigned flags);
int omp_get_thread_num();
int omp_get_num_threads();
}

namespace lth {
namespace {

struct Region {
  int64_t begin = 0, end = 0, grain = 1;
  const std::function<void(int64_t, int64_t)>* f = nullptr;
  std::atomic_flag failed = ATOMIC_FLAG_INIT;
  std::exception_ptr error;
};

void run_chunk(void* data) {
  auto& r = *static_cast<Region*>(data);
  // The chunks follow the team OpenMP actually gave (it may be smaller than asked for, e.g.
  // under OMP_THREAD_LIMIT), so that every index is covered, as at::parallel_for does.
  const int64_t n = r.end - r.begin;
  const int64_t team = std::min<int64_t>(omp_get_num_threads(), (n + r.grain - 1) / r.grain);
  const int tid = omp_get_thread_num();
  const int64_t chunk = (n + team - 1) / team;
  const int64_t b = r.begin + tid * chunk;
  if (b >= r.end) return;
  try {
    const at::internal::ThreadIdGuard tid_guard(tid);
    (*r.f)(b, std::min(r.end, b + chunk));
  } catch (...) {
    if (!r.failed.test_and_set()) r.error = std::current_exception();
  }
}

}  // namespace

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& f) {
  if (begin >= end) return;
  at::internal::lazy_init_num_threads();
  const int64_t n = end - begin;
  int64_t threads = at::get_num_threads();
  if (grain > 0) threads = std::min<int64_t>(threads, (n + grain - 1) / grain);
  if (threads <= 1 || n <= 1 || at::in_parallel_region()) {
    const at::internal::ThreadIdGuard tid_guard(0);
    f(begin, end);
    return;
  }
  Region r;
  r.begin = begin;
  r.end = end;
  r.grain = std::max<int64_t>(grain, 1);
  r.f = &f;
  GOMP_parallel(run_chunk, &r, static_cast<unsigned>(threads), 0);
  if (r.error) std::rethrow_exception(r.error);
}

}  // namespace lth
