#pragma once
// Intra-op thread count. LibTorch on this class of machine defaults to 1 thread when
// OMP_NUM_THREADS is unset, so lth always sets it explicitly (flag --threads, 0 = default).
//
// The default ("0") is per process, so that ranks sharing a machine do not each take every
// core (2 ranks x 2 threads on 2 cores ran ~20x slower than 1 process, issue 11):
//   OMP_NUM_THREADS        if set: `lth launch` sets it to max(1, cores / nproc) unless the
//                          user did, as torchrun sets it (torchrun's value is 1)
//   SLURM_CPUS_PER_TASK    else, in a Slurm task: the cores Slurm gave the task
//   hardware_threads()     else: every core this process may run on
namespace lth {

// Cores this process may run on: its CPU affinity mask (sched_getaffinity), which taskset,
// cgroup cpusets and Slurm's task binding narrow; at least 1.
int hardware_threads();
// The thread count "0" stands for (above). UserError naming the variable if
// OMP_NUM_THREADS or SLURM_CPUS_PER_TASK is malformed.
int default_threads();
// Sets LibTorch's intra-op threads to `requested` (0 = default_threads()); returns the count set.
int configure_threads(int requested);

}  // namespace lth
