#include "io/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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
void fsync_folder(const std::filesystem::path& folder) {
  UniqueFd fd(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return;  // some filesystems refuse to open folders; the data is synced
  ::fsync(fd.get());
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
  const std::filesystem::path tmp = path.string() + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) throw UserError(label + ": cannot write (" + errno_text(errno) + ")");
  TemporaryFile guard(tmp);
  FileSink sink(fd.get(), label);
  fill(sink);
  if (::fsync(fd.get()) != 0) throw UserError(label + ": fsync failed (" + errno_text(errno) + ")");
  if (!fd.close()) throw UserError(label + ": close failed (" + errno_text(errno) + ")");
  if (::rename(tmp.c_str(), path.c_str()) != 0)
    throw UserError(label + ": cannot rename the temporary file into place (" + errno_text(errno) +
                    ")");
  guard.commit();
  fsync_folder(folder_of(path));
}

void write_text_atomically(const std::filesystem::path& path, std::string_view text) {
  write_file_atomically(path, [&](FileSink& sink) { sink.write(text); });
}

namespace {

UniqueFd open_for_reading(const std::filesystem::path& path, size_t* size) {
  const std::string label = path.string();
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int error = errno;
    if (error == ENOENT) throw UserError(label + ": no such file");
    throw UserError(label + ": cannot open (" + errno_text(error) + ")");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    throw UserError(label + ": cannot stat (" + errno_text(errno) + ")");
  if (S_ISDIR(st.st_mode)) throw UserError(label + ": is a folder, not a file");
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
