// `lth info --model NAME [--json]`: parameter counts by group.
// `lth info --ckpt FILE [--json]`: what a checkpoint holds (cli/checkpoint_info.cpp).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "models/network.h"

namespace lth::cli {
namespace {

// Prunable weights under each choice of --prunable (weights only: biases are never pruned).
nlohmann::json prunable_counts(const nlohmann::json& info) {
  int64_t conv = 0, linear = 0, head = 0;
  for (const auto& p : info["parameters"]) {
    if (p["shape"].size() < 2) continue;
    const auto kind = p["kind"].get<std::string>();
    const auto n = p["numel"].get<int64_t>();
    if (kind == "conv") conv += n;
    if (kind == "linear") linear += n;
    if (kind == "head") head += n;
  }
  return {{"conv", conv}, {"conv+linear", conv + linear}, {"all", conv + linear + head}};
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "info", "Parameter counts of a network by group, or what a checkpoint holds (--ckpt)");
  struct Options {
    models::ModelConfig model;
    std::string ckpt;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  opt->model.name = "resnet50";
  opt->model.num_classes = 1000;
  opt->model.in_channels = 3;
  opt->model.image_size = 224;
  opt->model.pixel_mean = {0.48145466, 0.4578275, 0.40821073};
  opt->model.pixel_std = {0.26862954, 0.26130258, 0.27577711};
  cmd->add_option("--model", opt->model.name, "network name")->capture_default_str();
  cmd->add_option("--num_classes", opt->model.num_classes, "classes (default: the network's own, e.g. 10 for lenet300_100)");
  cmd->add_option("--in_channels", opt->model.in_channels, "input channels (default: the network's own)");
  cmd->add_option("--image_size", opt->model.image_size, "input size (default: the network's own, 224 for resnet50)");
  cmd->add_option("--width", opt->model.width, "width multiplier")->capture_default_str();
  cmd->add_flag("--json", opt->json, "print JSON");
  cmd->add_option("--ckpt", opt->ckpt,
                  "describe this checkpoint instead (lth checkpoint or lth export's compact file)")
      ->check(CLI::ExistingFile);
  cmd->callback([opt, cmd] {
    if (!opt->ckpt.empty()) return print_checkpoint_info(opt->ckpt, opt->json);
    auto& m = opt->model;
    // Unless given, the input the network was made for (LeNet: 28x28x1, 10 classes), not
    // ImageNet's: a LeNet counted on 224x224x3 inputs has 45 M parameters instead of 266 k.
    const auto native = models::native_model_config(m.name);
    if (cmd->count("--num_classes") == 0) m.num_classes = native.num_classes;
    if (cmd->count("--in_channels") == 0) m.in_channels = native.in_channels;
    if (cmd->count("--image_size") == 0) m.image_size = native.image_size;
    if (cmd->count("--in_channels") == 0) {
      m.pixel_mean = native.pixel_mean;
      m.pixel_std = native.pixel_std;
    }
    m.pixel_mean.resize(m.in_channels, m.pixel_mean.empty() ? 0.5 : m.pixel_mean[0]);
    m.pixel_std.resize(m.in_channels, m.pixel_std.empty() ? 0.25 : m.pixel_std[0]);
    const auto net = models::make_network(m, 0);
    auto info = models::describe_network(*net);
    info["prunable"] = prunable_counts(info);
    info["counts"]["bn"] = info["counts"]["norm"];  // the and RECIPE.md's name for it
    if (opt->json) {
      std::cout << info.dump(2) << "\n";
      return;
    }
    const auto& c = info["counts"];
    std::cout << m.name << " (" << m.num_classes << " classes, " << m.in_channels << "x"
              << m.image_size << "x" << m.image_size << ")\n";
    for (const char* k : {"conv", "linear", "head", "norm", "bias", "total"}) {
      std::cout << "  " << k << ": " << c[k].get<int64_t>() << "\n";
    }
    for (const auto& [set, n] : info["prunable"].items()) {
      std::cout << "  prunable (" << set << "): " << n.get<int64_t>() << "\n";
    }
  });
}

}  // namespace lth::cli
