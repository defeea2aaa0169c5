#pragma once
// Learning-rate schedules of the reference (optax semantics): the update with 0-based
// index `step` uses lr(step).
//  - constant: lr(step) = peak (the rewind phase);
//  - warm-up + cosine (each IMP cycle): W = floor(warmup_fraction * N) steps of linear
//    warm-up from 0 (so the very first update has lr 0, as in optax), then cosine decay
//    from peak to 0 over the remaining N - W steps.
#include <cstdint>

namespace lth::train {

struct ScheduleConfig {
  double peak_lr = 0.8;
  int64_t total_steps = 48000;
  bool constant = false;
  double warmup_fraction = 0.1;
};

double learning_rate(const ScheduleConfig& config, int64_t step);

}  // namespace lth::train
