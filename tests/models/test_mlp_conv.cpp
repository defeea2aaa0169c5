#include <gtest/gtest.h>

#include <cmath>

#include "models/network.h"
#include "test_util.h"

namespace lth::models {
namespace {

using testing::config_for;
using testing::param;

TEST(LeNet, LayersNamesAndKinds) {
  const auto net = make_network(config_for("lenet300_100", 1, 28), 1);
  EXPECT_EQ(param(*net, "fc1.weight").sizes(), (std::vector<int64_t>{300, 784}));
  EXPECT_EQ(param(*net, "fc2.weight").sizes(), (std::vector<int64_t>{100, 300}));
  EXPECT_EQ(param(*net, "fc.weight").sizes(), (std::vector<int64_t>{10, 100}));
  EXPECT_EQ(net->kind_of("fc1.weight"), ParamKind::Linear);
  EXPECT_EQ(net->kind_of("fc2.bias"), ParamKind::Bias);
  EXPECT_EQ(net->kind_of("fc.weight"), ParamKind::Head);
  EXPECT_EQ(net->kind_of("fc.bias"), ParamKind::Head);
  const auto counts = count_parameters(*net);
  EXPECT_EQ(counts.linear, 784 * 300 + 300 * 100);
  EXPECT_EQ(counts.bias, 400);
  EXPECT_EQ(counts.head, 1010);
  EXPECT_EQ(counts.total, 266610);  // OpenLTH's mnist_lenet_300_100
}

TEST(LeNet, FlattensAnyInputSize) {
  const auto net = make_network(config_for("lenet300_100", 3, 32), 1);
  EXPECT_EQ(param(*net, "fc1.weight").size(1), 3 * 32 * 32);
  EXPECT_EQ(net->forward(testing::random_images(2, 32, 3)).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(LeNet, HeNormalWeightsZeroBiases) {
  const auto net = make_network(config_for("lenet300_100", 1, 28), 4);
  const auto w = param(*net, "fc1.weight");
  EXPECT_NEAR(w.std().item<double>(), std::sqrt(2.0 / 784), 0.01 * std::sqrt(2.0 / 784));
  // Untruncated: a 235k-value normal sample reaches beyond 4 sigma.
  EXPECT_GT(w.abs().max().item<double>(), 4 * std::sqrt(2.0 / 784));
  for (const char* b : {"fc1.bias", "fc2.bias", "fc.bias"}) {
    EXPECT_EQ(param(*net, b).abs().max().item<float>(), 0.0f) << b;
  }
  EXPECT_GT(param(*net, "fc.weight").abs().max().item<float>(), 0.0f);
}

TEST(ConvN, Conv6Layers) {
  const auto net = make_network(config_for("conv6", 3, 32), 1);
  EXPECT_EQ(param(*net, "conv1.weight").sizes(), (std::vector<int64_t>{64, 3, 3, 3}));
  EXPECT_EQ(param(*net, "conv4.weight").sizes(), (std::vector<int64_t>{128, 128, 3, 3}));
  EXPECT_EQ(param(*net, "conv6.weight").sizes(), (std::vector<int64_t>{256, 256, 3, 3}));
  EXPECT_EQ(param(*net, "fc1.weight").sizes(), (std::vector<int64_t>{256, 256 * 4 * 4}));
  EXPECT_EQ(param(*net, "fc2.weight").sizes(), (std::vector<int64_t>{256, 256}));
  EXPECT_EQ(net->kind_of("conv3.weight"), ParamKind::ConvKernel);
  EXPECT_EQ(net->kind_of("conv3.bias"), ParamKind::Bias);
  EXPECT_EQ(param(*net, "conv3.bias").abs().max().item<float>(), 0.0f);
}

TEST(ConvN, Conv2FeatureSize) {
  const auto net = make_network(config_for("conv2", 3, 32), 1);
  EXPECT_EQ(param(*net, "fc1.weight").sizes(), (std::vector<int64_t>{256, 64 * 16 * 16}));
  EXPECT_EQ(net->named_parameters().find("conv3.weight"), nullptr);
}

TEST(ConvN, RejectsWrongSizeAndWidth) {
  const auto net = make_network(config_for("conv4", 3, 32), 1);
  EXPECT_THROW(net->forward(testing::random_images(2, 64, 3)), UserError);
  auto c = config_for("conv4", 3, 32);
  c.width = 2;
  EXPECT_THROW(make_network(c, 1), UserError);
  EXPECT_THROW(make_network(config_for("conv6", 3, 4), 1), UserError);  // pooled to nothing
}

}  // namespace
}  // namespace lth::models
