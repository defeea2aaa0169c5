#include "common/threads.h"

#include <ATen/Parallel.h>
#include <sched.h>

#include <algorithm>
#include <string>
#include <thread>

#include "common/env.h"
#include "common/error.h"

namespace lth {
namespace {

// A positive thread count from `name`, or 0 when unset or empty. OpenMP allows a list
// ("4,2": 4 threads at the outer level); its first entry is the count.
int env_threads(const char* name) {
  const auto text = env_value(name);
  if (!text) return 0;
  const std::string first = text->substr(0, text->find(','));
  return static_cast<int>(parse_env_int(name, first, 1, 65536, "a thread count"));
}

}  // namespace

int hardware_threads() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int default_threads() {
  if (const int omp = env_threads("OMP_NUM_THREADS")) return omp;
  // Without CPU binding a task's mask is the whole node, hence the cap by Slurm's count.
  if (const int slurm = env_threads("SLURM_CPUS_PER_TASK")) return std::min(slurm, hardware_threads());
  return hardware_threads();
}

int configure_threads(int requested) {
  require(requested >= 0, "--threads must be >= 0 (0 = the default: OMP_NUM_THREADS, else SLURM_CPUS_PER_TASK, else every core this process may use), got " + std::to_string(requested));
  const int n = requested == 0 ? default_threads() : requested;
  at::set_num_threads(n);
  return n;
}

}  // namespace lth
