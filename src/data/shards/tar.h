#pragma once
// POSIX tar (ustar, with the GNU and pax extensions WebDataset writers produce: GNU 'L' long
// names, pax 'x' path/size records, base-256 sizes), read in place: scan_tar lists the
// regular-file members (name, data offset, size) by reading only the 512-byte headers, so a
// shard is never unpacked. Every header is checked (checksum, octal fields, sizes inside the
// file); a hostile or damaged file ends the scan with one `problem` line naming file and
// offset, keeping the members before it, and never reads out of bounds.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "data/shards/random_access_file.h"

namespace lth::data::shards {

struct TarMember {
  std::string name;
  uint64_t offset = 0;  // of the data
  uint64_t size = 0;
};

struct TarScan {
  std::vector<TarMember> members;  // regular files, in archive order
  std::string problem;             // empty when the archive is intact
};

TarScan scan_tar(const RandomAccessFile& file);
// The tar held in bytes [begin, end) of `file` -- a member of an outer tar, as the per-class
// tars inside ILSVRC2012_img_train.tar are: offsets stay offsets in `file`, and the scan never
// reads outside the range. Nesting is the caller's (data/ilsvrc reads exactly one level).
TarScan scan_tar(const RandomAccessFile& file, uint64_t begin, uint64_t end);
// A tar held in memory (a decompressed .tar.gz); offsets index `bytes`; `name` labels problems.
TarScan scan_tar_bytes(std::string_view bytes, const std::string& name);

// Writes a ustar archive member by member (names up to 255 bytes via the prefix field,
// longer ones as a GNU 'L' record); close() adds the two zero blocks that end an archive.
class TarWriter {
 public:
  explicit TarWriter(const std::filesystem::path& path);
  ~TarWriter();
  void add(const std::string& name, std::string_view data);
  void close();

 private:
  void header(const std::string& name, uint64_t size, char type);
  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace lth::data::shards
