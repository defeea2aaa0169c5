// `lth imp [--config FILE] [--save RUN] [--set section.key=value ...]`: the whole IMP
// experiment, resumable; with no config it runs the embedded Fashion-MNIST default.
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "common/paths.h"
#include "common/threads.h"
#include "dist/process_group.h"
#include "imp/experiment.h"
#include "imp/imp.h"
#include "io/run_lock.h"

namespace lth::cli {

void add_imp_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "imp", "Run (or resume) the whole IMP experiment: rewind phase, cycles, controls, report");
  struct Options {
    std::string config;
    std::string save = "runs/imp-fashion-mnist";
    std::vector<std::string> sets;
    int64_t cycles = -1;
    int64_t seed = -1;
    int64_t replicates = -1;  // -1 = not given (0 is refused by validation, not ignored)
    int64_t holdout = -1;
    int threads = -1;
    std::string branches;
    std::string precision;
    bool deterministic = false;
    bool print_config = false;
  };
  auto opt = std::make_shared<Options>();
  cmd->add_option("--config", opt->config, "TOML config (default: the embedded Fashion-MNIST run)");
  cmd->add_option("--save", opt->save, "run folder; re-running the same command resumes it")
      ->capture_default_str();
  cmd->add_option("--set", opt->sets, "override a setting, e.g. --set train.lr=0.05 (repeatable)");
  cmd->add_option("--cycles", opt->cycles, "pruning cycles after the dense cycle (imp.cycles)");
  cmd->add_option("--seed", opt->seed, "seed (run.seed)");
  cmd->add_option("--replicates", opt->replicates,
                  "independent replicates, each in RUN/replicate_<r> (run.replicates)");
  cmd->add_option("--holdout", opt->holdout,
                  "training images held out to choose best_acc on, 0 = the test split (data.holdout)");
  cmd->add_option("--threads", opt->threads, std::string(kThreadsHelp) + " (run.threads)");
  cmd->add_option("--branches", opt->branches,
                  "control branches, comma-separated: reinit, random_pruning, rewind_init, "
                  "rewind_<N>, lr_rewind, finetune, shuffle_layerwise; pruning at the rewind "
                  "point: snip, grasp, synflow, magnitude_init, or at iteration 0: snip_iter0, "
                  "grasp_iter0, synflow_iter0, magnitude_iter0 (imp.branches)");
  cmd->add_option("--precision", opt->precision, "fp32, bf16 or fp16 (train.precision)");
  cmd->add_flag("--deterministic", opt->deterministic,
                "CUDA: deterministic cuDNN kernels, no autotuning (run.deterministic)");
  cmd->add_flag("--print_config", opt->print_config, "print the resolved config and exit");
  cmd->callback([opt] {
    imp::ImpConfig config = opt->config.empty() ? imp::default_config() : imp::ImpConfig{};
    if (!opt->config.empty()) imp::apply_toml_file(config, opt->config);
    for (const auto& s : opt->sets) imp::apply_override(config, s);
    if (opt->cycles >= 0) config.cycles = opt->cycles;
    if (opt->seed >= 0) config.seed = opt->seed;
    if (opt->replicates >= 0) config.replicates = opt->replicates;
    if (opt->holdout >= 0) config.holdout = opt->holdout;
    if (opt->threads >= 0) config.threads = opt->threads;
    if (!opt->branches.empty()) config.branches = opt->branches;
    if (!opt->precision.empty()) config.precision = opt->precision;
    if (opt->deterministic) config.deterministic = true;
    opt->save = user_folder(opt->save).string();  // "runs/x/" and "./runs/x" are runs/x
    imp::validate(config);
    if (opt->print_config) {
      std::cout << imp::to_toml_string(config);
      return;
    }
    configure_threads(static_cast<int>(config.threads));
    // Under `lth launch` / torchrun this joins the process group; alone it is a no-op.
    auto comm = dist::make_communicator(imp::resolve_device(config.device));
    // One writer per run folder: a second `lth imp` on it stops here, before reading it.
    std::optional<io::RunFolderLock> lock;
    if (comm->is_root()) lock.emplace(opt->save);
    config = imp::prepare_run_folder(opt->save, config);
    config.seed = dist::broadcast_from_root(*comm, config.seed);  // every rank: rank 0's seed
    imp::run_imp(opt->save, config, comm);
  });
}

}  // namespace lth::cli
