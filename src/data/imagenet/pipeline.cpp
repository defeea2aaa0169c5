#include "data/imagenet/pipeline.h"

#include <algorithm>
#include <cmath>

namespace lth::data::imagenet {

void decode_and_transform(const uint8_t* data, size_t size, const TransformSpec& spec, Rng& rng,
                          uint8_t* out, TransformTrace* trace) {
  decode_and_transform(data, size, spec, DecodeLimits{}, rng, out, trace);
}

void decode_and_transform(const uint8_t* data, size_t size, const TransformSpec& spec,
                          const DecodeLimits& limits, Rng& rng, uint8_t* out,
                          TransformTrace* trace) {
  const ImageInfo info = probe(data, size, limits);
  // The crop needs only the header's size, so it is drawn before decoding: that is what
  // lets the decoder skip resolution the resize would throw away.
  const CropBox crop = spec.train ? train_crop(info.height, info.width, spec.size, rng)
                                  : center_crop(info.height, info.width, spec.size);
  const Scale scale = spec.dct_scaling && info.format == ImageFormat::Jpeg
                          ? choose_scale(crop.width, crop.height, spec.size)
                          : Scale{};
  // Decode (at least) the crop's pixels at that scale: the crop's bounding box in scaled
  // pixels, which is exactly what the resize's taps may touch.
  const double f = static_cast<double>(scale.num) / scale.denom;
  const int y0 = static_cast<int>(std::floor(crop.top * f));
  const int x0 = static_cast<int>(std::floor(crop.left * f));
  const int y1 =
      std::min(scale.apply(info.height), static_cast<int>(std::ceil((crop.top + crop.height) * f)));
  const int x1 =
      std::min(scale.apply(info.width), static_cast<int>(std::ceil((crop.left + crop.width) * f)));
  thread_local RgbImage image;  // reused: a worker allocates only for its largest picture
  int origin_top = 0, origin_left = 0;
  decode_region(data, size, info, scale, PixelBox{y0, x0, y1 - y0, x1 - x0}, image, &origin_top,
                &origin_left);
  const Region region{crop.top * f - origin_top, crop.left * f - origin_left, crop.height * f,
                      crop.width * f};
  // The coin is drawn after the crop, as before: the same draws give the same samples.
  const bool flip = spec.train && rng.coin(0.5);
  resize_bicubic(image.pixels.data(), image.height, image.width, region, spec.size, spec.size, flip,
                 out);
  if (trace != nullptr) *trace = TransformTrace{info, crop, scale, flip};
}

}  // namespace lth::data::imagenet
