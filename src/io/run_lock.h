#pragma once
// One writer per run folder. `lth imp RUN` holds an exclusive flock on RUN/.lth.lock for as
// long as it runs; a second process on the same folder fails at once with a UserError
// naming the holder's pid, instead of interleaving checkpoints and metrics with the first.
// The kernel drops the lock when its holder exits, however it exits, so a crash never
// leaves the folder locked; the file itself stays (harmless, ignored by readers).
#include <filesystem>
#include <string>
#include <vector>

#include "io/file_util.h"

namespace lth::io {

inline constexpr const char* kRunLockFile = ".lth.lock";

class RunFolderLock {
 public:
  // Creates `folder` if needed, takes the lock (or throws UserError), records this pid in
  // the lock file, and removes temporaries that interrupted writes left under `folder`
  // (safe now: no other lth process writes there).
  explicit RunFolderLock(const std::filesystem::path& folder);
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;
  // Releases the lock. If this lock created the folder and nothing was written into it (the
  // run failed before starting), the folder is removed again: a failed start leaves no trace.
  ~RunFolderLock();

  // Temporaries removed when the lock was taken.
  const std::vector<std::filesystem::path>& removed_temporaries() const { return removed_; }

 private:
  std::filesystem::path folder_;
  bool created_ = false;
  UniqueFd fd_;  // closing it releases the lock
  std::vector<std::filesystem::path> removed_;
};

// True when `folder` holds nothing but (possibly) its lock file: a fresh run folder.
bool is_fresh_run_folder(const std::filesystem::path& folder);

}  // namespace lth::io
