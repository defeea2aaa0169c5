// `lth lmc`: instability analysis (imp/lmc.h). Either one start checkpoint,
//   lth lmc --run RUN --start RUN/003/init.safetensors --save OUT
// or a sweep over the rewind points a run saved,
//   lth lmc --run RUN --rewind_points 0,100,250,500 --save OUT
// The run's config.toml gives data, model and schedule (or --config / the embedded default
// when there is no run); --set overrides any setting. Re-running resumes.
#include <fmt/format.h>

#include <charconv>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "common/error.h"
#include "common/paths.h"
#include "common/threads.h"
#include "dist/process_group.h"
#include "imp/experiment.h"
#include "imp/imp.h"
#include "imp/lmc.h"
#include "io/run_lock.h"
#include "pruning/strategy.h"

namespace lth::cli {
namespace {

namespace fs = std::filesystem;

struct LmcFlags {
  std::string run, config, start, mask, save, rewind_points;
  std::vector<std::string> sets;
  imp::LmcOptions options;
  bool keep_bn = false;
  int threads = -1;
};

std::vector<int64_t> parse_points(const std::string& text) {
  std::vector<int64_t> out;
  std::string item;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i < text.size() && text[i] != ',') {
      if (text[i] != ' ') item += text[i];
      continue;
    }
    if (item.empty()) continue;
    int64_t value = -1;
    const auto [end, err] = std::from_chars(item.data(), item.data() + item.size(), value);
    require(err == std::errc() && end == item.data() + item.size() && value >= 0,
            "--rewind_points: '" + item + "' is not a non-negative iteration");
    out.push_back(value);
    item.clear();
  }
  return out;
}

// An output folder of an earlier analysis may be resumed; anything else is not written into.
void check_output_folder(const fs::path& out) {
  if (!fs::exists(out) || io::is_fresh_run_folder(out)) return;
  for (const auto& entry : fs::directory_iterator(out)) {
    const auto name = entry.path().filename().string();
    if (name == "lmc.json" || name == "lmc_settings.json" || name == "copy_a" || name == "sweep.json" ||
        name.rfind("rewind_", 0) == 0)
      return;
  }
  throw UserError(out.string() + ": exists and holds no lth lmc analysis; refusing to write into it");
}

imp::ImpConfig resolve_config(const LmcFlags& f) {
  imp::ImpConfig config = imp::default_config();
  if (!f.run.empty()) {
    const auto path = fs::path(f.run) / "config.toml";
    require(fs::exists(path), f.run + ": not an lth run folder (no config.toml)");
    config = imp::ImpConfig{};
    imp::apply_toml_file(config, path.string());
    require(config.replicates <= 1,
            f.run + " holds several replicates: give one of them, e.g. --run " +
                (fs::path(f.run) / "replicate_0").string());
  } else if (!f.config.empty()) {
    config = imp::ImpConfig{};
    imp::apply_toml_file(config, f.config);
  }
  for (const auto& s : f.sets) imp::apply_override(config, s);
  if (f.threads >= 0) config.threads = f.threads;
  if (config.seed < 0) config.seed = 0;
  imp::validate(config);
  return config;
}

void run(LmcFlags& f) {
  require(f.start.empty() != f.rewind_points.empty(),
          "lmc: give either --start CKPT or --rewind_points with --run");
  require(f.rewind_points.empty() || !f.run.empty(), "lmc: --rewind_points needs --run RUN");
  f.save = user_folder(f.save).string();
  f.run = user_folder(f.run).string();
  const auto config = resolve_config(f);
  configure_threads(static_cast<int>(config.threads));
  auto comm = dist::make_communicator(imp::resolve_device(config.device));
  // One writer per output folder, as `lth imp`: a second `lth lmc` on it stops here. The
  // settings that define the result are checked against the folder's in imp::run_lmc.
  std::optional<io::RunFolderLock> lock;
  if (comm->is_root()) {
    check_output_folder(f.save);
    lock.emplace(f.save);
  }
  if (f.keep_bn) f.options.bn_batches = 0;
  imp::Experiment ex(config, comm);  // opens the data before anything is written
  pruning::MaskSet masks;
  if (!f.mask.empty()) masks = io::load_checkpoint(f.mask).masks;
  if (!f.start.empty()) {
    imp::LmcStart start;
    start.weights = io::load_checkpoint(f.start);
    start.masks = masks.empty() ? start.weights.masks : masks;
    start.source = f.start;
    const auto r = imp::run_lmc(ex, start, f.options, f.save, 0);
    if (r.value("interrupted", false)) {
      if (comm->is_root()) std::cerr << "stopped early (run.stop_after); re-run the same command to resume\n";
      return;
    }
    if (comm->is_root())
      std::cout << fmt::format("instability {:.2f} pp (validation){}\n", 100 * r["val_instability"].get<double>(),
                               r["train_instability"].is_number()
                                   ? fmt::format(", {:.2f} pp (training sample)", 100 * r["train_instability"].get<double>())
                                   : std::string());
    return;
  }
  const auto sweep = imp::run_rewind_sweep(ex, f.run, parse_points(f.rewind_points), masks, f.options, f.save);
  if (sweep.value("interrupted", false)) {
    if (comm->is_root()) std::cerr << "stopped early (run.stop_after); re-run the same command to resume\n";
    return;
  }
  if (comm->is_root()) {
    std::cout << "| Rewind iteration | Instability (val, pp) | Instability (train, pp) |\n| -: | :-: | :-: |\n";
    for (const auto& p : sweep["points"])
      std::cout << fmt::format("| {} | {:.2f} | {} |\n", p["rewind_iteration"].get<int64_t>(),
                               100 * p["val_instability"].get<double>(),
                               p["train_instability"].is_number()
                                   ? fmt::format("{:.2f}", 100 * p["train_instability"].get<double>())
                                   : std::string("-"));
  }
}

}  // namespace

void add_lmc_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "lmc", "Instability analysis: train two copies, evaluate the linear path between them");
  auto f = std::make_shared<LmcFlags>();
  cmd->add_option("--run", f->run, "run folder whose config (and iter_XXXXXX checkpoints) to use");
  cmd->add_option("--config", f->config, "TOML config when there is no --run (default: the embedded one)");
  cmd->add_option("--set", f->sets, "override a setting, e.g. --set train.lr=0.05 (repeatable)");
  cmd->add_option("--start", f->start, "checkpoint both copies start from (weights and mask)");
  cmd->add_option("--rewind_points", f->rewind_points,
                  "comma-separated iterations of the run's rewind phase, e.g. 0,100,250,500");
  cmd->add_option("--mask", f->mask, "take the mask from this checkpoint (e.g. a ticket's init.safetensors)");
  cmd->add_option("--save", f->save, "output folder; re-running resumes it")->required();
  cmd->add_option("--iterations", f->options.iterations, "iterations per copy (0 = imp.cycle_iterations)")
      ->capture_default_str();
  cmd->add_flag("--constant_lr", f->options.constant_lr, "constant LR instead of the cycle's warm-up + cosine");
  cmd->add_option("--points", f->options.points, "points on the path, both ends included")->capture_default_str();
  cmd->add_option("--bn_batches", f->options.bn_batches, "training batches to recompute BN statistics at each point")
      ->capture_default_str();
  cmd->add_flag("--keep_bn", f->keep_bn, "interpolate BN running statistics instead of recomputing them");
  cmd->add_option("--train_sample", f->options.train_sample, "training images the path is also evaluated on")
      ->capture_default_str();
  cmd->add_flag("--same_order", f->options.same_data_order,
                "both copies see the same data order (isolates nondeterminism)");
  cmd->add_option("--threads", f->threads, kThreadsHelp);
  cmd->callback([f] { run(*f); });
}

}  // namespace lth::cli
