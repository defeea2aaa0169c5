#pragma once
// Ranks started by Slurm's `srun` (no `lth launch`): the rank, world size and rendezvous
// read from the variables Slurm sets in every task of a step.
//
//   SLURM_PROCID                   rank
//   SLURM_NTASKS                   world size
//   SLURM_LOCALID                  local rank (the GPU on CUDA builds); absent: the rank
//   MASTER_ADDR                    rendezvous host if set, else the first host of
//                                  SLURM_JOB_NODELIST (else SLURM_STEP_NODELIST)
//   MASTER_PORT                    rendezvous port if set, else slurm_port(SLURM_JOB_ID)
//
// read_process_group_env uses this only when RANK and WORLD_SIZE are both absent: a
// torchrun-style environment (`lth launch` inside a Slurm job, torchrun) always wins.
// Run lth through `srun` inside a batch script; a bare `lth ...` in the batch step sees
// SLURM_NTASKS too and would wait for peers that never start.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lth::dist {

// Expands Slurm's compressed hostlist syntax, as `scontrol show hostnames` does:
// comma-separated entries at the top level; each entry is a host name with zero or more
// bracket groups of comma-separated numbers or ranges, `node[001-004,007]`, whose zero
// padding is kept (the width of the range's first bound); several groups in one entry
// expand to every combination, `r[1-2]n[1-2]` -> r1n1 r1n2 r2n1 r2n2. Hosts may contain
// dashes and dots (`gpu-a[1-2]`). Throws UserError naming `variable` on a malformed list
// (unbalanced or nested brackets, an empty entry or range, a reversed range, more than
// 2^20 hosts).
std::vector<std::string> expand_hostlist(const std::string& hostlist, const std::string& variable);

// The rendezvous port all ranks of a job agree on without talking: 15000 + job_id % 10000,
// so in [15000, 24999] (the convention of PyTorch Lightning's Slurm support). Two `srun`
// steps of one job running at once would collide: give them distinct MASTER_PORTs.
uint16_t slurm_port(uint64_t job_id);

struct SlurmRank {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;
  uint16_t master_port = 0;
};

// The rank described by Slurm's variables, or nullopt when SLURM_PROCID or SLURM_NTASKS is
// absent (not a Slurm task). MASTER_ADDR / MASTER_PORT override the derived rendezvous.
// UserError naming the variable if one is malformed or missing (e.g. no node list and no
// MASTER_ADDR, no SLURM_JOB_ID and no MASTER_PORT).
std::optional<SlurmRank> read_slurm_rank();

}  // namespace lth::dist
