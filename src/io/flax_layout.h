#pragma once
// The reference's checkpoint format as both directions need it (flax_checkpoint.cpp reads,
// flax_checkpoint_write.cpp writes; flax_checkpoint.h is the interface): Flax's MessagePack
// extension types, the NumPy dtypes an array may have, and the tree layout of every ResNet lth
// builds, Conv_i / BatchNorm_i in the reference's creation order. Internal to io.
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/resnet.h"

namespace lth::io::flax {

// Flax's msgpack extension types (flax/serialization.py, _MsgpackExtType).
constexpr int8_t kNdarrayExt = 1;
constexpr int8_t kComplexExt = 2;
constexpr int8_t kScalarExt = 3;

struct Dtype {
  const char* name;  // NumPy's dtype.name
  torch::ScalarType type;
};
// The dtype of a NumPy name, or null; the name of a LibTorch type (UserError if none).
const Dtype* dtype_named(std::string_view name);
const char* dtype_name(torch::ScalarType type);

// One Conv_i and its BatchNorm_i (every conv of the reference is followed by its norm), in
// creation order: stem, then per block the branch's convs, then the projection shortcut.
struct ConvLayer {
  std::string conv;           // torchvision module name: "layer1.0.conv1", "layer2.0.downsample.0"
  std::string bn;             // "layer1.0.bn1", "layer2.0.downsample.1"
  std::vector<int64_t> hwio;  // Flax kernel shape
};

struct Layout {
  std::string model;  // lth network name, "resnet50"
  int64_t stem_kernel = 3;
  int64_t image_size = 32;  // 224 for the 7x7 stem; 32 stands for 32 or 64 (same network)
  int64_t in_channels = 3;
  int64_t features = 0;
  std::vector<ConvLayer> layers;
};

Layout make_layout(const std::string& model, const models::ResNetSpec& spec, int64_t stem_kernel,
                   int64_t in_channels);
// The spec of an lth ResNet by name, or nullopt for networks that are no ResNet.
std::optional<models::ResNetSpec> resnet_spec(const std::string& name);
// Every layout lth can build, for recognising a file.
std::vector<Layout> candidate_layouts(int64_t in_channels);

std::string conv_key(size_t i);  // "Conv_<i>"
std::string norm_key(size_t i);  // "BatchNorm_<i>"
// A Flax kernel shape [h, w, in, out] as LibTorch's [out, in, h, w].
std::vector<int64_t> oihw(const std::vector<int64_t>& hwio);

}  // namespace lth::io::flax
