#include "io/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/error.h"

namespace lth::io {

std::string errno_text(int error) {
  std::string text = std::strerror(error);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() { close(); }

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

bool UniqueFd::close() {
  if (fd_ < 0) return true;
  // Linux closes the descriptor even when close() fails, so it is never retried.
  const bool ok = ::close(fd_) == 0;
  fd_ = -1;
  return ok;
}

void FileSink::write(const void* data, size_t size) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UserError(label_ + ": write failed (" + errno_text(errno) + ")");
    bytes += n;
    size -= static_cast<size_t>(n);
  }
}

namespace {

std::filesystem::path folder_of(const std::filesystem::path& path) {
  const auto parent = path.parent_path();
  return parent.empty() ? std::filesystem::path(".") : parent;
}

// Makes the rename itself durable; without it a power cut may forget the new name.
// Filesystems that cannot sync a folder say EINVAL (or refuse to open it read-only with
// EACCES); there the data itself is synced and that is the best available. Any other
// failure (EIO: the disk lost the write) is reported.
void fsync_folder(const std::filesystem::path& folder, const std::string& label) {
  UniqueFd fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == EACCES) return;
    throw UserError(label + ": cannot open its folder to sync it (" + errno_text(errno) + ")");
  }
  if (::fsync(fd.get()) != 0 && errno != EINVAL && errno != EROFS)
    throw UserError(label + ": syncing its folder failed (" + errno_text(errno) + ")");
}

constexpr std::string_view kTemporarySuffix = ".lth-tmp";

// A fresh name in the target's folder (so the rename stays within one filesystem):
// ".<name>.<16 random hex>.lth-tmp". Created with O_EXCL | O_NOFOLLOW, so a file or
// symlink planted under a predictable name can neither be truncated nor written through.
UniqueFd create_temporary(const std::filesystem::path& path, std::filesystem::path* tmp) {
  const std::string label = path.string();
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint64_t random = 0;
    if (::getrandom(&random, sizeof random, 0) != static_cast<ssize_t>(sizeof random))
      random = (static_cast<uint64_t>(::getpid()) << 32) ^ static_cast<uint64_t>(attempt) ^
               reinterpret_cast<uintptr_t>(&random);
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".%016llx", static_cast<unsigned long long>(random));
    *tmp = folder_of(path) /
           ("." + path.filename().string() + suffix + std::string(kTemporarySuffix));
    UniqueFd fd(
        ::open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (fd.valid()) return fd;
    if (errno != EEXIST) throw UserError(label + ": cannot write (" + errno_text(errno) + ")");
  }
  throw UserError(label + ": cannot create a temporary file next to it");
}

// Removes the temporary unless the write got as far as renaming it.
class TemporaryFile {
 public:
  explicit TemporaryFile(std::filesystem::path path) : path_(std::move(path)) {}
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;
  ~TemporaryFile() {
    if (!committed_) ::unlink(path_.c_str());
  }
  void commit() { committed_ = true; }

 private:
  std::filesystem::path path_;
  bool committed_ = false;
};

}  // namespace

void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(FileSink&)>& fill) {
  const std::string label = path.string();
  std::filesystem::path tmp;
  UniqueFd fd = create_temporary(path, &tmp);
  TemporaryFile guard(tmp);
  FileSink sink(fd.get(), label);
  fill(sink);
  if (::fsync(fd.get()) != 0) throw UserError(label + ": fsync failed (" + errno_text(errno) + ")");
  if (!fd.close()) throw UserError(label + ": close failed (" + errno_text(errno) + ")");
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw UserError(label + ": cannot rename the temporary file into place (" + errno_text(errno) +
                    ")");
  guard.commit();
  fsync_folder(folder_of(path), label);
}

std::filesystem::path create_temporary_file(const std::filesystem::path& path) {
  std::filesystem::path tmp;
  UniqueFd fd = create_temporary(path, &tmp);
  if (!fd.close()) {
    ::unlink(tmp.c_str());
    throw UserError(path.string() + ": close failed (" + errno_text(errno) + ")");
  }
  return tmp;
}

bool is_stale_temporary(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  if (name.size() > kTemporarySuffix.size() + 1 && name[0] == '.' &&
      name.compare(name.size() - kTemporarySuffix.size(), kTemporarySuffix.size(),
                   kTemporarySuffix) == 0)
    return true;
  // Older lth versions wrote "<name>.tmp" next to the files below.
  for (const char* legacy : {".safetensors.tmp", ".toml.tmp", ".json.tmp", ".jsonl.tmp"}) {
    const size_t n = std::strlen(legacy);
    if (name.size() > n && name.compare(name.size() - n, n, legacy) == 0) return true;
  }
  return false;
}

std::vector<std::filesystem::path> remove_stale_temporaries(const std::filesystem::path& folder) {
  std::vector<std::filesystem::path> removed;
  std::error_code ec;
  // No symlinks followed: only what really lives under `folder` is touched.
  for (auto it = std::filesystem::recursive_directory_iterator(folder, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec) && !it->is_symlink(type_ec)) continue;
    if (!is_stale_temporary(it->path())) continue;
    if (::unlink(it->path().c_str()) == 0) removed.push_back(it->path());
  }
  return removed;
}

void write_text_atomically(const std::filesystem::path& path, std::string_view text) {
  write_file_atomically(path, [&](FileSink& sink) { sink.write(text); });
}

namespace {

UniqueFd open_for_reading(const std::filesystem::path& path, size_t* size) {
  const std::string label = path.string();
  // O_NONBLOCK: a FIFO under a checkpoint's name is refused below, not waited on.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    const int error = errno;
    if (error == ENOENT) throw UserError(label + ": no such file");
    throw UserError(label + ": cannot open (" + errno_text(error) + ")");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    throw UserError(label + ": cannot stat (" + errno_text(errno) + ")");
  if (S_ISDIR(st.st_mode)) throw UserError(label + ": is a folder, not a file");
  if (!S_ISREG(st.st_mode)) throw UserError(label + ": not a regular file");
  *size = static_cast<size_t>(st.st_size);
  return fd;
}

void read_exactly(int fd, unsigned char* out, size_t size, const std::string& label) {
  while (size > 0) {
    const ssize_t n = ::read(fd, out, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw UserError(label + ": read failed (" + errno_text(errno) + ")");
    if (n == 0) throw UserError(label + ": file shrank while being read");
    out += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

FileBytes read_file_prefix(const std::filesystem::path& path, size_t max_bytes, size_t* file_size) {
  size_t size = 0;
  UniqueFd fd = open_for_reading(path, &size);
  FileBytes bytes;
  bytes.size = std::min(size, max_bytes);
  bytes.data.reset(new unsigned char[bytes.size > 0 ? bytes.size : 1]);
  read_exactly(fd.get(), bytes.data.get(), bytes.size, path.string());
  if (file_size != nullptr) *file_size = size;
  return bytes;
}

FileBytes read_whole_file(const std::filesystem::path& path) {
  return read_file_prefix(path, static_cast<size_t>(-1), nullptr);
}

std::string read_text_file(const std::filesystem::path& path) {
  const FileBytes bytes = read_whole_file(path);
  return std::string(reinterpret_cast<const char*>(bytes.data.get()), bytes.size);
}

}  // namespace lth::io
