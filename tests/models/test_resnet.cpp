#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "models/network.h"
#include "test_util.h"

namespace lth::models {
namespace {

using testing::imagenet_config;
using testing::param;

// One ResNet-50 for the whole suite: building it is the slow part.
class ResNet50 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { net_ = make_network(imagenet_config("resnet50"), 7); }
  static void TearDownTestSuite() { net_.reset(); }
  static NetworkPtr net_;
};
NetworkPtr ResNet50::net_;

TEST_F(ResNet50, ParameterCountsMatchTheRecipe) {
  const auto counts = count_parameters(*net_);
  EXPECT_EQ(counts.conv, 23454912);
  EXPECT_EQ(counts.head, 2048000);
  EXPECT_EQ(counts.norm, 53120);
  EXPECT_EQ(counts.linear, 0);
  EXPECT_EQ(counts.bias, 0);
  EXPECT_EQ(counts.total, 25556032);
}

// torchvision's resnet50 state_dict, built independently of the model code, minus fc.bias.
std::set<std::string> torchvision_resnet50_names() {
  const auto add_bn = [](std::set<std::string>& s, const std::string& bn) {
    for (const char* e : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"})
      s.insert(bn + "." + e);
  };
  std::set<std::string> names{"conv1.weight", "fc.weight"};
  add_bn(names, "bn1");
  const int blocks[] = {3, 4, 6, 3};
  for (int stage = 0; stage < 4; ++stage) {
    for (int b = 0; b < blocks[stage]; ++b) {
      const auto block = "layer" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
      for (int i = 1; i <= 3; ++i) {
        names.insert(block + "conv" + std::to_string(i) + ".weight");
        add_bn(names, block + "bn" + std::to_string(i));
      }
      if (b == 0) {
        names.insert(block + "downsample.0.weight");
        add_bn(names, block + "downsample.1");
      }
    }
  }
  return names;
}

TEST_F(ResNet50, StateDictNamesAreTorchvisions) {
  std::set<std::string> ours;
  for (const auto& p : net_->named_parameters()) ours.insert(p.key());
  for (const auto& b : net_->named_buffers()) ours.insert(b.key());
  // 53 convs + 53 BNs x 5 entries + fc.weight = 319, plus pixel_mean and pixel_std.
  EXPECT_EQ(net_->named_parameters().size() + net_->named_buffers().size(), 321u);
  auto expected = torchvision_resnet50_names();
  EXPECT_EQ(expected.size(), 319u);
  expected.insert({"pixel_mean", "pixel_std"});
  EXPECT_EQ(ours, expected);
  for (const char* name : {"layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_var",
                           "layer4.2.conv3.weight", "bn1.num_batches_tracked"}) {
    EXPECT_TRUE(ours.count(name)) << name;
  }
}

TEST_F(ResNet50, ParameterKinds) {
  EXPECT_EQ(net_->kind_of("conv1.weight"), ParamKind::ConvKernel);
  EXPECT_EQ(net_->kind_of("layer2.0.downsample.0.weight"), ParamKind::ConvKernel);
  EXPECT_EQ(net_->kind_of("layer2.0.downsample.1.weight"), ParamKind::Norm);
  EXPECT_EQ(net_->kind_of("layer3.1.bn2.bias"), ParamKind::Norm);
  EXPECT_EQ(net_->kind_of("fc.weight"), ParamKind::Head);
  EXPECT_THROW(net_->kind_of("fc.bias"), UserError);
  EXPECT_THROW(net_->kind_of("bn1.running_mean"), UserError);  // a buffer, not a parameter
}

TEST_F(ResNet50, HeadAndResidualBranchEndsStartAtZero) {
  EXPECT_EQ(param(*net_, "fc.weight").abs().max().item<float>(), 0.0f);
  EXPECT_EQ(param(*net_, "fc.weight").sizes(), (std::vector<int64_t>{1000, 2048}));
  for (const auto& p : net_->named_parameters()) {
    if (net_->kind_of(p.key()) != ParamKind::Norm) continue;
    const auto& name = p.key();
    const bool scale = name.size() > 7 && name.substr(name.size() - 7) == ".weight";
    const bool last_bn = name.find(".bn3.") != std::string::npos;
    const float expected = scale && !last_bn ? 1.0f : 0.0f;
    EXPECT_TRUE(torch::all(p.value() == expected).item<bool>()) << name;
  }
}

TEST_F(ResNet50, ConvKernelsAreTruncatedHeNormal) {
  for (const auto& p : net_->named_parameters()) {
    if (net_->kind_of(p.key()) != ParamKind::ConvKernel) continue;
    const auto& w = p.value();
    const double std = std::sqrt(2.0 / static_cast<double>(w.numel() / w.size(0)));
    EXPECT_LE(w.abs().max().item<double>(), 2 * std / 0.87962566103423978 * (1 + 1e-6)) << p.key();
  }
  const auto big = param(*net_, "layer4.0.conv2.weight");  // 2.4M values, fan-in 4608
  const double expected = std::sqrt(2.0 / 4608);
  EXPECT_NEAR(big.std().item<double>(), expected, 0.005 * expected);
  EXPECT_NEAR(big.mean().item<double>(), 0.0, 0.005 * expected);
  EXPECT_GT(big.abs().max().item<double>(), 1.99 * expected / 0.87962566103423978);
}

TEST_F(ResNet50, BatchNormUsesPyTorchMomentumAndEps) {
  for (const auto& m : net_->named_modules()) {
    if (auto bn = m.value()->as<torch::nn::BatchNorm2d>()) {
      EXPECT_DOUBLE_EQ(bn->options.momentum().value(), 0.1) << m.key();
      EXPECT_DOUBLE_EQ(bn->options.eps(), 1e-5) << m.key();
    }
  }
}

TEST(ResNet, ResNet18ConvCountIsTorchvisions) {
  // torchvision resnet18: 11,689,512 in all = 11,166,912 conv + 9,600 BN + 513,000 fc.
  const auto counts = count_parameters(*make_network(imagenet_config("resnet18"), 1));
  EXPECT_EQ(counts.conv, 11166912);
  EXPECT_EQ(counts.norm, 9600);
  EXPECT_EQ(counts.head, 512000);
}

TEST(ResNet, StemFollowsImageSize) {
  const auto small = make_network(imagenet_config("resnet18", 64), 1);
  EXPECT_EQ(param(*small, "conv1.weight").sizes(), (std::vector<int64_t>{64, 3, 3, 3}));
  const auto large = make_network(imagenet_config("resnet18", 96), 1);
  EXPECT_EQ(param(*large, "conv1.weight").sizes(), (std::vector<int64_t>{64, 3, 7, 7}));
  // ImageNet stem: 96 -> 48 (conv) -> 24 (pool) -> 3 after three stride-2 stages.
  large->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(large->forward(testing::random_images(2, 96, 3)).sizes(),
            (std::vector<int64_t>{2, 1000}));
}

TEST(ResNet, CifarFamilyShapesAndWidth) {
  auto c = testing::config_for("resnet20", 3, 32);
  c.width = 2;
  const auto net = make_network(c, 1);
  EXPECT_EQ(param(*net, "conv1.weight").sizes(), (std::vector<int64_t>{32, 3, 3, 3}));
  EXPECT_EQ(param(*net, "layer3.2.conv2.weight").sizes(), (std::vector<int64_t>{128, 128, 3, 3}));
  EXPECT_EQ(param(*net, "fc.weight").sizes(), (std::vector<int64_t>{10, 128}));
  EXPECT_EQ(net->named_parameters().find("layer1.0.downsample.0.weight"), nullptr);
  EXPECT_NE(net->named_parameters().find("layer2.0.downsample.0.weight"), nullptr);
  // 9 blocks x 2 convs + stem + 2 shortcuts
  int convs = 0;
  for (const auto& p : net->named_parameters())
    convs += net->kind_of(p.key()) == ParamKind::ConvKernel;
  EXPECT_EQ(convs, 21);
}

TEST(ResNet, LogitsStartAtZeroAndGradientsFlow) {
  const auto net = make_network(testing::config_for("resnet20", 3, 32), 3);
  const auto images = testing::random_images(2, 32, 3);
  EXPECT_EQ(net->forward(images).abs().max().item<float>(), 0.0f);
  {
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(5);
    param(*net, "fc.weight").normal_(0.0, 1.0, gen);
  }
  torch::nn::functional::cross_entropy(net->forward(images), torch::tensor({1, 4})).backward();
  // Zero-scale last BNs still pass gradient to their own scale, and the shortcuts to the stem.
  for (const char* name : {"fc.weight", "layer1.0.bn2.weight", "conv1.weight"}) {
    EXPECT_GT(param(*net, name).grad().abs().max().item<float>(), 0.0f) << name;
  }
  // Activations run channels-last (see standardize), but parameters and their gradients
  // keep the plain contiguous layout that optimizers and checkpoint writers expect.
  for (const auto& p : net->named_parameters()) {
    EXPECT_TRUE(p.value().is_contiguous() && p.value().grad().is_contiguous()) << p.key();
  }
}

}  // namespace
}  // namespace lth::models
