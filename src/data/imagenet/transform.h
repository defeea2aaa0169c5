#pragma once
// The reference's image transforms (giung2's TFDS input pipeline), on uint8 RGB.
//
// Train: a random crop drawn exactly as TensorFlow's sample_distorted_bounding_box does with
// the reference's arguments (area 8-100 %, aspect 3/4-4/3 uniform, min_object_covered 0.1
// against the whole image, 10 attempts); if every attempt fails, or the crop is the whole
// image, the eval centre crop is used instead (the reference's `bad` branch). Then a
// bicubic resize to size x size and a horizontal flip with probability 1/2.
// Eval: a centre crop of side int(size / (size + 32) * min(h, w)), offsets (d + 1) / 2, then
// the same bicubic resize.
//
// Resize: tf.image.resize(method=BICUBIC) with its default antialias=False, i.e. TF's
// ResizeBicubic with half-pixel centres and Keys' kernel (a = -0.5), 4 taps per axis
// whatever the scale (no low-pass filter when shrinking), taps outside the crop dropped and
// the rest renormalised. The reference keeps the float result; we round to uint8.
// See docs/DATA.md for every difference from the reference.
#include <cstdint>
#include <optional>

#include "common/rng.h"

namespace lth::data::imagenet {

// A rectangle of whole source pixels.
struct CropBox {
  int top = 0;
  int left = 0;
  int height = 0;
  int width = 0;
  bool operator==(const CropBox& o) const {
    return top == o.top && left == o.left && height == o.height && width == o.width;
  }
};

// The same rectangle in a source decoded at a reduced scale: fractional coordinates.
struct Region {
  double top = 0;
  double left = 0;
  double height = 0;
  double width = 0;
};

struct TrainCropParams {  // the reference's arguments
  float min_area = 0.08f;
  float max_area = 1.0f;
  float min_aspect = 0.75f;
  float max_aspect = static_cast<float>(4.0 / 3.0);
  float min_object_covered = 0.1f;
  int max_attempts = 10;
};

// One call of sample_distorted_bounding_box on an image of height x width with the whole
// image as the object box; nullopt when all attempts failed (TF then returns the image).
std::optional<CropBox> sample_distorted_crop(int height, int width, Rng& rng,
                                             const TrainCropParams& params = {});

// The reference's eval crop for output side `size`.
CropBox center_crop(int height, int width, int size);

// The reference's train crop: sample_distorted_crop, falling back to center_crop when it
// failed or returned the whole image.
CropBox train_crop(int height, int width, int size, Rng& rng);

// Bicubic resize (see above) of `region` of an RGB image to out_h x out_w RGB. Taps are
// confined to the pixels the region touches, as if it had been cut out first.
void resize_bicubic(const uint8_t* src, int src_h, int src_w, const Region& region, int out_h,
                    int out_w, uint8_t* out);
// The same, mirrored left-right when `mirror` (the bytes of resize then flip_horizontal, in
// one pass). `out` may be any out_h x out_w x 3 slot, e.g. a batch tensor's.
void resize_bicubic(const uint8_t* src, int src_h, int src_w, const Region& region, int out_h,
                    int out_w, bool mirror, uint8_t* out);

// Mirrors an RGB image left-right in place.
void flip_horizontal(uint8_t* rgb, int height, int width);

}  // namespace lth::data::imagenet
