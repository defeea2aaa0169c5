// The fused MaskedSgd (flat buffers) against the per-parameter loop it replaced, kept
// verbatim as the reference (per_parameter_sgd.h): two copies of a real network trained
// side by side, each with its own forward and backward, must hold bit-identical parameters
// and momentum after every step (torch::equal), with and without decay, masks, clipping
// and undefined gradients.
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/threads.h"
#include "models/network.h"
#include "per_parameter_sgd.h"
#include "train/masked_sgd.h"

namespace lth::train {
namespace {

models::ModelConfig cifar_resnet20() {
  models::ModelConfig m;
  m.name = "resnet20";  // 65 parameter tensors: convs, BN scales and shifts, the head
  m.num_classes = 10;
  m.in_channels = 3;
  m.image_size = 16;
  m.pixel_mean = {0.5, 0.5, 0.5};
  m.pixel_std = {0.25, 0.25, 0.25};
  return m;
}

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

Named named_parameters(models::Network& net) {
  Named out;
  for (auto& item : net.named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

// Random masks (about half kept) on every 4-D conv weight; BN and the head stay unmasked.
std::map<std::string, torch::Tensor> conv_masks(models::Network& net, uint64_t seed) {
  torch::manual_seed(seed);
  std::map<std::string, torch::Tensor> masks;
  for (auto& [name, p] : named_parameters(net))
    if (p.dim() == 4) masks[name] = torch::rand(p.sizes()) < 0.5;  // bool, as the pruner's are
  return masks;
}

struct Scenario {
  SgdConfig sgd;
  bool masked = true;
  // Before step k, every parameter whose index is a multiple of 7 gets an undefined
  // gradient (an unused parameter), and every one whose index is 3 mod 7 a replaced one.
  bool disturb_grads = false;
};

// Trains two copies of the same network for `steps` steps, one with each optimiser, and
// returns the number of steps after which parameters or momentum differed (0 = identical).
void expect_identical_training(const Scenario& sc, int steps = 20) {
  configure_threads(1);  // conv kernels are bit-exact per thread count
  auto fused_net = models::make_network(cifar_resnet20(), 3);
  auto ref_net = models::make_network(cifar_resnet20(), 3);
  auto masks = sc.masked ? conv_masks(*fused_net, 11) : std::map<std::string, torch::Tensor>{};
  {
    torch::NoGradGuard no_grad;
    for (auto* net : {fused_net.get(), ref_net.get()})
      for (auto& [name, p] : named_parameters(*net))
        if (masks.count(name)) p.mul_(masks[name]);
  }
  const auto before = named_parameters(*fused_net);
  std::vector<torch::Tensor> values_before;
  for (const auto& [name, p] : before) values_before.push_back(p.detach().clone());

  MaskedSgd fused(named_parameters(*fused_net), masks, sc.sgd);
  PerParameterSgd reference(named_parameters(*ref_net), masks, sc.sgd);

  // Adoption keeps the same tensor objects and their values.
  const auto after = named_parameters(*fused_net);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(after[i].second.is_same(before[i].second)) << after[i].first;
    EXPECT_TRUE(torch::equal(after[i].second, values_before[i])) << after[i].first;
  }

  torch::manual_seed(5);
  const auto images = torch::randint(0, 256, {8, 16, 16, 3}, torch::kUInt8);
  const auto labels = torch::randint(0, 10, {8}, torch::kLong);
  for (int step = 0; step < steps; ++step) {
    const auto batch = images.roll({step}, {0});  // a different batch order each step
    for (auto* net : {fused_net.get(), ref_net.get()}) {
      net->train();
      if (net == fused_net.get()) fused.zero_grad();
      else reference.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(
          net->forward(batch), labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      (loss / 8.0).backward();
      if (sc.disturb_grads && step % 3 == 1) {
        auto params = named_parameters(*net);
        for (size_t i = 0; i < params.size(); ++i) {
          auto& p = params[i].second;
          if (i % 7 == 0) p.mutable_grad() = torch::Tensor();
          if (i % 7 == 3) p.mutable_grad() = p.grad().clone().mul_(1.5);
        }
      }
    }
    const double lr = 0.1 * (1.0 + step % 4);
    fused.step(lr);
    reference.step(lr);

    const auto fp = named_parameters(*fused_net), rp = named_parameters(*ref_net);
    for (size_t i = 0; i < fp.size(); ++i)
      ASSERT_TRUE(torch::equal(fp[i].second, rp[i].second)) << "step " << step << ": " << fp[i].first;
    const auto fm = fused.momentum(), rm = reference.momentum();
    ASSERT_EQ(fm.size(), rm.size());
    for (const auto& [name, buffer] : rm)
      ASSERT_TRUE(torch::equal(fm.at(name), buffer)) << "step " << step << ": momentum of " << name;
  }
  // Pruned weights are exactly zero, and training moved the weights at all.
  for (const auto& [name, p] : named_parameters(*fused_net)) {
    if (masks.count(name)) {
      EXPECT_EQ(p.masked_select(masks[name].logical_not()).abs().sum().item<double>(), 0.0) << name;
    }
  }
  EXPECT_FALSE(torch::equal(named_parameters(*fused_net)[0].second, values_before[0]));
}

TEST(FusedMaskedSgd, BitIdenticalWithDecayAndMasks) { expect_identical_training({SgdConfig{0.9, 1e-4, {}}}); }

TEST(FusedMaskedSgd, BitIdenticalWithoutDecayOrMasks) {
  Scenario sc{SgdConfig{0.9, 0.0, {}}};
  sc.masked = false;
  expect_identical_training(sc);
}

TEST(FusedMaskedSgd, BitIdenticalWithGlobalClipping) {
  // A clip well below the gradient norm, so the factor is < 1 on every step.
  expect_identical_training({SgdConfig{0.9, 5e-4, 0.05}});
}

TEST(FusedMaskedSgd, BitIdenticalWithUndefinedAndReplacedGradients) {
  Scenario sc{SgdConfig{0.9, 1e-4, 0.5}};
  sc.disturb_grads = true;
  expect_identical_training(sc);
}

TEST(FusedMaskedSgd, MomentumRoundTripsByName) {
  configure_threads(1);
  auto net = models::make_network(cifar_resnet20(), 3);
  MaskedSgd sgd(named_parameters(*net), conv_masks(*net, 1), SgdConfig{});
  torch::manual_seed(2);
  std::map<std::string, torch::Tensor> saved;
  for (const auto& [name, p] : named_parameters(*net)) saved[name] = torch::randn(p.sizes());
  sgd.load_momentum(saved, "test");
  const auto loaded = sgd.momentum();
  ASSERT_EQ(loaded.size(), saved.size());
  for (const auto& [name, m] : saved) {
    EXPECT_TRUE(torch::equal(loaded.at(name), m)) << name;
    EXPECT_EQ(loaded.at(name).sizes(), m.sizes()) << name;
  }
  saved.erase(saved.begin());
  EXPECT_ANY_THROW(sgd.load_momentum(saved, "test"));
}

TEST(FusedMaskedSgd, KeepsAChannelsLastLayoutAndSurvivesReplacedData) {
  auto conv = torch::randn({4, 3, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_();
  auto bias = torch::randn({4}).requires_grad_();
  const auto strides = conv.strides().vec();
  MaskedSgd sgd({{"conv", conv}, {"bias", bias}}, {}, SgdConfig{0.0, 0.0, {}});
  EXPECT_EQ(conv.strides().vec(), strides);
  EXPECT_TRUE(conv.is_contiguous(torch::MemoryFormat::ChannelsLast));

  // Someone replaces the bias's data (set_data, as Module::to or a loader might) and its .grad.
  const auto fresh = torch::full({4}, 2.0);
  bias.set_data(fresh.clone());
  bias.mutable_grad() = torch::ones({4});
  conv.mutable_grad() = torch::ones_like(conv);
  sgd.step(0.5);
  EXPECT_TRUE(torch::equal(bias, torch::full({4}, 1.5)));
  // The step worked on the buffer the bias lives in again.
  sgd.zero_grad();
  EXPECT_TRUE(torch::equal(bias.grad(), torch::zeros({4})));
  bias.mutable_grad().fill_(1.0);  // in place, as autograd accumulates
  sgd.step(0.5);
  EXPECT_TRUE(torch::equal(bias, torch::full({4}, 1.0)));
}

}  // namespace
}  // namespace lth::train
