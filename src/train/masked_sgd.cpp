#include "train/masked_sgd.h"

#include <torch/torch.h>

#include "common/error.h"

namespace lth::train {

MaskedSgd::MaskedSgd(std::vector<std::pair<std::string, torch::Tensor>> params,
                     std::map<std::string, torch::Tensor> masks, SgdConfig config)
    : config_(config) {
  for (auto& [name, p] : params) {
    Slot slot{name, p, {}, torch::zeros_like(p)};
    auto it = masks.find(name);
    if (it != masks.end()) slot.mask = it->second.to(p.device(), p.scalar_type());
    slots_.push_back(std::move(slot));
  }
}

void MaskedSgd::zero_grad() {
  for (auto& s : slots_) {
    if (s.param.grad().defined()) s.param.mutable_grad().zero_();
  }
}

void MaskedSgd::step(double lr) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  grads.reserve(slots_.size());
  for (auto& s : slots_) {
    auto g = s.param.grad().defined() ? s.param.grad().clone() : torch::zeros_like(s.param);
    if (config_.weight_decay != 0) g.add_(s.param, config_.weight_decay);
    if (s.mask.defined()) g.mul_(s.mask);
    grads.push_back(std::move(g));
  }
  if (config_.global_clip) {
    // In the parameters' dtype (float32 master weights), on their device: no host sync.
    auto squares = torch::zeros({}, grads.front().options());
    for (const auto& g : grads) squares += g.pow(2).sum();
    const auto norm = squares.sqrt();
    const auto clip = *config_.global_clip;
    const auto factor = clip / torch::clamp_min(norm, clip);  // stays on device: no sync
    for (auto& g : grads) g.mul_(factor);
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    auto& s = slots_[i];
    s.buffer.mul_(config_.momentum).add_(grads[i]);
    s.param.add_(s.buffer, -lr);
    if (s.mask.defined()) s.param.mul_(s.mask);
  }
}

std::map<std::string, torch::Tensor> MaskedSgd::momentum() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& s : slots_) out[s.name] = s.buffer;
  return out;
}

void MaskedSgd::load_momentum(const std::map<std::string, torch::Tensor>& buffers,
                              const std::string& source) {
  torch::NoGradGuard no_grad;
  for (auto& s : slots_) {
    auto it = buffers.find(s.name);
    require(it != buffers.end(), source + ": missing momentum for '" + s.name + "'");
    require(it->second.sizes() == s.buffer.sizes(),
            source + ": momentum for '" + s.name + "' has the wrong shape");
    s.buffer.copy_(it->second);
  }
}

}  // namespace lth::train
