#pragma once
// lth checkpoints: safetensors files laid out as DESIGN.md says.
//   <P>            parameter or buffer P under its torchvision state_dict name
//   mask/<P>       U8 0/1 mask of every prunable parameter P
//   momentum/<P>   SGD momentum buffer of P (absent in weights-only files)
//   __metadata__   format = "lth-checkpoint-1", iteration, config (JSON), best_acc (if known),
//                  trainer (JSON: loss scale, data position, ... whatever resuming needs)
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/error.h"

namespace lth::io {

inline constexpr const char* kCheckpointFormat = "lth-checkpoint-1";

struct Checkpoint {
  int64_t iteration = 0;
  std::map<std::string, torch::Tensor> state;     // parameters and buffers
  std::map<std::string, torch::Tensor> masks;     // float32 0/1 in memory, U8 on disk
  std::map<std::string, torch::Tensor> momentum;  // may be empty
  nlohmann::json config = nlohmann::json::object();
  std::optional<double> best_acc;
  nlohmann::json trainer = nlohmann::json::object();  // resumable training state
};

// Atomic (see write_safetensors). Masks are checked to be 0/1 and written as U8.
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& ckpt);
// Throws UserError naming the file if it is missing, corrupt, or not an lth checkpoint.
// Also reads the other formats of io/checkpoint_formats.h, recognised by content: `lth
// export`'s compact ticket and the reference's Flax checkpoint (io/flax_checkpoint.h).
Checkpoint load_checkpoint(const std::filesystem::path& path);

// The padding rule the checkpoint's weights were computed with: its config's model.padding,
// "symmetric" when absent (files written before the setting existed). UserError naming
// `label` for anything but "symmetric" or "same".
std::string checkpoint_padding(const Checkpoint& ckpt, const std::string& label);

// A setting of the checkpoint's stored config, config[section][key], or `fallback` when it is
// absent; a value of the wrong JSON type (a hand-made or hostile file) is a UserError naming
// `label` and the key, not a JSON exception.
template <typename T>
T checkpoint_setting(const Checkpoint& ckpt, const std::string& label, const char* section,
                     const char* key, T fallback) {
  const auto& config = ckpt.config;
  if (!config.contains(section) || !config[section].is_object() || !config[section].contains(key))
    return fallback;
  try {
    return config[section][key].template get<T>();
  } catch (const nlohmann::json::exception&) {
    throw UserError(label + ": checkpoint config '" + section + "." + key + "' has the wrong type");
  }
}

}  // namespace lth::io
