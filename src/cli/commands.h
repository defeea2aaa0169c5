#pragma once
// The `lth` subcommands, one file each. Each add_*_command registers its flags on `app`
// and a callback that runs the command; errors reach main() as UserError.
#include <CLI/CLI.hpp>

#include <string>

namespace lth::cli {

void add_train_command(CLI::App& app);
void add_imp_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_make_imagenet_command(CLI::App& app);
void add_make_shards_command(CLI::App& app);
void add_prepare_imagenet_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_launch_command(CLI::App& app);
void add_lmc_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_export_command(CLI::App& app);

// `lth info --ckpt`: what a checkpoint (any format load_checkpoint reads) holds.
void print_checkpoint_info(const std::string& path, bool json);

// Help text of every --threads flag: what 0 means (common/threads.h).
inline constexpr const char* kThreadsHelp =
    "intra-op threads; 0 = this process's share: OMP_NUM_THREADS if set (lth launch sets it to "
    "cores / nproc), else SLURM_CPUS_PER_TASK, else every core this process may run on";

// The reference's boolean spellings: yes/no, true/false, t/f, y/n, 1/0 (any case).
bool parse_bool(const std::string& flag, const std::string& text);

}  // namespace lth::cli
