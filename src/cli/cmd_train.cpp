// `lth train`: the reference's scripts/train.py, flag for flag (same names, defaults and
// boolean spellings), plus the flags a non-ImageNet dataset or this machine needs.
// One phase in --save: masks from --previous_ckpt (pruned to --pruning_ratio), weights
// rewound to --matching_ckpt, trained --optim_ni iterations, best_acc tested at the end.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"
#include "common/threads.h"
#include "dist/process_group.h"
#include "imp/config_validation.h"
#include "imp/cycle.h"
#include "imp/imp.h"
#include "io/file_util.h"
#include "models/network.h"
#include "pruning/strategy.h"

namespace lth::cli {
namespace {

namespace fs = std::filesystem;

struct TrainFlags {
  imp::ImpConfig config;
  std::string save;
  std::string matching_ckpt;
  std::string previous_ckpt;
  double pruning_ratio = 1.0;
  int64_t optim_ni = 64000;
  int64_t resnet_depth = 50;
  std::string model;  // overrides resnet_depth when set
  std::string global_clipping = "None";
  std::string constant_lr = "false";
  std::string periodic_ckpt = "false";
  std::string mixed_precision = "false";
  std::string strict_data = "false";
  std::string tensorboard = "true";
  std::string data_check = "true";
  bool prunable_given = false;  // --prunable on the command line
};

void add_flags(CLI::App* cmd, TrainFlags& f) {
  auto& c = f.config;
  cmd->add_option("--data_root", c.data_root, "root of the data folders")->capture_default_str();
  cmd->add_option("--data_name", c.data_name, "dataset: imagenet2012, fashion-mnist, mnist, synthetic")
      ->capture_default_str();
  cmd->add_option("--resnet_depth", f.resnet_depth, "ResNet depth (model resnet<depth>)")->capture_default_str();
  cmd->add_option("--resnet_width", c.width, "ResNet width multiplier")->capture_default_str();
  cmd->add_option("--model", f.model, "network by name (overrides --resnet_depth), e.g. lenet300_100");
  cmd->add_option("--padding", c.padding,
                  "symmetric (PyTorch) or same (the reference's TensorFlow SAME; use it to "
                  "continue from a reference .ckpt)")
      ->capture_default_str();
  cmd->add_option("--batch_size", c.batch_size, "global batch size")->capture_default_str();
  cmd->add_option("--num_workers", c.num_workers, "data loader threads")->capture_default_str();
  cmd->add_option("--prefetch_factor", c.prefetch_factor, "batches in flight per worker")->capture_default_str();
  cmd->add_option("--optim_ni", f.optim_ni, "training iterations")->capture_default_str();
  cmd->add_option("--optim_lr", c.lr, "peak learning rate")->capture_default_str();
  cmd->add_option("--optim_momentum", c.momentum, "SGD momentum")->capture_default_str();
  cmd->add_option("--optim_weight_decay", c.weight_decay, "weight decay")->capture_default_str();
  cmd->add_option("--optim_label_smoothing", c.label_smoothing, "label smoothing")->capture_default_str();
  cmd->add_option("--optim_global_clipping", f.global_clipping, "global-norm clip, or None")->capture_default_str();
  cmd->add_option("--save", f.save, "output folder (must not exist)")->required();
  cmd->add_option("--seed", c.seed, "seed (default: drawn from the OS and logged)");
  cmd->add_option("--matching_ckpt", f.matching_ckpt, "checkpoint whose weights the run rewinds to");
  cmd->add_option("--previous_ckpt", f.previous_ckpt, "checkpoint whose weights and mask give the new mask");
  cmd->add_option("--pruning_ratio", f.pruning_ratio, "fraction of remaining weights kept")->capture_default_str();
  cmd->add_option("--constant_lr", f.constant_lr, "constant LR instead of warm-up + cosine")->capture_default_str();
  cmd->add_option("--periodic_ckpt", f.periodic_ckpt, "write iter_XXXXXX at every evaluation")->capture_default_str();
  cmd->add_option("--mixed_precision", f.mixed_precision,
                  "the device's mixed precision: bf16 where native (CPU, A100 and later), else fp16 "
                  "with loss scaling")
      ->capture_default_str();
  // Beyond the reference:
  cmd->add_option("--eval_every", c.eval_every, "iterations between evaluations")->capture_default_str();
  cmd->add_option("--eval_batch_size", c.eval_batch_size)->capture_default_str();
  cmd->add_option("--micro_batch", c.micro_batch, "gradient-accumulation chunk (0 = off)")->capture_default_str();
  cmd->add_option("--image_size", c.image_size, "input size (0 = the dataset's native size)")->capture_default_str();
  cmd->add_option("--strict_data", f.strict_data, "unreadable samples are errors")->capture_default_str();
  cmd->add_option("--shard_order", c.shard_order,
                  "TFDS/WebDataset shards: stream (each rank its own files, shuffle buffer) or global "
                  "(one permutation of all samples, as folders)")
      ->capture_default_str();
  cmd->add_option("--shuffle_buffer", c.shuffle_buffer, "shards in stream order: shuffle buffer (records)")
      ->capture_default_str();
  cmd->add_option("--val_labels", c.val_labels,
                  "label file of a flat validation folder: wnids or ILSVRC2012 ids per line in file-name order, "
                  "or image_id,wnid CSV (docs/DATA.md)");
  cmd->add_option("--v2_variant", c.v2_variant, "ImageNet-V2 release folder: matched-frequency, threshold0.7, top-images")
      ->capture_default_str();
  cmd->add_option("--data_check", f.data_check, "ImageNet: the quick `lth data check` before the first iteration")
      ->capture_default_str();
  cmd->add_option("--tensorboard", f.tensorboard, "write TensorBoard event files next to metrics.jsonl")
      ->capture_default_str();
  cmd->add_option("--holdout", c.holdout,
                  "training images held out (class-balanced) to choose best_acc on; 0 = choose on "
                  "the test split, as the reference")
      ->capture_default_str();
  cmd->add_option("--prunable", c.prunable,
                  "prunable set: conv, conv+linear, all (default conv; conv+linear for a network "
                  "without conv layers)")
      ->capture_default_str();
  cmd->add_option("--strategy", c.strategy, "pruning strategy")->capture_default_str();
  cmd->add_option("--threads", c.threads, kThreadsHelp)->capture_default_str();
  cmd->add_option("--precision", c.precision, "fp32, bf16 or fp16 (fp32 with --mixed_precision true = the device's mixed mode)")
      ->capture_default_str();
  cmd->add_flag("--deterministic", c.deterministic,
                "CUDA: deterministic cuDNN kernels, no autotuning (bit-identical resume on GPU)");
  cmd->add_option("--device", c.device, "auto, cpu or cuda")->capture_default_str();
}

bool has_conv(const models::Network& net) {
  for (const auto& p : net.named_parameters())
    if (net.kind_of(p.key()) == models::ParamKind::ConvKernel) return true;
  return false;
}

imp::ImpConfig resolve(TrainFlags& f) {
  auto c = f.config;
  c.model = f.model.empty() ? fmt::format("resnet{}", f.resnet_depth) : f.model;
  if (f.global_clipping != "None")  // the whole text, finite: "1abc" and "nan" are refused
    c.global_clipping = imp::parse_finite_flag("--optim_global_clipping", f.global_clipping, 0, 1e12);
  c.mixed_precision = parse_bool("--mixed_precision", f.mixed_precision);
  c.strict_data = parse_bool("--strict_data", f.strict_data);
  c.tensorboard = parse_bool("--tensorboard", f.tensorboard);
  c.data_check = parse_bool("--data_check", f.data_check);
  c.cycle_iterations = f.optim_ni;
  c.pruning_ratio = f.pruning_ratio;
  imp::check_flag_range("--optim_ni", f.optim_ni, 1, 10'000'000'000);
  imp::check_flag_range("--resnet_depth", f.resnet_depth, 1, 1000);
  imp::check_flag_range("--pruning_ratio", f.pruning_ratio, 0, 1);
  imp::validate(c);
  return c;
}

// The first of `folder` and its ancestors that does not exist yet: what creating `folder`
// would add, and so what a refused start must remove again.
fs::path first_missing(const fs::path& folder) {
  fs::path missing;
  for (fs::path p = folder; !p.empty() && !fs::exists(p); p = p.parent_path()) {
    missing = p;
    if (p == p.parent_path()) break;
  }
  return missing;
}

void run_train(TrainFlags& f) {
  f.save = user_folder(f.save).string();  // "x/", "./x" and "x" are one folder
  f.config.data_root = user_path_text(f.config.data_root);
  auto config = resolve(f);
  const bool constant_lr = parse_bool("--constant_lr", f.constant_lr);
  const bool periodic = parse_bool("--periodic_ckpt", f.periodic_ckpt);
  // Join the process group first: other ranks must not see rank 0's fresh --save folder.
  auto comm = dist::make_communicator(imp::resolve_device(config.device));
  require(!fs::exists(f.save), f.save + ": already exists; refusing to overwrite (choose a new --save)");
  for (const auto& [flag, path] : {std::pair{"--matching_ckpt", f.matching_ckpt},
                                   std::pair{"--previous_ckpt", f.previous_ckpt}}) {
    require(path.empty() || fs::exists(path), std::string(flag) + " " + path + ": no such file");
  }
  require(f.pruning_ratio == 1.0 || !f.previous_ckpt.empty(),
          "--pruning_ratio < 1 needs --previous_ckpt (the weights the new mask is computed from)");
  if (config.seed < 0) config.seed = imp::draw_seed();
  config.seed = dist::broadcast_from_root(*comm, config.seed);
  configure_threads(static_cast<int>(config.threads));
  std::optional<imp::Experiment> experiment;
  experiment.emplace(config, comm);  // opens the data before anything is written
  // Load and prune before the folder exists, so a bad checkpoint leaves nothing to clean up.
  auto probe = experiment->make_network();
  // The reference prunes conv weights only; a network without any (LeNet-300-100, which the
  // README suggests with Fashion-MNIST) prunes its linear layers instead unless told. Known
  // from the network itself; only then is the (small) experiment opened again.
  if (!f.prunable_given && config.prunable == "conv" && !has_conv(*probe)) {
    config.prunable = "conv+linear";
    experiment.emplace(config, comm);
  }
  const imp::Experiment& ex = *experiment;
  auto masks = pruning::dense_masks(*probe, pruning::parse_prunable_set(config.prunable));
  if (!f.previous_ckpt.empty()) {
    const auto prev = io::load_checkpoint(f.previous_ckpt);
    if (!prev.masks.empty()) masks = prev.masks;
    if (f.pruning_ratio < 1.0) {
      masks = pruning::prune(config.strategy, {prev.state, masks, f.pruning_ratio,
                                               static_cast<uint64_t>(config.seed)});
    }
  }
  std::optional<io::Checkpoint> matching;
  if (!f.matching_ckpt.empty()) {
    matching = io::load_checkpoint(f.matching_ckpt);
    imp::load_parameters(*probe, *matching, f.matching_ckpt);  // checks names and shapes now
  }
  pruning::apply_masks(*probe, masks);  // checks the masks fit the network
  // The loader would say so too, but only once the run folder exists.
  require(ex.train_set->size() >= config.batch_size,
          fmt::format("dataset {} has {} training samples, fewer than one batch of {} (lower --batch_size)",
                      ex.train_set->describe(), ex.train_set->size(), config.batch_size));
  if (comm->is_root()) {
    const auto created = first_missing(f.save);
    const auto parent = fs::path(f.save).parent_path();
    if (!parent.empty()) fs::create_directories(parent);
    // mkdir is atomic: of two `lth train` started on one --save, the second stops here
    // instead of writing into the first one's run (and removes the parents it made).
    if (!fs::create_directory(f.save)) {
      std::error_code ignored;
      if (!created.empty() && created != fs::path(f.save)) fs::remove_all(created, ignored);
      throw UserError(f.save + ": already exists; refusing to overwrite (choose a new --save)");
    }
    io::write_text_atomically(fs::path(f.save) / "config.toml", imp::to_toml_string(config));
  }
  imp::CyclePlan plan;
  plan.dir = f.save;
  plan.iterations = f.optim_ni;
  plan.constant_lr = constant_lr;
  plan.periodic_ckpt = periodic;
  plan.prepare = [&](models::Network& net, pruning::MaskSet& m) {
    m = masks;
    if (matching) imp::load_parameters(net, *matching, f.matching_ckpt);
  };
  imp::run_cycle(ex, plan);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "One training phase, as the reference scripts/train.py");
  auto flags = std::make_shared<TrainFlags>();
  // The reference script's defaults (ImageNet recipe).
  auto& c = flags->config;
  c.data_name = "imagenet2012";
  c.batch_size = 2048;
  c.num_workers = 32;
  c.lr = 0.8;
  c.eval_every = 1000;
  c.eval_batch_size = 256;
  c.prunable = "conv";
  c.seed = -1;
  add_flags(cmd, *flags);
  cmd->callback([flags, cmd] {
    flags->prunable_given = cmd->count("--prunable") > 0;
    run_train(*flags);
  });
}

}  // namespace lth::cli
