#include "imp/cycle.h"

#include <fmt/format.h>
#include <torch/types.h>

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

// Logs one weights' test results; `weights` ("selected" or "final") names them in the log
// and in metrics.jsonl ("test" and "test_final" events).
void log_tests(const nlohmann::json& results, const std::string& weights, train::RunLog& log) {
  for (const auto& [name, r] : results.items()) {
    if (!r["acc"].is_number()) {  // no readable image: no result, never 0 %
      log.warn(fmt::format("test {}: no readable images ({} skipped): no result ({} weights)", name,
                           r.value("skipped", int64_t{0}), weights));
      if (!log.logged(weights == "selected" ? "test" : "test_final", name))
        log.event(weights == "selected" ? "test" : "test_final",
                {{"set", name}, {"acc", nullptr}, {"nll", nullptr}, {"ece", nullptr}, {"count", 0},
                 {"skipped", r.value("skipped", int64_t{0})}});
      continue;
    }
    log.info(fmt::format("test {:<16} acc {:.2f}%  nll {:.4f}  ({} images, {} weights)", name,
                         100 * r["acc"].get<double>(), r["nll"].get<double>(), r["count"].get<int64_t>(), weights));
    // A cycle resumed after its tests were logged (stopped before summary.json) tests
    // again for its summary, but does not log the same event twice.
    if (log.logged(weights == "selected" ? "test" : "test_final", name)) continue;
    log.event(weights == "selected" ? "test" : "test_final",
              {{"set", name}, {"acc", r["acc"]}, {"nll", r["nll"]}, {"ece", r["ece"]}, {"count", r["count"]},
               {"skipped", r.value("skipped", int64_t{0})}});
  }
}

// Every test set on the network's current weights.
nlohmann::json test_weights(const Experiment& experiment, models::Network& net,
                            const std::string& weights, train::RunLog& log) {
  nlohmann::json results = nlohmann::json::object();
  for (const auto& set : experiment.test_sets) {
    auto eo = train::rank_eval_options(
        experiment.comm(), experiment.config().eval_batch_size,
        static_cast<int>(experiment.config().num_workers), experiment.device(), set.class_subset);
    eo.precision = experiment.precision();
    const auto r = eval::evaluate(net, set.dataset, eo);
    if (r.count == 0) {
      results[set.name] = {{"acc", nullptr}, {"nll", nullptr}, {"ece", nullptr}, {"count", 0},
                           {"skipped", r.skipped}, {"note", "no readable images"}};
      continue;
    }
    results[set.name] = {{"acc", r.accuracy}, {"nll", r.nll}, {"ece", r.ece}, {"count", r.count},
                         {"skipped", r.skipped}};
  }
  log_tests(results, weights, log);
  return results;
}

// The test sets are looked at once per cycle, here: on the final iterate (what `net` holds
// after training; not when training diverged) and on the weights selected by best
// validation accuracy, which are often the final ones (then not evaluated twice).
void test_at_end(const Experiment& experiment, models::Network& net, const fs::path& dir,
                 const train::TrainResult& trained, train::RunLog& log, nlohmann::json& summary) {
  if (!trained.diverged) summary["test_final"] = test_weights(experiment, net, "final", log);
  const auto best_path = dir / "best_acc.safetensors";
  summary["test"] = nlohmann::json::object();
  if (!fs::exists(best_path)) return;  // diverged before the first evaluation
  if (!trained.diverged && trained.best_iteration == trained.iterations) {
    summary["test"] = summary["test_final"];
    log_tests(summary["test"], "selected", log);
    return;
  }
  const auto best = io::load_checkpoint(best_path);
  pruning::load_state(net, best.state, best_path.string());
  summary["test"] = test_weights(experiment, net, "selected", log);
}

}  // namespace

void load_parameters(models::Network& net, const io::Checkpoint& ckpt, const std::string& source) {
  // Weights trained under one padding rule compute different features under the other: a
  // reference checkpoint (SAME) continued with symmetric padding would silently start from
  // a perturbed network.
  const std::string stored = io::checkpoint_padding(ckpt, source);
  const std::string ours = models::padding_name(net.config().padding);
  require(stored == ours, source + ": its weights were computed with padding '" + stored +
                              "' but this run's network uses '" + ours + "' (lth train --padding " +
                              stored + ", or --set model.padding=" + stored + ")");
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
  if (j.is_discarded()) return std::nullopt;
  // The fields resuming reads, with their types: a hand-edited summary is a UserError naming
  // the file, not a JSON type exception.
  const auto typed = [&](const char* key, bool (nlohmann::json::*is)() const noexcept) {
    return !j.contains(key) || (j[key].*is)();
  };
  require(j.is_object() && typed("complete", &nlohmann::json::is_boolean) &&
              typed("interrupted", &nlohmann::json::is_boolean) &&
              typed("diverged", &nlohmann::json::is_boolean) &&
              typed("density", &nlohmann::json::is_number),
          path.string() + ": malformed cycle summary (complete/interrupted/diverged must be "
                          "true or false, density a number)");
  if (!j.value("complete", false)) return std::nullopt;
  require(j.contains("density"), path.string() + ": complete cycle summary has no density");
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
    const auto& comm = *experiment.comm();
    const auto ranks = comm.world_size() > 1
                           ? fmt::format("; {} ranks, sums through {}", comm.world_size(), comm.transport())
                           : std::string();
    log.info(fmt::format("{}: {} iterations, density {:.4f} ({} of {} prunable weights){}",
                         plan.dir.string(), plan.iterations, ms["density"].get<double>(),
                         ms["prunable_kept"].get<int64_t>(), ms["prunable_total"].get<int64_t>(), ranks));
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
  summary["selection"] = experiment.selection;
  summary["test"] = nlohmann::json::object();
  if (!log.logged("cycle"))  // once, also when resumed after training ended
    log.event("cycle", {{"iteration", plan.iterations}, {"cycle", plan.cycle},
                        {"density", summary["density"]}, {"best_val_acc", trained.best_acc}});
  if (plan.test_at_end) test_at_end(experiment, *net, plan.dir, trained, log, summary);
  summary["complete"] = true;
  if (root) io::write_text_atomically(plan.dir / "summary.json", summary.dump(2) + "\n");
  return summary;
}

}  // namespace lth::imp
