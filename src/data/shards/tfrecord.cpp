#include "data/shards/tfrecord.h"

#include "common/error.h"
#include "data/shards/crc32c.h"

namespace lth::data::shards {
namespace {

uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::string where(const RandomAccessFile& file, uint64_t offset) {
  return file.path().string() + " at byte " + std::to_string(offset);
}

}  // namespace

ScanResult scan_tfrecord(const RandomAccessFile& file) {
  ScanResult result;
  const uint64_t size = file.size();
  uint64_t pos = 0;
  uint8_t header[12];
  while (pos < size) {
    if (size - pos < 12 || file.read_at(pos, header, 12) != 12) {
      result.problem = "truncated record header at " + where(file, pos);
      break;
    }
    if (mask_crc(crc32c(header, 8)) != le32(header + 8)) {
      result.problem = "bad length CRC at " + where(file, pos);
      break;
    }
    const uint64_t length = le64(header);
    if (length > size - pos - 12 || size - pos - 12 - length < 4) {
      result.problem = "truncated record (" + std::to_string(length) + " bytes announced) at " +
                       where(file, pos);
      break;
    }
    result.records.push_back(RecordSpan{pos + 12, length});
    pos += 12 + length + 4;
  }
  return result;
}

std::string read_record(const RandomAccessFile& file, const RecordSpan& span) {
  std::string data(span.length + 4, '\0');
  if (file.read_at(span.offset, data.data(), data.size()) != data.size()) {
    throw RecordError("truncated record at " + where(file, span.offset - 12));
  }
  const uint32_t stored = le32(reinterpret_cast<const uint8_t*>(data.data()) + span.length);
  data.resize(span.length);
  if (masked_crc32c(data.data(), data.size()) != stored) {
    throw RecordError("bad data CRC in record at " + where(file, span.offset - 12));
  }
  return data;
}

std::vector<std::string> read_all_records(const std::filesystem::path& path) {
  const RandomAccessFile file(path);
  const auto scan = scan_tfrecord(file);
  if (!scan.problem.empty()) throw RecordError(scan.problem);
  std::vector<std::string> out;
  out.reserve(scan.records.size());
  for (const auto& span : scan.records) out.push_back(read_record(file, span));
  return out;
}

std::string frame_record(std::string_view record) {
  std::string out;
  out.reserve(record.size() + 16);
  put_le(out, record.size(), 8);
  put_le(out, mask_crc(crc32c(out.data(), 8)), 4);
  out.append(record.data(), record.size());
  put_le(out, masked_crc32c(record.data(), record.size()), 4);
  return out;
}

TFRecordWriter::TFRecordWriter(const std::filesystem::path& path, bool append)
    : path_(path),
      out_(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc)) {
  require(static_cast<bool>(out_), path.string() + ": cannot open for writing");
}

void TFRecordWriter::write(std::string_view record) {
  const std::string framed = frame_record(record);
  out_.write(framed.data(), static_cast<std::streamsize>(framed.size()));
  require(static_cast<bool>(out_), path_.string() + ": write failed");
  bytes_ += framed.size();
}

void TFRecordWriter::flush() {
  out_.flush();
  require(static_cast<bool>(out_), path_.string() + ": write failed");
}

void TFRecordWriter::close() {
  if (out_.is_open()) {
    flush();
    out_.close();
  }
}

}  // namespace lth::data::shards
