#include "train/loss_scale.h"

#include <ATen/core/grad_mode.h>
#include <torch/types.h>

namespace lth::train {

LossScaler::LossScaler(Config config, torch::Device device)
    : config_(config),
      scale_(torch::full({}, config.initial_scale, torch::TensorOptions().dtype(torch::kFloat32).device(device))),
      finite_steps_(torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(device))) {}

double LossScaler::scale() const { return scale_.item<double>(); }

torch::Tensor LossScaler::update(const torch::Tensor& found_non_finite) {
  at::NoGradGuard no_grad;
  const auto overflow = found_non_finite.to(scale_.device()).gt(0);
  // Finite steps in a row, reset by an overflow; the scale grows when they reach the interval.
  auto steps = torch::where(overflow, torch::zeros_like(finite_steps_), finite_steps_ + 1);
  const auto grow = steps.ge(config_.growth_interval);
  // As GradScaler: never grow past float32's range (an infinite scale could not back off).
  const auto grown = scale_ * config_.growth_factor;
  scale_ = torch::where(overflow, scale_ * config_.backoff_factor,
                        torch::where(grow.logical_and(grown.isfinite()), grown, scale_));
  finite_steps_ = torch::where(grow, torch::zeros_like(steps), steps);
  return overflow.logical_not();
}

bool LossScaler::update(bool found_non_finite) {
  return update(torch::full({}, found_non_finite ? 1.0f : 0.0f, scale_.options())).item<bool>();
}

nlohmann::json LossScaler::state() const {
  return {{"scale", scale()}, {"finite_steps", finite_steps_.item<int64_t>()}};
}

void LossScaler::load(const nlohmann::json& state) {
  scale_.fill_(state.value("scale", config_.initial_scale));
  finite_steps_.fill_(state.value("finite_steps", int64_t{0}));
}

}  // namespace lth::train
