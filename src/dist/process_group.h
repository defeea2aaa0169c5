#pragma once
// Data parallelism across processes through c10d, PyTorch's own collective layer.
//
// Every rank is one process started with torchrun-style environment variables (`lth launch`
// sets them; torchrun, Slurm wrappers and the like work too):
//   RANK, WORLD_SIZE        this process's rank and the number of ranks (all nodes)
//   LOCAL_RANK              rank within this node (picks the GPU on CUDA builds)
//   MASTER_ADDR, MASTER_PORT  where rank 0 hosts the rendezvous (a c10d TCPStore)
//   LTH_DIST_TIMEOUT        seconds a rendezvous or collective may wait (default 300)
//   GLOO_SOCKET_IFNAME      optional: the network interface(s) Gloo binds, comma-separated
//   LTH_DIST_SHM            1 (default): ranks that all run on one machine sum CPU tensors
//                           through shared memory (dist/shared_memory_group.h); 0: Gloo only
// With WORLD_SIZE absent or 1, make_communicator returns the single-process Communicator.
//
// Backends: ProcessGroupGloo on CPU; when every rank runs on the same machine, sums and
// barriers of CPU tensors go through one shared-memory segment instead (broadcasts and the
// rendezvous stay on Gloo and the TCPStore). On CUDA builds compiled with USE_C10D_NCCL (see
// src/dist/CMakeLists.txt) a CUDA device gets ProcessGroupNCCL; otherwise CUDA tensors are
// staged through host memory and reduced by Gloo (correct, slower). The NCCL path is not
// tested here (Debian's LibTorch is CPU-only).
//
// Failures: a collective or rendezvous that fails or waits longer than the timeout throws
// lth::UserError with one line, "rank R: lost contact with peer during OP (...) (timeout N s)",
// so a rank whose peer died exits with a clear message instead of hanging.
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "dist/communicator.h"

namespace lth::dist {

struct ProcessGroupEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  uint16_t master_port = 29500;
  std::chrono::seconds timeout{300};
  std::string gloo_interfaces;  // GLOO_SOCKET_IFNAME; empty = choose automatically
  bool shared_memory = true;    // LTH_DIST_SHM
};

// Reads the variables above from the environment; UserError naming the variable if one is
// malformed or inconsistent (e.g. RANK >= WORLD_SIZE, or WORLD_SIZE > 1 without MASTER_ADDR).
ProcessGroupEnv read_process_group_env();

// The device a rank should compute on: a CUDA device without an index becomes
// cuda:LOCAL_RANK; anything else is returned unchanged.
torch::Device rank_device(torch::Device requested, const ProcessGroupEnv& env);

// Joins the process group described by `env` (rank 0 hosts the TCPStore) and returns its
// communicator; a single-process Communicator when env.world_size == 1. On CUDA the rank's
// device (rank_device) is made current before the group is built.
CommunicatorPtr make_communicator(const ProcessGroupEnv& env, torch::Device device);

// make_communicator(read_process_group_env(), device).
CommunicatorPtr make_communicator(torch::Device device);

// Rank 0's `value`, on every rank. A collective (every rank must call it), so it is also a
// barrier. For choices one rank makes for all, e.g. a seed drawn when none was configured.
int64_t broadcast_from_root(Communicator& comm, int64_t value);

}  // namespace lth::dist
