#include "io/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/error.h"

namespace lth::io {

RunFolderLock::RunFolderLock(const std::filesystem::path& folder) : folder_(folder) {
  const std::string label = folder.string();
  std::error_code ec;
  created_ = std::filesystem::create_directories(folder, ec);
  if (ec) throw UserError(label + ": cannot create the run folder (" + ec.message() + ")");
  const auto path = folder / kRunLockFile;
  fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd_.valid())
    throw UserError(path.string() + ": cannot open the run folder's lock file (" +
                    errno_text(errno) + ")");
  if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error != EWOULDBLOCK)
      throw UserError(path.string() + ": cannot lock (" + errno_text(error) + ")");
    char text[32] = {};
    const ssize_t n = ::pread(fd_.get(), text, sizeof text - 1, 0);
    std::string pid = n > 0 ? std::string(text, static_cast<size_t>(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) pid = "unknown";
    throw UserError(label + ": in use by another lth process (pid " + pid +
                    "); wait for it to finish or stop it first");
  }
  // The holder's pid, for the message above. Written after locking, so only the holder
  // ever writes it.
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_.get(), 0) != 0 ||
      ::pwrite(fd_.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
    throw UserError(path.string() + ": cannot record the lock holder (" + errno_text(errno) + ")");
  removed_ = remove_stale_temporaries(folder);
}

RunFolderLock::~RunFolderLock() {
  if (!created_ || !fd_.valid() || !is_fresh_run_folder(folder_)) return;
  ::unlink((folder_ / kRunLockFile).c_str());
  ::rmdir(folder_.c_str());
}

bool is_fresh_run_folder(const std::filesystem::path& folder) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec))
    if (entry.path().filename() != kRunLockFile) return false;
  return true;
}

}  // namespace lth::io
