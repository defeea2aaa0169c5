#pragma once
// `lth launch`: starts the ranks of one node, torchrun-style.
//
// Each of the `nproc` children runs `command` with
//   RANK = node_rank * nproc + local,  WORLD_SIZE = nproc * nnodes,  LOCAL_RANK = local,
//   LOCAL_WORLD_SIZE = nproc,  GROUP_RANK = node_rank,  MASTER_ADDR,  MASTER_PORT
// added to the launcher's environment, and OMP_NUM_THREADS = max(1, cores / nproc) unless
// the launcher's environment sets it (cores: the launcher's CPU affinity mask; lth's
// `--threads 0` default reads it, see common/threads.h). Several nodes: run the launcher once per node with
// the same nnodes / master_addr / master_port and that node's node_rank.
//
// Supervision:
//  - every child is the leader of its own process group, so signals reach the whole tree
//    it starts; a child also gets SIGTERM if the launcher dies (PR_SET_PDEATHSIG);
//  - SIGINT / SIGTERM / SIGHUP / SIGQUIT sent to the launcher are forwarded to every
//    child; a second one, or the grace period running out, sends SIGKILL;
//  - when a child exits with a non-zero status or is killed, the others get SIGTERM, then
//    SIGKILL after the grace period, and launch() throws UserError naming that rank.
#include <string>
#include <vector>

namespace lth::dist {

struct LaunchOptions {
  int nproc = 1;                // ranks on this node
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double grace_seconds = 10;    // SIGTERM -> SIGKILL delay when stopping ranks
  std::vector<std::string> command;  // program (searched on PATH) and its arguments
};

// Runs the node's ranks to completion. Returns normally when every rank exited with status
// 0; otherwise throws UserError (after every child has been reaped) naming the first rank
// that failed and how, or the signal that interrupted the launcher.
void launch(const LaunchOptions& options);

}  // namespace lth::dist
