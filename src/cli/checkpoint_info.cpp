// `lth info --ckpt FILE`: what a checkpoint holds, in any format load_checkpoint reads (an lth
// checkpoint, `lth export`'s compact ticket, ...): format, iteration, model, and the masks'
// density overall and per tensor. Declared in cli/commands.h.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace lth::cli {
namespace {

// The safetensors metadata of `path`, or none for a file in another container format.
io::Metadata metadata_if_safetensors(const std::string& path) {
  try {
    return io::read_safetensors_header(path).metadata;
  } catch (const UserError&) {
    return {};
  }
}

nlohmann::json describe_checkpoint(const std::string& path) {
  const auto ckpt = io::load_checkpoint(path);  // UserError for anything unreadable
  const auto metadata = metadata_if_safetensors(path);
  nlohmann::json info = {{"path", path},
                         {"file_bytes", std::filesystem::file_size(path)},
                         {"iteration", ckpt.iteration},
                         {"tensors", ckpt.state.size()},
                         {"momentum", !ckpt.momentum.empty()}};
  if (auto it = metadata.find("format"); it != metadata.end()) info["format"] = it->second;
  for (const char* key : {"dtype", "fold_bn"})  // a compact ticket's export settings
    if (auto it = metadata.find(key); it != metadata.end()) info[key] = it->second;
  const auto& model = ckpt.config.contains("model") ? ckpt.config["model"] : nlohmann::json();
  if (model.is_object() && model.contains("name")) info["model"] = model["name"];
  if (ckpt.best_acc) info["best_acc"] = *ckpt.best_acc;
  int64_t values = 0, kept = 0, total = 0;
  for (const auto& [name, tensor] : ckpt.state) values += tensor.numel();
  nlohmann::json masked = nlohmann::json::object();
  for (const auto& [name, mask] : ckpt.masks) {
    const auto k = mask.sum().item<double>();
    masked[name] = {{"shape", mask.sizes().vec()},
                    {"kept", static_cast<int64_t>(k)},
                    {"total", mask.numel()},
                    {"density", mask.numel() ? k / static_cast<double>(mask.numel()) : 1.0}};
    kept += static_cast<int64_t>(k);
    total += mask.numel();
  }
  info["values"] = values;
  info["kept"] = kept;
  info["total"] = total;
  info["density"] = total ? static_cast<double>(kept) / static_cast<double>(total) : 1.0;
  info["masked"] = masked;
  return info;
}

}  // namespace

void print_checkpoint_info(const std::string& path, bool json) {
  const auto info = describe_checkpoint(path);
  if (json) {
    std::cout << info.dump(2) << "\n";
    return;
  }
  std::cout << path << "\n";
  std::cout << "  format: " << info.value("format", std::string("?"));
  if (info.contains("dtype"))
    std::cout << " (values " << info["dtype"].get<std::string>()
              << (info.value("fold_bn", std::string()) == "true" ? ", BN folded" : "") << ")";
  std::cout << "\n  file: " << info["file_bytes"].get<uint64_t>() << " bytes\n";
  std::cout << "  model: " << info.value("model", std::string("?"))
            << "\n  iteration: " << info["iteration"].get<int64_t>() << "\n";
  if (info.contains("best_acc")) std::printf("  best_acc: %.4f\n", info["best_acc"].get<double>());
  std::cout << "  tensors: " << info["tensors"].get<size_t>() << " ("
            << info["values"].get<int64_t>() << " values)"
            << (info["momentum"].get<bool>() ? ", with momentum" : "") << "\n";
  std::printf("  masked: %zu tensors, %lld of %lld kept (density %.4f)\n", info["masked"].size(),
              static_cast<long long>(info["kept"].get<int64_t>()),
              static_cast<long long>(info["total"].get<int64_t>()), info["density"].get<double>());
}

}  // namespace lth::cli
