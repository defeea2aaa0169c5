#pragma once
// The network configurations the benchmarks build (bench/prune, bench/train_step): each
// network with the input of its usual data set, torchvision's normalisation constants (the
// peers'; they do not change the timing).
#include <set>
#include <string>

#include "models/network.h"

namespace lth::bench {

// The model configuration `lth train` would use for the usual data set of each network.
inline models::ModelConfig model_config(const std::string& name) {
  models::ModelConfig m;
  m.name = name;
  const bool resnet = name.rfind("resnet", 0) == 0;
  const std::set<std::string> imagenet{"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"};
  if (resnet && imagenet.count(name)) {
    m.num_classes = 1000;
    m.in_channels = 3;
    m.image_size = 224;
    m.pixel_mean = {0.485, 0.456, 0.406};
    m.pixel_std = {0.229, 0.224, 0.225};
  } else if (resnet) {  // CIFAR-10
    m.num_classes = 10;
    m.in_channels = 3;
    m.image_size = 32;
    m.pixel_mean = {0.4914, 0.4822, 0.4465};
    m.pixel_std = {0.2470, 0.2435, 0.2616};
  } else {  // MNIST-sized: lenet300_100, conv2/4/6
    m.num_classes = 10;
    m.in_channels = 1;
    m.image_size = 28;
  }
  return m;
}

}  // namespace lth::bench
