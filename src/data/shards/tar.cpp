#include "data/shards/tar.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/error.h"

namespace lth::data::shards {
namespace {

constexpr uint64_t kBlock = 512;

uint64_t round_up(uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

// A NUL- or space-terminated octal field, or GNU base-256 (high bit of the first byte set).
bool parse_number(const uint8_t* field, size_t width, uint64_t& out) {
  out = 0;
  if (field[0] & 0x80) {
    if (field[0] != 0x80) return false;  // negative or absurdly large: refuse
    for (size_t i = 1; i < width; ++i) {
      if (out >> 56) return false;
      out = (out << 8) | field[i];
    }
    return true;
  }
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  bool any = false;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (out >> 60) return false;
    out = out * 8 + static_cast<uint64_t>(field[i] - '0');
    any = true;
  }
  for (; i < width; ++i) {
    if (field[i] != 0 && field[i] != ' ') return false;
  }
  return any || field[0] == 0 || field[0] == ' ';
}

std::string field_string(const uint8_t* field, size_t width) {
  size_t n = 0;
  while (n < width && field[n] != 0) ++n;
  return std::string(reinterpret_cast<const char*>(field), n);
}

bool all_zero(const uint8_t* block) {
  for (uint64_t i = 0; i < kBlock; ++i) {
    if (block[i] != 0) return false;
  }
  return true;
}

bool checksum_ok(const uint8_t* h) {
  uint64_t stored = 0;
  if (!parse_number(h + 148, 8, stored)) return false;
  uint64_t sum = 0;
  for (uint64_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
  return sum == stored;
}

// pax records: "<len> <key>=<value>\n" ...; returns false on a malformed record.
bool parse_pax(std::string_view data, std::string& path, uint64_t& size, bool& has_size) {
  while (!data.empty()) {
    const auto space = data.find(' ');
    if (space == std::string_view::npos || space == 0 || space > 20) return false;
    uint64_t len = 0;
    for (size_t i = 0; i < space; ++i) {
      if (data[i] < '0' || data[i] > '9') return false;
      len = len * 10 + static_cast<uint64_t>(data[i] - '0');
    }
    if (len <= space + 1 || len > data.size() || data[len - 1] != '\n') return false;
    const std::string_view record = data.substr(space + 1, len - space - 2);
    const auto eq = record.find('=');
    if (eq == std::string_view::npos) return false;
    const auto key = record.substr(0, eq);
    const auto value = record.substr(eq + 1);
    if (key == "path") path = std::string(value);
    if (key == "size") {
      uint64_t s = 0;
      if (value.empty() || value.size() > 19) return false;
      for (char c : value) {
        if (c < '0' || c > '9') return false;
        s = s * 10 + static_cast<uint64_t>(c - '0');
      }
      size = s;
      has_size = true;
    }
    data.remove_prefix(len);
  }
  return true;
}

// The scan over bytes [begin, end) of a source read with read_at(offset, out, size) -> count.
template <typename ReadAt>
TarScan scan_range(const ReadAt& read_at, uint64_t begin, uint64_t file_size,
                   const std::string& name_of_file) {
  TarScan scan;
  const auto fail = [&](uint64_t at, const std::string& why) {
    scan.problem = name_of_file + " at byte " + std::to_string(at) + ": " + why;
  };
  uint64_t pos = begin;
  std::string next_name;   // from a GNU 'L' or pax 'x' record, for the following member
  uint64_t next_size = 0;
  bool has_next_size = false;
  uint8_t h[kBlock];
  constexpr uint64_t kMaxMetadata = 1 << 20;  // long names / pax headers larger than 1 MiB: hostile
  while (pos < file_size) {
    if (file_size - pos < kBlock || read_at(pos, h, kBlock) != kBlock) {
      fail(pos, "truncated tar header");
      break;
    }
    if (all_zero(h)) break;  // end-of-archive marker
    if (!checksum_ok(h)) {
      fail(pos, "bad tar header checksum (not a tar file, or damaged)");
      break;
    }
    uint64_t size = 0;
    if (!parse_number(h + 124, 12, size)) {
      fail(pos, "bad size field in tar header");
      break;
    }
    const char type = static_cast<char>(h[156]);
    if (has_next_size && (type == '0' || type == '\0' || type == '7')) size = next_size;
    const uint64_t data_at = pos + kBlock;
    if (size > file_size - data_at) {
      fail(pos, "member of " + std::to_string(size) + " bytes runs past the end of the file");
      break;
    }
    const uint64_t next = data_at + round_up(size);
    if (type == 'L' || type == 'x') {
      if (size > kMaxMetadata) {
        fail(pos, "oversized long-name/pax record");
        break;
      }
      std::string data(size, '\0');
      if (read_at(data_at, data.data(), size) != size) {
        fail(pos, "truncated long-name/pax record");
        break;
      }
      if (type == 'L') {
        next_name = data.substr(0, data.find('\0'));
      } else if (!parse_pax(data, next_name, next_size, has_next_size)) {
        fail(pos, "malformed pax header");
        break;
      }
      pos = next;
      continue;
    }
    if (type == '0' || type == '\0' || type == '7') {
      std::string name = next_name;
      if (name.empty()) {
        name = field_string(h, 100);
        const bool ustar = std::memcmp(h + 257, "ustar", 5) == 0;
        const std::string prefix = ustar ? field_string(h + 345, 155) : std::string();
        if (!prefix.empty()) name = prefix + "/" + name;
      }
      scan.members.push_back(TarMember{name, data_at, size});
    }
    // Directories, links, global pax ('g') and others carry no sample: skipped.
    next_name.clear();
    has_next_size = false;
    pos = next;
  }
  return scan;
}

}  // namespace

TarScan scan_tar(const RandomAccessFile& file) { return scan_tar(file, 0, file.size()); }

TarScan scan_tar(const RandomAccessFile& file, uint64_t begin, uint64_t end) {
  end = std::min(end, file.size());
  const auto read_at = [&](uint64_t at, void* out, size_t n) { return file.read_at(at, out, n); };
  return scan_range(read_at, std::min(begin, end), end, file.path().string());
}

TarScan scan_tar_bytes(std::string_view bytes, const std::string& name) {
  const auto read_at = [&](uint64_t at, void* out, size_t n) -> size_t {
    if (at >= bytes.size()) return 0;
    const size_t k = std::min<uint64_t>(n, bytes.size() - at);
    std::memcpy(out, bytes.data() + at, k);
    return k;
  };
  return scan_range(read_at, 0, bytes.size(), name);
}

TarWriter::TarWriter(const std::filesystem::path& path)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
  require(static_cast<bool>(out_), path.string() + ": cannot open for writing");
}

TarWriter::~TarWriter() {
  try {
    close();
  } catch (...) {
  }
}

void TarWriter::header(const std::string& name, uint64_t size, char type) {
  uint8_t h[kBlock] = {};
  std::string stored = name, prefix;
  if (name.size() > 100) {
    const auto slash = name.rfind('/', 155);
    if (slash != std::string::npos && name.size() - slash - 1 <= 100 && slash <= 155) {
      prefix = name.substr(0, slash);
      stored = name.substr(slash + 1);
    } else {
      header("././@LongLink", name.size() + 1, 'L');
      std::string data = name;
      data.push_back('\0');
      data.resize(round_up(data.size()), '\0');
      out_.write(data.data(), static_cast<std::streamsize>(data.size()));
      stored = name.substr(0, 100);
    }
  }
  std::memcpy(h, stored.data(), std::min<size_t>(stored.size(), 100));
  std::snprintf(reinterpret_cast<char*>(h + 100), 8, "%07o", 0644u);
  std::snprintf(reinterpret_cast<char*>(h + 108), 8, "%07o", 0u);
  std::snprintf(reinterpret_cast<char*>(h + 116), 8, "%07o", 0u);
  require(size < (uint64_t(1) << 33), path_.string() + ": member " + name + " is over 8 GiB");
  std::snprintf(reinterpret_cast<char*>(h + 124), 12, "%011llo", static_cast<unsigned long long>(size));
  std::snprintf(reinterpret_cast<char*>(h + 136), 12, "%011o", 0u);  // mtime 0: reproducible
  h[156] = static_cast<uint8_t>(type);
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memcpy(h + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (uint64_t i = 0; i < kBlock; ++i) sum += h[i];
  std::snprintf(reinterpret_cast<char*>(h + 148), 8, "%06o", sum);
  h[155] = ' ';
  out_.write(reinterpret_cast<const char*>(h), kBlock);
}

void TarWriter::add(const std::string& name, std::string_view data) {
  header(name, data.size(), '0');
  out_.write(data.data(), static_cast<std::streamsize>(data.size()));
  const uint64_t pad = round_up(data.size()) - data.size();
  static const char zeros[kBlock] = {};
  out_.write(zeros, static_cast<std::streamsize>(pad));
  require(static_cast<bool>(out_), path_.string() + ": write failed");
}

void TarWriter::close() {
  if (!out_.is_open()) return;
  static const char zeros[2 * kBlock] = {};
  out_.write(zeros, sizeof zeros);
  out_.flush();
  require(static_cast<bool>(out_), path_.string() + ": write failed");
  out_.close();
}

}  // namespace lth::data::shards
