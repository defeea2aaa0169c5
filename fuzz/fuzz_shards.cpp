// Shard and TensorBoard readers (src/data/shards, src/io/tensorboard): the input as a TFRecord
// file (framing, CRCs, every record parsed as a tf.train.Example and the file as TensorBoard
// events), as a tar archive (headers, GNU long names, pax records), and as one Example.
// Damage must be a RecordError / WireError / a scan `problem`, never a crash or an
// out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "data/shards/example.h"
#include "data/shards/protobuf_wire.h"
#include "data/shards/tar.h"
#include "data/shards/tfrecord.h"
#include "io/tensorboard.h"
#include "memfile.h"

namespace sh = lth::data::shards;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lth::fuzz::MemFile file("fuzz.shard");
  const std::string& path = file.write(data, size);
  const sh::RandomAccessFile f(path);
  for (const auto& span : sh::scan_tfrecord(f).records) {
    try {
      sh::parse_example(sh::read_record(f, span));
    } catch (const sh::RecordError&) {
    } catch (const sh::WireError&) {
    }
  }
  lth::io::read_events(path);
  for (const auto& m : sh::scan_tar(f).members) {
    if (m.offset + m.size > size) __builtin_trap();  // a member outside the file
  }
  try {
    sh::parse_example(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const sh::WireError&) {
  }
  return 0;
}
