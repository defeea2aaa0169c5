#include "pruning/mask.h"

#include <ATen/core/grad_mode.h>
#include <torch/types.h>

#include "common/error.h"

namespace lth::pruning {

PrunableSet parse_prunable_set(const std::string& name) {
  if (name == "conv") return PrunableSet::Conv;
  if (name == "conv+linear") return PrunableSet::ConvAndLinear;
  if (name == "all") return PrunableSet::AllWeights;
  throw UserError("unknown prunable set '" + name + "' (known: conv, conv+linear, all)");
}

std::string to_string(PrunableSet set) {
  switch (set) {
    case PrunableSet::Conv: return "conv";
    case PrunableSet::ConvAndLinear: return "conv+linear";
    case PrunableSet::AllWeights: return "all";
  }
  return "?";
}

static bool is_prunable(models::ParamKind kind, PrunableSet set) {
  using K = models::ParamKind;
  switch (set) {
    case PrunableSet::Conv: return kind == K::ConvKernel;
    case PrunableSet::ConvAndLinear: return kind == K::ConvKernel || kind == K::Linear;
    case PrunableSet::AllWeights: return kind == K::ConvKernel || kind == K::Linear || kind == K::Head;
  }
  return false;
}

std::vector<std::string> prunable_names(const models::Network& net, PrunableSet set) {
  std::vector<std::string> names;
  for (const auto& item : net.named_parameters()) {
    const auto kind = net.kind_of(item.key());
    // Head biases are "Head" too; only weights (dim >= 2) are ever pruned.
    if (item.value().dim() >= 2 && is_prunable(kind, set)) names.push_back(item.key());
  }
  require(!names.empty(), "network " + net.config().name + " has no prunable parameters in set '" +
                              to_string(set) + "' (try --prunable all)");
  return names;
}

MaskSet dense_masks(const models::Network& net, PrunableSet set) {
  MaskSet masks;
  const auto params = net.named_parameters();
  for (const auto& name : prunable_names(net, set)) {
    masks[name] = torch::ones_like(params[name], torch::kFloat32);
  }
  return masks;
}

int64_t count_kept(const MaskSet& masks) {
  int64_t kept = 0;
  for (const auto& [_, m] : masks) kept += m.sum().item<int64_t>();
  return kept;
}

int64_t count_total(const MaskSet& masks) {
  int64_t total = 0;
  for (const auto& [_, m] : masks) total += m.numel();
  return total;
}

void apply_masks(models::Network& net, const MaskSet& masks) {
  at::NoGradGuard no_grad;
  auto params = net.named_parameters();
  for (const auto& [name, mask] : masks) {
    auto* p = params.find(name);
    TORCH_CHECK(p != nullptr, "mask for unknown parameter ", name);
    p->mul_(mask.to(p->device(), p->scalar_type()));
  }
}

TensorMap snapshot_state(const models::Network& net) {
  TensorMap state;
  for (const auto& item : net.named_parameters()) state[item.key()] = item.value().detach().clone();
  for (const auto& item : net.named_buffers()) state[item.key()] = item.value().detach().clone();
  return state;
}

void load_state(models::Network& net, const TensorMap& state, const std::string& source,
                bool with_buffers) {
  at::NoGradGuard no_grad;
  auto copy_into = [&](const std::string& name, torch::Tensor& target) {
    auto it = state.find(name);
    require(it != state.end(), source + ": missing tensor '" + name + "'");
    require(it->second.sizes() == target.sizes(),
            source + ": tensor '" + name + "' has shape " + c10::str(it->second.sizes()) +
                ", the network expects " + c10::str(target.sizes()));
    target.copy_(it->second);
  };
  for (auto& item : net.named_parameters()) copy_into(item.key(), item.value());
  if (!with_buffers) return;
  for (auto& item : net.named_buffers()) copy_into(item.key(), item.value());
}

}  // namespace lth::pruning
