#pragma once
// What every Network shares: the validated config, the stored pixel statistics and input
// standardisation, and the name -> ParamKind table. Concrete networks register their
// layers, call `index_parameters()` once, and implement forward.
#include <map>
#include <string>

#include "models/network.h"

namespace lth::models {

class NetworkBase : public Network {
 public:
  ParamKind kind_of(const std::string& param_name) const override;
  const ModelConfig& config() const override { return config_; }
  torch::Tensor standardize(const torch::Tensor& images) const override;

 protected:
  // Throws UserError for a config no network can be built from.
  explicit NetworkBase(ModelConfig config);

  // Records the kind of every registered parameter; call after all layers exist.
  // The module named "fc" is the head; BN modules are Norm; other biases are Bias.
  void index_parameters();
  // For networks whose layer sizes depend on the input size (MLP, Conv-n).
  void require_configured_size(const torch::Tensor& images) const;

 private:
  void check_input(const torch::Tensor& images) const;

  ModelConfig config_;
  torch::Tensor pixel_mean_;  // float32 [C], in [0, 1] units
  torch::Tensor pixel_std_;
  std::map<std::string, ParamKind> kinds_;
};

// Throws UserError unless config.width == 1 (the width multiplier exists for ResNets only;
// ignoring it silently would build a different network than the user asked for).
void require_unit_width(const ModelConfig& config);

}  // namespace lth::models
