#pragma once
// Small helpers shared by the model tests.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <string>

#include "common/error.h"
#include "models/network.h"

namespace lth::models::testing {

inline ModelConfig config_for(const std::string& name, int64_t channels, int64_t size,
                              int64_t classes = 10) {
  ModelConfig c;
  c.name = name;
  c.in_channels = channels;
  c.image_size = size;
  c.num_classes = classes;
  c.pixel_mean.assign(static_cast<size_t>(channels), 0.5);
  c.pixel_std.assign(static_cast<size_t>(channels), 0.25);
  return c;
}

inline ModelConfig imagenet_config(const std::string& name, int64_t size = 224) {
  auto c = config_for(name, 3, size, 1000);
  c.pixel_mean = {0.48145466, 0.4578275, 0.40821073};
  c.pixel_std = {0.26862954, 0.26130258, 0.27577711};
  return c;
}

inline torch::Tensor random_images(int64_t n, int64_t size, int64_t channels) {
  auto gen = at::detail::createCPUGenerator(12345);
  return torch::randint(0, 256, {n, size, size, channels}, gen, torch::kByte);
}

inline torch::Tensor param(const Network& net, const std::string& name) {
  const auto* p = net.named_parameters().find(name);
  TORCH_CHECK(p, "no parameter ", name);
  return *p;
}

}  // namespace lth::models::testing
