#include <gtest/gtest.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "common/error.h"
#include "models/autocast.h"
#include "models/precision.h"
#include "data/synthetic.h"
#include "eval/evaluator.h"
#include "models/network.h"

namespace lth::train {
namespace {

using models::AutocastGuard;

TEST(Autocast, CpuMixedPrecisionRunsConvolutionsInBfloat16AndRestores) {
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3));
  const auto x = torch::randn({1, 3, 8, 8});
  {
    AutocastGuard guard(models::Precision::kBFloat16, torch::kCPU);
    EXPECT_EQ(conv->forward(x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(conv->forward(x).scalar_type(), torch::kFloat32);  // scope ended
  {
    AutocastGuard off(models::Precision::kFloat32, torch::kCPU);
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
    AutocastGuard guard(models::Precision::kBFloat16, torch::kCPU);
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
    AutocastGuard guard(models::Precision::kBFloat16, torch::kCPU);
    EXPECT_EQ(net->forward(images).scalar_type(), torch::kFloat32) << name;
  }
}

// Evaluation runs under the training autocast when mixed precision is on (the reference
// evaluates in its compute dtype): the same network scores slightly differently.
TEST(Autocast, EvaluationRunsUnderTheTrainingAutocast) {
  models::ModelConfig config;
  config.name = "resnet20";
  config.in_channels = 1;
  config.image_size = 28;
  auto net = models::make_network(config, 11);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    for (auto& p : net->named_parameters())
      if (p.key() == "fc.weight") p.value().normal_(0, 0.3);  // the zero head would give uniform logits
  }
  data::SyntheticConfig sc;
  sc.size = 48;
  const auto ds = std::make_shared<data::SyntheticDataset>(sc, data::Split::Test);
  eval::EvalOptions o;
  o.batch_size = 16;
  o.num_workers = 0;
  const auto fp32 = eval::evaluate(*net, ds, o);
  o.precision = models::Precision::kBFloat16;
  const auto bf16 = eval::evaluate(*net, ds, o);
  EXPECT_EQ(fp32.count, bf16.count);
  EXPECT_NE(fp32.nll, bf16.nll);
  EXPECT_NEAR(fp32.nll, bf16.nll, 0.05);
  EXPECT_FALSE(at::autocast::is_cpu_enabled());  // restored after evaluation
}

TEST(Precision, NamesParseAndTheReferenceFlagPicksTheDevicesMixedMode) {
  using models::Precision;
  EXPECT_EQ(models::parse_precision("bf16", "--precision"), Precision::kBFloat16);
  EXPECT_EQ(models::parse_precision("fp16", "--precision"), Precision::kFloat16);
  EXPECT_EQ(models::parse_precision("fp32", "--precision"), Precision::kFloat32);
  for (const auto& name : models::precision_names())
    EXPECT_EQ(models::precision_name(models::parse_precision(name, "x")), name);
  try {
    models::parse_precision("float16", "--precision");
    FAIL() << "an unknown name must be refused";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--precision: unknown precision 'float16'"), std::string::npos) << e.what();
  }
  // --mixed_precision=true on a CPU is bf16 (the CPU has no fp16 autocast); fp16 there is refused.
  EXPECT_EQ(models::resolve_precision("fp32", true, torch::kCPU), Precision::kBFloat16);
  EXPECT_EQ(models::resolve_precision("fp32", false, torch::kCPU), Precision::kFloat32);
  EXPECT_EQ(models::resolve_precision("bf16", false, torch::kCPU), Precision::kBFloat16);
  EXPECT_THROW(models::resolve_precision("fp16", false, torch::kCPU), UserError);
  EXPECT_TRUE(models::needs_loss_scaling(Precision::kFloat16));
  EXPECT_FALSE(models::needs_loss_scaling(Precision::kBFloat16));
}

TEST(Autocast, GuardRestoresThePreviousDtype) {
  const auto before = at::autocast::get_autocast_cpu_dtype();
  {
    AutocastGuard guard(models::Precision::kBFloat16, torch::kCPU);
    EXPECT_EQ(at::autocast::get_autocast_cpu_dtype(), torch::kBFloat16);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
  }
  EXPECT_EQ(at::autocast::get_autocast_cpu_dtype(), before);
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
}

}  // namespace
}  // namespace lth::train
