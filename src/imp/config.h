#pragma once
// The resolved configuration of a run: one flat value type, grouped by concern in TOML
// ([data] [model] [train] [imp] [run]). Every field is described once in `config_fields()`,
// which drives TOML reading/writing, `--set section.key=value` overrides and the check that
// a resumed run folder is continued with the same settings.
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <toml++/toml.h>

namespace lth::imp {

struct ImpConfig {
  // [data]
  std::string data_name = "fashion-mnist";
  std::string data_root;
  int64_t image_size = 0;  // 0 = the dataset's native size
  bool strict_data = false;
  std::string shard_order = "stream";  // shards: "stream" (per-rank files) or "global"
  int64_t shuffle_buffer = 10000;      // shards in stream order: records in the shuffle buffer
  // ImageNet as downloaded (data/ilsvrc/layouts.h): a flat val folder's label file, the V2
  // release variant; and the quick `lth data check` before the first iteration on ImageNet.
  std::string val_labels;
  std::string v2_variant = "matched-frequency";
  bool data_check = true;
  // Training images set aside to choose best_acc on (0 = choose on the test split, as the
  // reference does); see data/holdout.h.
  int64_t holdout = 0;
  // [model]
  std::string model = "lenet300_100";
  int64_t width = 1;
  // "symmetric" (PyTorch, lth's default) or "same" (TensorFlow, the reference's; see
  // models/network.h Padding). Run folders written before the setting existed read as
  // symmetric, which is what they computed with.
  std::string padding = "symmetric";
  // [train]
  int64_t batch_size = 128;
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 1e-4;
  double label_smoothing = 0.0;
  double global_clipping = 0.0;  // 0 = off
  int64_t eval_every = 1000;
  int64_t eval_batch_size = 500;
  int64_t micro_batch = 0;
  bool mixed_precision = false;  // the reference's flag: the device's mixed precision
  std::string precision = "fp32";  // fp32 | bf16 | fp16 (models/precision.h)
  int64_t ckpt_every = 0;        // resumable checkpoint cadence; 0 = at every evaluation
  int64_t num_workers = 2;
  int64_t prefetch_factor = 2;
  // [imp]
  int64_t rewind_iterations = 16000;
  int64_t cycle_iterations = 48000;
  double pruning_ratio = 0.8;    // fraction of the remaining weights each cycle keeps
  int64_t cycles = 18;           // pruning cycles after the dense cycle 000
  double target_density = 0.0;   // stop early once density <= this (0 = off)
  std::string strategy = "magnitude_global";
  std::string prunable = "conv";
  std::string branches;          // comma-separated control branches, e.g. "reinit,random_pruning"
  // The `lmc` branch's instability analysis (imp/lmc.h): points on the path, batches to
  // recompute BN statistics at each (0 = interpolate them), training images evaluated too.
  int64_t lmc_points = 30;
  int64_t lmc_bn_batches = 50;
  int64_t lmc_train_sample = 10000;
  int64_t pai_batches = 1;       // pruning-at-init branches: batches of 10 x classes scoring images
  int64_t synflow_rounds = 100;  // synflow branch: pruning rounds (exponential schedule)
  // [run]
  int64_t seed = -1;             // -1 = draw one from the OS and record it
  int64_t replicates = 1;        // independent replicates, each in RUN/replicate_<r>/
  int64_t threads = 0;           // 0 = OMP_NUM_THREADS, else SLURM_CPUS_PER_TASK, else all cores
  int64_t stop_after = 0;        // stop resumably after this many iterations (0 = off)
  std::string device = "auto";
  bool deterministic = false;  // cuDNN: deterministic kernels, no benchmarking (configure_cudnn)
  bool tensorboard = true;  // also write TensorBoard event files next to metrics.jsonl
};

using FieldPtr = std::variant<std::string ImpConfig::*, int64_t ImpConfig::*, double ImpConfig::*,
                              bool ImpConfig::*>;

struct ConfigField {
  std::string key;   // "section.name"
  FieldPtr member;
  // false: may differ between a run and its resumption (threads, or how far to go: more
  // cycles or branches extend a finished run without changing what it already holds)
  bool affects_results;
  std::string help;
};

const std::vector<ConfigField>& config_fields();

// Embedded default: IMP on Fashion-MNIST, small enough for a 2-core machine in minutes.
ImpConfig default_config();

// Applies the keys present in `table` (unknown keys are UserErrors naming `source`).
void apply_toml(ImpConfig& config, const toml::table& table, const std::string& source);
void apply_toml_file(ImpConfig& config, const std::string& path);
// "section.key=value"; the value is parsed by the field's type.
void apply_override(ImpConfig& config, const std::string& assignment);
toml::table to_toml(const ImpConfig& config);
std::string to_toml_string(const ImpConfig& config);
// Keys whose result-affecting values differ, as "key: old -> new" lines.
std::vector<std::string> conflicts(const ImpConfig& stored, const ImpConfig& requested);
// Checks ranges and names; UserError naming the key.
void validate(const ImpConfig& config);

}  // namespace lth::imp
