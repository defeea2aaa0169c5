#include "imp/cycle.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <fstream>

#include "common/error.h"
#include "io/file_util.h"
#include "eval/evaluator.h"
#include "train/run_log.h"

namespace lth::imp {
namespace {

namespace fs = std::filesystem;

io::Checkpoint weights_checkpoint(const models::Network& net, const pruning::MaskSet& masks,
                                  const Experiment& experiment) {
  io::Checkpoint ckpt;
  ckpt.state = pruning::snapshot_state(net);
  ckpt.masks = masks;
  ckpt.config = experiment.config_json();
  return ckpt;
}

nlohmann::json test_best(const Experiment& experiment, models::Network& net, const fs::path& dir,
                         train::RunLog& log) {
  const auto best_path = dir / "best_acc.safetensors";
  nlohmann::json results = nlohmann::json::object();
  if (!fs::exists(best_path)) return results;  // diverged before the first evaluation
  const auto best = io::load_checkpoint(best_path);
  pruning::load_state(net, best.state, best_path.string());
  for (const auto& set : experiment.test_sets) {
    const auto eo = train::rank_eval_options(
        experiment.comm(), experiment.config().eval_batch_size,
        static_cast<int>(experiment.config().num_workers), experiment.device(), set.class_subset);
    const auto r = eval::evaluate(net, set.dataset, eo);
    results[set.name] = {{"acc", r.accuracy}, {"nll", r.nll}, {"ece", r.ece}, {"count", r.count},
                         {"skipped", r.skipped}};
    log.info(fmt::format("test {:<16} acc {:.2f}%  nll {:.4f}  ({} images)", set.name,
                         100 * r.accuracy, r.nll, r.count));
    log.event("test", {{"set", set.name}, {"acc", r.accuracy}, {"nll", r.nll}, {"ece", r.ece},
                       {"count", r.count}});
  }
  return results;
}

}  // namespace

void load_parameters(models::Network& net, const io::Checkpoint& ckpt, const std::string& source) {
  pruning::load_state(net, ckpt.state, source, /*with_buffers=*/false);
}

nlohmann::json mask_summary(const pruning::MaskSet& masks) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& [name, m] : masks) {
    layers.push_back({{"name", name}, {"kept", m.sum().item<int64_t>()}, {"total", m.numel()}});
  }
  const int64_t kept = pruning::count_kept(masks), total = pruning::count_total(masks);
  return {{"prunable_kept", kept},
          {"prunable_total", total},
          {"density", total > 0 ? static_cast<double>(kept) / static_cast<double>(total) : 1.0},
          {"layers", layers}};
}

std::optional<nlohmann::json> completed_summary(const fs::path& dir) {
  const auto path = dir / "summary.json";
  if (!fs::exists(path)) return std::nullopt;
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.value("complete", false)) return std::nullopt;
  return j;
}

nlohmann::json run_cycle(const Experiment& experiment, const CyclePlan& plan) {
  if (auto done = completed_summary(plan.dir)) return *done;
  const bool root = experiment.comm()->is_root();
  train::RunLog log(plan.dir, root);
  log.set_tensorboard(experiment.config().tensorboard);
  auto net = experiment.make_network();
  net->to(experiment.device());
  auto masks = pruning::dense_masks(*net, pruning::parse_prunable_set(experiment.config().prunable));
  const bool resuming = fs::exists(plan.dir / "last.safetensors");
  if (!resuming) {
    if (root) io::write_text_atomically(plan.dir / "config.toml", to_toml_string(experiment.config()));
    if (plan.prepare) plan.prepare(*net, masks);
    pruning::apply_masks(*net, masks);
    if (root) io::save_checkpoint(plan.dir / "init.safetensors", weights_checkpoint(*net, masks, experiment));
    const auto ms = mask_summary(masks);
    log.info(fmt::format("{}: {} iterations, density {:.4f} ({} of {} prunable weights)",
                         plan.dir.string(), plan.iterations, ms["density"].get<double>(),
                         ms["prunable_kept"].get<int64_t>(), ms["prunable_total"].get<int64_t>()));
  }
  train::TrainInputs inputs;
  inputs.net = net;
  inputs.masks = masks;
  inputs.train_set = experiment.train_set;
  inputs.val_set = experiment.val_set;
  inputs.val_class_subset = experiment.val_class_subset;
  inputs.config = experiment.config_json();
  inputs.comm = experiment.comm();
  auto tc = experiment.train_config(plan.iterations, plan.constant_lr, plan.periodic_ckpt, plan.data_key);
  tc.schedule.peak_lr *= plan.lr_scale;
  const auto trained = train::run_training(tc, inputs, log);
  if (trained.interrupted) return {{"cycle", plan.cycle}, {"complete", false}, {"interrupted", true}};

  nlohmann::json summary = mask_summary(inputs.masks);
  summary["cycle"] = plan.cycle;
  summary["best_val_acc"] = trained.best_acc;
  summary["best_iteration"] = trained.best_iteration;
  summary["diverged"] = trained.diverged;
  log.event("cycle", {{"iteration", plan.iterations}, {"cycle", plan.cycle},
                      {"density", summary["density"]}, {"best_val_acc", trained.best_acc}});
  summary["test"] = plan.test_at_end ? test_best(experiment, *net, plan.dir, log) : nlohmann::json::object();
  summary["complete"] = true;
  if (root) io::write_text_atomically(plan.dir / "summary.json", summary.dump(2) + "\n");
  return summary;
}

}  // namespace lth::imp
