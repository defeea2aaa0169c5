#include "common/threads.h"

#include <ATen/Parallel.h>

#include <thread>

#include "common/error.h"

namespace lth {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int configure_threads(int requested) {
  require(requested >= 0, "--threads must be >= 0 (0 = all cores), got " + std::to_string(requested));
  const int n = requested == 0 ? hardware_threads() : requested;
  at::set_num_threads(n);
  return n;
}

}  // namespace lth
