#include "imp/config.h"

#include <charconv>
#include <sstream>

#include "common/error.h"
#include "imp/branches.h"
#include "imp/config_validation.h"
#include "models/precision.h"
#include "pruning/strategy.h"

#include <algorithm>

namespace lth::imp {
namespace {

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::pair<std::string, std::string> split_key(const std::string& key) {
  const auto dot = key.find('.');
  return {key.substr(0, dot), key.substr(dot + 1)};
}

const ConfigField& find_field(const std::string& key, const std::string& source) {
  for (const auto& f : config_fields()) {
    if (f.key == key) return f;
  }
  throw UserError(source + ": unknown setting '" + key + "'");
}

void set_from_node(ImpConfig& c, const ConfigField& f, const toml::node& node,
                   const std::string& source) {
  const auto bad = [&](const char* type) {
    return UserError(source + ": '" + f.key + "' must be " + type);
  };
  std::visit(Overloaded{
                 [&](std::string ImpConfig::*m) {
                   auto v = node.value<std::string>();
                   if (!v) throw bad("a string");
                   c.*m = *v;
                 },
                 [&](int64_t ImpConfig::*m) {
                   auto v = node.value<int64_t>();
                   if (!v || !node.is_integer()) throw bad("an integer");
                   c.*m = *v;
                 },
                 [&](double ImpConfig::*m) {
                   auto v = node.value<double>();
                   if (!v) throw bad("a number");
                   c.*m = *v;
                 },
                 [&](bool ImpConfig::*m) {
                   auto v = node.value<bool>();
                   if (!v) throw bad("true or false");
                   c.*m = *v;
                 },
             },
             f.member);
}

std::string value_string(const ImpConfig& c, const ConfigField& f) {
  return std::visit(Overloaded{
                        [&](std::string ImpConfig::*m) {
                          std::ostringstream s;  // toml++ escapes quotes and backslashes
                          s << toml::value<std::string>(c.*m);
                          return s.str();
                        },
                        [&](int64_t ImpConfig::*m) { return std::to_string(c.*m); },
                        [&](double ImpConfig::*m) {
                          // Shortest text that reads back to the same double ("0.8").
                          char text[32];
                          const auto end = std::to_chars(text, text + sizeof text, c.*m).ptr;
                          std::string out(text, end);
                          const bool integral = out.find_first_of(".eEn") == std::string::npos;
                          return integral ? out + ".0" : out;  // stays a TOML float
                        },
                        [&](bool ImpConfig::*m) { return std::string(c.*m ? "true" : "false"); },
                    },
                    f.member);
}

// Accepts the reference's boolean spellings as well as TOML's.
std::string normalise_bool(const std::string& text) {
  for (const char* t : {"yes", "true", "t", "y", "1"}) {
    if (text == t) return "true";
  }
  for (const char* f : {"no", "false", "f", "n", "0"}) {
    if (text == f) return "false";
  }
  return text;
}

}  // namespace

const std::vector<ConfigField>& config_fields() {
  using C = ImpConfig;
  static const std::vector<ConfigField> fields = {
      {"data.name", &C::data_name, true, "dataset (fashion-mnist, mnist, synthetic, imagenet)"},
      {"data.root", &C::data_root, false, "data folder (empty = the dataset's default)"},
      {"data.image_size", &C::image_size, true, "input size (0 = native)"},
      {"data.strict", &C::strict_data, false, "unreadable samples are errors, not skips"},
      {"data.shard_order", &C::shard_order, true,
       "shards: 'stream' (each rank its own files, shuffle buffer) or 'global' (as folders)"},
      {"data.shuffle_buffer", &C::shuffle_buffer, true, "shards in stream order: shuffle buffer (records)"},
      {"data.val_labels", &C::val_labels, false,
       "label file of a flat validation folder (wnids or ILSVRC2012 ids per line, or image_id,wnid CSV)"},
      {"data.v2_variant", &C::v2_variant, true, "ImageNet-V2 release folder: matched-frequency, threshold0.7, top-images"},
      {"data.check", &C::data_check, false, "ImageNet: run the quick `lth data check` before the first iteration"},
      {"data.holdout", &C::holdout, true,
       "training images held out to choose best_acc on (0 = choose on the test split)"},
      {"model.name", &C::model, true, "network"},
      {"model.width", &C::width, true, "width multiplier (ResNets)"},
      {"model.padding", &C::padding, true,
       "symmetric (PyTorch) or same (TensorFlow, as the reference's Flax ResNets)"},
      {"train.batch_size", &C::batch_size, true, "global batch size"},
      {"train.lr", &C::lr, true, "peak learning rate"},
      {"train.momentum", &C::momentum, true, "SGD momentum"},
      {"train.weight_decay", &C::weight_decay, true, "weight decay (every parameter)"},
      {"train.label_smoothing", &C::label_smoothing, true, "label smoothing"},
      {"train.global_clipping", &C::global_clipping, true, "global-norm clip (0 = off)"},
      {"train.eval_every", &C::eval_every, true, "iterations between evaluations"},
      {"train.eval_batch_size", &C::eval_batch_size, false, "evaluation batch size"},
      {"train.micro_batch", &C::micro_batch, true, "gradient-accumulation chunk (0 = off)"},
      {"train.mixed_precision", &C::mixed_precision, true,
       "the reference's flag: bf16 where the device has it natively, else fp16 + loss scaling"},
      {"train.precision", &C::precision, true, "fp32, bf16 or fp16 (fp32 + mixed_precision = the device's mixed mode)"},
      {"train.ckpt_every", &C::ckpt_every, false, "resumable checkpoint cadence (0 = each eval)"},
      {"train.num_workers", &C::num_workers, false, "data loader threads"},
      {"train.prefetch_factor", &C::prefetch_factor, false, "batches in flight per worker"},
      {"imp.rewind_iterations", &C::rewind_iterations, true, "rewind point (dense, constant LR)"},
      {"imp.cycle_iterations", &C::cycle_iterations, true, "iterations per cycle (warm-up + cosine)"},
      {"imp.pruning_ratio", &C::pruning_ratio, true, "fraction of remaining weights kept per cycle"},
      {"imp.cycles", &C::cycles, false, "pruning cycles after the dense cycle"},
      {"imp.target_density", &C::target_density, false, "stop once density <= this (0 = off)"},
      {"imp.strategy", &C::strategy, true, "pruning strategy"},
      {"imp.prunable", &C::prunable, true, "prunable set: conv, conv+linear, all"},
      {"imp.branches", &C::branches, false, "control branches, comma-separated"},
      {"imp.lmc_points", &C::lmc_points, true, "lmc branch: points on the linear path"},
      {"imp.lmc_bn_batches", &C::lmc_bn_batches, true,
       "lmc branch: batches to recompute BN statistics at each point (0 = interpolate)"},
      {"imp.lmc_train_sample", &C::lmc_train_sample, true, "lmc branch: training images evaluated on the path"},
      {"imp.pai_batches", &C::pai_batches, true,
       "snip/grasp branches: scoring batches of 10 x classes training images"},
      {"imp.synflow_rounds", &C::synflow_rounds, true, "synflow branch: pruning rounds"},
      {"run.seed", &C::seed, true, "seed (-1 = draw one)"},
      {"run.replicates", &C::replicates, false,
       "independent replicates with derived seeds (more extend a finished run)"},
      {"run.threads", &C::threads, false, "intra-op threads (0 = OMP_NUM_THREADS, else SLURM_CPUS_PER_TASK, else all cores)"},
      {"run.device", &C::device, false, "auto, cpu or cuda"},
      {"run.deterministic", &C::deterministic, false,
       "CUDA: deterministic cuDNN kernels, no autotuning (bit-identical resume on GPU; slower)"},
      {"run.tensorboard", &C::tensorboard, false, "write TensorBoard event files in every run folder"},
      {"run.stop_after", &C::stop_after, false, "stop resumably after N iterations (0 = off)"},
  };
  return fields;
}

ImpConfig default_config() {
  // Fashion-MNIST LeNet-300-100, best_acc chosen on 5,000 held-out training images.
  // Cycles are short (800 iterations, ~1.9 epochs) so that scripts/run_default.sh, which
  // adds 3 replicates and the reinit and random-pruning controls (3 x 31 phases), fits in
  // 10 minutes on a 2-core machine; docs/RESULTS.md shows what it gives.
  ImpConfig c;
  c.data_name = "fashion-mnist";
  c.model = "lenet300_100";
  c.prunable = "conv+linear";
  c.batch_size = 128;
  c.lr = 0.1;
  c.eval_every = 400;
  c.eval_batch_size = 1000;
  c.rewind_iterations = 500;
  c.cycle_iterations = 800;
  c.cycles = 10;
  c.seed = 0;
  c.holdout = 5000;
  return c;
}

void apply_toml(ImpConfig& config, const toml::table& table, const std::string& source) {
  for (const auto& [section, node] : table) {
    const auto* inner = node.as_table();
    require(inner != nullptr, source + ": '" + std::string(section.str()) + "' must be a [section]");
    for (const auto& [name, value] : *inner) {
      const std::string key = std::string(section.str()) + "." + std::string(name.str());
      set_from_node(config, find_field(key, source), value, source);
    }
  }
}

void apply_toml_file(ImpConfig& config, const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    throw UserError(path + ":" + std::to_string(where.line) + ": " + std::string(e.description()));
  }
  apply_toml(config, table, path);
}

void apply_override(ImpConfig& config, const std::string& assignment) {
  const auto eq = assignment.find('=');
  require(eq != std::string::npos && assignment.find('.') < eq,
          "--set '" + assignment + "': expected section.key=value");
  const std::string key = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  const auto& field = find_field(key, "--set");
  if (std::holds_alternative<std::string ImpConfig::*>(field.member)) {
    config.*std::get<std::string ImpConfig::*>(field.member) = value;
    return;
  }
  if (std::holds_alternative<bool ImpConfig::*>(field.member)) value = normalise_bool(value);
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    throw UserError("--set " + key + ": cannot parse value '" + value + "'");
  }
  set_from_node(config, field, *parsed.get("v"), "--set");
}

toml::table to_toml(const ImpConfig& config) {
  return toml::parse(to_toml_string(config));
}

std::string to_toml_string(const ImpConfig& config) {
  std::ostringstream out;
  std::string section;
  for (const auto& f : config_fields()) {
    const auto [sec, name] = split_key(f.key);
    if (sec != section) {
      out << (section.empty() ? "" : "\n") << "[" << sec << "]\n";
      section = sec;
    }
    out << name << " = " << value_string(config, f) << "\n";
  }
  return out.str();
}

std::vector<std::string> conflicts(const ImpConfig& stored, const ImpConfig& requested) {
  std::vector<std::string> out;
  for (const auto& f : config_fields()) {
    if (!f.affects_results) continue;
    const auto a = value_string(stored, f), b = value_string(requested, f);
    if (a != b) out.push_back(f.key + ": " + a + " -> " + b);
  }
  return out;
}

void validate(const ImpConfig& c) {
  validate_ranges(c);  // every numeric key: finite, in range, fits its use (config_validation.h)
  require(c.batch_size > 0, "train.batch_size must be positive");
  require(c.shard_order == "stream" || c.shard_order == "global",
          "data.shard_order must be 'stream' or 'global', not '" + c.shard_order + "'");
  require(c.shuffle_buffer >= 0, "data.shuffle_buffer must be >= 0");
  require(c.lr >= 0, "train.lr must be >= 0");
  require(c.eval_every > 0, "train.eval_every must be positive");
  require(c.eval_batch_size > 0, "train.eval_batch_size must be positive");
  require(c.micro_batch >= 0, "train.micro_batch must be >= 0");
  require(c.micro_batch == 0 || c.batch_size % c.micro_batch == 0,
          "train.micro_batch (" + std::to_string(c.micro_batch) + ") must divide train.batch_size (" +
              std::to_string(c.batch_size) + ")");
  require(c.holdout >= 0, "data.holdout must be >= 0");
  require(c.replicates >= 1 && c.replicates <= 1000, "run.replicates must be in [1, 1000]");
  require(c.num_workers >= 0, "train.num_workers must be >= 0");
  require(c.prefetch_factor >= 1, "train.prefetch_factor must be >= 1");
  require(c.rewind_iterations >= 0, "imp.rewind_iterations must be >= 0");
  require(c.cycle_iterations > 0, "imp.cycle_iterations must be positive");
  require(c.pruning_ratio > 0 && c.pruning_ratio <= 1, "imp.pruning_ratio must be in (0, 1]");
  require(c.cycles >= 0, "imp.cycles must be >= 0");
  require(c.target_density >= 0 && c.target_density < 1, "imp.target_density must be in [0, 1)");
  require(c.threads >= 0, "run.threads must be >= 0");
  require(c.stop_after >= 0, "run.stop_after must be >= 0");
  models::parse_precision(c.precision, "train.precision");
  require(c.padding == "symmetric" || c.padding == "same",
          "model.padding must be 'symmetric' or 'same', not '" + c.padding + "'");
  pruning::parse_prunable_set(c.prunable);
  const auto strategies = pruning::strategy_names();
  require(std::find(strategies.begin(), strategies.end(), c.strategy) != strategies.end(),
          "imp.strategy: unknown pruning strategy '" + c.strategy + "'");
  parse_branch_list(c.branches);
  require(c.device == "auto" || c.device == "cpu" || c.device == "cuda",
          "run.device must be auto, cpu or cuda (got '" + c.device + "')");
}

}  // namespace lth::imp
