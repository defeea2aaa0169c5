#pragma once
// Dynamic loss scaling for float16 training (the reference's GPU mixed precision):
// the loss is multiplied by `scale` before backward; gradients are divided by it before
// the update. A step whose gradients hold inf/NaN is skipped and the scale halved; after
// `growth_interval` finite steps in a row the scale doubles. Its state is checkpointed.
#include <cstdint>

#include <nlohmann/json.hpp>

namespace lth::train {

class LossScaler {
 public:
  struct Config {
    double initial_scale = 65536.0;
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    int64_t growth_interval = 2000;
  };
  LossScaler() : LossScaler(Config{}) {}
  explicit LossScaler(Config config) : config_(config), scale_(config.initial_scale) {}

  double scale() const { return scale_; }
  // Records one step's outcome; returns true when the step's update should be applied.
  bool update(bool found_non_finite);

  nlohmann::json state() const;
  void load(const nlohmann::json& state);

 private:
  Config config_;
  double scale_;
  int64_t finite_steps_ = 0;
};

}  // namespace lth::train
