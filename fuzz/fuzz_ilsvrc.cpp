// The readers of the official ILSVRC2012 downloads (src/data/ilsvrc): the input as a
// MATLAB v5 file (meta.mat, then its `synsets` as the devkit reads them), as a gzip'ed and
// a plain devkit archive, and as a tar of tars (the train tar: each member scanned as an
// inner tar within its byte range). Damage must be a UserError or a scan `problem`, never a
// crash, an out-of-bounds read or an allocation beyond the readers' limits.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "data/ilsvrc/devkit.h"
#include "data/ilsvrc/gzip.h"
#include "data/ilsvrc/matlab.h"
#include "data/shards/random_access_file.h"
#include "data/shards/tar.h"
#include "memfile.h"

namespace il = lth::data::ilsvrc;
namespace sh = lth::data::shards;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  il::MatLimits limits;
  limits.max_decompressed_bytes = 16u << 20;  // keep each input cheap
  limits.max_elements = 1u << 20;
  try {
    il::read_mat(bytes, "fuzz.mat", limits);
  } catch (const lth::UserError&) {
  }
  try {
    il::parse_meta_mat(bytes, "fuzz.mat");
  } catch (const lth::UserError&) {
  }
  try {
    il::parse_ground_truth(bytes, "gt.txt");
  } catch (const lth::UserError&) {
  }
  try {
    const auto tar = il::is_gzip(bytes) ? il::gunzip(bytes, 16u << 20, "fuzz.tar.gz") : bytes;
    for (const auto& m : sh::scan_tar_bytes(tar, "fuzz.tar").members) {
      if (m.offset + m.size > tar.size()) __builtin_trap();
    }
  } catch (const lth::UserError&) {
  }
  static lth::fuzz::MemFile file("fuzz.tar");
  const sh::RandomAccessFile f(file.write(data, size));
  for (const auto& outer : sh::scan_tar(f).members) {
    for (const auto& m : sh::scan_tar(f, outer.offset, outer.offset + outer.size).members) {
      if (m.offset < outer.offset || m.offset + m.size > outer.offset + outer.size) __builtin_trap();
    }
  }
  return 0;
}
