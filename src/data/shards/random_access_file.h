#pragma once
// A read-only file for positioned reads (pread), safe to share between loader threads.
// RAII: the descriptor closes with the object. Errors are UserErrors naming the file.
#include <cstdint>
#include <filesystem>
#include <string>

namespace lth::data::shards {

class RandomAccessFile {
 public:
  explicit RandomAccessFile(const std::filesystem::path& path);
  ~RandomAccessFile();
  RandomAccessFile(const RandomAccessFile&) = delete;
  RandomAccessFile& operator=(const RandomAccessFile&) = delete;

  // Reads up to `size` bytes at `offset`; returns how many were read (short only at EOF).
  size_t read_at(uint64_t offset, void* out, size_t size) const;
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace lth::data::shards
