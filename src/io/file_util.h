#pragma once
// File plumbing shared by lth (io, imp, train): an owning file descriptor,
// whole-file reads, and the write-to-temporary-then-rename protocol that keeps every file
// lth writes either old or new, never torn.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lth::io {

// Owns a POSIX file descriptor; closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  // Closes now and reports failure (close can surface deferred write errors).
  bool close();

 private:
  int fd_ = -1;
};

// Sink handed to an atomic writer: writes every byte or throws UserError naming the file.
class FileSink {
 public:
  FileSink(int fd, std::string label) : fd_(fd), label_(std::move(label)) {}
  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }

 private:
  int fd_;
  std::string label_;
};

// Writes `path` atomically: fills a fresh temporary in the same folder,
// ".<name>.<random>.lth-tmp", created exclusively without following symlinks, through
// `fill`; fsyncs it, renames it over `path` and fsyncs the folder. On any failure
// (including a full disk) the temporary is removed, `path` is left as it was, and
// UserError names the file.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(FileSink&)>& fill);
void write_text_atomically(const std::filesystem::path& path, std::string_view text);

// Creates an empty temporary next to `path`, named and created as write_file_atomically's
// (exclusively, without following symlinks), for writers that must open the file by name
// themselves (PLplot). The caller renames it into place or removes it.
std::filesystem::path create_temporary_file(const std::filesystem::path& path);

// Whether `path` is a temporary an interrupted atomic write left behind (this version's
// ".<name>.<random>.lth-tmp" or an older version's "<name>.safetensors.tmp" and the like).
bool is_stale_temporary(const std::filesystem::path& path);
// Removes such temporaries anywhere under `folder` (symlinks are not followed); returns
// what it removed. Only call it while holding the folder's RunFolderLock.
std::vector<std::filesystem::path> remove_stale_temporaries(const std::filesystem::path& folder);

// The whole file in one buffer (no zero-fill of the buffer first: checkpoints are large).
struct FileBytes {
  std::unique_ptr<unsigned char[]> data;
  size_t size = 0;
};
FileBytes read_whole_file(const std::filesystem::path& path);
// The first min(max_bytes, size) bytes of a file, and its full size.
FileBytes read_file_prefix(const std::filesystem::path& path, size_t max_bytes, size_t* file_size);
std::string read_text_file(const std::filesystem::path& path);

// "open" failure text for `path`: "no such file", "permission denied", ...
std::string errno_text(int error);

}  // namespace lth::io
