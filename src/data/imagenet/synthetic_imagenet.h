#pragma once
// Writes a small synthetic data root in the reference's folder layout, so that every
// reader, the eval suite and the benchmarks run without the real data:
//   imagenet/train/<wnid>/<wnid>_<i>.JPEG        classes x per_class
//   imagenet/val/<wnid>/ILSVRC2012_val_<n>.JPEG  classes x test_per_class
//   imagenet-v2/<label>/<hex>.jpeg                numeric folders
//   imagenet-r/<wnid>/art_<i>.jpg                 every 2nd class ("renditions": flat, outlined)
//   imagenet-a/<wnid>/adv_<i>.jpg                 every 3rd class (small object, clutter)
//   imagenet-sketch/<wnid>/sketch_<i>.JPEG        all classes (grey line drawings)
//   manifest.json                                 what was written, odd files included
// Classes are the first `classes` canonical wnids, so labels equal the ImageNet-1k ones.
// Each class has its own colour, shape and stripe texture (learnable at 32-64 px), each
// image its own position, scale, background and noise; sizes follow ImageNet's mix of
// aspect ratios (500x375, 375x500, 500x333, ... scaled so the long side is about `size`).
// Odd files in imagenet/train/<first wnid>/: a grayscale JPEG, a CMYK JPEG, a PNG named
// .JPEG (all three readable), a truncated JPEG and a zero-byte file (both unreadable).
// Output depends only on the options (seed included), never on threads or time.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lth::data::imagenet {

struct MakeImagenetOptions {
  std::filesystem::path out;
  int classes = 10;
  int per_class = 8;       // train images per class
  int test_per_class = 0;  // val / v2 / r / a / sketch images per class; 0 = max(2, per_class / 4)
  int size = 64;           // nominal long side (500 gives ImageNet-sized pictures)
  uint64_t seed = 0;
  int quality = 90;
  bool odd_files = true;
};

struct MakeImagenetReport {
  std::map<std::string, int64_t> images;         // layout -> files written
  std::map<std::string, std::string> odd_files;  // kind -> path relative to `out`
  int64_t bytes = 0;
};

// Throws UserError if `out` exists and is not empty, or options are out of range.
MakeImagenetReport make_synthetic_imagenet(const MakeImagenetOptions& options);

}  // namespace lth::data::imagenet
