#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "models/network.h"
#include "test_util.h"

namespace lth::models {
namespace {

using testing::config_for;

bool same_parameters(const Network& a, const Network& b) {
  const auto pa = a.named_parameters();
  const auto pb = b.named_parameters();
  if (pa.size() != pb.size()) return false;
  for (const auto& p : pa) {
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  }
  return true;
}

TEST(Registry, ListsEveryNetwork) {
  const std::vector<std::string> expected{
      "conv2",    "conv4",    "conv6",    "lenet300_100", "resnet101", "resnet110", "resnet152",
      "resnet18", "resnet20", "resnet32", "resnet34",     "resnet44",  "resnet50",  "resnet56"};
  EXPECT_EQ(network_names(), expected);
}

TEST(Registry, UnknownNameIsAUserError) {
  try {
    make_network(config_for("resnet51", 3, 32), 1);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown network 'resnet51'"), std::string::npos);
  }
}

// Every network on a small batch, in eval mode so BN uses running statistics.
TEST(Registry, EveryNetworkForwardsASmallBatch) {
  torch::NoGradGuard no_grad;
  for (const auto& name : network_names()) {
    const bool mnist = name == "lenet300_100";
    const auto c = config_for(name, mnist ? 1 : 3, mnist ? 28 : 32, 7);
    const auto net = make_network(c, 1);
    net->eval();
    const auto logits = net->forward(testing::random_images(2, c.image_size, c.in_channels));
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 7})) << name;
    EXPECT_EQ(logits.scalar_type(), torch::kFloat) << name;
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>()) << name;
  }
}

TEST(Init, SameSeedSameWeightsOtherSeedOtherWeights) {
  const auto c = config_for("resnet20", 3, 32);
  EXPECT_TRUE(same_parameters(*make_network(c, 11), *make_network(c, 11)));
  EXPECT_FALSE(same_parameters(*make_network(c, 11), *make_network(c, 12)));
  const auto l = config_for("conv2", 3, 32);
  EXPECT_TRUE(same_parameters(*make_network(l, 11), *make_network(l, 11)));
  EXPECT_FALSE(same_parameters(*make_network(l, 11), *make_network(l, 12)));
}

TEST(Init, IndependentOfThreadCountAndGlobalGenerator) {
  const auto c = testing::imagenet_config("resnet18", 224);
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  torch::manual_seed(1);
  const auto one = make_network(c, 5);
  at::set_num_threads(2);
  torch::manual_seed(2);
  const auto two = make_network(c, 5);
  at::set_num_threads(threads);
  EXPECT_TRUE(same_parameters(*one, *two));
}

TEST(Init, LayersDoNotShareRandomStreams) {
  // Same-shaped kernels in different places must not be copies of each other.
  const auto net = make_network(config_for("resnet20", 3, 32), 3);
  EXPECT_FALSE(torch::equal(testing::param(*net, "layer1.0.conv1.weight"),
                            testing::param(*net, "layer1.0.conv2.weight")));
}

TEST(Standardize, MeanPixelBecomesZero) {
  auto c = config_for("resnet20", 3, 32);
  c.pixel_mean = {128 / 255.0, 64 / 255.0, 1.0};
  c.pixel_std = {0.5, 0.25, 0.125};
  const auto net = make_network(c, 1);
  auto images = torch::empty({2, 4, 5, 3}, torch::kByte);
  images.select(3, 0).fill_(128);
  images.select(3, 1).fill_(64);
  images.select(3, 2).fill_(255);
  const auto x = net->standardize(images);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(x.scalar_type(), torch::kFloat);
  EXPECT_LT(x.abs().max().item<float>(), 1e-6f);
  images[1][2][3][1] = 0;  // channel 1 of one pixel: (0 - 64/255) / 0.25
  EXPECT_NEAR(net->standardize(images)[1][1][2][3].item<float>(), -64 / 255.0 / 0.25, 1e-6);
}

TEST(Standardize, StatisticsAreStoredAsBuffers) {
  const auto net = make_network(testing::imagenet_config("resnet18", 64), 1);
  const auto mean = *net->named_buffers().find("pixel_mean");
  EXPECT_EQ(mean.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::allclose(mean, torch::tensor({0.48145466f, 0.4578275f, 0.40821073f})));
  EXPECT_EQ(net->named_buffers().find("pixel_std")->sizes(), (std::vector<int64_t>{3}));
}

void expect_user_error(Network& net, const torch::Tensor& input, const std::string& fragment) {
  try {
    net.forward(input);
    FAIL() << "expected UserError for " << fragment;
  } catch (const UserError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(Input, WrongDtypeOrShapeIsAUserError) {
  const auto net = make_network(config_for("resnet20", 3, 32), 1);
  const std::string expected = "takes uint8 images [N, H, W, 3]";
  expect_user_error(*net, torch::zeros({2, 32, 32, 3}), expected);                // float
  expect_user_error(*net, torch::zeros({2, 3, 32, 32}, torch::kByte), expected);  // NCHW
  expect_user_error(*net, torch::zeros({32, 32, 3}, torch::kByte), expected);     // 3-D
  expect_user_error(*net, torch::Tensor(), "undefined");
}

TEST(Config, InvalidConfigIsAUserError) {
  auto c = config_for("resnet20", 3, 32);
  c.pixel_std = {0.25};
  EXPECT_THROW(make_network(c, 1), UserError);
  c = config_for("resnet20", 3, 32);
  c.num_classes = 0;
  EXPECT_THROW(make_network(c, 1), UserError);
  c = config_for("resnet20", 3, 32);
  c.pixel_std[1] = 0;
  EXPECT_THROW(make_network(c, 1), UserError);
}

TEST(Describe, CountsAndLayers) {
  const auto net = make_network(config_for("conv2", 3, 32), 1);
  const auto d = describe_network(*net);
  EXPECT_EQ(d["name"], "conv2");
  EXPECT_EQ(d["counts"]["conv"], 64 * 3 * 9 + 64 * 64 * 9);
  EXPECT_EQ(d["counts"]["total"], count_parameters(*net).total);
  EXPECT_EQ(d["buffers"], 2);
  EXPECT_EQ(d["parameters"][0]["name"], "conv1.weight");
  EXPECT_EQ(d["parameters"][0]["kind"], "conv");
  EXPECT_EQ(d["parameters"][0]["shape"], nlohmann::json({64, 3, 3, 3}));
  EXPECT_EQ(d["parameters"].back()["name"], "fc.bias");
  EXPECT_EQ(d["parameters"].back()["kind"], "head");
}

}  // namespace
}  // namespace lth::models
