// `lth launch --nproc N [--nnodes M --node_rank K --master_addr A --master_port P] -- CMD...`:
// starts N ranks of CMD on this node with torchrun-style environment variables and
// supervises them (see dist/launcher.h). Several nodes: run it once per node, with the same
// --nnodes, --master_addr and --master_port, and each node's own --node_rank.
#include <filesystem>

#include "cli/commands.h"
#include "dist/launcher.h"

namespace lth::cli {

void add_launch_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "launch", "Start N data-parallel ranks of a command on this node (torchrun-style env vars)");
  auto opt = std::make_shared<dist::LaunchOptions>();
  cmd->add_option("--nproc", opt->nproc, "ranks on this node (one per GPU)")->required();
  cmd->add_option("--nnodes", opt->nnodes, "number of nodes")->capture_default_str();
  cmd->add_option("--node_rank", opt->node_rank, "this node's index, 0 .. nnodes-1")->capture_default_str();
  cmd->add_option("--master_addr", opt->master_addr, "address of node 0, where rank 0 hosts the rendezvous")
      ->capture_default_str();
  cmd->add_option("--master_port", opt->master_port, "free TCP port on node 0 for the rendezvous")
      ->capture_default_str();
  cmd->add_option("--grace_period", opt->grace_seconds,
                  "seconds between SIGTERM and SIGKILL when stopping ranks")
      ->capture_default_str();
  cmd->add_option("command", opt->command, "the command every rank runs, after --, e.g. -- lth imp ...")
      ->required();
  cmd->footer(
      "Each rank gets RANK = node_rank*nproc + local, WORLD_SIZE = nproc*nnodes, LOCAL_RANK,\n"
      "LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR and MASTER_PORT, and OMP_NUM_THREADS =\n"
      "max(1, cores / nproc) unless already set (lth's --threads 0 then means that share).\n"
      "If a rank fails, the others are stopped and launch exits non-zero naming it;\n"
      "SIGINT/SIGTERM are forwarded to all.\n"
      "Several nodes: run launch once per node with the same --nnodes/--master_addr/--master_port\n"
      "and that node's --node_rank. Example: lth launch --nproc 8 -- lth imp --config C --save RUN");
  cmd->callback([opt] {
    // "-- lth imp ..." means this lth: the ranks run the launcher's own binary, so a build
    // that is not on PATH (build/lth) launches as it is, and never another installed lth.
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!opt->command.empty() && opt->command.front() == "lth" && !ec) opt->command.front() = self.string();
    dist::launch(*opt);
  });
}

}  // namespace lth::cli
