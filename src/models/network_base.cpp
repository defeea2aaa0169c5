#include "models/network_base.h"

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <sstream>

#include "common/error.h"

namespace lth::models {
namespace {

void validate(const ModelConfig& c) {
  const std::string where = "model '" + c.name + "': ";
  require(c.num_classes >= 1, where + "num_classes must be >= 1");
  require(c.in_channels >= 1, where + "in_channels must be >= 1");
  require(c.image_size >= 1, where + "image_size must be >= 1");
  require(c.width >= 1, where + "width must be >= 1");
  const auto channels = static_cast<size_t>(c.in_channels);
  require(c.pixel_mean.size() == channels && c.pixel_std.size() == channels,
          where + "pixel_mean and pixel_std need one value per input channel (" +
              std::to_string(c.in_channels) + ")");
  for (double s : c.pixel_std) require(s > 0, where + "pixel_std values must be > 0");
}

std::string describe(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.scalar_type() << " " << t.sizes();
  return out.str();
}

ParamKind classify(const torch::nn::Module& m, const std::string& module_name,
                   const std::string& param) {
  if (module_name == "fc") return ParamKind::Head;
  if (m.as<torch::nn::BatchNorm2d>()) return ParamKind::Norm;
  if (param == "bias") return ParamKind::Bias;
  if (m.as<torch::nn::Conv2d>()) return ParamKind::ConvKernel;
  TORCH_CHECK(m.as<torch::nn::Linear>(), "unclassified parameter ", module_name, ".", param);
  return ParamKind::Linear;
}

}  // namespace

NetworkBase::NetworkBase(ModelConfig config) : config_(std::move(config)) {
  validate(config_);
  pixel_mean_ = register_buffer("pixel_mean", torch::tensor(config_.pixel_mean).to(torch::kFloat));
  pixel_std_ = register_buffer("pixel_std", torch::tensor(config_.pixel_std).to(torch::kFloat));
}

void NetworkBase::index_parameters() {
  // Runs inside subclass constructors, before a shared_ptr owns *this: so the root (which
  // holds no parameters of its own) must be left out of the walk.
  TORCH_CHECK(named_parameters(/*recurse=*/false).is_empty(), "parameters on the root module");
  kinds_.clear();
  for (const auto& item : named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false)) {
      kinds_[item.key() + "." + p.key()] = classify(*item.value(), item.key(), p.key());
    }
  }
}

ParamKind NetworkBase::kind_of(const std::string& param_name) const {
  auto it = kinds_.find(param_name);
  require(it != kinds_.end(), "model '" + config_.name + "' has no parameter '" + param_name + "'");
  return it->second;
}

void NetworkBase::check_input(const torch::Tensor& images) const {
  require(images.defined() && images.dim() == 4 && images.scalar_type() == torch::kByte &&
              images.size(3) == config_.in_channels,
          "model '" + config_.name + "' takes uint8 images [N, H, W, " +
              std::to_string(config_.in_channels) + "], got " +
              (images.defined() ? describe(images) : std::string("an undefined tensor")));
}

void NetworkBase::require_configured_size(const torch::Tensor& images) const {
  const int64_t s = config_.image_size;
  require(images.size(1) == s && images.size(2) == s,
          "model '" + config_.name + "' was built for " + std::to_string(s) + "x" +
              std::to_string(s) + " images, got " + std::to_string(images.size(1)) + "x" +
              std::to_string(images.size(2)));
}

// The reference's order of operations (/255, -mean, /std), done on NHWC where [C]
// statistics broadcast over the last dimension. The result is left as the permuted view,
// i.e. NCHW sizes in channels-last memory, not made contiguous: LibTorch's oneDNN convs
// and BN then run channels-last through the whole network, which measured faster on CPU
// (ResNet-50 train step, batch 16 at 224, 2 threads: 10.5-10.9 img/s against 7.6-9.0 for
// a contiguous NCHW input). Layers that need plain NCHW (flatten) convert on their own.
torch::Tensor NetworkBase::standardize(const torch::Tensor& images) const {
  check_input(images);
  // Move uint8 before widening: a quarter of the bytes cross to an accelerator.
  auto x = images.to(pixel_mean_.device()).to(torch::kFloat);
  x.div_(255).sub_(pixel_mean_).div_(pixel_std_);
  return x.permute({0, 3, 1, 2});
}

void require_unit_width(const ModelConfig& config) {
  require(config.width == 1, "model '" + config.name +
                                 "': width multiplier applies to ResNets only (got width " +
                                 std::to_string(config.width) + ")");
}

}  // namespace lth::models
