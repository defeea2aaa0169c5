#pragma once
// TFRecord files: a sequence of records, each
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes |
//   `length` data bytes           | uint32 masked CRC-32C of the data
// (TensorFlow's record_writer.cc framing, also TensorBoard's event files).
//
// scan_tfrecord reads only the 12-byte headers and checks the length CRC, so indexing a
// 140 GB ImageNet costs one small read per record; read_record checks the data CRC when the
// record is used. A file whose framing breaks (bad length CRC, truncated record) keeps the
// records before the break; ScanResult::problem says where and why.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "data/shards/random_access_file.h"

namespace lth::data::shards {

// A damaged record or file (CRC mismatch, truncation); the message names file and offset.
class RecordError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RecordSpan {
  uint64_t offset = 0;  // of the data bytes
  uint64_t length = 0;
};

struct ScanResult {
  std::vector<RecordSpan> records;  // the intact framing before any problem
  std::string problem;              // empty when the whole file is well framed
};

ScanResult scan_tfrecord(const RandomAccessFile& file);
// The record's data, data CRC checked; RecordError on mismatch or a short read.
std::string read_record(const RandomAccessFile& file, const RecordSpan& span);
// Every record of a file, in order; RecordError at the first problem (tools and tests).
std::vector<std::string> read_all_records(const std::filesystem::path& path);

// Appends framed records; written to `path` directly (callers that need atomicity write a
// temporary name and rename). Flushes on close() and in the destructor.
class TFRecordWriter {
 public:
  explicit TFRecordWriter(const std::filesystem::path& path, bool append = false);
  void write(std::string_view record);
  void flush();
  void close();
  uint64_t bytes_written() const { return bytes_; }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
  uint64_t bytes_ = 0;
};

// The framing of one record, for writers that assemble files in memory.
std::string frame_record(std::string_view record);

}  // namespace lth::data::shards
