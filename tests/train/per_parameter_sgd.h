#pragma once
// MaskedSgd as it was before the flat buffers: one update per parameter tensor. Kept as the
// reference the fused optimiser must equal bit for bit (test_masked_sgd_fused.cpp) and as
// the baseline bench/train_step/bench_sgd_step.cpp times it against.
#include <torch/types.h>
#include <torch/utils.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "train/masked_sgd.h"

namespace lth::train {

// MaskedSgd as it was before the flat buffers (git show bf8fd21:src/train/masked_sgd.cpp).
class PerParameterSgd {
 public:
  PerParameterSgd(std::vector<std::pair<std::string, torch::Tensor>> params,
                  std::map<std::string, torch::Tensor> masks, SgdConfig config)
      : config_(config) {
    for (auto& [name, p] : params) {
      Slot slot{name, p, {}, torch::zeros_like(p)};
      auto it = masks.find(name);
      if (it != masks.end()) slot.mask = it->second.to(p.device(), p.scalar_type());
      slots_.push_back(std::move(slot));
    }
  }

  void zero_grad() {
    for (auto& s : slots_) {
      if (s.param.grad().defined()) s.param.mutable_grad().zero_();
    }
  }

  void step(double lr) {
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
      auto squares = torch::zeros({}, grads.front().options());
      for (const auto& g : grads) squares += g.pow(2).sum();
      const auto norm = squares.sqrt();
      const auto clip = *config_.global_clip;
      const auto factor = clip / torch::clamp_min(norm, clip);
      for (auto& g : grads) g.mul_(factor);
    }
    for (size_t i = 0; i < slots_.size(); ++i) {
      auto& s = slots_[i];
      s.buffer.mul_(config_.momentum).add_(grads[i]);
      s.param.add_(s.buffer, -lr);
      if (s.mask.defined()) s.param.mul_(s.mask);
    }
  }

  std::map<std::string, torch::Tensor> momentum() const {
    std::map<std::string, torch::Tensor> out;
    for (const auto& s : slots_) out[s.name] = s.buffer;
    return out;
  }

 private:
  struct Slot {
    std::string name;
    torch::Tensor param;
    torch::Tensor mask;
    torch::Tensor buffer;
  };
  std::vector<Slot> slots_;
  SgdConfig config_;
};

}  // namespace lth::train
