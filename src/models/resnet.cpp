#include "models/resnet.h"

#include <ATen/core/grad_mode.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include "common/error.h"
#include "models/autocast.h"
#include "models/init.h"
#include "models/network_base.h"

namespace lth::models {
namespace {

namespace nn = torch::nn;

nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

nn::BatchNorm2d batch_norm(int64_t channels) {
  return nn::BatchNorm2d(nn::BatchNorm2dOptions(channels).momentum(0.1).eps(1e-5));
}

// A basic block (two 3x3 convs) or a bottleneck (1x1, 3x3 with the stride, 1x1 to 4x planes).
// Registration order follows torchvision: conv1, bn1, conv2, bn2, [conv3, bn3], downsample.
class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck) {
    const int64_t out = bottleneck ? 4 * planes : planes;
    if (bottleneck) {
      add_pair(in, planes, 1, 1);
      add_pair(planes, planes, 3, stride);
      add_pair(planes, out, 1, 1);
    } else {
      add_pair(in, planes, 3, stride);
      add_pair(planes, planes, 3, 1);
    }
    // A zero-scale last BN starts each residual branch at zero, so every block begins as
    // its shortcut (Goyal et al. 2017).
    at::NoGradGuard no_grad;
    bns_.back()->weight.zero_();
    if (stride != 1 || in != out) {
      downsample_ =
          register_module("downsample", nn::Sequential(conv(in, out, 1, stride), batch_norm(out)));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    const auto shortcut = downsample_ ? downsample_->forward(x) : x;
    for (size_t i = 0; i < convs_.size(); ++i) {
      x = bns_[i]->forward(convs_[i]->forward(x));
      if (i + 1 < convs_.size()) x.relu_();
    }
    // In place, as torchvision: BN's backward needs its input, not its output.
    return x.add_(shortcut).relu_();
  }

 private:
  void add_pair(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
    const auto n = std::to_string(convs_.size() + 1);
    convs_.push_back(register_module("conv" + n, conv(in, out, kernel, stride)));
    bns_.push_back(register_module("bn" + n, batch_norm(out)));
  }

  std::vector<nn::Conv2d> convs_;
  std::vector<nn::BatchNorm2d> bns_;
  nn::Sequential downsample_{nullptr};
};
TORCH_MODULE(Block);

class ResNet : public NetworkBase {
 public:
  ResNet(const ModelConfig& config, const ResNetSpec& spec) : NetworkBase(config) {
    int64_t channels = spec.base_planes * config.width;
    pool_stem_ = !spec.cifar_family && config.image_size > 64;
    conv1_ = register_module(
        "conv1", conv(config.in_channels, channels, pool_stem_ ? 7 : 3, pool_stem_ ? 2 : 1));
    bn1_ = register_module("bn1", batch_norm(channels));
    for (size_t i = 0; i < spec.blocks.size(); ++i) {
      const int64_t planes = (spec.base_planes << i) * config.width;
      layers_.push_back(register_module(
          "layer" + std::to_string(i + 1),
          make_stage(channels, planes, i == 0 ? 1 : 2, spec.blocks[i], spec.bottleneck)));
    }
    fc_ = register_module("fc",
                          nn::Linear(nn::LinearOptions(channels, config.num_classes).bias(false)));
    index_parameters();
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = bn1_->forward(conv1_->forward(standardize(images))).relu_();
    if (pool_stem_) x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
    for (auto& layer : layers_) x = layer->forward(x);
    return float32_head(fc_, x.mean({2, 3}));
  }

  void initialise(uint64_t seed) {
    at::NoGradGuard no_grad;
    for (auto& p : named_parameters()) {
      if (kind_of(p.key()) != ParamKind::ConvKernel) continue;
      auto gen = init_generator(seed, p.key());
      he_truncated_normal_(p.value(), gen);
    }
    fc_->weight.zero_();  // BN scales and biases were set by construction
  }

 private:
  // `channels` is updated to the stage's output width.
  static nn::Sequential make_stage(int64_t& channels, int64_t planes, int64_t stride,
                                   int64_t blocks, bool bottleneck) {
    nn::Sequential stage;
    for (int64_t b = 0; b < blocks; ++b) {
      stage->push_back(Block(channels, planes, b == 0 ? stride : 1, bottleneck));
      channels = bottleneck ? 4 * planes : planes;
    }
    return stage;
  }

  bool pool_stem_ = false;
  nn::Conv2d conv1_{nullptr};
  nn::BatchNorm2d bn1_{nullptr};
  std::vector<nn::Sequential> layers_;
  nn::Linear fc_{nullptr};
};

}  // namespace

ResNetSpec imagenet_resnet_spec(int depth) {
  switch (depth) {
    case 18:
      return {false, {2, 2, 2, 2}, 64, false};
    case 34:
      return {false, {3, 4, 6, 3}, 64, false};
    case 50:
      return {true, {3, 4, 6, 3}, 64, false};
    case 101:
      return {true, {3, 4, 23, 3}, 64, false};
    case 152:
      return {true, {3, 8, 36, 3}, 64, false};
    default:
      throw UserError("no ImageNet ResNet of depth " + std::to_string(depth));
  }
}

ResNetSpec cifar_resnet_spec(int depth) {
  require(depth >= 8 && (depth - 2) % 6 == 0,
          "CIFAR ResNet depth must be 6n+2 (got " + std::to_string(depth) + ")");
  const int64_t n = (depth - 2) / 6;
  return {false, {n, n, n}, 16, true};
}

NetworkPtr make_resnet(const ModelConfig& config, const ResNetSpec& spec, uint64_t seed) {
  auto net = std::make_shared<ResNet>(config, spec);
  net->initialise(seed);
  return net;
}

}  // namespace lth::models
