#include "io/checkpoint.h"

#include <cmath>
#include <cstdio>
#include <string_view>

#include "common/error.h"
#include "common/text.h"
#include "io/checkpoint_formats.h"
#include "io/safetensors.h"

namespace lth::io {
namespace {

constexpr std::string_view kMaskPrefix = "mask/";
constexpr std::string_view kMomentumPrefix = "momentum/";

bool is_binary(const torch::Tensor& tensor) {
  return tensor.numel() == 0 || ((tensor == 0) | (tensor == 1)).all().item<bool>();
}

void check_shape(const std::string& label, const std::string& name, const torch::Tensor& tensor,
                 const std::map<std::string, torch::Tensor>& state) {
  const std::string param = name.substr(name.find('/') + 1);
  auto it = state.find(param);
  require(it != state.end(), label + ": " + name + " has no parameter '" + param + "'");
  require(it->second.sizes() == tensor.sizes(), label + ": " + name + " has shape " +
                                                    shape_text(tensor.sizes()) + " but " + param +
                                                    " has shape " + shape_text(it->second.sizes()));
}

Metadata checkpoint_metadata(const Checkpoint& ckpt) {
  Metadata metadata;
  metadata["format"] = kCheckpointFormat;
  metadata["iteration"] = std::to_string(ckpt.iteration);
  metadata["config"] = ckpt.config.dump();
  metadata["trainer"] = ckpt.trainer.dump();
  if (ckpt.best_acc) metadata["best_acc"] = exact_double(*ckpt.best_acc);
  return metadata;
}

TensorMap checkpoint_tensors(const std::string& label, const Checkpoint& ckpt) {
  TensorMap tensors;
  for (const auto& [name, tensor] : ckpt.state) {
    require(!starts_with(name, kMaskPrefix) && !starts_with(name, kMomentumPrefix),
            label + ": state name '" + name + "' collides with the mask/ or momentum/ prefix");
    tensors[name] = tensor;
  }
  for (const auto& [param, mask] : ckpt.masks) {
    const std::string name = std::string(kMaskPrefix) + param;
    check_shape(label, name, mask, ckpt.state);
    require(is_binary(mask), label + ": " + name + " has values other than 0 and 1");
    tensors[name] = mask.detach().to(torch::kCPU).to(torch::kUInt8);
  }
  for (const auto& [param, buffer] : ckpt.momentum) {
    const std::string name = std::string(kMomentumPrefix) + param;
    check_shape(label, name, buffer, ckpt.state);
    tensors[name] = buffer;
  }
  return tensors;
}

// ---- loading -------------------------------------------------------------------------

const std::string& metadata_entry(const std::string& label, const Metadata& metadata,
                                  const std::string& key) {
  auto it = metadata.find(key);
  require(it != metadata.end(), label + ": checkpoint metadata has no '" + key + "'");
  return it->second;
}

nlohmann::json json_entry(const std::string& label, const Metadata& metadata,
                          const std::string& key) {
  auto it = metadata.find(key);
  if (it == metadata.end()) return nlohmann::json::object();
  try {
    return nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    throw UserError(label + ": checkpoint metadata '" + key + "' is not valid JSON (" + e.what() +
                    ")");
  }
}

template <typename T>
T parse_number(const std::string& label, const std::string& key, const std::string& text,
               T (*convert)(const std::string&, size_t*)) {
  try {
    size_t used = 0;
    const T value = convert(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw UserError(label + ": checkpoint metadata '" + key + "' is not a number ('" + text + "')");
}

int64_t to_int64(const std::string& text, size_t* used) { return std::stoll(text, used); }
double to_double(const std::string& text, size_t* used) { return std::stod(text, used); }

void check_format(const std::string& label, const Metadata& metadata) {
  auto it = metadata.find("format");
  if (it == metadata.end())
    throw UserError(label + ": not an lth checkpoint (format missing, expected '" +
                    kCheckpointFormat + "')");
  if (it->second != kCheckpointFormat)
    throw UserError(label + ": not an lth checkpoint (format '" + it->second + "', expected '" +
                    kCheckpointFormat + "')");
}

void split_tensors(const std::string& label, TensorMap tensors, Checkpoint& ckpt) {
  std::map<std::string, torch::Tensor> masks;
  for (auto& [name, tensor] : tensors) {
    if (starts_with(name, kMaskPrefix))
      masks[name] = std::move(tensor);
    else if (starts_with(name, kMomentumPrefix))
      ckpt.momentum[name.substr(kMomentumPrefix.size())] = std::move(tensor);
    else
      ckpt.state[name] = std::move(tensor);
  }
  for (auto& [name, mask] : masks) {
    check_shape(label, name, mask, ckpt.state);
    require(mask.scalar_type() == torch::kUInt8 || mask.scalar_type() == torch::kBool,
            label + ": " + name + " is " + safetensors_dtype(mask.scalar_type()) + ", expected U8");
    require(is_binary(mask), label + ": " + name + " has values other than 0 and 1");
    ckpt.masks[name.substr(kMaskPrefix.size())] = mask.to(torch::kFloat32);
  }
  for (const auto& [param, buffer] : ckpt.momentum)
    check_shape(label, std::string(kMomentumPrefix) + param, buffer, ckpt.state);
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& ckpt) {
  const std::string label = path.string();
  write_safetensors(path, checkpoint_tensors(label, ckpt), checkpoint_metadata(ckpt));
}

std::string checkpoint_padding(const Checkpoint& ckpt, const std::string& label) {
  const auto& c = ckpt.config;
  if (!c.contains("model") || !c["model"].is_object() || !c["model"].contains("padding")) return "symmetric";
  const auto& p = c["model"]["padding"];
  require(p.is_string() && (p == "symmetric" || p == "same"),
          label + ": checkpoint config 'model.padding' is not 'symmetric' or 'same'");
  return p.get<std::string>();
}

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  if (auto other = load_other_checkpoint_format(path)) return std::move(*other);
  const std::string label = path.string();
  SafetensorsContent content = read_safetensors(path);
  const Metadata& metadata = content.metadata;
  check_format(label, metadata);
  Checkpoint ckpt;
  ckpt.iteration = parse_number<int64_t>(label, "iteration",
                                         metadata_entry(label, metadata, "iteration"), to_int64);
  require(ckpt.iteration >= 0,
          label + ": checkpoint metadata 'iteration' is negative (" + std::to_string(ckpt.iteration) + ")");
  ckpt.config = json_entry(label, metadata, "config");
  ckpt.trainer = json_entry(label, metadata, "trainer");
  require(ckpt.config.is_object(), label + ": checkpoint metadata 'config' is not a JSON object");
  require(ckpt.trainer.is_object(), label + ": checkpoint metadata 'trainer' is not a JSON object");
  if (auto it = metadata.find("best_acc"); it != metadata.end()) {
    ckpt.best_acc = parse_number<double>(label, "best_acc", it->second, to_double);
    // An accuracy is a fraction; NaN, infinities and anything outside [0, 1] are corrupt.
    require(std::isfinite(*ckpt.best_acc) && *ckpt.best_acc >= 0 && *ckpt.best_acc <= 1,
            label + ": checkpoint metadata 'best_acc' is not an accuracy in [0, 1] ('" + it->second +
                "')");
  }
  split_tensors(label, std::move(content.tensors), ckpt);
  return ckpt;
}

}  // namespace lth::io
