#pragma once
// SGD with momentum over masked parameters, in the reference's order within one step:
//   g += weight_decay * p     (PyTorch-style decay, every parameter: BN and head too)
//   g *= mask                  (pruned weights get no update)
//   g *= clip / max(|g|, clip) (optional global-norm clipping, optax semantics)
//   buf = momentum * buf + g;  p -= lr * buf   (no dampening, no Nesterov)
//   p *= mask                  (pruned weights stay exactly 0)
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace lth::train {

struct SgdConfig {
  double momentum = 0.9;
  double weight_decay = 1e-4;
  std::optional<double> global_clip;
};

class MaskedSgd {
 public:
  // `params` by name (their .grad() is read); `masks` for the prunable subset.
  MaskedSgd(std::vector<std::pair<std::string, torch::Tensor>> params,
            std::map<std::string, torch::Tensor> masks, SgdConfig config);

  void step(double lr);
  void zero_grad();

  // Momentum buffers by parameter name, for checkpoints.
  std::map<std::string, torch::Tensor> momentum() const;
  void load_momentum(const std::map<std::string, torch::Tensor>& buffers, const std::string& source);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param;
    torch::Tensor mask;  // undefined when unmasked
    torch::Tensor buffer;
  };
  std::vector<Slot> slots_;
  SgdConfig config_;
};

}  // namespace lth::train
