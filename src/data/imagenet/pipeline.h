#pragma once
// Encoded bytes in, transformed uint8 RGB out: probe the header, choose the crop (train or
// eval, see transform.h), decode the JPEG (the crop's region only, where possible), resize,
// flip.
//
// Optionally (dct_scaling = true) the JPEG is decoded at the largest DCT scale (1/2, 1/4,
// 1/8) that keeps the crop at least `size` pixels on both sides. That is a cheap box-like
// low-pass filter which changes pixels compared with the reference (which decodes at full
// size and resizes without antialiasing), and the benchmark showed no gain from it once
// only the crop is decoded (docs/PERFORMANCE.md), so it is off by default.
#include <cstddef>
#include <cstdint>

#include "common/rng.h"
#include "data/imagenet/codec.h"
#include "data/imagenet/transform.h"

namespace lth::data::imagenet {

struct TransformSpec {
  int size = 224;      // output side
  bool train = false;  // train: random crop + flip; eval: centre crop
  bool dct_scaling = false;
};

// What one call did, for tests and benchmarks.
struct TransformTrace {
  ImageInfo info;
  CropBox crop;  // in full-resolution source pixels
  Scale scale;
  bool flipped = false;
};

// Writes spec.size x spec.size x 3 bytes to `out`. Random choices (crop, then flip) come
// from `rng` only. Throws DecodeError for unreadable input.
void decode_and_transform(const uint8_t* data, size_t size, const TransformSpec& spec, Rng& rng,
                          uint8_t* out, TransformTrace* trace = nullptr);
// The same with explicit limits (pictures beyond them are DecodeErrors, i.e. skipped
// samples); the overload above uses DecodeLimits{}.
void decode_and_transform(const uint8_t* data, size_t size, const TransformSpec& spec,
                          const DecodeLimits& limits, Rng& rng, uint8_t* out,
                          TransformTrace* trace = nullptr);

}  // namespace lth::data::imagenet
