#include "io/flax_layout.h"

#include "common/error.h"
#include "models/network.h"

namespace lth::io::flax {
namespace {

constexpr Dtype kDtypes[] = {{"float32", torch::kFloat32}, {"float64", torch::kFloat64},
                             {"float16", torch::kFloat16}, {"bfloat16", torch::kBFloat16},
                             {"int8", torch::kInt8},       {"int16", torch::kInt16},
                             {"int32", torch::kInt32},     {"int64", torch::kInt64},
                             {"uint8", torch::kUInt8},     {"bool", torch::kBool}};

}  // namespace

const Dtype* dtype_named(std::string_view name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.name;
  throw UserError(std::string("no reference dtype for ") + c10::toString(type));
}

Layout make_layout(const std::string& model, const models::ResNetSpec& spec, int64_t stem_kernel,
                   int64_t in_channels) {
  Layout l;
  l.model = model;
  l.stem_kernel = stem_kernel;
  l.image_size = stem_kernel == 7 ? 224 : 32;
  l.in_channels = in_channels;
  int64_t channels = spec.base_planes;
  l.layers.push_back({"conv1", "bn1", {stem_kernel, stem_kernel, in_channels, channels}});
  for (size_t stage = 0; stage < spec.blocks.size(); ++stage) {
    const int64_t planes = spec.base_planes << stage;
    const int64_t out = spec.bottleneck ? 4 * planes : planes;
    for (int64_t b = 0; b < spec.blocks[stage]; ++b) {
      const int64_t stride = (b == 0 && stage > 0) ? 2 : 1;
      const std::string p = "layer" + std::to_string(stage + 1) + "." + std::to_string(b) + ".";
      if (spec.bottleneck) {
        l.layers.push_back({p + "conv1", p + "bn1", {1, 1, channels, planes}});
        l.layers.push_back({p + "conv2", p + "bn2", {3, 3, planes, planes}});
        l.layers.push_back({p + "conv3", p + "bn3", {1, 1, planes, out}});
      } else {
        l.layers.push_back({p + "conv1", p + "bn1", {3, 3, channels, planes}});
        l.layers.push_back({p + "conv2", p + "bn2", {3, 3, planes, planes}});
      }
      if (stride != 1 || channels != out)
        l.layers.push_back({p + "downsample.0", p + "downsample.1", {1, 1, channels, out}});
      channels = out;
    }
  }
  l.features = channels;
  return l;
}

// The spec of an lth ResNet by name, or nullopt for networks that are no ResNet.
std::optional<models::ResNetSpec> resnet_spec(const std::string& name) {
  if (name.rfind("resnet", 0) != 0) return std::nullopt;
  const int depth = std::stoi(name.substr(6));
  try {
    return models::imagenet_resnet_spec(depth);
  } catch (const UserError&) {
    return models::cifar_resnet_spec(depth);
  }
}

// Every layout lth can build, for recognising a file.
std::vector<Layout> candidate_layouts(int64_t in_channels) {
  std::vector<Layout> out;
  for (const auto& name : models::network_names()) {
    const auto spec = resnet_spec(name);
    if (!spec) continue;
    if (!spec->cifar_family) out.push_back(make_layout(name, *spec, 7, in_channels));
    out.push_back(make_layout(name, *spec, 3, in_channels));
  }
  return out;
}

std::string conv_key(size_t i) { return "Conv_" + std::to_string(i); }
std::string norm_key(size_t i) { return "BatchNorm_" + std::to_string(i); }

std::vector<int64_t> oihw(const std::vector<int64_t>& hwio) {
  return {hwio[3], hwio[2], hwio[0], hwio[1]};
}

}  // namespace lth::io::flax
