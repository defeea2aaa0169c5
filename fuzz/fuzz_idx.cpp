// IDX files, raw or gzipped (MNIST-family data).
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "data/idx.h"
#include "memfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static lth::fuzz::MemFile file("fuzz-idx");
  try {
    lth::data::read_idx_file(file.write(data, size));
  } catch (const lth::UserError&) {
  }
  return 0;
}
