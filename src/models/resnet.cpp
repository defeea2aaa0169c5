#include "models/resnet.h"

#include <ATen/core/grad_mode.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "common/error.h"
#include "models/autocast.h"
#include "models/init.h"
#include "models/network_base.h"

namespace lth::models {
namespace {

namespace nn = torch::nn;

// With Padding::Same the module pads nothing itself: `same_pad` pads its input first.
nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, Padding padding) {
  const int64_t pad = padding == Padding::Same ? 0 : kernel / 2;
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(pad).bias(false));
}

// TensorFlow's "SAME" padding of one spatial side of length n: (before, after), the odd
// pixel after (bottom/right).
std::pair<int64_t, int64_t> same_split(int64_t n, int64_t kernel, int64_t stride) {
  const int64_t out = (n + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + kernel - n, 0);
  return {total / 2, total - total / 2};
}

// x (NCHW) padded as "SAME" needs for a kernel x kernel window at `stride`, with `value`.
torch::Tensor same_pad(const torch::Tensor& x, int64_t kernel, int64_t stride, double value) {
  const auto [top, bottom] = same_split(x.size(2), kernel, stride);
  const auto [left, right] = same_split(x.size(3), kernel, stride);
  if (top == 0 && bottom == 0 && left == 0 && right == 0) return x;
  return torch::constant_pad_nd(x, {left, right, top, bottom}, value);
}

torch::Tensor conv_forward(nn::Conv2d& c, const torch::Tensor& x, Padding padding) {
  if (padding == Padding::Symmetric) return c->forward(x);
  const auto& o = c->options;
  return c->forward(same_pad(x, (*o.kernel_size())[0], (*o.stride())[0], 0.0));
}

nn::BatchNorm2d batch_norm(int64_t channels) {
  return nn::BatchNorm2d(nn::BatchNorm2dOptions(channels).momentum(0.1).eps(1e-5));
}

// A basic block (two 3x3 convs) or a bottleneck (1x1, 3x3 with the stride, 1x1 to 4x planes).
// Registration order follows torchvision: conv1, bn1, conv2, bn2, [conv3, bn3], downsample.
class BlockImpl : public nn::Module {
 public:
  BlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck, Padding padding)
      : padding_(padding) {
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
      downsample_ = register_module(
          "downsample", nn::Sequential(conv(in, out, 1, stride, padding), batch_norm(out)));
    }
  }

  torch::Tensor forward(torch::Tensor x) {
    // A 1x1 shortcut conv needs no padding under either rule.
    const auto shortcut = downsample_ ? downsample_->forward(x) : x;
    for (size_t i = 0; i < convs_.size(); ++i) {
      x = bns_[i]->forward(conv_forward(convs_[i], x, padding_));
      if (i + 1 < convs_.size()) x.relu_();
    }
    // In place, as torchvision: BN's backward needs its input, not its output.
    return x.add_(shortcut).relu_();
  }

 private:
  void add_pair(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
    const auto n = std::to_string(convs_.size() + 1);
    convs_.push_back(register_module("conv" + n, conv(in, out, kernel, stride, padding_)));
    bns_.push_back(register_module("bn" + n, batch_norm(out)));
  }

  Padding padding_;
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
    conv1_ = register_module("conv1", conv(config.in_channels, channels, pool_stem_ ? 7 : 3,
                                           pool_stem_ ? 2 : 1, config.padding));
    bn1_ = register_module("bn1", batch_norm(channels));
    for (size_t i = 0; i < spec.blocks.size(); ++i) {
      const int64_t planes = (spec.base_planes << i) * config.width;
      layers_.push_back(register_module(
          "layer" + std::to_string(i + 1),
          make_stage(channels, planes, i == 0 ? 1 : 2, spec.blocks[i], spec.bottleneck,
                     config.padding)));
    }
    fc_ = register_module("fc",
                          nn::Linear(nn::LinearOptions(channels, config.num_classes).bias(false)));
    index_parameters();
  }

  torch::Tensor forward(const torch::Tensor& images) override {
    const Padding padding = config().padding;
    auto x = bn1_->forward(conv_forward(conv1_, standardize(images), padding)).relu_();
    if (pool_stem_ && padding == Padding::Symmetric)
      x = torch::max_pool2d(x, /*kernel_size=*/3, /*stride=*/2, /*padding=*/1);
    if (pool_stem_ && padding == Padding::Same)  // -inf: padding never wins the max
      x = torch::max_pool2d(same_pad(x, 3, 2, -std::numeric_limits<double>::infinity()), 3, 2);
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
                                   int64_t blocks, bool bottleneck, Padding padding) {
    nn::Sequential stage;
    for (int64_t b = 0; b < blocks; ++b) {
      stage->push_back(Block(channels, planes, b == 0 ? stride : 1, bottleneck, padding));
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
