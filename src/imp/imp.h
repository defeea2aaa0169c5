#pragma once
// `lth imp`: the whole lottery-ticket experiment in one resumable command.
//   RUN/      rewind phase: dense, constant LR, iter_XXXXXX checkpoints up to the rewind point
//   RUN/000/  cycle 0: dense, rewound to the rewind point, warm-up + cosine
//   RUN/k/    cycle k: prune cycle k-1's best_acc weights, rewind survivors, retrain
//   RUN/branches/<name>/k/   control branches reusing the main line's masks
// Every phase resumes from its last.safetensors; finished phases are skipped, so re-running
// the same command after any interruption continues where it stopped.
#include <filesystem>

#include "dist/communicator.h"
#include "imp/config.h"

namespace lth::imp {

// Checks the run folder and returns the config to run with (writes nothing): a new or empty
// folder gets a drawn seed if none was set; an existing run must hold a config.toml whose
// result-affecting settings equal `requested` (its seed and data root are reused if none
// was given); a replicated run may grow (more run.replicates), never shrink.
// run_imp writes config.toml once the data has been opened successfully.
ImpConfig prepare_run_folder(const std::filesystem::path& run, ImpConfig requested);

// Runs every phase, then writes the report (rank 0). Returns the last cycle done, or -1
// when run.stop_after stopped it early (re-running the same command resumes). With
// run.replicates = N > 1 it runs N complete replicates, RUN/replicate_0 ... replicate_<N-1>,
// one after another (on all ranks), then writes the aggregated report (report/replicates.h).
int run_imp(const std::filesystem::path& run, const ImpConfig& config, dist::CommunicatorPtr comm);

// A seed from the OS random source, the clock and the process id (as the reference).
int64_t draw_seed();

// The seed of replicate r of a run seeded `run_seed` (run.replicates > 1): derived, so the
// whole set of replicates is reproducible from the run's seed alone.
int64_t replicate_seed(int64_t run_seed, int replicate);

}  // namespace lth::imp
