// JPEG / PNG bytes through the whole sample pipeline: probe, crop choice, (region) decode at
// a DCT scale, bicubic resize, flip. The first byte picks the transform.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/rng.h"
#include "data/imagenet/codec.h"
#include "data/imagenet/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lth::data::imagenet;
  if (size < 1) return 0;
  TransformSpec spec;
  spec.size = 8 + (data[0] & 0x1F);
  spec.train = (data[0] & 0x20) != 0;
  spec.dct_scaling = (data[0] & 0x40) != 0;
  // A lower cap than lth's default keeps each input fast; the check itself is the same.
  DecodeLimits limits;
  limits.max_pixels = int64_t{1} << 22;
  std::vector<uint8_t> out(static_cast<size_t>(spec.size) * spec.size * 3);
  lth::Rng rng(data[0]);
  try {
    decode_and_transform(data + 1, size - 1, spec, limits, rng, out.data());
  } catch (const DecodeError&) {
  }
  return 0;
}
