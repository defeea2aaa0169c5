#include <gtest/gtest.h>
#include <torch/torch.h>

#include "models/autocast.h"
#include "models/network.h"

namespace lth::train {
namespace {

using models::AutocastGuard;

TEST(Autocast, CpuMixedPrecisionRunsConvolutionsInBfloat16AndRestores) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3));
  const auto x = torch::randn({1, 3, 8, 8});
  {
    AutocastGuard guard(/*enabled=*/true, torch::kCPU);
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat32);  // scope ended
  {
    AutocastGuard off(/*enabled=*/false, torch::kCPU);
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat32);
  }
  EXPECT_EQ(conv->weight.scalar_type(), torch::kFloat32);  // master weights stay float32
}

// The reference computes its classifier in float32 even under mixed precision: the logits
// are float32 and equal the head applied in float32 to the (bfloat16) features.
TEST(Autocast, HeadRunsInFloat32UnderAutocast) {
  torch::manual_seed(3);
  torch::nn::Linear head(16, 5);
  const auto features = torch::randn({4, 16}).to(torch::kBFloat16);
  torch::Tensor logits;
  {
    AutocastGuard guard(/*enabled=*/true, torch::kCPU);
    logits = models::float32_head(head, features);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());  // restored inside the scope
    EXPECT_EQ(head->forward(features.to(torch::kFloat32)).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(logits.scalar_type(), torch::kFloat32);
  const auto expected = torch::addmm(head->bias, features.to(torch::kFloat32), head->weight.t());
  EXPECT_TRUE(torch::allclose(logits, expected, 1e-5, 1e-6));
}

TEST(Autocast, NetworksReturnFloat32LogitsUnderAutocast) {
  for (const char* name : {"lenet300_100", "resnet20"}) {
    models::ModelConfig config;
    config.name = name;
    config.in_channels = 1;
    config.image_size = 28;
    auto net = models::make_network(config, 7);
    const auto images = torch::randint(0, 256, {2, 28, 28, 1}, torch::kUInt8);
    AutocastGuard guard(/*enabled=*/true, torch::kCPU);
    EXPECT_EQ(net->forward(images).scalar_type(), torch::kFloat32) << name;
  }
}

}  // namespace
}  // namespace lth::train
