#include "imp/lmc.h"

#include <fmt/format.h>
#include <ATen/core/grad_mode.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "common/error.h"
#include "common/rng.h"
#include "data/loader.h"
#include "eval/evaluator.h"
#include "imp/cycle.h"
#include "imp/config.h"
#include "io/file_util.h"
#include "report/plot.h"
#include "io/run_layout.h"
#include "models/autocast.h"
#include "train/run_log.h"
#include "train/trainer.h"

namespace lth::imp {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kCopies[] = {"copy_a", "copy_b"};

// A data key far from the small integers cycles use (and from each other analysis's).
uint64_t copy_data_key(uint64_t key, int copy, bool same_order) {
  return mix64(0x6c6d63ull ^ (key << 8) ^ static_cast<uint64_t>(same_order ? 0 : copy + 1));
}

// Trains one copy from the start (resumable, like any phase) and returns its final state,
// or nullopt when run.stop_after stopped it (re-running resumes).
std::optional<io::Checkpoint> train_copy(const Experiment& ex, const LmcStart& start, const LmcOptions& o,
                                         const fs::path& dir, uint64_t key, int copy) {
  CyclePlan plan;
  plan.dir = dir / kCopies[copy];
  plan.cycle = copy;
  plan.iterations = o.iterations > 0 ? o.iterations : ex.config().cycle_iterations;
  plan.constant_lr = o.constant_lr;
  plan.test_at_end = false;
  plan.data_key = copy_data_key(key, copy, o.same_data_order);
  plan.prepare = [&start](models::Network& net, pruning::MaskSet& masks) {
    if (!start.masks.empty()) masks = start.masks;
    load_parameters(net, start.weights, start.source);
  };
  const auto summary = run_cycle(ex, plan);
  if (summary.value("interrupted", false)) return std::nullopt;
  require(!summary.value("diverged", false), plan.dir.string() + ": training diverged (NaN loss)");
  return io::load_checkpoint(plan.dir / "last.safetensors");  // the final iterate
}

std::vector<torch::nn::BatchNorm2dImpl*> batchnorms(models::Network& net) {
  std::vector<torch::nn::BatchNorm2dImpl*> out;
  for (const auto& module : net.modules(/*include_self=*/false))
    if (auto* bn = module->as<torch::nn::BatchNorm2dImpl>()) out.push_back(bn);
  return out;
}

// theta(alpha) for parameters; running statistics interpolated too (overwritten later when
// they are recomputed); other buffers (pixel statistics, counters) from the first copy.
void interpolate(models::Network& net, const io::Checkpoint& a, const io::Checkpoint& b, double alpha) {
  at::NoGradGuard no_grad;
  auto blend = [&](const std::string& name, torch::Tensor& target) {
    const auto& x = a.state.at(name);
    const auto& y = b.state.at(name);
    target.copy_((x.to(torch::kFloat64) * (1 - alpha) + y.to(torch::kFloat64) * alpha).to(target.dtype()));
  };
  for (auto& item : net.named_parameters()) blend(item.key(), item.value());
  for (auto& item : net.named_buffers()) {
    const bool statistic = item.key().find("running_") != std::string::npos;
    if (statistic) blend(item.key(), item.value());
    else item.value().copy_(a.state.at(item.key()));
  }
}

// Fresh BN statistics for the current weights: a cumulative average over `batches` training
// batches (each rank its own shard, then averaged over ranks).
void recompute_batchnorm(const Experiment& ex, models::Network& net, int64_t batches, uint64_t seed) {
  auto bns = batchnorms(net);
  if (bns.empty() || batches <= 0) return;
  std::vector<c10::optional<double>> momenta;
  for (auto* bn : bns) {
    momenta.push_back(bn->options.momentum());
    bn->reset_running_stats();
    bn->options.momentum(c10::nullopt);  // cumulative average over the batches seen
  }
  data::LoaderOptions lo;
  lo.batch_size = ex.config().batch_size;
  lo.num_workers = static_cast<int>(ex.config().num_workers);
  lo.seed = seed;
  lo.rank = ex.comm()->rank();
  lo.world_size = ex.comm()->world_size();
  data::Loader loader(ex.train_set, lo);
  const bool was_training = net.is_training();
  net.train();
  {
    at::NoGradGuard no_grad;
    const models::AutocastGuard autocast(ex.precision(), ex.device());
    for (int64_t i = 0; i < batches; ++i) {
      const auto batch = loader.next();
      if (batch->images.size(0) > 0) net.forward(batch->images.to(ex.device()));
    }
  }
  net.train(was_training);
  for (size_t i = 0; i < bns.size(); ++i) bns[i]->options.momentum(momenta[i]);
  if (ex.comm()->world_size() > 1) {
    std::vector<torch::Tensor> stats;
    for (auto* bn : bns) {
      stats.push_back(bn->running_mean);
      stats.push_back(bn->running_var);
    }
    ex.comm()->all_reduce_sum(stats);
    for (auto& s : stats) s.div_(ex.comm()->world_size());
  }
}

double error_on(const Experiment& ex, models::Network& net, const data::DatasetPtr& set,
                const std::vector<int64_t>& class_subset) {
  auto eo = train::rank_eval_options(ex.comm(), ex.config().eval_batch_size,
                                     static_cast<int>(ex.config().num_workers), ex.device(), class_subset);
  eo.precision = ex.precision();
  const auto r = eval::evaluate(net, set, eo);
  require(r.count > 0, set->describe() + ": no readable image (" + std::to_string(r.skipped) +
                           " skipped); no error can be measured on it");
  return 1.0 - r.accuracy;
}

void write_path_files(const fs::path& dir, const json& result) {
  std::string csv = "alpha,val_error,train_error\n";
  const auto& alphas = result["alphas"];
  for (size_t i = 0; i < alphas.size(); ++i) {
    csv += fmt::format("{:.10g},{:.10g},{}\n", alphas[i].get<double>(), result["val_error"][i].get<double>(),
                       result["train_error"].empty() ? std::string()
                                                     : fmt::format("{:.10g}", result["train_error"][i].get<double>()));
  }
  io::write_text_atomically(dir / "lmc.csv", csv);
  report::plot::DensityChart chart;
  chart.linear_x = true;
  chart.title = fmt::format("Linear interpolation between two copies (instability {:.2f} pp)",
                            result["val_instability"].get<double>() * 100);
  chart.x_label = "alpha (0 = copy a, 1 = copy b)";
  chart.y_label = "Error (%)";
  for (const auto& [key, label, color] : {std::tuple{"val_error", "validation", 0}, std::tuple{"train_error", "training sample", 1}}) {
    report::plot::Series s;
    s.label = label;
    s.color = color;
    s.marker = color;
    for (size_t i = 0; i < result[key].size(); ++i) {
      s.x.push_back(alphas[i].get<double>());
      s.y.push_back(result[key][i].get<double>() * 100);
    }
    if (!s.x.empty()) chart.series.push_back(std::move(s));
  }
  std::vector<fs::path> files;
  std::vector<std::string> notes;
  report::plot::draw_png_and_svg(chart, dir / "lmc", 900, 600, files, notes);
  for (const auto& note : notes) std::fprintf(stderr, "note: %s\n", note.c_str());
}

// What identifies the start: the sums of its weights and its mask counts (not its path: a
// moved run folder is the same start, a different file at the same path is not).
std::string start_fingerprint(const LmcStart& start) {
  double sum = 0, abs_sum = 0;
  int64_t values = 0;
  for (const auto& [name, t] : start.weights.state) {
    const auto x = t.to(torch::kFloat64);
    sum += x.sum().item<double>();
    abs_sum += x.abs().sum().item<double>();
    values += t.numel();
  }
  const auto& masks = start.masks.empty() ? start.weights.masks : start.masks;
  return fmt::format("{} values, sum {:.17g}, |sum| {:.17g}, mask {} of {} kept", values, sum, abs_sum,
                     pruning::count_kept(masks), pruning::count_total(masks));
}

// The settings that define an analysis's result, besides the run config (DIR/config.toml).
json lmc_settings(const Experiment& ex, const LmcStart& start, const LmcOptions& o) {
  return {{"source", start.source},
          {"start", start_fingerprint(start)},
          {"iterations", o.iterations > 0 ? o.iterations : ex.config().cycle_iterations},
          {"schedule", o.constant_lr ? "constant" : "warmup_cosine"},
          {"points", o.points},
          {"bn_batches", o.bn_batches},
          {"train_sample", o.train_sample},
          {"same_data_order", o.same_data_order}};
}

constexpr const char* kSettingsFile = "lmc_settings.json";

// "key: old -> new" for every setting of `stored` that `requested` changes ("source" is
// for people: the start is compared by its fingerprint).
std::vector<std::string> settings_diff(const json& stored, const json& requested) {
  std::vector<std::string> out;
  for (const auto& [key, value] : requested.items()) {
    if (key == "source" || !stored.contains(key) || stored[key] == value) continue;
    out.push_back(key + ": " + stored[key].dump() + " -> " + value.dump());
  }
  if (!out.empty() && stored.contains("source") && stored["source"] != requested["source"])
    out.push_back("source: " + stored["source"].dump() + " -> " + requested["source"].dump());
  return out;
}

// Refuses to continue (or to read back) an analysis in `dir` that was started with other
// settings or another run config, as `lth imp` does for its runs; writes both records for
// a fresh analysis. Every rank reads; rank 0 writes.
void check_settings(const Experiment& ex, const LmcStart& start, const LmcOptions& o, const fs::path& dir) {
  const json requested = lmc_settings(ex, start, o);
  std::vector<std::string> diff;
  const auto settings_path = dir / kSettingsFile;
  if (fs::exists(settings_path)) {
    const auto stored = json::parse(io::read_text_file(settings_path), nullptr, /*allow_exceptions=*/false);
    require(stored.is_object(), settings_path.string() + ": damaged (not a JSON object); use a new --save");
    diff = settings_diff(stored, requested);
  } else if (auto done = completed_lmc(dir)) {
    // Written before lmc_settings.json existed: what lmc.json records must match.
    json old = json::object();
    for (const char* key : {"source", "iterations", "schedule", "points", "same_data_order"})
      if (done->contains(key)) old[key] = (*done)[key];
    diff = settings_diff(old, requested);  // names the source too when anything differs
    if (diff.empty() && old.contains("source") && old["source"] != requested["source"])
      diff.push_back("source: " + old["source"].dump() + " -> " + requested["source"].dump());
  }
  // The run config: the analysis's own record, else its first copy's (older folders).
  for (const auto& file : {dir / "config.toml", dir / kCopies[0] / "config.toml"}) {
    if (!fs::exists(file)) continue;
    ImpConfig stored;
    apply_toml_file(stored, file.string());
    for (const auto& d : conflicts(stored, ex.config())) diff.push_back(d);
    break;
  }
  if (!diff.empty()) {
    std::string list;
    for (const auto& d : diff) list += (list.empty() ? "" : "; ") + d;
    throw UserError(dir.string() + " holds an analysis started with other settings (" + list +
                    "); use a new --save or the original settings");
  }
  ex.comm()->barrier();  // every rank has read the records before rank 0 writes them
  if (!ex.comm()->is_root()) return;
  if (!fs::exists(dir / "config.toml")) io::write_text_atomically(dir / "config.toml", to_toml_string(ex.config()));
  if (!fs::exists(settings_path)) io::write_text_atomically(settings_path, requested.dump(2) + "\n");
}

}  // namespace

double instability(const std::vector<double>& errors) {
  if (errors.size() < 2) throw std::invalid_argument("instability: a path needs at least two points");
  const double ends = (errors.front() + errors.back()) / 2;
  return *std::max_element(errors.begin(), errors.end()) - ends;
}

std::optional<json> completed_lmc(const fs::path& dir) {
  const auto path = dir / "lmc.json";
  if (!fs::exists(path)) return std::nullopt;
  std::ifstream in(path);
  auto j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.value("complete", false)) return std::nullopt;
  return j;
}

json run_lmc(const Experiment& ex, const LmcStart& start, const LmcOptions& o, const fs::path& dir,
             uint64_t key) {
  require(o.points >= 2, "lmc: --points must be at least 2");
  require(o.bn_batches >= 0 && o.train_sample >= 0, "lmc: --bn_batches and --train_sample must be >= 0");
  const bool root = ex.comm()->is_root();
  if (root) fs::create_directories(dir);
  ex.comm()->barrier();
  check_settings(ex, start, o, dir);  // before anything is read back or resumed
  if (auto done = completed_lmc(dir)) return *done;
  const auto copy_a = train_copy(ex, start, o, dir, key, 0);
  if (!copy_a) return {{"complete", false}, {"interrupted", true}};
  const auto copy_b = train_copy(ex, start, o, dir, key, 1);
  if (!copy_b) return {{"complete", false}, {"interrupted", true}};
  const io::Checkpoint& a = *copy_a;
  const io::Checkpoint& b = *copy_b;

  train::RunLog log(dir, root);
  auto net = ex.make_network();
  net->to(ex.device());
  pruning::MaskSet masks = a.masks;
  for (auto& [name, m] : masks) m = m.to(ex.device());
  const auto train_sample =
      o.train_sample > 0 ? ex.training_sample(o.train_sample, fmt::format("lmc-train-sample/{}", key)) : nullptr;
  LmcPath path;
  for (int i = 0; i < o.points; ++i) {
    const double alpha = static_cast<double>(i) / (o.points - 1);
    interpolate(*net, a, b, alpha);
    pruning::apply_masks(*net, masks);
    recompute_batchnorm(ex, *net, o.bn_batches, Rng::keyed(ex.seed(), "lmc-bn", key).next_u64());
    path.alphas.push_back(alpha);
    path.val_error.push_back(error_on(ex, *net, ex.val_set, ex.val_class_subset));
    if (train_sample) path.train_error.push_back(error_on(ex, *net, train_sample, {}));
    log.info(fmt::format("alpha {:.3f}: val error {:.2f}%{}", alpha, 100 * path.val_error.back(),
                         train_sample ? fmt::format("  train error {:.2f}%", 100 * path.train_error.back()) : ""));
  }
  json result = {{"complete", true},
                 {"source", start.source},
                 {"iterations", o.iterations > 0 ? o.iterations : ex.config().cycle_iterations},
                 {"schedule", o.constant_lr ? "constant" : "warmup_cosine"},
                 {"points", o.points},
                 {"bn", o.bn_batches > 0 ? fmt::format("recomputed from {} batches", o.bn_batches) : "interpolated"},
                 {"same_data_order", o.same_data_order},
                 {"selection", ex.selection},
                 {"density", mask_summary(masks)["density"]},
                 {"alphas", path.alphas},
                 {"val_error", path.val_error},
                 {"train_error", path.train_error},
                 {"val_instability", instability(path.val_error)},
                 {"train_instability", path.train_error.empty() ? json(nullptr) : json(instability(path.train_error))}};
  log.info(fmt::format("instability: {:.2f} pp on the validation set{}", 100 * result["val_instability"].get<double>(),
                       path.train_error.empty() ? std::string()
                                                : fmt::format(", {:.2f} pp on the training sample",
                                                              100 * result["train_instability"].get<double>())));
  if (root) {
    write_path_files(dir, result);
    io::write_text_atomically(dir / "lmc.json", result.dump(2) + "\n");
  }
  ex.comm()->barrier();
  return result;
}

json run_rewind_sweep(const Experiment& ex, const fs::path& run, const std::vector<int64_t>& points,
                      const pruning::MaskSet& masks, const LmcOptions& o, const fs::path& out) {
  require(!points.empty(), "lmc: --rewind_points is empty");
  for (const auto p : points) {
    if (fs::exists(run / io::iteration_file(p))) continue;
    std::string have;
    for (const auto& entry : fs::directory_iterator(run)) {
      const auto name = entry.path().filename().string();
      if (name.rfind("iter_", 0) == 0) have += (have.empty() ? "" : " ") + name.substr(5, 6);
    }
    throw UserError((run / io::iteration_file(p)).string() + ": the run saved no checkpoint at iteration " +
                    std::to_string(p) + " (it has: " + (have.empty() ? "none" : have) +
                    "; the rewind phase saves one every train.eval_every iterations)");
  }
  json sweep = {{"run", run.string()}, {"points", json::array()}};
  std::string csv = "rewind_iteration,val_instability,train_instability\n";
  report::plot::DensityChart chart;
  chart.linear_x = true;
  chart.title = "Instability against the rewind point";
  chart.x_label = "Rewind iteration";
  chart.y_label = "Instability (pp of error)";
  report::plot::Series val, train;
  val.label = "validation";
  train.label = "training sample";
  train.color = train.marker = 1;
  for (const auto p : points) {
    LmcStart start;
    start.weights = io::load_checkpoint(run / io::iteration_file(p));
    start.masks = masks;
    start.source = (run / io::iteration_file(p)).string();
    const auto r = run_lmc(ex, start, o, out / fmt::format("rewind_{}", p), static_cast<uint64_t>(p));
    if (r.value("interrupted", false)) return {{"interrupted", true}};
    sweep["points"].push_back({{"rewind_iteration", p}, {"val_instability", r["val_instability"]},
                               {"train_instability", r["train_instability"]}});
    const double vi = r["val_instability"].get<double>();
    csv += fmt::format("{},{:.10g},{}\n", p, vi,
                       r["train_instability"].is_number() ? fmt::format("{:.10g}", r["train_instability"].get<double>()) : "");
    val.x.push_back(static_cast<double>(p));
    val.y.push_back(vi * 100);
    if (r["train_instability"].is_number()) {
      train.x.push_back(static_cast<double>(p));
      train.y.push_back(r["train_instability"].get<double>() * 100);
    }
  }
  if (ex.comm()->is_root()) {
    io::write_text_atomically(out / "sweep.json", sweep.dump(2) + "\n");
    io::write_text_atomically(out / "sweep.csv", csv);
    chart.series.push_back(val);
    if (!train.x.empty()) chart.series.push_back(train);
    std::vector<fs::path> files;
    std::vector<std::string> notes;
    report::plot::draw_png_and_svg(chart, out / "instability_vs_rewind", 900, 600, files, notes);
    for (const auto& note : notes) std::fprintf(stderr, "note: %s\n", note.c_str());
  }
  return sweep;
}

}  // namespace lth::imp
