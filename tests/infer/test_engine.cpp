// Whole networks: the compiled plan's logits against the network's own LibTorch forward on
// the same masked weights, for every model family lth builds, at densities 1.0 to 0.005, with
// random BN statistics (so folding is exercised; lth's init zeroes the last BN scale of each
// block, which would hide a wrong residual branch), one fully pruned and one dense layer.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "common/error.h"
#include "infer/engine.h"
#include "models/network.h"

namespace lth::infer {
namespace {

models::ModelConfig config(const std::string& name, int64_t channels, int64_t size,
                           int64_t classes) {
  models::ModelConfig c;
  c.name = name;
  c.in_channels = channels;
  c.image_size = size;
  c.num_classes = classes;
  c.pixel_mean.assign(static_cast<size_t>(channels), 0.45);
  c.pixel_std.assign(static_cast<size_t>(channels), 0.25);
  return c;
}

// Random BN statistics and affine terms, a random head, and every conv/linear weight masked
// to `density` (the first prunable one fully pruned, the second left dense when asked).
void prepare(models::Network& net, double density, bool extremes, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  int weight_index = 0;
  for (auto& p : net.named_parameters()) {
    auto& t = p.value();
    const auto& name = p.key();
    if (net.kind_of(name) == models::ParamKind::Norm) {
      t.copy_(name.find(".weight") != std::string::npos ? torch::rand(t.sizes(), gen) + 0.5
                                                        : torch::randn(t.sizes(), gen) * 0.1);
    } else if (t.dim() >= 2) {
      if (net.kind_of(name) == models::ParamKind::Head)
        t.copy_(torch::randn(t.sizes(), gen) * 0.05);
      double d = density;
      if (extremes && weight_index == 1) d = 0.0;
      if (extremes && weight_index == 2) d = 1.0;
      ++weight_index;
      t.mul_(torch::rand(t.sizes(), gen) < d);
    } else {
      t.copy_(torch::randn(t.sizes(), gen) * 0.1);  // biases
    }
  }
  for (auto& b : net.named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos)
      b.value().copy_(torch::randn(b.value().sizes(), gen) * 0.1);
    if (b.key().find("running_var") != std::string::npos)
      b.value().copy_(torch::rand(b.value().sizes(), gen) + 0.5);
  }
  net.eval();
}

torch::Tensor images(int64_t n, const models::ModelConfig& c, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randint(0, 256, {n, c.image_size, c.image_size, c.in_channels}, gen, torch::kByte);
}

void expect_same_logits(const models::ModelConfig& c, double density, int64_t batch, bool extremes,
                        EngineMode mode) {
  auto net = models::make_network(c, 3);
  prepare(*net, density, extremes, 11);
  const auto x = images(batch, c, 5);
  torch::Tensor ref;
  {
    torch::NoGradGuard no_grad;
    ref = net->forward(x);
  }
  EngineOptions o;
  o.mode = mode;
  const auto compiled = compile(net, o);
  const auto got = compiled->forward(x);
  const std::string where = c.name + " density " + std::to_string(density) + " batch " +
                            std::to_string(batch) + " mode " + engine_mode_name(mode);
  ASSERT_EQ(got.sizes(), ref.sizes()) << where;
  const double scale = ref.abs().max().item<double>();
  ASSERT_GT(scale, 0) << where;
  EXPECT_LE((got - ref).abs().max().item<double>() / scale, 1e-4) << where;
  EXPECT_TRUE(torch::equal(got.argmax(1), ref.argmax(1))) << where;
  if (mode == EngineMode::Sparse) {
    EXPECT_EQ(compiled->sparse_layer_count(), static_cast<int64_t>(compiled->layers().size()));
  }
}

TEST(Engine, CifarResNet20MatchesLibTorch) {
  const auto c = config("resnet20", 3, 16, 10);
  for (double d : {1.0, 0.2097, 0.005}) expect_same_logits(c, d, 3, true, EngineMode::Sparse);
  expect_same_logits(c, 0.1074, 1, false, EngineMode::Sparse);
  expect_same_logits(c, 0.1074, 32, false, EngineMode::Auto);
}

TEST(Engine, ImageNetStemAndBottlenecksMatchLibTorch) {
  // image_size > 64 selects the 7x7/2 stem and max-pool; resnet50 has every bottleneck shape.
  const auto c = config("resnet50", 3, 72, 20);
  expect_same_logits(c, 0.1074, 2, true, EngineMode::Sparse);
  expect_same_logits(c, 0.018, 1, false, EngineMode::Auto);
}

TEST(Engine, TwoThreadsMatchLibTorch) {
  // Batch 5 on 2 threads runs whole images per thread; batch 1 shares each layer's work
  // between the threads (channel blocks x position tiles).
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  const auto c = config("resnet50", 3, 72, 20);
  expect_same_logits(c, 0.1074, 5, true, EngineMode::Sparse);
  expect_same_logits(c, 0.018, 1, false, EngineMode::Sparse);
  expect_same_logits(config("resnet20", 3, 16, 10), 0.2097, 3, false, EngineMode::Sparse);
  at::set_num_threads(before);
}

TEST(Engine, BasicBlockImageNetResNetMatchesLibTorch) {
  const auto c = config("resnet18", 3, 72, 10);
  expect_same_logits(c, 0.3, 2, true, EngineMode::Sparse);
}

TEST(Engine, SamePaddingOfTheReferenceMatchesLibTorch) {
  // models::Padding::Same (a converted reference checkpoint): asymmetric stride-2 padding in
  // the 7x7 stem, the 3x3/2 convs and the -inf max-pool. Odd and even sizes split differently.
  for (const int64_t size : {72, 75}) {
    auto c = config("resnet18", 3, size, 10);
    c.padding = models::Padding::Same;
    expect_same_logits(c, 0.3, 2, true, EngineMode::Sparse);
  }
}

TEST(Engine, ConvNAndLeNetMatchLibTorch) {
  for (const char* name : {"conv2", "conv4", "conv6"}) {
    const auto c = config(name, 3, 16, 10);
    expect_same_logits(c, 0.1, 4, true, EngineMode::Sparse);
    expect_same_logits(c, 1.0, 1, false, EngineMode::Auto);
  }
  const auto lenet = config("lenet300_100", 1, 28, 10);
  for (double d : {1.0, 0.035, 0.005}) expect_same_logits(lenet, d, 32, true, EngineMode::Sparse);
  expect_same_logits(lenet, 0.5, 1, false, EngineMode::Dense);
}

TEST(Engine, DenseNetworkInAutoModeRunsLibTorchItself) {
  auto net = models::make_network(config("resnet20", 3, 16, 10), 3);
  prepare(*net, 1.0, false, 4);  // lth's init zeroes the head: a trained ticket's is dense
  EngineOptions o;               // auto
  EXPECT_EQ(prepare_for_inference(net, o), net);
  o.mode = EngineMode::Dense;
  EXPECT_EQ(prepare_for_inference(net, o), net);
  o.mode = EngineMode::Sparse;
  EXPECT_NE(prepare_for_inference(net, o), net);
}

TEST(Engine, SparseTicketInAutoModeRunsSparseLayersAndReportsMacs) {
  auto net = models::make_network(config("resnet20", 3, 16, 10), 3);
  prepare(*net, 0.02, false, 9);
  EngineOptions o;
  const auto compiled = compile(net, o);
  EXPECT_GT(compiled->sparse_layer_count(), 0);
  EXPECT_LT(compiled->sparse_macs() * 10, compiled->dense_macs());
  EXPECT_TRUE(plan_pays(*compiled));
  EXPECT_NE(prepare_for_inference(net, o), net);
  const auto table = describe_plan(*compiled);
  EXPECT_NE(table.find("layer1.0.conv1"), std::string::npos);
  EXPECT_NE(table.find("sparse"), std::string::npos);
}

TEST(Engine, AutoKeepsLibTorchWhenFewMacsAreSaved) {
  // Only the head is sparse: the plan would save ~nothing and run the convs one image at a
  // time, so auto keeps LibTorch's forward; sparse mode still compiles.
  auto net = models::make_network(config("resnet20", 3, 16, 10), 3);
  prepare(*net, 1.0, false, 4);
  {
    torch::NoGradGuard no_grad;
    net->named_parameters()["fc.weight"].mul_(torch::rand({10, 64}) < 0.05);
  }
  EngineOptions o;
  const auto compiled = compile(net, o);
  EXPECT_EQ(compiled->sparse_layer_count(), 1);
  EXPECT_FALSE(plan_pays(*compiled));
  EXPECT_EQ(prepare_for_inference(net, o), net);
}

TEST(Engine, RefusesUnknownModesAndIsas) {
  EXPECT_THROW(parse_engine_mode("fast"), UserError);
  EXPECT_EQ(parse_engine_mode("auto"), EngineMode::Auto);
  EXPECT_THROW(parse_isa("sse9"), UserError);
}

}  // namespace
}  // namespace lth::infer
