#include "imp/imp.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>

#include "common/error.h"
#include "io/file_util.h"
#include "common/rng.h"
#include "imp/branches.h"
#include "imp/cycle.h"
#include "imp/lmc.h"
#include "report/report.h"
#include "io/run_layout.h"
#include "io/run_lock.h"
#include "pruning/strategy.h"

namespace lth::imp {
namespace {

namespace fs = std::filesystem;

fs::path rewind_file(const fs::path& run, int64_t iteration) {
  return run / io::iteration_file(iteration);
}

// The rewind phase: dense training at constant LR, saving iter_XXXXXX along the way.
// Returns false when stopped early by run.stop_after.
bool run_rewind_phase(const Experiment& ex, const fs::path& run) {
  const auto& c = ex.config();
  const bool root = ex.comm()->is_root();
  auto save_initial = [&](models::Network& net, pruning::MaskSet& masks) {
    if (!root) return;
    io::Checkpoint ckpt;
    ckpt.state = pruning::snapshot_state(net);
    ckpt.masks = masks;
    ckpt.config = ex.config_json();
    io::save_checkpoint(rewind_file(run, 0), ckpt);
  };
  if (c.rewind_iterations == 0) {
    if (!fs::exists(rewind_file(run, 0))) {
      auto net = ex.make_network();
      auto masks = pruning::dense_masks(*net, pruning::parse_prunable_set(c.prunable));
      save_initial(*net, masks);
    }
    ex.comm()->barrier();  // the other ranks read the file rank 0 just wrote
    return true;
  }
  CyclePlan plan;
  plan.dir = run;
  plan.cycle = -1;
  plan.iterations = c.rewind_iterations;
  plan.constant_lr = true;
  plan.periodic_ckpt = true;
  plan.test_at_end = false;
  plan.data_key = 1000000;  // distinct from every cycle's data order
  plan.prepare = save_initial;
  if (run_cycle(ex, plan).value("interrupted", false)) return false;
  require(fs::exists(rewind_file(run, c.rewind_iterations)),
          rewind_file(run, c.rewind_iterations).string() + ": the rewind phase did not produce it");
  return true;
}

CyclePlan main_cycle_plan(const Experiment& ex, const fs::path& run, int k) {
  const auto& c = ex.config();
  CyclePlan plan;
  plan.dir = io::cycle_dir(run, k);
  plan.cycle = k;
  plan.iterations = c.cycle_iterations;
  plan.data_key = static_cast<uint64_t>(k);
  plan.prepare = [&ex, run, k](models::Network& net, pruning::MaskSet& masks) {
    const auto& c = ex.config();
    if (k > 0) {
      const auto prev_path = io::cycle_dir(run, k - 1) / "best_acc.safetensors";
      require(fs::exists(prev_path), prev_path.string() +
                                         ": missing (the previous cycle diverged or was removed)");
      const auto prev = io::load_checkpoint(prev_path);
      const auto seed = Rng::keyed(ex.seed(), "prune", static_cast<uint64_t>(k)).next_u64();
      masks = pruning::prune(c.strategy, {prev.state, prev.masks, c.pruning_ratio, seed});
    }
    const auto rewind_path = rewind_file(run, c.rewind_iterations);
    load_parameters(net, io::load_checkpoint(rewind_path), rewind_path.string());
  };
  return plan;
}

CyclePlan branch_cycle_plan(const Experiment& ex, const fs::path& run, const std::string& branch, int k) {
  CyclePlan plan = main_cycle_plan(ex, run, k);
  plan.dir = io::branch_cycle_dir(run, branch, k);
  const auto schedule = branch_schedule(branch);
  plan.constant_lr = schedule.constant_lr;
  plan.lr_scale = schedule.lr_scale;
  plan.prepare = [&ex, run, branch, k](models::Network& net, pruning::MaskSet& masks) {
    const auto start = branch_start(branch, BranchContext{ex, run, k});
    masks = start.masks;
    load_parameters(net, start.weights, "branch start");
  };
  return plan;
}

}  // namespace

int64_t draw_seed() {
  std::random_device device;
  const auto now = std::chrono::high_resolution_clock::now().time_since_epoch().count();
  const uint64_t mixed = mix64(device() ^ (static_cast<uint64_t>(device()) << 32) ^
                               static_cast<uint64_t>(now) ^ (static_cast<uint64_t>(::getpid()) << 16));
  return static_cast<int64_t>(mixed >> 33);  // positive and readable in a TOML file
}

ImpConfig prepare_run_folder(const fs::path& run, ImpConfig requested) {
  const auto config_path = run / "config.toml";
  if (fs::exists(config_path)) {
    ImpConfig stored;
    apply_toml_file(stored, config_path.string());
    if (requested.seed < 0) requested.seed = stored.seed;
    // Resuming without the data root (`lth launch ... -- lth imp --config C --save RUN`, as
    // the README shows) reads the data the run was started on.
    if (requested.data_root.empty()) requested.data_root = stored.data_root;
    require((stored.replicates > 1) == (requested.replicates > 1),
            run.string() + " was started with run.replicates = " + std::to_string(stored.replicates) +
                ", a different folder layout than run.replicates = " +
                std::to_string(requested.replicates) + "; use a new folder");
    // More replicates extend a run (run_imp rewrites config.toml to say so); fewer would
    // leave some out of its report while config.toml still counts them.
    require(requested.replicates >= stored.replicates,
            run.string() + " holds run.replicates = " + std::to_string(stored.replicates) +
                "; run.replicates = " + std::to_string(requested.replicates) +
                " would leave replicates out of its results (give " + std::to_string(stored.replicates) +
                " or more)");
    const auto diff = conflicts(stored, requested);
    if (!diff.empty()) {
      std::string list;
      for (const auto& d : diff) list += (list.empty() ? "" : "; ") + d;
      throw UserError(run.string() + " was started with a different config (" + list +
                      "); use a new folder or the original settings");
    }
    return requested;
  }
  require(!fs::exists(run) || io::is_fresh_run_folder(run),
          run.string() + ": exists and is not an lth run folder (no config.toml); refusing to write into it");
  if (requested.seed < 0) requested.seed = draw_seed();
  return requested;
}

namespace {

// One complete run in `run` (rewind phase, cycles, branches, report); returns as run_imp.
// `data_opened` runs (on every rank) once the data has been opened, before anything is
// written: a replicated run writes its own config.toml there.
int run_one(const fs::path& run, const ImpConfig& config, dist::CommunicatorPtr comm,
            bool print_report, const std::function<void()>& data_opened) {
  const auto branches = parse_branch_list(config.branches);
  Experiment ex(config, std::move(comm));  // opens the data first: a bad path fails before any write
  // Said while nothing is written yet: the run folder a refused `lth imp` made for its lock is
  // removed again (io::RunFolderLock). (`lth train` says it itself, before its folder exists.)
  require(ex.train_set->size() >= config.batch_size,
          fmt::format("dataset {} has {} training samples{}, fewer than one batch of {} (lower train.batch_size)",
                      ex.train_set->describe(), ex.train_set->size(),
                      config.holdout > 0 ? " after the hold-out" : "", config.batch_size));
  if (data_opened) data_opened();
  if (ex.comm()->is_root() && !fs::exists(run / "config.toml")) {
    fs::create_directories(run);
    io::write_text_atomically(run / "config.toml", to_toml_string(config));
  }
  if (ex.comm()->is_root()) {
    for (const auto& absent : ex.absent_test_sets) std::cerr << "test set skipped: " << absent << " not found\n";
  }
  const auto stopped = [&ex, &run] {
    if (ex.comm()->is_root()) std::cerr << "stopped early (run.stop_after); re-run the same command to resume " << run.string() << "\n";
    return -1;
  };
  if (!run_rewind_phase(ex, run)) return stopped();
  int last_cycle = 0;
  for (int k = 0; k <= config.cycles; ++k) {
    const auto summary = run_cycle(ex, main_cycle_plan(ex, run, k));
    if (summary.value("interrupted", false)) return stopped();
    last_cycle = k;
    if (summary.value("diverged", false) && !fs::exists(io::cycle_dir(run, k) / "best_acc.safetensors")) {
      throw UserError(io::cycle_dir(run, k).string() + ": training diverged (NaN loss) before any evaluation");
    }
    if (config.target_density > 0 && summary["density"].get<double>() <= config.target_density) break;
  }
  for (const auto& branch : branches) {
    if (branch == kStabilityBranch) {  // not a training line: each ticket's instability
      for (int k = 0; k <= last_cycle; ++k) {
        LmcStart start;
        start.source = (io::cycle_dir(run, k) / "init.safetensors").string();
        start.weights = io::load_checkpoint(start.source);
        start.masks = start.weights.masks;
        LmcOptions options;
        options.points = static_cast<int>(config.lmc_points);
        options.bn_batches = config.lmc_bn_batches;
        options.train_sample = config.lmc_train_sample;
        const auto r = run_lmc(ex, start, options, io::branch_cycle_dir(run, branch, k),
                               static_cast<uint64_t>(k) + 1);
        if (r.value("interrupted", false)) return stopped();
      }
      continue;
    }
    for (int k = 1; k <= last_cycle; ++k) {
      if (run_cycle(ex, branch_cycle_plan(ex, run, branch, k)).value("interrupted", false)) return stopped();
    }
  }
  if (ex.comm()->is_root()) {
    const auto report = report::write_report(run);
    if (print_report) std::cout << report.tables;
    for (const auto& note : report.results.notes) std::cerr << "note: " << note << "\n";
  }
  return last_cycle;
}

}  // namespace

int64_t replicate_seed(int64_t run_seed, int replicate) {
  // Positive and readable in a TOML file, like a drawn seed.
  return static_cast<int64_t>(
      Rng::keyed(static_cast<uint64_t>(run_seed), "replicate", static_cast<uint64_t>(replicate)).next_u64() >> 1);
}

int run_imp(const fs::path& run, const ImpConfig& config, dist::CommunicatorPtr comm) {
  validate(config);
  if (!comm) comm = std::make_shared<dist::Communicator>();
  if (config.replicates <= 1) return run_one(run, config, comm, /*print_report=*/true, nullptr);
  // Several replicates, one after another on all ranks, each a complete run folder.
  // config.toml follows what the run holds: written once the data opened, and rewritten
  // when the run grows by replicates (prepare_run_folder refused shrinking it).
  const auto write_run_config = [&] {
    if (!comm->is_root()) return;
    if (fs::exists(run / "config.toml")) {
      ImpConfig stored;
      apply_toml_file(stored, (run / "config.toml").string());
      if (stored.replicates == config.replicates) return;
    }
    fs::create_directories(run);
    io::write_text_atomically(run / "config.toml", to_toml_string(config));
  };
  int last_cycle = 0;
  for (int r = 0; r < config.replicates; ++r) {
    ImpConfig replicate = config;
    replicate.replicates = 1;
    replicate.seed = replicate_seed(config.seed, r);
    const auto dir = io::replicate_dir(run, r);
    replicate = prepare_run_folder(dir, replicate);  // a resumed replicate must match its config
    comm->barrier();  // every rank has checked the folder before rank 0 writes into it
    if (comm->is_root()) std::cerr << "replicate " << r << " of " << config.replicates << ": " << dir.string() << "\n";
    last_cycle = run_one(dir, replicate, comm, /*print_report=*/false, write_run_config);
    if (last_cycle < 0) return -1;  // stopped early (run.stop_after); re-running resumes
  }
  if (comm->is_root()) {
    const auto report = report::write_report(run);
    std::cout << report.tables;
    for (const auto& note : report.results.notes) std::cerr << "note: " << note << "\n";
  }
  return last_cycle;
}

}  // namespace lth::imp
