#pragma once
// Folding each BatchNorm into the convolution before it, for inference (`lth export
// --fold_bn`), and the inverse a reader needs to run the folded weights in lth's networks.
//
// In eval mode BN(conv(x)) = conv'(x) + b' with, per output channel o,
//   s_o = gamma_o / sqrt(running_var_o + eps),   W'_o = s_o · W_o,   b'_o = beta_o − s_o · mean_o
// (computed in float64, rounded once to the weights' dtype). A pruned weight stays exactly 0,
// so the mask is unchanged.
//
// Which conv feeds which BN comes from torchvision's names, which every lth network uses
// (models/network.h): BN `P.bnK` follows conv `P.convK`, and in a Sequential BN `P.k`
// follows conv `P.(k−1)` (a ResNet shortcut's `downsample.1` / `downsample.0`). Refused
// (UserError): a BN with no such conv, a conv with a bias of its own, or a channel count that
// differs; then nothing is folded.
//
// Unfolding (reading a folded file into an lth network, which still has its BN layers) sets
// each folded BN to scale 1, bias b', running mean 0, running variance 1 − eps: the network
// then computes conv'(x) + b' (within a float32 rounding of 1/sqrt(1 − eps + eps) = 1).
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace lth::io {

// The BN eps of every network lth builds (models/resnet.h: BatchNorm2d eps 1e-5). A folded
// file records the eps it was folded with, and readers use the recorded one.
inline constexpr double kBatchNormEps = 1e-5;

// A BN module and the conv module before it, as state_dict prefixes ("layer1.0.bn1",
// "layer1.0.conv1").
struct BnFold {
  std::string bn;
  std::string conv;
};

// Every BN of `state` (a module with `.running_mean`) paired with its conv, in name order.
// UserError naming `label` if a BN cannot be folded (see above).
std::vector<BnFold> find_bn_folds(const std::string& label, const TensorMap& state);

// Replaces each conv weight by W' and adds `<conv>.bias` = b'; removes the BN's weight,
// bias, running_mean and running_var (num_batches_tracked stays: it is not a statistic).
void fold_batch_norms(TensorMap& state, const std::vector<BnFold>& folds, double eps);

// The inverse for a reader: takes `<conv>.bias` out of `state` and recreates the BN's four
// tensors as described above. UserError naming `label` if a tensor is missing or misshaped.
void unfold_batch_norms(const std::string& label, TensorMap& state,
                        const std::vector<BnFold>& folds, double eps);

}  // namespace lth::io
