#include "imp/experiment.h"

#include <ATen/Context.h>
#include <fmt/format.h>
#include <torch/cuda.h>

#include <spdlog/spdlog.h>

#include <sstream>

#include "common/error.h"
#include "common/paths.h"
#include "common/rng.h"
#include "data/check/data_check.h"
#include "data/holdout.h"
#include "data/registry.h"
#include "eval/suite.h"

namespace lth::imp {
namespace {

data::DataConfig data_config(const ImpConfig& c) {
  data::DataConfig d;
  d.name = c.data_name;
  d.root = user_path_text(c.data_root);  // "DATA/" and "./DATA" are DATA
  d.image_size = c.image_size;
  d.strict = c.strict_data;
  d.shard_order = c.shard_order;
  d.shuffle_buffer = c.shuffle_buffer;
  d.val_labels = c.val_labels;
  d.v2_variant = c.v2_variant;
  d.seed = static_cast<uint64_t>(c.seed);
  return d;
}

}  // namespace

bool is_imagenet(const std::string& data_name) {
  return data_name == "imagenet" || data_name == "imagenet2012";
}

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  require(name != "cuda" || torch::cuda::is_available(),
          "--device cuda: this LibTorch build has no CUDA or no GPU is visible");
  if (!torch::cuda::is_available()) return torch::kCPU;
  return torch::kCUDA;
}

void configure_cudnn(bool deterministic) {
  at::globalContext().setDeterministicCuDNN(deterministic);
  at::globalContext().setBenchmarkCuDNN(!deterministic);
}

Experiment::Experiment(ImpConfig config, dist::CommunicatorPtr comm)
    : config_(std::move(config)), comm_(std::move(comm)) {
  require(config_.seed >= 0, "internal: the seed must be resolved before the experiment starts");
  if (!comm_) comm_ = std::make_shared<dist::Communicator>();
  device_ = resolve_device(config_.device);
  precision_ = models::resolve_precision(config_.precision, config_.mixed_precision, device_);
  configure_cudnn(config_.deterministic);
  const auto dc = data_config(config_);
  train_set = data::make_dataset(dc, data::Split::Train);
  const auto test_split = data::make_dataset(dc, data::Split::Test);
  if (config_.holdout > 0) {
    auto eval_view = dc;
    eval_view.eval_transform = true;
    train_eval_view_ = data::make_dataset(eval_view, data::Split::Train);
    const auto split = data::split_holdout(train_set, train_eval_view_, config_.holdout,
                                           Rng::keyed(seed(), "holdout").next_u64());
    train_set = split.train;
    val_set = split.holdout;
    selection = {{"set", "holdout"}, {"count", config_.holdout}, {"class_balanced", split.class_balanced}};
  } else {
    val_set = test_split;
    val_class_subset = val_set->class_subset();
    selection = {{"set", "test"}, {"name", is_imagenet(config_.data_name) ? "imagenet" : config_.data_name}};
  }
  // Counted now, before the first iteration: a broken selection set must fail the run
  // before it spends anything (an empty test set is reported as "no readable images").
  require(val_set->size() > 0, "the " + std::string(config_.holdout > 0 ? "hold-out" : "validation") +
                                   " set " + val_set->describe() + " has no samples: nothing to choose best_acc on");
  if (is_imagenet(config_.data_name)) {
    // Every distribution-shift set present under the data root; absent ones are logged.
    eval::SuiteOptions so;
    so.image_size = config_.image_size > 0 ? config_.image_size : 224;
    so.strict = config_.strict_data;
    so.val_labels = config_.val_labels;
    so.v2_variant = config_.v2_variant;
    const auto suite = eval::discover_test_suite(dc.root, so);
    for (const auto& set : suite.present) test_sets.push_back(TestSet{set.name, set.dataset, set.class_subset});
    for (const auto& set : suite.absent) absent_test_sets.push_back(set.name + " (" + set.path.string() + ")");
  } else {
    test_sets.push_back(TestSet{config_.data_name, test_split, test_split->class_subset()});
  }
  for (const auto& set : test_sets)
    if (set.dataset->size() == 0 && comm_->is_root())
      spdlog::warn("test set {} ({}) has no samples: it will be reported as no result", set.name,
                   set.dataset->describe());
  if (is_imagenet(config_.data_name) && config_.data_check && comm_->is_root()) quick_data_check();
}

void Experiment::quick_data_check() const {
  // The quick `lth data check` (data/check/data_check.h) before GPU-days are spent: a needed set
  // missing, classes missing, a wrong label order stop the run; unreadable files in the sample
  // are logged (the run skips them, or --strict_data stops on them). A train folder of fewer
  // than the 1000 classes (make-imagenet --classes K) is checked as a deliberate subset.
  data::check::CheckOptions o;
  o.data_root = config_.data_root;
  o.val_labels = config_.val_labels;
  o.v2_variant = config_.v2_variant;
  o.image_size = config_.image_size > 0 ? config_.image_size : 224;
  o.global_batch = config_.batch_size;
  o.sample = 64;
  o.seed = static_cast<uint64_t>(config_.seed);
  o.subset = train_set->num_classes() != 1000;
  const auto report = data::check::check_data(o);
  std::istringstream table(data::check::format_report(report, o));
  for (std::string line; std::getline(table, line);) spdlog::info("data check: {}", line);
  for (const auto& u : report.unreadable) spdlog::warn("data check: {}", u);
  if (!report.problems.empty()) {
    for (const auto& p : report.problems) spdlog::error("data check: {}", p);
    throw UserError("data check: " + std::to_string(report.problems.size()) + " problems under " +
                    config_.data_root + " (logged above; lth data check --data_root ... lists them; "
                    "data.check = false / --data_check false skips the check)");
  }
}

models::ModelConfig Experiment::model_config() const {
  const auto traits = data::dataset_traits(data_config(config_));
  models::ModelConfig m;
  m.name = config_.model;
  m.num_classes = traits.num_classes;
  m.in_channels = traits.channels;
  m.image_size = traits.image_size;
  m.width = config_.width;
  m.padding = models::parse_padding(config_.padding);
  m.pixel_mean = traits.pixel_mean;
  m.pixel_std = traits.pixel_std;
  return m;
}

models::NetworkPtr Experiment::make_network(const std::string& purpose) const {
  return models::make_network(model_config(), Rng::keyed(seed(), purpose).next_u64());
}

train::TrainConfig Experiment::train_config(int64_t iterations, bool constant_lr,
                                            bool periodic_ckpt, uint64_t data_key) const {
  const auto& c = config_;
  train::TrainConfig t;
  t.schedule.peak_lr = c.lr;
  t.schedule.total_steps = iterations;
  t.schedule.constant = constant_lr;
  t.sgd.momentum = c.momentum;
  t.sgd.weight_decay = c.weight_decay;
  if (c.global_clipping > 0) t.sgd.global_clip = c.global_clipping;
  t.label_smoothing = c.label_smoothing;
  t.batch_size = c.batch_size;
  t.micro_batch = c.micro_batch;
  t.eval_every = c.eval_every;
  t.eval_batch_size = c.eval_batch_size;
  t.periodic_ckpt = periodic_ckpt;
  t.ckpt_every = c.ckpt_every;
  t.precision = precision_;
  t.num_workers = static_cast<int>(c.num_workers);
  t.prefetch_factor = static_cast<int>(c.prefetch_factor);
  t.seed = Rng::keyed(seed(), "data", data_key).next_u64();
  t.device = device_;
  t.stop_after = c.stop_after;
  return t;
}

data::DatasetPtr Experiment::training_sample(int64_t count, const std::string& purpose) const {
  auto eval_view = train_eval_view_;  // opened already when a hold-out was drawn
  if (!eval_view) {
    auto dc = data_config(config_);
    dc.eval_transform = true;
    eval_view = data::make_dataset(dc, data::Split::Train);
  }
  const auto* without_holdout = dynamic_cast<const data::SubsetDataset*>(train_set.get());
  auto indices = data::uniform_sample(train_set->size(), count, Rng::keyed(seed(), purpose).next_u64());
  if (without_holdout != nullptr)
    for (auto& i : indices) i = without_holdout->base_index(i);
  return std::make_shared<data::SubsetDataset>(eval_view, std::move(indices), "training sample");
}

nlohmann::json Experiment::config_json() const {
  std::ostringstream out;
  out << toml::json_formatter{to_toml(config_)};
  return nlohmann::json::parse(out.str());
}

}  // namespace lth::imp
