#pragma once
// The networks lth trains. A Network takes raw uint8 images [N, H, W, C] and returns
// logits [N, classes]: scaling by 1/255 and standardisation with the stored pixel
// statistics happen inside the model (as the reference does), so data pipelines stay uint8.
//
// Parameter and buffer names follow torchvision's state_dict for ResNets (conv1.weight,
// layer1.0.bn2.running_var, fc.weight, ...), plus the buffers pixel_mean / pixel_std.
// Every network's classifier is the module `fc`; all other layers are named after it
// (conv1, fc1, layer3.2.conv2, ...). Initial weights depend only on the seed and on each
// parameter's name (see init.h), never on thread count or the global generator's state.
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace lth::models {

// What a parameter is, for counting and for choosing what may be pruned.
enum class ParamKind {
  ConvKernel,  // any 4-D conv weight (stem and shortcut convs included)
  Linear,      // a fully-connected weight that is not the classifier head
  Head,        // the classifier weight (and bias, if any)
  Norm,        // batch-norm scale and bias
  Bias,        // biases of conv/linear layers
};

// How convolutions and the stem max-pool pad their input (only stride-2 layers differ):
//   symmetric  PyTorch's k/2 on every side (lth's default; tickets load into torchvision)
//   same       TensorFlow's "SAME", as the reference (Flax): the total padding
//              max((ceil(n/s)-1)*s + k - n, 0) split with one pixel less on top/left;
//              max-pool pads with -inf
// Output sizes agree; the sampling grid of a stride-2 layer shifts by one pixel. LeNet and
// Conv-n (stride-1 3x3 convs, 2x2 pools) compute the same under both rules.
enum class Padding { Symmetric, Same };
Padding parse_padding(const std::string& name);  // UserError naming the value otherwise
const char* padding_name(Padding padding);       // "symmetric" | "same"

struct ModelConfig {
  std::string name = "lenet300_100";
  int64_t num_classes = 10;
  int64_t in_channels = 1;
  int64_t image_size = 28;                 // square inputs; ResNets pick the CIFAR stem for <= 64
  int64_t width = 1;                       // width multiplier (ResNets)
  std::vector<double> pixel_mean{0.2860};  // per channel, in [0, 1] units
  std::vector<double> pixel_std{0.3530};
  Padding padding = Padding::Symmetric;
};

class Network : public torch::nn::Module {
 public:
  // images: uint8 [N, H, W, C]. Returns float logits [N, num_classes].
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  // Kind of the parameter with this (state_dict) name.
  virtual ParamKind kind_of(const std::string& param_name) const = 0;
  virtual const ModelConfig& config() const = 0;
  // The float NCHW tensor the first layer sees: images / 255, minus pixel_mean, over
  // pixel_std. Same input checks as forward. Exposed for tests and diagnostics.
  virtual torch::Tensor standardize(const torch::Tensor& images) const = 0;
};

using NetworkPtr = std::shared_ptr<Network>;

// Builds a network by name with deterministic initialisation from `seed`.
NetworkPtr make_network(const ModelConfig& config, uint64_t seed);
std::vector<std::string> network_names();
// The input a network was designed for, as `lth info` shows it by default: ImageNet ResNets
// 224x224x3 and 1000 classes; CIFAR ResNets and Conv-2/4/6 32x32x3 and 10; LeNet-300-100
// 28x28x1 and 10 (MNIST). UserError for an unknown name.
ModelConfig native_model_config(const std::string& name);

struct ParamCounts {
  int64_t conv = 0;    // conv kernels
  int64_t linear = 0;  // non-head linear weights
  int64_t head = 0;
  int64_t norm = 0;  // BN scale + bias
  int64_t bias = 0;
  int64_t total = 0;  // trainable parameters
};
ParamCounts count_parameters(const Network& net);

// Short lower-case name of a kind: "conv", "linear", "head", "norm", "bias".
const char* kind_name(ParamKind kind);

// For `lth info`: {"name", "num_classes", "in_channels", "image_size", "width", "padding",
// "counts": {conv, linear, head, norm, bias, total}, "buffers": <entries>,
// "parameters": [{"name", "kind", "shape", "numel"}, ...]} in state_dict order.
// Include <nlohmann/json.hpp> to use the result.
nlohmann::json describe_network(const Network& net);

}  // namespace lth::models
