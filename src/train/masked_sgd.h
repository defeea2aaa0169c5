#pragma once
// SGD with momentum over masked parameters, in the reference's order within one step:
//   g += weight_decay * p     (PyTorch-style decay, every parameter: BN and head too)
//   g *= mask                  (pruned weights get no update)
//   g *= clip / max(|g|, clip) (optional global-norm clipping, optax semantics)
//   buf = momentum * buf + g;  p -= lr * buf   (no dampening, no Nesterov)
//   p *= mask                  (pruned weights stay exactly 0)
//
// Fused: the parameters, gradients, momentum and masks live in one flat buffer per (device,
// dtype) (FlatParameters), so each line above is one kernel over all parameters at once:
// about 6 kernels per step for ResNet-50's 161 tensors, not ~1,100. Bit-identical on CPU to
// the per-parameter loop (tests/train/test_masked_sgd_fused.cpp keeps that loop as reference).
// Clipping keeps the per-parameter sum order of the squared norm (for that identity): it adds
// one small reduction per parameter, still on the device.
//
// The constructor adopts the parameters (see flat_parameters.h): their data moves into the
// buffer and their .grad become views of it; the same tensor objects keep working everywhere.
// Masks are copied at construction.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "train/flat_parameters.h"

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
  // The same step, applied only where `apply` (a bool scalar on the parameters' device) is
  // true and otherwise leaving parameters and momentum untouched, decided on the device
  // without a host synchronisation: the loss scaler's skip of an overflowing fp16 step.
  void step(double lr, const torch::Tensor& apply);
  void zero_grad();
  // Divides every gradient by `scale` (a float scalar on the parameters' device) in the flat
  // buffers, one kernel per group instead of one per tensor, and returns a float scalar on the
  // device: 1 when any gradient is not finite, else 0. The same values as dividing each
  // parameter's .grad by the scale (the fp16 step's unscale, no host sync).
  torch::Tensor unscale_gradients(const torch::Tensor& scale);

  // Momentum buffers by parameter name, for checkpoints.
  std::map<std::string, torch::Tensor> momentum() const;
  void load_momentum(const std::map<std::string, torch::Tensor>& buffers, const std::string& source);

 private:
  // Flat tensors laid out like one FlatParameters group.
  struct GroupState {
    torch::Tensor mask;      // 1 for unmasked parameters; undefined when none is masked
    torch::Tensor momentum;
    torch::Tensor work;      // the step's gradient: decayed, masked, clipped
    torch::Tensor squared;   // work², for the clipping norm; allocated on first use
  };
  void update(double lr, const torch::Tensor& apply);  // `apply` undefined: always
  void clip_gradients();

  std::vector<std::string> names_;
  FlatParameters flat_;
  std::vector<GroupState> state_;
  SgdConfig config_;
};

}  // namespace lth::train
