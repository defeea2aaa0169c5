#pragma once
// Names inside a run folder (docs/ARCHITECTURE.md), in one place.
#include <fmt/format.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace lth::io {

// "iter_016000.safetensors": a periodic checkpoint of the rewind phase.
inline std::string iteration_file(int64_t iteration) {
  return fmt::format("iter_{:06d}.safetensors", iteration);
}
// RUN/003: the folder of IMP cycle 3.
inline std::filesystem::path cycle_dir(const std::filesystem::path& run, int cycle) {
  return run / fmt::format("{:03d}", cycle);
}
// RUN/branches/<name>/003: cycle 3 of a control branch.
inline std::filesystem::path branch_cycle_dir(const std::filesystem::path& run,
                                              const std::string& branch, int cycle) {
  return cycle_dir(run / "branches" / branch, cycle);
}

// RUN/replicate_2: replicate 2 of a run of several (run.replicates > 1), itself a run folder.
inline std::filesystem::path replicate_dir(const std::filesystem::path& run, int replicate) {
  return run / fmt::format("replicate_{}", replicate);
}
inline constexpr const char* kReplicatePrefix = "replicate_";

}  // namespace lth::io
