#pragma once
// One training phase in its own folder: prepare the starting weights and masks (unless
// resuming), write init.safetensors, train, then test the best_acc weights on every test
// set and write summary.json. `lth train` runs one of these; `lth imp` runs many.
#include <filesystem>
#include <functional>
#include <optional>

#include <nlohmann/json.hpp>

#include "imp/experiment.h"
#include "io/checkpoint.h"
#include "pruning/mask.h"

namespace lth::imp {

struct CyclePlan {
  std::filesystem::path dir;
  int cycle = 0;  // index recorded in summary.json
  int64_t iterations = 0;
  bool constant_lr = false;
  double lr_scale = 1.0;  // multiplies the configured peak LR (fine-tuning control)
  bool periodic_ckpt = false;
  bool test_at_end = true;
  uint64_t data_key = 0;
  // Sets the starting weights and masks of a fresh (not resumed) phase; `net` arrives
  // freshly initialised and `masks` dense.
  std::function<void(models::Network& net, pruning::MaskSet& masks)> prepare;
};

// Runs (or resumes, or skips if already complete) the phase; returns its summary.json.
nlohmann::json run_cycle(const Experiment& experiment, const CyclePlan& plan);

// Sets the network's *parameters* to `state` (buffers keep their fresh values: BN statistics
// start anew after rewinding, as in the reference). UserError when the checkpoint's padding
// rule (io::checkpoint_padding) is not the network's.
void load_parameters(models::Network& net, const io::Checkpoint& ckpt, const std::string& source);

// Per-layer kept/total counts and density of masks, as summary.json stores them.
nlohmann::json mask_summary(const pruning::MaskSet& masks);

// Reads a summary.json if it exists and is complete.
std::optional<nlohmann::json> completed_summary(const std::filesystem::path& dir);

}  // namespace lth::imp
