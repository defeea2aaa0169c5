// bench_gpu_step: lth's training step on one device (CUDA or CPU) in fp32 or bf16
// autocast, for bench/gpu/run.sh. The step is trainer.cpp's, single process:
//   MaskedSgd::zero_grad -> Network::forward(uint8 NHWC images, on the device) under
//   bf16 autocast (the calls models::AutocastGuard makes) -> cross_entropy(sum, float32
//   logits) -> (loss / n).backward() -> MaskedSgd::step(lr)
// on one fixed batch already on the device (no data loading), dense masks. CUDA work is
// asynchronous: the clock stops after torch::cuda::synchronize() following the last step.
// Prints one JSON line per config.
//
// Example: bench_gpu_step --device cuda --precision bf16 --configs resnet50:256
#include <torch/cuda.h>
#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>
#include <torch/types.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include <ATen/autocast_mode.h>

#include "models/network.h"
#include "pruning/mask.h"
#include "train/masked_sgd.h"

namespace {

using namespace lth;
using Clock = std::chrono::steady_clock;

models::ModelConfig model_config(const std::string& name) {
  models::ModelConfig m;
  m.name = name;
  if (name == "resnet50" || name == "resnet18") {
    m.num_classes = 1000;
    m.in_channels = 3;
    m.image_size = 224;
    m.pixel_mean = {0.485, 0.456, 0.406};
    m.pixel_std = {0.229, 0.224, 0.225};
  } else {  // lenet300_100 and the other 28x28 networks
    m.num_classes = 10;
    m.in_channels = 1;
    m.image_size = 28;
  }
  return m;
}

// bf16 autocast on `device` for its lifetime (what models::AutocastGuard does; kept here so
// that the benchmark builds on its own).
class Bf16Autocast {
 public:
  Bf16Autocast(bool on, torch::Device device) : on_(on), cuda_(device.is_cuda()) {
    if (!on_) return;
    if (cuda_) {
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
  }
  ~Bf16Autocast() {
    if (!on_) return;
    if (cuda_) {
      at::autocast::set_enabled(false);
    } else {
      at::autocast::set_cpu_enabled(false);
    }
    at::autocast::clear_cache();
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool on_;
  bool cuda_;
};

void sync(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

nlohmann::json run(const std::string& spec, torch::Device device, bool bf16, int warmup,
                   int steps) {
  namespace F = torch::nn::functional;
  const auto colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  const int64_t batch = std::stoll(spec.substr(colon + 1));
  const auto mc = model_config(name);
  auto net = models::make_network(mc, /*seed=*/0);
  net->to(device);
  net->train();
  const auto masks = pruning::dense_masks(*net, pruning::parse_prunable_set("conv+linear"));
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : net->named_parameters()) params.emplace_back(item.key(), item.value());
  train::MaskedSgd optimizer(params, masks, train::SgdConfig{});
  auto gen = at::detail::createCPUGenerator(2);
  const auto images = torch::randint(0, 256, {batch, mc.image_size, mc.image_size, mc.in_channels}, gen,
                                     torch::TensorOptions().dtype(torch::kUInt8))
                          .to(device);
  const auto labels = torch::randint(0, mc.num_classes, {batch}, gen, torch::kLong).to(device);
  torch::Tensor loss;
  auto step = [&] {
    optimizer.zero_grad();
    {
      Bf16Autocast autocast(bf16, device);
      auto logits = net->forward(images);
      loss = F::cross_entropy(logits.to(torch::kFloat32), labels, F::CrossEntropyFuncOptions().reduction(torch::kSum));
    }
    (loss * (1.0 / static_cast<double>(batch))).backward();
    optimizer.step(0.01);
  };
  for (int i = 0; i < warmup; ++i) step();
  sync(device);
  const auto start = Clock::now();
  for (int i = 0; i < steps; ++i) step();
  sync(device);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {{"impl", "lth"},
          {"model", name},
          {"batch", batch},
          {"device", device.str()},
          {"precision", bf16 ? "bf16" : "fp32"},
          {"steps", steps},
          {"seconds", seconds},
          {"img_per_s", static_cast<double>(batch) * steps / seconds},
          {"last_loss", loss.item<double>() / static_cast<double>(batch)}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lth's training step on one device"};
  std::string device_name = "cuda";
  std::string precision_name = "bf16";
  std::vector<std::string> configs{"resnet50:256"};
  int warmup = 5, steps = 20, threads = 0;
  app.add_option("--device", device_name, "cuda or cpu")->capture_default_str();
  app.add_option("--precision", precision_name, "fp32 or bf16")->capture_default_str();
  app.add_option("--configs", configs, "name:batch, e.g. resnet50:256")->capture_default_str();
  app.add_option("--warmup", warmup, "untimed steps")->capture_default_str();
  app.add_option("--steps", steps, "timed steps")->capture_default_str();
  app.add_option("--threads", threads, "CPU intra-op threads (0: LibTorch's default)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    if (threads > 0) at::set_num_threads(threads);
    const torch::Device device(device_name);
    if (precision_name != "fp32" && precision_name != "bf16") throw std::invalid_argument("--precision: fp32 or bf16");
    for (const auto& spec : configs) std::cout << run(spec, device, precision_name == "bf16", warmup, steps).dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "bench_gpu_step: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
