#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/precision.h"

namespace lth::train {
namespace {

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

}  // namespace
}  // namespace lth::train
