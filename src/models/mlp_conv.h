#pragma once
// The small networks of Frankle & Carbin (2019), with OpenLTH's conventions:
// - lenet300_100: MLP (H·W·C) -> 300 -> 100 -> classes on the flattened NCHW input.
// - conv2 / conv4 / conv6: pairs of 3x3 convs (pad 1, ReLU) of 64, 128, 256 channels, each
//   pair followed by a 2x2 max-pool; then FC 256 -> 256 -> classes with ReLU between.
// Conv and linear layers have biases. Weights are He-normal fan-in (untruncated, as
// torch.nn.init.kaiming_normal_), the head included. Biases start at zero; OpenLTH leaves
// them at PyTorch's default uniform draw, which we do not copy: zero biases keep all
// randomness in the prunable weights.
// Names: conv1..conv<2k>, fc1, fc2 for hidden layers, fc for the classifier. These networks
// take width == 1 only, and inputs of exactly the configured image size.
#include "models/network.h"

namespace lth::models {

NetworkPtr make_lenet300_100(const ModelConfig& config, uint64_t seed);
// pairs = 1, 2, 3 for conv2, conv4, conv6.
NetworkPtr make_conv(const ModelConfig& config, int pairs, uint64_t seed);

}  // namespace lth::models
