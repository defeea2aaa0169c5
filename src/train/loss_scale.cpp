#include "train/loss_scale.h"

namespace lth::train {

bool LossScaler::update(bool found_non_finite) {
  if (found_non_finite) {
    scale_ *= config_.backoff_factor;
    finite_steps_ = 0;
    return false;
  }
  if (++finite_steps_ >= config_.growth_interval) {
    scale_ *= config_.growth_factor;
    finite_steps_ = 0;
  }
  return true;
}

nlohmann::json LossScaler::state() const {
  return {{"scale", scale_}, {"finite_steps", finite_steps_}};
}

void LossScaler::load(const nlohmann::json& state) {
  scale_ = state.value("scale", config_.initial_scale);
  finite_steps_ = state.value("finite_steps", int64_t{0});
}

}  // namespace lth::train
