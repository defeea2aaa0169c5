#pragma once
// Dynamic loss scaling for float16 training (the reference's GPU mixed precision):
// the loss is multiplied by `scale` before backward; gradients are divided by it before
// the update. A step whose gradients hold inf/NaN is skipped and the scale halved; after
// `growth_interval` finite steps in a row the scale doubles. Its state is checkpointed.
//
// The state lives on the training device and every decision is made there: the trainer
// never waits for the device to learn whether a step overflowed (torch.cuda.amp.GradScaler
// reads found_inf on the host every step; we do not). Only state() reads it back, at
// checkpoints. Scales are powers of two, exact in the float32 the state is kept in.
#include <cstdint>

#include <nlohmann/json.hpp>
#include <torch/types.h>

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
  explicit LossScaler(Config config, torch::Device device = torch::kCPU);

  // The current scale: a float32 scalar on the device (multiply the loss by it) ...
  const torch::Tensor& scale_tensor() const { return scale_; }
  // ... and its value on the host (waits for the device: for logs and tests).
  double scale() const;

  // Records one step's outcome (`found_non_finite`: 1 if a gradient held inf/NaN, as
  // MaskedSgd::unscale_gradients returns, which divides them by the scale) on the device and
  // returns a bool scalar there: whether the step's update should be applied.
  torch::Tensor update(const torch::Tensor& found_non_finite);
  // Host form of the same, for callers that already know (tests): returns whether to apply.
  bool update(bool found_non_finite);

  nlohmann::json state() const;  // waits for the device
  void load(const nlohmann::json& state);

 private:
  Config config_;
  torch::Tensor scale_;         // float32 scalar on the device
  torch::Tensor finite_steps_;  // int64 scalar on the device: finite steps since the last change
};

}  // namespace lth::train
