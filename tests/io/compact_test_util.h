#pragma once
// Real tickets for the compact-file tests: an lth network with BN statistics, BN affine
// parameters and head drawn at random (so folding and logits have something to get wrong),
// pruned by lth's own global magnitude pruning and masked, as `lth imp` leaves a ticket.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "io/checkpoint.h"
#include "models/network.h"
#include "pruning/mask.h"
#include "pruning/strategy.h"

namespace lth::io::testing {

inline models::ModelConfig ticket_model(const std::string& name, int64_t image_size,
                                        int64_t classes = 1000) {
  models::ModelConfig c;
  c.name = name;
  c.in_channels = 3;
  c.image_size = image_size;
  c.num_classes = classes;
  c.pixel_mean = {0.485, 0.456, 0.406};
  c.pixel_std = {0.229, 0.224, 0.225};
  return c;
}

// BN statistics and affine parameters and the head, drawn from a seeded generator.
inline void randomize_bn_and_head(models::Network& net, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : net.named_parameters()) {
    const auto& name = p.key();
    if (name.find("bn") != std::string::npos || name.find("downsample.1") != std::string::npos) {
      if (name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0)
        p.value().copy_(torch::rand(p.value().sizes(), gen) + 0.5);
      else
        p.value().copy_(torch::randn(p.value().sizes(), gen) * 0.1);
    } else if (name.rfind("fc.", 0) == 0) {
      p.value().copy_(torch::randn(p.value().sizes(), gen) * 0.05);
    }
  }
  for (auto& b : net.named_buffers()) {
    const auto& name = b.key();
    if (name.find("running_mean") != std::string::npos)
      b.value().copy_(torch::randn(b.value().sizes(), gen) * 0.1);
    if (name.find("running_var") != std::string::npos)
      b.value().copy_(torch::rand(b.value().sizes(), gen) + 0.5);
  }
}

// The network's state and masks after one global magnitude prune keeping `keep` of the conv
// weights, masks applied.
inline Checkpoint make_ticket(const models::ModelConfig& model, double keep, uint64_t seed = 1) {
  auto net = models::make_network(model, seed);
  randomize_bn_and_head(*net, seed + 100);
  const auto weights = pruning::snapshot_state(*net);
  const auto dense = pruning::dense_masks(*net, pruning::PrunableSet::Conv);
  auto masks = pruning::prune("magnitude_global", pruning::PruneRequest{weights, dense, keep});
  pruning::apply_masks(*net, masks);
  Checkpoint ckpt;
  ckpt.iteration = 1234;
  ckpt.state = pruning::snapshot_state(*net);
  ckpt.masks = std::move(masks);
  ckpt.config = {{"model", {{"name", model.name}, {"width", model.width}}},
                 {"data", {{"image_size", model.image_size}}}};
  ckpt.best_acc = 0.625;
  return ckpt;
}

}  // namespace lth::io::testing
