// Pruning at initialisation: SNIP, GraSP and SynFlow scores against hand algebra on a
// 2-layer linear network, SynFlow's conservation law, exact kept counts, and the
// layerwise-shuffle control.
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>

#include "common/error.h"
#include "models/network_base.h"
#include "pruning/init_scores.h"
#include "pruning/shuffle.h"

namespace lth::pruning {
namespace {

namespace nn = torch::nn;

// y = W2 (W1 x), no biases, no nonlinearity; x is a 1x1 image with 2 channels, and the pixel
// statistics (mean 0, std 1 and 0.5) turn the uint8 image (255, 255) into x = (1, 2).
class TinyLinear : public models::NetworkBase {
 public:
  TinyLinear() : NetworkBase(tiny_config()) {
    fc1_ = register_module("fc1", nn::Linear(nn::LinearOptions(2, 2).bias(false)));
    fc_ = register_module("fc", nn::Linear(nn::LinearOptions(2, 2).bias(false)));
    index_parameters();
    torch::NoGradGuard no_grad;
    fc1_->weight.copy_(torch::tensor({{1.0f, -1.0f}, {2.0f, 0.5f}}));
    fc_->weight.copy_(torch::tensor({{4.0f, 2.0f}, {1.0f, 1.0f}}));
  }
  torch::Tensor forward(const torch::Tensor& images) override {
    return fc_->forward(fc1_->forward(standardize(images).flatten(1)));
  }

 private:
  static models::ModelConfig tiny_config() {
    models::ModelConfig c;
    c.name = "tiny_linear";
    c.num_classes = 2;
    c.in_channels = 2;
    c.image_size = 1;
    c.pixel_mean = {0.0, 0.0};
    c.pixel_std = {1.0, 0.5};
    return c;
  }
  nn::Linear fc1_{nullptr}, fc_{nullptr};
};

MaskSet tiny_masks() {
  return {{"fc1.weight", torch::ones({2, 2})}, {"fc.weight", torch::ones({2, 2})}};
}

// One image x = (1, 2) of class 0.
ScoringData tiny_data() {
  return scoring_data(
      {{torch::full({1, 1, 1, 2}, 255, torch::kByte), torch::tensor({int64_t{0}})}});
}

void expect_near(const torch::Tensor& actual, const torch::Tensor& expected, double tol = 1e-4) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(actual, expected, /*rtol=*/tol, /*atol=*/tol))
      << "actual\n"
      << actual << "\nexpected\n"
      << expected;
}

// Hand algebra. h = W1 x = (-1, 3); y = W2 h = (2, 2), so p = softmax(y) = (1/2, 1/2) and,
// for class 0, dL/dy = p - e0 = (-1/2, 1/2).
//   dL/dW2 = (dL/dy) h^T = [[1/2, -3/2], [-1/2, 3/2]]
//   dL/dW1 = (W2^T dL/dy) x^T = (-3/2, -1/2) (1, 2)^T = [[-3/2, -3], [-1/2, -1]]
// SNIP = |g * w|.
TEST(InitScores, SnipMatchesHandAlgebra) {
  TinyLinear net;
  const auto s = snip_scores(net, tiny_masks(), tiny_data());
  expect_near(s.at("fc1.weight"), torch::tensor({{1.5f, 3.0f}, {1.0f, 0.5f}}));
  expect_near(s.at("fc.weight"), torch::tensor({{2.0f, 3.0f}, {0.5f, 1.5f}}));
}

// Hand algebra for GraSP (T = 1). With two classes, L = log(1 + e^d), d = v.h,
// v = W2[1] - W2[0] = (-3, -1); s = sigmoid(d) = 1/2, s' = 1/4 at d = 0. g = grad L:
// g_W1 = s v x^T, g_W2[1] = -g_W2[0] = s h. Hg = grad (g . grad L) with g fixed:
//   G = g . grad L / s = s (2 |h|^2 + |v|^2 |x|^2) = (20 + 50) / 2 = 35
//   Hg_W1    = s' G v x^T + 2 s^2 h x^T     = [[-26.75, -53.5], [-7.25, -14.5]]
//   Hg_W2[1] = s' G h + s^2 |x|^2 v         = (-12.5, 25) = -Hg_W2[0]
// GraSP = -w * Hg.
TEST(InitScores, GraspMatchesHandAlgebra) {
  TinyLinear net;
  const auto s = grasp_scores(net, tiny_masks(), tiny_data(), /*temperature=*/1.0);
  expect_near(s.at("fc1.weight"), torch::tensor({{26.75f, -53.5f}, {14.5f, 7.25f}}));
  expect_near(s.at("fc.weight"), torch::tensor({{-50.0f, 50.0f}, {12.5f, -25.0f}}));
}

// GraSP prunes the highest -w * Hg: keeping 2 of the 8 weights keeps the two lowest
// (-53.5 in fc1, -50 in fc).
TEST(InitScores, GraspKeepsTheLowestScores) {
  ScoringContext context;
  context.network = [] { return std::make_shared<TinyLinear>(); };
  context.data = tiny_data();
  context.grasp_temperature = 1.0;
  const auto masks = tiny_masks();
  const auto kept = prune_at_init("grasp", {masks, 0.25, context});
  EXPECT_TRUE(torch::equal(kept.at("fc1.weight"), torch::tensor({{0.0f, 1.0f}, {0.0f, 0.0f}})));
  EXPECT_TRUE(torch::equal(kept.at("fc.weight"), torch::tensor({{1.0f, 0.0f}, {0.0f, 0.0f}})));
}

// Hand algebra for SynFlow: all-ones input, |W1| = [[1, 1], [2, 0.5]], |W2| = [[4, 2], [1, 1]].
// h = |W1| 1 = (2, 2.5); y = |W2| h = (13, 4.5); R = 17.5.
//   dR/dW2[i][j] = h_j                 -> |W2| * [h; h]    = [[8, 5], [2, 2.5]]
//   dR/dh = column sums of |W2| = (5, 3) -> |W1| * (5, 3)^T 1^T = [[5, 5], [6, 1.5]]
// Both layers' scores sum to R (conservation).
TEST(InitScores, SynflowMatchesHandAlgebra) {
  TinyLinear net;
  const auto s = synflow_scores(net, tiny_masks());
  expect_near(s.at("fc1.weight"), torch::tensor({{5.0f, 5.0f}, {6.0f, 1.5f}}));
  expect_near(s.at("fc.weight"), torch::tensor({{8.0f, 5.0f}, {2.0f, 2.5f}}));
}

// A masked weight contributes no flow: with W2[0][0] masked, h's first unit feeds only
// W2[1][0], so dR/dh = (1, 3) and the scores are as above with that change.
TEST(InitScores, SynflowScoresTheMaskedNetwork) {
  TinyLinear net;
  auto masks = tiny_masks();
  masks["fc.weight"] = torch::tensor({{0.0f, 1.0f}, {1.0f, 1.0f}});
  const auto s = synflow_scores(net, masks);
  expect_near(s.at("fc1.weight"), torch::tensor({{1.0f, 1.0f}, {6.0f, 1.5f}}));
  expect_near(s.at("fc.weight"), torch::tensor({{0.0f, 5.0f}, {2.0f, 2.5f}}));
}

models::NetworkPtr small_lenet(uint64_t seed) {
  models::ModelConfig c;
  c.name = "lenet300_100";
  c.num_classes = 4;
  c.image_size = 6;
  return models::make_network(c, seed);  // biases start at zero
}

MaskSet lenet_masks(const models::Network& net) {
  return dense_masks(net, PrunableSet::AllWeights);
}

// Along a chain of linear layers with no (or zero) biases, every layer's SynFlow scores sum
// to R: the flow through each layer is the same (Tanaka et al., theorem 1). LeNet's ReLUs
// pass everything, since all weights and inputs are positive.
TEST(InitScores, SynflowConservesFlowLayerByLayer) {
  auto net = small_lenet(3);
  auto masks = lenet_masks(*net);
  masks["fc2.weight"] = (torch::arange(masks["fc2.weight"].numel()) % 3 != 0)
                            .to(torch::kFloat)
                            .reshape(masks["fc2.weight"].sizes());
  const auto s = synflow_scores(*net, masks);
  const double r = s.at("fc.weight").sum().item<double>();
  EXPECT_GT(r, 0);
  for (const char* layer : {"fc1.weight", "fc2.weight"}) {
    EXPECT_NEAR(s.at(layer).sum().item<double>() / r, 1.0, 1e-4) << layer;
  }
}

ScoringData random_data(int64_t chunks, int64_t per_chunk) {
  std::vector<ScoringBatch> batches;
  auto gen = at::detail::createCPUGenerator(11);
  for (int64_t i = 0; i < chunks; ++i) {
    batches.push_back({torch::randint(0, 256, {per_chunk, 6, 6, 1}, gen).to(torch::kByte),
                       torch::randint(0, 4, {per_chunk}, gen)});
  }
  return scoring_data(std::move(batches));
}

// Every strategy keeps exactly round(remaining * keep_fraction) by one global count, never
// revives a pruned weight, and gives the same mask twice.
TEST(InitScores, ExactCountsNoRevivalAndDeterminism) {
  ScoringContext context;
  context.network = [] { return small_lenet(7); };
  context.data = random_data(2, 8);
  context.synflow_rounds = 5;
  auto previous = lenet_masks(*small_lenet(7));
  previous["fc1.weight"] = (torch::arange(previous["fc1.weight"].numel()) % 5 != 0)
                               .to(torch::kFloat)
                               .reshape(previous["fc1.weight"].sizes());
  const int64_t remaining = count_kept(previous);
  for (const auto& name : init_strategy_names()) {
    for (double keep : {0.5, 0.037, 1.0, 1e-7}) {
      const auto masks = prune_at_init(name, {previous, keep, context});
      EXPECT_EQ(count_kept(masks), std::llround(static_cast<double>(remaining) * keep))
          << name << " " << keep;
      for (const auto& [layer, m] : masks) {
        EXPECT_EQ((m * (1 - previous.at(layer))).sum().item<double>(), 0.0) << name << " revived";
      }
      const auto again = prune_at_init(name, {previous, keep, context});
      for (const auto& [layer, m] : masks) EXPECT_TRUE(torch::equal(m, again.at(layer))) << name;
    }
  }
}

// SynFlow in one round equals one-shot pruning on the round's scores; more rounds differ
// (the point of iterating), and the result is still exactly counted.
TEST(InitScores, SynflowRoundsMatter) {
  ScoringContext one, many;
  one.network = many.network = [] { return small_lenet(9); };
  one.synflow_rounds = 1;
  many.synflow_rounds = 20;
  const auto dense = lenet_masks(*small_lenet(9));
  const auto a = prune_at_init("synflow", {dense, 0.01, one});
  const auto b = prune_at_init("synflow", {dense, 0.01, many});
  EXPECT_EQ(count_kept(a), count_kept(b));
  bool differ = false;
  for (const auto& [layer, m] : a) differ = differ || !torch::equal(m, b.at(layer));
  EXPECT_TRUE(differ);
}

TEST(InitScores, UserErrors) {
  ScoringContext context;
  context.network = [] { return small_lenet(1); };
  const auto dense = lenet_masks(*small_lenet(1));
  EXPECT_THROW(prune_at_init("snipp", {dense, 0.5, context}), UserError);
  EXPECT_THROW(prune_at_init("snip", {dense, 0.5, context}), UserError);  // no data
  EXPECT_THROW(prune_at_init("grasp", {dense, 0.5, context}), UserError);
  EXPECT_NO_THROW(prune_at_init("synflow", {dense, 0.5, context}));
}

// The scorers run through a ResNet (BN, residual adds, in-place ReLUs; GraSP's double
// backward included). Freshly initialised, its zero head passes nothing to the output:
// every score is zero, a UserError instead of a mask chosen by position.
TEST(InitScores, ResNetScoresAndTheZeroHeadIsRefused) {
  models::ModelConfig c;
  c.name = "resnet20";
  c.num_classes = 4;
  c.in_channels = 3;
  c.image_size = 8;
  c.pixel_mean = {0.5, 0.5, 0.5};
  c.pixel_std = {0.25, 0.25, 0.25};
  const auto fresh = [c] { return models::make_network(c, 2); };
  const auto trained = [c] {  // stands in for a rewind point: non-zero head and BN scales
    auto net = models::make_network(c, 2);
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(3);
    for (auto& p : net->named_parameters()) {
      if (p.key() == "fc.weight") p.value().copy_(torch::randn(p.value().sizes(), gen) * 0.1);
      if (p.key().find("bn") != std::string::npos && p.key().find("weight") != std::string::npos)
        p.value().fill_(1.0);
    }
    return net;
  };
  const auto dense = dense_masks(*fresh(), PrunableSet::Conv);
  std::vector<ScoringBatch> batches;
  auto gen = at::detail::createCPUGenerator(4);
  for (int i = 0; i < 2; ++i) {
    batches.push_back({torch::randint(0, 256, {4, 8, 8, 3}, gen).to(torch::kByte),
                       torch::randint(0, 4, {4}, gen)});
  }
  ScoringContext context;
  context.data = scoring_data(batches);
  context.synflow_rounds = 10;
  context.network = trained;
  const auto expected = std::llround(static_cast<double>(count_kept(dense)) * 0.1);
  for (const char* name : {"snip", "grasp", "synflow"}) {
    EXPECT_EQ(count_kept(prune_at_init(name, {dense, 0.1, context})), expected) << name;
  }
  context.network = fresh;
  for (const char* name : {"snip", "grasp", "synflow"}) {
    EXPECT_THROW(prune_at_init(name, {dense, 0.1, context}), UserError) << name;
  }
}

TEST(ShuffleLayerwise, KeepsEachLayerCountAndMovesPositions) {
  auto gen = at::detail::createCPUGenerator(5);
  MaskSet masks{{"a.weight", (torch::rand({16, 8, 3, 3}, gen) < 0.2).to(torch::kFloat)},
                {"b.weight", (torch::rand({40, 30}, gen) < 0.6).to(torch::kFloat)},
                {"c.weight", torch::ones({4, 4})}};
  const auto shuffled = shuffle_within_layers(masks, 42);
  for (const auto& [name, m] : masks) {
    EXPECT_EQ(shuffled.at(name).sum().item<int64_t>(), m.sum().item<int64_t>()) << name;
    EXPECT_EQ(shuffled.at(name).sizes(), m.sizes());
  }
  EXPECT_FALSE(torch::equal(shuffled.at("a.weight"), masks.at("a.weight")));
  EXPECT_FALSE(torch::equal(shuffled.at("b.weight"), masks.at("b.weight")));
  EXPECT_TRUE(torch::equal(shuffled.at("c.weight"), masks.at("c.weight")));
  const auto again = shuffle_within_layers(masks, 42), other = shuffle_within_layers(masks, 43);
  EXPECT_TRUE(torch::equal(again.at("a.weight"), shuffled.at("a.weight")));
  EXPECT_FALSE(torch::equal(other.at("a.weight"), shuffled.at("a.weight")));
}

}  // namespace
}  // namespace lth::pruning
