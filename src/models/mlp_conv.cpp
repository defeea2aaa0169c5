#include "models/mlp_conv.h"

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

// He-normal weights, zero biases, each weight from its own named generator.
void init_he_zero_bias(NetworkBase& net, uint64_t seed) {
  at::NoGradGuard no_grad;
  for (auto& p : net.named_parameters()) {
    if (p.value().dim() == 1) {
      p.value().zero_();
      continue;
    }
    auto gen = init_generator(seed, p.key());
    he_normal_(p.value(), gen);
  }
}

// Registers fc1, fc2, ... for `hidden` widths and `fc` for the classifier.
class MlpHead {
 public:
  MlpHead(nn::Module& owner, int64_t in, const std::vector<int64_t>& hidden, int64_t classes) {
    for (int64_t width : hidden) {
      hidden_.push_back(
          owner.register_module("fc" + std::to_string(hidden_.size() + 1), nn::Linear(in, width)));
      in = width;
    }
    fc_ = owner.register_module("fc", nn::Linear(in, classes));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& layer : hidden_) x = torch::relu(layer->forward(x));
    return float32_head(fc_, x);
  }

 private:
  std::vector<nn::Linear> hidden_;
  nn::Linear fc_{nullptr};
};

class LeNet : public NetworkBase {
 public:
  explicit LeNet(const ModelConfig& c)
      : NetworkBase(c),
        mlp_(*this, c.in_channels * c.image_size * c.image_size, {300, 100}, c.num_classes) {
    require_unit_width(c);
    index_parameters();
  }
  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = standardize(images);
    require_configured_size(images);
    return mlp_.forward(x.flatten(1));
  }

 private:
  MlpHead mlp_;
};

int64_t pooled_size(const ModelConfig& c, int pairs) {
  const int64_t size = c.image_size >> pairs;
  require(size >= 1, "model '" + c.name + "' needs images of at least " +
                         std::to_string(1 << pairs) + " pixels a side");
  return size;
}

class ConvNet : public NetworkBase {
 public:
  ConvNet(const ModelConfig& c, int pairs)
      : NetworkBase(c),
        convs_(make_convs(*this, c.in_channels, pairs)),
        mlp_(*this, (int64_t{64} << (pairs - 1)) * pooled_size(c, pairs) * pooled_size(c, pairs),
             {256, 256}, c.num_classes) {
    require_unit_width(c);
    index_parameters();
  }
  torch::Tensor forward(const torch::Tensor& images) override {
    auto x = standardize(images);
    require_configured_size(images);
    for (size_t i = 0; i < convs_.size(); ++i) {
      x = torch::relu(convs_[i]->forward(x));
      if (i % 2 == 1) x = torch::max_pool2d(x, 2, 2);
    }
    return mlp_.forward(x.flatten(1));
  }

 private:
  static std::vector<nn::Conv2d> make_convs(nn::Module& owner, int64_t in, int pairs) {
    std::vector<nn::Conv2d> convs;
    for (int i = 0; i < 2 * pairs; ++i) {
      const int64_t out = int64_t{64} << (i / 2);
      convs.push_back(owner.register_module("conv" + std::to_string(i + 1),
                                            nn::Conv2d(nn::Conv2dOptions(in, out, 3).padding(1))));
      in = out;
    }
    return convs;
  }

  std::vector<nn::Conv2d> convs_;
  MlpHead mlp_;
};

}  // namespace

NetworkPtr make_lenet300_100(const ModelConfig& config, uint64_t seed) {
  auto net = std::make_shared<LeNet>(config);
  init_he_zero_bias(*net, seed);
  return net;
}

NetworkPtr make_conv(const ModelConfig& config, int pairs, uint64_t seed) {
  auto net = std::make_shared<ConvNet>(config, pairs);
  init_he_zero_bias(*net, seed);
  return net;
}

}  // namespace lth::models
