// .npy files: the header scanner, then the whole reader (mmap, dtype, size checks) and, for
// image-shaped arrays, the test-set dataset and its resize.
#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "common/rng.h"
#include "data/imagenet/npy.h"
#include "memfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lth::data::imagenet;
  try {
    parse_npy_header(data, size, "fuzz.npy");
  } catch (const lth::UserError&) {
    return 0;
  }
  static lth::fuzz::MemFile file("fuzz.npy");
  try {
    const auto array = read_npy(file.write(data, size));
    if (array.dim() == 4 && array.size(3) == 3 && array.scalar_type() == torch::kUInt8 &&
        array.size(0) > 0 && array.numel() <= (1 << 20)) {
      NpyDataset set("fuzz", array, torch::zeros({array.size(0)}, torch::kInt64), 10, 7);
      lth::Rng rng(0);
      set.get(0, rng);
    }
  } catch (const lth::UserError&) {
  }
  return 0;
}
