#pragma once
// ResNets as the reference builds them (giung2's ResNet, torchvision's names; see
// seed/RECIPE.md "Model"):
// - ImageNet family (18/34 basic blocks, 50/101/152 bottlenecks): stages of 64·2^i·width
//   planes, stride on the 3x3 conv ("v1.5"), expansion 4 for bottlenecks. Stem 7x7/2 conv,
//   BN, ReLU, 3x3/2 max-pool; for image_size <= 64 a 3x3 stride-1 conv and no pool.
// - CIFAR family (20/32/44/56/110): basic blocks, 3 stages of 16·2^i·width planes, 3x3
//   stride-1 stem.
// Both: convs without bias; a projection shortcut (1x1 conv stride s + BN) wherever a
// block changes shape; head = global average pool + Linear without bias, named `fc`.
// Init: conv kernels He-normal fan-in truncated (Flax), BN scale 1 / bias 0 except the
// last BN of each residual branch (scale 0), head zero. BN momentum 0.1, eps 1e-5.
//
// Padding follows ModelConfig::padding: PyTorch's symmetric k/2 by default (tickets load
// into torchvision unchanged), or TensorFlow's "SAME" as the reference (asymmetric at
// stride 2; the stem max-pool pads with -inf); output sizes agree either way.
#include <cstdint>
#include <vector>

#include "models/network.h"

namespace lth::models {

struct ResNetSpec {
  bool bottleneck = false;
  std::vector<int64_t> blocks;  // residual blocks per stage
  int64_t base_planes = 64;     // planes of the first stage before the width multiplier
  bool cifar_family = false;    // 3x3 stride-1 stem whatever the image size
};

// Spec of "resnet<depth>"; throws UserError for a depth neither family has.
ResNetSpec imagenet_resnet_spec(int depth);
ResNetSpec cifar_resnet_spec(int depth);

NetworkPtr make_resnet(const ModelConfig& config, const ResNetSpec& spec, uint64_t seed);

}  // namespace lth::models
