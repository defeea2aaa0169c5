// Dynamic loss scaling (train/loss_scale.h) on CPU: skip / back-off on non-finite
// gradients, growth after growth_interval finite steps, and the checkpointed state. The
// end-to-end case repeats the trainer's use of the scaler (scale the loss, backward,
// MaskedSgd::unscale_gradients, update, step) on a tiny model with gradients that overflow.
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <limits>

#include "train/loss_scale.h"
#include "train/masked_sgd.h"

namespace lth::train {
namespace {

LossScaler::Config small_config() {
  LossScaler::Config c;
  c.initial_scale = 1024;
  c.growth_interval = 3;
  return c;
}

TEST(LossScaler, DefaultsMatchTheGpuRecipe) {
  LossScaler s;
  EXPECT_EQ(s.scale(), 65536.0);
  const LossScaler::Config c;
  EXPECT_EQ(c.growth_factor, 2.0);
  EXPECT_EQ(c.backoff_factor, 0.5);
  EXPECT_EQ(c.growth_interval, 2000);
}

TEST(LossScaler, NonFiniteStepIsSkippedAndScaleBacksOff) {
  LossScaler s(small_config());
  EXPECT_FALSE(s.update(true));
  EXPECT_EQ(s.scale(), 512.0);
  EXPECT_FALSE(s.update(true));
  EXPECT_EQ(s.scale(), 256.0);
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 256.0);
}

TEST(LossScaler, GrowsAfterGrowthIntervalFiniteSteps) {
  LossScaler s(small_config());
  EXPECT_TRUE(s.update(false));
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 1024.0);
  EXPECT_TRUE(s.update(false));  // third finite step in a row
  EXPECT_EQ(s.scale(), 2048.0);
  for (int i = 0; i < 3; ++i) s.update(false);
  EXPECT_EQ(s.scale(), 4096.0);
}

// As GradScaler: the scale stops below float32's overflow instead of becoming infinite
// (an infinite scale would skip every later step and could not be saved as a number).
TEST(LossScaler, NeverGrowsPastFloat32) {
  LossScaler::Config c;
  c.initial_scale = 1e38f;
  c.growth_interval = 1;
  LossScaler s(c);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(s.update(false));
  EXPECT_TRUE(std::isfinite(s.scale()));
  EXPECT_FLOAT_EQ(static_cast<float>(s.scale()), 2e38f);  // 4e38 would overflow float32
  EXPECT_FALSE(s.update(true));
  EXPECT_FLOAT_EQ(static_cast<float>(s.scale()), 1e38f);
}

TEST(LossScaler, OverflowResetsTheGrowthCount) {
  LossScaler s(small_config());
  s.update(false);
  s.update(false);
  s.update(true);  // 1024 -> 512, count reset
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.scale(), 512.0);
  s.update(false);
  EXPECT_EQ(s.scale(), 1024.0);
}

TEST(LossScaler, StateRoundTripsThroughJson) {
  LossScaler a(small_config());
  a.update(true);   // 512
  a.update(false);  // 1 finite step so far
  a.update(false);  // 2
  const auto text = a.state().dump();
  LossScaler b(small_config());
  b.load(nlohmann::json::parse(text));
  EXPECT_EQ(b.scale(), 512.0);
  EXPECT_EQ(b.state(), a.state());
  // The resumed scaler continues exactly: one more finite step grows both.
  EXPECT_TRUE(a.update(false));
  EXPECT_TRUE(b.update(false));
  EXPECT_EQ(a.scale(), 1024.0);
  EXPECT_EQ(b.scale(), a.scale());
  EXPECT_EQ(b.state(), a.state());
}

TEST(LossScaler, EmptyStateMeansFreshScaler) {
  LossScaler s(small_config());
  s.update(true);
  s.load(nlohmann::json::object());
  EXPECT_EQ(s.scale(), 1024.0);
  EXPECT_EQ(s.state()["finite_steps"], 0);
}

// The trainer's step with loss scaling, on a linear model (see Phase::train_step in
// src/train/trainer.cpp).
struct ScaledStep {
  torch::nn::Linear model{torch::nn::LinearOptions(4, 3).bias(false)};
  std::unique_ptr<MaskedSgd> sgd;
  LossScaler scaler;
  torch::Tensor x = torch::linspace(-2, 2, 8 * 4).reshape({8, 4});
  torch::Tensor y = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1}, torch::kLong);

  explicit ScaledStep(LossScaler::Config config, double input_scale = 1.0) : scaler(config) {
    torch::NoGradGuard no_grad;
    x.mul_(input_scale);
    model->weight.copy_(torch::arange(12, torch::kFloat32).reshape({3, 4}) / 10);
    SgdConfig sc;
    sc.weight_decay = 0;
    sgd = std::make_unique<MaskedSgd>(std::vector<std::pair<std::string, torch::Tensor>>{{"w", model->weight}},
                                      std::map<std::string, torch::Tensor>{}, sc);
  }
  // Returns whether the update was applied. `inject` puts an inf into the gradient.
  bool step(bool inject = false) {
    sgd->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(
        model->forward(x), y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    (loss * (scaler.scale_tensor() / 8.0)).backward();
    if (inject) {
      torch::NoGradGuard no_grad;
      model->weight.mutable_grad()[1][2] = std::numeric_limits<float>::infinity();
    }
    // As the trainer: unscale, decide and apply on the device; read back only to report.
    const auto apply = scaler.update(sgd->unscale_gradients(scaler.scale_tensor()));
    sgd->step(0.1, apply);
    return apply.item<bool>();
  }
};

// The optimiser's flat unscale gives exactly each gradient divided by the scale, and says
// whether any is not finite, also for a gradient that was replaced by a tensor of its own
// (which .grad then shows unscaled, and the step uses).
TEST(LossScaler, FlatUnscaleEqualsThePerTensorOne) {
  for (const bool inject : {false, true}) {
    torch::manual_seed(7);
    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (int i = 0; i < 4; ++i) params.emplace_back("p" + std::to_string(i), torch::randn({3 + i, 5}).requires_grad_());
    std::vector<torch::Tensor> expected;
    for (auto& [name, p] : params) {
      p.mutable_grad() = torch::randn(p.sizes()) * 4096;
      expected.push_back(p.grad().clone());
    }
    if (inject) expected[2][1][3] = std::numeric_limits<float>::infinity();
    SgdConfig sc;
    MaskedSgd sgd(params, {}, sc);  // adopts the gradients into its buffers
    for (size_t i = 0; i < params.size(); ++i) {
      torch::NoGradGuard no_grad;
      params[i].second.mutable_grad().copy_(expected[i]);
    }
    params[1].second.mutable_grad() = expected[1].clone();  // displaced: not the buffer's view
    const LossScaler reference(small_config());
    const auto& scale = reference.scale_tensor();
    std::vector<torch::Tensor> reference_grads;
    for (auto& g : expected) reference_grads.push_back(g.div(scale));
    const auto found = sgd.unscale_gradients(scale);
    EXPECT_EQ(found.item<float>(), inject ? 1.0f : 0.0f) << inject;
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(torch::equal(params[i].second.grad(), reference_grads[i])) << "gradient " << i;
    }
  }
}

TEST(LossScaler, InjectedInfinitySkipsTheUpdate) {
  ScaledStep s(small_config());
  EXPECT_TRUE(s.step());  // a first step gives the momentum a value a skip could disturb
  const auto before = s.model->weight.detach().clone();
  const auto momentum_before = s.sgd->momentum().at("w").clone();
  EXPECT_FALSE(s.step(/*inject=*/true));
  EXPECT_TRUE(torch::equal(s.model->weight, before)) << "a non-finite step must not touch the weights";
  EXPECT_TRUE(torch::equal(s.sgd->momentum().at("w"), momentum_before)) << "... nor the momentum";
  EXPECT_EQ(s.scaler.scale(), 512.0);
  EXPECT_TRUE(s.step());
  EXPECT_FALSE(torch::equal(s.model->weight, before));
  EXPECT_TRUE(s.model->weight.isfinite().all().item<bool>());
}

// The device-decided step: applied, it is the plain step bit for bit (masks, decay, momentum);
// refused, it changes nothing.
TEST(LossScaler, DeviceDecidedStepIsThePlainStepOrNothing) {
  auto make = [] {
    torch::manual_seed(7);
    auto w = torch::randn({6, 5}).requires_grad_();
    auto b = torch::randn({6}).requires_grad_();
    auto mask = (torch::rand({6, 5}) > 0.4).to(torch::kFloat32);
    return std::make_tuple(w, b, mask);
  };
  auto [w1, b1, m1] = make();
  auto [w2, b2, m2] = make();
  SgdConfig sc;
  sc.global_clip = 0.5;
  MaskedSgd plain({{"w", w1}, {"b", b1}}, {{"w", m1}}, sc);
  MaskedSgd decided({{"w", w2}, {"b", b2}}, {{"w", m2}}, sc);
  const auto yes = torch::ones({}, torch::kBool), no = torch::zeros({}, torch::kBool);
  for (int step = 0; step < 5; ++step) {
    torch::manual_seed(50 + step);
    const auto gw = torch::randn({6, 5}), gb = torch::randn({6});
    w1.mutable_grad() = gw.clone();
    b1.mutable_grad() = gb.clone();
    w2.mutable_grad() = gw.clone();
    b2.mutable_grad() = gb.clone();
    plain.step(0.1);
    decided.step(0.1, yes);
    ASSERT_TRUE(torch::equal(w1, w2)) << step;
    ASSERT_TRUE(torch::equal(b1, b2)) << step;
    ASSERT_TRUE(torch::equal(plain.momentum().at("w"), decided.momentum().at("w"))) << step;
  }
  const auto w_before = w2.detach().clone(), buffer_before = decided.momentum().at("b").clone();
  w2.mutable_grad().fill_(std::numeric_limits<float>::quiet_NaN());
  decided.step(0.1, no);
  EXPECT_TRUE(torch::equal(w2, w_before));
  EXPECT_TRUE(torch::equal(decided.momentum().at("b"), buffer_before));
}

// Inputs so large that the scaled float32 gradients overflow: steps are skipped, halving
// the scale each time, until the gradients fit; the first applied update then equals plain
// unscaled SGD (up to float rounding), and the scale grows again after growth_interval.
TEST(LossScaler, RecoversFromOverflowToThePlainSgdResult) {
  auto config = small_config();
  config.initial_scale = std::ldexp(1.0, 120);
  const double input_scale = 1e12;  // gradients ~1e12: times 2^120 is far beyond FLT_MAX
  ScaledStep scaled(config, input_scale);
  LossScaler::Config unit;
  unit.initial_scale = 1;
  unit.growth_interval = 1000000;
  ScaledStep plain(unit, input_scale);

  int skipped = 0;
  while (!scaled.step()) {
    ++skipped;
    ASSERT_LT(skipped, 120) << "the scale never came back into range";
  }
  EXPECT_GE(skipped, 30);  // 2^(120-k) * 1e12 / 8 < FLT_MAX ~ 2^128 needs k >= ~35
  EXPECT_EQ(scaled.scaler.scale(), std::ldexp(1.0, 120 - skipped));
  ASSERT_TRUE(plain.step());
  EXPECT_TRUE(scaled.model->weight.isfinite().all().item<bool>());
  EXPECT_TRUE(torch::allclose(scaled.model->weight, plain.model->weight, 1e-5, 1e-6))
      << (scaled.model->weight - plain.model->weight).abs().max().item<double>();
  const double after_recovery = scaled.scaler.scale();
  scaled.step();
  scaled.step();  // third finite step in a row (growth_interval 3)
  EXPECT_EQ(scaled.scaler.scale(), 2 * after_recovery);
}

}  // namespace
}  // namespace lth::train
