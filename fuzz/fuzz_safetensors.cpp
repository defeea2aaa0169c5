// safetensors files: header-only reading, whole reading, and the checkpoint layer on top
// (metadata, masks, momentum; `lth export`'s compact tickets through the same load path).
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "memfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lth::fuzz::MemFile file("fuzz.safetensors");
  const std::string& path = file.write(data, size);
  try {
    lth::io::read_safetensors_header(path);
  } catch (const lth::UserError&) {
  }
  try {
    lth::io::read_safetensors(path);
    lth::io::load_checkpoint(path);
  } catch (const lth::UserError&) {
  }
  return 0;
}
