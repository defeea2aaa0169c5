#include "infer/crossover.h"

namespace lth::infer {

double crossover_density(const LayerShape& s) {
  // Placeholder until measured (see docs/PERFORMANCE.md).
  if (s.linear) return 0.3;
  if (s.kernel_h == 1 && s.kernel_w == 1) return 0.3;
  return 0.3;
}

}  // namespace lth::infer
