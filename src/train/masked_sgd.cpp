#include "train/masked_sgd.h"

#include <ATen/core/grad_mode.h>
#include <torch/types.h>

#include "common/error.h"

namespace lth::train {

MaskedSgd::MaskedSgd(std::vector<std::pair<std::string, torch::Tensor>> params,
                     std::map<std::string, torch::Tensor> masks, SgdConfig config)
    : flat_(params), config_(config) {
  at::NoGradGuard no_grad;
  for (const auto& [name, p] : params) names_.push_back(name);
  for (size_t g = 0; g < flat_.groups().size(); ++g) {
    GroupState s{{}, flat_.new_buffer(g, 0.0), flat_.new_buffer(g, 0.0), {}};
    for (const size_t i : flat_.groups()[g].members) {
      const auto it = masks.find(names_[i]);
      if (it == masks.end()) continue;
      if (!s.mask.defined()) s.mask = flat_.new_buffer(g, 1.0);  // x * 1 == x exactly
      auto view = flat_.view(s.mask, i);
      require(it->second.sizes() == view.sizes(), "optimiser: mask of '" + names_[i] + "' has the wrong shape");
      view.copy_(it->second);  // converts as .to(dtype) did: bool/uint8 -> 0.0/1.0
    }
    state_.push_back(std::move(s));
  }
}

void MaskedSgd::zero_grad() { flat_.zero_grads(); }

torch::Tensor MaskedSgd::unscale_gradients(const torch::Tensor& scale) {
  at::NoGradGuard no_grad;
  flat_.sync();
  flat_.attach_grads();
  auto found = torch::zeros({}, scale.options());
  for (const auto& group : flat_.groups()) {
    group.grads.div_(scale);  // the padding is 0: it stays 0 and finite
    found = torch::maximum(found, group.grads.isfinite().logical_not().any().to(scale.scalar_type()));
  }
  return found;
}

void MaskedSgd::step(double lr) { update(lr, torch::Tensor()); }
void MaskedSgd::step(double lr, const torch::Tensor& apply) { update(lr, apply); }

// Each line is one kernel per group, the same kernel the per-parameter loop ran per tensor,
// so every element sees the same operations in the same order (bit-identical on CPU).
void MaskedSgd::update(double lr, const torch::Tensor& apply) {
  at::NoGradGuard no_grad;
  flat_.sync();
  const auto& groups = flat_.groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    auto& s = state_[g];
    if (config_.weight_decay != 0) at::add_out(s.work, groups[g].grads, groups[g].params, config_.weight_decay);
    else s.work.copy_(groups[g].grads);
    if (s.mask.defined()) s.work.mul_(s.mask);
  }
  if (config_.global_clip) clip_gradients();
  for (size_t g = 0; g < groups.size(); ++g) {
    auto& s = state_[g];
    auto params = groups[g].params;  // a handle: where_out wants a mutable one
    if (!apply.defined()) {
      s.momentum.mul_(config_.momentum).add_(s.work);
      params.add_(s.momentum, -lr);
      if (s.mask.defined()) params.mul_(s.mask);
      continue;
    }
    // Computed aside with the same kernels, then selected elementwise: the plain step's
    // values when applied, the old ones (even against inf/NaN gradients) when not.
    const auto momentum = s.momentum.mul(config_.momentum).add_(s.work);
    auto updated = params.add(momentum, -lr);
    if (s.mask.defined()) updated.mul_(s.mask);
    at::where_out(s.momentum, apply, momentum, s.momentum);
    at::where_out(params, apply, updated, params);
  }
}

// The squared norm is summed per parameter, in the constructor's order, as the reference's
// loop did: one flat sum would round differently. Everything stays on the device: no sync.
void MaskedSgd::clip_gradients() {
  if (names_.empty()) return;
  std::vector<torch::Tensor> squared;  // per group; kept: a fresh 100 MB a step page-faults
  for (auto& s : state_) {
    if (!s.squared.defined()) s.squared = torch::empty_like(s.work);
    squared.push_back(at::pow_out(s.squared, s.work, 2));
  }
  // In the parameters' dtype (float32 master weights), on their device.
  auto squares = torch::zeros({}, state_[flat_.group_of(0)].work.options());
  for (size_t i = 0; i < names_.size(); ++i) squares += flat_.view(squared[flat_.group_of(i)], i).sum();
  const auto norm = squares.sqrt();
  const auto clip = *config_.global_clip;
  const auto factor = clip / torch::clamp_min(norm, clip);
  for (auto& s : state_) s.work.mul_(factor);
}

std::map<std::string, torch::Tensor> MaskedSgd::momentum() const {
  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < names_.size(); ++i) out[names_[i]] = flat_.view(state_[flat_.group_of(i)].momentum, i);
  return out;
}

void MaskedSgd::load_momentum(const std::map<std::string, torch::Tensor>& buffers,
                              const std::string& source) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < names_.size(); ++i) {
    const auto& name = names_[i];
    auto buffer = flat_.view(state_[flat_.group_of(i)].momentum, i);
    auto it = buffers.find(name);
    require(it != buffers.end(), source + ": missing momentum for '" + name + "'");
    require(it->second.sizes() == buffer.sizes(), source + ": momentum for '" + name + "' has the wrong shape");
    buffer.copy_(it->second);
  }
}

}  // namespace lth::train
