#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace lth::train {

double learning_rate(const ScheduleConfig& c, int64_t step) {
  if (c.constant) return c.peak_lr;
  const auto warmup = static_cast<int64_t>(std::floor(c.warmup_fraction * c.total_steps));
  if (step < warmup) return c.peak_lr * static_cast<double>(step) / static_cast<double>(warmup);
  // optax: the cosine lasts floor(0.9 N) steps; any step past it stays at 0.
  const auto decay_steps =
      static_cast<int64_t>(std::floor((1.0 - c.warmup_fraction) * c.total_steps));
  if (decay_steps <= 0) return c.peak_lr;
  const double progress =
      std::clamp(static_cast<double>(step - warmup) / static_cast<double>(decay_steps), 0.0, 1.0);
  return c.peak_lr * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace lth::train
