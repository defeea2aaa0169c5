// The table of networks by name, and the helpers that read any Network.
#include "common/registry.h"

#include <functional>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "models/mlp_conv.h"
#include "models/network.h"
#include "models/resnet.h"

namespace lth::models {
namespace {

using Factory = std::function<NetworkPtr(const ModelConfig&, uint64_t)>;

void fill(Registry<Factory>& r) {
  for (int depth : {18, 34, 50, 101, 152}) {
    r.add(
        "resnet" + std::to_string(depth),
        [depth](const ModelConfig& c, uint64_t seed) {
          return make_resnet(c, imagenet_resnet_spec(depth), seed);
        },
        "ImageNet ResNet-" + std::to_string(depth));
  }
  for (int depth : {20, 32, 44, 56, 110}) {
    r.add(
        "resnet" + std::to_string(depth),
        [depth](const ModelConfig& c, uint64_t seed) {
          return make_resnet(c, cifar_resnet_spec(depth), seed);
        },
        "CIFAR ResNet-" + std::to_string(depth));
  }
  r.add("lenet300_100", make_lenet300_100, "MLP 300-100 (Frankle & Carbin)");
  for (int pairs : {1, 2, 3}) {
    r.add(
        "conv" + std::to_string(2 * pairs),
        [pairs](const ModelConfig& c, uint64_t seed) { return make_conv(c, pairs, seed); },
        "Conv-" + std::to_string(2 * pairs) + " (Frankle & Carbin)");
  }
}

const Registry<Factory>& networks() {
  static const Registry<Factory> registry = [] {
    Registry<Factory> r("network");
    fill(r);
    return r;
  }();
  return registry;
}

}  // namespace

NetworkPtr make_network(const ModelConfig& config, uint64_t seed) {
  return networks().get(config.name)(config, seed);
}

std::vector<std::string> network_names() { return networks().names(); }

ModelConfig native_model_config(const std::string& name) {
  networks().get(name);  // unknown names fail here, listing the known ones
  ModelConfig m;
  m.name = name;
  const bool imagenet = name == "resnet18" || name == "resnet34" || name == "resnet50" ||
                        name == "resnet101" || name == "resnet152";
  if (name == "lenet300_100") return m;  // ModelConfig's defaults: 28x28x1, 10 classes
  m.in_channels = 3;
  m.num_classes = imagenet ? 1000 : 10;
  m.image_size = imagenet ? 224 : 32;
  m.pixel_mean = {0.485, 0.456, 0.406};
  m.pixel_std = {0.229, 0.224, 0.225};
  return m;
}

ParamCounts count_parameters(const Network& net) {
  ParamCounts counts;
  for (const auto& p : net.named_parameters()) {
    const int64_t n = p.value().numel();
    switch (net.kind_of(p.key())) {
      case ParamKind::ConvKernel:
        counts.conv += n;
        break;
      case ParamKind::Linear:
        counts.linear += n;
        break;
      case ParamKind::Head:
        counts.head += n;
        break;
      case ParamKind::Norm:
        counts.norm += n;
        break;
      case ParamKind::Bias:
        counts.bias += n;
        break;
    }
    counts.total += n;
  }
  return counts;
}

Padding parse_padding(const std::string& name) {
  if (name == "symmetric") return Padding::Symmetric;
  if (name == "same") return Padding::Same;
  throw UserError("unknown padding '" + name + "' (expected symmetric or same)");
}

const char* padding_name(Padding padding) {
  return padding == Padding::Same ? "same" : "symmetric";
}

const char* kind_name(ParamKind kind) {
  switch (kind) {
    case ParamKind::ConvKernel:
      return "conv";
    case ParamKind::Linear:
      return "linear";
    case ParamKind::Head:
      return "head";
    case ParamKind::Norm:
      return "norm";
    case ParamKind::Bias:
      return "bias";
  }
  return "?";
}

nlohmann::json describe_network(const Network& net) {
  const auto& c = net.config();
  const auto counts = count_parameters(net);
  nlohmann::json out = {{"name", c.name},
                        {"num_classes", c.num_classes},
                        {"in_channels", c.in_channels},
                        {"image_size", c.image_size},
                        {"width", c.width},
                        {"padding", padding_name(c.padding)},
                        {"counts",
                         {{"conv", counts.conv},
                          {"linear", counts.linear},
                          {"head", counts.head},
                          {"norm", counts.norm},
                          {"bias", counts.bias},
                          {"total", counts.total}}},
                        {"buffers", net.named_buffers().size()}};
  auto& params = out["parameters"] = nlohmann::json::array();
  for (const auto& p : net.named_parameters()) {
    params.push_back({{"name", p.key()},
                      {"kind", kind_name(net.kind_of(p.key()))},
                      {"shape", p.value().sizes().vec()},
                      {"numel", p.value().numel()}});
  }
  return out;
}

}  // namespace lth::models
