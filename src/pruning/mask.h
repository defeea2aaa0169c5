#pragma once
// Masks over a network's prunable parameters: one float 0/1 tensor per parameter name,
// same shape. A pruned entry of a parameter is exactly 0 at all times.
#include <map>
#include <string>
#include <vector>

#include "models/network.h"

namespace lth::pruning {

using MaskSet = std::map<std::string, torch::Tensor>;
using TensorMap = std::map<std::string, torch::Tensor>;

// Which parameters may be pruned. The reference prunes conv kernels only; LeNet has none,
// so it needs "linear" or "all".
enum class PrunableSet {
  Conv,           // "conv": every conv kernel (stem and shortcut included)
  ConvAndLinear,  // "conv+linear": conv kernels and linear weights except the head
  AllWeights,     // "all": every conv and linear weight, head included
};
PrunableSet parse_prunable_set(const std::string& name);  // UserError on unknown names
std::string to_string(PrunableSet set);

std::vector<std::string> prunable_names(const models::Network& net, PrunableSet set);
// All-ones masks for the prunable parameters (the dense start).
MaskSet dense_masks(const models::Network& net, PrunableSet set);

int64_t count_kept(const MaskSet& masks);
int64_t count_total(const MaskSet& masks);

// Multiplies every masked parameter by its mask, in place (no autograd).
void apply_masks(models::Network& net, const MaskSet& masks);
// Copies of the named parameters and buffers (detached, CPU-independent of later updates).
TensorMap snapshot_state(const models::Network& net);
// Loads a state (parameters, and buffers unless !with_buffers) by name into the network;
// UserError naming `source` and the first missing or mis-shaped entry.
void load_state(models::Network& net, const TensorMap& state, const std::string& source,
                bool with_buffers = true);

}  // namespace lth::pruning
