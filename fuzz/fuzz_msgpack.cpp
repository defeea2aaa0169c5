// The reference's Flax checkpoints: the MessagePack reader on its own, the format sniffing,
// then the whole checkpoint reader (tree, layout recognition, array payloads, values).
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "io/checkpoint_sniff.h"
#include "io/flax_checkpoint.h"
#include "io/msgpack.h"
#include "memfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    lth::io::msgpack::parse(data, size, "fuzz.msgpack");
  } catch (const lth::UserError&) {
  }
  static lth::fuzz::MemFile file("fuzz.ckpt");
  const std::string& path = file.write(data, size);
  try {
    lth::io::detect_checkpoint_format(path);
    lth::io::read_flax_checkpoint(path);
  } catch (const lth::UserError&) {
  }
  return 0;
}
