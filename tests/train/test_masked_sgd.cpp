#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "train/loss_scale.h"
#include "train/masked_sgd.h"

namespace lth::train {
namespace {

// Two steps on a 4-element parameter with a fixed gradient, computed by hand:
// w = [1, -2, 3, 0.5], mask = [1, 0, 1, 1], grad = [0.5, 1, -1, 2] each step,
// wd = 0.1, momentum = 0.9, lr = 0.1, clip = 2 (global norm).
TEST(MaskedSgd, FollowsTheReferenceStepOrderOverTwoSteps) {
  auto w = torch::tensor({1.0, -2.0, 3.0, 0.5}, torch::kFloat64).requires_grad_();
  auto mask = torch::tensor({1.0, 0.0, 1.0, 1.0}, torch::kFloat64);
  { torch::NoGradGuard g; w.mul_(mask); }  // w = [1, 0, 3, 0.5]
  MaskedSgd sgd({{"w", w}}, {{"w", mask}}, SgdConfig{0.9, 0.1, 2.0});
  const auto grad = torch::tensor({0.5, 1.0, -1.0, 2.0}, torch::kFloat64);

  // Step 1: g = grad + 0.1 w = [0.6, 1.0, -0.7, 2.05]; masked = [0.6, 0, -0.7, 2.05]
  // |g| = sqrt(0.36 + 0.49 + 4.2025) = 2.24778...; clipped g = g * 2 / |g|
  // buf = g; w = w - 0.1 buf; w *= mask.
  w.mutable_grad() = grad.clone();
  sgd.step(0.1);
  const double n1 = std::sqrt(0.36 + 0.49 + 4.2025);
  const double g1[4] = {0.6 * 2 / n1, 0, -0.7 * 2 / n1, 2.05 * 2 / n1};
  const double w1[4] = {1 - 0.1 * g1[0], 0, 3 - 0.1 * g1[2], 0.5 - 0.1 * g1[3]};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(w[i].item<double>(), w1[i], 1e-12) << i;

  // Step 2: g = grad + 0.1 w1, masked, clipped if its norm > 2; buf = 0.9 g1 + g2.
  w.mutable_grad() = grad.clone();
  sgd.step(0.1);
  double g2[4], norm2 = 0;
  const double m[4] = {1, 0, 1, 1};
  for (int i = 0; i < 4; ++i) {
    g2[i] = (grad[i].item<double>() + 0.1 * w1[i]) * m[i];
    norm2 += g2[i] * g2[i];
  }
  norm2 = std::sqrt(norm2);
  for (int i = 0; i < 4; ++i) {
    const double g = g2[i] * (norm2 > 2 ? 2 / norm2 : 1.0);
    const double expected = (w1[i] - 0.1 * (0.9 * g1[i] + g)) * m[i];
    EXPECT_NEAR(w[i].item<double>(), expected, 1e-12) << i;
  }
  EXPECT_EQ(w[1].item<double>(), 0.0);  // pruned stays exactly zero
  EXPECT_NEAR(sgd.momentum().at("w")[0].item<double>(),
              0.9 * g1[0] + g2[0] * (norm2 > 2 ? 2 / norm2 : 1.0), 1e-12);
}

TEST(MaskedSgd, DecaysUnmaskedParametersToo) {
  // A BN-like parameter with no mask still receives weight decay (PyTorch-style, every param).
  auto b = torch::tensor({2.0}, torch::kFloat64).requires_grad_();
  MaskedSgd sgd({{"bn.weight", b}}, {}, SgdConfig{0.0, 0.5, std::nullopt});
  b.mutable_grad() = torch::zeros({1}, torch::kFloat64);
  sgd.step(0.1);
  EXPECT_NEAR(b.item<double>(), 2.0 - 0.1 * 0.5 * 2.0, 1e-12);
}

TEST(LossScaler, SkipsBacksOffGrowsAndRoundTrips) {
  LossScaler::Config cfg;
  cfg.initial_scale = 1024;
  cfg.growth_interval = 3;
  LossScaler s(cfg);
  EXPECT_FALSE(s.update(/*found_non_finite=*/true));  // skip the step
  EXPECT_EQ(s.scale(), 512);
  EXPECT_TRUE(s.update(false));
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 512);
  EXPECT_TRUE(s.update(false));  // third finite step in a row: grow
  EXPECT_EQ(s.scale(), 1024);
  s.update(false);
  LossScaler restored(cfg);
  restored.load(s.state());
  EXPECT_EQ(restored.scale(), 1024);
  restored.update(false);
  EXPECT_TRUE(restored.update(false));  // the saved streak (1) continues: 1 + 2 = 3
  EXPECT_EQ(restored.scale(), 2048);
}

}  // namespace
}  // namespace lth::train
